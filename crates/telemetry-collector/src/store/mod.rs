//! Where accepted payloads are kept, and the sufficient statistics computed from them.
//!
//! A store keeps, per payload, only what the payload itself says (its exact bytes, app, day,
//! schema version) and the day it was received: no address, header or finer time exists to keep.
//! Every store counts a run id once, however often it is inserted, and computes the estimators'
//! sufficient statistics itself (`GROUP BY` app, event, field, DP parameters, day).

use std::fmt;

use telemetry_schema::Day;

pub mod clickhouse;
pub mod sqlite;

/// One report of one field, reduced to what its estimator uses.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportValue {
    /// A bit (randomised response, 1BitMean).
    Bit(bool),
    /// A noisy integer (discrete Laplace).
    Integer(i64),
    /// A label, version or redacted text.
    Label(String),
}

/// One report of one field of one event, under one DP parameter block.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReport {
    /// Event name.
    pub event: String,
    /// Field name.
    pub field: String,
    /// The DP parameter block, canonical JSON (`telemetry_schema::params_key`).
    pub params: String,
    /// The report.
    pub value: ReportValue,
}

/// A validated payload, as a store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// Its run id (the store's key: kept once).
    pub run_id: String,
    /// The app's name.
    pub app: String,
    /// The app's version.
    pub app_version: String,
    /// The day the payload covers (`period.day`).
    pub day: Day,
    /// The day it was received (UTC); nothing finer is kept.
    pub received: Day,
    /// The envelope format version it declared.
    pub schema_version: String,
    /// The exact bytes received.
    pub body: Vec<u8>,
    /// Every non-null report in it.
    pub reports: Vec<StoredReport>,
}

/// Sufficient statistics of one (day, event, field, parameters, label) group.
#[derive(Debug, Clone, PartialEq)]
pub struct TallyRow {
    /// The payloads' day.
    pub day: Day,
    /// Event name.
    pub event: String,
    /// Field name.
    pub field: String,
    /// The DP parameter block, canonical JSON.
    pub params: String,
    /// The label, version or text of label reports; `None` for bits and integers.
    pub label: Option<String>,
    /// Number of reports.
    pub n: u64,
    /// Reports that were `true`.
    pub ones: u64,
    /// Sum of integer reports.
    pub sum: f64,
    /// Sum of their squares.
    pub sum_sq: f64,
}

/// Which payloads a question is about. Days are inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Only this app.
    pub app: Option<String>,
    /// From this day on.
    pub since: Option<Day>,
    /// Up to this day.
    pub until: Option<Day>,
}

/// What went wrong in a store. The server answers 503 (`Unavailable`) or 507 (`Full`); nothing
/// was stored of a batch that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// Cannot be reached or used now (locked, down, unreadable); try again later.
    Unavailable(String),
    /// Out of space.
    Full(String),
    /// Its contents are damaged or not this collector's.
    Corrupt(String),
    /// A bad request (e.g. an unknown URL scheme).
    Invalid(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(m) => write!(f, "store unavailable: {m}"),
            Self::Full(m) => write!(f, "store full: {m}"),
            Self::Corrupt(m) => write!(f, "store damaged: {m}"),
            Self::Invalid(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A place payloads are kept. Implementations are safe to share between threads; the server
/// writes from one thread and reads reports from others.
pub trait Store: Send + Sync {
    /// Where it is, for people (no credentials).
    fn describe(&self) -> String;

    /// Keeps every payload of `batch` whose run id is new, durably, all or nothing: on `Ok` each
    /// is stored (`true`: new, `false`: its run id was already there and nothing changed).
    fn insert(&self, batch: &[Accepted]) -> Result<Vec<bool>, StoreError>;

    /// Remembers a catalogue (JSON as `telemetry catalog --json` prints it) of `app` at
    /// `version`, replacing one of the same app and version.
    fn register_catalog(&self, app: &str, version: &str, json: &str) -> Result<(), StoreError>;

    /// Every catalogue remembered, as JSON.
    fn catalogs(&self) -> Result<Vec<String>, StoreError>;

    /// Payloads per (app, day) matching `query`, each run id once, ordered by app then day.
    fn payload_counts(&self, query: &Query) -> Result<Vec<(String, Day, u64)>, StoreError>;

    /// Sufficient statistics of `app`'s reports matching `query`, each run id once.
    fn tallies(&self, app: &str, query: &Query) -> Result<Vec<TallyRow>, StoreError>;

    /// Whether `run_id` is stored.
    fn contains(&self, run_id: &str) -> Result<bool, StoreError>;

    /// Removes every payload (and its statistics) of a day before `before`; returns how many
    /// payloads were removed.
    fn prune(&self, before: Day) -> Result<u64, StoreError>;

    /// Checks the store's integrity (SQLite's `integrity_check`; a query elsewhere).
    fn check(&self) -> Result<(), StoreError>;
}

/// How a store is opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// SQLite only: the file may grow to about this many bytes; past it, inserts fail with
    /// [`StoreError::Full`] (answered 507) and nothing stored is lost.
    pub max_bytes: Option<u64>,
}

/// Opens the store a `--store` value names: `sqlite:PATH` or a plain path (SQLite, created on
/// first use), or `clickhouse://HOST:PORT/DATABASE` (tables created on first use).
pub fn open(url: &str) -> Result<Box<dyn Store>, StoreError> {
    open_with(url, OpenOptions::default())
}

/// [`open`] with options.
pub fn open_with(url: &str, options: OpenOptions) -> Result<Box<dyn Store>, StoreError> {
    if let Some(rest) = url.strip_prefix("clickhouse://") {
        if options.max_bytes.is_some() {
            return Err(StoreError::Invalid(
                "a size limit applies to an SQLite store only (ClickHouse has its own quotas)"
                    .into(),
            ));
        }
        return Ok(Box::new(clickhouse::ClickHouse::open(rest)?));
    }
    if url.contains("://") {
        return Err(StoreError::Invalid(format!(
            "unknown store {url:?}: use a path (SQLite) or clickhouse://HOST:PORT/DATABASE"
        )));
    }
    let path = url.strip_prefix("sqlite:").unwrap_or(url);
    if path.is_empty() {
        return Err(StoreError::Invalid("the store path is empty".into()));
    }
    let store = sqlite::Sqlite::open(std::path::Path::new(path))?;
    if let Some(max) = options.max_bytes {
        store.limit_size(max)?;
    }
    Ok(Box::new(store))
}
