//! The runtime privacy fixture: run a program under a network guard and fail the test if any process it
//! starts tries to reach a non-loopback address.
//!
//! ```no_run
//! // In an integration test of telemetry-cli this is env!("CARGO_BIN_EXE_telemetry").
//! let telemetry = "target/debug/telemetry";
//! let sandbox = privacy_guard::Sandbox::new();
//! let output = sandbox
//!     .command(telemetry)
//!     .args(["--app", "demo", "status"])
//!     .run(); // panics if the guard was not loaded or anything tried to leave the machine
//! assert!(output.status.success());
//! ```
//!
//! How it works: [`GuardedCommand`] starts the program with an empty environment except `PATH`, a `HOME`,
//! `XDG_*` directories and `TMPDIR` inside the [`Sandbox`]'s temporary directory (never the real home),
//! `LD_PRELOAD` naming the guard library and `PRIVACY_GUARD_LOG` naming a fresh log file. The guard
//! (crate `privacy-guard-preload`, compiled by this crate's build script) interposes libc's `connect`,
//! `sendto`, `sendmsg`, `sendmmsg`, `getaddrinfo`, `gethostbyname` and `gethostbyname2`: loopback, `AF_UNIX`
//! and `localhost` pass through, anything else is refused with `EACCES` before it reaches the kernel and
//! logged. The environment is inherited, so grandchildren are guarded too. After the process exits,
//! [`GuardedCommand::run`] reads the log and panics, naming the call and address, if anything was
//! blocked, and also if the guard never loaded into the child (a statically linked program or a stripped
//! `LD_PRELOAD` would otherwise pass silently).
//!
//! A test that really needs the network says so with [`GuardedCommand::allow_network`] and a reason: calls
//! then pass through and are only logged.
//!
//! Invariant: a `run` that returns normally saw the guard loaded in the child and no non-loopback network
//! attempt from it or its descendants, except in a test explicitly marked with `allow_network`. Linux/glibc
//! only. This crate is test support: only dev-dependencies may point at it (`xtask audit`, rule 1).

#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Absolute path of the guard library, compiled by this crate's build script.
pub const PRELOAD_PATH: &str = env!("PRIVACY_GUARD_PRELOAD");
/// Environment variable naming the guard's log file.
pub const LOG_ENV: &str = "PRIVACY_GUARD_LOG";
/// Environment variable selecting the guard's mode (`observe` lets calls through).
pub const MODE_ENV: &str = "PRIVACY_GUARD_MODE";
/// The `PATH` guarded processes get.
pub const SANDBOX_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The guard library, checked to exist. Panics with a loud explanation when it does not: a guarded
/// test must never run unguarded.
pub fn preload_path() -> &'static Path {
    let path = Path::new(PRELOAD_PATH);
    assert!(
        path.is_file(),
        "privacy-guard: the guard library {PRELOAD_PATH} is missing; rebuild with `cargo test` \
         (privacy-guard's build script compiles it)"
    );
    path
}

/// A temporary directory standing in for the user's home, config and temp directories. Removed on drop.
pub struct Sandbox {
    dir: tempfile::TempDir,
    runs: AtomicU32,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// Creates the directory with `home/`, `config/`, `data/`, `cache/`, `state/` and `tmp/` inside.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("privacy-guard-")
            .tempdir()
            .expect("privacy-guard: create a temporary directory");
        for sub in ["home", "config", "data", "cache", "state", "tmp"] {
            std::fs::create_dir(dir.path().join(sub)).expect("privacy-guard: create sandbox dirs");
        }
        Sandbox {
            dir,
            runs: AtomicU32::new(0),
        }
    }

    /// The sandbox root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `$HOME` of guarded processes.
    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    /// `$XDG_CONFIG_HOME` of guarded processes.
    pub fn config_home(&self) -> PathBuf {
        self.path().join("config")
    }

    /// A command for `program` with the sandbox environment, the guard preloaded and a fresh log.
    pub fn command(&self, program: impl AsRef<OsStr>) -> GuardedCommand {
        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        let log = self.path().join(format!("guard-{n}.log"));
        let root = self.path();
        let mut command = Command::new(program.as_ref());
        command
            .env_clear()
            .env("PATH", SANDBOX_PATH)
            .env("HOME", root.join("home"))
            .env("XDG_CONFIG_HOME", root.join("config"))
            .env("XDG_DATA_HOME", root.join("data"))
            .env("XDG_CACHE_HOME", root.join("cache"))
            .env("XDG_STATE_HOME", root.join("state"))
            .env("TMPDIR", root.join("tmp"))
            .env("LC_ALL", "C")
            .env("LD_PRELOAD", preload_path())
            .env(LOG_ENV, &log)
            .current_dir(root)
            .stdin(Stdio::null());
        GuardedCommand {
            command,
            log,
            display: program.as_ref().to_string_lossy().into_owned(),
            allow_network: None,
        }
    }
}

/// A process to run under the guard; see the crate docs.
pub struct GuardedCommand {
    command: Command,
    log: PathBuf,
    display: String,
    allow_network: Option<String>,
}

impl GuardedCommand {
    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.display.push(' ');
        self.display.push_str(&arg.as_ref().to_string_lossy());
        self.command.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for arg in args {
            self.arg(arg);
        }
        self
    }

    /// Sets an environment variable (on top of the sandbox environment).
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.command.env(key, value);
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.command.env_remove(key);
        self
    }

    /// Sets the working directory (default: the sandbox root).
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.command.current_dir(dir);
        self
    }

    /// The explicit marker for a test that really needs the network: non-loopback calls pass through
    /// (and are logged and printed) instead of failing the test. `reason` must say why.
    pub fn allow_network(&mut self, reason: &str) -> &mut Self {
        assert!(
            !reason.trim().is_empty(),
            "privacy-guard: allow_network needs a reason"
        );
        self.allow_network = Some(reason.to_owned());
        self.command.env(MODE_ENV, "observe");
        self
    }

    /// The log file the guard writes for this command.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Runs the process to completion (stdin null, output captured) and returns its output together with
    /// what the guard saw, without judging it. For the guard's own tests; others use [`Self::run`].
    pub fn run_unchecked(&mut self) -> (Output, GuardReport) {
        let _ = std::fs::remove_file(&self.log);
        let child = self
            .command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("privacy-guard: cannot start `{}`: {err}", self.display));
        let pid = child.id();
        let output = child
            .wait_with_output()
            .unwrap_or_else(|err| panic!("privacy-guard: waiting for `{}`: {err}", self.display));
        let text = match std::fs::read_to_string(&self.log) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => panic!("privacy-guard: reading {}: {err}", self.log.display()),
        };
        let report = GuardReport::parse(pid, &text);
        (output, report)
    }

    /// Runs the process to completion and panics unless the guard was loaded into it and nothing it
    /// started tried to reach a non-loopback address (see [`GuardReport::check`]). Returns its output;
    /// the exit status is the caller's to judge.
    pub fn run(&mut self) -> Output {
        let (output, report) = self.run_unchecked();
        if let Err(problem) = report.check(self.allow_network.as_deref()) {
            panic!(
                "privacy-guard: `{}`: {problem}\n--- stdout\n{}\n--- stderr\n{}",
                self.display,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        if let Some(reason) = &self.allow_network {
            for event in &report.observed {
                eprintln!(
                    "privacy-guard: `{}` reached the network ({event}); allowed: {reason}",
                    self.display
                );
            }
        }
        output
    }
}

/// One network attempt the guard saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkEvent {
    /// Process id.
    pub pid: u32,
    /// The libc function (`connect`, `sendto`, `getaddrinfo`, ...).
    pub call: String,
    /// The address or name (`203.0.113.1:9`, `name lookup of "example.com"`).
    pub target: String,
    /// The process's executable.
    pub exe: String,
}

impl fmt::Display for NetworkEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} to {} by pid {} ({})",
            self.call, self.target, self.pid, self.exe
        )
    }
}

/// What the guard logged for one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardReport {
    /// The pid of the process that was started.
    pub child_pid: u32,
    /// Processes the guard was loaded into.
    pub loaded: Vec<u32>,
    /// Refused attempts.
    pub blocked: Vec<NetworkEvent>,
    /// Attempts let through because the test was marked with `allow_network`.
    pub observed: Vec<NetworkEvent>,
    /// Log lines that could not be understood.
    pub malformed: Vec<String>,
}

impl GuardReport {
    /// Parses the guard's log for a run whose direct child had `child_pid`.
    pub fn parse(child_pid: u32, log: &str) -> Self {
        let mut report = GuardReport {
            child_pid,
            ..GuardReport::default()
        };
        for line in log.lines().filter(|l| !l.is_empty()) {
            let fields: Vec<&str> = line.splitn(5, '\t').collect();
            let [event, pid, call, target, exe] = fields[..] else {
                report.malformed.push(line.to_owned());
                continue;
            };
            let Ok(pid) = pid.parse::<u32>() else {
                report.malformed.push(line.to_owned());
                continue;
            };
            let record = NetworkEvent {
                pid,
                call: call.to_owned(),
                target: target.to_owned(),
                exe: exe.to_owned(),
            };
            match event {
                "loaded" => report.loaded.push(pid),
                "blocked" => report.blocked.push(record),
                "observed" => report.observed.push(record),
                _ => report.malformed.push(line.to_owned()),
            }
        }
        report
    }

    /// `Ok` when the guard was loaded into the child and nothing was blocked (and, without an
    /// `allow_network` reason, nothing was observed either); otherwise a description of every problem.
    pub fn check(&self, allow_network: Option<&str>) -> Result<(), String> {
        let mut problems = Vec::new();
        if !self.loaded.contains(&self.child_pid) {
            problems.push(format!(
                "the guard was not loaded into the child (pid {}): is LD_PRELOAD removed or the \
                 program statically linked? A guarded test must not run unguarded.",
                self.child_pid
            ));
        }
        for event in &self.blocked {
            problems.push(format!(
                "attempted non-loopback network access: {event}. If the test really needs the \
                 network, mark it with `.allow_network(\"reason\")`."
            ));
        }
        if allow_network.is_none() {
            for event in &self.observed {
                problems.push(format!("unmarked network access: {event}"));
            }
        }
        for line in &self.malformed {
            problems.push(format!("unreadable guard log line {line:?}"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_requires_the_guard_in_the_child() {
        let report = GuardReport::parse(7, "loaded\t8\t-\t-\t/bin/x\n");
        let err = report.check(None).unwrap_err();
        assert!(err.contains("not loaded into the child (pid 7)"), "{err}");
        assert!(
            GuardReport::parse(7, "loaded\t7\t-\t-\t/bin/x\n")
                .check(None)
                .is_ok()
        );
    }

    #[test]
    fn report_names_blocked_calls() {
        let log = "loaded\t7\t-\t-\t/bin/x\nblocked\t9\tconnect\t203.0.113.1:9\t/bin/y\n";
        let err = GuardReport::parse(7, log)
            .check(Some("even marked"))
            .unwrap_err();
        assert!(
            err.contains("connect to 203.0.113.1:9 by pid 9 (/bin/y)"),
            "{err}"
        );
    }

    #[test]
    fn observed_calls_need_the_marker() {
        let log = "loaded\t7\t-\t-\t/bin/x\nobserved\t7\tconnect\t0.0.0.0:1\t/bin/x\n";
        let report = GuardReport::parse(7, log);
        assert!(report.check(Some("talks to a real server")).is_ok());
        assert!(report.check(None).unwrap_err().contains("unmarked"));
        let garbled = GuardReport::parse(7, "loaded\t7\t-\t-\t/bin/x\nnonsense\n");
        assert!(garbled.check(None).unwrap_err().contains("unreadable"));
    }
}
