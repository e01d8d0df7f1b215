//! History to InfluxDB (docs/influxdb.md): store changes become line protocol
//! ([`schema`]), go to a disk buffer first ([`buffer`]) and are posted oldest first
//! ([`writer`]); a batch leaves the buffer only when InfluxDB has answered for it. [`section`]
//! is its configuration, start and counters.

pub mod buffer;
pub mod schema;
pub mod section;
pub mod writer;

pub use section::{InfluxApi, InfluxDb, InfluxDoc, InfluxSettings};

use crate::alarms::Transition;
use crate::store::{Notice, Store};
use buffer::{DiskBuffer, Segment};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use writer::{Outcome, Writer};

/// Counters for /metrics.
#[derive(Debug, Default)]
pub struct HistoryStats {
    /// Lines in the buffer, not yet acknowledged.
    pub queued: AtomicU64,
    pub buffer_bytes: AtomicU64,
    pub written: AtomicU64,
    pub retries: AtomicU64,
    /// Lines InfluxDB refused (4xx).
    pub refused: AtomicU64,
    /// Lines dropped because the buffer was over its quota.
    pub dropped_quota: AtomicU64,
    pub write_seconds_sum_us: AtomicU64,
    pub writes: AtomicU64,
}

fn lock(b: &Mutex<DiskBuffer>) -> std::sync::MutexGuard<'_, DiskBuffer> {
    b.lock().unwrap_or_else(|p| p.into_inner())
}

/// Start the feeder (store -> buffer) and the sender (buffer -> InfluxDB).
pub fn start(
    s: &InfluxSettings,
    store: Arc<Store>,
    alarms: Option<broadcast::Receiver<Transition>>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(Arc<HistoryStats>, Vec<JoinHandle<()>>)> {
    let (buffer, stats, sender) = start_sender(s, shutdown.clone())?;
    let feeder = tokio::spawn(feed(
        store,
        buffer,
        stats.clone(),
        Pace {
            interval: s.batch_interval,
            batch_lines: s.batch_lines,
            snapshot: s.snapshot_interval,
        },
        alarms,
        shutdown,
    ));
    Ok((stats, vec![feeder, sender]))
}

/// The next alarm transition, or never when there is no alarm service.
async fn next_alarm(
    rx: &mut Option<broadcast::Receiver<Transition>>,
) -> Result<Transition, broadcast::error::RecvError> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// The disk buffer, shared by the feeder and the sender.
pub type SharedBuffer = Arc<Mutex<DiskBuffer>>;

/// The buffer, and the sender that empties it into InfluxDB (what is left from an earlier run
/// first).
pub fn start_sender(
    s: &InfluxSettings,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(SharedBuffer, Arc<HistoryStats>, JoinHandle<()>)> {
    let buffer = DiskBuffer::open(&s.buffer_dir, s.buffer_quota_bytes, s.segment_bytes)
        .map_err(|e| anyhow::anyhow!("history: cannot open the buffer {}: {e}", s.buffer_dir.display()))?;
    if buffer.lines() > 0 {
        tracing::info!(
            "history: {} buffered lines from a previous run will be sent first",
            buffer.lines()
        );
    }
    let stats = Arc::new(HistoryStats::default());
    publish(&buffer, &stats);
    let buffer = Arc::new(Mutex::new(buffer));
    let writer = Writer::new(s)?;
    let sender = tokio::spawn(send(writer, buffer.clone(), stats.clone(), shutdown));
    Ok((buffer, stats, sender))
}

fn publish(b: &DiskBuffer, stats: &HistoryStats) {
    stats.queued.store(b.lines(), Ordering::Relaxed);
    stats.buffer_bytes.store(b.bytes(), Ordering::Relaxed);
}

/// When the feeder writes a batch, and when it writes everything again.
struct Pace {
    interval: Duration,
    batch_lines: usize,
    snapshot: Option<Duration>,
}

async fn feed(
    store: Arc<Store>,
    buffer: Arc<Mutex<DiskBuffer>>,
    stats: Arc<HistoryStats>,
    pace: Pace,
    mut alarms: Option<broadcast::Receiver<Transition>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Pace {
        interval,
        batch_lines,
        snapshot,
    } = pace;
    let mut changes = store.subscribe();
    let mut events: Vec<Transition> = Vec::new();
    let mut pending = vec![false; store.len()];
    let mut changed: Vec<u32> = Vec::new();
    let mut online: Vec<Option<bool>> = vec![None; store.device_count()];
    // Every point once at start: the first values of the run.
    let all = |pending: &mut Vec<bool>, changed: &mut Vec<u32>| {
        pending.iter_mut().for_each(|f| *f = true);
        *changed = (0..store.len() as u32).collect();
    };
    all(&mut pending, &mut changed);
    let mut tick = tokio::time::interval(interval);
    let snapshot_every = snapshot.unwrap_or(Duration::from_secs(86_400 * 365));
    let mut snapshot_tick = tokio::time::interval_at(tokio::time::Instant::now() + snapshot_every, snapshot_every);
    loop {
        let stop = tokio::select! {
            n = changes.next() => {
                match n {
                    Notice::Changed(p) => {
                        if let Some(f) = pending.get_mut(p as usize) {
                            if !*f {
                                *f = true;
                                changed.push(p);
                            }
                        }
                    }
                    Notice::Resync => all(&mut pending, &mut changed),
                    Notice::Closed => return,
                }
                if changed.len() < batch_lines {
                    continue;
                }
                false
            }
            t = next_alarm(&mut alarms) => {
                match t {
                    Ok(t) => events.push(t),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("history: {n} alarm transitions came too fast to be written (they are in the alarm journal)");
                    }
                    Err(broadcast::error::RecvError::Closed) => alarms = None,
                }
                continue;
            }
            _ = tick.tick() => false,
            _ = snapshot_tick.tick(), if snapshot.is_some() => {
                // Everything again, so a dashboard's time range starts with values.
                all(&mut pending, &mut changed);
                online.iter_mut().for_each(|o| *o = None);
                false
            }
            _ = shutdown.changed() => true,
        };
        let mut out = Vec::with_capacity(changed.len() * 48);
        let mut lines = schema::point_lines(&store, &changed, &mut out);
        for p in changed.drain(..) {
            if let Some(f) = pending.get_mut(p as usize) {
                *f = false;
            }
        }
        for t in events.drain(..) {
            lines += schema::alarm_line(&store.site_id, &t, &mut out);
        }
        let now = SystemTime::now();
        for (d, last) in online.iter_mut().enumerate() {
            let is = store.status(d).filter(|s| s.polls > 0).map(|s| s.online);
            if is.is_some() && is != *last {
                *last = is;
                lines += schema::status_line(&store, d, now, &mut out);
            }
        }
        {
            let mut b = lock(&buffer);
            match b.append(&out, lines) {
                Ok(dropped) if dropped > 0 => {
                    stats.dropped_quota.fetch_add(dropped, Ordering::Relaxed);
                    tracing::warn!(
                        "history: the buffer is over its quota of {} bytes: dropped the {dropped} oldest lines (busbar_history_dropped_lines_total)",
                        b.quota()
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!("history: cannot write the buffer: {e} ({lines} lines lost)"),
            }
            b.seal();
            publish(&b, &stats);
        }
        if stop {
            return;
        }
    }
}

/// Batches posted at once. While InfluxDB parses one, the next is read, compressed and on its
/// way; segments still leave the buffer oldest first, each once InfluxDB has answered for it and
/// for every older one.
const IN_FLIGHT: usize = 2;

/// A segment being posted.
struct Flight {
    segment: Segment,
    started: Instant,
    post: JoinHandle<Outcome>,
}

/// The segment's complete lines (a line cut short by a crash has no newline: that fragment is
/// dropped), or `None` when the file cannot be read.
fn complete_lines(seg: &Segment) -> Option<Vec<u8>> {
    let mut data = match std::fs::read(&seg.path) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("history: cannot read {}: {e}", seg.path.display());
            return None;
        }
    };
    match data.iter().rposition(|b| *b == b'\n') {
        Some(last) => data.truncate(last + 1),
        None => data.clear(),
    }
    Some(data)
}

/// Start posting the oldest segments that are not in flight yet, up to [`IN_FLIGHT`].
fn take_off(writer: &Arc<Writer>, buffer: &SharedBuffer, flights: &mut VecDeque<Flight>) {
    while flights.len() < IN_FLIGHT {
        let after = flights.back().map(|f| f.segment.id);
        let Some(segment) = lock(buffer).next_after(after).cloned() else {
            return;
        };
        let Some(data) = complete_lines(&segment) else {
            let _ = lock(buffer).remove(segment.id);
            continue;
        };
        let writer = writer.clone();
        let post = tokio::spawn(async move {
            if data.is_empty() {
                Outcome::Written
            } else {
                writer.post(&data).await
            }
        });
        flights.push_back(Flight {
            segment,
            started: Instant::now(),
            post,
        });
    }
}

async fn send(writer: Writer, buffer: SharedBuffer, stats: Arc<HistoryStats>, mut shutdown: watch::Receiver<bool>) {
    let writer = Arc::new(writer);
    let mut flights: VecDeque<Flight> = VecDeque::with_capacity(IN_FLIGHT);
    let mut backoff = Duration::from_secs(1);
    loop {
        take_off(&writer, &buffer, &mut flights);
        let Some(Flight {
            segment: seg,
            started,
            post,
        }) = flights.pop_front()
        else {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                _ = shutdown.changed() => return,
            }
        };
        // The oldest answer first: a segment leaves the buffer only after every older one.
        let outcome = tokio::select! {
            o = post => o.unwrap_or_else(|e| Outcome::Retry { reason: format!("the post failed: {e}") }),
            _ = shutdown.changed() => {
                // Unanswered segments stay in the buffer for the next run.
                flights.iter().for_each(|f| f.post.abort());
                return;
            }
        };
        match outcome {
            Outcome::Written => {
                stats.writes.fetch_add(1, Ordering::Relaxed);
                stats
                    .write_seconds_sum_us
                    .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                stats.written.fetch_add(seg.lines, Ordering::Relaxed);
                backoff = Duration::from_secs(1);
                let mut b = lock(&buffer);
                if let Err(e) = b.remove(seg.id) {
                    tracing::error!("history: cannot remove {}: {e}", seg.path.display());
                }
                publish(&b, &stats);
            }
            Outcome::Refused { status, message } => {
                stats.refused.fetch_add(seg.lines, Ordering::Relaxed);
                tracing::warn!(
                    "history: InfluxDB refused a batch of {} lines (HTTP {status}: {}); valid lines of a partial write are kept by InfluxDB, the batch is not retried",
                    seg.lines,
                    message.trim()
                );
                let mut b = lock(&buffer);
                let _ = b.remove(seg.id);
                publish(&b, &stats);
            }
            Outcome::Retry { reason } => {
                // Newer batches in flight are abandoned and stay in the buffer: they are posted
                // again after this one (InfluxDB keeps one value per series and time, so a batch
                // written twice holds nothing twice).
                for f in flights.drain(..) {
                    f.post.abort();
                }
                stats.retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "history: InfluxDB unavailable ({reason}); {} lines kept, retrying in {backoff:?}",
                    lock(&buffer).lines()
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{PointValue, Reading};
    use busbar_core::quality::Quality;

    /// On tokio's paused clock: the sleeps below advance virtual time only, so the count of
    /// snapshot ticks in the window is exact, whatever the machine's load.
    #[tokio::test(start_paused = true)]
    async fn unchanged_points_are_written_again_at_each_snapshot() {
        let profiles = busbar_core::profile::embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
        let text = "site: { name: S, id: s }\nconnections: [{ name: gw, tcp: { host: h, port: 1 } }]\ndevices:\n  \
                    - { name: m, profile: legrand-emdx3, connection: gw, unit_id: 1 }\n";
        let config = crate::config::parse_config("t.yaml", text, &profiles, "x").unwrap_or_else(|e| panic!("{e}"));
        let store = Store::new(&config, 16);
        let v1 = store.find("m/v1").unwrap_or(0);
        store.update(
            &[(v1, Reading::Value(PointValue::Number(230.0), Quality::Good))],
            SystemTime::now(),
        );
        let dir = std::env::temp_dir().join(format!("busbar-snapshot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let buffer = Arc::new(Mutex::new(
            DiskBuffer::open(&dir, 1 << 20, 1 << 16).unwrap_or_else(|e| panic!("{e}")),
        ));
        let stats = Arc::new(HistoryStats::default());
        let pace = |snapshot| Pace {
            interval: Duration::from_millis(10),
            batch_lines: 1000,
            snapshot,
        };
        // Without snapshots: the one line of the start, nothing after (nothing changes).
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(feed(
            store.clone(),
            buffer.clone(),
            stats.clone(),
            pace(None),
            None,
            shutdown,
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = stop.send(true);
        let _ = task.await;
        let once = lock(&buffer).lines();
        assert!(once >= 1, "the start writes every point");
        // With a snapshot every 50 ms: the unchanged v1 again and again.
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(feed(
            store.clone(),
            buffer.clone(),
            stats,
            pace(Some(Duration::from_millis(50))),
            None,
            shutdown,
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = stop.send(true);
        let _ = task.await;
        let again = lock(&buffer).lines() - once;
        assert!(
            again >= once * 4,
            "snapshots rewrote the point: {once} lines at start, {again} in 300 ms"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A minimal InfluxDB stand-in for the sender's logic: answers 503 to the first write of the
    /// oldest segment (line `m f=0 0`), whenever it arrives, and 204 to everything else, and
    /// keeps every line it accepted (bodies gunzipped).
    async fn flaky_influx() -> (String, Arc<Mutex<(u32, Vec<String>)>>) {
        use axum::routing::post;
        let seen = Arc::new(Mutex::new((0u32, Vec::new())));
        let state = seen.clone();
        let app = axum::Router::new().route(
            "/write",
            post(move |body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    let mut text = String::new();
                    let _ = std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text);
                    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                    if text.contains("m f=0 0") && s.0 == 0 {
                        s.0 += 1;
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    s.1.extend(text.lines().map(str::to_string));
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let url = format!("http://{}", listener.local_addr().unwrap_or_else(|e| panic!("{e}")));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (url, seen)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_batch_keeps_every_newer_one_and_nothing_is_lost() {
        let (url, seen) = flaky_influx().await;
        let dir = std::env::temp_dir().join(format!("busbar-sender-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut settings = crate::demo::influx_from_url(&format!("{url}?db=t"), None, None, None, dir.clone(), 1.0)
            .unwrap_or_else(|e| panic!("{e}"));
        settings.segment_bytes = 1;
        {
            // Five sealed one-line segments, as an outage leaves them.
            let mut b = DiskBuffer::open(&dir, 1 << 20, 1).unwrap_or_else(|e| panic!("{e}"));
            for i in 0..5 {
                b.append(format!("m f={i} {i}\n").as_bytes(), 1)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        }
        let (_stop, shutdown) = watch::channel(false);
        let (buffer, stats, _sender) = start_sender(&settings, shutdown).unwrap_or_else(|e| panic!("{e}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while stats.retries.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        assert_eq!(stats.retries.load(Ordering::Relaxed), 1, "the first write failed");
        assert_eq!(
            lock(&buffer).lines(),
            5,
            "no segment left the buffer before the oldest was written"
        );
        while stats.queued.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(lock(&buffer).lines(), 0, "every segment written and removed");
        let mut lines = seen.lock().unwrap_or_else(|p| p.into_inner()).1.clone();
        lines.sort();
        lines.dedup();
        assert_eq!(
            lines,
            (0..5).map(|i| format!("m f={i} {i}")).collect::<Vec<_>>(),
            "nothing lost"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
