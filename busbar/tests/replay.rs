//! A twin recorded from a device: `busbar-sim record` polls a meter of a simulated site over
//! Modbus TCP (the meter goes silent, then answers an exception, while it is recorded), and a
//! second site replays the trace instead of the meter's model. The bridge, polling the replayed
//! meter, reads exactly the values that were recorded (not close: equal), loses the meter while
//! the recorded silence plays, and ends on the last recorded frame's values for every point.

use busbar_bridge::app;
use busbar_bridge::config::parse_config;
use busbar_core::encoding;
use busbar_core::point::PointValue;
use busbar_core::quality::Quality;
use busbar_sim::record::{self, Recording, Source};
use busbar_sim::runner::{self, RunOptions};
use busbar_sim::scenario::{load_traces, parse_scenario};
use busbar_sim::trace::{self, Answer, Trace};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const PROFILE: &str = "socomec-diris-a40";

fn scenario(text: &str) -> busbar_sim::scenario::Scenario {
    let profiles = busbar_core::profile::embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
    let mut s = parse_scenario("replay.yaml", text, &profiles).unwrap_or_else(|d| panic!("{d}"));
    load_traces(&mut s).unwrap_or_else(|d| panic!("{d}"));
    s
}

async fn site(text: &str) -> runner::Running {
    runner::start(
        &scenario(text),
        RunOptions {
            listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            ..RunOptions::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The value of `point` in a frame's words, if the frame holds it.
fn decode(trace: &Trace, frame: usize, point: &busbar_core::profile::Point) -> Option<f64> {
    let f = &trace.frames[frame];
    let Answer::Words(words) = &f.answer else { return None };
    let span = point.register.span();
    let (start, end) = (u32::from(f.address), u32::from(f.address) + u32::from(f.count));
    if f.table != point.register.table || span.start < start || span.end > end {
        return None;
    }
    let (off, end) = ((span.start - start) as usize, (span.end - start) as usize);
    encoding::decode(&point.register, words.get(off..end)?).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_meter_replays_to_the_bridge_with_identical_values_and_silences() {
    // 1. Record the meter of a live site: 9 s every 0.5 s; silent from 3 s for 2 s, then an
    //    exception 04 from 6 s for 1 s.
    let live = site(&format!(
        r#"
site: {{ name: Live, id: live }}
listeners: [{{ name: gw, listen: "127.0.0.1:0" }}]
devices:
  - {{ name: meter, profile: {PROFILE}, unit_id: 2, params: {{ base_kw: 6, peak_kw: 20 }} }}
timeline:
  - {{ at: 3s, device: meter, fault: silent, duration: 2s }}
  - {{ at: 6s, device: meter, fault: exception, code: 4, duration: 1s }}
"#
    ))
    .await;
    let profiles = busbar_core::profile::embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
    let profile = profiles.get(PROFILE).unwrap_or_else(|| panic!("profile")).clone();
    let rec = Recording {
        source: Source::Tcp(live.gateway().to_string()),
        unit: 2,
        profile: Some(PROFILE.into()),
        blocks: record::profile_blocks(&profile),
        interval: Duration::from_millis(500),
        duration: Duration::from_secs(9),
        timeout: Duration::from_millis(200),
    };
    let mut out = Vec::new();
    let tally = record::record(&rec, &mut out, std::future::pending(), |_| {})
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    live.stop().await;
    let text = String::from_utf8(out).unwrap_or_else(|e| panic!("{e}"));
    let recorded = trace::parse("recorded", &text).unwrap_or_else(|d| panic!("{d}"));
    assert!(
        tally.silences > 0 && tally.exceptions > 0,
        "the faults were recorded: {tally}"
    );
    assert!(recorded.frames.iter().any(|f| f.answer == Answer::Exception(4)));
    let dir = std::env::temp_dir().join(format!("busbar-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("meter.jsonl");
    std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{e}"));

    // 2. Replay it as the meter of another site, to the bridge.
    let replayed = site(&format!(
        r#"
site: {{ name: Replayed, id: replayed }}
listeners: [{{ name: gw, listen: "127.0.0.1:0" }}]
devices:
  - {{ name: meter, profile: {PROFILE}, unit_id: 2, replay: {{ trace: "{}" }} }}
"#,
        path.display()
    ))
    .await;
    let config = parse_config(
        "bridge.yaml",
        &format!(
            r#"
site: {{ name: Replay, id: replay }}
defaults: {{ poll_interval_ms: 200, timeout_ms: 150, retries: 0, stale_after_polls: 3 }}
connections: [{{ name: gw, tcp: {{ host: 127.0.0.1, port: {} }} }}]
devices: [{{ name: meter, profile: {PROFILE}, connection: gw, unit_id: 2 }}]
"#,
            replayed.gateway().port()
        ),
        &profiles,
        "built-in",
    )
    .unwrap_or_else(|d| panic!("{d}"));
    let bridge = app::start(config).await.unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let v1 = bridge.store.find("meter/v1").unwrap_or_else(|| panic!("meter/v1"));
    let mut seen_v1: BTreeSet<u64> = BTreeSet::new();
    let mut lost_at = None;
    while started.elapsed() < Duration::from_secs(11) {
        if let Some(s) = bridge.store.sample(v1) {
            match (s.quality, s.value) {
                (Quality::Good, Some(PointValue::Number(x))) => {
                    seen_v1.insert(x.to_bits());
                }
                (Quality::CommFailure, _) => {
                    lost_at.get_or_insert(started.elapsed());
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Every good V1 the bridge showed is one the meter answered while it was recorded.
    let v1_point = profile.point("v1").unwrap_or_else(|| panic!("v1"));
    let recorded_v1: BTreeSet<u64> = (0..recorded.frames.len())
        .filter_map(|i| decode(&recorded, i, v1_point))
        .map(f64::to_bits)
        .collect();
    let foreign: Vec<f64> = seen_v1.difference(&recorded_v1).map(|b| f64::from_bits(*b)).collect();
    assert!(foreign.is_empty(), "values the meter never answered: {foreign:?}");
    assert!(
        seen_v1.len() >= 3,
        "the replay moves as the recording did: {} distinct V1",
        seen_v1.len()
    );
    // The recorded silence (3 s to 5 s) played as a lost meter.
    let lost = lost_at.unwrap_or_else(|| panic!("the bridge never lost the replayed meter"));
    assert!(
        lost > Duration::from_secs(2) && lost < Duration::from_secs(8),
        "lost at {lost:?}"
    );

    // At the end the replay holds its last answers: every acquired point is the last frame's.
    let mut compared = 0;
    for (k, point) in profile.points.iter().enumerate() {
        let Some(last) = (0..recorded.frames.len())
            .rev()
            .find_map(|i| decode(&recorded, i, point))
        else {
            continue;
        };
        let Some(p) = bridge.store.point_of(0, k) else { continue };
        let Some(sample) = bridge.store.sample(p) else { continue };
        if let Some(PointValue::Number(x)) = sample.value {
            assert_eq!(sample.quality, Quality::Good, "{}", point.id);
            assert_eq!(x.to_bits(), last.to_bits(), "{}: bridge {x}, recorded {last}", point.id);
            compared += 1;
        }
    }
    assert!(
        compared >= 20,
        "compared {compared} points with the last recorded frame"
    );
    bridge.stop().await;
    replayed.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
