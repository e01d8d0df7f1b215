//! The running site: device models stepped in fixed simulated-time steps, the timeline,
//! faults, and the register images the Modbus front end serves.
//!
//! Locking: `Site` sits behind one std `Mutex` (stepping, publishing, writes, control API);
//! each device's served state sits behind its own small `Mutex` in [`DeviceShared`], which the
//! Modbus server locks only to copy registers. Lock order is always Site, then device.

use crate::activity::{Activity, SimClock, Write};
use crate::events::{Event, Fault};
use crate::models::{self, DeviceModel, Env, Refusal};
use crate::rng::SimRng;
use crate::scenario::{block_count, Action, Scenario, TimelineEntry};
use crate::trace::{Quirk, ReplayTarget, Replayed, Replayer};
use busbar_core::image::RegisterImage;
use busbar_core::profile::{Kind, Profile, Table};
use busbar_core::units::Unit;
use busbar_modbus::codec::Exception;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// A fault in force, until a simulated time (or for ever).
#[derive(Debug, Clone, Serialize)]
pub struct ActiveFault {
    #[serde(flatten)]
    pub fault: Fault,
    /// Simulated second at which it ends.
    pub until_s: Option<f64>,
}

/// What the Modbus front end needs of a device, behind its own lock.
pub struct DeviceRuntime {
    pub image: RegisterImage,
    pub faults: Vec<ActiveFault>,
    /// Blocks of a replayed device that answer an exception or nothing right now.
    pub quirks: Vec<Quirk>,
}

impl ReplayTarget for DeviceRuntime {
    fn words(&mut self, table: Table, address: u16, words: &[u16]) {
        // Every block of the trace is mapped: the image was laid out with them.
        let _ = self.image.write(table, address, words);
    }

    fn quirk(&mut self, table: Table, address: u16, count: u16, quirk: Option<Option<u8>>) {
        self.quirks
            .retain(|q| !(q.table == table && q.address == address && q.count == count));
        if let Some(exception) = quirk {
            self.quirks.push(Quirk {
                table,
                address,
                count,
                exception,
            });
        }
    }
}

impl DeviceRuntime {
    pub fn has(&self, pred: impl Fn(&Fault) -> bool) -> bool {
        self.faults.iter().any(|f| pred(&f.fault))
    }
}

/// A device as the servers see it.
pub struct DeviceShared {
    pub name: String,
    pub profile: Arc<Profile>,
    pub unit_id: u8,
    pub listener: usize,
    state: Mutex<DeviceRuntime>,
}

impl DeviceShared {
    /// Lock the served state (a poisoned lock is recovered: the image is plain data).
    pub fn lock(&self) -> MutexGuard<'_, DeviceRuntime> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct SimDevice {
    shared: Arc<DeviceShared>,
    model: Box<dyn DeviceModel>,
    rng: SimRng,
    /// Point index by id, for publishing.
    spec_params: serde_json::Value,
    /// Plays a recorded trace into the image instead of the model's truth.
    replay: Option<Replayer>,
}

/// The outcome of a write from a Modbus client.
#[derive(Debug, PartialEq)]
pub enum WriteError {
    /// Modbus exception to answer.
    Exception(Exception),
}

/// The simulated site.
pub struct Site {
    pub name: String,
    pub id: String,
    pub seed: u64,
    devices: Vec<SimDevice>,
    env: Env,
    timeline: Vec<TimelineEntry>,
    next_entry: usize,
    step_s: f64,
    steps: u64,
    start_hour: f64,
    opening_hours: (f64, f64),
    station_override: Option<bool>,
    vehicle_queue: VecDeque<Event>,
    /// Log of what happened, newest last (bounded).
    pub journal: VecDeque<String>,
    /// The simulated time for readers that do not hold the site's lock.
    clock: Arc<SimClock>,
    /// What the system under test does to the devices, when recorded (test runs).
    activity: Option<Arc<Activity>>,
}

impl Site {
    /// Build the site from a validated scenario. `seed` overrides the scenario's.
    pub fn new(scenario: &Scenario, seed: Option<u64>) -> Result<Site, String> {
        let seed = seed.unwrap_or(scenario.seed);
        let mut devices = Vec::new();
        for (i, spec) in scenario.devices.iter().enumerate() {
            let (model, replay, runtime): (Box<dyn DeviceModel>, _, _) = match &spec.replay {
                Some(r) => {
                    let trace = r.trace.clone().ok_or_else(|| {
                        format!("device `{}`: its trace {} was not loaded", spec.name, r.path.display())
                    })?;
                    let mut rt = DeviceRuntime {
                        image: RegisterImage::with_ranges(&spec.profile, &trace.blocks()),
                        faults: Vec::new(),
                        quirks: Vec::new(),
                    };
                    let replayer = Replayer::new(trace, r.looped);
                    replayer.prime(&mut rt);
                    (Box::new(Replayed), Some(replayer), rt)
                }
                None => {
                    let blocks = block_count(&spec.profile);
                    let (model, _) = models::build(spec.profile.family, &spec.params, &spec.links, blocks)
                        .map_err(|e| format!("device `{}`: {e}", spec.name))?;
                    let rt = DeviceRuntime {
                        image: RegisterImage::new(&spec.profile),
                        faults: Vec::new(),
                        quirks: Vec::new(),
                    };
                    (model, None, rt)
                }
            };
            devices.push(SimDevice {
                shared: Arc::new(DeviceShared {
                    name: spec.name.clone(),
                    profile: spec.profile.clone(),
                    unit_id: spec.unit_id,
                    listener: spec.listener,
                    state: Mutex::new(runtime),
                }),
                model,
                rng: SimRng::for_device(seed, i),
                spec_params: spec.params.clone(),
                replay,
            });
        }
        let mut site = Site {
            name: scenario.name.clone(),
            id: scenario.id.clone(),
            seed,
            env: Env::with_devices(devices.len()),
            devices,
            timeline: scenario.timeline.clone(),
            next_entry: 0,
            step_s: scenario.step.as_secs_f64(),
            steps: 0,
            start_hour: scenario.start_hour,
            opening_hours: scenario.opening_hours,
            station_override: None,
            vehicle_queue: VecDeque::new(),
            journal: VecDeque::new(),
            clock: Arc::default(),
            activity: None,
        };
        site.update_clock_env();
        // Settle at t=0 with zero-length steps (twice, so that links between devices — supply,
        // charger current — propagate) so every image holds consistent values from the start.
        for _ in 0..2 {
            for d in &mut site.devices {
                d.model.step(0.0, &site.env, &mut d.rng);
            }
            site.contribute_all();
        }
        site.publish();
        site.replay(0.0);
        Ok(site)
    }

    /// Record what clients do to the devices from now on (reads and writes, on the simulated
    /// clock).
    pub fn record_activity(&mut self) -> Arc<Activity> {
        let a = Arc::new(Activity::new(self.devices.len(), self.clock.clone()));
        self.activity = Some(a.clone());
        a
    }

    pub fn activity(&self) -> Option<Arc<Activity>> {
        self.activity.clone()
    }

    pub fn devices(&self) -> impl Iterator<Item = &Arc<DeviceShared>> {
        self.devices.iter().map(|d| &d.shared)
    }

    pub fn device_index(&self, name: &str) -> Option<usize> {
        self.devices.iter().position(|d| d.shared.name == name)
    }

    pub fn device_params(&self, index: usize) -> Option<&serde_json::Value> {
        self.devices.get(index).map(|d| &d.spec_params)
    }

    /// Simulated seconds since the start.
    pub fn sim_time_s(&self) -> f64 {
        self.steps as f64 * self.step_s
    }

    pub fn step_s(&self) -> f64 {
        self.step_s
    }

    /// Simulated time of day, hours.
    pub fn time_of_day_h(&self) -> f64 {
        (self.start_hour + self.sim_time_s() / 3600.0).rem_euclid(24.0)
    }

    pub fn station_open(&self) -> bool {
        self.env.station_open
    }

    fn update_clock_env(&mut self) {
        self.env.sim_time_s = self.sim_time_s();
        self.env.time_of_day_h = self.time_of_day_h();
        let (open, close) = self.opening_hours;
        let h = self.env.time_of_day_h;
        let by_hours = if open <= close {
            h >= open && h < close
        } else {
            h >= open || h < close
        };
        self.env.station_open = self.station_override.unwrap_or(by_hours);
    }

    fn note(&mut self, line: String) {
        if self.journal.len() >= 200 {
            self.journal.pop_front();
        }
        self.journal.push_back(format!(
            "[{}] {line}",
            crate::clock_text(self.sim_time_s(), self.start_hour)
        ));
    }

    fn contribute_all(&mut self) {
        for c in &mut self.env.extra_current {
            *c = [0.0; 3];
        }
        for (i, d) in self.devices.iter().enumerate() {
            d.model.contribute(i, &mut self.env);
        }
    }

    /// Advance one fixed step: due timeline entries, physics, links, expired faults.
    pub fn step(&mut self) {
        let now = self.sim_time_s();
        while let Some(entry) = self.timeline.get(self.next_entry) {
            if entry.at.as_secs_f64() > now + 1e-9 {
                break;
            }
            let entry = entry.clone();
            self.next_entry += 1;
            if let Err(e) = self.apply(entry.device.as_deref(), entry.action.clone()) {
                tracing::warn!(origin = %entry.origin, device = entry.device.as_deref().unwrap_or("site"), "timeline entry refused: {e}");
                self.note(format!("{}: refused: {e}", entry.origin));
            }
        }
        self.update_clock_env();
        let dt = self.step_s;
        for d in &mut self.devices {
            d.model.step(dt, &self.env, &mut d.rng);
        }
        self.contribute_all();
        self.steps += 1;
        let now = self.sim_time_s();
        self.replay(now);
        self.clock.set(now);
        for d in &self.devices {
            let mut rt = d.shared.lock();
            let before = rt.faults.len();
            rt.faults.retain(|f| f.until_s.is_none_or(|u| u > now));
            if rt.faults.len() != before {
                tracing::info!(device = %d.shared.name, "fault ended");
            }
        }
        self.serve_vehicle_queue();
    }

    /// Play the lines of replayed devices' traces that are due at `now`.
    fn replay(&mut self, now: f64) {
        for d in &mut self.devices {
            if let Some(r) = &mut d.replay {
                r.advance(now, &mut *d.shared.lock());
            }
        }
    }

    /// Run whole steps until `sim_s` is reached.
    pub fn advance_to(&mut self, sim_s: f64) {
        while self.sim_time_s() + self.step_s <= sim_s + 1e-9 {
            self.step();
        }
    }

    fn serve_vehicle_queue(&mut self) {
        while !self.vehicle_queue.is_empty() {
            let Some(i) = self.devices.iter().position(|d| d.model.accepts_vehicle()) else {
                return;
            };
            let Some(ev) = self.vehicle_queue.pop_front() else {
                return;
            };
            let d = &mut self.devices[i];
            let name = d.shared.name.clone();
            match d.model.event(&ev, &mut d.rng) {
                Ok(()) => {
                    tracing::info!(device = %name, "vehicle plugged in");
                    self.note(format!("{name}: vehicle plugged in"));
                }
                Err(e) => tracing::warn!(device = %name, "vehicle refused: {e}"),
            }
        }
    }

    /// Apply a timeline or API action to a device (or the site).
    pub fn apply(&mut self, device: Option<&str>, action: Action) -> Result<(), Refusal> {
        match (device, action) {
            (None, Action::Event(ev)) => self.site_event(ev),
            (None, _) => Err("faults need a device".into()),
            (Some(name), action) => {
                let i = self
                    .device_index(name)
                    .ok_or_else(|| format!("unknown device `{name}`"))?;
                match action {
                    Action::Event(ev) => {
                        if matches!(ev, Event::StationOpen | Event::StationClosed) {
                            return self.site_event(ev);
                        }
                        let d = &mut self.devices[i];
                        d.model.event(&ev, &mut d.rng)?;
                        tracing::info!(device = %name, event = ev.name(), "event");
                        self.note(format!("{name}: {}", ev.name()));
                    }
                    Action::Fault { fault, duration } => self.inject_fault(i, fault, duration)?,
                    Action::ClearFaults => {
                        self.devices[i].shared.lock().faults.clear();
                        tracing::info!(device = %name, "faults cleared");
                        self.note(format!("{name}: faults cleared"));
                    }
                }
                Ok(())
            }
        }
    }

    fn site_event(&mut self, ev: Event) -> Result<(), Refusal> {
        match ev {
            Event::StationOpen => self.station_override = Some(true),
            Event::StationClosed => self.station_override = Some(false),
            Event::VehicleArrives {
                count,
                energy_kwh,
                max_current_a,
            } => {
                if count == 0 || count > 1000 {
                    return Err("count must be within 1..=1000".into());
                }
                for _ in 0..count {
                    self.vehicle_queue.push_back(Event::VehicleArrives {
                        count: 1,
                        energy_kwh,
                        max_current_a,
                    });
                }
                self.serve_vehicle_queue();
            }
            other => return Err(format!("event `{}` needs a device", other.name())),
        }
        tracing::info!(event = ev_name(&self.station_override), "site event");
        self.update_clock_env();
        Ok(())
    }

    /// Vehicles waiting for a free charger.
    pub fn vehicles_waiting(&self) -> usize {
        self.vehicle_queue.len()
    }

    pub fn inject_fault(&mut self, index: usize, fault: Fault, duration: Option<Duration>) -> Result<(), Refusal> {
        let now = self.sim_time_s();
        let d = self.devices.get(index).ok_or("unknown device")?;
        if let Fault::OutOfRange { point, .. } = &fault {
            if d.shared.profile.point(point).is_none() {
                return Err(format!("`{}` has no point `{point}`", d.shared.name));
            }
        }
        if let Fault::Exception { code } = &fault {
            if *code == 0 {
                return Err("exception code 0 is not an exception".into());
            }
        }
        let name = d.shared.name.clone();
        tracing::warn!(device = %name, fault = fault.name(), duration = ?duration, "fault injected");
        {
            let mut rt = d.shared.lock();
            rt.faults
                .retain(|f| std::mem::discriminant(&f.fault) != std::mem::discriminant(&fault));
            rt.faults.push(ActiveFault {
                fault: fault.clone(),
                until_s: duration.map(|d| now + d.as_secs_f64()),
            });
        }
        self.note(format!("{name}: fault {}", fault.name()));
        // Garbage and out-of-range faults show at once.
        self.publish_one(index);
        Ok(())
    }

    /// The truth of a device: every point its model emits, in engineering units.
    /// For a replayed device, its registers as they are now, decoded through its profile.
    pub fn truth(&self, index: usize) -> Vec<(String, f64, Unit)> {
        let mut out = Vec::new();
        if let Some(d) = self.devices.get(index).filter(|d| d.replay.is_some()) {
            let profile = &d.shared.profile;
            let rt = d.shared.lock();
            for (i, p) in profile.points.iter().enumerate() {
                if let Ok(v) = rt.image.get(profile, i) {
                    out.push((p.id.clone(), v, p.unit));
                }
            }
        } else if let Some(d) = self.devices.get(index) {
            d.model
                .emit(&mut |name, value, unit| out.push((name.to_string(), value, unit)));
        }
        out
    }

    /// Encode every device's truth into its register image.
    pub fn publish(&mut self) {
        for i in 0..self.devices.len() {
            self.publish_one(i);
        }
    }

    fn publish_one(&mut self, index: usize) {
        let Some(d) = self.devices.get_mut(index) else { return };
        let profile = d.shared.profile.clone();
        let mut rt = d.shared.lock();
        if rt.has(|f| matches!(f, Fault::Stuck)) {
            return;
        }
        let rt = &mut *rt;
        d.model.emit(&mut |name, value, unit| {
            let Some(pi) = profile.point_index(name) else { return };
            let point = &profile.points[pi];
            if point.constant.is_some() {
                return;
            }
            let v = match unit.convert(value, point.unit) {
                Some(v) => v,
                // Dimensionless codes (enums, counts) carry no unit to convert.
                None if matches!(unit, Unit::None | Unit::Count) || matches!(point.unit, Unit::None | Unit::Count) => {
                    value
                }
                None => {
                    tracing::debug!(device = %d.shared.name, point = name, "unit mismatch {unit} -> {}", point.unit);
                    return;
                }
            };
            let _ = rt.image.set(&profile, pi, v);
        });
        for f in rt.faults.clone() {
            match f.fault {
                Fault::OutOfRange { point, value } => {
                    if let Some(pi) = profile.point_index(&point) {
                        let _ = rt.image.set(&profile, pi, value);
                    }
                }
                Fault::Garbage => {
                    for table in [Table::Holding, Table::Input] {
                        for (start, count) in rt.image.segments(table) {
                            let words: Vec<u16> = (0..count).map(|_| d.rng.word()).collect();
                            let _ = rt.image.write(table, start, &words);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// A Modbus client writes raw registers (or bits) of a device: decode them per the
    /// profile, check them, hand them to the model, republish. Exceptions as a device answers:
    /// 02 for unmapped or read-only registers, 03 for a partial or implausible value, 04 when
    /// the device refuses.
    pub fn write_registers(
        &mut self,
        index: usize,
        table: Table,
        address: u16,
        values: &[u16],
    ) -> Result<(), WriteError> {
        let ex = |e| Err(WriteError::Exception(e));
        let Some(d) = self.devices.get_mut(index) else {
            return ex(Exception::GatewayTargetFailed);
        };
        let profile = d.shared.profile.clone();
        let end = u32::from(address) + values.len() as u32;
        let touched: Vec<usize> = profile
            .points
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.register.table == table && p.register.span().start < end && p.register.span().end > u32::from(address)
            })
            .map(|(i, _)| i)
            .collect();
        // Every written register must belong to a point.
        for a in u32::from(address)..end {
            if !touched.iter().any(|&i| profile.points[i].register.span().contains(&a)) {
                return ex(Exception::IllegalDataAddress);
            }
        }
        let mut decoded = Vec::new();
        {
            let rt = d.shared.lock();
            for &i in &touched {
                let p = &profile.points[i];
                if !p.is_writable() {
                    return ex(Exception::IllegalDataAddress);
                }
                let span = p.register.span();
                if span.start < u32::from(address) || span.end > end {
                    return ex(Exception::IllegalDataValue);
                }
                let off = (span.start - u32::from(address)) as usize;
                let mut scratch = rt.image.clone();
                if scratch
                    .write(
                        table,
                        span.start as u16,
                        &values[off..off + (span.end - span.start) as usize],
                    )
                    .is_err()
                {
                    return ex(Exception::IllegalDataAddress);
                }
                let Ok(v) = scratch.get(&profile, i) else {
                    return ex(Exception::IllegalDataValue);
                };
                let ok = match p.kind {
                    Kind::Enum => p.labels.contains_key(&(v.round() as i64)),
                    Kind::Binary => v == 0.0 || v == 1.0,
                    _ => p.range.is_none_or(|(lo, hi)| v >= lo && v <= hi),
                };
                if !ok {
                    if let Some(a) = &self.activity {
                        a.write(Write {
                            at_s: self.steps as f64 * self.step_s,
                            device: index,
                            point: p.id.clone(),
                            value: v,
                            accepted: false,
                        });
                    }
                    return ex(Exception::IllegalDataValue);
                }
                decoded.push((p.id.clone(), v));
            }
        }
        let name = d.shared.name.clone();
        let mut outcome = Ok(());
        let mut notes = Vec::new();
        let now = self.steps as f64 * self.step_s;
        for (id, v) in decoded {
            let accepted = d.model.write(&id, v);
            if let Some(a) = &self.activity {
                a.write(Write {
                    at_s: now,
                    device: index,
                    point: id.clone(),
                    value: v,
                    accepted: accepted.is_ok(),
                });
            }
            if let Err(reason) = accepted {
                tracing::warn!(device = %name, point = %id, value = v, "write refused: {reason}");
                notes.push(format!("{name}: write {id}={v} refused: {reason}"));
                outcome = ex(Exception::ServerDeviceFailure);
                break;
            }
            tracing::info!(device = %name, point = %id, value = v, "write");
            notes.push(format!("{name}: write {id}={v}"));
        }
        if outcome.is_ok() && d.replay.is_some() {
            // A replayed device has no model to take the value: it stays in the registers
            // until the trace's next line for that block.
            let _ = d.shared.lock().image.write(table, address, values);
        }
        for n in notes {
            self.note(n);
        }
        self.publish_one(index);
        outcome
    }
}

fn ev_name(o: &Option<bool>) -> &'static str {
    match o {
        Some(true) => "station_open",
        Some(false) => "station_closed",
        None => "vehicles",
    }
}
