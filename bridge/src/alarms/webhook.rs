//! Alarm webhooks: a notification [`Channel`] that POSTs each batch of transitions to a URL,
//! as JSON (`{"site": ..., "transitions": [...]}`), as plain text (ntfy and the like), or as a
//! Telegram Bot API `sendMessage` (`{"chat_id": ..., "text": ...}`). docs/alarms.md.

use super::email::compose;
use super::model::Transition;
use super::notify::{Attempt, Audience, Channel, Target};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// One entry of `alarms.webhooks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookDoc {
    url: String,
    /// A name rules can send their alarms to (`notify: [<name>]`).
    #[serde(default)]
    name: Option<String>,
    /// json (default), text, or telegram (with `chat_id`).
    #[serde(default = "d_format")]
    format: String,
    #[serde(default)]
    chat_id: Option<String>,
    /// Extra headers (an `Authorization` for the receiver).
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    hold_off_s: f64,
    #[serde(default)]
    min_severity: Option<String>,
    #[serde(default)]
    devices: Vec<String>,
    #[serde(default)]
    kinds: Vec<String>,
}

fn d_format() -> String {
    "json".into()
}

#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    Json,
    Text,
    Telegram { chat_id: String },
}

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: String,
    pub format: Format,
    pub headers: Vec<(String, String)>,
    pub hold_off: Duration,
    pub audience: Audience,
}

impl WebhookDoc {
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn resolve(&self, key: &str, devices: &[String], wrong: &mut Vec<(String, String)>) -> Option<WebhookSettings> {
        let before = wrong.len();
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            wrong.push((key.into(), format!("`{}` is not an http(s) URL", self.url)));
        }
        let format = match (self.format.as_str(), &self.chat_id) {
            ("json", _) => Format::Json,
            ("text", _) => Format::Text,
            ("telegram", Some(c)) => Format::Telegram { chat_id: c.clone() },
            ("telegram", None) => {
                wrong.push((key.into(), "the telegram format needs `chat_id`".into()));
                Format::Json
            }
            (other, _) => {
                wrong.push((key.into(), format!("format `{other}` is not json, text or telegram")));
                Format::Json
            }
        };
        if !(self.hold_off_s.is_finite() && (0.0..=3600.0).contains(&self.hold_off_s)) {
            wrong.push((key.into(), "hold_off_s must be 0..=3600 seconds".into()));
        }
        let audience = Audience::parse(
            key,
            self.name.as_deref(),
            self.min_severity.as_deref(),
            &self.devices,
            &self.kinds,
            devices,
            wrong,
        );
        (wrong.len() == before).then(|| WebhookSettings {
            url: self.url.clone(),
            format,
            headers: self.headers.clone().into_iter().collect(),
            hold_off: Duration::from_secs_f64(self.hold_off_s),
            audience,
        })
    }
}

/// What is posted for a batch: content type and body.
pub fn body(format: &Format, site: &str, batch: &[Transition]) -> (&'static str, String) {
    match format {
        Format::Json => (
            "application/json",
            json!({ "site": site, "transitions": batch }).to_string(),
        ),
        Format::Text => {
            let (subject, text) = compose(site, batch);
            ("text/plain; charset=utf-8", format!("{subject}\n\n{text}"))
        }
        Format::Telegram { chat_id } => {
            let (_, text) = compose(site, batch);
            (
                "application/json",
                json!({ "chat_id": chat_id, "text": text }).to_string(),
            )
        }
    }
}

struct Hook {
    settings: WebhookSettings,
    client: reqwest::Client,
}

impl Channel for Hook {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn recipient(&self) -> String {
        // A Telegram URL carries the bot's token: keep it out of logs and the journal.
        match self.settings.url.find("/bot") {
            Some(at) => format!("{}/bot…", &self.settings.url[..at]),
            None => self.settings.url.clone(),
        }
    }

    fn attempt<'a>(&'a self, site: &'a str, batch: &'a [Transition]) -> Attempt<'a> {
        Box::pin(async move {
            let (content_type, text) = body(&self.settings.format, site, batch);
            let mut req = self
                .client
                .post(&self.settings.url)
                .header("Content-Type", content_type)
                .body(text);
            for (k, v) in &self.settings.headers {
                req = req.header(k, v);
            }
            let r = req.send().await.map_err(|e| e.to_string())?;
            let status = r.status();
            if status.is_success() {
                Ok(format!("{} transitions, HTTP {}", batch.len(), status.as_u16()))
            } else {
                Err(format!("HTTP {}", status.as_u16()))
            }
        })
    }
}

impl WebhookSettings {
    pub fn target(&self) -> Target {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .or_else(|_| {
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(20))
                    .tls_certs_only(Vec::new())
                    .build()
            })
            .unwrap_or_default();
        Target {
            audience: self.audience.clone(),
            hold_off: self.hold_off,
            channel: Arc::new(Hook {
                settings: self.clone(),
                client,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_their_checks() {
        let mut wrong = Vec::new();
        let doc: WebhookDoc =
            serde_saphyr::from_str("{ url: ftp://x, format: telegram }").unwrap_or_else(|e| panic!("{e}"));
        assert!(doc.resolve("webhooks[0]", &[], &mut wrong).is_none());
        let text = format!("{wrong:?}");
        assert!(
            text.contains("not an http(s) URL") && text.contains("needs `chat_id`"),
            "{text}"
        );
        let doc: WebhookDoc = serde_saphyr::from_str(
            "{ url: https://api.telegram.org/bot123:SECRET/sendMessage, format: telegram, chat_id: '-100' }",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let s = doc.resolve("w", &[], &mut wrong).unwrap_or_else(|| panic!("{wrong:?}"));
        let (ct, b) = body(&s.format, "Site", &[]);
        assert_eq!(ct, "application/json");
        assert!(b.contains("\"chat_id\":\"-100\""), "{b}");
        let hook = Hook {
            settings: s,
            client: reqwest::Client::new(),
        };
        assert_eq!(hook.recipient(), "https://api.telegram.org/bot…", "no token in logs");
    }
}
