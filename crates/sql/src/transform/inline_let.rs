//! Let inlining: a binding used once (or never, or bound to something as cheap as a
//! `Get` or a constant) is substituted into its body, so later transforms see through
//! it. Bindings used more than once stay, so their value is computed once.

use expr::MirRelationExpr;

pub fn inline(expr: &mut MirRelationExpr) {
    for child in expr.children_mut() {
        inline(child);
    }
    if let MirRelationExpr::Let { id, value, body } = expr {
        let uses = body.count_uses(*id);
        let cheap = matches!(
            **value,
            MirRelationExpr::Get { .. } | MirRelationExpr::GetLocal { .. }
        ) || matches!(&**value, MirRelationExpr::Constant { rows: Ok(rows), .. } if rows.len() <= 1);
        if uses <= 1 || cheap {
            let (id, value) = (*id, (**value).clone());
            let mut body = std::mem::replace(
                &mut **body,
                MirRelationExpr::constant(vec![], Default::default()),
            );
            body.substitute_local(id, &value);
            *expr = body;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use repr::{GlobalId, RelationType, ScalarType};

    #[test]
    fn inlines_single_uses_and_keeps_shared_values() {
        let get = MirRelationExpr::Get {
            id: GlobalId::User(1),
            typ: RelationType::new(vec![ScalarType::Int32.nullable(true)]),
            name: "t".into(),
        };
        let (local, binding) = get.clone().distinct().bind();
        let mut once = binding.wrap(local.clone().negate());
        inline(&mut once);
        assert_eq!(once, get.clone().distinct().negate());
        let (local, binding) = get.clone().distinct().bind();
        let mut twice = binding.wrap(local.clone().union(local.negate()));
        inline(&mut twice);
        assert!(matches!(twice, MirRelationExpr::Let { .. }), "{twice}");
    }
}
