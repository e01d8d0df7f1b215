//! What can happen on the site (events) and to a device's communication (faults). The same
//! types are read from scenario timelines and from the control API.

use busbar_core::duration::serde_text;
use serde::{Deserialize, Serialize};
use std::time::Duration;

fn default_count() -> u32 {
    1
}
fn default_delivery() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_leak_test() -> Duration {
    Duration::from_secs(2 * 3600)
}

/// A physical event. `device` (in the timeline entry or the API path) names the device it
/// acts on; `station_open`, `station_closed` and `vehicle_arrives` without a device act on
/// the whole site.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// The transfer switch's source I (mains) disappears.
    MainsLost,
    /// Source I comes back at nominal voltage.
    MainsRestored,
    /// Source I voltage sags or swells to this phase-neutral value.
    MainsVoltage { voltage_v: f64 },
    /// The genset will not start (FAIL START after 2ST).
    GensetFail,
    /// The genset starts normally again.
    GensetRepaired,
    /// Scale a meter's or breaker's own load (1.0 = the load profile).
    LoadFactor { factor: f64 },
    /// A tanker delivers into a tank.
    Delivery {
        tank: u16,
        volume_l: f64,
        #[serde(default = "default_delivery", with = "serde_text")]
        duration: Duration,
        #[serde(default)]
        temperature_c: Option<f64>,
    },
    /// A steady loss from a tank.
    Leak { tank: u16, rate_l_per_h: f64 },
    /// The leak stops (repaired).
    LeakStop { tank: u16 },
    /// Water enters a tank.
    WaterIngress { tank: u16, rate_mm_per_h: f64 },
    /// The tank's probe freezes its readings.
    ProbeStuck { tank: u16 },
    /// The probe works again.
    ProbeRepaired { tank: u16 },
    /// Start a static leak test (meaningful while the station is closed).
    LeakTest {
        tank: u16,
        #[serde(default = "default_leak_test", with = "serde_text")]
        duration: Duration,
    },
    /// Sales start (overrides the opening hours until the next open/close event).
    StationOpen,
    /// Sales stop.
    StationClosed,
    /// A hard insulation fault (step) on one circuit of an IMD's network.
    InsulationFault { circuit: u16, rf_kohm: f64 },
    /// A slow exponential decay of a circuit's insulation towards `to_kohm`.
    InsulationDecay {
        circuit: u16,
        to_kohm: f64,
        #[serde(with = "serde_text")]
        tau: Duration,
    },
    /// The circuit's insulation is repaired.
    InsulationClear { circuit: u16 },
    /// Vehicles arrive: at the named charger, or queued for the first free ones.
    VehicleArrives {
        #[serde(default = "default_count")]
        count: u32,
        #[serde(default)]
        energy_kwh: Option<f64>,
        #[serde(default)]
        max_current_a: Option<f64>,
    },
    /// The vehicle at a charger leaves.
    VehicleDeparts,
    /// A charger faults: a station error (1 overtemperature, 2 rcd_tripped, 3 contactor_fault,
    /// 4 communication) and/or a charge error (1 pilot_fault, 2 ventilation_required,
    /// 3 diode_fault, 4 overcurrent). It stops charging until `charger_reset`.
    ChargerFault {
        #[serde(default)]
        station_error: u8,
        #[serde(default)]
        charge_error: u8,
    },
    /// The charger's errors are cleared (a technician's reset).
    ChargerReset,
    /// The breaker trips.
    BreakerTrip {
        #[serde(default)]
        cause: Option<String>,
    },
    /// Force a breaker's current (overcurrent tests); it trips on its own curve.
    Overload {
        current_a: f64,
        #[serde(with = "serde_text")]
        duration: Duration,
    },
    /// Oil reaches the separator.
    OilInflow { volume_l: f64 },
    /// The separator is emptied and cleaned.
    SeparatorService,
    /// A vapour recovery side drifts to this mean recovery rate.
    VapourDrift { fp: u16, side: char, recovery_pct: f64 },
    /// Service ("dongle") event: the side is repaired and its alarm reset.
    VapourService { fp: u16, side: char },
    /// Scale a pulse counter input's flow (e.g. a leaking pipe: 5.0).
    FlowFactor { input: u16, factor: f64 },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::MainsLost => "mains_lost",
            Event::MainsRestored => "mains_restored",
            Event::MainsVoltage { .. } => "mains_voltage",
            Event::GensetFail => "genset_fail",
            Event::GensetRepaired => "genset_repaired",
            Event::LoadFactor { .. } => "load_factor",
            Event::Delivery { .. } => "delivery",
            Event::Leak { .. } => "leak",
            Event::LeakStop { .. } => "leak_stop",
            Event::WaterIngress { .. } => "water_ingress",
            Event::ProbeStuck { .. } => "probe_stuck",
            Event::ProbeRepaired { .. } => "probe_repaired",
            Event::LeakTest { .. } => "leak_test",
            Event::StationOpen => "station_open",
            Event::StationClosed => "station_closed",
            Event::InsulationFault { .. } => "insulation_fault",
            Event::InsulationDecay { .. } => "insulation_decay",
            Event::InsulationClear { .. } => "insulation_clear",
            Event::VehicleArrives { .. } => "vehicle_arrives",
            Event::VehicleDeparts => "vehicle_departs",
            Event::ChargerFault { .. } => "charger_fault",
            Event::ChargerReset => "charger_reset",
            Event::BreakerTrip { .. } => "breaker_trip",
            Event::Overload { .. } => "overload",
            Event::OilInflow { .. } => "oil_inflow",
            Event::SeparatorService => "separator_service",
            Event::VapourDrift { .. } => "vapour_drift",
            Event::VapourService { .. } => "vapour_service",
            Event::FlowFactor { .. } => "flow_factor",
        }
    }

    /// Events that need no device.
    pub fn is_site_wide(&self) -> bool {
        matches!(
            self,
            Event::StationOpen | Event::StationClosed | Event::VehicleArrives { .. }
        )
    }
}

/// A communication fault of one device, applied by the Modbus front end.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "fault", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// The device stops answering (requests time out).
    Silent,
    /// Every request answers this Modbus exception code.
    Exception { code: u8 },
    /// Answers arrive late.
    Delay {
        #[serde(with = "serde_text")]
        delay: Duration,
    },
    /// Registers freeze at their current values.
    Stuck,
    /// One point reads this (implausible) engineering value.
    OutOfRange { point: String, value: f64 },
    /// Registers hold random garbage.
    Garbage,
    /// The connection is closed when a request for this device arrives.
    DropConnection,
    /// On an RTU line, answers carry a wrong CRC (noise on the bus). No effect on TCP.
    BadCrc,
}

impl Fault {
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Silent => "silent",
            Fault::Exception { .. } => "exception",
            Fault::Delay { .. } => "delay",
            Fault::Stuck => "stuck",
            Fault::OutOfRange { .. } => "out_of_range",
            Fault::Garbage => "garbage",
            Fault::DropConnection => "drop_connection",
            Fault::BadCrc => "bad_crc",
        }
    }
}
