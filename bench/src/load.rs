//! Modbus read load: N concurrent clients, one request in flight each, counting answers.

use busbar_modbus::client::Client;
use busbar_modbus::codec::Request;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests per second answered, and errors seen.
pub async fn read_load(
    addr: SocketAddr,
    unit: u8,
    address: u16,
    count: u16,
    clients: usize,
    window: Duration,
) -> anyhow::Result<(f64, u64)> {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let mut c = Client::connect(addr).await?;
        c.timeout = None;
        let (done, errors, stop) = (done.clone(), errors.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let req = Request::ReadHoldingRegisters { address, count };
            while !stop.load(Ordering::Relaxed) {
                match c.call(unit, &req).await {
                    Ok(busbar_modbus::codec::Response::Registers(_)) => done.fetch_add(1, Ordering::Relaxed),
                    _ => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    // Warm up, then measure.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start_count = done.load(Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let n = done.load(Ordering::Relaxed) - start_count;
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    Ok((rate, errors.load(Ordering::Relaxed)))
}
