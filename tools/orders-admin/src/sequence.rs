//! Kinesis sequence numbers: decimal strings of up to 128 bits (AWS's are ~56 digits), so
//! they are compared as big integers — never parsed into a `u64`.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;

/// A validated Kinesis sequence number, ordered numerically.
#[derive(Debug, Clone, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SequenceNumber(String);

impl SequenceNumber {
    pub fn parse(text: &str) -> Result<Self, InvalidSequenceNumber> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidSequenceNumber(text.to_owned()));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Compares two decimal sequence numbers as unbounded integers (the domain's comparison).
pub use orders_core::sequence::compare;

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(&self.0, &other.0)
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SequenceNumber {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for SequenceNumber {
    type Error = InvalidSequenceNumber;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SequenceNumber> for String {
    fn from(value: SequenceNumber) -> Self {
        value.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSequenceNumber(pub String);

impl fmt::Display for InvalidSequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a decimal sequence number: {:?}", self.0)
    }
}

impl std::error::Error for InvalidSequenceNumber {}

#[cfg(test)]
mod tests {
    use super::*;

    // Real AWS sequence numbers are 56 digits: far beyond u64 (20 digits) and u128 (39).
    const A: &str = "49651505085739424282347553331460231169997014936545116162";
    const B: &str = "49651505085739424282347553331461440095816629565719822338";
    const C: &str = "49651505085739424282347553331462649021636244194894528514";

    fn seq(s: &str) -> SequenceNumber {
        SequenceNumber::parse(s).unwrap()
    }

    #[test]
    fn compares_56_digit_values_numerically() {
        assert_eq!(A.len(), 56);
        assert!(
            A.parse::<u128>().is_err(),
            "the fixture must not fit a machine integer"
        );
        assert_eq!(compare(A, B), Ordering::Less);
        assert_eq!(compare(C, B), Ordering::Greater);
        assert_eq!(compare(B, B), Ordering::Equal);
        assert!(seq(A) < seq(B) && seq(B) < seq(C));
        let mut sorted = vec![seq(C), seq(A), seq(B)];
        sorted.sort();
        assert_eq!(sorted, vec![seq(A), seq(B), seq(C)]);
    }

    #[test]
    fn differs_only_in_the_last_digit() {
        let lower = "49651505085739424282347553331460231169997014936545116162";
        let upper = "49651505085739424282347553331460231169997014936545116163";
        assert_eq!(compare(lower, upper), Ordering::Less);
        assert_eq!(compare(upper, lower), Ordering::Greater);
    }

    #[test]
    fn length_wins_over_lexicographic_order() {
        // Lexicographically "9" > "10…", numerically it is smaller.
        assert_eq!(compare("9", "10"), Ordering::Less);
        assert_eq!(
            compare(&"9".repeat(55), &format!("1{}", "0".repeat(55))),
            Ordering::Less
        );
        assert!(seq("999") < seq("1000"));
    }

    #[test]
    fn leading_zeros_do_not_count() {
        assert_eq!(compare("000123", "123"), Ordering::Equal);
        assert_eq!(compare("0009", "10"), Ordering::Less);
        assert_eq!(compare("0", "000"), Ordering::Equal);
        assert_eq!(seq("00042"), seq("42"));
        assert_eq!(
            seq("00042").as_str(),
            "00042",
            "the original text is kept for the API"
        );
    }

    #[test]
    fn rejects_non_decimal_text() {
        for bad in ["", "12a", "-1", "1.5", "0x10"] {
            assert!(SequenceNumber::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(serde_json::from_str::<SequenceNumber>("\"12x\"").is_err());
        assert_eq!(
            serde_json::from_str::<SequenceNumber>(&format!("\"{A}\"")).unwrap(),
            seq(A)
        );
    }
}
