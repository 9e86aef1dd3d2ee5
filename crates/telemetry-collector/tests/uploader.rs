//! The real uploader (`telemetry_transport::upload_pending`) against the real collector process
//! (`telemetry-collector serve`, spawned per test on a free port with its own SQLite store): each
//! answer the collector gives is settled the way DESIGN §10 says.
//!
//! * 201 (new) and 200 (a run id already stored): the file is deleted; the payload is stored
//!   once, byte for byte.
//! * 404 (no catalogue for the app) and 400 (the payload does not fit the registered catalogue):
//!   the file is deleted as refused for good, nothing is stored.
//! * 503 with `Retry-After: 30` (the store is locked by another process past the 5 s busy
//!   timeout): the file is kept, the next attempt waits the collector's 30 s (not the shorter
//!   backoff), the wait is remembered across runs, and once it is over the payload goes through.
//! * 507 (`--max-store-mib` reached): the payload is kept for later, and nothing already stored
//!   is lost.
//!
//! Payloads are made by the real recorder (consent, record, flush) and the catalogue registered
//! with `--catalog` is the app's own, serialised as `<app> telemetry catalog --json` prints it.
//! Every child process gets a cleared environment (HOME and PATH only), and every recorder and
//! uploader an environment of HOME alone: never `CI` (a hard off-switch) nor the real home.

#[path = "support/collector.rs"]
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use support::{COLLECTOR, Collector, PATH};
use telemetry_collector::store::Store;
use telemetry_collector::store::sqlite::Sqlite;
use telemetry_core::event::{Event, FieldDecl, Value};
use telemetry_core::{Builder, Env, Telemetry};
use telemetry_transport::{Outcome, STATE_FILE, UploadOptions, UploadReport, upload_pending};

const VERSION: &str = "1.2.3";

/// The event every test payload carries (ε = 1).
struct Ran {
    ok: bool,
}

impl Event for Ran {
    const NAME: &'static str = "ran";
    const DESCRIPTION: &'static str = "The app ran.";
    const FIELDS: &'static [FieldDecl] = &[FieldDecl::boolean("ok", "Whether it worked.", 1.0)];
    fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
        out(Value::Bool(self.ok));
    }
}

/// The same event as the operator registered it by mistake: ε = 2 for `ok`.
struct RanOtherEpsilon;

impl Event for RanOtherEpsilon {
    const NAME: &'static str = "ran";
    const DESCRIPTION: &'static str = "The app ran.";
    const FIELDS: &'static [FieldDecl] = &[FieldDecl::boolean("ok", "Whether it worked.", 2.0)];
    fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
        out(Value::Bool(true));
    }
}

/// Starts a collector (its log `dir/collector.log`) on a free port with `store` and `catalogs`,
/// plus `extra` arguments.
fn serve(dir: &Path, store: &Path, catalogs: &[&Path], extra: &[&str]) -> Collector {
    let mut args = vec!["--store", store.to_str().unwrap()];
    args.extend_from_slice(extra);
    for catalog in catalogs {
        args.extend(["--catalog", catalog.to_str().unwrap()]);
    }
    Collector::start(dir, &args)
}

/// POSTs `body` to the collector's `/submit/APP/RUN_ID` directly: the status and the JSON answer.
fn post(collector: &Collector, app: &str, run_id: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(15)))
        .build()
        .new_agent();
    let mut response = agent
        .post(&format!("{}/submit/{app}/{run_id}", collector.url))
        .header("content-type", "application/json")
        .send(body)
        .expect("POST to the collector");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("answer {status} is not JSON ({e}): {text}"));
    (status, json)
}

/// `telemetry-collector report --store STORE --json`, parsed.
fn report(store: &Path) -> Vec<serde_json::Value> {
    let output = Command::new(COLLECTOR)
        .env_clear()
        .env("HOME", store.parent().unwrap())
        .env("PATH", PATH)
        .args(["report", "--json", "--store"])
        .arg(store)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "report: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The report of `app`, if the store knows it.
fn app_report(store: &Path, app: &str) -> Option<serde_json::Value> {
    report(store).into_iter().find(|r| r["app"] == app)
}

fn env(home: &Path) -> Env {
    Env::from_pairs([("HOME".to_owned(), home.display().to_string())])
}

/// The builder of `app` for `home`: HOME and nothing else in its environment.
fn builder(home: &Path, app: &str) -> Builder {
    Telemetry::builder(app)
        .app_version(VERSION)
        .env(env(home))
        .event::<Ran>()
        .print_warnings(false)
}

/// Consents in `home`, then records and flushes `runs` runs of `app`: one pending payload each.
fn pending(home: &Path, app: &str, runs: usize) -> Vec<PathBuf> {
    builder(home, app).build().enable().unwrap();
    let mut files = Vec::new();
    for i in 0..runs {
        let t = builder(home, app).build();
        t.record(&Ran { ok: i % 2 == 0 });
        files.push(t.flush().unwrap().expect("a payload was written"));
    }
    files.sort();
    assert_eq!(pending_files(home, app), files);
    files
}

fn pending_files(home: &Path, app: &str) -> Vec<PathBuf> {
    let dir = home.join(".config").join(app).join("uploads-pending");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "json"));
    files.sort();
    files
}

fn run_id(file: &Path) -> String {
    file.file_stem().unwrap().to_str().unwrap().to_owned()
}

/// Writes `builder`'s catalogue to `dir/NAME.catalog.json` exactly as `telemetry catalog --json`
/// prints it (pretty JSON and a newline).
fn write_catalog(dir: &Path, name: &str, builder: Builder) -> PathBuf {
    let catalog = builder.recording(false).build().catalog().unwrap();
    let path = dir.join(format!("{name}.catalog.json"));
    fs::write(
        &path,
        serde_json::to_string_pretty(&catalog).unwrap() + "\n",
    )
    .unwrap();
    path
}

/// The app's own catalogue, built in a home of its own (so nothing is recorded where payloads
/// are made).
fn own_catalog(dir: &Path, app: &str) -> PathBuf {
    let home = dir.join(format!("catalog-home-{app}"));
    fs::create_dir_all(&home).unwrap();
    write_catalog(dir, app, builder(&home, app))
}

fn options(collector: &Collector) -> UploadOptions {
    UploadOptions {
        endpoint: Some(collector.url.clone()),
        connect_timeout: Duration::from_secs(2),
        // Above the store's 5 s busy timeout, so a locked store is answered, not timed out.
        request_timeout: Duration::from_secs(20),
        // Far below the collector's Retry-After, so a 30 s wait can only come from it.
        backoff_base: Duration::from_secs(1),
        ..UploadOptions::default()
    }
}

fn upload(home: &Path, app: &str, collector: &Collector) -> UploadReport {
    let report = upload_pending(&builder(home, app), &options(collector))
        .unwrap_or_else(|e| panic!("upload refused: {e}"));
    assert!(report.state_problem.is_none(), "{report:#?}");
    report
}

fn stored(store: &Path, run_id: &str) -> bool {
    Sqlite::open(store).unwrap().contains(run_id).unwrap()
}

/// Rows of `payloads` with this run id, and the stored body of the first.
fn stored_rows(store: &Path, run_id: &str) -> (i64, Option<Vec<u8>>) {
    let conn =
        rusqlite::Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let count = conn
        .query_row(
            "SELECT count(*) FROM payloads WHERE run_id = ?1",
            [run_id],
            |r| r.get(0),
        )
        .unwrap();
    let body = conn
        .query_row(
            "SELECT body FROM payloads WHERE run_id = ?1",
            [run_id],
            |r| r.get(0),
        )
        .ok();
    (count, body)
}

fn sha256(bytes: &[u8]) -> String {
    telemetry_core::inspect::sha256_hex(bytes)
}

/// The field `event.field` of an app report.
fn field<'a>(app: &'a serde_json::Value, event: &str, name: &str) -> &'a serde_json::Value {
    app["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["event"] == event && f["field"] == name)
        .unwrap_or_else(|| panic!("no field {event}.{name} in {app:#}"))
}

/// The DP parameter block of `ran.ok` in a catalogue's JSON.
fn ok_block(catalog: &mut serde_json::Value) -> &mut serde_json::Value {
    let ran = catalog["events"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["name"] == "ran")
        .expect("event ran");
    let ok = ran["fields"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["name"] == "ok")
        .expect("field ok");
    &mut ok["mechanism"]
}

#[test]
fn accepted_is_deleted_and_stored_and_a_resend_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = dir.path().join("collector.db");
    let files = pending(&home, "acme", 1);
    let file = &files[0];
    let id = run_id(file);
    let bytes = fs::read(file).unwrap();
    // A copy (mode and all) to put back later, as a retry after a lost answer would resend it.
    let backup = dir.path().join("backup.json");
    fs::copy(file, &backup).unwrap();
    let collector = serve(dir.path(), &store, &[&own_catalog(dir.path(), "acme")], &[]);

    let first = upload(&home, "acme", &collector);
    assert_eq!(first.payloads.len(), 1, "{first:#?}");
    assert_eq!(first.payloads[0].run_id, id);
    assert_eq!(first.payloads[0].outcome, Outcome::Sent { status: 201 });
    assert_eq!(first.payloads[0].sha256.as_deref(), Some(&*sha256(&bytes)));
    assert!(pending_files(&home, "acme").is_empty(), "deleted after 201");
    assert!(stored(&store, &id));
    let (rows, body) = stored_rows(&store, &id);
    assert_eq!(rows, 1);
    assert_eq!(
        body.as_deref(),
        Some(&bytes[..]),
        "the exact bytes are kept"
    );
    let app = app_report(&store, "acme").expect("acme in the report");
    assert_eq!(app["payloads"], 1, "{app:#}");
    assert_eq!(field(&app, "ran", "ok")["n"], 1, "{app:#}");

    // The same bytes again (the uploader never saw the first answer): 200, deleted, still once.
    fs::copy(&backup, file).unwrap();
    let again = upload(&home, "acme", &collector);
    assert_eq!(again.payloads.len(), 1, "{again:#?}");
    assert_eq!(again.payloads[0].outcome, Outcome::Sent { status: 200 });
    assert_eq!(again.payloads[0].sha256.as_deref(), Some(&*sha256(&bytes)));
    assert!(pending_files(&home, "acme").is_empty(), "deleted after 200");
    assert_eq!(stored_rows(&store, &id).0, 1, "stored once");
    let app = app_report(&store, "acme").unwrap();
    assert_eq!(app["payloads"], 1, "{app:#}");
    assert_eq!(field(&app, "ran", "ok")["n"], 1, "counted once: {app:#}");
}

#[test]
fn unknown_app_is_refused_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = dir.path().join("collector.db");
    let files = pending(&home, "acme", 1);
    let id = run_id(&files[0]);
    // Only another app's catalogue is registered.
    let collector = serve(
        dir.path(),
        &store,
        &[&own_catalog(dir.path(), "other")],
        &[],
    );
    let (status, answer) = post(&collector, "acme", &id, &fs::read(&files[0]).unwrap());
    assert_eq!((status, &answer["error"]), (404, &"unknown_app".into()));

    let report = upload(&home, "acme", &collector);
    assert_eq!(report.payloads.len(), 1, "{report:#?}");
    assert_eq!(
        report.payloads[0].outcome,
        Outcome::Rejected { status: 404 }
    );
    assert!(pending_files(&home, "acme").is_empty(), "deleted after 404");
    // No attempt is remembered for it (the state file holds only the rate limit's times).
    let state = fs::read_to_string(home.join(".config/acme").join(STATE_FILE)).unwrap_or_default();
    assert!(!state.contains(&id), "{state}");
    assert!(!stored(&store, &id));
    assert!(app_report(&store, "acme").is_none(), "{:#?}", report);
    assert_eq!(app_report(&store, "other").unwrap()["payloads"], 0);
}

#[test]
fn catalogue_mismatch_is_refused_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = dir.path().join("collector.db");
    let files = pending(&home, "acme", 1);
    let id = run_id(&files[0]);
    // acme 1.2.3's catalogue, but with ε = 2 for ran.ok where the app uses ε = 1.
    let catalog_home = dir.path().join("catalog-home");
    fs::create_dir_all(&catalog_home).unwrap();
    let wrong = write_catalog(
        dir.path(),
        "acme-wrong-epsilon",
        Telemetry::builder("acme")
            .app_version(VERSION)
            .env(env(&catalog_home))
            .event::<RanOtherEpsilon>()
            .print_warnings(false),
    );
    let json = |path: &Path| -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
    };
    let (mut own, mut theirs) = (json(&own_catalog(dir.path(), "acme")), json(&wrong));
    assert_eq!(ok_block(&mut own)["epsilon"], 1.0);
    assert_eq!(ok_block(&mut theirs)["epsilon"], 2.0);
    // Apart from that DP parameter block (ε and the p, q derived from it), the same catalogue.
    *ok_block(&mut own) = serde_json::Value::Null;
    *ok_block(&mut theirs) = serde_json::Value::Null;
    assert_eq!(own, theirs);
    let collector = serve(dir.path(), &store, &[&wrong], &[]);
    let (status, answer) = post(&collector, "acme", &id, &fs::read(&files[0]).unwrap());
    assert_eq!(status, 400, "{answer:#}");
    assert_eq!(answer["error"], "invalid", "{answer:#}");
    let problems = answer["problems"].as_array().expect("problems listed");
    assert!(
        problems.iter().any(|p| p
            .as_str()
            .is_some_and(|p| p.starts_with("ran.ok: DP parameters"))),
        "{answer:#}"
    );

    let report = upload(&home, "acme", &collector);
    assert_eq!(report.payloads.len(), 1, "{report:#?}");
    assert_eq!(
        report.payloads[0].outcome,
        Outcome::Rejected { status: 400 }
    );
    assert!(pending_files(&home, "acme").is_empty(), "deleted after 400");
    assert!(!stored(&store, &id));
    assert_eq!(app_report(&store, "acme").unwrap()["payloads"], 0);
}

#[test]
fn busy_store_is_answered_503_and_the_payload_waits_the_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = dir.path().join("collector.db");
    let files = pending(&home, "acme", 1);
    let id = run_id(&files[0]);
    let collector = serve(dir.path(), &store, &[&own_catalog(dir.path(), "acme")], &[]);
    // Another process holds the write lock for longer than the collector's busy timeout.
    let lock = rusqlite::Connection::open(&store).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let before = SystemTime::now();
    let started = Instant::now();
    let report = upload(&home, "acme", &collector);
    let after = SystemTime::now();
    assert_eq!(report.payloads.len(), 1, "{report:#?}");
    let Outcome::Kept {
        problem,
        failures,
        not_before,
    } = &report.payloads[0].outcome
    else {
        panic!("kept expected: {report:#?}");
    };
    assert_eq!((problem.as_str(), *failures), ("HTTP 503", 1));
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "answered after {:?}, before the 5 s busy timeout",
        started.elapsed()
    );
    // Retry-After: 30 decides the wait (the backoff alone would be at most 1.5 s).
    let retry = Duration::from_secs(30);
    assert!(
        *not_before >= before + retry && *not_before <= after + retry,
        "not_before {:?} s after the upload started",
        not_before.duration_since(before).map(|d| d.as_secs_f64())
    );
    assert_eq!(pending_files(&home, "acme"), files, "kept");
    assert!(!stored(&store, &id));

    // Remembered: the state file holds the wait, and a run right away does not send.
    let state_path = home.join(".config/acme").join(STATE_FILE);
    let mut state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&state_path).unwrap()).unwrap();
    let attempt = &state["attempts"][&id];
    assert_eq!(attempt["failures"], 1, "{state:#}");
    let remembered = attempt["not_before"].as_i64().unwrap();
    let before_unix = before
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(remembered >= before_unix + 30, "{state:#}");
    let waiting = upload(&home, "acme", &collector);
    assert!(
        matches!(&waiting.payloads[0].outcome, Outcome::NotTried { reason } if reason.starts_with("waiting")),
        "{waiting:#?}"
    );
    assert_eq!(pending_files(&home, "acme"), files, "still kept");

    // The lock goes away and the wait is over: the kept payload goes through.
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    state["attempts"][&id]["not_before"] = 0.into();
    fs::write(&state_path, state.to_string()).unwrap();
    let later = upload(&home, "acme", &collector);
    assert_eq!(later.payloads[0].outcome, Outcome::Sent { status: 201 });
    assert!(pending_files(&home, "acme").is_empty());
    assert!(stored(&store, &id));
    assert_eq!(app_report(&store, "acme").unwrap()["payloads"], 1);
}

#[test]
fn full_store_is_answered_507_and_the_payload_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = dir.path().join("collector.db");
    // A store already at its limit: ~1.1 MiB of other data, served with --max-store-mib 1.
    drop(Sqlite::open(&store).unwrap());
    {
        let conn = rusqlite::Connection::open(&store).unwrap();
        conn.execute_batch(
            "CREATE TABLE filler (b BLOB NOT NULL);
             INSERT INTO filler VALUES (zeroblob(1100000));",
        )
        .unwrap();
    }
    let files = pending(&home, "acme", 8);
    let collector = serve(
        dir.path(),
        &store,
        &[&own_catalog(dir.path(), "acme")],
        &["--max-store-mib", "1"],
    );

    let report = upload(&home, "acme", &collector);
    assert_eq!(report.payloads.len(), files.len(), "{report:#?}");
    let left = pending_files(&home, "acme");
    let (mut sent, mut full) = (0, 0);
    for (p, file) in report.payloads.iter().zip(&files) {
        assert_eq!(p.run_id, run_id(file));
        match &p.outcome {
            Outcome::Sent { status: 201 } => {
                sent += 1;
                assert!(!left.contains(file), "deleted after 201: {p:?}");
                assert!(stored(&store, &p.run_id), "{p:?}");
            }
            Outcome::Kept {
                problem, failures, ..
            } if problem == "HTTP 507" => {
                full += 1;
                assert_eq!(*failures, 1);
                assert!(left.contains(file), "kept after 507: {p:?}");
                assert!(!stored(&store, &p.run_id), "{p:?}");
            }
            other => panic!("{other:?}: {report:#?}"),
        }
    }
    eprintln!("store full after {sent} payloads; {full} kept");
    assert!(full >= 1, "the store never filled: {report:#?}");
    assert_eq!(left.len(), full);
    // Nothing accepted before the store filled is lost.
    let app = app_report(&store, "acme").unwrap();
    assert_eq!(app["payloads"], sent, "{app:#}");
    assert_eq!(field(&app, "ran", "ok")["n"], sent, "{app:#}");
    assert!(
        collector.log_text().contains("store full"),
        "{}",
        collector.log_text()
    );
}
