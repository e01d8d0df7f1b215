//! The YAML form of a device profile, exactly as written in `profiles/*.yaml`.
//! Loading turns it into a [`super::Profile`] after validation.

use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

/// One profile file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileDoc {
    /// The profile's name, the file's stem (`socomec-diris-a40`). Configs refer to it.
    pub profile: Spanned<String>,
    pub manufacturer: String,
    pub model: String,
    pub family: Spanned<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub modbus: ModbusDoc,
    #[serde(default)]
    pub points: Vec<Spanned<PointDoc>>,
    #[serde(default)]
    pub blocks: Vec<Spanned<BlockDoc>>,
}

/// Facts about the device's Modbus behaviour that matter to a client.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ModbusDoc {
    /// 32/64-bit values must start at an even address (the map forbids odd boundaries).
    #[serde(default)]
    pub even_alignment: bool,
    /// The most registers one read may ask for (125 by the standard).
    #[serde(default = "default_max_read")]
    pub max_read_registers: u16,
    /// How many unmapped registers a read may span between mapped ones (served as 0).
    /// 0 = any unmapped register in a read answers exception 02, as most devices do.
    #[serde(default)]
    pub readable_gap: u16,
}

fn default_max_read() -> u16 {
    125
}

impl Default for ModbusDoc {
    fn default() -> Self {
        ModbusDoc {
            even_alignment: false,
            max_read_registers: default_max_read(),
            readable_gap: 0,
        }
    }
}

/// A repeated block: declared once, instantiated `count` times `stride` registers apart.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockDoc {
    /// Prefix of the point ids: block `tank` makes `tank1.volume`, `tank2.volume`, ...
    pub name: String,
    /// Human label of one instance, e.g. `Tank` (OPC UA folders say `Tank 3`).
    #[serde(default)]
    pub label: Option<String>,
    pub count: u16,
    /// Address distance between instance n and n+1, in registers (or bits for coil tables).
    pub stride: u16,
    pub points: Vec<Spanned<PointDoc>>,
}

/// One point and its encoding. For a block, `address` is the first instance's.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct PointDoc {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub unit: String,
    pub kind: String,
    #[serde(default)]
    pub access: Option<String>,
    #[serde(default)]
    pub table: Option<String>,
    pub address: AddressDoc,
    #[serde(rename = "type", default)]
    pub data_type: Option<String>,
    /// Word/byte order of multi-register values: ABCD (default), CDAB, BADC, DCBA.
    #[serde(default)]
    pub order: Option<String>,
    /// Bit index (0 = least significant) for `type: bit` inside a holding/input register.
    #[serde(default)]
    pub bit: Option<u8>,
    /// Registers of an `ascii` string.
    #[serde(default)]
    pub length: Option<u16>,
    /// engineering = raw * scale + offset
    #[serde(default)]
    pub scale: Option<f64>,
    #[serde(default)]
    pub offset: Option<f64>,
    /// Enum and bitmask labels: raw value (enum) or bit index (bitmask) -> label.
    #[serde(default)]
    pub labels: BTreeMap<i64, String>,
    /// Plausible range [min, max] in engineering units.
    #[serde(default)]
    pub range: Option<[f64; 2]>,
    /// A constant the device always serves (identification strings, SunSpec ids and scale
    /// factors).
    #[serde(default)]
    pub value: Option<ConstDoc>,
    /// States the device itself reports as abnormal (enum and binary points): raw value ->
    /// severity (`{ 1: minor, 2: critical }`). Each becomes an alarm with no configuration.
    #[serde(default)]
    pub alarm: BTreeMap<i64, String>,
}

/// An address written as a number or as hex text (`0x5000`).
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum AddressDoc {
    Number(i64),
    Text(String),
}

impl AddressDoc {
    pub fn resolve(&self) -> Result<u16, String> {
        let n = match self {
            AddressDoc::Number(n) => *n,
            AddressDoc::Text(t) => {
                let t = t.trim();
                if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                    i64::from_str_radix(hex, 16).map_err(|_| format!("bad hex address `{t}`"))?
                } else {
                    t.parse::<i64>().map_err(|_| format!("bad address `{t}`"))?
                }
            }
        };
        u16::try_from(n).map_err(|_| format!("address {n} is outside 0..=65535"))
    }
}

/// A constant value.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(untagged)]
pub enum ConstDoc {
    Number(f64),
    Text(String),
}
