//! BUSBAR-MIB as data: the OID tree under the configured enterprise root, the value of every
//! instance from the store, GETNEXT order, and the SMIv2 text of the module — one definition for
//! the agent and the MIB file, so they cannot disagree. Quality -> busbarPointQuality is mapped
//! here, in [`quality_code`], and nowhere else. docs/snmp.md.

use crate::config::Config;
use crate::store::{PointIdx, PointValue, Store};
use busbar_core::profile::{Family, Kind};
use busbar_core::quality::Quality;
use busbar_core::units::Unit;
use std::fmt::Write as _;
use std::sync::Arc;

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
}

/// A typed value before it becomes an SNMP value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i32),
    Counter(u32),
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

/// A family table: devices of some families, one row per device or per block instance.
pub struct FamilyTable {
    pub id: u32,
    /// Descriptor prefix (`busbarMeter`).
    pub prefix: &'static str,
    pub families: &'static [Family],
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

/// The family tables an operator reads at a glance.
pub const FAMILY_TABLES: &[FamilyTable] = &[
    FamilyTable {
        id: 10,
        prefix: "busbarMeter",
        families: &[Family::Meter],
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
    },
    FamilyTable {
        id: 11,
        prefix: "busbarAts",
        families: &[Family::TransferSwitch],
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
    },
    FamilyTable {
        id: 12,
        prefix: "busbarImd",
        families: &[Family::InsulationMonitor],
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
    },
    FamilyTable {
        id: 13,
        prefix: "busbarCircuit",
        families: &[Family::FaultLocator],
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
    },
    FamilyTable {
        id: 14,
        prefix: "busbarTank",
        families: &[Family::TankGauge],
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
    },
    FamilyTable {
        id: 15,
        prefix: "busbarCharger",
        families: &[Family::Charger],
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
    },
];

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

/// Site scalars (arc under busbarSite, descriptor, description).
pub const SITE_SCALARS: &[(u32, &str, &str)] = &[
    (1, "busbarSiteName", "Site name."),
    (2, "busbarSiteId", "Site id."),
    (3, "busbarDeviceCount", "Devices configured."),
];

/// The default enterprise root (enterprise 32473 is reserved for documentation by RFC 5612).
pub fn default_root() -> Vec<u32> {
    vec![1, 3, 6, 1, 4, 1, 32473]
}

/// Arcs under the root.
pub const NOTIFICATIONS: u32 = 0;
pub const OBJECTS: u32 = 1;
pub const CONFORMANCE: u32 = 2;
pub const SITE: u32 = 1;
pub const DEVICE_TABLE: u32 = 2;
pub const POINT_TABLE: u32 = 3;
/// Notifications under root.0.
pub const TRAP_COMM_LOST: u32 = 1;
pub const TRAP_COMM_RESTORED: u32 = 2;

/// Quality -> busbarPointQuality, the one mapping for SNMP.
pub fn quality_code(q: Quality) -> i32 {
    match q {
        Quality::Good => 1,
        Quality::Stale => 2,
        Quality::NoValue => 3,
        Quality::CommFailure => 4,
        Quality::OutOfRange => 5,
        Quality::DecodeError => 6,
        Quality::ConfigError => 7,
    }
}

const QUALITY_ENUM: &str =
    "good(1), stale(2), noValue(3), commFailure(4), outOfRange(5), decodeError(6), configError(7)";

/// One table row: its index arcs and what it shows.
#[derive(Debug, Clone)]
pub struct Row {
    pub index: Vec<u32>,
    pub device: usize,
    /// Point table: the point; family tables: the block instance.
    pub point: Option<PointIdx>,
    pub block: Option<u16>,
}

/// A table of the tree.
pub struct Table {
    /// The entry's OID (table OID + .1).
    pub entry: Vec<u32>,
    pub kind: TableKind,
    /// Column ids, ascending.
    pub columns: Vec<u32>,
    /// Rows, ascending by index.
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Devices,
    Points,
    Family(usize),
}

/// The decimal exponent of a point in the point table: as many decimals (up to 3) as its range
/// allows in an Integer32; counters and states are integers.
pub fn point_scale(kind: Kind, range: Option<(f64, f64)>) -> i32 {
    match kind {
        Kind::Analog => {
            let span = range.map_or(1e6, |(lo, hi)| lo.abs().max(hi.abs()));
            (0..=3).rev().find(|d| span * 10f64.powi(*d) < 2.0e9).map_or(0, |d| -d)
        }
        _ => 0,
    }
}

/// The MIB tree of a site.
pub struct Mib {
    pub root: Vec<u32>,
    pub store: Arc<Store>,
    pub tables: Vec<Table>,
    /// Site scalars' full OIDs (with .0), ascending.
    pub scalars: Vec<(Vec<u32>, u32)>,
    /// Per point of the point table: its scale.
    scales: std::collections::HashMap<PointIdx, i32>,
}

fn join(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut v = a.to_vec();
    v.extend_from_slice(b);
    v
}

impl Mib {
    pub fn build(config: &Config, root: &[u32], store: Arc<Store>) -> Mib {
        let objects = join(root, &[OBJECTS]);
        let scalars = SITE_SCALARS
            .iter()
            .map(|(arc, _, _)| (join(&objects, &[SITE, *arc, 0]), *arc))
            .collect();
        let mut tables = Vec::new();
        let device_rows: Vec<Row> = (0..config.devices.len())
            .map(|d| Row {
                index: vec![d as u32 + 1],
                device: d,
                point: None,
                block: None,
            })
            .collect();
        tables.push(Table {
            entry: join(&objects, &[DEVICE_TABLE, 1]),
            kind: TableKind::Devices,
            columns: DEVICE_COLUMNS.iter().map(|c| c.0).collect(),
            rows: device_rows,
        });
        let mut scales = std::collections::HashMap::new();
        let mut point_rows = Vec::new();
        for (d, dev) in config.devices.iter().enumerate() {
            for &k in &dev.acquired {
                let (Some(p), Some(point)) = (dev.profile.points.get(k), store.point_of(d, k)) else {
                    continue;
                };
                scales.insert(point, point_scale(p.kind, dev.range(k)));
                point_rows.push(Row {
                    index: vec![d as u32 + 1, k as u32 + 1],
                    device: d,
                    point: Some(point),
                    block: None,
                });
            }
        }
        tables.push(Table {
            entry: join(&objects, &[POINT_TABLE, 1]),
            kind: TableKind::Points,
            columns: POINT_COLUMNS.iter().map(|c| c.0).collect(),
            rows: point_rows,
        });
        for (t, ft) in FAMILY_TABLES.iter().enumerate() {
            let mut rows = Vec::new();
            for (d, dev) in config.devices.iter().enumerate() {
                if !ft.families.contains(&dev.profile.family) {
                    continue;
                }
                match ft.block {
                    None => rows.push(Row {
                        index: vec![d as u32 + 1],
                        device: d,
                        point: None,
                        block: None,
                    }),
                    Some(block) => {
                        let mut instances: Vec<u16> = dev
                            .acquired
                            .iter()
                            .filter_map(|&k| dev.profile.points.get(k)?.block.as_ref())
                            .filter(|b| b.name == block)
                            .map(|b| b.index)
                            .collect();
                        instances.sort_unstable();
                        instances.dedup();
                        for i in instances {
                            rows.push(Row {
                                index: vec![d as u32 + 1, u32::from(i)],
                                device: d,
                                point: None,
                                block: Some(i),
                            });
                        }
                    }
                }
            }
            tables.push(Table {
                entry: join(&objects, &[ft.id, 1]),
                kind: TableKind::Family(t),
                columns: ft.columns.iter().map(|c| c.id).collect(),
                rows,
            });
        }
        tables.sort_by(|a, b| a.entry.cmp(&b.entry));
        Mib {
            root: root.to_vec(),
            store,
            tables,
            scalars,
            scales,
        }
    }

    fn scalar(&self, arc: u32) -> Option<Cell> {
        Some(match arc {
            1 => Cell::Text(self.store.site_name.clone()),
            2 => Cell::Text(self.store.site_id.clone()),
            3 => Cell::Int(i32::try_from(self.store.device_count()).unwrap_or(i32::MAX)),
            _ => return None,
        })
    }

    /// The point `name` (`tank3.volume` when `block` is set) of device `d`.
    fn family_point(&self, d: usize, block: Option<(&str, u16)>, name: &str) -> Option<PointIdx> {
        let profile = self.store.device_profile(d)?;
        let id = match block {
            Some((b, i)) => format!("{b}{i}.{name}"),
            None => name.to_string(),
        };
        let k = profile.point_index(&id)?;
        let p = self.store.point_of(d, k)?;
        self.store.meta(p).filter(|m| m.acquired).map(|_| p)
    }

    /// The value of a cell, `None` if the instance does not exist.
    pub fn cell(&self, table: &Table, column: u32, row: &Row) -> Option<Cell> {
        match table.kind {
            TableKind::Devices => {
                let st = self.store.status(row.device)?;
                Some(match column {
                    2 => Cell::Text(self.store.device_name(row.device).to_string()),
                    3 => Cell::Text(self.store.device_profile(row.device)?.family.to_string()),
                    4 => Cell::Text(self.store.device_profile(row.device)?.name.clone()),
                    5 => Cell::Int(if st.online { 1 } else { 2 }),
                    6 => Cell::Text(st.last_good_read.map(busbar_core::time::rfc3339).unwrap_or_default()),
                    7 => Cell::Counter(st.failures as u32),
                    _ => return None,
                })
            }
            TableKind::Points => {
                let p = row.point?;
                let meta = self.store.meta(p)?;
                let profile = self.store.device_profile(meta.device)?;
                let point = profile.points.get(meta.profile_point)?;
                // Borrowed under the store's read lock: a walk reads every cell.
                let samples = self.store.samples();
                let sample = samples.get(p as usize)?;
                let scale = self.scales.get(&p).copied().unwrap_or(0);
                Some(match column {
                    2 => Cell::Text(point.id.clone()),
                    3 => Cell::Text(match &sample.value {
                        Some(v) => self.store.display_value(p, v).unwrap_or_else(|| text_of(v)),
                        None => String::new(),
                    }),
                    4 => Cell::Int(
                        sample
                            .value
                            .as_ref()
                            .and_then(PointValue::as_f64)
                            .map_or(0, |v| to_i32(v * 10f64.powi(-scale))),
                    ),
                    5 => Cell::Int(scale),
                    6 => Cell::Text(point.unit.symbol().to_string()),
                    7 => Cell::Int(quality_code(sample.quality)),
                    8 => Cell::Text(sample.source_time.map(busbar_core::time::rfc3339).unwrap_or_default()),
                    _ => return None,
                })
            }
            TableKind::Family(t) => {
                let ft = FAMILY_TABLES.get(t)?;
                let c = ft.columns.iter().find(|c| c.id == column)?;
                let block = ft.block.zip(row.block);
                let p = self.family_point(row.device, block, c.point)?;
                // Borrowed under the store's read lock: a walk reads every cell.
                let samples = self.store.samples();
                let sample = samples.get(p as usize)?;
                let value = sample.value.as_ref();
                match (c.syntax, c.unit) {
                    (Syntax::Text, _) => Some(Cell::Text(match value {
                        Some(v) => self.store.display_value(p, v).unwrap_or_else(|| text_of(v)),
                        None => String::new(),
                    })),
                    (syntax, Some(unit)) => {
                        let from = self.store.meta(p).and_then(|m| {
                            self.store
                                .device_profile(m.device)?
                                .points
                                .get(m.profile_point)
                                .map(|x| x.unit)
                        })?;
                        let v = value
                            .and_then(PointValue::as_f64)
                            .and_then(|v| from.convert(v, unit))
                            .unwrap_or(0.0);
                        Some(match syntax {
                            Syntax::Counter => Cell::Counter(v.clamp(0.0, f64::from(u32::MAX)) as u32),
                            Syntax::Decimal(n) => Cell::Int(to_i32(v * 10f64.powi(i32::from(n)))),
                            _ => return None,
                        })
                    }
                    _ => None,
                }
            }
        }
    }

    /// The value at `oid`, `None` when there is no such instance.
    pub fn get(&self, oid: &[u32]) -> Option<Cell> {
        if let Some((_, arc)) = self.scalars.iter().find(|(o, _)| o == oid) {
            return self.scalar(*arc);
        }
        for t in &self.tables {
            if let Some(rest) = oid.strip_prefix(t.entry.as_slice()) {
                let (&column, index) = rest.split_first()?;
                if !t.columns.contains(&column) {
                    return None;
                }
                let i = t.rows.binary_search_by(|r| r.index.as_slice().cmp(index)).ok()?;
                return self.cell(t, column, &t.rows[i]);
            }
        }
        None
    }

    /// The first instance after `oid` and its value, in lexicographic order.
    pub fn next(&self, oid: &[u32]) -> Option<(Vec<u32>, Cell)> {
        for (o, arc) in &self.scalars {
            if o.as_slice() > oid {
                if let Some(c) = self.scalar(*arc) {
                    return Some((o.clone(), c));
                }
            }
        }
        for t in &self.tables {
            if let Some(found) = self.next_in_table(t, oid) {
                return Some(found);
            }
        }
        None
    }

    fn next_in_table(&self, t: &Table, oid: &[u32]) -> Option<(Vec<u32>, Cell)> {
        // Columns first, then rows: the first (column, row) whose OID is after `oid`.
        let rest = oid.strip_prefix(t.entry.as_slice());
        let (start_col, after): (usize, Option<&[u32]>) = match rest {
            Some([col, index @ ..]) => (
                t.columns.partition_point(|c| c < col),
                Some(index).filter(|_| t.columns.contains(col)),
            ),
            Some([]) => (0, None),
            None if oid < t.entry.as_slice() => (0, None),
            None => return None,
        };
        for (ci, &column) in t.columns.iter().enumerate().skip(start_col) {
            let first_row = match (ci == start_col, after, rest) {
                (true, Some(index), Some([c, ..])) if *c == column => {
                    t.rows.partition_point(|r| r.index.as_slice() <= index)
                }
                _ => 0,
            };
            for row in &t.rows[first_row..] {
                if let Some(c) = self.cell(t, column, row) {
                    let mut o = t.entry.clone();
                    o.push(column);
                    o.extend_from_slice(&row.index);
                    return Some((o, c));
                }
            }
        }
        None
    }

    /// The point behind a writable busbarPointValue instance.
    pub fn writable_point(&self, oid: &[u32]) -> Option<(PointIdx, i32)> {
        let t = self.tables.iter().find(|t| t.kind == TableKind::Points)?;
        let rest = oid.strip_prefix(t.entry.as_slice())?;
        let (&4, index) = rest.split_first()? else { return None };
        let i = t.rows.binary_search_by(|r| r.index.as_slice().cmp(index)).ok()?;
        let p = t.rows[i].point?;
        Some((p, self.scales.get(&p).copied().unwrap_or(0)))
    }

    /// Every instance OID with its syntax (for tests that compare the agent with the MIB).
    pub fn column_syntax(oid: &[u32], root: &[u32]) -> Option<Syntax> {
        let rest = oid.strip_prefix(root)?;
        match rest {
            [OBJECTS, SITE, arc, 0] => Some(if *arc == 3 { Syntax::Decimal(0) } else { Syntax::Text }),
            [OBJECTS, DEVICE_TABLE, 1, c, ..] => DEVICE_COLUMNS.iter().find(|x| x.0 == *c).map(|x| x.2),
            [OBJECTS, POINT_TABLE, 1, c, ..] => POINT_COLUMNS.iter().find(|x| x.0 == *c).map(|x| x.2),
            [OBJECTS, t, 1, c, ..] => FAMILY_TABLES
                .iter()
                .find(|f| f.id == *t)
                .and_then(|f| f.columns.iter().find(|x| x.id == *c))
                .map(|x| x.syntax),
            _ => None,
        }
    }
}

fn text_of(v: &PointValue) -> String {
    match v {
        PointValue::Number(n) => format!("{n}"),
        PointValue::Text(t) => t.clone(),
    }
}

fn to_i32(v: f64) -> i32 {
    if v.is_nan() {
        0
    } else {
        v.round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
    }
}

fn syntax_text(s: Syntax) -> String {
    match s {
        Syntax::Text => "DisplayString".into(),
        Syntax::Decimal(0) => "Integer32".into(),
        Syntax::Decimal(n) => format!("BusbarDecimal{n}"),
        Syntax::Counter => "Counter32".into(),
        Syntax::Quality => format!("INTEGER {{ {QUALITY_ENUM} }}"),
        Syntax::CommStatus => "INTEGER { online(1), offline(2) }".into(),
    }
}

/// The text of BUSBAR-MIB for an enterprise root (1.3.6.1.4.1.N...).
pub fn mib_text(root: &[u32]) -> String {
    let mut o = String::new();
    let under = root.get(6..).unwrap_or(&[]);
    let arcs: Vec<String> = under.iter().map(u32::to_string).collect();
    let dotted: Vec<String> = root.iter().map(u32::to_string).collect();
    let _ = writeln!(
        o,
        "BUSBAR-MIB DEFINITIONS ::= BEGIN

IMPORTS
    MODULE-IDENTITY, OBJECT-TYPE, NOTIFICATION-TYPE, Integer32, Unsigned32, Counter32, enterprises
        FROM SNMPv2-SMI
    DisplayString, TEXTUAL-CONVENTION
        FROM SNMPv2-TC
    MODULE-COMPLIANCE, OBJECT-GROUP, NOTIFICATION-GROUP
        FROM SNMPv2-CONF;

busbarMIB MODULE-IDENTITY
    LAST-UPDATED \"202611220000Z\"
    ORGANIZATION \"Busbar\"
    CONTACT-INFO \"https://github.com/busbar (the project's issue tracker)\"
    DESCRIPTION
        \"A site of field devices bridged by Busbar: devices, every point with
        its quality, family tables, and communication notifications.
        Generated by `busbar export mib` for the root {root}; the default root
        is under enterprise 32473, reserved for documentation (RFC 5612):
        change servers.snmp.enterprise_oid to your own enterprise number and
        regenerate this file.\"
    REVISION \"202611220000Z\"
    DESCRIPTION \"First version.\"
    ::= {{ enterprises {arcs} }}
",
        root = dotted.join("."),
        arcs = arcs.join(" ")
    );
    for n in 1..=3u8 {
        let _ = writeln!(
            o,
            "BusbarDecimal{n} ::= TEXTUAL-CONVENTION
    DISPLAY-HINT \"d-{n}\"
    STATUS current
    DESCRIPTION \"An integer with {n} implied decimal(s).\"
    SYNTAX Integer32
"
        );
    }
    let _ = writeln!(
        o,
        "busbarNotifications OBJECT IDENTIFIER ::= {{ busbarMIB {NOTIFICATIONS} }}
busbarObjects OBJECT IDENTIFIER ::= {{ busbarMIB {OBJECTS} }}
busbarConformance OBJECT IDENTIFIER ::= {{ busbarMIB {CONFORMANCE} }}
busbarSite OBJECT IDENTIFIER ::= {{ busbarObjects {SITE} }}
"
    );
    for (arc, name, desc) in SITE_SCALARS {
        let syntax = if *arc == 3 { "Integer32" } else { "DisplayString" };
        let _ = writeln!(
            o,
            "{name} OBJECT-TYPE
    SYNTAX {syntax}
    MAX-ACCESS read-only
    STATUS current
    DESCRIPTION \"{desc}\"
    ::= {{ busbarSite {arc} }}
"
        );
    }
    let mut objects: Vec<String> = SITE_SCALARS.iter().map(|s| s.1.to_string()).collect();
    // Device table.
    table_text(
        &mut o,
        "busbarDevice",
        DEVICE_TABLE,
        "Devices of the site, in configuration order.",
        &[(
            "busbarDeviceIndex",
            "Device number: its position in the configuration, from 1.",
        )],
        DEVICE_COLUMNS
            .iter()
            .map(|c| (c.0, c.1.to_string(), c.2, c.3.to_string(), false))
            .collect(),
        &mut objects,
    );
    table_text(
        &mut o,
        "busbarPoint",
        POINT_TABLE,
        "Every acquired point of every device.",
        &[
            ("busbarDeviceIndex", ""),
            (
                "busbarPointIndex",
                "Position of the point in its device profile, from 1.",
            ),
        ],
        POINT_COLUMNS
            .iter()
            .map(|c| (c.0, c.1.to_string(), c.2, c.3.to_string(), c.0 == 4))
            .collect(),
        &mut objects,
    );
    for ft in FAMILY_TABLES {
        let mut index: Vec<(&str, &str)> = vec![("busbarDeviceIndex", "")];
        let block_index = format!("{}Index", ft.prefix);
        if ft.block.is_some() {
            index.push((block_index.as_str(), "Block instance (tank or circuit number), from 1."));
        }
        table_text(
            &mut o,
            ft.prefix,
            ft.id,
            ft.description,
            &index,
            ft.columns
                .iter()
                .map(|c| {
                    (
                        c.id,
                        format!("{}{}", ft.prefix, c.name),
                        c.syntax,
                        c.description.to_string(),
                        false,
                    )
                })
                .collect(),
            &mut objects,
        );
    }
    let _ = writeln!(
        o,
        "busbarCommLost NOTIFICATION-TYPE
    OBJECTS {{ busbarDeviceName, busbarDeviceCommStatus }}
    STATUS current
    DESCRIPTION \"A device stopped answering its polls.\"
    ::= {{ busbarNotifications {TRAP_COMM_LOST} }}

busbarCommRestored NOTIFICATION-TYPE
    OBJECTS {{ busbarDeviceName, busbarDeviceCommStatus }}
    STATUS current
    DESCRIPTION \"A device answers its polls again.\"
    ::= {{ busbarNotifications {TRAP_COMM_RESTORED} }}

busbarGroups OBJECT IDENTIFIER ::= {{ busbarConformance 1 }}
busbarCompliances OBJECT IDENTIFIER ::= {{ busbarConformance 2 }}

busbarObjectGroup OBJECT-GROUP
    OBJECTS {{ {} }}
    STATUS current
    DESCRIPTION \"Every object of the module.\"
    ::= {{ busbarGroups 1 }}

busbarNotificationGroup NOTIFICATION-GROUP
    NOTIFICATIONS {{ busbarCommLost, busbarCommRestored }}
    STATUS current
    DESCRIPTION \"Communication notifications.\"
    ::= {{ busbarGroups 2 }}

busbarCompliance MODULE-COMPLIANCE
    STATUS current
    DESCRIPTION \"A Busbar bridge implements every object and notification.\"
    MODULE
        MANDATORY-GROUPS {{ busbarObjectGroup, busbarNotificationGroup }}
    ::= {{ busbarCompliances 1 }}

END",
        objects.join(",\n        ")
    );
    o
}

type ColumnText = (u32, String, Syntax, String, bool);

fn table_text(
    o: &mut String,
    prefix: &str,
    arc: u32,
    description: &str,
    index: &[(&str, &str)],
    columns: Vec<ColumnText>,
    objects: &mut Vec<String>,
) {
    let entry_type = format!("{}{}Entry", prefix[..1].to_uppercase(), &prefix[1..]);
    let _ = writeln!(
        o,
        "{prefix}Table OBJECT-TYPE
    SYNTAX SEQUENCE OF {entry_type}
    MAX-ACCESS not-accessible
    STATUS current
    DESCRIPTION \"{description}\"
    ::= {{ busbarObjects {arc} }}

{prefix}Entry OBJECT-TYPE
    SYNTAX {entry_type}
    MAX-ACCESS not-accessible
    STATUS current
    DESCRIPTION \"A row of {prefix}Table.\"
    INDEX {{ {} }}
    ::= {{ {prefix}Table 1 }}
",
        index.iter().map(|i| i.0).collect::<Vec<_>>().join(", ")
    );
    // The sequence lists this table's own index column (defined here) and its columns.
    let own_index: Vec<&(&str, &str)> = index.iter().filter(|i| !i.1.is_empty()).collect();
    let mut seq: Vec<String> = own_index.iter().map(|i| format!("{} Unsigned32", i.0)).collect();
    seq.extend(columns.iter().map(|c| {
        let s = match c.2 {
            Syntax::Quality | Syntax::CommStatus => "INTEGER".to_string(),
            s => syntax_text(s),
        };
        format!("{} {s}", c.1)
    }));
    let _ = writeln!(o, "{entry_type} ::= SEQUENCE {{\n    {}\n}}\n", seq.join(",\n    "));
    for (i, (name, desc)) in own_index.iter().enumerate() {
        let _ = writeln!(
            o,
            "{name} OBJECT-TYPE
    SYNTAX Unsigned32 (1..65535)
    MAX-ACCESS not-accessible
    STATUS current
    DESCRIPTION \"{desc}\"
    ::= {{ {prefix}Entry {} }}
",
            i + 1
        );
    }
    for (id, name, syntax, desc, writable) in columns {
        let access = if writable { "read-write" } else { "read-only" };
        let _ = writeln!(
            o,
            "{name} OBJECT-TYPE
    SYNTAX {}
    MAX-ACCESS {access}
    STATUS current
    DESCRIPTION \"{desc}\"
    ::= {{ {prefix}Entry {id} }}
",
            syntax_text(syntax)
        );
        objects.push(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Reading;
    use std::time::SystemTime;

    fn demo_mib() -> Mib {
        let ports = crate::demo::DemoPorts::default();
        let config = crate::demo::demo_config(ports.sim_gateway, &ports).unwrap_or_else(|e| panic!("{e}"));
        let store = Store::new(&config, 16);
        let all: Vec<(u32, Reading)> = (0..store.len() as u32)
            .map(|p| (p, Reading::Value(PointValue::Number(1.5), Quality::Good)))
            .collect();
        store.update(&all, SystemTime::now());
        Mib::build(&config, &default_root(), store)
    }

    #[test]
    fn getnext_visits_every_instance_in_order_and_agrees_with_get() {
        let mib = demo_mib();
        let mut at = mib.root.clone();
        let mut count = 0usize;
        while let Some((next, cell)) = mib.next(&at) {
            assert!(next > at, "{at:?} -> {next:?}");
            assert_eq!(mib.get(&next), Some(cell), "{next:?}");
            assert!(
                Mib::column_syntax(&next, &mib.root).is_some(),
                "{next:?} has a declared syntax"
            );
            at = next;
            count += 1;
        }
        // 3 site scalars + 16 devices x 6 columns + 7 columns per acquired point + family cells.
        let points = mib
            .tables
            .iter()
            .find(|t| t.kind == TableKind::Points)
            .map_or(0, |t| t.rows.len());
        assert!(count > 3 + 16 * 6 + points * 7, "{count} instances");
        // Walking from inside a table or past a column continues at the right place.
        let mut inside = mib.root.clone();
        inside.extend_from_slice(&[OBJECTS, POINT_TABLE, 1, 3, 2]);
        let n = mib.next(&inside).map(|x| x.0).unwrap_or_default();
        assert_eq!(
            n[..mib.root.len() + 4],
            [mib.root.as_slice(), &[OBJECTS, POINT_TABLE, 1, 3]].concat()
        );
        assert_eq!(n[mib.root.len() + 4], 2, "first point of device 2");
        let mut past = mib.root.clone();
        past.extend_from_slice(&[OBJECTS, 99]);
        assert_eq!(mib.next(&past), None, "end of the MIB view");
    }

    #[test]
    fn the_mib_text_declares_every_served_column() {
        let mib = demo_mib();
        let text = mib_text(&mib.root);
        for (_, name, _, _) in DEVICE_COLUMNS.iter().chain(POINT_COLUMNS) {
            assert!(text.contains(&format!("{name} OBJECT-TYPE")), "{name}");
        }
        for ft in FAMILY_TABLES {
            for c in ft.columns {
                assert!(
                    text.contains(&format!("{}{} OBJECT-TYPE", ft.prefix, c.name)),
                    "{}",
                    c.name
                );
            }
            if ft.block.is_some() {
                assert!(
                    ft.columns.iter().all(|c| c.id >= 2),
                    "arc 1 is the block index of {}",
                    ft.prefix
                );
            }
        }
        assert!(text.contains("::= { enterprises 32473 }"));
    }

    #[test]
    fn scales_keep_integer32_and_decimals() {
        assert_eq!(point_scale(Kind::Analog, Some((0.0, 460.0))), -3);
        assert_eq!(point_scale(Kind::Analog, Some((-4e6, 4e6))), -2);
        assert_eq!(point_scale(Kind::Analog, Some((0.0, 3e9))), 0);
        assert_eq!(point_scale(Kind::Counter, None), 0);
        assert_eq!(to_i32(f64::NAN), 0);
        assert_eq!(to_i32(1e12), i32::MAX);
        assert_eq!(quality_code(Quality::CommFailure), 4);
    }
}
