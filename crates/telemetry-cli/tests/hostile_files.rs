//! Issue #16, "a hostile local environment must never hang the host, leak, or mislead", met
//! as a user or another local user would meet it, with the real `acme` host
//! (`examples/acme.rs`; `cargo build -p telemetry-cli --example acme` before running this file
//! alone):
//!
//! * Special files: a named pipe (a real one, `mkfifo`) where the toolkit expects a regular
//!   file — `config.toml`, `ledger.json`, `ledger.lock`, `uploads-pending/.lock`,
//!   `uploads-pending/.index`, a path given to `verify-payload` or `aggregate` — never hangs
//!   `work`, `status`, `show`, `disable`, `verify-payload` or `aggregate`, with or without
//!   `DO_NOT_TRACK=1`: the host's exit code and stdout stay the same, and the warning names
//!   the file and says what it is.
//! * The app directory: group- or world-writable, or owned by another user, it is refused:
//!   telemetry is off for the run, the warning names the directory and the `chmod go-w` (or
//!   `chown`) that fixes it, `status` says why, and nothing is written into it. A symlinked
//!   lock file is never followed: its target is never created or written.
//! * Leftovers: a temporary file of a killed writer in the app directory, older than the
//!   threshold, goes at the next run that writes the ledger; a fresh one stays.
//!
//! Every process runs under a hard timeout (a hang fails the test instead of hanging it) with a
//! cleared environment: `HOME` (a temporary directory), `PATH`, and what a test adds; never
//! `CI` (a hard off-switch) nor the real home.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use telemetry_cli::NO_TELEMETRY_LINE;

mod common;
use common::acme;

/// How long any one process may take before it counts as hung.
const HANG: Duration = Duration::from_secs(10);
/// A user the tests (root here and in CI) can give files to.
const OTHER_UID: u32 = 65534;
/// Older than the toolkit's threshold for leftover temporary files (10 minutes).
const LONG_AGO: Duration = Duration::from_secs(3600);
/// A payload-shaped name (a UUIDv7 run id).
const RUN_ID: &str = "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b";

/// What the user sees of a run.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `acme args` with exactly `HOME`, `PATH` and `extra` as its environment, killed and
/// failed after [`HANG`].
fn run(home: &Path, extra: &[(&str, &str)], args: &[&str]) -> Seen {
    let mut command = Command::new(acme());
    command
        .env_clear()
        .env("HOME", home)
        .env("PATH", "/usr/bin:/bin")
        .args(args);
    for (key, value) in extra {
        command.env(key, value);
    }
    bounded(command, &format!("acme {args:?} with {extra:?}"))
}

/// Spawns `command` and polls it; kills it and fails the test if it runs longer than [`HANG`].
fn bounded(mut command: Command, what: &str) -> Seen {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if started.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let seen = Seen {
        code: status.and_then(|s| s.code()),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    assert!(
        status.is_some(),
        "{what} HUNG: killed after {HANG:?}; {seen:?}"
    );
    seen
}

fn app_dir(home: &Path) -> PathBuf {
    home.join(".config/acme")
}

fn pending_dir(home: &Path) -> PathBuf {
    app_dir(home).join("uploads-pending")
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

fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

/// Every path under `dir` (not following symlinks) with its content (`None` for a directory,
/// the target for a symlink, nothing for a pipe) and mode.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Option<Vec<u8>>, u32)> {
    let mut out = BTreeMap::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        let mode = meta.mode();
        if meta.is_dir() {
            out.insert(path.clone(), (None, mode));
            out.extend(snapshot(&path));
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).unwrap();
            out.insert(
                path,
                (Some(target.into_os_string().into_encoded_bytes()), mode),
            );
        } else if meta.is_file() {
            out.insert(path.clone(), (Some(fs::read(&path).unwrap()), mode));
        } else {
            out.insert(path, (Some(Vec::new()), mode));
        }
    }
    out
}

/// A HOME where `acme telemetry enable --yes` ran, and `acme work` once: every file the
/// toolkit keeps exists.
fn used_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let seen = run(home.path(), &[], &["telemetry", "enable", "--yes"]);
    assert_eq!(seen.code, Some(0), "enable: {seen:?}");
    let seen = run(home.path(), &[], &["work"]);
    assert_eq!(seen, work_reference(), "the first work run");
    assert_eq!(payloads(home.path()).len(), 1);
    // `show` writes the index of what it decoded.
    let seen = run(home.path(), &[], &["telemetry", "show"]);
    assert_eq!(seen.code, Some(0), "show: {seen:?}");
    for name in ["ledger.json", "ledger.lock"] {
        assert!(app_dir(home.path()).join(name).is_file(), "no {name}");
    }
    for name in [".lock", ".index"] {
        assert!(pending_dir(home.path()).join(name).is_file(), "no {name}");
    }
    home
}

/// What `acme work` shows on a fresh HOME, where telemetry is off.
fn work_reference() -> Seen {
    Seen {
        code: Some(0),
        stdout: "acme: working\n".into(),
        stderr: String::new(),
    }
}

/// `stderr` names `path` and says it is a named pipe.
fn names_the_pipe(seen: &Seen, path: &Path, what: &str) {
    let line = seen
        .stderr
        .lines()
        .find(|l| l.contains(&path.display().to_string()))
        .unwrap_or_else(|| panic!("{what}: no warning names {}: {seen:?}", path.display()));
    assert!(
        line.contains("is a named pipe, not a regular file"),
        "{what}: the warning does not say what {} is: {line:?}",
        path.display()
    );
}

const DNT: &[(&str, &str)] = &[("DO_NOT_TRACK", "1")];

/// Where, in a HOME, a file the toolkit keeps lives.
type Place = fn(&Path) -> PathBuf;

#[test]
fn named_pipes_where_files_are_expected_never_hang_the_host() {
    // (file, read by `work` when enabled, read by every command)
    let places: [(Place, bool, bool); 5] = [
        (|h| app_dir(h).join("config.toml"), true, true),
        (|h| app_dir(h).join("ledger.json"), true, false),
        (|h| app_dir(h).join("ledger.lock"), true, false),
        (|h| pending_dir(h).join(".lock"), true, false),
        // A cache: a pipe there is ignored (and replaced by `show`), never named.
        (|h| pending_dir(h).join(".index"), false, false),
    ];
    for (place, work_reads, every_command_reads) in places {
        for extra in [&[][..], DNT] {
            let home = used_home();
            let h = home.path();
            let fifo = place(h);
            let _ = fs::remove_file(&fifo);
            mkfifo(&fifo);
            let what = |cmd: &str| format!("{cmd} with a pipe at {} and {extra:?}", fifo.display());
            let enabled = extra.is_empty() && !every_command_reads;

            // `show` first: it is what reads `.index`.
            let show = run(h, extra, &["telemetry", "show"]);
            assert_eq!(show.code, Some(0), "{}: {show:?}", what("show"));
            assert!(
                show.stdout.contains("stored payload"),
                "{}: {show:?}",
                what("show")
            );

            let work = run(h, extra, &["work"]);
            assert_eq!(work.code, Some(0), "{}: {work:?}", what("work"));
            assert_eq!(work.stdout, "acme: working\n", "{}", what("work"));
            assert!(!work.stderr.contains("panicked"), "{work:?}");
            if !extra.is_empty() {
                // A hard override keeps the host quiet, pipe or not.
                assert_eq!(work.stderr, "", "{}", what("work"));
            } else if work_reads {
                names_the_pipe(&work, &fifo, &what("work"));
            }
            if work_reads || !enabled {
                // Refused or disabled: no payload was added.
                assert_eq!(payloads(h).len(), 1, "{}", what("work"));
            }
            if fifo.file_name().unwrap() == ".index" {
                assert!(
                    fifo.is_file(),
                    "{}: show did not replace the pipe by an index",
                    what("show")
                );
            } else {
                assert!(is_fifo(&fifo), "{}: the pipe was replaced", what("work"));
            }

            for json in [false, true] {
                let args: &[&str] = if json {
                    &["telemetry", "status", "--json"]
                } else {
                    &["telemetry", "status"]
                };
                let status = run(h, extra, args);
                assert_eq!(status.code, Some(0), "{}: {status:?}", what("status"));
                if every_command_reads {
                    names_the_pipe(&status, &fifo, &what("status"));
                }
                if json {
                    let report: serde_json::Value = serde_json::from_str(&status.stdout)
                        .unwrap_or_else(|e| panic!("{}: {e}: {status:?}", what("status")));
                    assert_eq!(report["enabled"], enabled, "{}: {report}", what("status"));
                } else if !enabled {
                    assert!(status.stdout.starts_with(NO_TELEMETRY_LINE), "{status:?}");
                    assert!(
                        status.stdout.contains("acme telemetry: disabled"),
                        "{status:?}"
                    );
                }
            }

            // A pipe given by path to the commands that read a payload the user names.
            for outside in [
                h.join("incoming.json"),
                pending_dir(h).join(format!("{RUN_ID}.json")),
            ] {
                mkfifo(&outside);
                let seen = run(
                    h,
                    extra,
                    &["telemetry", "verify-payload", outside.to_str().unwrap()],
                );
                assert_eq!(seen.code, Some(1), "{}: {seen:?}", what("verify-payload"));
                assert_eq!(seen.stdout, "", "{}", what("verify-payload"));
                names_the_pipe(&seen, &outside, &what("verify-payload"));

                let seen = run(
                    h,
                    extra,
                    &["telemetry", "aggregate", outside.to_str().unwrap()],
                );
                assert_eq!(seen.code, Some(1), "{}: {seen:?}", what("aggregate FILE"));
                names_the_pipe(&seen, &outside, &what("aggregate FILE"));
                fs::remove_file(&outside).unwrap();
            }
            let collected = h.join("collected");
            fs::create_dir(&collected).unwrap();
            let inside = collected.join(format!("{RUN_ID}.json"));
            mkfifo(&inside);
            let seen = run(
                h,
                extra,
                &["telemetry", "aggregate", collected.to_str().unwrap()],
            );
            assert_eq!(seen.code, Some(1), "{}: {seen:?}", what("aggregate DIR"));
            names_the_pipe(&seen, &inside, &what("aggregate DIR"));

            // `disable` works (the user can always switch telemetry off) and leaves the pipe.
            let disable = run(h, extra, &["telemetry", "disable"]);
            assert_eq!(disable.code, Some(0), "{}: {disable:?}", what("disable"));
            assert!(
                disable.stdout.starts_with("Telemetry disabled for acme."),
                "{}: {disable:?}",
                what("disable")
            );
            if every_command_reads {
                names_the_pipe(&disable, &fifo, &what("disable"));
            } else if is_fifo(&fifo) {
                assert!(
                    disable
                        .stdout
                        .contains(&format!("Kept {}: a named pipe", fifo.display())),
                    "{}: {disable:?}",
                    what("disable")
                );
            }
            assert!(
                !app_dir(h).join("secrets/consent.token").exists(),
                "{}: the consent token is still there",
                what("disable")
            );
        }
    }
}

/// Enables in a fresh HOME, then gives the app directory `mode`.
fn home_with_app_dir_mode(mode: u32) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let seen = run(home.path(), &[], &["telemetry", "enable", "--yes"]);
    assert_eq!(seen.code, Some(0), "enable: {seen:?}");
    fs::set_permissions(app_dir(home.path()), fs::Permissions::from_mode(mode)).unwrap();
    home
}

/// `work`, `status` and `enable` in a HOME whose app directory must be refused: same exit
/// code and stdout as with telemetry off, a warning naming the directory and `fix`, `status`
/// disabled by the app directory, and not one byte written.
fn assert_refused(home: &Path, dir: &Path, fix: &str, what: &str) {
    let before = snapshot(home);
    let payloads_before = payloads(home).len();
    let dir_text = dir.display().to_string();
    let work = run(home, &[], &["work"]);
    assert_eq!(work.code, Some(0), "{what}: {work:?}");
    assert_eq!(work.stdout, "acme: working\n", "{what}");
    let warning = work
        .stderr
        .lines()
        .find(|l| l.contains(&dir_text))
        .unwrap_or_else(|| panic!("{what}: no warning names {dir_text}: {work:?}"));
    assert!(
        warning.starts_with("acme: telemetry: warning: "),
        "{warning}"
    );
    assert!(
        warning.contains(fix),
        "{what}: {warning:?} does not say {fix:?}"
    );
    assert_eq!(
        payloads(home).len(),
        payloads_before,
        "{what}: a payload was written"
    );
    assert!(snapshot(home) == before, "{what}: work changed the HOME");

    let status = run(home, &[], &["telemetry", "status", "--json"]);
    assert_eq!(status.code, Some(0), "{what}: {status:?}");
    assert!(status.stderr.contains(fix), "{what}: status: {status:?}");
    let report: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(report["enabled"], false, "{what}: {report}");
    assert_eq!(
        report["consent_token"], "present",
        "{what}: the token is there"
    );
    let decided = report["decided_by"].as_str().unwrap();
    assert!(
        decided.contains("app directory") && decided.contains(&dir_text),
        "{what}: decided by {decided}"
    );
    assert!(
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains(fix)),
        "{what}: {report}"
    );
    let text = run(home, &[], &["telemetry", "status"]);
    assert!(
        text.stdout.starts_with(NO_TELEMETRY_LINE),
        "{what}: {text:?}"
    );

    // No consent can be given in a directory others control.
    let enable = run(home, &[], &["telemetry", "enable", "--yes"]);
    assert_ne!(enable.code, Some(0), "{what}: enable: {enable:?}");
    assert!(enable.stderr.contains(&dir_text), "{what}: {enable:?}");
    assert!(
        snapshot(home) == before,
        "{what}: status or enable changed the HOME"
    );
}

#[test]
fn an_app_directory_others_can_write_or_own_turns_telemetry_off_and_says_how_to_fix_it() {
    for mode in [0o777, 0o775, 0o757, 0o1777] {
        let home = home_with_app_dir_mode(mode);
        let dir = app_dir(home.path());
        let fix = format!("chmod go-w {}", dir.display());
        assert_refused(home.path(), &dir, &fix, &format!("mode {mode:o}"));
    }

    // A symlinked app directory (dotfile managers) is followed, then checked as it is.
    let home = tempfile::tempdir().unwrap();
    let real = home.path().join("dotfiles/acme");
    fs::create_dir_all(&real).unwrap();
    fs::create_dir_all(home.path().join(".config")).unwrap();
    symlink(&real, app_dir(home.path())).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        run(home.path(), &[], &["telemetry", "enable", "--yes"]).code,
        Some(0)
    );
    assert_eq!(
        run(home.path(), &[], &["work"]),
        work_reference(),
        "symlinked 0755"
    );
    assert_eq!(
        payloads(home.path()).len(),
        1,
        "a symlinked 0755 directory is fine"
    );
    fs::set_permissions(&real, fs::Permissions::from_mode(0o777)).unwrap();
    let dir = app_dir(home.path());
    assert_refused(
        home.path(),
        &dir,
        &format!("chmod go-w {}", dir.display()),
        "a symlink to a 0777 directory",
    );

    // Readable by others is fine: 0755 is common for ~/.config/<app>.
    let home = home_with_app_dir_mode(0o755);
    assert_eq!(run(home.path(), &[], &["work"]), work_reference(), "0755");
    assert_eq!(
        payloads(home.path()).len(),
        1,
        "a 0755 app directory is fine"
    );

    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped the other-owner case: only root can give a directory away");
        return;
    }
    let home = home_with_app_dir_mode(0o700);
    let dir = app_dir(home.path());
    std::os::unix::fs::chown(&dir, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
    assert_refused(home.path(), &dir, "chown", "owned by another user");
    let work = run(home.path(), &[], &["work"]);
    assert!(
        work.stderr.contains(&format!("uid {OTHER_UID}")),
        "{work:?}"
    );
}

#[test]
fn symlinked_lock_files_are_never_followed() {
    for (lock, name) in [
        (
            (|h: &Path| pending_dir(h).join(".lock")) as Place,
            "pending .lock",
        ),
        (|h| app_dir(h).join("ledger.lock"), "ledger.lock"),
    ] {
        for existing in [false, true] {
            let home = used_home();
            let h = home.path();
            let elsewhere = h.join("elsewhere");
            fs::create_dir(&elsewhere).unwrap();
            let target = elsewhere.join("target");
            if existing {
                fs::write(&target, b"precious").unwrap();
                fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
            }
            let lock = lock(h);
            fs::remove_file(&lock).unwrap();
            symlink(&target, &lock).unwrap();
            let before = fs::symlink_metadata(&target)
                .ok()
                .map(|m| (m.mtime(), m.mtime_nsec()));

            let work = run(h, &[], &["work"]);
            let what = format!("{name} -> {} (existing: {existing})", target.display());
            assert_eq!(work.code, Some(0), "{what}: {work:?}");
            assert_eq!(work.stdout, "acme: working\n", "{what}");
            assert!(
                work.stderr.contains(&lock.display().to_string())
                    && work.stderr.contains("symbolic link"),
                "{what}: no warning names the lock: {work:?}"
            );
            assert_eq!(payloads(h).len(), 1, "{what}: a payload was written");
            if existing {
                assert_eq!(fs::read(&target).unwrap(), b"precious", "{what}");
                let meta = fs::metadata(&target).unwrap();
                assert_eq!(meta.mode() & 0o777, 0o644, "{what}: mode changed");
                assert_eq!(
                    Some((meta.mtime(), meta.mtime_nsec())),
                    before,
                    "{what}: the target was touched"
                );
            } else {
                assert!(
                    fs::symlink_metadata(&target).is_err(),
                    "{what}: the target was created"
                );
            }
            assert!(
                fs::symlink_metadata(&lock)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
        }
    }
}

/// Sets a file's modification time back by [`LONG_AGO`].
fn age(path: &Path) {
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - LONG_AGO).unwrap();
}

#[test]
fn stale_temporary_files_in_the_app_directory_go_where_the_ledger_is_written() {
    // Enabled but never run: the first `work` run charges the ledger, so it writes it (a run
    // that repeats memoised answers charges nothing and leaves the directory alone).
    let home = tempfile::tempdir().unwrap();
    let seen = run(home.path(), &[], &["telemetry", "enable", "--yes"]);
    assert_eq!(seen.code, Some(0), "enable: {seen:?}");
    let h = home.path();
    let dir = app_dir(h);
    let stale = dir.join(".tmp-x");
    let fresh = dir.join(".tmp-fresh");
    let not_temp = dir.join("notes.txt");
    let stale_dir = dir.join(".tmp-dir");
    let target = h.join("target");
    let stale_link = dir.join(".tmp-link");
    for path in [&stale, &fresh, &not_temp, &target] {
        fs::write(path, b"left behind").unwrap();
    }
    fs::create_dir(&stale_dir).unwrap();
    symlink(&target, &stale_link).unwrap();
    for path in [&stale, &not_temp, &target] {
        age(path);
    }
    let long_ago = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
    };
    for path in [&stale_link, &stale_dir] {
        rustix::fs::utimensat(
            rustix::fs::CWD,
            path,
            &long_ago,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }

    // Off for the run: nothing is written, nothing is cleaned.
    assert_eq!(run(h, DNT, &["work"]), work_reference());
    assert!(
        stale.exists(),
        "a run that writes nothing removed {}",
        stale.display()
    );

    assert_eq!(run(h, &[], &["work"]), work_reference());
    assert_eq!(payloads(h).len(), 1);
    assert!(!stale.exists(), "{} was not removed", stale.display());
    for kept in [&fresh, &not_temp, &stale_dir, &target] {
        assert!(kept.exists(), "{} was removed", kept.display());
    }
    assert!(
        fs::symlink_metadata(&stale_link).is_ok(),
        "a symlink was removed"
    );
    assert_eq!(fs::read(&target).unwrap(), b"left behind");
}
