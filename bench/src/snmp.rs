//! SNMP load client (async-snmp's client): a GETBULK walk of a subtree (varbinds per second)
//! and sequential GET latency, against our agent or net-snmp's snmpd.

use async_snmp::{Auth, Client, Oid, WalkMethod, WalkOptions};
use std::net::SocketAddr;
use std::time::Instant;

async fn client(target: SocketAddr) -> anyhow::Result<async_snmp::UdpClient> {
    Client::builder(target.to_string(), Auth::v2c("public"))
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("snmp client to {target}: {e}"))
}

/// Walk `root` with GETBULK (max-repetitions 25): (varbinds, seconds).
pub async fn bulk_walk(target: SocketAddr, root: &[u32]) -> anyhow::Result<(usize, f64)> {
    let c = client(target).await?;
    let options = WalkOptions {
        method: WalkMethod::GetBulk,
        max_repetitions: 25,
        ..WalkOptions::default()
    };
    let start = Instant::now();
    let mut walk = c
        .walk_with(Oid::from_slice(root), options)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut n = 0usize;
    while let Some(v) = walk.next().await {
        v.map_err(|e| anyhow::anyhow!("walk of {target}: {e}"))?;
        n += 1;
    }
    Ok((n, start.elapsed().as_secs_f64()))
}

/// `count` sequential GETs of `oid`: (p50 ms, p99 ms).
pub async fn get_latency(target: SocketAddr, oid: &[u32], count: usize) -> anyhow::Result<(f64, f64)> {
    let c = client(target).await?;
    let oid = Oid::from_slice(oid);
    let mut ms = Vec::with_capacity(count);
    for _ in 0..count {
        let t = Instant::now();
        c.get(&oid)
            .await
            .map_err(|e| anyhow::anyhow!("get from {target}: {e}"))?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        ms.get(((ms.len() as f64 * q) as usize).min(ms.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok((at(0.5), at(0.99)))
}
