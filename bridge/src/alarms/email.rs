//! Alarm e-mail: a notification [`Channel`] per recipient that sends a batch of transitions as
//! one mail over SMTP (STARTTLS, implicit TLS or plain, with a login when given). Gathering,
//! retries and the journal's record are [`super::notify`]'s.

use super::model::{Kind, Transition};
use super::notify::{Attempt, Audience, Channel, Target};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

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
    /// A name rules can send their alarms to (`notify: [<name>]`).
    #[serde(default)]
    name: Option<String>,
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
    pub audience: Audience,
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
    /// The names given to recipients.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.recipients.iter().filter_map(|r| r.name.as_deref())
    }

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
            let audience = Audience::parse(
                &key,
                r.name.as_deref(),
                r.min_severity.as_deref(),
                &r.devices,
                &r.kinds,
                devices,
                &mut wrong,
            );
            if let Some(to) = to {
                recipients.push(Recipient { to, audience });
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

/// One recipient's mails.
struct Mail {
    settings: Arc<EmailSettings>,
    to: Mailbox,
}

impl Channel for Mail {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn recipient(&self) -> String {
        self.to.to_string()
    }

    fn attempt<'a>(&'a self, site: &'a str, batch: &'a [Transition]) -> Attempt<'a> {
        Box::pin(async move {
            let (subject, body) = compose(site, batch);
            let message = Message::builder()
                .from(self.settings.from.clone())
                .to(self.to.clone())
                .subject(subject.clone())
                .body(body)
                .map_err(|e| format!("the mail cannot be built: {e}"))?;
            let transport = transport(&self.settings).map_err(|e| e.to_string())?;
            transport.send(message).await.map_err(|e| e.to_string())?;
            Ok(subject)
        })
    }
}

impl EmailSettings {
    /// One notification target per recipient.
    pub fn targets(self) -> Vec<Target> {
        let hold_off = self.hold_off;
        let settings = Arc::new(self);
        settings
            .recipients
            .iter()
            .map(|r| Target {
                audience: r.audience.clone(),
                hold_off,
                channel: Arc::new(Mail {
                    settings: settings.clone(),
                    to: r.to.clone(),
                }),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarms::model::{Actor, AlarmState, Severity, Source};

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
        let r = &s.recipients[0].audience;
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
