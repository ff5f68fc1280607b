//! The built-in scalar function library as the planner sees it: resolves a function
//! name and its planned arguments to an expression, inserting PostgreSQL's implicit
//! casts. `query::plan_function` handles a few special forms itself (NULLIF, COALESCE,
//! GREATEST/LEAST, CONCAT, version) and asks [`plan_builtin`] for everything else.

use repr::ScalarType;

use crate::error::PlanError;
use crate::hir::HirScalarExpr;

/// A planned argument.
pub struct Arg {
    pub expr: HirScalarExpr,
    pub typ: ScalarType,
    /// An untyped literal (a string or NULL): it takes the type the function wants.
    pub unknown: bool,
}

/// The call `name(args)`, or `None` if no built-in has that name.
pub fn plan_builtin(name: &str, args: Vec<Arg>) -> Option<Result<HirScalarExpr, PlanError>> {
    let _ = (name, args);
    None
}
