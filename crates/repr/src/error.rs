//! [`EvalError`]: what can go wrong evaluating a scalar expression on a row.
//!
//! Evaluation errors are data: in a dataflow they flow into the error collection beside
//! the data collection, and a read of the collection returns the error to the user.
//! Every variant carries the SQLSTATE and the message PostgreSQL gives the same failure.

use serde::{Deserialize, Serialize};

/// An error evaluating an expression, with the SQLSTATE PostgreSQL gives it.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, thiserror::Error,
)]
pub enum EvalError {
    #[error("division by zero")]
    DivisionByZero,
    /// A recursive query whose bindings still changed after its `ERROR AT RECURSION
    /// LIMIT n` rounds (54000).
    #[error("recursive query exceeded the recursion limit {0}")]
    RecursionLimit(u64),
    /// A number left its type's range: `integer out of range` (22003).
    #[error("{0} out of range")]
    OutOfRange(String),
    /// Text input of an integer beyond its type: `value "99999" is out of range for type
    /// smallint` (22003).
    #[error("value \"{value}\" is out of range for type {typ}")]
    ValueOutOfRange { typ: String, value: String },
    /// Text input of a float beyond its type: `"1e400" is out of range for type double
    /// precision` (22003).
    #[error("\"{value}\" is out of range for type {typ}")]
    FloatInputOutOfRange { typ: String, value: String },
    /// Float arithmetic or a cast gave infinity from finite inputs (22003).
    #[error("value out of range: overflow")]
    FloatOverflow,
    /// Float arithmetic or a cast gave zero from non-zero inputs (22003).
    #[error("value out of range: underflow")]
    FloatUnderflow,
    /// A numeric beyond what Freshet's numeric holds (22003).
    #[error("value overflows numeric format")]
    NumericOverflow,
    /// A numeric that does not fit `numeric(precision, scale)` (22003).
    #[error("numeric field overflow")]
    NumericFieldOverflow { precision: u16, scale: i16 },
    /// A date, timestamp or interval computation left the type's range:
    /// `interval out of range`, `timestamp out of range`, `date out of range` (22008).
    #[error("{0} out of range")]
    DatetimeOutOfRange(String),
    /// A date too late to be a timestamp (22008).
    #[error("date out of range for timestamp")]
    DateOutOfRangeForTimestamp,
    /// Date/time text whose fields are well formed but out of range, such as
    /// `2023-02-29` or `25:00` (22008).
    #[error("date/time field value out of range: \"{0}\"")]
    DatetimeFieldOutOfRange(String),
    /// Date or timestamp text that is a valid date outside the type's range:
    /// `date out of range: "5874898-01-01"` (22008).
    #[error("{typ} out of range: \"{value}\"")]
    DatetimeInputOutOfRange { typ: String, value: String },
    /// A time zone offset beyond PostgreSQL's +-15:59:59 (22009).
    #[error("time zone displacement out of range: \"{0}\"")]
    TimeZoneDisplacementOutOfRange(String),
    /// Interval text whose value does not fit an interval (22015).
    #[error("interval field value out of range: \"{0}\"")]
    IntervalFieldOutOfRange(String),
    /// Text input that is not a date, time, timestamp or interval (22007).
    #[error("invalid input syntax for type {typ}: \"{value}\"")]
    InvalidDatetimeFormat { typ: String, value: String },
    /// Text input that is not a value of the type (22P02).
    #[error("invalid input syntax for type {typ}: \"{value}\"")]
    InvalidTextRepresentation { typ: String, value: String },
    /// Text input that is malformed in a way PostgreSQL words without the text (22P02):
    /// `invalid input syntax for type bytea`.
    #[error("invalid input syntax for type {0}")]
    InvalidTextRepresentationOf(String),
    /// Text that is not JSON (22P02), with PostgreSQL's DETAIL saying why. PostgreSQL
    /// names the type `json` for jsonb input too.
    #[error("invalid input syntax for type json")]
    InvalidJson { detail: String },
    /// `\u0000` in jsonb text (22P05).
    #[error("unsupported Unicode escape sequence")]
    UnsupportedUnicodeEscape,
    /// Array text that does not parse: `malformed array literal: "{1,"` (22P02).
    #[error("malformed array literal: \"{value}\"")]
    MalformedArrayLiteral { value: String, detail: String },
    #[error("value too long for type {0}")]
    StringTooLong(String),
    /// A LIKE pattern that ends in its escape character (22025).
    #[error("LIKE pattern must not end with escape character")]
    LikePatternEndsWithEscape,
    /// A result larger than a value may be: `requested length too large` (54000).
    #[error("{0}")]
    ProgramLimitExceeded(String),
    /// Recursion too deep for the stack (54001).
    #[error("stack depth limit exceeded")]
    StackDepthLimitExceeded,
    /// A value PostgreSQL accepts that Freshet cannot represent (0A000).
    #[error("{0} is not supported")]
    FeatureNotSupported(String),
    #[error("{0}")]
    InvalidParameter(String),
    /// A NULL where a function needs a value: `initial position must not be null`
    /// (22004).
    #[error("{0}")]
    NullValueNotAllowed(String),
    /// `ntile(n)` with `n <= 0` (22014).
    #[error("argument of ntile must be greater than zero")]
    InvalidNtileArgument,
    /// `nth_value(x, n)` with `n <= 0` (22016).
    #[error("argument of nth_value must be greater than zero")]
    InvalidNthValueArgument,
    #[error(
        "null value in column \"{column}\" of relation \"{relation}\" violates not-null constraint"
    )]
    NotNullViolation { relation: String, column: String },
    #[error("more than one row returned by a subquery used as an expression")]
    MultipleRowsFromSubquery,
    /// A broken invariant (a type the planner should have ruled out), never bad data.
    #[error("{0}")]
    Internal(String),
    // New variants go last: errors are stored in materialized views' shards by
    // variant index.
    /// `date_bin` with a stride of zero or less (22008).
    #[error("stride must be greater than zero")]
    DateBinStride,
    /// `date_bin` with a stride of months or years (0A000).
    #[error("timestamps cannot be binned into intervals containing months or years")]
    DateBinMonths,
}

impl EvalError {
    /// The SQLSTATE code PostgreSQL reports for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            EvalError::DivisionByZero => "22012",
            EvalError::OutOfRange(_) => "22003",
            EvalError::ValueOutOfRange { .. } => "22003",
            EvalError::FloatInputOutOfRange { .. } => "22003",
            EvalError::FloatOverflow => "22003",
            EvalError::FloatUnderflow => "22003",
            EvalError::NumericOverflow => "22003",
            EvalError::NumericFieldOverflow { .. } => "22003",
            EvalError::DatetimeOutOfRange(_) => "22008",
            EvalError::DateOutOfRangeForTimestamp => "22008",
            EvalError::DatetimeFieldOutOfRange(_) => "22008",
            EvalError::DatetimeInputOutOfRange { .. } => "22008",
            EvalError::TimeZoneDisplacementOutOfRange(_) => "22009",
            EvalError::IntervalFieldOutOfRange(_) => "22015",
            EvalError::InvalidDatetimeFormat { .. } => "22007",
            EvalError::InvalidTextRepresentation { .. } => "22P02",
            EvalError::InvalidTextRepresentationOf(_) => "22P02",
            EvalError::InvalidJson { .. } => "22P02",
            EvalError::UnsupportedUnicodeEscape => "22P05",
            EvalError::MalformedArrayLiteral { .. } => "22P02",
            EvalError::StringTooLong(_) => "22001",
            EvalError::LikePatternEndsWithEscape => "22025",
            EvalError::ProgramLimitExceeded(_) => "54000",
            EvalError::RecursionLimit(_) => "54000",
            EvalError::StackDepthLimitExceeded => "54001",
            EvalError::FeatureNotSupported(_) => "0A000",
            EvalError::InvalidParameter(_) => "22023",
            EvalError::NullValueNotAllowed(_) => "22004",
            EvalError::InvalidNtileArgument => "22014",
            EvalError::InvalidNthValueArgument => "22016",
            EvalError::NotNullViolation { .. } => "23502",
            EvalError::MultipleRowsFromSubquery => "21000",
            EvalError::DateBinStride => "22008",
            EvalError::DateBinMonths => "0A000",
            EvalError::Internal(_) => "XX000",
        }
    }

    /// PostgreSQL's DETAIL line for this error, if it has one.
    pub fn detail(&self) -> Option<String> {
        match self {
            EvalError::NumericFieldOverflow { precision, scale } => {
                let max_digits = i32::from(*precision) - i32::from(*scale);
                let bound = if max_digits == 0 {
                    "1".to_string()
                } else {
                    format!("10^{max_digits}")
                };
                Some(format!(
                    "A field with precision {precision}, scale {scale} must round to an \
                     absolute value less than {bound}."
                ))
            }
            EvalError::InvalidJson { detail } | EvalError::MalformedArrayLiteral { detail, .. } => {
                Some(detail.clone())
            }
            EvalError::UnsupportedUnicodeEscape => {
                Some("\\u0000 cannot be converted to text.".into())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_codes_match_postgres() {
        let cases = [
            (
                EvalError::DatetimeOutOfRange("interval".into()),
                "22008",
                "interval out of range",
            ),
            (
                EvalError::DatetimeFieldOutOfRange("2023-02-29".into()),
                "22008",
                "date/time field value out of range: \"2023-02-29\"",
            ),
            (
                EvalError::InvalidDatetimeFormat {
                    typ: "date".into(),
                    value: "x".into(),
                },
                "22007",
                "invalid input syntax for type date: \"x\"",
            ),
            (
                EvalError::IntervalFieldOutOfRange("2147483648 months".into()),
                "22015",
                "interval field value out of range: \"2147483648 months\"",
            ),
            (
                EvalError::FloatOverflow,
                "22003",
                "value out of range: overflow",
            ),
            (
                EvalError::FloatUnderflow,
                "22003",
                "value out of range: underflow",
            ),
            (
                EvalError::NumericOverflow,
                "22003",
                "value overflows numeric format",
            ),
            (
                EvalError::NumericFieldOverflow {
                    precision: 5,
                    scale: 2,
                },
                "22003",
                "numeric field overflow",
            ),
        ];
        for (e, code, message) in cases {
            assert_eq!((e.sqlstate(), e.to_string().as_str()), (code, message));
        }
        assert_eq!(
            EvalError::NumericFieldOverflow {
                precision: 5,
                scale: 2
            }
            .detail()
            .as_deref(),
            Some(
                "A field with precision 5, scale 2 must round to an absolute value less than 10^3."
            )
        );
    }
}
