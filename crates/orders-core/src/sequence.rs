//! Stream sequence numbers: opaque decimal strings (Kinesis uses ~56 digits, far beyond
//! `u64`), compared as unbounded integers.

use std::cmp::Ordering;

pub fn compare(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Width of [`pad`]: wider than any Kinesis (56) or DynamoDB Streams (40) sequence number.
pub const PADDED_WIDTH: usize = 64;

/// Zero-padded to a fixed width, so that storage comparing strings (DynamoDB conditions)
/// orders sequence numbers numerically. DynamoDB numbers hold only 38 digits.
pub fn pad(sequence: &str) -> String {
    format!(
        "{:0>width$}",
        sequence.trim_start_matches('0'),
        width = PADDED_WIDTH
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn compares_as_big_integers() {
        let low = "49590338271490256608559692538361571095921575989136588898";
        let high = "49590338271490256608559692540925702759324208523137515618";
        assert_eq!(compare(low, high), Ordering::Less);
        assert_eq!(compare("9", "10"), Ordering::Less, "not lexicographic");
        assert_eq!(compare("007", "7"), Ordering::Equal);
    }

    proptest! {
        #[test]
        fn padding_preserves_order(a in "[0-9]{1,56}", b in "[0-9]{1,56}") {
            prop_assert_eq!(pad(&a).cmp(&pad(&b)), compare(&a, &b));
            prop_assert_eq!(pad(&a).len(), PADDED_WIDTH);
        }
    }
}
