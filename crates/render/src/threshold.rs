//! `Plan::Threshold`: keeps rows whose multiplicity is positive.

use repr::Diff;

use crate::{CollectionBundle, RenderTime};

pub fn render_threshold<T: RenderTime>(input: CollectionBundle<'_, T>) -> CollectionBundle<'_, T> {
    let oks = input.oks.threshold_named(
        "Threshold",
        |_row, count: &Diff| if *count > 0 { *count } else { 0 },
    );
    CollectionBundle {
        oks,
        errs: input.errs,
    }
}
