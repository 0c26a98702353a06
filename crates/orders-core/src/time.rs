//! Timestamps as the API shows them: UTC, RFC 3339, millisecond precision.
//!
//! Truncating to milliseconds at creation means a timestamp survives a round trip through
//! JSON and DynamoDB unchanged, so equality checks (idempotent replays) are exact.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// A UTC instant with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// Builds a timestamp from any instant, dropping sub-millisecond digits.
    pub fn from_datetime(at: OffsetDateTime) -> Self {
        let at = at.to_offset(UtcOffset::UTC);
        let millis = at.nanosecond() / 1_000_000;
        let at = at
            .replace_nanosecond(millis * 1_000_000)
            .expect("a whole number of milliseconds is a valid nanosecond value");
        Self(at)
    }

    pub fn from_unix_millis(millis: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
            .ok()
            .map(Self)
    }

    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    pub fn unix_millis(&self) -> i64 {
        (self.0.unix_timestamp_nanos() / 1_000_000) as i64
    }

    pub fn unix_seconds(&self) -> i64 {
        self.0.unix_timestamp()
    }

    pub fn datetime(&self) -> OffsetDateTime {
        self.0
    }

    /// Parses RFC 3339 with any offset, normalising to UTC milliseconds. `None` also when
    /// the instant has no UTC equivalent (`9999-12-31T23:00:00-01:00` is in the year 10000).
    pub fn parse(s: &str) -> Option<Self> {
        OffsetDateTime::parse(s, &Rfc3339)
            .ok()
            .and_then(|at| at.checked_to_offset(UtcOffset::UTC))
            .map(Self::from_datetime)
    }

    /// [`Timestamp::parse`], rounding sub-millisecond digits up instead of down: as a bound
    /// of a half-open window `[from, to)` over millisecond times, the rounded bound selects
    /// exactly the times the written one does (`to=…:00.0005Z` keeps an order of `…:00.000`).
    pub fn parse_rounding_up(s: &str) -> Option<Self> {
        let at = OffsetDateTime::parse(s, &Rfc3339)
            .ok()?
            .checked_to_offset(UtcOffset::UTC)?;
        let truncated = Self::from_datetime(at);
        if at == truncated.0 {
            Some(truncated)
        } else {
            Self::from_unix_millis(truncated.unix_millis() + 1)
        }
    }

    pub fn plus_seconds(&self, seconds: i64) -> Self {
        Self(self.0 + time::Duration::seconds(seconds))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        let s = self.0.format(format).map_err(|_| fmt::Error)?;
        f.write_str(&s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_milliseconds_and_round_trips() {
        let t = Timestamp::parse("2026-11-21T23:55:01.123456+01:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-21T22:55:01.123Z");
        assert_eq!(Timestamp::parse(&t.to_string()), Some(t));
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2026-11-21T22:55:01.123Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
    }

    #[test]
    fn an_instant_past_the_year_9999_in_utc_is_not_a_timestamp() {
        assert_eq!(Timestamp::parse("9999-12-31T23:00:00-01:00"), None);
        assert!(Timestamp::parse("9999-12-31T23:00:00+01:00").is_some());
    }

    #[test]
    fn millis_round_trip() {
        let t = Timestamp::from_unix_millis(1_795_305_301_123).unwrap();
        assert_eq!(t.unix_millis(), 1_795_305_301_123);
    }

    #[test]
    fn window_bounds_round_sub_millisecond_digits_up() {
        let up = |s| Timestamp::parse_rounding_up(s).map(|t| t.to_string());
        assert_eq!(
            up("2026-11-21T10:00:00.0001Z").as_deref(),
            Some("2026-11-21T10:00:00.001Z")
        );
        assert_eq!(
            up("2026-11-21T10:00:00.123+01:00").as_deref(),
            Some("2026-11-21T09:00:00.123Z")
        );
        assert_eq!(
            up("1969-12-31T23:59:59.9995Z").as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
        assert_eq!(up("yesterday"), None);
    }

    #[test]
    fn rejects_non_rfc3339() {
        assert!(Timestamp::parse("yesterday").is_none());
        assert!(serde_json::from_str::<Timestamp>("\"2026-13-01T00:00:00Z\"").is_err());
    }
}
