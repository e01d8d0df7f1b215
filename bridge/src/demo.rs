//! The demo site's bridge configuration (config/demo.yaml, compiled in) with the addresses
//! `busbar demo` is given. The simulator side of the demo lives in the `busbar` binary: this
//! library knows no simulator.

use crate::config::{parse_config, Config, Link};
use crate::sinks::influxdb::{InfluxDoc, InfluxSettings};
use std::net::SocketAddr;

/// config/demo.yaml, compiled in.
pub const DEMO_CONFIG: &str = include_str!("../../config/demo.yaml");

/// Where the demo listens.
#[derive(Debug, Clone)]
pub struct DemoPorts {
    pub sim_gateway: SocketAddr,
    pub sim_control: SocketAddr,
    pub modbus: SocketAddr,
    pub http: SocketAddr,
    pub opcua: SocketAddr,
    /// UDP.
    pub bacnet: SocketAddr,
    /// UDP.
    pub snmp: SocketAddr,
    /// Where SNMP v2c traps go (community `public`).
    pub snmp_traps: Vec<String>,
    /// Where SNMP v3 informs go (user `busbar` of the demo config).
    pub snmp_informs: Vec<String>,
    /// History to InfluxDB, if given.
    pub influxdb: Option<InfluxSettings>,
    /// The alarm journal (SQLite).
    pub alarm_journal: std::path::PathBuf,
}

impl Default for DemoPorts {
    fn default() -> Self {
        let at = |p| SocketAddr::from(([127, 0, 0, 1], p));
        DemoPorts {
            sim_gateway: at(15020),
            sim_control: at(8081),
            modbus: at(5020),
            http: at(8080),
            opcua: at(4840),
            bacnet: SocketAddr::from(([0, 0, 0, 0], 47808)),
            snmp: at(1161),
            snmp_traps: Vec::new(),
            snmp_informs: Vec::new(),
            influxdb: None,
            alarm_journal: std::env::temp_dir().join("busbar-demo").join("alarms.db"),
        }
    }
}

/// The demo config with the simulator's bound gateway and the chosen server addresses.
pub fn demo_config(sim_gateway: SocketAddr, ports: &DemoPorts) -> anyhow::Result<Config> {
    let profiles = busbar_core::profile::embedded::profiles().map_err(|d| anyhow::anyhow!("{d}"))?;
    let mut config = parse_config("<embedded>/config/demo.yaml", DEMO_CONFIG, &profiles, "<embedded>")
        .map_err(|d| anyhow::anyhow!("{d}"))?;
    for c in &mut config.connections {
        if let Link::Tcp { host, port, .. } = &mut c.link {
            *host = sim_gateway.ip().to_string();
            *port = sim_gateway.port();
        }
    }
    if let Some(m) = &mut config.servers.modbus {
        m.listen = ports.modbus;
    }
    if let Some(h) = &mut config.servers.http {
        h.listen = ports.http;
    }
    if let Some(b) = &mut config.servers.bacnet {
        b.listen = ports.bacnet;
        b.broadcast.set_port(ports.bacnet.port());
        if ports.bacnet.ip().is_loopback() {
            b.broadcast.set_ip(std::net::Ipv4Addr::new(127, 255, 255, 255));
        }
    }
    if let Some(s) = &mut config.servers.snmp {
        s.listen = ports.snmp;
        s.state_dir = std::env::temp_dir().join("busbar-demo-snmp");
        s.traps = ports
            .snmp_traps
            .iter()
            .map(|t| (t.clone(), "public".to_string()))
            .collect();
        if let Some(user) = s.users.iter().find(|u| u.name == "busbar").cloned() {
            s.informs = ports.snmp_informs.iter().map(|t| (t.clone(), user.clone())).collect();
        }
    }
    config.sinks.influxdb = ports.influxdb.clone();
    if let Some(a) = &mut config.alarms {
        a.journal = ports.alarm_journal.clone();
    }
    if let Some(o) = &mut config.servers.opcua {
        o.listen = ports.opcua;
        o.pki_dir = std::env::temp_dir().join("busbar-demo-pki");
    }
    Ok(config)
}

/// History settings from `busbar demo --influxdb URL`: a v1 URL names its database
/// (`http://host:8086?db=busbar`); without `?db=` it is the v2 API with org, bucket and token.
pub fn influx_from_url(
    url: &str,
    org: Option<String>,
    bucket: Option<String>,
    token: Option<String>,
    buffer_dir: std::path::PathBuf,
    quota_mb: f64,
) -> anyhow::Result<InfluxSettings> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let db = query.split('&').find_map(|kv| kv.strip_prefix("db="));
    let mut doc = InfluxDoc::new(base);
    match (db, org, bucket) {
        (Some(db), _, _) => doc.database = db.to_string(),
        (None, Some(org), Some(bucket)) => {
            doc.api = "v2".into();
            doc.org = org;
            doc.bucket = bucket;
        }
        _ => anyhow::bail!("--influxdb needs `?db=NAME` (InfluxDB 1.x) or --influx-org and --influx-bucket (2.x)"),
    }
    doc.token = token;
    doc.buffer_dir = buffer_dir.to_string_lossy().into_owned();
    doc.buffer_quota_mb = quota_mb;
    doc.resolve(std::path::Path::new("")).map_err(|wrong| {
        let flag = |key: &str| match key {
            "buffer_quota_mb" => "--history-quota-mb",
            _ => "--influxdb",
        };
        let text: Vec<String> = wrong.iter().map(|(k, m)| format!("{}: {m}", flag(k))).collect();
        anyhow::anyhow!("{}", text.join("; "))
    })
}
