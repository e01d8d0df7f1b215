//! The bridge's configuration (one YAML file): the site, the connections (Modbus TCP gateways and
//! RTU buses), the devices behind them, the northbound servers. Parse, validate without IO
//! (every error with file, line and path), then resolve into [`Config`]. Unknown keys are
//! errors. Defaults are safe: servers bind 127.0.0.1, writes are off until enabled both globally
//! and per point. The key reference is docs/configuration.md.

use busbar_bacnet::ObjectId;
use busbar_core::diag::Diagnostics;
use busbar_core::profile::{Access, Profile, ProfileSet, WordOrder};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigDoc {
    site: SiteDoc,
    /// Profile directory, relative to this file (default: profiles/ beside its folder, else
    /// built-in). Read by [`profiles_dir_of`] before the profiles are loaded.
    #[serde(default, rename = "profiles_dir")]
    _profiles_dir: Option<String>,
    #[serde(default)]
    writes: WritesDoc,
    #[serde(default)]
    defaults: DefaultsDoc,
    connections: Vec<Spanned<ConnectionDoc>>,
    devices: Vec<Spanned<DeviceDoc>>,
    #[serde(default)]
    servers: ServersDoc,
    #[serde(default)]
    history: HistoryDoc,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HistoryDoc {
    #[serde(default)]
    influxdb: Option<Spanned<InfluxDoc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InfluxDoc {
    #[serde(default = "d_true")]
    pub(crate) enabled: bool,
    /// Base URL, e.g. http://127.0.0.1:8086.
    pub(crate) url: String,
    /// v1 (`/write`, InfluxDB 1.x and 3.x) or v2 (`/api/v2/write`, InfluxDB 2.x and 3.x).
    #[serde(default = "d_v1")]
    pub(crate) api: String,
    #[serde(default)]
    pub(crate) database: String,
    #[serde(default)]
    pub(crate) retention_policy: String,
    #[serde(default)]
    pub(crate) username: Option<String>,
    #[serde(default)]
    pub(crate) password: Option<String>,
    #[serde(default)]
    pub(crate) org: String,
    #[serde(default)]
    pub(crate) bucket: String,
    #[serde(default)]
    pub(crate) token: Option<String>,
    /// Store-and-forward buffer directory (relative to this file).
    #[serde(default = "d_history_buffer")]
    pub(crate) buffer_dir: String,
    #[serde(default = "d_quota_mb")]
    pub(crate) buffer_quota_mb: f64,
    /// Every point is written again at this interval even when unchanged (0: never).
    #[serde(default = "d_snapshot_s")]
    pub(crate) snapshot_interval_s: u64,
    #[serde(default = "d_batch_lines")]
    pub(crate) batch_lines: usize,
    #[serde(default = "d_batch_ms")]
    pub(crate) batch_interval_ms: u64,
    #[serde(default = "d_influx_timeout")]
    pub(crate) timeout_ms: u64,
}

/// The smallest buffer quota (64 KiB): a few segments.
const MIN_QUOTA_MB: f64 = 0.0625;

fn d_v1() -> String {
    "v1".into()
}
fn d_history_buffer() -> String {
    "history-buffer".into()
}
fn d_quota_mb() -> f64 {
    512.0
}
fn d_snapshot_s() -> u64 {
    300
}
fn d_batch_lines() -> usize {
    5000
}
fn d_batch_ms() -> u64 {
    1000
}
fn d_influx_timeout() -> u64 {
    10_000
}

impl InfluxDoc {
    /// A `history.influxdb` section naming only its URL: every other key at its default.
    pub(crate) fn new(url: &str) -> InfluxDoc {
        InfluxDoc {
            enabled: true,
            url: url.to_string(),
            api: d_v1(),
            database: String::new(),
            retention_policy: String::new(),
            username: None,
            password: None,
            org: String::new(),
            bucket: String::new(),
            token: None,
            buffer_dir: d_history_buffer(),
            buffer_quota_mb: d_quota_mb(),
            snapshot_interval_s: d_snapshot_s(),
            batch_lines: d_batch_lines(),
            batch_interval_ms: d_batch_ms(),
            timeout_ms: d_influx_timeout(),
        }
    }

    /// The settings this section gives (`buffer_dir` relative to `base`), or each key that is
    /// wrong with its reason.
    pub(crate) fn resolve(&self, base: &std::path::Path) -> Result<InfluxSettings, Vec<(&'static str, String)>> {
        let mut wrong = Vec::new();
        let api = match self.api.as_str() {
            "v1" => InfluxApi::V1,
            "v2" => InfluxApi::V2,
            other => {
                wrong.push(("api", format!("`{other}` is not v1 or v2")));
                InfluxApi::V1
            }
        };
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            wrong.push(("url", format!("`{}` is not an http(s) URL", self.url)));
        }
        match api {
            InfluxApi::V1 if self.database.is_empty() => wrong.push(("database", "the v1 API needs a database".into())),
            InfluxApi::V2 if self.org.is_empty() || self.bucket.is_empty() => {
                wrong.push(("org", "the v2 API needs org and bucket".into()))
            }
            _ => {}
        }
        let mb = self.buffer_quota_mb;
        if !(mb.is_finite() && (MIN_QUOTA_MB..=1e7).contains(&mb)) {
            wrong.push((
                "buffer_quota_mb",
                format!("{mb} is not a quota: give {MIN_QUOTA_MB} (64 KiB) to 10000000 (MB)"),
            ));
        }
        if !wrong.is_empty() {
            return Err(wrong);
        }
        let quota = (mb * 1024.0 * 1024.0) as u64;
        Ok(InfluxSettings {
            url: self.url.clone(),
            api,
            database: self.database.clone(),
            retention_policy: self.retention_policy.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            org: self.org.clone(),
            bucket: self.bucket.clone(),
            token: self.token.clone(),
            buffer_dir: base.join(&self.buffer_dir),
            buffer_quota_bytes: quota,
            segment_bytes: (quota / 8).clamp(4096, 256 * 1024),
            snapshot_interval: (self.snapshot_interval_s > 0)
                .then(|| Duration::from_secs(self.snapshot_interval_s.clamp(10, 86_400))),
            batch_lines: self.batch_lines.clamp(1, 1_000_000),
            batch_interval: Duration::from_millis(self.batch_interval_ms.clamp(10, 600_000)),
            timeout: Duration::from_millis(self.timeout_ms.clamp(100, 600_000)),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteDoc {
    name: String,
    id: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WritesDoc {
    #[serde(default)]
    enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultsDoc {
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
struct ConnectionDoc {
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
struct DeviceDoc {
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

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ServersDoc {
    #[serde(default)]
    modbus: Option<Spanned<ModbusServerDoc>>,
    #[serde(default)]
    http: Option<Spanned<HttpServerDoc>>,
    #[serde(default)]
    opcua: Option<Spanned<OpcUaServerDoc>>,
    #[serde(default)]
    bacnet: Option<Spanned<BacnetServerDoc>>,
    #[serde(default)]
    snmp: Option<Spanned<SnmpServerDoc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnmpServerDoc {
    #[serde(default = "d_true")]
    enabled: bool,
    #[serde(default = "d_snmp_listen")]
    listen: String,
    /// Root of BUSBAR-MIB. 1.3.6.1.4.1.32473 is reserved for documentation (RFC 5612): put
    /// your own enterprise number here and regenerate the MIB with `busbar export mib`.
    #[serde(default = "d_snmp_root")]
    enterprise_oid: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    location: String,
    /// Where the SNMPv3 engine id and boot counter are kept (relative to this file).
    #[serde(default = "d_snmp_state")]
    state_dir: String,
    #[serde(default)]
    communities: Vec<CommunityDoc>,
    #[serde(default)]
    users: Vec<SnmpUserDoc>,
    /// SNMPv2c traps.
    #[serde(default)]
    traps: Vec<TrapDoc>,
    /// SNMPv3 informs, retried until acknowledged.
    #[serde(default)]
    informs: Vec<InformDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommunityDoc {
    name: String,
    /// read (default) or write.
    #[serde(default = "d_read")]
    access: String,
    /// Source networks allowed to use it (CIDR); default 127.0.0.0/8 only.
    #[serde(default = "d_loopback")]
    sources: Vec<String>,
    /// OID subtrees it sees (default: the system group and the Busbar MIB).
    #[serde(default)]
    view: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnmpUserDoc {
    name: String,
    /// SHA-256 authentication passphrase (at least 8 characters).
    auth_key: String,
    /// AES-128 privacy passphrase; without it the user may authenticate but not encrypt.
    #[serde(default)]
    priv_key: Option<String>,
    #[serde(default = "d_read")]
    access: String,
    #[serde(default)]
    view: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrapDoc {
    target: String,
    #[serde(default = "d_public")]
    community: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InformDoc {
    target: String,
    /// One of `users`: its keys secure the inform.
    user: String,
}

fn d_snmp_listen() -> String {
    "127.0.0.1:1161".into()
}
fn d_snmp_root() -> String {
    "1.3.6.1.4.1.32473".into()
}
fn d_snmp_state() -> String {
    "state".into()
}
fn d_read() -> String {
    "read".into()
}
fn d_public() -> String {
    "public".into()
}
fn d_loopback() -> Vec<String> {
    vec!["127.0.0.0/8".into()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BacnetServerDoc {
    #[serde(default = "d_true")]
    enabled: bool,
    /// UDP address. Broadcast Who-Is only reaches a socket bound to 0.0.0.0.
    #[serde(default = "d_bacnet_listen")]
    listen: String,
    /// Where I-Am broadcasts go (default: 255.255.255.255, or 127.255.255.255 on loopback).
    #[serde(default)]
    broadcast: Option<String>,
    #[serde(default = "d_bacnet_instance")]
    device_instance: i64,
    /// Object_Name of the device (default: the site name).
    #[serde(default)]
    device_name: Option<String>,
    #[serde(default)]
    vendor_id: u16,
    #[serde(default)]
    location: String,
    #[serde(default)]
    description: String,
    /// Foreign devices (BMS on other subnets) that may register at once; 0 refuses them.
    #[serde(default = "d_foreign")]
    max_foreign_devices: usize,
    /// COV subscriptions held at once, all clients together.
    #[serde(default = "d_cov_subs")]
    max_cov_subscriptions: usize,
}

fn d_bacnet_listen() -> String {
    "0.0.0.0:47808".into()
}
fn d_bacnet_instance() -> i64 {
    100
}
fn d_foreign() -> usize {
    64
}
fn d_cov_subs() -> usize {
    10_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModbusServerDoc {
    #[serde(default = "d_true")]
    enabled: bool,
    #[serde(default = "d_modbus_listen")]
    listen: String,
    #[serde(default)]
    word_order: Option<String>,
    /// Serve the last value of an offline device (with its status block saying so) instead of
    /// exception 0B.
    #[serde(default)]
    serve_stale: bool,
    #[serde(default = "d_max_conn")]
    max_connections: usize,
    #[serde(default = "d_idle")]
    idle_timeout_s: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpcUaServerDoc {
    #[serde(default = "d_true")]
    enabled: bool,
    #[serde(default = "d_opcua_listen")]
    listen: String,
    /// Certificates: the server's own (made on first run) and the trusted clients' (trusted/).
    #[serde(default = "d_pki")]
    pki_dir: String,
    /// Offer the unsecured endpoint (SecurityPolicy None). Off by default.
    #[serde(default)]
    none_endpoint: bool,
    /// Accept anonymous sessions. Off by default.
    #[serde(default)]
    anonymous: bool,
    /// Trust any client certificate (demo only). Off by default.
    #[serde(default)]
    auto_trust: bool,
    /// Role of anonymous sessions: viewer (default) or operator.
    #[serde(default = "d_viewer")]
    anonymous_role: String,
    /// Samples kept per point for HistoryRead (an in-memory ring).
    #[serde(default = "d_history")]
    history_samples: usize,
    /// Monitored items one subscription may hold.
    #[serde(default = "d_max_items")]
    max_monitored_items: usize,
    #[serde(default)]
    users: Vec<UserDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserDoc {
    name: String,
    password: String,
    /// viewer (read, browse, subscribe) or operator (also write and call methods).
    #[serde(default = "d_viewer")]
    role: String,
}

fn d_viewer() -> String {
    "viewer".into()
}

fn d_opcua_listen() -> String {
    "127.0.0.1:4840".into()
}
fn d_max_items() -> usize {
    200_000
}
fn d_history() -> usize {
    1000
}
fn d_pki() -> String {
    "pki".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpServerDoc {
    #[serde(default = "d_true")]
    enabled: bool,
    #[serde(default = "d_http_listen")]
    listen: String,
    /// Bearer token required by `POST /api/points/{id}`; without it, HTTP writes are refused.
    #[serde(default)]
    token: Option<String>,
}

fn d_true() -> bool {
    true
}
fn d_modbus_listen() -> String {
    "127.0.0.1:5020".into()
}
fn d_http_listen() -> String {
    "127.0.0.1:8080".into()
}
fn d_max_conn() -> usize {
    64
}
fn d_idle() -> u64 {
    120
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

#[derive(Debug, Clone)]
pub struct ModbusServer {
    pub listen: SocketAddr,
    pub word_order: WordOrder,
    pub serve_stale: bool,
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

/// What an OPC UA session may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Read, browse, subscribe.
    Viewer,
    /// Also write and call methods.
    Operator,
}

impl Role {
    fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

/// A user of the OPC UA server.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub password: String,
    pub role: Role,
}

/// OPC UA server settings (`servers.opcua`).
#[derive(Debug, Clone)]
pub struct OpcUaSettings {
    pub listen: SocketAddr,
    pub pki_dir: std::path::PathBuf,
    /// Offer the unsecured endpoint (SecurityPolicy None).
    pub none_endpoint: bool,
    /// Accept anonymous sessions.
    pub anonymous: bool,
    /// Trust every client certificate (demo only).
    pub auto_trust: bool,
    pub anonymous_role: Role,
    pub users: Vec<User>,
    /// Samples kept per point for HistoryRead.
    pub history_samples: usize,
    /// Monitored items one subscription may hold.
    pub max_monitored_items: usize,
}

/// Which InfluxDB write API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfluxApi {
    V1,
    V2,
}

/// History sink settings (`history.influxdb`).
#[derive(Debug, Clone)]
pub struct InfluxSettings {
    pub url: String,
    pub api: InfluxApi,
    pub database: String,
    pub retention_policy: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub org: String,
    pub bucket: String,
    pub token: Option<String>,
    pub buffer_dir: std::path::PathBuf,
    pub buffer_quota_bytes: u64,
    /// A segment is sealed at this size (a quarter of a megabyte, less for a small quota).
    pub segment_bytes: u64,
    /// Every point is written again at this interval, changed or not, so that any time range
    /// of a dashboard starts with values.
    pub snapshot_interval: Option<Duration>,
    pub batch_lines: usize,
    pub batch_interval: Duration,
    pub timeout: Duration,
}

/// An IPv4 network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: std::net::Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (a, p) = text.split_once('/').unwrap_or((text, "32"));
        let prefix: u8 = p.parse().ok().filter(|p| *p <= 32)?;
        Some(Cidr {
            addr: a.parse().ok()?,
            prefix,
        })
    }
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let std::net::IpAddr::V4(ip) = ip else { return false };
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        };
        u32::from(ip) & mask == u32::from(self.addr) & mask
    }
}

/// Read-only or read-write SNMP access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnmpAccess {
    Read,
    Write,
}

#[derive(Debug, Clone)]
pub struct SnmpCommunity {
    pub name: String,
    pub access: SnmpAccess,
    pub sources: Vec<Cidr>,
    pub view: Vec<Vec<u32>>,
}

#[derive(Debug, Clone)]
pub struct SnmpUser {
    pub name: String,
    pub auth_key: String,
    pub priv_key: Option<String>,
    pub access: SnmpAccess,
    pub view: Vec<Vec<u32>>,
}

/// SNMP agent settings (`servers.snmp`).
#[derive(Debug, Clone)]
pub struct SnmpSettings {
    pub listen: SocketAddr,
    pub root: Vec<u32>,
    pub contact: String,
    pub location: String,
    pub state_dir: std::path::PathBuf,
    pub communities: Vec<SnmpCommunity>,
    pub users: Vec<SnmpUser>,
    /// (target, community) of v2c traps.
    pub traps: Vec<(String, String)>,
    /// (target, user) of v3 informs.
    pub informs: Vec<(String, SnmpUser)>,
}

/// A dotted OID (`1.3.6.1.4.1.32473`).
pub fn parse_oid(text: &str) -> Option<Vec<u32>> {
    let arcs: Option<Vec<u32>> = text
        .trim_start_matches('.')
        .split('.')
        .map(|a| a.parse().ok())
        .collect();
    arcs.filter(|a| a.len() >= 2)
}

/// BACnet/IP server settings (`servers.bacnet`).
#[derive(Debug, Clone)]
pub struct BacnetSettings {
    pub listen: SocketAddr,
    pub broadcast: std::net::SocketAddrV4,
    pub device_instance: u32,
    pub device_name: String,
    pub vendor_id: u16,
    pub location: String,
    pub description: String,
    pub max_foreign_devices: usize,
    pub max_cov_subscriptions: usize,
}

#[derive(Debug, Clone)]
pub struct HttpServer {
    pub listen: SocketAddr,
    pub token: Option<String>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub site_name: String,
    pub site_id: String,
    pub writes_enabled: bool,
    pub connections: Vec<Connection>,
    pub devices: Vec<Device>,
    pub modbus: Option<ModbusServer>,
    pub http: Option<HttpServer>,
    pub opcua: Option<OpcUaSettings>,
    pub bacnet: Option<BacnetSettings>,
    pub snmp: Option<SnmpSettings>,
    pub influxdb: Option<InfluxSettings>,
    /// Where the profiles came from.
    pub profiles_from: String,
}

/// Which profile directory a config names (relative to the config file), if any.
pub fn profiles_dir_of(file: &str, text: &str) -> Option<std::path::PathBuf> {
    #[derive(Deserialize)]
    struct Only {
        #[serde(default)]
        profiles_dir: Option<String>,
    }
    // Parsing just this key ignores the rest; errors are reported by the full parse.
    let only: Only = serde_saphyr::from_str(text).ok()?;
    let dir = only.profiles_dir?;
    let base = std::path::Path::new(file).parent().unwrap_or(std::path::Path::new("."));
    Some(base.join(dir))
}

/// Parse and validate a configuration against a profile set.
pub fn parse_config(file: &str, text: &str, profiles: &ProfileSet, profiles_from: &str) -> Result<Config, Diagnostics> {
    let text = crate::config_env::expand(file, text, |name| std::env::var(name).ok())?;
    let doc: ConfigDoc = serde_saphyr::from_str(&text).map_err(|e| Diagnostics::from_yaml_error(file, &e))?;
    let mut d = Diagnostics::default();
    let ms = |v: u64| Duration::from_millis(v);

    let mut connections = Vec::new();
    let mut conn_index = HashMap::new();
    for (i, sc) in doc.connections.iter().enumerate() {
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
        };
        if let Some(prev) = endpoints.insert(key.clone(), i) {
            let line = doc.connections[i].referenced.line();
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

    let defaults = &doc.defaults;
    let mut devices: Vec<Device> = Vec::new();
    let mut check = busbar_core::profile::DeviceListCheck::new(profiles);
    let mut units = HashMap::new();
    let mut north_units = Vec::new();
    for (i, sd) in doc.devices.iter().enumerate() {
        let dv = &sd.value;
        let line = sd.referenced.line();
        let path = format!("devices[{i}] ({})", dv.name);
        let Some(profile) = check.check(&mut d, file, line, &path, i, &dv.name, &dv.profile) else {
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
        north_units.push((modbus_unit_id, line, path.clone(), dv.name.clone()));
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
        let acquired: Vec<usize> = profile
            .points
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.block
                    .as_ref()
                    .is_none_or(|b| block_limit.get(b.name.as_str()).is_none_or(|&n| b.index <= n))
            })
            .map(|(k, _)| k)
            .collect();
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

    // Servers: every listen address claimed once.
    let mut claimed: HashMap<SocketAddr, &str> = HashMap::new();
    let mut claim = |d: &mut Diagnostics, what: &'static str, line: u64, text: &str| -> Option<SocketAddr> {
        match text.parse::<SocketAddr>() {
            Err(_) => {
                d.push(
                    file,
                    line,
                    format!("servers.{what}.listen"),
                    format!("`{text}` is not an address like 127.0.0.1:5020"),
                );
                None
            }
            Ok(a) => {
                if a.port() != 0 {
                    if let Some(other) = claimed.insert(a, what) {
                        d.push(
                            file,
                            line,
                            format!("servers.{what}.listen"),
                            format!("{a} is already claimed by the {other} server"),
                        );
                    }
                }
                Some(a)
            }
        }
    };
    let modbus = match &doc.servers.modbus {
        Some(s) if s.value.enabled => {
            let line = s.referenced.line();
            let word_order = match s.value.word_order.as_deref() {
                None => WordOrder::Abcd,
                Some(o) => WordOrder::parse(o).unwrap_or_else(|| {
                    d.push(
                        file,
                        line,
                        "servers.modbus.word_order",
                        format!("unknown word order `{o}` (ABCD, CDAB, BADC, DCBA)"),
                    );
                    WordOrder::Abcd
                }),
            };
            claim(&mut d, "modbus", line, &s.value.listen).map(|listen| ModbusServer {
                listen,
                word_order,
                serve_stale: s.value.serve_stale,
                max_connections: s.value.max_connections.max(1),
                idle_timeout: Duration::from_secs(s.value.idle_timeout_s.max(1)),
            })
        }
        _ => None,
    };
    if modbus.is_some() {
        let mut seen: HashMap<u8, String> = HashMap::new();
        for (unit, line, path, name) in &north_units {
            if *unit == 0 {
                d.push(
                    file,
                    *line,
                    path,
                    "more than 247 devices on one Modbus server: give this device a modbus_unit_id",
                );
            } else if let Some(other) = seen.insert(*unit, name.clone()) {
                d.push(
                    file,
                    *line,
                    path,
                    format!("northbound modbus unit id {unit} is already used by `{other}`"),
                );
            }
        }
    }
    let http = match &doc.servers.http {
        Some(s) if s.value.enabled => {
            let line = s.referenced.line();
            if s.value.token.as_deref().is_some_and(|t| t.len() < 16) {
                d.push(file, line, "servers.http.token", "a token needs at least 16 characters");
            }
            claim(&mut d, "http", line, &s.value.listen).map(|listen| HttpServer {
                listen,
                token: s.value.token.clone(),
            })
        }
        _ => None,
    };

    let opcua = match &doc.servers.opcua {
        Some(s) if s.value.enabled => {
            let line = s.referenced.line();
            let o = &s.value;
            if !o.anonymous && o.users.is_empty() {
                d.push(
                    file,
                    line,
                    "servers.opcua",
                    "no way in: allow `anonymous` or give `users`",
                );
            }
            let mut role = |what: String, text: &str| {
                Role::parse(text).unwrap_or_else(|| {
                    d.push(file, line, what, format!("role `{text}` is not viewer or operator"));
                    Role::Viewer
                })
            };
            let anonymous_role = role("servers.opcua.anonymous_role".into(), &o.anonymous_role);
            let users: Vec<User> = o
                .users
                .iter()
                .map(|u| User {
                    name: u.name.clone(),
                    password: u.password.clone(),
                    role: role(format!("servers.opcua.users ({})", u.name), &u.role),
                })
                .collect();
            for u in &o.users {
                if u.password.len() < 8 {
                    d.push(
                        file,
                        line,
                        format!("servers.opcua.users ({})", u.name),
                        "a password needs at least 8 characters",
                    );
                }
            }
            let base = std::path::Path::new(file).parent().unwrap_or(std::path::Path::new("."));
            claim(&mut d, "opcua", line, &o.listen).map(|listen| OpcUaSettings {
                listen,
                pki_dir: base.join(&o.pki_dir),
                none_endpoint: o.none_endpoint,
                anonymous: o.anonymous,
                auto_trust: o.auto_trust,
                anonymous_role,
                users,
                history_samples: o.history_samples.clamp(1, 1_000_000),
                max_monitored_items: o.max_monitored_items.clamp(1, 10_000_000),
            })
        }
        _ => None,
    };
    let bacnet = match &doc.servers.bacnet {
        Some(s) if s.value.enabled => {
            let line = s.referenced.line();
            bacnet_settings(&mut d, file, line, &s.value, &doc.site.name, &devices, &north_units)
        }
        _ => None,
    };
    let snmp = match &doc.servers.snmp {
        Some(s) if s.value.enabled => {
            let line = s.referenced.line();
            snmp_settings(&mut d, file, line, &s.value)
        }
        _ => None,
    };
    let influxdb = match &doc.history.influxdb {
        Some(h) if h.value.enabled => {
            let line = h.referenced.line();
            let base = std::path::Path::new(file).parent().unwrap_or(std::path::Path::new("."));
            match h.value.resolve(base) {
                Ok(settings) => Some(settings),
                Err(wrong) => {
                    for (key, message) in wrong {
                        d.push(file, line, format!("history.influxdb.{key}"), message);
                    }
                    None
                }
            }
        }
        _ => None,
    };
    let config = Config {
        influxdb,
        snmp,
        bacnet,
        site_name: doc.site.name,
        site_id: doc.site.id,
        writes_enabled: doc.writes.enabled,
        connections,
        devices,
        modbus,
        http,
        opcua,
        profiles_from: profiles_from.to_string(),
    };
    d.into_result(config)
}

/// `servers.snmp`.
fn snmp_settings(d: &mut Diagnostics, file: &str, line: u64, s: &SnmpServerDoc) -> Option<SnmpSettings> {
    let listen = match s.listen.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            d.push(
                file,
                line,
                "servers.snmp.listen",
                format!("`{}` is not an address like 127.0.0.1:1161", s.listen),
            );
            return None;
        }
    };
    let root = match parse_oid(&s.enterprise_oid) {
        Some(r) if r.starts_with(&[1, 3, 6, 1, 4, 1]) && r.len() >= 7 => r,
        _ => {
            d.push(
                file,
                line,
                "servers.snmp.enterprise_oid",
                format!(
                    "`{}` is not an OID under enterprises (1.3.6.1.4.1.N...)",
                    s.enterprise_oid
                ),
            );
            return None;
        }
    };
    let mut access = |what: String, text: &str| match text {
        "read" => SnmpAccess::Read,
        "write" => SnmpAccess::Write,
        other => {
            d.push(file, line, what, format!("access `{other}` is not read or write"));
            SnmpAccess::Read
        }
    };
    let mut communities = Vec::new();
    for c in &s.communities {
        let a = access(format!("servers.snmp.communities ({})", c.name), &c.access);
        communities.push((c, a));
    }
    let mut users = Vec::new();
    for u in &s.users {
        let a = access(format!("servers.snmp.users ({})", u.name), &u.access);
        users.push((u, a));
    }
    let view_of = |d: &mut Diagnostics, what: String, list: &[String]| -> Vec<Vec<u32>> {
        let mut out = Vec::new();
        for v in list {
            match parse_oid(v) {
                Some(o) => out.push(o),
                None => d.push(file, line, what.clone(), format!("view `{v}` is not an OID")),
            }
        }
        out
    };
    let communities: Vec<SnmpCommunity> = communities
        .into_iter()
        .map(|(c, access)| {
            let what = format!("servers.snmp.communities ({})", c.name);
            if c.name.is_empty() {
                d.push(file, line, what.clone(), "a community needs a name");
            }
            let sources = c
                .sources
                .iter()
                .filter_map(|t| {
                    let parsed = Cidr::parse(t);
                    if parsed.is_none() {
                        d.push(
                            file,
                            line,
                            what.clone(),
                            format!("source `{t}` is not an IPv4 network like 10.0.0.0/8"),
                        );
                    }
                    parsed
                })
                .collect();
            SnmpCommunity {
                name: c.name.clone(),
                access,
                sources,
                view: view_of(d, what, &c.view),
            }
        })
        .collect();
    let users: Vec<SnmpUser> = users
        .into_iter()
        .map(|(u, access)| {
            let what = format!("servers.snmp.users ({})", u.name);
            if u.auth_key.len() < 8 || u.priv_key.as_ref().is_some_and(|k| k.len() < 8) {
                d.push(file, line, what.clone(), "SNMPv3 keys need at least 8 characters");
            }
            SnmpUser {
                name: u.name.clone(),
                auth_key: u.auth_key.clone(),
                priv_key: u.priv_key.clone(),
                access,
                view: view_of(d, what, &u.view),
            }
        })
        .collect();
    let mut informs = Vec::new();
    for i in &s.informs {
        match users.iter().find(|u| u.name == i.user) {
            Some(u) => informs.push((i.target.clone(), u.clone())),
            None => d.push(
                file,
                line,
                "servers.snmp.informs",
                format!("user `{}` is not in servers.snmp.users", i.user),
            ),
        }
    }
    let base = std::path::Path::new(file).parent().unwrap_or(std::path::Path::new("."));
    Some(SnmpSettings {
        listen,
        root,
        contact: s.contact.clone(),
        location: s.location.clone(),
        state_dir: base.join(&s.state_dir),
        communities,
        users,
        traps: s
            .traps
            .iter()
            .map(|t| (t.target.clone(), t.community.clone()))
            .collect(),
        informs,
    })
}

/// `servers.bacnet`, and the uniqueness of every object instance it will serve.
fn bacnet_settings(
    d: &mut Diagnostics,
    file: &str,
    line: u64,
    b: &BacnetServerDoc,
    site_name: &str,
    devices: &[Device],
    device_lines: &[(u8, u64, String, String)],
) -> Option<BacnetSettings> {
    let listen = match b.listen.parse::<SocketAddr>() {
        Ok(a @ SocketAddr::V4(_)) => a,
        _ => {
            d.push(
                file,
                line,
                "servers.bacnet.listen",
                format!("`{}` is not an IPv4 address like 0.0.0.0:47808", b.listen),
            );
            return None;
        }
    };
    let broadcast_ip = match &b.broadcast {
        Some(text) => match text.parse::<std::net::Ipv4Addr>() {
            Ok(ip) => ip,
            Err(_) => {
                d.push(
                    file,
                    line,
                    "servers.bacnet.broadcast",
                    format!("`{text}` is not an IPv4 address like 192.168.1.255"),
                );
                return None;
            }
        },
        None if listen.ip().is_loopback() => std::net::Ipv4Addr::new(127, 255, 255, 255),
        None => std::net::Ipv4Addr::BROADCAST,
    };
    let device_instance = match u32::try_from(b.device_instance) {
        Ok(i) if i < ObjectId::MAX_INSTANCE => i,
        _ => {
            d.push(
                file,
                line,
                "servers.bacnet.device_instance",
                format!("{} is outside 0..{}", b.device_instance, ObjectId::MAX_INSTANCE),
            );
            return None;
        }
    };
    // Every served instance once: device bases apart, overrides clear of everything.
    let mut owner: HashMap<u32, String> = HashMap::new();
    for (dev, (_, dline, path, _)) in devices.iter().zip(device_lines) {
        if dev.profile.points.len() > BACNET_POINTS_PER_BASE as usize {
            d.push(
                file,
                *dline,
                path,
                format!(
                    "profile `{}` has more than 1000 points: give each a bacnet_instance",
                    dev.profile.name
                ),
            );
        }
        for &k in &dev.acquired {
            let instance = dev.bacnet_instance(k);
            let id = format!("{}/{}", dev.name, dev.profile.points[k].id);
            if let Some(other) = owner.insert(instance, id.clone()) {
                d.push(
                    file,
                    *dline,
                    path,
                    format!(
                        "BACnet instance {instance} of `{id}` is also `{other}`'s: set `bacnet_base` on one device \
                         or `bacnet_instance` on the point"
                    ),
                );
            }
        }
    }
    Some(BacnetSettings {
        broadcast: std::net::SocketAddrV4::new(broadcast_ip, listen.port()),
        listen,
        device_instance,
        device_name: b.device_name.clone().unwrap_or_else(|| site_name.to_string()),
        vendor_id: b.vendor_id,
        location: b.location.clone(),
        description: b.description.clone(),
        max_foreign_devices: b.max_foreign_devices.min(1024),
        max_cov_subscriptions: b.max_cov_subscriptions.clamp(1, 1_000_000),
    })
}

/// Read a config file and its profiles (its `profiles_dir`, else the usual places).
pub fn load_config(path: &std::path::Path, profiles_dir: Option<&std::path::Path>) -> Result<Config, Diagnostics> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        let mut d = Diagnostics::default();
        d.push(&file, 0, "", format!("cannot read config: {e}"));
        d
    })?;
    let named = profiles_dir_of(&file, &text);
    let explicit = profiles_dir.map(|p| p.to_path_buf()).or(named);
    let (profiles, from) = busbar_core::profile::resolve_profiles(explicit.as_deref(), Some(path))?;
    parse_config(&file, &text, &profiles, &from)
}
