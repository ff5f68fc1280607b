//! Abstract data types wider than a machine word: [`Interval`], and the proleptic
//! Gregorian calendar that dates and timestamps are counted in.
//!
//! Arithmetic here is checked: a result outside PostgreSQL's range is `None` or an
//! [`EvalError`], never a wrapped value.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::error::EvalError;

/// A PostgreSQL interval: months, days and microseconds, kept apart because a month has
/// no fixed number of days and a day no fixed number of hours across DST.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

pub const MICROS_PER_SEC: i64 = 1_000_000;
pub const MICROS_PER_HOUR: i64 = 3_600 * MICROS_PER_SEC;
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SEC;
/// PostgreSQL's `DAYS_PER_MONTH`, for comparing intervals and carrying fractions.
pub const DAYS_PER_MONTH: i32 = 30;

/// The first valid date, 4714-11-24 BC (Julian day 0), in days since 1970-01-01.
pub const DATE_MIN: i32 = -2_440_588;
/// The last valid date, 5874897-12-31, in days since 1970-01-01.
pub const DATE_MAX: i32 = 2_145_042_905;
/// The first valid timestamp, 4714-11-24 00:00:00 BC, in microseconds since 1970-01-01.
/// PostgreSQL's last timestamp (294276-12-31) is past `i64::MAX` microseconds since 1970,
/// so Freshet's last timestamp is `i64::MAX` (294247-01-10 04:00:54.775807).
pub const TIMESTAMP_MIN: i64 = DATE_MIN as i64 * MICROS_PER_DAY;

/// The error PostgreSQL raises when interval arithmetic overflows.
pub fn interval_out_of_range() -> EvalError {
    EvalError::DatetimeOutOfRange("interval".into())
}

impl Interval {
    pub fn new(months: i32, days: i32, micros: i64) -> Interval {
        Interval {
            months,
            days,
            micros,
        }
    }

    /// The interval as microseconds, counting a month as 30 days (PostgreSQL's comparison rule).
    pub fn as_micros_approx(&self) -> i128 {
        (self.months as i128 * DAYS_PER_MONTH as i128 + self.days as i128) * MICROS_PER_DAY as i128
            + self.micros as i128
    }

    /// Componentwise sum, `None` if a component overflows (PostgreSQL's `interval_pl`).
    pub fn checked_add(&self, other: &Interval) -> Option<Interval> {
        Some(Interval {
            months: self.months.checked_add(other.months)?,
            days: self.days.checked_add(other.days)?,
            micros: self.micros.checked_add(other.micros)?,
        })
    }

    /// Componentwise difference, `None` if a component overflows (`interval_mi`).
    pub fn checked_sub(&self, other: &Interval) -> Option<Interval> {
        Some(Interval {
            months: self.months.checked_sub(other.months)?,
            days: self.days.checked_sub(other.days)?,
            micros: self.micros.checked_sub(other.micros)?,
        })
    }

    /// Componentwise negation, `None` for a component at its minimum (`interval_um`).
    pub fn checked_neg(&self) -> Option<Interval> {
        Some(Interval {
            months: self.months.checked_neg()?,
            days: self.days.checked_neg()?,
            micros: self.micros.checked_neg()?,
        })
    }

    /// Divides by `factor` as PostgreSQL's `interval_div` does: each component is divided
    /// and truncated, a fractional month is carried into days (at 30 days a month) and a
    /// fractional day into microseconds, each rounded to the microsecond.
    pub fn checked_div_f64(&self, factor: f64) -> Result<Interval, EvalError> {
        if factor == 0.0 {
            return Err(EvalError::DivisionByZero);
        }
        let fits_i32 = |v: f64| !v.is_nan() && v >= i32::MIN as f64 && v < -(i32::MIN as f64);
        let fits_i64 = |v: f64| !v.is_nan() && v >= i64::MIN as f64 && v < -(i64::MIN as f64);
        let months = self.months as f64 / factor;
        if !fits_i32(months) {
            return Err(interval_out_of_range());
        }
        let days = self.days as f64 / factor;
        if !fits_i32(days) {
            return Err(interval_out_of_range());
        }
        let mut result = Interval {
            months: months as i32,
            days: days as i32,
            micros: 0,
        };
        // TSROUND: round to the microsecond.
        let ts_round = |v: f64| (v * 1e6).round_ties_even() / 1e6;
        let month_remainder_days =
            ts_round((months - result.months as f64) * DAYS_PER_MONTH as f64);
        let mut sec_remainder = ts_round(
            (days - result.days as f64 + month_remainder_days - month_remainder_days.trunc())
                * 86_400.0,
        );
        if sec_remainder.abs() >= 86_400.0 {
            let whole_days = (sec_remainder / 86_400.0).trunc();
            result.days = result
                .days
                .checked_add(whole_days as i32)
                .ok_or_else(interval_out_of_range)?;
            sec_remainder -= whole_days * 86_400.0;
        }
        result.days = result
            .days
            .checked_add(month_remainder_days.trunc() as i32)
            .ok_or_else(interval_out_of_range)?;
        let micros =
            (self.micros as f64 / factor + sec_remainder * MICROS_PER_SEC as f64).round_ties_even();
        if !fits_i64(micros) {
            return Err(interval_out_of_range());
        }
        result.micros = micros as i64;
        Ok(result)
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

/// Whether `year` (astronomical: 0 is 1 BC) is a leap year of the Gregorian calendar.
pub fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// The number of days in `month` (1 to 12) of `year`.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap_year(year) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (astronomical year, month 1 to 12,
/// day 1 to 31), exact for every `i32` year.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date (astronomical year, month, day) `days` after 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Whether `days` since 1970-01-01 is a date PostgreSQL accepts.
pub fn is_valid_date(days: i64) -> bool {
    (DATE_MIN as i64..=DATE_MAX as i64).contains(&days)
}

/// Whether `micros` since 1970-01-01 is a timestamp PostgreSQL accepts.
pub fn is_valid_timestamp(micros: i64) -> bool {
    micros >= TIMESTAMP_MIN
}

/// The timestamp `days` after 1970-01-01 plus `time_micros`, if it is a valid timestamp.
pub fn timestamp_from_parts(days: i64, time_micros: i64) -> Option<i64> {
    let t = days.checked_mul(MICROS_PER_DAY)?.checked_add(time_micros)?;
    is_valid_timestamp(t).then_some(t)
}

/// `timestamp + interval` as PostgreSQL's `timestamp_pl_interval` computes it: months
/// first (clamping the day to the end of the month), then days, then microseconds.
pub fn timestamp_add_interval(t: i64, iv: &Interval) -> Result<i64, EvalError> {
    let out_of_range = || EvalError::DatetimeOutOfRange("timestamp".into());
    if !is_valid_timestamp(t) {
        return Err(out_of_range());
    }
    let mut days = t.div_euclid(MICROS_PER_DAY);
    let time = t.rem_euclid(MICROS_PER_DAY);
    if iv.months != 0 {
        let (year, month, day) = civil_from_days(days);
        let total = year * 12 + (month as i64 - 1) + iv.months as i64;
        let (year, month) = (total.div_euclid(12), total.rem_euclid(12) as u32 + 1);
        let day = day.min(days_in_month(year, month));
        days = days_from_civil(year, month, day);
        timestamp_from_parts(days, time).ok_or_else(out_of_range)?;
    }
    if iv.days != 0 {
        days += iv.days as i64;
        timestamp_from_parts(days, time).ok_or_else(out_of_range)?;
    }
    timestamp_from_parts(days, time)
        .and_then(|t| t.checked_add(iv.micros))
        .filter(|t| is_valid_timestamp(*t))
        .ok_or_else(out_of_range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips_and_knows_the_bounds() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        // Julian day 0 is 4714-11-24 BC, astronomical year -4713.
        assert_eq!(days_from_civil(-4713, 11, 24), DATE_MIN as i64);
        assert_eq!(days_from_civil(5_874_897, 12, 31), DATE_MAX as i64);
        for days in [
            DATE_MIN as i64,
            -719_528,
            -1,
            0,
            59,
            11_016,
            DATE_MAX as i64,
        ] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(-719_528), (0, 1, 1));
        assert!(is_leap_year(0) && is_leap_year(2000) && !is_leap_year(1900));
    }

    #[test]
    fn interval_arithmetic_is_checked() {
        let max_months = Interval::new(i32::MAX, 0, 0);
        assert_eq!(max_months.checked_add(&Interval::new(1, 0, 0)), None);
        assert_eq!(Interval::new(i32::MIN, 0, 0).checked_neg(), None);
        assert_eq!(
            Interval::new(0, 0, i64::MIN).checked_sub(&Interval::new(0, 0, 1)),
            None
        );
    }

    #[test]
    fn interval_division_matches_postgres() {
        // Expected values from PostgreSQL 15.
        let div = |iv: Interval, f: f64| {
            let r = iv.checked_div_f64(f).unwrap();
            (r.months, r.days, r.micros)
        };
        let hms = |h: i64, m: i64, us: i64| (h * 3600 + m * 60) * MICROS_PER_SEC + us;
        // '1 mon' / 7 = 4 days 06:51:25.6896
        assert_eq!(
            div(Interval::new(1, 0, 0), 7.0),
            (0, 4, hms(6, 51, 25_689_600))
        );
        // '1 mon 1 day 1 sec' / 7 = 4 days 10:17:08.6896
        assert_eq!(
            div(Interval::new(1, 1, MICROS_PER_SEC), 7.0),
            (0, 4, hms(10, 17, 8_689_600))
        );
        // '-1 mon' / 3 = -10 days
        assert_eq!(div(Interval::new(-1, 0, 0), 3.0), (0, -10, 0));
        // '1 year' / 7 = 1 mon 21 days 10:17:08.5344
        assert_eq!(
            div(Interval::new(12, 0, 0), 7.0),
            (1, 21, hms(10, 17, 8_534_400))
        );
        // '1 mon -1 day 00:00:01' / 11 = 2 days 15:16:21.932654
        assert_eq!(
            div(Interval::new(1, -1, MICROS_PER_SEC), 11.0),
            (0, 2, hms(15, 16, 21_932_654))
        );
        // '-5 mon 3 days -00:00:00.000001' / 13 = -11 days -07:23:04.655262
        assert_eq!(
            div(Interval::new(-5, 3, -1), 13.0),
            (0, -11, -hms(7, 23, 4_655_262))
        );
        assert_eq!(
            Interval::new(1, 0, 0).checked_div_f64(0.0),
            Err(EvalError::DivisionByZero)
        );
        assert_eq!(
            Interval::new(0, i32::MAX, 0).checked_div_f64(0.5),
            Err(interval_out_of_range())
        );
    }

    #[test]
    fn timestamp_plus_interval_clamps_month_ends() {
        let ts = |y, m, d| days_from_civil(y, m, d) * MICROS_PER_DAY;
        assert_eq!(
            timestamp_add_interval(ts(2024, 1, 31), &Interval::new(1, 0, 0)),
            Ok(ts(2024, 2, 29))
        );
        assert_eq!(
            timestamp_add_interval(ts(2024, 3, 31), &Interval::new(-1, 0, 0)),
            Ok(ts(2024, 2, 29))
        );
        assert_eq!(
            timestamp_add_interval(ts(2024, 1, 31), &Interval::new(1, -1, 0)),
            Ok(ts(2024, 2, 28))
        );
        assert_eq!(
            timestamp_add_interval(i64::MAX - 5, &Interval::new(0, 0, 10)),
            Err(EvalError::DatetimeOutOfRange("timestamp".into()))
        );
        assert_eq!(
            timestamp_add_interval(0, &Interval::new(i32::MIN, 0, 0)),
            Err(EvalError::DatetimeOutOfRange("timestamp".into()))
        );
    }
}
