//! Identifiers that parse: once you hold one, it is valid.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;
use ulid::Ulid;

/// Maximum length of client-chosen ids (customers, products).
pub const MAX_ID_LEN: usize = 64;
/// Maximum length of an `Idempotency-Key` header.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

/// Why an id was rejected; the message is shown to API clients as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidId(pub &'static str);

const SAFE_ID_MESSAGE: &str = "must be 1 to 64 characters: letters, digits, '-', '_', '.' or ':'";

/// Client-chosen ids share one safe charset: no spaces, slashes or `#` (which our storage keys
/// use as a separator), so an id can appear in a URL path and a DynamoDB key unescaped.
fn parse_safe_id(s: &str) -> Result<&str, InvalidId> {
    let ok = !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(s)
    } else {
        Err(InvalidId(SAFE_ID_MESSAGE))
    }
}

macro_rules! safe_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                parse_safe_id(s).map(|s| Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

safe_id!(
    /// The customer who placed an order, as the client's system names them.
    CustomerId
);
safe_id!(
    /// A catalog product (SKU).
    ProductId
);
safe_id!(
    /// A storefront session, as the client names it (a cookie or app-install id): what
    /// activity analytics count as an active user, signed in or not.
    SessionId
);
safe_id!(
    /// A storefront event's id, chosen by the client once per event and resent unchanged
    /// with every retry: what drops a retried event's second copy. Unique per session.
    ActivityEventId
);

/// A time-ordered order id (ULID): sorting ids sorts orders by creation time, which is what
/// lets the listing indexes return newest-first with the id alone as the sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderId(Ulid);

impl OrderId {
    pub fn new(ulid: Ulid) -> Self {
        Self(ulid)
    }

    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        // Ulid::from_str accepts lowercase too; we only hand out the canonical uppercase form,
        // so accepting other spellings would create two URLs for one order.
        if s.len() != ulid::ULID_LEN || s.bytes().any(|b| b.is_ascii_lowercase()) {
            return Err(InvalidId("must be a 26-character order id"));
        }
        // The decoder silently drops the bits of a first character above `7` (26 characters
        // hold 130 bits, a ULID 128), so only ids that print back unchanged are ours.
        Ulid::from_str(s)
            .ok()
            .filter(|ulid| ulid.to_string() == s)
            .map(Self)
            .ok_or(InvalidId("must be a 26-character order id"))
    }

    /// Milliseconds since the Unix epoch encoded in the id.
    pub fn timestamp_ms(&self) -> u64 {
        self.0.timestamp_ms()
    }

    /// The smallest id of millisecond `ms`: every id minted in that millisecond or later
    /// sorts at or above it (ids carry their creation time in their leading 48 bits).
    /// `ms` must fit 48 bits (until the year 10889); higher bits are dropped.
    pub fn first_of_millisecond(ms: u64) -> Self {
        Self(Ulid::from_parts(ms, 0))
    }

    /// The largest id of millisecond `ms` (all 80 random bits set): every id minted in that
    /// millisecond or earlier sorts at or below it.
    pub fn last_of_millisecond(ms: u64) -> Self {
        Self(Ulid::from_parts(ms, u128::MAX))
    }

    /// The id just below this one, so that `id < x` can be written `id <= x.previous()`
    /// (and joined with another bound into one range). `None` below the smallest id.
    pub fn previous(&self) -> Option<Self> {
        u128::from(self.0)
            .checked_sub(1)
            .map(|n| Self(Ulid::from(n)))
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for OrderId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OrderId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The value of an `Idempotency-Key` header: 1–128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        let ok = !s.is_empty()
            && s.len() <= MAX_IDEMPOTENCY_KEY_LEN
            && s.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId(
                "must be 1 to 128 visible ASCII characters (a UUID is a good choice)",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A key as the store holds it ([`IdempotencyKey::for_caller`]: the client's key, a space
    /// and its caller), read back.
    pub fn stored(s: &str) -> Result<Self, InvalidId> {
        let ok = !s.is_empty()
            && s.len() <= 1024
            && s.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId("a stored idempotency key is visible ASCII"))
        }
    }

    /// The key as stored: scoped to the caller (a token's subject), so one caller's key never
    /// replays, or blocks, another's request. Unscoped without a caller (no authorizer).
    pub fn for_caller(&self, caller: Option<&str>) -> Self {
        match caller {
            // A key has no spaces, so the first space ends it, whatever the caller holds.
            Some(caller) => Self(format!("{} {caller}", self.0)),
            None => self.clone(),
        }
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_ids_accept_the_charset_and_length() {
        assert!(CustomerId::parse("c-1").is_ok());
        assert!(ProductId::parse("sku_1.blue:XL").is_ok());
        assert!(ProductId::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn safe_ids_reject_empty_long_and_unsafe() {
        for bad in ["", &"a".repeat(65), "a b", "a/b", "a#b", "é", "a\n"] {
            assert!(
                CustomerId::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn order_ids_are_canonical_ulids() {
        let id = OrderId::new(Ulid::from_parts(1_700_000_000_000, 42));
        let s = id.to_string();
        assert_eq!(OrderId::parse(&s), Ok(id));
        assert_eq!(id.timestamp_ms(), 1_700_000_000_000);
        assert!(OrderId::parse(&s.to_lowercase()).is_err());
        assert!(OrderId::parse("not-an-id").is_err());
        assert!(OrderId::parse("").is_err());
        // 26 Crockford characters hold 130 bits: a first character above 7 would overflow.
        assert!(OrderId::parse("8ZZZZZZZZZZZZZZZZZZZZZZZZZ").is_err());
        assert!(OrderId::parse("7ZZZZZZZZZZZZZZZZZZZZZZZZZ").is_ok());
    }

    #[test]
    fn order_ids_sort_by_time() {
        let older = OrderId::new(Ulid::from_parts(1_000, u128::MAX >> 48));
        let newer = OrderId::new(Ulid::from_parts(1_001, 0));
        assert!(older < newer);
        assert!(older.to_string() < newer.to_string());
    }

    #[test]
    fn millisecond_bounds_enclose_exactly_the_ids_of_that_millisecond() {
        let ms = 1_700_000_000_123;
        let (first, last) = (
            OrderId::first_of_millisecond(ms),
            OrderId::last_of_millisecond(ms),
        );
        assert_eq!((first.timestamp_ms(), last.timestamp_ms()), (ms, ms));
        for random in [0, 1, 42, u128::MAX >> 48] {
            let id = OrderId::new(Ulid::from_parts(ms, random));
            assert!(first <= id && id <= last, "{id}");
        }
        // As strings too: the indexes compare the canonical text.
        let before = OrderId::last_of_millisecond(ms - 1);
        let after = OrderId::first_of_millisecond(ms + 1);
        assert!(before < first && last < after);
        assert!(before.to_string() < first.to_string());
        assert!(last.to_string() < after.to_string());
        assert_eq!(first.previous(), Some(before));
        assert_eq!(after.previous(), Some(last));
        assert_eq!(OrderId::first_of_millisecond(0).previous(), None);
    }

    #[test]
    fn idempotency_keys_are_bounded_visible_ascii() {
        assert!(IdempotencyKey::parse("3f2b6c1e-8a8e-4f7a-9a51-0c1d2e3f4a5b").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(128)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(129)).is_err());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
    }

    #[test]
    fn keys_are_scoped_to_their_caller() {
        let key = IdempotencyKey::parse("k-1").unwrap();
        assert_eq!(key.for_caller(None), key);
        let alice = key.for_caller(Some("alice"));
        assert_ne!(alice, key.for_caller(Some("bob")));
        assert_ne!(alice, key);
        // No caller and key pair can spell another pair.
        let spaced = IdempotencyKey::parse("k")
            .unwrap()
            .for_caller(Some("1 alice"));
        assert_ne!(spaced, alice);
    }
}
