//! The northbound Modbus register layout: one unit id per device, a status block, then every
//! point of the device's profile in profile order (so a device's layout depends only on its
//! profile and options, never on other devices or block counts). docs/modbus-map.md.

use crate::config::Config;
use crate::store::{PointIdx, Store};
use busbar_core::profile::{DataType, Kind, WordOrder};
use serde::Serialize;

/// Status block: registers 0..STATUS_LEN of every unit.
pub const STATUS_LEN: u16 = 8;
/// First register of the points.
pub const POINTS_START: u16 = 100;

/// How a point is served.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Encoding {
    /// IEEE-754 single, 2 registers, in the server's word order. NaN when there is no usable value.
    Float32,
    /// Signed 32-bit, raw = value / scale (configured per point).
    Int32 { scale: f64 },
    /// Unsigned 32-bit counter, raw = value / resolution (the profile's scale), wraps.
    Uint32 { resolution: f64 },
    /// Unsigned 64-bit counter.
    Uint64 { resolution: f64 },
    /// ASCII text, two characters per register.
    Ascii { registers: u16 },
}

impl Encoding {
    pub fn words(&self) -> u16 {
        match self {
            Encoding::Float32 | Encoding::Int32 { .. } | Encoding::Uint32 { .. } => 2,
            Encoding::Uint64 { .. } => 4,
            Encoding::Ascii { registers } => *registers,
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            Encoding::Float32 => "float32",
            Encoding::Int32 { .. } => "int32",
            Encoding::Uint32 { .. } => "uint32",
            Encoding::Uint64 { .. } => "uint64",
            Encoding::Ascii { .. } => "ascii",
        }
    }
    pub fn scale(&self) -> f64 {
        match self {
            Encoding::Int32 { scale } => *scale,
            Encoding::Uint32 { resolution } | Encoding::Uint64 { resolution } => *resolution,
            _ => 1.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub point: PointIdx,
    pub address: u16,
    pub encoding: Encoding,
}

#[derive(Debug, Clone)]
pub struct DeviceMap {
    pub device: usize,
    pub unit_id: u8,
    pub entries: Vec<Entry>,
    /// One past the last point register.
    pub end: u32,
}

impl DeviceMap {
    /// Entries overlapping `address..address+count`.
    pub fn overlapping(&self, address: u16, count: u16) -> impl Iterator<Item = &Entry> {
        let (start, end) = (u32::from(address), u32::from(address) + u32::from(count));
        let first = self
            .entries
            .partition_point(|e| u32::from(e.address) + u32::from(e.encoding.words()) <= start);
        self.entries[first..]
            .iter()
            .take_while(move |e| u32::from(e.address) < end)
    }
}

/// The whole server's map: `by_unit[unit]` is the device map index.
#[derive(Debug, Clone)]
pub struct ModbusMap {
    pub devices: Vec<DeviceMap>,
    pub by_unit: Vec<Option<usize>>,
    pub word_order: WordOrder,
}

/// Lay out every device.
pub fn build(config: &Config, store: &Store, word_order: WordOrder) -> ModbusMap {
    let mut devices = Vec::new();
    let mut by_unit = vec![None; 256];
    for (d, dev) in config.devices.iter().enumerate() {
        let mut address = u32::from(POINTS_START);
        let mut entries = Vec::new();
        for (k, p) in dev.profile.points.iter().enumerate() {
            let Some(point) = store.point_of(d, k) else { continue };
            let encoding = match (p.kind, p.register.data_type) {
                (Kind::String, DataType::Ascii(n)) => Encoding::Ascii { registers: n },
                (Kind::Counter, DataType::U64 | DataType::I64) => Encoding::Uint64 {
                    resolution: p.register.scale.abs(),
                },
                (Kind::Counter, _) => Encoding::Uint32 {
                    resolution: p.register.scale.abs(),
                },
                _ => match dev.settings.get(&k).and_then(|s| s.modbus_scale) {
                    Some(scale) => Encoding::Int32 { scale },
                    None => Encoding::Float32,
                },
            };
            let words = u32::from(encoding.words());
            if address + words > 65536 {
                tracing::warn!(device = %dev.name, point = %p.id, "northbound modbus map full: point not served");
                break;
            }
            entries.push(Entry {
                point,
                address: address as u16,
                encoding,
            });
            address += words;
        }
        by_unit[usize::from(dev.modbus_unit_id)] = Some(devices.len());
        devices.push(DeviceMap {
            device: d,
            unit_id: dev.modbus_unit_id,
            entries,
            end: address,
        });
    }
    ModbusMap {
        devices,
        by_unit,
        word_order,
    }
}

/// The map as CSV or Markdown, for SCADA engineers to import.
pub fn export(map: &ModbusMap, config: &Config, store: &Store, markdown: bool) -> String {
    let mut rows = vec![[
        "unit_id",
        "device",
        "address",
        "registers",
        "type",
        "word_order",
        "scale",
        "unit",
        "point_id",
        "writable",
        "description",
    ]
    .map(String::from)
    .to_vec()];
    for dm in &map.devices {
        let dev = &config.devices[dm.device];
        let status = [
            (0u16, 1u16, "uint16", "comm_status", "1 online, 0 offline or never read"),
            (
                1,
                1,
                "uint16",
                "points_not_good",
                "points of this device whose quality is not good",
            ),
            (
                2,
                2,
                "uint32",
                "age_s",
                "seconds since the last good read (4294967295 = never)",
            ),
            (4, 2, "uint32", "consecutive_failures", "failed polls in a row"),
            (6, 1, "uint16", "points_acquired", "points this device acquires"),
        ];
        for (a, n, t, name, desc) in status {
            rows.push(vec![
                dm.unit_id.to_string(),
                dev.name.clone(),
                a.to_string(),
                n.to_string(),
                t.into(),
                "ABCD".into(),
                "1".into(),
                String::new(),
                format!("{}/_status.{name}", dev.name),
                "no".into(),
                desc.into(),
            ]);
        }
        for e in &dm.entries {
            let Some(meta) = store.meta(e.point) else { continue };
            let p = &dev.profile.points[meta.profile_point];
            rows.push(vec![
                dm.unit_id.to_string(),
                dev.name.clone(),
                e.address.to_string(),
                e.encoding.words().to_string(),
                e.encoding.name().into(),
                if matches!(e.encoding, Encoding::Ascii { .. }) {
                    "".into()
                } else {
                    map.word_order.as_str().into()
                },
                e.encoding.scale().to_string(),
                p.unit.symbol().into(),
                meta.id.clone(),
                if meta.writable { "yes" } else { "no" }.into(),
                p.description.clone(),
            ]);
        }
    }
    if markdown {
        let mut out = String::new();
        for (i, r) in rows.iter().enumerate() {
            out.push_str(&format!(
                "| {} |\n",
                r.iter().map(|c| c.replace('|', "/")).collect::<Vec<_>>().join(" | ")
            ));
            if i == 0 {
                out.push_str(&format!("|{}\n", "---|".repeat(r.len())));
            }
        }
        out
    } else {
        let quote = |c: &String| {
            if c.contains([',', '"', '\n']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        };
        rows.iter()
            .map(|r| r.iter().map(quote).collect::<Vec<_>>().join(",") + "\n")
            .collect()
    }
}
