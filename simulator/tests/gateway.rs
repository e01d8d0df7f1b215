//! The Modbus-TCP front end over real sockets: reads at published addresses, writes that act
//! on the models, the exceptions a real device or gateway gives, injected faults, and
//! malformed input that must never stop the server.

use busbar_modbus::client::Client;
use busbar_modbus::codec::{Exception, Request, Response};
use busbar_sim::events::Fault;
use busbar_sim::load::demo_scenario;
use busbar_sim::runner::{self, RunOptions, Running};
use busbar_sim::scenario::Action;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start() -> Running {
    let scenario = demo_scenario().unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        control: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..RunOptions::default()
    };
    runner::start(&scenario, opts).await.unwrap_or_else(|e| panic!("{e}"))
}

async fn client(r: &Running) -> Client {
    Client::connect(r.gateway()).await.unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn reads_answer_at_published_addresses_and_exceptions_are_right() {
    let r = start().await;
    let mut c = client(&r).await;
    // SOCO at 50000 on the DIRIS (unit 2) and the ATyS (unit 1).
    assert_eq!(c.read_holding(2, 50000, 2).await.ok(), Some(Ok(vec![0x534F, 0x434F])));
    assert_eq!(c.read_holding(1, 50004, 1).await.ok(), Some(Ok(vec![300])));
    // SunSpec marker on unit 4.
    assert_eq!(c.read_holding(4, 40000, 2).await.ok(), Some(Ok(vec![0x5375, 0x6E53])));
    // Unmapped address: 02. Unknown unit behind the gateway: 0B. Bad count: 03.
    assert_eq!(
        c.read_holding(2, 1000, 2).await.ok(),
        Some(Err(Exception::IllegalDataAddress))
    );
    assert_eq!(
        c.read_holding(2, 50001, 2).await.ok(),
        Some(Err(Exception::IllegalDataAddress)),
        "runs into a gap"
    );
    assert_eq!(
        c.read_holding(99, 50000, 2).await.ok(),
        Some(Err(Exception::GatewayTargetFailed))
    );
    // More than 125 registers: 03. (Our client's encoder writes what it is told.)
    assert_eq!(
        c.call(
            2,
            &Request::ReadHoldingRegisters {
                address: 50512,
                count: 126
            }
        )
        .await
        .ok(),
        Some(Response::Exception(Exception::IllegalDataValue))
    );
    // Input registers are not mapped on these devices.
    assert_eq!(
        c.call(
            2,
            &Request::ReadInputRegisters {
                address: 50512,
                count: 2
            }
        )
        .await
        .ok(),
        Some(Response::Exception(Exception::IllegalDataAddress))
    );
    r.stop().await;
}

#[tokio::test]
async fn writes_act_on_the_device_or_get_the_right_exception() {
    let r = start().await;
    let mut c = client(&r).await;
    // Read-only register: 02. Partial write of a 32-bit value: 02/03. Unknown enum value: 03.
    let w = |address, value| Request::WriteSingleRegister { address, value };
    assert_eq!(
        c.call(2, &w(50520, 1)).await.ok(),
        Some(Response::Exception(Exception::IllegalDataAddress))
    );
    assert_eq!(
        c.call(1, &w(20784, 99)).await.ok(),
        Some(Response::Exception(Exception::IllegalDataValue))
    );
    // ATS command 2: transfer to position 0. The switch moves and reports it.
    assert_eq!(c.call(1, &w(20784, 2)).await.ok(), Some(Response::Written));
    let mut position = 0;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        position = c
            .read_holding(1, 20482, 1)
            .await
            .ok()
            .and_then(|r| r.ok())
            .map_or(0, |r| r[0]);
        if position == 1 {
            break;
        }
    }
    assert_eq!(position, 1, "ATS in position 0 after the command");
    assert_eq!(
        c.read_holding(1, 20481, 1).await.ok(),
        Some(Ok(vec![0x20])),
        "remote mode"
    );
    // Charger current limit (unit 10): accepted within the rating, refused above (03).
    assert_eq!(c.call(10, &w(4101, 10)).await.ok(), Some(Response::Written));
    assert_eq!(c.read_holding(10, 4101, 1).await.ok(), Some(Ok(vec![10])));
    assert_eq!(
        c.call(10, &w(4101, 80)).await.ok(),
        Some(Response::Exception(Exception::IllegalDataValue))
    );
    // A command the device refuses: start with no vehicle connected -> 04.
    assert_eq!(
        c.call(12, &w(4120, 1)).await.ok(),
        Some(Response::Exception(Exception::ServerDeviceFailure))
    );
    r.stop().await;
}

#[tokio::test]
async fn faults_silence_delay_and_break_devices_but_not_the_others() {
    let r = start().await;
    let mut c = client(&r).await;
    c.timeout = Some(Duration::from_millis(400));
    let inject = |device: &str, fault: Fault| {
        let mut site = r.site.lock().unwrap_or_else(|p| p.into_inner());
        site.apply(Some(device), Action::Fault { fault, duration: None })
            .unwrap_or_else(|e| panic!("{e}"));
    };
    inject("ev1", Fault::Silent);
    let silent = c.read_holding(10, 4096, 1).await;
    assert_eq!(silent.err().map(|e| e.kind()), Some(std::io::ErrorKind::TimedOut));
    // Others answer on the same connection, and a late answer is never taken for another's.
    assert_eq!(c.read_holding(2, 50000, 2).await.ok(), Some(Ok(vec![0x534F, 0x434F])));
    inject("ev2", Fault::Exception { code: 6 });
    assert_eq!(
        c.read_holding(11, 4096, 1).await.ok(),
        Some(Err(Exception::ServerDeviceBusy))
    );
    inject(
        "main_meter",
        Fault::OutOfRange {
            point: "v1".into(),
            value: 1657.0,
        },
    );
    let v1 = c
        .read_holding(2, 50520, 2)
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or_default();
    assert_eq!(v1, vec![0x0002, 0x8744], "1657.00 V as the fault asked");
    inject(
        "shop_meter",
        Fault::Delay {
            delay: Duration::from_millis(250),
        },
    );
    let t = std::time::Instant::now();
    assert!(c.read_holding(3, 4096, 2).await.is_ok_and(|r| r.is_ok()));
    assert!(t.elapsed() >= Duration::from_millis(250));
    {
        let mut site = r.site.lock().unwrap_or_else(|p| p.into_inner());
        site.apply(Some("ev1"), Action::ClearFaults)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(
        c.read_holding(10, 4096, 1).await.is_ok_and(|r| r.is_ok()),
        "back after the fault is cleared"
    );
    inject("ev4", Fault::DropConnection);
    assert!(c.read_holding(13, 4096, 1).await.is_err(), "connection dropped");
    let mut c2 = client(&r).await;
    assert!(
        c2.read_holding(2, 50000, 2).await.is_ok_and(|r| r.is_ok()),
        "the server still accepts"
    );
    r.stop().await;
}

#[tokio::test]
async fn malformed_frames_and_floods_never_stop_the_server() {
    let r = start().await;
    let addr = r.gateway();
    // Garbage, a bad protocol id, a huge length, a truncated frame then close.
    let junk: [&[u8]; 5] = [
        b"GET / HTTP/1.1\r\n\r\n",
        &[0, 1, 0, 7, 0, 6, 1, 3, 0, 0, 0, 1],
        &[0, 1, 0, 0, 0xFF, 0xFF, 1, 3],
        &[0, 1, 0, 0, 0, 6, 1],
        &[0, 1, 0, 0, 0, 2, 1, 0x2B],
    ];
    for bytes in junk {
        if let Ok(mut s) = TcpStream::connect(addr).await {
            let _ = s.write_all(bytes).await;
            let mut sink = [0u8; 64];
            let _ = tokio::time::timeout(Duration::from_millis(200), s.read(&mut sink)).await;
        }
    }
    // A flood of connections beyond the limit is refused politely, then served again.
    let mut held = Vec::new();
    for _ in 0..200 {
        if let Ok(s) = TcpStream::connect(addr).await {
            held.push(s);
        }
    }
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = client(&r).await;
    assert_eq!(c.read_holding(2, 50000, 2).await.ok(), Some(Ok(vec![0x534F, 0x434F])));
    // An unsupported function (0x2B) answers exception 01 and the connection stays up.
    let mut s = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("{e}"));
    let _ = s.write_all(&[0, 9, 0, 0, 0, 2, 2, 0x2B]).await;
    let mut answer = [0u8; 9];
    let got = tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut answer)).await;
    assert!(got.is_ok_and(|r| r.is_ok()));
    assert_eq!(answer, [0, 9, 0, 0, 0, 3, 2, 0xAB, 0x01]);
    r.stop().await;
}

#[tokio::test]
async fn control_api_drives_the_site() {
    let r = start().await;
    let base = format!(
        "http://{}",
        r.control.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    );
    let http = |method: &str, path: &str, body: Option<&str>| {
        let url = format!("{base}{path}");
        let method = method.to_string();
        let body = body.map(str::to_string);
        async move { raw_http(&method, &url, body.as_deref()).await }
    };
    let (status, body) = http("GET", "/api/devices", None).await;
    assert_eq!(status, 200);
    assert!(body.contains("\"main_meter\""));
    let (status, _) = http("POST", "/api/clock", Some(r#"{"paused": true}"#)).await;
    assert_eq!(status, 200);
    let (status, body) = http("POST", "/api/devices/ats/events", Some(r#"{"event": "mains_lost"}"#)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = http("POST", "/api/clock", Some(r#"{"step": "30s"}"#)).await;
    assert_eq!(status, 200);
    let (_, body) = http("GET", "/api/devices/ats", None).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(v["truth"]["position"]["value"], 3.0, "on the genset after 30 s: {body}");
    let (status, body) = http(
        "POST",
        "/api/devices/ats/events",
        Some(r#"{"event": "delivery", "tank": 1, "volume_l": 10}"#),
    )
    .await;
    assert_eq!(status, 409, "an ATS takes no delivery: {body}");
    let (status, _) = http("POST", "/api/devices/nope/events", Some(r#"{"event": "mains_lost"}"#)).await;
    assert_eq!(status, 404);
    let (status, _) = http(
        "POST",
        "/api/devices/ev1/faults",
        Some(r#"{"fault": "silent", "duration": "1m"}"#),
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = http("GET", "/api/devices/ev1", None).await;
    assert!(body.contains("\"silent\""), "{body}");
    let (status, _) = http("DELETE", "/api/devices/ev1/faults", None).await;
    assert_eq!(status, 200);
    let (status, _) = http(
        "POST",
        "/api/events",
        Some(r#"{"event": "vehicle_arrives", "count": 3}"#),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = http("POST", "/api/events", Some(r#"{"event": "teleport"}"#)).await;
    assert_eq!(status, 400);
    r.stop().await;
}

/// A tiny HTTP/1.1 client (no extra dependency): status and body.
async fn raw_http(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let Ok(mut s) = TcpStream::connect(host).await else {
        return (0, String::new());
    };
    let body = body.unwrap_or("");
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    let _ = s.write_all(req.as_bytes()).await;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
