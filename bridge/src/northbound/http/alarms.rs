//! The alarm endpoints: the alarms that need attention, every alarm defined, the journal's
//! history with filters and paging (JSON or CSV), and the operator actions (acknowledge,
//! shelve, unshelve, disable, enable) behind the bearer token, the user named in the journal.

use super::{authorized, ApiError, ApiState};
use crate::alarms::journal::Filter;
use crate::alarms::{Action, ActionError, Actor, AlarmError, Alarms, Kind, Severity, Transition};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn service(s: &ApiState) -> Result<&Arc<Alarms>, ApiError> {
    s.alarms.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "alarms are not configured (no `alarms:` section)",
        )
    })
}

/// `GET /api/alarms`: active, unacknowledged, shelved or out-of-service alarms.
pub async fn listed(State(s): State<ApiState>) -> Response {
    match service(&s) {
        Ok(a) => Json(a.listed().await).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /api/alarms/all`: every alarm defined.
pub async fn all(State(s): State<ApiState>) -> Response {
    match service(&s) {
        Ok(a) => Json(a.all().await).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    /// RFC 3339 (`2026-11-29T08:00:00Z`), a date, or Unix milliseconds.
    from: Option<String>,
    to: Option<String>,
    device: Option<String>,
    alarm: Option<String>,
    /// This severity and above.
    severity: Option<String>,
    kind: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

fn time_arg(name: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    let Some(text) = v else { return Ok(None) };
    text.parse::<i64>()
        .ok()
        .or_else(|| busbar_core::time::parse_rfc3339(text))
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("{name}: `{text}` is not a time (2026-11-29T08:00:00Z, 2026-11-29 or Unix ms)"),
            )
        })
}

fn filter_of(q: &HistoryQuery) -> Result<Filter, ApiError> {
    let min_severity = match &q.severity {
        None => None,
        Some(t) => Some(Severity::parse(t).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("severity `{t}` is not one of info, warning, minor, major, critical"),
            )
        })?),
    };
    let kind =
        match &q.kind {
            None => None,
            Some(t) => Some(Kind::parse(t).ok_or_else(|| {
                ApiError::new(StatusCode::BAD_REQUEST, format!("kind `{t}` is not a transition kind"))
            })?),
        };
    Ok(Filter {
        from_ms: time_arg("from", &q.from)?,
        to_ms: time_arg("to", &q.to)?,
        device: q.device.clone(),
        alarm: q.alarm.clone(),
        min_severity,
        kind,
        limit: q.limit.unwrap_or(100).clamp(1, 100_000),
        offset: q.offset.unwrap_or(0),
        oldest_first: false,
    })
}

/// A CSV field, quoted when it must be.
fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

fn csv(rows: &[Transition]) -> String {
    let mut out = String::from(
        "seq,time,alarm,kind,severity,source,level,device,point,value,message,user,via,comment,active,acknowledged,shelved_until,disabled\n",
    );
    for t in rows {
        let shelved = t
            .state
            .shelved_until_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .map(|ms| busbar_core::time::rfc3339(std::time::UNIX_EPOCH + Duration::from_millis(ms)))
            .unwrap_or_default();
        let fields = [
            t.seq.to_string(),
            busbar_core::time::rfc3339(t.time),
            t.alarm.clone(),
            t.kind.as_str().into(),
            t.severity.as_str().into(),
            t.source.as_str().into(),
            t.level.map(|l| l.as_str().to_string()).unwrap_or_default(),
            t.device.clone(),
            t.point.clone(),
            t.value.map(|v| v.to_string()).unwrap_or_default(),
            t.message.clone(),
            t.actor.user.clone(),
            t.actor.via.clone(),
            t.actor.comment.clone(),
            t.state.active.to_string(),
            t.state.acknowledged.to_string(),
            shelved,
            t.state.disabled.to_string(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// `GET /api/alarms/history`: journal entries, newest first.
pub async fn history(State(s): State<ApiState>, Query(q): Query<HistoryQuery>) -> Response {
    let alarms = match service(&s) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let filter = match filter_of(&q) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let rows = match alarms.history(filter).await {
        Ok(r) => r,
        Err(e) => return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    match q.format.as_deref() {
        None | Some("json") => Json(rows).into_response(),
        Some("csv") => (
            [
                ("content-type", "text/csv; charset=utf-8"),
                ("content-disposition", "attachment; filename=\"alarms.csv\""),
            ],
            csv(&rows),
        )
            .into_response(),
        Some(other) => {
            ApiError::new(StatusCode::BAD_REQUEST, format!("format `{other}` is not json or csv")).into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct ActionBody {
    id: String,
    /// Who acts (journaled with the action).
    user: String,
    #[serde(default)]
    comment: String,
    /// For `shelve`: how long.
    #[serde(default)]
    minutes: Option<f64>,
}

/// `POST /api/alarms/{acknowledge|shelve|unshelve|disable|enable}`.
pub async fn act(
    State(s): State<ApiState>,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: Option<Json<ActionBody>>,
) -> Response {
    if let Err(answer) = authorized(&s, &headers) {
        return answer.into_response();
    }
    let alarms = match service(&s) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let Some(Json(body)) = body else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "expected {\"id\": \"...\", \"user\": \"...\", \"comment\": \"...\"} (and \"minutes\" to shelve)",
        )
        .into_response();
    };
    if body.user.trim().is_empty() {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "`user` names who acts: it goes into the journal",
        )
        .into_response();
    }
    let action = match action.as_str() {
        "acknowledge" => Action::Acknowledge,
        "shelve" => match body.minutes {
            Some(m) if m.is_finite() && m > 0.0 => Action::Shelve(Duration::from_secs_f64(m * 60.0)),
            _ => return ApiError::new(StatusCode::BAD_REQUEST, "shelving needs \"minutes\" > 0").into_response(),
        },
        "unshelve" => Action::Unshelve,
        "disable" => Action::Disable,
        "enable" => Action::Enable,
        "comment" => Action::Comment,
        other => {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                format!("`{other}` is not an action (acknowledge, shelve, unshelve, disable, enable, comment)"),
            )
            .into_response()
        }
    };
    let actor = Actor {
        user: body.user,
        via: "http".into(),
        comment: body.comment,
    };
    match alarms.act(&body.id, action, actor).await {
        Ok(t) => Json(json!(t)).into_response(),
        Err(AlarmError::Action(e @ ActionError::Unknown(_))) => {
            ApiError::new(StatusCode::NOT_FOUND, e.to_string()).into_response()
        }
        Err(AlarmError::Action(e @ (ActionError::BadDuration | ActionError::EmptyComment))) => {
            ApiError::new(StatusCode::BAD_REQUEST, e.to_string()).into_response()
        }
        Err(AlarmError::Action(e)) => ApiError::new(StatusCode::CONFLICT, e.to_string()).into_response(),
        Err(e @ AlarmError::Journal(_)) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
