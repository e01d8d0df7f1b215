//! `busbar-sim test` in-process: a client plays the system under test over the simulator's own
//! gateway (it polls the transfer switch and writes a charger's current limit), and the run
//! judges it: the Modbus probe against the simulator's truth, the write, the polls, the writes it
//! must not make. The same run with a client that writes an out-of-range limit fails on the
//! write (the device refused it) and on the range it must keep.

use busbar_modbus::client::Client;
use busbar_modbus::codec::Request;
use busbar_sim::qa::{self, TestOptions};
use busbar_sim::scenario::parse_scenario;
use std::net::SocketAddr;
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn scenario(port: u16) -> busbar_sim::scenario::Scenario {
    let text = format!(
        r#"
site: {{ name: QA, id: qa }}
listeners: [{{ name: gw, listen: "127.0.0.1:{port}" }}]
devices:
  - {{ name: ats, profile: socomec-atys-pm, unit_id: 1 }}
  - {{ name: ev1, profile: legrand-greenup, unit_id: 10, params: {{ rated_current_a: 32 }} }}
expect:
  - name: source I voltage as the device has it
    probe: {{ modbus: "127.0.0.1:{port}", unit: 1, address: 20736, type: u32, scale: 0.01 }}
    truth: {{ device: ats, point: source1_voltage }}
    tolerance: 0.5
    within: 5s
  - name: the client polls the transfer switch every second
    polled: {{ device: ats, every: 2s }}
    at: 1s
    for: 4s
  - name: the current limit is set
    wrote: {{ device: ev1, point: current_limit, range: [6, 32] }}
    within: 6s
  - name: the current limit stays within the charger's rating
    never_wrote: {{ device: ev1, point: current_limit, outside: [6, 32] }}
    for: 6s
  - name: nothing is written to the transfer switch
    never_wrote: {{ device: ats }}
    for: 6s
"#
    );
    let profiles = busbar_core::profile::embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
    parse_scenario("qa.yaml", &text, &profiles).unwrap_or_else(|d| panic!("{d}"))
}

/// The system under test: polls the ATS every 0.5 s, writes `limit` to ev1 after 2 s.
async fn client(port: u16, limit: u16) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut c = loop {
        if let Ok(c) = Client::connect(addr).await {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for i in 0..14 {
        let _ = c.read_holding(1, 20736, 2).await;
        if i == 4 {
            let write = Request::WriteSingleRegister {
                address: 4101,
                value: limit,
            };
            let _ = c.call(10, &write).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn run(limit: u16) -> qa::Report {
    run_seeded(limit, None).await
}

async fn run_seeded(limit: u16, seed: Option<u64>) -> qa::Report {
    let port = free_port();
    let s = scenario(port);
    let sut = tokio::spawn(client(port, limit));
    let opts = TestOptions {
        speed: 1.0,
        seed,
        listen: None,
        duration: None,
    };
    let report = qa::run("qa.yaml", &s, &opts).await.unwrap_or_else(|e| panic!("{e}"));
    sut.abort();
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_the_right_thing_passes_and_one_that_does_not_fails_with_reasons() {
    let good = run(16).await;
    let summary = qa::report::human(&good);
    assert!(good.passed(), "{summary}");
    assert_eq!(good.outcomes.len(), 5);
    assert!(
        good.timeline
            .iter()
            .any(|(_, w)| w == "SUT wrote ev1/current_limit = 16"),
        "{:?}",
        good.timeline
    );

    let bad = run(40).await;
    let failed: Vec<&str> = bad
        .outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "the current limit is set",
            "the current limit stays within the charger's rating"
        ],
        "{}",
        qa::report::human(&bad)
    );
    let outside = bad
        .outcomes
        .iter()
        .find(|o| o.name == "the current limit stays within the charger's rating")
        .map(|o| o.detail.clone())
        .unwrap_or_default();
    assert!(outside.contains("current_limit = 40"), "{outside}");
    assert!(
        bad.timeline
            .iter()
            .any(|(_, w)| w == "SUT wrote ev1/current_limit = 40 (refused)"),
        "the charger refuses 40 A (its range is 0..63 A but the rating 32 A): {:?}",
        bad.timeline
    );
}

/// `--seed`: the same seed and the same SUT give the same verdicts and the same played
/// timeline, and the report names the seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_and_the_same_sut_give_the_same_report() {
    let a = run_seeded(16, Some(5)).await;
    let b = run_seeded(16, Some(5)).await;
    assert_eq!((a.seed, b.seed), (5, 5));
    let verdicts = |r: &qa::Report| {
        r.outcomes
            .iter()
            .map(|o| (o.name.clone(), o.passed))
            .collect::<Vec<_>>()
    };
    assert_eq!(verdicts(&a), verdicts(&b));
    let played = |r: &qa::Report| {
        r.timeline
            .iter()
            .filter(|(_, w)| w.starts_with("SUT wrote"))
            .map(|(_, w)| w.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(played(&a), played(&b));
    assert_eq!(qa::report::junit(&a).matches("<failure").count(), 0);
}
