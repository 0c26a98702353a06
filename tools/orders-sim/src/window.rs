//! Whole-minute time windows, the unit the analytics API answers in.

use anyhow::Context as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn parse_time(text: &str) -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).with_context(|| format!("not an RFC 3339 time: {text}"))
}

/// Minutes since the Unix epoch.
pub fn minute_of(t: OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(60)
}

pub fn minute_start(minute: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(minute * 60).expect("minutes of this era are valid times")
}

/// `[from, to)` in minutes since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Window {
    pub from_minute: i64,
    pub to_minute: i64,
}

impl Window {
    /// The smallest window holding every instant of `times`; `None` when there are none.
    pub fn covering(times: impl IntoIterator<Item = OffsetDateTime>) -> Option<Self> {
        let mut minutes = times.into_iter().map(minute_of);
        let first = minutes.next()?;
        let (lo, hi) = minutes.fold((first, first), |(lo, hi), m| (lo.min(m), hi.max(m)));
        Some(Self {
            from_minute: lo,
            to_minute: hi + 1,
        })
    }

    pub fn from(&self) -> OffsetDateTime {
        minute_start(self.from_minute)
    }

    pub fn to(&self) -> OffsetDateTime {
        minute_start(self.to_minute)
    }

    pub fn contains(&self, t: OffsetDateTime) -> bool {
        (self.from_minute..self.to_minute).contains(&minute_of(t))
    }

    pub fn minutes(&self) -> i64 {
        self.to_minute - self.from_minute
    }

    /// Consecutive windows of at most `minutes` minutes covering this one (the sales route
    /// answers at most 1,500 buckets).
    pub fn chunks(&self, minutes: i64) -> Vec<Window> {
        (self.from_minute..self.to_minute)
            .step_by(minutes.max(1) as usize)
            .map(|from| Window {
                from_minute: from,
                to_minute: (from + minutes).min(self.to_minute),
            })
            .collect()
    }

    /// `from=…&to=…` for the analytics routes.
    pub fn query(&self) -> String {
        format!("from={}&to={}", format(self.from()), format(self.to()))
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {})", format(self.from()), format(self.to()))
    }
}

/// `2026-11-22T10:00:00Z`.
pub fn format(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("UTC times format")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_whole_minutes() {
        let a = parse_time("2026-11-22T10:00:59.999Z").unwrap();
        let b = parse_time("2026-11-22T10:02:00.000Z").unwrap();
        let w = Window::covering([b, a]).unwrap();
        assert_eq!(w.minutes(), 3);
        assert_eq!(
            w.query(),
            "from=2026-11-22T10:00:00Z&to=2026-11-22T10:03:00Z"
        );
        assert!(w.contains(a) && w.contains(b));
        assert!(!w.contains(parse_time("2026-11-22T10:03:00Z").unwrap()));
        assert!(!w.contains(parse_time("2026-11-22T09:59:59.999Z").unwrap()));
        assert_eq!(Window::covering([]), None);
        let chunks = w.chunks(2);
        assert_eq!(chunks.len(), 2);
        assert_eq!(
            (chunks[1].from_minute, chunks[1].to_minute),
            (w.from_minute + 2, w.to_minute)
        );
    }
}
