//! `servers.snmp`: the section, its validation and the start.

use crate::component::{Component, Context, Endpoint, Resolve, Started};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The component.
pub struct Snmp;

/// `servers.snmp`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnmpDoc {
    #[serde(default = "crate::component::on")]
    enabled: bool,
    #[serde(default = "d_listen")]
    listen: String,
    /// Root of BUSBAR-MIB. 1.3.6.1.4.1.32473 is reserved for documentation (RFC 5612): put
    /// your own enterprise number here and regenerate the MIB with `busbar export mib`.
    #[serde(default = "d_root")]
    enterprise_oid: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    location: String,
    /// Where the SNMPv3 engine id and boot counter are kept (relative to this file).
    #[serde(default = "d_state")]
    state_dir: String,
    #[serde(default)]
    communities: Vec<CommunityDoc>,
    #[serde(default)]
    users: Vec<UserDoc>,
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
struct UserDoc {
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

fn d_listen() -> String {
    "127.0.0.1:1161".into()
}
fn d_root() -> String {
    "1.3.6.1.4.1.32473".into()
}
fn d_state() -> String {
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

/// An IPv4 network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
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
    pub fn contains(&self, ip: IpAddr) -> bool {
        let IpAddr::V4(ip) = ip else { return false };
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

/// SNMP agent settings.
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

fn access(cx: &mut Resolve<'_>, key: &str, text: &str) -> SnmpAccess {
    match text {
        "read" => SnmpAccess::Read,
        "write" => SnmpAccess::Write,
        other => {
            cx.error(key, format!("access `{other}` is not read or write"));
            SnmpAccess::Read
        }
    }
}

fn view(cx: &mut Resolve<'_>, key: &str, list: &[String]) -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    for v in list {
        match parse_oid(v) {
            Some(o) => out.push(o),
            None => cx.error(key, format!("view `{v}` is not an OID")),
        }
    }
    out
}

impl Component for Snmp {
    type Doc = SnmpDoc;
    type Settings = SnmpSettings;

    fn enabled(doc: &SnmpDoc) -> bool {
        doc.enabled
    }

    fn resolve(s: &SnmpDoc, cx: &mut Resolve<'_>) -> Option<SnmpSettings> {
        let Ok(listen) = s.listen.parse::<SocketAddr>() else {
            cx.error(
                "listen",
                format!("`{}` is not an address like 127.0.0.1:1161", s.listen),
            );
            return None;
        };
        let root = match parse_oid(&s.enterprise_oid) {
            Some(r) if r.starts_with(&[1, 3, 6, 1, 4, 1]) && r.len() >= 7 => r,
            _ => {
                cx.error(
                    "enterprise_oid",
                    format!(
                        "`{}` is not an OID under enterprises (1.3.6.1.4.1.N...)",
                        s.enterprise_oid
                    ),
                );
                return None;
            }
        };
        let mut communities = Vec::new();
        for c in &s.communities {
            let key = format!("communities ({})", c.name);
            let access = access(cx, &key, &c.access);
            if c.name.is_empty() {
                cx.error(&key, "a community needs a name");
            }
            let mut sources = Vec::new();
            for t in &c.sources {
                match Cidr::parse(t) {
                    Some(net) => sources.push(net),
                    None => cx.error(&key, format!("source `{t}` is not an IPv4 network like 10.0.0.0/8")),
                }
            }
            communities.push(SnmpCommunity {
                name: c.name.clone(),
                access,
                sources,
                view: view(cx, &key, &c.view),
            });
        }
        let mut users = Vec::new();
        for u in &s.users {
            let key = format!("users ({})", u.name);
            let access = access(cx, &key, &u.access);
            if u.auth_key.len() < 8 || u.priv_key.as_ref().is_some_and(|k| k.len() < 8) {
                cx.error(&key, "SNMPv3 keys need at least 8 characters");
            }
            users.push(SnmpUser {
                name: u.name.clone(),
                auth_key: u.auth_key.clone(),
                priv_key: u.priv_key.clone(),
                access,
                view: view(cx, &key, &u.view),
            });
        }
        let mut informs = Vec::new();
        for i in &s.informs {
            match users.iter().find(|u| u.name == i.user) {
                Some(u) => informs.push((i.target.clone(), u.clone())),
                None => cx.error("informs", format!("user `{}` is not in servers.snmp.users", i.user)),
            }
        }
        Some(SnmpSettings {
            listen,
            root,
            contact: s.contact.clone(),
            location: s.location.clone(),
            state_dir: cx.base_dir.join(&s.state_dir),
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

    async fn start(s: &SnmpSettings, cx: &Context) -> anyhow::Result<Started> {
        let (handle, tasks) = super::start(
            &cx.config,
            s,
            cx.store.clone(),
            cx.acq.clone(),
            cx.alarms.clone(),
            cx.shutdown.clone(),
        )
        .await?;
        Ok(Started {
            endpoint: Endpoint {
                name: "snmp",
                local: Some(handle.local),
                what: "snmp agent",
                detail: format!(
                    "udp {}  e.g. snmpbulkwalk -v2c -c public {} .1.3.6.1.4.1  (MIB: `busbar export mib`)",
                    handle.local, handle.local
                ),
            },
            tasks,
        })
    }
}
