//! `load_management:`: the consumption meter, the charger sides, the strategy and its
//! parameters, the safe state, and which parameters protocols may change. Resolved against the
//! devices (a meter with the phase currents named, chargers of the charger family whose limit
//! and command are writable) and appended to them as the load manager's own device, served by
//! every protocol like the others (profile `busbar-dlm`).

use super::model::{Params, PARAMETER_POINTS};
use crate::config::{default_bacnet_base, Connection, Device, Link, PointSettings};
use busbar_core::diag::Diagnostics;
use busbar_core::profile::{Family, Profile, ProfileSet};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The profile of the load manager's device.
pub const PROFILE: &str = "busbar-dlm";

/// The points of a charger side the load manager reads and writes.
pub const CHARGER_POINTS: [&str; 9] = [
    "state",
    "rated_current",
    "priority",
    "session_charge",
    "i1",
    "i2",
    "i3",
    "current_limit",
    "command",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StrategyKind {
    /// The Green'Up steps (the manual's logic).
    #[default]
    Steps,
    /// Continuous fair sharing of the available current.
    FairShare,
}

impl StrategyKind {
    pub fn code(self) -> f64 {
        match self {
            StrategyKind::Steps => 0.0,
            StrategyKind::FairShare => 1.0,
        }
    }
    pub fn from_code(code: f64) -> Option<StrategyKind> {
        match code.round() as i64 {
            0 => Some(StrategyKind::Steps),
            1 => Some(StrategyKind::FairShare),
            _ => None,
        }
    }
}

/// One charger side: its device name, or the device with its wiring.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ChargerDoc {
    Name(String),
    Wired(WiredChargerDoc),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WiredChargerDoc {
    device: String,
    /// 1 or 3 (default 3).
    #[serde(default = "d_three")]
    phases: u8,
    /// The site phase a single-phase side is wired to, 1..=3 (default 1).
    #[serde(default = "d_one")]
    phase: u8,
}

fn d_three() -> u8 {
    3
}
fn d_one() -> u8 {
    1
}
fn d_device() -> String {
    "dlm".into()
}
fn d_meter_points() -> Vec<String> {
    vec!["i1".into(), "i2".into(), "i3".into()]
}
fn d_period() -> u64 {
    1000
}
fn d_meter_timeout() -> u64 {
    5000
}
fn d_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadManagementDoc {
    #[serde(default = "d_true")]
    enabled: bool,
    /// The name of the load manager's device (its points are `dlm/zone`, `dlm/side1.setpoint`).
    #[serde(default = "d_device")]
    device: String,
    #[serde(default)]
    strategy: StrategyKind,
    /// The total-consumption meter (the whole installation, or the charging feeder only).
    meter: String,
    /// Its phase currents (three points, or one for a single-phase site).
    #[serde(default = "d_meter_points")]
    meter_points: Vec<String>,
    /// The charger sides, in the order their `side<n>` points are served.
    chargers: Vec<ChargerDoc>,
    /// One decision per period.
    #[serde(default = "d_period")]
    period_ms: u64,
    /// A meter whose last good reading is older than this is silent: safe state.
    #[serde(default = "d_meter_timeout")]
    meter_timeout_ms: u64,
    /// The limit of every authorised session in the safe state (default: its second step).
    #[serde(default)]
    safe_current_a: Option<f64>,
    /// Parameter points protocols may write (`max_current`, `hold_time`, ..., `strategy`);
    /// writes must also be enabled (`writes.enabled`).
    #[serde(default)]
    writable: Vec<String>,
    max_current_a: f64,
    max_charging_current_a: f64,
    #[serde(default)]
    hysteresis_pct: Option<f64>,
    #[serde(default)]
    first_step_pct: Option<f64>,
    #[serde(default)]
    second_step_pct: Option<f64>,
    #[serde(default)]
    guaranteed_ah: Option<f64>,
    #[serde(default)]
    load_control: Option<bool>,
    #[serde(default)]
    control_logic: Option<bool>,
    #[serde(default)]
    hold_s: Option<f64>,
    #[serde(default)]
    waiting_s: Option<f64>,
    #[serde(default)]
    skip_s: Option<f64>,
    #[serde(default)]
    settle_s: Option<f64>,
    #[serde(default)]
    priority_weight: Option<f64>,
    /// Unit id of the load manager on the northbound Modbus server (default: after the devices).
    #[serde(default)]
    modbus_unit_id: Option<u8>,
    #[serde(default)]
    bacnet_base: Option<u32>,
}

/// A charger side as the load manager sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargerLink {
    /// Index into the config's devices.
    pub device: usize,
    pub phases: [bool; 3],
}

/// The resolved section.
#[derive(Debug, Clone)]
pub struct LoadManagement {
    /// Index of the load manager's own device in the config's devices.
    pub device: usize,
    pub strategy: StrategyKind,
    pub params: Params,
    pub meter: usize,
    /// Point ids (within the meter's profile) of its phase currents.
    pub meter_points: Vec<String>,
    pub chargers: Vec<ChargerLink>,
    pub period: Duration,
    pub meter_timeout: Duration,
    pub safe_current_a: Option<f64>,
}

impl LoadManagementDoc {
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn params(&self) -> Params {
        let d = Params::default();
        Params {
            max_current_a: self.max_current_a,
            max_charging_current_a: self.max_charging_current_a,
            hysteresis_pct: self.hysteresis_pct.unwrap_or(d.hysteresis_pct),
            first_step_pct: self.first_step_pct.unwrap_or(d.first_step_pct),
            second_step_pct: self.second_step_pct.unwrap_or(d.second_step_pct),
            guaranteed_ah: self.guaranteed_ah.unwrap_or(d.guaranteed_ah),
            load_control: self.load_control.unwrap_or(d.load_control),
            control_logic: self.control_logic.unwrap_or(d.control_logic),
            hold_s: self.hold_s.unwrap_or(d.hold_s),
            waiting_s: self.waiting_s.unwrap_or(d.waiting_s),
            skip_s: self.skip_s.unwrap_or(d.skip_s),
            settle_s: self.settle_s.unwrap_or(d.settle_s),
            priority_weight: self.priority_weight.unwrap_or(d.priority_weight),
        }
    }

    /// Validate against the devices; on success, append the internal connection and the load
    /// manager's device, and return the settings. Errors go to `d` at `line`.
    #[allow(clippy::too_many_arguments)]
    pub fn resolve(
        &self,
        file: &str,
        line: u64,
        writes_enabled: bool,
        profiles: &ProfileSet,
        connections: &mut Vec<Connection>,
        devices: &mut Vec<Device>,
        device_lines: &mut Vec<(u64, String)>,
        d: &mut Diagnostics,
    ) -> Option<LoadManagement> {
        let errors = d.len();
        let mut err = |key: &str, m: String| {
            let path = if key.is_empty() {
                "load_management".to_string()
            } else {
                format!("load_management.{key}")
            };
            d.push(file, line, path, m);
        };
        let params = self.params();
        if let Some(p) = params.problem() {
            err("", p);
        }
        let by_name: HashMap<&str, usize> = devices.iter().enumerate().map(|(i, v)| (v.name.as_str(), i)).collect();
        if by_name.contains_key(self.device.as_str()) {
            err(
                "device",
                format!(
                    "`{}` is already a device: give the load manager another name",
                    self.device
                ),
            );
        }
        let meter = by_name.get(self.meter.as_str()).copied();
        match meter {
            None => err("meter", format!("unknown device `{}`", self.meter)),
            Some(m) => {
                if !matches!(self.meter_points.len(), 1 | 3) {
                    err(
                        "meter_points",
                        "name the three phase currents, or one for a single-phase site".into(),
                    );
                }
                for p in &self.meter_points {
                    if devices[m].profile.point(p).is_none() {
                        err(
                            "meter_points",
                            format!("`{}` ({}) has no point `{p}`", self.meter, devices[m].profile.name),
                        );
                    }
                }
            }
        }
        if self.chargers.is_empty() {
            err("chargers", "name at least one charger side".into());
        }
        let mut chargers = Vec::new();
        let mut seen = HashMap::new();
        for (i, c) in self.chargers.iter().enumerate() {
            let (name, phases, phase) = match c {
                ChargerDoc::Name(n) => (n.as_str(), 3, 1),
                ChargerDoc::Wired(w) => (w.device.as_str(), w.phases, w.phase),
            };
            let key = format!("chargers[{i}] ({name})");
            if seen.insert(name, i).is_some() {
                err(&key, "listed twice".into());
            }
            let Some(&dev) = by_name.get(name) else {
                err(&key, format!("unknown device `{name}`"));
                continue;
            };
            let device = &devices[dev];
            if device.profile.family != Family::Charger {
                err(&key, format!("`{name}` is a {}, not a charger", device.profile.family));
                continue;
            }
            for p in CHARGER_POINTS {
                if device.profile.point(p).is_none() {
                    err(&key, format!("profile `{}` has no point `{p}`", device.profile.name));
                }
            }
            for p in ["current_limit", "command"] {
                let k = device.profile.point_index(p);
                let writable = k.is_some_and(|k| device.settings.get(&k).is_some_and(|s| s.writable));
                if !writable || !writes_enabled {
                    err(
                        &key,
                        format!(
                            "the load manager writes `{name}/{p}`: enable writes (`writes.enabled: true`) and make it writable (`points: {{ {p}: {{ writable: true }} }}`)"
                        ),
                    );
                }
            }
            let phases = match (phases, phase) {
                (3, _) => [true; 3],
                (1, p @ 1..=3) => {
                    let mut on = [false; 3];
                    on[usize::from(p - 1)] = true;
                    on
                }
                (1, p) => {
                    err(&key, format!("phase {p} is outside 1..=3"));
                    [true; 3]
                }
                (n, _) => {
                    err(
                        &key,
                        format!("phases {n}: a side is single-phase (1) or three-phase (3)"),
                    );
                    [true; 3]
                }
            };
            chargers.push(ChargerLink { device: dev, phases });
        }
        let profile = dlm_profile(profiles);
        let Some(profile) = profile else {
            err(
                "",
                format!("profile `{PROFILE}` is neither in the profile directory nor built in"),
            );
            return None;
        };
        let max_sides = profile
            .points
            .iter()
            .filter_map(|p| p.block.as_ref())
            .map(|b| b.index)
            .max()
            .unwrap_or(0);
        if self.chargers.len() > usize::from(max_sides) {
            err(
                "chargers",
                format!(
                    "{} sides, the load manager serves at most {max_sides}",
                    self.chargers.len()
                ),
            );
        }
        let mut settings = HashMap::new();
        for w in &self.writable {
            let known = w == "strategy" || PARAMETER_POINTS.contains(&w.as_str());
            match profile.point_index(w) {
                Some(k) if known => {
                    settings.insert(
                        k,
                        PointSettings {
                            writable: true,
                            ..Default::default()
                        },
                    );
                }
                _ => err(
                    "writable",
                    format!(
                        "`{w}` is not a parameter (one of strategy, {})",
                        PARAMETER_POINTS.join(", ")
                    ),
                ),
            }
        }
        if !self.writable.is_empty() && !writes_enabled {
            err(
                "writable",
                "writes are off (`writes.enabled`): no parameter can be written".into(),
            );
        }
        if !(100..=60_000).contains(&self.period_ms) {
            err("period_ms", format!("{} is outside 100..=60000", self.period_ms));
        }
        if self.meter_timeout_ms < self.period_ms {
            err(
                "meter_timeout_ms",
                format!(
                    "{} is shorter than the period ({} ms)",
                    self.meter_timeout_ms, self.period_ms
                ),
            );
        }
        if let Some(a) = self.safe_current_a {
            if !(a.is_finite() && a >= super::model::MIN_CHARGING_A) {
                err(
                    "safe_current_a",
                    format!("{a} A: a session cannot be held below 6 A (IEC 61851); it is paused instead"),
                );
            }
        }
        if d.len() > errors {
            return None;
        }
        let meter = meter?;
        let acquired = profile
            .points
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.block
                    .as_ref()
                    .is_none_or(|b| usize::from(b.index) <= self.chargers.len())
            })
            .map(|(k, _)| k)
            .collect();
        let index = devices.len();
        connections.push(Connection {
            name: format!("{} (internal)", self.device),
            link: Link::Internal,
        });
        let period = Duration::from_millis(self.period_ms);
        devices.push(Device {
            name: self.device.clone(),
            profile,
            connection: connections.len() - 1,
            unit_id: 0,
            poll_interval: period,
            timeout: Duration::from_secs(5),
            retries: 0,
            stale_after_polls: 5,
            acquired,
            settings,
            modbus_unit_id: self
                .modbus_unit_id
                .unwrap_or_else(|| u8::try_from(index + 1).ok().filter(|u| *u <= 247).unwrap_or(0)),
            bacnet_base: self.bacnet_base.unwrap_or_else(|| default_bacnet_base(&self.device)),
        });
        device_lines.push((line, format!("load_management ({})", self.device)));
        Some(LoadManagement {
            device: index,
            strategy: self.strategy,
            params,
            meter,
            meter_points: self.meter_points.clone(),
            chargers,
            period,
            meter_timeout: Duration::from_millis(self.meter_timeout_ms),
            safe_current_a: self.safe_current_a,
        })
    }
}

/// The load manager's profile: the profile directory's, else the built-in one.
fn dlm_profile(profiles: &ProfileSet) -> Option<Arc<Profile>> {
    profiles.get(PROFILE).cloned().or_else(|| {
        busbar_core::profile::embedded::profiles()
            .ok()
            .and_then(|set| set.get(PROFILE).cloned())
    })
}
