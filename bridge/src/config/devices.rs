//! The southbound part of the configuration: `defaults`, `connections` and `devices`, checked
//! against the profiles.

use busbar_bacnet::ObjectId;
use busbar_core::diag::Diagnostics;
use busbar_core::profile::{Access, Profile, ProfileSet};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DefaultsDoc {
    #[serde(default = "d_poll")]
    poll_interval_ms: u64,
    #[serde(default = "d_timeout")]
    timeout_ms: u64,
    #[serde(default = "d_retries")]
    retries: u32,
    #[serde(default = "d_stale")]
    stale_after_polls: u32,
}

impl Default for DefaultsDoc {
    fn default() -> Self {
        DefaultsDoc {
            poll_interval_ms: d_poll(),
            timeout_ms: d_timeout(),
            retries: d_retries(),
            stale_after_polls: d_stale(),
        }
    }
}

fn d_poll() -> u64 {
    1000
}
fn d_timeout() -> u64 {
    1000
}
fn d_retries() -> u32 {
    1
}
fn d_stale() -> u32 {
    3
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConnectionDoc {
    name: String,
    #[serde(default)]
    tcp: Option<TcpDoc>,
    #[serde(default)]
    rtu: Option<busbar_modbus::rtu::SerialLineDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TcpDoc {
    host: String,
    port: u16,
    #[serde(default = "d_connect")]
    connect_timeout_ms: u64,
}

fn d_connect() -> u64 {
    2000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeviceDoc {
    name: String,
    profile: String,
    connection: String,
    unit_id: i64,
    #[serde(default)]
    poll_interval_ms: Option<u64>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    retries: Option<u32>,
    #[serde(default)]
    stale_after_polls: Option<u32>,
    /// Instances of each repeated block to acquire (default: all the profile declares).
    #[serde(default)]
    blocks: BTreeMap<String, u16>,
    /// Per-point overrides, by point id.
    #[serde(default)]
    points: BTreeMap<String, PointOverrideDoc>,
    /// Unit id of this device on the northbound Modbus server (default: config order from 1).
    #[serde(default)]
    modbus_unit_id: Option<i64>,
    /// BACnet object instances of this device's points are `bacnet_base * 1000 + point index`
    /// (default: derived from the device name, see [`default_bacnet_base`]).
    #[serde(default)]
    bacnet_base: Option<i64>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct PointOverrideDoc {
    #[serde(default)]
    range: Option<[f64; 2]>,
    #[serde(default)]
    writable: Option<bool>,
    /// Serve this point on the northbound Modbus server as a scaled i32 (raw = value / scale)
    /// instead of a float32.
    #[serde(default)]
    modbus_scale: Option<f64>,
    /// BACnet object instance of this point, instead of the device's rule.
    #[serde(default)]
    bacnet_instance: Option<i64>,
    /// BACnet COV_Increment (engineering units) instead of 0.1 % of the point's range.
    #[serde(default)]
    cov_increment: Option<f64>,
}

/// How a connection reaches its devices.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    Tcp {
        host: String,
        port: u16,
        connect_timeout: Duration,
    },
    Rtu(SerialLine),
    /// No field link: a device of the bridge itself (the load manager), whose writes are
    /// answered by the task that owns it ([`crate::acquisition::LocalWrites`]).
    Internal,
}

pub use busbar_modbus::rtu::SerialLine;

#[derive(Debug, Clone)]
pub struct Connection {
    pub name: String,
    pub link: Link,
}

/// A per-point setting from the config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointSettings {
    pub range: Option<(f64, f64)>,
    pub writable: bool,
    pub modbus_scale: Option<f64>,
    pub bacnet_instance: Option<u32>,
    pub cov_increment: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Device {
    pub name: String,
    pub profile: Arc<Profile>,
    pub connection: usize,
    pub unit_id: u8,
    pub poll_interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub stale_after_polls: u32,
    /// Indexes (into `profile.points`) of the points acquired.
    pub acquired: Vec<usize>,
    /// Settings by profile point index (only points with an override).
    pub settings: HashMap<usize, PointSettings>,
    pub modbus_unit_id: u8,
    pub bacnet_base: u32,
}

/// Largest device base of the BACnet instance rule (instances stay below 2^22 - 1).
pub const BACNET_MAX_BASE: u32 = 4193;
/// Points a profile may have for the instance rule (`base * 1000 + point index`).
pub const BACNET_POINTS_PER_BASE: u32 = 1000;

/// The default BACnet base of a device: FNV-1a of its name, folded into 1..=4000. It depends on
/// the name only, so adding, removing or reordering other devices never moves it; two names
/// that fold alike are reported by `busbar check` (give one a `bacnet_base`).
pub fn default_bacnet_base(name: &str) -> u32 {
    let mut h: u32 = 0x811C_9DC5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    1 + h % 4000
}

impl Device {
    /// The BACnet object instance of profile point `k`: the per-point override, else
    /// `bacnet_base * 1000 + k`.
    pub fn bacnet_instance(&self, k: usize) -> u32 {
        self.settings
            .get(&k)
            .and_then(|s| s.bacnet_instance)
            .unwrap_or(self.bacnet_base * BACNET_POINTS_PER_BASE + k as u32)
    }

    /// The plausible range of a point: the config's override, else the profile's.
    pub fn range(&self, point: usize) -> Option<(f64, f64)> {
        self.settings
            .get(&point)
            .and_then(|s| s.range)
            .or_else(|| self.profile.points.get(point).and_then(|p| p.range))
    }
}

/// `connections`: each with exactly one link; one connection per gateway or serial port.
pub(super) fn connections(
    file: &str,
    docs: &[Spanned<ConnectionDoc>],
    d: &mut Diagnostics,
) -> (Vec<Connection>, HashMap<String, usize>) {
    let ms = |v: u64| Duration::from_millis(v);
    let mut connections = Vec::new();
    let mut conn_index = HashMap::new();
    for (i, sc) in docs.iter().enumerate() {
        let c = &sc.value;
        let line = sc.referenced.line();
        let path = format!("connections[{i}] ({})", c.name);
        if conn_index.insert(c.name.clone(), i).is_some() {
            d.push(file, line, &path, "duplicate connection name");
        }
        let link = match (&c.tcp, &c.rtu) {
            (Some(t), None) => {
                if t.host.is_empty() {
                    d.push(file, line, &path, "tcp.host is empty");
                }
                Link::Tcp {
                    host: t.host.clone(),
                    port: t.port,
                    connect_timeout: ms(t.connect_timeout_ms.max(1)),
                }
            }
            (None, Some(r)) => {
                let (serial, problems) = r.resolve();
                for problem in problems {
                    d.push(file, line, &path, format!("rtu.{problem}"));
                }
                Link::Rtu(serial)
            }
            _ => {
                d.push(file, line, &path, "a connection needs exactly one of `tcp` or `rtu`");
                Link::Tcp {
                    host: String::new(),
                    port: 0,
                    connect_timeout: ms(1),
                }
            }
        };
        connections.push(Connection {
            name: c.name.clone(),
            link,
        });
    }
    // Two connections to one gateway would break the one-request-at-a-time rule.
    let mut endpoints = HashMap::new();
    for (i, c) in connections.iter().enumerate() {
        let key = match &c.link {
            Link::Tcp { host, port, .. } => format!("{host}:{port}"),
            Link::Rtu(serial) => serial.device.clone(),
            // Only the load manager makes one, after this check.
            Link::Internal => continue,
        };
        if let Some(prev) = endpoints.insert(key.clone(), i) {
            let line = docs[i].referenced.line();
            d.push(
                file,
                line,
                format!("connections[{i}] ({})", c.name),
                format!(
                    "{key} is already used by `{}`: devices behind one gateway share one connection",
                    connections[prev].name
                ),
            );
        }
    }

    (connections, conn_index)
}

/// `devices`: each on a known connection and profile, with its unit ids, blocks, overrides and
/// timing; also the line and path of each device kept, for later sections' errors.
#[allow(clippy::too_many_arguments)]
pub(super) fn devices(
    file: &str,
    docs: &[Spanned<DeviceDoc>],
    defaults: &DefaultsDoc,
    connections: &[Connection],
    conn_index: &HashMap<String, usize>,
    profiles: &ProfileSet,
    d: &mut Diagnostics,
) -> (Vec<Device>, Vec<(u64, String)>) {
    let ms = |v: u64| Duration::from_millis(v);
    let mut devices: Vec<Device> = Vec::new();
    let mut lines = Vec::new();
    let mut check = busbar_core::profile::DeviceListCheck::new(profiles);
    let mut units = HashMap::new();
    for (i, sd) in docs.iter().enumerate() {
        let dv = &sd.value;
        let line = sd.referenced.line();
        let path = format!("devices[{i}] ({})", dv.name);
        let Some(profile) = check.check(d, file, line, &path, i, &dv.name, &dv.profile) else {
            continue;
        };
        let connection = match conn_index.get(&dv.connection) {
            Some(&c) => c,
            None => {
                d.push(file, line, &path, format!("unknown connection `{}`", dv.connection));
                0
            }
        };
        let is_rtu = matches!(connections.get(connection).map(|c| &c.link), Some(Link::Rtu { .. }));
        let valid_unit = if is_rtu { 1..=247 } else { 0..=255 };
        let unit_id = match u8::try_from(dv.unit_id) {
            Ok(u) if valid_unit.contains(&i64::from(u)) => u,
            _ => {
                d.push(
                    file,
                    line,
                    &path,
                    format!(
                        "unit_id {} is outside {}..={}",
                        dv.unit_id,
                        valid_unit.start(),
                        valid_unit.end()
                    ),
                );
                1
            }
        };
        if let Some(other) = units.insert((connection, unit_id), dv.name.clone()) {
            d.push(
                file,
                line,
                &path,
                format!(
                    "unit id {unit_id} is already used by `{other}` on connection `{}`",
                    dv.connection
                ),
            );
        }
        // Checked below, once we know whether the Modbus server is enabled.
        let modbus_unit_id = match dv.modbus_unit_id {
            None => u8::try_from(i + 1).ok().filter(|u| *u <= 247).unwrap_or(0),
            Some(u) => match u8::try_from(u) {
                Ok(u) if (1..=247).contains(&u) => u,
                _ => {
                    d.push(file, line, &path, format!("modbus_unit_id {u} is outside 1..=247"));
                    1
                }
            },
        };
        let bacnet_base = match dv.bacnet_base {
            None => default_bacnet_base(&dv.name),
            Some(b) => match u32::try_from(b) {
                Ok(b) if (1..=BACNET_MAX_BASE).contains(&b) => b,
                _ => {
                    d.push(
                        file,
                        line,
                        &path,
                        format!("bacnet_base {b} is outside 1..={BACNET_MAX_BASE}"),
                    );
                    1
                }
            },
        };
        let acquired = acquired_points(file, line, &path, dv, &profile, d);
        let settings = point_settings(file, line, &path, dv, &profile, d);
        let poll = dv.poll_interval_ms.unwrap_or(defaults.poll_interval_ms);
        let timeout = dv.timeout_ms.unwrap_or(defaults.timeout_ms);
        if !(10..=3_600_000).contains(&poll) {
            d.push(
                file,
                line,
                &path,
                format!("poll_interval_ms {poll} is outside 10..=3600000"),
            );
        }
        if !(10..=60_000).contains(&timeout) {
            d.push(file, line, &path, format!("timeout_ms {timeout} is outside 10..=60000"));
        }
        lines.push((line, path));
        devices.push(Device {
            name: dv.name.clone(),
            profile: profile.clone(),
            connection,
            unit_id,
            poll_interval: ms(poll),
            timeout: ms(timeout),
            retries: dv.retries.unwrap_or(defaults.retries).min(10),
            stale_after_polls: dv.stale_after_polls.unwrap_or(defaults.stale_after_polls).max(1),
            acquired,
            settings,
            modbus_unit_id,
            bacnet_base,
        });
    }
    (devices, lines)
}

/// The profile points a device acquires: all but the block instances beyond the configured
/// counts.
fn acquired_points(
    file: &str,
    line: u64,
    path: &str,
    dv: &DeviceDoc,
    profile: &Profile,
    d: &mut Diagnostics,
) -> Vec<usize> {
    // Block instances to acquire.
    let mut block_limit: HashMap<&str, u16> = HashMap::new();
    for (block, count) in &dv.blocks {
        let declared = profile
            .points
            .iter()
            .filter_map(|p| p.block.as_ref())
            .filter(|b| &b.name == block)
            .map(|b| b.index)
            .max();
        match declared {
            None => d.push(
                file,
                line,
                format!("{path}.blocks.{block}"),
                format!("profile `{}` has no block `{block}`", profile.name),
            ),
            Some(max) if *count > max => d.push(
                file,
                line,
                format!("{path}.blocks.{block}"),
                format!("{count} instances, the profile declares {max}"),
            ),
            Some(_) => {
                block_limit.insert(block.as_str(), *count);
            }
        }
    }
    profile
        .points
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.block
                .as_ref()
                .is_none_or(|b| block_limit.get(b.name.as_str()).is_none_or(|&n| b.index <= n))
        })
        .map(|(k, _)| k)
        .collect()
}

/// The per-point overrides of a device, by profile point index.
fn point_settings(
    file: &str,
    line: u64,
    path: &str,
    dv: &DeviceDoc,
    profile: &Profile,
    d: &mut Diagnostics,
) -> HashMap<usize, PointSettings> {
    let mut settings = HashMap::new();
    for (pid, o) in &dv.points {
        let ppath = format!("{path}.points.{pid}");
        let Some(k) = profile.point_index(pid) else {
            d.push(
                file,
                line,
                &ppath,
                format!("profile `{}` has no point `{pid}`", profile.name),
            );
            continue;
        };
        let p = &profile.points[k];
        if o.writable == Some(true) && p.access != Access::ReadWrite {
            d.push(
                file,
                line,
                &ppath,
                format!("`{pid}` is read-only in profile `{}`", profile.name),
            );
        }
        let range = match o.range {
            Some([lo, hi]) if lo.is_finite() && hi.is_finite() && lo <= hi => Some((lo, hi)),
            Some([lo, hi]) => {
                d.push(
                    file,
                    line,
                    &ppath,
                    format!("range [{lo}, {hi}] must be two finite numbers, min <= max"),
                );
                None
            }
            None => None,
        };
        if let Some(s) = o.modbus_scale {
            if !s.is_finite() || s == 0.0 {
                d.push(file, line, &ppath, "modbus_scale must be a finite, non-zero number");
            }
        }
        if o.cov_increment.is_some_and(|c| !c.is_finite() || c < 0.0) {
            d.push(file, line, &ppath, "cov_increment must be a finite number >= 0");
        }
        let bacnet_instance = o.bacnet_instance.and_then(|i| match u32::try_from(i) {
            Ok(i) if i < ObjectId::MAX_INSTANCE => Some(i),
            _ => {
                d.push(
                    file,
                    line,
                    &ppath,
                    format!("bacnet_instance {i} is outside 0..{}", ObjectId::MAX_INSTANCE),
                );
                None
            }
        });
        settings.insert(
            k,
            PointSettings {
                range,
                writable: o.writable.unwrap_or(false),
                modbus_scale: o.modbus_scale,
                bacnet_instance,
                cov_increment: o.cov_increment,
            },
        );
    }
    settings
}
