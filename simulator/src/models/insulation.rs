//! Insulation monitoring of an IT network: the IMD measures the network's Rf and Ce (the
//! parallel combination of its circuits), |Zc| = Rf / sqrt(1 + (w Rf Ce)^2), with prewarning and
//! alarm thresholds and hysteresis; in alarm it injects a locating current that the fault
//! locator finds on the faulty feeder.

use super::{not_for_this_device, not_writable, CircuitState, DeviceModel, Emit, Env, ImdNetwork, Refusal};
use crate::events::Event;
use crate::rng::{SimRng, Wander};
use busbar_core::units::Unit;
use serde::Deserialize;
use std::f64::consts::TAU;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImdParams {
    /// Circuits of the network (the fault locator watches them).
    #[serde(default = "d_circuits")]
    pub circuits: u16,
    /// Healthy insulation of one circuit.
    #[serde(default = "d_rf")]
    pub circuit_rf_kohm: f64,
    /// Leakage capacitance of one circuit.
    #[serde(default = "d_ce")]
    pub circuit_ce_uf: f64,
    #[serde(default = "d_v")]
    pub network_voltage_v: f64,
    #[serde(default = "d_f")]
    pub network_frequency_hz: f64,
    /// Prewarning threshold (kOhm).
    #[serde(default = "d_pre")]
    pub prewarning_kohm: f64,
    /// Alarm threshold (kOhm); 50 Ohm/V of a 400 V network is 20 kOhm.
    #[serde(default = "d_alarm")]
    pub alarm_kohm: f64,
    /// Hysteresis: an alarm clears above threshold x (1 + hysteresis).
    #[serde(default = "d_hyst")]
    pub hysteresis: f64,
    /// Locating current injected in alarm (mA).
    #[serde(default = "d_il")]
    pub locating_current_ma: f64,
}

fn d_circuits() -> u16 {
    6
}
fn d_rf() -> f64 {
    20_000.0
}
fn d_ce() -> f64 {
    0.4
}
fn d_v() -> f64 {
    400.0
}
fn d_f() -> f64 {
    50.0
}
fn d_pre() -> f64 {
    40.0
}
fn d_alarm() -> f64 {
    20.0
}
fn d_hyst() -> f64 {
    0.25
}
fn d_il() -> f64 {
    2.5
}

/// |Zc| of Rf (kOhm) in parallel with Ce (uF) at f (Hz), in kOhm.
pub fn impedance_kohm(rf_kohm: f64, ce_uf: f64, f_hz: f64) -> f64 {
    let w = TAU * f_hz;
    let x = w * rf_kohm * 1e3 * ce_uf * 1e-6;
    rf_kohm / (1.0 + x * x).sqrt()
}

/// Parallel combination of resistances (kOhm).
fn parallel(rs: impl Iterator<Item = f64>) -> f64 {
    let g: f64 = rs.map(|r| 1.0 / r.max(1e-6)).sum();
    if g > 0.0 {
        1.0 / g
    } else {
        f64::INFINITY
    }
}

#[derive(Debug, Clone)]
struct Circuit {
    rf: f64,
    ce: f64,
    /// Exponential decay target and time constant (s).
    decay: Option<(f64, f64)>,
}

/// Alarm state with hysteresis: 0 none, 1 prewarning, 2 alarm.
fn alarm_with_hysteresis(current: u8, rf: f64, pre: f64, alarm: f64, h: f64) -> u8 {
    let level_now = if rf < alarm {
        2
    } else if rf < pre {
        1
    } else {
        0
    };
    if level_now >= current {
        return level_now;
    }
    // Going down needs the value back above the threshold plus hysteresis.
    match current {
        2 if rf > alarm * (1.0 + h) => {
            if rf < pre {
                1
            } else if rf > pre * (1.0 + h) {
                0
            } else {
                1
            }
        }
        1 if rf > pre * (1.0 + h) => 0,
        c => c,
    }
}

pub struct Imd {
    p: ImdParams,
    circuits: Vec<Circuit>,
    /// Measured values follow the truth with the device's response time.
    rf_meas: f64,
    ce_meas: f64,
    stats: [(f64, f64, f64, f64); 3],
    alarm: u8,
    self_test_left: f64,
    noise: Wander,
}

impl Imd {
    pub fn new(p: ImdParams) -> Imd {
        let circuits = (0..p.circuits.max(1))
            .map(|_| Circuit {
                rf: p.circuit_rf_kohm,
                ce: p.circuit_ce_uf,
                decay: None,
            })
            .collect::<Vec<_>>();
        let rf = parallel(circuits.iter().map(|c| c.rf));
        let ce = circuits.iter().map(|c| c.ce).sum();
        Imd {
            rf_meas: rf,
            ce_meas: ce,
            stats: [(f64::INFINITY, 0.0, 0.0, 0.0); 3],
            alarm: 0,
            self_test_left: 0.0,
            noise: Wander::new(0.01, 60.0),
            circuits,
            p,
        }
    }

    fn true_rf(&self) -> f64 {
        parallel(self.circuits.iter().map(|c| c.rf))
    }

    fn circuit(&mut self, n: u16) -> Result<&mut Circuit, Refusal> {
        let count = self.circuits.len();
        self.circuits
            .get_mut(usize::from(n).wrapping_sub(1))
            .ok_or_else(|| format!("circuit {n} does not exist (1..={count})"))
    }

    pub fn alarm_state(&self) -> u8 {
        self.alarm
    }

    pub fn measured_rf(&self) -> f64 {
        self.rf_meas
    }
}

impl DeviceModel for Imd {
    fn step(&mut self, dt: f64, _env: &Env, rng: &mut SimRng) {
        for c in &mut self.circuits {
            if let Some((target, tau)) = c.decay {
                c.rf = target + (c.rf - target) * (-dt / tau).exp();
            }
        }
        // Response time of the measurement: ~5 s.
        let a = 1.0 - (-dt / 5.0).exp();
        let n = 1.0 + self.noise.step(dt, rng);
        self.rf_meas += (self.true_rf() * n - self.rf_meas) * a;
        let ce: f64 = self.circuits.iter().map(|c| c.ce).sum();
        self.ce_meas += (ce - self.ce_meas) * a;
        let zc = impedance_kohm(self.rf_meas, self.ce_meas, self.p.network_frequency_hz);
        for (s, v) in self.stats.iter_mut().zip([self.rf_meas, self.ce_meas, zc]) {
            s.0 = s.0.min(v);
            s.1 = s.1.max(v);
            s.2 += v * dt;
            s.3 += dt;
        }
        self.alarm = alarm_with_hysteresis(
            self.alarm,
            self.rf_meas,
            self.p.prewarning_kohm,
            self.p.alarm_kohm,
            self.p.hysteresis,
        );
        self.self_test_left = (self.self_test_left - dt).max(0.0);
    }

    fn contribute(&self, index: usize, env: &mut Env) {
        if let Some(slot) = env.imd.get_mut(index) {
            *slot = Some(ImdNetwork {
                circuits: self
                    .circuits
                    .iter()
                    .map(|c| CircuitState {
                        rf_kohm: c.rf,
                        ce_uf: c.ce,
                    })
                    .collect(),
                voltage: self.p.network_voltage_v,
                frequency: self.p.network_frequency_hz,
                locating: self.alarm == 2,
                locating_current_ma: self.p.locating_current_ma,
            });
        }
    }

    fn emit(&self, out: &mut Emit<'_>) {
        let f = self.p.network_frequency_hz;
        let zc = impedance_kohm(self.rf_meas, self.ce_meas, f);
        out("rf", self.rf_meas, Unit::Kiloohm);
        out("ce", self.ce_meas, Unit::Microfarad);
        out("zc", zc, Unit::Kiloohm);
        for (name, s, now) in [
            ("rf", self.stats[0], self.rf_meas),
            ("ce", self.stats[1], self.ce_meas),
            ("zc", self.stats[2], zc),
        ] {
            let unit = if name == "ce" { Unit::Microfarad } else { Unit::Kiloohm };
            let avg = if s.3 > 0.0 { s.2 / s.3 } else { now };
            out(&format!("{name}_min"), if s.0.is_finite() { s.0 } else { now }, unit);
            out(&format!("{name}_max"), s.1.max(now), unit);
            out(&format!("{name}_avg"), avg, unit);
        }
        out("network_voltage", self.p.network_voltage_v, Unit::Volt);
        out("network_frequency", f, Unit::Hertz);
        out("network_type", 0.0, Unit::None);
        let state = if self.self_test_left > 0.0 {
            0.0
        } else {
            f64::from(self.alarm)
        };
        out("alarm_state", state, Unit::None);
        out("prewarning_threshold", self.p.prewarning_kohm, Unit::Kiloohm);
        out("alarm_threshold", self.p.alarm_kohm, Unit::Kiloohm);
        out("locating_active", f64::from(u8::from(self.alarm == 2)), Unit::None);
        out("self_test", f64::from(u8::from(self.self_test_left > 0.0)), Unit::None);
    }

    fn write(&mut self, point: &str, value: f64) -> Result<(), Refusal> {
        match point {
            "prewarning_threshold" if value > self.p.alarm_kohm => self.p.prewarning_kohm = value,
            "alarm_threshold" if value > 0.0 && value < self.p.prewarning_kohm => self.p.alarm_kohm = value,
            "prewarning_threshold" | "alarm_threshold" => {
                return Err("the prewarning threshold must stay above the alarm threshold".into())
            }
            "self_test" if value.round() == 1.0 => self.self_test_left = 10.0,
            "self_test" => {}
            other => return Err(not_writable(other)),
        }
        Ok(())
    }

    fn event(&mut self, event: &Event, _rng: &mut SimRng) -> Result<(), Refusal> {
        let healthy = self.p.circuit_rf_kohm;
        match event {
            Event::InsulationFault { circuit, rf_kohm } if *rf_kohm > 0.0 => {
                let c = self.circuit(*circuit)?;
                c.rf = *rf_kohm;
                c.decay = None;
            }
            Event::InsulationDecay { circuit, to_kohm, tau } if *to_kohm > 0.0 => {
                let c = self.circuit(*circuit)?;
                c.decay = Some((*to_kohm, tau.as_secs_f64().max(1.0)));
            }
            Event::InsulationClear { circuit } => {
                let c = self.circuit(*circuit)?;
                c.rf = healthy;
                c.decay = None;
            }
            _ => return Err(not_for_this_device(event)),
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocatorParams {
    /// The IMD whose network this locator watches.
    pub imd: String,
    /// IL above this fraction of the injected current marks the faulty feeder.
    #[serde(default = "d_detect")]
    pub detection_ratio: f64,
}

fn d_detect() -> f64 {
    0.5
}

pub struct Locator {
    p: LocatorParams,
    imd: Option<usize>,
    circuits: Vec<(f64, f64, f64, f64, u8)>,
    link_ok: bool,
}

impl Locator {
    pub fn new(p: LocatorParams, imd: Option<usize>) -> Locator {
        Locator {
            p,
            imd,
            circuits: Vec::new(),
            link_ok: false,
        }
    }
}

impl DeviceModel for Locator {
    fn step(&mut self, _dt: f64, env: &Env, _rng: &mut SimRng) {
        let Some(net) = self.imd.and_then(|i| env.imd.get(i)).and_then(|n| n.as_ref()) else {
            self.link_ok = false;
            return;
        };
        self.link_ok = true;
        let w = TAU * net.frequency;
        let g_total: f64 = net.circuits.iter().map(|c| 1.0 / c.rf_kohm.max(1e-6)).sum();
        self.circuits = net
            .circuits
            .iter()
            .map(|c| {
                // Residual current: resistive and capacitive leakage at network voltage (mA).
                let ir = net.voltage / (c.rf_kohm * 1e3) * 1e3;
                let ic = net.voltage * w * c.ce_uf * 1e-6 * 1e3;
                let residual = (ir * ir + ic * ic).sqrt();
                // The locating current divides by conductance: it flows through the fault.
                let il = if net.locating {
                    net.locating_current_ma * (1.0 / c.rf_kohm.max(1e-6)) / g_total
                } else {
                    0.0
                };
                let alarm = if il > self.p.detection_ratio * net.locating_current_ma {
                    2
                } else {
                    0
                };
                (residual, il, c.rf_kohm, c.ce_uf, alarm)
            })
            .collect();
    }

    fn emit(&self, out: &mut Emit<'_>) {
        out("circuits_configured", self.circuits.len() as f64, Unit::Count);
        out("imd_link", f64::from(u8::from(self.link_ok)), Unit::None);
        for (i, (residual, il, rf, ce, alarm)) in self.circuits.iter().enumerate() {
            let n = i + 1;
            out(&format!("circuit{n}.residual_current"), *residual, Unit::Milliampere);
            out(&format!("circuit{n}.locating_current"), *il, Unit::Milliampere);
            out(&format!("circuit{n}.rf"), *rf, Unit::Kiloohm);
            out(&format!("circuit{n}.ce"), *ce, Unit::Microfarad);
            out(&format!("circuit{n}.alarm_state"), f64::from(*alarm), Unit::None);
        }
    }

    fn write(&mut self, point: &str, _value: f64) -> Result<(), Refusal> {
        Err(not_writable(point))
    }

    fn event(&mut self, event: &Event, _rng: &mut SimRng) -> Result<(), Refusal> {
        Err(format!(
            "{}: send insulation events to the IMD (`{}`), the locator only watches",
            not_for_this_device(event),
            self.p.imd
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impedance_of_rf_parallel_ce() {
        // 1 MOhm || 1 uF at 50 Hz: w R C = 314.16, |Z| = R / sqrt(1 + 314.16^2) = 3.183 kOhm.
        let z = impedance_kohm(1000.0, 1.0, 50.0);
        assert!((z - 3.1831).abs() < 1e-3, "{z}");
        // No capacitance: |Z| = Rf.
        assert_eq!(impedance_kohm(500.0, 0.0, 50.0), 500.0);
    }

    #[test]
    fn alarms_have_hysteresis_and_never_chatter() {
        let (pre, al, h) = (40.0, 20.0, 0.25);
        let mut s = 0;
        s = alarm_with_hysteresis(s, 19.0, pre, al, h);
        assert_eq!(s, 2);
        s = alarm_with_hysteresis(s, 21.0, pre, al, h);
        assert_eq!(s, 2, "just above the threshold: still in alarm");
        s = alarm_with_hysteresis(s, 26.0, pre, al, h);
        assert_eq!(s, 1, "above 25 kOhm: back to prewarning");
        s = alarm_with_hysteresis(s, 45.0, pre, al, h);
        assert_eq!(s, 1, "below 50 kOhm: prewarning holds");
        s = alarm_with_hysteresis(s, 51.0, pre, al, h);
        assert_eq!(s, 0);
    }

    #[test]
    fn locator_finds_the_faulty_feeder() {
        let mut imd =
            Imd::new(serde_json::from_value(serde_json::json!({"circuits": 4})).unwrap_or_else(|e| panic!("{e}")));
        let mut env = Env::with_devices(2);
        let mut rng = SimRng::for_device(3, 0);
        imd.event(
            &Event::InsulationFault {
                circuit: 3,
                rf_kohm: 5.0,
            },
            &mut rng,
        )
        .unwrap_or_default();
        let mut loc = Locator::new(
            serde_json::from_value(serde_json::json!({"imd": "imd"})).unwrap_or_else(|e| panic!("{e}")),
            Some(0),
        );
        for _ in 0..600 {
            imd.step(0.1, &env, &mut rng);
            imd.contribute(0, &mut env);
            loc.step(0.1, &env, &mut rng);
        }
        assert_eq!(imd.alarm_state(), 2, "Rf {}", imd.measured_rf());
        let alarms: Vec<u8> = loc.circuits.iter().map(|c| c.4).collect();
        assert_eq!(alarms, vec![0, 0, 2, 0]);
    }
}
