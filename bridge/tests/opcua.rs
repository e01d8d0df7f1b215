//! The OPC UA server's publish responses fit what clients decode: async-opcua's client (arrays of
//! at most 1,000 elements by default) subscribing to 3,000 items with no limit of its own on
//! notifications per publish gets every first value and keeps its connection.

use busbar_bridge::acquisition::Acquisition;
use busbar_bridge::demo::{demo_config, DemoPorts};
use busbar_bridge::northbound::opcua as server;
use busbar_bridge::store::Store;
use busbar_sim::qa::probe::{opcua_anonymous_session, opcua_namespace, opcua_value_item};
use opcua::client::DataChangeCallback;
use opcua::types::{NodeId, ReadValueId, TimestampsToReturn};
use server::{OpcUaSettings, Role, NAMESPACE_URI};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const ITEMS: usize = 3_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_publish_limit_gets_every_first_value() {
    let ports = DemoPorts::default();
    let config = demo_config(ports.sim_gateway, &ports).unwrap_or_else(|e| panic!("{e}"));
    let store = Store::new(&config, 16);
    let settings = OpcUaSettings {
        listen: "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        pki_dir: std::env::temp_dir().join(format!("busbar-opcua-test-pki-{}", std::process::id())),
        none_endpoint: true,
        anonymous: true,
        auto_trust: true,
        anonymous_role: Role::Viewer,
        users: Vec::new(),
        history_samples: 1,
        max_monitored_items: ITEMS,
    };
    let (stop, rx) = watch::channel(false);
    let (url, _tasks) = server::start(
        &config,
        &settings,
        store.clone(),
        Acquisition::detached(store.clone()),
        None,
        rx,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // Every point of the demo site, round again until there are ITEMS items.
    let ids: Vec<String> = (0..store.len() as u32)
        .filter_map(|p| store.meta(p).filter(|m| m.acquired).map(|m| m.id.clone()))
        .collect();
    assert!(!ids.is_empty());

    let (session, event_loop) = opcua_anonymous_session(&url, "bridge-test", |b| b)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ns = opcua_namespace(&session, NAMESPACE_URI)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    // max_notifications_per_publish 0: no limit from the client.
    let sub = session
        .create_subscription(
            Duration::from_millis(100),
            600,
            20,
            0,
            0,
            true,
            DataChangeCallback::new(move |_, _| {
                counter.fetch_add(1, Ordering::Relaxed);
            }),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let all: Vec<&String> = ids.iter().cycle().take(ITEMS).collect();
    for chunk in all.chunks(500) {
        let items = chunk.iter().map(|id| opcua_value_item(ns, id)).collect();
        let created = session
            .create_monitored_items(sub, TimestampsToReturn::Both, items)
            .await
            .unwrap_or_else(|e| panic!("creating monitored items: {e}"));
        assert!(created.iter().all(|c| c.result.status_code.is_good()));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.load(Ordering::Relaxed) < ITEMS && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen.load(Ordering::Relaxed), ITEMS, "one first value per item");
    // Still connected: a read answers.
    let again = session
        .read(
            &[ReadValueId::from(NodeId::new(ns, ids[0].as_str()))],
            TimestampsToReturn::Both,
            0.0,
        )
        .await;
    assert!(again.is_ok(), "the session survived: {again:?}");
    let _ = session.disconnect().await;
    event_loop.abort();
    let _ = stop.send(true);
}
