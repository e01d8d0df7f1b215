//! Benchmark helpers (hidden `busbar bench-opcua`): the OPC UA server over a synthetic store,
//! changing a fixed number of points per second, for busbar-bench's OPC UA rows.

use crate::acquisition::Acquisition;
use crate::config::{parse_config, OpcUaSettings, Role};
use crate::store::{PointValue, Reading, Store};
use busbar_core::quality::Quality;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// Serve ~`points` points over OPC UA (tank gauges of 284 points each), change `rate` of them per
/// second, until killed.
pub async fn opcua_load(points: usize, rate: usize, listen: SocketAddr, ids: &Path) -> anyhow::Result<()> {
    let profiles = busbar_core::profile::embedded::profiles().map_err(|d| anyhow::anyhow!("{d}"))?;
    let per = 284;
    let devices = points.div_ceil(per).max(1);
    let mut text = String::from("site: { name: bench, id: bench }\nconnections:\n");
    for c in 0..devices.div_ceil(200) {
        text.push_str(&format!(
            "  - {{ name: c{c}, tcp: {{ host: 127.0.0.1, port: {} }} }}\n",
            c + 1
        ));
    }
    text.push_str("devices:\n");
    for d in 0..devices {
        text.push_str(&format!(
            "  - {{ name: t{d}, profile: fafnir-visy-tanks, connection: c{}, unit_id: {} }}\n",
            d / 200,
            d % 200 + 1
        ));
    }
    let mut config = parse_config("bench.yaml", &text, &profiles, "<embedded>").map_err(|d| anyhow::anyhow!("{d}"))?;
    config.opcua = Some(OpcUaSettings {
        listen,
        pki_dir: std::env::temp_dir().join("busbar-bench-pki"),
        none_endpoint: true,
        anonymous: true,
        auto_trust: true,
        anonymous_role: Role::Viewer,
        users: Vec::new(),
        history_samples: 1,
        max_monitored_items: points + 1000,
    });
    let store = Store::new(&config, 1 << 20);
    let all: Vec<u32> = (0..store.len() as u32)
        .filter(|p| store.meta(*p).is_some_and(|m| m.acquired))
        .take(points)
        .collect();
    std::fs::write(
        ids,
        all.iter()
            .filter_map(|p| store.meta(*p).map(|m| m.id.clone()))
            .collect::<Vec<_>>()
            .join("\n"),
    )?;
    let (_stop, shutdown) = watch::channel(false);
    let settings = config
        .opcua
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no OPC UA settings"))?;
    let (url, _tasks) = crate::northbound::opcua::start(
        &config,
        &settings,
        store.clone(),
        Acquisition::detached(store.clone()),
        shutdown,
    )
    .await?;
    // Every point good once, then `rate` changes per second in 10 slices.
    let now = SystemTime::now();
    let first: Vec<(u32, Reading)> = all
        .iter()
        .map(|p| (*p, Reading::Value(PointValue::Number(0.0), Quality::Good)))
        .collect();
    store.update(&first, now);
    println!("ready {url} {} points", all.len());
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut k = 0usize;
    let mut value = 0.0;
    loop {
        tick.tick().await;
        value += 1.0;
        let slice: Vec<(u32, Reading)> = (0..rate / 10)
            .map(|_| {
                k = (k + 1) % all.len().max(1);
                (all[k], Reading::Value(PointValue::Number(value), Quality::Good))
            })
            .collect();
        store.update(&slice, SystemTime::now());
    }
}
