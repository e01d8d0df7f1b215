//! Alarms: one engine for threshold rules, the alarms devices report (declared in their
//! profiles) and communication; a journal that commits every transition before it is announced;
//! acknowledgement, shelving and out-of-service from any protocol. Protocols are views on this
//! service: they read [`Alarms::listed`], act through [`Alarms::act`], and subscribe to the
//! transitions ([`Alarms::subscribe`]). docs/alarms.md.

pub mod condition;
pub mod email;
pub mod engine;
pub mod journal;
pub mod model;
pub mod notify;
pub mod section;
#[cfg(test)]
mod tests;
pub mod webhook;

pub use engine::{Action, ActionError, AlarmView};
pub use model::{Actor, AlarmState, Kind, Level, Severity, Source, Transition};
pub use section::{AlarmSettings, AlarmsDoc};

use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::{self, MetricSource};
use crate::store::{Notice, Store};
use engine::Engine;
use journal::{Filter, Journal, JournalError};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// How often time-driven changes are looked at (delays, shelving, communication).
const TICK: Duration = Duration::from_millis(250);

/// Why an operator action did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    #[error(transparent)]
    Action(#[from] ActionError),
    #[error("{0}; the action was not recorded")]
    Journal(String),
}

/// The alarm service.
pub struct Alarms {
    /// The engine; held across a journal commit, so that transitions are committed and
    /// announced in the order they were made.
    engine: tokio::sync::Mutex<Engine>,
    journal: Arc<Mutex<Journal>>,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    announce: broadcast::Sender<Transition>,
    retention: Duration,
    stats: Stats,
    /// The listed alarms after the last commit, for readers that cannot wait for the engine
    /// (an SNMP walk reads it once per request).
    snapshot: Mutex<Arc<Vec<AlarmView>>>,
    /// Alarms defined, and where the journal is (for the start-up summary).
    pub defined: usize,
    pub journal_path: std::path::PathBuf,
}

#[derive(Default)]
struct Stats {
    transitions: [AtomicU64; Kind::ALL.len()],
    journal_errors: AtomicU64,
    /// (listed, active, unacknowledged) per severity, after the last change.
    listed: Mutex<BTreeMap<Severity, (u64, u64, u64)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Alarms {
    /// Open the journal, define every alarm, and take back the state the journal holds.
    pub fn open(config: &Config, store: Arc<Store>, s: &AlarmSettings) -> anyhow::Result<Arc<Alarms>> {
        let journal = Journal::open(&s.journal).map_err(|e| anyhow::anyhow!("{e} ({})", s.journal.display()))?;
        Alarms::with_journal(config, store, s, journal)
    }

    /// The same over a journal already open (tests and benchmarks use one in memory).
    pub fn with_journal(
        config: &Config,
        store: Arc<Store>,
        s: &AlarmSettings,
        journal: Journal,
    ) -> anyhow::Result<Arc<Alarms>> {
        let mut engine = Engine::new(config, &store, s);
        let defined = engine.len();
        let latest = journal.latest()?;
        engine.restore(&latest);
        let restored = latest.iter().filter(|t| t.state.active).count();
        tracing::info!(
            "alarms: {} defined, {} active restored from {}",
            engine.len(),
            restored,
            s.journal.display()
        );
        let (announce, _) = broadcast::channel(4096);
        let listed = engine.listed();
        let alarms = Arc::new(Alarms {
            snapshot: Mutex::default(),
            engine: tokio::sync::Mutex::new(engine),
            journal: Arc::new(Mutex::new(journal)),
            clock: store.clock().clone(),
            store,
            announce,
            retention: s.retention,
            stats: Stats::default(),
            defined,
            journal_path: s.journal.clone(),
        });
        alarms.count(&listed);
        *lock(&alarms.snapshot) = Arc::new(listed);
        Ok(alarms)
    }

    /// Transitions as they are committed. A receiver that falls behind loses the oldest
    /// (`RecvError::Lagged`) and can re-read [`Alarms::listed`].
    pub fn subscribe(&self) -> broadcast::Receiver<Transition> {
        self.announce.subscribe()
    }

    /// Alarms that need attention (active, unacknowledged, shelved or out of service).
    pub async fn listed(&self) -> Vec<AlarmView> {
        self.engine.lock().await.listed()
    }

    /// The listed alarms as of the last commit, without waiting for the engine; in the order of
    /// their numbers.
    pub fn listed_now(&self) -> Arc<Vec<AlarmView>> {
        lock(&self.snapshot).clone()
    }

    /// Every alarm defined.
    pub async fn all(&self) -> Vec<AlarmView> {
        self.engine.lock().await.all()
    }

    pub async fn get(&self, id: &str) -> Option<AlarmView> {
        self.engine.lock().await.get(id)
    }

    /// An operator's action: journaled, then announced.
    pub async fn act(&self, id: &str, action: Action, actor: Actor) -> Result<Transition, AlarmError> {
        let mut engine = self.engine.lock().await;
        let t = engine.act(id, action, actor, self.clock.wall())?;
        let done = self
            .commit(vec![t])
            .await
            .map_err(|e| AlarmError::Journal(e.to_string()))?;
        self.after(&engine, &done);
        done.into_iter()
            .next()
            .ok_or_else(|| AlarmError::Journal("the journal returned nothing".into()))
    }

    /// Journal history, newest first.
    pub async fn history(&self, filter: Filter) -> Result<Vec<Transition>, JournalError> {
        let journal = self.journal.clone();
        tokio::task::spawn_blocking(move || lock(&journal).query(&filter))
            .await
            .map_err(|e| JournalError::Corrupt(format!("query task: {e}")))?
    }

    /// Commit a batch (off the async threads), numbered.
    async fn commit(&self, batch: Vec<Transition>) -> Result<Vec<Transition>, JournalError> {
        if batch.is_empty() {
            return Ok(batch);
        }
        let journal = self.journal.clone();
        let done = tokio::task::spawn_blocking(move || lock(&journal).append(batch))
            .await
            .map_err(|e| JournalError::Corrupt(format!("commit task: {e}")))?;
        if done.is_err() {
            self.stats.journal_errors.fetch_add(1, Ordering::Relaxed);
        }
        done
    }

    /// After a commit: announce, count, refresh what /metrics shows.
    fn after(&self, engine: &Engine, done: &[Transition]) {
        for t in done {
            self.stats.transitions[t.kind as usize].fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                alarm = %t.alarm,
                device = %t.device,
                point = %t.point,
                "alarm {}: {} ({})",
                t.kind.as_str(),
                t.message,
                t.severity.as_str()
            );
            let _ = self.announce.send(t.clone());
        }
        if done.is_empty() {
            return;
        }
        // Only the alarms that moved change the snapshot (sorted by number).
        let mut snapshot = lock(&self.snapshot);
        let listed = Arc::make_mut(&mut snapshot);
        for t in done {
            let Some(view) = engine.get(&t.alarm) else { continue };
            match (
                listed.binary_search_by_key(&view.number, |a| a.number),
                view.state.needs_attention(),
            ) {
                (Ok(i), true) => listed[i] = view,
                (Ok(i), false) => {
                    listed.remove(i);
                }
                (Err(i), true) => listed.insert(i, view),
                (Err(_), false) => {}
            }
        }
        self.count(listed);
    }

    /// The counts /metrics shows, from the listed alarms.
    fn count(&self, listed: &[AlarmView]) {
        let mut counts: BTreeMap<Severity, (u64, u64, u64)> = BTreeMap::new();
        for a in listed {
            let c = counts.entry(a.severity).or_default();
            c.0 += 1;
            c.1 += u64::from(a.state.active);
            c.2 += u64::from(!a.state.acknowledged);
        }
        *lock(&self.stats.listed) = counts;
    }

    /// Evaluate, commit and announce: what a store change or a tick made.
    async fn run_pass(&self, make: impl FnOnce(&mut Engine, &Store) -> Vec<Transition>) {
        let mut engine = self.engine.lock().await;
        let batch = make(&mut engine, &self.store);
        match self.commit(batch).await {
            Ok(done) => self.after(&engine, &done),
            Err(e) => tracing::error!("alarms: {e}: these transitions are not announced"),
        }
    }

    /// The evaluation task: store changes, a tick for time-driven changes, daily pruning.
    pub fn start(self: &Arc<Self>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut changes = me.store.subscribe();
            let mut tick = tokio::time::interval(TICK);
            let mut prune = tokio::time::interval(Duration::from_secs(3600));
            // What the store holds now, against the restored state.
            me.run_pass(|e, s| e.on_all(s, me.clock.now(), me.clock.wall())).await;
            let mut batch = Vec::with_capacity(256);
            loop {
                tokio::select! {
                    n = changes.next() => match n {
                        Notice::Closed => return,
                        Notice::Resync => me.run_pass(|e, s| e.on_all(s, me.clock.now(), me.clock.wall())).await,
                        Notice::Changed(p) => {
                            batch.clear();
                            batch.push(p);
                            while batch.len() < 4096 {
                                match tokio::time::timeout(Duration::ZERO, changes.next()).await {
                                    Ok(Notice::Changed(q)) => batch.push(q),
                                    _ => break,
                                }
                            }
                            me.run_pass(|e, s| e.on_changes(s, &batch, me.clock.now(), me.clock.wall())).await;
                        }
                    },
                    _ = tick.tick() => me.run_pass(|e, s| e.on_tick(s, me.clock.now(), me.clock.wall())).await,
                    _ = prune.tick() => me.prune().await,
                    _ = shutdown.changed() => return,
                }
            }
        })
    }

    /// Record a notification in the journal (logged when that fails: the notification itself
    /// happened).
    pub async fn record_notification(
        &self,
        channel: &str,
        recipient: &str,
        subject: &str,
        transitions: &str,
        outcome: &str,
        attempts: u32,
    ) {
        let time = journal::unix_ms(self.clock.wall());
        let journal = self.journal.clone();
        let (channel, recipient, subject, transitions, outcome) = (
            channel.to_string(),
            recipient.to_string(),
            subject.to_string(),
            transitions.to_string(),
            outcome.to_string(),
        );
        let done = tokio::task::spawn_blocking(move || {
            lock(&journal).record_notification(time, &channel, &recipient, &subject, &transitions, &outcome, attempts)
        })
        .await;
        if !matches!(done, Ok(Ok(()))) {
            tracing::warn!("alarms: a notification could not be recorded in the journal: {done:?}");
        }
    }

    /// What a protocol server stored under `key` ([`Alarms::save_protocol_state`]), read at
    /// its start.
    pub fn protocol_state(&self, key: &str) -> Result<Option<Vec<u8>>, JournalError> {
        lock(&self.journal).protocol_state(key)
    }

    /// Keep a protocol server's state in the journal's database (committed when this returns).
    pub async fn save_protocol_state(&self, key: &str, value: Vec<u8>) -> Result<(), JournalError> {
        let time = journal::unix_ms(self.clock.wall());
        let journal = self.journal.clone();
        let key = key.to_string();
        tokio::task::spawn_blocking(move || lock(&journal).set_protocol_state(&key, &value, time))
            .await
            .map_err(|e| JournalError::Corrupt(format!("state task: {e}")))?
    }

    async fn prune(&self) {
        let before =
            journal::unix_ms(self.clock.wall()) - i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        let journal = self.journal.clone();
        match tokio::task::spawn_blocking(move || lock(&journal).prune(before)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!("alarms: {n} journal entries past their retention pruned"),
            Ok(Err(e)) => tracing::warn!("alarms: pruning the journal failed: {e}"),
            Err(e) => tracing::warn!("alarms: pruning the journal failed: {e}"),
        }
    }
}

impl MetricSource for Alarms {
    fn write(&self, out: &mut String) {
        let counts = lock(&self.stats.listed).clone();
        for (name, help, pick) in [
            (
                "busbar_alarms_active",
                "Alarms whose condition is active (or latched), by severity.",
                1usize,
            ),
            (
                "busbar_alarms_unacknowledged",
                "Alarms not acknowledged, by severity.",
                2,
            ),
        ] {
            metrics::family(out, name, "gauge", help);
            for s in Severity::ALL {
                let c = counts.get(&s).copied().unwrap_or_default();
                let v = if pick == 1 { c.1 } else { c.2 };
                let _ = writeln!(out, "{name}{{severity=\"{}\"}} {v}", s.as_str());
            }
        }
        metrics::family(
            out,
            "busbar_alarm_transitions_total",
            "counter",
            "Alarm transitions journaled and announced, by kind.",
        );
        for k in Kind::ALL {
            let _ = writeln!(
                out,
                "busbar_alarm_transitions_total{{kind=\"{}\"}} {}",
                k.as_str(),
                self.stats.transitions[k as usize].load(Ordering::Relaxed)
            );
        }
        metrics::plain(
            out,
            &[(
                "busbar_alarm_journal_errors_total",
                "counter",
                "Journal commits that failed (their transitions were not announced).",
                self.stats.journal_errors.load(Ordering::Relaxed) as f64,
            )],
        );
    }
}
