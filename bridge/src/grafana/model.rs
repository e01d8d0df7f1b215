//! The pieces of a Grafana dashboard (JSON model, schema version 39) and the field facts they
//! are built from.

use crate::sinks::influxdb::schema::{stored_unit, DEVICE_STATUS};
use busbar_core::profile::{Family, ProfileSet};
use busbar_core::units::Unit;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// What the history holds for one field of one family, from the profiles.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldInfo {
    /// The unit the history stores it in.
    pub unit: Unit,
    /// State texts of an enum point.
    pub labels: BTreeMap<i64, String>,
}

/// The fields of every family, and what went wrong while a dashboard named them.
pub struct Schema {
    fields: BTreeMap<(Family, String), FieldInfo>,
    errors: RefCell<Vec<String>>,
}

impl Schema {
    /// Collect the fields of every profile; a field whose stored unit or labels differ between
    /// two profiles of one family is an error (one field must mean one thing).
    pub fn new(profiles: &ProfileSet) -> Schema {
        let mut fields: BTreeMap<(Family, String), (FieldInfo, String)> = BTreeMap::new();
        let mut errors = Vec::new();
        for profile in profiles.values() {
            for point in &profile.points {
                let info = FieldInfo {
                    unit: stored_unit(point.unit),
                    labels: point.labels.clone(),
                };
                let key = (profile.family, point.name.clone());
                match fields.get(&key) {
                    Some((seen, first)) if *seen != info => errors.push(format!(
                        "{}.{}: profile {} stores {:?} {:?}, profile {first} {:?} {:?}",
                        profile.family, point.name, profile.name, info.unit, info.labels, seen.unit, seen.labels
                    )),
                    Some(_) => {}
                    None => {
                        fields.insert(key, (info, profile.name.clone()));
                    }
                }
            }
        }
        Schema {
            fields: fields.into_iter().map(|(k, (v, _))| (k, v)).collect(),
            errors: RefCell::new(errors),
        }
    }

    /// A field a dashboard names; naming one no profile of the family has is an error.
    pub fn field(&self, family: Family, name: &str) -> FieldInfo {
        match self.fields.get(&(family, name.to_string())) {
            Some(f) => f.clone(),
            None => {
                self.errors
                    .borrow_mut()
                    .push(format!("no profile of family {family} has a point `{name}`"));
                FieldInfo {
                    unit: Unit::None,
                    labels: BTreeMap::new(),
                }
            }
        }
    }

    /// Mappings for fields that share their state texts (an error if they do not).
    pub fn mappings_of(&self, family: Family, fields: &[&str]) -> Value {
        let infos: Vec<FieldInfo> = fields.iter().map(|f| self.field(family, f)).collect();
        if let Some(first) = infos.first() {
            if infos.iter().any(|i| i.labels != first.labels) {
                self.errors.borrow_mut().push(format!(
                    "{family}: {fields:?} have different state texts: one panel cannot map them"
                ));
            }
            return mappings(&first.labels);
        }
        json!([])
    }

    /// The unit of fields shown on one axis (an error if they differ).
    pub fn unit_of(&self, family: Family, fields: &[&str]) -> Unit {
        let units: Vec<Unit> = fields.iter().map(|f| self.field(family, f).unit).collect();
        let first = units.first().copied().unwrap_or(Unit::None);
        if units.iter().any(|u| *u != first) {
            self.errors.borrow_mut().push(format!(
                "{family}: {fields:?} have different units: one axis cannot show them"
            ));
        }
        first
    }

    /// Problems found so far.
    pub fn errors(&self) -> Vec<String> {
        self.errors.borrow().clone()
    }
}

/// Grafana's unit id for a unit.
pub fn grafana_unit(unit: Unit) -> &'static str {
    match unit {
        Unit::None => "none",
        Unit::Percent => "percent",
        Unit::Volt => "volt",
        Unit::Millivolt => "mvolt",
        Unit::Ampere => "amp",
        Unit::Milliampere => "mamp",
        Unit::Watt => "watt",
        Unit::Kilowatt => "kwatt",
        Unit::Var => "voltampreact",
        Unit::Kilovar => "kvoltampreact",
        Unit::VoltAmpere => "voltamp",
        Unit::KilovoltAmpere => "kvoltamp",
        Unit::WattHour => "watth",
        Unit::KilowattHour => "kwatth",
        Unit::MegawattHour => "mwatth",
        Unit::VarHour => "suffix: varh",
        Unit::KilovarHour => "suffix: kvarh",
        Unit::KilovoltAmpereHour => "suffix: kVAh",
        Unit::AmpereHour => "amph",
        Unit::Hertz => "hertz",
        Unit::PowerFactor => "none",
        Unit::Ohm => "ohm",
        Unit::Kiloohm => "kohm",
        Unit::Megaohm => "Mohm",
        Unit::Microfarad => "µfarad",
        Unit::DegreeCelsius => "celsius",
        Unit::Millimetre => "lengthmm",
        Unit::Metre => "lengthm",
        Unit::Litre => "litre",
        Unit::CubicMetre => "m3",
        Unit::LitrePerMinute => "flowlpm",
        Unit::LitrePerHour => "litreh",
        Unit::KilogramPerCubicMetre => "suffix: kg/m³",
        Unit::Second => "s",
        Unit::Minute => "m",
        Unit::Hour => "h",
        Unit::Count => "short",
    }
}

/// The colour of a state text: green for normal, orange for warnings, red for alarms.
fn label_color(label: &str) -> &'static str {
    const RED: &[&str] = &[
        "alarm",
        "fault",
        "tripped",
        "very_high",
        "very_low",
        "too_high",
        "device_fault",
    ];
    const ORANGE: &[&str] = &[
        "prewarning",
        "warning",
        "high",
        "low",
        "under_threshold",
        "suspended",
        "off",
    ];
    const BLUE: &[&str] = &["charging", "waiting", "position_0", "position_2", "open"];
    if RED.iter().any(|r| label == *r || label.ends_with(r)) {
        "red"
    } else if ORANGE.contains(&label) {
        "orange"
    } else if BLUE.contains(&label) {
        "blue"
    } else if label == "unknown" {
        "text"
    } else {
        "green"
    }
}

/// Value mappings from a field's state texts.
pub fn mappings(labels: &BTreeMap<i64, String>) -> Value {
    if labels.is_empty() {
        return json!([]);
    }
    let options: serde_json::Map<String, Value> = labels
        .iter()
        .enumerate()
        .map(|(i, (v, text))| {
            (
                v.to_string(),
                json!({ "text": text, "color": label_color(text), "index": i }),
            )
        })
        .collect();
    json!([{ "type": "value", "options": options }])
}

/// Mappings for the boolean `online` of `device_status`.
pub fn online_mappings() -> Value {
    json!([{ "type": "value", "options": {
        "true": { "text": "online", "color": "green", "index": 0 },
        "false": { "text": "offline", "color": "red", "index": 1 }
    }}])
}

fn datasource() -> Value {
    json!({ "type": "influxdb", "uid": "${datasource}" })
}

/// One InfluxQL query of a panel.
pub struct Query {
    pub text: String,
    /// Series name pattern (`$tag_device`, `$col`).
    pub alias: String,
    pub table: bool,
}

/// Which series: a family (measurement), an optional block tag, and the variables that filter.
#[derive(Clone, Copy)]
pub struct Series<'a> {
    pub family: &'a str,
    /// The template variable naming the devices (`device`), if any.
    pub device_var: Option<&'a str>,
    /// The block tag (`tank`, `circuit`, `fp`) and its variable, if the panel splits by block.
    pub block: Option<(&'a str, Option<&'a str>)>,
}

impl<'a> Series<'a> {
    pub fn family(family: Family, device_var: &'a str) -> Series<'a> {
        Series {
            family: family.as_str(),
            device_var: Some(device_var),
            block: None,
        }
    }

    /// Every device of the family at the chosen site (no device variable).
    pub fn site_wide(family: Family) -> Series<'static> {
        Series {
            family: family.as_str(),
            device_var: None,
            block: None,
        }
    }

    pub fn status() -> Series<'static> {
        Series {
            family: DEVICE_STATUS,
            device_var: None,
            block: None,
        }
    }

    pub fn by_block(self, tag: &'a str, var: Option<&'a str>) -> Series<'a> {
        Series {
            block: Some((tag, var)),
            ..self
        }
    }

    fn condition(&self) -> String {
        let mut c = String::from("\"site\" =~ /^$site$/");
        if let Some(v) = self.device_var {
            c.push_str(&format!(" AND \"device\" =~ /^${v}$/"));
        }
        if let Some((tag, Some(v))) = self.block {
            c.push_str(&format!(" AND \"{tag}\" =~ /^${v}$/"));
        }
        c
    }

    fn group_tags(&self) -> String {
        match self.block {
            Some((tag, _)) => format!("\"device\", \"{tag}\""),
            None => "\"device\"".into(),
        }
    }

    fn alias(&self, with_col: bool) -> String {
        let mut a = String::from("$tag_device");
        if let Some((tag, _)) = self.block {
            a.push_str(&format!(" {tag} $tag_{tag}"));
        }
        if with_col {
            a.push_str(" $col");
        }
        a
    }

    /// `agg(field)` per device (and block) per `$__interval`, gaps filled with the previous value.
    pub fn over_time(&self, agg: &str, fields: &[&str]) -> Query {
        let cols: Vec<String> = fields.iter().map(|f| format!("{agg}(\"{f}\") AS \"{f}\"")).collect();
        Query {
            text: format!(
                "SELECT {} FROM \"{}\" WHERE {} AND $timeFilter GROUP BY time($__interval), {} fill(previous)",
                cols.join(", "),
                self.family,
                self.condition(),
                self.group_tags()
            ),
            alias: self.alias(fields.len() > 1),
            table: false,
        }
    }

    /// `agg(field)` per device (and block) in fixed buckets (`1h`, `1d`), empty buckets left out.
    pub fn per_bucket(&self, agg: &str, field: &str, bucket: &str) -> Query {
        Query {
            text: format!(
                "SELECT {agg}(\"{field}\") AS \"{field}\" FROM \"{}\" WHERE {} AND $timeFilter GROUP BY time({bucket}), {} fill(none)",
                self.family,
                self.condition(),
                self.group_tags()
            ),
            alias: self.alias(false),
            table: false,
        }
    }

    /// One row per device (and block) over the whole time range.
    pub fn table(&self, cols: &[(&str, &str, &str)]) -> Query {
        let cols: Vec<String> = cols
            .iter()
            .map(|(agg, f, name)| format!("{agg}(\"{f}\") AS \"{name}\""))
            .collect();
        Query {
            text: format!(
                "SELECT {} FROM \"{}\" WHERE {} AND $timeFilter GROUP BY {}",
                cols.join(", "),
                self.family,
                self.condition(),
                self.group_tags()
            ),
            alias: String::new(),
            table: true,
        }
    }

    /// One value per device (and block) over the whole time range (a stat).
    pub fn whole_range(&self, agg: &str, field: &str) -> Query {
        Query {
            text: format!(
                "SELECT {agg}(\"{field}\") AS \"{field}\" FROM \"{}\" WHERE {} AND $timeFilter GROUP BY {}",
                self.family,
                self.condition(),
                self.group_tags()
            ),
            alias: self.alias(false),
            table: false,
        }
    }

    /// Rows where `field` rose (a 0 -> 1 transition): an annotation's events.
    pub fn rises(&self, field: &str) -> Query {
        Query {
            text: format!(
                "SELECT \"rise\" FROM (SELECT difference(\"{field}\") AS \"rise\" FROM \"{}\" WHERE {} AND $timeFilter GROUP BY {}) WHERE \"rise\" > 0",
                self.family,
                self.condition(),
                self.group_tags()
            ),
            alias: String::new(),
            table: true,
        }
    }
}

fn targets(queries: &[Query]) -> Value {
    let letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    Value::Array(
        queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let mut t = json!({
                    "refId": (letters[i % letters.len()] as char).to_string(),
                    "datasource": datasource(),
                    "query": q.text,
                    "rawQuery": true,
                    "resultFormat": if q.table { "table" } else { "time_series" },
                });
                if !q.alias.is_empty() {
                    t["alias"] = json!(q.alias);
                }
                t
            })
            .collect(),
    )
}

/// A panel of plugin `kind`: its field defaults, its options and its queries.
fn panel(kind: &str, title: &str, description: &str, defaults: Value, options: Value, queries: &[Query]) -> Value {
    json!({
        "type": kind,
        "title": title,
        "description": description,
        "datasource": datasource(),
        "fieldConfig": { "defaults": defaults, "overrides": [] },
        "options": options,
        "targets": targets(queries)
    })
}

/// Threshold steps: a base colour, then (value, colour) from low to high.
pub fn thresholds(base: &str, steps: &[(f64, &str)]) -> Value {
    let mut v = vec![json!({ "color": base, "value": null })];
    v.extend(steps.iter().map(|(x, c)| json!({ "color": c, "value": x })));
    json!({ "mode": "absolute", "steps": v })
}

fn legend(placement: &str) -> Value {
    json!({ "showLegend": true, "displayMode": "list", "placement": placement, "calcs": [] })
}

fn tooltip() -> Value {
    json!({ "mode": "multi", "sort": "none", "hideZeros": false })
}

/// How a time series panel draws.
#[derive(Clone, Copy, PartialEq)]
pub enum Draw {
    Lines,
    /// Steps, for counters and settings that change now and then.
    Steps,
    Bars,
}

/// A time series panel; `limits` draws its thresholds as dashed lines.
pub fn timeseries(
    title: &str,
    description: &str,
    unit: Unit,
    queries: &[Query],
    draw: Draw,
    limits: Option<Value>,
) -> Value {
    let (style, interpolation, fill) = match draw {
        Draw::Lines => ("line", "linear", 10),
        Draw::Steps => ("line", "stepAfter", 0),
        Draw::Bars => ("bars", "linear", 80),
    };
    let threshold_style = if limits.is_some() { "dashed" } else { "off" };
    let defaults = json!({
        "unit": grafana_unit(unit),
        "color": { "mode": "palette-classic" },
        "custom": {
            "drawStyle": style,
            "lineInterpolation": interpolation,
            "lineWidth": 1,
            "fillOpacity": fill,
            "showPoints": "never",
            "spanNulls": true,
            "axisPlacement": "auto",
            "thresholdsStyle": { "mode": threshold_style }
        },
        "thresholds": limits.unwrap_or_else(|| thresholds("green", &[])),
        "mappings": []
    });
    let options = json!({ "legend": legend("bottom"), "tooltip": tooltip() });
    panel("timeseries", title, description, defaults, options, queries)
}

/// A state timeline of an enum (or boolean) field, coloured by its mappings.
pub fn state_timeline(title: &str, description: &str, mappings: Value, queries: &[Query]) -> Value {
    let defaults = json!({
        "color": { "mode": "thresholds" },
        "custom": { "fillOpacity": 75, "lineWidth": 0, "hideFrom": { "legend": false, "tooltip": false, "viz": false } },
        "thresholds": thresholds("text", &[]),
        "mappings": mappings
    });
    let options = json!({
        "mergeValues": true,
        "showValue": "auto",
        "alignValue": "left",
        "rowHeight": 0.85,
        "legend": legend("bottom"),
        "tooltip": tooltip()
    });
    panel("state-timeline", title, description, defaults, options, queries)
}

/// Latest (or whole-range) values as tiles.
pub fn stat(
    title: &str,
    description: &str,
    unit: Unit,
    mappings: Value,
    limits: Option<Value>,
    queries: &[Query],
) -> Value {
    let defaults = json!({
        "unit": grafana_unit(unit),
        "color": { "mode": "thresholds" },
        "thresholds": limits.unwrap_or_else(|| thresholds("blue", &[])),
        "mappings": mappings
    });
    let options = json!({
        "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
        "colorMode": "background",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": "value_and_name",
        "wideLayout": true,
        "showPercentChange": false,
        "percentChangeColorMode": "standard"
    });
    panel("stat", title, description, defaults, options, queries)
}

/// A table of per-device rows.
pub fn table(title: &str, description: &str, queries: &[Query]) -> Value {
    let defaults =
        json!({ "custom": { "align": "auto", "cellOptions": { "type": "auto" }, "inspect": false }, "mappings": [] });
    let options = json!({ "showHeader": true, "cellHeight": "sm", "frameIndex": 0 });
    panel("table", title, description, defaults, options, queries)
}

/// A dashboard being laid out: panels flow left to right in Grafana's 24-column grid.
pub struct Dashboard {
    uid: String,
    title: String,
    description: String,
    variables: Vec<Value>,
    annotations: Vec<Value>,
    panels: Vec<Value>,
    x: u32,
    y: u32,
    row_height: u32,
}

impl Dashboard {
    /// A dashboard with the `datasource` and `site` variables.
    pub fn new(uid: &str, title: &str, description: &str) -> Dashboard {
        let datasource = json!({
            "name": "datasource",
            "label": "InfluxDB",
            "type": "datasource",
            "query": "influxdb",
            "current": { "text": "Busbar InfluxDB", "value": super::DATASOURCE_UID },
            "hide": 0,
            "refresh": 1
        });
        let site = Self::query_variable(
            "site",
            "Site",
            &format!("SHOW TAG VALUES FROM \"{DEVICE_STATUS}\" WITH KEY = \"site\""),
            false,
        );
        Dashboard {
            uid: uid.into(),
            title: title.into(),
            description: description.into(),
            variables: vec![datasource, site],
            annotations: vec![json!({
                "builtIn": 1,
                "datasource": { "type": "grafana", "uid": "-- Grafana --" },
                "enable": true,
                "hide": true,
                "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts",
                "type": "dashboard"
            })],
            panels: Vec::new(),
            x: 0,
            y: 0,
            row_height: 0,
        }
    }

    fn query_variable(name: &str, label: &str, query: &str, all: bool) -> Value {
        json!({
            "name": name,
            "label": label,
            "type": "query",
            "datasource": datasource(),
            "query": query,
            "refresh": 2,
            "sort": 1,
            "includeAll": all,
            "multi": all,
            "current": if all { json!({ "text": "All", "value": "$__all" }) } else { json!({ "text": "", "value": "" }) },
            "hide": 0
        })
    }

    /// A multi-value variable `name` over the devices of `family` at the chosen site.
    pub fn device_variable(&mut self, name: &str, label: &str, family: Family) {
        let q = format!(
            "SHOW TAG VALUES FROM \"{}\" WITH KEY = \"device\" WHERE \"site\" =~ /^$site$/",
            family.as_str()
        );
        self.variables.push(Self::query_variable(name, label, &q, true));
    }

    /// A multi-value variable `name` over the values of a block tag (`tank`) of the chosen devices.
    pub fn block_variable(&mut self, name: &str, label: &str, family: Family, tag: &str, device_var: &str) {
        let q = format!(
            "SHOW TAG VALUES FROM \"{}\" WITH KEY = \"{tag}\" WHERE \"site\" =~ /^$site$/ AND \"device\" =~ /^${device_var}$/",
            family.as_str()
        );
        self.variables.push(Self::query_variable(name, label, &q, true));
    }

    /// Events as annotations (a query returning rows with a time).
    pub fn annotation(&mut self, name: &str, color: &str, query: &Query) {
        self.annotations.push(json!({
            "name": name,
            "datasource": datasource(),
            "enable": true,
            "hide": false,
            "iconColor": color,
            "target": { "refId": "Anno", "query": query.text, "rawQuery": true, "resultFormat": "table" }
        }));
    }

    /// A row header across the grid.
    pub fn row(&mut self, title: &str) {
        self.newline();
        let id = self.panels.len() + 1;
        self.panels.push(json!({
            "type": "row",
            "title": title,
            "id": id,
            "collapsed": false,
            "panels": [],
            "gridPos": { "x": 0, "y": self.y, "w": 24, "h": 1 }
        }));
        self.y += 1;
    }

    fn newline(&mut self) {
        if self.x > 0 {
            self.x = 0;
            self.y += self.row_height;
            self.row_height = 0;
        }
    }

    /// Place a panel `w` columns wide (of 24) and `h` units high.
    pub fn add(&mut self, w: u32, h: u32, mut panel: Value) {
        if self.x + w > 24 {
            self.newline();
        }
        panel["id"] = json!(self.panels.len() + 1);
        panel["gridPos"] = json!({ "x": self.x, "y": self.y, "w": w, "h": h });
        self.panels.push(panel);
        self.x += w;
        self.row_height = self.row_height.max(h);
    }

    /// The file name under dashboards/.
    pub fn file_name(&self) -> String {
        format!("{}.json", self.uid.trim_start_matches("busbar-"))
    }

    /// The dashboard JSON, as Grafana's provisioning reads it.
    pub fn to_json(&self) -> String {
        let v = json!({
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["busbar"],
            "editable": true,
            "graphTooltip": 1,
            "schemaVersion": 39,
            "version": 1,
            "refresh": "10s",
            "time": { "from": "now-6h", "to": "now" },
            "timezone": "browser",
            "fiscalYearStartMonth": 0,
            "liveNow": false,
            "weekStart": "",
            "links": [{
                "title": "Busbar",
                "type": "dashboards",
                "tags": ["busbar"],
                "asDropdown": true,
                "includeVars": true,
                "keepTime": true,
                "icon": "external link",
                "targetBlank": false,
                "tooltip": "",
                "url": ""
            }],
            "templating": { "list": self.variables },
            "annotations": { "list": self.annotations },
            "panels": self.panels
        });
        let mut text = serde_json::to_string_pretty(&v).unwrap_or_default();
        text.push('\n');
        text
    }
}
