//! `history.influxdb`: the section, its validation (shared with `busbar demo --influxdb`), the
//! start and the counters.

use super::HistoryStats;
use crate::component::{Component, Context, Endpoint, Resolve, Started};
use crate::metrics::{self, MetricSource};
use serde::Deserialize;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The component.
pub struct InfluxDb;

/// `history.influxdb`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxDoc {
    #[serde(default = "crate::component::on")]
    pub enabled: bool,
    /// Base URL, e.g. http://127.0.0.1:8086.
    pub url: String,
    /// v1 (`/write`, InfluxDB 1.x and 3.x) or v2 (`/api/v2/write`, InfluxDB 2.x and 3.x).
    #[serde(default = "d_v1")]
    pub api: String,
    #[serde(default)]
    pub database: String,
    #[serde(default)]
    pub retention_policy: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub org: String,
    #[serde(default)]
    pub bucket: String,
    #[serde(default)]
    pub token: Option<String>,
    /// Store-and-forward buffer directory (relative to this file).
    #[serde(default = "d_history_buffer")]
    pub buffer_dir: String,
    #[serde(default = "d_quota_mb")]
    pub buffer_quota_mb: f64,
    /// Every point is written again at this interval even when unchanged (0: never).
    #[serde(default = "d_snapshot_s")]
    pub snapshot_interval_s: u64,
    #[serde(default = "d_batch_lines")]
    pub batch_lines: usize,
    #[serde(default = "d_batch_ms")]
    pub batch_interval_ms: u64,
    #[serde(default = "d_influx_timeout")]
    pub timeout_ms: u64,
}

/// The smallest buffer quota (64 KiB): a few segments.
const MIN_QUOTA_MB: f64 = 0.0625;

fn d_v1() -> String {
    "v1".into()
}
fn d_history_buffer() -> String {
    "history-buffer".into()
}
fn d_quota_mb() -> f64 {
    512.0
}
fn d_snapshot_s() -> u64 {
    300
}
fn d_batch_lines() -> usize {
    5000
}
fn d_batch_ms() -> u64 {
    1000
}
fn d_influx_timeout() -> u64 {
    10_000
}

impl InfluxDoc {
    /// A `history.influxdb` section naming only its URL: every other key at its default.
    pub fn new(url: &str) -> InfluxDoc {
        InfluxDoc {
            enabled: true,
            url: url.to_string(),
            api: d_v1(),
            database: String::new(),
            retention_policy: String::new(),
            username: None,
            password: None,
            org: String::new(),
            bucket: String::new(),
            token: None,
            buffer_dir: d_history_buffer(),
            buffer_quota_mb: d_quota_mb(),
            snapshot_interval_s: d_snapshot_s(),
            batch_lines: d_batch_lines(),
            batch_interval_ms: d_batch_ms(),
            timeout_ms: d_influx_timeout(),
        }
    }

    /// The settings this section gives (`buffer_dir` relative to `base`), or each key that is
    /// wrong with its reason.
    pub fn resolve(&self, base: &std::path::Path) -> Result<InfluxSettings, Vec<(&'static str, String)>> {
        let mut wrong = Vec::new();
        let api = match self.api.as_str() {
            "v1" => InfluxApi::V1,
            "v2" => InfluxApi::V2,
            other => {
                wrong.push(("api", format!("`{other}` is not v1 or v2")));
                InfluxApi::V1
            }
        };
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            wrong.push(("url", format!("`{}` is not an http(s) URL", self.url)));
        }
        match api {
            InfluxApi::V1 if self.database.is_empty() => wrong.push(("database", "the v1 API needs a database".into())),
            InfluxApi::V2 if self.org.is_empty() || self.bucket.is_empty() => {
                wrong.push(("org", "the v2 API needs org and bucket".into()))
            }
            _ => {}
        }
        let mb = self.buffer_quota_mb;
        if !(mb.is_finite() && (MIN_QUOTA_MB..=1e7).contains(&mb)) {
            wrong.push((
                "buffer_quota_mb",
                format!("{mb} is not a quota: give {MIN_QUOTA_MB} (64 KiB) to 10000000 (MB)"),
            ));
        }
        if !wrong.is_empty() {
            return Err(wrong);
        }
        let quota = (mb * 1024.0 * 1024.0) as u64;
        Ok(InfluxSettings {
            url: self.url.clone(),
            api,
            database: self.database.clone(),
            retention_policy: self.retention_policy.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            org: self.org.clone(),
            bucket: self.bucket.clone(),
            token: self.token.clone(),
            buffer_dir: base.join(&self.buffer_dir),
            buffer_quota_bytes: quota,
            segment_bytes: (quota / 8).clamp(4096, 256 * 1024),
            snapshot_interval: (self.snapshot_interval_s > 0)
                .then(|| Duration::from_secs(self.snapshot_interval_s.clamp(10, 86_400))),
            batch_lines: self.batch_lines.clamp(1, 1_000_000),
            batch_interval: Duration::from_millis(self.batch_interval_ms.clamp(10, 600_000)),
            timeout: Duration::from_millis(self.timeout_ms.clamp(100, 600_000)),
        })
    }
}

/// Which InfluxDB write API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfluxApi {
    V1,
    V2,
}

/// History sink settings (`history.influxdb`).
#[derive(Debug, Clone)]
pub struct InfluxSettings {
    pub url: String,
    pub api: InfluxApi,
    pub database: String,
    pub retention_policy: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub org: String,
    pub bucket: String,
    pub token: Option<String>,
    pub buffer_dir: std::path::PathBuf,
    pub buffer_quota_bytes: u64,
    /// A segment is sealed at this size (a quarter of a megabyte, less for a small quota).
    pub segment_bytes: u64,
    /// Every point is written again at this interval, changed or not, so that any time range
    /// of a dashboard starts with values.
    pub snapshot_interval: Option<Duration>,
    pub batch_lines: usize,
    pub batch_interval: Duration,
    pub timeout: Duration,
}

impl Component for InfluxDb {
    type Doc = InfluxDoc;
    type Settings = InfluxSettings;

    fn enabled(doc: &InfluxDoc) -> bool {
        doc.enabled
    }

    fn resolve(doc: &InfluxDoc, cx: &mut Resolve<'_>) -> Option<InfluxSettings> {
        match doc.resolve(cx.base_dir) {
            Ok(settings) => Some(settings),
            Err(wrong) => {
                for (key, message) in wrong {
                    cx.error(key, message);
                }
                None
            }
        }
    }

    async fn start(s: &InfluxSettings, cx: &Context) -> anyhow::Result<Started> {
        let alarms = cx.alarms.as_ref().map(|a| a.subscribe());
        let (stats, tasks) = super::start(s, cx.store.clone(), alarms, cx.shutdown.clone())?;
        cx.metrics.register(stats);
        Ok(Started {
            endpoint: Endpoint {
                name: "influxdb",
                local: None,
                what: "influxdb history",
                detail: "on (store-and-forward buffer; counters on /metrics busbar_history_*)".into(),
            },
            tasks,
        })
    }
}

impl MetricSource for HistoryStats {
    fn write(&self, out: &mut String) {
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
        metrics::plain(
            out,
            &[
                (
                    "busbar_history_queued_lines",
                    "gauge",
                    "Lines buffered, not yet acknowledged by InfluxDB.",
                    load(&self.queued),
                ),
                (
                    "busbar_history_buffer_bytes",
                    "gauge",
                    "Bytes of the disk buffer.",
                    load(&self.buffer_bytes),
                ),
                (
                    "busbar_history_written_lines_total",
                    "counter",
                    "Lines InfluxDB acknowledged.",
                    load(&self.written),
                ),
                (
                    "busbar_history_retries_total",
                    "counter",
                    "Writes retried (timeouts, connection errors, 5xx).",
                    load(&self.retries),
                ),
                (
                    "busbar_history_refused_lines_total",
                    "counter",
                    "Lines of batches InfluxDB refused (4xx).",
                    load(&self.refused),
                ),
                (
                    "busbar_history_dropped_lines_total",
                    "counter",
                    "Lines dropped because the buffer was over its quota.",
                    load(&self.dropped_quota),
                ),
                (
                    "busbar_history_writes_total",
                    "counter",
                    "Successful write requests.",
                    load(&self.writes),
                ),
                (
                    "busbar_history_write_seconds_sum",
                    "counter",
                    "Time spent in successful write requests.",
                    load(&self.write_seconds_sum_us) / 1e6,
                ),
            ],
        );
    }
}
