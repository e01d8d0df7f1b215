//! The tables of BUSBAR-MIB as data: the columns of each family table (which profile point
//! feeds each), the generic point and device tables, and the site scalars. Read by the agent
//! ([`super::mib`]) and the MIB text ([`super::mib_text`]).

use busbar_core::profile::Family;
use busbar_core::units::Unit;

/// The SMI syntax of a column or scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Text,
    /// Integer32 with this many implied decimals (DISPLAY-HINT "d-N").
    Decimal(u8),
    Counter,
    /// busbarPointQuality's enumeration.
    Quality,
    /// busbarDeviceCommStatus: online(1), offline(2).
    CommStatus,
    /// TruthValue (SNMPv2-TC): true(1), false(2).
    TruthValue,
    /// busbarAlarmSource's enumeration.
    AlarmSource,
    /// busbarAlarmLevel's enumeration.
    AlarmLevel,
}

/// A column of a family table: which point feeds it and how.
pub struct FamilyColumn {
    pub id: u32,
    /// Descriptor suffix after the table's prefix (`Voltage` -> busbarMeterVoltage).
    pub name: &'static str,
    /// Point name in the profile (inside the block for block tables).
    pub point: &'static str,
    /// Engineering unit served (values are converted), `None` for texts.
    pub unit: Option<Unit>,
    pub syntax: Syntax,
    pub description: &'static str,
}

/// A family table: the devices of one family, one row per device or per block instance.
pub struct FamilyTable {
    pub id: u32,
    /// Descriptor prefix (`busbarMeter`).
    pub prefix: &'static str,
    pub family: Family,
    /// Rows per instance of this block (second index, arc 1 of the entry; the columns then
    /// start at 2), else one row per device.
    pub block: Option<&'static str>,
    pub description: &'static str,
    pub columns: &'static [FamilyColumn],
}

const fn col(
    id: u32,
    name: &'static str,
    point: &'static str,
    unit: Option<Unit>,
    syntax: Syntax,
    description: &'static str,
) -> FamilyColumn {
    FamilyColumn {
        id,
        name,
        point,
        unit,
        syntax,
        description,
    }
}

const METER: FamilyTable = FamilyTable {
    id: 10,
    prefix: "busbarMeter",
    family: Family::Meter,
    block: None,
    description: "Power meters: phase 1 voltage and current, total active power, power factor, imported energy.",
    columns: &[
        col(
            1,
            "Voltage",
            "v1",
            Some(Unit::Volt),
            Syntax::Decimal(1),
            "Phase 1 to neutral voltage (V).",
        ),
        col(
            2,
            "Current",
            "i1",
            Some(Unit::Ampere),
            Syntax::Decimal(2),
            "Phase 1 current (A).",
        ),
        col(
            3,
            "ActivePower",
            "p",
            Some(Unit::Watt),
            Syntax::Decimal(0),
            "Total active power (W).",
        ),
        col(
            4,
            "PowerFactor",
            "pf",
            Some(Unit::PowerFactor),
            Syntax::Decimal(3),
            "Total power factor.",
        ),
        col(
            5,
            "EnergyImport",
            "ea_import",
            Some(Unit::KilowattHour),
            Syntax::Decimal(1),
            "Imported active energy (kWh).",
        ),
    ],
};

const TRANSFER_SWITCH: FamilyTable = FamilyTable {
    id: 11,
    prefix: "busbarAts",
    family: Family::TransferSwitch,
    block: None,
    description: "Automatic transfer switches: position, sources, mode and counters.",
    columns: &[
        col(
            1,
            "Position",
            "position",
            None,
            Syntax::Text,
            "Switch position (label).",
        ),
        col(
            2,
            "Source1State",
            "source1_state",
            None,
            Syntax::Text,
            "State of source I (label).",
        ),
        col(
            3,
            "Source2State",
            "source2_state",
            None,
            Syntax::Text,
            "State of source II (label).",
        ),
        col(4, "Mode", "mode", None, Syntax::Text, "Operating mode (label)."),
        col(
            5,
            "AutoTransfers",
            "auto_transfers",
            Some(Unit::Count),
            Syntax::Counter,
            "Automatic transfers.",
        ),
        col(
            6,
            "EngineStarts",
            "engine_starts",
            Some(Unit::Count),
            Syntax::Counter,
            "Genset starts.",
        ),
        col(
            7,
            "EngineRunTime",
            "engine_run_time",
            Some(Unit::Hour),
            Syntax::Decimal(1),
            "Genset run time (h).",
        ),
    ],
};

const INSULATION_MONITOR: FamilyTable = FamilyTable {
    id: 12,
    prefix: "busbarImd",
    family: Family::InsulationMonitor,
    block: None,
    description: "Insulation monitors: insulation resistance, leakage capacitance, alarm state.",
    columns: &[
        col(
            1,
            "Rf",
            "rf",
            Some(Unit::Kiloohm),
            Syntax::Decimal(0),
            "Insulation resistance (kOhm).",
        ),
        col(
            2,
            "Cf",
            "ce",
            Some(Unit::Microfarad),
            Syntax::Decimal(2),
            "Leakage capacitance (uF).",
        ),
        col(
            3,
            "AlarmState",
            "alarm_state",
            None,
            Syntax::Text,
            "Alarm state (label).",
        ),
    ],
};

const FAULT_LOCATOR: FamilyTable = FamilyTable {
    id: 13,
    prefix: "busbarCircuit",
    family: Family::FaultLocator,
    block: Some("circuit"),
    description: "Insulation fault locators, one row per circuit.",
    columns: &[
        col(
            2,
            "Rf",
            "rf",
            Some(Unit::Kiloohm),
            Syntax::Decimal(0),
            "Circuit insulation resistance (kOhm).",
        ),
        col(
            3,
            "Cf",
            "ce",
            Some(Unit::Microfarad),
            Syntax::Decimal(2),
            "Circuit leakage capacitance (uF).",
        ),
        col(
            4,
            "ResidualCurrent",
            "residual_current",
            Some(Unit::Milliampere),
            Syntax::Decimal(1),
            "Residual current (mA).",
        ),
        col(
            5,
            "AlarmState",
            "alarm_state",
            None,
            Syntax::Text,
            "Circuit alarm state (label).",
        ),
    ],
};

const TANK_GAUGE: FamilyTable = FamilyTable {
    id: 14,
    prefix: "busbarTank",
    family: Family::TankGauge,
    block: Some("tank"),
    description: "Fuel tanks, one row per tank of a tank gauge.",
    columns: &[
        col(2, "Product", "product", None, Syntax::Text, "Product (label)."),
        col(
            3,
            "Volume",
            "volume",
            Some(Unit::Litre),
            Syntax::Decimal(0),
            "Product volume (L).",
        ),
        col(
            4,
            "TcVolume",
            "tc_volume",
            Some(Unit::Litre),
            Syntax::Decimal(0),
            "Temperature-compensated volume at 15 degC (L).",
        ),
        col(
            5,
            "Ullage",
            "ullage",
            Some(Unit::Litre),
            Syntax::Decimal(0),
            "Ullage (L).",
        ),
        col(
            6,
            "Level",
            "level",
            Some(Unit::Millimetre),
            Syntax::Decimal(1),
            "Product level (mm).",
        ),
        col(
            7,
            "Water",
            "water_level",
            Some(Unit::Millimetre),
            Syntax::Decimal(1),
            "Water level (mm).",
        ),
        col(
            8,
            "Temperature",
            "temperature",
            Some(Unit::DegreeCelsius),
            Syntax::Decimal(1),
            "Product temperature (degC).",
        ),
        col(
            9,
            "ProductAlarm",
            "product_alarm",
            None,
            Syntax::Text,
            "Product alarm (label).",
        ),
        col(
            10,
            "WaterAlarm",
            "water_alarm",
            None,
            Syntax::Text,
            "Water alarm (label).",
        ),
    ],
};

const CHARGER: FamilyTable = FamilyTable {
    id: 15,
    prefix: "busbarCharger",
    family: Family::Charger,
    block: None,
    description: "EV chargers: state, current, power, session energy.",
    columns: &[
        col(1, "State", "state", None, Syntax::Text, "Charging state (label)."),
        col(
            2,
            "Current",
            "i1",
            Some(Unit::Ampere),
            Syntax::Decimal(1),
            "Phase 1 current (A).",
        ),
        col(
            3,
            "Power",
            "power",
            Some(Unit::Watt),
            Syntax::Decimal(0),
            "Charging power (W).",
        ),
        col(
            4,
            "SessionEnergy",
            "session_energy",
            Some(Unit::KilowattHour),
            Syntax::Decimal(2),
            "Energy of the session (kWh).",
        ),
    ],
};

const OIL_SEPARATOR: FamilyTable = FamilyTable {
    id: 16,
    prefix: "busbarSeparator",
    family: Family::OilSeparator,
    block: None,
    description: "Oil separators: light liquid and sludge layers, water level, alarms, probe.",
    columns: &[
        col(
            1,
            "LightLiquid",
            "light_liquid",
            Some(Unit::Millimetre),
            Syntax::Decimal(0),
            "Light liquid (oil) layer thickness (mm).",
        ),
        col(
            2,
            "Sludge",
            "sludge",
            Some(Unit::Millimetre),
            Syntax::Decimal(0),
            "Sludge layer thickness (mm).",
        ),
        col(
            3,
            "WaterLevel",
            "water_level",
            Some(Unit::Millimetre),
            Syntax::Decimal(0),
            "Water level (mm).",
        ),
        col(
            4,
            "LightLiquidAlarm",
            "light_liquid_alarm",
            None,
            Syntax::Text,
            "Light liquid layer alarm (label).",
        ),
        col(
            5,
            "SludgeAlarm",
            "sludge_alarm",
            None,
            Syntax::Text,
            "Sludge layer alarm (label).",
        ),
        col(
            6,
            "ProbeStatus",
            "probe_status",
            None,
            Syntax::Text,
            "Probe status (label).",
        ),
    ],
};

const VAPOUR_RECOVERY: FamilyTable = FamilyTable {
    id: 17,
    prefix: "busbarFuellingPoint",
    family: Family::VapourRecovery,
    block: Some("fp"),
    description: "Vapour recovery, one row per fuelling point: recovery rate and status of each side.",
    columns: &[
        col(
            2,
            "ARecoveryRate",
            "a_recovery_rate",
            Some(Unit::Percent),
            Syntax::Decimal(1),
            "Side A recovery rate of the last fuelling (%).",
        ),
        col(3, "AStatus", "a_status", None, Syntax::Text, "Side A status (label)."),
        col(
            4,
            "BRecoveryRate",
            "b_recovery_rate",
            Some(Unit::Percent),
            Syntax::Decimal(1),
            "Side B recovery rate of the last fuelling (%).",
        ),
        col(5, "BStatus", "b_status", None, Syntax::Text, "Side B status (label)."),
    ],
};

const BREAKER: FamilyTable = FamilyTable {
    id: 18,
    prefix: "busbarBreaker",
    family: Family::Breaker,
    block: None,
    description: "Breakers: state, cause of the last trip, current, power, energy, trips.",
    columns: &[
        col(1, "State", "state", None, Syntax::Text, "Breaker state (label)."),
        col(
            2,
            "TripCause",
            "trip_cause",
            None,
            Syntax::Text,
            "Cause of the last trip (label).",
        ),
        col(
            3,
            "Current",
            "i1",
            Some(Unit::Ampere),
            Syntax::Decimal(1),
            "Phase 1 current (A).",
        ),
        col(
            4,
            "ActivePower",
            "p",
            Some(Unit::Watt),
            Syntax::Decimal(0),
            "Active power (W).",
        ),
        col(
            5,
            "EnergyImport",
            "ea_import",
            Some(Unit::KilowattHour),
            Syntax::Decimal(1),
            "Active energy (kWh).",
        ),
        col(
            6,
            "TripCount",
            "trip_count",
            Some(Unit::Count),
            Syntax::Counter,
            "Trips since commissioning.",
        ),
    ],
};

const PULSE_COUNTER: FamilyTable = FamilyTable {
    id: 19,
    prefix: "busbarPulseInput",
    family: Family::PulseCounter,
    block: Some("input"),
    description: "Pulse counters, one row per input: metered medium, consumption, flow rate.",
    columns: &[
        col(2, "Medium", "medium", None, Syntax::Text, "Metered medium (label)."),
        col(
            3,
            "Consumption",
            "consumption",
            Some(Unit::Litre),
            Syntax::Counter,
            "Consumption (L).",
        ),
        col(
            4,
            "FlowRate",
            "flow_rate",
            Some(Unit::LitrePerHour),
            Syntax::Decimal(1),
            "Flow rate (L/h).",
        ),
        col(
            5,
            "EnergyEquivalent",
            "energy_equivalent",
            Some(Unit::KilowattHour),
            Syntax::Counter,
            "Gas energy equivalent (kWh).",
        ),
    ],
};

const LOAD_MANAGER: FamilyTable = FamilyTable {
    id: 20,
    prefix: "busbarLoadManager",
    family: Family::LoadManager,
    block: None,
    description: "Load managers of EV charging: mode, zone, measured and available current, sessions.",
    columns: &[
        col(
            1,
            "Mode",
            "mode",
            None,
            Syntax::Text,
            "What the load manager does (label).",
        ),
        col(
            2,
            "Zone",
            "zone",
            None,
            Syntax::Text,
            "Zone of the most loaded phase (label).",
        ),
        col(
            3,
            "MeasuredCurrent",
            "measured_current",
            Some(Unit::Ampere),
            Syntax::Decimal(1),
            "Most loaded phase of the consumption meter (A).",
        ),
        col(
            4,
            "AvailableCurrent",
            "available_current",
            Some(Unit::Ampere),
            Syntax::Decimal(1),
            "Current left for charging below the green/yellow border (A).",
        ),
        col(
            5,
            "Sessions",
            "sessions",
            None,
            Syntax::Decimal(0),
            "Sessions authorised.",
        ),
        col(
            6,
            "Queued",
            "queued",
            None,
            Syntax::Decimal(0),
            "Requests waiting for a grant.",
        ),
    ],
};

/// The family table of each family: one per family, and the compiler refuses a family without
/// one. The columns are the points an operator reads at a glance; every point of every device
/// is in the generic point table as well.
pub fn family_table(family: Family) -> &'static FamilyTable {
    match family {
        Family::Meter => &METER,
        Family::TransferSwitch => &TRANSFER_SWITCH,
        Family::InsulationMonitor => &INSULATION_MONITOR,
        Family::FaultLocator => &FAULT_LOCATOR,
        Family::TankGauge => &TANK_GAUGE,
        Family::OilSeparator => &OIL_SEPARATOR,
        Family::VapourRecovery => &VAPOUR_RECOVERY,
        Family::Charger => &CHARGER,
        Family::Breaker => &BREAKER,
        Family::PulseCounter => &PULSE_COUNTER,
        Family::LoadManager => &LOAD_MANAGER,
    }
}

/// Every family's table, in table id order (the MIB's and GETNEXT's order).
pub static FAMILY_TABLES: std::sync::LazyLock<Vec<&'static FamilyTable>> = std::sync::LazyLock::new(|| {
    let mut tables: Vec<&'static FamilyTable> = Family::ALL.iter().map(|f| family_table(*f)).collect();
    tables.sort_by_key(|t| t.id);
    tables
});

/// Point table columns (id, descriptor, syntax, description).
pub const POINT_COLUMNS: &[(u32, &str, Syntax, &str)] = &[
    (2, "busbarPointName", Syntax::Text, "Point id within its device (`v1`, `tank3.volume`)."),
    (3, "busbarPointValueText", Syntax::Text, "The value as text: a number, an enum label or a string."),
    (4, "busbarPointValue", Syntax::Decimal(0), "The value scaled to an integer: value = busbarPointValue x 10^busbarPointScale. Writable for writable points (SET with writes enabled)."),
    (5, "busbarPointScale", Syntax::Decimal(0), "Decimal exponent of busbarPointValue."),
    (6, "busbarPointUnit", Syntax::Text, "Unit symbol (`V`, `kWh`, `degC`; empty when dimensionless)."),
    (7, "busbarPointQuality", Syntax::Quality, "Quality of the value."),
    (8, "busbarPointTimestamp", Syntax::Text, "When the device was read (RFC 3339, UTC); empty before the first read."),
];

/// Device table columns.
pub const DEVICE_COLUMNS: &[(u32, &str, Syntax, &str)] = &[
    (
        2,
        "busbarDeviceName",
        Syntax::Text,
        "Device name from the configuration.",
    ),
    (
        3,
        "busbarDeviceFamily",
        Syntax::Text,
        "Device family (meter, transfer_switch, tank_gauge, ...).",
    ),
    (
        4,
        "busbarDeviceProfile",
        Syntax::Text,
        "Device profile (socomec-diris-a40, ...).",
    ),
    (
        5,
        "busbarDeviceCommStatus",
        Syntax::CommStatus,
        "Whether the device answered its last poll.",
    ),
    (
        6,
        "busbarDeviceLastUpdate",
        Syntax::Text,
        "Last good read (RFC 3339, UTC); empty if never.",
    ),
    (
        7,
        "busbarDeviceFailures",
        Syntax::Counter,
        "Failed polls since the bridge started.",
    ),
];

/// Alarm table columns: one row per alarm that needs attention (active, unacknowledged,
/// shelved or out of service), indexed by the alarm's number.
pub const ALARM_COLUMNS: &[(u32, &str, Syntax, &str)] = &[
    (2, "busbarAlarmId", Syntax::Text, "The alarm's id (`device/ats/source1_state`, `threshold/<rule>/<device>/<point>`)."),
    (3, "busbarAlarmSource", Syntax::AlarmSource, "What raises it: a threshold rule, a state the device reports, the device's communication, or a point's quality."),
    (4, "busbarAlarmDevice", Syntax::Text, "The device the alarm is about."),
    (5, "busbarAlarmPoint", Syntax::Text, "The point it watches (empty for communication alarms)."),
    (6, "busbarAlarmSeverity", Syntax::Decimal(0), "Severity on the 1..1000 scale (info 100, warning 300, minor 500, major 700, critical 900)."),
    (7, "busbarAlarmLevel", Syntax::AlarmLevel, "The condition's level at its last transition (normal when clear)."),
    (8, "busbarAlarmValue", Syntax::Text, "The value at its last transition, as text."),
    (9, "busbarAlarmMessage", Syntax::Text, "The alarm's message."),
    (10, "busbarAlarmActive", Syntax::TruthValue, "The condition is active (a latching alarm stays active until acknowledged)."),
    (11, "busbarAlarmAckState", Syntax::TruthValue, "Acknowledged. A manager with write access acknowledges the alarm by setting true(1); the journal names the community or user."),
    (12, "busbarAlarmShelvedUntil", Syntax::Text, "Shelved until this time (RFC 3339, UTC); empty when not shelved."),
    (13, "busbarAlarmDisabled", Syntax::TruthValue, "Taken out of service."),
    (14, "busbarAlarmChanged", Syntax::Text, "When its last transition happened (RFC 3339, UTC)."),
];

/// Site scalars (arc under busbarSite, descriptor, description).
pub const SITE_SCALARS: &[(u32, &str, &str)] = &[
    (1, "busbarSiteName", "Site name."),
    (2, "busbarSiteId", "Site id."),
    (3, "busbarDeviceCount", "Devices configured."),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_one_table_whose_columns_every_profile_feeds() {
        let set = busbar_core::profile::embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
        let mut ids: Vec<u32> = FAMILY_TABLES.iter().map(|t| t.id).collect();
        ids.dedup();
        assert_eq!(
            ids.len(),
            Family::ALL.len(),
            "one table per family, ids unique and ordered"
        );
        for profile in set.values() {
            let table = family_table(profile.family);
            assert_eq!(table.family, profile.family);
            for c in table.columns {
                let id = match table.block {
                    Some(b) => format!("{b}1.{}", c.point),
                    None => c.point.to_string(),
                };
                let Some(k) = profile.point_index(&id) else {
                    panic!(
                        "{}: {} has no point `{id}` for {}{}",
                        profile.name, table.prefix, table.prefix, c.name
                    );
                };
                let from = profile.points[k].unit;
                match c.unit {
                    Some(unit) => assert!(
                        from.convert(1.0, unit).is_some(),
                        "{}: `{id}` in {} cannot be served in {}",
                        profile.name,
                        from.symbol(),
                        unit.symbol()
                    ),
                    // A number without a unit is served as it is: the point must have none.
                    None if c.syntax != Syntax::Text => assert_eq!(
                        from.symbol(),
                        "",
                        "{}: `{id}` has a unit but {}{} serves it without one",
                        profile.name,
                        table.prefix,
                        c.name
                    ),
                    None => {}
                }
            }
        }
    }

    #[test]
    fn the_snmp_guide_lists_every_family_table() {
        let guide = include_str!("../../../../docs/snmp.md");
        for t in FAMILY_TABLES.iter() {
            assert!(
                guide.contains(&format!("{}Table", t.prefix)),
                "docs/snmp.md does not describe {}Table",
                t.prefix
            );
        }
    }
}
