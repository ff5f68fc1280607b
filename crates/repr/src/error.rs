//! [`EvalError`]: what can go wrong evaluating a scalar expression on a row.
//!
//! Evaluation errors are data: in a dataflow they flow into the error collection beside
//! the data collection, and a read of the collection returns the error to the user.

use serde::{Deserialize, Serialize};

/// An error evaluating an expression, with the SQLSTATE PostgreSQL gives it.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, thiserror::Error,
)]
pub enum EvalError {
    #[error("division by zero")]
    DivisionByZero,
    #[error("{0} out of range")]
    OutOfRange(String),
    #[error("value \"{value}\" is out of range for type {typ}")]
    ValueOutOfRange { typ: String, value: String },
    #[error("invalid input syntax for type {typ}: \"{value}\"")]
    InvalidTextRepresentation { typ: String, value: String },
    #[error("value too long for type {0}")]
    StringTooLong(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error(
        "null value in column \"{column}\" of relation \"{relation}\" violates not-null constraint"
    )]
    NotNullViolation { relation: String, column: String },
    #[error("more than one row returned by a subquery used as an expression")]
    MultipleRowsFromSubquery,
    #[error("{0}")]
    Internal(String),
}

impl EvalError {
    /// The SQLSTATE code PostgreSQL reports for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            EvalError::DivisionByZero => "22012",
            EvalError::OutOfRange(_) => "22003",
            EvalError::ValueOutOfRange { .. } => "22003",
            EvalError::InvalidTextRepresentation { .. } => "22P02",
            EvalError::StringTooLong(_) => "22001",
            EvalError::InvalidParameter(_) => "22023",
            EvalError::NotNullViolation { .. } => "23502",
            EvalError::MultipleRowsFromSubquery => "21000",
            EvalError::Internal(_) => "XX000",
        }
    }
}
