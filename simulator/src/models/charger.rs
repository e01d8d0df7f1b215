//! EV charger side (IEC 61851 Mode 3): sessions (arrival, energy wanted, departure), states,
//! current that follows the setpoint (min of rating and the load manager's limit) and the
//! vehicle's own limit, session Ah and kWh; its current shows on the meter it is wired
//! through.

use super::{not_for_this_device, not_writable, DeviceModel, Emit, Env, Refusal, Supply};
use crate::events::Event;
use crate::rng::SimRng;
use busbar_core::units::Unit;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargerParams {
    #[serde(default = "d_rated")]
    pub rated_current_a: f64,
    /// 1 or 3.
    #[serde(default = "d_phases")]
    pub phases: u8,
    /// Meter the charger's current flows through.
    #[serde(default)]
    pub meter: Option<String>,
    /// Transfer switch or breaker feeding the charger.
    #[serde(default)]
    pub supply: Option<String>,
    /// Start charging as soon as a vehicle is plugged in (else wait for a start command).
    #[serde(default = "d_true")]
    pub autostart: bool,
    #[serde(default)]
    pub priority: bool,
    #[serde(default)]
    pub initial_energy_kwh: f64,
}

fn d_rated() -> f64 {
    32.0
}
fn d_phases() -> u8 {
    3
}
fn d_true() -> bool {
    true
}

/// IEC 61851: the lowest current a vehicle may be asked to draw.
pub const MIN_CHARGING_A: f64 = 6.0;

/// Control pilot duty cycle (%) advertising `amps` (IEC 61851-1 table A.8).
pub fn pwm_duty(amps: f64) -> f64 {
    if amps < MIN_CHARGING_A {
        100.0
    } else if amps <= 51.0 {
        amps / 0.6
    } else {
        amps / 2.5 + 64.0
    }
}

#[derive(Debug, Clone)]
struct Vehicle {
    wanted_kwh: f64,
    max_current_a: f64,
}

pub struct Charger {
    p: ChargerParams,
    supply: Option<usize>,
    meter: Option<usize>,
    vehicle: Option<Vehicle>,
    paused: bool,
    limit: f64,
    ev_plug: bool,
    domestic_plug: bool,
    current: f64,
    voltage: f64,
    session_kwh: f64,
    session_ah: f64,
    total_kwh: f64,
    last_command: f64,
    /// (station error, charge error) while faulted.
    fault: Option<(u8, u8)>,
}

impl Charger {
    pub fn new(p: ChargerParams, supply: Option<usize>, meter: Option<usize>) -> Charger {
        Charger {
            limit: p.rated_current_a,
            total_kwh: p.initial_energy_kwh.max(0.0),
            paused: false,
            ev_plug: true,
            domestic_plug: true,
            vehicle: None,
            current: 0.0,
            voltage: 0.0,
            session_kwh: 0.0,
            session_ah: 0.0,
            last_command: 0.0,
            fault: None,
            supply,
            meter,
            p,
        }
    }

    fn setpoint(&self) -> f64 {
        self.p.rated_current_a.min(self.limit)
    }

    fn full(&self) -> bool {
        self.vehicle.as_ref().is_some_and(|v| self.session_kwh >= v.wanted_kwh)
    }

    fn state(&self) -> f64 {
        if self.fault.is_some() {
            4.0
        } else if !self.ev_plug {
            5.0
        } else if self.vehicle.is_none() {
            0.0
        } else if self.full() {
            3.0
        } else if self.current > 0.5 {
            1.0
        } else {
            2.0
        }
    }

    pub fn plug_in(&mut self, wanted_kwh: f64, max_current_a: f64) {
        self.vehicle = Some(Vehicle {
            wanted_kwh,
            max_current_a,
        });
        self.session_kwh = 0.0;
        self.session_ah = 0.0;
        self.paused = !self.p.autostart;
    }
}

impl DeviceModel for Charger {
    fn step(&mut self, dt: f64, env: &Env, _rng: &mut SimRng) {
        let supply = env.supply_from(
            self.supply,
            Supply {
                voltage: 230.0,
                frequency: 50.0,
            },
        );
        self.voltage = supply.voltage;
        let target = match &self.vehicle {
            Some(v)
                if self.ev_plug
                    && self.fault.is_none()
                    && !self.paused
                    && supply.is_live()
                    && !self.full()
                    && self.setpoint() >= MIN_CHARGING_A =>
            {
                self.setpoint().min(v.max_current_a)
            }
            _ => 0.0,
        };
        // The vehicle follows a new setpoint within a few seconds (5 A/s).
        let step = 5.0 * dt;
        self.current += (target - self.current).clamp(-step, step);
        if !supply.is_live() {
            self.current = 0.0;
        }
        let p_w = f64::from(self.p.phases) * self.voltage * self.current * 0.99;
        let kwh = p_w * dt / 3.6e6;
        self.session_kwh += kwh;
        self.total_kwh += kwh;
        self.session_ah += self.current * dt / 3600.0;
    }

    fn contribute(&self, _index: usize, env: &mut Env) {
        // The current flows through the meter and through the breaker feeding the charger.
        for target in [self.meter, self.supply].into_iter().flatten() {
            if let Some(slot) = env.extra_current.get_mut(target) {
                slot[0] += self.current;
                if self.p.phases >= 3 {
                    slot[1] += self.current;
                    slot[2] += self.current;
                }
            }
        }
    }

    fn emit(&self, out: &mut Emit<'_>) {
        let three = self.p.phases >= 3;
        out("state", self.state(), Unit::None);
        out("ev_plug_enabled", f64::from(u8::from(self.ev_plug)), Unit::None);
        out(
            "domestic_plug_enabled",
            f64::from(u8::from(self.domestic_plug)),
            Unit::None,
        );
        out("rated_current", self.p.rated_current_a, Unit::Ampere);
        out("current_setpoint", self.setpoint(), Unit::Ampere);
        out("current_limit", self.limit, Unit::Ampere);
        out("pwm_duty", pwm_duty(self.setpoint()), Unit::Percent);
        out("priority", f64::from(u8::from(self.p.priority)), Unit::None);
        out("i1", self.current, Unit::Ampere);
        out("i2", if three { self.current } else { 0.0 }, Unit::Ampere);
        out("i3", if three { self.current } else { 0.0 }, Unit::Ampere);
        out(
            "power",
            f64::from(self.p.phases) * self.voltage * self.current * 0.99,
            Unit::Watt,
        );
        out("session_energy", self.session_kwh, Unit::KilowattHour);
        out("session_charge", self.session_ah, Unit::AmpereHour);
        out("total_energy", self.total_kwh, Unit::KilowattHour);
        let (station_error, charge_error) = self.fault.unwrap_or((0, 0));
        out("station_error", f64::from(station_error), Unit::None);
        out("charge_error", f64::from(charge_error), Unit::None);
        out("command", self.last_command, Unit::None);
    }

    fn write(&mut self, point: &str, value: f64) -> Result<(), Refusal> {
        match point {
            "current_limit" => {
                if !(0.0..=self.p.rated_current_a).contains(&value) {
                    return Err(format!(
                        "current limit {value} A is outside 0..={} A",
                        self.p.rated_current_a
                    ));
                }
                self.limit = value;
            }
            "priority" => self.p.priority = value.round() != 0.0,
            "ev_plug_enabled" => self.ev_plug = value.round() != 0.0,
            "domestic_plug_enabled" => self.domestic_plug = value.round() != 0.0,
            "command" => {
                match value.round() as i64 {
                    0 => {}
                    1 if self.vehicle.is_some() => self.paused = false,
                    1 => return Err("start refused: no vehicle is connected".into()),
                    2 => self.paused = true,
                    other => return Err(format!("unknown command {other}")),
                }
                self.last_command = value.round();
            }
            other => return Err(not_writable(other)),
        }
        Ok(())
    }

    fn event(&mut self, event: &Event, rng: &mut SimRng) -> Result<(), Refusal> {
        match event {
            Event::VehicleArrives {
                count,
                energy_kwh,
                max_current_a,
            } => {
                if *count != 1 {
                    return Err("one vehicle per charger side; send site-wide arrivals without a device".into());
                }
                if self.vehicle.is_some() {
                    return Err("a vehicle is already connected".into());
                }
                let wanted = energy_kwh.unwrap_or_else(|| rng.range(8.0, 40.0));
                let max = max_current_a.unwrap_or(if rng.chance(0.5) { 32.0 } else { 16.0 });
                self.plug_in(wanted, max);
            }
            Event::VehicleDeparts => {
                if self.vehicle.take().is_none() {
                    return Err("no vehicle is connected".into());
                }
                self.current = 0.0;
            }
            &Event::ChargerFault {
                station_error,
                charge_error,
            } => {
                if station_error > 4 || charge_error > 4 || (station_error, charge_error) == (0, 0) {
                    return Err("give a station_error or a charge_error within 1..=4".into());
                }
                self.fault = Some((station_error, charge_error));
                self.current = 0.0;
            }
            Event::ChargerReset => self.fault = None,
            _ => return Err(not_for_this_device(event)),
        }
        Ok(())
    }

    fn accepts_vehicle(&self) -> bool {
        self.vehicle.is_none() && self.ev_plug
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charger() -> Charger {
        Charger::new(
            serde_json::from_value(serde_json::json!({})).unwrap_or_else(|e| panic!("{e}")),
            None,
            Some(1),
        )
    }

    #[test]
    fn a_fault_stops_charging_and_shows_until_reset() {
        let mut c = charger();
        let mut rng = SimRng::for_device(1, 0);
        c.plug_in(20.0, 32.0);
        let fault = Event::ChargerFault {
            station_error: 2,
            charge_error: 0,
        };
        assert_eq!(c.event(&fault, &mut rng), Ok(()));
        assert_eq!(c.state(), 4.0, "fault");
        let env = Env::with_devices(2);
        c.step(1.0, &env, &mut rng);
        assert_eq!(c.current, 0.0);
        let mut seen = Vec::new();
        c.emit(&mut |n: &str, v: f64, _u: Unit| seen.push((n.to_string(), v)));
        assert!(seen.contains(&("station_error".to_string(), 2.0)));
        let bad = Event::ChargerFault {
            station_error: 0,
            charge_error: 0,
        };
        assert!(c.event(&bad, &mut rng).is_err());
        assert_eq!(c.event(&Event::ChargerReset, &mut rng), Ok(()));
        assert_ne!(c.state(), 4.0);
    }

    #[test]
    fn pwm_duty_per_iec_61851() {
        assert!((pwm_duty(6.0) - 10.0).abs() < 1e-9);
        assert!((pwm_duty(32.0) - 53.333).abs() < 1e-3);
        assert!((pwm_duty(80.0) - 96.0).abs() < 1e-9);
    }

    #[test]
    fn session_follows_limit_and_vehicle() {
        let mut c = charger();
        let mut env = Env::with_devices(2);
        let mut rng = SimRng::for_device(1, 0);
        c.event(
            &Event::VehicleArrives {
                count: 1,
                energy_kwh: Some(10.0),
                max_current_a: Some(16.0),
            },
            &mut rng,
        )
        .unwrap_or_default();
        for _ in 0..100 {
            c.step(0.1, &env, &mut rng);
        }
        assert!((c.current - 16.0).abs() < 1e-9, "vehicle limit 16 A: {}", c.current);
        assert_eq!(c.state(), 1.0);
        c.contribute(0, &mut env);
        assert_eq!(env.extra_current[1], [16.0; 3], "the meter sees the charging current");
        assert_eq!(c.write("current_limit", 5.0), Ok(()));
        for _ in 0..100 {
            c.step(0.1, &env, &mut rng);
        }
        assert_eq!(c.current, 0.0, "below 6 A the session pauses");
        assert_eq!(c.state(), 2.0);
        assert!(c.write("current_limit", 40.0).is_err());
        c.write("current_limit", 32.0).unwrap_or_default();
        // 10 kWh at 16 A x 3 x 230 V ~ 11 kW takes ~55 min, then the vehicle is full.
        for _ in 0..40_000 {
            c.step(0.1, &env, &mut rng);
        }
        assert_eq!(c.state(), 3.0, "suspended: vehicle full");
        assert!((c.session_kwh - 10.0).abs() < 0.01);
        assert!(
            (c.session_ah - 10_000.0 / (3.0 * 230.0 * 0.99)).abs() < 0.2,
            "Ah {}",
            c.session_ah
        );
    }
}
