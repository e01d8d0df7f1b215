//! Automatic tank gauge: per tank, geometry (cylinder or strapping table), level <-> volume,
//! temperature-compensated volume, ullage, water, sales while the station is open,
//! deliveries, leaks, water ingress, a stuck probe, static leak tests; site sums per product.

use super::tank_physics::{vcf, Geometry};
use super::{not_for_this_device, not_writable, DeviceModel, Emit, Env, Refusal};
use crate::events::Event;
use crate::rng::SimRng;
use busbar_core::units::Unit;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TankParams {
    /// super_95, super_e10, super_plus, diesel, biodiesel, lpg.
    pub product: String,
    #[serde(default)]
    pub diameter_mm: Option<f64>,
    #[serde(default)]
    pub length_mm: Option<f64>,
    /// Strapping table `[[level_mm, volume_l], ...]` instead of a cylinder.
    #[serde(default)]
    pub strapping: Option<Vec<[f64; 2]>>,
    /// Product volume at the start (L, at the product's temperature).
    pub volume_l: f64,
    #[serde(default = "d_temp")]
    pub temperature_c: f64,
    #[serde(default)]
    pub water_mm: f64,
    /// Density at 15 °C (kg/m3); by default the product's typical one.
    #[serde(default)]
    pub density: Option<f64>,
    /// Average sales while open (L/h).
    #[serde(default = "d_sales")]
    pub sales_l_per_h: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TankGaugeParams {
    pub tanks: Vec<TankParams>,
    /// Temperature the product drifts towards (underground).
    #[serde(default = "d_ground")]
    pub ground_temperature_c: f64,
    /// Usable capacity in percent of the nominal volume.
    #[serde(default = "d_capacity")]
    pub capacity_pct: f64,
    /// Product alarms in percent of capacity: very low, low, high, very high.
    #[serde(default = "d_alarms")]
    pub product_alarms_pct: [f64; 4],
    /// Water alarms (mm): high, very high.
    #[serde(default = "d_water_alarms")]
    pub water_alarms_mm: [f64; 2],
    /// A static leak test fails above this loss rate (L/h).
    #[serde(default = "d_leak_threshold")]
    pub leak_threshold_l_per_h: f64,
}

fn d_temp() -> f64 {
    12.0
}
fn d_sales() -> f64 {
    300.0
}
fn d_ground() -> f64 {
    11.0
}
fn d_capacity() -> f64 {
    95.0
}
fn d_alarms() -> [f64; 4] {
    [5.0, 15.0, 90.0, 97.0]
}
fn d_water_alarms() -> [f64; 2] {
    [30.0, 60.0]
}
fn d_leak_threshold() -> f64 {
    0.2
}

/// Product code (the map's enum) and typical density at 15 °C.
fn product_info(name: &str) -> Option<(u16, f64)> {
    Some(match name {
        "super_95" => (1, 745.0),
        "super_e10" => (2, 750.0),
        "super_plus" => (3, 755.0),
        "diesel" => (4, 835.0),
        "biodiesel" => (5, 880.0),
        "lpg" => (6, 540.0),
        _ => return None,
    })
}

#[derive(Debug, Clone)]
struct Delivery {
    left_l: f64,
    rate_l_per_s: f64,
    temperature: f64,
    delivered_l: f64,
    delivered_tc_l: f64,
}

#[derive(Debug, Clone)]
struct LeakTest {
    start_tc: f64,
    elapsed_s: f64,
    duration_s: f64,
    disturbed: bool,
}

#[derive(Debug, Clone)]
struct Tank {
    product: u16,
    lpg: bool,
    geometry: Geometry,
    density: f64,
    sales_l_per_h: f64,
    volume: f64,
    temperature: f64,
    water_mm: f64,
    leak_l_per_h: f64,
    water_mm_per_h: f64,
    fuelling_left_l: f64,
    delivery: Option<Delivery>,
    last_delivery: (f64, f64),
    leak_test: Option<LeakTest>,
    leak_result: (u8, f64),
    frozen: Option<Vec<(String, f64, Unit)>>,
}

impl Tank {
    fn water_volume(&self) -> f64 {
        self.geometry.volume_at(self.water_mm)
    }
    fn level(&self) -> f64 {
        self.geometry.level_for(self.volume + self.water_volume())
    }
    fn tc_volume(&self) -> f64 {
        self.volume * vcf(self.density, self.temperature, self.lpg)
    }
}

pub struct TankGauge {
    p: TankGaugeParams,
    tanks: Vec<Tank>,
    slots: u16,
}

impl TankGauge {
    pub fn new(p: TankGaugeParams, slots: u16) -> Result<TankGauge, String> {
        if p.tanks.len() > usize::from(slots) {
            return Err(format!("{} tanks configured, the gauge has {slots}", p.tanks.len()));
        }
        let mut tanks = Vec::new();
        for (i, t) in p.tanks.iter().enumerate() {
            let n = i + 1;
            let (code, typical) = product_info(&t.product).ok_or_else(|| {
                format!(
                    "tank {n}: unknown product `{}` (super_95, super_e10, super_plus, diesel, biodiesel, lpg)",
                    t.product
                )
            })?;
            let geometry = match (&t.strapping, t.diameter_mm, t.length_mm) {
                (Some(s), None, None) => Geometry::Strapping { strapping: s.clone() },
                (None, Some(d), Some(l)) => Geometry::Cylinder {
                    diameter_mm: d,
                    length_mm: l,
                },
                _ => {
                    return Err(format!(
                        "tank {n}: give either diameter_mm and length_mm, or a strapping table"
                    ))
                }
            };
            geometry.validate().map_err(|e| format!("tank {n}: {e}"))?;
            let capacity = geometry.nominal_l() * p.capacity_pct / 100.0;
            if !(0.0..=capacity).contains(&t.volume_l) {
                return Err(format!(
                    "tank {n}: volume_l {} is outside 0..={capacity:.0} (capacity)",
                    t.volume_l
                ));
            }
            tanks.push(Tank {
                product: code,
                lpg: code == 6,
                geometry,
                density: t.density.unwrap_or(typical),
                sales_l_per_h: t.sales_l_per_h.max(0.0),
                volume: t.volume_l,
                temperature: t.temperature_c,
                water_mm: t.water_mm.max(0.0),
                leak_l_per_h: 0.0,
                water_mm_per_h: 0.0,
                fuelling_left_l: 0.0,
                delivery: None,
                last_delivery: (0.0, 0.0),
                leak_test: None,
                leak_result: (0, 0.0),
                frozen: None,
            });
        }
        Ok(TankGauge { p, tanks, slots })
    }

    fn tank(&mut self, n: u16) -> Result<&mut Tank, Refusal> {
        let count = self.tanks.len();
        self.tanks
            .get_mut(usize::from(n).wrapping_sub(1))
            .ok_or_else(|| format!("tank {n} does not exist (1..={count})"))
    }

    fn capacity(&self, t: &Tank) -> f64 {
        t.geometry.nominal_l() * self.p.capacity_pct / 100.0
    }

    fn emit_tank(&self, t: &Tank, out: &mut dyn FnMut(&str, f64, Unit)) {
        let cap = self.capacity(t);
        let pct = 100.0 * t.volume / cap.max(1.0);
        let [vl, lo, hi, vhi] = self.p.product_alarms_pct;
        let product_alarm = if pct < vl {
            1.0
        } else if pct < lo {
            2.0
        } else if pct > vhi {
            4.0
        } else if pct > hi {
            3.0
        } else {
            0.0
        };
        let water_alarm = if t.water_mm > self.p.water_alarms_mm[1] {
            2.0
        } else if t.water_mm > self.p.water_alarms_mm[0] {
            1.0
        } else {
            0.0
        };
        out("product", f64::from(t.product), Unit::None);
        out("status", 0.0, Unit::None);
        out("level", t.level(), Unit::Millimetre);
        out("volume", t.volume, Unit::Litre);
        out("tc_volume", t.tc_volume(), Unit::Litre);
        out("ullage", (cap - t.volume).max(0.0), Unit::Litre);
        out("temperature", t.temperature, Unit::DegreeCelsius);
        out("water_level", t.water_mm, Unit::Millimetre);
        out("water_volume", t.water_volume(), Unit::Litre);
        out("density", t.density, Unit::KilogramPerCubicMetre);
        out("product_alarm", product_alarm, Unit::None);
        out("water_alarm", water_alarm, Unit::None);
        out(
            "delivery_in_progress",
            f64::from(u8::from(t.delivery.is_some())),
            Unit::None,
        );
        out("last_delivery_volume", t.last_delivery.0, Unit::Litre);
        out("last_delivery_tc_volume", t.last_delivery.1, Unit::Litre);
        let leak_state = if t.leak_test.is_some() {
            1.0
        } else {
            f64::from(t.leak_result.0)
        };
        out("leak_test", leak_state, Unit::None);
        out("leak_rate", t.leak_result.1, Unit::LitrePerHour);
    }

    fn tank_truth(&self, t: &Tank) -> Vec<(String, f64, Unit)> {
        let mut v = Vec::new();
        self.emit_tank(t, &mut |name, value, unit| v.push((name.to_string(), value, unit)));
        v
    }
}

impl DeviceModel for TankGauge {
    fn step(&mut self, dt: f64, env: &Env, rng: &mut SimRng) {
        let ground = self.p.ground_temperature_c;
        for t in &mut self.tanks {
            // Sales: fuellings arrive at random while open, 20-60 L each at 35 L/min.
            if env.station_open {
                if t.fuelling_left_l <= 0.0 && rng.chance(t.sales_l_per_h / 40.0 / 3600.0 * dt) {
                    t.fuelling_left_l = rng.range(20.0, 60.0);
                }
                if t.fuelling_left_l > 0.0 {
                    let q = (35.0 / 60.0 * dt).min(t.fuelling_left_l).min(t.volume);
                    t.volume -= q;
                    t.fuelling_left_l -= q;
                    if let Some(lt) = &mut t.leak_test {
                        lt.disturbed = true;
                    }
                }
            } else {
                t.fuelling_left_l = 0.0;
            }
            // Deliveries mix the delivered product's temperature in.
            if let Some(d) = &mut t.delivery {
                let q = (d.rate_l_per_s * dt).min(d.left_l);
                let total = t.volume + q;
                if total > 0.0 {
                    t.temperature = (t.volume * t.temperature + q * d.temperature) / total;
                }
                t.volume = total;
                d.left_l -= q;
                d.delivered_l += q;
                d.delivered_tc_l += q * vcf(t.density, d.temperature, t.lpg);
                if d.left_l <= 1e-9 {
                    t.last_delivery = (d.delivered_l, d.delivered_tc_l);
                    t.delivery = None;
                }
            }
            // Leak, water ingress, slow drift towards ground temperature (time constant 3 days).
            t.volume = (t.volume - t.leak_l_per_h * dt / 3600.0).max(0.0);
            t.water_mm = (t.water_mm + t.water_mm_per_h * dt / 3600.0).min(t.geometry.height_mm());
            t.temperature += (ground - t.temperature) * (1.0 - (-dt / (3.0 * 86400.0)).exp());
            if let Some(lt) = &mut t.leak_test {
                lt.elapsed_s += dt;
                if lt.elapsed_s >= lt.duration_s {
                    let hours = lt.elapsed_s / 3600.0;
                    let rate = (lt.start_tc - t.volume * vcf(t.density, t.temperature, t.lpg)) / hours;
                    t.leak_result = if lt.disturbed {
                        (0, 0.0)
                    } else if rate.abs() > self.p.leak_threshold_l_per_h {
                        (3, rate)
                    } else {
                        (2, rate)
                    };
                    t.leak_test = None;
                }
            }
        }
    }

    fn emit(&self, out: &mut Emit<'_>) {
        let mut sums = [(0.0f64, 0.0f64); 6];
        for (i, t) in self.tanks.iter().enumerate() {
            let n = i + 1;
            let mut prefixed = |name: &str, v: f64, u: Unit| out(&format!("tank{n}.{name}"), v, u);
            match &t.frozen {
                // The gauge holds the probe's last values and says the probe is not responding.
                Some(values) => values.iter().for_each(|(name, v, u)| {
                    let v = if name == "status" { 1.0 } else { *v };
                    prefixed(name, v, *u)
                }),
                None => self.emit_tank(t, &mut prefixed),
            }
            if let Some(s) = sums.get_mut(usize::from(t.product).wrapping_sub(1)) {
                s.0 += t.volume;
                s.1 += (self.capacity(t) - t.volume).max(0.0);
            }
        }
        for n in self.tanks.len() + 1..=usize::from(self.slots) {
            out(&format!("tank{n}.status"), 2.0, Unit::None);
        }
        for (i, (vol, ull)) in sums.iter().enumerate() {
            out(&format!("product{}.total_volume", i + 1), *vol, Unit::Litre);
            out(&format!("product{}.total_ullage", i + 1), *ull, Unit::Litre);
        }
    }

    fn write(&mut self, point: &str, _value: f64) -> Result<(), Refusal> {
        Err(not_writable(point))
    }

    fn event(&mut self, event: &Event, _rng: &mut SimRng) -> Result<(), Refusal> {
        match event {
            Event::Delivery {
                tank,
                volume_l,
                duration,
                temperature_c,
            } => {
                let ground = self.p.ground_temperature_c;
                let cap = {
                    let t = self.tank(*tank)?;
                    t.geometry.nominal_l()
                } * self.p.capacity_pct
                    / 100.0;
                let t = self.tank(*tank)?;
                if !volume_l.is_finite() || *volume_l <= 0.0 || t.volume + volume_l > cap {
                    return Err(format!(
                        "delivery of {volume_l} L does not fit tank {tank} (ullage {:.0} L)",
                        cap - t.volume
                    ));
                }
                let secs = duration.as_secs_f64().max(1.0);
                t.delivery = Some(Delivery {
                    left_l: *volume_l,
                    rate_l_per_s: volume_l / secs,
                    temperature: temperature_c.unwrap_or(ground + 4.0),
                    delivered_l: 0.0,
                    delivered_tc_l: 0.0,
                });
            }
            Event::Leak { tank, rate_l_per_h } if *rate_l_per_h >= 0.0 => {
                self.tank(*tank)?.leak_l_per_h = *rate_l_per_h
            }
            Event::LeakStop { tank } => self.tank(*tank)?.leak_l_per_h = 0.0,
            Event::WaterIngress { tank, rate_mm_per_h } if *rate_mm_per_h >= 0.0 => {
                self.tank(*tank)?.water_mm_per_h = *rate_mm_per_h
            }
            Event::ProbeStuck { tank } => {
                let idx = usize::from(*tank).wrapping_sub(1);
                let truth = self.tanks.get(idx).map(|t| self.tank_truth(t));
                self.tank(*tank)?.frozen = truth;
            }
            Event::ProbeRepaired { tank } => self.tank(*tank)?.frozen = None,
            Event::LeakTest { tank, duration } => {
                let t = self.tank(*tank)?;
                t.leak_test = Some(LeakTest {
                    start_tc: t.tc_volume(),
                    elapsed_s: 0.0,
                    duration_s: duration.as_secs_f64().max(60.0),
                    disturbed: false,
                });
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

    fn gauge() -> TankGauge {
        let p: TankGaugeParams = serde_json::from_value(serde_json::json!({
            "tanks": [{ "product": "diesel", "diameter_mm": 2500, "length_mm": 6000, "volume_l": 10000, "temperature_c": 11 }]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        TankGauge::new(p, 16).unwrap_or_else(|e| panic!("{e}"))
    }

    fn run(g: &mut TankGauge, env: &Env, secs: f64) {
        let mut rng = SimRng::for_device(9, 0);
        for _ in 0..(secs / 0.5) as usize {
            g.step(0.5, env, &mut rng);
        }
    }

    #[test]
    fn delivery_raises_volume_and_is_recorded() {
        let mut g = gauge();
        let env = Env {
            station_open: false,
            ..Env::with_devices(1)
        };
        let mut rng = SimRng::for_device(9, 0);
        let ev = Event::Delivery {
            tank: 1,
            volume_l: 12000.0,
            duration: Duration::from_secs(1800),
            temperature_c: Some(15.0),
        };
        assert_eq!(g.event(&ev, &mut rng), Ok(()));
        run(&mut g, &env, 900.0);
        assert!(
            (g.tanks[0].volume - 16000.0).abs() < 1.0,
            "half way: {}",
            g.tanks[0].volume
        );
        run(&mut g, &env, 960.0);
        assert!((g.tanks[0].volume - 22000.0).abs() < 1.0);
        assert!((g.tanks[0].last_delivery.0 - 12000.0).abs() < 1e-6);
        assert!(g.tanks[0].temperature > 11.0 && g.tanks[0].temperature < 15.0);
        let too_much = Event::Delivery {
            tank: 1,
            volume_l: 20000.0,
            duration: Duration::from_secs(60),
            temperature_c: None,
        };
        assert!(g.event(&too_much, &mut rng).is_err(), "does not fit");
        assert!(
            g.event(
                &Event::Leak {
                    tank: 2,
                    rate_l_per_h: 1.0
                },
                &mut rng
            )
            .is_err(),
            "no tank 2"
        );
    }

    #[test]
    fn leak_test_fails_on_a_leak_and_passes_without() {
        let env = Env {
            station_open: false,
            ..Env::with_devices(1)
        };
        let mut rng = SimRng::for_device(9, 0);
        let mut g = gauge();
        g.event(
            &Event::LeakTest {
                tank: 1,
                duration: Duration::from_secs(7200),
            },
            &mut rng,
        )
        .unwrap_or_default();
        run(&mut g, &env, 7300.0);
        assert_eq!(g.tanks[0].leak_result.0, 2, "passed: {:?}", g.tanks[0].leak_result);
        g.event(
            &Event::Leak {
                tank: 1,
                rate_l_per_h: 0.5,
            },
            &mut rng,
        )
        .unwrap_or_default();
        g.event(
            &Event::LeakTest {
                tank: 1,
                duration: Duration::from_secs(7200),
            },
            &mut rng,
        )
        .unwrap_or_default();
        run(&mut g, &env, 7300.0);
        let (state, rate) = g.tanks[0].leak_result;
        assert_eq!(state, 3, "failed");
        assert!((rate - 0.5).abs() < 0.05, "measured loss {rate} L/h");
    }

    #[test]
    fn sales_only_while_open() {
        let mut g = gauge();
        let closed = Env {
            station_open: false,
            ..Env::with_devices(1)
        };
        run(&mut g, &closed, 3600.0);
        assert!((g.tanks[0].volume - 10000.0).abs() < 1e-9);
        let open = Env {
            station_open: true,
            ..Env::with_devices(1)
        };
        run(&mut g, &open, 3600.0);
        let sold = 10000.0 - g.tanks[0].volume;
        assert!(
            sold > 100.0 && sold < 700.0,
            "sold {sold} L in an hour at 300 L/h average"
        );
    }
}
