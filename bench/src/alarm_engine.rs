//! The alarm engine under load, and the journal's queries at a million rows.
//!
//! Load: `points` meter points with two rules each (a band `low 10 / high 90`, and a rate of
//! change of 30 units/s over 10 s), a store changed `rate` times per second in slices every
//! 10 ms. One change in a hundred sends a point to 95 (the band raises) and a second later back
//! to 50 (it clears); the others move points inside the band. Measured: the process's CPU
//! against the same driver over a store with no engine, and the latency from each crossing's
//! store update to its transition being announced (which follows its journal commit) and to
//! its SNMP trap arriving at a UDP socket on loopback, and to its BACnet EventNotification
//! (each point an event object, one recipient registered by address) arriving at another,
//! p50 and p99.

use crate::proc_stats::cpu_seconds;
use crate::serve::{parse_bench_config, site_text};
use busbar_bridge::acquisition::Acquisition;
use busbar_bridge::alarms::journal::{Filter, Journal};
use busbar_bridge::alarms::{Actor, AlarmState, Alarms, Kind, Level, Severity, Source, Transition};
use busbar_bridge::northbound::snmp::{Cidr, SnmpAccess, SnmpCommunity, SnmpSettings};
use busbar_bridge::store::{PointValue, Reading, Store};
use busbar_core::profile::Kind as PointKind;
use busbar_core::quality::Quality;
use std::collections::{HashMap, VecDeque};
use std::net::UdpSocket;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

const PROFILE: &str = "socomec-diris-a40";

/// A small deterministic generator (the bench needs no statistical quality).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// When each expected transition's cause was written: (alarm id, raised) -> time.
type Pending = Arc<Mutex<HashMap<(String, bool), Instant>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The numeric point ids of the profile, as one meter acquires them.
fn numeric_points() -> anyhow::Result<Vec<String>> {
    let config = parse_bench_config(&site_text(1, PROFILE, "m", |_| String::new()))?;
    let dev = config.devices.first().ok_or_else(|| anyhow::anyhow!("no device"))?;
    Ok(dev
        .acquired
        .iter()
        .filter_map(|&k| dev.profile.points.get(k))
        .filter(|p| !matches!(p.kind, PointKind::String))
        .map(|p| p.id.clone())
        .collect())
}

/// A site of meters with about `points` numeric points, two rules on each.
fn site(points: usize, journal: &Path) -> anyhow::Result<(busbar_bridge::config::Config, usize)> {
    let ids = numeric_points()?;
    let devices = points.div_ceil(ids.len().max(1));
    let list = ids.join(", ");
    // Bases in turn: every BACnet event object has an instance of its own.
    let mut text = site_text(devices, PROFILE, "m", |d| format!(", bacnet_base: {}", d + 1));
    text.push_str(&format!(
        "alarms:\n  journal: {}\n  device_alarms: false\n  communication: {{ enabled: false }}\n  \
         quality: {{ enabled: false }}\n  rules:\n    \
         - {{ name: band, points: [{list}], low: 10, high: 90, deadband: 1 }}\n    \
         - {{ name: ramp, points: [{list}], rate_of_change: 30, rate_window_s: 10 }}\n",
        journal.display()
    ));
    Ok((parse_bench_config(&text)?, devices * ids.len()))
}

/// The numeric acquired points of a store.
fn numeric(store: &Store, config: &busbar_bridge::config::Config) -> Vec<u32> {
    (0..store.len() as u32)
        .filter(|&p| {
            store.meta(p).is_some_and(|m| {
                m.acquired
                    && config.devices[m.device]
                        .profile
                        .points
                        .get(m.profile_point)
                        .is_some_and(|x| !matches!(x.kind, PointKind::String))
            })
        })
        .collect()
}

/// Drive the store for `run`: `rate` changes per second; crossings recorded in `pending`.
/// Returns the crossings made (raises and clears) and the raises among them.
async fn drive(store: &Store, points: &[u32], rate: usize, run: Duration, pending: Option<&Pending>) -> (usize, usize) {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut crossed: HashMap<u32, ()> = HashMap::new();
    let mut back: VecDeque<(u32, Instant)> = VecDeque::new();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let per_tick = (rate / 100).max(1);
    let end = Instant::now() + run;
    let mut crossings = 0usize;
    let mut raises = 0usize;
    let band_id = |p: u32| {
        store
            .meta(p)
            .map(|m| format!("threshold/band/{}", m.id))
            .unwrap_or_default()
    };
    while Instant::now() < end {
        tick.tick().await;
        let now = Instant::now();
        let mut slice: Vec<(u32, Reading)> = Vec::with_capacity(per_tick);
        let mut expect: Vec<(String, bool)> = Vec::new();
        while slice.len() < per_tick {
            if back.front().is_some_and(|(_, due)| *due <= now) {
                if let Some((p, _)) = back.pop_front() {
                    crossed.remove(&p);
                    slice.push((p, Reading::Value(PointValue::Number(50.0), Quality::Good)));
                    expect.push((band_id(p), false));
                }
                continue;
            }
            let p = points[rng.below(points.len())];
            if crossed.contains_key(&p) {
                continue;
            }
            if rng.below(100) == 0 {
                crossed.insert(p, ());
                back.push_back((p, now + Duration::from_secs(1)));
                slice.push((p, Reading::Value(PointValue::Number(95.0), Quality::Good)));
                expect.push((band_id(p), true));
            } else {
                let v = 30.0 + rng.below(4000) as f64 / 100.0;
                slice.push((p, Reading::Value(PointValue::Number(v), Quality::Good)));
            }
        }
        let at = Instant::now();
        store.update(&slice, SystemTime::now());
        crossings += expect.len();
        raises += expect.iter().filter(|(_, raised)| *raised).count();
        if let Some(pending) = pending {
            let mut map = lock(pending);
            for k in expect {
                map.insert(k, at);
            }
        }
    }
    (crossings, raises)
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// The BER encoding of an OID's arcs after the first two.
fn ber_arcs(arcs: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    for &a in arcs {
        let mut chunk = vec![(a & 0x7f) as u8];
        let mut v = a >> 7;
        while v > 0 {
            chunk.push(((v & 0x7f) as u8) | 0x80);
            v >>= 7;
        }
        chunk.reverse();
        out.extend(chunk);
    }
    out
}

/// The alarm id a trap carries (busbarAlarmEventId) and whether it is a raise (trap .0.3)
/// or a clear (.0.4); `None` for other notifications.
fn trap_alarm(datagram: &[u8], raised_oid: &[u8], cleared_oid: &[u8]) -> Option<(String, bool)> {
    let find = |needle: &[u8]| datagram.windows(needle.len()).any(|w| w == needle);
    let raised = if find(raised_oid) {
        true
    } else if find(cleared_oid) {
        false
    } else {
        return None;
    };
    // An OCTET STRING shorter than 128 bytes: its length is the byte before it.
    let start = datagram.windows(15).position(|w| w == b"threshold/band/")?;
    let len = usize::from(*datagram.get(start.checked_sub(1)?)?);
    let id = datagram.get(start..start + len)?;
    Some((String::from_utf8_lossy(id).into_owned(), raised))
}

struct Latencies {
    committed: Vec<Duration>,
    trapped: Vec<Duration>,
    /// The band's raises only: an event object returns to NORMAL when all of its point's
    /// alarms have cleared (the band's and the ramp's), not at the band's clear.
    evented: Vec<Duration>,
    lagged: u64,
}

/// The engine at 10,000 points and 1,000 changes/s, and (not quick) at ten times both.
pub async fn engine_rows(quick: bool) -> anyhow::Result<Vec<String>> {
    let mut out = engine_at(10_000, 1_000, Duration::from_secs(if quick { 3 } else { 10 })).await?;
    if !quick {
        out.extend(engine_at(100_000, 10_000, Duration::from_secs(10)).await?);
    }
    Ok(out)
}

async fn engine_at(points: usize, rate: usize, run: Duration) -> anyhow::Result<Vec<String>> {
    let dir = std::env::temp_dir().join(format!("busbar-bench-engine-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (mut config, total) = site(points, &dir.join("alarms.db"))?;
    let me = std::process::id();

    // The driver alone, over a store nobody listens to.
    let bare = Store::new(&config, 1 << 16);
    let bare_points = numeric(&bare, &config);
    bare.update(
        &bare_points
            .iter()
            .map(|&p| (p, Reading::Value(PointValue::Number(50.0), Quality::Good)))
            .collect::<Vec<_>>(),
        SystemTime::now(),
    );
    let cpu0 = cpu_seconds(me).unwrap_or(0.0);
    let t0 = Instant::now();
    drive(&bare, &bare_points, rate, run, None).await;
    let bare_cpu = (cpu_seconds(me).unwrap_or(0.0) - cpu0) / t0.elapsed().as_secs_f64();
    drop(bare);

    // The engine, its journal on disk, and an SNMP agent sending traps to a socket here.
    let traps = UdpSocket::bind("127.0.0.1:0")?;
    traps.set_read_timeout(Some(Duration::from_millis(200)))?;
    let trap_target = traps.local_addr()?;
    let root = busbar_bridge::northbound::snmp::mib::default_root();
    config.servers.snmp = Some(SnmpSettings {
        listen: "127.0.0.1:0".parse()?,
        root: root.clone(),
        contact: String::new(),
        location: String::new(),
        state_dir: dir.join("snmp"),
        communities: vec![SnmpCommunity {
            name: "public".into(),
            access: SnmpAccess::Read,
            sources: Cidr::parse("127.0.0.0/8").into_iter().collect(),
            view: Vec::new(),
        }],
        users: Vec::new(),
        traps: vec![(trap_target.to_string(), "public".into())],
        informs: Vec::new(),
    });
    // The BACnet device reporting the alarms as events to a socket here.
    let events = UdpSocket::bind("127.0.0.1:0")?;
    events.set_read_timeout(Some(Duration::from_millis(200)))?;
    let std::net::SocketAddr::V4(event_target) = events.local_addr()? else {
        anyhow::bail!("not an IPv4 socket");
    };
    let bacnet_settings = busbar_bridge::northbound::bacnet::BacnetSettings {
        listen: "127.0.0.1:0".parse()?,
        broadcast: std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(127, 255, 255, 255), 47808),
        device_instance: 100,
        device_name: "bench".into(),
        vendor_id: 0,
        location: String::new(),
        description: String::new(),
        max_foreign_devices: 0,
        max_cov_subscriptions: 1000,
        apdu: busbar_bridge::northbound::bacnet::ApduLimits::default(),
        password: None,
        virtual_network: None,
    };
    let rss0 = crate::proc_stats::rss_mib(me).unwrap_or(0.0);
    let store = Store::new(&config, 1 << 16);
    let all = numeric(&store, &config);
    store.update(
        &all.iter()
            .map(|&p| (p, Reading::Value(PointValue::Number(50.0), Quality::Good)))
            .collect::<Vec<_>>(),
        SystemTime::now(),
    );
    let settings = config
        .alarms
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no alarm settings"))?;
    let built = Instant::now();
    let alarms = Alarms::open(&config, store.clone(), &settings)?;
    let build_s = built.elapsed().as_secs_f64();
    let (stop, shutdown) = watch::channel(false);
    let evaluation = alarms.start(shutdown.clone());
    let snmp = config
        .servers
        .snmp
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no SNMP settings"))?;
    let (_handle, snmp_tasks) = busbar_bridge::northbound::snmp::start(
        &config,
        &snmp,
        store.clone(),
        Acquisition::detached(store.clone()),
        Some(alarms.clone()),
        shutdown.clone(),
    )
    .await?;
    let (bacnet, bacnet_tasks) = busbar_bridge::northbound::bacnet::start(
        &config,
        &bacnet_settings,
        store.clone(),
        Acquisition::detached(store.clone()),
        Some(alarms.clone()),
        shutdown.clone(),
    )
    .await?;
    crate::bacnet::register_recipient(bacnet.local, Severity::ALL.len() as u32, event_target).await?;
    // Event object instance -> its point's band alarm.
    let table = busbar_bridge::northbound::bacnet::objects::ObjectTable::build(&config, &bacnet_settings, &store);
    let band_of: HashMap<u32, String> = table
        .objects
        .iter()
        .filter_map(|o| Some((o.id.instance, format!("threshold/band/{}", store.meta(o.point)?.id))))
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let pending: Pending = Arc::default();
    let latencies = Arc::new(Mutex::new(Latencies {
        committed: Vec::new(),
        trapped: Vec::new(),
        evented: Vec::new(),
        lagged: 0,
    }));
    // Announcements (each follows its commit).
    let mut rx = alarms.subscribe();
    let (p1, l1) = (pending.clone(), latencies.clone());
    let mut stop_rx = shutdown.clone();
    let announced = tokio::spawn(async move {
        loop {
            let t = tokio::select! {
                t = rx.recv() => t,
                _ = stop_rx.changed() => return,
            };
            match t {
                Ok(t) => {
                    let at = Instant::now();
                    if let Some(since) = lock(&p1).get(&(t.alarm.clone(), t.kind == Kind::Raised)) {
                        lock(&l1).committed.push(at.duration_since(*since));
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => lock(&l1).lagged += n,
                Err(_) => return,
            }
        }
    });
    // Traps, on a thread of their own.
    let raised_oid = ber_arcs(&[root[2..].to_vec(), vec![0, 3]].concat());
    let cleared_oid = ber_arcs(&[root[2..].to_vec(), vec![0, 4]].concat());
    let (p2, l2) = (pending.clone(), latencies.clone());
    let receiving = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let still = receiving.clone();
    let receiver = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while still.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok(n) = traps.recv(&mut buf) else { continue };
            let at = Instant::now();
            if let Some(key) = trap_alarm(&buf[..n], &raised_oid, &cleared_oid) {
                if let Some(since) = lock(&p2).get(&key) {
                    lock(&l2).trapped.push(at.duration_since(*since));
                }
            }
        }
    });

    // EventNotifications, on a thread of their own.
    let (p3, l3) = (pending.clone(), latencies.clone());
    let still_events = receiving.clone();
    let event_receiver = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while still_events.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok(n) = events.recv(&mut buf) else { continue };
            let at = Instant::now();
            let Some((object, from, to)) = crate::bacnet::event_of(&buf[..n]) else {
                continue;
            };
            // The band's raise is the object's move into HIGH_LIMIT (from NORMAL, or from
            // OFFNORMAL when the ramp rule was already active on the point).
            let high = busbar_bacnet::consts::event_state::HIGH_LIMIT;
            let raise = to == high && from != Some(high);
            if let (true, Some(alarm)) = (raise, band_of.get(&object)) {
                if let Some(since) = lock(&p3).get(&(alarm.clone(), true)) {
                    lock(&l3).evented.push(at.duration_since(*since));
                }
            }
        }
    });

    let cpu0 = cpu_seconds(me).unwrap_or(0.0);
    let t0 = Instant::now();
    let (crossings, raises) = drive(&store, &all, rate, run, Some(&pending)).await;
    let engine_cpu = (cpu_seconds(me).unwrap_or(0.0) - cpu0) / t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    receiving.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = stop.send(true);
    let _ = receiver.join();
    let _ = event_receiver.join();
    let rss = crate::proc_stats::rss_mib(me).unwrap_or(0.0);
    let _ = announced.await;
    let _ = evaluation.await;
    for t in snmp_tasks.into_iter().chain(bacnet_tasks) {
        t.abort();
    }
    let mut l = std::mem::replace(
        &mut *lock(&latencies),
        Latencies {
            committed: Vec::new(),
            trapped: Vec::new(),
            evented: Vec::new(),
            lagged: 0,
        },
    );
    l.committed.sort_unstable();
    l.trapped.sort_unstable();
    l.evented.sort_unstable();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(vec![
        format!(
            "| alarms: engine, {total} points x 2 rules ({} alarms, built in {build_s:.1} s), {rate} changes/s for {}s | {:.0} % of a core for the process (driver, engine, journal, SNMP, BACnet events) | the driver alone over a store with no engine: {:.0} % | {crossings} crossings made; store, engine and agent add {:.0} MiB RSS |",
            2 * total,
            run.as_secs(),
            engine_cpu * 100.0,
            bare_cpu * 100.0,
            rss - rss0,
        ),
        format!(
            "| alarms: store update -> journal commit (announced) | p50 {:.1} ms, p99 {:.1} ms | {} of {crossings} transitions measured{} | each commit is a synchronous SQLite transaction (WAL, FULL) |",
            percentile(&l.committed, 0.5),
            percentile(&l.committed, 0.99),
            l.committed.len(),
            if l.lagged > 0 { format!(", {} announcements lagged", l.lagged) } else { String::new() },
        ),
        format!(
            "| alarms: store update -> SNMP trap received on loopback | p50 {:.1} ms, p99 {:.1} ms | {} of {crossings} traps received | target p99 < 50 ms |",
            percentile(&l.trapped, 0.5),
            percentile(&l.trapped, 0.99),
            l.trapped.len(),
        ),
        format!(
            "| alarms: store update -> BACnet EventNotification received on loopback | p50 {:.1} ms, p99 {:.1} ms | {} of {raises} raises received | unconfirmed, one recipient; every point an event object |",
            percentile(&l.evented, 0.5),
            percentile(&l.evented, 0.99),
            l.evented.len(),
        ),
    ])
}

/// A varied journal: 1000 devices, severities and kinds in turn, one transition every 2.6 s
/// (a million rows span a month).
fn history_row(i: usize) -> Transition {
    let kind = [Kind::Raised, Kind::Acknowledged, Kind::Cleared][i % 3];
    let device = format!("m{}", (i / 3) % 1000);
    Transition {
        seq: 0,
        alarm: format!("threshold/band/{device}/v{}", i % 7),
        kind,
        time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_790_000_000_000 + i as u64 * 2_600),
        source: Source::Threshold,
        severity: Severity::ALL[(i / 3) % Severity::ALL.len()],
        level: (kind != Kind::Cleared).then_some(Level::High),
        device: device.clone(),
        point: format!("v{}", i % 7),
        value: Some(95.0),
        message: format!("{device} Phase-neutral voltage 95 V above 90 V"),
        actor: Actor::engine(),
        state: AlarmState {
            active: kind != Kind::Cleared,
            acknowledged: kind != Kind::Raised,
            shelved_until_ms: None,
            disabled: false,
        },
    }
}

/// Query times at `rows` journal rows (median of 5 runs each).
pub fn query_rows(quick: bool) -> anyhow::Result<Vec<String>> {
    let rows = if quick { 100_000 } else { 1_000_000 };
    let dir = std::env::temp_dir().join(format!("busbar-bench-queries-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut journal = Journal::open(&dir.join("alarms.db"))?;
    let t0 = Instant::now();
    for start in (0..rows).step_by(10_000) {
        journal.append((start..(start + 10_000).min(rows)).map(history_row).collect())?;
    }
    let fill = rows as f64 / t0.elapsed().as_secs_f64();
    let middle = 1_790_000_000_000i64 + (rows as i64 / 2) * 2_600;
    let queries: Vec<(&str, Filter)> = vec![
        (
            "newest 100",
            Filter {
                limit: 100,
                ..Filter::default()
            },
        ),
        (
            "one device, newest 100",
            Filter {
                device: Some("m517".into()),
                limit: 100,
                ..Filter::default()
            },
        ),
        (
            "critical and above, newest 100",
            Filter {
                min_severity: Some(Severity::Critical),
                limit: 100,
                ..Filter::default()
            },
        ),
        (
            "one hour mid-history",
            Filter {
                from_ms: Some(middle),
                to_ms: Some(middle + 3_600_000),
                limit: 5_000,
                ..Filter::default()
            },
        ),
        (
            "acknowledgements of one device",
            Filter {
                device: Some("m517".into()),
                kind: Some(Kind::Acknowledged),
                limit: 100,
                ..Filter::default()
            },
        ),
        (
            "one alarm's history",
            Filter {
                alarm: Some("threshold/band/m517/v3".into()),
                limit: 100,
                ..Filter::default()
            },
        ),
        (
            "page 100 (offset 10,000)",
            Filter {
                limit: 100,
                offset: 10_000,
                ..Filter::default()
            },
        ),
    ];
    let mut out = Vec::new();
    let mut cells = Vec::new();
    for (name, f) in &queries {
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..5 {
            let t = Instant::now();
            found = journal.query(f)?.len();
            times.push(t.elapsed());
        }
        times.sort_unstable();
        cells.push(format!(
            "{name}: {:.1} ms ({found} rows)",
            times[2].as_secs_f64() * 1000.0
        ));
    }
    out.push(format!(
        "| alarms: journal queries at {rows} rows (filled at {fill:.0} rows/s, 10,000 per commit) | {} | median of 5 runs each, through `Journal::query` | indexes by time, device+time, severity+time, alarm |",
        cells.join("; ")
    ));
    drop(journal);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_are_encoded_like_ber_and_traps_are_recognised() {
        // 1.3.6.1.4.1.32473.0.3 after the first two arcs.
        let raised = ber_arcs(&[6, 1, 4, 1, 32473, 0, 3]);
        assert_eq!(raised, [6, 1, 4, 1, 0x81, 0xFD, 0x59, 0, 3]);
        let cleared = ber_arcs(&[6, 1, 4, 1, 32473, 0, 4]);
        let mut datagram = vec![0x30, 0x06];
        datagram.extend(&raised);
        datagram.extend(b"\x04\x14threshold/band/m3/v10\x02\x02");
        assert_eq!(
            trap_alarm(&datagram, &raised, &cleared),
            Some(("threshold/band/m3/v1".into(), true))
        );
        assert_eq!(trap_alarm(b"coldStart", &raised, &cleared), None);
    }
}
