//! The bridge's clock. Timing logic (staleness, backoff, and the alarm timers to come) asks a
//! [`Clock`] for the time instead of calling `Instant::now()`, so that a test can hold time
//! still and move it by exactly the amount it wants ([`ManualClock`]) instead of sleeping.
//! Production runs on [`SystemClock`].

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Monotonic time for intervals and wall time for timestamps, from one source.
pub trait Clock: Send + Sync + Debug {
    /// Monotonic time: what intervals and deadlines are measured on.
    fn now(&self) -> Instant;
    /// Wall-clock time: what samples and journals are stamped with.
    fn wall(&self) -> SystemTime;
}

/// The operating system's clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The system clock, shared.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// A clock that moves only when told to ([`ManualClock::advance`]). Both of its times start at
/// the moment it is made and move together.
#[derive(Debug)]
pub struct ManualClock {
    origin: Instant,
    wall_origin: SystemTime,
    elapsed: Mutex<Duration>,
}

impl ManualClock {
    pub fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock {
            origin: Instant::now(),
            wall_origin: SystemTime::now(),
            elapsed: Mutex::new(Duration::ZERO),
        })
    }

    /// Move time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut e = self.elapsed.lock().unwrap_or_else(|p| p.into_inner());
        *e += by;
    }

    fn elapsed(&self) -> Duration {
        *self.elapsed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.origin + self.elapsed()
    }
    fn wall(&self) -> SystemTime {
        self.wall_origin + self.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::new();
        let (t0, w0) = (c.now(), c.wall());
        assert_eq!(c.now(), t0);
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.now() - t0, Duration::from_millis(1500));
        assert_eq!(c.wall().duration_since(w0).ok(), Some(Duration::from_millis(1500)));
    }
}
