//! Device behaviour in simulated time, one module per family. A model owns the physical
//! state of one device; it is stepped with a fixed time step, reads what other devices
//! expose through [`Env`] (supply from a transfer switch or breaker, charging load on a meter,
//! an IMD's network for its fault locator), and emits its truth in engineering units.

pub mod ats;
pub mod breaker;
pub mod charger;
pub mod insulation;
pub mod meter;
pub mod pulse;
pub mod separator;
pub mod tank;
pub mod tank_physics;
pub mod vapour;

use crate::events::Event;
use crate::rng::SimRng;
use busbar_core::profile::Family;
use busbar_core::units::Unit;

/// A device's emitted truth: `(point id, value, unit)`. The publisher converts to the unit
/// the profile declares.
pub type Emit<'a> = dyn FnMut(&str, f64, Unit) + 'a;

/// Power available downstream of a device (transfer switch, breaker): phase-neutral volts
/// (0 = dead) and hertz.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Supply {
    pub voltage: f64,
    pub frequency: f64,
}

impl Supply {
    pub const DEAD: Supply = Supply {
        voltage: 0.0,
        frequency: 0.0,
    };
    pub fn is_live(&self) -> bool {
        self.voltage > 1.0
    }
}

/// One circuit of an IT network watched by an IMD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircuitState {
    pub rf_kohm: f64,
    pub ce_uf: f64,
}

/// What an IMD publishes for its fault locators.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImdNetwork {
    pub circuits: Vec<CircuitState>,
    pub voltage: f64,
    pub frequency: f64,
    /// The IMD injects its locating current (it is in alarm).
    pub locating: bool,
    pub locating_current_ma: f64,
}

/// What devices see of each other, indexed by device index. Written after every step by
/// [`DeviceModel::contribute`], read during the next step.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// Simulated seconds since the scenario started.
    pub sim_time_s: f64,
    /// Hour of the simulated day, 0..24.
    pub time_of_day_h: f64,
    /// The station is open (sales, fuellings).
    pub station_open: bool,
    /// Supply exposed downstream by a transfer switch or breaker.
    pub supplies: Vec<Option<Supply>>,
    /// Current per phase (A) that chargers draw through a meter.
    pub extra_current: Vec<[f64; 3]>,
    /// IMD networks, for fault locators.
    pub imd: Vec<Option<ImdNetwork>>,
}

impl Env {
    pub fn with_devices(n: usize) -> Env {
        Env {
            supplies: vec![None; n],
            extra_current: vec![[0.0; 3]; n],
            imd: vec![None; n],
            ..Env::default()
        }
    }

    /// The supply a device fed from `upstream` sees: mains at nominal when it has no upstream.
    pub fn supply_from(&self, upstream: Option<usize>, nominal: Supply) -> Supply {
        match upstream {
            Some(i) => self.supplies.get(i).copied().flatten().unwrap_or(Supply::DEAD),
            None => nominal,
        }
    }
}

/// Why a write or an event was refused by the device.
pub type Refusal = String;

/// A simulated device.
pub trait DeviceModel: Send {
    /// Advance the physics by `dt` simulated seconds.
    fn step(&mut self, dt: f64, env: &Env, rng: &mut SimRng);
    /// Expose what other devices need (after every step).
    fn contribute(&self, _index: usize, _env: &mut Env) {}
    /// The device's truth in engineering units.
    fn emit(&self, out: &mut Emit<'_>);
    /// A client wrote `value` (engineering units) to a writable point.
    fn write(&mut self, point: &str, value: f64) -> Result<(), Refusal>;
    /// Apply a physical event.
    fn event(&mut self, event: &Event, rng: &mut SimRng) -> Result<(), Refusal>;
    /// A vehicle may be plugged in here (chargers only).
    fn accepts_vehicle(&self) -> bool {
        false
    }
}

/// Cross-device references a model was built with, resolved to device indexes.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// This device's own index.
    pub own: usize,
    /// Upstream device (transfer switch or breaker) that supplies this one.
    pub supply: Option<usize>,
    /// Meter this device's current flows through (chargers).
    pub meter: Option<usize>,
    /// IMD whose network a fault locator watches.
    pub imd: Option<usize>,
}

/// Names of other devices a model's parameters refer to, before resolution.
#[derive(Debug, Clone, Default)]
pub struct LinkNames {
    pub supply: Option<String>,
    pub meter: Option<String>,
    pub imd: Option<String>,
}

/// Build the model for `family` from its parameters.
pub fn build(
    family: Family,
    params: &serde_json::Value,
    links: &Links,
    block_count: u16,
) -> Result<(Box<dyn DeviceModel>, LinkNames), String> {
    fn p<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Result<T, String> {
        let v = if v.is_null() {
            serde_json::Value::Object(Default::default())
        } else {
            v.clone()
        };
        serde_json::from_value(v).map_err(|e| e.to_string())
    }
    Ok(match family {
        Family::Meter => {
            let params: meter::MeterParams = p(params)?;
            let names = LinkNames {
                supply: params.supply.clone(),
                ..Default::default()
            };
            (Box::new(meter::Meter::new(params, links)), names)
        }
        Family::TransferSwitch => (Box::new(ats::Ats::new(p(params)?)), LinkNames::default()),
        Family::InsulationMonitor => (Box::new(insulation::Imd::new(p(params)?)), LinkNames::default()),
        Family::FaultLocator => {
            let params: insulation::LocatorParams = p(params)?;
            let names = LinkNames {
                imd: Some(params.imd.clone()),
                ..Default::default()
            };
            (Box::new(insulation::Locator::new(params, links.imd)), names)
        }
        Family::TankGauge => (
            Box::new(tank::TankGauge::new(p(params)?, block_count)?),
            LinkNames::default(),
        ),
        Family::OilSeparator => (Box::new(separator::Separator::new(p(params)?)), LinkNames::default()),
        Family::VapourRecovery => (
            Box::new(vapour::Vaporix::new(p(params)?, block_count)),
            LinkNames::default(),
        ),
        Family::Charger => {
            let params: charger::ChargerParams = p(params)?;
            let names = LinkNames {
                meter: params.meter.clone(),
                supply: params.supply.clone(),
                ..Default::default()
            };
            (
                Box::new(charger::Charger::new(params, links.supply, links.meter)),
                names,
            )
        }
        Family::Breaker => {
            let params: breaker::BreakerParams = p(params)?;
            let names = LinkNames {
                supply: params.supply.clone(),
                ..Default::default()
            };
            (Box::new(breaker::Breaker::new(params, links)), names)
        }
        Family::PulseCounter => (
            Box::new(pulse::PulseConcentrator::new(p(params)?, block_count)?),
            LinkNames::default(),
        ),
        Family::LoadManager => return Err(
            "a load manager is part of the bridge (`load_management:` in its config), not a field device to simulate"
                .into(),
        ),
    })
}

/// A daily load curve, 0..1 by hour of day: night base, morning ramp, midday peak, evening
/// decline (piecewise linear).
pub fn daily_curve(hour: f64) -> f64 {
    const PTS: [(f64, f64); 9] = [
        (0.0, 0.0),
        (5.0, 0.0),
        (7.0, 0.45),
        (9.0, 0.75),
        (12.0, 1.0),
        (14.0, 0.95),
        (18.0, 0.8),
        (21.0, 0.35),
        (24.0, 0.0),
    ];
    let h = hour.rem_euclid(24.0);
    for w in PTS.windows(2) {
        let ((h0, v0), (h1, v1)) = (w[0], w[1]);
        if h <= h1 {
            return v0 + (v1 - v0) * (h - h0) / (h1 - h0);
        }
    }
    0.0
}

/// Refusal for an event a family does not understand.
pub fn not_for_this_device(event: &Event) -> Refusal {
    format!("event `{}` does not apply to this device", event.name())
}

/// Refusal for a write to a point the model does not take.
pub fn not_writable(point: &str) -> Refusal {
    format!("point `{point}` is not writable on this device")
}

/// Parse `tank3.volume`-style block point ids: `(block index, inner name)`.
pub fn block_point<'a>(id: &'a str, block: &str) -> Option<(u16, &'a str)> {
    let rest = id.strip_prefix(block)?;
    let (n, name) = rest.split_once('.')?;
    Some((n.parse().ok()?, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_curve_shape() {
        assert_eq!(daily_curve(3.0), 0.0);
        assert!((daily_curve(12.0) - 1.0).abs() < 1e-9);
        assert!(daily_curve(8.0) > 0.5 && daily_curve(8.0) < 0.75);
        assert_eq!(daily_curve(24.0), daily_curve(0.0));
    }

    #[test]
    fn block_point_ids() {
        assert_eq!(block_point("tank3.volume", "tank"), Some((3, "volume")));
        assert_eq!(block_point("tank.volume", "tank"), None);
        assert_eq!(block_point("v1", "tank"), None);
    }
}
