//! Dynamic load management of EV charging stations (docs/load-management.md): a closed loop
//! in the bridge. Each period it reads the consumption meter and the charger sides from the
//! store, asks its strategy ([`steps`] or [`share`]) for each side's setpoint, writes what
//! changed through the bridge's write path (current limit, start and pause commands, each
//! read back), and publishes its own state as a device of the bridge (profile `busbar-dlm`),
//! so every protocol serves it and may change its parameters. A meter that is silent or bad,
//! or a station that refuses a write, puts it in the safe state (every authorised session at
//! the safe current, nothing new granted), which the `mode` point shows and the alarm engine
//! raises as an alarm.

pub mod model;
pub mod section;
pub mod share;
pub mod steps;
#[cfg(test)]
mod tests;

use crate::acquisition::{self, Acquisition, LocalWrite, LocalWrites, WriteOutcome};
use crate::config::Config;
use crate::store::{PointIdx, PointValue, Reading, Store};
use busbar_core::quality::Quality;
use model::{Decision, Params, Reason, Setpoint, Side, SideState, Strategy, PARAMETER_POINTS};
use section::{LoadManagement, StrategyKind};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A write a station did not take is tried again after this long, s.
const RETRY_S: f64 = 10.0;

/// Charger `command` values (profile legrand-greenup).
const START: f64 = 1.0;
const PAUSE: f64 = 2.0;

/// Why the safe state was entered (the dlm profile's `safe_cause` labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SafeCause {
    MeterSilent,
    MeterBad,
    WriteFailed,
}

impl SafeCause {
    fn code(self) -> f64 {
        match self {
            SafeCause::MeterSilent => 1.0,
            SafeCause::MeterBad => 2.0,
            SafeCause::WriteFailed => 3.0,
        }
    }
}

/// What the load manager does (the dlm profile's `mode` labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Running,
    Safe,
    Commissioning,
    Unlimited,
}

impl Mode {
    fn code(self) -> f64 {
        match self {
            Mode::Running => 0.0,
            Mode::Safe => 1.0,
            Mode::Commissioning => 2.0,
            Mode::Unlimited => 3.0,
        }
    }
}

fn strategy_of(kind: StrategyKind, p: Params) -> Box<dyn Strategy> {
    match kind {
        StrategyKind::Steps => Box::new(steps::Steps::new(p)),
        StrategyKind::FairShare => Box::new(share::FairShare::new(p)),
    }
}

/// The store points of one charger side.
struct ChargerPoints {
    name: String,
    state: PointIdx,
    rated: PointIdx,
    priority: PointIdx,
    session_ah: PointIdx,
    currents: [PointIdx; 3],
    current_limit: PointIdx,
    command: PointIdx,
}

/// The store points of one served side.
struct SidePoints {
    setpoint: PointIdx,
    reason: PointIdx,
    queue: PointIdx,
    charger: PointIdx,
}

/// What was last written to a side and taken.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Written {
    limit_a: f64,
    run: bool,
}

/// The load manager: its strategy, the points it reads and serves, what it wrote.
pub struct LoadManager {
    lm: LoadManagement,
    config: Arc<Config>,
    store: Arc<Store>,
    acq: Acquisition,
    kind: StrategyKind,
    strategy: Box<dyn Strategy>,
    origin: Instant,
    meter: Vec<PointIdx>,
    chargers: Vec<ChargerPoints>,
    own: Vec<(String, PointIdx)>,
    sides: Vec<SidePoints>,
    written: Vec<Option<Written>>,
    /// Per side: a write failed; when to try again.
    retry_at: Vec<Option<f64>>,
    /// Per side: when it was last told to pause.
    paused_at: Vec<Option<f64>>,
    safe: Option<SafeCause>,
    /// A first decision was made (or the meter stayed silent past its timeout).
    started: bool,
    writes: u64,
    write_failures: u64,
}

/// A point the config validated, as a store index.
fn point(store: &Store, device: &str, id: &str) -> anyhow::Result<PointIdx> {
    store
        .find(&format!("{device}/{id}"))
        .ok_or_else(|| anyhow::anyhow!("load manager: no point `{device}/{id}` in the store"))
}

impl LoadManager {
    /// The load manager of `config`, if it has one.
    pub fn new(config: Arc<Config>, store: Arc<Store>, acq: Acquisition) -> anyhow::Result<Option<LoadManager>> {
        let Some(lm) = config.load_management.clone() else {
            return Ok(None);
        };
        let name_of = |d: usize| config.devices.get(d).map(|d| d.name.clone()).unwrap_or_default();
        let meter_name = name_of(lm.meter);
        let meter = lm
            .meter_points
            .iter()
            .map(|p| point(&store, &meter_name, p))
            .collect::<anyhow::Result<_>>()?;
        let mut chargers = Vec::new();
        for c in &lm.chargers {
            let n = name_of(c.device);
            let p = |id: &str| point(&store, &n, id);
            chargers.push(ChargerPoints {
                state: p("state")?,
                rated: p("rated_current")?,
                priority: p("priority")?,
                session_ah: p("session_charge")?,
                currents: [p("i1")?, p("i2")?, p("i3")?],
                current_limit: p("current_limit")?,
                command: p("command")?,
                name: n,
            });
        }
        let me = name_of(lm.device);
        let mut own = Vec::new();
        let own_points = [
            "mode",
            "zone",
            "strategy",
            "safe_cause",
            "measured_current",
            "available_current",
            "charging_current",
            "sessions",
            "queued",
            "writes",
            "write_failures",
        ];
        for id in own_points.iter().chain(PARAMETER_POINTS.iter()) {
            own.push((id.to_string(), point(&store, &me, id)?));
        }
        let mut sides = Vec::new();
        for n in 1..=lm.chargers.len() {
            let p = |id: &str| point(&store, &me, &format!("side{n}.{id}"));
            sides.push(SidePoints {
                setpoint: p("setpoint")?,
                reason: p("reason")?,
                queue: p("queue")?,
                charger: p("charger")?,
            });
        }
        let n = lm.chargers.len();
        let origin = store.clock().now();
        Ok(Some(LoadManager {
            kind: lm.strategy,
            strategy: strategy_of(lm.strategy, lm.params.clone()),
            lm,
            config,
            store,
            acq,
            origin,
            meter,
            chargers,
            own,
            sides,
            written: vec![None; n],
            retry_at: vec![None; n],
            paused_at: vec![None; n],
            safe: None,
            started: false,
            writes: 0,
            write_failures: 0,
        }))
    }

    fn now_s(&self) -> f64 {
        self.store
            .clock()
            .now()
            .saturating_duration_since(self.origin)
            .as_secs_f64()
    }

    /// A good number, else None.
    fn good(&self, p: PointIdx) -> Option<f64> {
        let s = self.store.sample(p)?;
        if s.quality.is_good() {
            s.value.as_ref().and_then(PointValue::as_f64)
        } else {
            None
        }
    }

    /// The meter's phases, or why it cannot be trusted.
    fn read_meter(&self) -> Result<[f64; 3], SafeCause> {
        let now = self.store.clock().now();
        let mut values = Vec::with_capacity(3);
        for &p in &self.meter {
            let s = self.store.sample(p).unwrap_or_default();
            let fresh = s
                .last_good
                .is_some_and(|t| now.saturating_duration_since(t) <= self.lm.meter_timeout);
            match (s.quality, s.value.as_ref().and_then(PointValue::as_f64)) {
                (Quality::Good, Some(v)) if fresh && v.is_finite() => values.push(v),
                (Quality::Good | Quality::Stale | Quality::NoValue | Quality::CommFailure, _) => {
                    return Err(SafeCause::MeterSilent)
                }
                _ => return Err(SafeCause::MeterBad),
            }
        }
        Ok(match values[..] {
            [a, b, c] => [a, b, c],
            [a] => [a; 3],
            _ => return Err(SafeCause::MeterBad),
        })
    }

    /// Each side as its station reports it (a station whose state is not good is taken as
    /// faulted: nothing is decided for it).
    fn read_sides(&self) -> Vec<Side> {
        self.chargers
            .iter()
            .zip(&self.lm.chargers)
            .map(|(c, link)| {
                let state = self.good(c.state).map_or(SideState::Fault, SideState::from_code);
                let current_a = c.currents.iter().filter_map(|p| self.good(*p)).fold(0.0, f64::max);
                Side {
                    state,
                    rated_a: self.good(c.rated).filter(|r| *r > 0.0).unwrap_or(32.0),
                    phases: link.phases,
                    priority: self.good(c.priority).is_some_and(|p| p != 0.0),
                    session_ah: self.good(c.session_ah).unwrap_or(0.0),
                    current_a,
                }
            })
            .collect()
    }

    /// The setpoints of the safe state: every authorised session at the safe current, the
    /// others left paused.
    fn safe_setpoints(&self, sides: &[Side]) -> Vec<Setpoint> {
        let p = self.strategy.params();
        sides
            .iter()
            .zip(&self.written)
            .map(|(s, w)| match w {
                Some(w) if w.run && s.state.connected() => Setpoint {
                    limit_a: self
                        .lm
                        .safe_current_a
                        .unwrap_or_else(|| Params::step_limit(s.rated_a, p.second_step_pct))
                        .clamp(model::MIN_CHARGING_A, s.rated_a),
                    reason: Reason::Safe,
                    queue: 0,
                },
                _ => Setpoint::paused(Reason::Safe),
            })
            .collect()
    }

    /// One period: read, decide, write, publish.
    pub async fn tick(&mut self) {
        let now = self.now_s();
        let sides = self.read_sides();
        let meter = self.read_meter();
        if meter.is_err() && self.safe.is_none() && now < self.lm.meter_timeout.as_secs_f64() && !self.started {
            // Start-up: the meter has not been read yet; no decision and no alarm before it is
            // (or before it was silent for the meter timeout).
            return;
        }
        self.started = true;
        let failed = self.retry_at.iter().any(Option::is_some);
        let cause = match meter {
            Err(c) => Some(c),
            Ok(_) if failed => Some(SafeCause::WriteFailed),
            Ok(_) => None,
        };
        if cause != self.safe {
            match cause {
                Some(c) => tracing::warn!(device = %self.device_name(), cause = ?c, "load manager in the safe state"),
                None => tracing::info!(device = %self.device_name(), "load manager leaves the safe state"),
            }
            self.safe = cause;
        }
        let decision = match meter {
            Ok(phases) => Some(self.strategy.decide(now, phases, &sides)),
            Err(_) => None,
        };
        let setpoints = match (&decision, cause) {
            (Some(d), None) => d.setpoints.clone(),
            _ => self.safe_setpoints(&sides),
        };
        let p = self.strategy.params();
        let mode = if cause.is_some() {
            Mode::Safe
        } else if !p.control_logic {
            Mode::Commissioning
        } else if !p.load_control {
            Mode::Unlimited
        } else {
            Mode::Running
        };
        if mode != Mode::Commissioning {
            self.actuate(now, &sides, &setpoints).await;
        }
        self.publish(mode, decision.as_ref(), &sides, &setpoints);
    }

    fn device_name(&self) -> &str {
        self.config
            .devices
            .get(self.lm.device)
            .map_or("dlm", |d| d.name.as_str())
    }

    /// Write what the setpoints change on each side.
    async fn actuate(&mut self, now: f64, sides: &[Side], setpoints: &[Setpoint]) {
        for (i, (side, sp)) in sides.iter().zip(setpoints).enumerate() {
            if !side.state.connected() {
                self.written[i] = None;
                self.retry_at[i] = None;
                self.paused_at[i] = None;
                continue;
            }
            if self.retry_at[i].is_some_and(|t| now < t) {
                continue;
            }
            let run = sp.limit_a > 0.0;
            let before = self.written[i];
            let due = self.retry_at[i].is_some();
            let command_now = self.good(self.chargers[i].command);
            let mut ok = true;
            if run {
                // Written when it changes (a limit someone else wrote stands until then).
                if due || before.is_none_or(|w| w.limit_a != sp.limit_a) {
                    let point = self.chargers[i].current_limit;
                    ok &= self.write(i, point, sp.limit_a).await;
                }
                let paused = side.state == SideState::Waiting && command_now == Some(PAUSE);
                if ok && (due || before.is_none_or(|w| !w.run) || paused) && side.state != SideState::Charging {
                    let point = self.chargers[i].command;
                    ok &= self.write(i, point, START).await;
                }
            } else {
                // Paused once when it was authorised; again only if it still charges a while
                // after (a vehicle ramps down in a few seconds).
                let authorised = before.is_some_and(|w| w.run);
                let still = side.state == SideState::Charging && self.paused_at[i].is_none_or(|t| now - t >= RETRY_S);
                if due || authorised || still {
                    let point = self.chargers[i].command;
                    ok &= self.write(i, point, PAUSE).await;
                    self.paused_at[i] = Some(now);
                }
            }
            if ok {
                self.written[i] = Some(Written {
                    limit_a: if run {
                        sp.limit_a
                    } else {
                        before.map_or(0.0, |w| w.limit_a)
                    },
                    run,
                });
                self.retry_at[i] = None;
            } else {
                self.retry_at[i] = Some(now + RETRY_S);
            }
        }
    }

    /// One write through the bridge's write path; false when the station did not take it.
    async fn write(&mut self, side: usize, point: PointIdx, value: f64) -> bool {
        self.writes += 1;
        let outcome = self.acq.write(point, value).await;
        let id = self.store.meta(point).map_or("", |m| m.id.as_str()).to_string();
        match outcome {
            WriteOutcome::Done { .. } => {
                tracing::debug!(device = %self.chargers[side].name, point = %id, value, "load manager wrote");
                true
            }
            other => {
                self.write_failures += 1;
                tracing::warn!(device = %self.chargers[side].name, point = %id, value, outcome = ?other, "load manager write not taken");
                false
            }
        }
    }

    fn publish(&self, mode: Mode, decision: Option<&Decision>, sides: &[Side], setpoints: &[Setpoint]) {
        let num = |v: f64| Reading::Value(PointValue::Number(v), Quality::Good);
        let p = self.strategy.params();
        let mut readings = Vec::with_capacity(self.own.len() + 4 * self.sides.len());
        let charging_a = (0..3)
            .map(|k| sides.iter().filter(|s| s.phases[k]).map(|s| s.current_a).sum::<f64>())
            .fold(0.0, f64::max);
        for (id, idx) in &self.own {
            let value = match id.as_str() {
                "mode" => Some(mode.code()),
                "zone" => decision.map(|d| d.zone.code()),
                "strategy" => Some(self.kind.code()),
                "safe_cause" => Some(self.safe.map_or(0.0, SafeCause::code)),
                "measured_current" => decision.map(|d| d.measured_a),
                "available_current" => decision.map(|d| d.available_a),
                "charging_current" => Some(charging_a),
                "sessions" => Some(setpoints.iter().filter(|s| s.limit_a > 0.0).count() as f64),
                "queued" => Some(setpoints.iter().filter(|s| s.queue > 0).count() as f64),
                "writes" => Some(self.writes as f64),
                "write_failures" => Some(self.write_failures as f64),
                other => p.get(other),
            };
            match value {
                Some(v) => readings.push((*idx, num(v))),
                None => readings.push((*idx, Reading::Failed(Quality::CommFailure))),
            }
        }
        for ((sp, pts), c) in setpoints.iter().zip(&self.sides).zip(&self.chargers) {
            readings.push((pts.setpoint, num(sp.limit_a)));
            readings.push((pts.reason, num(sp.reason.code())));
            readings.push((pts.queue, num(sp.queue as f64)));
            readings.push((
                pts.charger,
                Reading::Value(PointValue::Text(c.name.clone()), Quality::Good),
            ));
        }
        self.store.update(&readings, self.store.clock().wall());
        if let Some(mut st) = self.store.status(self.lm.device) {
            st.online = true;
            st.polls += 1;
            st.consecutive_failures = 0;
            st.last_good_read = Some(self.store.clock().wall());
        }
    }

    /// Answer a protocol's write to one of the load manager's parameters.
    pub fn answer(&mut self, w: LocalWrite) {
        let outcome = self.apply(w.point, w.value);
        w.answer(outcome);
    }

    fn apply(&mut self, point: PointIdx, value: f64) -> WriteOutcome {
        let Some(meta) = self.store.meta(point) else {
            return WriteOutcome::NotWritable;
        };
        if !meta.writable || meta.device != self.lm.device {
            return WriteOutcome::NotWritable;
        }
        if let Some(reason) = acquisition::invalid_value(&self.config, meta, value) {
            return WriteOutcome::InvalidValue { reason };
        }
        let Some(id) = self
            .store
            .device_profile(meta.device)
            .and_then(|p| p.points.get(meta.profile_point))
            .map(|p| p.id.clone())
        else {
            return WriteOutcome::NotWritable;
        };
        if id == "strategy" {
            let Some(kind) = StrategyKind::from_code(value) else {
                return WriteOutcome::InvalidValue {
                    reason: format!("strategy {value} is neither 0 (steps) nor 1 (fair_share)"),
                };
            };
            if kind != self.kind {
                self.kind = kind;
                self.strategy = strategy_of(kind, self.strategy.params().clone());
            }
        } else {
            let mut p = self.strategy.params().clone();
            if !p.set(&id, value) {
                return WriteOutcome::NotWritable;
            }
            if let Some(reason) = p.problem() {
                return WriteOutcome::InvalidValue { reason };
            }
            self.strategy.set_params(p);
        }
        tracing::info!(device = %self.device_name(), point = %id, value, "load manager parameter written");
        let read_back = if id == "strategy" {
            self.kind.code()
        } else {
            self.strategy.params().get(&id).unwrap_or(value)
        };
        self.store.update(
            &[(point, Reading::Value(PointValue::Number(read_back), Quality::Good))],
            self.store.clock().wall(),
        );
        WriteOutcome::Done { read_back }
    }

    /// Run: one tick per period, parameter writes answered between ticks.
    pub fn start(mut self, mut local: LocalWrites, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut period = tokio::time::interval(self.lm.period);
            period.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first decision waits for the first polls of the meter and the stations.
            tokio::time::sleep(Duration::from_millis(500).min(self.lm.period)).await;
            loop {
                tokio::select! {
                    _ = period.tick() => self.tick().await,
                    w = local.next() => match w {
                        Some(w) => self.answer(w),
                        None => break,
                    },
                    _ = shutdown.changed() => break,
                }
            }
        })
    }
}
