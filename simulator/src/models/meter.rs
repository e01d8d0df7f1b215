//! Multifunction 3-phase meter: a daily load profile with noise, P/Q/S/PF consistent with
//! V and I, energy counters that integrate power and never go backwards, THD, and V/I at 0
//! when its upstream transfer switch or breaker supplies nothing.

use super::{daily_curve, not_for_this_device, not_writable, DeviceModel, Emit, Env, Links, Refusal, Supply};
use crate::events::Event;
use crate::rng::{SimRng, Wander};
use busbar_core::units::Unit;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeterParams {
    /// Phase-neutral nominal voltage.
    #[serde(default = "d_230")]
    pub nominal_voltage_v: f64,
    #[serde(default = "d_50")]
    pub nominal_frequency_hz: f64,
    /// Night base load.
    #[serde(default = "d_base")]
    pub base_kw: f64,
    /// Midday peak load.
    #[serde(default = "d_peak")]
    pub peak_kw: f64,
    /// Displacement power factor of the load (lagging).
    #[serde(default = "d_pf")]
    pub power_factor: f64,
    /// Relative noise of the load (standard deviation).
    #[serde(default = "d_noise")]
    pub noise: f64,
    /// Transfer switch or breaker feeding this meter.
    #[serde(default)]
    pub supply: Option<String>,
    /// Energy counter at the start, kWh.
    #[serde(default)]
    pub initial_energy_kwh: f64,
}

fn d_230() -> f64 {
    230.0
}
fn d_50() -> f64 {
    50.0
}
fn d_base() -> f64 {
    4.0
}
fn d_peak() -> f64 {
    30.0
}
fn d_pf() -> f64 {
    0.93
}
fn d_noise() -> f64 {
    0.04
}

/// Phase imbalance of the load: fixed shares per phase (sum 3).
const SHARES: [f64; 3] = [1.04, 0.97, 0.99];
/// Power factor of charger current (active front ends).
const CHARGER_PF: f64 = 0.99;

pub struct Meter {
    p: MeterParams,
    own_index: usize,
    supply: Option<usize>,
    load_noise: Wander,
    volt_noise: [Wander; 3],
    freq_noise: Wander,
    load_factor: f64,
    // Outputs of the last step.
    v: [f64; 3],
    i: [f64; 3],
    ph_p: [f64; 3],
    f: f64,
    q: f64,
    s: f64,
    thd_v: f64,
    thd_i: f64,
    // Counters (internal units Wh, varh, s).
    ea_import_wh: f64,
    ea_export_wh: f64,
    er_varh: f64,
    hours_s: f64,
}

impl Meter {
    pub fn new(p: MeterParams, links: &Links) -> Meter {
        let e0 = p.initial_energy_kwh.max(0.0) * 1000.0;
        Meter {
            p,
            own_index: links.own,
            supply: links.supply,
            load_noise: Wander::new(1.0, 120.0),
            volt_noise: [
                Wander::new(0.006, 30.0),
                Wander::new(0.006, 30.0),
                Wander::new(0.006, 30.0),
            ],
            freq_noise: Wander::new(0.02, 20.0),
            load_factor: 1.0,
            v: [0.0; 3],
            i: [0.0; 3],
            ph_p: [0.0; 3],
            f: 0.0,
            q: 0.0,
            s: 0.0,
            thd_v: 0.0,
            thd_i: 0.0,
            ea_import_wh: e0,
            ea_export_wh: 0.0,
            er_varh: 0.0,
            hours_s: 0.0,
        }
    }

    pub fn total_power_w(&self) -> f64 {
        self.ph_p.iter().sum()
    }

    pub fn energy_import_wh(&self) -> f64 {
        self.ea_import_wh
    }
}

impl DeviceModel for Meter {
    fn step(&mut self, dt: f64, env: &Env, rng: &mut SimRng) {
        let nominal = Supply {
            voltage: self.p.nominal_voltage_v,
            frequency: self.p.nominal_frequency_hz,
        };
        let supply = env.supply_from(self.supply, nominal);
        let n = self.load_noise.step(dt, rng) * self.p.noise;
        let vn: Vec<f64> = self.volt_noise.iter_mut().map(|w| w.step(dt, rng)).collect();
        let fnoise = self.freq_noise.step(dt, rng);
        if !supply.is_live() {
            self.v = [0.0; 3];
            self.i = [0.0; 3];
            self.ph_p = [0.0; 3];
            self.f = 0.0;
            self.q = 0.0;
            self.s = 0.0;
            self.thd_v = 0.0;
            self.thd_i = 0.0;
            return;
        }
        let load_kw = (self.p.base_kw + (self.p.peak_kw - self.p.base_kw) * daily_curve(env.time_of_day_h))
            * (1.0 + n).max(0.0)
            * self.load_factor;
        let pf = self.p.power_factor.clamp(0.05, 1.0);
        let mut p_total = 0.0;
        let mut s_total = 0.0;
        for k in 0..3 {
            let v = supply.voltage * (1.0 + vn[k]);
            let p_load = load_kw * 1000.0 * SHARES[k] / 3.0;
            let i_load = p_load / (v * pf);
            let i_ch = self.charger_current(env, k);
            let p = p_load + v * i_ch * CHARGER_PF;
            let i = i_load + i_ch;
            self.v[k] = v;
            self.i[k] = i;
            self.ph_p[k] = p;
            p_total += p;
            s_total += v * i;
        }
        self.s = s_total;
        self.q = (s_total * s_total - p_total * p_total).max(0.0).sqrt();
        self.f = supply.frequency + fnoise;
        let ratio = (p_total / (self.p.peak_kw.max(0.1) * 1000.0)).clamp(0.0, 1.5);
        self.thd_v = 1.8 + 1.5 * ratio + 0.1 * vn[0] * 100.0;
        self.thd_i = 6.0 + 14.0 * (1.0 - ratio.min(1.0)) + 2.0 * n.abs() * 10.0;
        // Counters integrate over the step and never decrease.
        if p_total >= 0.0 {
            self.ea_import_wh += p_total * dt / 3600.0;
        } else {
            self.ea_export_wh += -p_total * dt / 3600.0;
        }
        self.er_varh += self.q * dt / 3600.0;
        if self.i.iter().any(|i| *i > 0.05) {
            self.hours_s += dt;
        }
    }

    fn emit(&self, out: &mut Emit<'_>) {
        let [v1, v2, v3] = self.v;
        let [i1, i2, i3] = self.i;
        let ll = |a: f64, b: f64| (a * a + b * b + a * b).sqrt();
        out("v1", v1, Unit::Volt);
        out("v2", v2, Unit::Volt);
        out("v3", v3, Unit::Volt);
        out("v_ln", (v1 + v2 + v3) / 3.0, Unit::Volt);
        out("u12", ll(v1, v2), Unit::Volt);
        out("u23", ll(v2, v3), Unit::Volt);
        out("u31", ll(v3, v1), Unit::Volt);
        out("v_ll", (ll(v1, v2) + ll(v2, v3) + ll(v3, v1)) / 3.0, Unit::Volt);
        out("frequency", self.f, Unit::Hertz);
        out("i1", i1, Unit::Ampere);
        out("i2", i2, Unit::Ampere);
        out("i3", i3, Unit::Ampere);
        out("i_total", i1 + i2 + i3, Unit::Ampere);
        let i_n = (i1 * i1 + i2 * i2 + i3 * i3 - i1 * i2 - i2 * i3 - i3 * i1)
            .max(0.0)
            .sqrt();
        out("i_n", i_n, Unit::Ampere);
        let p = self.total_power_w();
        out("p", p, Unit::Watt);
        out("p1", self.ph_p[0], Unit::Watt);
        out("p2", self.ph_p[1], Unit::Watt);
        out("p3", self.ph_p[2], Unit::Watt);
        out("q", self.q, Unit::Var);
        out("s", self.s, Unit::VoltAmpere);
        out("pf", if self.s > 0.0 { p / self.s } else { 1.0 }, Unit::PowerFactor);
        out("ea_import", self.ea_import_wh, Unit::WattHour);
        out("ea_export", self.ea_export_wh, Unit::WattHour);
        out("er_import", self.er_varh, Unit::VarHour);
        out("hour_meter", self.hours_s, Unit::Second);
        for (k, name) in ["thd_v1", "thd_v2", "thd_v3"].iter().enumerate() {
            out(name, (self.thd_v + 0.1 * k as f64).max(0.0), Unit::Percent);
        }
        for (k, name) in ["thd_i1", "thd_i2", "thd_i3"].iter().enumerate() {
            let v = if self.i[k] > 0.05 {
                self.thd_i + 0.5 * k as f64
            } else {
                0.0
            };
            out(name, v.max(0.0), Unit::Percent);
        }
        out("events", if self.v[0] > 1.0 { 0.0 } else { 4.0 }, Unit::None);
    }

    fn write(&mut self, point: &str, _value: f64) -> Result<(), Refusal> {
        Err(not_writable(point))
    }

    fn event(&mut self, event: &Event, _rng: &mut SimRng) -> Result<(), Refusal> {
        match event {
            Event::LoadFactor { factor } if *factor >= 0.0 && factor.is_finite() => {
                self.load_factor = *factor;
                Ok(())
            }
            _ => Err(not_for_this_device(event)),
        }
    }
}

impl Meter {
    fn charger_current(&self, env: &Env, phase: usize) -> f64 {
        // Chargers add their current at the index of the meter they are wired through
        // (see Charger::contribute).
        env.extra_current.get(self.own_index).map_or(0.0, |c| c[phase])
    }
}
