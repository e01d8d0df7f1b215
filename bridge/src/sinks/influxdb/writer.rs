//! Posting line protocol to InfluxDB: 1.x `/write?db=&rp=&precision=ms` (optional user and
//! password), 2.x `/api/v2/write?org=&bucket=&precision=ms` with a token (InfluxDB 3 and
//! VictoriaMetrics accept both), gzip-compressed. The answer decides what happens to a batch.

use super::{InfluxApi, InfluxSettings};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use std::time::Duration;

/// What InfluxDB said about a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: written.
    Written,
    /// 4xx: InfluxDB refused (some of) the lines; the valid ones of a partial write are kept by
    /// InfluxDB. Retrying would not help: the batch is dropped and counted.
    Refused { status: u16, message: String },
    /// Timeout, connection failure or 5xx: keep the batch and retry later.
    Retry { reason: String },
}

pub struct Writer {
    client: reqwest::Client,
    url: String,
    auth: Option<(String, String)>,
    token: Option<String>,
}

/// The HTTP client for InfluxDB (writes here, history queries of the OPC UA server).
pub fn http_client(s: &InfluxSettings) -> anyhow::Result<reqwest::Client> {
    let builder = || {
        reqwest::Client::builder()
            .timeout(s.timeout)
            .connect_timeout(Duration::from_secs(5))
    };
    let base = s.url.trim_end_matches('/');
    // TLS verifies against the system's CA certificates; a host without them (a minimal
    // container) can still write to a plain-HTTP InfluxDB.
    match builder().build() {
        Ok(c) => Ok(c),
        Err(e) if base.starts_with("http://") => {
            tracing::debug!("history: no TLS for plain HTTP ({e})");
            Ok(builder().tls_certs_only(Vec::new()).build()?)
        }
        Err(e) => anyhow::bail!(
            "history: cannot set up TLS to {base}: {e} (the system's CA certificates are needed: install ca-certificates)"
        ),
    }
}

/// Percent-encoding of a query-string or form value.
pub fn url_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Writer {
    pub fn new(s: &InfluxSettings) -> anyhow::Result<Writer> {
        let client = http_client(s)?;
        let base = s.url.trim_end_matches('/');
        let enc = url_encode;
        let url = match s.api {
            InfluxApi::V1 => {
                let mut u = format!("{base}/write?db={}&precision=ms", enc(&s.database));
                if !s.retention_policy.is_empty() {
                    u.push_str(&format!("&rp={}", enc(&s.retention_policy)));
                }
                u
            }
            InfluxApi::V2 => format!(
                "{base}/api/v2/write?org={}&bucket={}&precision=ms",
                enc(&s.org),
                enc(&s.bucket)
            ),
        };
        Ok(Writer {
            client,
            url,
            auth: s.username.clone().zip(s.password.clone()),
            token: s.token.clone(),
        })
    }

    /// Post one batch of complete lines.
    pub async fn post(&self, lines: &[u8]) -> Outcome {
        let mut gz = GzEncoder::new(Vec::with_capacity(lines.len() / 4), Compression::fast());
        let body = match gz.write_all(lines).and_then(|()| gz.finish()) {
            Ok(b) => b,
            Err(e) => {
                return Outcome::Retry {
                    reason: format!("gzip: {e}"),
                }
            }
        };
        let mut req = self
            .client
            .post(&self.url)
            .header("Content-Encoding", "gzip")
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body);
        if let Some((u, p)) = &self.auth {
            req = req.basic_auth(u, Some(p));
        }
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Token {t}"));
        }
        match req.send().await {
            Err(e) => Outcome::Retry {
                reason: if e.is_timeout() {
                    "timeout".into()
                } else {
                    e.to_string()
                },
            },
            Ok(r) => {
                let status = r.status().as_u16();
                if r.status().is_success() {
                    Outcome::Written
                } else {
                    let message = r.text().await.unwrap_or_default();
                    if (400..500).contains(&status) && status != 408 && status != 429 {
                        Outcome::Refused { status, message }
                    } else {
                        Outcome::Retry {
                            reason: format!("HTTP {status}: {}", message.trim()),
                        }
                    }
                }
            }
        }
    }
}
