//! Money in integer minor units (cents for USD), quantities, and currencies.
//!
//! Floats never represent money here: 0.1 + 0.2 != 0.3 in binary floating point, and a
//! revenue figure that drifts by a cent is a bug report. Amounts are `i64` minor units,
//! like Stripe's `amount`, with checked arithmetic.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// Largest unit price accepted, in minor units (999,999.99 in a two-decimal currency) —
/// the same ceiling payment providers apply to a single charge.
pub const MAX_UNIT_PRICE: i64 = 99_999_999;
pub const MIN_QUANTITY: u32 = 1;
pub const MAX_QUANTITY: u32 = 10_000;

/// An amount in the minor unit of the order's currency. Never negative.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn from_minor(minor: i64) -> Option<Self> {
        (minor >= 0).then_some(Self(minor))
    }

    pub fn minor(&self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_mul(self, quantity: Quantity) -> Option<Money> {
        self.0.checked_mul(i64::from(quantity.get())).map(Money)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Units of one product in one order line: 1 to 10,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Quantity(u32);

impl Quantity {
    pub fn new(n: u32) -> Option<Self> {
        (MIN_QUANTITY..=MAX_QUANTITY)
            .contains(&n)
            .then_some(Self(n))
    }

    pub fn get(&self) -> u32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(d)?;
        Self::new(n).ok_or_else(|| serde::de::Error::custom("quantity out of range"))
    }
}

/// An ISO 4217 alphabetic code (three uppercase letters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Currency(String);

impl Currency {
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase())).then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom("expected an ISO 4217 code"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn money_is_never_negative() {
        assert!(Money::from_minor(-1).is_none());
        assert_eq!(Money::from_minor(0), Some(Money::ZERO));
    }

    #[test]
    fn quantity_bounds() {
        assert!(Quantity::new(0).is_none());
        assert!(Quantity::new(1).is_some());
        assert!(Quantity::new(10_000).is_some());
        assert!(Quantity::new(10_001).is_none());
    }

    #[test]
    fn currency_codes() {
        assert!(Currency::parse("USD").is_some());
        for bad in ["usd", "US", "USDT", "U$D", ""] {
            assert!(Currency::parse(bad).is_none(), "{bad}");
        }
    }

    proptest! {
        /// The largest order we accept (99 lines × 10,000 units × the max price) fits in an
        /// i64 with room to spare, so line totals and order totals never overflow.
        #[test]
        fn max_order_total_fits(lines in 1usize..=99, q in 1u32..=MAX_QUANTITY, p in 0i64..=MAX_UNIT_PRICE) {
            let line = Money::from_minor(p).unwrap().checked_mul(Quantity::new(q).unwrap()).unwrap();
            let mut total = Money::ZERO;
            for _ in 0..lines { total = total.checked_add(line).unwrap(); }
            prop_assert_eq!(total.minor(), p * i64::from(q) * lines as i64);
        }
    }
}
