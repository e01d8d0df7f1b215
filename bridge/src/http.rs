//! HTTP API (axum) and Prometheus metrics. JSON field names are stable and documented in
//! docs/http-api.md.

use crate::acquisition::{Acquisition, WriteOutcome};
use crate::config::Config;
use crate::store::{PointIdx, Store, RTT_BUCKETS_MS};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use busbar_core::time::rfc3339;
use busbar_modbus::server::Stats;
use serde::Deserialize;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<Store>,
    pub acq: Acquisition,
    pub config: Arc<Config>,
    /// Counters of each northbound server, by name.
    pub servers: Vec<(String, Arc<Stats>)>,
    /// Counters of the BACnet server, when it runs.
    pub bacnet: Option<Arc<crate::northbound::bacnet::BacnetStats>>,
    /// Counters of the InfluxDB sink, when it runs.
    pub history: Option<Arc<crate::history::HistoryStats>>,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/api/site", get(site))
        .route("/api/devices", get(devices))
        .route("/api/devices/{name}", get(device))
        .route("/api/points", get(points))
        .route("/api/points/{*id}", get(point).post(write_point))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn device_json(s: &ApiState, d: usize) -> Value {
    let dev = &s.config.devices[d];
    let conn = &s.config.connections[dev.connection];
    let st = s.store.status(d).map(|g| g.clone()).unwrap_or_default();
    json!({
        "name": dev.name,
        "profile": dev.profile.name,
        "family": dev.profile.family.as_str(),
        "manufacturer": dev.profile.manufacturer,
        "model": dev.profile.model,
        "connection": conn.name,
        "unit_id": dev.unit_id,
        "modbus_unit_id": dev.modbus_unit_id,
        "poll_interval_ms": dev.poll_interval.as_millis() as u64,
        "status": {
            "online": st.online,
            "last_good_read": st.last_good_read.map(rfc3339),
            "consecutive_failures": st.consecutive_failures,
            "rtt_ms": st.rtt.map(|r| r.as_secs_f64() * 1000.0),
            "polls": st.polls,
            "failures": st.failures,
            "last_error": st.last_error,
        },
        "points": s.store.device_points(d).filter(|p| s.store.meta(*p).is_some_and(|m| m.acquired)).count(),
    })
}

fn point_json(s: &ApiState, p: PointIdx) -> Value {
    let Some(meta) = s.store.meta(p) else {
        return Value::Null;
    };
    let dev = &s.config.devices[meta.device];
    let pt = &dev.profile.points[meta.profile_point];
    let sample = s.store.sample(p).unwrap_or_default();
    let label = sample.value.as_ref().and_then(|v| s.store.display_value(p, v));
    json!({
        "id": meta.id,
        "device": dev.name,
        "point": pt.id,
        "description": pt.description,
        "kind": pt.kind.as_str(),
        "unit": pt.unit.symbol(),
        "value": sample.value,
        "label": label,
        "quality": sample.quality.as_str(),
        "source_time": sample.source_time.map(rfc3339),
        "writable": meta.writable,
    })
}

async fn site(State(s): State<ApiState>) -> Json<Value> {
    let online = (0..s.store.device_count())
        .filter(|&d| s.store.status(d).is_some_and(|st| st.online))
        .count();
    Json(json!({
        "name": s.store.site_name,
        "id": s.store.site_id,
        "devices": s.store.device_count(),
        "devices_online": online,
        "points": s.store.len(),
        "started": rfc3339(s.store.started),
        "writes_enabled": s.config.writes_enabled,
    }))
}

async fn devices(State(s): State<ApiState>) -> Json<Value> {
    Json(Value::Array(
        (0..s.store.device_count()).map(|d| device_json(&s, d)).collect(),
    ))
}

async fn device(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    let Some(d) = s.store.device_index(&name) else {
        return error(StatusCode::NOT_FOUND, format!("unknown device `{name}`"));
    };
    let mut v = device_json(&s, d);
    v["points"] = Value::Array(
        s.store
            .device_points(d)
            .filter(|p| s.store.meta(*p).is_some_and(|m| m.acquired))
            .map(|p| point_json(&s, p))
            .collect(),
    );
    Json(v).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointFilter {
    device: Option<String>,
    family: Option<String>,
    quality: Option<String>,
}

async fn points(State(s): State<ApiState>, Query(f): Query<PointFilter>) -> Json<Value> {
    let mut out = Vec::new();
    for d in 0..s.store.device_count() {
        let dev = &s.config.devices[d];
        if f.device.as_deref().is_some_and(|n| n != dev.name)
            || f.family.as_deref().is_some_and(|n| n != dev.profile.family.as_str())
        {
            continue;
        }
        for p in s.store.device_points(d) {
            if !s.store.meta(p).is_some_and(|m| m.acquired) {
                continue;
            }
            if let Some(q) = &f.quality {
                if s.store.sample(p).is_none_or(|x| x.quality.as_str() != q) {
                    continue;
                }
            }
            out.push(point_json(&s, p));
        }
    }
    Json(Value::Array(out))
}

async fn point(State(s): State<ApiState>, Path(id): Path<String>) -> Response {
    match s.store.find(&id) {
        Some(p) => Json(point_json(&s, p)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("unknown point `{id}`")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteBody {
    value: f64,
}

async fn write_point(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Option<Json<WriteBody>>,
) -> Response {
    let Some(token) = s.config.http.as_ref().and_then(|h| h.token.clone()) else {
        return error(
            StatusCode::FORBIDDEN,
            "HTTP writes need servers.http.token in the config",
        );
    };
    let given = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "));
    if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let Some(Json(body)) = body else {
        return error(StatusCode::BAD_REQUEST, "expected {\"value\": number}");
    };
    let Some(p) = s.store.find(&id) else {
        return error(StatusCode::NOT_FOUND, format!("unknown point `{id}`"));
    };
    let outcome = s.acq.write(p, body.value).await;
    let status = match &outcome {
        WriteOutcome::Done { .. } => StatusCode::OK,
        WriteOutcome::NotWritable => StatusCode::FORBIDDEN,
        WriteOutcome::InvalidValue { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        WriteOutcome::Refused { .. } => StatusCode::CONFLICT,
        WriteOutcome::Timeout => StatusCode::GATEWAY_TIMEOUT,
        WriteOutcome::CommFailure { .. } => StatusCode::BAD_GATEWAY,
    };
    (status, Json(json!({ "id": id, "result": outcome }))).into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Unlabelled metrics: (name, type, help, value) each.
fn plain_metrics(o: &mut String, rows: &[(&str, &str, &str, f64)]) {
    for (metric, kind, help, value) in rows {
        let _ = writeln!(o, "# HELP {metric} {help}\n# TYPE {metric} {kind}\n{metric} {value}");
    }
}

async fn metrics(State(s): State<ApiState>) -> Response {
    let mut o = String::new();
    let n = s.store.device_count();
    let statuses: Vec<_> = (0..n)
        .map(|d| s.store.status(d).map(|g| g.clone()).unwrap_or_default())
        .collect();
    let names: Vec<String> = (0..n).map(|d| label(s.store.device_name(d))).collect();
    let acquired: Vec<usize> = (0..n)
        .map(|d| {
            s.store
                .device_points(d)
                .filter(|p| s.store.meta(*p).is_some_and(|m| m.acquired))
                .count()
        })
        .collect();
    let mut per_device = |name: &str, kind: &str, help: &str, value: &dyn Fn(usize) -> String| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (d, device) in names.iter().enumerate() {
            let _ = writeln!(o, "{name}{{device=\"{device}\"}} {}", value(d));
        }
    };
    per_device(
        "busbar_device_online",
        "gauge",
        "1 when the device answered its last poll.",
        &|d| u8::from(statuses[d].online).to_string(),
    );
    per_device("busbar_device_polls_total", "counter", "Polls of the device.", &|d| {
        statuses[d].polls.to_string()
    });
    per_device(
        "busbar_device_failures_total",
        "counter",
        "Failed polls (no answer or an exception).",
        &|d| statuses[d].failures.to_string(),
    );
    per_device(
        "busbar_device_points",
        "gauge",
        "Points the device's polls acquire.",
        &|d| acquired[d].to_string(),
    );
    per_device(
        "busbar_device_poll_lateness_seconds_max",
        "gauge",
        "Largest delay of a poll behind its schedule.",
        &|d| statuses[d].jitter_max_s.to_string(),
    );
    per_device(
        "busbar_device_poll_lateness_seconds_sum",
        "counter",
        "Sum of poll delays behind schedule (divide by polls).",
        &|d| statuses[d].jitter_sum_s.to_string(),
    );
    let _ = writeln!(o, "# HELP busbar_device_rtt_seconds Round-trip time of the device's requests.\n# TYPE busbar_device_rtt_seconds histogram");
    for d in 0..n {
        let st = &statuses[d];
        for (i, b) in RTT_BUCKETS_MS.iter().enumerate() {
            let _ = writeln!(
                o,
                "busbar_device_rtt_seconds_bucket{{device=\"{}\",le=\"{}\"}} {}",
                names[d],
                b / 1000.0,
                st.rtt_counts[i]
            );
        }
        let _ = writeln!(
            o,
            "busbar_device_rtt_seconds_bucket{{device=\"{}\",le=\"+Inf\"}} {}",
            names[d], st.rtt_total
        );
        let _ = writeln!(
            o,
            "busbar_device_rtt_seconds_sum{{device=\"{}\"}} {}",
            names[d], st.rtt_sum_s
        );
        let _ = writeln!(
            o,
            "busbar_device_rtt_seconds_count{{device=\"{}\"}} {}",
            names[d], st.rtt_total
        );
    }
    let mut by_quality = std::collections::BTreeMap::new();
    for x in s.store.samples().iter() {
        *by_quality.entry(x.quality.as_str()).or_insert(0u64) += 1;
    }
    let _ = writeln!(o, "# HELP busbar_points Points by quality.\n# TYPE busbar_points gauge");
    for (q, c) in by_quality {
        let _ = writeln!(o, "busbar_points{{quality=\"{q}\"}} {c}");
    }
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
        let _ = writeln!(o, "# HELP {metric} {help}\n# TYPE {metric} {kind}");
        for (name, st) in &s.servers {
            let _ = writeln!(o, "{metric}{{server=\"{}\"}} {}", label(name), get(st));
        }
    }
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    if let Some(b) = &s.bacnet {
        plain_metrics(
            &mut o,
            &[
                (
                    "busbar_bacnet_requests_total",
                    "counter",
                    "BACnet requests received.",
                    load(&b.requests) as f64,
                ),
                (
                    "busbar_bacnet_rejected_total",
                    "counter",
                    "BACnet requests rejected (malformed or unknown service).",
                    load(&b.rejected) as f64,
                ),
                (
                    "busbar_bacnet_dropped_total",
                    "counter",
                    "Datagrams dropped (bad BVLL, NPDU or APDU).",
                    load(&b.dropped) as f64,
                ),
                (
                    "busbar_bacnet_notifications_total",
                    "counter",
                    "COV notifications sent (retries excluded).",
                    load(&b.notifications) as f64,
                ),
                (
                    "busbar_bacnet_cov_subscriptions",
                    "gauge",
                    "COV subscriptions held.",
                    load(&b.subscriptions) as f64,
                ),
                (
                    "busbar_bacnet_foreign_devices",
                    "gauge",
                    "Foreign devices registered.",
                    load(&b.foreign_devices) as f64,
                ),
            ],
        );
    }
    if let Some(h) = &s.history {
        plain_metrics(
            &mut o,
            &[
                (
                    "busbar_history_queued_lines",
                    "gauge",
                    "Lines buffered, not yet acknowledged by InfluxDB.",
                    load(&h.queued) as f64,
                ),
                (
                    "busbar_history_buffer_bytes",
                    "gauge",
                    "Bytes of the disk buffer.",
                    load(&h.buffer_bytes) as f64,
                ),
                (
                    "busbar_history_written_lines_total",
                    "counter",
                    "Lines InfluxDB acknowledged.",
                    load(&h.written) as f64,
                ),
                (
                    "busbar_history_retries_total",
                    "counter",
                    "Writes retried (timeouts, connection errors, 5xx).",
                    load(&h.retries) as f64,
                ),
                (
                    "busbar_history_refused_lines_total",
                    "counter",
                    "Lines of batches InfluxDB refused (4xx).",
                    load(&h.refused) as f64,
                ),
                (
                    "busbar_history_dropped_lines_total",
                    "counter",
                    "Lines dropped because the buffer was over its quota.",
                    load(&h.dropped_quota) as f64,
                ),
                (
                    "busbar_history_writes_total",
                    "counter",
                    "Successful write requests.",
                    load(&h.writes) as f64,
                ),
                (
                    "busbar_history_write_seconds_sum",
                    "counter",
                    "Time spent in successful write requests.",
                    load(&h.write_seconds_sum_us) as f64 / 1e6,
                ),
            ],
        );
    }
    ([("content-type", "text/plain; version=0.0.4")], o).into_response()
}
