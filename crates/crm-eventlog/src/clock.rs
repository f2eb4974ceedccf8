//! The writer's clock and the clamp that keeps `recorded_at` non-decreasing in position order
//! (docs/DESIGN.md rule 13), across batches and across restarts.
//!
//! The clock is read once per batch, at the edge; what to stamp is decided by
//! [`RecordedAtClamp`], a pure value: `max(now, last stamped)`. At open the clamp starts from
//! the head record's `recorded_at`, so a wall clock that went back while the log was closed
//! (a restart on another host, an NTP step) never stamps below what is already stored. That
//! makes "every event recorded at or before `t`" a prefix of the log.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time for `recorded_at`. The log uses [`SystemClock`] unless its
/// configuration says otherwise ([`LogClock::custom`]); tests inject one that lags.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Microseconds since the Unix epoch (negative before it).
    fn now_us(&self) -> i64;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_us(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
        }
    }
}

/// The clock a log stamps `recorded_at` from, held in [`LogConfig`](crate::LogConfig).
/// `Default` is the system clock. Two configurations compare equal when both use the system
/// clock or both share the same injected clock instance.
#[derive(Clone, Default)]
pub struct LogClock(Option<Arc<dyn Clock>>);

impl LogClock {
    /// The operating system's wall clock (the default).
    pub fn system() -> LogClock {
        LogClock(None)
    }

    /// Another clock, for tests and simulations.
    pub fn custom(clock: Arc<dyn Clock>) -> LogClock {
        LogClock(Some(clock))
    }

    /// Microseconds since the Unix epoch, from this clock.
    pub fn now_us(&self) -> i64 {
        match &self.0 {
            None => SystemClock.now_us(),
            Some(clock) => clock.now_us(),
        }
    }
}

impl fmt::Debug for LogClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("LogClock(system)"),
            Some(clock) => f.debug_tuple("LogClock").field(clock).finish(),
        }
    }
}

impl PartialEq for LogClock {
    fn eq(&self, other: &LogClock) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for LogClock {}

/// What the writer stamps on a batch, and how far the clock lagged behind the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) recorded_at_us: i64,
    /// Microseconds the clock was behind the last stamp (0 when it was not).
    pub(crate) behind_us: u64,
    /// True on the first batch of a run of lagging ones, so the writer warns once per episode
    /// rather than on every batch while the clock catches up.
    pub(crate) started_lagging: bool,
}

/// The last `recorded_at` stamped (or stored): nothing is ever stamped below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordedAtClamp {
    last_us: i64,
    lagging: bool,
}

impl RecordedAtClamp {
    /// A clamp for a log whose newest record was stamped `floor_us` (`None`: an empty log).
    pub(crate) fn starting_at(floor_us: Option<i64>) -> RecordedAtClamp {
        RecordedAtClamp {
            last_us: floor_us.unwrap_or(i64::MIN),
            lagging: false,
        }
    }

    /// The stamp of the next batch given the clock's reading `now_us`: `max(now, last)`.
    pub(crate) fn stamp(&mut self, now_us: i64) -> Stamp {
        let behind_us = self.last_us.saturating_sub(now_us).max(0).unsigned_abs();
        let started_lagging = behind_us > 0 && !self.lagging;
        self.lagging = behind_us > 0;
        self.last_us = self.last_us.max(now_us);
        Stamp {
            recorded_at_us: self.last_us,
            behind_us,
            started_lagging,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_log_stamps_the_clock_as_it_is() {
        let mut clamp = RecordedAtClamp::starting_at(None);
        let stamp = clamp.stamp(-5);
        assert_eq!(stamp.recorded_at_us, -5);
        assert_eq!(stamp.behind_us, 0);
        assert!(!stamp.started_lagging);
    }

    #[test]
    fn a_clock_behind_the_stored_head_is_held_at_the_head() {
        let mut clamp = RecordedAtClamp::starting_at(Some(1_000));
        let stamp = clamp.stamp(400);
        assert_eq!(
            stamp,
            Stamp {
                recorded_at_us: 1_000,
                behind_us: 600,
                started_lagging: true
            }
        );
        // Still behind: same stamp, no second warning.
        let stamp = clamp.stamp(900);
        assert_eq!((stamp.recorded_at_us, stamp.behind_us), (1_000, 100));
        assert!(!stamp.started_lagging);
        // Caught up: the clock is taken again.
        let stamp = clamp.stamp(1_500);
        assert_eq!((stamp.recorded_at_us, stamp.behind_us), (1_500, 0));
        assert!(!stamp.started_lagging);
        // Behind again later: a new episode.
        assert!(clamp.stamp(1_499).started_lagging);
    }

    #[test]
    fn stamps_never_decrease_whatever_the_clock_does() {
        let readings = [
            10,
            5,
            5,
            20,
            i64::MIN,
            19,
            i64::MAX,
            0,
            -1,
            i64::MAX,
            i64::MIN,
        ];
        let mut clamp = RecordedAtClamp::starting_at(Some(7));
        let mut previous = 7;
        for now in readings {
            let stamp = clamp.stamp(now);
            assert!(stamp.recorded_at_us >= previous, "{now}: {stamp:?}");
            assert!(stamp.recorded_at_us >= now);
            previous = stamp.recorded_at_us;
        }
        assert_eq!(previous, i64::MAX);
    }

    #[test]
    fn log_clocks_compare_by_identity() {
        #[derive(Debug)]
        struct Fixed;
        impl Clock for Fixed {
            fn now_us(&self) -> i64 {
                42
            }
        }
        let fixed: Arc<dyn Clock> = Arc::new(Fixed);
        assert_eq!(LogClock::default(), LogClock::system());
        assert_eq!(
            LogClock::custom(Arc::clone(&fixed)),
            LogClock::custom(Arc::clone(&fixed))
        );
        assert_ne!(LogClock::custom(Arc::new(Fixed)), LogClock::custom(fixed));
        assert_ne!(LogClock::system(), LogClock::custom(Arc::new(Fixed)));
        assert_eq!(LogClock::custom(Arc::new(Fixed)).now_us(), 42);
    }
}
