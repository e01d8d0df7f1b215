//! Notification sinks a test run provides: an SNMP trap receiver, a webhook endpoint and an SMTP
//! server ([`super::smtp`]). What they receive is kept as text with the simulated time of its
//! arrival, for `notified` and `not_notified`.

use super::expect::{Sink, SinkKind};
use crate::activity::SimClock;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What one sink received: (simulated second, text).
pub type Inbox = Arc<Mutex<Vec<(f64, String)>>>;

fn push(inbox: &Inbox, clock: &SimClock, text: String) {
    inbox
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((clock.get(), text));
}

/// A trap as text: its OID, then `oid = value` per varbind (texts as text).
fn trap_text(n: &async_snmp::notification::Notification) -> String {
    let mut out = match n.trap_oid() {
        Ok(oid) => oid.to_string(),
        Err(_) => "trap".into(),
    };
    for vb in n.varbinds() {
        let value = match &vb.value {
            async_snmp::Value::OctetString(b) => String::from_utf8_lossy(b).into_owned(),
            v => v.as_f64().map_or_else(|| format!("{v:?}"), |x| x.to_string()),
        };
        out.push_str(&format!(" {} = {value}", vb.oid));
    }
    out
}

/// A sink's TCP listener; a port taken names the sink.
async fn listen(name: &str, addr: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("sink `{name}`: cannot listen on {addr}: {e}"))
}

/// Bind every sink (a port taken is an error before the run starts) and start receiving.
pub async fn start(
    sinks: &[Sink],
    clock: Arc<SimClock>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(Vec<Inbox>, Vec<JoinHandle<()>>)> {
    let mut inboxes = Vec::new();
    let mut tasks = Vec::new();
    for s in sinks {
        let inbox: Inbox = Arc::default();
        inboxes.push(inbox.clone());
        let clock = clock.clone();
        let mut stop = shutdown.clone();
        match &s.kind {
            SinkKind::SnmpTraps(addr) => {
                let receiver = async_snmp::notification::NotificationReceiver::bind(addr.to_string())
                    .await
                    .map_err(|e| anyhow::anyhow!("sink `{}`: cannot receive traps on {addr}: {e}", s.name))?;
                let name = s.name.clone();
                tasks.push(tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            r = receiver.recv() => match r {
                                Ok(got) => push(&inbox, &clock, trap_text(&got.notification)),
                                Err(e) => tracing::debug!(sink = %name, "a datagram that is no notification: {e}"),
                            },
                            _ = stop.changed() => return,
                        }
                    }
                }));
            }
            SinkKind::Webhook(addr) => {
                let listener = listen(&s.name, *addr).await?;
                let app = axum::Router::new().fallback(move |body: String| {
                    let (inbox, clock) = (inbox.clone(), clock.clone());
                    async move {
                        push(&inbox, &clock, body);
                        "ok"
                    }
                });
                tasks.push(tokio::spawn(async move {
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stop.changed().await;
                        })
                        .await;
                }));
            }
            SinkKind::Smtp(addr) => {
                let listener = listen(&s.name, *addr).await?;
                let name = s.name.clone();
                tasks.push(tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            accepted = listener.accept() => match accepted {
                                Ok((stream, peer)) => {
                                    let (inbox, clock, name) = (inbox.clone(), clock.clone(), name.clone());
                                    tokio::spawn(async move {
                                        let keep = |text: String| push(&inbox, &clock, text);
                                        if let Err(e) = super::smtp::serve(stream, keep).await {
                                            tracing::debug!(sink = %name, %peer, "SMTP session ended: {e}");
                                        }
                                    });
                                }
                                Err(e) => tracing::warn!(sink = %name, "cannot accept an SMTP client: {e}"),
                            },
                            _ = stop.changed() => return,
                        }
                    }
                }));
            }
        }
    }
    Ok((inboxes, tasks))
}
