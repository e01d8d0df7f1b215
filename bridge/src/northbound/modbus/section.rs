//! `servers.modbus`: the section, its validation, the start and the counters.

use super::{handler, map};
use crate::component::{Component, Context, Endpoint, Resolve, Started};
use crate::metrics::{self, MetricSource};
use anyhow::Context as _;
use busbar_core::profile::WordOrder;
use busbar_modbus::server::{self, Limits, Stats};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The component.
pub struct Modbus;

/// `servers.modbus`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModbusDoc {
    #[serde(default = "crate::component::on")]
    enabled: bool,
    #[serde(default = "d_listen")]
    listen: String,
    /// ABCD (default), CDAB, BADC or DCBA for 32-bit values.
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

fn d_listen() -> String {
    "127.0.0.1:5020".into()
}
fn d_max_conn() -> usize {
    64
}
fn d_idle() -> u64 {
    120
}

/// Northbound Modbus server settings.
#[derive(Debug, Clone)]
pub struct ModbusSettings {
    pub listen: SocketAddr,
    pub word_order: WordOrder,
    pub serve_stale: bool,
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

impl Component for Modbus {
    type Doc = ModbusDoc;
    type Settings = ModbusSettings;

    fn enabled(doc: &ModbusDoc) -> bool {
        doc.enabled
    }

    fn resolve(doc: &ModbusDoc, cx: &mut Resolve<'_>) -> Option<ModbusSettings> {
        let word_order = match doc.word_order.as_deref() {
            None => WordOrder::Abcd,
            Some(o) => WordOrder::parse(o).unwrap_or_else(|| {
                cx.error(
                    "word_order",
                    format!("unknown word order `{o}` (ABCD, CDAB, BADC, DCBA)"),
                );
                WordOrder::Abcd
            }),
        };
        // One unit id per device on this server.
        let mut seen: HashMap<u8, String> = HashMap::new();
        for (i, dev) in cx.devices.iter().enumerate() {
            let unit = dev.modbus_unit_id;
            if unit == 0 {
                cx.device_error(
                    i,
                    "more than 247 devices on one Modbus server: give this device a modbus_unit_id",
                );
            } else if let Some(other) = seen.insert(unit, dev.name.clone()) {
                cx.device_error(
                    i,
                    format!("northbound modbus unit id {unit} is already used by `{other}`"),
                );
            }
        }
        cx.claim_tcp(&doc.listen).map(|listen| ModbusSettings {
            listen,
            word_order,
            serve_stale: doc.serve_stale,
            max_connections: doc.max_connections.max(1),
            idle_timeout: Duration::from_secs(doc.idle_timeout_s.max(1)),
        })
    }

    async fn start(s: &ModbusSettings, cx: &Context) -> anyhow::Result<Started> {
        let listener = TcpListener::bind(s.listen)
            .await
            .with_context(|| format!("modbus server: cannot bind {}", s.listen))?;
        let local = listener.local_addr()?;
        let map = map::build(&cx.config, &cx.store, s.word_order);
        let handler = Arc::new(handler::ModbusHandler::new(
            map,
            cx.store.clone(),
            cx.acq.clone(),
            s.serve_stale,
        ));
        let stats = Arc::new(Stats::default());
        cx.metrics.register(Arc::new(ServerCounters {
            server: "modbus",
            stats: stats.clone(),
        }));
        let limits = Limits {
            max_connections: s.max_connections,
            idle_timeout: s.idle_timeout,
        };
        let task = tokio::spawn(server::serve(
            "modbus".into(),
            handler,
            listener,
            limits,
            stats,
            cx.shutdown.clone(),
        ));
        Ok(Started {
            endpoint: Endpoint {
                name: "modbus",
                local: Some(local),
                what: "modbus-tcp server",
                detail: format!("{local}  (unit id per device: `busbar export modbus-map`)"),
            },
            tasks: vec![task],
        })
    }
}

/// The skeleton's counters, labelled with the server's name.
struct ServerCounters {
    server: &'static str,
    stats: Arc<Stats>,
}

impl MetricSource for ServerCounters {
    fn write(&self, out: &mut String) {
        use std::fmt::Write as _;
        type Counter = (&'static str, &'static str, &'static str, fn(&Stats) -> u64);
        let counters: [Counter; 5] = [
            (
                "busbar_server_connections_total",
                "counter",
                "Connections accepted.",
                |st| st.connections_accepted.load(Ordering::Relaxed),
            ),
            (
                "busbar_server_connections_refused_total",
                "counter",
                "Connections refused at the limit.",
                |st| st.connections_refused.load(Ordering::Relaxed),
            ),
            ("busbar_server_connections_open", "gauge", "Connections open.", |st| {
                st.connections_open.load(Ordering::Relaxed)
            }),
            ("busbar_server_requests_total", "counter", "Requests received.", |st| {
                st.requests.load(Ordering::Relaxed)
            }),
            (
                "busbar_server_errors_total",
                "counter",
                "Exceptions answered and framing errors.",
                |st| st.errors.load(Ordering::Relaxed),
            ),
        ];
        for (metric, kind, help, get) in counters {
            metrics::family(out, metric, kind, help);
            let _ = writeln!(
                out,
                "{metric}{{server=\"{}\"}} {}",
                metrics::label(self.server),
                get(&self.stats)
            );
        }
    }
}
