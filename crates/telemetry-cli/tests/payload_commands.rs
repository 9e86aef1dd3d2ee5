//! `show`, `verify-payload`, `catalog`, `aggregate` and `purge` in-process, on the schema
//! crate's fixed fixtures: insta snapshots of the human output, JSON-shape checks, and every
//! bad input (unknown run id, non-payload, huge file, malformed JSON, future version).

use std::fs;
use std::path::{Path, PathBuf};

use telemetry_cli::{Form, exit};
use telemetry_core::Telemetry;
use telemetry_core::event::{Event, FieldDecl, Label, Value};

mod common;
use common::{env_for, run_builder, run_in};

const FULL: &str = "../telemetry-schema/fixtures/v1/valid/full.json";
const MINIMAL: &str = "../telemetry-schema/fixtures/v1/valid/minimal.json";
const INVALID: &str = "../telemetry-schema/fixtures/v1/invalid";

fn fixture(path: &str) -> Vec<u8> {
    fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

fn run_id(bytes: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    v["run_id"].as_str().unwrap().to_owned()
}

/// Copies a fixture into `acme`'s pending (or previews) directory under its run id. The
/// fixtures share one run id, so previews get another one (the last digit changed).
fn store(home: &Path, dir: &str, fixture_path: &str) -> String {
    let mut bytes = fixture(fixture_path);
    let mut id = run_id(&bytes);
    if dir == "previews" {
        let other = format!("{}5", &id[..id.len() - 1]);
        bytes = String::from_utf8(bytes)
            .unwrap()
            .replace(&id, &other)
            .into_bytes();
        id = other;
    }
    let dir = home.join(".config/acme").join(dir);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(format!("{id}.json")), &bytes).unwrap();
    id
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push(e.path());
            if e.file_type().unwrap().is_dir() {
                out.extend(files_under(&e.path()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn read_commands_on_a_fresh_install_print_and_create_nothing() {
    let home = tempfile::tempdir().unwrap();
    let r = run_in(home.path(), &[], &["show"], "");
    assert_eq!(r.code, exit::OK);
    insta::assert_snapshot!("show_fresh", r.out);
    let r = run_in(home.path(), &[], &["show", "--json"], "");
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["payloads"], serde_json::json!([]));
    let r = run_in(home.path(), &[], &["verify-payload", "nope"], "");
    assert_eq!(r.code, exit::ERROR);
    assert!(r.err.contains("there are no stored payloads"), "{}", r.err);
    let r = run_in(home.path(), &[], &["catalog"], "");
    assert_eq!(r.code, exit::OK);
    let r = run_in(home.path(), &[], &["purge"], "");
    assert_eq!(r.code, exit::OK);
    assert!(r.out.contains("Nothing to remove"), "{}", r.out);
    assert_eq!(files_under(home.path()), Vec::<PathBuf>::new());
}

#[test]
fn show_lists_pending_and_preview_payloads_with_why_they_are_not_sendable() {
    let home = tempfile::tempdir().unwrap();
    let full = store(home.path(), "uploads-pending", FULL);
    let minimal = store(home.path(), "previews", MINIMAL);
    fs::write(
        home.path()
            .join(".config/acme/uploads-pending/0000-broken.json"),
        b"{not json",
    )
    .unwrap();
    let r = run_in(home.path(), &[], &["show"], "");
    assert_eq!(r.code, exit::OK);
    insta::assert_snapshot!("show_fixtures", r.out);

    let r = run_in(
        home.path(),
        &[("DO_NOT_TRACK", "1")],
        &["show", "--json"],
        "",
    );
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    let rows = v["payloads"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let row = |id: &str| rows.iter().find(|r| r["run_id"] == id).unwrap();
    let p = row(&full);
    assert_eq!(p["kind"], "pending");
    assert_eq!(p["readable"], true);
    assert_eq!(p["sendable"], false);
    assert_eq!(
        p["sendable_reason"],
        "DO_NOT_TRACK=1 is set: this payload cannot be sent"
    );
    assert_eq!(p["schema_version"], "1.0.0");
    assert!(p["events"].as_u64().unwrap() >= 1);
    assert_eq!(p["size"], fixture(FULL).len());
    let p = row(&minimal);
    assert_eq!(p["kind"], "preview");
    assert_eq!(p["sendable_reason"], "preview payloads are never sent");
    let p = row("0000-broken");
    assert_eq!(p["readable"], false);
    assert!(p["problem"].as_str().unwrap().contains("malformed JSON"));
}

#[test]
fn verify_payload_shows_the_exact_bytes_their_hash_and_the_privacy_of_each_field() {
    let home = tempfile::tempdir().unwrap();
    let id = store(home.path(), "uploads-pending", FULL);
    let bytes = fixture(FULL);
    let r = run_in(home.path(), &[], &["verify-payload", &id], "");
    assert_eq!(r.code, exit::OK, "{}", r.err);
    assert!(r.out.contains(std::str::from_utf8(&bytes).unwrap()));
    insta::assert_snapshot!("verify_full", r.out);

    let r = run_in(home.path(), &[], &["verify-payload", &id, "--json"], "");
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    let expected_sha = telemetry_core::inspect::sha256_hex(&bytes);
    assert_eq!(v["sha256"], expected_sha);
    assert_eq!(v["schema_version"], "1.0.0");
    assert_eq!(v["valid"], true);
    assert!(v["redaction"]["status"].is_string());
    assert!(!v["dp"].as_array().unwrap().is_empty());
    assert_eq!(v["sendable"], false);
    assert!(v["sendable_reason"].as_str().unwrap().contains("disabled"));
    assert_eq!(
        v["payload"],
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
    );
    // The same payload by path.
    let path = home
        .path()
        .join(format!(".config/acme/uploads-pending/{id}.json"));
    let r = run_in(
        home.path(),
        &[],
        &["verify-payload", path.to_str().unwrap(), "--json"],
        "",
    );
    let by_path: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(by_path["kind"], "pending");
    assert_eq!(by_path["sha256"], expected_sha);

    // A 1.1.0 payload states how many text values were redacted.
    let path = home.path().join("redacted.json");
    fs::write(
        &path,
        fixture("../telemetry-schema/fixtures/v1/valid/redaction_redacted.json"),
    )
    .unwrap();
    let r = run_in(
        home.path(),
        &[],
        &["verify-payload", path.to_str().unwrap()],
        "",
    );
    assert_eq!(r.code, exit::OK, "{}", r.err);
    assert!(r.out.contains("schema version: 1.1.0 (valid)"), "{}", r.out);
    assert!(
        r.out
            .contains("redaction:      redacted: something was replaced in"),
        "{}",
        r.out
    );
}

#[test]
fn verify_payload_says_why_a_payload_cannot_be_sent() {
    let home = tempfile::tempdir().unwrap();
    let pending = store(home.path(), "uploads-pending", FULL);
    let preview = store(home.path(), "previews", MINIMAL);
    let reason = |extra: &[(&str, &str)], id: &str| {
        let r = run_in(home.path(), extra, &["verify-payload", id, "--json"], "");
        let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
        (
            v["sendable"].as_bool().unwrap(),
            v["sendable_reason"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(
        reason(&[], &preview),
        (false, "preview payloads are never sent".to_owned())
    );
    let (sendable, why) = reason(&[], &pending);
    assert!(!sendable);
    assert!(
        why.starts_with("telemetry is disabled: no consent"),
        "{why}"
    );
    assert_eq!(
        run_in(home.path(), &[], &["enable", "--yes"], "").code,
        exit::OK
    );
    let (sendable, why) = reason(&[], &pending);
    if cfg!(feature = "upload") {
        assert!(sendable, "{why}");
    } else {
        assert!(!sendable);
        assert_eq!(
            why,
            "this build has no upload support: the payload stays on this machine"
        );
    }
    assert_eq!(
        reason(&[("DO_NOT_TRACK", "1")], &pending),
        (
            false,
            "DO_NOT_TRACK=1 is set: this payload cannot be sent".to_owned()
        )
    );
    assert_eq!(
        reason(&[("ACME_TELEMETRY", "off")], &pending),
        (
            false,
            "ACME_TELEMETRY=off is set: this payload cannot be sent".to_owned()
        )
    );
    // A copy outside the pending directory is never sendable.
    let outside = home.path().join("copy.json");
    fs::write(&outside, fixture(FULL)).unwrap();
    let (sendable, why) = reason(&[], outside.to_str().unwrap());
    assert!(!sendable);
    assert!(why.contains("not in acme's pending directory"), "{why}");
}

#[test]
fn verify_payload_refuses_bad_input_clearly_without_showing_it() {
    let home = tempfile::tempdir().unwrap();
    let id = store(home.path(), "uploads-pending", FULL);
    let dir = home.path();
    // An unknown run id lists those that exist.
    let r = run_in(
        dir,
        &[],
        &["verify-payload", "01890a5d-ac96-774b-bcce-b302099a8057"],
        "",
    );
    assert_eq!(r.code, exit::ERROR);
    assert!(r.err.contains(&id), "{}", r.err);
    // Files that are not payloads.
    let secret = "hunter2-do-not-print";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "notes.txt",
            format!("password = {secret}\n").into_bytes(),
            "malformed JSON",
        ),
        (
            "other.json",
            format!("{{\"token\": \"{secret}\"}}").into_bytes(),
            "not a telemetry",
        ),
        ("huge.json", vec![b' '; 5 * 1024 * 1024], "larger than"),
        (
            "future.json",
            fixture(&format!("{INVALID}/future_major_version.json")),
            "unsupported schema version",
        ),
        (
            "malformed.json",
            fixture(&format!("{INVALID}/malformed_json.json")),
            "malformed JSON",
        ),
        (
            "path_as_label.json",
            fixture(&format!("{INVALID}/path_as_label.json")),
            "schema",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.join(name);
        fs::write(&path, &bytes).unwrap();
        let r = run_in(dir, &[], &["verify-payload", path.to_str().unwrap()], "");
        assert_eq!(r.code, exit::ERROR, "{name}");
        assert!(r.err.contains(expected), "{name}: {}", r.err);
        assert!(r.out.is_empty(), "{name}: printed {}", r.out);
        assert!(!r.err.contains(secret), "{name}: echoed its content");
        let r = run_in(
            dir,
            &[],
            &["verify-payload", path.to_str().unwrap(), "--json"],
            "",
        );
        assert_eq!(r.code, exit::ERROR, "{name}");
        if name != "huge.json" {
            let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
            assert_eq!(v["valid"], false, "{name}");
            assert_eq!(v["sendable"], false, "{name}");
            assert!(v["payload"].is_null(), "{name}");
            assert!(!r.out.contains(secret), "{name}: echoed its content");
        }
    }
    // A directory, and a path that does not exist.
    let r = run_in(dir, &[], &["verify-payload", dir.to_str().unwrap()], "");
    assert_eq!(r.code, exit::ERROR);
    assert!(r.err.contains("not a regular file"), "{}", r.err);
    let r = run_in(dir, &[], &["verify-payload", "/nonexistent/x.json"], "");
    assert_eq!(r.code, exit::ERROR);
}

struct Deploy {
    target: u32,
    dry_run: bool,
}

telemetry_core::labels! {
    /// Where to.
    pub enum Target {
        /// Staging.
        Staging = "staging",
        /// Production.
        Production = "production",
    }
}

impl Event for Deploy {
    const NAME: &'static str = "deploy";
    const DESCRIPTION: &'static str = "A deployment ran.";
    const FIELDS: &'static [FieldDecl] = &[
        FieldDecl::enumeration("target", "Where to.", Target::LABELS, 1.0),
        FieldDecl::boolean("dry_run", "Whether --dry-run was given.", 0.5),
        FieldDecl::integer("replicas", "How many replicas.", 1, 10, 1.0),
    ];
    fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
        out(Value::Enum(self.target));
        out(Value::Bool(self.dry_run));
        out(Value::Missing);
    }
}

#[test]
fn catalog_mounted_lists_every_event_and_standalone_says_where_to_look() {
    let home = tempfile::tempdir().unwrap();
    let builder = Telemetry::builder("acme")
        .app_version("1.2.3")
        .env(env_for(home.path(), &[]))
        .event::<Deploy>();
    let r = run_builder(&builder, home.path(), Form::Mounted, &["catalog"], "");
    assert_eq!(r.code, exit::OK, "{}", r.err);
    insta::assert_snapshot!("catalog", r.out);
    let r = run_builder(
        &builder,
        home.path(),
        Form::Mounted,
        &["catalog", "--json"],
        "",
    );
    telemetry_schema::validate_catalog(r.out.as_bytes()).expect("the catalogue validates");
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    let names: Vec<_> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"deploy"), "{names:?}");
    let r = run_builder(&builder, home.path(), Form::Standalone, &["catalog"], "");
    assert_eq!(r.code, exit::USAGE);
    assert!(r.err.contains("acme telemetry catalog"), "{}", r.err);
    assert_eq!(files_under(home.path()), Vec::<PathBuf>::new());
}

#[test]
fn aggregate_reads_files_and_directories_and_skips_bad_files_with_a_count() {
    let home = tempfile::tempdir().unwrap();
    let collected = home.path().join("collected");
    // The fixtures share one run id: each install's payload gets its own.
    let as_run = |bytes: Vec<u8>, last: char| {
        let id = run_id(&bytes);
        let other = format!("{}{last}", &id[..id.len() - 1]);
        let text = String::from_utf8(bytes).unwrap().replace(&id, &other);
        (other, text.into_bytes())
    };
    for (i, f) in [FULL, MINIMAL].iter().enumerate() {
        let dir = collected.join(format!("install-{i}"));
        fs::create_dir_all(&dir).unwrap();
        let (id, bytes) = as_run(fixture(f), char::from(b'0' + i as u8));
        fs::write(dir.join(format!("{id}.json")), bytes).unwrap();
    }
    // The same payload collected twice is counted once; another app's is not counted.
    let (id, bytes) = as_run(fixture(FULL), '0');
    fs::create_dir_all(collected.join("copy")).unwrap();
    fs::write(collected.join(format!("copy/{id}.json")), bytes).unwrap();
    let (id, other_app) = as_run(fixture(FULL), '7');
    let other_app = String::from_utf8(other_app).unwrap().replacen(
        "\"name\": \"acme\"",
        "\"name\": \"other\"",
        1,
    );
    fs::write(collected.join(format!("{id}.json")), other_app).unwrap();
    let junk = collected.join("01912d68-783e-7a03-8467-000000000000.json");
    fs::write(&junk, b"[1, 2").unwrap();
    fs::write(collected.join("ignored.txt"), b"not a payload").unwrap();
    fs::write(collected.join("ledger.json"), b"{}").unwrap();
    let lone = home.path().join("lone-payload");
    fs::write(&lone, as_run(fixture(FULL), '2').1).unwrap();
    let args = [
        "aggregate",
        collected.to_str().unwrap(),
        lone.to_str().unwrap(),
    ];
    let r = run_in(home.path(), &[], &args, "");
    assert_eq!(r.code, exit::OK);
    insta::assert_snapshot!("aggregate_fixtures", format!("{}---\n{}", r.out, r.err));
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let r = run_in(home.path(), &[], &json_args, "");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&r.out).unwrap();
    assert!(!rows.is_empty());
    for row in &rows {
        for key in ["event", "field", "value", "estimate", "standard_error", "n"] {
            assert!(row.get(key).is_some(), "{key} missing in {row}");
        }
    }
    assert!(r.err.contains("1 file skipped"), "{}", r.err);
    let ok = rows
        .iter()
        .find(|r| r["field"] == "ok")
        .expect("a row for command_run.ok");
    assert_eq!(
        ok["n"], 4,
        "two FULL payloads (2 reports each), the copy not counted: {ok}"
    );
    assert_eq!(ok["status"], "ok");
    assert!(ok["ci95"][0].as_f64().unwrap() <= ok["shown"].as_f64().unwrap());
    // Nothing valid at all is an error; so are only another app's payloads.
    let r = run_in(
        home.path(),
        &[],
        &[
            "aggregate",
            collected.join(format!("{id}.json")).to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(r.code, exit::ERROR, "{}", r.err);
    assert!(
        r.err.contains("1 payload of app other not counted"),
        "{}",
        r.err
    );
    let r = run_in(home.path(), &[], &["aggregate", junk.to_str().unwrap()], "");
    assert_eq!(r.code, exit::ERROR);
    let r = run_in(home.path(), &[], &["aggregate", "/nonexistent"], "");
    assert_eq!(r.code, exit::ERROR);
}

#[test]
fn purge_removes_every_file_it_created_and_keeps_what_it_did_not() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join(".config/acme");
    assert_eq!(
        run_in(home.path(), &[], &["enable", "--yes"], "").code,
        exit::OK
    );
    let set = ["config", "set", "telemetry.max_pending_files", "10"];
    assert_eq!(run_in(home.path(), &[], &set, "").code, exit::OK);
    store(home.path(), "uploads-pending", FULL);
    store(home.path(), "previews", MINIMAL);
    fs::write(root.join("ledger.json"), b"{}").unwrap();
    // A declined prompt removes nothing.
    let before = files_under(home.path());
    let r = run_in(home.path(), &[], &["purge"], "n\n");
    assert_eq!(r.code, exit::ERROR);
    assert_eq!(files_under(home.path()), before);
    let r = run_in(home.path(), &[], &["purge", "--yes"], "");
    assert_eq!(r.code, exit::OK, "{}", r.err);
    insta::assert_snapshot!("purge", r.out);
    assert_eq!(files_under(home.path()), vec![home.path().join(".config")]);
    let r = run_in(home.path(), &[], &["status", "--json"], "");
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["consent_token"], "absent");

    // A config file with the app's own settings, and a file of the app's, stay.
    fs::create_dir_all(&root).unwrap();
    fs::write(
        root.join("config.toml"),
        "theme = \"dark\"\n[telemetry]\nenabled = false\n",
    )
    .unwrap();
    fs::write(root.join("history"), b"app data").unwrap();
    let r = run_in(home.path(), &[], &["purge", "--yes"], "");
    assert_eq!(r.code, exit::OK);
    assert!(
        r.out.contains("Kept [HOME]/.config/acme/config.toml"),
        "{}",
        r.out
    );
    assert!(root.join("config.toml").exists());
    assert!(root.join("history").exists());
}
