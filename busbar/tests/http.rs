//! The HTTP API and metrics over a real socket, with the demo site behind.

mod common;

use busbar_bridge::app;
use common::{demo_site, http, modbus_http_config};
use std::net::SocketAddr;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_reads_writes_with_a_token_and_exports_metrics() {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let sim = demo_site().await;
    let journal = std::env::temp_dir()
        .join(format!("busbar-http-test-{}", std::process::id()))
        .join("alarms.db");
    let config = modbus_http_config(&sim, &journal);
    let bridge = app::start(config).await.unwrap_or_else(|e| panic!("{e}"));
    let a = bridge.local_addr("http").unwrap_or(any);
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let (st, body) = http(a, "GET", "/api/site", "", "").await;
    assert_eq!(st, 200);
    let site: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    // The demo's 16 field devices and its load manager (`dlm`).
    assert_eq!(site["devices"], 17);
    assert_eq!(site["devices_online"], 17, "{body}");

    let (st, body) = http(a, "GET", "/api/points/main_meter/v1", "", "").await;
    assert_eq!(st, 200, "{body}");
    let p: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(p["unit"], "V");
    assert_eq!(p["quality"], "good");
    assert!(
        p["value"].as_f64().is_some_and(|v| (207.0..253.0).contains(&v)),
        "{body}"
    );
    assert!(p["source_time"].as_str().is_some_and(|t| t.ends_with('Z')));

    let (_, body) = http(a, "GET", "/api/points?device=tanks&quality=good", "", "").await;
    let list: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
    assert!(list.len() > 80, "5 tanks x 17 points + sums: {}", list.len());
    assert!(list.iter().all(|p| p["device"] == "tanks"));
    let (_, body) = http(a, "GET", "/api/points?family=transfer_switch", "", "").await;
    assert!(body.contains("ats/position") && !body.contains("main_meter"));
    let (st, _) = http(a, "GET", "/api/points/nope/x", "", "").await;
    assert_eq!(st, 404);

    // Writes: token required; a read-only point is refused; a writable one reaches the device.
    let (st, _) = http(a, "POST", "/api/points/ev1/current_limit", "", r#"{"value": 12}"#).await;
    assert_eq!(st, 401);
    let auth = "Authorization: Bearer demo-token-change-me-0001\r\n";
    let (st, _) = http(a, "POST", "/api/points/main_meter/v1", auth, r#"{"value": 12}"#).await;
    assert_eq!(st, 403);
    let (st, body) = http(a, "POST", "/api/points/ev1/current_limit", auth, r#"{"value": 99}"#).await;
    assert_eq!(st, 422, "{body}");
    let (st, body) = http(a, "POST", "/api/points/ev1/current_limit", auth, r#"{"value": 12}"#).await;
    assert_eq!(st, 200, "{body}");
    assert!(
        body.contains("\"outcome\":\"done\"") && body.contains("\"read_back\":12.0"),
        "{body}"
    );
    let truth = {
        let site = sim.site.lock().unwrap_or_else(|p| p.into_inner());
        let i = site.device_index("ev1").unwrap_or(0);
        site.truth(i)
            .into_iter()
            .find(|(n, _, _)| n == "current_limit")
            .map_or(0.0, |(_, v, _)| v)
    };
    assert_eq!(truth, 12.0, "the simulated charger took the limit");

    let (st, body) = http(a, "GET", "/metrics", "", "").await;
    assert_eq!(st, 200);
    for want in [
        "busbar_device_online{device=\"ats\"} 1",
        "busbar_device_rtt_seconds_bucket{device=\"main_meter\",le=\"+Inf\"}",
        "busbar_server_requests_total{server=\"modbus\"}",
        "busbar_points{quality=\"good\"}",
    ] {
        assert!(body.contains(want), "metrics lack `{want}`");
    }
    bridge.stop().await;
    sim.stop().await;
}
