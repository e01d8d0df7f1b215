//! Alarms end to end: a breaker of the simulated site trips, the bridge raises the alarm its
//! profile declares, an operator acknowledges it over HTTP (named in the journal), the bridge
//! restarts on the same journal and finds it as it was (nothing raised twice), and the alarm
//! clears when the breaker is reset and closed. A meter reading out of its range raises its
//! quality alarm until the reading is plausible again.

mod common;

use busbar_bridge::app::{self, Bridge};
use busbar_sim::runner::Running;
use common::{demo_site, http, modbus_http_config};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

const ALARM: &str = "device/shop_breaker/state";
const AUTH: &str = "Authorization: Bearer demo-token-change-me-0001\r\n";

async fn bridge(sim: &Running, journal: &Path) -> Bridge {
    let mut config = modbus_http_config(sim, journal);
    if let Some(a) = &mut config.alarms {
        a.quality = Some((busbar_bridge::alarms::Severity::Warning, Duration::from_secs(1)));
    }
    app::start(config).await.unwrap_or_else(|e| panic!("{e}"))
}

/// The alarm as `/api/alarms` lists it, once it satisfies `cond`.
async fn wait_alarm(a: SocketAddr, what: &str, cond: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    wait_for(a, ALARM, what, cond).await
}

async fn wait_for(a: SocketAddr, id: &str, what: &str, cond: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let t0 = Instant::now();
    loop {
        let (_, body) = http(a, "GET", "/api/alarms", "", "").await;
        let list: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
        if let Some(x) = list.into_iter().find(|x| x["id"] == id && cond(x)) {
            return x;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn history(a: SocketAddr) -> Vec<serde_json::Value> {
    history_of(a, ALARM).await
}

async fn history_of(a: SocketAddr, id: &str) -> Vec<serde_json::Value> {
    let (st, body) = http(a, "GET", &format!("/api/alarms/history?alarm={id}&limit=50"), "", "").await;
    assert_eq!(st, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tripped_breaker_is_raised_acknowledged_restored_and_cleared() {
    let dir = std::env::temp_dir().join(format!("busbar-alarms-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let journal = dir.join("alarms.db");
    let sim = demo_site().await;
    let first = bridge(&sim, &journal).await;
    let a = first.local_addr("http").unwrap_or_else(|| panic!("http"));
    let (st, body) = http(a, "GET", "/api/alarms/all", "", "").await;
    assert_eq!(st, 200);
    assert!(
        body.contains(ALARM) && body.contains("threshold/mains_voltage/main_meter/v1"),
        "{body}"
    );

    {
        let mut site = sim.site.lock().unwrap_or_else(|p| p.into_inner());
        let trip = serde_json::json!({ "event": "breaker_trip", "cause": "overload" });
        let action = busbar_sim::scenario::parse_action(&trip)
            .map(|(a, _)| a)
            .unwrap_or_else(|e| panic!("{e}"));
        site.apply(Some("shop_breaker"), action)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let raised = wait_alarm(a, "the trip", |x| x["state"]["active"] == true).await;
    assert_eq!(raised["severity"], "major");
    assert_eq!(raised["message"], "shop_breaker Breaker state: tripped");
    assert_eq!(raised["state"]["acknowledged"], false);

    // Acknowledge: the token is required, the user is journaled, twice is a conflict.
    let ack = format!(r#"{{"id": "{ALARM}", "user": "ann", "comment": "electrician called"}}"#);
    let (st, _) = http(a, "POST", "/api/alarms/acknowledge", "", &ack).await;
    assert_eq!(st, 401);
    let (st, body) = http(a, "POST", "/api/alarms/acknowledge", AUTH, &ack).await;
    assert_eq!(st, 200, "{body}");
    let (st, _) = http(a, "POST", "/api/alarms/acknowledge", AUTH, &ack).await;
    assert_eq!(st, 409);
    let (st, _) = http(
        a,
        "POST",
        "/api/alarms/acknowledge",
        AUTH,
        r#"{"id": "nope", "user": "ann"}"#,
    )
    .await;
    assert_eq!(st, 404);
    let h = history(a).await;
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!(
        (h[0]["kind"].as_str(), h[1]["kind"].as_str()),
        (Some("acknowledged"), Some("raised"))
    );
    assert_eq!(h[0]["actor"]["user"], "ann");
    assert_eq!(h[0]["actor"]["via"], "http");
    assert_eq!(h[0]["actor"]["comment"], "electrician called");
    let (st, csv) = http(
        a,
        "GET",
        &format!("/api/alarms/history?alarm={ALARM}&format=csv"),
        "",
        "",
    )
    .await;
    assert_eq!(st, 200);
    assert!(
        csv.starts_with("seq,time,alarm,kind") && csv.contains(",acknowledged,") && csv.contains("electrician called"),
        "{csv}"
    );
    let (_, metrics) = http(a, "GET", "/metrics", "", "").await;
    assert!(
        metrics.contains("busbar_alarm_transitions_total{kind=\"raised\"}"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("busbar_alarms_active{severity=\"major\"} 0"),
        "{metrics}"
    );

    // A restart on the same journal: still active and acknowledged, raised once.
    first.stop().await;
    let second = bridge(&sim, &journal).await;
    let a = second.local_addr("http").unwrap_or_else(|| panic!("http"));
    let restored = wait_alarm(a, "the restored alarm", |x| x["state"]["active"] == true).await;
    assert_eq!(restored["state"]["acknowledged"], true, "{restored}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let raises = history(a).await.iter().filter(|t| t["kind"] == "raised").count();
    assert_eq!(raises, 1, "re-evaluation after the restart raised nothing twice");

    // Reset and close the breaker: the alarm clears.
    for command in [3.0, 2.0] {
        let p = second.store.find("shop_breaker/command").unwrap_or(u32::MAX);
        let outcome = second.acquisition.write(p, command).await;
        assert!(format!("{outcome:?}").contains("Done"), "{outcome:?}");
    }
    let t0 = Instant::now();
    loop {
        let h = history(a).await;
        if h.first().is_some_and(|t| t["kind"] == "cleared") {
            assert_eq!(h[0]["state"]["active"], false);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "not cleared: {h:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.stop().await;
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_out_of_range_raises_the_device_quality_alarm_until_it_is_plausible_again() {
    let dir = std::env::temp_dir().join(format!("busbar-alarms-quality-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sim = demo_site().await;
    let bridge = bridge(&sim, &dir.join("alarms.db")).await;
    let a = bridge.local_addr("http").unwrap_or_else(|| panic!("http"));
    let id = "quality/main_meter";
    {
        let mut site = sim.site.lock().unwrap_or_else(|p| p.into_inner());
        let fault = serde_json::json!({ "fault": "out_of_range", "point": "v1", "value": 999.0, "duration": "4s" });
        let action = busbar_sim::scenario::parse_action(&fault)
            .map(|(a, _)| a)
            .unwrap_or_else(|e| panic!("{e}"));
        site.apply(Some("main_meter"), action).unwrap_or_else(|e| panic!("{e}"));
    }
    let raised = wait_for(a, id, "the quality alarm", |x| x["state"]["active"] == true).await;
    assert_eq!(raised["source"], "quality");
    assert_eq!(raised["severity"], "warning");
    assert_eq!(raised["message"], "main_meter: v1 out of range");
    // The fault ends after 4 s: the reading is plausible again and the alarm clears.
    let t0 = Instant::now();
    loop {
        let h = history_of(a, id).await;
        if h.first().is_some_and(|t| t["kind"] == "cleared") {
            assert_eq!(h.len(), 2, "raised once, cleared once: {h:?}");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "not cleared: {h:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bridge.stop().await;
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
