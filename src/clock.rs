//! Time as the daemon sees it. Everything that expires (tokens, codes, lockouts, grants) asks a
//! [`Clock`], so tests drive time with a [`ManualClock`] instead of sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of wall-clock and monotonic time.
pub trait Clock: Send + Sync {
    /// Wall-clock time, for expiry dates that travel in tokens.
    fn now(&self) -> SystemTime;
    /// Monotonic time, for windows and timeouts that must not jump with the wall clock.
    fn instant(&self) -> Instant;

    /// Wall-clock time in whole seconds since the Unix epoch (0 before the epoch).
    fn unix_secs(&self) -> u64 {
        self.now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }
}

/// The operating system's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
    fn instant(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to; both of its readings advance together.
#[derive(Debug)]
pub struct ManualClock {
    readings: Mutex<(SystemTime, Instant)>,
}

impl ManualClock {
    /// A clock that reads `unix_secs` seconds after the epoch.
    pub fn at_unix(unix_secs: u64) -> Self {
        ManualClock { readings: Mutex::new((UNIX_EPOCH + Duration::from_secs(unix_secs), Instant::now())) }
    }

    /// Moves both readings forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut r = self.lock();
        r.0 += by;
        r.1 += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (SystemTime, Instant)> {
        // A poisoned lock only means a test thread panicked; the readings are still valid.
        self.readings.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.lock().0
    }
    fn instant(&self) -> Instant {
        self.lock().1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let start = clock.instant();
        assert_eq!(clock.unix_secs(), 1_700_000_000);
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.unix_secs(), 1_700_000_090);
        assert_eq!(clock.instant() - start, Duration::from_secs(90));
    }

    #[test]
    fn system_clock_is_after_2024() {
        assert!(SystemClock.unix_secs() > 1_704_067_200);
    }
}
