//! The alarm journal's commit rate against SQLite's own insert rate for the same rows, on the
//! same disk, with the same settings (WAL, synchronous FULL): one transition per commit (every
//! commit waits for the disk), and batches of 50 (what one evaluation pass of many changes
//! commits at once).

use busbar_bridge::alarms::journal::Journal;
use busbar_bridge::alarms::{Actor, AlarmState, Kind, Level, Severity, Source, Transition};
use rusqlite::{params, Connection};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

fn transition(i: usize) -> Transition {
    let raised = i.is_multiple_of(2);
    Transition {
        seq: 0,
        alarm: format!("threshold/voltage/meter{}/v1", i % 500),
        kind: if raised { Kind::Raised } else { Kind::Cleared },
        time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_000 + i as u64),
        source: Source::Threshold,
        severity: Severity::Minor,
        level: raised.then_some(Level::High),
        device: format!("meter{}", i % 500),
        point: "v1".into(),
        value: Some(254.0),
        message: format!("meter{} Phase-neutral voltage V1 254 V above 253 V", i % 500),
        actor: Actor::engine(),
        state: AlarmState {
            active: raised,
            acknowledged: false,
            shelved_until_ms: None,
            disabled: false,
        },
    }
}

/// Transitions per second through the journal, `per_commit` a transaction.
fn ours(dir: &Path, n: usize, per_commit: usize) -> anyhow::Result<f64> {
    let mut j = Journal::open(&dir.join(format!("ours-{per_commit}.db")))?;
    let batches: Vec<Vec<Transition>> = (0..n / per_commit)
        .map(|b| (0..per_commit).map(|k| transition(b * per_commit + k)).collect())
        .collect();
    let t0 = Instant::now();
    for batch in batches {
        j.append(batch)?;
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

/// The same rows inserted with rusqlite alone: one table, the same columns, the same pragmas.
fn sqlite(dir: &Path, n: usize, per_commit: usize) -> anyhow::Result<f64> {
    let mut c = Connection::open(dir.join(format!("sqlite-{per_commit}.db")))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    c.execute_batch(
        "CREATE TABLE t (seq INTEGER PRIMARY KEY, alarm TEXT, kind TEXT, time_ms INTEGER, source TEXT, severity TEXT,
         level TEXT, device TEXT, point TEXT, value REAL, message TEXT, user TEXT, via TEXT, comment TEXT,
         active INTEGER, acknowledged INTEGER, shelved_until_ms INTEGER, disabled INTEGER)",
    )?;
    let rows: Vec<Transition> = (0..n).map(transition).collect();
    let t0 = Instant::now();
    for chunk in rows.chunks(per_commit) {
        let tx = c.transaction()?;
        {
            let mut s = tx.prepare_cached(
                "INSERT INTO t (alarm, kind, time_ms, source, severity, level, device, point, value, message, user, via,
                 comment, active, acknowledged, shelved_until_ms, disabled)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )?;
            for t in chunk {
                s.execute(params![
                    t.alarm,
                    t.kind.as_str(),
                    1_795_000_000_000i64,
                    t.source.as_str(),
                    t.severity.as_str(),
                    t.level.map(Level::as_str),
                    t.device,
                    t.point,
                    t.value,
                    t.message,
                    t.actor.user,
                    t.actor.via,
                    t.actor.comment,
                    t.state.active,
                    t.state.acknowledged,
                    t.state.shelved_until_ms,
                    t.state.disabled,
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

pub fn journal_rows(quick: bool) -> anyhow::Result<Vec<String>> {
    let dir = std::env::temp_dir().join(format!("busbar-bench-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut rows = Vec::new();
    for (per_commit, n) in [
        (1, if quick { 200 } else { 1_000 }),
        (50, if quick { 5_000 } else { 50_000 }),
    ] {
        let a = ours(&dir, n, per_commit)?;
        let b = sqlite(&dir, n, per_commit)?;
        rows.push(format!(
            "| alarms: journal, {per_commit} transition(s) per commit, {n} transitions | {a:.0} transitions/s ({:.0} commits/s) | SQLite alone, same rows and pragmas: {b:.0} rows/s | {:.2}x SQLite's rate (the journal also updates each alarm's last-transition row) |",
            a / per_commit as f64,
            a / b.max(1e-9)
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rows)
}
