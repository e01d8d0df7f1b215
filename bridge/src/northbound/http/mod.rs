//! The HTTP API (axum) and `/metrics` (the registry's rendering). JSON field names are stable
//! and documented in docs/http-api.md.

mod alarms;
pub mod section;

pub use section::{Http, HttpSettings};

use crate::acquisition::{Acquisition, WriteOutcome};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{PointIdx, Store};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use busbar_core::time::rfc3339;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<Store>,
    pub acq: Acquisition,
    pub config: Arc<Config>,
    /// What `/metrics` renders: every component's registered counters.
    pub metrics: Arc<Metrics>,
    /// The alarm service, when configured.
    pub alarms: Option<Arc<crate::alarms::Alarms>>,
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
        .route("/api/alarms", get(alarms::listed))
        .route("/api/alarms/all", get(alarms::all))
        .route("/api/alarms/history", get(alarms::history))
        .route("/api/alarms/{action}", axum::routing::post(alarms::act))
        .with_state(state)
}

/// An error answer (status, message), made into `{"error": ...}` when returned.
pub(crate) struct ApiError(StatusCode, String);

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError(status, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
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

/// The bearer token check of every request that changes something: `Err` is the answer.
fn authorized(s: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = s.config.servers.http.as_ref().and_then(|h| h.token.clone()) else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "HTTP writes need servers.http.token in the config",
        ));
    };
    let given = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "));
    if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token"));
    }
    Ok(())
}

async fn write_point(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Option<Json<WriteBody>>,
) -> Response {
    if let Err(answer) = authorized(&s, &headers) {
        return answer.into_response();
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

async fn metrics(State(s): State<ApiState>) -> Response {
    ([("content-type", "text/plain; version=0.0.4")], s.metrics.render()).into_response()
}
