//! The RTU driver against the simulator over a pty pair made by socat (a virtual RS485 bus):
//! reads, a silent device (timeout) and corrupted frames (bad CRC) on the bus.

use busbar_bridge::app;
use busbar_bridge::config::parse_config;
use busbar_core::quality::Quality;
use busbar_sim::events::Fault;
use busbar_sim::runner::{self, RunOptions};
use busbar_sim::scenario::{parse_scenario, Action};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Socat(Child);
impl Drop for Socat {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pty_pair(dir: &Path) -> Socat {
    let (a, b) = (dir.join("sim"), dir.join("bridge"));
    let child = Command::new("socat")
        .arg(format!("pty,raw,echo=0,link={}", a.display()))
        .arg(format!("pty,raw,echo=0,link={}", b.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("socat is needed for the RTU test (apt-get install socat): {e}"));
    let t0 = Instant::now();
    while !(a.exists() && b.exists()) {
        assert!(t0.elapsed() < Duration::from_secs(5), "socat made no pty pair");
        std::thread::sleep(Duration::from_millis(20));
    }
    Socat(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtu_bus_reads_survives_a_silent_device_and_bad_crc() {
    let dir = std::env::temp_dir().join(format!("busbar-rtu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let _socat = pty_pair(&dir);
    let profiles = busbar_core::profile::embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
    let scenario = format!(
        "site: {{ name: bus, id: bus }}\nlisteners:\n  - {{ name: rs485, rtu: {{ device: \"{}\", baud: 38400 }} }}\ndevices:\n  - {{ name: meter, profile: socomec-diris-a40, unit_id: 1 }}\n  - {{ name: ats, profile: socomec-atys-pm, unit_id: 2 }}\n",
        dir.join("sim").display()
    );
    let scenario = parse_scenario("bus.yaml", &scenario, &profiles).unwrap_or_else(|e| panic!("{e}"));
    let sim = runner::start(&scenario, RunOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let config = format!(
        "site: {{ name: bus, id: bus }}\ndefaults: {{ poll_interval_ms: 200, timeout_ms: 150, retries: 0 }}\nconnections:\n  - {{ name: rs485, rtu: {{ device: \"{}\", baud: 38400, frame_interval_ms: 5 }} }}\ndevices:\n  - {{ name: meter, profile: socomec-diris-a40, connection: rs485, unit_id: 1 }}\n  - {{ name: ats, profile: socomec-atys-pm, connection: rs485, unit_id: 2 }}\n",
        dir.join("bridge").display()
    );
    let config = parse_config("bus.yaml", &config, &profiles, "<embedded>").unwrap_or_else(|e| panic!("{e}"));
    let bridge = app::start(config).await.unwrap_or_else(|e| panic!("{e}"));
    let q = |id: &str| {
        bridge
            .store
            .find(id)
            .and_then(|p| bridge.store.sample(p))
            .map_or(Quality::ConfigError, |s| s.quality)
    };
    let wait = |what: &'static str, cond: &dyn Fn() -> bool| {
        let t0 = Instant::now();
        let ok = loop {
            if cond() {
                break true;
            }
            if t0.elapsed() > Duration::from_secs(8) {
                break false;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(ok, "timed out waiting for {what}");
    };
    let inject = |device: &str, fault: Option<Fault>| {
        let mut site = sim.site.lock().unwrap_or_else(|p| p.into_inner());
        let action = match fault {
            Some(fault) => Action::Fault { fault, duration: None },
            None => Action::ClearFaults,
        };
        site.apply(Some(device), action).unwrap_or_else(|e| panic!("{e}"));
    };
    tokio::task::block_in_place(|| {
        wait("both devices good over RTU", &|| {
            q("meter/v1") == Quality::Good && q("ats/position") == Quality::Good
        });
        let v1 = bridge
            .store
            .find("meter/v1")
            .and_then(|p| bridge.store.sample(p))
            .and_then(|s| s.value)
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
        assert!((207.0..253.0).contains(&v1), "V1 over RTU: {v1}");
        // A silent device times out; the other keeps answering on the same bus.
        inject("ats", Some(Fault::Silent));
        wait("ats bad", &|| q("ats/position") == Quality::CommFailure);
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(q("meter/v1"), Quality::Good);
        inject("ats", None);
        wait("ats back", &|| q("ats/position") == Quality::Good);
        // Corrupted frames on the bus: the answers' CRC is wrong.
        inject("meter", Some(Fault::BadCrc));
        wait("meter bad on CRC errors", &|| q("meter/v1") == Quality::CommFailure);
        let err = bridge
            .store
            .status(0)
            .and_then(|s| s.last_error.clone())
            .unwrap_or_default();
        assert!(err.contains("CRC"), "the error names the CRC: {err}");
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(q("ats/position"), Quality::Good, "the other device is unaffected");
        inject("meter", None);
        wait("meter back", &|| q("meter/v1") == Quality::Good);
    });
    bridge.stop().await;
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
