//! `servers.opcua`: the section, its validation and the start.

use crate::component::{Component, Context, Endpoint, Resolve, Started};
use serde::Deserialize;
use std::net::SocketAddr;

/// The component.
pub struct OpcUa;

/// `servers.opcua`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpcUaDoc {
    #[serde(default = "crate::component::on")]
    enabled: bool,
    #[serde(default = "d_listen")]
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
fn d_listen() -> String {
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

/// OPC UA server settings.
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

impl Component for OpcUa {
    type Doc = OpcUaDoc;
    type Settings = OpcUaSettings;

    fn enabled(doc: &OpcUaDoc) -> bool {
        doc.enabled
    }

    fn resolve(o: &OpcUaDoc, cx: &mut Resolve<'_>) -> Option<OpcUaSettings> {
        if !o.anonymous && o.users.is_empty() {
            cx.error("", "no way in: allow `anonymous` or give `users`");
        }
        let role = |cx: &mut Resolve<'_>, key: String, text: &str| {
            Role::parse(text).unwrap_or_else(|| {
                cx.error(&key, format!("role `{text}` is not viewer or operator"));
                Role::Viewer
            })
        };
        let anonymous_role = role(cx, "anonymous_role".into(), &o.anonymous_role);
        let users: Vec<User> = o
            .users
            .iter()
            .map(|u| User {
                name: u.name.clone(),
                password: u.password.clone(),
                role: role(cx, format!("users ({})", u.name), &u.role),
            })
            .collect();
        for u in &o.users {
            if u.password.len() < 8 {
                cx.error(&format!("users ({})", u.name), "a password needs at least 8 characters");
            }
        }
        let pki_dir = cx.base_dir.join(&o.pki_dir);
        cx.claim_tcp(&o.listen).map(|listen| OpcUaSettings {
            listen,
            pki_dir,
            none_endpoint: o.none_endpoint,
            anonymous: o.anonymous,
            auto_trust: o.auto_trust,
            anonymous_role,
            users,
            history_samples: o.history_samples.clamp(1, 1_000_000),
            max_monitored_items: o.max_monitored_items.clamp(1, 10_000_000),
        })
    }

    async fn start(s: &OpcUaSettings, cx: &Context) -> anyhow::Result<Started> {
        let (url, tasks) = super::start(
            &cx.config,
            s,
            cx.store.clone(),
            cx.acq.clone(),
            cx.alarms.clone(),
            cx.shutdown.clone(),
        )
        .await?;
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok());
        Ok(Started {
            endpoint: Endpoint {
                name: "opcua",
                local: port.map(|p| SocketAddr::new(s.listen.ip(), p)),
                what: "opc ua server",
                detail: format!("{url}  (namespace {})", super::NAMESPACE_URI),
            },
            tasks,
        })
    }
}
