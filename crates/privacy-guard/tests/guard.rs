//! The fixture's own negative tests: a guarded process that tries to leave the machine is blocked and
//! reported, loopback keeps working, the marker lets calls through, and an unguarded run is caught.
//!
//! No packet leaves the machine: the probe refuses to make a non-loopback call unless it has first proved
//! the guard is active in its own process, and when the machine allows unprivileged network namespaces the
//! probe also runs inside one that has no interfaces but a (down) loopback. The target is 203.0.113.1
//! (TEST-NET-3, RFC 5737): documentation space, never a real host.

use std::sync::OnceLock;

use privacy_guard::{GuardReport, GuardedCommand, Sandbox};

const PROBE: &str = env!("CARGO_BIN_EXE_privacy-guard-probe");
const OFF_MACHINE: &str = "203.0.113.1:9";
const SELF_TEST: &str = "0.0.0.0:1";

/// Whether `unshare -rn` (a user + network namespace) works here; decided once.
fn netns_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let ok = std::process::Command::new("unshare")
            .args(["-rn", "true"])
            .output()
            .is_ok_and(|o| o.status.success());
        eprintln!(
            "network namespace as a second layer: {}",
            if ok { "yes" } else { "no (interception only)" }
        );
        ok
    })
}

/// A probe command for a call to a non-loopback address: inside an empty network namespace if possible.
fn isolated_probe(sandbox: &Sandbox, args: &[&str]) -> GuardedCommand {
    let mut command = if netns_available() {
        let mut c = sandbox.command("unshare");
        c.args(["-rn", PROBE]);
        c
    } else {
        sandbox.command(PROBE)
    };
    command.args(args);
    command
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn blocked_targets(report: &GuardReport) -> Vec<(String, String)> {
    report
        .blocked
        .iter()
        .filter(|e| e.target != SELF_TEST)
        .map(|e| (e.call.clone(), e.target.clone()))
        .collect()
}

#[test]
fn tcp_connect_off_the_machine_is_refused_and_reported() {
    let sandbox = Sandbox::new();
    let (output, report) = isolated_probe(&sandbox, &["connect-tcp", OFF_MACHINE]).run_unchecked();
    assert_eq!(
        stdout(&output),
        "err 13",
        "EACCES from the guard, not the kernel: {output:?}"
    );
    assert_eq!(
        blocked_targets(&report),
        [("connect".to_owned(), OFF_MACHINE.to_owned())]
    );
    let problem = report.check(None).unwrap_err();
    assert!(problem.contains("connect to 203.0.113.1:9"), "{problem}");
}

#[test]
#[should_panic(expected = "attempted non-loopback network access: connect to 203.0.113.1:9")]
fn run_fails_the_test_that_tries() {
    let sandbox = Sandbox::new();
    isolated_probe(&sandbox, &["connect-tcp", OFF_MACHINE]).run();
}

#[test]
fn udp_send_off_the_machine_is_refused() {
    let sandbox = Sandbox::new();
    let (output, report) = isolated_probe(&sandbox, &["send-udp", OFF_MACHINE]).run_unchecked();
    assert_eq!(stdout(&output), "err 13", "{output:?}");
    assert_eq!(
        blocked_targets(&report),
        [("sendto".to_owned(), OFF_MACHINE.to_owned())]
    );
}

#[test]
fn name_lookups_are_refused_before_any_dns_query() {
    let sandbox = Sandbox::new();
    let (output, report) =
        isolated_probe(&sandbox, &["resolve", "telemetry.example.com:443"]).run_unchecked();
    assert!(stdout(&output).starts_with("err"), "{output:?}");
    assert_eq!(
        blocked_targets(&report),
        [(
            "getaddrinfo".to_owned(),
            "name lookup of \"telemetry.example.com\"".to_owned()
        )]
    );
}

#[test]
fn grandchildren_are_guarded_too() {
    let sandbox = Sandbox::new();
    let (output, report) =
        isolated_probe(&sandbox, &["spawn", "connect-tcp", OFF_MACHINE]).run_unchecked();
    assert_eq!(stdout(&output), "child: err 13", "{output:?}");
    let offender = report
        .blocked
        .iter()
        .find(|e| e.target == OFF_MACHINE)
        .expect("blocked");
    assert_ne!(
        offender.pid, report.child_pid,
        "the grandchild made the call"
    );
    assert!(report.loaded.contains(&offender.pid));
}

#[test]
fn loopback_is_allowed() {
    let sandbox = Sandbox::new();
    let output = sandbox.command(PROBE).arg("loopback").run();
    assert_eq!(
        stdout(&output),
        "tcp ok ping udp ok resolve ok",
        "{output:?}"
    );
}

#[test]
fn the_marker_lets_calls_through_and_records_them() {
    let sandbox = Sandbox::new();
    // 0.0.0.0 is not loopback for the guard but is the local host for the kernel: nothing leaves.
    let mut command = sandbox.command(PROBE);
    command.arg("connect-any");
    let (output, report) = command.run_unchecked();
    assert!(
        stdout(&output).starts_with("err 13"),
        "unmarked: refused: {output:?}"
    );
    assert_eq!(report.blocked.len(), 1, "{report:?}");

    let mut marked = sandbox.command(PROBE);
    marked
        .arg("connect-any")
        .allow_network("exercises the observe mode on 0.0.0.0");
    let output = marked.run();
    assert_eq!(stdout(&output), "ok");
    let (_, report) = marked.run_unchecked();
    assert_eq!(report.observed.len(), 1, "{report:?}");
    assert!(report.blocked.is_empty());
}

#[test]
#[should_panic(expected = "allow_network needs a reason")]
fn the_marker_needs_a_reason() {
    Sandbox::new().command(PROBE).allow_network("  ");
}

#[test]
#[should_panic(expected = "the guard was not loaded into the child")]
fn an_unguarded_run_is_caught() {
    let sandbox = Sandbox::new();
    sandbox
        .command(PROBE)
        .arg("guard-active")
        .env_remove("LD_PRELOAD")
        .run();
}

#[test]
fn the_environment_is_the_sandbox_not_the_real_home() {
    let sandbox = Sandbox::new();
    let output = sandbox.command("/usr/bin/env").run();
    let env = stdout(&output);
    let home = format!("HOME={}", sandbox.home().display());
    assert!(env.lines().any(|l| l == home), "{env}");
    for line in env.lines() {
        let key = line.split('=').next().unwrap_or_default();
        assert!(
            [
                "PATH",
                "HOME",
                "XDG_CONFIG_HOME",
                "XDG_DATA_HOME",
                "XDG_CACHE_HOME",
                "XDG_STATE_HOME",
                "TMPDIR",
                "LC_ALL",
                "LD_PRELOAD",
                "PRIVACY_GUARD_LOG"
            ]
            .contains(&key),
            "unexpected variable {line}"
        );
    }
}
