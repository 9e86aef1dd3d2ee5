//! Issue #4, fault tolerance and the ledger, tested with real processes:
//!
//! * a payload file is always either complete and valid or absent, even when the process is
//!   killed (SIGKILL) in the middle of a flush;
//! * the daily ε cap holds across processes of the same app and install flushing at the same
//!   time.
//!
//! Both re-execute this test binary as the child (`--exact <child test> --nocapture`); a
//! child test is a no-op unless its marker variable is set, so a normal test run passes it.
//! Children get a cleared environment: only the marker variables and `HOME` (a tempdir),
//! never `CI` nor the real home.
//!
//! Unix only: SIGKILL, and the Unix store the payloads and the ledger are written to (off
//! Unix the store writes nothing and telemetry stays off).
#![cfg(unix)]

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use telemetry_core::event::{Event, FieldDecl, Value};
use telemetry_core::{Env, Telemetry};

/// Marks the flush-loop child; its value is the child's HOME.
const FLUSH_LOOP_HOME: &str = "TELEMETRY_FT_FLUSH_LOOP_HOME";
/// Marks a ledger child; its value is the child's HOME.
const LEDGER_HOME: &str = "TELEMETRY_FT_LEDGER_HOME";
/// The directory holding the ledger children's barrier files.
const LEDGER_BARRIER: &str = "TELEMETRY_FT_LEDGER_BARRIER";
/// The ledger child's index.
const LEDGER_CHILD_ID: &str = "TELEMETRY_FT_LEDGER_CHILD_ID";

/// Events per flush in the flush loop: as many distinct reports as one event kind may hold in
/// a run, each of 16 texts of 190 characters — a payload of about 200 KB, so a flush (redact,
/// build, serialise, write) takes measurable time and kills land inside it.
const BULK_PER_FLUSH: usize = telemetry_core::MAX_REPORTS_PER_EVENT;

/// An event that costs no ε (redacted text is not randomised), so the flush loop is never
/// throttled by the daily cap and every payload is big.
struct Bulk {
    n: usize,
}

impl Event for Bulk {
    const NAME: &'static str = "bulk_item";
    const DESCRIPTION: &'static str = "Filler for the fault-tolerance test.";
    const FIELDS: &'static [FieldDecl] = &[
        FieldDecl::text("t0", "Filler.", 200),
        FieldDecl::text("t1", "Filler.", 200),
        FieldDecl::text("t2", "Filler.", 200),
        FieldDecl::text("t3", "Filler.", 200),
        FieldDecl::text("t4", "Filler.", 200),
        FieldDecl::text("t5", "Filler.", 200),
        FieldDecl::text("t6", "Filler.", 200),
        FieldDecl::text("t7", "Filler.", 200),
        FieldDecl::text("t8", "Filler.", 200),
        FieldDecl::text("t9", "Filler.", 200),
        FieldDecl::text("t10", "Filler.", 200),
        FieldDecl::text("t11", "Filler.", 200),
        FieldDecl::text("t12", "Filler.", 200),
        FieldDecl::text("t13", "Filler.", 200),
        FieldDecl::text("t14", "Filler.", 200),
        FieldDecl::text("t15", "Filler.", 200),
    ];
    fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
        for k in 0..Self::FIELDS.len() {
            let mut text = format!("filler {} {k}", self.n);
            while text.len() < 190 {
                text.push_str(" lorem ipsum dolor sit amet");
            }
            text.truncate(190);
            out(Value::Text(&text));
        }
    }
}

/// An event with a price: ε = 0.5 + 0.25 = 0.75 (exact in binary, so sums are exact).
struct Charged {
    n: i64,
}

impl Event for Charged {
    const NAME: &'static str = "charged_item";
    const DESCRIPTION: &'static str = "An event that spends privacy budget.";
    const FIELDS: &'static [FieldDecl] = &[FieldDecl::integer("n", "A number.", 0, 1000, 0.75)];
    fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
        out(Value::Integer(self.n));
    }
}

fn env(home: &Path) -> Env {
    Env::from_pairs([("HOME", home.as_os_str())])
}

fn pending_dir(home: &Path) -> PathBuf {
    home.join(".config/acme/uploads-pending")
}

/// Gives consent in `home`, as `acme telemetry enable` would.
fn enable(home: &Path) {
    Telemetry::builder("acme")
        .env(env(home))
        .print_warnings(false)
        .build()
        .enable()
        .expect("enable");
}

/// This test binary, run as a child executing only `test`, with exactly `vars` as its
/// environment.
fn child(test: &str, vars: &[(&str, OsString)]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("current_exe"));
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env_clear()
        .stdin(Stdio::null());
    for (key, value) in vars {
        command.env(key, value);
    }
    command
}

fn wait_for(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !path.exists() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Entries of `dir` by name (empty when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// What a reader of `uploads-pending/` sees: the `*.json` files, each validated.
fn validated_payloads(dir: &Path) -> Vec<(String, telemetry_schema::ValidatedPayload)> {
    entries(dir)
        .into_iter()
        .filter(|name| Path::new(name).extension().is_some_and(|x| x == "json"))
        .map(|name| {
            let bytes = fs::read(dir.join(&name)).expect("read payload");
            let checked = telemetry_schema::validate_payload(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{name} ({} bytes) is visible as a payload but is not a valid one: {e}",
                    bytes.len()
                )
            });
            (name, checked)
        })
        .collect()
}

/// Returns as soon as a new file is being written to `dir` after at least `complete` payloads
/// were: the moment the next write begins (busy polling). Gives up after a few seconds.
fn wait_for_a_write_to_begin(dir: &Path, complete: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut known: Option<Vec<String>> = None;
    while Instant::now() < deadline {
        let names: Vec<String> = entries(dir)
            .into_iter()
            .filter(|n| n != ".lock" && n != ".index")
            .collect();
        match &known {
            None if names.iter().filter(|n| n.ends_with(".json")).count() >= complete => {
                known = Some(names);
            }
            Some(before) if names.iter().any(|n| !before.contains(n)) => return,
            _ => {}
        }
        std::hint::spin_loop();
    }
}

// ---------------------------------------------------------------------------------------
// a. SIGKILL mid-flush never leaves a partial `*.json`.

/// Child of [`a_payload_file_is_complete_and_valid_or_absent_even_when_killed_mid_flush`]:
/// records and flushes big payloads forever, until killed.
#[test]
fn child_flush_loop() {
    let Some(home) = std::env::var_os(FLUSH_LOOP_HOME) else {
        return; // Not a child: nothing to do.
    };
    let home = PathBuf::from(home);
    let telemetry = Telemetry::builder("acme")
        .app_version("1.2.3")
        .env(env(&home))
        .event::<Bulk>()
        .daily_epsilon_cap(1000.0)
        .build();
    assert!(telemetry.is_enabled(), "{:?}", telemetry.decision());
    for round in 0u64.. {
        for n in 0..BULK_PER_FLUSH {
            telemetry.record(&Bulk { n });
        }
        if round == 0 {
            fs::write(home.join("flushing"), b"").expect("ready marker");
        }
        telemetry.flush().expect("flush").expect("a payload");
    }
}

#[test]
fn a_payload_file_is_complete_and_valid_or_absent_even_when_killed_mid_flush() {
    /// Kills after a delay, spread over the flush cycle.
    const TIMED_ROUNDS: u64 = 7;
    /// Kills aimed at the write itself, until enough of them landed mid-write.
    const MAX_AIMED_ROUNDS: u64 = 20;
    const AIMED_HITS_WANTED: usize = 4;
    let root = tempfile::tempdir().unwrap();
    let (mut payloads, mut aimed_hits, mut temps_left) = (0, 0, 0);
    let started = Instant::now();
    for round in 0..TIMED_ROUNDS + MAX_AIMED_ROUNDS {
        let aimed = round >= TIMED_ROUNDS;
        if aimed && aimed_hits >= AIMED_HITS_WANTED {
            break;
        }
        let home = root.path().join(format!("home-{round}"));
        let dir = pending_dir(&home);
        fs::create_dir(&home).unwrap();
        enable(&home);
        let mut child = child(
            "child_flush_loop",
            &[(FLUSH_LOOP_HOME, home.clone().into())],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
        wait_for(&home.join("flushing"), "the child's first flush");
        if aimed {
            // Kill the moment a file starts being written (the 1st, 2nd, 3rd... payload):
            // were that file the `.json` itself, the kill would leave it half-written.
            wait_for_a_write_to_begin(&dir, (round % 3) as usize);
        } else {
            // A flush of BULK_PER_FLUSH events takes tens of ms in a debug build: kill 1, 7,
            // 13, ... 37 ms after the first one started.
            std::thread::sleep(Duration::from_millis(1 + round * 6));
        }
        child.kill().expect("SIGKILL the child");
        let output = child.wait_with_output().expect("wait for the child");
        assert!(
            output.status.code().is_none(),
            "the child ended on its own, not by the kill: {output:?}"
        );

        // Readers see `*.json` only: each one must be complete and valid.
        let valid = validated_payloads(&dir);
        for (name, checked) in &valid {
            let bulk = checked
                .envelope
                .events
                .iter()
                .filter(|e| e.name.as_str() == Bulk::NAME)
                .count();
            assert_eq!(
                bulk, BULK_PER_FLUSH,
                "{name}: a payload with missing events"
            );
            assert_eq!(format!("{}.json", checked.envelope.run_id.as_str()), *name);
        }
        payloads += valid.len();
        // What `show` lists (from the recorder's index where it applies) agrees with the bytes.
        let inspector = Telemetry::builder("acme")
            .env(env(&home))
            .print_warnings(false)
            .build_inspector();
        let listed: Vec<_> = inspector
            .payloads()
            .into_iter()
            .map(|p| (p.run_id, p.readable, p.day, p.schema_version, p.events))
            .collect();
        let decoded: Vec<_> = valid
            .iter()
            .map(|(name, checked)| {
                (
                    name.trim_end_matches(".json").to_owned(),
                    true,
                    Some(checked.envelope.period.day.to_string()),
                    Some(checked.version.to_string()),
                    Some(checked.envelope.events.len()),
                )
            })
            .collect();
        assert_eq!(listed, decoded, "show's summaries differ from the payloads");
        // Anything else must be hidden from readers: the lock, the recorder's index and
        // atomic-write temporaries.
        let others: Vec<String> = entries(&dir)
            .into_iter()
            .filter(|n| !n.ends_with(".json"))
            .collect();
        for name in &others {
            assert!(
                name == ".lock" || name == ".index" || name.starts_with(".tmp-"),
                "unexpected file {name} in {}",
                dir.display()
            );
        }
        let temps = others.iter().filter(|n| n.starts_with(".tmp-")).count();
        temps_left += temps;
        if aimed && temps > 0 {
            aimed_hits += 1;
        }
    }
    eprintln!(
        "kills in {:?}: {payloads} complete payloads validated; {aimed_hits} aimed kills landed \
         mid-write, {temps_left} temporary files left behind (invisible to readers)",
        started.elapsed()
    );
    assert!(
        payloads > 0,
        "no payload was ever completed before a kill: the test checked nothing"
    );
    assert!(
        aimed_hits > 0,
        "no kill landed while a payload was being written: the test checked nothing"
    );
}

// ---------------------------------------------------------------------------------------
// b. The daily ε cap holds across concurrent processes.

const LEDGER_CHILDREN: usize = 5;
const CHARGED_PER_CHILD: usize = 12;
/// Small: one child alone wants 1 (component_initialized) + 12 × 0.75 = 10.
const LEDGER_CAP: f64 = 6.0;

/// Child of [`the_ledger_cap_holds_across_concurrent_processes`]: records, waits at the
/// barrier, flushes.
#[test]
fn child_ledger() {
    let Some(home) = std::env::var_os(LEDGER_HOME) else {
        return; // Not a child: nothing to do.
    };
    let barrier = PathBuf::from(std::env::var_os(LEDGER_BARRIER).expect("barrier dir"));
    let id = std::env::var(LEDGER_CHILD_ID).expect("child id");
    let telemetry = Telemetry::builder("acme")
        .app_version("1.2.3")
        .env(env(Path::new(&home)))
        .event::<Charged>()
        .daily_epsilon_cap(LEDGER_CAP)
        .build();
    assert!(telemetry.is_enabled(), "{:?}", telemetry.decision());
    // Values no other child records: every answer is new, so each report is charged.
    let id_number: i64 = id.parse().expect("a numeric child id");
    for i in 0..CHARGED_PER_CHILD as i64 {
        telemetry.record(&Charged {
            n: id_number * CHARGED_PER_CHILD as i64 + i,
        });
    }
    fs::write(barrier.join(format!("ready-{id}")), b"").expect("ready marker");
    wait_for(&barrier.join("go"), "the barrier");
    let path = telemetry.flush().expect("flush").expect("a payload");
    println!("payload: {}", path.display());
}

#[test]
fn the_ledger_cap_holds_across_concurrent_processes() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    let barrier = root.path().join("barrier");
    fs::create_dir(&home).unwrap();
    fs::create_dir(&barrier).unwrap();
    enable(&home);

    let children: Vec<_> = (0..LEDGER_CHILDREN)
        .map(|id| {
            child(
                "child_ledger",
                &[
                    (LEDGER_HOME, home.clone().into()),
                    (LEDGER_BARRIER, barrier.clone().into()),
                    (LEDGER_CHILD_ID, id.to_string().into()),
                ],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn child")
        })
        .collect();
    // Everyone has recorded and waits: release them together.
    for id in 0..LEDGER_CHILDREN {
        wait_for(
            &barrier.join(format!("ready-{id}")),
            "a child at the barrier",
        );
    }
    fs::write(barrier.join("go"), b"").unwrap();
    for child in children {
        let output = child.wait_with_output().expect("wait for a child");
        assert!(
            output.status.success(),
            "a child failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("payload: "),
            "the child test did not run: {output:?}"
        );
    }

    let payloads = validated_payloads(&pending_dir(&home));
    assert_eq!(payloads.len(), LEDGER_CHILDREN, "one payload per process");
    let days: std::collections::BTreeSet<String> = payloads
        .iter()
        .map(|(_, c)| c.envelope.period.day.to_string())
        .collect();
    let (mut charged_kept, mut dropped) = (0usize, 0usize);
    for (name, checked) in &payloads {
        let ledger = &checked.envelope.privacy.ledger;
        assert_eq!(ledger.epsilon_cap, LEDGER_CAP, "{name}");
        assert!(ledger.epsilon_spent <= LEDGER_CAP, "{name}: {ledger:?}");
        charged_kept += checked
            .envelope
            .events
            .iter()
            .filter(|e| e.name.as_str() == Charged::NAME)
            .count();
        dropped += ledger.dropped_reports as usize;
    }
    assert!(
        dropped > 0,
        "the cap was never reached: the test checked nothing"
    );
    let ledger: serde_json::Value =
        serde_json::from_slice(&fs::read(home.join(".config/acme/ledger.json")).unwrap())
            .expect("the ledger is valid JSON");
    let on_disk = ledger["epsilon_spent"].as_f64().expect("epsilon_spent");
    assert!(on_disk <= LEDGER_CAP + 1e-9, "ledger.json: {ledger}");
    // Per day (a test running across midnight UTC sees two budgets).
    if days.len() == 1 {
        // Every kept `charged_item` showed at least one new answer (0.75), and
        // `component_initialized` was charged once (1.0): a lost update of the ledger by
        // concurrent processes would show more kept reports than the ledger accounts for.
        let accounted = 1.0 + 0.75 * charged_kept as f64;
        assert!(
            accounted <= on_disk + 1e-9,
            "payloads keep {charged_kept} charged reports (ε ≥ {accounted}), the ledger says {on_disk}"
        );
        // The budget is used, not just refused: the flushes take what fits.
        assert!(
            on_disk > LEDGER_CAP - 0.75 - 1e-9,
            "only ε = {on_disk} of {LEDGER_CAP} was spent"
        );
    }
}
