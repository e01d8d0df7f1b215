//! `busbar-sim record`: poll a real device (Modbus TCP or RTU) through a profile's read plan,
//! or raw register ranges, and write every answer to a trace (crate::trace) as it comes, so a
//! recording cut short keeps everything read until then. Exceptions and silences are recorded
//! like words: a replay plays the device's quirks too.

use crate::trace::{frame_line, header_line, Answer, Frame, Header, FORMAT};
use busbar_core::profile::{Profile, Table};
use busbar_modbus::client::Client;
use busbar_modbus::codec::{Request, Response};
use busbar_modbus::rtu::{RtuError, RtuMaster, SerialLine, SerialStream};
use std::io::Write;
use std::time::Duration;
use tokio::time::Instant;

/// Where the device is.
#[derive(Debug, Clone)]
pub enum Source {
    /// `HOST:PORT` of a Modbus-TCP device or gateway.
    Tcp(String),
    Rtu(SerialLine),
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Tcp(a) => format!("tcp {a}"),
            Source::Rtu(l) => format!("rtu {}", l.device),
        }
    }
}

/// What to record.
#[derive(Debug, Clone)]
pub struct Recording {
    pub source: Source,
    pub unit: u8,
    /// The profile whose read plan gives the blocks (recorded in the header).
    pub profile: Option<String>,
    /// `(table, address, count)` read every interval, in this order.
    pub blocks: Vec<(Table, u16, u16)>,
    pub interval: Duration,
    pub duration: Duration,
    /// How long to wait for an answer before it is recorded as a silence.
    pub timeout: Duration,
}

/// Counts of a recording, for progress and the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub reads: u64,
    pub exceptions: u64,
    pub silences: u64,
    /// Seconds since the first request.
    pub elapsed_s: f64,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} reads in {:.0} s ({} exceptions, {} silences)",
            self.reads, self.elapsed_s, self.exceptions, self.silences
        )
    }
}

/// The blocks a poll of every point of `profile` reads: the bridge's own read plan.
pub fn profile_blocks(profile: &Profile) -> Vec<(Table, u16, u16)> {
    let all: Vec<usize> = (0..profile.points.len()).collect();
    busbar_modbus::plan::plan(profile, &all)
        .into_iter()
        .map(|b| (b.table, b.address, b.count))
        .collect()
}

/// A raw range as the command line writes it: `holding:120:8` (table, first address, count).
pub fn parse_range(text: &str) -> Result<(Table, u16, u16), String> {
    let bad = || format!("`{text}`: write TABLE:ADDRESS:COUNT, e.g. holding:120:8");
    let mut parts = text.split(':');
    let (Some(t), Some(a), Some(c), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let table = Table::parse(t).ok_or_else(|| format!("`{t}` is not coil, discrete, input or holding"))?;
    let address: u16 = a.parse().map_err(|_| bad())?;
    let count: u16 = c.parse().map_err(|_| bad())?;
    let max = if table.is_bits() {
        busbar_modbus::codec::MAX_READ_BITS
    } else {
        busbar_modbus::codec::MAX_READ_REGISTERS
    };
    if count == 0 || count > max || u32::from(address) + u32::from(count) > 65_536 {
        return Err(format!("`{text}`: a read of 1..={max} that fits the table"));
    }
    Ok((table, address, count))
}

fn request(table: Table, address: u16, count: u16) -> Request {
    match table {
        Table::Holding => Request::ReadHoldingRegisters { address, count },
        Table::Input => Request::ReadInputRegisters { address, count },
        Table::Coil => Request::ReadCoils { address, count },
        Table::Discrete => Request::ReadDiscreteInputs { address, count },
    }
}

enum Link {
    Tcp(Option<Client>),
    Rtu(RtuMaster<SerialStream>),
}

impl Link {
    /// One read: its answer, or a silence (nothing in time, a closed or refused connection, a
    /// garbled frame), with why for the log.
    async fn read(&mut self, source: &Source, unit: u8, req: &Request, timeout: Duration) -> Result<Response, String> {
        match self {
            Link::Tcp(slot) => {
                if slot.is_none() {
                    let Source::Tcp(addr) = source else {
                        return Err("not a TCP source".into());
                    };
                    let mut c = tokio::time::timeout(timeout, Client::connect_to(addr))
                        .await
                        .map_err(|_| format!("{addr}: no connection within {timeout:?}"))?
                        .map_err(|e| format!("{addr}: {e}"))?;
                    c.timeout = Some(timeout);
                    *slot = Some(c);
                }
                let client = slot.as_mut().ok_or("no connection")?;
                let r = client.call(unit, req).await;
                if r.is_err() {
                    // Rebuilt at the next read, as the bridge does after a timeout.
                    *slot = None;
                }
                r.map_err(|e| e.to_string())
            }
            Link::Rtu(master) => master.call(unit, req, timeout).await.map_err(|e| match e {
                RtuError::Timeout => "no answer in time".to_string(),
                other => other.to_string(),
            }),
        }
    }
}

/// Record `rec` into `out` until its duration is over or `stop` resolves; `progress` is called
/// after every poll cycle. Each line is flushed as it is written.
pub async fn record(
    rec: &Recording,
    out: &mut impl Write,
    stop: impl std::future::Future<Output = ()>,
    mut progress: impl FnMut(&Tally),
) -> anyhow::Result<Tally> {
    if rec.blocks.is_empty() {
        anyhow::bail!("nothing to record: give --profile or --range");
    }
    let mut link = match &rec.source {
        Source::Tcp(_) => Link::Tcp(None),
        Source::Rtu(line) => {
            let port = busbar_modbus::rtu::open_serial(line)
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", line.device))?;
            Link::Rtu(RtuMaster::new(port, line.baud, line.frame_interval))
        }
    };
    let header = Header {
        busbar_trace: FORMAT,
        source: rec.source.describe(),
        unit: rec.unit,
        profile: rec.profile.clone(),
        interval_ms: u64::try_from(rec.interval.as_millis()).unwrap_or(u64::MAX).max(1),
    };
    writeln!(out, "{}", header_line(&header))?;
    out.flush()?;
    let start = Instant::now();
    let end = start + rec.duration;
    let mut tally = Tally::default();
    let mut tick = tokio::time::interval_at(start, rec.interval.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    let mut last_error: Option<String> = None;
    'cycles: loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => break,
        }
        if Instant::now() >= end {
            break;
        }
        for &(table, address, count) in &rec.blocks {
            let t_s = start.elapsed().as_secs_f64();
            let req = request(table, address, count);
            let answer = tokio::select! {
                r = link.read(&rec.source, rec.unit, &req, rec.timeout) => r,
                _ = &mut stop => break 'cycles,
            };
            let answer = match answer {
                Ok(Response::Registers(w)) => Answer::Words(w),
                Ok(Response::Bits(b)) => {
                    Answer::Words(b.iter().take(usize::from(count)).map(|x| u16::from(*x)).collect())
                }
                Ok(Response::Exception(e)) => {
                    tally.exceptions += 1;
                    Answer::Exception(e.code())
                }
                Ok(Response::Written) => Answer::Silent,
                Err(why) => {
                    if last_error.as_deref() != Some(why.as_str()) {
                        tracing::warn!(source = %rec.source.describe(), unit = rec.unit, table = table.as_str(), address, "recorded as a silence: {why}");
                        last_error = Some(why);
                    }
                    tally.silences += 1;
                    Answer::Silent
                }
            };
            if matches!(answer, Answer::Words(_)) {
                last_error = None;
            }
            tally.reads += 1;
            let frame = Frame {
                t_s,
                table,
                address,
                count,
                answer,
            };
            writeln!(out, "{}", frame_line(&frame))?;
        }
        out.flush()?;
        tally.elapsed_s = start.elapsed().as_secs_f64();
        progress(&tally);
    }
    out.flush()?;
    tally.elapsed_s = start.elapsed().as_secs_f64();
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_or_say_how_to_write_them() {
        assert_eq!(parse_range("holding:120:8"), Ok((Table::Holding, 120, 8)));
        assert_eq!(parse_range("coil:0:16"), Ok((Table::Coil, 0, 16)));
        assert!(parse_range("holding:120").is_err_and(|e| e.contains("TABLE:ADDRESS:COUNT")));
        assert!(parse_range("register:1:1").is_err_and(|e| e.contains("not coil")));
        assert!(parse_range("input:1:200").is_err());
        assert!(parse_range("input:65535:2").is_err());
    }

    #[test]
    fn a_profile_is_recorded_along_the_bridges_read_plan() {
        let set = busbar_core::profile::embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
        let p = set.get("socomec-diris-a40").unwrap_or_else(|| panic!("profile"));
        let blocks = profile_blocks(p);
        assert!(!blocks.is_empty());
        for (i, p) in p.points.iter().enumerate() {
            let span = p.register.span();
            assert!(
                blocks.iter().any(|(t, a, c)| *t == p.register.table
                    && u32::from(*a) <= span.start
                    && span.end <= u32::from(*a) + u32::from(*c)),
                "point {i} ({}) is in a block",
                p.id
            );
        }
    }
}
