//! A compiled OPC UA load client (async-opcua's client): subscribes to a list of string node ids
//! and measures the setup time, notifications per second and the latency from each value's
//! SourceTimestamp to its arrival here. The Python client (bench/peers/opcua_client.py) spends
//! more CPU decoding than the servers spend serving at 100k items, so this one shows the
//! servers' own figures; both run against both servers in the same table.

use opcua::client::{DataChangeCallback, Session};
use opcua::types::{DateTime, TimestampsToReturn};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one run measured.
pub struct Figures {
    pub setup_s: f64,
    pub notifications_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Figures {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({"setup_s": self.setup_s, "notifications_per_s": self.notifications_per_s,
                           "p50_ms": self.p50_ms, "p99_ms": self.p99_ms})
    }
}

/// The ids of an ids file: one string node id per line.
pub fn read_ids(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Arrivals while measuring: latencies in ms.
#[derive(Default)]
struct Arrivals {
    measuring: bool,
    latencies: Vec<f32>,
}

/// Subscribe to every id of `ids` (namespace `ns_uri`) at `url`, wait 2 s, then measure for
/// `window`.
pub async fn run(url: &str, ns_uri: &str, ids: &[String], window: Duration) -> anyhow::Result<Figures> {
    let (session, event_loop) = busbar_sim::qa::probe::opcua_anonymous_session(url, "bench-load", |b| {
        b.request_timeout(Duration::from_secs(60))
            // asyncua's server sends more notifications per publish than asked (1,100 for
            // 1,000) and first rounds of several MB: take them, so that both servers can be
            // measured.
            .max_array_length(1_000_000)
            .max_message_size(64 << 20)
            .max_chunk_count(0)
    })
    .await
    .map_err(anyhow::Error::msg)?;
    eprintln!("connected to {url}");
    // A server that stops answering fails the row instead of stalling the table.
    let limit = window + Duration::from_secs(120);
    let result = match tokio::time::timeout(limit, measure(&session, ns_uri, ids, window)).await {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!("{url}: no result within {} s", limit.as_secs())),
    };
    let _ = session.disconnect().await;
    event_loop.abort();
    result
}

async fn measure(session: &Session, ns_uri: &str, ids: &[String], window: Duration) -> anyhow::Result<Figures> {
    let ns = busbar_sim::qa::probe::opcua_namespace(session, ns_uri)
        .await
        .map_err(anyhow::Error::msg)?;
    let arrivals = Arc::new(Mutex::new(Arrivals::default()));
    let sink = arrivals.clone();
    let callback = DataChangeCallback::new(move |dv, _item| {
        let now = DateTime::now();
        let Ok(mut a) = sink.lock() else { return };
        if !a.measuring {
            return;
        }
        if let Some(src) = dv.source_timestamp {
            // DateTime ticks are 100 ns.
            a.latencies.push((now.ticks() - src.ticks()) as f32 / 10_000.0);
        }
    });
    // At most 1,000 notifications per publish, the same request to both servers.
    let sub = session
        .create_subscription(Duration::from_millis(25), 600, 20, 1000, 0, true, callback)
        .await?;
    let started = Instant::now();
    for chunk in ids.chunks(1000) {
        let items = chunk
            .iter()
            .map(|id| busbar_sim::qa::probe::opcua_value_item(ns, id))
            .collect();
        let created = session
            .create_monitored_items(sub, TimestampsToReturn::Both, items)
            .await?;
        if let Some(bad) = created.iter().find(|c| !c.result.status_code.is_good()) {
            anyhow::bail!("a monitored item was refused: {}", bad.result.status_code);
        }
    }
    let setup_s = started.elapsed().as_secs_f64();
    eprintln!(
        "{} monitored items in {setup_s:.1} s; measuring for {:.0} s",
        ids.len(),
        window.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    set_measuring(&arrivals, true);
    let t = Instant::now();
    tokio::time::sleep(window).await;
    set_measuring(&arrivals, false);
    let elapsed = t.elapsed().as_secs_f64();
    let mut lat = arrivals
        .lock()
        .map(|mut a| std::mem::take(&mut a.latencies))
        .unwrap_or_default();
    lat.sort_by(f32::total_cmp);
    let pick = |q: f64| {
        lat.get(((q * lat.len() as f64) as usize).min(lat.len().saturating_sub(1)))
            .map_or(f64::NAN, |v| f64::from(*v))
    };
    Ok(Figures {
        setup_s,
        notifications_per_s: lat.len() as f64 / elapsed,
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
    })
}

fn set_measuring(arrivals: &Mutex<Arrivals>, on: bool) {
    if let Ok(mut a) = arrivals.lock() {
        a.measuring = on;
    }
}
