//! The benchmark rows.

use crate::load::read_load;
use crate::proc_stats::{rss_mib, CpuWindow};
use crate::Args;
use anyhow::Context;
use busbar_sim::load::demo_scenario;
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    target.join(profile).join(name)
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_port(port: u16) -> anyhow::Result<()> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("nothing listens on port {port}")
}

/// A scenario of `n` devices: the demo site's 16 devices repeated, links kept inside each copy,
/// 200 devices per gateway port.
fn scaled_scenario(n: usize, first_port: u16) -> anyhow::Result<String> {
    let demo = demo_scenario().map_err(|e| anyhow::anyhow!("{e}"))?;
    let groups = n.div_ceil(demo.devices.len());
    let ports = n.div_ceil(200);
    let listeners: Vec<Value> = (0..ports)
        .map(|p| json!({"name": format!("gw{p}"), "listen": format!("127.0.0.1:{}", first_port + p as u16)}))
        .collect();
    let mut devices = Vec::new();
    'outer: for g in 0..groups {
        for d in &demo.devices {
            if devices.len() == n {
                break 'outer;
            }
            let k = devices.len();
            let mut params = d.params.clone();
            if let Value::Object(m) = &mut params {
                for key in ["supply", "meter", "imd"] {
                    if let Some(Value::String(s)) = m.get_mut(key) {
                        *s = format!("{s}_{g}");
                    }
                }
            }
            devices.push(json!({
                "name": format!("{}_{g}", d.name),
                "profile": d.profile.name,
                "listener": format!("gw{}", k / 200),
                "unit_id": k % 200 + 1,
                "params": params,
            }));
        }
    }
    // A link may point past the last device of a partial group: drop such devices' links.
    let names: std::collections::HashSet<String> = devices
        .iter()
        .filter_map(|d| d["name"].as_str().map(str::to_string))
        .collect();
    for d in &mut devices {
        if let Some(Value::Object(m)) = d.get_mut("params") {
            m.retain(|k, v| {
                !(["supply", "meter", "imd"].contains(&k.as_str()) && v.as_str().is_some_and(|s| !names.contains(s)))
            });
        }
    }
    let doc = json!({
        "site": {"name": format!("bench {n}"), "id": format!("bench-{n}")},
        "seed": 1,
        "listeners": listeners,
        "devices": devices,
    });
    // YAML is a superset of JSON.
    Ok(serde_json::to_string_pretty(&doc)?)
}

fn sim_cmd(scenario: &Path, extra: &[String]) -> Command {
    let mut c = Command::new(binary("busbar-sim"));
    c.arg("run")
        .arg(scenario)
        .arg("--profiles")
        .arg(repo_root().join("profiles"))
        .arg("--no-control");
    c.args(extra);
    c.env("BUSBAR_LOG", "warn").stdout(Stdio::null()).stderr(Stdio::null());
    c
}

async fn simulated_devices_row(n: usize, window: Duration) -> anyhow::Result<String> {
    let dir = std::env::temp_dir().join(format!("busbar-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let port = free_port()?;
    let path = dir.join(format!("scale-{n}.yaml"));
    std::fs::write(&path, scaled_scenario(n, port)?)?;
    let child = Proc(
        sim_cmd(&path, &[])
            .spawn()
            .context("start busbar-sim (build it with --release)")?,
    );
    wait_port(port).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let w = CpuWindow::start(child.0.id());
    tokio::time::sleep(window).await;
    let cpu = w.percent();
    let rss = rss_mib(child.0.id()).unwrap_or(f64::NAN);
    Ok(format!(
        "| simulator: {n} devices at speed 1 | {cpu:.1} % of a core | {rss:.0} MiB RSS | target: 1000 devices < 25 % |"
    ))
}

/// The loopback limit of a run: the echo's rate and CPU time per request.
#[derive(Clone, Copy)]
struct Limit {
    rate: f64,
    us_per_request: f64,
}

/// CPU time per request (microseconds) from a CPU share (% of a core) and a rate.
fn us_per_request(cpu: f64, rate: f64) -> f64 {
    cpu * 1e4 / rate.max(1e-9)
}

/// A Modbus server's cells: rate and its share of the echo's, CPU share, CPU time per request
/// and its ratio to the echo's (what the server costs above the bare syscalls).
fn modbus_row(who: &str, rate: f64, cpu: f64, errors: u64, limit: Limit, note: &str) -> String {
    let us = us_per_request(cpu, rate);
    format!(
        "| modbus: {who} | {rate:.0} req/s, {:.0} % of the echo's rate | {cpu:.0} % CPU, {us:.1} us CPU/request ({:.2}x the echo's), {errors} errors | {note} |",
        100.0 * rate / limit.rate.max(1e-9),
        us / limit.us_per_request.max(1e-9),
    )
}

async fn modbus_rows(window: Duration) -> anyhow::Result<Vec<String>> {
    let mut rows = Vec::new();
    let mut pymodbus = None;
    // The loopback limit: the leanest echo of the same request and reply sizes.
    let eport = free_port()?;
    let echo = Proc(
        Command::new(std::env::current_exe()?)
            .arg("--echo-server")
            .arg(eport.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_port(eport).await?;
    let cpu = CpuWindow::start(echo.0.id());
    let (echo_rate, echo_errors) =
        read_load(SocketAddr::from(([127, 0, 0, 1], eport)), 2, 50512, 38, 8, window).await?;
    let echo_cpu = cpu.percent();
    drop(echo);
    let limit = Limit {
        rate: echo_rate,
        us_per_request: us_per_request(echo_cpu, echo_rate),
    };
    rows.push(modbus_row(
        "epoll echo, same sizes (loopback limit)",
        echo_rate,
        echo_cpu,
        echo_errors,
        limit,
        "one thread, no work per request: what the kernel's loopback TCP costs per request",
    ));
    // busbar-sim serving the demo site.
    let port = free_port()?;
    let sim = Proc(
        sim_cmd(
            &repo_root().join("scenarios/demo.yaml"),
            &["--listen".into(), format!("127.0.0.1:{port}")],
        )
        .spawn()
        .context("start busbar-sim")?,
    );
    wait_port(port).await?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let cpu = CpuWindow::start(sim.0.id());
    let (ours, errors) = read_load(addr, 2, 50512, 38, 8, window).await?;
    let our_cpu = cpu.percent();
    drop(sim);
    rows.push(modbus_row(
        "busbar-sim gateway, 8 clients, FC03 x38 regs",
        ours,
        our_cpu,
        errors,
        limit,
        "",
    ));
    // pymodbus serving the same block.
    let python = std::env::var("BUSBAR_PYTHON").unwrap_or_else(|_| "python3".into());
    let pport = free_port()?;
    let peer = Command::new(&python)
        .arg(repo_root().join("bench/peers/pymodbus_server.py"))
        .arg(pport.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match peer {
        Ok(child) => {
            let peer = Proc(child);
            if wait_port(pport).await.is_ok() {
                let cpu = CpuWindow::start(peer.0.id());
                let (theirs, errors) =
                    read_load(SocketAddr::from(([127, 0, 0, 1], pport)), 2, 50512, 38, 8, window).await?;
                let their_cpu = cpu.percent();
                rows.push(modbus_row(
                    "pymodbus 3 server, same load",
                    theirs,
                    their_cpu,
                    errors,
                    limit,
                    &format!("busbar-sim / pymodbus {:.1}x (target >= 20x)", ours / theirs.max(1e-9)),
                ));
                pymodbus = Some(theirs);
            } else {
                rows.push("| modbus: pymodbus server | did not start (pip install pymodbus) | | |".into());
            }
        }
        Err(e) => rows.push(format!("| modbus: pymodbus server | not run: {e} | | |")),
    }
    let (bridge, bridge_cpu, bridge_errors) = northbound_load(window).await?;
    rows.push(modbus_row(
        "busbar northbound server, 8 clients, FC03 x38 regs",
        bridge,
        bridge_cpu,
        bridge_errors,
        limit,
        &format!(
            "CPU of the demo process (bridge + simulator); {:.1}x pymodbus (target >= 20x), target >= 50 % of the limit",
            pymodbus.map_or(f64::NAN, |p| bridge / p.max(1e-9))
        ),
    ));
    Ok(rows)
}

/// The bridge's config for the scaled site: the demo config's devices repeated like
/// [`scaled_scenario`] repeats the demo scenario's, one connection per simulator port.
fn scaled_config(n: usize, sim_port: u16, http_port: u16) -> anyhow::Result<String> {
    let demo = demo_scenario().map_err(|e| anyhow::anyhow!("{e}"))?;
    let profiles = busbar_core::profile::embedded::profiles().map_err(|e| anyhow::anyhow!("{e}"))?;
    let demo_cfg = busbar_bridge::config::parse_config("demo", busbar_bridge::demo::DEMO_CONFIG, &profiles, "")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let ports = n.div_ceil(200);
    let connections: Vec<Value> = (0..ports)
        .map(|p| json!({"name": format!("gw{p}"), "tcp": {"host": "127.0.0.1", "port": sim_port + p as u16}}))
        .collect();
    let mut devices = Vec::new();
    for k in 0..n {
        let (g, i) = (k / demo.devices.len(), k % demo.devices.len());
        let d = &demo.devices[i];
        let cfg = demo_cfg.devices.iter().find(|c| c.name == d.name);
        let mut blocks = serde_json::Map::new();
        if let Some(c) = cfg {
            // Acquire the block instances the demo config acquires.
            for p in c.acquired.iter().filter_map(|&k| c.profile.points[k].block.as_ref()) {
                let e = blocks.entry(p.name.clone()).or_insert(json!(0));
                if e.as_u64().unwrap_or(0) < u64::from(p.index) {
                    *e = json!(p.index);
                }
            }
        }
        devices.push(json!({
            "name": format!("{}_{g}", d.name),
            "profile": d.profile.name,
            "connection": format!("gw{}", k / 200),
            "unit_id": k % 200 + 1,
            "poll_interval_ms": 1000,
            "timeout_ms": 1000,
            "blocks": blocks,
        }));
    }
    let doc = json!({
        "site": {"name": format!("bench {n}"), "id": format!("bench-{n}")},
        "connections": connections,
        "devices": devices,
        "servers": {"http": {"listen": format!("127.0.0.1:{http_port}")}},
    });
    Ok(serde_json::to_string_pretty(&doc)?)
}

/// GET a path over plain HTTP/1.1 (no client dependency).
async fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).to_string();
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

/// Sum of a per-device metric, and its per-device values.
fn metric(text: &str, name: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse().ok()))
        .collect()
}

async fn acquisition_row(n: usize, window: Duration) -> anyhow::Result<String> {
    let dir = std::env::temp_dir().join(format!("busbar-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sim_port = free_port()?;
    let scenario = dir.join(format!("acq-{n}.yaml"));
    std::fs::write(&scenario, scaled_scenario(n, sim_port)?)?;
    let _sim = Proc(sim_cmd(&scenario, &[]).spawn().context("start busbar-sim")?);
    wait_port(sim_port).await?;
    let http_port = free_port()?;
    let config = dir.join(format!("bridge-{n}.yaml"));
    std::fs::write(&config, scaled_config(n, sim_port, http_port)?)?;
    let bridge = Proc(
        Command::new(binary("busbar"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--profiles")
            .arg(repo_root().join("profiles"))
            .env("BUSBAR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start busbar (build it with --release)")?,
    );
    wait_port(http_port).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m0 = http_get(http_port, "/metrics").await?;
    let t0 = std::time::Instant::now();
    let w = CpuWindow::start(bridge.0.id());
    tokio::time::sleep(window).await;
    let cpu = w.percent();
    let m1 = http_get(http_port, "/metrics").await?;
    let dt = t0.elapsed().as_secs_f64();
    let rss = rss_mib(bridge.0.id()).unwrap_or(f64::NAN);
    let (p0, p1, pts) = (
        metric(&m0, "busbar_device_polls_total"),
        metric(&m1, "busbar_device_polls_total"),
        metric(&m1, "busbar_device_points"),
    );
    let points_per_s: f64 = p0.iter().zip(&p1).zip(&pts).map(|((a, b), n)| (b - a) * n).sum::<f64>() / dt;
    let polls_per_s: f64 = p0.iter().zip(&p1).map(|(a, b)| b - a).sum::<f64>() / dt;
    let online = metric(&m1, "busbar_device_online")
        .iter()
        .filter(|v| **v == 1.0)
        .count();
    let late_sum: f64 = metric(&m1, "busbar_device_poll_lateness_seconds_sum")
        .iter()
        .sum::<f64>()
        - metric(&m0, "busbar_device_poll_lateness_seconds_sum")
            .iter()
            .sum::<f64>();
    let late_max = metric(&m1, "busbar_device_poll_lateness_seconds_max")
        .iter()
        .cloned()
        .fold(0.0, f64::max);
    let mean_late_ms = 1000.0 * late_sum / (polls_per_s * dt).max(1.0);
    Ok(format!(
        "| bridge: acquire {n} devices at 1 s poll ({online} online) | {points_per_s:.0} points/s, {polls_per_s:.0} polls/s | {cpu:.1} % of a core, {rss:.0} MiB RSS | poll lateness mean {mean_late_ms:.1} ms, max {:.0} ms; target: 1000 devices < 50 % |",
        late_max * 1000.0
    ))
}

/// `busbar demo` under the Modbus load: rate, CPU share of the process, errors.
async fn northbound_load(window: Duration) -> anyhow::Result<(f64, f64, u64)> {
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect::<Result<_, _>>()?;
    let demo = Proc(
        Command::new(binary("busbar"))
            .args([
                "demo",
                "--modbus",
                &format!("127.0.0.1:{}", ports[0]),
                "--http",
                &format!("127.0.0.1:{}", ports[1]),
            ])
            .args([
                "--sim-gateway",
                &format!("127.0.0.1:{}", ports[2]),
                "--sim-control",
                &format!("127.0.0.1:{}", ports[3]),
            ])
            .env("BUSBAR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start busbar demo")?,
    );
    wait_port(ports[0]).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu = CpuWindow::start(demo.0.id());
    // 38 registers of the main meter (19 float32 points), like the simulator rows.
    let (rate, errors) = read_load(SocketAddr::from(([127, 0, 0, 1], ports[0])), 2, 100, 38, 8, window).await?;
    Ok((rate, cpu.percent(), errors))
}

/// The OPC UA load clients: asyncua's (Python, the client SCADA scripts use) and async-opcua's
/// (compiled, so that at 100k items the figures are the server's and not the client's decoding).
#[derive(Clone, Copy)]
enum OpcUaClient {
    Asyncua,
    AsyncOpcua,
}

impl OpcUaClient {
    fn label(self) -> &'static str {
        match self {
            OpcUaClient::Asyncua => "asyncua 2.1 client",
            OpcUaClient::AsyncOpcua => "async-opcua 0.19 client",
        }
    }
}

/// One OPC UA measurement: `client` subscribes to the ids in `ids` at `url` for `window`,
/// measuring `server` (pid). Returns (figures as JSON, server CPU %, server RSS MiB).
async fn opcua_client(
    client: OpcUaClient,
    url: &str,
    ns: &str,
    ids: &Path,
    window: Duration,
    server: u32,
) -> anyhow::Result<(Value, f64, f64)> {
    let cpu = CpuWindow::start(server);
    let v = match client {
        OpcUaClient::Asyncua => {
            let python = std::env::var("BUSBAR_PYTHON").unwrap_or_else(|_| "python3".into());
            let out = tokio::process::Command::new(&python)
                .arg(repo_root().join("bench/peers/opcua_client.py"))
                .arg(url)
                .arg(ns)
                .arg(ids)
                .arg(window.as_secs_f64().to_string())
                .stderr(Stdio::null())
                .output()
                .await
                .context("run the OPC UA client (pip install asyncua)")?;
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text.lines().last().unwrap_or("{}");
            serde_json::from_str(line).unwrap_or(Value::Null)
        }
        OpcUaClient::AsyncOpcua => {
            let list = crate::opcua_load::read_ids(ids)?;
            crate::opcua_load::run(url, ns, &list, window).await?.json()
        }
    };
    let used = cpu.percent();
    let rss = rss_mib(server).unwrap_or(f64::NAN);
    Ok((v, used, rss))
}

fn opcua_row(who: &str, client: OpcUaClient, items: usize, rate: usize, v: &Value, cpu: f64, rss: f64) -> String {
    format!(
        "| opcua: {who}, {items} monitored items, {rate} changes/s, {} | {:.0} notifications/s, latency p50 {:.0} ms, p99 {:.0} ms | {cpu:.0} % CPU (server, whole window incl. setup), {rss:.0} MiB RSS | subscribe took {:.1} s; target 100k items p99 < 100 ms, subscribe < 3 s, < 300 MiB |",
        client.label(),
        v["notifications_per_s"].as_f64().unwrap_or(f64::NAN),
        v["p50_ms"].as_f64().unwrap_or(f64::NAN),
        v["p99_ms"].as_f64().unwrap_or(f64::NAN),
        v["setup_s"].as_f64().unwrap_or(f64::NAN),
    )
}

/// Start `busbar-bench serve-opcua` with `items` points changing `rate` per second; returns
/// the process and its URL (the ids are written to `ids`).
async fn start_busbar_opcua(items: usize, rate: usize, ids: &Path) -> anyhow::Result<(Proc, String)> {
    let port = free_port()?;
    let server = Proc(
        Command::new(std::env::current_exe()?)
            .args([
                "serve-opcua",
                "--points",
                &items.to_string(),
                "--rate",
                &rate.to_string(),
            ])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--ids")
            .arg(ids)
            .env("BUSBAR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start busbar-bench serve-opcua")?,
    );
    wait_port(port).await?;
    Ok((server, format!("opc.tcp://127.0.0.1:{port}/")))
}

/// Start asyncua's own server (bench/peers/opcua_server.py) with the same load.
async fn start_asyncua_opcua(items: usize, rate: usize, ids: &Path) -> anyhow::Result<(Proc, String)> {
    let python = std::env::var("BUSBAR_PYTHON").unwrap_or_else(|_| "python3".into());
    let port = free_port()?;
    let _ = std::fs::remove_file(ids);
    let peer = Proc(
        Command::new(&python)
            .arg(repo_root().join("bench/peers/opcua_server.py"))
            .args([port.to_string(), items.to_string(), rate.to_string()])
            .arg(ids)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start the asyncua server")?,
    );
    for _ in 0..1200 {
        if ids.exists() && tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((peer, format!("opc.tcp://127.0.0.1:{port}/")))
}

async fn opcua_rows(window: Duration, quick: bool) -> anyhow::Result<Vec<String>> {
    let mut rows = Vec::new();
    let dir = std::env::temp_dir().join(format!("busbar-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sizes: &[(usize, usize)] = if quick {
        &[(10_000, 1_000)]
    } else {
        &[(10_000, 1_000), (100_000, 10_000)]
    };
    let clients = [OpcUaClient::AsyncOpcua, OpcUaClient::Asyncua];
    // A fresh server for every client, so that no run inherits another's memory or items.
    for &(items, rate) in sizes {
        for client in clients {
            let ids = dir.join(format!("busbar-ids-{items}.txt"));
            let (server, url) = start_busbar_opcua(items, rate, &ids).await?;
            let (v, cpu, rss) = opcua_client(client, &url, "urn:busbar:site", &ids, window, server.0.id()).await?;
            rows.push(opcua_row("busbar", client, items, rate, &v, cpu, rss));
        }
    }
    // asyncua's own server with the 10k load (building 100k nodes in Python takes minutes).
    let (items, rate) = (10_000, 1_000);
    for client in clients {
        let ids = dir.join("peer-ids.txt");
        let (peer, url) = start_asyncua_opcua(items, rate, &ids).await?;
        let (v, cpu, rss) = opcua_client(client, &url, "urn:bench:peer", &ids, window, peer.0.id()).await?;
        rows.push(opcua_row("asyncua 2.1 server", client, items, rate, &v, cpu, rss));
    }
    Ok(rows)
}

/// A BACnet/IP server under test: wait until it answers, then measure RPM throughput and COV
/// fan-out, with its CPU.
async fn bacnet_server_rows(who: &str, server: SocketAddr, pid: u32, window: Duration) -> anyhow::Result<Vec<String>> {
    let mut objects = Vec::new();
    for _ in 0..600 {
        if let Ok(o) = crate::bacnet::analog_inputs(server, 100, 1000).await {
            objects = o;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if objects.len() < 1000 {
        anyhow::bail!("{who}: found {} analog inputs, want 1000", objects.len());
    }
    let cpu = CpuWindow::start(pid);
    let (props, errors) = crate::bacnet::rpm_throughput(server, &objects, 20, 8, window).await?;
    let rpm_cpu = cpu.percent();
    let subscribed = &objects[..250];
    let cpu = CpuWindow::start(pid);
    let (rate, p50, p99, accepted) = crate::bacnet::cov_fanout(server, subscribed, 4, window).await?;
    let cov_cpu = cpu.percent();
    let rss = rss_mib(pid).unwrap_or(f64::NAN);
    Ok(vec![
        format!("| bacnet: {who}, ReadPropertyMultiple 20 objects x (PV, Status_Flags), 8 in flight | {props:.0} properties/s | {rpm_cpu:.0} % CPU (server), {rss:.0} MiB RSS, {errors} errors/timeouts | 1000 analog inputs |"),
        format!("| bacnet: {who}, COV fan-out 4 subscribers x 250 objects ({accepted} subscriptions), 1000 changes/s over 1000 objects | {rate:.0} notifications/s, latency p50 {p50:.1} ms, p99 {p99:.1} ms | {cov_cpu:.0} % CPU (server, incl. subscribing) | latency = store update to notification received |"),
    ])
}

/// The whole Object_List of a server with `objects` objects read `reads` times in one
/// segmented ReadProperty each: the row with the median and slowest read.
async fn object_list_row(who: &str, server: SocketAddr, pid: u32, objects: usize) -> anyhow::Result<String> {
    let mut ready = false;
    for _ in 0..1200 {
        if crate::bacnet::object_count(server, 100)
            .await
            .is_ok_and(|n| n >= objects)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !ready {
        anyhow::bail!("{who}: never served {objects} objects");
    }
    let cpu = CpuWindow::start(pid);
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..5 {
        let (n, took) = crate::bacnet::object_list_whole(server, 100).await?;
        count = n;
        times.push(took.as_secs_f64() * 1000.0);
    }
    let cpu = cpu.percent();
    times.sort_by(f64::total_cmp);
    let segments = (count * 5).div_ceil(1476 - 5);
    Ok(format!(
        "| bacnet: {who}, Object_List read whole (segmented ReadProperty, 1476-octet segments) | median {:.0} ms, slowest {:.0} ms | {cpu:.0} % CPU (server) | {count} objects, ~{segments} segments, 5 reads |",
        times[times.len() / 2],
        times[times.len() - 1]
    ))
}

/// Object_List read whole: ours at a 1000-device site's size (30,000 objects) and at 15,000,
/// bacpypes3 at 15,000 (it sends at most 65 segments, ~19,000 objects at 1476 octets).
async fn bacnet_object_list_rows() -> anyhow::Result<Vec<String>> {
    let mut rows = Vec::new();
    for (points, objects) in [(7_500, 15_000), (15_000, 30_000)] {
        let port = free_port()?;
        let ours = Proc(
            Command::new(std::env::current_exe()?)
                .args(["serve-bacnet", "--points", &points.to_string(), "--rate", "0"])
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .env("BUSBAR_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("start busbar-bench serve-bacnet")?,
        );
        rows.push(object_list_row("busbar", SocketAddr::from(([127, 0, 0, 1], port)), ours.0.id(), objects).await?);
    }
    let python = std::env::var("BUSBAR_PYTHON").unwrap_or_else(|_| "python3".into());
    let port = free_port()?;
    let peer = Proc(
        Command::new(&python)
            .arg(repo_root().join("bench/peers/bacnet_server.py"))
            .args([port.to_string(), "15000".into(), "0".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start the bacpypes3 server (pip install bacpypes3)")?,
    );
    rows.push(
        object_list_row(
            "bacpypes3 0.0.110 server",
            SocketAddr::from(([127, 0, 0, 1], port)),
            peer.0.id(),
            15_000,
        )
        .await?,
    );
    Ok(rows)
}

async fn bacnet_rows(window: Duration) -> anyhow::Result<Vec<String>> {
    let mut rows = Vec::new();
    let port = free_port()?;
    let ours = Proc(
        Command::new(std::env::current_exe()?)
            .args(["serve-bacnet", "--points", "1000", "--rate", "1000"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("BUSBAR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start busbar-bench serve-bacnet")?,
    );
    rows.extend(bacnet_server_rows("busbar", SocketAddr::from(([127, 0, 0, 1], port)), ours.0.id(), window).await?);
    drop(ours);
    let python = std::env::var("BUSBAR_PYTHON").unwrap_or_else(|_| "python3".into());
    let port = free_port()?;
    let peer = Proc(
        Command::new(&python)
            .arg(repo_root().join("bench/peers/bacnet_server.py"))
            .args([port.to_string(), "1000".into(), "1000".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start the bacpypes3 server (pip install bacpypes3)")?,
    );
    rows.extend(
        bacnet_server_rows(
            "bacpypes3 0.0.110 server",
            SocketAddr::from(([127, 0, 0, 1], port)),
            peer.0.id(),
            window,
        )
        .await?,
    );
    Ok(rows)
}

/// Walk an agent's `root` and time GETs of `get`, with the agent's CPU: one row.
async fn snmp_row(
    who: &str,
    target: SocketAddr,
    pid: u32,
    root: &[u32],
    get: &[u32],
    gets: usize,
) -> anyhow::Result<String> {
    // Wait for the agent to answer.
    for _ in 0..100 {
        if crate::snmp::get_latency(target, get, 1).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cpu = CpuWindow::start(pid);
    let (n, secs) = crate::snmp::bulk_walk(target, root).await?;
    let walk_cpu = cpu.percent();
    let (p50, p99) = crate::snmp::get_latency(target, get, gets).await?;
    let rss = rss_mib(pid).unwrap_or(f64::NAN);
    Ok(format!(
        "| snmp: {who} | bulkwalk {n} varbinds in {secs:.2} s = {:.0} varbinds/s; GET p50 {p50:.2} ms, p99 {p99:.2} ms | {walk_cpu:.0} % CPU (agent, during the walk), {rss:.0} MiB RSS | GETBULK max-repetitions 25, async-snmp client |",
        n as f64 / secs
    ))
}

async fn snmp_rows(quick: bool) -> anyhow::Result<Vec<String>> {
    let mut rows = Vec::new();
    let devices = if quick { 100 } else { 1000 };
    let port = free_port()?;
    let ours = Proc(
        Command::new(std::env::current_exe()?)
            .args(["serve-snmp", "--devices", &devices.to_string()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("BUSBAR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start busbar-bench serve-snmp")?,
    );
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    // busbarMeterVoltage of the first meter.
    let get = [1, 3, 6, 1, 4, 1, 32473, 1, 10, 1, 1, 1];
    rows.push(
        snmp_row(
            &format!("busbar agent, {devices} meters, whole enterprise tree"),
            target,
            ours.0.id(),
            &[1, 3, 6, 1, 4, 1, 32473],
            &get,
            1000,
        )
        .await?,
    );
    drop(ours);
    // net-snmp's own agent, walking everything it serves.
    let dir = std::env::temp_dir().join(format!("busbar-bench-snmpd-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let conf = dir.join("snmpd.conf");
    std::fs::write(&conf, "rocommunity public 127.0.0.1\n")?;
    let port = free_port()?;
    let snmpd = Proc(
        Command::new("snmpd")
            .args(["-f", "-Lf", "/dev/null", "-C", "-c"])
            .arg(&conf)
            .arg(format!("udp:127.0.0.1:{port}"))
            .env("SNMP_PERSISTENT_DIR", &dir)
            .env("MIBS", "")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start snmpd (apt-get install snmpd)")?,
    );
    rows.push(
        snmp_row(
            "net-snmp 5.9 snmpd, its whole tree",
            SocketAddr::from(([127, 0, 0, 1], port)),
            snmpd.0.id(),
            &[1, 3, 6, 1],
            &[1, 3, 6, 1, 2, 1, 1, 3, 0],
            1000,
        )
        .await?,
    );
    Ok(rows)
}

pub async fn run_all(args: &Args) -> anyhow::Result<String> {
    let window = if args.quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(8)
    };
    let want = |name: &str| args.only.as_deref().is_none_or(|o| name.contains(o));
    let mut out = vec![
        format!(
            "busbar-bench ({} build, {} cores)",
            if cfg!(debug_assertions) { "debug" } else { "release" },
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
        String::new(),
        "| row | figure | cost | note |".to_string(),
        "|---|---|---|---|".to_string(),
    ];
    if want("simulator") {
        for n in [10, 100, 1000] {
            out.push(simulated_devices_row(n, window).await?);
        }
    }
    if want("modbus") {
        out.extend(modbus_rows(window).await?);
    }
    if want("opcua") {
        out.extend(opcua_rows(window, args.quick).await?);
    }
    if want("bacnet") {
        out.extend(bacnet_rows(window).await?);
        out.extend(bacnet_object_list_rows().await?);
    }
    if want("snmp") {
        out.extend(snmp_rows(args.quick).await?);
    }
    if want("influx") {
        out.extend(crate::influx::influx_rows(args.quick).await?);
    }
    if want("bridge") {
        for n in [100, 1000] {
            out.push(acquisition_row(n, window).await?);
        }
    }
    if want("dlm") {
        out.extend(crate::dlm_loop::rows().await?);
    }
    if want("alarms") {
        out.extend(crate::alarms::journal_rows(args.quick)?);
        out.extend(crate::alarm_engine::query_rows(args.quick)?);
        out.extend(crate::alarm_engine::engine_rows(args.quick).await?);
    }
    Ok(out.join("\n"))
}
