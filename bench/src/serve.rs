//! The bench's own servers (hidden `busbar-bench serve-opcua`, `serve-bacnet`, `serve-snmp`,
//! `serve-history`, run as child processes so their CPU is measured apart from the load): a
//! bridge server over a synthetic store changing a fixed number of points per second, or a
//! history backlog replayed into InfluxDB.

use busbar_bridge::acquisition::Acquisition;
use busbar_bridge::config::{parse_config, Config};
use busbar_bridge::northbound::bacnet::BacnetSettings;
use busbar_bridge::northbound::opcua::{OpcUaSettings, Role};
use busbar_bridge::northbound::snmp::{Cidr, SnmpAccess, SnmpCommunity, SnmpSettings};
use busbar_bridge::store::{PointValue, Reading, Store};
use busbar_core::profile::Kind;
use busbar_core::quality::Quality;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// A bench config: `devices` devices of `profile` named `<prefix><n>`, 200 per connection,
/// each line ended with `extra(n)` (more keys of the device).
fn site_config(devices: usize, profile: &str, prefix: &str, extra: impl Fn(usize) -> String) -> anyhow::Result<Config> {
    let text = site_text(devices, profile, prefix, extra);
    parse_bench_config(&text)
}

pub(crate) fn parse_bench_config(text: &str) -> anyhow::Result<Config> {
    let profiles = busbar_core::profile::embedded::profiles().map_err(|d| anyhow::anyhow!("{d}"))?;
    parse_config("bench.yaml", text, &profiles, "<embedded>").map_err(|d| anyhow::anyhow!("{d}"))
}

/// The YAML of [`site_config`], for callers that add sections.
pub(crate) fn site_text(devices: usize, profile: &str, prefix: &str, extra: impl Fn(usize) -> String) -> String {
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
            "  - {{ name: {prefix}{d}, profile: {profile}, connection: c{}, unit_id: {}{} }}\n",
            d / 200,
            d % 200 + 1,
            extra(d)
        ));
    }
    text
}

/// A site of tank gauges (284 points each) with about `points` acquired points, its store, and
/// those points.
fn synthetic_site(points: usize) -> anyhow::Result<(Config, Arc<Store>, Vec<u32>)> {
    let devices = points.div_ceil(284).max(1);
    let config = site_config(devices, "fafnir-visy-tanks", "t", |d| {
        format!(", bacnet_base: {}", d + 1)
    })?;
    let store = Store::new(&config, 1 << 20);
    let all: Vec<u32> = (0..store.len() as u32)
        .filter(|p| store.meta(*p).is_some_and(|m| m.acquired))
        .take(points)
        .collect();
    Ok((config, store, all))
}

/// Every point good once, then `rate` changes per second in 10 slices. A changed value is the
/// Unix time modulo 1000 s (ms resolution), so a client can tell how old a notification is.
async fn change_forever(store: &Store, all: &[u32], rate: usize) {
    let clock = || {
        let ms = busbar_core::time::unix_ms(SystemTime::now());
        (ms % 1_000_000) as f64 / 1000.0
    };
    let first: Vec<(u32, Reading)> = all
        .iter()
        .map(|p| (*p, Reading::Value(PointValue::Number(0.0), Quality::Good)))
        .collect();
    store.update(&first, SystemTime::now());
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut k = 0usize;
    loop {
        tick.tick().await;
        let value = clock();
        let slice: Vec<(u32, Reading)> = (0..rate / 10)
            .map(|_| {
                k = (k + 1) % all.len().max(1);
                (all[k], Reading::Value(PointValue::Number(value), Quality::Good))
            })
            .collect();
        store.update(&slice, SystemTime::now());
    }
}

/// Serve ~`points` points over OPC UA, change `rate` of them per second, until killed.
pub async fn opcua_load(points: usize, rate: usize, listen: SocketAddr, ids: &Path) -> anyhow::Result<()> {
    let (mut config, store, all) = synthetic_site(points)?;
    config.servers.opcua = Some(OpcUaSettings {
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
    std::fs::write(
        ids,
        all.iter()
            .filter_map(|p| store.meta(*p).map(|m| m.id.clone()))
            .collect::<Vec<_>>()
            .join("\n"),
    )?;
    let (_stop, shutdown) = watch::channel(false);
    let settings = config
        .servers
        .opcua
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no OPC UA settings"))?;
    let (url, _tasks) = busbar_bridge::northbound::opcua::start(
        &config,
        &settings,
        store.clone(),
        Acquisition::detached(store.clone()),
        None,
        shutdown,
    )
    .await?;
    println!("ready {url} {} points", all.len());
    change_forever(&store, &all, rate).await;
    Ok(())
}

/// Serve ~`points` points over BACnet/IP (COV_Increment 0, so every change notifies), change
/// `rate` of them per second, until killed.
pub async fn bacnet_load(points: usize, rate: usize, listen: SocketAddr) -> anyhow::Result<()> {
    // Only analog points change, so `points` analog inputs serve every change (as the peer's).
    let (mut config, store, mut all) = synthetic_site(points * 2)?;
    let analog = |p: u32| {
        store.meta(p).and_then(|m| {
            let point = store.device_profile(m.device)?.points.get(m.profile_point)?;
            Some(matches!(point.kind, Kind::Analog | Kind::Counter) && !point.is_writable())
        })
    };
    all.retain(|p| analog(*p) == Some(true));
    all.truncate(points);
    for d in &mut config.devices {
        for k in d.acquired.clone() {
            d.settings.entry(k).or_default().cov_increment = Some(0.0);
        }
    }
    let settings = BacnetSettings {
        listen,
        broadcast: std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(127, 255, 255, 255), listen.port()),
        device_instance: 100,
        device_name: "bench".into(),
        vendor_id: 0,
        location: String::new(),
        description: String::new(),
        max_foreign_devices: 0,
        max_cov_subscriptions: 1_000_000,
        apdu: busbar_bridge::northbound::bacnet::ApduLimits::default(),
        password: None,
        virtual_network: None,
    };
    let (_stop, shutdown) = watch::channel(false);
    let (handle, _tasks) = busbar_bridge::northbound::bacnet::start(
        &config,
        &settings,
        store.clone(),
        Acquisition::detached(store.clone()),
        None,
        shutdown,
    )
    .await?;
    println!("ready udp {} {} points", handle.local, all.len());
    change_forever(&store, &all, rate).await;
    Ok(())
}

/// Serve a site of `devices` power meters (30 points each, all good) over SNMP, until killed.
pub async fn snmp_load(devices: usize, listen: SocketAddr) -> anyhow::Result<()> {
    let mut config = site_config(devices, "socomec-diris-a40", "m", |_| String::new())?;
    let public = SnmpCommunity {
        name: "public".into(),
        access: SnmpAccess::Read,
        sources: Cidr::parse("127.0.0.0/8").into_iter().collect(),
        view: Vec::new(),
    };
    config.servers.snmp = Some(SnmpSettings {
        listen,
        root: busbar_bridge::northbound::snmp::mib::default_root(),
        contact: String::new(),
        location: String::new(),
        state_dir: std::env::temp_dir().join(format!("busbar-bench-snmp-{}", std::process::id())),
        communities: vec![public],
        users: Vec::new(),
        traps: Vec::new(),
        informs: Vec::new(),
    });
    let store = Store::new(&config, 1 << 16);
    let now = SystemTime::now();
    let readings: Vec<(u32, Reading)> = (0..store.len() as u32)
        .filter(|p| store.meta(*p).is_some_and(|m| m.acquired))
        .map(|p| {
            (
                p,
                Reading::Value(PointValue::Number(230.0 + f64::from(p % 100)), Quality::Good),
            )
        })
        .collect();
    store.update(&readings, now);
    let settings = config
        .servers
        .snmp
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no SNMP settings"))?;
    let (_stop, shutdown) = watch::channel(false);
    let (handle, _tasks) = busbar_bridge::northbound::snmp::start(
        &config,
        &settings,
        store.clone(),
        Acquisition::detached(store.clone()),
        None,
        shutdown,
    )
    .await?;
    println!("ready udp {} {} points", handle.local, readings.len());
    std::future::pending::<()>().await;
    Ok(())
}

/// A history backlog in `dir`, as an InfluxDB outage leaves it: segments of at least `lines`
/// lines of 20 tank gauges whose every point changed each second, timestamps one second apart
/// ending now. Returns (lines, bytes).
pub fn history_backlog(lines: u64, dir: &Path) -> anyhow::Result<(u64, u64)> {
    let (_config, store, all) = synthetic_site(284 * 20)?;
    let mut buffer = busbar_bridge::sinks::influxdb::buffer::DiskBuffer::open(dir, u64::MAX, 256 * 1024)?;
    let now = SystemTime::now();
    let round_lines = |round: u64, at: SystemTime| -> (Vec<u8>, u64) {
        let readings: Vec<(u32, Reading)> = all
            .iter()
            .map(|p| {
                let v = round as f64 + f64::from(p % 100) / 10.0;
                (*p, Reading::Value(PointValue::Number(v), Quality::Good))
            })
            .collect();
        store.update(&readings, at);
        let mut out = Vec::new();
        let n = busbar_bridge::sinks::influxdb::schema::point_lines(&store, &all, &mut out);
        (out, n)
    };
    // One round tells how many rounds make `lines`; then they are written one second apart,
    // the last one stamped now.
    let per_round = round_lines(0, now).1.max(1);
    let rounds = lines.div_ceil(per_round);
    let mut written = 0;
    for round in 0..rounds {
        let (out, n) = round_lines(round, now - Duration::from_secs(rounds - 1 - round));
        buffer.append(&out, n)?;
        written += n;
    }
    buffer.seal();
    Ok((written, buffer.bytes()))
}

/// Send the backlog in `dir` to InfluxDB 1.x at `url` (database `db`) with the history sender,
/// as after an outage. Returns (lines written, seconds); lines refused are an error.
pub async fn history_replay(url: &str, db: &str, dir: &Path) -> anyhow::Result<(u64, f64)> {
    use std::sync::atomic::Ordering;
    let mut settings = busbar_bridge::demo::influx_from_url(
        &format!("{url}?db={db}"),
        None,
        None,
        None,
        dir.to_path_buf(),
        1024.0 * 1024.0,
    )?;
    settings.snapshot_interval = None;
    let (_stop, shutdown) = watch::channel(false);
    let started = std::time::Instant::now();
    let (_buffer, stats, _sender) = busbar_bridge::sinks::influxdb::start_sender(&settings, shutdown)?;
    while stats.queued.load(Ordering::Relaxed) > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if stats.refused.load(Ordering::Relaxed) > 0 {
            anyhow::bail!("InfluxDB refused lines of the backlog");
        }
        if started.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("the backlog was not written within 10 minutes");
        }
    }
    Ok((stats.written.load(Ordering::Relaxed), started.elapsed().as_secs_f64()))
}
