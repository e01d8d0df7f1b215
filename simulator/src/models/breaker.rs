//! Circuit breaker with measurement: open / closed / tripped, a thermal-magnetic trip curve
//! (long time above 1.05 In with an inverse-time delay, instantaneous above 10 In), trip by
//! event, Modbus commands open / close / reset. Downstream devices lose their supply when it
//! is not closed.

use super::{daily_curve, not_for_this_device, not_writable, DeviceModel, Emit, Env, Links, Refusal, Supply};
use crate::events::Event;
use crate::rng::{SimRng, Wander};
use busbar_core::units::Unit;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerParams {
    #[serde(default = "d_in")]
    pub rated_current_a: f64,
    /// Own load (the breaker's feeder): night base and midday peak, kW.
    #[serde(default = "d_base")]
    pub base_kw: f64,
    #[serde(default = "d_peak")]
    pub peak_kw: f64,
    #[serde(default = "d_230")]
    pub nominal_voltage_v: f64,
    /// Transfer switch or breaker upstream.
    #[serde(default)]
    pub supply: Option<String>,
}

fn d_in() -> f64 {
    63.0
}
fn d_base() -> f64 {
    1.0
}
fn d_peak() -> f64 {
    8.0
}
fn d_230() -> f64 {
    230.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Open,
    Closed,
    Tripped,
}

pub struct Breaker {
    p: BreakerParams,
    own_index: usize,
    supply: Option<usize>,
    state: State,
    cause: f64,
    thermal: f64,
    forced: Option<(f64, f64)>,
    noise: Wander,
    current: f64,
    voltage: f64,
    energy_wh: f64,
    trips: f64,
    last_command: f64,
}

impl Breaker {
    pub fn new(p: BreakerParams, links: &Links) -> Breaker {
        Breaker {
            p,
            own_index: links.own,
            supply: links.supply,
            state: State::Closed,
            cause: 0.0,
            thermal: 0.0,
            forced: None,
            noise: Wander::new(0.05, 60.0),
            current: 0.0,
            voltage: 0.0,
            energy_wh: 0.0,
            trips: 0.0,
            last_command: 0.0,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    fn trip(&mut self, cause: f64) {
        self.state = State::Tripped;
        self.cause = cause;
        self.trips += 1.0;
        self.thermal = 0.0;
    }
}

impl DeviceModel for Breaker {
    fn step(&mut self, dt: f64, env: &Env, rng: &mut SimRng) {
        let nominal = Supply {
            voltage: self.p.nominal_voltage_v,
            frequency: 50.0,
        };
        let supply = env.supply_from(self.supply, nominal);
        let n = self.noise.step(dt, rng);
        self.voltage = supply.voltage;
        if let Some((_, left)) = &mut self.forced {
            *left -= dt;
            if *left <= 0.0 {
                self.forced = None;
            }
        }
        if self.state != State::Closed || !supply.is_live() {
            self.current = 0.0;
            return;
        }
        let load_w = (self.p.base_kw + (self.p.peak_kw - self.p.base_kw) * daily_curve(env.time_of_day_h))
            * 1000.0
            * (1.0 + n).max(0.0);
        // Its own feeder's load plus what chargers behind it draw (mean of the phases).
        let downstream = env
            .extra_current
            .get(self.own_index)
            .map_or(0.0, |c| (c[0] + c[1] + c[2]) / 3.0);
        self.current = match self.forced {
            Some((i, _)) => i,
            None => load_w / (3.0 * supply.voltage * 0.95) + downstream,
        };
        let ratio = self.current / self.p.rated_current_a.max(0.1);
        if ratio > 10.0 {
            self.trip(2.0);
            return;
        }
        // Thermal image: trips when the integral of (ratio^2 - 1.05^2) reaches 60 s worth at 2 In.
        if ratio > 1.05 {
            self.thermal += (ratio * ratio - 1.05 * 1.05) * dt;
        } else {
            self.thermal = (self.thermal - dt * 0.1).max(0.0);
        }
        if self.thermal >= 60.0 * (4.0 - 1.05 * 1.05) {
            self.trip(1.0);
            return;
        }
        self.energy_wh += 3.0 * supply.voltage * self.current * 0.95 * dt / 3600.0;
    }

    fn contribute(&self, index: usize, env: &mut Env) {
        if let Some(slot) = env.supplies.get_mut(index) {
            *slot = Some(if self.state == State::Closed && self.voltage > 1.0 {
                Supply {
                    voltage: self.voltage,
                    frequency: 50.0,
                }
            } else {
                Supply::DEAD
            });
        }
    }

    fn emit(&self, out: &mut Emit<'_>) {
        let state = match self.state {
            State::Open => 0.0,
            State::Closed => 1.0,
            State::Tripped => 2.0,
        };
        out("state", state, Unit::None);
        out("trip_cause", self.cause, Unit::None);
        out("rated_current", self.p.rated_current_a, Unit::Ampere);
        out("supply_direction", 0.0, Unit::None);
        for (k, name) in ["i1", "i2", "i3"].iter().enumerate() {
            out(name, self.current * (1.0 + 0.02 * (k as f64 - 1.0)), Unit::Ampere);
        }
        out("p", 3.0 * self.voltage * self.current * 0.95, Unit::Watt);
        out("ea_import", self.energy_wh, Unit::WattHour);
        out("trip_count", self.trips, Unit::Count);
        out("command", self.last_command, Unit::None);
    }

    fn write(&mut self, point: &str, value: f64) -> Result<(), Refusal> {
        if point != "command" {
            return Err(not_writable(point));
        }
        match value.round() as i64 {
            0 => {}
            1 => {
                if self.state == State::Closed {
                    self.state = State::Open;
                }
            }
            2 => match self.state {
                State::Tripped => return Err("close refused: the breaker is tripped, reset it first".into()),
                _ => self.state = State::Closed,
            },
            3 => {
                if self.state == State::Tripped {
                    self.state = State::Open;
                    self.cause = 0.0;
                }
            }
            other => return Err(format!("unknown command {other}")),
        }
        self.last_command = value.round();
        Ok(())
    }

    fn event(&mut self, event: &Event, _rng: &mut SimRng) -> Result<(), Refusal> {
        match event {
            Event::BreakerTrip { cause } => {
                let code = match cause.as_deref() {
                    None | Some("test") => 4.0,
                    Some("overload") => 1.0,
                    Some("short_circuit") => 2.0,
                    Some("earth_fault") => 3.0,
                    Some(other) => {
                        return Err(format!(
                            "unknown trip cause `{other}` (overload, short_circuit, earth_fault, test)"
                        ))
                    }
                };
                if self.state == State::Closed {
                    self.trip(code);
                }
            }
            Event::Overload { current_a, duration } if *current_a >= 0.0 => {
                self.forced = Some((*current_a, duration.as_secs_f64()));
            }
            Event::LoadFactor { factor } if *factor >= 0.0 => {
                self.p.base_kw *= factor;
                self.p.peak_kw *= factor;
            }
            _ => return Err(not_for_this_device(event)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn overload_trips_on_the_thermal_curve_and_needs_a_reset() {
        let mut b = Breaker::new(
            serde_json::from_value(serde_json::json!({"rated_current_a": 63})).unwrap_or_else(|e| panic!("{e}")),
            &Links::default(),
        );
        let env = Env::with_devices(1);
        let mut rng = SimRng::for_device(2, 0);
        b.event(
            &Event::Overload {
                current_a: 126.0,
                duration: Duration::from_secs(600),
            },
            &mut rng,
        )
        .unwrap_or_default();
        let mut t: f64 = 0.0;
        while b.state() == State::Closed && t < 600.0 {
            b.step(0.1, &env, &mut rng);
            t += 0.1;
        }
        assert!((t - 60.0).abs() < 0.5, "2 In trips after ~60 s, took {t}");
        assert_eq!(b.cause, 1.0);
        assert!(b.write("command", 2.0).is_err(), "close refused while tripped");
        assert_eq!(b.write("command", 3.0), Ok(()));
        assert_eq!(b.write("command", 2.0), Ok(()));
        assert_eq!(b.state(), State::Closed);
    }
}
