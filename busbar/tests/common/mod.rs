//! What the end-to-end tests share.

use busbar_bridge::config::Config;
use busbar_bridge::demo::{demo_config, DemoPorts};
use busbar_sim::runner::{self, RunOptions, Running};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The demo site, simulated, on a free port.
pub async fn demo_site() -> Running {
    let scenario = busbar_sim::load::demo_scenario().unwrap_or_else(|e| panic!("{e}"));
    runner::start(
        &scenario,
        RunOptions {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            ..RunOptions::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The demo's bridge config on `sim` with only Modbus and HTTP, on free ports, polling every
/// 200 ms, its alarm journal at `journal`.
pub fn modbus_http_config(sim: &Running, journal: &Path) -> Config {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = demo_config(
        sim.gateway(),
        &DemoPorts {
            modbus: any,
            http: any,
            alarm_journal: journal.to_path_buf(),
            ..DemoPorts::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    config.servers.opcua = None;
    config.servers.bacnet = None;
    config.servers.snmp = None;
    for d in &mut config.devices {
        d.poll_interval = Duration::from_millis(200);
    }
    config
}

/// One HTTP/1.1 request on its own connection: (status, body); status 0 when nothing answered.
pub async fn http(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return (0, String::new());
    };
    let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    let _ = s.write_all(req.as_bytes()).await;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (
        status,
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    )
}
