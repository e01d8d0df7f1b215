//! Alarm e-mail: a subscriber of the alarm service that gathers the transitions each recipient
//! wants (severity, devices, kinds) for a hold-off time into one mail, and sends it over SMTP
//! (STARTTLS, implicit TLS or plain, with a login when given) with retries that back off and
//! never hold the engine up. Every mail is recorded in the journal's `notifications` table.

use super::model::{Kind, Severity, Transition};
use super::Alarms;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// `alarms.email`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailDoc {
    server: String,
    #[serde(default)]
    port: Option<u16>,
    /// starttls (default, port 587), tls (implicit, port 465) or none (port 25; tests only).
    #[serde(default = "d_security")]
    security: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    from: String,
    /// Transitions within this time go out in one mail.
    #[serde(default = "d_hold_off")]
    hold_off_s: f64,
    recipients: Vec<RecipientDoc>,
}

fn d_security() -> String {
    "starttls".into()
}
fn d_hold_off() -> f64 {
    30.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipientDoc {
    to: String,
    /// This severity and above (default: every severity).
    #[serde(default)]
    min_severity: Option<String>,
    /// Only these devices (default: every device).
    #[serde(default)]
    devices: Vec<String>,
    /// Which transitions (default: raised and cleared).
    #[serde(default)]
    kinds: Vec<String>,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    StartTls,
    Tls,
    None,
}

#[derive(Debug, Clone)]
pub struct Recipient {
    pub to: Mailbox,
    pub min_severity: Severity,
    pub devices: Vec<String>,
    pub kinds: Vec<Kind>,
}

impl Recipient {
    fn wants(&self, t: &Transition) -> bool {
        t.severity >= self.min_severity
            && (self.devices.is_empty() || self.devices.contains(&t.device))
            && self.kinds.contains(&t.kind)
    }
}

#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub server: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<(String, String)>,
    pub from: Mailbox,
    pub hold_off: Duration,
    pub recipients: Vec<Recipient>,
}

impl EmailDoc {
    /// The settings, or each problem as (key, message).
    pub fn resolve(&self, devices: &[String]) -> Result<EmailSettings, Vec<(String, String)>> {
        let mut wrong = Vec::new();
        let security = match self.security.as_str() {
            "starttls" => Security::StartTls,
            "tls" => Security::Tls,
            "none" => Security::None,
            other => {
                wrong.push(("security".into(), format!("`{other}` is not starttls, tls or none")));
                Security::StartTls
            }
        };
        let port = self.port.unwrap_or(match security {
            Security::StartTls => 587,
            Security::Tls => 465,
            Security::None => 25,
        });
        if self.server.is_empty() {
            wrong.push(("server".into(), "the SMTP server is empty".into()));
        }
        let credentials = match (&self.username, &self.password) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            (None, None) => None,
            _ => {
                wrong.push(("username".into(), "give both username and password, or neither".into()));
                None
            }
        };
        let from = self
            .from
            .parse::<Mailbox>()
            .map_err(|e| ("from".to_string(), format!("`{}`: {e}", self.from)));
        let from = match from {
            Ok(f) => Some(f),
            Err(w) => {
                wrong.push(w);
                None
            }
        };
        if !(self.hold_off_s.is_finite() && (0.0..=3600.0).contains(&self.hold_off_s)) {
            wrong.push(("hold_off_s".into(), "must be 0..=3600 seconds".into()));
        }
        let mut recipients = Vec::new();
        if self.recipients.is_empty() {
            wrong.push(("recipients".into(), "no recipient".into()));
        }
        for (i, r) in self.recipients.iter().enumerate() {
            let key = format!("recipients[{i}]");
            let to = match r.to.parse::<Mailbox>() {
                Ok(m) => Some(m),
                Err(e) => {
                    wrong.push((key.clone(), format!("`{}` is not an address: {e}", r.to)));
                    None
                }
            };
            let min_severity = match &r.min_severity {
                None => Severity::Info,
                Some(s) => Severity::parse(s).unwrap_or_else(|| {
                    wrong.push((
                        key.clone(),
                        format!("severity `{s}` is not one of info, warning, minor, major, critical"),
                    ));
                    Severity::Info
                }),
            };
            for d in &r.devices {
                if !devices.contains(d) {
                    wrong.push((key.clone(), format!("unknown device `{d}`")));
                }
            }
            let mut kinds = Vec::new();
            for k in &r.kinds {
                match Kind::parse(k) {
                    Some(k) => kinds.push(k),
                    None => wrong.push((key.clone(), format!("`{k}` is not a transition kind"))),
                }
            }
            if kinds.is_empty() {
                kinds = vec![Kind::Raised, Kind::Cleared];
            }
            if let Some(to) = to {
                recipients.push(Recipient {
                    to,
                    min_severity,
                    devices: r.devices.clone(),
                    kinds,
                });
            }
        }
        match (from, wrong.is_empty()) {
            (Some(from), true) => Ok(EmailSettings {
                server: self.server.clone(),
                port,
                security,
                credentials,
                from,
                hold_off: Duration::from_secs_f64(self.hold_off_s),
                recipients,
            }),
            _ => Err(wrong),
        }
    }
}

/// The subject and text of one mail of transitions.
pub fn compose(site: &str, batch: &[Transition]) -> (String, String) {
    let worst = batch
        .iter()
        .filter(|t| t.kind == Kind::Raised)
        .max_by_key(|t| t.severity);
    let lead = worst.or(batch.first());
    let subject = match (batch.len(), lead) {
        (1, Some(t)) => format!(
            "[{site}] {} {}: {}",
            t.severity.as_str().to_uppercase(),
            t.kind.as_str(),
            t.message
        ),
        (n, Some(t)) => format!(
            "[{site}] {n} alarm transitions, the worst {} {}: {}",
            t.severity.as_str().to_uppercase(),
            t.kind.as_str(),
            t.message
        ),
        (_, None) => format!("[{site}] alarms"),
    };
    let mut body = format!("Alarm transitions at {site}:\n\n");
    for t in batch {
        body.push_str(&format!(
            "{}  {:<12} {:<8} {}  ({})",
            busbar_core::time::rfc3339(t.time),
            t.kind.as_str(),
            t.severity.as_str(),
            t.message,
            t.alarm
        ));
        if !t.actor.user.is_empty() {
            body.push_str(&format!("  by {} via {}", t.actor.user, t.actor.via));
            if !t.actor.comment.is_empty() {
                body.push_str(&format!(": {}", t.actor.comment));
            }
        }
        body.push('\n');
    }
    (subject, body)
}

fn transport(s: &EmailSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, lettre::transport::smtp::Error> {
    let builder = match s.security {
        Security::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.server)?,
        Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.server)?,
        Security::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.server),
    };
    let builder = builder.port(s.port).timeout(Some(Duration::from_secs(20)));
    Ok(match &s.credentials {
        Some((u, p)) => builder.credentials(Credentials::new(u.clone(), p.clone())).build(),
        None => builder.build(),
    })
}

/// Send one mail, retrying with backoff (1 s doubling to 5 min, 8 attempts), then record it.
async fn deliver(s: Arc<EmailSettings>, alarms: Arc<Alarms>, to: Mailbox, site: String, batch: Vec<Transition>) {
    let (subject, body) = compose(&site, &batch);
    let seqs: Vec<String> = batch.iter().map(|t| t.seq.to_string()).collect();
    let message = Message::builder()
        .from(s.from.clone())
        .to(to.clone())
        .subject(subject.clone())
        .body(body);
    let message = match message {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("alarms: cannot build the mail to {to}: {e}");
            alarms
                .record_notification(
                    "email",
                    &to.to_string(),
                    &subject,
                    &seqs.join(","),
                    &format!("not built: {e}"),
                    0,
                )
                .await;
            return;
        }
    };
    let mut wait = Duration::from_secs(1);
    let mut attempts = 0u32;
    let outcome = loop {
        attempts += 1;
        let sent = match transport(&s) {
            Ok(t) => t.send(message.clone()).await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match sent {
            Ok(()) => break "sent".to_string(),
            Err(e) if attempts < 8 => {
                tracing::warn!("alarms: mail to {to} not sent ({e}); retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(300));
            }
            Err(e) => {
                tracing::error!("alarms: mail to {to} given up after {attempts} attempts: {e}");
                break format!("failed: {e}");
            }
        }
    };
    alarms
        .record_notification("email", &to.to_string(), &subject, &seqs.join(","), &outcome, attempts)
        .await;
}

/// The e-mail task: gathers each recipient's transitions for the hold-off, then hands the mail
/// to a delivery task of its own.
pub fn start(
    s: EmailSettings,
    alarms: Arc<Alarms>,
    site: String,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let s = Arc::new(s);
    let mut rx = alarms.subscribe();
    tokio::spawn(async move {
        let mut pending: Vec<(Vec<Transition>, Option<Instant>)> = vec![(Vec::new(), None); s.recipients.len()];
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
                        for (r, p) in s.recipients.iter().zip(pending.iter_mut()) {
                            if r.wants(&t) {
                                p.0.push(t.clone());
                                p.1.get_or_insert_with(|| Instant::now() + s.hold_off);
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("alarms: {n} transitions came too fast for e-mail (they are in the journal)");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = sleep => {
                    let now = Instant::now();
                    for (r, p) in s.recipients.iter().zip(pending.iter_mut()) {
                        if p.1.is_some_and(|d| d <= now) {
                            p.1 = None;
                            let batch = std::mem::take(&mut p.0);
                            tokio::spawn(deliver(s.clone(), alarms.clone(), r.to.clone(), site.clone(), batch));
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

    fn t(kind: Kind, severity: Severity, device: &str, message: &str) -> Transition {
        Transition {
            seq: 1,
            alarm: format!("device/{device}/state"),
            kind,
            time: std::time::UNIX_EPOCH,
            source: Source::Device,
            severity,
            level: None,
            device: device.into(),
            point: "state".into(),
            value: None,
            message: message.into(),
            actor: Actor::engine(),
            state: AlarmState::default(),
        }
    }

    #[test]
    fn recipients_filter_and_mails_name_the_worst() {
        let doc: EmailDoc = serde_saphyr::from_str(
            "{ server: smtp.example.com, from: busbar@example.com, recipients: [ { to: ops@example.com, min_severity: major, devices: [b] } ] }",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let s = doc.resolve(&["b".into()]).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((s.port, s.security), (587, Security::StartTls));
        let r = &s.recipients[0];
        assert!(r.wants(&t(Kind::Raised, Severity::Major, "b", "x")));
        assert!(
            !r.wants(&t(Kind::Raised, Severity::Minor, "b", "x")),
            "below its severity"
        );
        assert!(
            !r.wants(&t(Kind::Raised, Severity::Critical, "c", "x")),
            "another device"
        );
        assert!(
            !r.wants(&t(Kind::Acknowledged, Severity::Major, "b", "x")),
            "not a kind it wants"
        );
        let (subject, body) = compose(
            "Site",
            &[
                t(Kind::Raised, Severity::Minor, "a", "a is low"),
                t(Kind::Raised, Severity::Critical, "b", "b tripped"),
            ],
        );
        assert_eq!(
            subject,
            "[Site] 2 alarm transitions, the worst CRITICAL raised: b tripped"
        );
        assert!(body.contains("a is low") && body.contains("device/b/state"), "{body}");
    }

    #[test]
    fn bad_settings_are_each_reported() {
        let doc: EmailDoc = serde_saphyr::from_str(
            "{ server: s, security: ssl, username: u, from: not-an-address, recipients: [ { to: x, min_severity: dire, devices: [ghost], kinds: [boom] } ] }",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let wrong = doc.resolve(&[]).err().unwrap_or_default();
        let text = format!("{wrong:?}");
        for want in [
            "`ssl` is not starttls",
            "both username and password",
            "`not-an-address`",
            "`x` is not an address",
            "severity `dire`",
            "unknown device `ghost`",
            "`boom` is not a transition kind",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
    }
}
