//! The end of an invocation, so a stream consumer stops *starting* work it may not finish.
//!
//! A consumer that runs into Lambda's timeout is killed half-way: the whole batch comes
//! again, its metrics and logs are lost, and a batch that is slow every time (an outage,
//! throttling) times out every time. Instead, near the deadline a consumer starts nothing
//! new and reports what it has not done as batch item failures: that much comes again in
//! the next invocation, and what was done stays done (every consumer is idempotent).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Kept free at the end of an invocation: the stream clients' operation timeout
/// (`config::sdk_config_for_streams`), so a step that started in time ends (or gives up)
/// before Lambda stops the function.
const RESERVE: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    stop_at: Option<SystemTime>,
}

impl Deadline {
    /// No deadline (tests, tools).
    pub fn none() -> Self {
        Self { stop_at: None }
    }

    /// From Lambda's deadline (milliseconds since the epoch, `Context::deadline`). New steps
    /// stop [`RESERVE`] before it — or half-way through what is left, if that is sooner, so
    /// a function configured with a short timeout still gets work done.
    pub fn from_epoch_millis(deadline_ms: u64) -> Self {
        let end = UNIX_EPOCH + Duration::from_millis(deadline_ms);
        let left = end.duration_since(SystemTime::now()).unwrap_or_default();
        Self {
            stop_at: Some(end - RESERVE.min(left / 2)),
        }
    }

    /// Whether a new step may start.
    pub fn allows_more(&self) -> bool {
        self.stop_at.is_none_or(|t| SystemTime::now() < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_ms(offset: i64) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        (now + offset) as u64
    }

    #[test]
    fn work_starts_until_the_reserve_and_never_after_the_deadline() {
        assert!(Deadline::none().allows_more());
        assert!(Deadline::from_epoch_millis(in_ms(60_000)).allows_more());
        // A short invocation keeps half of what is left, not 15 s it does not have.
        assert!(Deadline::from_epoch_millis(in_ms(4_000)).allows_more());
        assert!(!Deadline::from_epoch_millis(in_ms(0)).allows_more());
        assert!(!Deadline::from_epoch_millis(in_ms(-5_000)).allows_more());
        let at_reserve = Deadline {
            stop_at: Some(SystemTime::now() - Duration::from_millis(1)),
        };
        assert!(!at_reserve.allows_more());
    }
}
