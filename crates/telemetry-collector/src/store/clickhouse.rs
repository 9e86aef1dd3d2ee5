//! The scale-out store: one ClickHouse database, over its HTTP interface, shared by any number
//! of stateless collectors.
//!
//! Three tables, created by [`ClickHouse::open`]:
//!
//! - `payloads`: one row per run id (app, app version, day, received day, schema version and
//!   the exact body), `ReplacingMergeTree` partitioned by month and ordered by
//!   `(app, day, run_id)`;
//! - `reports`: one row per report of a payload (event, field, parameters, kind 0 bit / 1
//!   integer / 2 label, and its value), `ReplacingMergeTree` ordered by
//!   `(app, day, event, field, run_id, position)`, `position` being the report's index in its
//!   payload (a payload may hold the same field several times);
//! - `catalogs`: one row per (app, version), `ReplacingMergeTree`, the last registered wins.
//!
//! ClickHouse cannot refuse a duplicate atomically: two collectors given the same run id at the
//! same moment may both insert it. [`Store::insert`] skips run ids already stored (a lookup just
//! before the insert), and the table engines collapse rows of equal key, but only eventually, at
//! merge time. So every read uses `FINAL`, which collapses them at query time: a duplicate that
//! slipped in is still counted once. Reports are written before their payloads, and statistics
//! count only reports whose payload is stored, so a batch that failed half-way counts nothing
//! (and its retry collapses onto what was written).
//!
//! Days are ClickHouse `Date`s (1970-01-01 to 2105-12-31; ClickHouse prints the first as
//! `0000-00-00`). Values travel as `JSONEachRow` bodies; the few values in query text (app,
//! run ids, days) are quoted and escaped.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use telemetry_schema::Day;

use super::{Accepted, Query, ReportValue, Store, StoreError, TallyRow};

/// The last day a ClickHouse `Date` holds.
const LAST_DATE: &str = "2105-12-31";
/// How long [`Store::prune`] waits for ClickHouse to finish deleting.
const PRUNE_WAIT: Duration = Duration::from_secs(30);
/// Run ids looked up per query.
const ID_CHUNK: usize = 2000;
/// The largest answer read (catalogues, tallies).
const MAX_ANSWER: u64 = 1 << 30;

/// A table this store makes.
struct TableSpec {
    name: &'static str,
    /// What follows the name in `CREATE TABLE`.
    definition: &'static str,
    /// Its columns as `system.columns` lists them (name, type).
    columns: &'static [(&'static str, &'static str)],
}

const TABLES: [TableSpec; 3] = [
    TableSpec {
        name: "payloads",
        definition: "(run_id String, app String, app_version String, day Date, received Date,
          schema_version String, body String)
         ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(day) ORDER BY (app, day, run_id)",
        columns: &[
            ("run_id", "String"),
            ("app", "String"),
            ("app_version", "String"),
            ("day", "Date"),
            ("received", "Date"),
            ("schema_version", "String"),
            ("body", "String"),
        ],
    },
    TableSpec {
        name: "reports",
        definition:
            "(app String, day Date, run_id String, position UInt32, event String, field String,
          params String, kind UInt8, ones UInt8, value Int64, label String)
         ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(day)
         ORDER BY (app, day, event, field, run_id, position)",
        columns: &[
            ("app", "String"),
            ("day", "Date"),
            ("run_id", "String"),
            ("position", "UInt32"),
            ("event", "String"),
            ("field", "String"),
            ("params", "String"),
            ("kind", "UInt8"),
            ("ones", "UInt8"),
            ("value", "Int64"),
            ("label", "String"),
        ],
    },
    TableSpec {
        name: "catalogs",
        definition: "(app String, version String, json String)
         ENGINE = ReplacingMergeTree() ORDER BY (app, version)",
        columns: &[("app", "String"), ("version", "String"), ("json", "String")],
    },
];

/// A ClickHouse store.
pub struct ClickHouse {
    /// `http://HOST:PORT/`.
    base: String,
    database: String,
    /// `X-ClickHouse-User` and `X-ClickHouse-Key`, if the URL named a user.
    user: Option<(String, String)>,
    agent: ureq::Agent,
}

#[derive(Serialize)]
struct PayloadRow<'a> {
    run_id: &'a str,
    app: &'a str,
    app_version: &'a str,
    day: String,
    received: String,
    schema_version: &'a str,
    body: &'a str,
}

#[derive(Serialize)]
struct ReportRow<'a> {
    app: &'a str,
    day: &'a str,
    run_id: &'a str,
    position: u32,
    event: &'a str,
    field: &'a str,
    params: &'a str,
    kind: u8,
    ones: u8,
    value: i64,
    label: &'a str,
}

#[derive(Serialize)]
struct CatalogRow<'a> {
    app: &'a str,
    version: &'a str,
    json: &'a str,
}

/// `'text'`, escaped for ClickHouse.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Percent-encodes a URL query value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Whether `day` fits a ClickHouse `Date`.
fn fits(day: Day) -> bool {
    day.to_string().as_str() <= LAST_DATE
}

fn parse_day(text: &str) -> Result<Day, StoreError> {
    if text == "0000-00-00" {
        // Day 0 of a `Date`.
        return Day::new(1970, 1, 1).map_err(|e| StoreError::Corrupt(e.to_string()));
    }
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("ClickHouse gave a bad day {text:?}: {e}")))
}

/// `AND day >= … AND day <= …` for `query`'s bounds; `None` if nothing can match.
fn day_filter(query: &Query) -> Option<String> {
    let mut sql = String::new();
    if let Some(since) = query.since {
        if !fits(since) {
            return None;
        }
        let _ = write!(sql, " AND day >= {}", quote(&since.to_string()));
    }
    if let Some(until) = query.until.filter(|d| fits(*d)) {
        let _ = write!(sql, " AND day <= {}", quote(&until.to_string()));
    }
    Some(sql)
}

/// Whether a ClickHouse error is about disk space.
fn is_full(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("no space left") || m.contains("not enough space") || m.contains("code: 243,")
}

fn unavailable(error: &ureq::Error) -> StoreError {
    StoreError::Unavailable(match error {
        ureq::Error::Timeout(what) => format!("ClickHouse timed out ({what})"),
        ureq::Error::Io(e) => format!("cannot reach ClickHouse: {e}"),
        ureq::Error::ConnectionFailed => "cannot reach ClickHouse: connection failed".into(),
        ureq::Error::HostNotFound => "cannot reach ClickHouse: host not found".into(),
        other => format!("ClickHouse: {other}"),
    })
}

/// What a refused query means for the store.
fn refused(status: u16, text: &str) -> StoreError {
    let text = text.trim();
    let message: String = text.chars().take(500).collect();
    if is_full(text) {
        StoreError::Full(format!("ClickHouse: {message}"))
    } else if status == 404 {
        // Unknown database, table or column: not this collector's layout.
        StoreError::Corrupt(format!("ClickHouse: {message}"))
    } else {
        StoreError::Unavailable(format!("ClickHouse answered {status}: {message}"))
    }
}

/// An answer that does not parse: an error ClickHouse met after it began answering `200 OK`
/// (it then appends `Code: …` to what it sent), or else something that is not ClickHouse.
fn unexpected(answer: &str, line: &str) -> StoreError {
    match answer.find("Code: ") {
        Some(at) => refused(500, &answer[at..]),
        None => StoreError::Corrupt(format!("unexpected answer from ClickHouse: {line:.200}")),
    }
}

/// Rows of a `FORMAT JSONEachRow` answer.
fn rows<T: for<'de> Deserialize<'de>>(answer: &str) -> Result<Vec<T>, StoreError> {
    answer
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|_| unexpected(answer, l)))
        .collect()
}

fn json_lines<T: Serialize>(items: impl IntoIterator<Item = T>) -> Result<String, StoreError> {
    let mut out = String::new();
    for item in items {
        let line = serde_json::to_string(&item).map_err(|e| StoreError::Invalid(e.to_string()))?;
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

/// What a store URL names.
struct Target {
    host: String,
    port: u16,
    database: String,
    user: Option<(String, String)>,
}

/// `[USER[:PASSWORD]@]HOST[:PORT]/DATABASE`.
fn parse_url(rest: &str) -> Result<Target, StoreError> {
    let bad = |why: &str| {
        StoreError::Invalid(format!(
            "bad ClickHouse store clickhouse://{rest}: {why} (expected clickhouse://HOST:PORT/DATABASE)"
        ))
    };
    let (authority, database) = rest.split_once('/').ok_or_else(|| bad("no database"))?;
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => {
            let (user, key) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            if user.is_empty() {
                return Err(bad("empty user name"));
            }
            (Some((user.to_owned(), key.to_owned())), hostport)
        }
        None => (None, authority),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') => (
            host,
            port.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("bad port"))?,
        ),
        _ => (hostport, 8123),
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[') && host.ends_with(']')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)));
    if !host_ok {
        return Err(bad("bad host"));
    }
    let database_ok = database
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && database
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !database_ok {
        return Err(bad("the database must be a name of letters, digits and _"));
    }
    Ok(Target {
        host: host.to_owned(),
        port,
        database: database.to_owned(),
        user,
    })
}

impl ClickHouse {
    /// Opens `[USER[:PASSWORD]@]HOST:PORT/DATABASE` (what follows `clickhouse://`), creating the
    /// database and its tables if needed, and checks their layout.
    pub fn open(rest: &str) -> Result<ClickHouse, StoreError> {
        let Target {
            host,
            port,
            database,
            user,
        } = parse_url(rest)?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(3)))
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        let store = ClickHouse {
            base: format!("http://{host}:{port}/"),
            database,
            user,
            agent,
        };
        store.create()?;
        store.layout()?;
        Ok(store)
    }

    fn create(&self) -> Result<(), StoreError> {
        let db = &self.database;
        let mut statements = vec![format!("CREATE DATABASE IF NOT EXISTS {db}")];
        for t in &TABLES {
            statements.push(format!(
                "CREATE TABLE IF NOT EXISTS {db}.{} {}",
                t.name, t.definition
            ));
        }
        for sql in statements {
            match self.query(&sql) {
                // Another collector created it at the same moment.
                Err(StoreError::Unavailable(m)) if m.contains("already exists") => {}
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }

    /// Checks the three tables exist with this collector's columns and engine.
    fn layout(&self) -> Result<(), StoreError> {
        #[derive(Deserialize)]
        struct Column {
            table: String,
            name: String,
            #[serde(rename = "type")]
            kind: String,
        }
        #[derive(Deserialize)]
        struct Table {
            name: String,
            engine: String,
        }
        let db = quote(&self.database);
        let columns: Vec<Column> = rows(&self.query(&format!(
            "SELECT table, name, type FROM system.columns WHERE database = {db} FORMAT JSONEachRow"
        ))?)?;
        let tables: Vec<Table> = rows(&self.query(&format!(
            "SELECT name, engine FROM system.tables WHERE database = {db} FORMAT JSONEachRow"
        ))?)?;
        for spec in &TABLES {
            let (table, expected) = (spec.name, spec.columns);
            let not_ours = |why: String| {
                StoreError::Corrupt(format!(
                    "ClickHouse table {}.{table} is not this collector's: {why}",
                    self.database
                ))
            };
            match tables.iter().find(|t| t.name == table) {
                None => return Err(not_ours("it is missing".into())),
                Some(t) if t.engine != "ReplacingMergeTree" => {
                    return Err(not_ours(format!("engine {}", t.engine)));
                }
                Some(_) => {}
            }
            let mut found: Vec<(&str, &str)> = columns
                .iter()
                .filter(|c| c.table == table)
                .map(|c| (c.name.as_str(), c.kind.as_str()))
                .collect();
            let mut expected = expected.to_vec();
            found.sort_unstable();
            expected.sort_unstable();
            if found != expected {
                return Err(not_ours(format!("columns {found:?}")));
            }
        }
        Ok(())
    }

    /// Sends `body` to `url`; the answer's text.
    fn post(&self, url: &str, body: &str) -> Result<String, StoreError> {
        let mut request = self.agent.post(url);
        if let Some((user, key)) = &self.user {
            request = request
                .header("X-ClickHouse-User", user)
                .header("X-ClickHouse-Key", key);
        }
        let mut response = request.send(body).map_err(|e| unavailable(&e))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(|e| unavailable(&e))?;
        if status == 200 {
            Ok(text)
        } else {
            Err(refused(status, &text))
        }
    }

    /// Runs one statement; its answer.
    fn query(&self, sql: &str) -> Result<String, StoreError> {
        self.post(
            &format!("{}?output_format_json_quote_64bit_integers=0", self.base),
            sql,
        )
    }

    /// Inserts `rows` (`JSONEachRow` lines) into `table`.
    fn insert_rows(&self, table: &str, rows: &str) -> Result<(), StoreError> {
        let sql = format!("INSERT INTO {}.{table} FORMAT JSONEachRow", self.database);
        self.post(&format!("{}?query={}", self.base, encode(&sql)), rows)
            .map(drop)
    }

    /// The answer's single unsigned number.
    fn count(&self, sql: &str) -> Result<u64, StoreError> {
        let answer = self.query(sql)?;
        answer
            .trim()
            .parse()
            .map_err(|_| unexpected(&answer, &answer))
    }
}

impl Store for ClickHouse {
    fn describe(&self) -> String {
        format!("ClickHouse database {} at {}", self.database, self.base)
    }

    fn insert(&self, batch: &[Accepted]) -> Result<Vec<bool>, StoreError> {
        let mut bodies = Vec::with_capacity(batch.len());
        for a in batch {
            if !fits(a.day) || !fits(a.received) {
                return Err(StoreError::Invalid(format!(
                    "payload {} is of a day ClickHouse cannot store (after {LAST_DATE})",
                    a.run_id
                )));
            }
            bodies.push(std::str::from_utf8(&a.body).map_err(|_| {
                StoreError::Invalid(format!("payload {} is not UTF-8 text", a.run_id))
            })?);
        }
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        #[derive(Deserialize)]
        struct Id {
            run_id: String,
        }
        let ids: Vec<&str> = batch
            .iter()
            .map(|a| a.run_id.as_str())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut stored = HashSet::new();
        // In chunks: a query's text is limited (`max_query_size`, 256 KiB by default).
        for chunk in ids.chunks(ID_CHUNK) {
            let list = chunk.iter().map(|id| quote(id)).collect::<Vec<_>>();
            let answer = self.query(&format!(
                "SELECT DISTINCT run_id FROM {}.payloads WHERE run_id IN ({}) FORMAT JSONEachRow",
                self.database,
                list.join(", ")
            ))?;
            stored.extend(rows::<Id>(&answer)?.into_iter().map(|r| r.run_id));
        }
        let mut seen = HashSet::new();
        let fresh: Vec<bool> = batch
            .iter()
            .map(|a| !stored.contains(&a.run_id) && seen.insert(a.run_id.as_str()))
            .collect();
        let new = || {
            batch
                .iter()
                .zip(&bodies)
                .zip(&fresh)
                .filter_map(|(pair, f)| f.then_some(pair))
        };
        // Reports first: a payload is only counted once it is stored, so a failure between the
        // two inserts leaves nothing visible, and the retry collapses onto what was written.
        let days: Vec<String> = new().map(|(a, _)| a.day.to_string()).collect();
        let report_rows = json_lines(new().zip(&days).flat_map(|((a, _), day)| {
            a.reports.iter().enumerate().map(move |(i, r)| {
                let (kind, ones, value, label) = match &r.value {
                    ReportValue::Bit(b) => (0, u8::from(*b), 0, ""),
                    ReportValue::Integer(x) => (1, 0, *x, ""),
                    ReportValue::Label(l) => (2, 0, 0, l.as_str()),
                };
                ReportRow {
                    app: &a.app,
                    day,
                    run_id: &a.run_id,
                    position: i as u32,
                    event: &r.event,
                    field: &r.field,
                    params: &r.params,
                    kind,
                    ones,
                    value,
                    label,
                }
            })
        }))?;
        let payload_rows = json_lines(new().map(|(a, body)| PayloadRow {
            run_id: &a.run_id,
            app: &a.app,
            app_version: &a.app_version,
            day: a.day.to_string(),
            received: a.received.to_string(),
            schema_version: &a.schema_version,
            body,
        }))?;
        if !report_rows.is_empty() {
            self.insert_rows("reports", &report_rows)?;
        }
        if !payload_rows.is_empty() {
            self.insert_rows("payloads", &payload_rows)?;
        }
        Ok(fresh)
    }

    fn register_catalog(&self, app: &str, version: &str, json: &str) -> Result<(), StoreError> {
        self.insert_rows(
            "catalogs",
            &json_lines([CatalogRow { app, version, json }])?,
        )
    }

    fn catalogs(&self) -> Result<Vec<String>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            json: String,
        }
        let answer = self.query(&format!(
            "SELECT json FROM {}.catalogs FINAL ORDER BY app, version FORMAT JSONEachRow",
            self.database
        ))?;
        Ok(rows::<Row>(&answer)?.into_iter().map(|r| r.json).collect())
    }

    fn payload_counts(&self, query: &Query) -> Result<Vec<(String, Day, u64)>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            app: String,
            day: String,
            n: u64,
        }
        let Some(mut filter) = day_filter(query) else {
            return Ok(Vec::new());
        };
        if let Some(app) = &query.app {
            let _ = write!(filter, " AND app = {}", quote(app));
        }
        let answer = self.query(&format!(
            "SELECT app, day, count() AS n FROM {}.payloads FINAL WHERE 1{filter}
             GROUP BY app, day ORDER BY app, day FORMAT JSONEachRow",
            self.database
        ))?;
        rows::<Row>(&answer)?
            .into_iter()
            .map(|r| Ok((r.app, parse_day(&r.day)?, r.n)))
            .collect()
    }

    fn tallies(&self, app: &str, query: &Query) -> Result<Vec<TallyRow>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            day: String,
            event: String,
            field: String,
            params: String,
            kind: u8,
            label: String,
            n: u64,
            n_ones: u64,
            s1: f64,
            s2: f64,
        }
        let Some(days) = day_filter(query) else {
            return Ok(Vec::new());
        };
        let db = &self.database;
        let filter = format!("app = {}{days}", quote(app));
        let answer = self.query(&format!(
            "SELECT day, event, field, params, kind, label, count() AS n, sum(ones) AS n_ones,
                    sum(toFloat64(value)) AS s1, sum(toFloat64(value) * toFloat64(value)) AS s2
             FROM {db}.reports FINAL
             WHERE {filter} AND run_id IN (SELECT run_id FROM {db}.payloads WHERE {filter})
             GROUP BY day, event, field, params, kind, label FORMAT JSONEachRow"
        ))?;
        rows::<Row>(&answer)?
            .into_iter()
            .map(|r| {
                Ok(TallyRow {
                    day: parse_day(&r.day)?,
                    event: r.event,
                    field: r.field,
                    params: r.params,
                    label: (r.kind == 2).then_some(r.label),
                    n: r.n,
                    ones: r.n_ones,
                    sum: r.s1,
                    sum_sq: r.s2,
                })
            })
            .collect()
    }

    fn contains(&self, run_id: &str) -> Result<bool, StoreError> {
        let n = self.count(&format!(
            "SELECT count() FROM {}.payloads WHERE run_id = {}",
            self.database,
            quote(run_id)
        ))?;
        Ok(n > 0)
    }

    fn prune(&self, before: Day) -> Result<u64, StoreError> {
        let db = &self.database;
        let filter = if fits(before) {
            format!("day < {}", quote(&before.to_string()))
        } else {
            "1".to_owned()
        };
        let removed = self.count(&format!(
            "SELECT count() FROM {db}.payloads FINAL WHERE {filter}"
        ))?;
        let reports = self.count(&format!("SELECT count() FROM {db}.reports WHERE {filter}"))?;
        if removed == 0 && reports == 0 {
            return Ok(0);
        }
        // Payloads first: reports without their payload are not counted.
        for table in ["payloads", "reports"] {
            self.query(&format!("ALTER TABLE {db}.{table} DELETE WHERE {filter}"))?;
        }
        // Deletions (mutations) run in the background: wait until they are done.
        let deadline = Instant::now() + PRUNE_WAIT;
        let mut pause = Duration::from_millis(10);
        loop {
            let pending = self.count(&format!(
                "SELECT count() FROM system.mutations WHERE database = {}
                 AND table IN ('payloads', 'reports') AND is_done = 0",
                quote(db)
            ))?;
            if pending == 0 {
                return Ok(removed);
            }
            if Instant::now() >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "ClickHouse is still deleting ({pending} mutations pending after {}s); \
                     they go on in the background",
                    PRUNE_WAIT.as_secs()
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        let one = self.query("SELECT 1")?;
        if one.trim() != "1" {
            return Err(StoreError::Corrupt(format!(
                "ClickHouse answered {one:.200?} to SELECT 1"
            )));
        }
        self.layout()
    }
}
