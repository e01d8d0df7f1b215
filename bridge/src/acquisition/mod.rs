//! Acquisition: one task per connection (a Modbus-TCP gateway or an RTU bus). Requests on a
//! connection are serialised; all devices behind it share it; connections run in parallel. A
//! device that times out costs only its own timeout (times its retries), then is retried with
//! exponential backoff and jitter; after a timeout the TCP connection is rebuilt, and
//! transaction ids are checked so a late reply is never taken for the next request's. Writes
//! from northbound servers go to the connection task that owns the device.

pub mod decode;
pub mod metrics;

mod transport;

use crate::config::{Config, Device, Link};
use crate::store::{PointIdx, PointMeta, PointValue, Reading, Store};
use busbar_core::encoding;
use busbar_core::profile::{DataType, Kind, Table};
use busbar_core::quality::Quality;
use busbar_modbus::codec::{Request, Response};
use busbar_modbus::plan::{plan, ReadBlock};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use transport::{Transport, TransportError};

/// The outcome of a write, returned to the client that asked.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum WriteOutcome {
    /// Written and read back.
    Done { read_back: f64 },
    /// The device answered with an exception.
    Refused { exception: String },
    /// The device did not answer in time.
    Timeout,
    /// The connection failed.
    CommFailure { error: String },
    /// Writes are not enabled for this point (globally or per point), or it is read-only.
    NotWritable,
    /// The value is outside the point's range or labels.
    InvalidValue { reason: String },
}

struct WriteCmd {
    point: PointIdx,
    value: f64,
    reply: oneshot::Sender<WriteOutcome>,
}

/// The writes to the devices of an internal connection ([`Link::Internal`]), for the task of
/// the bridge that owns them; they come through [`Acquisition::write`] like any other.
pub struct LocalWrites {
    rx: mpsc::Receiver<WriteCmd>,
}

/// One write to a device of the bridge: answer it with [`LocalWrite::answer`].
pub struct LocalWrite {
    pub point: PointIdx,
    pub value: f64,
    reply: oneshot::Sender<WriteOutcome>,
}

impl LocalWrites {
    /// The next write (None: every writer is gone).
    pub async fn next(&mut self) -> Option<LocalWrite> {
        let c = self.rx.recv().await?;
        Some(LocalWrite {
            point: c.point,
            value: c.value,
            reply: c.reply,
        })
    }
}

impl LocalWrite {
    pub fn answer(self, outcome: WriteOutcome) {
        // The writer may have given up waiting; nothing to do then.
        let _ = self.reply.send(outcome);
    }
}

/// Handle to the running acquisition: where writes go.
#[derive(Clone)]
pub struct Acquisition {
    store: Arc<Store>,
    /// Write queue of each connection.
    writers: Vec<mpsc::Sender<WriteCmd>>,
    /// Connection of each device.
    device_connection: Vec<usize>,
    /// Longest a write may take per device (timeout x tries x 2 requests + margin).
    write_deadline: Vec<Duration>,
    /// For checking values before a write (none when detached).
    config: Option<Arc<Config>>,
}

impl Acquisition {
    /// An acquisition with no connection behind it: every write fails. For tests and fuzzing of
    /// the northbound servers.
    pub fn detached(store: Arc<Store>) -> Acquisition {
        Acquisition {
            store,
            writers: Vec::new(),
            device_connection: Vec::new(),
            write_deadline: Vec::new(),
            config: None,
        }
    }

    /// Whether `value` may be written to `point` (writable, finite, within range and labels),
    /// checked without touching the device: for protocols that validate before committing.
    pub fn accepts(&self, point: PointIdx, value: f64) -> bool {
        let Some(meta) = self.store.meta(point) else {
            return false;
        };
        match &self.config {
            Some(c) => meta.writable && invalid_value(c, meta, value).is_none(),
            None => meta.writable && value.is_finite(),
        }
    }

    /// Write `value` (engineering units) to a point and wait for the device's outcome.
    pub async fn write(&self, point: PointIdx, value: f64) -> WriteOutcome {
        let Some(meta) = self.store.meta(point) else {
            return WriteOutcome::NotWritable;
        };
        if !meta.writable {
            return WriteOutcome::NotWritable;
        }
        let Some(tx) = self
            .device_connection
            .get(meta.device)
            .and_then(|c| self.writers.get(*c))
        else {
            return WriteOutcome::NotWritable;
        };
        let (reply, rx) = oneshot::channel();
        if tx.send(WriteCmd { point, value, reply }).await.is_err() {
            return WriteOutcome::CommFailure {
                error: "acquisition stopped".into(),
            };
        }
        let deadline = self
            .write_deadline
            .get(meta.device)
            .copied()
            .unwrap_or(Duration::from_secs(10));
        match tokio::time::timeout(deadline, rx).await {
            Ok(Ok(o)) => o,
            Ok(Err(_)) => WriteOutcome::CommFailure {
                error: "acquisition stopped".into(),
            },
            Err(_) => WriteOutcome::Timeout,
        }
    }
}

struct DeviceRun {
    index: usize,
    blocks: Vec<ReadBlock>,
    next: tokio::time::Instant,
    polls: u64,
    /// Read the identification blocks at the next poll: at the first, and after the device
    /// was lost (its nameplate went bad with everything else), not only every 100th.
    identity_due: bool,
}

/// What [`start`] started: the write path, the tasks, and the writes of each internal
/// connection (by connection index) for the bridge's task that owns its devices.
pub struct Started {
    pub acq: Acquisition,
    pub tasks: Vec<JoinHandle<()>>,
    pub local: HashMap<usize, LocalWrites>,
}

/// Start one task per connection, and the staleness sweeper.
pub fn start(config: &Config, store: Arc<Store>, shutdown: watch::Receiver<bool>) -> Started {
    let mut writers = Vec::new();
    let mut tasks = Vec::new();
    let mut local = HashMap::new();
    let config = Arc::new(config.clone());
    for (c, conn) in config.connections.iter().enumerate() {
        let (tx, rx) = mpsc::channel(64);
        writers.push(tx);
        if conn.link == Link::Internal {
            local.insert(c, LocalWrites { rx });
            continue;
        }
        let members: Vec<usize> = config
            .devices
            .iter()
            .enumerate()
            .filter(|(_, d)| d.connection == c)
            .map(|(i, _)| i)
            .collect();
        if members.is_empty() {
            continue;
        }
        let Some(transport) = Transport::new(&conn.link) else {
            continue;
        };
        let task = ConnectionTask {
            name: conn.name.clone(),
            config: config.clone(),
            store: store.clone(),
            transport,
        };
        tasks.push(tokio::spawn(task.run(members, rx, shutdown.clone())));
    }
    // Staleness: a good value older than N poll intervals becomes stale.
    let limits: Vec<Duration> = config
        .devices
        .iter()
        .map(|d| d.poll_interval * d.stale_after_polls)
        .collect();
    let st = store.clone();
    let mut stop = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = tick.tick() => st.mark_stale(&limits),
                _ = stop.changed() => break,
            }
        }
    }));
    let acq = Acquisition {
        store,
        writers,
        device_connection: config.devices.iter().map(|d| d.connection).collect(),
        write_deadline: config
            .devices
            .iter()
            .map(|d| d.timeout * (d.retries + 1) * 3 + Duration::from_secs(1))
            .collect(),
        config: Some(config.clone()),
    };
    Started { acq, tasks, local }
}

struct ConnectionTask {
    name: String,
    config: Arc<Config>,
    store: Arc<Store>,
    transport: Transport,
}

/// Cheap jitter in [-0.2, 0.2] (not for anything secret).
fn jitter() -> f64 {
    let n = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let x = (u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f64 / (1u64 << 24) as f64;
    0.4 * x - 0.2
}

/// The wait before polling a failing device again: its poll interval doubled per consecutive
/// failure, capped at 16 intervals (within 1..60 s), stretched by `jitter` (-0.2..0.2) so that
/// devices behind one gateway do not retry in step.
fn backoff(poll_interval: Duration, failures: u32, jitter: f64) -> Duration {
    let base = poll_interval.as_secs_f64() * 2f64.powi(failures.saturating_sub(1).min(10) as i32);
    let cap = (poll_interval.as_secs_f64() * 16.0).clamp(1.0, 60.0);
    Duration::from_secs_f64(base.min(cap) * (1.0 + jitter.clamp(-0.2, 0.2)))
}

enum PollError {
    /// The device did not answer (timeout, connection): it is offline.
    Silent(String),
}

impl ConnectionTask {
    async fn run(
        mut self,
        members: Vec<usize>,
        mut writes: mpsc::Receiver<WriteCmd>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let now = tokio::time::Instant::now();
        let n = members.len().max(1) as u32;
        let mut runs: Vec<DeviceRun> = members
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                let dev = &self.config.devices[d];
                // Spread the first polls over one interval.
                DeviceRun {
                    index: d,
                    blocks: plan(&dev.profile, &dev.acquired),
                    next: now + dev.poll_interval * i as u32 / n,
                    polls: 0,
                    identity_due: true,
                }
            })
            .collect();
        tracing::info!(connection = %self.name, devices = runs.len(), "acquisition started");
        loop {
            let Some(i) = (0..runs.len()).min_by_key(|&i| runs[i].next) else {
                return;
            };
            let due = runs[i].next;
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                Some(cmd) = writes.recv() => {
                    let outcome = self.write(cmd.point, cmd.value).await;
                    let _ = cmd.reply.send(outcome);
                }
                _ = tokio::time::sleep_until(due) => {
                    self.poll(&mut runs[i], due).await;
                }
            }
        }
        tracing::info!(connection = %self.name, "acquisition stopped");
    }

    async fn poll(&mut self, run: &mut DeviceRun, due: tokio::time::Instant) {
        // The config is shared (Arc), so borrowing a device from our own handle to it costs
        // nothing per poll and leaves `self` free for the transport.
        let config = Arc::clone(&self.config);
        let dev = &config.devices[run.index];
        let started = tokio::time::Instant::now();
        let late = started.saturating_duration_since(due).as_secs_f64();
        let mut readings: Vec<(PointIdx, Reading)> = Vec::with_capacity(dev.acquired.len());
        let mut exception = None;
        let mut rtt_sum = Duration::ZERO;
        let mut result = Ok(());
        let identity_now = run.identity_due || run.polls.is_multiple_of(100);
        let mut identity_failed = false;
        for b in &run.blocks {
            if b.identity && !identity_now {
                continue;
            }
            let req = b.request();
            let t0 = Instant::now();
            match self.request(dev, &req).await {
                Ok(response @ (Response::Registers(_) | Response::Bits(_))) => {
                    rtt_sum += t0.elapsed();
                    let words = match response {
                        Response::Registers(w) => w,
                        Response::Bits(bits) => bits.iter().map(|b| u16::from(*b)).collect(),
                        _ => Vec::new(),
                    };
                    for &k in &b.points {
                        if let Some(p) = self.store.point_of(run.index, k) {
                            readings.push((p, decode::decode_point(dev, k, b.address, &words)));
                        }
                    }
                }
                Ok(Response::Exception(e)) => {
                    rtt_sum += t0.elapsed();
                    exception = Some(format!("{e} reading {} {}+{}", b.table.as_str(), b.address, b.count));
                    identity_failed |= b.identity;
                    for &k in &b.points {
                        if let Some(p) = self.store.point_of(run.index, k) {
                            readings.push((p, Reading::Failed(Quality::CommFailure)));
                        }
                    }
                }
                Ok(Response::Written) => {}
                Err(TransportError::Timeout) => {
                    result = Err(PollError::Silent(format!(
                        "no answer within {:?} ({} tries)",
                        dev.timeout,
                        dev.retries + 1
                    )));
                    break;
                }
                Err(e) => {
                    result = Err(PollError::Silent(e.to_string()));
                    break;
                }
            }
        }
        run.polls += 1;
        let now = tokio::time::Instant::now();
        let mut status = match self.store.status(run.index) {
            Some(s) => s,
            None => return,
        };
        status.polls += 1;
        status.jitter_sum_s += late;
        status.jitter_max_s = status.jitter_max_s.max(late);
        match result {
            Ok(()) => {
                if !status.online {
                    tracing::info!(device = %dev.name, "device online");
                }
                status.online = true;
                status.consecutive_failures = 0;
                status.last_good_read = Some(SystemTime::now());
                status.record_rtt(rtt_sum / run.blocks.len().max(1) as u32);
                status.last_error = exception.clone();
                if let Some(e) = &exception {
                    status.failures += 1;
                    tracing::warn!(device = %dev.name, "exception: {e}");
                }
                drop(status);
                run.identity_due = identity_failed;
                self.store.update(&readings, SystemTime::now());
                // Keep the phase; if far behind, start again from now.
                let next = due + dev.poll_interval;
                run.next = if next < now { now + dev.poll_interval / 10 } else { next };
            }
            Err(PollError::Silent(err)) => {
                status.failures += 1;
                status.consecutive_failures += 1;
                if status.online || status.consecutive_failures == 1 {
                    tracing::warn!(device = %dev.name, "device offline: {err}");
                }
                status.online = false;
                status.last_error = Some(err);
                let failures = status.consecutive_failures;
                drop(status);
                run.identity_due = true;
                let failed: Vec<(PointIdx, Reading)> = dev
                    .acquired
                    .iter()
                    .filter_map(|&k| self.store.point_of(run.index, k))
                    .map(|p| (p, Reading::Failed(Quality::CommFailure)))
                    .collect();
                self.store.update(&failed, SystemTime::now());
                run.next = now + backoff(dev.poll_interval, failures, jitter());
            }
        }
    }

    /// One request with the device's timeout and retries.
    async fn request(&mut self, dev: &Device, req: &Request) -> Result<Response, TransportError> {
        let mut last = TransportError::Timeout;
        for _ in 0..=dev.retries {
            match self.transport.call(dev.unit_id, req, dev.timeout).await {
                Ok(r) => return Ok(r),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn write(&mut self, point: PointIdx, value: f64) -> WriteOutcome {
        let Some(meta) = self.store.meta(point).cloned() else {
            return WriteOutcome::NotWritable;
        };
        let config = Arc::clone(&self.config);
        let dev = &config.devices[meta.device];
        let Some(p) = dev.profile.points.get(meta.profile_point) else {
            return WriteOutcome::NotWritable;
        };
        if !meta.writable {
            return WriteOutcome::NotWritable;
        }
        if let Some(reason) = invalid_value(&config, &meta, value) {
            return WriteOutcome::InvalidValue { reason };
        }
        let r = &p.register;
        let req = if r.table == Table::Coil {
            Request::WriteSingleCoil {
                address: r.address,
                value: value.round() != 0.0,
            }
        } else {
            let mut words = vec![0u16; usize::from(r.data_type.words())];
            if let DataType::Bit(_) = r.data_type {
                // Read-modify-write: keep the register's other bits.
                match self
                    .request(
                        dev,
                        &Request::ReadHoldingRegisters {
                            address: r.address,
                            count: 1,
                        },
                    )
                    .await
                {
                    Ok(Response::Registers(w)) if w.len() == 1 => words[0] = w[0],
                    other => return outcome_of(other, ""),
                }
            }
            if let Err(e) = encoding::encode(r, p.kind, value, &mut words) {
                return WriteOutcome::InvalidValue { reason: e.to_string() };
            }
            if words.len() == 1 {
                Request::WriteSingleRegister {
                    address: r.address,
                    value: words[0],
                }
            } else {
                Request::WriteMultipleRegisters {
                    address: r.address,
                    values: words,
                }
            }
        };
        match self.request(dev, &req).await {
            Ok(Response::Written) => {}
            other => {
                let outcome = outcome_of(other, "");
                tracing::warn!(device = %dev.name, point = %p.id, value, "write failed: {outcome:?}");
                return outcome;
            }
        }
        // Read back what the device now holds.
        let read = if r.table == Table::Coil {
            Request::ReadCoils {
                address: r.address,
                count: 1,
            }
        } else {
            Request::ReadHoldingRegisters {
                address: r.address,
                count: r.data_type.words(),
            }
        };
        let words = match self.request(dev, &read).await {
            Ok(Response::Registers(w)) => w,
            Ok(Response::Bits(b)) => b.iter().map(|x| u16::from(*x)).collect(),
            other => return outcome_of(other, "read back: "),
        };
        let reading = decode::decode_point(dev, meta.profile_point, r.address, &words);
        let read_back = match &reading {
            Reading::Value(PointValue::Number(v), _) => *v,
            _ => f64::NAN,
        };
        self.store.update(&[(point, reading)], SystemTime::now());
        tracing::info!(device = %dev.name, point = %p.id, value, read_back, "write done");
        WriteOutcome::Done { read_back }
    }
}

/// Why `value` cannot be written to a point: not a number, not one of its labels, or outside
/// its range. `None` when it may be written.
pub fn invalid_value(config: &Config, meta: &PointMeta, value: f64) -> Option<String> {
    let dev = config.devices.get(meta.device)?;
    let p = dev.profile.points.get(meta.profile_point)?;
    if !value.is_finite() {
        return Some("not a number".into());
    }
    if matches!(p.kind, Kind::Enum | Kind::Binary)
        && !p.labels.is_empty()
        && !p.labels.contains_key(&(value.round() as i64))
    {
        return Some(format!("{value} is not one of the labels of `{}`", p.id));
    }
    match dev.range(meta.profile_point) {
        Some((lo, hi)) if value < lo || value > hi => Some(format!("{value} is outside [{lo}, {hi}]")),
        _ => None,
    }
}

/// The outcome of an exchange that did not give what the write needed.
fn outcome_of(r: Result<Response, TransportError>, what: &str) -> WriteOutcome {
    match r {
        Ok(Response::Exception(e)) => WriteOutcome::Refused {
            exception: format!("{what}{e}"),
        },
        Ok(_) => WriteOutcome::CommFailure {
            error: format!("{what}malformed answer"),
        },
        Err(TransportError::Timeout) => WriteOutcome::Timeout,
        Err(e) => WriteOutcome::CommFailure {
            error: format!("{what}{e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_failure_up_to_its_cap_within_the_jitter() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(1), 1, 0.0), s(1));
        assert_eq!(backoff(s(1), 2, 0.0), s(2));
        assert_eq!(backoff(s(1), 4, 0.0), s(8));
        assert_eq!(backoff(s(1), 9, 0.0), s(16), "16 poll intervals at most");
        assert_eq!(backoff(s(10), 9, 0.0), s(60), "and never over a minute");
        assert_eq!(backoff(Duration::from_millis(100), 1, 0.0), Duration::from_millis(100));
        assert_eq!(backoff(Duration::from_millis(100), 9, 0.0), Duration::from_millis(1600));
        assert_eq!(
            backoff(Duration::from_millis(10), 9, 0.0),
            s(1),
            "the cap is at least 1 s"
        );
        assert_eq!(backoff(s(1), 3, 0.2), Duration::from_secs_f64(4.8));
        assert_eq!(backoff(s(1), 3, 5.0), Duration::from_secs_f64(4.8), "jitter is bounded");
        for _ in 0..100 {
            assert!((-0.2..=0.2).contains(&jitter()));
        }
    }
}
