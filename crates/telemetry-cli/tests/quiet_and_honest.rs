//! Issue #16, classes 5 and 7, met as a user would meet them, with the real `acme` host:
//!
//! * A hard-disabled toolkit says nothing in the host's output: `DO_NOT_TRACK=1` (or CI) and
//!   no HOME (cron, systemd) print no warning on every run; only an override value it cannot
//!   read is still worth a word.
//! * `disable` tells the truth: when the consent token cannot be removed it says telemetry is
//!   still on (and `status` agrees), exits non-zero, and says how to switch it off now.
//! * `purge` and `disable` leave symlinks and named pipes they did not create, and name them.
//!
//! Files a test must not be able to remove are made so for real: as root (CI), the host runs
//! as another user (uid 65534) in a HOME that user owns, where a directory it may not write
//! holds the token; as another user, the mode alone does it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};

mod common;
use common::acme;

/// The unprivileged user the host runs as when the tests run as root.
const OTHER_UID: u32 = 65534;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A HOME owned by the user `acme` runs as.
fn home() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    if is_root() {
        std::os::unix::fs::chown(dir.path(), Some(OTHER_UID), Some(OTHER_UID)).unwrap();
    }
    dir
}

/// Runs acme with exactly `env` as its environment (as uid 65534 when the tests are root).
fn acme_run(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(acme());
    command.env_clear().stdin(Stdio::null()).args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    if is_root() {
        command.uid(OTHER_UID).gid(OTHER_UID);
    }
    command.output().expect("run acme")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_hard_override_without_home_keeps_the_host_quiet() {
    for env in [
        &[("DO_NOT_TRACK", "1")][..],
        &[("CI", "true")],
        &[("ACME_TELEMETRY", "off")],
    ] {
        let out = acme_run(env, &["work"]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(text(&out.stdout), "acme: working\n");
        assert_eq!(text(&out.stderr), "", "{env:?}");
    }
    // Without an override, the missing HOME is worth a warning (telemetry cannot work)...
    let out = acme_run(&[], &["work"]);
    assert!(text(&out.stderr).contains("HOME"), "{}", text(&out.stderr));
    // ...and an override value the toolkit cannot read is said even then (it counts as off).
    let out = acme_run(
        &[("DO_NOT_TRACK", "1"), ("ACME_TELEMETRY", "bogus")],
        &["work"],
    );
    let err = text(&out.stderr);
    assert!(err.contains("ACME_TELEMETRY"), "{err}");
    assert!(!err.contains("HOME"), "{err}");
    // `status` still shows every warning: asked, it says everything.
    let out = acme_run(&[("DO_NOT_TRACK", "1")], &["telemetry", "status"]);
    assert!(
        text(&out.stdout).contains("DO_NOT_TRACK"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn disable_says_telemetry_is_still_on_when_the_token_stays() {
    let home = home();
    let h = home.path().to_str().unwrap();
    let env = [("HOME", h)];
    let out = acme_run(&env, &["telemetry", "enable", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let secrets = home.path().join(".config/acme/secrets");
    // The user cannot write the secrets directory: the token cannot be removed.
    fs::set_permissions(&secrets, fs::Permissions::from_mode(0o500)).unwrap();

    let out = acme_run(&env, &["telemetry", "disable"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    fs::set_permissions(&secrets, fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(!stdout.contains("Telemetry disabled"), "{stdout}");
    assert!(stdout.contains("could NOT be disabled"), "{stdout}");
    assert!(stderr.contains("could not remove"), "{stderr}");
    assert!(stderr.contains("consent.token"), "{stderr}");
    assert!(stderr.contains("still ON"), "{stderr}");
    assert!(stderr.contains("ACME_TELEMETRY=disabled"), "{stderr}");
    assert!(secrets.join("consent.token").exists());
    // What it says agrees with status.
    let status = acme_run(&env, &["telemetry", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["enabled"], true, "{v}");

    // Once it can, disable does it and says so.
    let out = acme_run(&env, &["telemetry", "disable"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("Telemetry disabled for acme."));
}

#[test]
fn purge_and_disable_leave_and_name_what_they_did_not_create() {
    let home = home();
    let h = home.path().to_str().unwrap();
    let env = [("HOME", h)];
    assert_eq!(
        acme_run(&env, &["telemetry", "enable", "--yes"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(acme_run(&env, &["work"]).status.code(), Some(0));
    let root = home.path().join(".config/acme");
    let pending = root.join("uploads-pending");
    let target = home.path().join("precious.txt");
    fs::write(&target, b"keep me").unwrap();
    std::os::unix::fs::symlink(&target, pending.join("link.json")).unwrap();
    // Planted where the toolkit keeps its lock (replacing the real one).
    fs::remove_file(root.join("ledger.lock")).unwrap();
    std::os::unix::fs::symlink(&target, root.join("ledger.lock")).unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        pending.join("pipe"),
        rustix::fs::Mode::from(0o600),
    )
    .unwrap();
    if is_root() {
        for p in [&target, &pending.join("pipe")] {
            std::os::unix::fs::chown(p, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
        }
    }

    for command in ["disable", "purge"] {
        let args: &[&str] = if command == "purge" {
            &["telemetry", "purge", "--yes"]
        } else {
            &["telemetry", "disable"]
        };
        let out = acme_run(&env, args);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{command}: {stdout}{}",
            text(&out.stderr)
        );
        for (name, what) in [
            (pending.join("link.json"), "symbolic link"),
            (root.join("ledger.lock"), "symbolic link"),
            (pending.join("pipe"), "named pipe"),
        ] {
            let line = format!("Kept {}: a {what}", name.display());
            assert!(
                stdout.contains(&line),
                "{command} does not say {line:?}:\n{stdout}"
            );
            assert!(
                name.symlink_metadata().is_ok(),
                "{command} removed {}",
                name.display()
            );
        }
    }
    assert_eq!(fs::read(&target).unwrap(), b"keep me", "never followed");
    assert!(!root.join("secrets/consent.token").exists());
}
