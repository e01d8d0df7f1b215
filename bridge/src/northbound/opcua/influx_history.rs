//! HistoryRead raw from the InfluxDB history, when the sink is configured with the 1.x API: the
//! values the sink wrote (docs/influxdb.md, `sinks::influxdb::schema`), read back with InfluxQL
//! over `/query`, in the point's own unit, bad qualities as their StatusCode. Without it (or
//! with the 2.x API, which has no InfluxQL here) the in-memory rings answer.

use super::status_of;
use crate::sinks::influxdb::schema::stored_unit;
use crate::sinks::influxdb::section::{InfluxApi, InfluxSettings};
use crate::sinks::influxdb::writer::{http_client, url_encode};
use crate::store::{PointIdx, PointValue, Sample, Store};
use busbar_core::quality::Quality;
use busbar_core::units::Unit;
use opcua::types::{DataValue, DateTime};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where one point's history lives.
#[derive(Debug, Clone)]
struct Series {
    measurement: String,
    tags: Vec<(String, String)>,
    field: String,
    unit: Unit,
    text: bool,
}

/// A time window of a raw read, Unix ms, both bounds inclusive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Oldest first; newest first otherwise.
    pub forward: bool,
    pub limit: usize,
}

pub struct InfluxHistory {
    client: reqwest::Client,
    query_url: String,
    database: String,
    retention_policy: String,
    auth: Option<(String, String)>,
    series: HashMap<opcua::types::NodeId, Series>,
}

/// `'text'` as an InfluxQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `"name"` as an InfluxQL identifier.
fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl InfluxHistory {
    /// `None` when the sink speaks the 2.x API (no InfluxQL through it here).
    pub fn new(
        s: &InfluxSettings,
        store: &Store,
        nodes: &HashMap<PointIdx, opcua::types::NodeId>,
    ) -> anyhow::Result<Option<InfluxHistory>> {
        if s.api != InfluxApi::V1 {
            return Ok(None);
        }
        let mut series = HashMap::new();
        for (&p, node) in nodes {
            let Some(meta) = store.meta(p) else { continue };
            let (Some(profile), device) = (store.device_profile(meta.device), store.device_name(meta.device)) else {
                continue;
            };
            let Some(point) = profile.points.get(meta.profile_point) else {
                continue;
            };
            let mut tags = vec![
                ("site".to_string(), store.site_id.clone()),
                ("device".to_string(), device.to_string()),
            ];
            if let Some(b) = &point.block {
                tags.push((b.name.clone(), b.index.to_string()));
            }
            series.insert(
                node.clone(),
                Series {
                    measurement: profile.family.as_str().to_string(),
                    tags,
                    field: point.name.clone(),
                    unit: point.unit,
                    text: point.kind == busbar_core::profile::Kind::String,
                },
            );
        }
        Ok(Some(InfluxHistory {
            client: http_client(s)?,
            query_url: format!("{}/query", s.url.trim_end_matches('/')),
            database: s.database.clone(),
            retention_policy: s.retention_policy.clone(),
            auth: s.username.clone().zip(s.password.clone()),
            series,
        }))
    }

    pub fn has(&self, node: &opcua::types::NodeId) -> bool {
        self.series.contains_key(node)
    }

    /// The InfluxQL of a raw read.
    fn query_of(&self, s: &Series, w: &Window) -> String {
        let from = match self.retention_policy.as_str() {
            "" => ident(&s.measurement),
            rp => format!("{}.{}", ident(rp), ident(&s.measurement)),
        };
        let mut q = format!(
            "SELECT {}, {} FROM {from} WHERE ",
            ident(&s.field),
            ident(&format!("{}_quality", s.field))
        );
        let mut conds: Vec<String> = s
            .tags
            .iter()
            .map(|(k, v)| format!("{} = {}", ident(k), literal(v)))
            .collect();
        if let Some(t) = w.from_ms {
            conds.push(format!("time >= {t}ms"));
        }
        if let Some(t) = w.to_ms {
            conds.push(format!("time <= {t}ms"));
        }
        q.push_str(&conds.join(" AND "));
        q.push_str(if w.forward {
            " ORDER BY time ASC"
        } else {
            " ORDER BY time DESC"
        });
        q.push_str(&format!(" LIMIT {}", w.limit.max(1)));
        q
    }

    /// The values of `node` in the window, with their source times (Unix ms).
    pub async fn raw(&self, node: &opcua::types::NodeId, w: &Window) -> Result<Vec<(i64, DataValue)>, String> {
        let Some(s) = self.series.get(node) else {
            return Ok(Vec::new());
        };
        let q = self.query_of(s, w);
        let body = format!("q={}&db={}&epoch=ms", url_encode(&q), url_encode(&self.database));
        let mut req = self
            .client
            .post(&self.query_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some((u, p)) = &self.auth {
            req = req.basic_auth(u, Some(p));
        }
        let resp = req.send().await.map_err(|e| format!("InfluxDB query: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| format!("InfluxDB query: {e}"))?;
        if !status.is_success() {
            return Err(format!("InfluxDB query: HTTP {status}: {}", text.trim()));
        }
        parse(&text, s)
    }
}

/// An InfluxQL answer for a point of `unit` (a text point when `text`), as a raw read gets it:
/// the entry of the fuzz target `influx_answer`.
pub fn parse_answer(text: &str, unit: Unit, text_point: bool) -> Result<Vec<(i64, DataValue)>, String> {
    let s = Series {
        measurement: String::new(),
        tags: Vec::new(),
        field: String::new(),
        unit,
        text: text_point,
    };
    parse(text, &s)
}

/// The rows of an InfluxQL answer as DataValues: `[time, value, quality]`.
fn parse(text: &str, s: &Series) -> Result<Vec<(i64, DataValue)>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("InfluxDB answer: {e}"))?;
    let result = &v["results"][0];
    if let Some(e) = result["error"].as_str() {
        return Err(format!("InfluxDB: {e}"));
    }
    let mut out = Vec::new();
    let Some(rows) = result["series"][0]["values"].as_array() else {
        return Ok(out);
    };
    for row in rows {
        let Some(t) = row[0].as_i64() else { continue };
        let quality = row[2].as_str().and_then(quality_of);
        let value = if s.text {
            row[1].as_str().map(|x| PointValue::Text(x.to_string()))
        } else {
            row[1]
                .as_f64()
                .map(|x| PointValue::Number(stored_unit(s.unit).convert(x, s.unit).unwrap_or(x)))
        };
        let quality = match (&value, quality) {
            (_, Some(q)) => q,
            (Some(_), None) => Quality::Good,
            (None, None) => continue,
        };
        let time = UNIX_EPOCH + Duration::from_millis(u64::try_from(t).unwrap_or(0));
        let sample = Sample {
            value,
            quality,
            source_time: Some(time),
            last_good: None,
        };
        out.push((t, data_value_at(&sample, time)));
    }
    Ok(out)
}

fn quality_of(text: &str) -> Option<Quality> {
    use Quality::*;
    [Good, Stale, NoValue, CommFailure, OutOfRange, DecodeError, ConfigError]
        .into_iter()
        .find(|q| q.as_str() == text)
}

/// A stored sample as a DataValue: the one quality mapping ([`status_of`]), stamped with its
/// source time on both timestamps.
fn data_value_at(sample: &Sample, time: SystemTime) -> DataValue {
    let t = DateTime::from(super::chrono_free(time));
    DataValue {
        value: sample.value.as_ref().map(super::variant_of),
        status: Some(status_of(sample)),
        source_timestamp: Some(t),
        server_timestamp: Some(t),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opcua::types::StatusCode;

    fn series() -> Series {
        Series {
            measurement: "tank_gauge".into(),
            tags: vec![("site".into(), "o'hare".into()), ("tank".into(), "3".into())],
            field: "volume".into(),
            unit: Unit::Litre,
            text: false,
        }
    }

    #[test]
    fn influxql_quotes_and_bounds() {
        let h = InfluxHistory {
            client: reqwest::Client::new(),
            query_url: String::new(),
            database: "busbar".into(),
            retention_policy: String::new(),
            auth: None,
            series: HashMap::new(),
        };
        let w = Window {
            from_ms: Some(1000),
            to_ms: Some(2000),
            forward: false,
            limit: 11,
        };
        assert_eq!(
            h.query_of(&series(), &w),
            "SELECT \"volume\", \"volume_quality\" FROM \"tank_gauge\" WHERE \"site\" = 'o\\'hare' AND \"tank\" = '3' \
             AND time >= 1000ms AND time <= 2000ms ORDER BY time DESC LIMIT 11"
        );
    }

    #[test]
    fn rows_become_values_and_statuses() {
        let text = r#"{"results":[{"statement_id":0,"series":[{"name":"tank_gauge","columns":["time","volume","volume_quality"],
            "values":[[1000,12.5,null],[2000,null,"comm_failure"],[3000,null,null]]}]}]}"#;
        let rows = parse(text, &series()).unwrap_or_default();
        assert_eq!(rows.len(), 2, "a row with neither value nor quality is skipped");
        assert_eq!(rows[0].0, 1000);
        assert_eq!(rows[0].1.value, Some(opcua::types::Variant::Double(12.5)));
        assert_eq!(rows[0].1.status, Some(StatusCode::Good));
        assert_eq!(rows[1].1.status, Some(StatusCode::BadNoCommunication));
        assert!(parse(r#"{"results":[{"error":"database not found: x"}]}"#, &series()).is_err());
        assert_eq!(parse(r#"{"results":[{"statement_id":0}]}"#, &series()), Ok(Vec::new()));
    }
}
