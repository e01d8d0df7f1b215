//! BACnet/IP load client (busbar-bacnet's encoders, our own UDP loop): ReadPropertyMultiple
//! throughput and COV notification fan-out against any BACnet/IP server, ours or bacpypes3's.

use anyhow::Context;
use busbar_bacnet::apdu::{self, Apdu};
use busbar_bacnet::bvll::{self, Bvll};
use busbar_bacnet::consts::{confirmed, object_type, property, unconfirmed};
use busbar_bacnet::npdu;
use busbar_bacnet::service::{client, PropertyRef, ReadAccessSpec, SubscribeCov};
use busbar_bacnet::tag::Reader;
use busbar_bacnet::{ObjectId, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

fn datagram(invoke_id: u8, service: u8, body: &[u8]) -> Vec<u8> {
    let mut n = Vec::with_capacity(body.len() + 8);
    npdu::encode(&mut n, true, None);
    n.extend_from_slice(&[0x00, 0x05, invoke_id, service]);
    n.extend_from_slice(body);
    bvll::frame(bvll::function::ORIGINAL_UNICAST_NPDU, &n)
}

/// The APDU of a received datagram.
fn apdu_of(d: &[u8]) -> Option<&[u8]> {
    let n = match bvll::decode(d).ok()? {
        Bvll::OriginalUnicast(n) | Bvll::ForwardedNpdu { npdu: n, .. } | Bvll::OriginalBroadcast(n) => n,
        _ => return None,
    };
    Some(npdu::decode(n).ok()?.apdu)
}

/// One confirmed request, waiting for its answer (retried 3 times).
async fn request(sock: &UdpSocket, server: SocketAddr, service: u8, body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut buf = vec![0u8; 2048];
    for _ in 0..3 {
        sock.send_to(&datagram(1, service, body), server).await?;
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), sock.recv(&mut buf)).await {
            if let Some(a) = buf.get(..n).and_then(apdu_of) {
                return Ok(a.to_vec());
            }
        }
    }
    anyhow::bail!("no answer from {server}")
}

/// The analog inputs of the device at `server` (Object_List read element by element).
pub async fn analog_inputs(server: SocketAddr, device: u32, limit: usize) -> anyhow::Result<Vec<ObjectId>> {
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    let read = |index: u32| {
        let mut b = Vec::new();
        client::read_property(
            &mut b,
            ObjectId::new(object_type::DEVICE, device),
            PropertyRef {
                property: property::OBJECT_LIST,
                index: Some(index),
            },
        );
        b
    };
    let value = |a: &[u8]| -> Option<Value> {
        // ComplexAck header (3 octets), object id, property, index, opening tag 3, value.
        let mut r = Reader::new(a.get(3..)?);
        r.context_object_id(0).ok()?;
        r.context_unsigned(1).ok()?;
        r.opt_context_unsigned(2).ok()?;
        r.opening(3).ok()?;
        Value::decode(&mut r).ok()
    };
    let a = request(&sock, server, confirmed::READ_PROPERTY, &read(0)).await?;
    let Some(Value::Unsigned(count)) = value(&a) else {
        anyhow::bail!("no Object_List length from {server}");
    };
    let mut out = Vec::new();
    for i in 1..=count as u32 {
        let a = request(&sock, server, confirmed::READ_PROPERTY, &read(i)).await?;
        if let Some(Value::ObjectId(id)) = value(&a) {
            if id.object_type == object_type::ANALOG_INPUT {
                out.push(id);
                if out.len() == limit {
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// ReadPropertyMultiple of Present_Value and Status_Flags of `per_request` objects, `window`
/// requests in flight, for `duration`: (properties per second, errors).
pub async fn rpm_throughput(
    server: SocketAddr,
    objects: &[ObjectId],
    per_request: usize,
    in_flight: usize,
    duration: Duration,
) -> anyhow::Result<(f64, u64)> {
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    let bodies: Vec<Vec<u8>> = objects
        .chunks(per_request)
        .filter(|c| c.len() == per_request)
        .map(|chunk| {
            let specs: Vec<ReadAccessSpec> = chunk
                .iter()
                .map(|o| ReadAccessSpec {
                    object: *o,
                    properties: [property::PRESENT_VALUE, property::STATUS_FLAGS]
                        .into_iter()
                        .map(|p| PropertyRef {
                            property: p,
                            index: None,
                        })
                        .collect(),
                })
                .collect();
            let mut b = Vec::new();
            client::read_property_multiple(&mut b, &specs);
            b
        })
        .collect();
    if bodies.is_empty() {
        anyhow::bail!("fewer than {per_request} objects");
    }
    let mut next = 0usize;
    let mut sent: HashMap<u8, Instant> = HashMap::new();
    let send = |id: u8, k: usize| datagram(id, confirmed::READ_PROPERTY_MULTIPLE, &bodies[k % bodies.len()]);
    for id in 0..in_flight as u8 {
        sock.send_to(&send(id, next), server).await?;
        next += 1;
        sent.insert(id, Instant::now());
    }
    let (mut answers, mut errors) = (0u64, 0u64);
    let start = Instant::now();
    let mut buf = vec![0u8; 2048];
    while start.elapsed() < duration {
        let id = match tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf)).await {
            Ok(Ok(n)) => match buf.get(..n).and_then(apdu_of).map(apdu::decode) {
                Some(Ok(Apdu::ComplexAck { invoke_id, .. })) => {
                    answers += 1;
                    invoke_id
                }
                Some(Ok(
                    Apdu::Error { invoke_id, .. } | Apdu::Abort { invoke_id, .. } | Apdu::Reject { invoke_id, .. },
                )) => {
                    errors += 1;
                    invoke_id
                }
                _ => continue,
            },
            _ => {
                // A lost datagram: resend everything overdue.
                for (id, t) in sent.iter_mut() {
                    if t.elapsed() > Duration::from_millis(500) {
                        errors += 1;
                        *t = Instant::now();
                        sock.send_to(&send(*id, next), server).await?;
                        next += 1;
                    }
                }
                continue;
            }
        };
        sock.send_to(&send(id, next), server).await?;
        next += 1;
        sent.insert(id, Instant::now());
    }
    let props = answers as f64 * per_request as f64 * 2.0;
    Ok((props / start.elapsed().as_secs_f64(), errors))
}

/// The Present_Value (a REAL) of a COV notification APDU.
fn notified_real(a: &[u8]) -> Option<f32> {
    let Ok(Apdu::UnconfirmedRequest { service, body }) = apdu::decode(a) else {
        return None;
    };
    if service != unconfirmed::UNCONFIRMED_COV_NOTIFICATION {
        return None;
    }
    let mut r = Reader::new(body);
    r.context_unsigned(0).ok()?;
    r.context_object_id(1).ok()?;
    r.context_object_id(2).ok()?;
    r.context_unsigned(3).ok()?;
    r.opening(4).ok()?;
    while !r.at_end() {
        let p = r.context_unsigned(0).ok()?;
        r.opt_context_unsigned(1).ok()?;
        r.opening(2).ok()?;
        let v = Value::decode(&mut r).ok()?;
        r.closing(2).ok()?;
        if p == property::PRESENT_VALUE {
            if let Value::Real(x) = v {
                return Some(x);
            }
        }
        if r.next_is_context(3) {
            r.context_unsigned(3).ok()?;
        }
    }
    None
}

/// COV fan-out: `subscribers` sockets each subscribe (unconfirmed) to every object; the
/// server changes values to the Unix time modulo 1000 s. (notifications per second, p50 ms,
/// p99 ms, subscriptions accepted).
pub async fn cov_fanout(
    server: SocketAddr,
    objects: &[ObjectId],
    subscribers: usize,
    duration: Duration,
) -> anyhow::Result<(f64, f64, f64, usize)> {
    let mut socks = Vec::new();
    let mut accepted = 0usize;
    for s in 0..subscribers {
        let sock = UdpSocket::bind("127.0.0.1:0").await?;
        for (i, o) in objects.iter().enumerate() {
            let mut b = Vec::new();
            client::subscribe_cov(
                &mut b,
                &SubscribeCov {
                    process_id: (s * 100_000 + i) as u32,
                    object: *o,
                    confirmed: Some(false),
                    lifetime: Some(600),
                    property: None,
                    cov_increment: None,
                },
            );
            // Notifications may already arrive while subscribing: look for the SimpleAck.
            sock.send_to(&datagram(7, confirmed::SUBSCRIBE_COV, &b), server).await?;
            let deadline = Instant::now() + Duration::from_secs(2);
            let mut buf = vec![0u8; 2048];
            while let Ok(Ok(n)) = tokio::time::timeout_at(deadline.into(), sock.recv(&mut buf)).await {
                if let Some(Ok(Apdu::SimpleAck { invoke_id: 7, .. })) = buf.get(..n).and_then(apdu_of).map(apdu::decode)
                {
                    accepted += 1;
                    break;
                }
            }
        }
        socks.push(sock);
    }
    // Drain the initial notifications.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut tasks = Vec::new();
    for sock in socks {
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(1), sock.recv(&mut buf)).await {}
            let start = Instant::now();
            let mut latencies = Vec::new();
            while start.elapsed() < duration {
                let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(200), sock.recv(&mut buf)).await else {
                    continue;
                };
                let now_s = (busbar_core::time::unix_ms(std::time::SystemTime::now()) % 1_000_000) as f64 / 1000.0;
                if let Some(v) = buf.get(..n).and_then(apdu_of).and_then(notified_real) {
                    // The initial 0.0 values are not changes.
                    if v > 0.0 {
                        // Modulo 1000 s; a REAL rounds the stamp by up to 0.06 ms either way.
                        let mut d = now_s - f64::from(v);
                        if d < -500.0 {
                            d += 1000.0;
                        }
                        latencies.push(d.max(0.0) * 1000.0);
                    }
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await?);
    }
    all.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok((all.len() as f64 / duration.as_secs_f64(), pct(0.5), pct(0.99), accepted))
}

/// Read the whole Object_List of device `device` in one ReadProperty, taking a segmented answer
/// of 1476-octet segments, as many as the server sends, windows of up to 16: (objects, time).
pub async fn object_list_whole(server: SocketAddr, device: u32) -> anyhow::Result<(usize, Duration)> {
    use busbar_bacnet::segment::{Incoming, Received};
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    let mut a = vec![
        0x02,
        (apdu::code_of_max_segments(usize::MAX) << 4) | apdu::code_of_max_apdu(1476),
        9,
        confirmed::READ_PROPERTY,
    ];
    client::read_property(
        &mut a,
        ObjectId::new(object_type::DEVICE, device),
        PropertyRef {
            property: property::OBJECT_LIST,
            index: None,
        },
    );
    let mut n = Vec::new();
    npdu::encode(&mut n, true, None);
    n.extend_from_slice(&a);
    let started = Instant::now();
    sock.send_to(&bvll::frame(bvll::function::ORIGINAL_UNICAST_NPDU, &n), server)
        .await?;
    let mut rx: Option<Incoming> = None;
    let mut buf = vec![0u8; 2048];
    let body = loop {
        let n = tokio::time::timeout(Duration::from_secs(10), sock.recv(&mut buf))
            .await
            .context("no segment within 10 s")??;
        let Some(a) = buf.get(..n).and_then(apdu_of) else {
            continue;
        };
        let ack = match apdu::decode(a) {
            Ok(Apdu::ComplexAck {
                invoke_id: 9,
                segmented: false,
                body,
                ..
            }) => break body.to_vec(),
            Ok(Apdu::ComplexAck {
                invoke_id: 9,
                segmented: true,
                more_follows,
                sequence,
                window,
                service,
                body,
            }) => match &mut rx {
                None if sequence == 0 => {
                    let (r, ack) = Incoming::first(9, service, window, 16, body, 1 << 24, false);
                    rx = Some(r);
                    ack
                }
                None => continue,
                Some(r) => match r.segment(sequence, more_follows, body) {
                    Received::Ack(ack) => ack,
                    Received::Nothing => continue,
                    Received::Complete { ack, message } => {
                        send_apdu(&sock, server, &ack).await?;
                        break message;
                    }
                    Received::TooLong => anyhow::bail!("Object_List over 16 MiB"),
                },
            },
            Ok(Apdu::Abort { reason, .. }) => anyhow::bail!("{server} aborted the read (reason {reason})"),
            Ok(Apdu::Error { .. } | Apdu::Reject { .. }) => anyhow::bail!("{server} refused the read"),
            _ => continue,
        };
        send_apdu(&sock, server, &ack).await?;
    };
    let took = started.elapsed();
    let mut r = Reader::new(&body);
    r.context_object_id(0)?;
    r.context_unsigned(1)?;
    r.opening(3)?;
    let mut count = 0;
    while !r.next_is_closing(3) {
        let Value::ObjectId(_) = Value::decode(&mut r)? else {
            anyhow::bail!("not an object identifier in Object_List")
        };
        count += 1;
    }
    Ok((count, took))
}

async fn send_apdu(sock: &UdpSocket, server: SocketAddr, a: &[u8]) -> anyhow::Result<()> {
    let mut n = Vec::with_capacity(a.len() + 2);
    npdu::encode(&mut n, false, None);
    n.extend_from_slice(a);
    sock.send_to(&bvll::frame(bvll::function::ORIGINAL_UNICAST_NPDU, &n), server)
        .await?;
    Ok(())
}

/// Object_List[0] of device `device`: how many objects it serves.
pub async fn object_count(server: SocketAddr, device: u32) -> anyhow::Result<usize> {
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    let mut b = Vec::new();
    client::read_property(
        &mut b,
        ObjectId::new(object_type::DEVICE, device),
        PropertyRef {
            property: property::OBJECT_LIST,
            index: Some(0),
        },
    );
    let a = request(&sock, server, confirmed::READ_PROPERTY, &b).await?;
    let mut r = Reader::new(a.get(3..).unwrap_or(&[]));
    r.context_object_id(0)?;
    r.context_unsigned(1)?;
    r.opt_context_unsigned(2)?;
    r.opening(3)?;
    match Value::decode(&mut r)? {
        Value::Unsigned(n) => Ok(n as usize),
        other => anyhow::bail!("Object_List[0] is {other:?}"),
    }
}

/// Write `recipient` (a B/IP address on this network, unconfirmed notifications, every day and
/// hour, every transition) into the Recipient_List of Notification Classes 1..=`classes`.
pub async fn register_recipient(
    server: SocketAddr,
    classes: u32,
    recipient: std::net::SocketAddrV4,
) -> anyhow::Result<()> {
    use busbar_bacnet::event::{Destination, Recipient};
    use busbar_bacnet::service::WriteProperty;
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    let mut mac = recipient.ip().octets().to_vec();
    mac.extend_from_slice(&recipient.port().to_be_bytes());
    let d = Destination {
        valid_days: [true; 7],
        from_time: [0, 0, 0, 0],
        to_time: [23, 59, 59, 99],
        recipient: Recipient::Address { network: 0, mac },
        process_id: 1,
        confirmed: false,
        transitions: [true; 3],
    };
    let mut encoded = Vec::new();
    d.encode(&mut encoded);
    for class in 1..=classes {
        let w = WriteProperty::of_values(
            ObjectId::new(object_type::NOTIFICATION_CLASS, class),
            PropertyRef {
                property: property::RECIPIENT_LIST,
                index: None,
            },
            vec![Value::Encoded(encoded.clone())],
            None,
        );
        let mut body = Vec::new();
        client::write_property(&mut body, &w);
        let a = request(&sock, server, confirmed::WRITE_PROPERTY, &body).await?;
        if !matches!(apdu::decode(&a), Ok(Apdu::SimpleAck { .. })) {
            anyhow::bail!("Recipient_List of notification class {class} not taken: {a:02x?}");
        }
    }
    Ok(())
}

/// An EventNotification datagram: (event object instance, from state, to state).
pub fn event_of(d: &[u8]) -> Option<(u32, Option<u32>, u32)> {
    let a = apdu_of(d)?;
    let Ok(Apdu::UnconfirmedRequest { service, body }) = apdu::decode(a) else {
        return None;
    };
    if service != unconfirmed::UNCONFIRMED_EVENT_NOTIFICATION {
        return None;
    }
    let n = busbar_bacnet::event::decode_event_notification(body).ok()?;
    Some((n.object.instance, n.from_state, n.to_state))
}
