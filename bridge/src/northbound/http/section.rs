//! `servers.http`: the section, its validation and the start.

use super::{router, ApiState};
use crate::component::{Component, Context, Endpoint, Resolve, Started};
use anyhow::Context as _;
use serde::Deserialize;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// The component.
pub struct Http;

/// `servers.http`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpDoc {
    #[serde(default = "crate::component::on")]
    enabled: bool,
    #[serde(default = "d_listen")]
    listen: String,
    /// Bearer token required by `POST /api/points/{id}`; without it, HTTP writes are refused.
    #[serde(default)]
    token: Option<String>,
}

fn d_listen() -> String {
    "127.0.0.1:8080".into()
}

/// HTTP API settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    pub token: Option<String>,
}

impl Component for Http {
    type Doc = HttpDoc;
    type Settings = HttpSettings;

    fn enabled(doc: &HttpDoc) -> bool {
        doc.enabled
    }

    fn resolve(doc: &HttpDoc, cx: &mut Resolve<'_>) -> Option<HttpSettings> {
        if doc.token.as_deref().is_some_and(|t| t.len() < 16) {
            cx.error("token", "a token needs at least 16 characters");
        }
        cx.claim_tcp(&doc.listen).map(|listen| HttpSettings {
            listen,
            token: doc.token.clone(),
        })
    }

    async fn start(s: &HttpSettings, cx: &Context) -> anyhow::Result<Started> {
        let listener = TcpListener::bind(s.listen)
            .await
            .with_context(|| format!("http server: cannot bind {}", s.listen))?;
        let local = listener.local_addr()?;
        let app = router(ApiState {
            store: cx.store.clone(),
            acq: cx.acq.clone(),
            config: cx.config.clone(),
            metrics: cx.metrics.clone(),
            alarms: cx.alarms.clone(),
        });
        let mut stop = cx.shutdown.clone();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.changed().await;
            });
            if let Err(e) = serve.await {
                tracing::error!("http server stopped: {e}");
            }
        });
        Ok(Started {
            endpoint: Endpoint {
                name: "http",
                local: Some(local),
                what: "http api",
                detail: format!("http://{local}/api/points   metrics: http://{local}/metrics"),
            },
            tasks: vec![task],
        })
    }
}
