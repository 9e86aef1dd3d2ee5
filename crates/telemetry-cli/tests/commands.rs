//! The CLI commands in-process, against temporary directories; human output is
//! snapshot-tested with insta (paths replaced by `[HOME]`).

use std::fs;

use telemetry_cli::{Io, exit};
use telemetry_core::Telemetry;

mod common;
use common::{env_for, parse, redact_dates, run_in};

#[test]
fn status_on_a_fresh_install() {
    let home = tempfile::tempdir().unwrap();
    let r = run_in(home.path(), &[], &["status"], "");
    assert_eq!(r.code, exit::OK);
    assert!(r.out.starts_with(telemetry_cli::NO_TELEMETRY_LINE));
    insta::assert_snapshot!(r.out);
    assert_eq!(r.err, "");
    assert_eq!(
        fs::read_dir(home.path()).unwrap().count(),
        0,
        "status wrote files"
    );
}

#[test]
fn status_json_has_the_documented_fields() {
    let home = tempfile::tempdir().unwrap();
    let r = run_in(
        home.path(),
        &[("DO_NOT_TRACK", "1")],
        &["status", "--json"],
        "",
    );
    assert_eq!(r.code, exit::OK);
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["enabled"], false);
    assert_eq!(v["do_not_track_active"], true);
    assert_eq!(v["env_override_active"], false);
    assert_eq!(v["consent_token"], "absent");
    assert_eq!(v["pending_payloads"], 0);
    assert!(
        v["decided_by"]
            .as_str()
            .unwrap()
            .starts_with("DO_NOT_TRACK=1")
    );
    let r = run_in(
        home.path(),
        &[("ACME_TELEMETRY", "off")],
        &["status", "--json"],
        "",
    );
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["env_override_active"], true);
    assert_eq!(v["env_override_var"], "ACME_TELEMETRY");
}

#[test]
fn enable_then_dnt_then_a_0644_token() {
    let home = tempfile::tempdir().unwrap();
    let r = run_in(home.path(), &[], &["enable", "--yes"], "");
    assert_eq!(r.code, exit::OK, "{}", r.err);
    insta::assert_snapshot!("enable_yes", r.out);

    let r = run_in(home.path(), &[], &["status"], "");
    assert!(r.out.contains("acme telemetry: enabled"));

    let r = run_in(home.path(), &[("DO_NOT_TRACK", "1")], &["status"], "");
    insta::assert_snapshot!("status_dnt_after_enable", redact_dates(&r.out));

    let r = run_in(
        home.path(),
        &[("DO_NOT_TRACK", "1")],
        &["enable", "--yes"],
        "",
    );
    assert_eq!(r.code, exit::REFUSED);
    assert!(r.err.contains("DO_NOT_TRACK=1"), "{}", r.err);

    use std::os::unix::fs::PermissionsExt;
    let token = home.path().join(".config/acme/secrets/consent.token");
    fs::set_permissions(&token, fs::Permissions::from_mode(0o644)).unwrap();
    let r = run_in(home.path(), &[], &["status"], "");
    assert_eq!(r.code, exit::OK);
    insta::assert_snapshot!("status_token_0644", r.out);
    assert!(
        r.err.contains("warning:") && r.err.contains("0644"),
        "{}",
        r.err
    );
}

#[test]
fn enable_asks_and_a_missing_yes_changes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let r = run_in(home.path(), &[], &["enable"], "");
    assert_eq!(r.code, exit::ERROR);
    assert!(r.out.contains("Never collected"), "{}", r.out);
    assert!(r.err.contains("Not enabled"));
    assert_eq!(fs::read_dir(home.path()).unwrap().count(), 0);
    let r = run_in(home.path(), &[], &["enable"], "n\n");
    assert_eq!(r.code, exit::ERROR);
    let r = run_in(home.path(), &[], &["enable"], "yes\n");
    assert_eq!(r.code, exit::OK);
    assert!(
        home.path()
            .join(".config/acme/secrets/consent.token")
            .exists()
    );
}

#[test]
fn disable_says_what_it_removed() {
    let home = tempfile::tempdir().unwrap();
    run_in(home.path(), &[], &["enable", "--yes"], "");
    let pending = home.path().join(".config/acme/uploads-pending");
    fs::create_dir_all(&pending).unwrap();
    fs::write(pending.join("0190-run.json"), "{}").unwrap();
    let r = run_in(home.path(), &[], &["disable"], "");
    assert_eq!(r.code, exit::OK);
    insta::assert_snapshot!("disable", r.out);
    let r = run_in(home.path(), &[], &["disable"], "");
    assert!(r.out.contains("Nothing to remove."));
    let r = run_in(home.path(), &[], &["status", "--json"], "");
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["consent_token"], "absent");
    assert_eq!(v["pending_payloads"], 0);
}

#[test]
fn config_get_set_list() {
    let home = tempfile::tempdir().unwrap();
    let r = run_in(
        home.path(),
        &[],
        &["config", "get", "telemetry.enabled"],
        "",
    );
    assert_eq!(r.code, exit::ERROR);
    assert!(r.err.contains("not set"));
    let r = run_in(
        home.path(),
        &[],
        &["config", "set", "telemetry.enabled", "false"],
        "",
    );
    assert_eq!(r.code, exit::OK, "{}", r.err);
    let r = run_in(
        home.path(),
        &[],
        &["config", "get", "telemetry.enabled"],
        "",
    );
    assert_eq!((r.code, r.out.as_str()), (exit::OK, "false\n"));
    let r = run_in(home.path(), &[], &["config", "list"], "");
    insta::assert_snapshot!("config_list", r.out);
    let r = run_in(home.path(), &[], &["config", "list", "--json"], "");
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v[0]["key"], "telemetry.enabled");
    assert_eq!(v[0]["value"], "false");
}

#[test]
fn config_set_rejects_bad_keys_and_values_and_keeps_the_file() {
    let home = tempfile::tempdir().unwrap();
    run_in(
        home.path(),
        &[],
        &["config", "set", "telemetry.enabled", "true"],
        "",
    );
    let file = home.path().join(".config/acme/config.toml");
    let before = fs::read(&file).unwrap();
    for (key, value) in [
        ("telemetry.enabled", "sure"),
        ("telemetry.nope", "true"),
        ("telemetry.endpoint", "http://example.com/"),
        ("telemetry.max_pending_files", "-1"),
    ] {
        let r = run_in(home.path(), &[], &["config", "set", key, value], "");
        assert_eq!(r.code, exit::USAGE, "{key}={value}");
        assert!(r.err.contains("error:"));
    }
    assert_eq!(fs::read(&file).unwrap(), before);
    let r = run_in(home.path(), &[], &["config", "get", "telemetry.nope"], "");
    assert_eq!(r.code, exit::USAGE);
}

#[test]
fn read_commands_report_a_broken_config_without_panicking() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".config/acme");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("config.toml"), b"[telemetry]\nenabled = \xff").unwrap();
    let r = run_in(
        home.path(),
        &[],
        &["config", "get", "telemetry.enabled"],
        "",
    );
    assert_eq!(r.code, exit::ERROR);
    assert!(r.err.contains("config.toml"), "{}", r.err);
    let r = run_in(home.path(), &[], &["status"], "");
    assert_eq!(r.code, exit::OK);
    assert!(r.err.contains("UTF-8"), "{}", r.err);
    assert!(r.out.contains("acme telemetry: disabled"));
}

/// Output that is accepted into a buffer and fails only when flushed, as block-buffered
/// stdout does: the error must still decide the exit status.
struct FailsOnFlush(std::io::ErrorKind, Vec<u8>);

impl std::io::Write for FailsOnFlush {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Err(self.0.into())
    }
}

#[test]
fn an_output_error_at_the_final_flush_is_reported_and_a_closed_pipe_is_not() {
    let home = tempfile::tempdir().unwrap();
    let builder = Telemetry::builder("acme").env(env_for(home.path(), &[]));
    for (kind, expected) in [
        (std::io::ErrorKind::StorageFull, exit::ERROR),
        (std::io::ErrorKind::BrokenPipe, exit::OK),
    ] {
        for argv in [&["status"][..], &["show"], &["schema"]] {
            let mut out = FailsOnFlush(kind, Vec::new());
            let mut err = Vec::new();
            let code = telemetry_cli::run(
                &builder,
                &parse(argv),
                &mut Io {
                    out: &mut out,
                    err: &mut err,
                    input: &mut &b""[..],
                    color: false,
                },
            );
            let err = String::from_utf8_lossy(&err);
            assert_eq!(code, expected, "{argv:?} {kind:?}: {err}");
            assert!(!out.1.is_empty(), "{argv:?} wrote nothing");
            if expected == exit::ERROR {
                assert!(err.starts_with("error: "), "{argv:?}: {err}");
            } else {
                assert_eq!(err, "", "{argv:?}");
            }
        }
    }
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    struct Closed;
    impl std::io::Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let home = tempfile::tempdir().unwrap();
    let builder = Telemetry::builder("acme").env(env_for(home.path(), &[]));
    for argv in [
        &["status"][..],
        &["show"],
        &["show", "--json"],
        &["catalog"],
        &["schema"],
        &["config", "list"],
    ] {
        let mut err = Vec::new();
        let code = telemetry_cli::run(
            &builder,
            &parse(argv),
            &mut Io {
                out: &mut Closed,
                err: &mut err,
                input: &mut &b""[..],
                color: false,
            },
        );
        assert_eq!(code, exit::OK, "{argv:?}");
        assert!(
            err.is_empty(),
            "{argv:?}: {}",
            String::from_utf8_lossy(&err)
        );
    }
}

#[test]
fn schema_prints_the_committed_envelope_schema_and_refuses_unknown_versions() {
    let home = tempfile::tempdir().unwrap();
    let r = run_in(home.path(), &[], &["schema"], "");
    assert_eq!(r.code, exit::OK);
    assert_eq!(
        r.out.trim_end(),
        telemetry_schema::envelope_schema_json(None)
            .unwrap()
            .trim_end()
    );
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert!(v["$defs"].is_object(), "definitions inline");
    let r = run_in(home.path(), &[], &["schema", "--version", "1.0.0"], "");
    assert_eq!(r.code, exit::OK);
    let r = run_in(home.path(), &[], &["schema", "--version", "9.0.0"], "");
    assert_eq!(r.code, exit::USAGE);
    assert!(
        r.err.contains("unsupported schema version 9.0.0"),
        "{}",
        r.err
    );
    assert_eq!(fs::read_dir(home.path()).unwrap().count(), 0);
}
