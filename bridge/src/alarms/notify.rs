//! Notifications: subscribers of the alarm service that gather the transitions each target
//! wants (its [`Audience`]) for a hold-off time into one batch and hand the batch to its
//! [`Channel`] (e-mail, a webhook), retrying with backoff in a task of its own so that a slow or
//! absent receiver never holds the engine up. Every batch delivered or given up is recorded in
//! the journal's `notifications` table.

use super::model::{Kind, Severity, Transition};
use super::Alarms;
use std::collections::HashMap;
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
    /// The target's name, which rules' `notify` lists refer to.
    pub name: Option<String>,
    pub min_severity: Severity,
    /// Empty: every device.
    pub devices: Vec<String>,
    pub kinds: Vec<Kind>,
    /// Rule -> the names of the only targets its alarms go to (rules with `notify`).
    pub routes: Arc<HashMap<String, Vec<String>>>,
}

/// The rule of a threshold alarm (`threshold/<rule>/<device>/<point>`).
fn rule_of(alarm: &str) -> Option<&str> {
    alarm.strip_prefix("threshold/")?.split('/').next()
}

impl Audience {
    /// From the config's `min_severity`, `devices` and `kinds` (defaults: every severity, every
    /// device, raised and cleared); problems are pushed as (`key`, message).
    pub fn parse(
        key: &str,
        name: Option<&str>,
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
        if name.is_some_and(|n| n.is_empty() || n.contains(char::is_whitespace)) {
            wrong.push((key.to_string(), "a name must be one word".into()));
        }
        Audience {
            name: name.map(str::to_string),
            min_severity,
            devices: devices.to_vec(),
            kinds: parsed,
            routes: Arc::default(),
        }
    }

    pub fn wants(&self, t: &Transition) -> bool {
        let routed = match rule_of(&t.alarm).and_then(|r| self.routes.get(r)) {
            None => true,
            Some(names) => self.name.as_ref().is_some_and(|n| names.contains(n)),
        };
        routed
            && t.severity >= self.min_severity
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarms::model::{Actor, AlarmState, Source};

    fn transition(alarm: &str, severity: Severity) -> Transition {
        Transition {
            seq: 1,
            alarm: alarm.into(),
            kind: Kind::Raised,
            time: std::time::SystemTime::UNIX_EPOCH,
            source: Source::Threshold,
            severity,
            level: None,
            device: "tanks".into(),
            point: "tank1.water".into(),
            value: None,
            message: String::new(),
            actor: Actor::engine(),
            state: AlarmState::default(),
        }
    }

    fn audience(name: Option<&str>, min_severity: &str, routes: &Arc<HashMap<String, Vec<String>>>) -> Audience {
        let mut wrong = Vec::new();
        let mut a = Audience::parse(
            "r",
            name,
            Some(min_severity),
            &[],
            &[],
            &["tanks".to_string()],
            &mut wrong,
        );
        assert!(wrong.is_empty(), "{wrong:?}");
        a.routes = routes.clone();
        a
    }

    #[test]
    fn a_rule_with_notify_reaches_only_the_recipients_it_names() {
        let routes = Arc::new(HashMap::from([("water".to_string(), vec!["tank_tech".to_string()])]));
        let tech = audience(Some("tank_tech"), "info", &routes);
        let ops = audience(Some("ops"), "info", &routes);
        let anyone = audience(None, "info", &routes);
        let routed = transition("threshold/water/tanks/tank1.water", Severity::Major);
        assert!(tech.wants(&routed));
        assert!(!ops.wants(&routed) && !anyone.wants(&routed));
        // Other alarms follow the filters alone.
        let other = transition("device/tanks/tank1.water_alarm", Severity::Major);
        assert!(tech.wants(&other) && ops.wants(&other) && anyone.wants(&other));
        // A named recipient still applies its own filters to the alarms routed to it.
        let picky = audience(Some("tank_tech"), "critical", &routes);
        assert!(!picky.wants(&routed));
    }
}
