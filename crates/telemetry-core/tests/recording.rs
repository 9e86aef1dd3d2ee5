//! The recording pipeline end to end: typed events → randomised → one validated payload.
//!
//! Unix only: it checks modes, owners and symlinks of the Unix store; off Unix the store
//! writes nothing and telemetry stays off (`telemetry_core::platform`).
#![cfg(unix)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use telemetry_core::event::{Event, FieldDecl, Label, Value};
use telemetry_core::{Env, Telemetry};

telemetry_core::labels! {
    /// How a command ended.
    pub enum Outcome {
        /// Exit 0.
        Success = "success",
        /// Exit 1.
        Failure = "failure",
    }
}

struct CommandRun {
    outcome: Outcome,
    duration: Duration,
    flag: bool,
    note: Option<String>,
}

impl Event for CommandRun {
    const NAME: &'static str = "command_run";
    const DESCRIPTION: &'static str = "A command ran.";
    const FIELDS: &'static [FieldDecl] = &[
        FieldDecl::enumeration("outcome", "How it ended.", Outcome::LABELS, 1.0),
        FieldDecl::duration("duration", "How long it took.", 1.0),
        FieldDecl::boolean("flag", "Whether --flag was given.", 1.0),
        FieldDecl::text("note", "A note, redacted.", 120),
    ];
    fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
        out(Value::Enum(self.outcome.index()));
        out(Value::Duration(self.duration));
        out(Value::Bool(self.flag));
        out(self.note.as_deref().map_or(Value::Missing, Value::Text));
    }
}

fn env(home: &Path, extra: &[(&str, &str)]) -> Env {
    let mut vars = vec![("HOME".to_owned(), home.display().to_string())];
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Env::from_pairs(vars)
}

fn handle(home: &Path, extra: &[(&str, &str)]) -> Telemetry {
    Telemetry::builder("acme")
        .app_version("1.2.3")
        .env(env(home, extra))
        .event::<CommandRun>()
        .print_warnings(false)
        .build()
}

fn run(home: &Path, extra: &[(&str, &str)], note: Option<&str>) -> Option<PathBuf> {
    let t = handle(home, extra);
    t.record(&CommandRun {
        outcome: Outcome::Success,
        duration: Duration::from_millis(250),
        flag: true,
        note: note.map(str::to_owned),
    });
    t.flush().expect("flush")
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push(e.path());
            if e.path().is_dir() {
                out.extend(files_under(&e.path()));
            }
        }
    }
    out
}

#[test]
fn disabled_records_and_writes_nothing() {
    let home = tempfile::tempdir().unwrap();
    assert_eq!(run(home.path(), &[], Some("hello")), None);
    assert!(files_under(home.path()).is_empty());
}

#[test]
fn enabled_writes_one_valid_0600_payload_per_run() {
    let home = tempfile::tempdir().unwrap();
    handle(home.path(), &[]).enable().unwrap();
    let path = run(home.path(), &[], None).expect("a payload");
    assert!(path.starts_with(home.path().join(".config/acme/uploads-pending")));
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let bytes = fs::read(&path).unwrap();
    let checked = telemetry_schema::validate_payload(&bytes).expect("valid v1 payload");
    let names: Vec<_> = checked
        .envelope
        .events
        .iter()
        .map(|e| e.name.as_str().to_owned())
        .collect();
    assert_eq!(names, ["component_initialized", "command_run"]);
    assert!(checked.envelope.dp_block("command_run", "flag").is_some());
    assert!(checked.envelope.privacy.ledger.epsilon_spent > 0.0);
    assert_eq!(run(home.path(), &[], None).map(|p| p != path), Some(true));
}

#[test]
fn text_is_redacted_and_never_leaks_the_home_or_a_path() {
    let home = tempfile::tempdir().unwrap();
    handle(home.path(), &[]).enable().unwrap();
    let secret_path = format!("{}/projects/secret-plan.txt", home.path().display());
    let note = format!("failed reading {secret_path} for alice@example.com from 10.1.2.3");
    let path = run(home.path(), &[], Some(&note)).unwrap();
    let text = fs::read_to_string(path).unwrap();
    for needle in [
        home.path().to_str().unwrap(),
        "secret-plan",
        "alice@example.com",
        "10.1.2.3",
    ] {
        assert!(!text.contains(needle), "{needle} leaked into {text}");
    }
    assert!(text.contains("\"status\":\"redacted\""), "{text}");
}

/// Issue #17: the ledger charges what is revealed. New answers are charged until the cap and
/// then dropped, and said so; a repeat of an answer charged today still goes out, free.
#[test]
fn the_daily_cap_drops_new_answers_and_says_so_and_repeats_stay_free() {
    let home = tempfile::tempdir().unwrap();
    handle(home.path(), &[]).enable().unwrap();
    let capped = |cap: f64| {
        Telemetry::builder("acme")
            .app_version("1.2.3")
            .env(env(home.path(), &[]))
            .event::<CommandRun>()
            .daily_epsilon_cap(cap)
            .print_warnings(false)
            .build()
    };
    let t = capped(8.0);
    // Durations of 1 s … 2¹⁹ s fall in ever new buckets: every report shows a new answer.
    for i in 0..20 {
        t.record(&CommandRun {
            outcome: Outcome::Failure,
            duration: Duration::from_secs(1 << i),
            flag: i % 2 == 0,
            note: None,
        });
    }
    let reports = t.buffered_events();
    let path = t.flush().unwrap().unwrap();
    let env = telemetry_schema::validate_payload(&fs::read(path).unwrap())
        .unwrap()
        .envelope;
    let ledger = &env.privacy.ledger;
    assert!(ledger.epsilon_spent <= ledger.epsilon_cap);
    assert_eq!(env.events.len() + ledger.dropped_reports as usize, reports);
    assert!(ledger.dropped_reports > 0, "{ledger:?}");
    let on_disk: serde_json::Value =
        serde_json::from_slice(&fs::read(home.path().join(".config/acme/ledger.json")).unwrap())
            .unwrap();
    let spent = on_disk["epsilon_spent"].as_f64().unwrap();
    assert!(spent <= 8.0 + 1e-9 && spent > 8.0 - 3.0, "{on_disk}");
    // The next run of the day: its new answer does not fit, but component_initialized (an
    // answer charged already) goes out at no cost.
    let t = capped(8.0);
    t.record(&CommandRun {
        outcome: Outcome::Success,
        duration: Duration::from_secs(1 << 25),
        flag: true,
        note: None,
    });
    let path = t.flush().unwrap().expect("the repeat goes out");
    let env = telemetry_schema::validate_payload(&fs::read(path).unwrap())
        .unwrap()
        .envelope;
    let names: Vec<&str> = env.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["component_initialized"]);
    assert_eq!(env.privacy.ledger.dropped_reports, 1);
}

#[test]
fn an_unreadable_ledger_fails_closed_and_is_replaced_atomically() {
    for garbage in [
        &b""[..],
        b"{\"day\": 3",
        b"\xff\xfe",
        b"{\"day\":\"x\",\"epsilon_spent\":-5}",
    ] {
        let home = tempfile::tempdir().unwrap();
        handle(home.path(), &[]).enable().unwrap();
        let ledger = home.path().join(".config/acme/ledger.json");
        fs::write(&ledger, garbage).unwrap();
        let t = handle(home.path(), &[]);
        t.record(&CommandRun {
            outcome: Outcome::Success,
            duration: Duration::from_secs(1),
            flag: true,
            note: None,
        });
        let written = t.flush().unwrap();
        let what = String::from_utf8_lossy(garbage);
        if garbage.starts_with(b"{\"day\":\"x\"") {
            // A well-formed ledger of another day: a new day, a fresh budget.
            let env = telemetry_schema::validate_payload(&fs::read(written.unwrap()).unwrap())
                .unwrap()
                .envelope;
            assert_eq!(env.events.len(), 2, "{what}");
            continue;
        }
        // Today's budget counts as spent: both reports dropped, and no payload without events.
        assert_eq!(written, None, "{what}");
        let pending = home.path().join(".config/acme/uploads-pending");
        assert_eq!(
            fs::read_dir(&pending).map_or(0, Iterator::count),
            0,
            "{what}"
        );
        // The ledger was rewritten whole (by rename), readable and 0600.
        let rewritten: serde_json::Value =
            serde_json::from_slice(&fs::read(&ledger).unwrap()).unwrap();
        assert_eq!(rewritten["epsilon_spent"], 64.0, "{what}");
        let mode = fs::metadata(&ledger).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn preview_renders_locally_even_under_dnt_without_identifiers_or_budget() {
    let home = tempfile::tempdir().unwrap();
    let path = run(
        home.path(),
        &[("ACME_TELEMETRY", "preview"), ("DO_NOT_TRACK", "1")],
        None,
    )
    .expect("a preview");
    assert!(path.starts_with(home.path().join(".config/acme/previews")));
    let app_dir = home.path().join(".config/acme");
    assert!(!app_dir.join("secrets").exists());
    assert!(!app_dir.join("ledger.json").exists());
    assert!(!app_dir.join("uploads-pending").exists());
    telemetry_schema::validate_payload(&fs::read(path).unwrap()).unwrap();
}

#[test]
fn pending_store_keeps_only_the_newest_within_bounds() {
    let home = tempfile::tempdir().unwrap();
    handle(home.path(), &[]).enable().unwrap();
    let extra = [("ACME_CONFIG_TELEMETRY__MAX_PENDING_FILES", "3")];
    let mut written = Vec::new();
    for _ in 0..5 {
        written.push(run(home.path(), &extra, None).unwrap());
    }
    let left: Vec<_> = fs::read_dir(home.path().join(".config/acme/uploads-pending"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(left.len(), 3);
    for newest in &written[2..] {
        assert!(left.contains(newest));
    }
}

#[test]
fn the_catalogue_comes_from_the_same_declarations() {
    let home = tempfile::tempdir().unwrap();
    let catalog = handle(home.path(), &[]).catalog().unwrap();
    let field = catalog
        .field("command_run", "outcome")
        .expect("declared field");
    assert_eq!(field.name.as_str(), "outcome");
    assert!(
        catalog
            .field("component_initialized", "sdk_version")
            .is_some()
    );
    telemetry_schema::validate_catalog(serde_json::to_string(&catalog).unwrap().as_bytes())
        .expect("catalogue validates");
}

#[test]
fn an_unwritable_directory_is_an_error_not_a_panic() {
    let home = tempfile::tempdir().unwrap();
    handle(home.path(), &[]).enable().unwrap();
    let pending = home.path().join(".config/acme/uploads-pending");
    fs::write(&pending, b"not a directory").unwrap();
    let t = handle(home.path(), &[]);
    assert!(t.flush().is_err());
    drop(t); // must not panic either
}

/// Format 1.1: the payload states the redaction outcome of the run's text values and counts them.
#[test]
fn the_payload_states_the_redaction_outcome_and_counts() {
    use telemetry_schema::RedactionStatus;

    fn payload(notes: &[Option<&str>]) -> telemetry_schema::Envelope {
        let home = tempfile::tempdir().unwrap();
        handle(home.path(), &[]).enable().unwrap();
        let t = handle(home.path(), &[]);
        for note in notes {
            t.record(&CommandRun {
                outcome: Outcome::Success,
                duration: Duration::from_millis(250),
                flag: true,
                note: note.map(str::to_owned),
            });
        }
        let path = t.flush().unwrap().expect("a payload");
        let checked =
            telemetry_schema::validate_payload(&fs::read(path).unwrap()).expect("valid v1 payload");
        assert_eq!(checked.version.as_str(), "1.1.0");
        checked.envelope
    }
    fn outcome(e: &telemetry_schema::Envelope) -> (RedactionStatus, u32, u32) {
        let r = &e.privacy.redaction;
        (r.status, r.redacted_values, r.rejected_values)
    }
    fn notes(e: &telemetry_schema::Envelope) -> Vec<Option<String>> {
        e.events
            .iter()
            .filter(|ev| ev.name.as_str() == "command_run")
            .map(|ev| {
                ev.fields[&telemetry_schema::Identifier::new("note").unwrap()]
                    .as_ref()
                    .map(telemetry_schema::FieldValue::display)
            })
            .collect()
    }
    let clean = "ok";
    let with_path = "cannot open /q7z/data.bin now";
    let rejected = "bell\u{7}in a message";

    // No text value recorded: not_applicable, no counts.
    let e = payload(&[None]);
    assert_eq!(outcome(&e), (RedactionStatus::NotApplicable, 0, 0));
    assert!(!e.to_json().contains("_values"), "{}", e.to_json());

    // Text the redactor found nothing in.
    let e = payload(&[Some(clean)]);
    assert_eq!(outcome(&e), (RedactionStatus::Clean, 0, 0));
    assert_eq!(notes(&e), [Some(clean.to_owned())]);

    // A path: one text value redacted.
    let e = payload(&[Some(with_path)]);
    assert_eq!(outcome(&e), (RedactionStatus::Redacted, 1, 0));
    assert_eq!(notes(&e), [Some("cannot open <path> now".to_owned())]);
    assert!(e.to_json().contains("\"redacted_values\":1"));

    // A control character: the text is rejected and sent as null.
    let e = payload(&[Some(rejected)]);
    assert_eq!(outcome(&e), (RedactionStatus::Rejected, 0, 1));
    assert_eq!(notes(&e), [None]);

    // Mixed: the most severe outcome wins; each value is counted once. Identical reports are
    // sent once: the repeated path, and the rejected note, which is sent as `null` like the
    // missing one.
    let e = payload(&[
        Some(clean),
        Some(with_path),
        None,
        Some(with_path),
        Some(rejected),
    ]);
    assert_eq!(outcome(&e), (RedactionStatus::Rejected, 1, 1));
    assert_eq!(
        notes(&e),
        [
            Some(clean.to_owned()),
            Some("cannot open <path> now".to_owned()),
            None
        ]
    );
}

#[test]
fn an_inspector_of_an_enabled_install_decides_alike_and_records_nothing() {
    let home = tempfile::tempdir().unwrap();
    handle(home.path(), &[]).enable().unwrap();
    let before = files_under(home.path());
    let inspector = Telemetry::builder("acme")
        .env(env(home.path(), &[]))
        .event::<CommandRun>()
        .notice(telemetry_core::NoticeMode::Always)
        .build_inspector();
    assert!(inspector.is_enabled());
    inspector.record(&CommandRun {
        outcome: Outcome::Success,
        duration: Duration::from_millis(250),
        flag: true,
        note: None,
    });
    assert_eq!(inspector.flush().expect("flush"), None);
    assert_eq!(files_under(home.path()), before, "the inspector wrote");
}
