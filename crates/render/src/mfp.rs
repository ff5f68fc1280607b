//! `Plan::Mfp` (and the MFP of `Plan::Get`): map, filter and project each row in one
//! pass; evaluation errors go to the error collection.

use expr::{MapFilterProject, RowArena};
use repr::RowPacker;

use crate::{split_results, CollectionBundle, RenderTime};

pub fn render_mfp<T: RenderTime>(
    input: CollectionBundle<'_, T>,
    mfp: MapFilterProject,
) -> CollectionBundle<'_, T> {
    if mfp.is_identity() {
        return input;
    }
    let mut packer = RowPacker::new();
    let results = input.oks.flat_map(move |row| {
        let arena = RowArena::new();
        mfp.evaluate(&row, &arena, &mut packer).transpose()
    });
    let out = split_results(results);
    CollectionBundle {
        oks: out.oks,
        errs: input.errs.concat(out.errs),
    }
}
