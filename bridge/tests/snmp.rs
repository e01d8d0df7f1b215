//! The SNMP agent's persisted engine: the same engine id after a restart, one more boot.

use busbar_bridge::acquisition::Acquisition;
use busbar_bridge::demo::{demo_config, DemoPorts};
use busbar_bridge::northbound::snmp::{self, mib as snmp_mib};
use busbar_bridge::northbound::snmp::{Cidr, SnmpAccess, SnmpCommunity, SnmpSettings};
use busbar_bridge::store::Store;
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_id_survives_restarts_and_boots_count_up() {
    let dir = std::env::temp_dir().join(format!("busbar-snmp-engine-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ports = DemoPorts::default();
    let config = demo_config(ports.sim_gateway, &ports).unwrap_or_else(|e| panic!("{e}"));
    let settings = SnmpSettings {
        listen: "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        root: snmp_mib::default_root(),
        contact: String::new(),
        location: String::new(),
        state_dir: dir.clone(),
        communities: vec![SnmpCommunity {
            name: "public".into(),
            access: SnmpAccess::Read,
            sources: Cidr::parse("127.0.0.0/8").into_iter().collect(),
            view: Vec::new(),
        }],
        users: Vec::new(),
        traps: Vec::new(),
        informs: Vec::new(),
    };
    let mut seen = Vec::new();
    for _ in 0..3 {
        let store = Store::new(&config, 16);
        let (stop, rx) = watch::channel(false);
        let (h, tasks) = snmp::start(
            &config,
            &settings,
            store.clone(),
            Acquisition::detached(store),
            None,
            rx,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        seen.push((h.engine_id.clone(), h.engine_boots));
        let _ = stop.send(true);
        for t in tasks {
            let _ = t.await;
        }
    }
    assert!(!seen[0].0.is_empty());
    assert!(seen.iter().all(|(id, _)| *id == seen[0].0), "one engine id: {seen:?}");
    assert_eq!(
        seen.iter().map(|s| s.1).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "boots: 1 at installation, then one more per start"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
