//! What both load-management strategies share: the parameters, what a decision is given (the
//! meter's phases and each side as its station reports it), what it answers (the zone and each
//! side's setpoint with its reason), the zones with their hysteresis, and what is remembered of
//! each side between decisions (connection, queue, grant, skip). No IO: times are seconds on
//! the caller's clock.

/// IEC 61851: no session may be asked for less; below it a session is paused.
pub const MIN_CHARGING_A: f64 = 6.0;

/// The controller's parameters (defaults from the Green'Up manual).
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Yellow/red boundary, A per phase.
    pub max_current_a: f64,
    /// Green/yellow boundary, A per phase.
    pub max_charging_current_a: f64,
    /// Hysteresis on the way back to a lower zone, % of the maximum current.
    pub hysteresis_pct: f64,
    /// First and second reduction steps, % of each side's rated current.
    pub first_step_pct: f64,
    pub second_step_pct: f64,
    /// A session is never stopped before it received this charge, Ah.
    pub guaranteed_ah: f64,
    /// Off: the current is taken as unlimited (every request granted at full current).
    pub load_control: bool,
    /// Off: nothing is granted or reduced (commissioning).
    pub control_logic: bool,
    /// A request is granted only after waiting this long, s.
    pub hold_s: f64,
    /// A granted side that has not started charging after this long is skipped, s...
    pub waiting_s: f64,
    /// ...for this long, s.
    pub skip_s: f64,
    /// After a grant or a raise, nothing more is granted or raised for this long (the vehicle
    /// ramps up and the meter reports it), s.
    pub settle_s: f64,
    /// Fair sharing: a priority session's share against a normal one's.
    pub priority_weight: f64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            max_current_a: 250.0,
            max_charging_current_a: 230.0,
            hysteresis_pct: 0.0,
            first_step_pct: 75.0,
            second_step_pct: 50.0,
            guaranteed_ah: 32.0,
            load_control: true,
            control_logic: true,
            hold_s: 60.0,
            waiting_s: 90.0,
            skip_s: 300.0,
            settle_s: 10.0,
            priority_weight: 2.0,
        }
    }
}

/// The dlm profile's points of the parameters ([`Params::get`], [`Params::set`]).
pub const PARAMETER_POINTS: [&str; 13] = [
    "max_current",
    "max_charging_current",
    "hysteresis",
    "first_step",
    "second_step",
    "guaranteed_charge",
    "load_control",
    "control_logic",
    "hold_time",
    "waiting_time",
    "skip_time",
    "settle_time",
    "priority_weight",
];

fn flag(on: bool) -> f64 {
    if on {
        1.0
    } else {
        0.0
    }
}

impl Params {
    /// The value of the parameter served as dlm point `point` (switches as 0/1).
    pub fn get(&self, point: &str) -> Option<f64> {
        Some(match point {
            "max_current" => self.max_current_a,
            "max_charging_current" => self.max_charging_current_a,
            "hysteresis" => self.hysteresis_pct,
            "first_step" => self.first_step_pct,
            "second_step" => self.second_step_pct,
            "guaranteed_charge" => self.guaranteed_ah,
            "load_control" => flag(self.load_control),
            "control_logic" => flag(self.control_logic),
            "hold_time" => self.hold_s,
            "waiting_time" => self.waiting_s,
            "skip_time" => self.skip_s,
            "settle_time" => self.settle_s,
            "priority_weight" => self.priority_weight,
            _ => return None,
        })
    }

    /// Set the parameter served as dlm point `point`; false when there is none.
    pub fn set(&mut self, point: &str, v: f64) -> bool {
        match point {
            "max_current" => self.max_current_a = v,
            "max_charging_current" => self.max_charging_current_a = v,
            "hysteresis" => self.hysteresis_pct = v,
            "first_step" => self.first_step_pct = v,
            "second_step" => self.second_step_pct = v,
            "guaranteed_charge" => self.guaranteed_ah = v,
            "load_control" => self.load_control = v != 0.0,
            "control_logic" => self.control_logic = v != 0.0,
            "hold_time" => self.hold_s = v,
            "waiting_time" => self.waiting_s = v,
            "skip_time" => self.skip_s = v,
            "settle_time" => self.settle_s = v,
            "priority_weight" => self.priority_weight = v,
            _ => return false,
        }
        true
    }

    /// The current of a step (`pct` of `rated_a`), in whole amperes, never below the IEC 61851
    /// minimum nor above the rating.
    pub fn step_limit(rated_a: f64, pct: f64) -> f64 {
        (rated_a * pct / 100.0).floor().max(MIN_CHARGING_A).min(rated_a)
    }

    /// What is wrong with these parameters, if anything (the config and protocol writes ask).
    pub fn problem(&self) -> Option<String> {
        let finite = [
            self.max_current_a,
            self.max_charging_current_a,
            self.hysteresis_pct,
            self.first_step_pct,
            self.second_step_pct,
            self.guaranteed_ah,
            self.hold_s,
            self.waiting_s,
            self.skip_s,
            self.settle_s,
            self.priority_weight,
        ];
        if finite.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Some("every parameter is a finite number >= 0".into());
        }
        if self.max_current_a <= 0.0 {
            return Some("max_current_a must be > 0".into());
        }
        if self.max_charging_current_a > self.max_current_a {
            return Some(format!(
                "max_charging_current_a ({} A) is above max_current_a ({} A): the green zone would reach past the red border",
                self.max_charging_current_a, self.max_current_a
            ));
        }
        if self.second_step_pct > self.first_step_pct || self.first_step_pct > 100.0 {
            return Some(format!(
                "the steps must be second <= first <= 100 % (first {} %, second {} %)",
                self.first_step_pct, self.second_step_pct
            ));
        }
        if self.hysteresis_pct > 50.0 {
            return Some(format!("hysteresis_pct {} is above 50 %", self.hysteresis_pct));
        }
        None
    }
}

/// The zone of the most loaded phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Green,
    Yellow,
    Red,
}

impl Zone {
    /// The zone of `measured_a` coming from `before`: up at once, down only past the hysteresis.
    pub fn of(before: Zone, measured_a: f64, p: &Params) -> Zone {
        let h = p.max_current_a * p.hysteresis_pct / 100.0;
        if measured_a > p.max_current_a || (before == Zone::Red && measured_a > p.max_current_a - h) {
            Zone::Red
        } else if measured_a >= p.max_charging_current_a
            || (before != Zone::Green && measured_a >= p.max_charging_current_a - h)
        {
            Zone::Yellow
        } else {
            Zone::Green
        }
    }

    /// The number served for it (the dlm profile's `zone` labels).
    pub fn code(self) -> f64 {
        match self {
            Zone::Green => 0.0,
            Zone::Yellow => 1.0,
            Zone::Red => 2.0,
        }
    }
}

/// A side's state as its station reports it (the charger profile's `state` labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideState {
    Available,
    Charging,
    /// A vehicle is connected and not charging: not authorised, or paused.
    Waiting,
    /// The vehicle stopped drawing current (full, or its own schedule).
    Suspended,
    Fault,
    Off,
}

impl SideState {
    /// From the charger profile's state number.
    pub fn from_code(code: f64) -> SideState {
        match code.round() as i64 {
            1 => SideState::Charging,
            2 => SideState::Waiting,
            3 => SideState::Suspended,
            4 => SideState::Fault,
            5 => SideState::Off,
            _ => SideState::Available,
        }
    }

    /// A vehicle is connected to the side.
    pub fn connected(self) -> bool {
        matches!(self, SideState::Charging | SideState::Waiting | SideState::Suspended)
    }
}

/// One side as measured at a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    pub state: SideState,
    pub rated_a: f64,
    /// The phases the side loads (a single-phase side loads one).
    pub phases: [bool; 3],
    pub priority: bool,
    /// Charge of the current session, Ah.
    pub session_ah: f64,
    /// Measured current, A (per loaded phase).
    pub current_a: f64,
}

/// Why a side is where it is: served with its setpoint on every protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No vehicle.
    Idle,
    /// Connected, waiting for a grant.
    Queued,
    /// Authorised at its rated current.
    Granted,
    /// Authorised below its rated current.
    Reduced,
    /// Paused to leave the red zone.
    Stopped,
    /// Granted and did not start: ignored until the skip time is over.
    Skipped,
    /// Load control is off: every session at its rated current.
    Unlimited,
    /// Control logic is off: nothing is decided.
    Manual,
    /// The safe state: the meter is silent or bad, or a station refused a write.
    Safe,
}

impl Reason {
    /// The number served for it (the dlm profile's `reason` labels).
    pub fn code(self) -> f64 {
        match self {
            Reason::Idle => 0.0,
            Reason::Queued => 1.0,
            Reason::Granted => 2.0,
            Reason::Reduced => 3.0,
            Reason::Stopped => 4.0,
            Reason::Skipped => 5.0,
            Reason::Unlimited => 6.0,
            Reason::Manual => 7.0,
            Reason::Safe => 8.0,
        }
    }
}

/// A side's setpoint after a decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setpoint {
    /// Current limit, A (0: paused; otherwise at least [`MIN_CHARGING_A`]).
    pub limit_a: f64,
    pub reason: Reason,
    /// Place in the queue (1 = next), 0 when not queued.
    pub queue: usize,
}

impl Setpoint {
    pub fn paused(reason: Reason) -> Setpoint {
        Setpoint {
            limit_a: 0.0,
            reason,
            queue: 0,
        }
    }
}

/// One decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The zone of the measured load.
    pub zone: Zone,
    /// The most loaded phase as measured, A.
    pub measured_a: f64,
    /// The current left for charging below the green/yellow border on the most constrained
    /// phase, with the sessions' own current counted as available, A.
    pub available_a: f64,
    pub setpoints: Vec<Setpoint>,
}

/// A load-management strategy: one decision from what was measured at `now` (s).
pub trait Strategy: Send {
    fn decide(&mut self, now: f64, phases_a: [f64; 3], sides: &[Side]) -> Decision;
    fn params(&self) -> &Params;
    fn set_params(&mut self, params: Params);
}

/// What is remembered of a side between decisions.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// When the side was first seen connected, without a break.
    pub connected_since: Option<f64>,
    /// When it started waiting for a grant (None: not queued).
    pub queued_since: Option<f64>,
    /// When it was granted and has not yet been seen charging.
    pub granted_at: Option<f64>,
    pub skipped_until: Option<f64>,
    /// The setpoint in force.
    pub setpoint: Setpoint,
}

impl Default for Track {
    fn default() -> Track {
        Track {
            connected_since: None,
            queued_since: None,
            granted_at: None,
            skipped_until: None,
            setpoint: Setpoint::paused(Reason::Idle),
        }
    }
}

impl Track {
    pub fn running(&self) -> bool {
        self.setpoint.limit_a > 0.0
    }
}

/// The bookkeeping both strategies do before deciding: connections, the start of a granted
/// side (or its skip after the waiting time), skips that are over, vehicles that started on
/// their own (taken as running at the limit they were found at).
pub fn observe(tracks: &mut Vec<Track>, now: f64, sides: &[Side], p: &Params) {
    tracks.resize_with(sides.len(), Track::default);
    for (t, s) in tracks.iter_mut().zip(sides) {
        if !s.state.connected() {
            *t = Track::default();
            continue;
        }
        t.connected_since.get_or_insert(now);
        if t.skipped_until.is_some_and(|u| now >= u) {
            t.skipped_until = None;
            t.setpoint = Setpoint::paused(Reason::Queued);
        }
        if s.state == SideState::Charging {
            t.granted_at = None;
            t.queued_since = None;
            let paused_by_us = matches!(t.setpoint.reason, Reason::Stopped | Reason::Skipped);
            if !t.running() && t.skipped_until.is_none() && !paused_by_us {
                // Started without a grant (a station that does not wait for one): running at
                // its rated current until the strategy says otherwise. A session paused here
                // that still draws while it ramps down is not one.
                t.setpoint = Setpoint {
                    limit_a: s.rated_a,
                    reason: Reason::Granted,
                    queue: 0,
                };
            }
        }
        if let Some(g) = t.granted_at {
            if s.state != SideState::Charging && now - g >= p.waiting_s {
                t.setpoint = Setpoint::paused(Reason::Skipped);
                t.granted_at = None;
                t.queued_since = None;
                t.skipped_until = Some(now + p.skip_s);
            }
        }
        if !t.running() && t.skipped_until.is_none() && s.state == SideState::Waiting {
            t.queued_since.get_or_insert(now);
            if t.setpoint.reason == Reason::Idle {
                t.setpoint.reason = Reason::Queued;
            }
        }
    }
}

/// The queued sides (held or not) in grant order: priority first, then the one waiting longest;
/// each with the time it queued.
fn queue_order(tracks: &[Track], sides: &[Side]) -> Vec<(usize, f64)> {
    let mut q: Vec<(usize, f64, bool)> = tracks
        .iter()
        .zip(sides)
        .enumerate()
        .filter(|(_, (t, _))| !t.running() && t.skipped_until.is_none())
        .filter_map(|(i, (t, s))| Some((i, t.queued_since?, s.priority)))
        .collect();
    q.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.total_cmp(&b.1)).then(a.0.cmp(&b.0)));
    q.into_iter().map(|(i, since, _)| (i, since)).collect()
}

/// The queued sides that may be granted at `now`, in grant order: held long enough, not
/// skipped.
pub fn grant_order(tracks: &[Track], sides: &[Side], now: f64, p: &Params) -> Vec<usize> {
    queue_order(tracks, sides)
        .into_iter()
        .filter(|(_, since)| now - since >= p.hold_s)
        .map(|(i, _)| i)
        .collect()
}

/// Number every queued side (held or not) in grant order.
pub fn number_queue(tracks: &mut [Track], sides: &[Side]) {
    let order = queue_order(tracks, sides);
    for t in tracks.iter_mut() {
        t.setpoint.queue = 0;
    }
    for (n, (i, _)) in order.into_iter().enumerate() {
        tracks[i].setpoint.queue = n + 1;
    }
}

/// What both strategies do when the switches say so; true when they did (nothing else is
/// decided then). Control logic off: nothing is decided, the reasons say so. Load control off:
/// every connected side not skipped at its rating.
pub fn switched_off(tracks: &mut [Track], sides: &[Side], now: f64, p: &Params) -> bool {
    if !p.control_logic {
        for (t, s) in tracks.iter_mut().zip(sides) {
            if s.state.connected() {
                t.setpoint.reason = Reason::Manual;
            }
        }
        return true;
    }
    if !p.load_control {
        for (t, s) in tracks.iter_mut().zip(sides) {
            if s.state.connected() && t.skipped_until.is_none() {
                if !t.running() {
                    t.granted_at = Some(now);
                    t.queued_since = None;
                }
                t.setpoint = Setpoint {
                    limit_a: s.rated_a,
                    reason: Reason::Unlimited,
                    queue: 0,
                };
            }
        }
        return true;
    }
    false
}

/// The decision both strategies answer: the queue numbered, the zone, the measured and
/// available current, each side's setpoint.
pub fn decision(zone: Zone, phases_a: [f64; 3], tracks: &mut [Track], sides: &[Side], p: &Params) -> Decision {
    number_queue(tracks, sides);
    Decision {
        zone,
        measured_a: max_phase(phases_a),
        available_a: available(phases_a, sides, p),
        setpoints: tracks.iter().map(|t| t.setpoint).collect(),
    }
}

/// The running session to stop next to leave the red zone: non-priority, that received the
/// guaranteed charge, connected longest.
pub fn next_to_stop(tracks: &[Track], sides: &[Side], p: &Params) -> Option<usize> {
    tracks
        .iter()
        .zip(sides)
        .enumerate()
        .filter(|(_, (t, s))| t.running() && !s.priority && s.session_ah >= p.guaranteed_ah)
        .min_by(|(i, (a, _)), (j, (b, _))| {
            a.connected_since
                .unwrap_or(0.0)
                .total_cmp(&b.connected_since.unwrap_or(0.0))
                .then(i.cmp(j))
        })
        .map(|(i, _)| i)
}

/// The session to stop when the site is still above its maximum current and no session may be
/// stopped by the manual's rule (none has received its guaranteed charge): the maximum current
/// is the hard limit. Non-priority before priority, then the one that received the most charge
/// (the closest to its guarantee).
pub fn next_to_force_stop(tracks: &[Track], sides: &[Side]) -> Option<usize> {
    tracks
        .iter()
        .zip(sides)
        .enumerate()
        .filter(|(_, (t, _))| t.running())
        .min_by(|(i, (_, a)), (j, (_, b))| {
            a.priority
                .cmp(&b.priority)
                .then(b.session_ah.total_cmp(&a.session_ah))
                .then(i.cmp(j))
        })
        .map(|(i, _)| i)
}

/// The load of each phase once the written limits are followed: a session drawing more than
/// its new limit will come down to it; one granted within the settle time will come up to it.
pub fn predicted(phases_a: [f64; 3], tracks: &[Track], sides: &[Side], now: f64, p: &Params) -> [f64; 3] {
    let mut out = phases_a;
    for (t, s) in tracks.iter().zip(sides) {
        let limit = t.setpoint.limit_a;
        let coming = match t.granted_at {
            Some(g) if now - g < p.settle_s => (limit - s.current_a).max(0.0),
            _ => 0.0,
        };
        let delta = coming - (s.current_a - limit).max(0.0);
        for (k, on) in s.phases.iter().enumerate() {
            if *on {
                out[k] = (out[k] + delta).max(0.0);
            }
        }
    }
    out
}

/// The most loaded phase.
pub fn max_phase(phases_a: [f64; 3]) -> f64 {
    phases_a.iter().copied().fold(0.0, f64::max)
}

/// The current a side may still take on its most constrained phase below `border`, given the
/// load `phases_a`.
pub fn headroom(phases_a: [f64; 3], side: &Side, border: f64) -> f64 {
    side.phases
        .iter()
        .zip(phases_a)
        .filter(|(on, _)| **on)
        .map(|(_, a)| border - a)
        .fold(f64::INFINITY, f64::min)
}

/// The current left for charging below the green/yellow border on the most constrained phase,
/// the sessions' own current counted as available.
pub fn available(phases_a: [f64; 3], sides: &[Side], p: &Params) -> f64 {
    let mut other = phases_a;
    for s in sides {
        for (k, on) in s.phases.iter().enumerate() {
            if *on {
                other[k] -= s.current_a;
            }
        }
    }
    (p.max_charging_current_a - max_phase(other)).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_go_up_at_once_and_down_past_the_hysteresis() {
        let p = Params {
            hysteresis_pct: 4.0, // 10 A of 250
            ..Params::default()
        };
        assert_eq!(Zone::of(Zone::Green, 229.9, &p), Zone::Green);
        assert_eq!(Zone::of(Zone::Green, 230.0, &p), Zone::Yellow);
        assert_eq!(Zone::of(Zone::Yellow, 251.0, &p), Zone::Red);
        assert_eq!(Zone::of(Zone::Red, 245.0, &p), Zone::Red, "within the hysteresis");
        assert_eq!(Zone::of(Zone::Red, 239.0, &p), Zone::Yellow);
        assert_eq!(Zone::of(Zone::Yellow, 221.0, &p), Zone::Yellow, "within the hysteresis");
        assert_eq!(Zone::of(Zone::Yellow, 219.0, &p), Zone::Green);
        let p0 = Params::default();
        assert_eq!(
            Zone::of(Zone::Red, 249.0, &p0),
            Zone::Yellow,
            "no hysteresis by default"
        );
    }

    #[test]
    fn parameters_that_contradict_each_other_are_refused() {
        assert_eq!(Params::default().problem(), None);
        let p = Params {
            max_charging_current_a: 300.0,
            ..Params::default()
        };
        assert!(p.problem().is_some_and(|m| m.contains("above max_current_a")));
        let p = Params {
            first_step_pct: 40.0,
            ..Params::default()
        };
        assert!(p.problem().is_some());
        let p = Params {
            hold_s: f64::NAN,
            ..Params::default()
        };
        assert!(p.problem().is_some());
    }

    #[test]
    fn every_parameter_point_reads_back_what_was_set() {
        let mut p = Params::default();
        for (i, name) in PARAMETER_POINTS.iter().enumerate() {
            let v = if matches!(*name, "load_control" | "control_logic") {
                0.0
            } else {
                i as f64 + 0.5
            };
            assert!(p.set(name, v), "{name}");
            assert_eq!(p.get(name), Some(v), "{name}");
        }
        assert!(!p.set("zone", 1.0));
        assert_eq!(p.get("zone"), None);
    }

    #[test]
    fn a_single_phase_side_has_the_headroom_of_its_phase() {
        let side = Side {
            state: SideState::Waiting,
            rated_a: 16.0,
            phases: [false, true, false],
            priority: false,
            session_ah: 0.0,
            current_a: 0.0,
        };
        assert_eq!(headroom([90.0, 50.0, 95.0], &side, 100.0), 50.0);
    }
}
