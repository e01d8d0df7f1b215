//! The control API (HTTP/JSON, 127.0.0.1 by default): list devices, read their simulated truth,
//! trigger events, inject and clear faults, pause, step or speed up the clock. Documented in
//! docs/simulator.md.

use crate::runner::Clock;
use crate::scenario::{parse_action, Action};
use crate::site::Site;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use busbar_core::duration::parse_duration;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Clone)]
struct AppState {
    site: Arc<Mutex<Site>>,
    clock: Clock,
}

impl AppState {
    fn site(&self) -> MutexGuard<'_, Site> {
        self.site.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The API's routes.
pub fn router(site: Arc<Mutex<Site>>, clock: Clock) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/api/site", get(site_info))
        .route("/api/devices", get(devices))
        .route("/api/devices/{name}", get(device))
        .route("/api/devices/{name}/events", post(device_event))
        .route("/api/devices/{name}/faults", post(inject_fault).delete(clear_faults))
        .route("/api/events", post(site_event))
        .route("/api/clock", get(clock_info).post(set_clock))
        .route("/api/journal", get(journal))
        .with_state(AppState { site, clock })
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn clock_json(s: &AppState) -> Value {
    let (speed, paused) = {
        let c = s.clock.lock().unwrap_or_else(|p| p.into_inner());
        (c.speed, c.paused)
    };
    let site = s.site();
    json!({
        "sim_time_s": site.sim_time_s(),
        "time_of_day": crate::clock_text(site.time_of_day_h() * 3600.0, 0.0),
        "speed": speed,
        "paused": paused,
        "step_ms": (site.step_s() * 1000.0).round(),
        "station_open": site.station_open(),
    })
}

async fn site_info(State(s): State<AppState>) -> Json<Value> {
    let clock = clock_json(&s);
    let site = s.site();
    Json(json!({
        "name": site.name,
        "id": site.id,
        "seed": site.seed,
        "devices": site.devices().count(),
        "vehicles_waiting": site.vehicles_waiting(),
        "clock": clock,
    }))
}

fn device_summary(site: &Site, i: usize) -> Value {
    let Some(d) = site.devices().nth(i) else {
        return Value::Null;
    };
    let faults = d.lock().faults.clone();
    json!({
        "name": d.name,
        "profile": d.profile.name,
        "family": d.profile.family.as_str(),
        "unit_id": d.unit_id,
        "listener": d.listener,
        "faults": faults,
    })
}

async fn devices(State(s): State<AppState>) -> Json<Value> {
    let site = s.site();
    let list: Vec<Value> = (0..site.devices().count()).map(|i| device_summary(&site, i)).collect();
    Json(Value::Array(list))
}

async fn device(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    let site = s.site();
    let Some(i) = site.device_index(&name) else {
        return error(StatusCode::NOT_FOUND, format!("unknown device `{name}`"));
    };
    let mut v = device_summary(&site, i);
    let truth: serde_json::Map<String, Value> = site
        .truth(i)
        .into_iter()
        .map(|(k, value, unit)| (k, json!({ "value": value, "unit": unit.symbol() })))
        .collect();
    v["truth"] = Value::Object(truth);
    v["params"] = site.device_params(i).cloned().unwrap_or(Value::Null);
    Json(v).into_response()
}

fn act(s: &AppState, device: Option<&str>, body: &Value, want_fault: bool) -> Response {
    let (action, extra_device) = match parse_action(body) {
        Ok(x) => x,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if extra_device.is_some() {
        return error(StatusCode::BAD_REQUEST, "the device is named by the URL, not the body");
    }
    let is_fault = matches!(action, Action::Fault { .. } | Action::ClearFaults);
    if is_fault != want_fault {
        return error(
            StatusCode::BAD_REQUEST,
            if want_fault {
                "expected a `fault`"
            } else {
                "expected an `event`"
            },
        );
    }
    let mut site = s.site();
    if let Some(name) = device {
        if site.device_index(name).is_none() {
            return error(StatusCode::NOT_FOUND, format!("unknown device `{name}`"));
        }
    }
    match site.apply(device, action) {
        Ok(()) => {
            site.publish();
            Json(json!({ "ok": true, "sim_time_s": site.sim_time_s() })).into_response()
        }
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

async fn device_event(State(s): State<AppState>, Path(name): Path<String>, Json(body): Json<Value>) -> Response {
    act(&s, Some(&name), &body, false)
}

async fn site_event(State(s): State<AppState>, Json(body): Json<Value>) -> Response {
    act(&s, None, &body, false)
}

async fn inject_fault(State(s): State<AppState>, Path(name): Path<String>, Json(body): Json<Value>) -> Response {
    act(&s, Some(&name), &body, true)
}

async fn clear_faults(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    act(&s, Some(&name), &json!({ "clear_faults": true }), true)
}

async fn clock_info(State(s): State<AppState>) -> Json<Value> {
    Json(clock_json(&s))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockRequest {
    #[serde(default)]
    paused: Option<bool>,
    #[serde(default)]
    speed: Option<f64>,
    /// Run this much simulated time now (also while paused), e.g. `"10m"`.
    #[serde(default)]
    step: Option<String>,
}

async fn set_clock(State(s): State<AppState>, Json(req): Json<ClockRequest>) -> Response {
    let step = match req.step.as_deref().map(parse_duration).transpose() {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if let Some(speed) = req.speed {
        if !(0.0..=100_000.0).contains(&speed) {
            return error(StatusCode::BAD_REQUEST, "speed must be within 0..=100000");
        }
    }
    {
        let mut c = s.clock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = req.paused {
            c.paused = p;
        }
        if let Some(v) = req.speed {
            c.speed = v;
        }
    }
    if let Some(d) = step {
        // Run the steps now, so that the caller sees their effect in its next read.
        let mut site = s.site();
        let target = site.sim_time_s() + d.as_secs_f64();
        site.advance_to(target);
        site.publish();
    }
    Json(clock_json(&s)).into_response()
}

async fn journal(State(s): State<AppState>) -> Json<Value> {
    let site = s.site();
    Json(json!(site.journal.iter().collect::<Vec<_>>()))
}
