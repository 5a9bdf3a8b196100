//! Quantities in thousandths of a unit of measure, so that kilograms and rounds are both exact integers.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A quantity of a lot, in thousandths of its unit of measure (1 round = 1000, 2.5 kg = 2500).
/// Integers keep sums exact: a ledger must never lose a gram to rounding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Quantity(pub i64);

/// Largest quantity (in thousandths) one line or one balance may reach: 10^12 units. It keeps every
/// figure below 2^53, because canonical JSON (RFC 8785) reads numbers as IEEE doubles.
pub const QUANTITY_MAX: i64 = 1_000_000_000_000_000;

impl Quantity {
    pub const ZERO: Quantity = Quantity(0);
    pub const ONE: Quantity = Quantity(1000);

    pub fn units(n: i64) -> Quantity {
        Quantity(n * 1000)
    }

    /// Parses "12", "2.5" or "0.125"; at most three decimals; positive.
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
        if int.len() > 12 {
            return Err(format!("quantity {text:?} is larger than the limit of {}", QUANTITY_MAX / 1000));
        }
        let whole: i64 = int.parse().map_err(|_| bad())?;
        let mut thousandths = 0i64;
        for (i, b) in frac.bytes().chain(std::iter::repeat(b'0')).take(3).enumerate() {
            let _ = i;
            thousandths = thousandths * 10 + i64::from(b - b'0');
        }
        let q = whole * 1000 + thousandths;
        if q <= 0 {
            return Err(format!("quantity {text:?} must be more than zero"));
        }
        Ok(Quantity(q))
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }
}

impl std::ops::Add for Quantity {
    type Output = Quantity;
    fn add(self, o: Quantity) -> Quantity {
        Quantity(self.0 + o.0)
    }
}
impl std::ops::Sub for Quantity {
    type Output = Quantity;
    fn sub(self, o: Quantity) -> Quantity {
        Quantity(self.0 - o.0)
    }
}
impl std::ops::AddAssign for Quantity {
    fn add_assign(&mut self, o: Quantity) {
        self.0 += o.0;
    }
}
impl std::ops::SubAssign for Quantity {
    fn sub_assign(&mut self, o: Quantity) {
        self.0 -= o.0;
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        let (whole, frac) = (a / 1000, a % 1000);
        if frac == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let s = format!("{frac:03}");
            write!(f, "{sign}{whole}.{}", s.trim_end_matches('0'))
        }
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
        for bad in ["", "0", "-1", "1.2345", "abc", "1e3", ".5", "9999999999999999"] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
    }
}
