//! The consent core end to end, through the public API, in temporary directories.
//!
//! Unix only: it checks modes, owners and symlinks of the Unix store; off Unix the store
//! writes nothing and telemetry stays off (`telemetry_core::platform`).
#![cfg(unix)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use telemetry_core::{Effect, Env, NoticeMode, ReleasePolicy, Stage, Telemetry};

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn app_dir(&self) -> PathBuf {
        self.path().join(".config/acme")
    }
    fn env(&self, extra: &[(&str, &str)]) -> Env {
        let mut vars = vec![("HOME".to_owned(), self.path().display().to_string())];
        vars.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Env::from_pairs(vars)
    }
    fn build(&self, extra: &[(&str, &str)]) -> Telemetry {
        // These tests are about the decision: looking must not record.
        Telemetry::builder("acme")
            .env(self.env(extra))
            .print_warnings(false)
            .recording(false)
            .build()
    }
    fn enabled_install(&self) -> &Self {
        self.build(&[]).enable().expect("enable");
        assert!(self.build(&[]).is_enabled());
        self
    }
    fn token(&self) -> PathBuf {
        self.app_dir().join("secrets/consent.token")
    }
}

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push(e.path());
            if e.file_type().unwrap().is_dir() {
                out.extend(all_files(&e.path()));
            }
        }
    }
    out
}

#[test]
fn fresh_install_is_disabled_by_default_and_writes_nothing() {
    let home = Home::new();
    let t = home.build(&[]);
    assert!(!t.is_enabled());
    assert_eq!(t.decision().decided_by, None);
    let status = t.status();
    assert_eq!(status.consent_token, "absent");
    assert_eq!(status.pending_payloads, 0);
    assert!(
        all_files(home.path()).is_empty(),
        "{:?}",
        all_files(home.path())
    );
}

#[test]
fn enable_writes_a_0600_token_in_a_0700_secrets_dir() {
    let home = Home::new();
    home.enabled_install();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home.app_dir().join("secrets")), 0o700);
    assert_eq!(mode(&home.token()), 0o600);
    assert_eq!(mode(&home.app_dir().join("secrets/install.secret")), 0o600);
    let t = home.build(&[]);
    let input = t.decision().deciding_input().unwrap();
    assert_eq!(input.name, "consent token");
    assert_eq!(input.effect, Effect::Enables);
}

#[test]
fn every_hard_override_beats_consent_config_and_is_named() {
    let cases: &[(&str, &str)] = &[
        ("DO_NOT_TRACK", "1"),
        ("DO_NOT_TRACK", "true"),
        ("DO_NOT_TRACK", " YES "),
        ("ACME_TELEMETRY", "disabled"),
        ("ACME_TELEMETRY", "OFF"),
        ("ACME_TELEMETRY", "0"),
        ("ACME_TELEMETRY", "false"),
        ("ACME_TELEMETRY", "No"),
        ("ACME_TELEMETRY", "bogus"),
        ("ACME_TELEMETRY", "preview"),
        ("ACME_TELEMETRY_DISABLED", "1"),
        ("ACME_TELEMETRY_DISABLED", "TRUE"),
        ("ACME_TELEMETRY_DISABLED", "perhaps"),
        ("ACME_TELEMETRY_ENABLED", "0"),
        ("ACME_TELEMETRY_ENABLED", "False"),
        ("ACME_TELEMETRY_ENABLED", "2"),
        ("CI", "true"),
        ("GITHUB_ACTIONS", "true"),
    ];
    let home = Home::new();
    home.enabled_install();
    telemetry_core::config::set(
        &telemetry_core::Paths::at(home.app_dir()),
        "telemetry.enabled",
        "true",
    )
    .unwrap();
    for (var, value) in cases {
        let t = Telemetry::builder("acme")
            .env(home.env(&[(var, value)]))
            .config("telemetry.enabled", true)
            .print_warnings(false)
            .build();
        assert!(!t.is_enabled(), "{var}={value:?} did not disable");
        let decider = t.decision().deciding_input().unwrap();
        assert_eq!(decider.name, *var, "{var}={value:?}");
        assert_eq!(decider.stage, Stage::HardOverride);
        assert!(matches!(
            t.enable(),
            Err(telemetry_core::EnableError::Refused(_))
        ));
    }
}

#[test]
fn values_that_do_not_disable_leave_consent_in_charge() {
    let cases: &[(&str, &str)] = &[
        ("DO_NOT_TRACK", ""),
        ("DO_NOT_TRACK", "0"),
        ("DO_NOT_TRACK", "False"),
        ("DO_NOT_TRACK", " off "),
        ("DO_NOT_TRACK", "no"),
        ("ACME_TELEMETRY", ""),
        ("ACME_TELEMETRY", "enabled"),
        ("ACME_TELEMETRY", "ON"),
        ("ACME_TELEMETRY_DISABLED", "0"),
        ("ACME_TELEMETRY_DISABLED", ""),
        ("ACME_TELEMETRY_ENABLED", "1"),
        ("ACME_TELEMETRY_ENABLED", "true"),
        ("CI", "false"),
        ("CI", ""),
    ];
    let home = Home::new();
    home.enabled_install();
    for (var, value) in cases {
        assert!(
            home.build(&[(var, value)]).is_enabled(),
            "{var}={value:?} disabled"
        );
    }
    // ... and never grant consent on their own.
    let fresh = Home::new();
    for (var, value) in [
        ("ACME_TELEMETRY", "enabled"),
        ("ACME_TELEMETRY_ENABLED", "1"),
    ] {
        assert!(!fresh.build(&[(var, value)]).is_enabled());
    }
}

#[test]
fn unrecognised_values_warn_and_name_the_variable() {
    let home = Home::new();
    let t = home.build(&[("ACME_TELEMETRY", "sometimes")]);
    assert!(!t.is_enabled());
    let text: Vec<String> = t.warnings().iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|w| w.contains("ACME_TELEMETRY") && w.contains("sometimes")),
        "{text:?}"
    );
}

#[test]
fn non_utf8_override_values_disable() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    let home = Home::new();
    home.enabled_install();
    for var in ["DO_NOT_TRACK", "ACME_TELEMETRY"] {
        let env = Env::from_pairs([
            (OsString::from("HOME"), home.path().as_os_str().to_owned()),
            (OsString::from(var), OsString::from_vec(vec![0xff])),
        ]);
        let t = Telemetry::builder("acme")
            .env(env)
            .print_warnings(false)
            .build();
        assert!(!t.is_enabled(), "{var}");
    }
}

#[test]
fn ci_detection_can_be_turned_off_by_the_app() {
    let home = Home::new();
    home.enabled_install();
    let t = Telemetry::builder("acme")
        .env(home.env(&[("CI", "true")]))
        .ci_detection(false)
        .print_warnings(false)
        .build();
    assert!(t.is_enabled());
    assert_eq!(t.decision().input("CI").unwrap().effect, Effect::None);
}

#[test]
fn per_invocation_and_programmatic_disables() {
    let home = Home::new();
    home.enabled_install();
    let t = Telemetry::builder("acme")
        .env(home.env(&[]))
        .no_telemetry_flag(true)
        .print_warnings(false)
        .build();
    assert!(!t.is_enabled());
    assert_eq!(
        t.decision().deciding_input().unwrap().name,
        "--no-telemetry"
    );
    let t = Telemetry::builder("acme")
        .env(home.env(&[]))
        .disabled()
        .print_warnings(false)
        .build();
    assert!(!t.is_enabled());
    let t = home.build(&[]);
    assert!(t.is_enabled());
    t.disable();
    assert!(!t.is_enabled());
}

#[test]
fn config_false_disables_and_names_the_file() {
    let home = Home::new();
    home.enabled_install();
    fs::write(
        home.app_dir().join("config.toml"),
        "[telemetry]\nenabled = false\n",
    )
    .unwrap();
    let t = home.build(&[]);
    assert!(!t.is_enabled());
    let label = t.decision().decided_by_label();
    assert!(label.contains("config.toml"), "{label}");
    // An env layer of the config can say false too.
    fs::remove_file(home.app_dir().join("config.toml")).unwrap();
    let t = home.build(&[("ACME_CONFIG_TELEMETRY__ENABLED", "false")]);
    assert!(!t.is_enabled());
}

#[test]
fn hostile_config_files_disable_with_a_warning_naming_the_file() {
    let huge = vec![b'#'; 70_000];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("malformed", b"[telemetry\nenabled=".to_vec()),
        ("wrong type", b"[telemetry]\nenabled = 1\n".to_vec()),
        ("huge", huge),
        (
            "non-UTF-8",
            b"[telemetry]\nenabled = true # \xff\xfe\n".to_vec(),
        ),
    ];
    for (what, contents) in cases {
        let home = Home::new();
        home.enabled_install();
        fs::write(home.app_dir().join("config.toml"), contents).unwrap();
        let t = home.build(&[]);
        assert!(!t.is_enabled(), "{what}");
        assert!(
            t.warnings()
                .iter()
                .any(|w| w.to_string().contains("config.toml")),
            "{what}: {:?}",
            t.warnings()
        );
    }
    // A directory where the file should be.
    let home = Home::new();
    home.enabled_install();
    fs::create_dir(home.app_dir().join("config.toml")).unwrap();
    assert!(!home.build(&[]).is_enabled());
}

#[test]
fn tokens_with_group_or_other_bits_are_refused() {
    for mode in [0o644, 0o640, 0o660, 0o604, 0o620] {
        let home = Home::new();
        home.enabled_install();
        fs::set_permissions(home.token(), fs::Permissions::from_mode(mode)).unwrap();
        let t = home.build(&[]);
        assert!(!t.is_enabled(), "{mode:o}");
        assert_eq!(t.status().consent_token, "refused");
        let warning = t
            .warnings()
            .iter()
            .map(ToString::to_string)
            .find(|w| w.contains("consent.token"))
            .unwrap();
        assert!(warning.contains(&format!("{mode:04o}")), "{warning}");
    }
}

#[test]
fn symlinked_directory_garbage_and_foreign_tokens_are_refused() {
    // A symlink to a perfectly good token.
    let home = Home::new();
    home.enabled_install();
    let real = home.path().join("real.token");
    fs::rename(home.token(), &real).unwrap();
    symlink(&real, home.token()).unwrap();
    let t = home.build(&[]);
    assert!(!t.is_enabled());
    assert!(
        t.status()
            .consent_token_detail
            .unwrap()
            .contains("symbolic link")
    );

    // A directory.
    let home = Home::new();
    home.enabled_install();
    fs::remove_file(home.token()).unwrap();
    fs::create_dir(home.token()).unwrap();
    let t = home.build(&[]);
    assert!(!t.is_enabled());
    assert_eq!(t.status().consent_token, "refused");

    // Garbage, including non-UTF-8 bytes.
    for garbage in [&b"not json"[..], b"\xff\xfe\x00", b"{}", b""] {
        let home = Home::new();
        home.enabled_install();
        fs::write(home.token(), garbage).unwrap();
        let t = home.build(&[]);
        assert!(!t.is_enabled());
        assert_eq!(t.status().consent_token, "refused");
    }
}

#[test]
fn a_token_owned_by_another_user_is_refused() {
    let home = Home::new();
    home.enabled_install();
    let euid = rustix::process::geteuid().as_raw();
    if euid == 0 {
        std::os::unix::fs::chown(home.token(), Some(65534), None).unwrap();
        let t = home.build(&[]);
        assert!(!t.is_enabled());
        let detail = t.status().consent_token_detail.unwrap();
        assert!(detail.contains("uid 65534"), "{detail}");
    } else {
        // Unprivileged: the ownership rule is covered by store::check_private's unit
        // test; here at least our own token must pass.
        assert!(home.build(&[]).is_enabled());
    }
}

#[test]
fn a_world_readable_secrets_dir_is_refused() {
    let home = Home::new();
    home.enabled_install();
    let secrets = home.app_dir().join("secrets");
    fs::set_permissions(&secrets, fs::Permissions::from_mode(0o755)).unwrap();
    let t = home.build(&[]);
    assert!(!t.is_enabled());
    let detail = t.status().consent_token_detail.unwrap();
    assert!(
        detail.contains("0755") && detail.contains("secrets"),
        "{detail}"
    );
    // enable does not paper over it either.
    let err = t.enable().unwrap_err().to_string();
    assert!(err.contains("0755"), "{err}");
}

#[test]
fn an_older_consent_version_is_not_consent() {
    let home = Home::new();
    home.enabled_install();
    let t = Telemetry::builder("acme")
        .env(home.env(&[]))
        .consent_version(2)
        .print_warnings(false)
        .build();
    assert!(!t.is_enabled());
    assert_eq!(t.status().consent_token, "present");
}

#[test]
fn directory_resolution_edge_cases() {
    let home = Home::new();
    // Relative XDG_CONFIG_HOME is ignored (HOME is used) with a warning.
    let t = home.build(&[("XDG_CONFIG_HOME", "relative/dir")]);
    assert_eq!(t.paths().unwrap().root(), home.app_dir());
    assert!(
        t.warnings()
            .iter()
            .any(|w| w.to_string().contains("XDG_CONFIG_HOME"))
    );
    // The app's override wins.
    let other = home.path().join("elsewhere");
    let t = home.build(&[("ACME_TELEMETRY_DIR", other.to_str().unwrap())]);
    assert_eq!(t.paths().unwrap().root(), other);
    // No HOME at all: disabled, warned, and enable explains.
    let t = Telemetry::builder("acme")
        .env(Env::default())
        .print_warnings(false)
        .build();
    assert!(!t.is_enabled());
    assert!(t.paths().is_none());
    assert!(t.warnings().iter().any(|w| w.to_string().contains("HOME")));
    assert!(matches!(
        t.enable(),
        Err(telemetry_core::EnableError::NoDirectory)
    ));
}

#[test]
fn an_unwritable_app_directory_makes_enable_fail_cleanly() {
    let home = Home::new();
    // /proc refuses new directories even to root, so this holds for every user.
    let t = home.build(&[("ACME_TELEMETRY_DIR", "/proc/self/acme-telemetry")]);
    assert!(!t.is_enabled());
    let err = t.enable().unwrap_err();
    assert!(
        err.to_string().contains("/proc/self/acme-telemetry"),
        "{err}"
    );
    // A read-only directory (effective for non-root users).
    let ro = home.path().join("ro");
    fs::create_dir(&ro).unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o500)).unwrap();
    let t = home.build(&[("ACME_TELEMETRY_DIR", ro.join("acme").to_str().unwrap())]);
    assert!(!t.is_enabled());
    if rustix::process::geteuid().as_raw() != 0 {
        assert!(t.enable().is_err());
    }
}

#[test]
fn disable_removes_everything_but_the_config_file() {
    let home = Home::new();
    home.enabled_install();
    let pending = home.app_dir().join("uploads-pending");
    fs::create_dir_all(&pending).unwrap();
    fs::write(pending.join("r1.json"), "{}").unwrap();
    fs::write(home.app_dir().join("ledger.json"), "{}").unwrap();
    fs::write(home.app_dir().join("config.toml"), "[telemetry]\n").unwrap();
    fs::write(home.app_dir().join("app-data"), "the app's own").unwrap();
    let t = home.build(&[]);
    assert_eq!(t.status().pending_payloads, 1);
    let outcome = t.forget();
    assert!(!t.is_enabled());
    let names: Vec<_> = outcome
        .removed
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "consent.token",
            "install.secret",
            "r1.json",
            "ledger.json",
            "secrets",
            "uploads-pending"
        ]
    );
    assert!(home.app_dir().join("config.toml").exists());
    assert!(home.app_dir().join("app-data").exists());
    assert!(outcome.failed.is_empty());
    let t = home.build(&[]);
    assert!(!t.is_enabled());
    assert_eq!(t.status().consent_token, "absent");
    assert_eq!(t.status().pending_payloads, 0);
}

#[test]
fn enable_flips_a_config_false_it_can_change_and_reports_one_it_cannot() {
    let home = Home::new();
    fs::create_dir_all(home.app_dir()).unwrap();
    fs::write(
        home.app_dir().join("config.toml"),
        "[telemetry]\nenabled = false\n",
    )
    .unwrap();
    let outcome = home.build(&[]).enable().unwrap();
    assert!(outcome.config_file_updated.is_some());
    assert!(home.build(&[]).is_enabled());
    let outcome = home
        .build(&[("ACME_CONFIG_TELEMETRY__ENABLED", "false")])
        .enable()
        .unwrap();
    assert!(outcome.still_disabled_by.unwrap().contains("ACME_CONFIG"));
}

fn opt_out(home: &Home, notice: NoticeMode, extra: &[(&str, &str)]) -> Telemetry {
    Telemetry::builder("acme")
        .env(home.env(extra))
        .policy(ReleasePolicy::OptOut)
        .notice(notice)
        .print_warnings(false)
        .build()
}

#[test]
fn opt_out_records_nothing_in_the_run_that_shows_the_notice() {
    let home = Home::new();
    // Not a terminal: no notice, so never on.
    let t = opt_out(&home, NoticeMode::Never, &[]);
    assert!(!t.is_enabled());
    assert!(!home.app_dir().join("notice-shown").exists());
    // The run that shows it is still off ...
    let t = opt_out(&home, NoticeMode::Always, &[]);
    assert!(!t.is_enabled());
    assert_eq!(t.decision().deciding_input().unwrap().value, "shown now");
    assert!(home.app_dir().join("notice-shown").exists());
    // ... the next one is on, without showing it again.
    let t = opt_out(&home, NoticeMode::Always, &[]);
    assert!(t.is_enabled());
    assert_eq!(
        t.decision().deciding_input().unwrap().value,
        "shown earlier"
    );
    // Disabled runs never show it and never write the marker.
    let other = Home::new();
    let t = opt_out(&other, NoticeMode::Always, &[("DO_NOT_TRACK", "1")]);
    assert!(!t.is_enabled());
    assert!(!other.app_dir().join("notice-shown").exists());
    // Disable persists for an opt-out app.
    let outcome = opt_out(&home, NoticeMode::Never, &[]).forget();
    assert!(outcome.config_file_updated.is_some());
    assert!(!opt_out(&home, NoticeMode::Never, &[]).is_enabled());
}

#[test]
fn the_notice_names_every_way_off() {
    let text = telemetry_core::notice_text("acme");
    for needle in [
        "acme telemetry disable",
        "telemetry.enabled false",
        "--no-telemetry",
        "DO_NOT_TRACK=1",
        "ACME_TELEMETRY=disabled",
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
}

#[test]
fn an_invalid_app_name_is_disabled_not_a_panic() {
    let home = Home::new();
    let t = Telemetry::builder("../etc")
        .env(home.env(&[]))
        .print_warnings(false)
        .build();
    assert!(!t.is_enabled());
    assert!(t.paths().is_none());
}

/// Switched off by a hard override, `build` reads none of the app's files: the app directory,
/// the config and the consent token are read when the decision is first asked for
/// (`decision`, `status`, `warnings`), and then say all they say in any other run.
#[test]
fn a_hard_override_reads_the_files_only_when_asked_and_status_tells_everything() {
    let home = Home::new();
    home.enabled_install();
    fs::write(home.app_dir().join("config.toml"), "not [[ toml").unwrap();
    let dnt = [("DO_NOT_TRACK", "1")];

    let t = home.build(&dnt);
    assert!(!t.is_enabled());
    // Built before the token is removed, asked after: what `status` shows was read then.
    fs::remove_file(home.token()).unwrap();
    let status = t.status();
    assert_eq!(status.consent_token, "absent");
    // Quiet in the host's output: no warning is about DO_NOT_TRACK itself.
    assert_eq!(t.printed_warnings().count(), 0);
    assert_eq!(
        t.decision().hard_override().map(|i| i.name.as_str()),
        Some("DO_NOT_TRACK")
    );
    assert!(
        t.warnings()
            .iter()
            .any(|w| w.to_string().contains("config.toml")),
        "{:?}",
        t.warnings()
    );
    // Everything else as a handle built now, the override's laziness aside.
    let now = home.build(&dnt);
    assert_eq!(now.status().consent_token, "absent");
    assert_eq!(now.decision(), t.decision());
    assert_eq!(now.warnings(), t.warnings());

    // Without the override the same files decide at `build`, and its output says so.
    let on = home.build(&[]);
    assert!(!on.is_enabled(), "a broken config.toml keeps telemetry off");
    assert!(
        on.printed_warnings()
            .any(|w| w.to_string().contains("config.toml"))
    );
}

/// An opt-in app that was never given consent has no app directory: `build` then reads no
/// file either (no token can exist), and works the decision out when asked. A setting in the
/// environment still goes the full way, so that its warning is printed by the run.
#[test]
fn a_never_consented_app_reads_no_file_until_asked() {
    let home = Home::new();
    let t = home.build(&[]);
    assert!(!t.is_enabled());
    assert!(!home.app_dir().exists());
    // Consent given by another process after this one started: asked now, `status` reads it.
    home.enabled_install();
    let status = t.status();
    assert_eq!(status.consent_token, "present");
    assert!(!t.is_enabled(), "a handle's own state is fixed at build");
    assert!(!status.enabled, "status agrees with is_enabled");
    assert_eq!(
        t.decision().deciding_input().map(|i| i.name.as_str()),
        Some("state at start-up"),
        "{}",
        status.decided_by
    );

    let fresh = Home::new();
    let warned = fresh.build(&[("ACME_CONFIG_TELEMETRY__COLOUR", "blue")]);
    assert!(
        warned
            .printed_warnings()
            .any(|w| w.to_string().contains("ACME_CONFIG_TELEMETRY__COLOUR")),
        "{:?}",
        warned.warnings()
    );
    assert_eq!(warned.status().consent_token, "absent");
}

/// A recording run reads the token and the install secret through one opening of the secrets
/// directory; what the secret turns out to be still decides whether it records.
#[test]
fn a_recording_run_with_consent_needs_a_sound_install_secret() {
    let home = Home::new();
    home.enabled_install();
    let secret = home.app_dir().join("secrets/install.secret");
    let recording = || {
        Telemetry::builder("acme")
            .env(home.env(&[]))
            .print_warnings(false)
            .build()
    };
    assert!(recording().is_enabled(), "consent and a secret: on");
    let good = fs::read(&secret).unwrap();
    let cases: [(&str, Option<&[u8]>, u32, &str); 3] = [
        ("missing", None, 0o600, "the install secret is missing"),
        ("not hex", Some(b"zz"), 0o600, "not a 64-digit hex secret"),
        ("group-readable", Some(&good), 0o640, "0640"),
    ];
    for (what, content, mode, expected) in cases {
        let _ = fs::remove_file(&secret);
        if let Some(content) = content {
            fs::write(&secret, content).unwrap();
            fs::set_permissions(&secret, fs::Permissions::from_mode(mode)).unwrap();
        }
        let t = recording();
        assert!(!t.is_enabled(), "{what}: off");
        let warnings: Vec<String> = t.warnings().iter().map(|w| w.to_string()).collect();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(expected) && w.contains("install.secret")),
            "{what}: {warnings:?}"
        );
        // The token itself was read alike: consent is there.
        assert_eq!(t.status().consent_token, "present", "{what}");
    }
    fs::write(&secret, &good).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(recording().is_enabled(), "a sound secret again: on");
}
