//! The load manager's loop on a clock the test moves: start-up, the safe state on a silent or
//! bad meter and on a refused write, parameter writes. Writes go to a detached acquisition
//! (every one refused); the loop against real stations is proven with the simulator
//! (busbar/tests/load_management.rs).

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::config::parse_config;
use crate::config::Link;

const CONFIG: &str = r#"
site: { name: t, id: t }
writes: { enabled: true }
connections: [{ name: gw, tcp: { host: 127.0.0.1, port: 1 } }]
devices:
  - { name: meter, profile: socomec-diris-a40, connection: gw, unit_id: 2 }
  - name: ev1
    profile: legrand-greenup
    connection: gw
    unit_id: 10
    points: { current_limit: { writable: true }, command: { writable: true } }
  - name: ev2
    profile: legrand-greenup
    connection: gw
    unit_id: 11
    points: { current_limit: { writable: true }, command: { writable: true } }
load_management:
  meter: meter
  chargers: [ev1, { device: ev2, phases: 1, phase: 2 }]
  max_current_a: 100
  max_charging_current_a: 90
  writable: [max_current, strategy, hold_time]
"#;

struct Rig {
    clock: Arc<ManualClock>,
    store: Arc<Store>,
    lm: LoadManager,
}

fn rig() -> Rig {
    let profiles = busbar_core::profile::embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
    let config = Arc::new(parse_config("t.yaml", CONFIG, &profiles, "x").unwrap_or_else(|e| panic!("{e}")));
    let clock = ManualClock::new();
    let store = Store::with_clock(&config, 1024, clock.clone());
    let acq = Acquisition::detached(store.clone());
    let lm = LoadManager::new(config, store.clone(), acq)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no load manager"));
    Rig { clock, store, lm }
}

impl Rig {
    fn set(&self, id: &str, v: f64) {
        let p = self.store.find(id).unwrap_or_else(|| panic!("{id}"));
        self.store.update(
            &[(p, Reading::Value(PointValue::Number(v), Quality::Good))],
            self.clock.wall(),
        );
    }
    fn meter(&self, a: f64) {
        for p in ["i1", "i2", "i3"] {
            self.set(&format!("meter/{p}"), a);
        }
    }
    fn value(&self, id: &str) -> Option<f64> {
        let p = self.store.find(id).unwrap_or_else(|| panic!("{id}"));
        self.store.sample(p).and_then(|s| s.value).and_then(|v| v.as_f64())
    }
    fn idle_chargers(&self) {
        for ev in ["ev1", "ev2"] {
            self.set(&format!("{ev}/state"), 0.0);
            self.set(&format!("{ev}/rated_current"), 32.0);
        }
    }
    fn advance(&self, s: f64) {
        self.clock.advance(Duration::from_secs_f64(s));
    }
}

#[test]
fn the_config_adds_the_load_manager_as_the_last_device_on_an_internal_connection() {
    let r = rig();
    let c = &r.lm.config;
    let dev = c.devices.last().unwrap_or_else(|| panic!("no devices"));
    assert_eq!(dev.name, "dlm");
    assert_eq!(c.connections[dev.connection].link, Link::Internal);
    assert_eq!(r.lm.lm.chargers[1].phases, [false, true, false]);
    assert!(r.store.find("dlm/side2.setpoint").is_some());
    let side3 = r
        .store
        .find("dlm/side3.setpoint")
        .and_then(|p| r.store.meta(p).cloned());
    assert!(
        side3.is_some_and(|m| !m.acquired),
        "only as many sides as chargers are acquired"
    );
    let writable = |id: &str| {
        r.store
            .find(id)
            .and_then(|p| r.store.meta(p))
            .is_some_and(|m| m.writable)
    };
    assert!(writable("dlm/max_current") && writable("dlm/strategy"));
    assert!(!writable("dlm/skip_time"), "not listed in `writable`");
}

#[tokio::test]
async fn nothing_is_decided_before_the_meter_is_read_and_a_silent_meter_is_the_safe_state() {
    let mut r = rig();
    r.idle_chargers();
    r.lm.tick().await;
    assert_eq!(r.value("dlm/mode"), None, "no decision, no alarm at start-up");
    r.advance(5.5);
    r.lm.tick().await;
    assert_eq!(r.value("dlm/mode"), Some(Mode::Safe.code()));
    assert_eq!(r.value("dlm/safe_cause"), Some(SafeCause::MeterSilent.code()));
    // The meter answers: running, green.
    r.meter(40.0);
    r.lm.tick().await;
    assert_eq!(r.value("dlm/mode"), Some(Mode::Running.code()));
    assert_eq!(r.value("dlm/zone"), Some(0.0));
    assert_eq!(r.value("dlm/measured_current"), Some(40.0));
    assert_eq!(r.value("dlm/available_current"), Some(50.0));
    assert_eq!(r.value("dlm/max_current"), Some(100.0));
    // Its readings stop: silent once the last good one is older than the meter timeout.
    r.advance(4.0);
    r.lm.tick().await;
    assert_eq!(r.value("dlm/mode"), Some(Mode::Running.code()), "4 s: not yet");
    r.advance(1.5);
    r.lm.tick().await;
    assert_eq!(r.value("dlm/mode"), Some(Mode::Safe.code()));
    // A reading out of range is a bad meter, not a silent one.
    let p = r.store.find("meter/i2").unwrap_or_else(|| panic!("i2"));
    r.meter(40.0);
    r.store.update(
        &[(p, Reading::Value(PointValue::Number(9999.0), Quality::OutOfRange))],
        r.clock.wall(),
    );
    r.lm.tick().await;
    assert_eq!(r.value("dlm/safe_cause"), Some(SafeCause::MeterBad.code()));
}

#[tokio::test]
async fn a_write_the_station_refuses_is_the_safe_state_and_is_tried_again() {
    let mut r = rig();
    r.idle_chargers();
    r.meter(40.0);
    // A vehicle charging on ev1: its limit is written (and refused: no station behind).
    r.set("ev1/state", 1.0);
    r.set("ev1/i1", 30.0);
    r.lm.tick().await;
    assert_eq!(r.value("dlm/writes"), Some(1.0));
    assert_eq!(r.value("dlm/write_failures"), Some(1.0));
    assert_eq!(r.value("dlm/side1.setpoint"), Some(32.0));
    r.advance(1.0);
    r.meter(40.0);
    r.lm.tick().await;
    assert_eq!(r.value("dlm/mode"), Some(Mode::Safe.code()));
    assert_eq!(r.value("dlm/safe_cause"), Some(SafeCause::WriteFailed.code()));
    assert_eq!(r.value("dlm/side1.reason"), Some(Reason::Safe.code()));
    assert_eq!(r.value("dlm/writes"), Some(1.0), "not tried again before 10 s");
    r.advance(10.0);
    r.meter(40.0);
    r.lm.tick().await;
    assert_eq!(r.value("dlm/writes"), Some(2.0), "tried again");
}

#[tokio::test]
async fn parameters_are_written_only_where_allowed_and_only_when_they_make_sense() {
    let mut r = rig();
    let id = |s: &str| r.store.find(s).unwrap_or_else(|| panic!("{s}"));
    let (max, hold, skip, strategy) = (
        id("dlm/max_current"),
        id("dlm/hold_time"),
        id("dlm/skip_time"),
        id("dlm/strategy"),
    );
    assert_eq!(r.lm.apply(max, 120.0), WriteOutcome::Done { read_back: 120.0 });
    assert_eq!(r.lm.strategy.params().max_current_a, 120.0);
    assert_eq!(r.value("dlm/max_current"), Some(120.0), "read back at once");
    assert!(
        matches!(r.lm.apply(max, 80.0), WriteOutcome::InvalidValue { reason } if reason.contains("above max_current_a")),
        "below the charging border"
    );
    assert!(matches!(r.lm.apply(hold, -1.0), WriteOutcome::InvalidValue { .. }));
    assert_eq!(r.lm.apply(skip, 10.0), WriteOutcome::NotWritable);
    assert_eq!(r.lm.apply(strategy, 1.0), WriteOutcome::Done { read_back: 1.0 });
    assert_eq!(r.lm.kind, StrategyKind::FairShare);
    assert_eq!(
        r.lm.strategy.params().max_current_a,
        120.0,
        "a new strategy keeps the parameters"
    );
    assert!(matches!(r.lm.apply(strategy, 7.0), WriteOutcome::InvalidValue { .. }));
}
