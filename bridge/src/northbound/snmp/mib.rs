//! BUSBAR-MIB as data: the OID tree under the configured enterprise root, the value of every
//! instance from the store, GETNEXT order, and the SMIv2 text of the module — one definition for
//! the agent and the MIB file, so they cannot disagree. Quality -> busbarPointQuality is mapped
//! here, in [`quality_code`], and nowhere else. docs/snmp.md.

use crate::alarms::{AlarmView, Alarms, Level, Source};
use crate::config::Config;
use crate::store::{PointIdx, PointValue, Store};
use busbar_core::profile::Kind;
use busbar_core::quality::Quality;
use std::sync::Arc;

pub use super::mib_text::mib_text;
pub use super::tables::*;

/// A typed value before it becomes an SNMP value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i32),
    Counter(u32),
}
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
pub const ALARM_TABLE: u32 = 5;
/// busbarAlarmAckState, the alarm table's writable column.
pub const ALARM_ACKNOWLEDGED: u32 = 11;
/// Notifications under root.0.
pub const TRAP_COMM_LOST: u32 = 1;
pub const TRAP_COMM_RESTORED: u32 = 2;
pub const TRAP_ALARM_RAISED: u32 = 3;
pub const TRAP_ALARM_CLEARED: u32 = 4;
pub const TRAP_ALARM_ACKNOWLEDGED: u32 = 5;
/// busbarAlarmEvent: the objects alarm notifications carry (accessible-for-notify).
pub const ALARM_EVENT: u32 = 4;
/// (arc, descriptor, syntax, description) of busbarAlarmEvent's objects.
pub const ALARM_EVENT_OBJECTS: &[(u32, &str, &str, &str)] = &[
    (
        1,
        "busbarAlarmEventId",
        "DisplayString",
        "The alarm's id (`device/ats/source1_state`, `threshold/<rule>/<device>/<point>`).",
    ),
    (
        2,
        "busbarAlarmEventDevice",
        "DisplayString",
        "The device the alarm is about.",
    ),
    (
        3,
        "busbarAlarmEventSeverity",
        "Integer32 (1..1000)",
        "Severity on the 1..1000 scale (info 100, warning 300, minor 500, major 700, critical 900).",
    ),
    (4, "busbarAlarmEventMessage", "DisplayString", "The alarm's message."),
    (
        5,
        "busbarAlarmEventUser",
        "DisplayString",
        "Who acknowledged it (empty for what the engine does).",
    ),
    (
        6,
        "busbarAlarmEventTime",
        "DisplayString",
        "When the transition happened (RFC 3339, UTC).",
    ),
];

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

pub(super) const QUALITY_ENUM: &str =
    "good(1), stale(2), noValue(3), commFailure(4), outOfRange(5), decodeError(6), configError(7)";

/// Alarm source -> busbarAlarmSource, the one mapping for SNMP.
pub fn source_code(s: Source) -> i32 {
    match s {
        Source::Threshold => 1,
        Source::Device => 2,
        Source::Communication => 3,
        Source::Quality => 4,
    }
}

pub(super) const ALARM_SOURCE_ENUM: &str = "threshold(1), device(2), communication(3), quality(4)";

/// Alarm level -> busbarAlarmLevel (normal when there is none), the one mapping for SNMP.
pub fn level_code(l: Option<Level>) -> i32 {
    match l {
        None => 1,
        Some(Level::LowLow) => 2,
        Some(Level::Low) => 3,
        Some(Level::High) => 4,
        Some(Level::HighHigh) => 5,
        Some(Level::RateOfChange) => 6,
        Some(Level::Abnormal) => 7,
    }
}

pub(super) const ALARM_LEVEL_ENUM: &str =
    "normal(1), lowLow(2), low(3), high(4), highHigh(5), rateOfChange(6), abnormal(7)";

/// TruthValue: true(1), false(2).
fn truth(b: bool) -> Cell {
    Cell::Int(if b { 1 } else { 2 })
}

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
    /// The alarms that need attention: rows come from the alarm service at each request.
    Alarms,
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
    /// The alarm service (the alarm table is empty without one).
    pub alarms: Option<Arc<Alarms>>,
}

fn join(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut v = a.to_vec();
    v.extend_from_slice(b);
    v
}

impl Mib {
    pub fn build(config: &Config, root: &[u32], store: Arc<Store>, alarms: Option<Arc<Alarms>>) -> Mib {
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
                if ft.family != dev.profile.family {
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
        tables.push(Table {
            entry: join(&objects, &[ALARM_TABLE, 1]),
            kind: TableKind::Alarms,
            columns: ALARM_COLUMNS.iter().map(|c| c.0).collect(),
            rows: Vec::new(),
        });
        tables.sort_by(|a, b| a.entry.cmp(&b.entry));
        Mib {
            root: root.to_vec(),
            store,
            tables,
            scalars,
            scales,
            alarms,
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

    /// The alarm table's rows now (`device` is the position in `listed`).
    fn alarm_rows(&self) -> (Arc<Vec<AlarmView>>, Vec<Row>) {
        let listed = self.alarms.as_ref().map(|a| a.listed_now()).unwrap_or_default();
        let rows = listed
            .iter()
            .enumerate()
            .map(|(n, a)| Row {
                index: vec![a.number],
                device: n,
                point: None,
                block: None,
            })
            .collect();
        (listed, rows)
    }

    fn alarm_cell(&self, a: &AlarmView, column: u32) -> Option<Cell> {
        let time = |t: Option<std::time::SystemTime>| Cell::Text(t.map(busbar_core::time::rfc3339).unwrap_or_default());
        Some(match column {
            2 => Cell::Text(a.id.clone()),
            3 => Cell::Int(source_code(a.source)),
            4 => Cell::Text(a.device.clone()),
            5 => Cell::Text(a.point.clone()),
            6 => Cell::Int(i32::from(a.severity.number())),
            7 => Cell::Int(level_code(a.level)),
            8 => Cell::Text(a.value.map(|v| format!("{v}")).unwrap_or_default()),
            9 => Cell::Text(a.message.clone()),
            10 => truth(a.state.active),
            11 => truth(a.state.acknowledged),
            12 => time(
                a.state
                    .shelved_until_ms
                    .and_then(|ms| u64::try_from(ms).ok())
                    .map(|ms| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)),
            ),
            13 => truth(a.state.disabled),
            14 => time(a.changed),
            _ => return None,
        })
    }

    /// The listed alarm behind a busbarAlarmAckState instance.
    pub fn alarm_to_acknowledge(&self, oid: &[u32]) -> Option<AlarmView> {
        let t = self.tables.iter().find(|t| t.kind == TableKind::Alarms)?;
        let rest = oid.strip_prefix(t.entry.as_slice())?;
        let [ALARM_ACKNOWLEDGED, number] = rest else {
            return None;
        };
        let listed = self.alarms.as_ref()?.listed_now();
        let i = listed.binary_search_by_key(number, |a| a.number).ok()?;
        listed.get(i).cloned()
    }

    /// The profile's definition of point `p`.
    fn profile_point(&self, p: PointIdx) -> Option<&busbar_core::profile::Point> {
        let meta = self.store.meta(p)?;
        self.store.device_profile(meta.device)?.points.get(meta.profile_point)
    }

    /// The value of a cell, `None` if the instance does not exist.
    pub fn cell(&self, table: &Table, column: u32, row: &Row) -> Option<Cell> {
        match table.kind {
            TableKind::Alarms => None,
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
                let point = self.profile_point(p)?;
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
                    (syntax, unit) => {
                        let raw = value.and_then(PointValue::as_f64);
                        // A column with a unit is served in that unit, whatever the profile's;
                        // a count (no unit) as it is.
                        let v = match unit {
                            Some(unit) => {
                                let from = self.profile_point(p)?.unit;
                                raw.and_then(|v| from.convert(v, unit))
                            }
                            None => raw,
                        }
                        .unwrap_or(0.0);
                        Some(match syntax {
                            Syntax::Counter => Cell::Counter(v.clamp(0.0, f64::from(u32::MAX)) as u32),
                            Syntax::Decimal(n) => Cell::Int(to_i32(v * 10f64.powi(i32::from(n)))),
                            _ => return None,
                        })
                    }
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
                if t.kind == TableKind::Alarms {
                    let listed = self.alarms.as_ref()?.listed_now();
                    let [number] = index else { return None };
                    let i = listed.binary_search_by_key(number, |a| a.number).ok()?;
                    return self.alarm_cell(&listed[i], column);
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
            let found = if t.kind == TableKind::Alarms {
                let (listed, rows) = self.alarm_rows();
                self.next_in_table(t, &rows, oid, |column, row| {
                    self.alarm_cell(listed.get(row.device)?, column)
                })
            } else {
                self.next_in_table(t, &t.rows, oid, |column, row| self.cell(t, column, row))
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }

    fn next_in_table(
        &self,
        t: &Table,
        rows: &[Row],
        oid: &[u32],
        cell: impl Fn(u32, &Row) -> Option<Cell>,
    ) -> Option<(Vec<u32>, Cell)> {
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
                    rows.partition_point(|r| r.index.as_slice() <= index)
                }
                _ => 0,
            };
            for row in &rows[first_row..] {
                if let Some(c) = cell(column, row) {
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
            [OBJECTS, ALARM_TABLE, 1, c, ..] => ALARM_COLUMNS.iter().find(|x| x.0 == *c).map(|x| x.2),
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
        Mib::build(&config, &default_root(), store, None)
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
        for ft in FAMILY_TABLES.iter() {
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

    #[tokio::test]
    async fn the_alarm_table_lists_the_alarms_that_need_attention() {
        let ports = crate::demo::DemoPorts::default();
        let config = crate::demo::demo_config(ports.sim_gateway, &ports).unwrap_or_else(|e| panic!("{e}"));
        let store = Store::new(&config, 16);
        let settings = config.alarms.clone().unwrap_or_else(|| panic!("the demo has alarms"));
        let journal = crate::alarms::journal::Journal::in_memory().unwrap_or_else(|e| panic!("{e}"));
        let alarms = Alarms::with_journal(&config, store.clone(), &settings, journal).unwrap_or_else(|e| panic!("{e}"));
        let mib = Mib::build(&config, &default_root(), store, Some(alarms.clone()));
        let mut entry = mib.root.clone();
        entry.extend_from_slice(&[OBJECTS, ALARM_TABLE, 1]);
        assert_eq!(
            mib.next(&entry).map(|x| x.0[mib.root.len() + 1]),
            Some(10),
            "no row yet: the walk goes on to the family tables"
        );
        let all = alarms.all().await;
        let target = all.get(3).unwrap_or_else(|| panic!("alarms"));
        let actor = crate::alarms::Actor {
            user: "ann".into(),
            via: "test".into(),
            comment: String::new(),
        };
        alarms
            .act(&target.id, crate::alarms::Action::Disable, actor)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (oid, cell) = mib.next(&entry).unwrap_or_else(|| panic!("a row"));
        assert_eq!(oid, [entry.as_slice(), &[2, target.number]].concat());
        assert_eq!(cell, Cell::Text(target.id.clone()));
        let at = |column: u32| [entry.as_slice(), &[column, target.number]].concat();
        assert_eq!(mib.get(&at(13)), Some(Cell::Int(1)), "disabled: true");
        assert_eq!(mib.get(&at(10)), Some(Cell::Int(2)), "active: false");
        assert_eq!(mib.get(&at(3)), Some(Cell::Int(source_code(target.source))));
        assert_eq!(mib.alarm_to_acknowledge(&at(11)).map(|a| a.id), Some(target.id.clone()));
        assert_eq!(
            mib.alarm_to_acknowledge(&at(10)),
            None,
            "only busbarAlarmAckState is writable"
        );
        assert_eq!(mib.get(&[entry.as_slice(), &[2, target.number + 1]].concat()), None);
        assert!(Mib::column_syntax(&at(11), &mib.root).is_some());
        let actor = crate::alarms::Actor {
            user: "ann".into(),
            via: "test".into(),
            comment: String::new(),
        };
        alarms
            .act(&target.id, crate::alarms::Action::Enable, actor)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mib.get(&at(2)), None, "back in service and quiet: no longer a row");
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
