//! [`PlanError`]: why a statement could not be planned, with its SQLSTATE.

use repr::EvalError;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A syntax error at a 1-based character position of the statement text.
    #[error("{message}")]
    Parse {
        message: String,
        position: Option<usize>,
    },
    #[error("relation \"{0}\" does not exist")]
    UnknownRelation(String),
    /// `DROP TABLE` of a table that does not exist.
    #[error("table \"{0}\" does not exist")]
    UnknownTable(String),
    /// A qualified reference to a table name that no FROM item exposes.
    #[error("missing FROM-clause entry for table \"{0}\"")]
    MissingFromEntry(String),
    /// A qualified reference to a table by its name when the FROM item has an alias.
    #[error("invalid reference to FROM-clause entry for table \"{0}\"")]
    InvalidFromReference(String),
    /// Two FROM items at one level expose the same name.
    #[error("table name \"{0}\" specified more than once")]
    DuplicateAlias(String),
    #[error("WITH query name \"{0}\" specified more than once")]
    DuplicateCte(String),
    #[error("relation \"{0}\" already exists")]
    RelationExists(String),
    #[error("schema \"{0}\" does not exist")]
    UnknownSchema(String),
    #[error("database \"{0}\" does not exist")]
    UnknownDatabase(String),
    #[error("schema \"{0}\" already exists")]
    SchemaExists(String),
    #[error("database \"{0}\" already exists")]
    DatabaseExists(String),
    /// An unqualified name to create with no existing schema in the search path.
    #[error("no schema has been selected to create in")]
    NoSchemaSelected,
    /// `DROP DATABASE` of the session's own database.
    #[error("cannot drop the currently open database")]
    DropCurrentDatabase,
    #[error("column \"{0}\" does not exist")]
    UnknownColumn(String),
    /// PostgreSQL leaves a qualified column name unquoted.
    #[error("column {table}.{column} does not exist")]
    UnknownQualifiedColumn { table: String, column: String },
    #[error("column reference \"{0}\" is ambiguous")]
    AmbiguousColumn(String),
    /// A bare name in ORDER BY or GROUP BY that matches several select-list items.
    #[error("{clause} \"{name}\" is ambiguous")]
    AmbiguousClauseReference { clause: &'static str, name: String },
    #[error(
        "column \"{0}\" must appear in the GROUP BY clause or be used in an aggregate function"
    )]
    UngroupedColumn(String),
    /// A subquery of a grouped query reads one of its columns that is not a group key.
    #[error("subquery uses ungrouped column \"{0}\" from outer query")]
    UngroupedOuterColumn(String),
    #[error("{0}")]
    DatatypeMismatch(String),
    /// A type that cannot be found from the expression: `cannot determine type of
    /// empty array`, `could not determine polymorphic type because input has type
    /// unknown` (42P18, 42804 for the latter in PostgreSQL; see `sqlstate`).
    #[error("{0}")]
    IndeterminateDatatype(String),
    /// A definition PostgreSQL rejects: `functions in index expression must be marked
    /// IMMUTABLE` (42P17).
    #[error("{0}")]
    InvalidObjectDefinition(String),
    /// A cast that does not exist: `cannot cast type integer to uuid` (42846).
    #[error("cannot cast type {from} to {to}")]
    CannotCoerce { from: String, to: String },
    #[error("{0}")]
    Grouping(String),
    #[error("{0}")]
    DuplicateColumn(String),
    #[error("function {0} does not exist")]
    UnknownFunction(String),
    #[error("function {0} is not unique")]
    AmbiguousFunction(String),
    #[error("operator does not exist: {0}")]
    UnknownOperator(String),
    #[error("type \"{0}\" does not exist")]
    UnknownType(String),
    /// `DROP` of something that is not there: 42704 for indexes, 42P01 for relations.
    #[error("{kind} \"{name}\" does not exist")]
    DoesNotExist { kind: &'static str, name: String },
    #[error("{0}")]
    WrongObjectType(String),
    #[error("cannot drop {kind} {name} because other objects depend on it")]
    DependentObjects {
        kind: &'static str,
        name: String,
        dependents: Vec<String>,
    },
    #[error("{0} is not supported")]
    Unsupported(String),
    /// A feature PostgreSQL does not support either, in PostgreSQL's words (0A000):
    /// `set-returning functions are not allowed in WHERE`.
    #[error("{0}")]
    FeatureNotSupported(String),
    /// Window functions where they are not allowed, or a bad window clause (42P20).
    #[error("{0}")]
    Windowing(String),
    /// A window frame offset that is negative (22013).
    #[error("{0}")]
    InvalidFrameOffset(String),
    /// A window frame offset that is NULL (22004).
    #[error("{0}")]
    NullFrameOffset(String),
    #[error("{0}")]
    InvalidColumnReference(String),
    /// A value out of its allowed range, such as a type modifier (`numeric(0)`).
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("{0}")]
    Syntax(String),
    /// A recursive query PostgreSQL cannot evaluate (42P19): `recursive reference to
    /// query "t" must not appear within its non-recursive term`.
    #[error("{0}")]
    InvalidRecursion(String),
    /// `$n` with no value: a simple query, or fewer values than parameters.
    #[error("there is no parameter ${0}")]
    NoParameter(usize),
    #[error(transparent)]
    Eval(#[from] EvalError),
}

impl PlanError {
    /// The SQLSTATE PostgreSQL reports for the error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            PlanError::Parse { .. } | PlanError::Syntax(_) => "42601",
            PlanError::InvalidRecursion(_) => "42P19",
            PlanError::UnknownRelation(_)
            | PlanError::UnknownTable(_)
            | PlanError::MissingFromEntry(_)
            | PlanError::InvalidFromReference(_) => "42P01",
            PlanError::DuplicateAlias(_) => "42712",
            PlanError::RelationExists(_) => "42P07",
            PlanError::UnknownSchema(_) | PlanError::NoSchemaSelected => "3F000",
            PlanError::UnknownDatabase(_) => "3D000",
            PlanError::SchemaExists(_) => "42P06",
            PlanError::DatabaseExists(_) => "42P04",
            PlanError::DropCurrentDatabase => "55006",
            PlanError::DuplicateColumn(_) => "42701",
            PlanError::UnknownColumn(_) | PlanError::UnknownQualifiedColumn { .. } => "42703",
            PlanError::AmbiguousColumn(_) | PlanError::AmbiguousClauseReference { .. } => "42702",
            PlanError::UngroupedColumn(_)
            | PlanError::UngroupedOuterColumn(_)
            | PlanError::Grouping(_) => "42803",
            PlanError::DatatypeMismatch(_) => "42804",
            PlanError::CannotCoerce { .. } => "42846",
            PlanError::InvalidObjectDefinition(_) => "42P17",
            PlanError::IndeterminateDatatype(m)
                if m.starts_with("could not determine polymorphic") =>
            {
                "42804"
            }
            PlanError::IndeterminateDatatype(_) => "42P18",
            PlanError::UnknownFunction(_) | PlanError::UnknownOperator(_) => "42883",
            PlanError::AmbiguousFunction(_) => "42725",
            PlanError::UnknownType(_) => "42704",
            PlanError::Unsupported(_) | PlanError::FeatureNotSupported(_) => "0A000",
            PlanError::Windowing(_) => "42P20",
            PlanError::InvalidFrameOffset(_) => "22013",
            PlanError::NullFrameOffset(_) => "22004",
            PlanError::InvalidColumnReference(_) => "42P10",
            PlanError::InvalidParameterValue(_) => "22023",
            PlanError::NoParameter(_) => "42P02",
            PlanError::Eval(e) => e.sqlstate(),
            PlanError::DuplicateCte(_) => "42712",
            PlanError::DoesNotExist {
                kind: "index" | "window" | "cluster",
                ..
            } => "42704",
            PlanError::DoesNotExist { .. } => "42P01",
            PlanError::WrongObjectType(_) => "42809",
            PlanError::DependentObjects { .. } => "2BP01",
        }
    }

    /// PostgreSQL's DETAIL line for the error, if it has one.
    pub fn detail(&self) -> Option<String> {
        match self {
            PlanError::Eval(e) => e.detail(),
            _ => None,
        }
    }

    /// The syntax error's position, if any.
    pub fn position(&self) -> Option<usize> {
        match self {
            PlanError::Parse { position, .. } => *position,
            _ => None,
        }
    }

    pub fn unsupported(what: impl Into<String>) -> Self {
        PlanError::Unsupported(what.into())
    }
}
