//! End to end: the simulator (demo site) and the bridge in one process, every port bound to 0,
//! polling every 200 ms.

use busbar_bridge::app::{self, Bridge};
use busbar_bridge::demo::{demo_config, DemoPorts};
use busbar_bridge::northbound::modbus::map as modbus_map;
use busbar_bridge::store::PointValue;
use busbar_core::quality::Quality;
use busbar_modbus::client::Client;
use busbar_modbus::codec::{Exception, Request, Response};
use busbar_sim::events::Fault;
use busbar_sim::runner::{self, RunOptions, Running};
use busbar_sim::scenario::Action;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(200);

fn any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn start() -> (Running, Bridge) {
    let scenario = busbar_sim::load::demo_scenario().unwrap_or_else(|e| panic!("{e}"));
    let sim = runner::start(
        &scenario,
        RunOptions {
            listen: Some(any()),
            control: None,
            ..RunOptions::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let ports = DemoPorts {
        sim_gateway: sim.gateway(),
        sim_control: any(),
        modbus: any(),
        http: any(),
        opcua: any(),
        bacnet: any(),
        snmp: any(),
        snmp_traps: Vec::new(),
        snmp_informs: Vec::new(),
        influxdb: None,
        alarm_journal: fresh_journal(),
    };
    let mut config = demo_config(sim.gateway(), &ports).unwrap_or_else(|e| panic!("{e}"));
    // OPC UA has its own tests; these are about acquisition and Modbus.
    config.servers.opcua = None;
    config.servers.bacnet = None;
    config.servers.snmp = None;
    for d in &mut config.devices {
        d.poll_interval = POLL;
        d.timeout = Duration::from_millis(300);
        d.retries = 0;
    }
    let bridge = app::start(config).await.unwrap_or_else(|e| panic!("{e}"));
    (sim, bridge)
}

fn fault(sim: &Running, device: &str, action: Action) {
    let mut site = sim.site.lock().unwrap_or_else(|p| p.into_inner());
    site.apply(Some(device), action).unwrap_or_else(|e| panic!("{e}"));
}

fn quality(b: &Bridge, id: &str) -> Quality {
    b.store
        .find(id)
        .and_then(|p| b.store.sample(p))
        .map_or(Quality::ConfigError, |s| s.quality)
}

async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t0.elapsed()
}

/// Acquired points of a device that are not good.
fn not_good(b: &Bridge, device: &str) -> Vec<String> {
    let d = b.store.device_index(device).unwrap_or(usize::MAX);
    b.store
        .device_points(d)
        .filter(|p| b.store.meta(*p).is_some_and(|m| m.acquired))
        .filter_map(|p| {
            let s = b.store.sample(p)?;
            (s.quality != Quality::Good)
                .then(|| format!("{} {:?}", b.store.meta(p).map_or("", |m| m.id.as_str()), s.quality))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_point_of_the_demo_site_arrives_good() {
    let (sim, bridge) = start().await;
    let devices: Vec<String> = (0..bridge.store.device_count())
        .map(|d| bridge.store.device_name(d).to_string())
        .collect();
    let t0 = Instant::now();
    loop {
        let bad: Vec<String> = devices.iter().flat_map(|d| not_good(&bridge, d)).collect();
        if bad.is_empty() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(8), "not good after 8 s: {bad:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let acquired = (0..bridge.store.len() as u32)
        .filter(|p| bridge.store.meta(*p).is_some_and(|m| m.acquired))
        .count();
    assert!(acquired > 300, "{acquired} points acquired");
    // A value matches the simulator's truth (within a poll's drift).
    let v = bridge
        .store
        .find("tanks/tank1.volume")
        .and_then(|p| bridge.store.sample(p))
        .and_then(|s| s.value)
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0);
    assert!((v - 21000.0).abs() < 300.0, "tank 1 volume {v}");
    bridge.stop().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_device_goes_bad_others_keep_updating_and_it_recovers() {
    let (sim, bridge) = start().await;
    wait_for("ev2 good", Duration::from_secs(5), || {
        quality(&bridge, "ev2/state") == Quality::Good
    })
    .await;
    let meter = bridge.store.device_index("main_meter").unwrap_or(0);
    let polls_before = bridge.store.status(meter).map_or(0, |s| s.polls);
    fault(
        &sim,
        "ev2",
        Action::Fault {
            fault: Fault::Silent,
            duration: None,
        },
    );
    let took = wait_for("ev2 bad", POLL * 3 + Duration::from_millis(300), || {
        quality(&bridge, "ev2/state") == Quality::CommFailure
    })
    .await;
    assert!(took <= POLL * 3 + Duration::from_millis(300), "bad after {took:?}");
    assert!(not_good(&bridge, "ev2").len() >= 15, "every ev2 point is bad");
    // Meanwhile the meter on the same gateway kept its schedule (2 s of polls at 200 ms).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let polls_after = bridge.store.status(meter).map_or(0, |s| s.polls);
    assert!(
        polls_after - polls_before >= 9,
        "main_meter polled {} times in ~2.3 s",
        polls_after - polls_before
    );
    assert!(
        not_good(&bridge, "main_meter").is_empty(),
        "{:?}",
        not_good(&bridge, "main_meter")
    );
    let lateness = bridge.store.status(meter).map_or(1.0, |s| s.jitter_max_s);
    assert!(
        lateness < 0.35,
        "main_meter polls at most one ev2 timeout late: {lateness}"
    );
    // The device comes back.
    fault(&sim, "ev2", Action::ClearFaults);
    wait_for("ev2 good again", Duration::from_secs(6), || {
        quality(&bridge, "ev2/state") == Quality::Good
    })
    .await;
    assert!(bridge
        .store
        .status(bridge.store.device_index("ev2").unwrap_or(0))
        .is_some_and(|s| s.online));
    bridge.stop().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_out_of_range_is_flagged_and_exceptions_are_bad() {
    let (sim, bridge) = start().await;
    wait_for("v1 good", Duration::from_secs(5), || {
        quality(&bridge, "main_meter/v1") == Quality::Good
    })
    .await;
    fault(
        &sim,
        "main_meter",
        Action::Fault {
            fault: Fault::OutOfRange {
                point: "v1".into(),
                value: 1657.0,
            },
            duration: None,
        },
    );
    wait_for("v1 out of range", Duration::from_secs(2), || {
        quality(&bridge, "main_meter/v1") == Quality::OutOfRange
    })
    .await;
    let v = bridge
        .store
        .find("main_meter/v1")
        .and_then(|p| bridge.store.sample(p))
        .and_then(|s| s.value);
    assert_eq!(
        v,
        Some(PointValue::Number(1657.0)),
        "the implausible value is kept, but not good"
    );
    assert_eq!(quality(&bridge, "main_meter/v2"), Quality::Good);
    fault(
        &sim,
        "shop_meter",
        Action::Fault {
            fault: Fault::Exception { code: 4 },
            duration: None,
        },
    );
    wait_for("shop meter bad", Duration::from_secs(2), || {
        quality(&bridge, "shop_meter/v1") == Quality::CommFailure
    })
    .await;
    bridge.stop().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn northbound_modbus_serves_points_and_a_write_transfers_the_ats() {
    let (sim, bridge) = start().await;
    wait_for("ats good", Duration::from_secs(5), || {
        quality(&bridge, "ats/command") == Quality::Good && quality(&bridge, "main_meter/v1") == Quality::Good
    })
    .await;
    let config = demo_config(sim.gateway(), &DemoPorts::default()).unwrap_or_else(|e| panic!("{e}"));
    let map = modbus_map::build(
        &config,
        &bridge.store,
        config.servers.modbus.as_ref().map(|m| m.word_order).unwrap_or_default(),
    );
    let entry = |id: &str| {
        let p = bridge.store.find(id).unwrap_or(u32::MAX);
        map.devices
            .iter()
            .find_map(|d| d.entries.iter().find(|e| e.point == p).map(|e| (d.unit_id, e.address)))
            .unwrap_or((0, 0))
    };
    let mut c = Client::connect(bridge.local_addr("modbus").unwrap_or_else(any))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // V1 of the main meter as float32.
    let (unit, addr) = entry("main_meter/v1");
    let regs = c
        .read_holding(unit, addr, 2)
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or_default();
    let v1 = f32::from_bits((u32::from(regs[0]) << 16) | u32::from(regs[1]));
    assert!((207.0..253.0).contains(&v1), "V1 {v1}");
    // Status block: online, every acquired point good.
    let status = c
        .read_holding(unit, 0, 8)
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or_default();
    assert_eq!(status[0], 1, "online");
    // Unmapped address: 02; unknown unit: 0A.
    assert_eq!(
        c.read_holding(unit, 50, 2).await.ok(),
        Some(Err(Exception::IllegalDataAddress))
    );
    assert_eq!(
        c.read_holding(200, 100, 2).await.ok(),
        Some(Err(Exception::GatewayPathUnavailable))
    );
    // Writing a read-only point: 02.
    let (vu, va) = entry("main_meter/v1");
    let ro = c
        .call(
            vu,
            &Request::WriteMultipleRegisters {
                address: va,
                values: vec![0x4348, 0],
            },
        )
        .await
        .ok();
    assert_eq!(ro, Some(Response::Exception(Exception::IllegalDataAddress)));
    // ATS command 2 (transfer to 0) as float32 2.0 = 0x4000 0000.
    let (au, aa) = entry("ats/command");
    let w = c
        .call(
            au,
            &Request::WriteMultipleRegisters {
                address: aa,
                values: vec![0x4000, 0x0000],
            },
        )
        .await
        .ok();
    assert_eq!(w, Some(Response::Written));
    let truth = || {
        let site = sim.site.lock().unwrap_or_else(|p| p.into_inner());
        let i = site.device_index("ats").unwrap_or(0);
        site.truth(i)
            .into_iter()
            .find(|(n, _, _)| n == "position")
            .map_or(0.0, |(_, v, _)| v)
    };
    wait_for("ATS in position 0", Duration::from_secs(3), || truth() == 1.0).await;
    // A refused command comes back as exception 04: back to auto is accepted, but a transfer to
    // source I in manual mode is not possible here, so write an invalid label instead: 03.
    let bad = c
        .call(
            au,
            &Request::WriteMultipleRegisters {
                address: aa,
                values: vec![0x42C8, 0x0000],
            },
        )
        .await
        .ok();
    assert_eq!(
        bad,
        Some(Response::Exception(Exception::IllegalDataValue)),
        "100 is not a command"
    );
    // Silence the ATS: its point registers answer 0B, its status block says offline.
    fault(
        &sim,
        "ats",
        Action::Fault {
            fault: Fault::Silent,
            duration: None,
        },
    );
    wait_for("ats offline", Duration::from_secs(3), || {
        quality(&bridge, "ats/command") == Quality::CommFailure
    })
    .await;
    assert_eq!(
        c.read_holding(au, aa, 2).await.ok(),
        Some(Err(Exception::GatewayTargetFailed))
    );
    assert_eq!(c.read_holding(au, 0, 1).await.ok(), Some(Ok(vec![0])));
    bridge.stop().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_and_connection_floods_never_stop_the_northbound_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (sim, bridge) = start().await;
    let addr = bridge.local_addr("modbus").unwrap_or_else(any);
    let junk: [&[u8]; 4] = [
        b"\x16\x03\x01\x00\xa5 TLS hello?",
        &[0, 1, 0, 7, 0, 6, 1, 3, 0, 100, 0, 1],
        &[0, 1, 0, 0, 0xFF, 0xFF, 1, 3],
        &[0, 1, 0, 0, 0, 2, 2, 0x2B],
    ];
    for bytes in junk {
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            let _ = s.write_all(bytes).await;
            let mut sink = [0u8; 64];
            let _ = tokio::time::timeout(Duration::from_millis(200), s.read(&mut sink)).await;
        }
    }
    let mut held = Vec::new();
    for _ in 0..150 {
        if let Ok(s) = tokio::net::TcpStream::connect(addr).await {
            held.push(s);
        }
    }
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_for("meter good", Duration::from_secs(5), || {
        quality(&bridge, "main_meter/v1") == Quality::Good
    })
    .await;
    let mut c = Client::connect(addr).await.unwrap_or_else(|e| panic!("{e}"));
    let status = c.read_holding(2, 0, 1).await.ok();
    assert_eq!(status, Some(Ok(vec![1])), "still serving after the abuse");
    bridge.stop().await;
    sim.stop().await;
}

/// A journal of its own for each bridge a test starts (tests run side by side).
fn fresh_journal() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("busbar-e2e-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("alarms.db")
}
