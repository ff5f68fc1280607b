//! The built-in scalar function library as the planner sees it: resolves a function
//! name and its planned arguments to an expression, inserting PostgreSQL's implicit
//! casts. `query::plan_function` handles a few special forms itself (NULLIF, COALESCE,
//! GREATEST/LEAST, CONCAT, version) and asks [`plan_builtin`] for everything else.
//!
//! Each built-in has PostgreSQL's overloads (`pg_proc` signatures), and a call picks
//! one as PostgreSQL's `func_select_candidate` does: the candidates whose parameters
//! the arguments can be implicitly cast to, then the most exact type matches, then the
//! most preferred types (`double precision` for numbers, `text` for strings), then, for
//! untyped literals, a category that the remaining candidates agree on. So `round(int)`
//! is `round(double precision)` and `round(2.5)` is `round(numeric)`, as in PostgreSQL.
//! Untyped literals take the parameter's type, cast at plan time (a malformed literal
//! is an error even if no row is read, as in PostgreSQL).
//!
//! Functions of the current time (`now()`, `current_timestamp`) and random functions
//! are refused with 0A000: a maintained view must give the same answer whenever it is
//! read, so Freshet has no notion of "the current time" inside a query yet.

use std::collections::BTreeSet;

use expr::func::{FloatFunc, NumericFunc, TrimSide};
use expr::{BinaryFunc, RowArena, UnaryFunc, VariadicFunc};
use repr::{Datum, Row, ScalarType};

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
    if let Some(refusal) = refuse(name) {
        return Some(Err(refusal));
    }
    if let Some(result) = plan_polymorphic(name, &args) {
        return Some(result);
    }
    match name {
        "pg_typeof" => return Some(plan_pg_typeof(args)),
        "mz_now" => return Some(plan_mz_now(args)),
        "num_nulls" | "num_nonnulls" => return Some(plan_num_nulls(name, args)),
        "concat_ws" => return Some(plan_concat_ws(args)),
        _ => {}
    }
    let overloads = overloads(name)?;
    Some(plan_call(name, overloads, args))
}

/// Functions PostgreSQL has that Freshet refuses: their value changes from one read
/// to the next.
fn refuse(name: &str) -> Option<PlanError> {
    match name {
        "now"
        | "current_timestamp"
        | "current_date"
        | "current_time"
        | "localtime"
        | "localtimestamp"
        | "transaction_timestamp"
        | "statement_timestamp"
        | "clock_timestamp"
        | "timeofday"
        | "random"
        | "setseed"
        | "random_normal" => Some(PlanError::unsupported(format!("function {name}()"))),
        _ => None,
    }
}

/// `mz_now()`: the logical time of the query (Materialize's), as a `timestamptz`. A
/// one-shot query reads it as its timestamp; a maintained one only in temporal filters
/// (`WHERE mz_now() <= ts + INTERVAL '5 minutes'`, see `expr::temporal`).
fn plan_mz_now(args: Vec<Arg>) -> Result<HirScalarExpr, PlanError> {
    if !args.is_empty() {
        return Err(PlanError::UnknownFunction(format!(
            "mz_now({})",
            args.iter()
                .map(|a| if a.unknown { "unknown" } else { a.typ.name() })
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(HirScalarExpr::CallVariadic {
        func: VariadicFunc::MzNow,
        exprs: vec![],
    })
}

/// What a resolved overload builds from its cast arguments.
type Build = Box<dyn Fn(Vec<HirScalarExpr>) -> Result<HirScalarExpr, PlanError>>;

/// One `pg_proc` signature of a built-in.
struct Overload {
    params: Vec<ScalarType>,
    build: Build,
}

fn ov(
    params: &[ScalarType],
    build: impl Fn(Vec<HirScalarExpr>) -> Result<HirScalarExpr, PlanError> + 'static,
) -> Overload {
    Overload {
        params: params.to_vec(),
        build: Box::new(build),
    }
}

fn unary(params: &[ScalarType], func: UnaryFunc) -> Overload {
    ov(params, move |mut args| Ok(args.remove(0).call_unary(func)))
}

fn binary(params: &[ScalarType], func: BinaryFunc) -> Overload {
    ov(params, move |mut args| {
        let b = args.remove(1);
        Ok(args.remove(0).call_binary(b, func))
    })
}

fn variadic(params: &[ScalarType], func: VariadicFunc) -> Overload {
    ov(params, move |exprs| {
        Ok(HirScalarExpr::CallVariadic { func, exprs })
    })
}

/// An overload PostgreSQL has and Freshet does not implement yet: resolving to it is a
/// 0A000 error rather than a misleading "does not exist".
fn unsupported(params: &[ScalarType], what: &'static str) -> Overload {
    ov(params, move |_| Err(PlanError::unsupported(what)))
}

fn float(params: &[ScalarType], func: FloatFunc) -> Overload {
    unary(params, UnaryFunc::Float(func))
}

fn numeric(params: &[ScalarType], func: NumericFunc) -> Overload {
    unary(params, UnaryFunc::Numeric(func))
}

/// The overloads of the built-in `name`, or `None` if there is no such built-in.
fn overloads(name: &str) -> Option<Vec<Overload>> {
    use ScalarType::{
        Bytes, Date, Float64 as F64, Int32 as I32, Int64 as I64, Interval, Numeric as Num,
        String as S, Time, Timestamp as Ts, TimestampTz as Tstz,
    };
    let unary_float = |func| vec![float(&[F64], func)];
    let float_or_numeric = |f, n| vec![float(&[F64], f), numeric(&[Num], n)];
    Some(match name {
        // Strings.
        "substr" | "substring" => {
            let mut v = vec![
                variadic(&[S, I32], VariadicFunc::Substr),
                variadic(&[S, I32, I32], VariadicFunc::Substr),
                variadic(&[Bytes, I32], VariadicFunc::Substr),
                variadic(&[Bytes, I32, I32], VariadicFunc::Substr),
            ];
            if name == "substring" {
                v.push(unsupported(&[S, S], "substring with a regular expression"));
                v.push(unsupported(
                    &[S, S, S],
                    "substring with a regular expression",
                ));
            }
            v
        }
        "strpos" | "position" => vec![binary(&[S, S], BinaryFunc::Strpos)],
        "btrim" | "ltrim" | "rtrim" => {
            let side = match name {
                "btrim" => TrimSide::Both,
                "ltrim" => TrimSide::Leading,
                _ => TrimSide::Trailing,
            };
            vec![
                variadic(&[S], VariadicFunc::Trim(side)),
                variadic(&[S, S], VariadicFunc::Trim(side)),
                unsupported(&[Bytes, Bytes], "trimming bytea"),
            ]
        }
        "replace" => vec![variadic(&[S, S, S], VariadicFunc::Replace)],
        "overlay" => vec![
            variadic(&[S, S, I32], VariadicFunc::Overlay),
            variadic(&[S, S, I32, I32], VariadicFunc::Overlay),
            unsupported(&[Bytes, Bytes, I32], "overlay of bytea"),
            unsupported(&[Bytes, Bytes, I32, I32], "overlay of bytea"),
        ],
        "split_part" => vec![variadic(&[S, S, I32], VariadicFunc::SplitPart)],
        "left" => vec![binary(&[S, I32], BinaryFunc::Left)],
        "right" => vec![binary(&[S, I32], BinaryFunc::Right)],
        "lpad" | "rpad" => {
            let func = if name == "lpad" {
                VariadicFunc::Lpad
            } else {
                VariadicFunc::Rpad
            };
            vec![variadic(&[S, I32], func), variadic(&[S, I32, S], func)]
        }
        "repeat" => vec![binary(&[S, I32], BinaryFunc::Repeat)],
        "reverse" => vec![unary(&[S], UnaryFunc::Reverse)],
        "initcap" => vec![unary(&[S], UnaryFunc::Initcap)],
        "md5" => vec![unary(&[S], UnaryFunc::Md5), unary(&[Bytes], UnaryFunc::Md5)],
        "starts_with" => vec![binary(&[S, S], BinaryFunc::StartsWith)],
        "ascii" => vec![unary(&[S], UnaryFunc::Ascii)],
        "chr" => vec![unary(&[I32], UnaryFunc::Chr)],
        "octet_length" => vec![
            unary(&[S], UnaryFunc::OctetLength),
            unary(&[Bytes], UnaryFunc::OctetLength),
        ],
        "bit_length" => vec![
            unary(&[S], UnaryFunc::BitLength),
            unary(&[Bytes], UnaryFunc::BitLength),
        ],
        "regexp_replace" => vec![
            variadic(&[S, S, S], VariadicFunc::RegexpReplace),
            variadic(&[S, S, S, S], VariadicFunc::RegexpReplace),
            variadic(&[S, S, S, I32], VariadicFunc::RegexpReplaceAt),
            variadic(&[S, S, S, I32, I32], VariadicFunc::RegexpReplaceAt),
            variadic(&[S, S, S, I32, I32, S], VariadicFunc::RegexpReplaceAt),
        ],
        "to_hex" => vec![
            unary(&[I32], UnaryFunc::ToHex),
            unary(&[I64], UnaryFunc::ToHex),
        ],
        "translate" => vec![variadic(&[S, S, S], VariadicFunc::Translate)],

        // uuid: volatile, see `query::QueryContext::volatile`.
        "gen_random_uuid" => vec![variadic(&[], VariadicFunc::GenRandomUuid)],

        // jsonb.
        "jsonb_typeof" => vec![unary(&[ScalarType::Jsonb], UnaryFunc::JsonbTypeof)],
        "jsonb_array_length" => vec![unary(&[ScalarType::Jsonb], UnaryFunc::JsonbArrayLength)],
        "jsonb_strip_nulls" => vec![unary(&[ScalarType::Jsonb], UnaryFunc::JsonbStripNulls)],
        "jsonb_pretty" => vec![unary(&[ScalarType::Jsonb], UnaryFunc::JsonbPretty)],
        "string_to_array" => vec![
            variadic(&[S, S], VariadicFunc::StringToArray),
            variadic(&[S, S, S], VariadicFunc::StringToArray),
        ],

        // Numbers.
        "round" | "trunc" => {
            let (f, n, scaled) = if name == "round" {
                (FloatFunc::Round, NumericFunc::Round, BinaryFunc::RoundScale)
            } else {
                (FloatFunc::Trunc, NumericFunc::Trunc, BinaryFunc::TruncScale)
            };
            vec![
                float(&[F64], f),
                numeric(&[Num], n),
                binary(&[Num, I32], scaled),
            ]
        }
        "ceil" | "ceiling" => float_or_numeric(FloatFunc::Ceil, NumericFunc::Ceil),
        "floor" => float_or_numeric(FloatFunc::Floor, NumericFunc::Floor),
        "sign" => float_or_numeric(FloatFunc::Sign, NumericFunc::Sign),
        "sqrt" => float_or_numeric(FloatFunc::Sqrt, NumericFunc::Sqrt),
        "exp" => float_or_numeric(FloatFunc::Exp, NumericFunc::Exp),
        "ln" => float_or_numeric(FloatFunc::Ln, NumericFunc::Ln),
        "log10" => float_or_numeric(FloatFunc::Log10, NumericFunc::Log10),
        "log" => {
            let mut v = float_or_numeric(FloatFunc::Log10, NumericFunc::Log10);
            v.push(binary(&[Num, Num], BinaryFunc::LogBase));
            v
        }
        "power" | "pow" => vec![
            binary(&[F64, F64], BinaryFunc::Power),
            binary(&[Num, Num], BinaryFunc::Power),
        ],
        "cbrt" => unary_float(FloatFunc::Cbrt),
        "pi" => vec![ov(&[], |_| {
            Ok(HirScalarExpr::literal(
                Datum::Float64(std::f64::consts::PI),
                F64,
            ))
        })],
        "degrees" => unary_float(FloatFunc::Degrees),
        "radians" => unary_float(FloatFunc::Radians),
        "sin" => unary_float(FloatFunc::Sin),
        "cos" => unary_float(FloatFunc::Cos),
        "tan" => unary_float(FloatFunc::Tan),
        "cot" => unary_float(FloatFunc::Cot),
        "asin" => unary_float(FloatFunc::Asin),
        "acos" => unary_float(FloatFunc::Acos),
        "atan" => unary_float(FloatFunc::Atan),
        "sinh" => unary_float(FloatFunc::Sinh),
        "cosh" => unary_float(FloatFunc::Cosh),
        "tanh" => unary_float(FloatFunc::Tanh),
        "asinh" => unary_float(FloatFunc::Asinh),
        "acosh" => unary_float(FloatFunc::Acosh),
        "atanh" => unary_float(FloatFunc::Atanh),
        "atan2" => vec![binary(&[F64, F64], BinaryFunc::Atan2)],
        "div" => vec![binary(&[Num, Num], BinaryFunc::DivTrunc)],
        "gcd" | "lcm" => {
            let func = if name == "gcd" {
                BinaryFunc::Gcd
            } else {
                BinaryFunc::Lcm
            };
            vec![
                binary(&[I32, I32], func),
                binary(&[I64, I64], func),
                binary(&[Num, Num], func),
            ]
        }
        "scale" => vec![numeric(&[Num], NumericFunc::Scale)],
        "min_scale" => vec![numeric(&[Num], NumericFunc::MinScale)],
        "trim_scale" => vec![numeric(&[Num], NumericFunc::TrimScale)],

        // Dates and times.
        "date_trunc" => vec![
            binary(&[S, Ts], BinaryFunc::DateTrunc),
            binary(&[S, Tstz], BinaryFunc::DateTrunc),
            binary(&[S, Interval], BinaryFunc::DateTrunc),
            unsupported(&[S, Tstz, S], "date_trunc in a named time zone"),
        ],
        "date_part" => vec![
            binary(&[S, Ts], BinaryFunc::DatePart),
            binary(&[S, Tstz], BinaryFunc::DatePart),
            // PostgreSQL's date_part(text, date) is date_part($1, $2::timestamp).
            ov(&[S, Date], |mut args| {
                let date = args.remove(1).call_unary(UnaryFunc::Cast(Ts));
                Ok(args.remove(0).call_binary(date, BinaryFunc::DatePart))
            }),
            binary(&[S, Interval], BinaryFunc::DatePart),
            binary(&[S, Time], BinaryFunc::DatePart),
        ],
        // EXTRACT(field FROM x): query::plan_special_call passes the field as text.
        "extract" => vec![
            binary(&[S, Date], BinaryFunc::Extract),
            binary(&[S, Time], BinaryFunc::Extract),
            binary(&[S, Ts], BinaryFunc::Extract),
            binary(&[S, Tstz], BinaryFunc::Extract),
            binary(&[S, Interval], BinaryFunc::Extract),
        ],
        "to_char" => vec![
            binary(&[Ts, S], BinaryFunc::ToChar),
            binary(&[Tstz, S], BinaryFunc::ToChar),
            unsupported(&[Interval, S], "to_char of an interval"),
            unsupported(&[I32, S], "to_char of a number"),
            unsupported(&[I64, S], "to_char of a number"),
            unsupported(&[ScalarType::Float32, S], "to_char of a number"),
            unsupported(&[F64, S], "to_char of a number"),
            unsupported(&[Num, S], "to_char of a number"),
        ],
        "age" => vec![
            binary(&[Ts, Ts], BinaryFunc::Age),
            binary(&[Tstz, Tstz], BinaryFunc::Age),
            unsupported(&[Ts], "age() of one argument (the current date)"),
            unsupported(&[Tstz], "age() of one argument (the current date)"),
        ],
        "make_date" => vec![variadic(&[I32, I32, I32], VariadicFunc::MakeDate)],
        "make_timestamp" => vec![variadic(
            &[I32, I32, I32, I32, I32, F64],
            VariadicFunc::MakeTimestamp,
        )],
        // The session time zone is UTC.
        "make_timestamptz" => vec![
            ov(&[I32, I32, I32, I32, I32, F64], |exprs| {
                Ok(HirScalarExpr::CallVariadic {
                    func: VariadicFunc::MakeTimestamp,
                    exprs,
                }
                .call_unary(UnaryFunc::Cast(Tstz)))
            }),
            unsupported(
                &[I32, I32, I32, I32, I32, F64, S],
                "make_timestamptz in a named time zone",
            ),
        ],
        "make_interval" => {
            // make_interval(years, months, weeks, days, hours, mins, secs), each
            // defaulting to zero.
            const PARAMS: [ScalarType; 7] = [I32, I32, I32, I32, I32, I32, F64];
            (0..=PARAMS.len())
                .map(|n| {
                    ov(&PARAMS[..n], |mut exprs| {
                        while exprs.len() < PARAMS.len() - 1 {
                            exprs.push(HirScalarExpr::literal(Datum::Int32(0), I32));
                        }
                        if exprs.len() < PARAMS.len() {
                            exprs.push(HirScalarExpr::literal(Datum::Float64(0.0), F64));
                        }
                        Ok(HirScalarExpr::CallVariadic {
                            func: VariadicFunc::MakeInterval,
                            exprs,
                        })
                    })
                })
                .collect()
        }
        "date_bin" => vec![
            variadic(&[Interval, Ts, Ts], VariadicFunc::DateBin),
            variadic(&[Interval, Tstz, Tstz], VariadicFunc::DateBin),
        ],
        "justify_days" => vec![unary(&[Interval], UnaryFunc::JustifyDays)],
        "justify_hours" => vec![unary(&[Interval], UnaryFunc::JustifyHours)],
        "justify_interval" => vec![unary(&[Interval], UnaryFunc::JustifyInterval)],
        "to_timestamp" => vec![
            unary(&[F64], UnaryFunc::ToTimestamp),
            unsupported(&[S, S], "to_timestamp(text, text)"),
        ],
        // Freshet has no infinite dates, timestamps or intervals.
        "isfinite" => [Date, Ts, Tstz, Interval]
            .into_iter()
            .map(|t| {
                ov(&[t], |mut args| {
                    let x = args.remove(0);
                    Ok(HirScalarExpr::If {
                        cond: Box::new(x.call_unary(UnaryFunc::IsNull)),
                        then: Box::new(HirScalarExpr::literal_null(ScalarType::Bool)),
                        els: Box::new(HirScalarExpr::literal(Datum::True, ScalarType::Bool)),
                    })
                })
            })
            .collect(),
        _ => return None,
    })
}

/// PostgreSQL's type categories (`pg_type.typcategory`), which overload resolution
/// consults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    Boolean,
    Numeric,
    String,
    DateTime,
    Timespan,
    UserDefined,
    Array,
}

fn category(t: ScalarType) -> Category {
    use ScalarType::*;
    match t {
        Bool => Category::Boolean,
        Int16 | Int32 | Int64 | Float32 | Float64 | Numeric => Category::Numeric,
        String => Category::String,
        Date | Time | Timestamp | TimestampTz => Category::DateTime,
        Interval => Category::Timespan,
        Bytes | Uuid | Jsonb => Category::UserDefined,
        Array(_) => Category::Array,
    }
}

/// The preferred type of its category (`pg_type.typispreferred`).
fn is_preferred(t: ScalarType) -> bool {
    use ScalarType::*;
    matches!(t, Bool | Float64 | String | TimestampTz | Interval)
}

/// Whether PostgreSQL casts `from` to `to` implicitly (`pg_cast.castcontext = 'i'`).
pub(crate) fn implicit_cast(from: ScalarType, to: ScalarType) -> bool {
    use ScalarType::*;
    from == to
        || matches!(
            (from, to),
            (Int16, Int32 | Int64 | Float32 | Float64 | Numeric)
                | (Int32, Int64 | Float32 | Float64 | Numeric)
                | (Int64, Float32 | Float64 | Numeric)
                | (Numeric, Float32 | Float64)
                | (Float32, Float64)
                | (Date, Timestamp | TimestampTz)
                | (Timestamp, TimestampTz)
        )
}

/// The argument types as PostgreSQL names them in errors: `unknown` for untyped
/// literals.
fn signature(name: &str, args: &[Arg]) -> String {
    let types: Vec<&str> = args
        .iter()
        .map(|a| if a.unknown { "unknown" } else { a.typ.name() })
        .collect();
    format!("{name}({})", types.join(", "))
}

/// PostgreSQL's `func_select_candidate`: narrows `candidates` (indexes into
/// `overloads`, all of which accept the arguments) to one, or returns them all if it
/// cannot.
fn select_candidate(overloads: &[Overload], candidates: Vec<usize>, args: &[Arg]) -> Vec<usize> {
    // Keeps the candidates with the highest score, or all if none scores.
    let keep_best = |candidates: Vec<usize>, score: &dyn Fn(&Overload) -> usize| {
        let best = candidates
            .iter()
            .map(|&c| score(&overloads[c]))
            .max()
            .unwrap_or(0);
        candidates
            .into_iter()
            .filter(|&c| score(&overloads[c]) == best)
            .collect::<Vec<_>>()
    };
    let known = |i: usize| !args[i].unknown;
    // The most exact matches on typed arguments.
    let candidates = keep_best(candidates, &|o| {
        (0..args.len())
            .filter(|&i| known(i) && o.params[i] == args[i].typ)
            .count()
    });
    if candidates.len() <= 1 {
        return candidates;
    }
    // The most exact or preferred types where a typed argument needs a cast.
    let candidates = keep_best(candidates, &|o| {
        (0..args.len())
            .filter(|&i| {
                known(i)
                    && (o.params[i] == args[i].typ
                        || (is_preferred(o.params[i])
                            && category(o.params[i]) == category(args[i].typ)))
            })
            .count()
    });
    if candidates.len() <= 1 || args.iter().all(|a| !a.unknown) {
        return candidates;
    }
    // Untyped arguments: the string category if any candidate takes a string there,
    // else the category all candidates agree on, preferring preferred types.
    let mut resolved = Vec::new();
    for (i, _) in args.iter().enumerate().filter(|(_, a)| a.unknown) {
        let mut slot: Option<(Category, bool)> = None;
        let mut conflict = false;
        for &c in &candidates {
            let t = overloads[c].params[i];
            let (cat, preferred) = (category(t), is_preferred(t));
            slot = Some(match slot {
                None => (cat, preferred),
                Some((s, p)) if s == cat => (s, p || preferred),
                Some(_) if cat == Category::String => (cat, preferred),
                Some(s) => {
                    conflict = true;
                    s
                }
            });
        }
        match slot {
            Some((cat, preferred)) if !conflict || cat == Category::String => {
                resolved.push((i, cat, preferred))
            }
            _ => {
                resolved.clear();
                break;
            }
        }
    }
    let mut candidates = candidates;
    if !resolved.is_empty() {
        let kept: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&c| {
                resolved.iter().all(|&(i, cat, preferred)| {
                    let t = overloads[c].params[i];
                    category(t) == cat && (!preferred || is_preferred(t))
                })
            })
            .collect();
        if kept.len() == 1 {
            return kept;
        }
        if !kept.is_empty() {
            candidates = kept;
        }
    }
    // Last: if every typed argument has the same type, try it for the untyped ones too.
    let known_types: BTreeSet<ScalarType> =
        args.iter().filter(|a| !a.unknown).map(|a| a.typ).collect();
    if known_types.len() == 1 {
        let t = known_types.into_iter().next().unwrap_or(ScalarType::String);
        let matching: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&c| overloads[c].params.iter().all(|&p| implicit_cast(t, p)))
            .collect();
        if matching.len() == 1 {
            return matching;
        }
    }
    candidates
}

/// Resolves `name(args)` among `overloads` and builds the call.
fn plan_call(
    name: &str,
    overloads: Vec<Overload>,
    args: Vec<Arg>,
) -> Result<HirScalarExpr, PlanError> {
    let candidates: Vec<usize> = overloads
        .iter()
        .enumerate()
        .filter(|(_, o)| {
            o.params.len() == args.len()
                && o.params
                    .iter()
                    .zip(&args)
                    .all(|(&p, a)| a.unknown || implicit_cast(a.typ, p))
        })
        .map(|(i, _)| i)
        .collect();
    let chosen = match candidates.len() {
        0 => {
            return Err(PlanError::UnknownFunction(signature(name, &args)));
        }
        1 => candidates[0],
        _ => match select_candidate(&overloads, candidates, &args)[..] {
            [one] => one,
            // PostgreSQL: 42725 `function f(unknown) is not unique`.
            _ => {
                return Err(PlanError::DatatypeMismatch(format!(
                    "function {} is not unique",
                    signature(name, &args)
                )))
            }
        },
    };
    let overload = &overloads[chosen];
    let exprs = args
        .into_iter()
        .zip(&overload.params)
        .map(|(a, &p)| coerce(a, p))
        .collect::<Result<Vec<_>, _>>()?;
    (overload.build)(exprs)
}

/// The argument as type `to`: an untyped literal is read as a `to` now, a typed value
/// is cast implicitly.
fn coerce(arg: Arg, to: ScalarType) -> Result<HirScalarExpr, PlanError> {
    if arg.typ == to {
        return Ok(arg.expr);
    }
    if arg.unknown {
        if let HirScalarExpr::Literal(row, _) = &arg.expr {
            let arena = RowArena::new();
            let datum = row.iter().next().unwrap_or(Datum::Null);
            let value = expr::func::cast(datum, to, &arena)?;
            return Ok(HirScalarExpr::Literal(
                Row::pack_slice(&[value]),
                to.nullable(value.is_null()),
            ));
        }
    }
    Ok(arg.expr.call_unary(UnaryFunc::Cast(to)))
}

/// The built-ins of PostgreSQL's polymorphic signatures (`anyarray`, `anyelement`,
/// `"any"`) over arrays and jsonb, or `None` if `name` is not one. An untyped literal
/// in an `anyarray` or `anyelement` position takes the type the other arguments give
/// it; where nothing does, the call is PostgreSQL's 42804 `could not determine
/// polymorphic type because input has type unknown`.
fn plan_polymorphic(name: &str, args: &[Arg]) -> Option<Result<HirScalarExpr, PlanError>> {
    use ScalarType::{Int32, String as S};
    let no_such = || PlanError::UnknownFunction(signature(name, args));
    let polymorphic_unknown = || {
        PlanError::IndeterminateDatatype(
            "could not determine polymorphic type because input has type unknown".into(),
        )
    };
    // The array argument at `i`: its array type (an untyped literal takes `elem`'s
    // array type if known).
    let array_at = |i: usize, elem: Option<ScalarType>| -> Result<ScalarType, PlanError> {
        let a = &args[i];
        if a.unknown {
            return elem
                .and_then(ScalarType::array_of)
                .ok_or_else(polymorphic_unknown);
        }
        match a.typ {
            ScalarType::Array(_) => Ok(a.typ),
            _ => Err(no_such()),
        }
    };
    let arg = |i: usize, t: ScalarType| coerce(clone_arg(&args[i]), t);
    let typed_elem = |i: usize| (!args[i].unknown).then_some(args[i].typ);
    let result = (|| -> Result<Option<HirScalarExpr>, PlanError> {
        Ok(Some(match (name, args.len()) {
            ("array_length" | "array_lower" | "array_upper", 2) => {
                let array = array_at(0, None)?;
                if !args[1].unknown && !implicit_cast(args[1].typ, Int32) {
                    return Err(no_such());
                }
                let func = match name {
                    "array_length" => BinaryFunc::ArrayLength,
                    "array_lower" => BinaryFunc::ArrayLower,
                    _ => BinaryFunc::ArrayUpper,
                };
                arg(0, array)?.call_binary(arg(1, Int32)?, func)
            }
            ("cardinality" | "array_ndims" | "array_dims", 1) => {
                let array = array_at(0, None)?;
                arg(0, array)?.call_unary(match name {
                    "cardinality" => UnaryFunc::Cardinality,
                    "array_ndims" => UnaryFunc::ArrayNdims,
                    _ => UnaryFunc::ArrayDims,
                })
            }
            ("jsonb_extract_path" | "jsonb_extract_path_text", n) if n >= 2 => {
                // `jsonb_extract_path(j, VARIADIC text[])` is `j #> ARRAY[...]`.
                if !args[0].unknown && args[0].typ != ScalarType::Jsonb
                    || args[1..].iter().any(|a| !a.unknown && a.typ != S)
                {
                    return Err(no_such());
                }
                let path = HirScalarExpr::CallVariadic {
                    func: VariadicFunc::ArrayCreate { elem_type: S },
                    exprs: (1..n).map(|i| arg(i, S)).collect::<Result<_, _>>()?,
                };
                arg(0, ScalarType::Jsonb)?.call_binary(
                    path,
                    if name == "jsonb_extract_path" {
                        BinaryFunc::JsonbPath
                    } else {
                        BinaryFunc::JsonbPathText
                    },
                )
            }
            ("array_to_string", 2 | 3) => {
                let array = array_at(0, None)?;
                if args[1..].iter().any(|a| !a.unknown && a.typ != S) {
                    return Err(no_such());
                }
                let mut exprs = vec![arg(0, array)?];
                for i in 1..args.len() {
                    exprs.push(arg(i, S)?);
                }
                HirScalarExpr::CallVariadic {
                    func: VariadicFunc::ArrayToString,
                    exprs,
                }
            }
            ("array_position" | "array_remove", _) if (2..=3).contains(&args.len()) => {
                if name == "array_remove" && args.len() != 2 {
                    return Err(no_such());
                }
                let array = array_at(0, typed_elem(1))?;
                let elem = array.element_type().unwrap_or(S);
                if let Some(t) = typed_elem(1) {
                    if !implicit_cast(t, elem) {
                        return Err(no_such());
                    }
                }
                let mut exprs = vec![arg(0, array)?, arg(1, elem)?];
                if args.len() == 3 {
                    if !args[2].unknown && !implicit_cast(args[2].typ, Int32) {
                        return Err(no_such());
                    }
                    exprs.push(arg(2, Int32)?);
                }
                HirScalarExpr::CallVariadic {
                    func: if name == "array_position" {
                        VariadicFunc::ArrayPosition
                    } else {
                        VariadicFunc::ArrayRemove
                    },
                    exprs,
                }
            }
            ("array_append" | "array_prepend" | "array_cat", 2) => {
                let (ai, ei) = if name == "array_prepend" {
                    (1, 0)
                } else {
                    (0, 1)
                };
                if name == "array_cat" {
                    let array = match (args[0].unknown, args[1].unknown) {
                        (false, _) => array_at(0, None)?,
                        (true, false) => array_at(1, None)?,
                        (true, true) => return Err(polymorphic_unknown()),
                    };
                    if !args[1].unknown && args[1].typ != array
                        || !args[0].unknown && args[0].typ != array
                    {
                        return Err(no_such());
                    }
                    return Ok(Some(
                        arg(0, array)?.call_binary(arg(1, array)?, BinaryFunc::ArrayConcat),
                    ));
                }
                let array = array_at(ai, typed_elem(ei))?;
                let elem = array.element_type().unwrap_or(S);
                if typed_elem(ei).is_some_and(|t| !implicit_cast(t, elem)) {
                    return Err(no_such());
                }
                let (a, e) = (arg(ai, array)?, arg(ei, elem)?);
                if name == "array_prepend" {
                    e.call_binary(a, BinaryFunc::ArrayPrepend)
                } else {
                    a.call_binary(e, BinaryFunc::ArrayAppend)
                }
            }
            ("to_jsonb", 1) => {
                if args[0].unknown {
                    return Err(polymorphic_unknown());
                }
                clone_arg(&args[0]).expr.call_unary(UnaryFunc::ToJsonb)
            }
            ("jsonb_build_array" | "jsonb_build_object", _) => {
                // `VARIADIC "any"`: untyped literals are text.
                let exprs = args
                    .iter()
                    .map(|a| {
                        if a.unknown {
                            coerce(clone_arg(a), S)
                        } else {
                            Ok(clone_arg(a).expr)
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                HirScalarExpr::CallVariadic {
                    func: if name == "jsonb_build_array" {
                        VariadicFunc::JsonbBuildArray
                    } else {
                        VariadicFunc::JsonbBuildObject
                    },
                    exprs,
                }
            }
            (
                "array_length"
                | "array_lower"
                | "array_upper"
                | "cardinality"
                | "array_ndims"
                | "array_dims"
                | "jsonb_extract_path"
                | "jsonb_extract_path_text"
                | "array_to_string"
                | "array_position"
                | "array_remove"
                | "array_append"
                | "array_prepend"
                | "array_cat"
                | "to_jsonb",
                _,
            ) => return Err(no_such()),
            _ => return Ok(None),
        }))
    })();
    result.transpose()
}

fn clone_arg(a: &Arg) -> Arg {
    Arg {
        expr: a.expr.clone(),
        typ: a.typ,
        unknown: a.unknown,
    }
}

/// `pg_typeof(x)`: the name of the argument's type, known when the query is planned.
fn plan_pg_typeof(args: Vec<Arg>) -> Result<HirScalarExpr, PlanError> {
    match &args[..] {
        [a] => {
            let name = if a.unknown { "unknown" } else { a.typ.name() };
            Ok(HirScalarExpr::literal(
                Datum::String(name),
                ScalarType::String,
            ))
        }
        _ => Err(PlanError::UnknownFunction(signature("pg_typeof", &args))),
    }
}

/// `num_nulls(...)` and `num_nonnulls(...)`: any arguments, at least one.
fn plan_num_nulls(name: &str, args: Vec<Arg>) -> Result<HirScalarExpr, PlanError> {
    if args.is_empty() {
        return Err(PlanError::UnknownFunction(format!("{name}()")));
    }
    Ok(HirScalarExpr::CallVariadic {
        func: if name == "num_nulls" {
            VariadicFunc::NumNulls
        } else {
            VariadicFunc::NumNonNulls
        },
        exprs: args.into_iter().map(|a| a.expr).collect(),
    })
}

/// `concat_ws(separator text, VARIADIC "any")`.
fn plan_concat_ws(args: Vec<Arg>) -> Result<HirScalarExpr, PlanError> {
    // The separator, then at least one value.
    let separator_ok = args
        .first()
        .is_some_and(|a| a.unknown || a.typ == ScalarType::String);
    if !separator_ok || args.len() < 2 {
        return Err(PlanError::UnknownFunction(signature("concat_ws", &args)));
    }
    let mut args = args.into_iter();
    let mut exprs = Vec::new();
    if let Some(sep) = args.next() {
        exprs.push(coerce(sep, ScalarType::String)?);
    }
    exprs.extend(args.map(|a| a.expr));
    Ok(HirScalarExpr::CallVariadic {
        func: VariadicFunc::ConcatWs,
        exprs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(typ: ScalarType) -> Arg {
        Arg {
            expr: HirScalarExpr::literal_null(typ),
            typ,
            unknown: false,
        }
    }

    fn literal(s: &'static str) -> Arg {
        Arg {
            expr: HirScalarExpr::literal(Datum::String(s), ScalarType::String),
            typ: ScalarType::String,
            unknown: true,
        }
    }

    fn result_type(name: &str, args: Vec<Arg>) -> Result<ScalarType, PlanError> {
        plan_builtin(name, args)
            .expect("a built-in")
            .map(|e| e.typ(&[]).scalar_type)
    }

    #[test]
    fn overloads_resolve_as_in_postgres() {
        use ScalarType::*;
        // From PostgreSQL 15's pg_typeof.
        assert_eq!(result_type("round", vec![typed(Int32)]), Ok(Float64));
        assert_eq!(result_type("round", vec![typed(Numeric)]), Ok(Numeric));
        assert_eq!(result_type("round", vec![literal("1.5")]), Ok(Float64));
        assert_eq!(
            result_type("round", vec![typed(Numeric), typed(Int32)]),
            Ok(Numeric)
        );
        assert_eq!(result_type("sqrt", vec![typed(Int64)]), Ok(Float64));
        assert_eq!(
            result_type("log", vec![typed(Int32), typed(Int32)]),
            Ok(Numeric)
        );
        assert_eq!(
            result_type("gcd", vec![typed(Int16), typed(Int32)]),
            Ok(Int32)
        );
        assert_eq!(
            result_type("gcd", vec![typed(Int32), typed(Int64)]),
            Ok(Int64)
        );
        assert_eq!(
            result_type("power", vec![typed(Int32), typed(Int32)]),
            Ok(Float64)
        );
        assert_eq!(
            result_type("date_trunc", vec![literal("day"), typed(Date)]),
            Ok(TimestampTz)
        );
        assert_eq!(
            result_type("date_trunc", vec![literal("day"), typed(Timestamp)]),
            Ok(Timestamp)
        );
        assert_eq!(
            result_type("date_part", vec![literal("day"), typed(Date)]),
            Ok(Float64)
        );
        assert_eq!(result_type("md5", vec![literal("abc")]), Ok(String));
        assert_eq!(
            result_type("substr", vec![typed(Bytes), typed(Int16)]),
            Ok(Bytes)
        );
        assert_eq!(
            result_type(
                "regexp_replace",
                vec![literal("a"), literal("b"), literal("c"), literal("g")]
            ),
            Ok(String)
        );
        assert_eq!(
            result_type("make_interval", vec![typed(Int32)]),
            Ok(Interval)
        );
        assert_eq!(result_type("pi", vec![]), Ok(Float64));
    }

    #[test]
    fn unresolvable_calls_are_errors_like_postgres() {
        use ScalarType::*;
        let err = |name: &str, args| result_type(name, args).unwrap_err();
        let e = err("round", vec![typed(Float64), typed(Int32)]);
        assert_eq!(
            (e.sqlstate(), e.to_string()),
            (
                "42883",
                "function round(double precision, integer) does not exist".into()
            )
        );
        let e = err("lpad", vec![literal("x"), typed(Int64)]);
        assert_eq!(
            e.to_string(),
            "function lpad(unknown, bigint) does not exist"
        );
        let e = err("date_part", vec![literal("day"), literal("2024-01-01")]);
        assert_eq!(
            e.to_string(),
            "function date_part(unknown, unknown) is not unique"
        );
        let e = err("substr", vec![literal("abc"), literal("x")]);
        assert_eq!(
            (e.sqlstate(), e.to_string()),
            (
                "22P02",
                "invalid input syntax for type integer: \"x\"".into()
            )
        );
        assert_eq!(err("now", vec![]).sqlstate(), "0A000");
        assert_eq!(err("random", vec![]).sqlstate(), "0A000");
        assert_eq!(err("age", vec![typed(Timestamp)]).sqlstate(), "0A000");
        assert_eq!(
            err("to_char", vec![typed(Int32), literal("999")]).sqlstate(),
            "0A000"
        );
        assert_eq!(err("num_nulls", vec![]).sqlstate(), "42883");
        assert!(plan_builtin("no_such_function", vec![]).is_none());
    }

    #[test]
    fn untyped_literals_are_read_as_the_parameter_type() {
        let planned = plan_builtin("left", vec![literal("abc"), literal("2")])
            .unwrap()
            .unwrap();
        let HirScalarExpr::CallBinary { expr2, .. } = planned else {
            panic!("not a binary call: {planned:?}");
        };
        assert_eq!(
            *expr2,
            HirScalarExpr::literal(Datum::Int32(2), ScalarType::Int32)
        );
        assert_eq!(
            result_type("pg_typeof", vec![literal("x")]),
            Ok(ScalarType::String)
        );
    }
}
