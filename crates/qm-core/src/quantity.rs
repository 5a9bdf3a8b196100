//! Quantities in thousandths of a unit of measure, so that kilograms and rounds are both exact integers.
//!
//! A `Quantity` is always within ±[`QUANTITY_MAX`]: its field is private, every constructor checks
//! the bound, deserialization refuses a figure beyond it, and arithmetic is checked (`checked_add`,
//! `checked_sub` return `None` past the bound). So no balance can wrap, in a debug or a release build.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// A quantity of a lot, in thousandths of its unit of measure (1 round = 1000, 2.5 kg = 2500).
/// Integers keep sums exact: a ledger must never lose a gram to rounding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Quantity(i64);

/// Largest quantity (in thousandths) one line, one balance or one sum may reach: 10^12 units. It
/// keeps every figure below 2^53, because canonical JSON (RFC 8785) reads numbers as IEEE doubles.
pub const QUANTITY_MAX: i64 = 1_000_000_000_000_000;

/// [`QUANTITY_MAX`] in whole units, for messages.
pub const QUANTITY_MAX_UNITS: i64 = QUANTITY_MAX / 1000;

impl Quantity {
    pub const ZERO: Quantity = Quantity(0);
    pub const ONE: Quantity = Quantity(1000);
    pub const MAX: Quantity = Quantity(QUANTITY_MAX);

    /// A quantity from thousandths; `None` beyond ±[`QUANTITY_MAX`].
    pub const fn from_thousandths(t: i64) -> Option<Quantity> {
        if t > QUANTITY_MAX || t < -QUANTITY_MAX {
            None
        } else {
            Some(Quantity(t))
        }
    }

    /// Whole units; `None` beyond ±[`QUANTITY_MAX_UNITS`].
    pub const fn from_units(n: i64) -> Option<Quantity> {
        if n > QUANTITY_MAX_UNITS || n < -QUANTITY_MAX_UNITS {
            None
        } else {
            Some(Quantity(n * 1000))
        }
    }

    /// Whole units, clamped to the bound: for tests and fixed figures written in code.
    pub const fn units(n: i64) -> Quantity {
        if n > QUANTITY_MAX_UNITS {
            Quantity::MAX
        } else if n < -QUANTITY_MAX_UNITS {
            Quantity(-QUANTITY_MAX)
        } else {
            Quantity(n * 1000)
        }
    }

    /// The figure in thousandths.
    pub const fn thousandths(self) -> i64 {
        self.0
    }

    /// The sum, or `None` when it would pass ±[`QUANTITY_MAX`].
    pub const fn checked_add(self, o: Quantity) -> Option<Quantity> {
        // Both are within ±10^15, so the i64 sum cannot overflow; only the bound is checked.
        Quantity::from_thousandths(self.0 + o.0)
    }

    /// The difference, or `None` when it would pass ±[`QUANTITY_MAX`].
    pub const fn checked_sub(self, o: Quantity) -> Option<Quantity> {
        Quantity::from_thousandths(self.0 - o.0)
    }

    /// The sum of many, or `None` as soon as a partial sum passes the bound.
    pub fn checked_sum(items: impl IntoIterator<Item = Quantity>) -> Option<Quantity> {
        items.into_iter().try_fold(Quantity::ZERO, Quantity::checked_add)
    }

    /// The negated quantity (always within the bound, which is symmetric).
    pub const fn negated(self) -> Quantity {
        Quantity(-self.0)
    }

    /// `self × numerator / denominator`, rounded toward zero (shares of a quantity; `None` for a
    /// zero denominator or a result past the bound).
    pub fn scaled(self, numerator: i64, denominator: i64) -> Option<Quantity> {
        if denominator == 0 {
            return None;
        }
        let v = i128::from(self.0) * i128::from(numerator) / i128::from(denominator);
        i64::try_from(v).ok().and_then(Quantity::from_thousandths)
    }

    /// Parses "12", "2.5" or "0.125"; at most three decimals; positive; at most [`QUANTITY_MAX_UNITS`].
    pub fn parse(text: &str) -> Result<Quantity, String> {
        let t = text.trim();
        let (int, frac) = match t.split_once('.') {
            Some((i, f)) => (i, f),
            None => (t, ""),
        };
        let bad = || format!("quantity {text:?} is not a positive number with at most three decimals");
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let too_big = || format!("quantity {text:?} is larger than the limit of {QUANTITY_MAX_UNITS}");
        if int.len() > 13 {
            return Err(too_big());
        }
        let whole: i64 = int.parse().map_err(|_| bad())?;
        let thousandths = frac.bytes().chain(std::iter::repeat(b'0')).take(3).fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'));
        let q = Quantity::from_units(whole).and_then(|w| w.checked_add(Quantity(thousandths))).ok_or_else(too_big)?;
        if q.0 <= 0 {
            return Err(format!("quantity {text:?} must be more than zero"));
        }
        Ok(q)
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Quantity, D::Error> {
        let t = i64::deserialize(d)?;
        Quantity::from_thousandths(t).ok_or_else(|| {
            serde::de::Error::custom(format!("quantity {t} (thousandths) is beyond the limit of ±{QUANTITY_MAX} thousandths"))
        })
    }
}

/// A figure in thousandths written as a quantity is ("2.5", "-3"), for sums a report makes in a
/// wider integer than a `Quantity` (a day's flows through a magazine).
pub fn format_thousandths(t: i128) -> String {
    let sign = if t < 0 { "-" } else { "" };
    let a = t.unsigned_abs();
    let (whole, frac) = (a / 1000, a % 1000);
    if frac == 0 {
        format!("{sign}{whole}")
    } else {
        let s = format!("{frac:03}");
        format!("{sign}{whole}.{}", s.trim_end_matches('0'))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_thousandths(i128::from(self.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        assert_eq!(Quantity::parse("12"), Ok(Quantity(12_000)));
        assert_eq!(Quantity::parse("2.5"), Ok(Quantity(2_500)));
        assert_eq!(Quantity::parse("0.125").map(|q| q.to_string()), Ok("0.125".into()));
        assert_eq!(Quantity(2_500).to_string(), "2.5");
        assert_eq!(Quantity(-3_000).to_string(), "-3");
        assert_eq!(Quantity::parse("1000000000000"), Ok(Quantity::MAX));
        for bad in ["", "0", "-1", "1.2345", "abc", "1e3", ".5", "9999999999999999", "1000000000000.001", "1000000000001"] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn arithmetic_is_checked_at_the_bound() {
        let max = Quantity::MAX;
        assert_eq!(max.checked_add(Quantity(1)), None);
        assert_eq!(max.negated().checked_sub(Quantity(1)), None);
        assert_eq!(max.checked_sub(max), Some(Quantity::ZERO));
        // 9,300 lines of the largest quantity: the sum stops at the bound instead of wrapping.
        assert_eq!(Quantity::checked_sum(std::iter::repeat_n(Quantity::parse("999999999999").unwrap(), 9_300)), None);
        assert_eq!(Quantity::checked_sum([Quantity::ONE, Quantity::ONE]), Some(Quantity(2_000)));
        assert_eq!(Quantity::from_thousandths(QUANTITY_MAX + 1), None);
        assert_eq!(Quantity::units(i64::MAX), Quantity::MAX);
        assert_eq!(Quantity(10_000).scaled(3, 10), Some(Quantity(3_000)));
        assert_eq!(max.scaled(2, 1), None);
        assert_eq!(max.scaled(1, 0), None);
    }

    #[test]
    fn deserialization_refuses_figures_beyond_the_bound() {
        assert_eq!(serde_json::from_str::<Quantity>("1000000000000000").unwrap(), Quantity::MAX);
        assert!(serde_json::from_str::<Quantity>("1000000000000001").is_err());
        assert!(serde_json::from_str::<Quantity>("-9223372036854775808").is_err());
    }
}
