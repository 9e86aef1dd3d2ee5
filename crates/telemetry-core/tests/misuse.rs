//! Issue #17: an app author's mistakes are caught and said, and `is_enabled` tells the truth.
#![cfg(unix)]

use std::fs;
use std::path::Path;

use telemetry_core::event::{Event, FieldDecl, Value};
use telemetry_core::{Effect, Env, Telemetry};

/// A valid hand-written event.
struct Ran {
    ok: bool,
}

impl Event for Ran {
    const NAME: &'static str = "ran";
    const DESCRIPTION: &'static str = "It ran.";
    const FIELDS: &'static [FieldDecl] = &[FieldDecl::boolean("ok", "Whether it worked.", 1.0)];
    fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
        out(Value::Bool(self.ok));
    }
}

/// Declared with a NaN ε: cannot be randomised.
struct BadEpsilon;

impl Event for BadEpsilon {
    const NAME: &'static str = "bad_epsilon";
    const DESCRIPTION: &'static str = "Invalid.";
    const FIELDS: &'static [FieldDecl] = &[FieldDecl::boolean("flag", "A flag.", f64::NAN)];
    fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
        out(Value::Bool(true));
    }
}

/// Declared with a name the catalogue refuses.
struct BadName;

impl Event for BadName {
    const NAME: &'static str = "Bad Name!";
    const DESCRIPTION: &'static str = "Invalid.";
    const FIELDS: &'static [FieldDecl] = &[];
    fn values(&self, _out: &mut dyn FnMut(Value<'_>)) {}
}

/// Another type under `ran`'s name, with other fields.
struct RanAgain;

impl Event for RanAgain {
    const NAME: &'static str = "ran";
    const DESCRIPTION: &'static str = "It ran, differently.";
    const FIELDS: &'static [FieldDecl] = &[];
    fn values(&self, _out: &mut dyn FnMut(Value<'_>)) {}
}

/// Never registered.
struct Unregistered;

impl Event for Unregistered {
    const NAME: &'static str = "unregistered";
    const DESCRIPTION: &'static str = "Not declared to the builder.";
    const FIELDS: &'static [FieldDecl] = &[];
    fn values(&self, _out: &mut dyn FnMut(Value<'_>)) {}
}

fn builder(home: &Path) -> telemetry_core::Builder {
    Telemetry::builder("acme")
        .env(Env::from_pairs([("HOME", home.as_os_str())]))
        .print_warnings(false)
}

fn enabled_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    builder(home.path()).build_inspector().enable().unwrap();
    home
}

fn pending(home: &Path) -> usize {
    fs::read_dir(home.join(".config/acme/uploads-pending")).map_or(0, Iterator::count)
}

#[test]
fn an_invalid_declaration_turns_telemetry_off_and_says_which() {
    for (what, b) in [
        ("ε", builder as fn(&Path) -> telemetry_core::Builder),
        ("name", builder),
        ("duplicate", builder),
    ] {
        let home = enabled_home();
        let b = b(home.path()).event::<Ran>();
        let b = match what {
            "ε" => b.event::<BadEpsilon>(),
            "name" => b.event::<BadName>(),
            _ => b.event::<RanAgain>(),
        };
        let t = b.clone().build();
        assert!(!t.is_enabled(), "{what}: is_enabled() says true");
        let input = t.decision().deciding_input().expect("a deciding input");
        assert_eq!(input.name, "event declarations", "{what}");
        assert_eq!(input.effect, Effect::Disables);
        let warning = t
            .warnings()
            .iter()
            .find(|w| w.message.contains("invalid event declaration"))
            .unwrap_or_else(|| panic!("{what}: no warning in {:?}", t.warnings()));
        let names_it = match what {
            "ε" => warning.message.contains("bad_epsilon") && warning.message.contains("NaN"),
            "name" => warning.message.contains("Bad Name!"),
            _ => warning
                .message
                .contains("two different event types are named `ran`"),
        };
        assert!(names_it, "{what}: {warning}");
        t.record(&Ran { ok: true });
        drop(t);
        assert_eq!(pending(home.path()), 0, "{what}: a payload was written");
        // `status` shows it too.
        let status = b.build_inspector().status();
        assert!(!status.enabled, "{what}");
        assert!(
            status
                .warnings
                .iter()
                .any(|w| w.contains("invalid event declaration")),
            "{what}: {:?}",
            status.warnings
        );
    }
    // Registering the same type twice is harmless.
    let home = enabled_home();
    let t = builder(home.path()).event::<Ran>().event::<Ran>().build();
    assert!(t.is_enabled(), "{:?}", t.warnings());
}

#[test]
fn an_unregistered_event_is_dropped_with_a_warning_and_not_counted() {
    let home = enabled_home();
    let t = builder(home.path()).event::<Ran>().build();
    assert!(t.is_enabled());
    let before = t.buffered_events();
    t.record(&Unregistered);
    t.record(&Unregistered);
    assert_eq!(
        t.buffered_events(),
        before,
        "an unregistered event was counted"
    );
    let warnings = t.recording_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .message
            .contains("event `unregistered` is not registered"),
        "{}",
        warnings[0]
    );
    t.record(&Ran { ok: true });
    assert_eq!(t.buffered_events(), before + 1);
}

#[test]
fn an_ignored_builder_setting_is_a_warning() {
    let home = tempfile::tempdir().unwrap();
    for cap in [0.0, -1.0, f64::NAN, 5000.0] {
        let t = builder(home.path())
            .daily_epsilon_cap(cap)
            .build_inspector();
        assert_eq!(t.budget().daily_cap, 64.0);
        assert!(
            t.warnings()
                .iter()
                .any(|w| w.message.contains("daily_epsilon_cap") && w.message.contains("64")),
            "{cap}: {:?}",
            t.warnings()
        );
    }
    let t = builder(home.path())
        .daily_epsilon_cap(8.0)
        .build_inspector();
    assert!(t.warnings().is_empty(), "{:?}", t.warnings());
    assert_eq!(t.budget().daily_cap, 8.0);
}

/// `runtime_version` is the compiler that built the host (this test binary), never the
/// toolkit's minimum Rust version.
#[test]
fn runtime_version_is_the_compiler_that_built_the_host() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .expect("rustc --version");
    let text = String::from_utf8(out.stdout).unwrap();
    let expected = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('-').next())
        .expect("a version")
        .to_owned();
    let home = enabled_home();
    let t = builder(home.path()).build();
    let path = t
        .flush()
        .unwrap()
        .expect("component_initialized is recorded");
    let payload: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    let event = &payload["events"][0];
    assert_eq!(event["name"], "component_initialized");
    assert_eq!(
        event["fields"]["runtime_version"],
        expected.as_str(),
        "{event}"
    );
}

#[test]
fn status_shows_the_budget_and_the_posture_document() {
    let home = enabled_home();
    let b = builder(home.path())
        .event::<Ran>()
        .posture("https://example.org/acme/telemetry");
    let status = b.clone().build_inspector().status();
    assert_eq!(
        status.posture.as_deref(),
        Some("https://example.org/acme/telemetry")
    );
    assert_eq!(status.budget.spent_today, None);
    let ran = status
        .budget
        .events
        .iter()
        .find(|e| e.event == "ran")
        .unwrap();
    assert_eq!(ran.new_reports_a_day, Some(64));
    let t = b.clone().build();
    t.record(&Ran { ok: true });
    drop(t);
    // component_initialized (1) and ran.ok (1): charged once, read back without writing.
    let status = b.build_inspector().status();
    assert_eq!(status.budget.spent_today, Some(2.0));
    assert!(
        builder(home.path())
            .build_inspector()
            .status()
            .posture
            .is_none()
    );
}
