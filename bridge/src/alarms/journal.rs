//! The alarm journal: every transition in SQLite (WAL, synchronous FULL), committed before it
//! is announced, with the current state of every alarm beside it in the same transaction, so
//! that a restart (or a kill -9) finds exactly what was announced: nothing lost, nothing twice.
//! Migrations are numbered by `PRAGMA user_version`.

use super::model::{Actor, AlarmState, Kind, Level, Severity, Source, Transition};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The schema, one step per version.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE transitions (
        seq INTEGER PRIMARY KEY,
        alarm TEXT NOT NULL,
        kind TEXT NOT NULL,
        time_ms INTEGER NOT NULL,
        source TEXT NOT NULL,
        severity TEXT NOT NULL,
        level TEXT,
        device TEXT NOT NULL,
        point TEXT NOT NULL,
        value REAL,
        message TEXT NOT NULL,
        user TEXT NOT NULL,
        via TEXT NOT NULL,
        comment TEXT NOT NULL,
        active INTEGER NOT NULL,
        acknowledged INTEGER NOT NULL,
        shelved_until_ms INTEGER,
        disabled INTEGER NOT NULL
    );
    CREATE INDEX transitions_time ON transitions (time_ms);
    CREATE INDEX transitions_device_time ON transitions (device, time_ms);
    CREATE INDEX transitions_severity_time ON transitions (severity, time_ms);
    CREATE INDEX transitions_alarm ON transitions (alarm, seq);
    CREATE TABLE alarms (
        id TEXT PRIMARY KEY,
        last_seq INTEGER NOT NULL REFERENCES transitions (seq)
    );
",
    "
    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY,
        time_ms INTEGER NOT NULL,
        channel TEXT NOT NULL,
        recipient TEXT NOT NULL,
        subject TEXT NOT NULL,
        transitions TEXT NOT NULL,
        outcome TEXT NOT NULL,
        attempts INTEGER NOT NULL
    );
    CREATE INDEX notifications_time ON notifications (time_ms);
",
    "
    CREATE TABLE protocol_state (
        key TEXT PRIMARY KEY,
        value BLOB NOT NULL,
        time_ms INTEGER NOT NULL
    );
",
];

/// A transition before the journal numbers it.
pub type NewTransition = Transition;

/// What a history query selects. Times are inclusive-exclusive, Unix ms.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub device: Option<String>,
    pub alarm: Option<String>,
    /// This severity and above.
    pub min_severity: Option<Severity>,
    pub kind: Option<Kind>,
    pub limit: usize,
    pub offset: usize,
    /// Oldest first (OPC UA HistoryReadEvents forward in time); newest first otherwise.
    pub oldest_first: bool,
}

pub struct Journal {
    conn: Connection,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("alarm journal: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("alarm journal: {0}")]
    Corrupt(String),
}

pub fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn from_unix_ms(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

impl Journal {
    /// Open (or create) the journal file and bring its schema up to date.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| JournalError::Corrupt(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path)?;
        Journal::init(conn)
    }

    /// A journal in memory (tests, benchmarks of the engine alone).
    pub fn in_memory() -> Result<Journal, JournalError> {
        Journal::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Journal, JournalError> {
        // Another process on the same file (a second demo) waits its turn instead of failing.
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version > MIGRATIONS.len() {
            return Err(JournalError::Corrupt(format!(
                "schema version {version} is newer than this busbar knows ({}): use a newer busbar",
                MIGRATIONS.len()
            )));
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(step)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(Journal { conn })
    }

    /// Commit transitions in one transaction; returns them numbered.
    pub fn append(&mut self, batch: Vec<NewTransition>) -> Result<Vec<Transition>, JournalError> {
        let tx = self.conn.transaction()?;
        let mut out = Vec::with_capacity(batch.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO transitions (alarm, kind, time_ms, source, severity, level, device, point, value,
                 message, user, via, comment, active, acknowledged, shelved_until_ms, disabled)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )?;
            let mut latest = tx.prepare_cached(
                "INSERT INTO alarms (id, last_seq) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET last_seq = excluded.last_seq",
            )?;
            for mut t in batch {
                insert.execute(params![
                    t.alarm,
                    t.kind.as_str(),
                    unix_ms(t.time),
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
                t.seq = tx.last_insert_rowid();
                latest.execute(params![t.alarm, t.seq])?;
                out.push(t);
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// The last transition of every alarm the journal knows: the state to restore at start.
    pub fn latest(&self) -> Result<Vec<Transition>, JournalError> {
        let mut q = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM transitions t JOIN alarms a ON a.last_seq = t.seq ORDER BY t.seq"
        ))?;
        let rows = q.query_map([], row)?;
        rows.map(|r| r.map_err(JournalError::from).and_then(|t| t)).collect()
    }

    /// Transitions matching `f`, newest first (oldest first with `oldest_first`).
    pub fn query(&self, f: &Filter) -> Result<Vec<Transition>, JournalError> {
        let mut sql = format!("SELECT {COLUMNS} FROM transitions t WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(v) = f.from_ms {
            sql.push_str(" AND t.time_ms >= ?");
            args.push(v.into());
        }
        if let Some(v) = f.to_ms {
            sql.push_str(" AND t.time_ms < ?");
            args.push(v.into());
        }
        if let Some(v) = &f.device {
            sql.push_str(" AND t.device = ?");
            args.push(v.clone().into());
        }
        if let Some(v) = &f.alarm {
            sql.push_str(" AND t.alarm = ?");
            args.push(v.clone().into());
        }
        if let Some(min) = f.min_severity {
            let names: Vec<String> = Severity::ALL
                .iter()
                .filter(|s| **s >= min)
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            sql.push_str(&format!(" AND t.severity IN ({})", names.join(", ")));
        }
        if let Some(k) = f.kind {
            sql.push_str(" AND t.kind = ?");
            args.push(k.as_str().to_string().into());
        }
        sql.push_str(if f.oldest_first {
            " ORDER BY t.time_ms ASC, t.seq ASC LIMIT ? OFFSET ?"
        } else {
            " ORDER BY t.time_ms DESC, t.seq DESC LIMIT ? OFFSET ?"
        });
        args.push(i64::try_from(f.limit.clamp(1, 100_000)).unwrap_or(100).into());
        args.push(i64::try_from(f.offset).unwrap_or(0).into());
        let mut q = self.conn.prepare_cached(&sql)?;
        let rows = q.query_map(rusqlite::params_from_iter(args), row)?;
        rows.map(|r| r.map_err(JournalError::from).and_then(|t| t)).collect()
    }

    /// Forget transitions older than `before_ms`, except each alarm's last one (its state).
    pub fn prune(&mut self, before_ms: i64) -> Result<usize, JournalError> {
        Ok(self.conn.execute(
            "DELETE FROM transitions WHERE time_ms < ?1 AND seq NOT IN (SELECT last_seq FROM alarms)",
            params![before_ms],
        )?)
    }

    /// A notification sent (or given up): when, over what, to whom, which transitions (their
    /// sequence numbers, comma-separated), the outcome and the attempts it took.
    #[allow(clippy::too_many_arguments)]
    pub fn record_notification(
        &mut self,
        time_ms: i64,
        channel: &str,
        recipient: &str,
        subject: &str,
        transitions: &str,
        outcome: &str,
        attempts: u32,
    ) -> Result<(), JournalError> {
        self.conn.execute(
            "INSERT INTO notifications (time_ms, channel, recipient, subject, transitions, outcome, attempts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![time_ms, channel, recipient, subject, transitions, outcome, attempts],
        )?;
        Ok(())
    }

    /// The number of transitions kept.
    /// State a protocol server keeps across restarts (a BACnet Recipient_List a BMS wrote),
    /// under its key.
    pub fn protocol_state(&self, key: &str) -> Result<Option<Vec<u8>>, JournalError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM protocol_state WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn set_protocol_state(&mut self, key: &str, value: &[u8], time_ms: i64) -> Result<(), JournalError> {
        self.conn.execute(
            "INSERT INTO protocol_state (key, value, time_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, time_ms = excluded.time_ms",
            params![key, value, time_ms],
        )?;
        Ok(())
    }

    pub fn len(&self) -> Result<u64, JournalError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM transitions", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)?)
    }

    pub fn is_empty(&self) -> Result<bool, JournalError> {
        Ok(self
            .conn
            .query_row("SELECT seq FROM transitions LIMIT 1", [], |r| r.get::<_, i64>(0))
            .optional()?
            .is_none())
    }
}

const COLUMNS: &str = "t.seq, t.alarm, t.kind, t.time_ms, t.source, t.severity, t.level, t.device, t.point, \
                       t.value, t.message, t.user, t.via, t.comment, t.active, t.acknowledged, \
                       t.shelved_until_ms, t.disabled";

/// One row as a transition; an unknown name in a row is a corrupt journal, not a panic.
fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Transition, JournalError>> {
    let kind: String = r.get(2)?;
    let source: String = r.get(4)?;
    let severity: String = r.get(5)?;
    let level: Option<String> = r.get(6)?;
    let corrupt = |what: &str, v: &str| JournalError::Corrupt(format!("unknown {what} `{v}`"));
    let Some(kind) = Kind::parse(&kind) else {
        return Ok(Err(corrupt("kind", &kind)));
    };
    let Some(source) = Source::parse(&source) else {
        return Ok(Err(corrupt("source", &source)));
    };
    let Some(severity) = Severity::parse(&severity) else {
        return Ok(Err(corrupt("severity", &severity)));
    };
    let level = match level {
        None => None,
        Some(l) => match Level::parse(&l) {
            Some(l) => Some(l),
            None => return Ok(Err(corrupt("level", &l))),
        },
    };
    Ok(Ok(Transition {
        seq: r.get(0)?,
        alarm: r.get(1)?,
        kind,
        time: from_unix_ms(r.get(3)?),
        source,
        severity,
        level,
        device: r.get(7)?,
        point: r.get(8)?,
        value: r.get(9)?,
        message: r.get(10)?,
        actor: Actor {
            user: r.get(11)?,
            via: r.get(12)?,
            comment: r.get(13)?,
        },
        state: AlarmState {
            active: r.get(14)?,
            acknowledged: r.get(15)?,
            shelved_until_ms: r.get(16)?,
            disabled: r.get(17)?,
        },
    }))
}
