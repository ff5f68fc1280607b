//! Math functions: PostgreSQL's `float.c` for double precision and `numeric.c` for
//! numeric, with their domain errors, overflow checks and result scales.
//!
//! Numeric results follow PostgreSQL's choice of display scale (at least 16 significant
//! digits, never fewer digits after the point than an input has), computed in
//! `rust_decimal`'s 96-bit arithmetic: a result that needs more than 28 digits after the
//! point, or more than about 28 significant digits, is rounded to what Freshet's numeric
//! holds, and one whose integer part does not fit is `value overflows numeric format`.

use std::fmt;

use repr::EvalError;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// PostgreSQL's `NUMERIC_MIN_SIG_DIGITS`: the fewest significant digits of a
/// transcendental numeric result.
const MIN_SIG_DIGITS: i64 = 16;
/// The most digits after the point a Freshet numeric holds.
const MAX_SCALE: i64 = repr::strconv::NUMERIC_MAX_SCALE as i64;
/// `ln(10)` and `log10(e)` as `numeric.c` writes them when it estimates result scales;
/// kept as written (not `std`'s exact constants) so that the estimates agree.
#[allow(clippy::approx_constant)]
const PG_LN_10: f64 = 2.302_585_092_994_046;
#[allow(clippy::approx_constant)]
const PG_LOG10_E: f64 = 0.434_294_481_903_252;
/// PostgreSQL's `RADIANS_PER_DEGREE`.
const RADIANS_PER_DEGREE: f64 = 0.017_453_292_519_943_295;

/// `ln(10)` and `ln(2)` to 28 places.
fn ln_10() -> Decimal {
    Decimal::from_i128_with_scale(23_025_850_929_940_456_840_179_914_547, 28)
}

fn ln_2() -> Decimal {
    Decimal::from_i128_with_scale(6_931_471_805_599_453_094_172_321_215, 28)
}

/// PostgreSQL's SQLSTATE 2201F (invalid_argument_for_power_function). `EvalError` has no
/// variant for it yet, so this is reported as 22023 with PostgreSQL's message.
pub(crate) fn invalid_argument_for_power(message: &str) -> EvalError {
    EvalError::InvalidParameter(message.into())
}

/// PostgreSQL's SQLSTATE 2201E (invalid_argument_for_logarithm), reported as 22023 with
/// PostgreSQL's message until `EvalError` has a variant for it.
pub(crate) fn invalid_argument_for_log(message: &str) -> EvalError {
    EvalError::InvalidParameter(message.into())
}

/// `input is out of range` (22003), as `float.c` reports a trigonometric argument
/// outside the function's domain.
fn input_out_of_range() -> EvalError {
    EvalError::OutOfRange("input is".into())
}

/// The C library's math functions, which PostgreSQL calls. Rust's own versions of some
/// (`cbrt`, `asinh`, ...) are more accurate in the last bit, and LLVM folds constant
/// calls with correctly rounded arithmetic, so calling them would not reproduce
/// PostgreSQL's digits.
mod libm {
    mod ffi {
        #[link(name = "m")]
        extern "C" {
            pub fn exp(x: f64) -> f64;
            pub fn log(x: f64) -> f64;
            pub fn log10(x: f64) -> f64;
            pub fn pow(x: f64, y: f64) -> f64;
            pub fn sin(x: f64) -> f64;
            pub fn cos(x: f64) -> f64;
            pub fn tan(x: f64) -> f64;
            pub fn asin(x: f64) -> f64;
            pub fn acos(x: f64) -> f64;
            pub fn atan(x: f64) -> f64;
            pub fn atan2(y: f64, x: f64) -> f64;
            pub fn sinh(x: f64) -> f64;
            pub fn cosh(x: f64) -> f64;
            pub fn tanh(x: f64) -> f64;
            pub fn asinh(x: f64) -> f64;
            pub fn acosh(x: f64) -> f64;
            pub fn atanh(x: f64) -> f64;
        }
    }

    macro_rules! safe {
        ($($name:ident($($arg:ident),*)),* $(,)?) => {
            $(
                /// The C library's function of the same name.
                pub fn $name($($arg: f64),*) -> f64 {
                    // SAFETY: a pure function of its arguments, defined for every f64
                    // (NaN or infinity for inputs outside its domain).
                    unsafe { self::ffi::$name($($arg),*) }
                }
            )*
        };
    }

    safe!(
        exp(x),
        log(x),
        log10(x),
        pow(x, y),
        sin(x),
        cos(x),
        tan(x),
        asin(x),
        acos(x),
        atan(x),
        atan2(y, x),
        sinh(x),
        cosh(x),
        tanh(x),
        asinh(x),
        acosh(x),
        atanh(x),
    );
}

/// glibc's `cbrt` (`sysdeps/ieee754/dbl-64/s_cbrt.c`), which PostgreSQL calls: a
/// polynomial estimate and one rational correction. The C library's symbol cannot be
/// called reliably, as Rust's `compiler_builtins` defines a (correctly rounded) `cbrt`
/// that a static link may prefer; this reproduces glibc's last bit, which differs (glibc
/// says `cbrt(27) = 3.0000000000000004`).
fn glibc_cbrt(x: f64) -> f64 {
    const CBRT2: f64 = 1.259_921_049_894_873_2;
    const SQR_CBRT2: f64 = 1.587_401_051_968_199_6;
    const FACTOR: [f64; 5] = [1.0 / SQR_CBRT2, 1.0 / CBRT2, 1.0, CBRT2, SQR_CBRT2];
    if x == 0.0 || !x.is_finite() {
        return x + x;
    }
    // frexp: |x| = xm * 2^xe with 0.5 <= xm < 1.
    let (mut bits, mut xe) = (x.abs().to_bits(), 0i32);
    if bits >> 52 == 0 {
        // Subnormal: normalize first.
        bits = (x.abs() * f64::from_bits(0x4350_0000_0000_0000)).to_bits(); // 2^54
        xe = -54;
    }
    xe += ((bits >> 52) & 0x7ff) as i32 - 1022;
    let xm = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    let u = 0.354_895_765_043_919_84
        + (1.508_191_937_815_849
            + (-2.114_994_941_673_713
                + (2.446_931_225_635_344_4
                    + (-1.834_692_774_836_130_8
                        + (0.784_932_344_976_639_2 - 0.145_263_899_385_486_37 * xm) * xm)
                        * xm)
                    * xm)
                * xm)
            * xm;
    let t2 = u * u * u;
    let ym = u * (t2 + 2.0 * xm) / (2.0 * t2 + xm) * FACTOR[(2 + xe % 3) as usize];
    // ldexp: the result is a normal number, so 2^(xe / 3) is exact and so is the product.
    let scale = f64::from_bits(((1023 + xe / 3) as u64) << 52);
    if x > 0.0 {
        ym * scale
    } else {
        -ym * scale
    }
}

/// PostgreSQL's `check_float8_val`, shared with the arithmetic operators.
fn check(result: f64, inf_is_valid: bool, zero_is_valid: bool) -> Result<f64, EvalError> {
    super::check_float(result, inf_is_valid, zero_is_valid)
}

/// Functions of one double precision argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FloatFunc {
    /// Rounds half to even, as C's `rint`.
    Round,
    Trunc,
    Ceil,
    Floor,
    Sign,
    Sqrt,
    Cbrt,
    Exp,
    Ln,
    Log10,
    Sin,
    Cos,
    Tan,
    Cot,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Atanh,
    Degrees,
    Radians,
}

impl fmt::Display for FloatFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use FloatFunc::*;
        f.write_str(match self {
            Round => "round",
            Trunc => "trunc",
            Ceil => "ceil",
            Floor => "floor",
            Sign => "sign",
            Sqrt => "sqrt",
            Cbrt => "cbrt",
            Exp => "exp",
            Ln => "ln",
            Log10 => "log",
            Sin => "sin",
            Cos => "cos",
            Tan => "tan",
            Cot => "cot",
            Asin => "asin",
            Acos => "acos",
            Atan => "atan",
            Sinh => "sinh",
            Cosh => "cosh",
            Tanh => "tanh",
            Asinh => "asinh",
            Acosh => "acosh",
            Atanh => "atanh",
            Degrees => "degrees",
            Radians => "radians",
        })
    }
}

impl FloatFunc {
    /// The function of `x`, with `float.c`'s domain and range checks.
    pub fn eval(&self, x: f64) -> Result<f64, EvalError> {
        use FloatFunc::*;
        let nan = x.is_nan();
        let inf = x.is_infinite();
        Ok(match self {
            Round => x.round_ties_even(),
            Trunc => x.trunc(),
            Ceil => x.ceil(),
            Floor => x.floor(),
            Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
            Sqrt => {
                if x < 0.0 {
                    return Err(invalid_argument_for_power(
                        "cannot take square root of a negative number",
                    ));
                }
                check(x.sqrt(), inf, x == 0.0)?
            }
            Cbrt => check(glibc_cbrt(x), inf, x == 0.0)?,
            Exp => {
                if nan {
                    x
                } else if inf {
                    if x > 0.0 {
                        x
                    } else {
                        0.0
                    }
                } else {
                    check(libm::exp(x), false, false)?
                }
            }
            Ln | Log10 => {
                if x == 0.0 {
                    return Err(invalid_argument_for_log("cannot take logarithm of zero"));
                }
                if x < 0.0 {
                    return Err(invalid_argument_for_log(
                        "cannot take logarithm of a negative number",
                    ));
                }
                let r = if *self == Ln {
                    libm::log(x)
                } else {
                    libm::log10(x)
                };
                check(r, inf, x == 1.0)?
            }
            Sin | Cos | Tan | Cot => {
                if nan {
                    return Ok(x);
                }
                if inf {
                    return Err(input_out_of_range());
                }
                match self {
                    Sin => check(libm::sin(x), false, true)?,
                    Cos => check(libm::cos(x), false, true)?,
                    // tan(pi/2) and cot(0) are infinite, not overflows.
                    Tan => libm::tan(x),
                    _ => 1.0 / libm::tan(x),
                }
            }
            Asin | Acos => {
                if nan {
                    return Ok(x);
                }
                if !(-1.0..=1.0).contains(&x) {
                    return Err(input_out_of_range());
                }
                check(
                    if *self == Asin {
                        libm::asin(x)
                    } else {
                        libm::acos(x)
                    },
                    false,
                    true,
                )?
            }
            Atan => {
                if nan {
                    return Ok(x);
                }
                check(libm::atan(x), false, true)?
            }
            Sinh => libm::sinh(x),
            Cosh => libm::cosh(x),
            Tanh => check(libm::tanh(x), false, true)?,
            Asinh => libm::asinh(x),
            Acosh => {
                if x < 1.0 {
                    return Err(input_out_of_range());
                }
                libm::acosh(x)
            }
            Atanh => {
                if !(-1.0..=1.0).contains(&x) {
                    return Err(input_out_of_range());
                }
                if x == 1.0 {
                    f64::INFINITY
                } else if x == -1.0 {
                    f64::NEG_INFINITY
                } else {
                    libm::atanh(x)
                }
            }
            Degrees => {
                let r = x / RADIANS_PER_DEGREE;
                check(r, inf, x == 0.0)?
            }
            Radians => {
                let r = x * RADIANS_PER_DEGREE;
                check(r, inf, x == 0.0)?
            }
        })
    }
}

/// `power(double precision, double precision)`: PostgreSQL's `dpow`, which handles NaN
/// and infinities by POSIX's rules before calling `pow`.
pub fn float_power(x: f64, y: f64) -> Result<f64, EvalError> {
    if x.is_nan() {
        return Ok(if y.is_nan() || y != 0.0 {
            f64::NAN
        } else {
            1.0
        });
    }
    if y.is_nan() {
        return Ok(if x != 1.0 { f64::NAN } else { 1.0 });
    }
    if x == 0.0 && y < 0.0 {
        return Err(invalid_argument_for_power(
            "zero raised to a negative power is undefined",
        ));
    }
    if x < 0.0 && y.floor() != y {
        return Err(invalid_argument_for_power(
            "a negative number raised to a non-integer power yields a complex result",
        ));
    }
    if y.is_infinite() {
        let absx = x.abs();
        return Ok(if absx == 1.0 {
            1.0
        } else if y > 0.0 {
            if absx > 1.0 {
                y
            } else {
                0.0
            }
        } else if absx > 1.0 {
            0.0
        } else {
            -y
        });
    }
    if x.is_infinite() {
        if y == 0.0 {
            return Ok(1.0);
        }
        if x > 0.0 {
            return Ok(if y > 0.0 { x } else { 0.0 });
        }
        let half = y / 2.0;
        let odd_integer = half.floor() != half;
        return Ok(if y > 0.0 {
            if odd_integer {
                x
            } else {
                -x
            }
        } else if odd_integer {
            -0.0
        } else {
            0.0
        });
    }
    let r = libm::pow(x, y);
    if r.is_infinite() {
        return Err(EvalError::FloatOverflow);
    }
    if r == 0.0 && x != 0.0 {
        return Err(EvalError::FloatUnderflow);
    }
    Ok(r)
}

/// `atan2(y, x)`: NaN if either is NaN.
pub fn float_atan2(y: f64, x: f64) -> Result<f64, EvalError> {
    if y.is_nan() || x.is_nan() {
        return Ok(f64::NAN);
    }
    check(libm::atan2(y, x), false, true)
}

/// Functions of one numeric argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NumericFunc {
    /// Rounds half away from zero to an integer.
    Round,
    Trunc,
    Ceil,
    Floor,
    Sign,
    Sqrt,
    Exp,
    Ln,
    /// `log(x)`: the base-10 logarithm.
    Log10,
    /// `scale(x)`: the display scale, as an integer.
    Scale,
    /// `min_scale(x)`: the fewest digits after the point that represent the value.
    MinScale,
    /// `trim_scale(x)`: the value with trailing fractional zeros removed.
    TrimScale,
}

impl fmt::Display for NumericFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use NumericFunc::*;
        f.write_str(match self {
            Round => "round",
            Trunc => "trunc",
            Ceil => "ceil",
            Floor => "floor",
            Sign => "sign",
            Sqrt => "sqrt",
            Exp => "exp",
            Ln => "ln",
            Log10 => "log",
            Scale => "scale",
            MinScale => "min_scale",
            TrimScale => "trim_scale",
        })
    }
}

impl NumericFunc {
    /// Whether the result is an integer (`scale`, `min_scale`) rather than a numeric.
    pub fn returns_integer(&self) -> bool {
        matches!(self, NumericFunc::Scale | NumericFunc::MinScale)
    }

    /// The function of `x`; integer results are returned as numerics without a scale.
    pub fn eval(&self, x: Decimal) -> Result<Decimal, EvalError> {
        use NumericFunc::*;
        match self {
            Round => round_scale(x, 0),
            Trunc => trunc_scale(x, 0),
            Ceil => Ok(positive_zero(x.ceil())),
            Floor => Ok(positive_zero(x.floor())),
            Sign => Ok(if x.is_zero() {
                Decimal::ZERO
            } else if x.is_sign_negative() {
                Decimal::NEGATIVE_ONE
            } else {
                Decimal::ONE
            }),
            Sqrt => numeric_sqrt(x),
            Exp => numeric_exp(x),
            Ln => numeric_ln(x),
            Log10 => numeric_log(Decimal::TEN, x),
            Scale => Ok(Decimal::from(x.scale())),
            MinScale => Ok(Decimal::from(x.normalize().scale())),
            TrimScale => Ok(positive_zero(x.normalize())),
        }
    }
}

/// PostgreSQL's numeric has no negative zero.
fn positive_zero(mut d: Decimal) -> Decimal {
    if d.is_zero() {
        d.set_sign_positive(true);
    }
    d
}

/// `d` rounded half away from zero (`round_var`) or truncated (`trunc_var`) to `scale`
/// digits after the point, showing `max(scale, 0)` of them. Negative scales round before
/// the point; scales past what Freshet holds are clamped.
fn rescale(d: Decimal, scale: i64, strategy: RoundingStrategy) -> Result<Decimal, EvalError> {
    if scale >= 0 {
        let scale = scale.min(MAX_SCALE) as u32;
        let mut r = d.round_dp_with_strategy(scale, strategy);
        // Shows `scale` digits, or as many as fit in 96 bits.
        r.rescale(scale);
        return Ok(positive_zero(r));
    }
    let shift = scale.unsigned_abs();
    if shift > 28 {
        return Ok(Decimal::ZERO);
    }
    let factor = Decimal::from_i128_with_scale(10i128.pow(shift as u32), 0);
    let q = d
        .checked_div(factor)
        .ok_or(EvalError::NumericOverflow)?
        .round_dp_with_strategy(0, strategy);
    let r = q.checked_mul(factor).ok_or(EvalError::NumericOverflow)?;
    Ok(positive_zero(r.round_dp(0)))
}

/// `round(numeric, integer)`.
pub fn round_scale(d: Decimal, scale: i64) -> Result<Decimal, EvalError> {
    rescale(d, scale, RoundingStrategy::MidpointAwayFromZero)
}

/// `trunc(numeric, integer)`.
pub fn trunc_scale(d: Decimal, scale: i64) -> Result<Decimal, EvalError> {
    rescale(d, scale, RoundingStrategy::ToZero)
}

/// A numeric as PostgreSQL stores it: base-10000 digits, most significant first with
/// trailing zero digits stripped, and the weight (power of 10000) of the first.
fn pg_digits(d: Decimal) -> (Vec<i64>, i64) {
    let m = d.mantissa().unsigned_abs();
    if m == 0 {
        return (Vec::new(), 0);
    }
    let scale = i64::from(d.scale());
    // Align the fraction to whole base-10000 digits: the mantissa has at most 29 decimal
    // digits, so three more still fit in a u128.
    let pad = (4 - scale % 4) % 4;
    let mut aligned = m * 10u128.pow(pad as u32);
    let mut groups = Vec::new();
    while aligned > 0 {
        groups.push((aligned % 10_000) as i64);
        aligned /= 10_000;
    }
    groups.reverse();
    let weight = groups.len() as i64 - 1 - (scale + pad) / 4;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    (groups, weight)
}

/// PostgreSQL's `estimate_ln_dweight`: the decimal weight of `ln(d)`, from which the
/// result scale of `ln`, `log` and `power` is chosen.
fn estimate_ln_dweight(d: Decimal) -> i64 {
    if d.is_sign_negative() || d.is_zero() {
        return 0;
    }
    let nine_tenths = Decimal::new(9, 1);
    let eleven_tenths = Decimal::new(11, 1);
    if d >= nine_tenths && d <= eleven_tenths {
        let x = d - Decimal::ONE;
        let (digits, weight) = pg_digits(x);
        return match digits.first() {
            Some(&first) => weight * 4 + (first as f64).log10() as i64,
            None => 0,
        };
    }
    let (digits, weight) = pg_digits(d);
    let Some(&first) = digits.first() else {
        return 0;
    };
    let mut value = first;
    let mut dweight = weight * 4;
    if let Some(&second) = digits.get(1) {
        value = value * 10_000 + second;
        dweight -= 4;
    }
    let ln = (value as f64).ln() + dweight as f64 * PG_LN_10;
    ln.abs().log10() as i64
}

/// Clamps a result scale as PostgreSQL does (`NUMERIC_MIN_DISPLAY_SCALE` to
/// `NUMERIC_MAX_DISPLAY_SCALE`).
fn clamp_display_scale(rscale: i64) -> i64 {
    rscale.clamp(0, 1000)
}

/// The square root to about 28 significant digits, by Newton's method.
fn dec_sqrt(x: Decimal) -> Result<Decimal, EvalError> {
    if x.is_zero() {
        return Ok(Decimal::ZERO);
    }
    let guess = x.to_f64().map(f64::sqrt).and_then(Decimal::from_f64);
    let mut r = match guess {
        Some(g) if !g.is_zero() => g,
        _ => Decimal::ONE,
    };
    let two = Decimal::TWO;
    for _ in 0..100 {
        let q = x.checked_div(r).ok_or(EvalError::NumericOverflow)?;
        let next = r.checked_add(q).ok_or(EvalError::NumericOverflow)? / two;
        if next == r {
            break;
        }
        let diff = (next - r).abs();
        r = next;
        if diff <= Decimal::new(1, 28) {
            break;
        }
    }
    Ok(r)
}

/// The natural logarithm of a positive decimal to about 26 places: `x = m * 10^k` with
/// `1 <= m < 10`, square roots bring `m` near 1, then the series of
/// `2 * atanh((m - 1) / (m + 1))`.
fn dec_ln(x: Decimal) -> Result<Decimal, EvalError> {
    let mantissa = x.mantissa().unsigned_abs();
    let digits = mantissa.to_string().len() as i64;
    let k = digits - 1 - i64::from(x.scale());
    // m = mantissa / 10^(digits - 1): the same digits with the point after the first.
    let mut m = Decimal::from_i128_with_scale(mantissa as i128, (digits - 1) as u32);
    let mut factor = Decimal::TWO;
    let limit = Decimal::new(11, 1);
    while m >= limit {
        m = dec_sqrt(m)?;
        factor *= Decimal::TWO;
    }
    let z = (m - Decimal::ONE) / (m + Decimal::ONE);
    let z2 = z * z;
    let mut term = z;
    let mut sum = z;
    let mut n = 1i64;
    loop {
        n += 2;
        term *= z2;
        let elem = term / Decimal::from(n);
        if elem.is_zero() {
            break;
        }
        sum += elem;
        if n > 200 {
            break;
        }
    }
    let ln_m = sum * factor;
    ln_10()
        .checked_mul(Decimal::from(k))
        .and_then(|l| l.checked_add(ln_m))
        .ok_or(EvalError::NumericOverflow)
}

/// `e^x` to about 27 significant digits: `x = n ln 2 + r` with `|r| <= ln 2 / 2`, the
/// Taylor series of `e^r`, then the power of two.
fn dec_exp(x: Decimal) -> Result<Decimal, EvalError> {
    let ln2 = ln_2();
    // e^x fits Freshet's numeric only for x below about 66.5, and is zero in its 28
    // places below about -64.5.
    if x > Decimal::from(70) {
        return Err(EvalError::NumericOverflow);
    }
    if x < Decimal::from(-70) {
        return Ok(Decimal::ZERO);
    }
    let n = (x / ln2).round();
    let n_i = n.to_i64().ok_or(EvalError::NumericOverflow)?;
    let r = x - n * ln2;
    let mut term = Decimal::ONE;
    let mut sum = Decimal::ONE;
    for i in 1..60 {
        term = term * r / Decimal::from(i);
        if term.is_zero() {
            break;
        }
        sum += term;
    }
    let mut result = sum;
    for _ in 0..n_i.unsigned_abs() {
        result = if n_i > 0 {
            result
                .checked_mul(Decimal::TWO)
                .ok_or(EvalError::NumericOverflow)?
        } else {
            result / Decimal::TWO
        };
    }
    Ok(result)
}

/// The square root of a non-negative numeric rounded to `rscale` places, as
/// PostgreSQL's `sqrt_var` computes it for `stddev_samp` and `stddev_pop`.
pub fn numeric_sqrt_at_scale(x: Decimal, rscale: u32) -> Result<Decimal, EvalError> {
    round_scale(dec_sqrt(x)?, i64::from(rscale))
}

/// `sqrt(numeric)`: at least 16 significant digits (`numeric_sqrt`).
fn numeric_sqrt(x: Decimal) -> Result<Decimal, EvalError> {
    if x.is_sign_negative() && !x.is_zero() {
        return Err(invalid_argument_for_power(
            "cannot take square root of a negative number",
        ));
    }
    let (_, weight) = pg_digits(x);
    // C's integer division truncates toward zero.
    let sweight = (weight + 1) * 4 / 2 - 1;
    let rscale = clamp_display_scale((MIN_SIG_DIGITS - sweight).max(i64::from(x.scale())));
    round_scale(dec_sqrt(x)?, rscale)
}

/// `exp(numeric)` (`numeric_exp`).
fn numeric_exp(x: Decimal) -> Result<Decimal, EvalError> {
    let val = (x.to_f64().unwrap_or(0.0) * PG_LOG10_E).clamp(-2000.0, 2000.0);
    let rscale = clamp_display_scale((MIN_SIG_DIGITS - val as i64).max(i64::from(x.scale())));
    round_scale(dec_exp(x)?, rscale)
}

fn check_log_argument(x: Decimal) -> Result<(), EvalError> {
    if x.is_zero() {
        return Err(invalid_argument_for_log("cannot take logarithm of zero"));
    }
    if x.is_sign_negative() {
        return Err(invalid_argument_for_log(
            "cannot take logarithm of a negative number",
        ));
    }
    Ok(())
}

/// `ln(numeric)` (`numeric_ln`).
fn numeric_ln(x: Decimal) -> Result<Decimal, EvalError> {
    check_log_argument(x)?;
    let rscale =
        clamp_display_scale((MIN_SIG_DIGITS - estimate_ln_dweight(x)).max(i64::from(x.scale())));
    round_scale(dec_ln(x)?, rscale)
}

/// `log(base, x)` for numerics (`log_var`); `log(x)` is `log(10, x)`.
pub fn numeric_log(base: Decimal, x: Decimal) -> Result<Decimal, EvalError> {
    check_log_argument(base)?;
    check_log_argument(x)?;
    let result_dweight = estimate_ln_dweight(x) - estimate_ln_dweight(base);
    let rscale = clamp_display_scale(
        (MIN_SIG_DIGITS - result_dweight)
            .max(i64::from(base.scale()))
            .max(i64::from(x.scale())),
    );
    let ln_base = dec_ln(base)?;
    if ln_base.is_zero() {
        return Err(EvalError::DivisionByZero);
    }
    let q = dec_ln(x)?
        .checked_div(ln_base)
        .ok_or(EvalError::NumericOverflow)?;
    round_scale(q, rscale)
}

/// `power(numeric, numeric)` (`numeric_power` and `power_var`).
pub fn numeric_power(x: Decimal, y: Decimal) -> Result<Decimal, EvalError> {
    if x.is_zero() && y.is_sign_negative() && !y.is_zero() {
        return Err(invalid_argument_for_power(
            "zero raised to a negative power is undefined",
        ));
    }
    if y.fract().is_zero() {
        if let Some(exp) = y.to_i32() {
            let rscale = clamp_display_scale(MIN_SIG_DIGITS.max(i64::from(x.scale())));
            return power_int(x, exp, rscale);
        }
    }
    if x.is_zero() {
        return round_scale(Decimal::ZERO, MIN_SIG_DIGITS);
    }
    // A negative base needs an integer exponent (here one beyond an i32); the result
    // is then negative for odd exponents.
    let mut negative = false;
    let x = if x.is_sign_negative() {
        if !y.fract().is_zero() {
            return Err(invalid_argument_for_power(
                "a negative number raised to a non-integer power yields a complex result",
            ));
        }
        negative = !(y % Decimal::TWO).is_zero();
        x.abs()
    } else {
        x
    };
    let approx = x.to_f64().unwrap_or(1.0).ln() * y.to_f64().unwrap_or(0.0);
    if approx.abs() > 2000.0 * 3.01 {
        if approx > 0.0 {
            return Err(EvalError::NumericOverflow);
        }
        return round_scale(Decimal::ZERO, 1000);
    }
    let val = approx * PG_LOG10_E;
    let rscale = clamp_display_scale(
        (MIN_SIG_DIGITS - val as i64)
            .max(i64::from(x.scale()))
            .max(i64::from(y.scale())),
    );
    let ln_num = dec_ln(x)?
        .checked_mul(y)
        .ok_or(EvalError::NumericOverflow)?;
    let r = round_scale(dec_exp(ln_num)?, rscale)?;
    Ok(if negative { positive_zero(-r) } else { r })
}

/// `power_var_int`: `x^exp` by repeated squaring, rounded to `rscale`.
fn power_int(x: Decimal, exp: i32, rscale: i64) -> Result<Decimal, EvalError> {
    match exp {
        0 => return round_scale(Decimal::ONE, rscale),
        1 => return round_scale(x, rscale),
        -1 => {
            let q = Decimal::ONE
                .checked_div(x)
                .ok_or(EvalError::DivisionByZero)?;
            return round_scale(q, rscale);
        }
        _ => {}
    }
    if x.is_zero() {
        if exp < 0 {
            return Err(EvalError::DivisionByZero);
        }
        return round_scale(Decimal::ZERO, rscale);
    }
    let mut base = x;
    let mut result = Decimal::ONE;
    let mut mask = exp.unsigned_abs();
    // Once the base underflows Freshet's 28 places, the result is zero at any rscale
    // Freshet shows; `checked_mul` reports overflow of the integer part.
    loop {
        if mask & 1 == 1 {
            result = result.checked_mul(base).ok_or(EvalError::NumericOverflow)?;
        }
        mask >>= 1;
        if mask == 0 {
            break;
        }
        base = base.checked_mul(base).ok_or(EvalError::NumericOverflow)?;
    }
    if exp < 0 {
        if result.is_zero() {
            // |x| < 1 raised far enough underflows to zero here; its reciprocal overflows.
            return Err(EvalError::NumericOverflow);
        }
        result = Decimal::ONE
            .checked_div(result)
            .ok_or(EvalError::NumericOverflow)?;
    }
    round_scale(result, rscale)
}

/// `div(numeric, numeric)`: the quotient truncated toward zero.
pub fn numeric_div_trunc(x: Decimal, y: Decimal) -> Result<Decimal, EvalError> {
    if y.is_zero() {
        return Err(EvalError::DivisionByZero);
    }
    // The remainder is exact, so the division of what is left is too.
    let rem = x.checked_rem(y).ok_or(EvalError::NumericOverflow)?;
    let q = (x - rem)
        .checked_div(y)
        .ok_or(EvalError::NumericOverflow)?
        .trunc();
    Ok(positive_zero(q.round_dp(0)))
}

/// `gcd(numeric, numeric)` (`gcd_var`), shown with the larger input scale.
pub fn numeric_gcd(x: Decimal, y: Decimal) -> Result<Decimal, EvalError> {
    let scale = x.scale().max(y.scale());
    let (mut a, mut b) = (x.abs(), y.abs());
    if a < b {
        std::mem::swap(&mut a, &mut b);
    }
    while !b.is_zero() {
        let r = a.checked_rem(b).ok_or(EvalError::NumericOverflow)?;
        a = b;
        b = r;
    }
    let mut r = a;
    r.rescale(scale);
    Ok(positive_zero(r))
}

/// `lcm(numeric, numeric)`: `|x / gcd(x, y) * y|`, zero if either is zero.
pub fn numeric_lcm(x: Decimal, y: Decimal) -> Result<Decimal, EvalError> {
    let scale = x.scale().max(y.scale());
    let mut r = if x.is_zero() || y.is_zero() {
        Decimal::ZERO
    } else {
        let g = numeric_gcd(x, y)?;
        let q = x.checked_div(g).ok_or(EvalError::NumericOverflow)?.trunc();
        q.checked_mul(y).ok_or(EvalError::NumericOverflow)?.abs()
    };
    r.rescale(scale);
    if r.scale() != scale && !r.is_zero() {
        return Err(EvalError::NumericOverflow);
    }
    Ok(positive_zero(r))
}

/// `gcd` of two integers of a type whose range is `min..=max`: PostgreSQL reports a
/// result that does not fit (`gcd(-2147483648, 0)`) as `integer out of range`.
pub fn int_gcd(x: i64, y: i64, max: i64, typ: &str) -> Result<i64, EvalError> {
    let (mut a, mut b) = (x.unsigned_abs(), y.unsigned_abs());
    while b != 0 {
        let r = a % b;
        a = b;
        b = r;
    }
    i64::try_from(a)
        .ok()
        .filter(|g| *g <= max)
        .ok_or_else(|| EvalError::OutOfRange(typ.into()))
}

/// `lcm` of two integers (`int4lcm`, `int8lcm`).
pub fn int_lcm(x: i64, y: i64, max: i64, typ: &str) -> Result<i64, EvalError> {
    if x == 0 || y == 0 {
        return Ok(0);
    }
    let g = int_gcd(x, y, max, typ)?;
    let r = (i128::from(x) / i128::from(g)) * i128::from(y);
    let r = r.abs();
    if r > i128::from(max) {
        return Err(EvalError::OutOfRange(typ.into()));
    }
    Ok(r as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Decimal {
        repr::strconv::parse_numeric(s).unwrap()
    }

    fn show(r: Result<Decimal, EvalError>) -> String {
        r.map(|d| d.to_string())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn numeric_transcendental_functions_match_postgres_digits() {
        // From PostgreSQL 15.
        let f = |func: NumericFunc, s: &str| show(func.eval(num(s)));
        assert_eq!(f(NumericFunc::Sqrt, "2.0"), "1.414213562373095");
        assert_eq!(f(NumericFunc::Sqrt, "0.0"), "0.000000000000000");
        assert_eq!(f(NumericFunc::Sqrt, "100"), "10.000000000000000");
        assert_eq!(f(NumericFunc::Sqrt, "1e20"), "10000000000.00000");
        assert_eq!(f(NumericFunc::Sqrt, "0.0001"), "0.01000000000000000");
        assert_eq!(f(NumericFunc::Sqrt, "16.00"), "4.000000000000000");
        assert_eq!(f(NumericFunc::Sqrt, "1e-10"), "0.000010000000000000000");
        assert_eq!(
            f(NumericFunc::Sqrt, "2.0000000000000000000000000"),
            "1.4142135623730950488016887"
        );
        assert_eq!(f(NumericFunc::Ln, "2.0"), "0.6931471805599453");
        assert_eq!(f(NumericFunc::Ln, "1.0"), "0.0000000000000000");
        assert_eq!(f(NumericFunc::Ln, "1e10"), "23.025850929940457");
        assert_eq!(f(NumericFunc::Ln, "0.5"), "-0.6931471805599453");
        assert_eq!(
            f(NumericFunc::Ln, "2.718281828459045"),
            "0.9999999999999999"
        );
        assert_eq!(f(NumericFunc::Exp, "1.0"), "2.7182818284590452");
        assert_eq!(f(NumericFunc::Exp, "0.0"), "1.0000000000000000");
        assert_eq!(f(NumericFunc::Exp, "10.0"), "22026.465794806717");
        assert_eq!(f(NumericFunc::Exp, "-10.0"), "0.00004539992976248485");
        assert_eq!(f(NumericFunc::Exp, "1.5"), "4.4816890703380648");
        assert_eq!(f(NumericFunc::Log10, "2.0"), "0.3010299956639812");
        assert_eq!(f(NumericFunc::Log10, "0.001"), "-3.0000000000000000");
        assert_eq!(
            f(NumericFunc::Ln, "0"),
            "error: cannot take logarithm of zero"
        );
        assert_eq!(
            f(NumericFunc::Sqrt, "-1"),
            "error: cannot take square root of a negative number"
        );
        assert_eq!(
            show(numeric_log(num("2.0"), num("8.0"))),
            "3.0000000000000000"
        );
        assert_eq!(
            show(numeric_log(num("2.0"), num("0.5"))),
            "-1.0000000000000000"
        );
        assert_eq!(
            show(numeric_log(num("10"), num("1000"))),
            "3.0000000000000000"
        );
        assert_eq!(
            show(numeric_log(num("1.0"), num("2.0"))),
            "error: division by zero"
        );
    }

    #[test]
    fn numeric_power_matches_postgres() {
        // From PostgreSQL 15.
        let p = |x: &str, y: &str| show(numeric_power(num(x), num(y)));
        assert_eq!(p("2", "0.5"), "1.4142135623730950");
        assert_eq!(p("0.0", "0.5"), "0.0000000000000000");
        assert_eq!(p("2.5", "-2"), "0.1600000000000000");
        assert_eq!(p("2.0", "3"), "8.0000000000000000");
        assert_eq!(p("1.5", "2"), "2.2500000000000000");
        assert_eq!(p("-2.0", "3"), "-8.0000000000000000");
        assert_eq!(p("0.1", "100"), "0.0000000000000000");
        assert_eq!(p("2.0", "0"), "1.0000000000000000");
        assert_eq!(
            p("0", "-1"),
            "error: zero raised to a negative power is undefined"
        );
        assert_eq!(
            p("-8", "0.5"),
            "error: a negative number raised to a non-integer power yields a complex result"
        );
        // 2^100 needs 31 digits before the point; Freshet's numeric holds 28 or 29.
        assert_eq!(p("2", "100"), "error: value overflows numeric format");
        // Extremes are errors or zeros, never panics. PostgreSQL shows 4.48e-44 for
        // the third; Freshet's numeric keeps 28 places.
        let max = Decimal::MAX.to_string();
        assert_eq!(p(&max, "0.5"), "281474976710656.00");
        assert_eq!(p(&max, "1.5"), "error: value overflows numeric format");
        assert_eq!(p(&max, "-1.5"), "0.0000000000000000000000000000");
        assert_eq!(p("0.5", &max), "0.0000000000000000000000000000");
        assert_eq!(p("2", &max), "error: value overflows numeric format");
    }

    #[test]
    fn numeric_functions_of_extreme_values_do_not_panic() {
        let values = [
            Decimal::MAX,
            Decimal::MIN,
            Decimal::new(1, 28),
            Decimal::new(-1, 28),
            Decimal::ZERO,
            Decimal::ONE,
            num("0.9999999999999999999999999999"),
        ];
        let funcs = [
            NumericFunc::Round,
            NumericFunc::Trunc,
            NumericFunc::Ceil,
            NumericFunc::Floor,
            NumericFunc::Sign,
            NumericFunc::Sqrt,
            NumericFunc::Exp,
            NumericFunc::Ln,
            NumericFunc::Log10,
            NumericFunc::Scale,
            NumericFunc::MinScale,
            NumericFunc::TrimScale,
        ];
        for x in values {
            for f in funcs {
                let _ = f.eval(x);
            }
            for y in values {
                let _ = numeric_power(x, y);
                let _ = numeric_log(x, y);
                let _ = numeric_div_trunc(x, y);
                let _ = numeric_gcd(x, y);
                let _ = numeric_lcm(x, y);
            }
            for scale in [i64::MIN, -29, -1, 0, 1, 28, 29, i64::MAX] {
                let _ = round_scale(x, scale);
                let _ = trunc_scale(x, scale);
            }
        }
    }

    #[test]
    fn numeric_rounding_functions_match_postgres() {
        // From PostgreSQL 15.
        assert_eq!(show(round_scale(num("1.5"), 3)), "1.500");
        assert_eq!(show(round_scale(num("1234.5"), -2)), "1200");
        assert_eq!(show(round_scale(num("-0.4"), 0)), "0");
        assert_eq!(show(round_scale(num("2.5"), 0)), "3");
        assert_eq!(show(round_scale(num("-2.5"), 0)), "-3");
        assert_eq!(show(trunc_scale(num("1.999"), 1)), "1.9");
        assert_eq!(show(trunc_scale(num("-1.999"), 0)), "-1");
        assert_eq!(show(NumericFunc::Ceil.eval(num("1.50"))), "2");
        assert_eq!(show(NumericFunc::Floor.eval(num("-1.5"))), "-2");
        assert_eq!(show(NumericFunc::Sign.eval(num("-2.50"))), "-1");
        assert_eq!(show(NumericFunc::Sign.eval(num("0.0"))), "0");
        assert_eq!(show(numeric_div_trunc(num("7.5"), num("2"))), "3");
        assert_eq!(show(numeric_div_trunc(num("-7"), num("2"))), "-3");
        assert_eq!(
            show(numeric_div_trunc(num("1"), num("0"))),
            "error: division by zero"
        );
        assert_eq!(show(numeric_gcd(num("1.5"), num("2.25"))), "0.75");
        assert_eq!(show(numeric_lcm(num("1.5"), num("2.25"))), "4.50");
        assert_eq!(show(numeric_gcd(num("0"), num("0"))), "0");
        assert_eq!(show(numeric_lcm(num("0"), num("5"))), "0");
        assert_eq!(show(NumericFunc::Scale.eval(num("1.50"))), "2");
        assert_eq!(show(NumericFunc::TrimScale.eval(num("1.500"))), "1.5");
        assert_eq!(show(NumericFunc::MinScale.eval(num("1.500"))), "1");
    }

    #[test]
    fn float_functions_follow_float_c() {
        // From PostgreSQL 15.
        assert_eq!(FloatFunc::Round.eval(2.5), Ok(2.0));
        assert!(FloatFunc::Round.eval(-0.5).unwrap().is_sign_negative());
        // glibc's cbrt, as PostgreSQL calls it; the values come from glibc 2.36.
        assert_eq!(FloatFunc::Cbrt.eval(27.0), Ok(3.000_000_000_000_000_4));
        assert_eq!(FloatFunc::Cbrt.eval(-8.0), Ok(-2.0));
        assert_eq!(FloatFunc::Cbrt.eval(2.0), Ok(1.259_921_049_894_873_4));
        assert_eq!(FloatFunc::Cbrt.eval(1e-300), Ok(1e-100));
        assert_eq!(
            FloatFunc::Cbrt.eval(5e-324),
            Ok(1.703_183_936_003_260_1e-108)
        );
        assert_eq!(
            FloatFunc::Cbrt.eval(f64::MAX),
            Ok(5.643_803_094_122_362e102)
        );
        assert_eq!(FloatFunc::Degrees.eval(std::f64::consts::PI), Ok(180.0));
        assert_eq!(FloatFunc::Radians.eval(180.0), Ok(std::f64::consts::PI));
        assert_eq!(FloatFunc::Cot.eval(1.0), Ok(0.642_092_615_934_330_6));
        assert_eq!(FloatFunc::Atanh.eval(1.0), Ok(f64::INFINITY));
        assert_eq!(FloatFunc::Sign.eval(-0.0), Ok(0.0));
        let err = FloatFunc::Asin.eval(2.0).unwrap_err();
        assert_eq!(
            (err.sqlstate(), err.to_string().as_str()),
            ("22003", "input is out of range")
        );
        assert_eq!(
            FloatFunc::Sin.eval(f64::INFINITY).unwrap_err().to_string(),
            "input is out of range"
        );
        assert_eq!(
            FloatFunc::Sqrt.eval(-1.0).unwrap_err().to_string(),
            "cannot take square root of a negative number"
        );
        assert_eq!(
            FloatFunc::Ln.eval(0.0).unwrap_err().to_string(),
            "cannot take logarithm of zero"
        );
        assert_eq!(FloatFunc::Exp.eval(1000.0), Err(EvalError::FloatOverflow));
        assert_eq!(FloatFunc::Exp.eval(-1000.0), Err(EvalError::FloatUnderflow));
        assert_eq!(FloatFunc::Exp.eval(f64::NEG_INFINITY), Ok(0.0));
        assert!(FloatFunc::Acos.eval(f64::NAN).unwrap().is_nan());
        assert_eq!(float_power(10.0, -400.0), Err(EvalError::FloatUnderflow));
        assert_eq!(float_power(2.0, 0.5), Ok(std::f64::consts::SQRT_2));
        assert_eq!(float_power(f64::NAN, 0.0), Ok(1.0));
        assert_eq!(float_power(-1.0, f64::INFINITY), Ok(1.0));
        assert_eq!(float_power(f64::NEG_INFINITY, 3.0), Ok(f64::NEG_INFINITY));
        assert!(float_power(-8.0, 1.0 / 3.0).is_err());
        assert!(float_power(0.0, -1.0).is_err());
    }

    #[test]
    fn integer_gcd_and_lcm_check_their_range() {
        let max = i64::from(i32::MAX);
        assert_eq!(int_gcd(12, -18, max, "integer"), Ok(6));
        assert_eq!(int_gcd(0, 0, max, "integer"), Ok(0));
        assert_eq!(
            int_gcd(i64::from(i32::MIN), 0, max, "integer"),
            Err(EvalError::OutOfRange("integer".into()))
        );
        assert_eq!(int_gcd(i64::from(i32::MIN), -1, max, "integer"), Ok(1));
        assert_eq!(int_lcm(4, -6, max, "integer"), Ok(12));
        assert_eq!(
            int_lcm(max, 2, max, "integer"),
            Err(EvalError::OutOfRange("integer".into()))
        );
        assert_eq!(
            int_gcd(i64::MIN, i64::MIN, i64::MAX, "bigint"),
            Err(EvalError::OutOfRange("bigint".into()))
        );
        assert_eq!(int_lcm(i64::MIN, 0, i64::MAX, "bigint"), Ok(0));
    }
}
