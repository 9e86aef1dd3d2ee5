//! Issue #16, memory amplification, through the `telemetry` binary: a 4 MiB file of empty
//! events (`{"events":[{},{},...]}` in an otherwise plausible envelope) is refused by
//! `verify-payload` with at most `MAX_REPORTED_VIOLATIONS` violations listed and the rest
//! counted, and skipped by `aggregate`. Peak memory is measured outside the tests (see
//! docs/benchmarks.md); what is asserted here is what bounds it: how much is listed.
//!
//! Each process runs with a cleared environment: `HOME` (a temporary directory) and `PATH`.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use telemetry_schema::MAX_PAYLOAD_BYTES;
use telemetry_schema::validate::{MAX_COUNTED_VIOLATIONS, MAX_REPORTED_VIOLATIONS};

const TELEMETRY: &str = env!("CARGO_BIN_EXE_telemetry");
const MINIMAL: &str = include_str!("../../telemetry-schema/fixtures/v1/valid/minimal.json");

/// The minimal fixture with as many empty events as fit in `MAX_PAYLOAD_BYTES`.
fn empty_events() -> Vec<u8> {
    let room = MAX_PAYLOAD_BYTES - MINIMAL.len();
    let events = vec!["{}"; (room + 1) / 3].join(",");
    let doc = MINIMAL.replacen("\"events\": []", &format!("\"events\": [{events}]"), 1);
    assert!(doc.len() <= MAX_PAYLOAD_BYTES && doc.len() + 3 > MAX_PAYLOAD_BYTES);
    doc.into_bytes()
}

fn telemetry(home: &Path, args: &[&str]) -> Output {
    Command::new(TELEMETRY)
        .env_clear()
        .env("HOME", home)
        .env("PATH", "/usr/bin:/bin")
        .args(["--app", "acme"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run telemetry")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The listed violations: the lines of the form `  /path: message (keyword)`.
fn listed(stderr: &str) -> usize {
    stderr.lines().filter(|l| l.starts_with("  /")).count()
}

#[test]
fn verify_payload_lists_at_most_the_cap_and_counts_the_rest() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("empty-events.json");
    fs::write(&file, empty_events()).unwrap();
    let out = telemetry(home.path(), &["verify-payload", file.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(text(&out.stdout), "", "nothing of the file is printed");
    assert_eq!(listed(&stderr), MAX_REPORTED_VIOLATIONS, "{stderr}");
    // Heading, the list, the count of the rest, and the closing line: nothing else, nothing
    // twice.
    assert_eq!(
        stderr.lines().count(),
        MAX_REPORTED_VIOLATIONS + 3,
        "{stderr}"
    );
    let more = stderr
        .lines()
        .find_map(|l| l.strip_prefix("  ... and at least "))
        .and_then(|rest| rest.strip_suffix(" more"))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no \"... and at least N more\" line: {stderr}"));
    assert!(
        more >= MAX_COUNTED_VIOLATIONS - MAX_REPORTED_VIOLATIONS,
        "{more}: {stderr}"
    );
    assert!(stderr.contains("is not a valid telemetry payload: at least "));
    assert!(stderr.ends_with("Its bytes are not shown: it is not a payload.\n"));

    // As JSON: the error (with the same count), then each listed violation.
    let out = telemetry(
        home.path(),
        &["verify-payload", file.to_str().unwrap(), "--json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1 + MAX_REPORTED_VIOLATIONS);
    assert!(
        errors[0]
            .as_str()
            .unwrap()
            .contains(&format!("at least {more} more"))
    );
    assert!(v["payload"].is_null());
}

#[test]
fn aggregate_skips_each_hostile_file_with_a_bounded_reason() {
    let home = tempfile::tempdir().unwrap();
    let bytes = empty_events();
    let files: Vec<String> = (0..4)
        .map(|i| {
            let path = home.path().join(format!("hostile-{i}.json"));
            fs::write(&path, &bytes).unwrap();
            path.to_str().unwrap().to_owned()
        })
        .collect();
    let mut args = vec!["aggregate"];
    args.extend(files.iter().map(String::as_str));
    let out = telemetry(home.path(), &args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("4 files skipped (not valid payloads)."),
        "{stderr}"
    );
    assert!(stderr.contains("error: no valid payload of acme to aggregate"));
    assert_eq!(listed(&stderr), 4 * MAX_REPORTED_VIOLATIONS, "{stderr}");
    assert_eq!(stderr.matches("... and at least ").count(), 4);
}
