//! MIR optimizer transforms, each a small module with its own tests.
//!
//! [`optimize`] runs them to a fixed point (bounded): fusion first so that later
//! transforms see whole operators, then constant folding and predicate pushdown.

pub mod fold_constants;
pub mod fusion;
pub mod inline_let;
pub mod join_simplify;
pub mod predicate_pushdown;

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
        if expr == before {
            break;
        }
    }
    expr
}
