//! Starting and stopping the bridge: the store, acquisition, the alarm service, then every
//! configured server and sink through their seam ([`crate::component`]), then the load manager.
//! Nothing here names a protocol.

use crate::acquisition::{self, metrics::DeviceMetrics, Acquisition};
use crate::alarms::Alarms;
use crate::clock::{self, Clock};
use crate::component::{Context, Endpoint};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running bridge.
pub struct Bridge {
    pub store: Arc<Store>,
    pub acquisition: Acquisition,
    pub metrics: Arc<Metrics>,
    /// The alarm service, when alarms are configured.
    pub alarms: Option<Arc<Alarms>>,
    /// Where each started server and sink can be reached, in start order.
    pub endpoints: Vec<Endpoint>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Bridge {
    /// The endpoint of component `name` (`modbus`, `http`, `influxdb`...), when it runs.
    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.name == name)
    }

    /// The bound address of component `name` (the port picked when the config said 0).
    pub fn local_addr(&self, name: &str) -> Option<SocketAddr> {
        self.endpoint(name).and_then(|e| e.local)
    }

    /// Stop every task (servers stop accepting, acquisition finishes its request) and wait.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Start everything the config enables, on the system clock. Listen addresses with port 0 pick
/// free ports (tests).
pub async fn start(config: Config) -> anyhow::Result<Bridge> {
    start_with_clock(config, clock::system()).await
}

/// Start everything the config enables, on `clock`.
pub async fn start_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Bridge> {
    let config = Arc::new(config);
    let store = Store::with_clock(&config, 65536, clock.clone());
    let (shutdown, _) = watch::channel(false);
    let metrics = Metrics::new();
    metrics.register(Arc::new(DeviceMetrics { store: store.clone() }));
    let acquisition::Started {
        acq,
        mut tasks,
        mut local,
    } = acquisition::start(&config, store.clone(), shutdown.subscribe());
    let alarms = match &config.alarms {
        Some(s) => {
            let alarms = Alarms::open(&config, store.clone(), s)?;
            metrics.register(alarms.clone());
            Some(alarms)
        }
        None => None,
    };
    let cx = Context {
        config: config.clone(),
        store: store.clone(),
        acq: acq.clone(),
        metrics: metrics.clone(),
        clock,
        alarms: alarms.clone(),
        shutdown: shutdown.subscribe(),
    };
    let mut endpoints = Vec::new();
    for started in config
        .servers
        .start(&cx)
        .await?
        .into_iter()
        .chain(config.sinks.start(&cx).await?)
    {
        endpoints.push(started.endpoint);
        tasks.extend(started.tasks);
    }
    if let Some(lm) = crate::dlm::LoadManager::new(config.clone(), store.clone(), acq.clone())? {
        let connection = config
            .load_management
            .as_ref()
            .and_then(|l| config.devices.get(l.device))
            .map(|d| d.connection);
        if let Some(writes) = connection.and_then(|c| local.remove(&c)) {
            tasks.push(lm.start(writes, shutdown.subscribe()));
        }
    }
    if let (Some(a), Some(s)) = (&alarms, &config.alarms) {
        let targets = s.notification_targets();
        if !targets.is_empty() {
            tasks.push(crate::alarms::notify::start(
                targets,
                a.clone(),
                config.site_name.clone(),
                shutdown.subscribe(),
            ));
        }
    }
    // Evaluation starts once every subscriber of the transitions is listening.
    if let Some(a) = &alarms {
        tasks.push(a.start(shutdown.subscribe()));
    }
    Ok(Bridge {
        store,
        acquisition: acq,
        metrics,
        alarms,
        endpoints,
        shutdown,
        tasks,
    })
}
