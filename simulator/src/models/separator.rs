//! Oil separator: the light liquid (oil) layer and the sludge layer grow slowly, the water
//! level follows rain; alarms when a layer passes its threshold (cleared 10 % below it).

use super::{not_for_this_device, not_writable, DeviceModel, Emit, Env, Refusal};
use crate::events::Event;
use crate::rng::{SimRng, Wander};
use busbar_core::units::Unit;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeparatorParams {
    /// Separator surface (m2): converts an oil volume to a layer thickness.
    #[serde(default = "d_area")]
    pub surface_m2: f64,
    #[serde(default = "d_ll")]
    pub light_liquid_mm: f64,
    #[serde(default = "d_sludge")]
    pub sludge_mm: f64,
    /// Normal oil inflow (mm/day of layer).
    #[serde(default = "d_ll_rate")]
    pub light_liquid_mm_per_day: f64,
    #[serde(default = "d_sludge_rate")]
    pub sludge_mm_per_day: f64,
    #[serde(default = "d_water")]
    pub water_level_mm: f64,
    #[serde(default = "d_ll_alarm")]
    pub light_liquid_alarm_mm: f64,
    #[serde(default = "d_sludge_alarm")]
    pub sludge_alarm_mm: f64,
}

fn d_area() -> f64 {
    2.0
}
fn d_ll() -> f64 {
    12.0
}
fn d_sludge() -> f64 {
    80.0
}
fn d_ll_rate() -> f64 {
    0.5
}
fn d_sludge_rate() -> f64 {
    1.0
}
fn d_water() -> f64 {
    1200.0
}
fn d_ll_alarm() -> f64 {
    150.0
}
fn d_sludge_alarm() -> f64 {
    400.0
}

pub struct Separator {
    p: SeparatorParams,
    ll: f64,
    sludge: f64,
    rain: Wander,
    water: f64,
    ll_alarm: bool,
    sludge_alarm: bool,
}

impl Separator {
    pub fn new(p: SeparatorParams) -> Separator {
        Separator {
            ll: p.light_liquid_mm,
            sludge: p.sludge_mm,
            water: p.water_level_mm,
            rain: Wander::new(15.0, 1800.0),
            ll_alarm: false,
            sludge_alarm: false,
            p,
        }
    }
}

fn hysteresis(active: bool, value: f64, threshold: f64) -> bool {
    if active {
        value > threshold * 0.9
    } else {
        value > threshold
    }
}

impl DeviceModel for Separator {
    fn step(&mut self, dt: f64, _env: &Env, rng: &mut SimRng) {
        self.ll += self.p.light_liquid_mm_per_day * dt / 86400.0;
        self.sludge += self.p.sludge_mm_per_day * dt / 86400.0;
        self.water = self.p.water_level_mm + self.rain.step(dt, rng).abs();
        self.ll_alarm = hysteresis(self.ll_alarm, self.ll, self.p.light_liquid_alarm_mm);
        self.sludge_alarm = hysteresis(self.sludge_alarm, self.sludge, self.p.sludge_alarm_mm);
    }

    fn emit(&self, out: &mut Emit<'_>) {
        out("light_liquid", self.ll, Unit::Millimetre);
        out("sludge", self.sludge, Unit::Millimetre);
        out("water_level", self.water, Unit::Millimetre);
        out("light_liquid_alarm", f64::from(u8::from(self.ll_alarm)), Unit::None);
        out("sludge_alarm", f64::from(u8::from(self.sludge_alarm)), Unit::None);
        out("probe_status", 0.0, Unit::None);
        out("light_liquid_threshold", self.p.light_liquid_alarm_mm, Unit::Millimetre);
        out("sludge_threshold", self.p.sludge_alarm_mm, Unit::Millimetre);
    }

    fn write(&mut self, point: &str, value: f64) -> Result<(), Refusal> {
        match point {
            "light_liquid_threshold" if value > 0.0 => self.p.light_liquid_alarm_mm = value,
            "sludge_threshold" if value > 0.0 => self.p.sludge_alarm_mm = value,
            other => return Err(not_writable(other)),
        }
        Ok(())
    }

    fn event(&mut self, event: &Event, _rng: &mut SimRng) -> Result<(), Refusal> {
        match event {
            // 1 L spread over 1 m2 is a 1 mm layer.
            Event::OilInflow { volume_l } if *volume_l >= 0.0 => self.ll += volume_l / self.p.surface_m2.max(0.01),
            Event::SeparatorService => {
                self.ll = 0.0;
                self.sludge = 0.0;
            }
            _ => return Err(not_for_this_device(event)),
        }
        Ok(())
    }
}
