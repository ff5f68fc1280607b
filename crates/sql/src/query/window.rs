//! Window function calls of a SELECT: `f(...) OVER (PARTITION BY ... ORDER BY ...
//! frame)` and `OVER w` with a `WINDOW w AS (...)` clause.
//!
//! The calls are collected from the select list and ORDER BY, and planned after
//! GROUP BY and HAVING (so their arguments may use aggregates): the partition keys,
//! sort keys and arguments become columns of a `Map` over the (grouped) relation, and
//! a [`HirRelationExpr::Window`] appends one column per call. Expressions planned
//! afterwards read a call's column through the [`ExprContext`]'s substitutions.

use expr::window::{FrameBound, FrameUnits, WindowFrame};
use expr::{WindowCall, WindowFunc};

use super::*;
use crate::hir::HirWindowExpr;

/// Whether the call is a window function call (has OVER).
pub(super) fn is_window_call(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::Function(f) if f.over.is_some())
}

/// Plans the window `calls` over `input`, whose columns `ecx` describes. Returns the
/// relation with the calls' columns appended, and each call's AST with its column.
pub(super) fn plan_windows(
    ecx: &ExprContext,
    named: &[ast::NamedWindowDefinition],
    calls: &[ast::Expr],
    input: HirRelationExpr,
) -> Result<(HirRelationExpr, Vec<(ast::Expr, usize)>), PlanError> {
    let base = ecx.types.len();
    let mut columns = Columns {
        base,
        scalars: Vec::new(),
    };
    let mut windows = Vec::new();
    for call in calls {
        let ast::Expr::Function(f) = call else {
            unreachable!("window calls are function calls")
        };
        let over = f.over.as_ref().expect("window calls have OVER");
        let spec = resolve_window(over, named)?;
        let mut partition_by = Vec::new();
        for p in &spec.partition_by {
            let planned = plan_expr(ecx, p, None)?;
            partition_by.push(columns.column(planned));
        }
        let mut order_by = Vec::new();
        let mut order_types = Vec::new();
        for o in &spec.order_by {
            let planned = plan_expr(ecx, &o.expr, None)?;
            order_types.push(planned.typ(ecx.types).scalar_type);
            order_by.push(column_order(columns.column(planned), &o.options));
        }
        let (func, args) = plan_window_function(ecx, f, &mut columns)?;
        let frame = plan_frame(ecx, spec.frame, &order_types)?;
        windows.push(HirWindowExpr {
            partition_by,
            order_by,
            call: WindowCall { func, args, frame },
        });
    }
    let mapped = columns.scalars.len();
    let input = if mapped == 0 {
        input
    } else {
        HirRelationExpr::Map {
            input: Box::new(input),
            scalars: columns.scalars,
        }
    };
    let substitutions = calls
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), base + mapped + i))
        .collect();
    Ok((
        HirRelationExpr::Window {
            input: Box::new(input),
            windows,
        },
        substitutions,
    ))
}

/// The columns the calls read: plain columns of the input as they are, anything else
/// mapped (once) after the input's columns.
struct Columns {
    base: usize,
    scalars: Vec<HirScalarExpr>,
}

impl Columns {
    fn column(&mut self, e: HirScalarExpr) -> usize {
        if let HirScalarExpr::Column(c) = &e {
            if c.level == 0 {
                return c.column;
            }
        }
        match self.scalars.iter().position(|s| *s == e) {
            Some(i) => self.base + i,
            None => {
                self.scalars.push(e);
                self.base + self.scalars.len() - 1
            }
        }
    }
}

/// A window specification with any named window it refers to resolved.
struct Spec<'a> {
    partition_by: Vec<&'a ast::Expr>,
    order_by: Vec<&'a ast::OrderByExpr>,
    frame: Option<&'a ast::WindowFrame>,
}

fn resolve_window<'a>(
    over: &'a ast::WindowType,
    named: &'a [ast::NamedWindowDefinition],
) -> Result<Spec<'a>, PlanError> {
    match over {
        ast::WindowType::NamedWindow(name) => resolve_named(name, named, 0),
        ast::WindowType::WindowSpec(spec) => resolve_spec(spec, named, 0),
    }
}

fn resolve_named<'a>(
    name: &ast::Ident,
    named: &'a [ast::NamedWindowDefinition],
    depth: usize,
) -> Result<Spec<'a>, PlanError> {
    let wanted = normalize_ident(name);
    let Some(def) = named.iter().find(|d| normalize_ident(&d.0) == wanted) else {
        return Err(PlanError::DoesNotExist {
            kind: "window",
            name: wanted,
        });
    };
    if depth > named.len() {
        return Err(PlanError::Windowing(format!(
            "window \"{wanted}\" refers to itself"
        )));
    }
    match &def.1 {
        ast::NamedWindowExpr::NamedWindow(other) => resolve_named(other, named, depth + 1),
        ast::NamedWindowExpr::WindowSpec(spec) => resolve_spec(spec, named, depth + 1),
    }
}

/// `(w ORDER BY ...)`: PostgreSQL's rules for copying a named window.
fn resolve_spec<'a>(
    spec: &'a ast::WindowSpec,
    named: &'a [ast::NamedWindowDefinition],
    depth: usize,
) -> Result<Spec<'a>, PlanError> {
    let own = Spec {
        partition_by: spec.partition_by.iter().collect(),
        order_by: spec.order_by.iter().collect(),
        frame: spec.window_frame.as_ref(),
    };
    let Some(base_name) = &spec.window_name else {
        return Ok(own);
    };
    let base = resolve_named(base_name, named, depth)?;
    let name = normalize_ident(base_name);
    if !own.partition_by.is_empty() {
        return Err(PlanError::Windowing(format!(
            "cannot override PARTITION BY clause of window \"{name}\""
        )));
    }
    if !own.order_by.is_empty() && !base.order_by.is_empty() {
        return Err(PlanError::Windowing(format!(
            "cannot override ORDER BY clause of window \"{name}\""
        )));
    }
    if base.frame.is_some() {
        return Err(PlanError::Windowing(format!(
            "cannot copy window \"{name}\" because it has a frame clause"
        )));
    }
    Ok(Spec {
        partition_by: base.partition_by,
        order_by: if own.order_by.is_empty() {
            base.order_by
        } else {
            own.order_by
        },
        frame: own.frame,
    })
}

/// The function of a window call and its argument columns.
fn plan_window_function(
    ecx: &ExprContext,
    f: &ast::Function,
    columns: &mut Columns,
) -> Result<(WindowFunc, Vec<usize>), PlanError> {
    let name = f
        .name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(normalize_ident)
        .unwrap_or_default();
    if f.null_treatment.is_some() {
        return Err(PlanError::unsupported(format!(
            "IGNORE NULLS / RESPECT NULLS in {name}"
        )));
    }
    if aggregate_func(f).is_some() {
        let call = call_args(f)?;
        if call.distinct {
            return Err(PlanError::FeatureNotSupported(
                "DISTINCT is not implemented for window functions".into(),
            ));
        }
        if !call.order_by.is_empty() {
            return Err(PlanError::FeatureNotSupported(
                "aggregate ORDER BY is not implemented for window functions".into(),
            ));
        }
        let mut plain = f.clone();
        plain.over = None;
        let agg = plan_aggregate_in(ecx, &ast::Expr::Function(plain), true)?;
        let arg = columns.column(*agg.expr);
        return Ok((WindowFunc::Aggregate(agg.func), vec![arg]));
    }
    if unsupported_aggregate(&name) {
        return Err(PlanError::unsupported(format!("aggregate function {name}")));
    }
    if f.filter.is_some() {
        return Err(PlanError::FeatureNotSupported(
            "FILTER is not implemented for non-aggregate window functions".into(),
        ));
    }
    let call = call_args(f)?;
    if call.distinct || call.star || !call.order_by.is_empty() || !f.within_group.is_empty() {
        return Err(PlanError::UnknownFunction(format!("{name}(*)")));
    }
    let args = call.args;
    let planned: Vec<HirScalarExpr> = args
        .iter()
        .map(|a| plan_expr(ecx, a, None))
        .collect::<Result<_, _>>()?;
    let types: Vec<ScalarType> = planned
        .iter()
        .map(|p| p.typ(ecx.types).scalar_type)
        .collect();
    let type_names = || -> String {
        args.iter()
            .zip(&types)
            .map(|(a, t)| {
                if is_unknown(ecx, a) {
                    "unknown".to_string()
                } else {
                    t.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let no_such = || PlanError::UnknownFunction(format!("{name}({})", type_names()));
    // An integer argument: smallint and integer (and untyped literals) as integer.
    let integer = |i: usize, columns: &mut Columns| -> Result<usize, PlanError> {
        let e = if is_unknown(ecx, args[i]) {
            plan_expr(ecx, args[i], Some(ScalarType::Int32))?
        } else {
            planned[i].clone()
        };
        let t = e.typ(ecx.types).scalar_type;
        let e = match t {
            ScalarType::Int32 => e,
            ScalarType::Int16 => cast_to(e, t, ScalarType::Int32),
            _ if is_null_literal(&e) => HirScalarExpr::literal_null(ScalarType::Int32),
            _ => return Err(no_such()),
        };
        Ok(columns.column(e))
    };
    let func = match name.as_str() {
        "row_number" => WindowFunc::RowNumber,
        "rank" => WindowFunc::Rank,
        "dense_rank" => WindowFunc::DenseRank,
        "percent_rank" => WindowFunc::PercentRank,
        "cume_dist" => WindowFunc::CumeDist,
        "ntile" => WindowFunc::Ntile,
        "lag" => WindowFunc::Lag,
        "lead" => WindowFunc::Lead,
        "first_value" => WindowFunc::FirstValue,
        "last_value" => WindowFunc::LastValue,
        "nth_value" => WindowFunc::NthValue,
        _ => {
            if set_returning_function(&name) {
                return Err(PlanError::FeatureNotSupported(format!(
                    "OVER is not supported for set-returning function {name}"
                )));
            }
            return Err(PlanError::WrongObjectType(format!(
                "OVER specified, but {name} is not a window function nor an aggregate function"
            )));
        }
    };
    let arg_columns = match (&func, args.len()) {
        (
            WindowFunc::RowNumber
            | WindowFunc::Rank
            | WindowFunc::DenseRank
            | WindowFunc::PercentRank
            | WindowFunc::CumeDist,
            0,
        ) => vec![],
        (WindowFunc::Ntile, 1) => vec![integer(0, columns)?],
        (WindowFunc::FirstValue | WindowFunc::LastValue, 1) => {
            vec![columns.column(planned[0].clone())]
        }
        (WindowFunc::NthValue, 2) => {
            let value = columns.column(planned[0].clone());
            vec![value, integer(1, columns)?]
        }
        (WindowFunc::Lag | WindowFunc::Lead, 1..=3) => {
            // lag(anycompatible, integer, anycompatible): the value and the default
            // take their common type.
            let offset = if args.len() >= 2 {
                integer(1, columns)?
            } else {
                columns.column(HirScalarExpr::literal(Datum::Int32(1), ScalarType::Int32))
            };
            let (value, default) = if args.len() == 3 {
                let (both, _) = plan_homogeneous(ecx, &[args[0], args[2]], &name, None)
                    .map_err(|_| no_such())?;
                (both[0].clone(), both[1].clone())
            } else {
                let t = types[0];
                (planned[0].clone(), HirScalarExpr::literal_null(t))
            };
            vec![columns.column(value), offset, columns.column(default)]
        }
        _ => return Err(no_such()),
    };
    Ok((func, arg_columns))
}

/// Plans a frame clause; `order_types` are the types of the window's ORDER BY keys.
fn plan_frame(
    ecx: &ExprContext,
    frame: Option<&ast::WindowFrame>,
    order_types: &[ScalarType],
) -> Result<WindowFrame, PlanError> {
    let Some(frame) = frame else {
        return Ok(WindowFrame::default());
    };
    let units = match frame.units {
        ast::WindowFrameUnits::Rows => FrameUnits::Rows,
        ast::WindowFrameUnits::Range => FrameUnits::Range,
        ast::WindowFrameUnits::Groups => FrameUnits::Groups,
    };
    let end_ast = frame
        .end_bound
        .clone()
        .unwrap_or(ast::WindowFrameBound::CurrentRow);
    use ast::WindowFrameBound as B;
    // PostgreSQL's grammar checks, in its order and words.
    match (&frame.start_bound, &end_ast) {
        (B::Following(None), _) => {
            return Err(PlanError::Windowing(
                "frame start cannot be UNBOUNDED FOLLOWING".into(),
            ))
        }
        (_, B::Preceding(None)) => {
            return Err(PlanError::Windowing(
                "frame end cannot be UNBOUNDED PRECEDING".into(),
            ))
        }
        (B::CurrentRow, B::Preceding(Some(_))) => {
            return Err(PlanError::Windowing(
                "frame starting from current row cannot have preceding rows".into(),
            ))
        }
        (B::Following(Some(_)), B::Preceding(Some(_)) | B::CurrentRow) => {
            return Err(PlanError::Windowing(
                "frame starting from following row cannot have preceding rows".into(),
            ))
        }
        _ => {}
    }
    let has_offset = |b: &B| matches!(b, B::Preceding(Some(_)) | B::Following(Some(_)));
    if units == FrameUnits::Range
        && (has_offset(&frame.start_bound) || has_offset(&end_ast))
        && order_types.len() != 1
    {
        return Err(PlanError::Windowing(
            "RANGE with offset PRECEDING/FOLLOWING requires exactly one ORDER BY column".into(),
        ));
    }
    if units == FrameUnits::Groups && order_types.is_empty() {
        return Err(PlanError::Windowing(
            "GROUPS mode requires an ORDER BY clause".into(),
        ));
    }
    let start = plan_bound(ecx, &frame.start_bound, units, order_types, "starting")?;
    let end = plan_bound(ecx, &end_ast, units, order_types, "ending")?;
    Ok(WindowFrame { units, start, end })
}

fn plan_bound(
    ecx: &ExprContext,
    bound: &ast::WindowFrameBound,
    units: FrameUnits,
    order_types: &[ScalarType],
    which: &str,
) -> Result<FrameBound, PlanError> {
    let offset = match bound {
        ast::WindowFrameBound::CurrentRow => return Ok(FrameBound::CurrentRow),
        ast::WindowFrameBound::Preceding(None) => return Ok(FrameBound::UnboundedPreceding),
        ast::WindowFrameBound::Following(None) => return Ok(FrameBound::UnboundedFollowing),
        ast::WindowFrameBound::Preceding(Some(e)) | ast::WindowFrameBound::Following(Some(e)) => e,
    };
    let units_name = match units {
        FrameUnits::Rows => "ROWS",
        FrameUnits::Range => "RANGE",
        FrameUnits::Groups => "GROUPS",
    };
    // The offset may not read columns: plan it in an empty scope.
    let empty = Scope::default();
    let ocx = ExprContext::new(ecx.qcx, &empty, &[]).in_clause("window frame offsets");
    let target = match units {
        FrameUnits::Rows | FrameUnits::Groups => ScalarType::Int64,
        FrameUnits::Range => match order_types.first().copied() {
            Some(ScalarType::Int16 | ScalarType::Int32 | ScalarType::Int64) => ScalarType::Int64,
            Some(t @ (ScalarType::Numeric | ScalarType::Float32 | ScalarType::Float64)) => t,
            Some(ScalarType::Timestamp | ScalarType::TimestampTz) => ScalarType::Interval,
            Some(t) => {
                return Err(PlanError::FeatureNotSupported(format!(
                    "RANGE with offset PRECEDING/FOLLOWING is not supported for column type {t}"
                )))
            }
            None => ScalarType::Int64,
        },
    };
    let planned = plan_expr(&ocx, offset, Some(target)).map_err(|e| match e {
        PlanError::UnknownColumn(_) | PlanError::UnknownQualifiedColumn { .. } => {
            PlanError::InvalidColumnReference(format!(
                "argument of {units_name} must not contain variables"
            ))
        }
        other => other,
    })?;
    let t = planned.typ(&[]).scalar_type;
    let compatible = match target {
        // ROWS and GROUPS offsets take assignment casts to bigint, as in PostgreSQL
        // (`ROWS 1.5 PRECEDING` is 2 rows).
        ScalarType::Int64 => {
            matches!(t, ScalarType::Int16 | ScalarType::Int32 | ScalarType::Int64)
                || units != FrameUnits::Range
                    && matches!(
                        t,
                        ScalarType::Numeric | ScalarType::Float32 | ScalarType::Float64
                    )
        }
        ScalarType::Interval => t == ScalarType::Interval,
        _ => {
            t.is_numeric() && !matches!(t, ScalarType::Float32 | ScalarType::Float64) || t == target
        }
    };
    if !compatible && !is_null_literal(&planned) {
        return Err(PlanError::DatatypeMismatch(format!(
            "argument of {units_name} must be type {target}, not type {t}"
        )));
    }
    let mut lowered = cast_to(planned, t, target).lower()?;
    lowered.reduce(&[]);
    let value = match lowered.as_literal() {
        Some(Ok(d)) => d,
        Some(Err(e)) => return Err(PlanError::Eval(e.clone())),
        None => {
            return Err(PlanError::unsupported(format!(
                "a non-constant {units_name} offset"
            )))
        }
    };
    let negative = match value {
        Datum::Null => {
            return Err(PlanError::NullFrameOffset(format!(
                "frame {which} offset must not be null"
            )))
        }
        Datum::Int64(v) => v < 0,
        Datum::Numeric(v) => v.is_sign_negative() && !v.is_zero(),
        Datum::Float32(v) => v < 0.0,
        Datum::Float64(v) => v < 0.0,
        Datum::Interval(iv) => iv.as_micros_approx() < 0,
        _ => false,
    };
    if negative {
        return Err(PlanError::InvalidFrameOffset(match units {
            FrameUnits::Rows | FrameUnits::Groups => {
                format!("frame {which} offset must not be negative")
            }
            FrameUnits::Range => "invalid preceding or following size in window function".into(),
        }));
    }
    let row = Row::pack_slice(&[value]);
    Ok(match bound {
        ast::WindowFrameBound::Preceding(_) => FrameBound::Preceding(row),
        _ => FrameBound::Following(row),
    })
}
