//! A Modbus-TCP server skeleton: accepts connections up to a limit, closes idle ones, cuts the
//! byte stream into ADUs and hands each to a [`Handler`], which appends its answer (or none).
//! A bad MBAP header closes the connection (its framing is lost); nothing a peer sends stops
//! the listener.

use crate::codec::{self, Header};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// What a handler did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A response was appended to the output.
    Sent,
    /// No response (a silent device).
    Silent,
    /// Close the connection after flushing what was appended.
    Drop,
}

/// Answers one request. `pdu` is the request PDU; the handler appends a complete ADU to `out`.
pub trait Handler: Send + Sync + 'static {
    fn answer(&self, header: Header, pdu: &[u8], out: &mut Vec<u8>) -> impl Future<Output = Answer> + Send;
}

/// Limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            idle_timeout: Duration::from_secs(120),
        }
    }
}

/// Counters of one listener (Prometheus-style, monotonic).
#[derive(Debug, Default)]
pub struct Stats {
    pub connections_accepted: AtomicU64,
    pub connections_refused: AtomicU64,
    pub connections_open: AtomicU64,
    pub requests: AtomicU64,
    /// Exceptions answered and framing errors.
    pub errors: AtomicU64,
}

/// Serve `listener` with `handler` until `shutdown` turns true.
pub async fn serve<H: Handler>(
    name: String,
    handler: Arc<H>,
    listener: TcpListener,
    limits: Limits,
    stats: Arc<Stats>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: wait a little, never give up.
                tracing::warn!(listener = %name, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            stats.connections_refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(listener = %name, %peer, "connection limit reached, closing");
            drop(stream);
            continue;
        };
        stats.connections_accepted.fetch_add(1, Ordering::Relaxed);
        stats.connections_open.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let (handler, stats, name) = (handler.clone(), stats.clone(), name.clone());
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                r = connection(&*handler, stream, limits.idle_timeout, &stats) => {
                    if let Err(e) = r {
                        tracing::debug!(listener = %name, %peer, "connection closed: {e}");
                    }
                }
                _ = stop.changed() => {}
            }
            stats.connections_open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

async fn connection<H: Handler>(
    handler: &H,
    mut stream: TcpStream,
    idle: Duration,
    stats: &Stats,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut out = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let mut pdu = Vec::with_capacity(256);
    // Idle timeout without a timer per read: the deadline is re-armed lazily when it fires.
    let mut last_activity = tokio::time::Instant::now();
    let sleep = tokio::time::sleep(idle);
    tokio::pin!(sleep);
    loop {
        let n = tokio::select! {
            r = stream.read(&mut chunk) => r?,
            _ = &mut sleep => {
                let deadline = last_activity + idle;
                if deadline <= tokio::time::Instant::now() {
                    return Ok(());
                }
                sleep.as_mut().reset(deadline);
                continue;
            }
        };
        if n == 0 {
            return Ok(());
        }
        last_activity = tokio::time::Instant::now();
        buf.extend_from_slice(&chunk[..n]);
        let mut used = 0;
        out.clear();
        loop {
            let (header, frame, len) = match codec::split_frame(&buf[used..]) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    stream.write_all(&out).await?;
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
                }
            };
            pdu.clear();
            pdu.extend_from_slice(frame);
            used += len;
            stats.requests.fetch_add(1, Ordering::Relaxed);
            let before = out.len();
            let answer = handler.answer(header, &pdu, &mut out).await;
            // An exception response is 9 bytes with the function's high bit set.
            if out.len() == before + 9 && out.get(before + 7).is_some_and(|f| f & 0x80 != 0) {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
            if answer == Answer::Drop {
                stream.write_all(&out).await?;
                return Ok(());
            }
        }
        buf.drain(..used);
        if !out.is_empty() {
            stream.write_all(&out).await?;
        }
    }
}
