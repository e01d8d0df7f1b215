//! When a condition is active: a measured value against its limits with deadband, a device
//! state against the states its profile calls abnormal, and the on- and off-delays that keep a
//! noisy input from chattering. Pure logic on the times it is given.

use super::model::{Level, Severity};
use std::time::{Duration, Instant};

/// The limits of a threshold rule (any may be absent) and how far a value must come back
/// before its level is left.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub high_high: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub low_low: Option<f64>,
    pub deadband: f64,
}

impl Limits {
    /// The level of `v` given the level it is at now: entering a level needs the limit
    /// reached, leaving it needs the limit passed back by the deadband.
    pub fn level(&self, v: f64, now: Option<Level>) -> Option<Level> {
        let db = self.deadband.max(0.0);
        let above = |limit: Option<f64>, held: bool| limit.is_some_and(|l| if held { v > l - db } else { v >= l });
        let below = |limit: Option<f64>, held: bool| limit.is_some_and(|l| if held { v < l + db } else { v <= l });
        let held = |l: Level| match now {
            // Being at a more severe level of the same side holds the lesser one too.
            Some(Level::HighHigh) => matches!(l, Level::HighHigh | Level::High),
            Some(Level::LowLow) => matches!(l, Level::LowLow | Level::Low),
            Some(n) => n == l,
            None => false,
        };
        if above(self.high_high, held(Level::HighHigh)) {
            Some(Level::HighHigh)
        } else if above(self.high, held(Level::High)) {
            Some(Level::High)
        } else if below(self.low_low, held(Level::LowLow)) {
            Some(Level::LowLow)
        } else if below(self.low, held(Level::Low)) {
            Some(Level::Low)
        } else {
            None
        }
    }

    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        [self.low_low, self.low, self.high, self.high_high]
            .iter()
            .any(Option::is_some)
    }

    /// Limits in order (low_low <= low < high <= high_high), each finite; the deadband >= 0.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let named = [
            ("low_low", self.low_low),
            ("low", self.low),
            ("high", self.high),
            ("high_high", self.high_high),
        ];
        let given: Vec<(&str, f64)> = named.iter().filter_map(|(n, v)| v.map(|v| (*n, v))).collect();
        for (n, v) in &given {
            if !v.is_finite() {
                out.push(format!("{n} must be a finite number"));
            }
        }
        for pair in given.windows(2) {
            if pair[0].1 >= pair[1].1 {
                out.push(format!(
                    "limits out of order: {} {} is not below {} {}",
                    pair[0].0, pair[0].1, pair[1].0, pair[1].1
                ));
            }
        }
        if !(self.deadband.is_finite() && self.deadband >= 0.0) {
            out.push("deadband must be a finite number >= 0".into());
        }
        out
    }
}

/// Severity of each level of a threshold rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelSeverities {
    pub high_high: Severity,
    pub high: Severity,
    pub low: Severity,
    pub low_low: Severity,
    pub rate_of_change: Severity,
}

impl LevelSeverities {
    pub fn of(&self, level: Level) -> Severity {
        match level {
            Level::HighHigh => self.high_high,
            Level::High => self.high,
            Level::Low => self.low,
            Level::LowLow => self.low_low,
            Level::RateOfChange => self.rate_of_change,
            Level::Abnormal => self.high,
        }
    }
}

impl Default for LevelSeverities {
    fn default() -> Self {
        LevelSeverities {
            high_high: Severity::Major,
            high: Severity::Minor,
            low: Severity::Minor,
            low_low: Severity::Major,
            rate_of_change: Severity::Minor,
        }
    }
}

/// How fast a value moves, measured across a window: the change from the value at the
/// window's start to the first value at or after its end, per second. A value that stops
/// changing is measured again when its window ends ([`RateOfChange::due`]), so a rate falls
/// back to zero without new values.
#[derive(Debug, Clone)]
pub struct RateOfChange {
    /// Units per second (either direction).
    pub limit: f64,
    pub window: Duration,
    reference: Option<(f64, Instant)>,
    rate: f64,
}

impl RateOfChange {
    pub fn new(limit: f64, window: Duration) -> RateOfChange {
        RateOfChange {
            limit,
            window,
            reference: None,
            rate: 0.0,
        }
    }

    /// Feed the value at `now`: whether the rate measured last is at or above the limit.
    pub fn step(&mut self, v: f64, now: Instant) -> bool {
        match self.reference {
            None => self.reference = Some((v, now)),
            Some((v0, t0)) => {
                let dt = now.saturating_duration_since(t0);
                if dt >= self.window && !dt.is_zero() {
                    self.rate = (v - v0) / dt.as_secs_f64();
                    self.reference = Some((v, now));
                }
            }
        }
        self.exceeded()
    }

    pub fn exceeded(&self) -> bool {
        self.rate.abs() >= self.limit
    }

    /// The last rate measured (units per second).
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// When the current window ends.
    pub fn due(&self) -> Option<Instant> {
        self.reference.map(|(_, t)| t + self.window)
    }
}

/// A condition through its delays: an abnormal condition (or a change from one abnormal
/// condition to another) must hold for `on_delay` before it is reported, normal must hold for
/// `off_delay` before the condition is reported clear.
#[derive(Debug, Clone)]
pub struct Debounce<T = Level> {
    pub on_delay: Duration,
    pub off_delay: Duration,
    /// The condition reported.
    reported: Option<T>,
    /// A raw condition different from the reported one, and since when.
    pending: Option<(Option<T>, Instant)>,
}

impl<T> Default for Debounce<T> {
    fn default() -> Self {
        Debounce {
            on_delay: Duration::ZERO,
            off_delay: Duration::ZERO,
            reported: None,
            pending: None,
        }
    }
}

impl<T: Copy + PartialEq> Debounce<T> {
    pub fn new(on_delay: Duration, off_delay: Duration) -> Debounce<T> {
        Debounce {
            on_delay,
            off_delay,
            reported: None,
            pending: None,
        }
    }

    /// Start from a level known from before (a restart restoring the journal).
    pub fn restore(&mut self, level: Option<T>) {
        self.reported = level;
        self.pending = None;
    }

    pub fn reported(&self) -> Option<T> {
        self.reported
    }

    /// Feed the raw level at `now`; returns the new reported level when it changes.
    pub fn step(&mut self, raw: Option<T>, now: Instant) -> Option<Option<T>> {
        if raw == self.reported {
            self.pending = None;
            return None;
        }
        let since = match self.pending {
            Some((level, since)) if level == raw => since,
            _ => {
                self.pending = Some((raw, now));
                now
            }
        };
        let delay = if raw.is_some() { self.on_delay } else { self.off_delay };
        if now.duration_since(since) >= delay {
            self.reported = raw;
            self.pending = None;
            Some(raw)
        } else {
            None
        }
    }

    /// When the pending change would be reported if the raw level stays: the engine's next
    /// timer for this condition.
    pub fn due(&self) -> Option<Instant> {
        let (raw, since) = self.pending?;
        Some(since + if raw.is_some() { self.on_delay } else { self.off_delay })
    }
}

/// At most `max` raises of one alarm within `window`; the raises beyond are held back and
/// counted, and the count is reported once the window lets raises through again.
#[derive(Debug, Clone)]
pub struct FlapLimit {
    pub max: usize,
    pub window: Duration,
    raises: std::collections::VecDeque<Instant>,
    held_back: u64,
}

impl FlapLimit {
    pub fn new(max: usize, window: Duration) -> FlapLimit {
        FlapLimit {
            max: max.max(1),
            window,
            raises: Default::default(),
            held_back: 0,
        }
    }

    /// Whether a raise at `now` may be announced. When it may and raises were held back
    /// before, their count comes with it (to be journaled as `suppressed`).
    pub fn admit(&mut self, now: Instant) -> (bool, u64) {
        while self
            .raises
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            self.raises.pop_front();
        }
        if self.raises.len() >= self.max {
            self.held_back += 1;
            return (false, 0);
        }
        self.raises.push_back(now);
        (true, std::mem::take(&mut self.held_back))
    }

    pub fn held_back(&self) -> u64 {
        self.held_back
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            high_high: Some(260.0),
            high: Some(253.0),
            low: Some(207.0),
            low_low: Some(200.0),
            deadband: 2.0,
        }
    }

    #[test]
    fn levels_enter_at_the_limit_and_leave_past_the_deadband() {
        let l = limits();
        assert_eq!(l.level(230.0, None), None);
        assert_eq!(l.level(253.0, None), Some(Level::High));
        assert_eq!(
            l.level(252.0, Some(Level::High)),
            Some(Level::High),
            "within the deadband"
        );
        assert_eq!(l.level(251.0, Some(Level::High)), None, "past the deadband");
        assert_eq!(l.level(252.0, None), None, "not entered below the limit");
        assert_eq!(l.level(261.0, Some(Level::High)), Some(Level::HighHigh));
        assert_eq!(l.level(259.0, Some(Level::HighHigh)), Some(Level::HighHigh));
        assert_eq!(
            l.level(257.0, Some(Level::HighHigh)),
            Some(Level::High),
            "back to high, not normal"
        );
        assert_eq!(l.level(207.0, None), Some(Level::Low));
        assert_eq!(l.level(208.5, Some(Level::Low)), Some(Level::Low));
        assert_eq!(l.level(209.5, Some(Level::Low)), None);
        assert_eq!(l.level(199.0, None), Some(Level::LowLow));
        assert_eq!(l.level(201.0, Some(Level::LowLow)), Some(Level::LowLow));
        assert_eq!(l.level(203.0, Some(Level::LowLow)), Some(Level::Low));
    }

    #[test]
    fn limits_out_of_order_are_refused() {
        let mut l = limits();
        assert!(l.problems().is_empty());
        l.low = Some(255.0);
        assert!(
            l.problems().iter().any(|p| p.contains("out of order")),
            "{:?}",
            l.problems()
        );
        let none = Limits {
            high_high: None,
            high: None,
            low: None,
            low_low: None,
            deadband: -1.0,
        };
        assert!(!none.any());
        assert_eq!(none.problems().len(), 1, "the deadband");
    }

    #[test]
    fn a_rate_is_measured_across_its_window_and_falls_back_when_the_value_stops() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut r = RateOfChange::new(0.5, s(10));
        assert!(!r.step(100.0, t0), "no rate before a window has passed");
        assert!(!r.step(104.0, t0 + s(5)), "inside the window: not measured yet");
        assert_eq!(r.due(), Some(t0 + s(10)));
        // 106 - 100 over 10 s = 0.6/s.
        assert!(r.step(106.0, t0 + s(10)));
        assert!((r.rate() - 0.6).abs() < 1e-9);
        // Falling as fast counts too.
        assert!(r.step(99.0, t0 + s(20)), "-0.7/s");
        // The value stops: measured at the window's end, the rate is zero.
        assert!(!r.step(99.0, t0 + s(30)));
        assert_eq!(r.rate(), 0.0);
    }

    #[test]
    fn on_delay_and_off_delay_hold_changes_back() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d: Debounce = Debounce::new(ms(3000), ms(1000));
        assert_eq!(d.step(Some(Level::High), t0), None);
        assert_eq!(d.due(), Some(t0 + ms(3000)));
        assert_eq!(d.step(Some(Level::High), t0 + ms(2999)), None);
        assert_eq!(d.step(Some(Level::High), t0 + ms(3000)), Some(Some(Level::High)));
        // A short dip does not clear it.
        assert_eq!(d.step(None, t0 + ms(4000)), None);
        assert_eq!(d.step(Some(Level::High), t0 + ms(4500)), None);
        assert_eq!(d.due(), None, "back at the reported level: nothing pending");
        assert_eq!(d.step(None, t0 + ms(5000)), None);
        assert_eq!(d.step(None, t0 + ms(6000)), Some(None));
        assert_eq!(d.reported(), None);
        // A blip shorter than the on-delay never raises.
        assert_eq!(d.step(Some(Level::High), t0 + ms(7000)), None);
        assert_eq!(d.step(None, t0 + ms(8000)), None);
        assert_eq!(d.step(None, t0 + ms(20_000)), None);
    }

    #[test]
    fn without_delays_changes_are_immediate() {
        let t0 = Instant::now();
        let mut d: Debounce = Debounce::default();
        assert_eq!(d.step(Some(Level::Abnormal), t0), Some(Some(Level::Abnormal)));
        assert_eq!(d.step(None, t0), Some(None));
    }

    #[test]
    fn a_flapping_alarm_is_held_back_and_counted() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut f = FlapLimit::new(3, s(60));
        assert_eq!(f.admit(t0), (true, 0));
        assert_eq!(f.admit(t0 + s(1)), (true, 0));
        assert_eq!(f.admit(t0 + s(2)), (true, 0));
        assert_eq!(f.admit(t0 + s(3)), (false, 0));
        assert_eq!(f.admit(t0 + s(4)), (false, 0));
        assert_eq!(f.held_back(), 2);
        // The first raise leaves the window at 60 s: the next is announced with the count.
        assert_eq!(f.admit(t0 + s(60)), (true, 2));
        assert_eq!(f.held_back(), 0);
    }
}
