//! Notifications: subscribers of the alarm service that gather the transitions each target
//! wants (its [`Audience`]) for a hold-off time into one batch and hand the batch to its
//! [`Channel`] (e-mail, a webhook), retrying with backoff in a task of its own so that a slow or
//! absent receiver never holds the engine up. Every batch delivered or given up is recorded in
//! the journal's `notifications` table.

use super::model::{Kind, Severity, Transition};
use super::Alarms;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Which transitions a target wants.
#[derive(Debug, Clone)]
pub struct Audience {
    pub min_severity: Severity,
    /// Empty: every device.
    pub devices: Vec<String>,
    pub kinds: Vec<Kind>,
}

impl Audience {
    /// From the config's `min_severity`, `devices` and `kinds` (defaults: every severity, every
    /// device, raised and cleared); problems are pushed as (`key`, message).
    pub fn parse(
        key: &str,
        min_severity: Option<&str>,
        devices: &[String],
        kinds: &[String],
        known_devices: &[String],
        wrong: &mut Vec<(String, String)>,
    ) -> Audience {
        let min_severity = match min_severity {
            None => Severity::Info,
            Some(s) => Severity::parse(s).unwrap_or_else(|| {
                wrong.push((
                    key.to_string(),
                    format!("severity `{s}` is not one of info, warning, minor, major, critical"),
                ));
                Severity::Info
            }),
        };
        for d in devices {
            if !known_devices.contains(d) {
                wrong.push((key.to_string(), format!("unknown device `{d}`")));
            }
        }
        let mut parsed = Vec::new();
        for k in kinds {
            match Kind::parse(k) {
                Some(k) => parsed.push(k),
                None => wrong.push((key.to_string(), format!("`{k}` is not a transition kind"))),
            }
        }
        if parsed.is_empty() {
            parsed = vec![Kind::Raised, Kind::Cleared];
        }
        Audience {
            min_severity,
            devices: devices.to_vec(),
            kinds: parsed,
        }
    }

    pub fn wants(&self, t: &Transition) -> bool {
        t.severity >= self.min_severity
            && (self.devices.is_empty() || self.devices.contains(&t.device))
            && self.kinds.contains(&t.kind)
    }
}

/// One attempt's future: the summary to record (a mail's subject) or why it failed.
pub type Attempt<'a> = Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;

/// Where a batch goes.
pub trait Channel: Send + Sync + 'static {
    /// `email`, `webhook`.
    fn kind(&self) -> &'static str;
    /// The recipient, for logs and the journal.
    fn recipient(&self) -> String;
    /// One attempt to deliver `batch`.
    fn attempt<'a>(&'a self, site: &'a str, batch: &'a [Transition]) -> Attempt<'a>;
}

/// A channel with its audience and hold-off.
pub struct Target {
    pub audience: Audience,
    pub hold_off: Duration,
    pub channel: Arc<dyn Channel>,
}

/// Attempts before a batch is given up (waits 1 s doubling to 5 min between them).
const ATTEMPTS: u32 = 8;

async fn deliver(channel: Arc<dyn Channel>, alarms: Arc<Alarms>, site: String, batch: Vec<Transition>) {
    let seqs: Vec<String> = batch.iter().map(|t| t.seq.to_string()).collect();
    let to = channel.recipient();
    let mut wait = Duration::from_secs(1);
    let mut attempts = 0u32;
    let (summary, outcome) = loop {
        attempts += 1;
        match channel.attempt(&site, &batch).await {
            Ok(summary) => break (summary, "sent".to_string()),
            Err(e) if attempts < ATTEMPTS => {
                tracing::warn!(
                    "alarms: {} to {to} not delivered ({e}); retrying in {wait:?}",
                    channel.kind()
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(300));
            }
            Err(e) => {
                tracing::error!(
                    "alarms: {} to {to} given up after {attempts} attempts: {e}",
                    channel.kind()
                );
                break (String::new(), format!("failed: {e}"));
            }
        }
    };
    alarms
        .record_notification(channel.kind(), &to, &summary, &seqs.join(","), &outcome, attempts)
        .await;
}

/// The gathering task of a set of targets.
pub fn start(
    targets: Vec<Target>,
    alarms: Arc<Alarms>,
    site: String,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let mut rx = alarms.subscribe();
    tokio::spawn(async move {
        let mut pending: Vec<(Vec<Transition>, Option<Instant>)> = vec![(Vec::new(), None); targets.len()];
        loop {
            let due = pending.iter().filter_map(|p| p.1).min();
            let sleep = async {
                match due {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                t = rx.recv() => match t {
                    Ok(t) => {
                        for (target, p) in targets.iter().zip(pending.iter_mut()) {
                            if target.audience.wants(&t) {
                                p.0.push(t.clone());
                                p.1.get_or_insert_with(|| Instant::now() + target.hold_off);
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("alarms: {n} transitions came too fast for the notifications (they are in the journal)");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = sleep => {
                    let now = Instant::now();
                    for (target, p) in targets.iter().zip(pending.iter_mut()) {
                        if p.1.is_some_and(|d| d <= now) {
                            p.1 = None;
                            let batch = std::mem::take(&mut p.0);
                            tokio::spawn(deliver(target.channel.clone(), alarms.clone(), site.clone(), batch));
                        }
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    })
}
