//! Issue #16, class 6: `aggregate` cannot be misled by what it is given. A run id repeated
//! across inputs counts once; another app's payloads are named, not pooled; a forged tiny ε
//! gives an estimate marked meaningless, never `inf ± inf` or JSON `null` without a reason; one
//! report has no standard error (not "± 0"); no payload at all is exit status 1.

use std::fs;
use std::path::Path;

use telemetry_cli::exit;

mod common;
use common::run_in;

const FULL: &str = "../telemetry-schema/fixtures/v1/valid/full.json";

/// The `full` fixture (app acme) under run id `…5661c1243aNN`, with `edit` applied to its JSON.
fn payload(n: u8, edit: impl Fn(&mut serde_json::Value)) -> (String, Vec<u8>) {
    let bytes = fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(FULL)).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let run_id = format!("01912d68-783e-7a03-8467-5661c1243a{n:02x}");
    v["run_id"] = run_id.clone().into();
    edit(&mut v);
    (run_id, serde_json::to_vec(&v).unwrap())
}

fn put(dir: &Path, (run_id, bytes): (String, Vec<u8>)) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(format!("{run_id}.json")), bytes).unwrap();
}

fn rows(out: &str) -> Vec<serde_json::Value> {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn row<'a>(rows: &'a [serde_json::Value], field: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["field"] == field)
        .unwrap_or_else(|| panic!("no row for {field}: {rows:?}"))
}

#[test]
fn the_same_payload_collected_from_many_places_counts_once() {
    let home = tempfile::tempdir().unwrap();
    let collected = home.path().join("collected");
    for copy in ["a", "b", "c"] {
        put(&collected.join(copy), payload(1, |_| {}));
    }
    put(&collected.join("d"), payload(2, |_| {}));
    let dir = collected.to_str().unwrap();
    let r = run_in(home.path(), &[], &["aggregate", dir, dir, "--json"], "");
    assert_eq!(r.code, exit::OK, "{}", r.err);
    // Two distinct payloads, each with two reports of command_run.ok.
    assert_eq!(row(&rows(&r.out), "ok")["n"], 4);
    // The directory given twice: 8 files, 2 distinct run ids.
    assert!(r.err.contains("6 payloads not counted again"), "{}", r.err);
}

#[test]
fn another_apps_payloads_are_named_and_never_pooled() {
    let home = tempfile::tempdir().unwrap();
    let collected = home.path().join("collected");
    put(&collected, payload(1, |_| {}));
    for n in 2..5 {
        put(
            &collected,
            payload(n, |v| v["app"]["name"] = "rival".into()),
        );
    }
    let r = run_in(
        home.path(),
        &[],
        &["aggregate", collected.to_str().unwrap(), "--json"],
        "",
    );
    assert_eq!(r.code, exit::OK, "{}", r.err);
    assert_eq!(row(&rows(&r.out), "ok")["n"], 2, "only acme's payload");
    assert!(
        r.err.contains("3 payloads of app rival not counted"),
        "{}",
        r.err
    );
}

#[test]
fn a_forged_tiny_epsilon_is_reported_meaningless_not_infinite() {
    let home = tempfile::tempdir().unwrap();
    let collected = home.path().join("collected");
    let forge = |v: &mut serde_json::Value| {
        for block in v["privacy"]["dp"].as_array_mut().unwrap() {
            if block["field"] == "ok" {
                // p and q as the consistency check derives them from such an ε.
                block["params"]["epsilon"] = 1e-300.into();
                block["params"]["p"] = 0.5.into();
                block["params"]["q"] = 0.5.into();
            }
        }
    };
    for n in 1..4 {
        put(&collected, payload(n, forge));
    }
    let dir = collected.to_str().unwrap();
    let r = run_in(home.path(), &[], &["aggregate", dir, "--json"], "");
    assert_eq!(r.code, exit::OK, "{}", r.err);
    let ok = row(&rows(&r.out), "ok").clone();
    assert_eq!(ok["status"], "uninformative", "{ok}");
    assert!(ok["note"].as_str().unwrap().contains("meaningless"), "{ok}");
    let r = run_in(home.path(), &[], &["aggregate", dir], "");
    let line = r
        .out
        .lines()
        .find(|l| l.contains("command_run.ok"))
        .unwrap_or_else(|| panic!("{}", r.out));
    assert!(!line.contains("inf") && !line.contains("NaN"), "{line}");
    assert!(line.contains("meaningless"), "{line}");
}

#[test]
fn one_report_has_no_standard_error() {
    let home = tempfile::tempdir().unwrap();
    let collected = home.path().join("collected");
    put(
        &collected,
        payload(1, |v| {
            // Keep only the first event: one report per field.
            let first = v["events"][0].clone();
            v["events"] = serde_json::json!([first]);
        }),
    );
    let r = run_in(
        home.path(),
        &[],
        &["aggregate", collected.to_str().unwrap(), "--json"],
        "",
    );
    assert_eq!(r.code, exit::OK, "{}", r.err);
    let rows = rows(&r.out);
    let ones: Vec<_> = rows.iter().filter(|r| r["n"] == 1).collect();
    assert!(!ones.is_empty(), "{rows:?}");
    for r in ones {
        assert_eq!(r["status"], "too_few_reports", "{r}");
    }
}

#[test]
fn no_payload_is_exit_status_1() {
    let home = tempfile::tempdir().unwrap();
    let empty = home.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    fs::write(empty.join("notes.txt"), b"no payloads here").unwrap();
    let r = run_in(
        home.path(),
        &[],
        &["aggregate", empty.to_str().unwrap()],
        "",
    );
    assert_eq!(r.code, exit::ERROR, "{}{}", r.out, r.err);
    assert!(r.err.contains("no valid payload of acme"), "{}", r.err);
    let r = run_in(
        home.path(),
        &[],
        &["aggregate", empty.to_str().unwrap(), "--json"],
        "",
    );
    assert_eq!(r.code, exit::ERROR);
    assert_eq!(r.out.trim(), "[]");
}
