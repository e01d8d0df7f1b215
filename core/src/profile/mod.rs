//! Device profiles: one YAML file per device model, shared by the simulator (which serves it)
//! and the bridge (which decodes it). See `docs/profiles.md` for the format.

pub mod embedded;
mod load;
pub mod schema;

pub use load::{load_dir, load_file, parse_profile, resolve_profiles};

use crate::units::Unit;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// The device family decides which behaviour model the simulator runs and which family tables a
/// northbound protocol fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Meter,
    TransferSwitch,
    InsulationMonitor,
    FaultLocator,
    TankGauge,
    OilSeparator,
    VapourRecovery,
    Charger,
    Breaker,
    PulseCounter,
    /// Busbar's own load manager (not a field device: served by the bridge, never simulated).
    LoadManager,
}

impl Family {
    pub const ALL: &'static [Family] = &[
        Family::Meter,
        Family::TransferSwitch,
        Family::InsulationMonitor,
        Family::FaultLocator,
        Family::TankGauge,
        Family::OilSeparator,
        Family::VapourRecovery,
        Family::Charger,
        Family::Breaker,
        Family::PulseCounter,
        Family::LoadManager,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Meter => "meter",
            Family::TransferSwitch => "transfer_switch",
            Family::InsulationMonitor => "insulation_monitor",
            Family::FaultLocator => "fault_locator",
            Family::TankGauge => "tank_gauge",
            Family::OilSeparator => "oil_separator",
            Family::VapourRecovery => "vapour_recovery",
            Family::Charger => "charger",
            Family::Breaker => "breaker",
            Family::PulseCounter => "pulse_counter",
            Family::LoadManager => "load_manager",
        }
    }

    pub fn parse(s: &str) -> Option<Family> {
        Family::ALL.iter().copied().find(|f| f.as_str() == s)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a point represents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A measured or set quantity.
    Analog,
    /// A monotonic accumulator (energy, volume, cycles); wraps only at the register's maximum.
    Counter,
    /// Two states: 0 / 1.
    Binary,
    /// One of the labelled values.
    Enum,
    /// A set of labelled bits.
    Bitmask,
    /// Text (identification).
    String,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "analog" => Kind::Analog,
            "counter" => Kind::Counter,
            "binary" => Kind::Binary,
            "enum" => Kind::Enum,
            "bitmask" => Kind::Bitmask,
            "string" => Kind::String,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Analog => "analog",
            Kind::Counter => "counter",
            Kind::Binary => "binary",
            Kind::Enum => "enum",
            Kind::Bitmask => "bitmask",
            Kind::String => "string",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    ReadWrite,
}

/// The four Modbus data tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// 0x coils, read with FC01, written with FC05/15.
    Coil,
    /// 1x discrete inputs, FC02.
    Discrete,
    /// 3x input registers, FC04.
    Input,
    /// 4x holding registers, FC03, written with FC06/16.
    Holding,
}

impl Table {
    pub fn parse(s: &str) -> Option<Table> {
        Some(match s {
            "coil" => Table::Coil,
            "discrete" => Table::Discrete,
            "input" => Table::Input,
            "holding" => Table::Holding,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Coil => "coil",
            Table::Discrete => "discrete",
            Table::Input => "input",
            Table::Holding => "holding",
        }
    }
    /// Bit tables hold single bits, register tables 16-bit words.
    pub fn is_bits(self) -> bool {
        matches!(self, Table::Coil | Table::Discrete)
    }
}

/// How a value sits in registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
    /// `length` registers, two characters each, high byte first, NUL padded.
    Ascii(u16),
    /// One bit: a coil or discrete input, or bit n of a register.
    Bit(u8),
}

impl DataType {
    /// A numeric type by name (`u16` .. `f64`).
    pub fn parse_numeric(t: &str) -> Option<DataType> {
        Some(match t {
            "u16" => DataType::U16,
            "i16" => DataType::I16,
            "u32" => DataType::U32,
            "i32" => DataType::I32,
            "u64" => DataType::U64,
            "i64" => DataType::I64,
            "f32" => DataType::F32,
            "f64" => DataType::F64,
            _ => return None,
        })
    }

    /// Registers occupied (1 for a bit).
    pub fn words(self) -> u16 {
        match self {
            DataType::U16 | DataType::I16 | DataType::Bit(_) => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
            DataType::U64 | DataType::I64 | DataType::F64 => 4,
            DataType::Ascii(n) => n,
        }
    }
    pub fn name(self) -> String {
        match self {
            DataType::U16 => "u16".into(),
            DataType::I16 => "i16".into(),
            DataType::U32 => "u32".into(),
            DataType::I32 => "i32".into(),
            DataType::U64 => "u64".into(),
            DataType::I64 => "i64".into(),
            DataType::F32 => "f32".into(),
            DataType::F64 => "f64".into(),
            DataType::Ascii(n) => format!("ascii[{n}]"),
            DataType::Bit(b) => format!("bit{b}"),
        }
    }
}

/// Word and byte order of multi-register values, named after the bytes of a 32-bit value
/// `A B C D` (most significant first) as they appear on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WordOrder {
    /// Big-endian words, high word first (Modbus convention, the default).
    #[default]
    Abcd,
    /// Low word first, bytes big-endian in each word.
    Cdab,
    /// High word first, bytes swapped in each word.
    Badc,
    /// Fully little-endian.
    Dcba,
}

impl WordOrder {
    pub fn parse(s: &str) -> Option<WordOrder> {
        Some(match s.to_ascii_uppercase().as_str() {
            "ABCD" | "BIG" => WordOrder::Abcd,
            "CDAB" | "LITTLE_WORDS" => WordOrder::Cdab,
            "BADC" => WordOrder::Badc,
            "DCBA" | "LITTLE" => WordOrder::Dcba,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            WordOrder::Abcd => "ABCD",
            WordOrder::Cdab => "CDAB",
            WordOrder::Badc => "BADC",
            WordOrder::Dcba => "DCBA",
        }
    }
}

/// Where and how a point is encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Register {
    pub table: Table,
    pub address: u16,
    pub data_type: DataType,
    pub order: WordOrder,
    /// engineering = raw * scale + offset
    pub scale: f64,
    pub offset: f64,
}

impl Register {
    /// A holding register description at address 0 (for encoding values outside a profile).
    pub fn plain(data_type: DataType, order: WordOrder, scale: f64) -> Register {
        Register {
            table: Table::Holding,
            address: 0,
            data_type,
            order,
            scale,
            offset: 0.0,
        }
    }

    /// The addresses occupied, as `start..end` (exclusive).
    pub fn span(&self) -> std::ops::Range<u32> {
        let start = u32::from(self.address);
        start..start + u32::from(self.data_type.words())
    }
}

/// A constant the device serves.
#[derive(Debug, Clone, PartialEq)]
pub enum Constant {
    Number(f64),
    Text(String),
}

/// The instance of a repeated block a point belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockRef {
    /// Block name (`tank`).
    pub name: String,
    /// Human label (`Tank`).
    pub label: String,
    /// 1-based instance.
    pub index: u16,
}

/// One point of a profile after block expansion.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Stable id within the device: `v1`, or `tank3.volume` for block points.
    pub id: String,
    /// The name inside its block (`volume`), equal to `id` outside blocks.
    pub name: String,
    pub block: Option<BlockRef>,
    pub description: String,
    pub unit: Unit,
    pub kind: Kind,
    pub access: Access,
    /// Enum: raw value -> label. Bitmask: bit -> label.
    pub labels: BTreeMap<i64, String>,
    /// States the device reports as abnormal: raw value -> severity (enum and binary points).
    pub alarm: BTreeMap<i64, crate::severity::Severity>,
    /// Plausible range in engineering units.
    pub range: Option<(f64, f64)>,
    pub constant: Option<Constant>,
    pub register: Register,
}

impl Point {
    pub fn is_writable(&self) -> bool {
        self.access == Access::ReadWrite
    }
}

/// A validated, expanded device profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub manufacturer: String,
    pub model: String,
    pub family: Family,
    pub description: String,
    pub even_alignment: bool,
    pub max_read_registers: u16,
    pub readable_gap: u16,
    pub points: Vec<Point>,
    /// Where the profile came from (for messages).
    pub source: String,
    index: HashMap<String, usize>,
}

impl Profile {
    pub fn point(&self, id: &str) -> Option<&Point> {
        self.index.get(id).map(|&i| &self.points[i])
    }

    pub fn point_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }
}

/// Every profile found in a directory, by name.
pub type ProfileSet = BTreeMap<String, std::sync::Arc<Profile>>;

/// The checks every file that lists devices makes (simulator scenarios, bridge configs): a
/// valid, unique device name and a known profile.
pub struct DeviceListCheck<'a> {
    profiles: &'a ProfileSet,
    names: HashMap<String, usize>,
}

impl<'a> DeviceListCheck<'a> {
    pub fn new(profiles: &'a ProfileSet) -> DeviceListCheck<'a> {
        DeviceListCheck {
            profiles,
            names: HashMap::new(),
        }
    }

    /// Check device `index` (`name`, `profile`) and return its profile when known.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &mut self,
        d: &mut crate::diag::Diagnostics,
        file: &str,
        line: u64,
        path: &str,
        index: usize,
        name: &str,
        profile: &str,
    ) -> Option<std::sync::Arc<Profile>> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            d.push(file, line, path, "device names use letters, digits, `_` and `-`");
        }
        if let Some(prev) = self.names.insert(name.to_string(), index) {
            d.push(
                file,
                line,
                path,
                format!("duplicate device name (first at devices[{prev}])"),
            );
        }
        let found = self.profiles.get(profile).cloned();
        if found.is_none() {
            let known: Vec<_> = self.profiles.keys().cloned().collect();
            d.push(
                file,
                line,
                path,
                format!("unknown profile `{profile}` (known: {})", known.join(", ")),
            );
        }
        found
    }
}
