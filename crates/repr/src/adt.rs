//! Abstract data types wider than a machine word.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// A PostgreSQL interval: months, days and microseconds, kept apart because a month has
/// no fixed number of days and a day no fixed number of hours across DST.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

pub const MICROS_PER_SEC: i64 = 1_000_000;
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SEC;

impl Interval {
    /// The interval as microseconds, counting a month as 30 days (PostgreSQL's comparison rule).
    pub fn as_micros_approx(&self) -> i128 {
        (self.months as i128 * 30 + self.days as i128) * MICROS_PER_DAY as i128
            + self.micros as i128
    }
}

impl std::hash::Hash for Interval {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Consistent with equality: intervals equal under PostgreSQL's rule hash alike.
        self.as_micros_approx().hash(state);
    }
}

impl PartialEq for Interval {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Interval {}

impl PartialOrd for Interval {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Interval {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_micros_approx().cmp(&other.as_micros_approx())
    }
}
