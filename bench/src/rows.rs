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

fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    target.join(profile).join(name)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child process killed when dropped.
struct Proc(Child);

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

async fn modbus_rows(window: Duration) -> anyhow::Result<Vec<String>> {
    let mut rows = Vec::new();
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
    rows.push(format!("| modbus: busbar-sim gateway, 8 clients, FC03 x38 regs | {ours:.0} req/s | {our_cpu:.0} % CPU, {errors} errors | |"));
    // The loopback limit: a bare echo server of the same request/response size.
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
    let (limit, _) = read_load(SocketAddr::from(([127, 0, 0, 1], eport)), 2, 50512, 38, 8, window).await?;
    let echo_cpu = cpu.percent();
    drop(echo);
    rows.push(format!(
        "| modbus: bare TCP echo, same sizes (loopback limit) | {limit:.0} req/s | {echo_cpu:.0} % CPU | busbar-sim at {:.0} % of it |",
        100.0 * ours / limit.max(1e-9)
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
                rows.push(format!("| modbus: pymodbus 3 server, same load | {theirs:.0} req/s | {their_cpu:.0} % CPU, {errors} errors | ratio {:.1}x (target >= 20x) |", ours / theirs.max(1e-9)));
            } else {
                rows.push("| modbus: pymodbus server | did not start (pip install pymodbus) | | |".into());
            }
        }
        Err(e) => rows.push(format!("| modbus: pymodbus server | not run: {e} | | |")),
    }
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
    Ok(out.join("\n"))
}
