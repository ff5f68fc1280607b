//! The join's matching work, done in bounded pieces even within one key.
//!
//! Differential's cursor join forms the whole cross product of a key's two histories before
//! it yields, so a key matched by many rows on both sides (every row of a cross join shares
//! the empty key) builds its entire output in memory: a three-way cross join of 1,000 rows
//! is 10^9 rows at once, and the process runs out of memory before a cancel or a downstream
//! filter can act. [`ChunkedJoin`] emits at most [`CHUNK`] rows per step and remembers where
//! it stopped inside the key, so the driver's fuel bounds the work per activation, the
//! operators downstream (the join's filter, the count) consume the rows as they come, and a
//! dropped dataflow stops within one step.

use std::cmp::Ordering;

use differential_dataflow::lattice::Lattice;
use differential_dataflow::operators::join::{Fresh, JoinTactic};
use differential_dataflow::trace::cursor::{cursor_list, CursorList};
use differential_dataflow::trace::{Cursor, Navigable};
use repr::{Diff, Row, RowPacker};

/// The most output rows one step of a join unit produces (the driver asks for steps until
/// its fuel, about a million rows, is spent).
pub const CHUNK: usize = 16_384;

/// A key whose cross product is at least this many pairs has its histories copied out of
/// the batches, so that later steps resume it without re-reading them; smaller keys are
/// joined in one go by reference.
const OWNED_PRODUCT: usize = 1 << 16;

/// The [`JoinTactic`] of [`crate::join`]: output rows are the two matched rows side by side.
pub struct ChunkedJoin<B0, B1> {
    _marker: std::marker::PhantomData<(B0, B1)>,
}

impl<B0, B1> Default for ChunkedJoin<B0, B1> {
    fn default() -> Self {
        ChunkedJoin {
            _marker: std::marker::PhantomData,
        }
    }
}

/// One update of a key's history: the value, its time and its multiplicity.
type Update<V, T> = (V, T, Diff);

impl<T, B0, B1> JoinTactic<T, B0, B1, Vec<(Row, T, Diff)>> for ChunkedJoin<B0, B1>
where
    T: Lattice + timely::progress::Timestamp,
    B0: Navigable + 'static,
    B1: Navigable + 'static,
    for<'a> B0::Cursor: Cursor<Key<'a> = &'a Row, Val<'a> = &'a Row, Time = T, Diff = Diff>,
    for<'a> B1::Cursor: Cursor<Key<'a> = &'a Row, Val<'a> = &'a Row, Time = T, Diff = Diff>,
{
    fn prep(
        &mut self,
        input0: Vec<B0>,
        input1: Vec<B1>,
        fresh: Fresh,
        meet: T,
    ) -> Box<dyn Iterator<Item = Vec<(Row, T, Diff)>>> {
        let (cursor0, storage0) = cursor_list(input0);
        let (cursor1, storage1) = cursor_list(input1);
        // The side that was there before the fresh batch is advanced to the batch's lower
        // bound: the joined times are at or beyond it anyway, and its history collapses.
        let (advance0, advance1) = match fresh {
            Fresh::Input0 => (false, true),
            Fresh::Input1 => (true, false),
        };
        Box::new(JoinUnit {
            cursor0,
            storage0,
            cursor1,
            storage1,
            meet,
            advance0,
            advance1,
            big_key: None,
            done: false,
        })
    }
}

/// A key's product being emitted over several steps, from copies of its histories.
struct BigKey<T> {
    left: Vec<Update<Row, T>>,
    right: Vec<Update<Row, T>>,
    /// The next pair to emit.
    i: usize,
    j: usize,
}

/// The join of a fresh batch with the other side's trace, as an iterator of output chunks.
struct JoinUnit<C0: Cursor, C1: Cursor> {
    cursor0: CursorList<C0>,
    storage0: Vec<C0::Storage>,
    cursor1: CursorList<C1>,
    storage1: Vec<C1::Storage>,
    meet: C0::Time,
    advance0: bool,
    advance1: bool,
    big_key: Option<BigKey<C0::Time>>,
    done: bool,
}

fn joined(left: &Row, right: &Row) -> Row {
    let mut packer = RowPacker::new();
    packer.extend_from_row(left);
    packer.extend_from_row(right);
    packer.finish()
}

/// Reads the current key's history, advancing its times by `meet` when given, each value's
/// updates consolidated.
fn load_history<'a, C, T>(
    cursor: &mut C,
    storage: &'a C::Storage,
    meet: Option<&T>,
    into: &mut Vec<Update<&'a Row, T>>,
) where
    T: Lattice + timely::progress::Timestamp,
    C: Cursor<Val<'a> = &'a Row, Time = T, Diff = Diff>,
{
    into.clear();
    cursor.rewind_vals(storage);
    while let Some(val) = cursor.get_val(storage) {
        let start = into.len();
        cursor.map_times(storage, |time, diff| {
            let mut time = C::owned_time(time);
            if let Some(meet) = meet {
                time = time.join(meet);
            }
            into.push((val, time, C::owned_diff(diff)));
        });
        into[start..].sort_by(|a, b| a.1.cmp(&b.1));
        // Equal times merge; updates that cancel out go.
        let (mut kept, mut k) = (start, start);
        while k < into.len() {
            let mut diff = into[k].2;
            let mut next = k + 1;
            while next < into.len() && into[next].1 == into[k].1 {
                diff += into[next].2;
                next += 1;
            }
            if diff != 0 {
                into.swap(kept, k);
                into[kept].2 = diff;
                kept += 1;
            }
            k = next;
        }
        into.truncate(kept);
        cursor.step_val(storage);
    }
}

impl<C0, C1, T> Iterator for JoinUnit<C0, C1>
where
    T: Lattice + timely::progress::Timestamp,
    for<'a> C0: Cursor<Key<'a> = &'a Row, Val<'a> = &'a Row, Time = T, Diff = Diff>,
    for<'a> C1: Cursor<Key<'a> = &'a Row, Val<'a> = &'a Row, Time = T, Diff = Diff>,
{
    type Item = Vec<(Row, T, Diff)>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut out = Vec::new();
        // A big key in progress goes first: its cursors have already moved past it.
        if let Some(big) = &mut self.big_key {
            emit_big(big, &mut out);
            if big.i >= big.left.len() {
                self.big_key = None;
            }
            if out.len() >= CHUNK {
                return Some(out);
            }
        }
        if self.done {
            return (!out.is_empty()).then_some(out);
        }
        let meet0 = self.advance0.then_some(&self.meet);
        let meet1 = self.advance1.then_some(&self.meet);
        let mut left = Vec::new();
        let mut right = Vec::new();
        while out.len() < CHUNK {
            let (storage0, storage1) = (&self.storage0, &self.storage1);
            let (key0, key1) = match (
                self.cursor0.get_key(storage0),
                self.cursor1.get_key(storage1),
            ) {
                (Some(key0), Some(key1)) => (key0, key1),
                _ => {
                    self.done = true;
                    break;
                }
            };
            match key0.cmp(key1) {
                Ordering::Less => self.cursor0.seek_key(storage0, key1),
                Ordering::Greater => self.cursor1.seek_key(storage1, key0),
                Ordering::Equal => {
                    load_history(&mut self.cursor0, storage0, meet0, &mut left);
                    load_history(&mut self.cursor1, storage1, meet1, &mut right);
                    if left.len().saturating_mul(right.len()) >= OWNED_PRODUCT {
                        let own = |h: &Vec<Update<&Row, T>>| {
                            h.iter()
                                .map(|(v, t, d)| ((*v).clone(), t.clone(), *d))
                                .collect()
                        };
                        let mut big = BigKey {
                            left: own(&left),
                            right: own(&right),
                            i: 0,
                            j: 0,
                        };
                        emit_big(&mut big, &mut out);
                        if big.i < big.left.len() {
                            self.big_key = Some(big);
                        }
                    } else {
                        for (v0, t0, d0) in &left {
                            for (v1, t1, d1) in &right {
                                out.push((joined(v0, v1), t0.join(t1), d0 * d1));
                            }
                        }
                    }
                    self.cursor0.step_key(storage0);
                    self.cursor1.step_key(storage1);
                    if self.big_key.is_some() {
                        break;
                    }
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }
}

/// Emits pairs of `big` until `out` holds [`CHUNK`] rows or the product is done.
fn emit_big<T: Lattice + Clone>(big: &mut BigKey<T>, out: &mut Vec<(Row, T, Diff)>) {
    while big.i < big.left.len() && out.len() < CHUNK {
        let (v0, t0, d0) = &big.left[big.i];
        let (v1, t1, d1) = &big.right[big.j];
        out.push((joined(v0, v1), t0.join(t1), d0 * d1));
        big.j += 1;
        if big.j == big.right.len() {
            big.j = 0;
            big.i += 1;
        }
    }
}
