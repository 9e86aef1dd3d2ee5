//! The embedded store: one SQLite file (bundled library, WAL), created on first use.
//!
//! `payloads` keeps each run id once with its exact bytes. `stats` holds the estimators'
//! sufficient statistics per (app, day, event, field, parameters, label), updated in the same
//! transaction as the payload it counts, so a report reads a few rows per field and day instead
//! of every payload, and can never count a payload that is not stored (or miss one that is).
//! A transaction is committed with `synchronous = FULL` before the server answers: what was
//! answered as accepted survives a killed process and a power cut.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use telemetry_schema::Day;

use super::{Accepted, Query, ReportValue, Store, StoreError, TallyRow};

/// The layout version this build writes (in `meta`); another is refused, never reinterpreted.
const LAYOUT: &str = "1";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS payloads (
    run_id TEXT NOT NULL UNIQUE,
    app TEXT NOT NULL,
    app_version TEXT NOT NULL,
    day TEXT NOT NULL,
    received TEXT NOT NULL,
    schema_version TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS payloads_app_day ON payloads (app, day);
CREATE TABLE IF NOT EXISTS stats (
    app TEXT NOT NULL,
    day TEXT NOT NULL,
    event TEXT NOT NULL,
    field TEXT NOT NULL,
    params TEXT NOT NULL,
    kind INTEGER NOT NULL,
    label TEXT NOT NULL,
    n INTEGER NOT NULL,
    ones INTEGER NOT NULL,
    sum REAL NOT NULL,
    sum_sq REAL NOT NULL,
    PRIMARY KEY (app, day, event, field, params, kind, label)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS catalogs (
    app TEXT NOT NULL,
    version TEXT NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (app, version)
);
";

/// An SQLite store.
pub struct Sqlite {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

fn error(e: rusqlite::Error) -> StoreError {
    let message = e.to_string();
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::Full(message),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt(message),
        _ => StoreError::Unavailable(message),
    }
}

fn connect(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(
        |e| StoreError::Unavailable(format!("cannot open SQLite store {}: {e}", path.display())),
    )?;
    // Another process (a `report`, a `prune`) may hold the lock for a moment.
    conn.busy_timeout(Duration::from_secs(5)).map_err(error)?;
    Ok(conn)
}

impl Sqlite {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let writer = connect(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )?;
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "{} cannot use write-ahead logging (journal mode {mode})",
                path.display()
            )));
        }
        writer
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;")
            .map_err(error)?;
        writer.execute_batch(SCHEMA).map_err(error)?;
        let layout: Option<String> = writer
            .query_row("SELECT value FROM meta WHERE key = 'layout'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(error)?;
        match layout.as_deref() {
            None => {
                writer
                    .execute(
                        "INSERT INTO meta (key, value) VALUES ('layout', ?1)",
                        [LAYOUT],
                    )
                    .map_err(error)?;
            }
            Some(LAYOUT) => {}
            Some(other) => {
                return Err(StoreError::Corrupt(format!(
                    "{} has store layout {other:?}; this build knows {LAYOUT:?}",
                    path.display()
                )));
            }
        }
        let reader = connect(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    /// Caps the file at about `max_bytes` (SQLite's `max_page_count`, at least the current size).
    pub fn limit_size(&self, max_bytes: u64) -> Result<(), StoreError> {
        let conn = self.writer();
        let page: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(error)?;
        let pages = (max_bytes / page.max(512) as u64).max(1);
        conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
            .map_err(error)?;
        Ok(())
    }

    /// Writes a consistent copy of the store to `to` (a new file), while it keeps serving:
    /// SQLite's `VACUUM INTO`, which reads one snapshot and writes it compacted.
    pub fn backup(&self, to: &Path) -> Result<(), StoreError> {
        if to.exists() {
            return Err(StoreError::Invalid(format!(
                "{} exists; a backup is written to a new file",
                to.display()
            )));
        }
        let target = to
            .to_str()
            .ok_or_else(|| StoreError::Invalid(format!("{} is not a UTF-8 path", to.display())))?;
        self.reader()
            .execute("VACUUM INTO ?1", [target])
            .map_err(error)?;
        Ok(())
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `(kind, label, ones, integer)` of a report as the `stats` table keys and sums it.
fn stat_of(value: &ReportValue) -> (i64, &str, i64, f64) {
    match value {
        ReportValue::Bit(b) => (0, "", i64::from(*b), 0.0),
        ReportValue::Integer(i) => (1, "", 0, *i as f64),
        ReportValue::Label(l) => (2, l.as_str(), 0, 0.0),
    }
}

fn day_bounds(query: &Query) -> (String, String) {
    (
        query
            .since
            .map_or_else(|| "0000-00-00".to_owned(), |d| d.to_string()),
        query
            .until
            .map_or_else(|| "9999-99-99".to_owned(), |d| d.to_string()),
    )
}

fn parse_day(s: String) -> rusqlite::Result<Day> {
    s.parse().map_err(|e: telemetry_schema::FormatError| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

impl Store for Sqlite {
    fn describe(&self) -> String {
        format!("SQLite file {}", self.path.display())
    }

    fn insert(&self, batch: &[Accepted]) -> Result<Vec<bool>, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction().map_err(error)?;
        let mut fresh = Vec::with_capacity(batch.len());
        {
            let mut payload = tx
                .prepare_cached(
                    "INSERT INTO payloads (run_id, app, app_version, day, received, schema_version, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (run_id) DO NOTHING",
                )
                .map_err(error)?;
            let mut stat = tx
                .prepare_cached(
                    "INSERT INTO stats (app, day, event, field, params, kind, label, n, ones, sum, sum_sq)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?9, ?10)
                     ON CONFLICT DO UPDATE SET n = n + 1, ones = ones + excluded.ones,
                         sum = sum + excluded.sum, sum_sq = sum_sq + excluded.sum_sq",
                )
                .map_err(error)?;
            for a in batch {
                let day = a.day.to_string();
                let inserted = payload
                    .execute(params![
                        a.run_id,
                        a.app,
                        a.app_version,
                        day,
                        a.received.to_string(),
                        a.schema_version,
                        a.body
                    ])
                    .map_err(error)?;
                if inserted == 0 {
                    fresh.push(false);
                    continue;
                }
                for r in &a.reports {
                    let (kind, label, ones, x) = stat_of(&r.value);
                    stat.execute(params![
                        a.app,
                        day,
                        r.event,
                        r.field,
                        r.params,
                        kind,
                        label,
                        ones,
                        x,
                        x * x
                    ])
                    .map_err(error)?;
                }
                fresh.push(true);
            }
        }
        tx.commit().map_err(error)?;
        Ok(fresh)
    }

    fn register_catalog(&self, app: &str, version: &str, json: &str) -> Result<(), StoreError> {
        self.writer()
            .execute(
                "INSERT INTO catalogs (app, version, json) VALUES (?1, ?2, ?3)
                 ON CONFLICT (app, version) DO UPDATE SET json = excluded.json",
                params![app, version, json],
            )
            .map_err(error)?;
        Ok(())
    }

    fn catalogs(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached("SELECT json FROM catalogs ORDER BY app, version")
            .map_err(error)?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(error)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(error)?;
        Ok(rows)
    }

    fn payload_counts(&self, query: &Query) -> Result<Vec<(String, Day, u64)>, StoreError> {
        let (since, until) = day_bounds(query);
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT app, day, count(*) FROM payloads
                 WHERE (?1 IS NULL OR app = ?1) AND day >= ?2 AND day <= ?3
                 GROUP BY app, day ORDER BY app, day",
            )
            .map_err(error)?;
        let rows = stmt
            .query_map(params![query.app, since, until], |r| {
                Ok((r.get(0)?, parse_day(r.get(1)?)?, r.get::<_, i64>(2)? as u64))
            })
            .map_err(error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(error)?;
        Ok(rows)
    }

    fn tallies(&self, app: &str, query: &Query) -> Result<Vec<TallyRow>, StoreError> {
        let (since, until) = day_bounds(query);
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT day, event, field, params, kind, label,
                        sum(n), sum(ones), total(sum), total(sum_sq)
                 FROM stats WHERE app = ?1 AND day >= ?2 AND day <= ?3
                 GROUP BY day, event, field, params, kind, label",
            )
            .map_err(error)?;
        let rows = stmt
            .query_map(params![app, since, until], |r| {
                let kind: i64 = r.get(4)?;
                Ok(TallyRow {
                    day: parse_day(r.get(0)?)?,
                    event: r.get(1)?,
                    field: r.get(2)?,
                    params: r.get(3)?,
                    label: (kind == 2).then(|| r.get(5)).transpose()?,
                    n: r.get::<_, i64>(6)? as u64,
                    ones: r.get::<_, i64>(7)? as u64,
                    sum: r.get(8)?,
                    sum_sq: r.get(9)?,
                })
            })
            .map_err(error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(error)?;
        Ok(rows)
    }

    fn contains(&self, run_id: &str) -> Result<bool, StoreError> {
        self.reader()
            .query_row("SELECT 1 FROM payloads WHERE run_id = ?1", [run_id], |_| {
                Ok(())
            })
            .optional()
            .map(|r| r.is_some())
            .map_err(error)
    }

    fn prune(&self, before: Day) -> Result<u64, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction().map_err(error)?;
        let day = before.to_string();
        let removed = tx
            .execute("DELETE FROM payloads WHERE day < ?1", [&day])
            .map_err(error)?;
        tx.execute("DELETE FROM stats WHERE day < ?1", [&day])
            .map_err(error)?;
        tx.commit().map_err(error)?;
        Ok(removed as u64)
    }

    fn check(&self) -> Result<(), StoreError> {
        let verdict: String = self
            .reader()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(error)?;
        if verdict == "ok" {
            Ok(())
        } else {
            Err(StoreError::Corrupt(verdict))
        }
    }
}
