//! Starting and stopping the bridge: acquisition, the northbound servers, the HTTP API.

use crate::acquisition::{self, Acquisition};
use crate::config::Config;
use crate::http::{self, ApiState};
use crate::northbound::{modbus::ModbusServer, modbus_map};
use crate::store::Store;
use anyhow::Context;
use busbar_modbus::server::{self, Limits, Stats};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running bridge.
pub struct Bridge {
    pub store: Arc<Store>,
    pub acquisition: Acquisition,
    pub modbus: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    /// The OPC UA endpoint URL.
    pub opcua: Option<String>,
    /// The InfluxDB history sink.
    pub history: Option<crate::history::HistoryHandle>,
    /// The SNMP agent.
    pub snmp: Option<crate::northbound::snmp::SnmpHandle>,
    /// The BACnet/IP device.
    pub bacnet: Option<crate::northbound::bacnet::BacnetHandle>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Bridge {
    /// Stop every task (servers stop accepting, acquisition finishes its request) and wait.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Start everything the config enables. Listen addresses with port 0 pick free ports (tests).
pub async fn start(config: Config) -> anyhow::Result<Bridge> {
    let config = Arc::new(config);
    let store = Store::new(&config, 65536);
    let (shutdown, _) = watch::channel(false);
    let (acq, mut tasks) = acquisition::start(&config, store.clone(), shutdown.subscribe());
    let mut servers = Vec::new();
    let mut modbus = None;
    if let Some(m) = &config.modbus {
        let listener = TcpListener::bind(m.listen)
            .await
            .with_context(|| format!("modbus server: cannot bind {}", m.listen))?;
        modbus = Some(listener.local_addr()?);
        let map = modbus_map::build(&config, &store, m.word_order);
        let handler = Arc::new(ModbusServer::new(map, store.clone(), acq.clone(), m.serve_stale));
        let stats = Arc::new(Stats::default());
        servers.push(("modbus".to_string(), stats.clone()));
        let limits = Limits {
            max_connections: m.max_connections,
            idle_timeout: m.idle_timeout,
        };
        tasks.push(tokio::spawn(server::serve(
            "modbus".into(),
            handler,
            listener,
            limits,
            stats,
            shutdown.subscribe(),
        )));
    }
    let mut opcua = None;
    if let Some(o) = &config.opcua {
        let (url, t) =
            crate::northbound::opcua::start(&config, o, store.clone(), acq.clone(), shutdown.subscribe()).await?;
        opcua = Some(url);
        tasks.extend(t);
    }
    let mut bacnet = None;
    if let Some(b) = &config.bacnet {
        let (handle, t) =
            crate::northbound::bacnet::start(&config, b, store.clone(), acq.clone(), shutdown.subscribe()).await?;
        bacnet = Some(handle);
        tasks.extend(t);
    }
    let mut history = None;
    if let Some(h) = &config.influxdb {
        let (handle, t) = crate::history::start(h, store.clone(), shutdown.subscribe())?;
        history = Some(handle);
        tasks.extend(t);
    }
    let mut snmp = None;
    if let Some(s) = &config.snmp {
        let (handle, t) =
            crate::northbound::snmp::start(&config, s, store.clone(), acq.clone(), shutdown.subscribe()).await?;
        snmp = Some(handle);
        tasks.extend(t);
    }
    let mut http_addr = None;
    if let Some(h) = &config.http {
        let listener = TcpListener::bind(h.listen)
            .await
            .with_context(|| format!("http server: cannot bind {}", h.listen))?;
        http_addr = Some(listener.local_addr()?);
        let app = http::router(ApiState {
            store: store.clone(),
            acq: acq.clone(),
            config: config.clone(),
            servers,
            bacnet: bacnet.as_ref().map(|b| b.stats.clone()),
            history: history.as_ref().map(|h| h.stats.clone()),
        });
        let mut stop = shutdown.subscribe();
        tasks.push(tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.changed().await;
            });
            if let Err(e) = serve.await {
                tracing::error!("http server stopped: {e}");
            }
        }));
    }
    Ok(Bridge {
        history,
        snmp,
        opcua,
        bacnet,
        store,
        acquisition: acq,
        modbus,
        http: http_addr,
        shutdown,
        tasks,
    })
}
