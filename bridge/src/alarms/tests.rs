//! The engine's behaviours on a clock the tests move: deadband, both delays, latching,
//! acknowledgement, shelving and its expiry, out of service, flapping, device states from the
//! profiles, communication, and the journal's restore.

use super::engine::{Action, ActionError, Engine};
use super::journal::{Filter, Journal};
use super::model::{Actor, Kind, Level, Severity};
use super::section::{AlarmSettings, AlarmsDoc, SectionAt};
use crate::clock::{Clock, ManualClock};
use crate::config::{parse_config, Config};
use crate::store::{PointValue, Reading, Store};
use busbar_core::quality::Quality;
use std::sync::Arc;
use std::time::Duration;

const SITE: &str = "site: { name: S, id: s }\nconnections: [{ name: gw, tcp: { host: h, port: 1 } }]\ndevices:\n  \
    - { name: m, profile: socomec-diris-a40, connection: gw, unit_id: 1 }\n  \
    - { name: b, profile: legrand-dpx3, connection: gw, unit_id: 2 }\n";

struct Rig {
    clock: Arc<ManualClock>,
    config: Config,
    store: Arc<Store>,
    engine: Engine,
}

/// `alarms:` of `alarms_yaml` resolved against the config's devices, and what it reported.
fn resolve(config: &Config, alarms_yaml: &str) -> (Option<AlarmSettings>, busbar_core::diag::Diagnostics) {
    let doc: AlarmsDoc = serde_saphyr::from_str(alarms_yaml).unwrap_or_else(|e| panic!("{e}"));
    let mut d = busbar_core::diag::Diagnostics::default();
    let s = doc.resolve(
        &SectionAt {
            file: "t.yaml",
            line: 1,
            base_dir: std::path::Path::new(""),
            devices: &config.devices,
        },
        &mut d,
    );
    (s, d)
}

fn settings(config: &Config, alarms_yaml: &str) -> AlarmSettings {
    let (s, d) = resolve(config, alarms_yaml);
    assert!(d.is_empty(), "{d}");
    s.unwrap_or_else(|| panic!("settings"))
}

fn rig(alarms_yaml: &str) -> Rig {
    let profiles = busbar_core::profile::embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
    let config = parse_config("t.yaml", SITE, &profiles, "x").unwrap_or_else(|e| panic!("{e}"));
    let clock = ManualClock::new();
    let store = Store::with_clock(&config, 1024, clock.clone());
    let s = settings(&config, alarms_yaml);
    let engine = Engine::new(&config, &store, &s);
    Rig {
        clock,
        config,
        store,
        engine,
    }
}

impl Rig {
    fn set(&mut self, id: &str, v: f64) -> Vec<(Kind, Option<Level>)> {
        let p = self.store.find(id).unwrap_or_else(|| panic!("{id}"));
        self.store.update(
            &[(p, Reading::Value(PointValue::Number(v), Quality::Good))],
            self.clock.wall(),
        );
        let t = self
            .engine
            .on_changes(&self.store, &[p], self.clock.now(), self.clock.wall());
        t.iter().map(|t| (t.kind, t.level)).collect()
    }

    fn after(&mut self, ms: u64) -> Vec<(Kind, Option<Level>)> {
        self.clock.advance(Duration::from_millis(ms));
        let t = self.engine.on_tick(&self.store, self.clock.now(), self.clock.wall());
        t.iter().map(|t| (t.kind, t.level)).collect()
    }

    fn act(&mut self, id: &str, a: Action) -> Result<Kind, ActionError> {
        let actor = Actor {
            user: "ann".into(),
            via: "test".into(),
            comment: "seen".into(),
        };
        self.engine.act(id, a, actor, self.clock.wall()).map(|t| t.kind)
    }

    fn state(&self, id: &str) -> super::model::AlarmState {
        self.engine.get(id).map(|a| a.state).unwrap_or_default()
    }
}

const V1: &str = "threshold/voltage/m/v1";
const VOLTAGE: &str = "{ device_alarms: false, communication: { enabled: false }, rules: [ { name: voltage, points: [v1], family: meter, low: 207, high: 253, high_high: 260, deadband: 2, severity: { high: minor, high_high: critical } } ] }";

#[test]
fn a_threshold_raises_at_its_limit_and_clears_past_the_deadband() {
    let mut r = rig(VOLTAGE);
    assert_eq!(r.set("m/v1", 230.0), vec![]);
    assert_eq!(r.set("m/v1", 254.0), vec![(Kind::Raised, Some(Level::High))]);
    let a = r.engine.get(V1).unwrap_or_else(|| panic!("alarm"));
    assert_eq!(a.severity, Severity::Minor);
    assert_eq!(a.message, "m Phase-neutral voltage V1 254 V above 253 V");
    assert_eq!(r.set("m/v1", 252.0), vec![], "inside the deadband");
    assert_eq!(
        r.set("m/v1", 261.0),
        vec![(Kind::Raised, Some(Level::HighHigh))],
        "escalates"
    );
    assert_eq!(r.engine.get(V1).map(|a| a.severity), Some(Severity::Critical));
    assert_eq!(r.set("m/v1", 250.9), vec![(Kind::Cleared, None)]);
    let s = r.state(V1);
    assert!(!s.active && !s.acknowledged, "returned to normal, not acknowledged");
    assert_eq!(r.act(V1, Action::Acknowledge), Ok(Kind::Acknowledged));
    assert!(r.state(V1).is_quiet());
    assert_eq!(
        r.act(V1, Action::Acknowledge),
        Err(ActionError::Already(V1.into(), "acknowledged"))
    );
    assert!(r.engine.listed().is_empty());
}

#[test]
fn on_delay_and_off_delay_are_timed_on_the_clock() {
    let mut r = rig("{ device_alarms: false, communication: { enabled: false }, rules: [ { name: voltage, points: [v1], high: 253, on_delay_s: 10, off_delay_s: 5 } ] }");
    assert_eq!(r.set("m/v1", 255.0), vec![]);
    assert_eq!(r.after(9_999), vec![]);
    assert_eq!(r.after(1), vec![(Kind::Raised, Some(Level::High))]);
    assert_eq!(r.set("m/v1", 240.0), vec![]);
    assert_eq!(r.after(4_000), vec![]);
    assert_eq!(
        r.set("m/v1", 255.0),
        vec![],
        "back above before the off-delay: still active"
    );
    assert_eq!(r.after(60_000), vec![]);
    assert_eq!(r.set("m/v1", 240.0), vec![]);
    assert_eq!(r.after(5_000), vec![(Kind::Cleared, None)]);
}

#[test]
fn a_latching_alarm_stays_active_until_acknowledged() {
    let mut r = rig("{ device_alarms: false, communication: { enabled: false }, rules: [ { name: voltage, points: [v1], high: 253, latching: true } ] }");
    r.set("m/v1", 255.0);
    assert_eq!(r.set("m/v1", 240.0), vec![(Kind::Cleared, None)]);
    assert!(r.state(V1).active, "latched");
    assert_eq!(r.act(V1, Action::Acknowledge), Ok(Kind::Acknowledged));
    assert!(r.state(V1).is_quiet());
    // Acknowledged while the condition is still active: it stays active until it clears.
    r.set("m/v1", 255.0);
    r.act(V1, Action::Acknowledge).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.state(V1).active);
    r.set("m/v1", 240.0);
    assert!(r.state(V1).is_quiet());
}

#[test]
fn shelving_expires_on_the_clock_and_disabling_stops_evaluation() {
    let mut r = rig(VOLTAGE);
    r.set("m/v1", 255.0);
    assert_eq!(r.act(V1, Action::Shelve(Duration::from_secs(600))), Ok(Kind::Shelved));
    assert!(r.state(V1).shelved_until_ms.is_some());
    assert_eq!(r.after(599_000), vec![]);
    assert_eq!(r.after(1_000), vec![(Kind::Unshelved, Some(Level::High))]);
    assert_eq!(r.act(V1, Action::Unshelve), Err(ActionError::NotShelved(V1.into())));
    assert_eq!(r.act(V1, Action::Shelve(Duration::ZERO)), Err(ActionError::BadDuration));
    assert_eq!(r.act(V1, Action::Disable), Ok(Kind::Disabled));
    assert_eq!(r.set("m/v1", 270.0), vec![], "out of service");
    assert_eq!(r.act(V1, Action::Enable), Ok(Kind::Enabled));
    assert_eq!(r.set("m/v1", 271.0), vec![(Kind::Raised, Some(Level::HighHigh))]);
}

#[test]
fn a_comment_is_a_transition_that_changes_no_state() {
    let mut r = rig(VOLTAGE);
    r.set("m/v1", 255.0);
    let before = r.state(V1);
    assert_eq!(r.act(V1, Action::Comment), Ok(Kind::Commented));
    assert_eq!(r.state(V1), before);
    let silent = Actor {
        user: "ann".into(),
        via: "test".into(),
        comment: "  ".into(),
    };
    assert_eq!(
        r.engine
            .act(V1, Action::Comment, silent, r.clock.wall())
            .map(|t| t.kind),
        Err(ActionError::EmptyComment)
    );
}

#[test]
fn a_flapping_input_is_held_back_and_counted() {
    let mut r = rig("{ device_alarms: false, communication: { enabled: false }, flapping: { max_raises: 2, window_s: 60 }, rules: [ { name: voltage, points: [v1], high: 253 } ] }");
    let mut kinds = Vec::new();
    for _ in 0..5 {
        kinds.extend(r.set("m/v1", 255.0));
        kinds.extend(r.set("m/v1", 240.0));
        r.after(1_000);
    }
    let raised = kinds.iter().filter(|k| k.0 == Kind::Raised).count();
    let cleared = kinds.iter().filter(|k| k.0 == Kind::Cleared).count();
    assert_eq!((raised, cleared), (2, 2), "{kinds:?}");
    r.after(60_000);
    let next = r.set("m/v1", 255.0);
    assert_eq!(next, vec![(Kind::Suppressed, None), (Kind::Raised, Some(Level::High))]);
}

#[test]
fn device_states_from_the_profile_need_no_configuration() {
    let mut r = rig("{ communication: { enabled: false } }");
    assert_eq!(r.set("b/state", 1.0), vec![]);
    assert_eq!(r.set("b/state", 2.0), vec![(Kind::Raised, Some(Level::Abnormal))]);
    let a = r.engine.get("device/b/state").unwrap_or_else(|| panic!("alarm"));
    assert_eq!(
        (a.severity, a.message.as_str()),
        (Severity::Major, "b Breaker state: tripped")
    );
    assert_eq!(r.set("b/state", 1.0), vec![(Kind::Cleared, None)]);
}

#[test]
fn a_silent_device_raises_its_communication_alarm_after_the_delay() {
    let mut r = rig("{ device_alarms: false, communication: { delay_s: 10 } }");
    let b = r.config.devices.iter().position(|d| d.name == "b").unwrap_or(0);
    if let Some(mut st) = r.store.status(b) {
        st.polls = 3;
        st.online = false;
    }
    // The engine looks at device statuses every tick (250 ms in the bridge).
    assert_eq!(r.after(0), vec![]);
    assert_eq!(r.after(9_999), vec![]);
    assert_eq!(r.after(1), vec![(Kind::Raised, Some(Level::Abnormal))]);
    if let Some(mut st) = r.store.status(b) {
        st.online = true;
    }
    assert_eq!(r.after(250), vec![(Kind::Cleared, None)]);
    // A device never polled yet is not an alarm.
    let m = r.engine.get("communication/m").map(|a| a.state.active);
    assert_eq!(m, Some(false));
}

#[test]
fn a_restart_restores_the_journaled_state_and_re_evaluates() {
    let mut r = rig(VOLTAGE);
    let mut journal = Journal::in_memory().unwrap_or_else(|e| panic!("{e}"));
    let p = r.store.find("m/v1").unwrap_or(0);
    r.store.update(
        &[(p, Reading::Value(PointValue::Number(255.0), Quality::Good))],
        r.clock.wall(),
    );
    let raised = r.engine.on_changes(&r.store, &[p], r.clock.now(), r.clock.wall());
    let committed = journal.append(raised).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(committed.len(), 1);
    assert!(committed[0].seq > 0);
    // A new engine over the same journal: the alarm is still active and unacknowledged.
    let s = settings(&r.config, VOLTAGE);
    let mut again = Engine::new(&r.config, &r.store, &s);
    again.restore(&journal.latest().unwrap_or_default());
    let a = again.get(V1).unwrap_or_else(|| panic!("alarm"));
    assert!(a.state.active && !a.state.acknowledged);
    assert_eq!(a.level, Some(Level::High));
    // The same value again changes nothing (no second raise); a normal value clears it.
    assert!(again.on_all(&r.store, r.clock.now(), r.clock.wall()).is_empty());
    r.store.update(
        &[(p, Reading::Value(PointValue::Number(230.0), Quality::Good))],
        r.clock.wall(),
    );
    let cleared = again.on_all(&r.store, r.clock.now(), r.clock.wall());
    assert_eq!(cleared.iter().map(|t| t.kind).collect::<Vec<_>>(), vec![Kind::Cleared]);
    journal.append(cleared).unwrap_or_else(|e| panic!("{e}"));
    let history = journal
        .query(&Filter {
            alarm: Some(V1.into()),
            limit: 10,
            ..Filter::default()
        })
        .unwrap_or_default();
    assert_eq!(
        history.iter().map(|t| t.kind).collect::<Vec<_>>(),
        vec![Kind::Cleared, Kind::Raised],
        "newest first, each once"
    );
    let forward = journal
        .query(&Filter {
            alarm: Some(V1.into()),
            limit: 10,
            oldest_first: true,
            ..Filter::default()
        })
        .unwrap_or_default();
    assert_eq!(
        forward.iter().map(|t| t.kind).collect::<Vec<_>>(),
        vec![Kind::Raised, Kind::Cleared],
        "oldest first when asked"
    );
}

#[test]
fn bad_rules_are_located_errors() {
    let profiles = busbar_core::profile::embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
    let config = parse_config("t.yaml", SITE, &profiles, "x").unwrap_or_else(|e| panic!("{e}"));
    let (_, d) = resolve(
        &config,
        "rules:\n  - { name: a, points: [nope], high: 1 }\n  - { name: b, points: [v1], low: 300, high: 200 }\n  - { name: c, points: [ident], high: 1 }\n  - { name: d, points: [v1], devices: [ghost], high: 1, severity: dire }\n",
    );
    let text = d.to_string();
    for expected in [
        "t.yaml:2: alarms.rules[0] (a): no device it applies to has an acquired point `nope`",
        "t.yaml:3: alarms.rules[1] (b): limits out of order: low 300 is not below high 200",
        "t.yaml:4: alarms.rules[2] (c): `m/ident` is a text point: a threshold needs a number",
        "t.yaml:5: alarms.rules[3] (d): unknown device `ghost`",
        "severity `dire` is not one of",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
}

const RAMP: &str = "{ device_alarms: false, communication: { enabled: false }, quality: { enabled: false }, rules: [ { name: ramp, points: [v1], devices: [m], rate_of_change: 1.0, rate_window_s: 10, severity: { rate_of_change: warning } } ] }";

#[test]
fn a_rate_of_change_is_measured_across_its_window_and_clears_when_the_value_settles() {
    let mut r = rig(RAMP);
    let id = "threshold/ramp/m/v1";
    assert_eq!(r.set("m/v1", 230.0), vec![]);
    r.clock.advance(Duration::from_secs(5));
    assert_eq!(r.set("m/v1", 236.0), vec![], "the window has not ended");
    // The window ends with no new value: measured on the tick, 10 V in 10 s.
    r.clock.advance(Duration::from_secs(4));
    assert_eq!(r.set("m/v1", 240.0), vec![]);
    assert_eq!(r.after(1_000), vec![(Kind::Raised, Some(Level::RateOfChange))]);
    let a = r.engine.get(id).unwrap_or_else(|| panic!("alarm"));
    assert_eq!(a.severity, Severity::Warning);
    assert_eq!(
        a.message,
        "m Phase-neutral voltage V1 240 V changing faster than 1 V/s (1 V/s)"
    );
    // The value settles: the next window measures 0 V/s.
    assert_eq!(r.after(9_999), vec![]);
    assert_eq!(r.after(1), vec![(Kind::Cleared, None)]);
    // A slow drift (0.4 V/s) stays below the limit.
    let mut v = 240.0;
    for _ in 0..6 {
        r.clock.advance(Duration::from_secs(5));
        v += 2.0;
        assert_eq!(r.set("m/v1", v), vec![]);
        assert_eq!(r.after(0), vec![]);
    }
}

#[test]
fn stale_or_out_of_range_points_of_an_answering_device_raise_its_quality_alarm() {
    let mut r =
        rig("{ device_alarms: false, communication: { enabled: false }, quality: { delay_s: 5, severity: warning } }");
    let m = r.config.devices.iter().position(|d| d.name == "m").unwrap_or(0);
    if let Some(mut st) = r.store.status(m) {
        st.polls = 1;
        st.online = true;
    }
    let p = r.store.find("m/v1").unwrap_or(0);
    r.store.update(
        &[(p, Reading::Value(PointValue::Number(612.0), Quality::OutOfRange))],
        r.clock.wall(),
    );
    assert_eq!(r.after(0), vec![]);
    assert_eq!(r.after(4_999), vec![], "within its delay");
    assert_eq!(r.after(1), vec![(Kind::Raised, Some(Level::Abnormal))]);
    let a = r.engine.get("quality/m").unwrap_or_else(|| panic!("alarm"));
    assert_eq!(
        (a.severity, a.message.as_str()),
        (Severity::Warning, "m: v1 out of range")
    );
    // While the device is silent the quality is unknown: the alarm stays as it is.
    if let Some(mut st) = r.store.status(m) {
        st.online = false;
    }
    r.store.update(
        &[(p, Reading::Value(PointValue::Number(230.0), Quality::Good))],
        r.clock.wall(),
    );
    assert_eq!(r.after(10_000), vec![]);
    if let Some(mut st) = r.store.status(m) {
        st.online = true;
    }
    assert_eq!(r.after(250), vec![(Kind::Cleared, None)]);
    assert_eq!(
        r.engine.get("quality/b").map(|a| a.state.active),
        Some(false),
        "a device never polled has no quality alarm"
    );
}

#[test]
fn bad_rates_and_empty_rules_are_located_errors() {
    let profiles = busbar_core::profile::embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
    let config = parse_config("t.yaml", SITE, &profiles, "x").unwrap_or_else(|e| panic!("{e}"));
    let (_, d) = resolve(
        &config,
        "quality: { severity: loud }\nrules:\n  - { name: a, points: [v1], rate_of_change: -1 }\n  - { name: b, points: [v1], rate_of_change: 1, rate_window_s: 0 }\n  - { name: c, points: [v1] }\n",
    );
    let text = d.to_string();
    for expected in [
        "t.yaml:1: alarms.quality.severity: severity `loud` is not one of",
        "t.yaml:3: alarms.rules[0] (a): rate_of_change must be a number of units per second > 0",
        "t.yaml:4: alarms.rules[1] (b): rate_window_s must be a number of seconds > 0",
        "t.yaml:5: alarms.rules[2] (c): a threshold rule needs at least one of low_low, low, high, high_high, rate_of_change",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
}

#[test]
fn a_rule_naming_an_unknown_recipient_is_a_located_error() {
    let profiles = busbar_core::profile::embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
    let config = parse_config("t.yaml", SITE, &profiles, "x").unwrap_or_else(|e| panic!("{e}"));
    let yaml = "email: { server: smtp.example.com, from: a@example.com, recipients: [ { to: ops@example.com, name: ops }, { to: b@example.com, name: hooks } ] }\n\
                webhooks: [ { url: \"http://127.0.0.1:9/x\", name: hooks } ]\n\
                rules:\n  - { name: a, points: [v1], high: 1, notify: [ops] }\n  - { name: b, points: [v1], high: 1, notify: [ops, nobody] }\n";
    let (s, d) = resolve(&config, yaml);
    let text = d.to_string();
    for expected in [
        "t.yaml:5: alarms.rules[1] (b): unknown recipient `nobody`",
        "recipient name `hooks` is given twice",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    assert!(!text.contains("rules[0]"), "{text}");
    let routes = s.map(|s| s.routes).unwrap_or_default();
    assert_eq!(routes.get("a"), Some(&vec!["ops".to_string()]));
}
