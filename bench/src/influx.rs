//! History sink rows: a backlog of line protocol (as an InfluxDB outage leaves it in the disk
//! buffer) sent to a real influxd 1.x by our sender (read segment, gzip, POST, delete), next to
//! curl posting the same segment files over one keep-alive connection (influxd's own ingest
//! limit for those bytes). Both write the same lines into separate databases of one influxd,
//! and the bench checks both databases hold the same number of values.

use crate::proc_stats::cpu_seconds;
use crate::rows::{free_port, Proc};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// influxd on free ports in a temporary directory.
struct Influxd {
    proc: Proc,
    url: String,
    dir: PathBuf,
}

impl Influxd {
    async fn start() -> anyhow::Result<Influxd> {
        let dir = std::env::temp_dir().join(format!("busbar-bench-influxd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let (http, rpc) = (free_port()?, free_port()?);
        let d = dir.display();
        let conf = format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n[meta]\n  dir = \"{d}/meta\"\n\
             [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
             [http]\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n[monitor]\n  store-enabled = false\n"
        );
        std::fs::write(dir.join("influxdb.conf"), conf)?;
        let proc = Proc(
            Command::new("influxd")
                .arg("-config")
                .arg(dir.join("influxdb.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("start influxd (apt-get install influxdb)")?,
        );
        let url = format!("http://127.0.0.1:{http}");
        for _ in 0..200 {
            if curl(&["-sf", &format!("{url}/ping")]).is_ok() {
                return Ok(Influxd { proc, url, dir });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("influxd did not start")
    }

    fn query(&self, db: &str, q: &str) -> anyhow::Result<String> {
        curl(&[
            "-sf",
            "-XPOST",
            &format!("{}/query", self.url),
            "--data-urlencode",
            &format!("db={db}"),
            "--data-urlencode",
            &format!("q={q}"),
        ])
    }

    fn values(&self, db: &str) -> anyhow::Result<u64> {
        let text = self.query(db, "SELECT count(\"total_volume\") FROM \"tank_gauge\"")?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        v["results"][0]["series"][0]["values"][0][1]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("no count in {text}"))
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        let _ = self.proc.0.kill();
        let _ = self.proc.0.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn curl(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("curl").args(args).output().context("run curl")?;
    if !out.status.success() {
        anyhow::bail!("curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Field values in the backlog's files.
fn fields_in(dir: &Path) -> anyhow::Result<u64> {
    let mut n = 0u64;
    for f in segments(dir)? {
        for line in std::fs::read_to_string(&f)?.lines() {
            let fields = line.split(' ').nth(1).unwrap_or_default();
            n += fields.split(',').count() as u64;
        }
    }
    Ok(n)
}

fn segments(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "lp"))
        .collect();
    files.sort();
    Ok(files)
}

fn row(who: &str, lines: u64, fields: u64, seconds: f64, server_cpu: f64, note: &str) -> String {
    format!(
        "| {who}, {lines} lines | {:.0} lines/s, {:.0} values/s | influxd {server_cpu:.1} CPU-s | {note} |",
        lines as f64 / seconds,
        fields as f64 / seconds,
    )
}

pub async fn influx_rows(quick: bool) -> anyhow::Result<Vec<String>> {
    let influxd = Influxd::start().await?;
    let sizes: &[u64] = if quick { &[10_000] } else { &[20_000, 100_000] };
    let mut rows = Vec::new();
    for &size in sizes {
        let work = std::env::temp_dir().join(format!("busbar-bench-backlog-{}-{size}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let (ours_dir, curl_dir) = (work.join("ours"), work.join("curl"));
        let out = Command::new(std::env::current_exe()?)
            .args(["serve-history", "--lines", &size.to_string(), "--dir"])
            .arg(&ours_dir)
            .output()
            .context("busbar-bench serve-history --lines")?;
        if !out.status.success() {
            anyhow::bail!("serve-history: {}", String::from_utf8_lossy(&out.stderr));
        }
        let prepared: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let lines = prepared["lines"].as_u64().unwrap_or(0);
        std::fs::create_dir_all(&curl_dir)?;
        for f in segments(&ours_dir)? {
            if let Some(name) = f.file_name() {
                std::fs::copy(&f, curl_dir.join(name))?;
            }
        }
        let fields = fields_in(&curl_dir)?;
        let (db_ours, db_curl) = (format!("sink{size}"), format!("curl{size}"));
        for db in [&db_ours, &db_curl] {
            influxd.query("", &format!("CREATE DATABASE \"{db}\""))?;
        }
        let pid = influxd.proc.0.id();

        // Ours: the history sender over the backlog.
        let cpu0 = cpu_seconds(pid).unwrap_or(0.0);
        let out = Command::new(std::env::current_exe()?)
            .args(["serve-history", "--url", &influxd.url, "--db", &db_ours, "--dir"])
            .arg(&ours_dir)
            .env("BUSBAR_LOG", "warn")
            .output()
            .context("busbar-bench serve-history --url")?;
        if !out.status.success() {
            anyhow::bail!("serve-history: {}", String::from_utf8_lossy(&out.stderr));
        }
        let sent: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let ours_s = sent["seconds"].as_f64().unwrap_or(f64::NAN);
        let ours_cpu = cpu_seconds(pid).unwrap_or(0.0) - cpu0;

        // curl: the same files, plain line protocol, one connection.
        let url = format!("{}/write?db={db_curl}&precision=ms", influxd.url);
        let mut args: Vec<String> = Vec::new();
        for (i, f) in segments(&curl_dir)?.iter().enumerate() {
            if i > 0 {
                args.push("--next".into());
            }
            args.extend(["-sf".into(), "-o".into(), "/dev/null".into()]);
            args.extend(["--data-binary".into(), format!("@{}", f.display()), url.clone()]);
        }
        let cpu0 = cpu_seconds(pid).unwrap_or(0.0);
        let started = Instant::now();
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&arg_refs)?;
        let curl_s = started.elapsed().as_secs_f64();
        let curl_cpu = cpu_seconds(pid).unwrap_or(0.0) - cpu0;

        let (a, b) = (influxd.values(&db_ours)?, influxd.values(&db_curl)?);
        if a != b || a == 0 {
            anyhow::bail!("influxd holds {a} values written by the sink and {b} by curl");
        }
        rows.push(row(
            "history sink -> influxd 1.6 (backlog replay, gzip)",
            lines,
            fields,
            ours_s,
            ours_cpu,
            &format!(
                "{:.2}x curl's rate; both databases hold the same {a} total_volume values",
                curl_s / ours_s
            ),
        ));
        rows.push(row(
            "curl posting the same segments (plain, keep-alive)",
            lines,
            fields,
            curl_s,
            curl_cpu,
            "influxd's own ingest limit for these lines",
        ));
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(rows)
}
