//! The BACnet/IP server over a store we drive by hand (no devices): what the bacpypes3 interop
//! tests cannot easily show — subscription lifetimes and cancellation, confirmed notifications
//! retried until acknowledged, COV_Increment filtering, the foreign device table, routed
//! requests, REQUIRED/OPTIONAL, writes refused when no device can take them.

use busbar_bacnet::apdu::{self, Apdu};
use busbar_bacnet::bvll::{self, Bvll};
use busbar_bacnet::consts::{confirmed, error_class, error_code, object_type, property, unconfirmed};
use busbar_bacnet::npdu::{self, NetAddr};
use busbar_bacnet::service::{client, PropertyRef, ReadAccessSpec, SubscribeCov, WriteProperty};
use busbar_bacnet::tag::Reader;
use busbar_bacnet::{ObjectId, Value};
use busbar_bridge::acquisition::Acquisition;
use busbar_bridge::config::parse_config;
use busbar_bridge::northbound::bacnet;
use busbar_bridge::store::{PointValue, Reading, Store};
use busbar_core::quality::Quality;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::UdpSocket;
use tokio::sync::watch;

const CONFIG: &str = "site: { name: T, id: t }\nwrites: { enabled: true }\n\
connections: [{ name: gw, tcp: { host: 127.0.0.1, port: 1 } }]\n\
devices:\n  - { name: m, profile: socomec-diris-a40, connection: gw, unit_id: 1, bacnet_base: 5, points: { v1: { cov_increment: 1.0 } } }\n  \
  - { name: ev, profile: legrand-greenup, connection: gw, unit_id: 2, bacnet_base: 6, points: { current_limit: { writable: true } } }\n\
servers: { bacnet: { listen: '127.0.0.1:0', device_instance: 77 } }\n";

struct Rig {
    store: Arc<Store>,
    server: SocketAddr,
    _stop: watch::Sender<bool>,
}

async fn rig() -> Rig {
    rig_on(busbar_bridge::clock::system()).await
}

/// The server on `clock` (its subscription lifetimes, foreign device TTLs and retries).
async fn rig_on(clock: Arc<dyn busbar_bridge::clock::Clock>) -> Rig {
    let profiles = busbar_core::profile::embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
    let config = parse_config("t.yaml", CONFIG, &profiles, "x").unwrap_or_else(|e| panic!("{e}"));
    let store = Store::with_clock(&config, 1024, clock);
    let Some(settings) = config.servers.bacnet.clone() else {
        panic!("bacnet settings")
    };
    let (stop, rx) = watch::channel(false);
    let (handle, _tasks) = bacnet::start(
        &config,
        &settings,
        store.clone(),
        Acquisition::detached(store.clone()),
        None,
        rx,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    Rig {
        store,
        server: handle.local,
        _stop: stop,
    }
}

fn set(store: &Store, id: &str, v: f64, q: Quality) {
    let Some(p) = store.find(id) else { panic!("{id}") };
    let r = if q == Quality::CommFailure {
        Reading::Failed(q)
    } else {
        Reading::Value(PointValue::Number(v), q)
    };
    store.update(&[(p, r)], SystemTime::now());
}

fn request(invoke: u8, service: u8, body: &[u8], route: Option<&NetAddr>) -> Vec<u8> {
    let mut n = Vec::new();
    match route {
        // A request a router relays from network 9: the NPDU names its source.
        Some(src) => {
            n.extend_from_slice(&[1, 0x0C]);
            n.extend_from_slice(&src.net.to_be_bytes());
            n.push(src.mac.len() as u8);
            n.extend_from_slice(&src.mac);
        }
        None => npdu::encode(&mut n, true, None),
    }
    apdu::confirmed_request_header(&mut n, invoke, service);
    n.extend_from_slice(body);
    bvll::frame(bvll::function::ORIGINAL_UNICAST_NPDU, &n)
}

/// The next datagram's NPDU (raw) within `ms`.
async fn recv(sock: &UdpSocket, ms: u64) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(Duration::from_millis(ms), sock.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some(buf)
}

fn apdu_of(d: &[u8]) -> Vec<u8> {
    match bvll::decode(d) {
        Ok(Bvll::OriginalUnicast(n)) => npdu::decode(n).map(|n| n.apdu.to_vec()).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// COV notifications' (process id, confirmed invoke id, Present_Value) in a datagram.
fn notification(d: &[u8]) -> Option<(u32, Option<u8>, Value)> {
    let a = apdu_of(d);
    let (invoke, body) = match apdu::decode(&a).ok()? {
        Apdu::ConfirmedRequest {
            invoke_id,
            service: confirmed::CONFIRMED_COV_NOTIFICATION,
            body,
            ..
        } => (Some(invoke_id), body.to_vec()),
        Apdu::UnconfirmedRequest {
            service: unconfirmed::UNCONFIRMED_COV_NOTIFICATION,
            body,
        } => (None, body.to_vec()),
        _ => return None,
    };
    let mut r = Reader::new(&body);
    let pid = r.context_unsigned(0).ok()?;
    r.context_object_id(1).ok()?;
    r.context_object_id(2).ok()?;
    r.context_unsigned(3).ok()?;
    r.opening(4).ok()?;
    r.context_unsigned(0).ok()?;
    r.opening(2).ok()?;
    Some((pid, invoke, Value::decode(&mut r).ok()?))
}

fn v1() -> ObjectId {
    // socomec-diris-a40's v1 is its 8th point (index 7).
    ObjectId::new(object_type::ANALOG_INPUT, 5007)
}

fn subscribe(pid: u32, confirmed_: bool, lifetime: Option<u32>) -> Vec<u8> {
    let mut b = Vec::new();
    client::subscribe_cov(
        &mut b,
        &SubscribeCov {
            process_id: pid,
            object: v1(),
            confirmed: lifetime.map(|_| confirmed_),
            lifetime,
            property: None,
            cov_increment: None,
        },
    );
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cov_increment_lifetime_and_cancellation() {
    let clock = busbar_bridge::clock::ManualClock::new();
    let rig = rig_on(clock.clone()).await;
    set(&rig.store, "m/v1", 230.0, Quality::Good);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    sock.send_to(
        &request(1, confirmed::SUBSCRIBE_COV, &subscribe(9, false, Some(2)), None),
        rig.server,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let ack = recv(&sock, 1000).await.map(|d| apdu_of(&d));
    assert_eq!(ack, Some(vec![0x20, 1, confirmed::SUBSCRIBE_COV]), "SimpleAck");
    let first = recv(&sock, 1000).await.and_then(|d| notification(&d));
    assert_eq!(first, Some((9, None, Value::Real(230.0))), "initial notification");
    // Below the COV_Increment (1 V): nothing; at or above: a notification.
    set(&rig.store, "m/v1", 230.5, Quality::Good);
    assert!(recv(&sock, 300).await.is_none(), "0.5 V is under the increment");
    set(&rig.store, "m/v1", 231.2, Quality::Good);
    let n = recv(&sock, 1000).await.and_then(|d| notification(&d));
    assert_eq!(n, Some((9, None, Value::Real(231.2))));
    // A quality change notifies whatever the value.
    set(&rig.store, "m/v1", 0.0, Quality::CommFailure);
    let n = recv(&sock, 1000).await.and_then(|d| notification(&d));
    assert_eq!(n, Some((9, None, Value::Real(231.2))), "the last value, now with FAULT");
    // After its 2 s lifetime the subscription is gone: 1.9 s on, still served; 2.1 s, not.
    clock.advance(Duration::from_millis(1900));
    set(&rig.store, "m/v1", 235.0, Quality::Good);
    let n = recv(&sock, 1000).await.and_then(|d| notification(&d));
    assert_eq!(n, Some((9, None, Value::Real(235.0))), "still within its lifetime");
    clock.advance(Duration::from_millis(200));
    while recv(&sock, 50).await.is_some() {}
    set(&rig.store, "m/v1", 240.0, Quality::Good);
    assert!(recv(&sock, 500).await.is_none(), "expired");
    // Subscribe again, then cancel.
    sock.send_to(
        &request(2, confirmed::SUBSCRIBE_COV, &subscribe(10, false, Some(0)), None),
        rig.server,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(recv(&sock, 1000).await.is_some(), "ack");
    assert!(
        recv(&sock, 1000).await.and_then(|d| notification(&d)).is_some(),
        "initial"
    );
    sock.send_to(
        &request(3, confirmed::SUBSCRIBE_COV, &subscribe(10, false, None), None),
        rig.server,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        recv(&sock, 1000).await.map(|d| apdu_of(&d)),
        Some(vec![0x20, 3, confirmed::SUBSCRIBE_COV])
    );
    set(&rig.store, "m/v1", 250.0, Quality::Good);
    assert!(recv(&sock, 500).await.is_none(), "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_notifications_are_retried_until_acknowledged() {
    let rig = rig().await;
    set(&rig.store, "m/v1", 230.0, Quality::Good);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    sock.send_to(
        &request(1, confirmed::SUBSCRIBE_COV, &subscribe(4, true, Some(60)), None),
        rig.server,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(recv(&sock, 1000).await.is_some(), "ack");
    let Some((4, Some(invoke), _)) = recv(&sock, 1000).await.and_then(|d| notification(&d)) else {
        panic!("a confirmed initial notification")
    };
    // Not acknowledged: the same notification again after APDU_Timeout (3 s).
    let again = recv(&sock, 5000).await.and_then(|d| notification(&d));
    assert_eq!(
        again.map(|n| n.1),
        Some(Some(invoke)),
        "retried with the same invoke id"
    );
    // Acknowledge it: no more retries.
    let mut ack = Vec::new();
    npdu::encode(&mut ack, false, None);
    apdu::simple_ack(&mut ack, invoke, confirmed::CONFIRMED_COV_NOTIFICATION);
    sock.send_to(&bvll::frame(bvll::function::ORIGINAL_UNICAST_NPDU, &ack), rig.server)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(recv(&sock, 4500).await.is_none(), "acknowledged: not sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_requests_required_optional_and_refused_writes() {
    let rig = rig().await;
    set(&rig.store, "ev/current_limit", 16.0, Quality::Good);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    // A routed ReadProperty comes back with DNET/DADR = the request's SNET/SADR.
    let src = NetAddr {
        net: 9,
        mac: vec![0x21],
    };
    let mut rp = Vec::new();
    client::read_property(
        &mut rp,
        ObjectId::new(object_type::DEVICE, 77),
        PropertyRef {
            property: property::OBJECT_NAME,
            index: None,
        },
    );
    sock.send_to(&request(5, confirmed::READ_PROPERTY, &rp, Some(&src)), rig.server)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let d = recv(&sock, 1000).await.unwrap_or_default();
    let Ok(Bvll::OriginalUnicast(n)) = bvll::decode(&d) else {
        panic!("{d:?}")
    };
    let n = npdu::decode(n).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n.destination, Some(src));
    assert_eq!(n.apdu.get(..3), Some(&[0x30, 5, confirmed::READ_PROPERTY][..]));
    // REQUIRED of an analog input has Present_Value and no Description; OPTIONAL the reverse.
    let mut rpm = Vec::new();
    let spec = |p| ReadAccessSpec {
        object: v1(),
        properties: vec![PropertyRef {
            property: p,
            index: None,
        }],
    };
    client::read_property_multiple(&mut rpm, &[spec(property::REQUIRED), spec(property::OPTIONAL)]);
    sock.send_to(&request(6, confirmed::READ_PROPERTY_MULTIPLE, &rpm, None), rig.server)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let a = apdu_of(&recv(&sock, 1000).await.unwrap_or_default());
    let mut r = Reader::new(a.get(3..).unwrap_or_default());
    let mut groups: Vec<Vec<u32>> = Vec::new();
    while !r.at_end() {
        r.context_object_id(0).unwrap_or_else(|e| panic!("{e}"));
        r.opening(1).unwrap_or_else(|e| panic!("{e}"));
        let mut props = Vec::new();
        while !r.next_is_closing(1) {
            props.push(r.context_unsigned(2).unwrap_or_else(|e| panic!("{e}")));
            r.skip_element().unwrap_or_else(|e| panic!("{e}"));
        }
        r.closing(1).unwrap_or_else(|e| panic!("{e}"));
        groups.push(props);
    }
    assert_eq!(groups.len(), 2);
    assert!(groups[0].contains(&property::PRESENT_VALUE) && !groups[0].contains(&property::DESCRIPTION));
    assert!(groups[1].contains(&property::DESCRIPTION) && !groups[1].contains(&property::PRESENT_VALUE));
    // A command with no field device behind it fails and leaves the priority array empty.
    let limit = ObjectId::new(object_type::ANALOG_VALUE, 6005);
    let mut wp = Vec::new();
    client::write_property(
        &mut wp,
        &WriteProperty::of_values(
            limit,
            PropertyRef {
                property: property::PRESENT_VALUE,
                index: None,
            },
            vec![Value::Real(10.0)],
            Some(8),
        ),
    );
    sock.send_to(&request(7, confirmed::WRITE_PROPERTY, &wp, None), rig.server)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let a = apdu_of(&recv(&sock, 3000).await.unwrap_or_default());
    let mut expected = Vec::new();
    apdu::error(
        &mut expected,
        7,
        confirmed::WRITE_PROPERTY,
        error_class::PROPERTY,
        error_code::WRITE_ACCESS_DENIED,
    );
    assert_eq!(a, expected, "the detached acquisition cannot write: refused");
    let mut rp = Vec::new();
    client::read_property(
        &mut rp,
        limit,
        PropertyRef {
            property: property::PRIORITY_ARRAY,
            index: Some(8),
        },
    );
    sock.send_to(&request(8, confirmed::READ_PROPERTY, &rp, None), rig.server)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let a = apdu_of(&recv(&sock, 1000).await.unwrap_or_default());
    assert_eq!(
        a.get(a.len().saturating_sub(3)..),
        Some(&[0x3E, 0x00, 0x3F][..]),
        "slot 8 is NULL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_device_table() {
    let rig = rig().await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let me = match sock.local_addr() {
        Ok(SocketAddr::V4(a)) => a,
        other => panic!("{other:?}"),
    };
    let send = |d: Vec<u8>| {
        let sock = &sock;
        async move {
            sock.send_to(&d, rig.server).await.unwrap_or_else(|e| panic!("{e}"));
            recv(sock, 1000).await.unwrap_or_default()
        }
    };
    assert_eq!(
        send(bvll::frame(bvll::function::REGISTER_FOREIGN_DEVICE, &[0, 60])).await,
        bvll::result(0)
    );
    let table = send(bvll::frame(bvll::function::READ_FDT, &[])).await;
    assert_eq!(table.get(1), Some(&bvll::function::READ_FDT_ACK));
    assert_eq!(
        table.get(4..10),
        Some(&[127, 0, 0, 1, (me.port() >> 8) as u8, me.port() as u8][..])
    );
    assert_eq!(table.get(10..12), Some(&[0, 60][..]), "TTL");
    let mut entry = me.ip().octets().to_vec();
    entry.extend_from_slice(&me.port().to_be_bytes());
    assert_eq!(
        send(bvll::frame(bvll::function::DELETE_FDT_ENTRY, &entry)).await,
        bvll::result(0)
    );
    assert_eq!(
        send(bvll::frame(bvll::function::DELETE_FDT_ENTRY, &entry)).await,
        bvll::result(bvll::result::DELETE_FDT_ENTRY_NAK)
    );
    assert_eq!(
        send(bvll::frame(bvll::function::WRITE_BDT, &[])).await,
        bvll::result(bvll::result::WRITE_BDT_NAK)
    );
    // Distribute-Broadcast-To-Network from a device that is not registered: NAK.
    assert_eq!(
        send(bvll::frame(
            bvll::function::DISTRIBUTE_BROADCAST_TO_NETWORK,
            &[1, 0, 0x10, 0x08]
        ))
        .await,
        bvll::result(bvll::result::DISTRIBUTE_BROADCAST_TO_NETWORK_NAK)
    );
}

/// A datagram carrying `apdu` unicast to the server.
fn datagram(apdu: &[u8]) -> Vec<u8> {
    let mut n = Vec::new();
    npdu::encode(&mut n, true, None);
    n.extend_from_slice(apdu);
    bvll::frame(bvll::function::ORIGINAL_UNICAST_NPDU, &n)
}

/// (sequence, more follows, data) of a segment of a ComplexACK.
fn segment_of(d: &[u8]) -> Option<(u8, bool, Vec<u8>)> {
    match apdu::decode(&apdu_of(d)).ok()? {
        Apdu::ComplexAck {
            segmented: true,
            sequence,
            more_follows,
            body,
            ..
        } => Some((sequence, more_follows, body.to_vec())),
        _ => None,
    }
}

fn segment_ack(invoke: u8, sequence: u8, window: u8, nak: bool) -> Vec<u8> {
    let mut a = Vec::new();
    apdu::segment_ack(&mut a, invoke, sequence, window, nak, false);
    datagram(&a)
}

/// A ReadProperty of the whole Object_List from a client taking segmented answers of up to 64
/// segments of 50 octets (the smallest APDU).
fn read_object_list(invoke: u8) -> Vec<u8> {
    let mut a = vec![
        0x02,
        (apdu::code_of_max_segments(64) << 4) | apdu::code_of_max_apdu(50),
        invoke,
        confirmed::READ_PROPERTY,
    ];
    client::read_property(
        &mut a,
        ObjectId::new(object_type::DEVICE, 77),
        PropertyRef {
            property: property::OBJECT_LIST,
            index: None,
        },
    );
    datagram(&a)
}

/// The object identifiers of a ReadProperty-ACK body of Object_List.
fn object_ids(body: &[u8]) -> Vec<ObjectId> {
    let mut r = Reader::new(body);
    r.context_object_id(0).unwrap_or_else(|e| panic!("{e}"));
    r.context_unsigned(1).unwrap_or_else(|e| panic!("{e}"));
    r.opening(3).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    while !r.next_is_closing(3) {
        match Value::decode(&mut r) {
            Ok(Value::ObjectId(id)) => out.push(id),
            other => panic!("{other:?}"),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segmented_answers_survive_lost_and_duplicated_segments() {
    let clock = busbar_bridge::clock::ManualClock::new();
    let rig = rig_on(clock.clone()).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let send = |d: Vec<u8>| {
        let sock = &sock;
        let to = rig.server;
        async move {
            sock.send_to(&d, to).await.unwrap_or_else(|e| panic!("{e}"));
        }
    };
    send(read_object_list(21)).await;
    // The first segment comes alone; our acknowledgement takes a window of 3.
    let Some((0, true, first)) = recv(&sock, 1000).await.and_then(|d| segment_of(&d)) else {
        panic!("a first segment")
    };
    let mut body = first;
    send(segment_ack(21, 0, 3, false)).await;
    let window: Vec<_> = [
        recv(&sock, 1000).await,
        recv(&sock, 1000).await,
        recv(&sock, 1000).await,
    ]
    .into_iter()
    .map(|d| d.and_then(|d| segment_of(&d)).unwrap_or_else(|| panic!("a segment")))
    .collect();
    assert_eq!(window.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 2, 3]);
    // Segment 2 "lost": keep 1, NAK naming 1; the server resumes at 2.
    body.extend_from_slice(&window[0].2);
    send(segment_ack(21, 1, 3, true)).await;
    let mut next = 2u8;
    loop {
        let Some((seq, more, data)) = recv(&sock, 1000).await.and_then(|d| segment_of(&d)) else {
            panic!("segment {next}")
        };
        if seq != next {
            // What was already in flight before the NAK arrived.
            continue;
        }
        body.extend_from_slice(&data);
        if !more {
            send(segment_ack(21, seq, 3, false)).await;
            break;
        }
        if seq % 3 == 1 {
            // End of a window (2..=4, 5..=7, ...): acknowledge it twice (a duplicate ACK).
            send(segment_ack(21, seq, 3, false)).await;
            send(segment_ack(21, seq, 3, false)).await;
        }
        next = seq.wrapping_add(1);
    }
    let ids = object_ids(&body);
    // The list the index-wise read gives, every element once, in order.
    let mut count = Vec::new();
    client::read_property(
        &mut count,
        ObjectId::new(object_type::DEVICE, 77),
        PropertyRef {
            property: property::OBJECT_LIST,
            index: Some(0),
        },
    );
    send(request(22, confirmed::READ_PROPERTY, &count, None)).await;
    let answer = loop {
        let d = recv(&sock, 1000).await.unwrap_or_else(|| panic!("count"));
        let a = apdu_of(&d);
        if let Ok(Apdu::ComplexAck {
            invoke_id: 22, body, ..
        }) = apdu::decode(&a)
        {
            break body.to_vec();
        }
    };
    let mut r = Reader::new(&answer);
    r.context_object_id(0).unwrap_or_else(|e| panic!("{e}"));
    r.context_unsigned(1).unwrap_or_else(|e| panic!("{e}"));
    r.context_unsigned(2).unwrap_or_else(|e| panic!("{e}"));
    r.opening(3).unwrap_or_else(|e| panic!("{e}"));
    let Ok(Value::Unsigned(n)) = Value::decode(&mut r) else {
        panic!("a count")
    };
    assert!(n * 5 > 45 * 4, "enough objects for more than 4 segments: {n}");
    assert_eq!(ids.len() as u64, n);
    assert_eq!(ids[0], ObjectId::new(object_type::DEVICE, 77));
    assert!(ids.contains(&v1()));

    // No acknowledgement at all: the first segment again once the segment timeout (2 s) passes
    // on the server's clock, then never after the retries (3) are spent.
    send(read_object_list(23)).await;
    assert!(recv(&sock, 1000).await.and_then(|d| segment_of(&d)).is_some());
    assert!(recv(&sock, 400).await.is_none(), "nothing before the timeout");
    for _ in 0..3 {
        clock.advance(Duration::from_millis(2100));
        let again = recv(&sock, 1000).await.and_then(|d| segment_of(&d));
        assert_eq!(again.map(|s| s.0), Some(0), "the window sent again");
    }
    clock.advance(Duration::from_millis(2100));
    assert!(recv(&sock, 600).await.is_none(), "given up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segmented_requests_are_put_together_in_order() {
    let rig = rig().await;
    set(&rig.store, "m/v1", 231.0, Quality::Good);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    // An RPM of Present_Value of v1, 60 times over: ~360 octets, in segments of 100.
    let spec = ReadAccessSpec {
        object: v1(),
        properties: vec![PropertyRef {
            property: property::PRESENT_VALUE,
            index: None,
        }],
    };
    let mut body = Vec::new();
    client::read_property_multiple(&mut body, &vec![spec; 60]);
    let chunks: Vec<&[u8]> = body.chunks(100).collect();
    assert!(chunks.len() >= 3);
    let seg = |seq: u8, more: bool, data: &[u8]| {
        let mut a = vec![
            0x0A | if more { 0x04 } else { 0 },
            (apdu::code_of_max_segments(64) << 4) | apdu::code_of_max_apdu(1476),
            31,
            seq,
            4,
            confirmed::READ_PROPERTY_MULTIPLE,
        ];
        a.extend_from_slice(data);
        datagram(&a)
    };
    let ack = |d: Option<Vec<u8>>| match d.map(|d| apdu_of(&d)).as_deref().map(apdu::decode) {
        Some(Ok(Apdu::SegmentAck {
            from_server: true,
            sequence,
            window,
            nak,
            invoke_id: 31,
        })) => (sequence, window, nak),
        other => panic!("not a SegmentACK: {other:?}"),
    };
    let last = chunks.len() - 1;
    let to = rig.server;
    sock.send_to(&seg(0, true, chunks[0]), to)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ack(recv(&sock, 1000).await),
        (0, 4, false),
        "first segment: the window taken"
    );
    // Segment 2 before 1: a NAK naming 0.
    sock.send_to(&seg(2, 2 < last, chunks[2]), to)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ack(recv(&sock, 1000).await), (0, 4, true));
    for (i, c) in chunks.iter().enumerate().skip(1) {
        sock.send_to(&seg(i as u8, i < last, c), to)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // The last segment is acknowledged, then the answer comes: 60 readings of 231 V.
    let mut answer = None;
    for _ in 0..4 {
        let d = recv(&sock, 1000).await.unwrap_or_else(|| panic!("answer"));
        if let Ok(Apdu::ComplexAck { body, .. }) = apdu::decode(&apdu_of(&d)) {
            answer = Some(body.to_vec());
            break;
        }
    }
    let answer = answer.unwrap_or_else(|| panic!("no answer"));
    let volts = answer
        .windows(5)
        .filter(|w| w == &[0x44, 0x43, 0x67, 0x00, 0x00])
        .count();
    assert_eq!(volts, 60, "every access spec answered");
    // A later segment of a transaction that does not exist: Abort, invalid APDU in this state.
    sock.send_to(&seg(5, true, chunks[1]), to)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let a = recv(&sock, 1000).await.map(|d| apdu_of(&d)).unwrap_or_default();
    assert_eq!(a, [0x71, 31, 2]);
}
