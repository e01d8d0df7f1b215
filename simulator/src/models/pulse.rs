//! Pulse concentrator: water and gas counters accumulate consumption (dm3 = L) from a flow
//! that follows the day; gas also as equivalent kWh by the input's kWh/m3 factor.

use super::{daily_curve, not_for_this_device, not_writable, DeviceModel, Emit, Env, Refusal};
use crate::events::Event;
use crate::rng::{SimRng, Wander};
use busbar_core::units::Unit;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputParams {
    /// water or gas.
    pub medium: String,
    /// Average daytime flow (L/h); the night flow is a tenth of it.
    pub flow_l_per_h: f64,
    /// Gas energy per m3 (kWh/m3).
    #[serde(default = "d_kwh")]
    pub kwh_per_m3: f64,
    #[serde(default)]
    pub initial_l: f64,
}

fn d_kwh() -> f64 {
    10.5
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PulseParams {
    pub inputs: Vec<InputParams>,
}

struct Input {
    p: InputParams,
    medium: u8,
    litres: f64,
    flow: f64,
    factor: f64,
    noise: Wander,
}

pub struct PulseConcentrator {
    inputs: Vec<Input>,
}

impl PulseConcentrator {
    pub fn new(p: PulseParams, slots: u16) -> Result<PulseConcentrator, String> {
        if p.inputs.len() > usize::from(slots) {
            return Err(format!(
                "{} inputs configured, the concentrator has {slots}",
                p.inputs.len()
            ));
        }
        let inputs = p
            .inputs
            .into_iter()
            .enumerate()
            .map(|(i, ip)| {
                let medium = match ip.medium.as_str() {
                    "water" => 1,
                    "gas" => 2,
                    other => return Err(format!("input {}: unknown medium `{other}` (water, gas)", i + 1)),
                };
                Ok(Input {
                    litres: ip.initial_l.max(0.0),
                    medium,
                    flow: 0.0,
                    factor: 1.0,
                    noise: Wander::new(0.2, 300.0),
                    p: ip,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(PulseConcentrator { inputs })
    }
}

impl DeviceModel for PulseConcentrator {
    fn step(&mut self, dt: f64, env: &Env, rng: &mut SimRng) {
        for i in &mut self.inputs {
            let shape = 0.1 + 0.9 * daily_curve(env.time_of_day_h);
            i.flow = (i.p.flow_l_per_h * shape * (1.0 + i.noise.step(dt, rng)) * i.factor).max(0.0);
            i.litres += i.flow * dt / 3600.0;
        }
    }

    fn emit(&self, out: &mut Emit<'_>) {
        for (k, i) in self.inputs.iter().enumerate() {
            let n = k + 1;
            out(&format!("input{n}.medium"), f64::from(i.medium), Unit::None);
            out(&format!("input{n}.consumption"), i.litres, Unit::Litre);
            out(&format!("input{n}.flow_rate"), i.flow, Unit::LitrePerHour);
            let kwh = if i.medium == 2 {
                i.litres / 1000.0 * i.p.kwh_per_m3
            } else {
                0.0
            };
            out(&format!("input{n}.energy_equivalent"), kwh, Unit::KilowattHour);
        }
    }

    fn write(&mut self, point: &str, _value: f64) -> Result<(), Refusal> {
        Err(not_writable(point))
    }

    fn event(&mut self, event: &Event, _rng: &mut SimRng) -> Result<(), Refusal> {
        match event {
            Event::FlowFactor { input, factor } if *factor >= 0.0 => {
                let count = self.inputs.len();
                let i = self
                    .inputs
                    .get_mut(usize::from(*input).wrapping_sub(1))
                    .ok_or_else(|| format!("input {input} does not exist (1..={count})"))?;
                i.factor = *factor;
                Ok(())
            }
            _ => Err(not_for_this_device(event)),
        }
    }
}
