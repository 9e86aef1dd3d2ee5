//! Issue #4 from the host's side: the `acme` example (`examples/acme.rs`) run as a real
//! process.
//!
//! * Telemetry on or off is invisible to the user: the same stdout, stderr and exit code;
//!   on writes exactly one valid payload per run, off writes nothing at all.
//! * A pending directory that cannot be created, a full disk (simulated with `ulimit -f`),
//!   or a read-only app directory never changes the exit code: a warning, no panic, no
//!   partial payload.
//!
//! Every process gets a cleared environment: `HOME` (a temporary directory) and, for the
//! shell wrapper, `PATH`; never `CI` (a hard off-switch) nor the real home.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;
use common::acme;

const TELEMETRY: &str = env!("CARGO_BIN_EXE_telemetry");

/// The three `work` invocations, with the exit code each must have.
const WORK: &[(&[&str], i32)] = &[
    (&["work"], 0),
    (&["work", "--flag", "--note", "deploy to staging"], 0),
    (&["work", "--fail"], 1),
];

/// What the user sees of a run.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl From<Output> for Seen {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// A command with exactly `HOME` (plus `extra`) as its environment.
fn sandboxed(program: &Path, home: &Path, extra: &[(&str, &str)]) -> Command {
    let mut command = Command::new(program);
    command.env_clear().env("HOME", home).stdin(Stdio::null());
    for (key, value) in extra {
        command.env(key, value);
    }
    command
}

fn run(home: &Path, extra: &[(&str, &str)], args: &[&str]) -> Seen {
    sandboxed(&acme(), home, extra)
        .args(args)
        .output()
        .expect("run acme")
        .into()
}

fn pending_dir(home: &Path) -> PathBuf {
    home.join(".config/acme/uploads-pending")
}

/// A HOME where `acme telemetry enable --yes` ran.
fn enabled_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let seen = run(home.path(), &[], &["telemetry", "enable", "--yes"]);
    assert_eq!(seen.code, Some(0), "enable: {seen:?}");
    assert!(
        home.path()
            .join(".config/acme/secrets/consent.token")
            .is_file(),
        "enable wrote no consent token: {seen:?}"
    );
    home
}

/// `*.json` in the pending directory.
fn payloads(home: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(pending_dir(home))
        .map(|rd| {
            rd.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Every path under `dir` with its content (`None` for a directory) and mode.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Option<Vec<u8>>, u32)> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode();
        if meta.is_dir() {
            out.insert(path.clone(), (None, mode));
            out.extend(snapshot(&path));
        } else {
            out.insert(path.clone(), (Some(fs::read(&path).unwrap()), mode));
        }
    }
    out
}

fn assert_empty(home: &Path, what: &str) {
    let left: Vec<PathBuf> = snapshot(home).into_keys().collect();
    assert!(left.is_empty(), "{what} wrote {left:?}");
}

/// The output of a run on a fresh (disabled) HOME: what the user must see in every case.
fn reference(args: &[&str], code: i32) -> Seen {
    let home = tempfile::tempdir().unwrap();
    let seen = run(home.path(), &[], args);
    assert_eq!(
        seen.code,
        Some(code),
        "acme {args:?} on a fresh HOME: {seen:?}"
    );
    assert!(seen.stdout.contains("acme: working"), "{seen:?}");
    assert_empty(home.path(), &format!("acme {args:?} on a fresh HOME"));
    seen
}

#[test]
fn telemetry_on_or_off_is_invisible_to_the_user_and_off_writes_nothing() {
    for (args, code) in WORK {
        let expected = reference(args, *code);
        let with_flag: Vec<&str> = std::iter::once("--no-telemetry")
            .chain(args.iter().copied())
            .collect();

        // Enabled: the same output, exactly one new valid payload.
        let home = enabled_home();
        let before = payloads(home.path());
        assert!(before.is_empty(), "{before:?}");
        let seen = run(home.path(), &[], args);
        assert_eq!(seen, expected, "acme {args:?} enabled vs disabled");
        let after = payloads(home.path());
        assert_eq!(after.len(), 1, "acme {args:?} enabled: {after:?}");
        let payload = &after[0];
        assert_eq!(
            fs::metadata(payload).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let checked = telemetry_schema::validate_payload(&fs::read(payload).unwrap())
            .unwrap_or_else(|e| panic!("acme {args:?}: {} is invalid: {e}", payload.display()));
        let names: Vec<&str> = checked
            .envelope
            .events
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(
            names,
            ["component_initialized", "feature_used", "command_run"],
            "acme {args:?}"
        );
        // A second run, a second payload: one per run.
        let seen = run(home.path(), &[], args);
        assert_eq!(seen, expected, "acme {args:?} enabled, second run");
        assert_eq!(payloads(home.path()).len(), 2, "acme {args:?}: one per run");

        // Disabled per invocation or by DO_NOT_TRACK, on an enabled HOME: same output and
        // not one byte changed.
        for (extra, argv) in [
            (&[][..], &with_flag[..]),
            (&[("DO_NOT_TRACK", "1")][..], *args),
        ] {
            let state = snapshot(home.path());
            let seen = run(home.path(), extra, argv);
            assert_eq!(
                seen, expected,
                "acme {argv:?} with {extra:?} (enabled HOME)"
            );
            assert!(
                snapshot(home.path()) == state,
                "acme {argv:?} with {extra:?} changed the enabled HOME"
            );
        }

        // Disabled on a fresh HOME: same output and the HOME stays empty.
        for (extra, argv) in [
            (&[][..], &with_flag[..]),
            (&[("DO_NOT_TRACK", "1")][..], *args),
        ] {
            let fresh = tempfile::tempdir().unwrap();
            let seen = run(fresh.path(), extra, argv);
            assert_eq!(seen, expected, "acme {argv:?} with {extra:?} (fresh HOME)");
            assert_empty(fresh.path(), &format!("acme {argv:?} with {extra:?}"));
        }
    }
}

/// Checks a run whose payload cannot be written: the exit code and stdout of a normal
/// run, its stderr followed only by telemetry warnings saying the payload was not written,
/// no panic.
fn assert_only_a_warning(seen: &Seen, expected: &Seen, what: &str) -> String {
    assert_eq!(
        seen.code, expected.code,
        "{what}: exit code changed: {seen:?}"
    );
    assert_eq!(seen.stdout, expected.stdout, "{what}: stdout changed");
    assert!(!seen.stderr.contains("panicked"), "{what}: {}", seen.stderr);
    let extra = seen
        .stderr
        .strip_prefix(&expected.stderr)
        .unwrap_or_else(|| panic!("{what}: stderr changed: {seen:?}"));
    assert!(
        extra.contains("payload not written"),
        "{what}: no warning that the payload was not written: {seen:?}"
    );
    for line in extra.lines() {
        assert!(
            line.starts_with("acme: telemetry: warning: "),
            "{what}: unexpected stderr line {line:?}"
        );
    }
    extra.to_owned()
}

#[test]
fn a_pending_directory_that_cannot_be_created_is_a_warning_not_an_exit_code() {
    for (args, code) in WORK {
        let expected = reference(args, *code);
        let home = enabled_home();
        // A regular file where the directory must be created: refused even for root.
        let blocker = pending_dir(home.path());
        fs::write(&blocker, b"not a directory").unwrap();
        let seen = run(home.path(), &[], args);
        let warning = assert_only_a_warning(&seen, &expected, &format!("acme {args:?}"));
        assert!(
            warning.contains(&blocker.display().to_string()),
            "the warning names no path: {warning}"
        );
        assert_eq!(fs::read(&blocker).unwrap(), b"not a directory");
        let json: Vec<PathBuf> = snapshot(home.path())
            .into_keys()
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter(|p| !p.ends_with("ledger.json"))
            .collect();
        assert!(json.is_empty(), "acme {args:?} wrote {json:?}");
    }
}

#[test]
fn a_full_disk_is_a_warning_not_an_exit_code_and_leaves_no_partial_payload() {
    // `ulimit -f 1`: files may not grow beyond one block (512 bytes for POSIX shells), so the
    // payload (a few KB) fails with EFBIG while the process goes on (SIGXFSZ ignored).
    const WRAPPER: &str = r#"ulimit -f 1 || exit 97; trap "" XFSZ; exec "$0" "$@""#;
    let acme = acme();
    for (args, code) in WORK {
        let expected = reference(args, *code);
        let home = enabled_home();
        let seen: Seen = sandboxed(
            Path::new("/bin/sh"),
            home.path(),
            &[("PATH", "/usr/bin:/bin")],
        )
        .arg("-c")
        .arg(WRAPPER)
        .arg(&acme)
        .args(*args)
        .output()
        .expect("run sh")
        .into();
        let warning = assert_only_a_warning(&seen, &expected, &format!("acme {args:?} (full)"));
        assert!(
            warning.contains("File too large") || warning.contains("os error 27"),
            "not the EFBIG failure the wrapper causes: {warning}"
        );
        let dir = pending_dir(home.path());
        let left: Vec<String> = fs::read_dir(&dir)
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            left.iter().all(|n| n == ".lock"),
            "acme {args:?} left {left:?} in {}",
            dir.display()
        );

        // The same HOME without the limit: a normal run, a valid payload.
        let seen = run(home.path(), &[], args);
        assert_eq!(seen, expected, "acme {args:?} after the disk was freed");
        let after = payloads(home.path());
        assert_eq!(after.len(), 1, "{after:?}");
        telemetry_schema::validate_payload(&fs::read(&after[0]).unwrap()).expect("valid");
    }
}

/// Block-buffered stdout (not a terminal) is written at the end: a failing write there is
/// still an error with exit status 1, and a closed pipe still is not.
#[test]
fn a_full_stdout_is_an_error_and_a_closed_pipe_is_not() {
    let home = tempfile::tempdir().unwrap();
    let full = fs::OpenOptions::new().write(true).open("/dev/full");
    let Ok(full) = full else {
        panic!("/dev/full is needed for this test: {full:?}");
    };
    let seen: Seen = sandboxed(Path::new(TELEMETRY), home.path(), &[])
        .args(["--app", "acme", "status"])
        .stdout(full)
        .output()
        .expect("run telemetry")
        .into();
    assert_eq!(seen.code, Some(1), "{seen:?}");
    assert!(
        seen.stderr.contains("No space left on device"),
        "{}",
        seen.stderr
    );

    let mut child = sandboxed(Path::new(TELEMETRY), home.path(), &[])
        .args(["--app", "acme", "schema"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run telemetry");
    drop(child.stdout.take());
    let seen: Seen = child.wait_with_output().expect("wait").into();
    assert_eq!(seen.code, Some(0), "{seen:?}");
    assert_eq!(seen.stderr, "");
    assert_empty(home.path(), "status and schema");
}

/// Whether permission bits bind this process (they do not for root).
fn permissions_bind() -> bool {
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
    let bound = fs::write(locked.join("probe"), b"").is_err();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    bound
}

#[test]
fn a_read_only_app_directory_is_a_warning_not_an_exit_code() {
    if !permissions_bind() {
        eprintln!(
            "skipped: running as root (a 0o555 directory is writable), so a read-only app \
             directory cannot be simulated with chmod; the regular-file and full-disk tests \
             cover the failure path"
        );
        return;
    }
    for (args, code) in WORK {
        let expected = reference(args, *code);
        let home = enabled_home();
        let app_dir = home.path().join(".config/acme");
        fs::set_permissions(&app_dir, fs::Permissions::from_mode(0o555)).unwrap();
        let seen = run(home.path(), &[], args);
        fs::set_permissions(&app_dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert_only_a_warning(&seen, &expected, &format!("acme {args:?} (read-only)"));
        assert!(payloads(home.path()).is_empty());
    }
}

/// Issue #5's walk-through, as a user would do it through `acme telemetry ...`: enable,
/// work, `show` lists the runs, `verify-payload` validates each and says whether it may be
/// sent, `DO_NOT_TRACK=1` makes it unsendable, `disable` removes everything and `status`
/// reads like a fresh install again.
#[test]
fn end_to_end_enable_work_show_verify_disable() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let fresh_status = run(h, &[], &["telemetry", "status"]);
    assert_eq!(fresh_status.code, Some(0));
    // The posture sentence names the document acme set (`Builder::posture`), nothing of
    // this repository's.
    let first_line = fresh_status.stdout.lines().next().unwrap_or_default();
    assert_eq!(
        first_line,
        format!(
            "{} Verified: see https://acme.example/telemetry.",
            telemetry_cli::NO_TELEMETRY_LINE
        )
    );
    assert!(!fresh_status.stdout.contains("POSTURE.md"));
    assert_empty(h, "status");

    assert_eq!(run(h, &[], &["telemetry", "enable", "--yes"]).code, Some(0));
    for (args, code) in WORK {
        assert_eq!(run(h, &[], args).code, Some(*code), "acme {args:?}");
    }

    let show = run(h, &[], &["telemetry", "show", "--json"]);
    assert_eq!(show.code, Some(0), "{show:?}");
    let listed: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    let listed = listed["payloads"].as_array().unwrap().clone();
    assert_eq!(listed.len(), WORK.len(), "{listed:?}");
    let human = run(h, &[], &["telemetry", "show"]);
    for row in &listed {
        let id = row["run_id"].as_str().unwrap();
        assert_eq!(row["kind"], "pending");
        assert_eq!(row["readable"], true, "{row}");
        assert!(human.stdout.contains(id), "show does not list {id}");

        let verify = |extra: &[(&str, &str)]| {
            let seen = run(h, extra, &["telemetry", "verify-payload", id, "--json"]);
            assert_eq!(seen.code, Some(0), "{seen:?}");
            serde_json::from_str::<serde_json::Value>(&seen.stdout).unwrap()
        };
        let v = verify(&[]);
        assert_eq!(v["valid"], true);
        let bytes = fs::read(pending_dir(h).join(format!("{id}.json"))).unwrap();
        assert_eq!(v["sha256"], telemetry_core::inspect::sha256_hex(&bytes));
        // Sendable only when the policy allows: consent given, no override, and a build
        // that can upload at all.
        assert_eq!(v["sendable"], cfg!(feature = "upload"), "{v}");
        let v = verify(&[("DO_NOT_TRACK", "1")]);
        assert_eq!(v["sendable"], false);
        assert_eq!(
            v["sendable_reason"],
            "DO_NOT_TRACK=1 is set: this payload cannot be sent"
        );
        let text = run(
            h,
            &[("DO_NOT_TRACK", "1")],
            &["telemetry", "verify-payload", id],
        );
        assert!(
            text.stdout
                .contains("DO_NOT_TRACK=1 is set: this payload cannot be sent"),
            "{text:?}"
        );
    }

    let disable = run(h, &[], &["telemetry", "disable"]);
    assert_eq!(disable.code, Some(0), "{disable:?}");
    let status = run(h, &[], &["telemetry", "status"]);
    assert_eq!(
        status, fresh_status,
        "status after disable differs from a fresh install"
    );
    let left: Vec<PathBuf> = snapshot(h).into_keys().collect();
    assert_eq!(left, vec![h.join(".config")], "disable left files behind");
}
