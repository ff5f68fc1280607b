//! MIR optimizer transforms, each a small module with its own tests.
//!
//! [`optimize`] runs them to a fixed point (at most 8 rounds), in this order:
//!
//! 1. [`inline_let`]: bindings used once (or cheap) are substituted;
//! 2. [`fusion`]: adjacent filters, maps and projects merge;
//! 3. [`fold_constants`]: literal expressions and operators over constants fold;
//! 4. [`join_simplify`]: nested joins flatten, unit inputs disappear;
//! 5. [`predicate_pushdown`]: filters move into joins (as equivalences) and inputs;
//! 6. [`reduce_elision`]: a reduce grouped by a unique key of its input (see
//!    [`unique_keys`]) becomes a map;
//! 7. [`literal_lifting`]: literal columns leave joins, reductions and unions;
//! 8. [`projection_pushdown`]: columns nobody reads are dropped where they are made;
//! 9. [`cse`]: repeated relations are bound once, repeated scalars computed once.
//!
//! A last [`fusion`] merges the projections the later steps leave. Join ordering is
//! chosen when MIR becomes LIR (`crate::lir`). Every transform keeps the expression's
//! output, NULLs and errors included (each module's contract says how).

pub mod cse;
pub mod fold_constants;
pub mod fusion;
pub mod inline_let;
pub mod join_simplify;
pub mod literal_lifting;
pub mod predicate_pushdown;
pub mod projection_pushdown;
pub mod reduce_elision;
pub mod unique_keys;

use expr::MirRelationExpr;

/// The optimizer pipeline.
pub fn optimize(mut expr: MirRelationExpr) -> MirRelationExpr {
    for _ in 0..8 {
        let before = expr.clone();
        inline_let::inline(&mut expr);
        fusion::fuse(&mut expr);
        fold_constants::fold(&mut expr);
        join_simplify::simplify(&mut expr);
        predicate_pushdown::pushdown(&mut expr);
        reduce_elision::elide(&mut expr);
        literal_lifting::lift(&mut expr);
        projection_pushdown::pushdown(&mut expr);
        cse::relations(&mut expr);
        cse::scalars(&mut expr);
        if expr == before {
            break;
        }
    }
    // The transforms above leave projections for fusion to merge.
    fusion::fuse(&mut expr);
    expr
}
