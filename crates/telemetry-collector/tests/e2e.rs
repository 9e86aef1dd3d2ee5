//! The whole loop, with nothing simulated but the users: 300 installs of the real `acme` host
//! (each its own HOME) consent, work (`--flag` for exactly 30 %, `--fail` for exactly 20 %) and
//! upload with the real uploader to a real `telemetry-collector serve` registered with acme's own
//! catalogue (`acme telemetry catalog --json`). Then `telemetry-collector report --json`
//! recovers every true proportion within 3 standard errors from the locally randomised reports:
//! `feature_used.flag`, `command_run.outcome` and `command_run.command`, with n = 300 and every
//! estimate usable.
//!
//! Parity: every stored body, replayed over plain HTTP to a second collector whose store is a
//! real ClickHouse server, gives the same report: the same payload counts, n and estimates (to
//! 1e-9) for every field, overall and per day, and a re-sent run id is counted once there too.
//!
//! Deterministic: each install's secret is fixed before `enable` (which keeps an existing one),
//! so every memoised randomised answer is too. Every child process gets a cleared environment
//! (HOME and PATH only): never `CI`, a hard off-switch, nor the real home.

#[path = "support/clickhouse_server.rs"]
mod clickhouse_server;
#[path = "support/collector.rs"]
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clickhouse_server::ClickHouseServer;
use serde_json::Value as Json;
use support::{COLLECTOR, Collector, PATH};
use telemetry_core::{Env, Telemetry};
use telemetry_transport::{Outcome, UploadOptions, upload_pending};

const INSTALLS: usize = 300;
/// Worker threads simulating installs (the machine the budget is for has 2 cores).
const WORKERS: usize = 2;

/// The `acme` example next to the test's binaries (`cargo test --workspace` builds every
/// package's examples). Missing is a failure, never a skip.
fn acme() -> PathBuf {
    let path = PathBuf::from(COLLECTOR)
        .parent()
        .expect("target dir")
        .join("examples")
        .join("acme");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p telemetry-cli --example acme` first (or the \
         workspace's tests, which build every example)",
        path.display()
    );
    path
}

/// A command with exactly HOME and PATH as its environment.
fn sandboxed(program: &Path, home: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("HOME", home)
        .env("PATH", PATH)
        .stdin(Stdio::null());
    command
}

/// Runs acme in `home`; its stdout. Panics unless it exits with `code`.
fn run_acme(acme: &Path, home: &Path, args: &[&str], code: i32) -> String {
    let output = sandboxed(acme, home).args(args).output().expect("run acme");
    assert_eq!(
        output.status.code(),
        Some(code),
        "acme {args:?} in {}: {}",
        home.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A ClickHouse server starting on another thread. Dropped unused (the test failed first), it
/// waits for the server and stops it, so that no server outlives the test.
struct Starting(Option<std::thread::JoinHandle<ClickHouseServer>>);

impl Starting {
    fn wait(&mut self) -> ClickHouseServer {
        let handle = self.0.take().expect("waited once");
        handle
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            drop(handle.join());
        }
    }
}

/// `telemetry-collector report --json --store STORE`, parsed.
fn report(dir: &Path, store: &str) -> Vec<Json> {
    let output = sandboxed(Path::new(COLLECTOR), dir)
        .args(["report", "--json", "--store", store])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "report --store {store}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// SplitMix64: a fixed stream for the install secrets (test data, not for privacy).
fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What install `i` really does.
fn truth(i: usize) -> (bool, bool) {
    // --flag for exactly 3 installs in 10, --fail for exactly 1 in 5.
    (i % 10 < 3, i % 5 == 4)
}

/// One install: a fixed install secret, consent, one `acme work`, then an upload in-process.
fn simulate(acme: &Path, root: &Path, i: usize, endpoint: &str) {
    let home = root.join(format!("install-{i:03}"));
    let secrets = home.join(".config/acme/secrets");
    fs::create_dir_all(&secrets).unwrap();
    fs::set_permissions(&secrets, fs::Permissions::from_mode(0o700)).unwrap();
    let secret: String = (0..4u64)
        .map(|k| format!("{:016x}", splitmix(0x5EED_0000_0000 + (i as u64) * 4 + k)))
        .collect();
    let file = secrets.join("install.secret");
    fs::write(&file, &secret).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();

    run_acme(acme, &home, &["telemetry", "enable", "--yes"], 0);
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        secret,
        "enable kept the install secret"
    );
    let (flag, fail) = truth(i);
    let mut args = vec!["work"];
    if flag {
        args.push("--flag");
    }
    if fail {
        args.push("--fail");
    }
    run_acme(acme, &home, &args, i32::from(fail));

    let builder = Telemetry::builder("acme")
        .env(Env::from_pairs([(
            "HOME".to_owned(),
            home.display().to_string(),
        )]))
        .print_warnings(false);
    let options = UploadOptions {
        endpoint: Some(endpoint.to_owned()),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(20),
        ..UploadOptions::default()
    };
    let report = upload_pending(&builder, &options)
        .unwrap_or_else(|e| panic!("install {i}: upload refused: {e}"));
    assert_eq!(report.payloads.len(), 1, "install {i}: {report:#?}");
    assert_eq!(
        report.payloads[0].outcome,
        Outcome::Sent { status: 201 },
        "install {i}: {report:#?}"
    );
    let pending = home.join(".config/acme/uploads-pending");
    let left = fs::read_dir(&pending)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert_eq!(left, 0, "install {i}: the sent payload is deleted");
}

fn find<'a>(reports: &'a [Json], app: &str) -> &'a Json {
    reports
        .iter()
        .find(|r| r["app"] == app)
        .unwrap_or_else(|| panic!("no report for {app}: {reports:#?}"))
}

fn field<'a>(app: &'a Json, event: &str, name: &str) -> &'a Json {
    app["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["event"] == event && f["field"] == name)
        .unwrap_or_else(|| panic!("no field {event}.{name}: {app:#}"))
}

/// Checks that `event.field = value` is within 3 standard errors of `truth`.
fn assert_recovers(app: &Json, event: &str, name: &str, value: &str, truth: f64) {
    let f = field(app, event, name);
    let row = f["estimates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["value"] == value)
        .unwrap_or_else(|| panic!("no estimate for {event}.{name} = {value}: {f:#}"));
    let estimate = row["estimate"].as_f64().unwrap();
    let se = row["standard_error"].as_f64().unwrap();
    eprintln!("{event}.{name} = {value}: estimate {estimate:.4} ± {se:.4}, truth {truth:.4}");
    assert_eq!(row["n"], INSTALLS as u64, "{row:#}");
    assert_eq!(row["status"], "ok", "{row:#}");
    assert!(se > 0.0 && se < 0.15, "{event}.{name} = {value}: SE {se}");
    assert!(
        (estimate - truth).abs() <= 3.0 * se,
        "{event}.{name} = {value}: estimate {estimate:.4} ± {se:.4}, truth {truth:.4}"
    );
}

/// Asserts two numbers from the two reports agree to 1e-9.
fn assert_close(a: &Json, b: &Json, what: &str) {
    let (x, y) = (a.as_f64(), b.as_f64());
    match (x, y) {
        (Some(x), Some(y)) => assert!(
            (x - y).abs() <= 1e-9 * x.abs().max(1.0),
            "{what}: SQLite {x}, ClickHouse {y}"
        ),
        // Non-finite numbers are serialised as null by serde_json.
        _ => assert_eq!(a, b, "{what}"),
    }
}

/// Asserts two lists of estimate rows are the same.
fn assert_same_rows(a: &Json, b: &Json, what: &str) {
    let (a, b) = (a.as_array().unwrap(), b.as_array().unwrap());
    assert_eq!(a.len(), b.len(), "{what}: rows {a:#?} vs {b:#?}");
    for (x, y) in a.iter().zip(b) {
        let what = format!("{what} = {}", x["value"]);
        for key in ["event", "field", "mechanism", "value", "n", "status"] {
            assert_eq!(x[key], y[key], "{what}: {key}");
        }
        for key in ["epsilon", "estimate", "shown", "standard_error"] {
            assert_close(&x[key], &y[key], &format!("{what}: {key}"));
        }
        for k in 0..2 {
            assert_close(&x["ci95"][k], &y["ci95"][k], &format!("{what}: ci95"));
        }
    }
}

/// Asserts the SQLite and the ClickHouse reports say the same.
fn assert_same_reports(sqlite: &[Json], clickhouse: &[Json]) {
    assert_eq!(sqlite.len(), clickhouse.len(), "apps");
    for (a, b) in sqlite.iter().zip(clickhouse) {
        let app = a["app"].as_str().unwrap();
        assert_eq!(a["app"], b["app"]);
        assert_eq!(a["payloads"], b["payloads"], "{app}: payloads");
        assert_eq!(a["days"], b["days"], "{app}: days");
        let (fa, fb) = (
            a["fields"].as_array().unwrap(),
            b["fields"].as_array().unwrap(),
        );
        assert_eq!(fa.len(), fb.len(), "{app}: fields");
        for (x, y) in fa.iter().zip(fb) {
            let what = format!("{app} {}.{}", x["event"], x["field"]);
            for key in ["event", "field", "mechanism", "catalogued", "n"] {
                assert_eq!(x[key], y[key], "{what}: {key}");
            }
            assert_close(&x["epsilon"], &y["epsilon"], &format!("{what}: epsilon"));
            assert_same_rows(&x["estimates"], &y["estimates"], &what);
            let (ta, tb) = (
                x["trend"].as_array().unwrap(),
                y["trend"].as_array().unwrap(),
            );
            assert_eq!(ta.len(), tb.len(), "{what}: trend days");
            for (dx, dy) in ta.iter().zip(tb) {
                assert_eq!((&dx["day"], &dx["n"]), (&dy["day"], &dy["n"]), "{what}");
                let what = format!("{what} on {}", dx["day"]);
                assert_same_rows(&dx["estimates"], &dy["estimates"], &what);
            }
        }
    }
}

/// POSTs `body` to `base/submit/APP/RUN_ID`; the status.
fn post(agent: &ureq::Agent, base: &str, app: &str, run_id: &str, body: &[u8]) -> u16 {
    let mut response = agent
        .post(&format!("{base}/submit/{app}/{run_id}"))
        .header("content-type", "application/json")
        .send(body)
        .unwrap_or_else(|e| panic!("POST {run_id}: {e}"));
    let status = response.status().as_u16();
    let _ = response.body_mut().read_to_string();
    status
}

#[test]
fn installs_upload_and_the_report_recovers_the_truth_on_sqlite_and_clickhouse() {
    let started = Instant::now();
    let acme = acme();
    // A real ClickHouse takes a few seconds to start: meanwhile, the installs run.
    let mut clickhouse = Starting(Some(std::thread::spawn(ClickHouseServer::start)));
    // ~2,000 fsyncs and 600 processes: on a RAM-backed file system where there is one.
    let shm = Path::new("/dev/shm");
    let root = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let root = root.path();

    // acme's own catalogue, exactly as the operator gets it.
    let catalog_home = root.join("operator");
    fs::create_dir_all(&catalog_home).unwrap();
    let catalog = root.join("acme.catalog.json");
    let json = run_acme(&acme, &catalog_home, &["telemetry", "catalog", "--json"], 0);
    fs::write(&catalog, &json).unwrap();

    let sqlite = root.join("collector.db");
    let sqlite = sqlite.to_str().unwrap();
    let catalog = catalog.to_str().unwrap();
    let collector = Collector::start_named(
        root,
        "sqlite-collector",
        &["--store", sqlite, "--catalog", catalog],
    );
    std::thread::scope(|s| {
        for w in 0..WORKERS {
            let (acme, url) = (&acme, &collector.url);
            s.spawn(move || {
                for i in (w..INSTALLS).step_by(WORKERS) {
                    simulate(acme, root, i, url);
                }
            });
        }
    });
    eprintln!(
        "{INSTALLS} installs simulated after {:?}",
        started.elapsed()
    );

    // The estimates recover the truth.
    let (flags, fails) = (0..INSTALLS)
        .map(truth)
        .fold((0, 0), |(f, x), (flag, fail)| {
            (f + usize::from(flag), x + usize::from(fail))
        });
    assert_eq!((flags, fails), (INSTALLS * 3 / 10, INSTALLS / 5));
    let share = |k: usize| k as f64 / INSTALLS as f64;
    let from_sqlite = report(root, sqlite);
    let app = find(&from_sqlite, "acme");
    assert_eq!(app["payloads"], INSTALLS as u64, "{app:#}");
    assert_recovers(app, "feature_used", "flag", "true", share(flags));
    assert_recovers(app, "command_run", "outcome", "success", 1.0 - share(fails));
    assert_recovers(app, "command_run", "outcome", "failure", share(fails));
    assert_recovers(app, "command_run", "command", "work", 1.0);
    assert_recovers(app, "command_run", "command", "telemetry", 0.0);
    // Every field has one report per install (but the note, never given) and usable estimates.
    for f in app["fields"].as_array().unwrap() {
        let what = format!("{}.{}", f["event"], f["field"]);
        assert_eq!(f["catalogued"], true, "{what}");
        if f["event"] == "command_run" && f["field"] == "note" {
            assert_eq!(f["n"], 0, "{what}: {f:#}");
            assert!(f["estimates"].as_array().unwrap().is_empty(), "{f:#}");
            continue;
        }
        assert_eq!(f["n"], INSTALLS as u64, "{what}: {f:#}");
        let rows = f["estimates"].as_array().unwrap();
        assert!(!rows.is_empty(), "{what}: no estimates");
        for row in rows {
            assert_eq!(row["status"], "ok", "{what}: {row:#}");
        }
    }

    // Parity: the same bodies through a collector on ClickHouse.
    let clickhouse = clickhouse.wait();
    let ch_url = clickhouse.url();
    let replica = Collector::start_named(
        root,
        "clickhouse-collector",
        &["--store", &ch_url, "--catalog", catalog],
    );
    let bodies: Vec<(String, String, Vec<u8>)> = {
        let conn = rusqlite::Connection::open_with_flags(
            sqlite,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut stmt = conn
            .prepare("SELECT run_id, app, body FROM payloads ORDER BY run_id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(bodies.len(), INSTALLS);
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent();
    // Several at once, so the collector's writer batches them into fewer ClickHouse inserts.
    std::thread::scope(|s| {
        for chunk in bodies.chunks(INSTALLS.div_ceil(6)) {
            let (agent, url) = (&agent, &replica.url);
            s.spawn(move || {
                for (run_id, app, body) in chunk {
                    assert_eq!(post(agent, url, app, run_id, body), 201, "{run_id}");
                }
            });
        }
    });
    // What the uploader does after a lost answer: the same bytes again, counted once.
    for (run_id, app, body) in &bodies[..3] {
        assert_eq!(
            post(&agent, &replica.url, app, run_id, body),
            200,
            "{run_id}"
        );
    }
    let from_clickhouse = report(root, &ch_url);
    assert_eq!(
        find(&from_clickhouse, "acme")["payloads"],
        INSTALLS as u64,
        "{}",
        replica.log_text()
    );
    assert_same_reports(&from_sqlite, &from_clickhouse);
    drop(replica);
    drop(collector);
    eprintln!("done after {:?}", started.elapsed());
}
