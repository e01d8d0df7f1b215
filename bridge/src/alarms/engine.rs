//! The alarm engine: one instance per alarm (a threshold rule on a point, a device state its
//! profile declares abnormal, a device's communication, the quality of a device's points),
//! evaluated when its point changes and on a timer for delays, rates, shelving, communication
//! and quality; operator actions (acknowledge, shelve, disable). It returns the transitions to
//! journal and applies them to its own state at once; the service ([`super::Alarms`]) commits
//! them before anyone hears of them. Time comes from the caller, so tests move it.

use super::condition::{Debounce, FlapLimit, LevelSeverities, Limits, RateOfChange};
use super::model::{Actor, AlarmState, Kind, Level, Severity, Source, Transition};
use super::section::AlarmSettings;
use crate::config::Config;
use crate::store::{PointIdx, Store};
use busbar_core::quality::Quality;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

/// What an instance watches.
#[derive(Debug, Clone)]
enum Watch {
    Threshold {
        limits: Limits,
        severities: LevelSeverities,
        rate: Option<RateOfChange>,
    },
    /// Raw state -> severity, from the profile.
    DeviceState(BTreeMap<i64, Severity>),
    Communication(Severity),
    /// Points of an answering device that are stale or out of their range.
    Quality(Severity),
}

/// How many point names a quality alarm's message lists.
const QUALITY_NAMES: usize = 3;

/// A condition: the level, and for device states the raw state that is abnormal.
type Cond = (Level, i64);

#[derive(Debug, Clone)]
struct Instance {
    id: String,
    source: Source,
    device: usize,
    device_name: String,
    point: Option<PointIdx>,
    /// `v1`, `tank3.water_alarm`; empty for communication.
    point_id: String,
    watch: Watch,
    latching: bool,
    message: Option<String>,
    debounce: Debounce<Cond>,
    flap: FlapLimit,
    /// The condition as journaled (a raise held back by the flapping limit is not).
    announced: Option<Cond>,
    state: AlarmState,
    severity: Severity,
    level: Option<Level>,
    value: Option<f64>,
    text: String,
    /// When its last transition happened.
    changed: Option<SystemTime>,
}

/// An alarm as the protocols show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmView {
    /// Its number, from 1, in the order alarms are defined (stable for a configuration): the
    /// index protocols give it (SNMP busbarAlarmIndex).
    pub number: u32,
    pub id: String,
    pub source: Source,
    pub device: String,
    pub point: String,
    pub severity: Severity,
    pub level: Option<Level>,
    pub value: Option<f64>,
    pub message: String,
    pub state: AlarmState,
    /// When its last transition happened (`None`: never, since the journal began).
    #[serde(serialize_with = "rfc3339_opt")]
    pub changed: Option<SystemTime>,
}

fn rfc3339_opt<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&busbar_core::time::rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// What an operator asks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    Acknowledge,
    Shelve(Duration),
    Unshelve,
    Disable,
    Enable,
    /// A comment, in the actor's `comment` (which must not be empty).
    Comment,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActionError {
    #[error("no alarm `{0}`")]
    Unknown(String),
    #[error("alarm `{0}` is already {1}")]
    Already(String, &'static str),
    #[error("alarm `{0}` is not shelved")]
    NotShelved(String),
    #[error("a shelving time must be between 1 s and 30 days")]
    BadDuration,
    #[error("a comment must not be empty")]
    EmptyComment,
}

pub struct Engine {
    instances: Vec<Instance>,
    by_id: HashMap<String, usize>,
    by_point: HashMap<PointIdx, Vec<usize>>,
    /// Instances that time alone can change: communication and quality alarms, rules with
    /// a rate of change.
    timed: Vec<usize>,
}

fn unix_ms(t: SystemTime) -> i64 {
    super::journal::unix_ms(t)
}

fn fmt_num(v: f64) -> String {
    let r = (v * 100.0).round() / 100.0;
    if r == r.trunc() {
        format!("{r:.0}")
    } else {
        format!("{r}")
    }
}

impl Engine {
    /// Every alarm the settings and the profiles define for the configured devices.
    pub fn new(config: &Config, store: &Store, s: &AlarmSettings) -> Engine {
        let mut e = Engine {
            instances: Vec::new(),
            by_id: HashMap::new(),
            by_point: HashMap::new(),
            timed: Vec::new(),
        };
        let flap = FlapLimit::new(s.flap_max, s.flap_window);
        let add = |e: &mut Engine, mut i: Instance| {
            if e.by_id.contains_key(&i.id) {
                return;
            }
            i.flap = flap.clone();
            let n = e.instances.len();
            e.by_id.insert(i.id.clone(), n);
            if let Some(p) = i.point {
                e.by_point.entry(p).or_default().push(n);
            }
            let timed = matches!(i.source, Source::Communication | Source::Quality)
                || matches!(i.watch, Watch::Threshold { rate: Some(_), .. });
            if timed {
                e.timed.push(n);
            }
            e.instances.push(i);
        };
        let blank = |id: String, source, device: usize, point, point_id: String, watch, severity| Instance {
            id,
            source,
            device,
            device_name: config.devices[device].name.clone(),
            point,
            point_id,
            watch,
            latching: false,
            message: None,
            debounce: Debounce::default(),
            flap: FlapLimit::new(1, Duration::ZERO),
            announced: None,
            state: AlarmState {
                acknowledged: true,
                ..AlarmState::default()
            },
            severity,
            level: None,
            value: None,
            text: String::new(),
            changed: None,
        };
        for r in &s.thresholds {
            let dev = &config.devices[r.device];
            let p = &dev.profile.points[r.point];
            let mut i = blank(
                format!("threshold/{}/{}/{}", r.rule, dev.name, p.id),
                Source::Threshold,
                r.device,
                store.point_of(r.device, r.point),
                p.id.clone(),
                Watch::Threshold {
                    limits: r.limits.clone(),
                    severities: r.severities,
                    rate: r.rate.map(|(limit, window)| RateOfChange::new(limit, window)),
                },
                r.severities.high,
            );
            i.latching = r.latching;
            i.message = r.message.clone();
            i.debounce = Debounce::new(r.on_delay, r.off_delay);
            add(&mut e, i);
        }
        if s.device_alarms {
            for (d, dev) in config.devices.iter().enumerate() {
                for &k in &dev.acquired {
                    let p = &dev.profile.points[k];
                    let Some(worst) = p.alarm.values().max().copied() else {
                        continue;
                    };
                    let i = blank(
                        format!("device/{}/{}", dev.name, p.id),
                        Source::Device,
                        d,
                        store.point_of(d, k),
                        p.id.clone(),
                        Watch::DeviceState(p.alarm.clone()),
                        worst,
                    );
                    add(&mut e, i);
                }
            }
        }
        if let Some((severity, delay)) = s.communication {
            for (d, dev) in config.devices.iter().enumerate() {
                let mut i = blank(
                    format!("communication/{}", dev.name),
                    Source::Communication,
                    d,
                    None,
                    String::new(),
                    Watch::Communication(severity),
                    severity,
                );
                i.debounce = Debounce::new(delay, Duration::ZERO);
                add(&mut e, i);
            }
        }
        if let Some((severity, delay)) = s.quality {
            for (d, dev) in config.devices.iter().enumerate() {
                let mut i = blank(
                    format!("quality/{}", dev.name),
                    Source::Quality,
                    d,
                    None,
                    String::new(),
                    Watch::Quality(severity),
                    severity,
                );
                i.debounce = Debounce::new(delay, Duration::ZERO);
                add(&mut e, i);
            }
        }
        e
    }

    pub fn len(&self) -> usize {
        self.instances.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// Take the state each alarm had in the journal; its condition is re-evaluated with the
    /// next values.
    pub fn restore(&mut self, latest: &[Transition]) {
        for t in latest {
            let Some(&n) = self.by_id.get(&t.alarm) else {
                continue;
            };
            let i = &mut self.instances[n];
            i.state = t.state;
            i.severity = t.severity;
            i.level = t.level;
            i.value = t.value;
            i.text = t.message.clone();
            i.changed = Some(t.time);
            // Every transition carries the condition's level (none when normal).
            let cond = t.level.map(|l| match i.watch {
                Watch::DeviceState(_) => (l, t.value.map_or(0, |v| v.round() as i64)),
                _ => (l, 0),
            });
            i.announced = cond;
            i.debounce.restore(cond);
        }
    }

    /// The raw condition of an instance from the store, `None` when unknown (no value, bad
    /// quality): an unknown condition leaves the alarm as it is.
    fn raw(i: &mut Instance, store: &Store, at: Instant) -> Option<(Option<Cond>, Option<f64>)> {
        let reported = i.debounce.reported().map(|c| c.0);
        match &mut i.watch {
            Watch::Communication(_) => {
                let st = store.status(i.device)?;
                // Never polled yet: unknown, not failed.
                if st.polls == 0 {
                    return None;
                }
                Some(((!st.online).then_some((Level::Abnormal, 0)), None))
            }
            Watch::Quality(_) => {
                {
                    let st = store.status(i.device)?;
                    // Unknown while the device is silent: its communication alarm tells.
                    if st.polls == 0 || !st.online {
                        return None;
                    }
                }
                let bad = Engine::bad_point_count(store, i.device);
                Some(((bad > 0).then_some((Level::Abnormal, 0)), Some(bad as f64)))
            }
            Watch::Threshold { limits, rate, .. } => {
                let s = store.sample(i.point?)?;
                if !matches!(s.quality, Quality::Good | Quality::Stale) {
                    return None;
                }
                let v = s.value?.as_f64()?;
                let too_fast = rate.as_mut().is_some_and(|r| r.step(v, at));
                let level = limits.level(v, reported).or(too_fast.then_some(Level::RateOfChange));
                Some((level.map(|l| (l, 0)), Some(v)))
            }
            Watch::DeviceState(states) => {
                let s = store.sample(i.point?)?;
                if !matches!(s.quality, Quality::Good | Quality::Stale) {
                    return None;
                }
                let v = s.value?.as_f64()?;
                let code = v.round() as i64;
                Some((states.contains_key(&code).then_some((Level::Abnormal, code)), Some(v)))
            }
        }
    }

    /// The acquired points of device `d` that are stale or out of their range, with that
    /// quality (constants are never stale), through `each`.
    fn for_bad_points(store: &Store, d: usize, mut each: impl FnMut(PointIdx, Quality)) {
        let samples = store.samples();
        for p in store.device_points(d) {
            if !store.meta(p).is_some_and(|m| m.acquired && !m.constant) {
                continue;
            }
            if let Some(q) = samples.get(p as usize).map(|s| s.quality) {
                if matches!(q, Quality::Stale | Quality::OutOfRange) {
                    each(p, q);
                }
            }
        }
    }

    /// How many points of device `d` are stale or out of range (evaluated every tick: no list).
    fn bad_point_count(store: &Store, d: usize) -> usize {
        let mut n = 0;
        Engine::for_bad_points(store, d, |_, _| n += 1);
        n
    }

    /// The stale or out-of-range points of device `d`, for a message.
    fn bad_points(store: &Store, d: usize) -> Vec<(PointIdx, Quality)> {
        let mut out = Vec::new();
        Engine::for_bad_points(store, d, |p, q| out.push((p, q)));
        out
    }

    fn severity_of(i: &Instance, cond: Cond) -> Severity {
        match &i.watch {
            Watch::Threshold { severities, .. } => severities.of(cond.0),
            Watch::DeviceState(states) => states.get(&cond.1).copied().unwrap_or(i.severity),
            Watch::Communication(s) | Watch::Quality(s) => *s,
        }
    }

    fn message(i: &Instance, store: &Store, cond: Option<Cond>, value: Option<f64>) -> String {
        let device = store.device_name(i.device);
        let point = i
            .point
            .and_then(|p| store.meta(p))
            .and_then(|m| store.device_profile(m.device)?.points.get(m.profile_point));
        let description = point.map_or(String::new(), |p| {
            if p.description.is_empty() {
                p.id.clone()
            } else {
                p.description.clone()
            }
        });
        let unit = point.map_or("", |p| p.unit.symbol());
        let value_text = match (value, i.point) {
            (Some(v), Some(p)) => store
                .display_value(p, &busbar_core::point::PointValue::Number(v))
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| fmt_num(v)),
            (Some(v), None) => fmt_num(v),
            _ => String::new(),
        };
        let (limit, word) = match (&i.watch, cond) {
            (Watch::Threshold { limits, rate, .. }, Some((l, _))) => match l {
                Level::HighHigh => (limits.high_high, "above"),
                Level::High => (limits.high, "above"),
                Level::Low => (limits.low, "below"),
                Level::LowLow => (limits.low_low, "below"),
                Level::RateOfChange => (rate.as_ref().map(|r| r.limit), "changing faster than"),
                Level::Abnormal => (None, ""),
            },
            _ => (None, ""),
        };
        let limit_text = limit.map(fmt_num).unwrap_or_default();
        if let Some(t) = &i.message {
            return t
                .replace("{device}", device)
                .replace("{point}", &i.point_id)
                .replace("{description}", &description)
                .replace("{value}", &value_text)
                .replace("{unit}", unit)
                .replace("{limit}", &limit_text)
                .replace("{level}", cond.map_or("normal", |c| c.0.as_str()));
        }
        let space_unit = if unit.is_empty() {
            String::new()
        } else {
            format!(" {unit}")
        };
        match (&i.watch, cond) {
            (Watch::Communication(_), Some(_)) => format!("{device} does not answer"),
            (Watch::Communication(_), None) => format!("{device} answers again"),
            (Watch::Threshold { rate: Some(r), .. }, Some((Level::RateOfChange, _))) => format!(
                "{device} {description} {value_text}{space_unit} {word} {limit_text}{space_unit}/s ({}{space_unit}/s)",
                fmt_num(r.rate())
            ),
            (Watch::Threshold { .. }, Some(_)) => {
                format!("{device} {description} {value_text}{space_unit} {word} {limit_text}{space_unit}")
            }
            (Watch::Threshold { .. }, None) => {
                format!("{device} {description} {value_text}{space_unit} back within its limits")
            }
            (Watch::DeviceState(_), _) => format!("{device} {description}: {value_text}"),
            (Watch::Quality(_), Some(_)) => {
                let bad = Engine::bad_points(store, i.device);
                let mut names: Vec<String> = bad
                    .iter()
                    .take(QUALITY_NAMES)
                    .map(|(p, q)| {
                        let id = store.meta(*p).map_or("", |m| m.id.rsplit('/').next().unwrap_or(""));
                        let what = if *q == Quality::Stale { "stale" } else { "out of range" };
                        format!("{id} {what}")
                    })
                    .collect();
                if bad.len() > QUALITY_NAMES {
                    names.push(format!("{} more", bad.len() - QUALITY_NAMES));
                }
                format!("{device}: {}", names.join(", "))
            }
            (Watch::Quality(_), None) => format!("{device}: every point fresh and within its range"),
        }
    }

    fn transition(i: &mut Instance, kind: Kind, wall: SystemTime, actor: Actor) -> Transition {
        i.changed = Some(wall);
        Transition {
            seq: 0,
            alarm: i.id.clone(),
            kind,
            time: wall,
            source: i.source,
            severity: i.severity,
            level: i.level,
            device: i.device_name.clone(),
            point: i.point_id.clone(),
            value: i.value,
            message: i.text.clone(),
            actor,
            state: i.state,
        }
    }

    /// Apply a reported condition change to an instance: the transitions it makes.
    fn change(
        i: &mut Instance,
        cond: Option<Cond>,
        value: Option<f64>,
        store: &Store,
        now: Instant,
        wall: SystemTime,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        if i.state.disabled {
            return out;
        }
        match cond {
            Some(c) => {
                let (admitted, held_back) = i.flap.admit(now);
                if !admitted {
                    return out;
                }
                if held_back > 0 {
                    let mut t = Engine::transition(i, Kind::Suppressed, wall, Actor::engine());
                    t.value = Some(held_back as f64);
                    t.message = format!("{} raises of {} held back by the flapping limit", held_back, i.id);
                    out.push(t);
                }
                i.announced = Some(c);
                i.severity = Engine::severity_of(i, c);
                i.level = Some(c.0);
                i.value = value;
                i.text = Engine::message(i, store, Some(c), value);
                i.state.active = true;
                i.state.acknowledged = false;
                out.push(Engine::transition(i, Kind::Raised, wall, Actor::engine()));
            }
            None => {
                if i.announced.is_none() {
                    return out;
                }
                i.announced = None;
                i.value = value;
                i.text = Engine::message(i, store, None, value);
                i.level = None;
                // A latching alarm stays active until it is acknowledged.
                i.state.active = i.latching && !i.state.acknowledged;
                out.push(Engine::transition(i, Kind::Cleared, wall, Actor::engine()));
            }
        }
        out
    }

    /// Evaluate one instance against the store at `now`.
    fn step(i: &mut Instance, store: &Store, now: Instant, wall: SystemTime) -> Vec<Transition> {
        if i.state.disabled {
            return Vec::new();
        }
        let Some((raw, value)) = Engine::raw(i, store, now) else {
            return Vec::new();
        };
        match i.debounce.step(raw, now) {
            Some(cond) => Engine::change(i, cond, value, store, now, wall),
            None => {
                i.value = value.or(i.value);
                Vec::new()
            }
        }
    }

    /// Evaluate the alarms of the points that changed.
    pub fn on_changes(
        &mut self,
        store: &Store,
        changed: &[PointIdx],
        now: Instant,
        wall: SystemTime,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        let Engine {
            instances, by_point, ..
        } = self;
        for p in changed {
            for &n in by_point.get(p).map_or(&[][..], Vec::as_slice) {
                out.extend(Engine::step(&mut instances[n], store, now, wall));
            }
        }
        out
    }

    /// Evaluate everything (after a restart, or when notices were lost).
    pub fn on_all(&mut self, store: &Store, now: Instant, wall: SystemTime) -> Vec<Transition> {
        self.instances
            .iter_mut()
            .flat_map(|i| Engine::step(i, store, now, wall))
            .collect()
    }

    /// What time alone changes: delays that expire, shelving that ends, devices that stop or
    /// start answering, points that go stale, rates measured at the end of their window.
    pub fn on_tick(&mut self, store: &Store, now: Instant, wall: SystemTime) -> Vec<Transition> {
        let mut out = Vec::new();
        let now_ms = unix_ms(wall);
        for i in &mut self.instances {
            if i.state.shelved_until_ms.is_some_and(|u| u <= now_ms) {
                i.state.shelved_until_ms = None;
                let mut t = Engine::transition(i, Kind::Unshelved, wall, Actor::engine());
                t.message = format!("{} is no longer shelved", i.id);
                out.push(t);
            }
            if i.debounce.due().is_some_and(|d| d <= now) {
                out.extend(Engine::step(i, store, now, wall));
            }
        }
        for &n in &self.timed {
            let i = &mut self.instances[n];
            let due = match &i.watch {
                Watch::Threshold { rate: Some(r), .. } => r.due().is_some_and(|d| d <= now),
                _ => true,
            };
            if due {
                out.extend(Engine::step(i, store, now, wall));
            }
        }
        out
    }

    /// An operator's action on alarm `id`.
    pub fn act(&mut self, id: &str, action: Action, actor: Actor, wall: SystemTime) -> Result<Transition, ActionError> {
        let n = *self.by_id.get(id).ok_or_else(|| ActionError::Unknown(id.to_string()))?;
        let i = &mut self.instances[n];
        let kind = match action {
            Action::Acknowledge => {
                if i.state.acknowledged {
                    return Err(ActionError::Already(id.to_string(), "acknowledged"));
                }
                i.state.acknowledged = true;
                if i.latching && i.announced.is_none() {
                    i.state.active = false;
                }
                Kind::Acknowledged
            }
            Action::Shelve(d) => {
                if d < Duration::from_secs(1) || d > Duration::from_secs(30 * 86_400) {
                    return Err(ActionError::BadDuration);
                }
                i.state.shelved_until_ms = Some(unix_ms(wall + d));
                Kind::Shelved
            }
            Action::Unshelve => {
                if i.state.shelved_until_ms.take().is_none() {
                    return Err(ActionError::NotShelved(id.to_string()));
                }
                Kind::Unshelved
            }
            Action::Disable => {
                if i.state.disabled {
                    return Err(ActionError::Already(id.to_string(), "disabled"));
                }
                i.state = AlarmState {
                    active: false,
                    acknowledged: true,
                    shelved_until_ms: None,
                    disabled: true,
                };
                i.announced = None;
                i.level = None;
                i.debounce.restore(None);
                Kind::Disabled
            }
            Action::Enable => {
                if !i.state.disabled {
                    return Err(ActionError::Already(id.to_string(), "enabled"));
                }
                i.state.disabled = false;
                Kind::Enabled
            }
            Action::Comment => {
                if actor.comment.trim().is_empty() {
                    return Err(ActionError::EmptyComment);
                }
                Kind::Commented
            }
        };
        Ok(Engine::transition(i, kind, wall, actor))
    }

    fn view((n, i): (usize, &Instance)) -> AlarmView {
        AlarmView {
            number: u32::try_from(n + 1).unwrap_or(u32::MAX),
            id: i.id.clone(),
            source: i.source,
            device: i.device_name.clone(),
            point: i.point_id.clone(),
            severity: i.severity,
            level: i.level,
            value: i.value,
            message: i.text.clone(),
            state: i.state,
            changed: i.changed,
        }
    }

    /// Alarms that need attention: active, or not acknowledged, or shelved, or disabled.
    pub fn listed(&self) -> Vec<AlarmView> {
        self.instances
            .iter()
            .enumerate()
            .filter(|(_, i)| i.state.needs_attention())
            .map(Engine::view)
            .collect()
    }

    /// Every alarm defined, quiet or not.
    pub fn all(&self) -> Vec<AlarmView> {
        self.instances.iter().enumerate().map(Engine::view).collect()
    }

    pub fn get(&self, id: &str) -> Option<AlarmView> {
        self.by_id.get(id).map(|&n| Engine::view((n, &self.instances[n])))
    }
}
