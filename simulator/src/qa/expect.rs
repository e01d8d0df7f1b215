//! Expectations of a scenario run as a test (`busbar-sim test`): what the system under test
//! (SUT) must do to the devices (`polled`, `wrote`, `never_wrote`), what it must show through its
//! own interfaces (`probe` with `equals`, `range` or `truth`), and what it must announce to the
//! notification sinks the run provides (`notified`, `not_notified`). Each has a window on the
//! simulated clock: it starts `at` a time or `after` a timeline event, and is met `within` a
//! deadline (eventually) or holds `for` a time (always; without either, to the end of the run).
//! Parsed and validated without IO, with located errors, like the rest of the scenario.

use crate::scenario::{Action, DeviceSpec, TimelineEntry};
use busbar_core::diag::Diagnostics;
use busbar_core::duration::parse_duration;
use busbar_core::profile::{DataType, Table, WordOrder};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::HashMap;
use std::net::SocketAddr;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpectDoc {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    within: Option<String>,
    #[serde(default, rename = "for")]
    lasting: Option<String>,
    #[serde(default)]
    polled: Option<PolledDoc>,
    #[serde(default)]
    wrote: Option<WriteDoc>,
    #[serde(default)]
    never_wrote: Option<NeverWroteDoc>,
    #[serde(default)]
    probe: Option<ProbeDoc>,
    #[serde(default)]
    notified: Option<NotifiedDoc>,
    #[serde(default)]
    not_notified: Option<NotifiedDoc>,
    #[serde(default)]
    equals: Option<serde_json::Value>,
    #[serde(default)]
    range: Option<[f64; 2]>,
    #[serde(default)]
    truth: Option<PointDoc>,
    /// Absolute tolerance of `equals` or `truth`.
    #[serde(default)]
    tolerance: Option<f64>,
    /// Tolerance of `truth` in percent of the true value.
    #[serde(default)]
    tolerance_pct: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolledDoc {
    device: String,
    /// The largest gap allowed between two reads.
    every: String,
    /// The smallest gap allowed.
    #[serde(default)]
    not_faster_than: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteDoc {
    device: String,
    point: String,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    range: Option<[f64; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NeverWroteDoc {
    device: String,
    /// One point (default: any point of the device).
    #[serde(default)]
    point: Option<String>,
    /// Only writes outside this range count.
    #[serde(default)]
    outside: Option<[f64; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PointDoc {
    device: String,
    point: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeDoc {
    #[serde(default)]
    modbus: Option<String>,
    #[serde(default)]
    unit: Option<u8>,
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    address: Option<u16>,
    #[serde(default, rename = "type")]
    data_type: Option<String>,
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    scale: Option<f64>,
    #[serde(default)]
    http: Option<String>,
    /// A JSON pointer into the HTTP answer (`/value`); default the whole answer.
    #[serde(default)]
    json: Option<String>,
    #[serde(default)]
    snmp: Option<String>,
    #[serde(default)]
    community: Option<String>,
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    bacnet: Option<String>,
    /// `analog-input:403007` (a type name or number, and the instance).
    #[serde(default)]
    object: Option<String>,
    /// `present-value` (default), `status-flags`, `event-state`, `reliability`, ... or a number.
    #[serde(default)]
    property: Option<String>,
    /// An OPC UA endpoint, `opc.tcp://HOST:PORT/` (security None, anonymous).
    #[serde(default)]
    opcua: Option<String>,
    /// The node: `ns=2;s=main_meter/v1`, or by namespace URI `nsu=urn:busbar:site;s=main_meter/v1`.
    #[serde(default)]
    node: Option<String>,
    /// `value` (default), `status` (the StatusCode's name: `Good`, `BadCommunicationError`) or
    /// `status_class` (`good`, `uncertain`, `bad`).
    #[serde(default)]
    read: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifiedDoc {
    sink: String,
    /// Text the notification must contain; `*` matches anything in between.
    matches: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SinkDoc {
    name: String,
    /// Receive SNMP v1/v2c traps on this UDP address.
    #[serde(default)]
    snmp_traps: Option<String>,
    /// Receive HTTP POSTs (webhooks) on this TCP address.
    #[serde(default)]
    webhook: Option<String>,
    /// Receive mail (SMTP, plain) on this TCP address.
    #[serde(default)]
    smtp: Option<String>,
}

/// A notification sink the test runs.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkKind {
    SnmpTraps(SocketAddr),
    Webhook(SocketAddr),
    Smtp(SocketAddr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sink {
    pub name: String,
    pub kind: SinkKind,
}

/// How an expectation's window is judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Met once before the deadline (seconds after the start).
    Within(f64),
    /// Holds for this long after the start.
    For(f64),
    /// Holds from the start to the end of the run.
    ToEnd,
}

/// A value a write must have.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueMatch {
    Any,
    Exact(f64),
    Range(f64, f64),
}

impl ValueMatch {
    pub fn accepts(self, v: f64) -> bool {
        match self {
            ValueMatch::Any => true,
            ValueMatch::Exact(x) => (v - x).abs() <= 1e-9 * x.abs().max(1.0),
            ValueMatch::Range(lo, hi) => v >= lo && v <= hi,
        }
    }

    pub fn describe(self) -> String {
        match self {
            ValueMatch::Any => "any value".into(),
            ValueMatch::Exact(x) => format!("{x}"),
            ValueMatch::Range(lo, hi) => format!("a value in [{lo}, {hi}]"),
        }
    }
}

/// Where a probe reads the SUT.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    Modbus {
        addr: String,
        unit: u8,
        table: Table,
        address: u16,
        data_type: DataType,
        order: WordOrder,
        scale: f64,
    },
    Http {
        url: String,
        pointer: String,
    },
    Snmp {
        addr: String,
        community: String,
        oid: Vec<u32>,
    },
    Bacnet {
        addr: String,
        object_type: u16,
        instance: u32,
        property: u32,
    },
    OpcUa {
        url: String,
        node: OpcUaNode,
        read: OpcUaRead,
    },
}

/// An OPC UA node as a probe names it.
#[derive(Debug, Clone, PartialEq)]
pub enum OpcUaNode {
    /// `ns=2;s=...` as written.
    Id(String),
    /// `nsu=URI;s=...`: the namespace by its URI, and the identifier (`s=...`).
    ByUri { uri: String, id: String },
}

impl OpcUaNode {
    pub fn parse(text: &str) -> Option<OpcUaNode> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("nsu=") {
            let (uri, id) = rest.split_once(';')?;
            let ok = ["s=", "i=", "g=", "b="].iter().any(|p| id.starts_with(p));
            return (ok && !uri.is_empty()).then(|| OpcUaNode::ByUri {
                uri: uri.to_string(),
                id: id.to_string(),
            });
        }
        text.parse::<opcua::types::NodeId>()
            .ok()
            .map(|_| OpcUaNode::Id(text.to_string()))
    }

    pub fn text(&self) -> String {
        match self {
            OpcUaNode::Id(t) => t.clone(),
            OpcUaNode::ByUri { uri, id } => format!("nsu={uri};{id}"),
        }
    }
}

/// What an OPC UA probe reads of its node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OpcUaRead {
    Value,
    /// The StatusCode's name.
    Status,
    /// good, uncertain or bad.
    StatusClass,
}

/// BACnet object types a probe names (ASHRAE 135 clause 21).
const BACNET_TYPES: &[(&str, u16)] = &[
    ("analog-input", 0),
    ("analog-output", 1),
    ("analog-value", 2),
    ("binary-input", 3),
    ("binary-output", 4),
    ("binary-value", 5),
    ("device", 8),
    ("multi-state-input", 13),
    ("multi-state-output", 14),
    ("multi-state-value", 19),
];

/// BACnet properties a probe names.
const BACNET_PROPERTIES: &[(&str, u32)] = &[
    ("event-state", 36),
    ("object-name", 77),
    ("out-of-service", 81),
    ("present-value", 85),
    ("reliability", 103),
    ("status-flags", 111),
    ("units", 117),
];

fn named<T: Copy + std::str::FromStr>(table: &[(&str, T)], text: &str) -> Option<T> {
    table
        .iter()
        .find(|(n, _)| *n == text)
        .map(|x| x.1)
        .or_else(|| text.parse().ok())
}

impl Probe {
    pub fn describe(&self) -> String {
        match self {
            Probe::Modbus {
                addr,
                unit,
                table,
                address,
                data_type,
                ..
            } => format!(
                "modbus {addr} unit {unit} {} {address} ({})",
                table.as_str(),
                data_type.name()
            ),
            Probe::Http { url, pointer } if pointer.is_empty() => format!("http {url}"),
            Probe::Http { url, pointer } => format!("http {url} {pointer}"),
            Probe::Snmp { addr, oid, .. } => format!(
                "snmp {addr} {}",
                oid.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
            ),
            Probe::Bacnet {
                addr,
                object_type,
                instance,
                property,
            } => format!("bacnet {addr} {object_type}:{instance} property {property}"),
            Probe::OpcUa { url, node, read } => format!(
                "opcua {url} {}{}",
                node.text(),
                match read {
                    OpcUaRead::Value => "",
                    OpcUaRead::Status => " status",
                    OpcUaRead::StatusClass => " status class",
                }
            ),
        }
    }
}

/// What a probed value is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum Compare {
    Number {
        value: f64,
        tolerance: f64,
    },
    Text(String),
    Range(f64, f64),
    /// The simulator's own value of a device point.
    Truth {
        device: usize,
        point: String,
        tolerance: f64,
        tolerance_pct: f64,
    },
}

/// What is checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Polled {
        device: usize,
        every: f64,
        not_faster_than: Option<f64>,
    },
    Wrote {
        device: usize,
        point: String,
        value: ValueMatch,
    },
    NeverWrote {
        device: usize,
        point: Option<String>,
        outside: Option<(f64, f64)>,
    },
    Probe {
        probe: Probe,
        compare: Compare,
    },
    Notified {
        sink: usize,
        pattern: String,
        none: bool,
    },
}

/// A validated expectation.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub name: String,
    /// `file:line`.
    pub origin: String,
    /// Simulated second at which its window starts.
    pub start_s: f64,
    pub mode: Mode,
    pub check: Check,
}

impl Expectation {
    /// The end of its window, or `None` for "to the end of the run".
    pub fn end_s(&self) -> Option<f64> {
        match self.mode {
            Mode::Within(d) | Mode::For(d) => Some(self.start_s + d),
            Mode::ToEnd => None,
        }
    }
}

/// Whether `text` contains the parts of `pattern` (split at `*`) in order.
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
    let mut rest = text;
    for part in pattern.split('*') {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

fn seconds(d: &mut Diagnostics, file: &str, line: u64, path: &str, key: &str, text: &str) -> Option<f64> {
    match parse_duration(text) {
        Ok(v) => Some(v.as_secs_f64()),
        Err(e) => {
            d.push(file, line, format!("{path}.{key}"), e);
            None
        }
    }
}

/// Sinks: names unique, addresses that parse, exactly one kind each.
pub(crate) fn sinks(file: &str, docs: &[Spanned<SinkDoc>], d: &mut Diagnostics) -> Vec<Sink> {
    let mut out: Vec<Sink> = Vec::new();
    for (i, s) in docs.iter().enumerate() {
        let line = s.referenced.line();
        let path = format!("sinks[{i}] ({})", s.value.name);
        if out.iter().any(|x| x.name == s.value.name) {
            d.push(file, line, &path, "duplicate sink name");
        }
        let addr = |d: &mut Diagnostics, text: &str| {
            text.parse::<SocketAddr>().map_err(|_| {
                d.push(
                    file,
                    line,
                    &path,
                    format!("`{text}` is not an address like 127.0.0.1:1162"),
                )
            })
        };
        let kind = match (&s.value.snmp_traps, &s.value.webhook, &s.value.smtp) {
            (Some(a), None, None) => addr(d, a).ok().map(SinkKind::SnmpTraps),
            (None, Some(a), None) => addr(d, a).ok().map(SinkKind::Webhook),
            (None, None, Some(a)) => addr(d, a).ok().map(SinkKind::Smtp),
            _ => {
                d.push(
                    file,
                    line,
                    &path,
                    "a sink needs exactly one of `snmp_traps`, `webhook`, `smtp`",
                );
                None
            }
        };
        if let Some(kind) = kind {
            out.push(Sink {
                name: s.value.name.clone(),
                kind,
            });
        }
    }
    out
}

struct Ctx<'a> {
    file: &'a str,
    devices: &'a [DeviceSpec],
    index: &'a HashMap<String, usize>,
    sinks: &'a [Sink],
}

impl Ctx<'_> {
    fn device(&self, d: &mut Diagnostics, line: u64, path: &str, name: &str) -> Option<usize> {
        let i = self.index.get(name).copied();
        if i.is_none() {
            d.push(self.file, line, path, format!("unknown device `{name}`"));
        }
        i
    }

    fn point(&self, d: &mut Diagnostics, line: u64, path: &str, device: usize, point: &str) -> bool {
        let known = self
            .devices
            .get(device)
            .is_some_and(|dv| dv.profile.point_index(point).is_some());
        if !known {
            let name = self.devices.get(device).map_or("", |dv| dv.name.as_str());
            d.push(self.file, line, path, format!("device `{name}` has no point `{point}`"));
        }
        known
    }
}

/// The expectations, validated against the devices, the timeline and the sinks.
pub(crate) fn expectations(
    file: &str,
    docs: &[Spanned<ExpectDoc>],
    devices: &[DeviceSpec],
    index: &HashMap<String, usize>,
    timeline: &[TimelineEntry],
    sinks: &[Sink],
    d: &mut Diagnostics,
) -> Vec<Expectation> {
    let cx = Ctx {
        file,
        devices,
        index,
        sinks,
    };
    let mut out = Vec::new();
    for (i, e) in docs.iter().enumerate() {
        let line = e.referenced.line();
        let path = format!("expect[{i}]");
        if let Some(x) = expectation(&cx, line, &path, &e.value, timeline, d) {
            out.push(x);
        }
    }
    out
}

fn expectation(
    cx: &Ctx<'_>,
    line: u64,
    path: &str,
    e: &ExpectDoc,
    timeline: &[TimelineEntry],
    d: &mut Diagnostics,
) -> Option<Expectation> {
    let file = cx.file;
    let kinds = [
        e.polled.is_some(),
        e.wrote.is_some(),
        e.never_wrote.is_some(),
        e.probe.is_some(),
        e.notified.is_some(),
        e.not_notified.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        d.push(
            file,
            line,
            path,
            "an expectation needs exactly one of `polled`, `wrote`, `never_wrote`, `probe`, `notified`, `not_notified`",
        );
        return None;
    }
    let start_s = match (&e.at, &e.after) {
        (Some(_), Some(_)) => {
            d.push(file, line, path, "give `at` or `after`, not both");
            return None;
        }
        (Some(at), None) => seconds(d, file, line, path, "at", at)?,
        (None, Some(event)) => {
            let found = timeline
                .iter()
                .find(|t| matches!(&t.action, Action::Event(ev) if ev.name() == event.as_str()));
            match found {
                Some(t) => t.at.as_secs_f64(),
                None => {
                    d.push(
                        file,
                        line,
                        format!("{path}.after"),
                        format!("no timeline event `{event}`"),
                    );
                    return None;
                }
            }
        }
        (None, None) => 0.0,
    };
    let mode = match (&e.within, &e.lasting) {
        (Some(_), Some(_)) => {
            d.push(file, line, path, "give `within` or `for`, not both");
            return None;
        }
        (Some(w), None) => Mode::Within(seconds(d, file, line, path, "within", w)?),
        (None, Some(f)) => Mode::For(seconds(d, file, line, path, "for", f)?),
        (None, None) => Mode::ToEnd,
    };
    let eventually = e.wrote.is_some() || e.notified.is_some();
    let always = e.polled.is_some() || e.never_wrote.is_some() || e.not_notified.is_some();
    if eventually && !matches!(mode, Mode::Within(_)) {
        d.push(file, line, path, "`wrote` and `notified` need a deadline: `within`");
        return None;
    }
    if always && matches!(mode, Mode::Within(_)) {
        d.push(
            file,
            line,
            path,
            "`polled`, `never_wrote` and `not_notified` hold for a window: `for` (or to the end of the run), not `within`",
        );
        return None;
    }
    let comparisons = e.equals.is_some() as usize + e.range.is_some() as usize + e.truth.is_some() as usize;
    if e.probe.is_none() && (comparisons > 0 || e.tolerance.is_some() || e.tolerance_pct.is_some()) {
        d.push(
            file,
            line,
            path,
            "`equals`, `range`, `truth` and tolerances go with a `probe`",
        );
    }
    let check = if let Some(p) = &e.polled {
        let device = cx.device(d, line, &format!("{path}.polled"), &p.device)?;
        let every = seconds(d, file, line, path, "polled.every", &p.every)?;
        let not_faster_than = match &p.not_faster_than {
            Some(t) => Some(seconds(d, file, line, path, "polled.not_faster_than", t)?),
            None => None,
        };
        Check::Polled {
            device,
            every,
            not_faster_than,
        }
    } else if let Some(w) = &e.wrote {
        let device = cx.device(d, line, &format!("{path}.wrote"), &w.device)?;
        if !cx.point(d, line, &format!("{path}.wrote"), device, &w.point) {
            return None;
        }
        let value = match (w.value, w.range) {
            (Some(_), Some(_)) => {
                d.push(file, line, format!("{path}.wrote"), "give `value` or `range`, not both");
                return None;
            }
            (Some(v), None) => ValueMatch::Exact(v),
            (None, Some([lo, hi])) if lo <= hi => ValueMatch::Range(lo, hi),
            (None, Some(_)) => {
                d.push(file, line, format!("{path}.wrote.range"), "expected [low, high]");
                return None;
            }
            (None, None) => ValueMatch::Any,
        };
        Check::Wrote {
            device,
            point: w.point.clone(),
            value,
        }
    } else if let Some(n) = &e.never_wrote {
        let device = cx.device(d, line, &format!("{path}.never_wrote"), &n.device)?;
        if let Some(p) = &n.point {
            if !cx.point(d, line, &format!("{path}.never_wrote"), device, p) {
                return None;
            }
        }
        Check::NeverWrote {
            device,
            point: n.point.clone(),
            outside: n.outside.map(|[lo, hi]| (lo, hi)),
        }
    } else if let Some(p) = &e.probe {
        let probe = probe(file, line, &format!("{path}.probe"), p, d)?;
        let compare = compare(cx, line, path, e, d)?;
        Check::Probe { probe, compare }
    } else {
        let (n, none) = match (&e.notified, &e.not_notified) {
            (Some(n), _) => (n, false),
            (None, Some(n)) => (n, true),
            (None, None) => return None,
        };
        let Some(sink) = cx.sinks.iter().position(|s| s.name == n.sink) else {
            d.push(
                file,
                line,
                path,
                format!("unknown sink `{}` (declare it under `sinks`)", n.sink),
            );
            return None;
        };
        if n.matches.trim().is_empty() {
            d.push(file, line, path, "`matches` needs some text");
            return None;
        }
        Check::Notified {
            sink,
            pattern: n.matches.clone(),
            none,
        }
    };
    let name = e.name.clone().unwrap_or_else(|| describe(cx, &check, e));
    Some(Expectation {
        name,
        origin: format!("{file}:{line}"),
        start_s,
        mode,
        check,
    })
}

/// A name for an expectation without one.
fn describe(cx: &Ctx<'_>, check: &Check, e: &ExpectDoc) -> String {
    let dev = |i: usize| cx.devices.get(i).map_or("?", |d| d.name.as_str()).to_string();
    let anchor = e.after.as_ref().map(|a| format!(" after {a}")).unwrap_or_default();
    match check {
        Check::Polled { device, .. } => format!("{} polled", dev(*device)),
        Check::Wrote { device, point, value } => {
            format!("{}/{point} written with {}{anchor}", dev(*device), value.describe())
        }
        Check::NeverWrote { device, point, .. } => match point {
            Some(p) => format!("{}/{p} never written out of bounds", dev(*device)),
            None => format!("{} never written", dev(*device)),
        },
        Check::Probe { probe, .. } => format!("{}{anchor}", probe.describe()),
        Check::Notified { pattern, none, .. } => {
            format!(
                "{} `{pattern}`{anchor}",
                if *none { "no notification" } else { "notified" }
            )
        }
    }
}

fn probe(file: &str, line: u64, path: &str, p: &ProbeDoc, d: &mut Diagnostics) -> Option<Probe> {
    let targets = p.modbus.is_some() as usize
        + p.http.is_some() as usize
        + p.snmp.is_some() as usize
        + p.bacnet.is_some() as usize
        + p.opcua.is_some() as usize;
    if targets != 1 {
        d.push(
            file,
            line,
            path,
            "a probe needs exactly one of `modbus`, `http`, `snmp`, `bacnet`, `opcua`",
        );
        return None;
    }
    if let Some(url) = &p.opcua {
        if !url.starts_with("opc.tcp://") {
            d.push(
                file,
                line,
                path,
                format!("`{url}` is not an endpoint like opc.tcp://127.0.0.1:4840/"),
            );
            return None;
        }
        let Some(node) = p.node.as_deref().and_then(OpcUaNode::parse) else {
            d.push(
                file,
                line,
                path,
                "an OPC UA probe needs `node: ns=2;s=main_meter/v1` (or `nsu=urn:busbar:site;s=main_meter/v1`)",
            );
            return None;
        };
        let read = match p.read.as_deref() {
            None | Some("value") => OpcUaRead::Value,
            Some("status") => OpcUaRead::Status,
            Some("status_class") => OpcUaRead::StatusClass,
            Some(other) => {
                d.push(
                    file,
                    line,
                    path,
                    format!("read `{other}`: value, status or status_class"),
                );
                return None;
            }
        };
        return Some(Probe::OpcUa {
            url: url.clone(),
            node,
            read,
        });
    }
    if let Some(addr) = &p.bacnet {
        let object = p.object.as_deref().and_then(|o| {
            let (t, i) = o.split_once(':')?;
            Some((named(BACNET_TYPES, t.trim())?, i.trim().parse::<u32>().ok()?))
        });
        let Some((object_type, instance)) = object else {
            d.push(
                file,
                line,
                path,
                "a BACnet probe needs `object: <type>:<instance>` (analog-input:403007)",
            );
            return None;
        };
        let property_text = p.property.as_deref().unwrap_or("present-value");
        let Some(property) = named(BACNET_PROPERTIES, property_text) else {
            d.push(
                file,
                line,
                path,
                format!("unknown BACnet property `{property_text}` (present-value, status-flags, event-state, reliability, out-of-service, object-name, units, or a number)"),
            );
            return None;
        };
        return Some(Probe::Bacnet {
            addr: addr.clone(),
            object_type,
            instance,
            property,
        });
    }
    if let Some(addr) = &p.modbus {
        let (Some(unit), Some(address)) = (p.unit, p.address) else {
            d.push(file, line, path, "a Modbus probe needs `unit` and `address`");
            return None;
        };
        let table = match p.table.as_deref() {
            None => Table::Holding,
            Some(t) => match Table::parse(t) {
                Some(Table::Holding) => Table::Holding,
                Some(Table::Input) => Table::Input,
                _ => {
                    d.push(file, line, path, format!("table `{t}`: holding or input"));
                    return None;
                }
            },
        };
        let data_type = match p.data_type.as_deref() {
            None => DataType::U16,
            Some(t) => match DataType::parse_numeric(t) {
                Some(x) => x,
                None => {
                    d.push(file, line, path, format!("type `{t}`: u16 i16 u32 i32 u64 i64 f32 f64"));
                    return None;
                }
            },
        };
        let order = match p.order.as_deref() {
            None => WordOrder::Abcd,
            Some(o) => match WordOrder::parse(o) {
                Some(x) => x,
                None => {
                    d.push(file, line, path, format!("order `{o}`: ABCD CDAB BADC DCBA"));
                    return None;
                }
            },
        };
        let scale = p.scale.unwrap_or(1.0);
        if !scale.is_finite() || scale == 0.0 {
            d.push(file, line, path, "scale must be a finite number other than 0");
            return None;
        }
        return Some(Probe::Modbus {
            addr: addr.clone(),
            unit,
            table,
            address,
            data_type,
            order,
            scale,
        });
    }
    if let Some(url) = &p.http {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            d.push(file, line, path, format!("`{url}` is not an http(s) URL"));
            return None;
        }
        let pointer = p.json.clone().unwrap_or_default();
        if !(pointer.is_empty() || pointer.starts_with('/')) {
            d.push(
                file,
                line,
                path,
                format!("json `{pointer}`: a JSON pointer starts with `/`"),
            );
            return None;
        }
        return Some(Probe::Http {
            url: url.clone(),
            pointer,
        });
    }
    let addr = p.snmp.clone().unwrap_or_default();
    let Some(oid_text) = &p.oid else {
        d.push(file, line, path, "an SNMP probe needs `oid` (dotted numbers)");
        return None;
    };
    let oid: Option<Vec<u32>> = oid_text
        .trim_start_matches('.')
        .split('.')
        .map(|a| a.parse().ok())
        .collect();
    match oid {
        Some(oid) if oid.len() >= 2 => Some(Probe::Snmp {
            addr,
            community: p.community.clone().unwrap_or_else(|| "public".into()),
            oid,
        }),
        _ => {
            d.push(file, line, path, format!("oid `{oid_text}` is not dotted numbers"));
            None
        }
    }
}

fn compare(cx: &Ctx<'_>, line: u64, path: &str, e: &ExpectDoc, d: &mut Diagnostics) -> Option<Compare> {
    let file = cx.file;
    let given = e.equals.is_some() as usize + e.range.is_some() as usize + e.truth.is_some() as usize;
    if given != 1 {
        d.push(
            file,
            line,
            path,
            "a probe needs exactly one of `equals`, `range`, `truth`",
        );
        return None;
    }
    let tolerance = e.tolerance.unwrap_or(0.0);
    if !(tolerance.is_finite() && tolerance >= 0.0) {
        d.push(file, line, format!("{path}.tolerance"), "must be a number >= 0");
        return None;
    }
    if let Some(v) = &e.equals {
        return match v {
            serde_json::Value::Number(n) => Some(Compare::Number {
                value: n.as_f64().unwrap_or(f64::NAN),
                tolerance,
            }),
            serde_json::Value::String(s) => Some(Compare::Text(s.clone())),
            serde_json::Value::Bool(b) => Some(Compare::Text(b.to_string())),
            other => {
                d.push(
                    file,
                    line,
                    format!("{path}.equals"),
                    format!("expected a number or a text, got {other}"),
                );
                None
            }
        };
    }
    if let Some([lo, hi]) = e.range {
        if lo > hi {
            d.push(file, line, format!("{path}.range"), "expected [low, high]");
            return None;
        }
        return Some(Compare::Range(lo, hi));
    }
    let t = e.truth.as_ref()?;
    let device = cx.device(d, line, &format!("{path}.truth"), &t.device)?;
    if !cx.point(d, line, &format!("{path}.truth"), device, &t.point) {
        return None;
    }
    let tolerance_pct = e.tolerance_pct.unwrap_or(0.0);
    if !(tolerance_pct.is_finite() && tolerance_pct >= 0.0) {
        d.push(file, line, format!("{path}.tolerance_pct"), "must be a number >= 0");
        return None;
    }
    Some(Compare::Truth {
        device,
        point: t.point.clone(),
        tolerance,
        tolerance_pct,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse_scenario;

    const SITE: &str = "site: { name: S, id: s }\nlisteners: [{ name: gw, listen: 127.0.0.1:0 }]\ndevices:\n  \
        - { name: ats, profile: socomec-atys-pm, unit_id: 1 }\ntimeline:\n  - { at: 20s, device: ats, event: mains_lost }\n";

    fn parse(tail: &str) -> Result<crate::scenario::Scenario, Diagnostics> {
        let profiles = busbar_core::profile::embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
        parse_scenario("t.yaml", &format!("{SITE}{tail}"), &profiles)
    }

    #[test]
    fn expectations_resolve_their_window_and_their_check() {
        let s = parse(
            "sinks: [{ name: traps, snmp_traps: 127.0.0.1:1162 }]\nexpect:\n  \
             - { wrote: { device: ats, point: command, value: 2 }, after: mains_lost, within: 10s }\n  \
             - { polled: { device: ats, every: 3s }, at: 5s, for: 1m }\n  \
             - { probe: { http: \"http://127.0.0.1:1/x\", json: /value }, equals: under_threshold, within: 5s }\n  \
             - { not_notified: { sink: traps, matches: CommLost } }\n",
        )
        .unwrap_or_else(|d| panic!("{d}"));
        let e = &s.expectations;
        assert_eq!((e[0].start_s, e[0].mode), (20.0, Mode::Within(10.0)));
        assert_eq!(e[0].name, "ats/command written with 2 after mains_lost");
        assert_eq!((e[1].start_s, e[1].end_s()), (5.0, Some(65.0)));
        assert!(matches!(&e[2].check, Check::Probe { compare: Compare::Text(t), .. } if t == "under_threshold"));
        assert_eq!((e[3].mode, e[3].end_s()), (Mode::ToEnd, None));
        assert_eq!(e[3].origin, "t.yaml:12");
    }

    #[test]
    fn bad_expectations_are_located_errors() {
        let d = parse(
            "expect:\n  \
             - { wrote: { device: nope, point: command }, within: 5s }\n  \
             - { wrote: { device: ats, point: command } }\n  \
             - { polled: { device: ats, every: 3s }, within: 5s }\n  \
             - { probe: { modbus: 127.0.0.1:502, unit: 1, address: 3 }, within: 5s }\n  \
             - { notified: { sink: nowhere, matches: x }, within: 5s }\n  \
             - { wrote: { device: ats, point: command }, after: no_such_event, within: 5s }\n  \
             - { probe: { snmp: 127.0.0.1:161, oid: one.two }, equals: 1, within: 5s }\n",
        )
        .err()
        .unwrap_or_default()
        .to_string();
        for expected in [
            "t.yaml:8: expect[0].wrote: unknown device `nope`",
            "t.yaml:9: expect[1]: `wrote` and `notified` need a deadline: `within`",
            "t.yaml:10: expect[2]: `polled`, `never_wrote` and `not_notified` hold for a window",
            "t.yaml:11: expect[3]: a probe needs exactly one of `equals`, `range`, `truth`",
            "t.yaml:12: expect[4]: unknown sink `nowhere`",
            "t.yaml:13: expect[5].after: no timeline event `no_such_event`",
            "t.yaml:14: expect[6].probe: oid `one.two` is not dotted numbers",
        ] {
            assert!(d.contains(expected), "missing `{expected}` in:\n{d}");
        }
    }

    #[test]
    fn opcua_probes_name_an_endpoint_a_node_and_what_to_read() {
        let s = parse(
            "expect:\n  \
             - { probe: { opcua: \"opc.tcp://127.0.0.1:4840/\", node: \"nsu=urn:busbar:site;s=ev1/state\", read: status }, equals: BadCommunicationError, within: 5s }\n  \
             - { probe: { opcua: \"opc.tcp://127.0.0.1:4840/\", node: \"ns=2;s=main_meter/v1\" }, range: [200, 260], within: 5s }\n",
        )
        .unwrap_or_else(|d| panic!("{d}"));
        assert!(
            matches!(&s.expectations[0].check, Check::Probe { probe: Probe::OpcUa { node: OpcUaNode::ByUri { uri, id }, read: OpcUaRead::Status, .. }, .. }
            if uri == "urn:busbar:site" && id == "s=ev1/state")
        );
        assert!(
            matches!(&s.expectations[1].check, Check::Probe { probe: Probe::OpcUa { node: OpcUaNode::Id(t), read: OpcUaRead::Value, .. }, .. }
            if t == "ns=2;s=main_meter/v1")
        );
        let d = parse(
            "expect:\n  \
             - { probe: { opcua: \"http://x\", node: \"ns=2;s=a\" }, equals: 1, within: 5s }\n  \
             - { probe: { opcua: \"opc.tcp://x:4840/\", node: \"nsu=urn:x\" }, equals: 1, within: 5s }\n  \
             - { probe: { opcua: \"opc.tcp://x:4840/\", node: \"ns=2;s=a\", read: colour }, equals: 1, within: 5s }\n",
        )
        .err()
        .unwrap_or_default()
        .to_string();
        for expected in [
            "t.yaml:8: expect[0].probe: `http://x` is not an endpoint",
            "t.yaml:9: expect[1].probe: an OPC UA probe needs `node:",
            "t.yaml:10: expect[2].probe: read `colour`: value, status or status_class",
        ] {
            assert!(d.contains(expected), "missing `{expected}` in:\n{d}");
        }
    }

    #[test]
    fn patterns_match_their_parts_in_order() {
        assert!(pattern_matches(
            "busbarCommLost*ev3",
            "1.3.6 busbarCommLost x ev3 offline"
        ));
        assert!(!pattern_matches("ev3*busbarCommLost", "busbarCommLost ev3"));
        assert!(pattern_matches("plain", "a plain text"));
        assert!(!pattern_matches("absent", "a plain text"));
    }
}
