//! Scenarios (scenarios/*.yaml): the site, its Modbus listeners, its devices with their
//! parameters, and a timeline of events and faults. Parse, then validate without IO,
//! reporting every error with its file, line and path.

use crate::events::{Event, Fault};
use crate::models;
use crate::trace::Trace;
use busbar_core::diag::Diagnostics;
use busbar_core::duration::parse_duration;
use busbar_core::profile::{Family, Profile, ProfileSet};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioDoc {
    site: SiteDoc,
    /// Read and substituted before the rest (params.rs); declared here so the key is known.
    #[serde(default)]
    #[allow(dead_code)]
    parameters: Option<serde_json::Value>,
    /// The highest speed `busbar-sim test` may play this scenario at (default 1: a real SUT
    /// sees real time).
    #[serde(default)]
    max_speed: Option<Spanned<f64>>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    clock: ClockDoc,
    listeners: Vec<Spanned<ListenerDoc>>,
    devices: Vec<Spanned<DeviceDoc>>,
    #[serde(default)]
    timeline: Vec<Spanned<serde_json::Value>>,
    /// What a test run expects of the system under test (`busbar-sim test`).
    #[serde(default)]
    expect: Vec<Spanned<crate::qa::expect::ExpectDoc>>,
    /// Notification receivers a test run provides.
    #[serde(default)]
    sinks: Vec<Spanned<crate::qa::expect::SinkDoc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteDoc {
    name: String,
    id: String,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ClockDoc {
    /// Time of day at which the scenario starts, `HH:MM`.
    #[serde(default)]
    start: Option<String>,
    /// Simulation step in simulated milliseconds.
    #[serde(default)]
    step_ms: Option<u64>,
    /// Opening hours of the station, `["06:00", "22:00"]`.
    #[serde(default)]
    opening_hours: Option<[String; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenerDoc {
    name: String,
    /// A Modbus-TCP port, `127.0.0.1:15020`.
    #[serde(default)]
    listen: Option<String>,
    /// Or a Modbus RTU serial line (a real port or a pty).
    #[serde(default)]
    rtu: Option<busbar_modbus::rtu::SerialLineDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceDoc {
    name: String,
    profile: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    listener: Option<String>,
    unit_id: i64,
    #[serde(default)]
    params: serde_json::Value,
    /// Play a trace recorded from a real device (`busbar-sim record`) instead of the model.
    #[serde(default)]
    replay: Option<ReplayDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayDoc {
    /// The trace file, relative to the scenario's folder.
    trace: String,
    /// Start again after the last line (default: hold the last answers).
    #[serde(default, rename = "loop")]
    looped: bool,
}

/// A device that replays a recorded trace.
#[derive(Debug, Clone)]
pub struct ReplaySpec {
    pub path: PathBuf,
    pub looped: bool,
    /// Read by [`load_traces`].
    pub trace: Option<Arc<Trace>>,
    /// `file:line` of the device, for errors.
    pub origin: (String, u64, String),
}

/// A Modbus listener: a TCP gateway port with a unit id per device, or an RTU bus.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    pub name: String,
    /// The TCP address (for RTU listeners, unused).
    pub listen: SocketAddr,
    pub rtu: Option<RtuLine>,
}

/// A serial line served as Modbus RTU.
pub use busbar_modbus::rtu::SerialLine as RtuLine;

/// A device of the site.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    pub name: String,
    pub description: String,
    pub profile: Arc<Profile>,
    pub listener: usize,
    pub unit_id: u8,
    pub params: serde_json::Value,
    /// Resolved links to other devices (by index).
    pub links: models::Links,
    /// Replays a trace instead of running its model.
    pub replay: Option<ReplaySpec>,
}

/// What happens at a timeline entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Event(Event),
    Fault { fault: Fault, duration: Option<Duration> },
    ClearFaults,
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub at: Duration,
    pub device: Option<String>,
    pub action: Action,
    /// `file:line` for logs.
    pub origin: String,
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub id: String,
    pub description: String,
    pub seed: u64,
    pub start_hour: f64,
    pub step: Duration,
    pub opening_hours: (f64, f64),
    pub listeners: Vec<ListenerSpec>,
    pub devices: Vec<DeviceSpec>,
    pub timeline: Vec<TimelineEntry>,
    pub expectations: Vec<crate::qa::expect::Expectation>,
    pub sinks: Vec<crate::qa::expect::Sink>,
    /// The parameters the scenario declares, with the values this run uses.
    pub parameters: Vec<crate::params::Parameter>,
    /// The highest speed a test run may use (`max_speed`, default 1).
    pub max_speed: f64,
}

fn parse_hhmm(s: &str) -> Option<f64> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then(|| f64::from(h) + f64::from(m) / 60.0)
}

/// Split an event/fault entry (JSON object) into its action, its device and its extra keys.
/// Used by the timeline and by the control API. `extra` lists keys the caller consumes.
pub fn parse_action(value: &serde_json::Value) -> Result<(Action, Option<String>), String> {
    let mut map = match value {
        serde_json::Value::Object(m) => m.clone(),
        _ => return Err("expected a mapping with `event`, `fault` or `clear_faults`".into()),
    };
    let device = match map.remove("device") {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => return Err(format!("`device` must be a name, got {other}")),
        None => None,
    };
    map.remove("at");
    let duration = match map.remove("duration") {
        None => None,
        Some(serde_json::Value::String(s)) => Some(parse_duration(&s)?),
        Some(serde_json::Value::Number(n)) => Some(parse_duration(&n.to_string())?),
        Some(other) => return Err(format!("`duration` must be like `90s` or `2h30m`, got {other}")),
    };
    let kinds = ["event", "fault", "clear_faults"]
        .iter()
        .filter(|k| map.contains_key(**k))
        .count();
    if kinds != 1 {
        return Err("an entry needs exactly one of `event`, `fault`, `clear_faults`".into());
    }
    let action = if map.contains_key("event") {
        if duration.is_some()
            && !matches!(
                map.get("event").and_then(|e| e.as_str()),
                Some("delivery" | "leak_test" | "overload")
            )
        {
            return Err("`duration` applies to faults (and to delivery, leak_test, overload events)".into());
        }
        if let Some(d) = duration {
            map.insert(
                "duration".into(),
                serde_json::Value::String(busbar_core::duration::format_duration(d)),
            );
        }
        Action::Event(serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| e.to_string())?)
    } else if map.contains_key("fault") {
        Action::Fault {
            fault: serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| e.to_string())?,
            duration,
        }
    } else {
        if map.len() != 1 || map.get("clear_faults") != Some(&serde_json::Value::Bool(true)) {
            return Err("write `clear_faults: true` alone".into());
        }
        Action::ClearFaults
    };
    Ok((action, device))
}

/// Parse and validate a scenario against a profile set, its parameters at their defaults.
pub fn parse_scenario(file: &str, text: &str, profiles: &ProfileSet) -> Result<Scenario, Diagnostics> {
    parse_scenario_with(file, text, profiles, &[])
}

/// Parse and validate a scenario, its parameters given `name=value` overrides (`--param`).
pub fn parse_scenario_with(
    file: &str,
    text: &str,
    profiles: &ProfileSet,
    overrides: &[(String, String)],
) -> Result<Scenario, Diagnostics> {
    let (text, parameters) = crate::params::apply(file, text, overrides)?;
    let doc: ScenarioDoc = serde_saphyr::from_str(&text).map_err(|e| Diagnostics::from_yaml_error(file, &e))?;
    let mut d = Diagnostics::default();
    let max_speed = match &doc.max_speed {
        None => 1.0,
        Some(m) if m.value >= 1.0 && m.value <= 100_000.0 => m.value,
        Some(m) => {
            d.push(
                file,
                m.referenced.line(),
                "max_speed",
                "`max_speed` is within [1, 100000] (1: real time)",
            );
            1.0
        }
    };
    let (start_hour, step_ms, opening_hours) = clock_settings(file, &doc.clock, &mut d);
    let (listeners, listener_index) = listeners(file, &doc.listeners, &mut d);
    let (mut devices, lines) = devices(file, &doc.devices, &listener_index, profiles, &mut d);
    let index: HashMap<String, usize> = devices.iter().enumerate().map(|(i, dv)| (dv.name.clone(), i)).collect();
    link_devices(file, &doc.devices, &mut devices, &lines, &index, profiles, &mut d);
    let timeline = timeline(file, &doc.timeline, &devices, &index, &mut d);
    let sinks = crate::qa::expect::sinks(file, &doc.sinks, &mut d);
    let expectations = crate::qa::expect::expectations(file, &doc.expect, &devices, &index, &timeline, &sinks, &mut d);
    let scenario = Scenario {
        name: doc.site.name,
        id: doc.site.id,
        description: doc.site.description,
        seed: doc.seed.unwrap_or(1),
        start_hour,
        step: Duration::from_millis(step_ms),
        opening_hours,
        listeners,
        devices,
        timeline,
        expectations,
        sinks,
        parameters,
        max_speed,
    };
    d.into_result(scenario)
}

/// `clock`: the start time of day, the simulation step and the opening hours.
fn clock_settings(file: &str, clock: &ClockDoc, d: &mut Diagnostics) -> (f64, u64, (f64, f64)) {
    let start_hour = match clock.start.as_deref() {
        None => 8.0,
        Some(s) => parse_hhmm(s).unwrap_or_else(|| {
            d.push(file, 0, "clock.start", format!("`{s}` is not a time of day HH:MM"));
            8.0
        }),
    };
    let step_ms = clock.step_ms.unwrap_or(100);
    if !(10..=10_000).contains(&step_ms) {
        d.push(file, 0, "clock.step_ms", "must be within 10..=10000");
    }
    let opening_hours = match &clock.opening_hours {
        None => (6.0, 22.0),
        Some([a, b]) => match (parse_hhmm(a), parse_hhmm(b)) {
            (Some(a), Some(b)) => (a, b),
            _ => {
                d.push(file, 0, "clock.opening_hours", "expected [\"HH:MM\", \"HH:MM\"]");
                (6.0, 22.0)
            }
        },
    };

    (start_hour, step_ms, opening_hours)
}

/// `listeners`: Modbus-TCP addresses (each once) or serial lines.
fn listeners(
    file: &str,
    docs: &[Spanned<ListenerDoc>],
    d: &mut Diagnostics,
) -> (Vec<ListenerSpec>, HashMap<String, usize>) {
    let mut listeners = Vec::new();
    let mut listener_index = HashMap::new();
    let mut addrs = HashSet::new();
    for (i, l) in docs.iter().enumerate() {
        let line = l.referenced.line();
        let path = format!("listeners[{i}] ({})", l.value.name);
        if listener_index.insert(l.value.name.clone(), i).is_some() {
            d.push(file, line, &path, "duplicate listener name");
        }
        let fallback = SocketAddr::from(([127, 0, 0, 1], 0));
        match (&l.value.listen, &l.value.rtu) {
            (Some(text), None) => match text.parse::<SocketAddr>() {
                Ok(a) => {
                    if a.port() != 0 && !addrs.insert(a) {
                        d.push(file, line, &path, format!("{a} is used by another listener"));
                    }
                    listeners.push(ListenerSpec {
                        name: l.value.name.clone(),
                        listen: a,
                        rtu: None,
                    });
                }
                Err(_) => {
                    d.push(
                        file,
                        line,
                        &path,
                        format!("`{text}` is not an address like 127.0.0.1:15020"),
                    );
                    listeners.push(ListenerSpec {
                        name: l.value.name.clone(),
                        listen: fallback,
                        rtu: None,
                    });
                }
            },
            (None, Some(r)) => {
                let (rtu, problems) = r.resolve();
                for problem in problems {
                    d.push(file, line, &path, problem);
                }
                listeners.push(ListenerSpec {
                    name: l.value.name.clone(),
                    listen: fallback,
                    rtu: Some(rtu),
                });
            }
            _ => {
                d.push(
                    file,
                    line,
                    &path,
                    "a listener needs exactly one of `listen` (TCP) or `rtu` (serial)",
                );
                listeners.push(ListenerSpec {
                    name: l.value.name.clone(),
                    listen: fallback,
                    rtu: None,
                });
            }
        }
    }
    if listeners.is_empty() {
        d.push(file, 0, "listeners", "a scenario needs at least one listener");
    }

    (listeners, listener_index)
}

/// `devices`, first pass: names, profiles, listeners, unit ids; the line and path of each.
fn devices(
    file: &str,
    docs: &[Spanned<DeviceDoc>],
    listener_index: &HashMap<String, usize>,
    profiles: &ProfileSet,
    d: &mut Diagnostics,
) -> (Vec<DeviceSpec>, Vec<(u64, String)>) {
    let mut devices: Vec<DeviceSpec> = Vec::new();
    let mut check = busbar_core::profile::DeviceListCheck::new(profiles);
    let mut units = HashMap::new();
    let mut lines = Vec::new();
    for (i, sd) in docs.iter().enumerate() {
        let dv = &sd.value;
        let line = sd.referenced.line();
        let path = format!("devices[{i}] ({})", dv.name);
        let Some(profile) = check.check(d, file, line, &path, i, &dv.name, &dv.profile) else {
            continue;
        };
        let listener = match &dv.listener {
            None => 0,
            Some(n) => match listener_index.get(n) {
                Some(&l) => l,
                None => {
                    d.push(file, line, &path, format!("unknown listener `{n}`"));
                    0
                }
            },
        };
        let unit_id = match u8::try_from(dv.unit_id) {
            Ok(u) if (1..=247).contains(&u) => u,
            _ => {
                d.push(file, line, &path, format!("unit_id {} is outside 1..=247", dv.unit_id));
                1
            }
        };
        if let Some(other) = units.insert((listener, unit_id), dv.name.clone()) {
            d.push(
                file,
                line,
                &path,
                format!("unit id {unit_id} is already used by `{other}` on this listener"),
            );
        }
        let replay = dv.replay.as_ref().map(|r| {
            if !dv.params.is_null() {
                d.push(
                    file,
                    line,
                    format!("{path}.params"),
                    "a replayed device plays its trace: `params` do not apply",
                );
            }
            let dir = Path::new(file).parent().unwrap_or(Path::new(""));
            ReplaySpec {
                path: dir.join(&r.trace),
                looped: r.looped,
                trace: None,
                origin: (file.to_string(), line, format!("{path}.replay")),
            }
        });
        lines.push((line, path));
        devices.push(DeviceSpec {
            name: dv.name.clone(),
            description: dv.description.clone(),
            profile: profile.clone(),
            listener,
            unit_id,
            params: dv.params.clone(),
            links: models::Links {
                own: devices.len(),
                ..Default::default()
            },
            replay,
        });
    }

    (devices, lines)
}

/// `devices`, second pass: each model's parameters, and the links between devices (supply,
/// meter, insulation monitor) checked against the families they must be.
#[allow(clippy::too_many_arguments)]
fn link_devices(
    file: &str,
    docs: &[Spanned<DeviceDoc>],
    devices: &mut [DeviceSpec],
    lines: &[(u64, String)],
    index: &HashMap<String, usize>,
    profiles: &ProfileSet,
    d: &mut Diagnostics,
) {
    for (i, dv) in devices.iter_mut().enumerate() {
        let (line, path) = &lines[i];
        if dv.replay.is_some() {
            continue;
        }
        let family = dv.profile.family;
        let blocks = block_count(&dv.profile);
        let names = match models::build(family, &dv.params, &models::Links::default(), blocks).map(|(_, n)| n) {
            Ok(n) => n,
            Err(e) => {
                d.push(file, *line, format!("{path}.params"), e);
                continue;
            }
        };
        let mut resolve = |what: &str, name: &Option<String>, allowed: &[Family]| -> Option<usize> {
            let name = name.as_ref()?;
            match index.get(name) {
                None => {
                    d.push(
                        file,
                        *line,
                        format!("{path}.params.{what}"),
                        format!("unknown device `{name}`"),
                    );
                    None
                }
                Some(&j) if !allowed.contains(&doc_family(profiles, &docs[j].value.profile)) => {
                    let allowed: Vec<_> = allowed.iter().map(|f| f.as_str()).collect();
                    d.push(
                        file,
                        *line,
                        format!("{path}.params.{what}"),
                        format!("`{name}` must be a {}", allowed.join(" or ")),
                    );
                    None
                }
                Some(&j) => Some(j),
            }
        };
        dv.links.supply = resolve("supply", &names.supply, &[Family::TransferSwitch, Family::Breaker]);
        dv.links.meter = resolve("meter", &names.meter, &[Family::Meter]);
        dv.links.imd = resolve("imd", &names.imd, &[Family::InsulationMonitor]);
    }
}

/// `timeline`: each entry at a duration since the start, on a known device, in time order.
fn timeline(
    file: &str,
    docs: &[Spanned<serde_json::Value>],
    devices: &[DeviceSpec],
    index: &HashMap<String, usize>,
    d: &mut Diagnostics,
) -> Vec<TimelineEntry> {
    let mut timeline = Vec::new();
    for (i, se) in docs.iter().enumerate() {
        let line = se.referenced.line();
        let path = format!("timeline[{i}]");
        let at = match se.value.get("at") {
            Some(serde_json::Value::String(s)) => parse_duration(s),
            Some(serde_json::Value::Number(n)) => parse_duration(&n.to_string()),
            _ => Err("needs `at:` (a duration since the start, like 2h30m)".to_string()),
        };
        let at = match at {
            Ok(a) => a,
            Err(e) => {
                d.push(file, line, &path, e);
                continue;
            }
        };
        match parse_action(&se.value) {
            Err(e) => d.push(file, line, &path, e),
            Ok((action, device)) => {
                if let Some(name) = &device {
                    match index.get(name) {
                        None => d.push(file, line, &path, format!("unknown device `{name}`")),
                        Some(&j) => {
                            if let Action::Fault {
                                fault: Fault::OutOfRange { point, .. },
                                ..
                            } = &action
                            {
                                if devices[j].profile.point(point).is_none() {
                                    d.push(file, line, &path, format!("`{name}` has no point `{point}`"));
                                }
                            }
                        }
                    }
                } else {
                    let site_wide = matches!(&action, Action::Event(e) if e.is_site_wide());
                    if !site_wide {
                        d.push(file, line, &path, "this entry needs `device:`");
                    }
                }
                timeline.push(TimelineEntry {
                    at,
                    device,
                    action,
                    origin: format!("{file}:{line}"),
                });
            }
        }
    }
    timeline.sort_by_key(|e| e.at);

    timeline
}

/// Read the traces of replayed devices (the IO that [`parse_scenario`] leaves out) and check
/// each against its device: a trace recorded through another profile is refused.
pub fn load_traces(scenario: &mut Scenario) -> Result<(), Diagnostics> {
    let mut d = Diagnostics::default();
    for dv in &mut scenario.devices {
        let Some(r) = &mut dv.replay else { continue };
        let (file, line, path) = &r.origin;
        let shown = r.path.display().to_string();
        let text = match std::fs::read_to_string(&r.path) {
            Ok(t) => t,
            Err(e) => {
                d.push(file, *line, path, format!("cannot read trace {shown}: {e}"));
                continue;
            }
        };
        match crate::trace::parse(&shown, &text) {
            Ok(t) => {
                if let Some(p) = t.header.profile.as_deref().filter(|p| *p != dv.profile.name) {
                    d.push(
                        file,
                        *line,
                        path,
                        format!(
                            "{shown} was recorded through profile `{p}`, the device is a `{}`",
                            dv.profile.name
                        ),
                    );
                }
                r.trace = Some(Arc::new(t));
            }
            Err(e) => d.extend(e),
        }
    }
    d.into_result(())
}

fn doc_family(profiles: &ProfileSet, name: &str) -> Family {
    profiles.get(name).map_or(Family::Meter, |p| p.family)
}

/// Instances of the profile's repeated block (tanks, circuits...), 0 without blocks.
pub fn block_count(profile: &Profile) -> u16 {
    profile
        .points
        .iter()
        .filter_map(|p| p.block.as_ref())
        .filter(|b| !matches!(b.name.as_str(), "product"))
        .map(|b| b.index)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles() -> ProfileSet {
        busbar_core::profile::embedded::profiles().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn reports_every_error_with_its_line() {
        let text = r#"
site: { name: Bad, id: bad }
listeners:
  - { name: gw, listen: "127.0.0.1:15020" }
devices:
  - { name: m1, profile: socomec-diris-a40, unit_id: 1 }
  - { name: m1, profile: socomec-diris-a40, unit_id: 2 }
  - { name: m2, profile: no-such-profile, unit_id: 3 }
  - { name: m3, profile: socomec-diris-a40, unit_id: 1 }
  - { name: m4, profile: socomec-diris-a40, unit_id: 300 }
  - { name: m5, profile: socomec-diris-a40, unit_id: 5, params: { supply: m1, colour: red } }
timeline:
  - { at: 1m, device: ghost, event: mains_lost }
  - { at: soon, device: m1, event: mains_lost }
  - { at: 2m, device: m1, fault: out_of_range, point: nope, value: 1 }
"#;
        let err = parse_scenario("s.yaml", text, &profiles()).err().unwrap_or_default();
        let t = err.to_string();
        for want in [
            "s.yaml:7: devices[1] (m1): duplicate device name",
            "s.yaml:8: devices[2] (m2): unknown profile `no-such-profile`",
            "s.yaml:9: devices[3] (m3): unit id 1 is already used by `m1`",
            "s.yaml:10: devices[4] (m4): unit_id 300 is outside 1..=247",
            "s.yaml:11: devices[5] (m5).params: unknown field `colour`",
            "s.yaml:13: timeline[0]: unknown device `ghost`",
            "s.yaml:14: timeline[1]: invalid duration `soon`",
            "s.yaml:15: timeline[2]: `m1` has no point `nope`",
        ] {
            assert!(t.contains(want), "missing `{want}` in:\n{t}");
        }
    }

    #[test]
    fn parameters_fill_the_scenario_and_max_speed_is_bounded() {
        let text = r#"
parameters:
  gateway: { default: "127.0.0.1:15020", description: where the SUT polls }
  limit: { default: 16 }
site: { name: P, id: p }
max_speed: ${speed}
listeners: [{ name: gw, listen: "${gateway}" }]
devices:
  - { name: ev1, profile: legrand-greenup, unit_id: 10 }
expect:
  - { name: limit, wrote: { device: ev1, point: current_limit, value: ${limit} }, within: 5s }
"#;
        let err = parse_scenario("p.yaml", text, &profiles())
            .err()
            .unwrap_or_default()
            .to_string();
        assert!(err.contains("p.yaml:6: `${speed}` names no parameter"), "{err}");
        let text = text.replace("  limit: {", "  speed: { default: 0.5 }\n  limit: {");
        let err = parse_scenario("p.yaml", &text, &profiles())
            .err()
            .unwrap_or_default()
            .to_string();
        assert!(
            err.contains("p.yaml:7: max_speed: `max_speed` is within [1, 100000]"),
            "{err}"
        );
        let over = [
            ("speed".to_string(), "20".to_string()),
            ("gateway".to_string(), "127.0.0.1:25020".to_string()),
        ];
        let s = parse_scenario_with("p.yaml", &text, &profiles(), &over).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(s.max_speed, 20.0);
        assert_eq!(s.listeners[0].listen.port(), 25020);
        assert_eq!(s.parameters.len(), 3);
        let plain = text.replace("max_speed: ${speed}\n", "");
        let s = parse_scenario("p.yaml", &plain, &profiles()).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(
            s.max_speed, 1.0,
            "a scenario plays a real SUT in real time unless it says otherwise"
        );
    }

    #[test]
    fn replayed_devices_name_their_trace_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("busbar-scenario-replay-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let header =
            r#"{"busbar_trace":1,"source":"tcp x:502","unit":2,"profile":"socomec-diris-a40","interval_ms":1000}"#;
        let line = r#"{"t":0,"table":"holding","address":50000,"count":2,"words":[1,2]}"#;
        let _ = std::fs::write(dir.join("meter.jsonl"), format!("{header}\n{line}\n"));
        let text = r#"
site: { name: R, id: r }
listeners: [{ name: gw, listen: "127.0.0.1:0" }]
devices:
  - { name: m1, profile: socomec-diris-a40, unit_id: 1, replay: { trace: meter.jsonl } }
  - { name: m2, profile: legrand-emdx3, unit_id: 2, replay: { trace: meter.jsonl } }
  - { name: m3, profile: socomec-diris-a40, unit_id: 3, replay: { trace: gone.jsonl } }
  - { name: m4, profile: socomec-diris-a40, unit_id: 4, params: { base_kw: 3 }, replay: { trace: meter.jsonl } }
"#;
        let file = dir.join("s.yaml").display().to_string();
        let mut s = match parse_scenario(&file, text, &profiles()) {
            Err(d) => {
                let t = d.to_string();
                assert!(
                    t.contains(":8: devices[3] (m4).params: a replayed device plays its trace"),
                    "{t}"
                );
                let fixed = text.replace("params: { base_kw: 3 }, ", "");
                parse_scenario(&file, &fixed, &profiles()).unwrap_or_else(|d| panic!("{d}"))
            }
            Ok(_) => panic!("params with replay must be refused"),
        };
        let t = load_traces(&mut s).err().map(|d| d.to_string()).unwrap_or_default();
        assert!(
            t.contains("recorded through profile `socomec-diris-a40`, the device is a `legrand-emdx3`"),
            "{t}"
        );
        assert!(t.contains(":7: devices[2] (m3).replay: cannot read trace"), "{t}");
        assert!(
            s.devices[0].replay.as_ref().is_some_and(|r| r.trace.is_some()),
            "m1's trace is loaded"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn actions_parse_from_json() {
        let (a, dev) = parse_action(
            &serde_json::json!({"device": "t", "event": "delivery", "tank": 2, "volume_l": 12000, "duration": "40m"}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dev.as_deref(), Some("t"));
        assert_eq!(
            a,
            Action::Event(Event::Delivery {
                tank: 2,
                volume_l: 12000.0,
                duration: Duration::from_secs(2400),
                temperature_c: None
            })
        );
        let (f, _) =
            parse_action(&serde_json::json!({"fault": "silent", "duration": "2m"})).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            f,
            Action::Fault {
                fault: Fault::Silent,
                duration: Some(Duration::from_secs(120))
            }
        );
        assert!(parse_action(&serde_json::json!({"fault": "silent", "event": "mains_lost"})).is_err());
        assert!(parse_action(&serde_json::json!({"event": "mains_lost", "duration": "1m"})).is_err());
        assert!(parse_action(&serde_json::json!({"event": "warp_drive"})).is_err());
    }
}
