//! Vapour recovery monitoring: per fuelling point and side, each fuelling gives a recovery
//! rate (vapour returned / fuel dispensed) around the side's mean; a side whose rate stays
//! out of the 95..105 % window for 5 fuellings in a row warns, for 10 alarms; a service event
//! resets it.

use super::{not_for_this_device, not_writable, DeviceModel, Emit, Env, Refusal};
use crate::events::Event;
use crate::rng::SimRng;
use busbar_core::units::Unit;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaporixParams {
    /// Fuelling points in use (up to the profile's blocks).
    #[serde(default = "d_fp")]
    pub fuelling_points: u16,
    /// Fuellings per hour per side while open.
    #[serde(default = "d_rate")]
    pub fuellings_per_hour: f64,
    #[serde(default = "d_temp")]
    pub temperature_c: f64,
}

fn d_fp() -> u16 {
    4
}
fn d_rate() -> f64 {
    4.0
}
fn d_temp() -> f64 {
    14.0
}

const WINDOW: (f64, f64) = (95.0, 105.0);

#[derive(Debug, Clone)]
struct Side {
    mean: f64,
    last_rate: f64,
    fuelling_left_s: f64,
    fuel_flow: f64,
    bad_in_row: u32,
}

impl Side {
    fn status(&self) -> f64 {
        match self.bad_in_row {
            0..=4 => 0.0,
            5..=9 => 1.0,
            _ => 2.0,
        }
    }
}

pub struct Vaporix {
    p: VaporixParams,
    sides: Vec<[Side; 2]>,
}

impl Vaporix {
    pub fn new(p: VaporixParams, slots: u16) -> Vaporix {
        let n = p.fuelling_points.min(slots);
        let side = Side {
            mean: 100.0,
            last_rate: 100.0,
            fuelling_left_s: 0.0,
            fuel_flow: 0.0,
            bad_in_row: 0,
        };
        Vaporix {
            sides: (0..n).map(|_| [side.clone(), side.clone()]).collect(),
            p,
        }
    }

    fn side(&mut self, fp: u16, side: char) -> Result<&mut Side, Refusal> {
        let count = self.sides.len();
        let s = match side.to_ascii_lowercase() {
            'a' => 0,
            'b' => 1,
            other => return Err(format!("side `{other}` does not exist (a, b)")),
        };
        self.sides
            .get_mut(usize::from(fp).wrapping_sub(1))
            .map(|sides| &mut sides[s])
            .ok_or_else(|| format!("fuelling point {fp} does not exist (1..={count})"))
    }
}

impl DeviceModel for Vaporix {
    fn step(&mut self, dt: f64, env: &Env, rng: &mut SimRng) {
        let per_s = self.p.fuellings_per_hour / 3600.0;
        for pair in &mut self.sides {
            for s in pair.iter_mut() {
                if s.fuelling_left_s > 0.0 {
                    s.fuelling_left_s -= dt;
                    if s.fuelling_left_s <= 0.0 {
                        s.fuel_flow = 0.0;
                        // The fuelling ends: judge its recovery rate.
                        let out_of_window = s.last_rate < WINDOW.0 || s.last_rate > WINDOW.1;
                        s.bad_in_row = if out_of_window { s.bad_in_row + 1 } else { 0 };
                    }
                } else if env.station_open && rng.chance(per_s * dt) {
                    s.fuelling_left_s = rng.range(40.0, 120.0);
                    s.fuel_flow = rng.range(30.0, 40.0);
                    s.last_rate = s.mean + 1.5 * rng.normal();
                }
            }
        }
    }

    fn emit(&self, out: &mut Emit<'_>) {
        for (i, pair) in self.sides.iter().enumerate() {
            for (s, letter) in pair.iter().zip(['a', 'b']) {
                let n = i + 1;
                let gas = s.fuel_flow * s.last_rate / 100.0;
                out(&format!("fp{n}.{letter}_recovery_rate"), s.last_rate, Unit::Percent);
                out(&format!("fp{n}.{letter}_fuel_flow"), s.fuel_flow, Unit::LitrePerMinute);
                out(&format!("fp{n}.{letter}_gas_flow"), gas, Unit::LitrePerMinute);
                out(
                    &format!("fp{n}.{letter}_temperature"),
                    self.p.temperature_c,
                    Unit::DegreeCelsius,
                );
                out(&format!("fp{n}.{letter}_status"), s.status(), Unit::None);
                out(
                    &format!("fp{n}.{letter}_bad_fuellings"),
                    f64::from(s.bad_in_row),
                    Unit::Count,
                );
            }
        }
    }

    fn write(&mut self, point: &str, _value: f64) -> Result<(), Refusal> {
        Err(not_writable(point))
    }

    fn event(&mut self, event: &Event, _rng: &mut SimRng) -> Result<(), Refusal> {
        match event {
            Event::VapourDrift { fp, side, recovery_pct } if (0.0..=200.0).contains(recovery_pct) => {
                self.side(*fp, *side)?.mean = *recovery_pct
            }
            Event::VapourService { fp, side } => {
                let s = self.side(*fp, *side)?;
                s.mean = 100.0;
                s.bad_in_row = 0;
            }
            _ => return Err(not_for_this_device(event)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_out_of_window_raises_warning_then_alarm_and_service_resets() {
        let mut v = Vaporix::new(
            serde_json::from_value(serde_json::json!({"fuelling_points": 1, "fuellings_per_hour": 30}))
                .unwrap_or_else(|e| panic!("{e}")),
            8,
        );
        let env = Env {
            station_open: true,
            ..Env::with_devices(1)
        };
        let mut rng = SimRng::for_device(5, 0);
        v.event(
            &Event::VapourDrift {
                fp: 1,
                side: 'a',
                recovery_pct: 85.0,
            },
            &mut rng,
        )
        .unwrap_or_default();
        for _ in 0..(4 * 3600) {
            v.step(1.0, &env, &mut rng);
        }
        assert_eq!(v.sides[0][0].status(), 2.0, "alarm after many bad fuellings");
        assert_eq!(v.sides[0][1].status(), 0.0, "side B is healthy");
        v.event(&Event::VapourService { fp: 1, side: 'a' }, &mut rng)
            .unwrap_or_default();
        assert_eq!(v.sides[0][0].status(), 0.0);
        assert!(v.event(&Event::VapourService { fp: 3, side: 'a' }, &mut rng).is_err());
    }
}
