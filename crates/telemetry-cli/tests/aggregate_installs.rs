//! `aggregate` recovers what a population really did from locally randomised payloads:
//! 1,000 simulated installs (each its own HOME, recording through the public API), whose
//! true values are drawn from a fixed seed, aggregated by the CLI command over the parent
//! directory. Every de-biased estimate must be within 3 standard errors of the true
//! proportion. Deterministic: install secrets come from the seed too, and every randomised
//! answer is memoised through them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use telemetry_cli::{Form, exit};
use telemetry_core::Telemetry;
use telemetry_core::event::{Event, FieldDecl, Label, Value};

mod common;
use common::{env_for, run_builder};

const INSTALLS: usize = 1_000;

telemetry_core::labels! {
    /// Which shell the user runs.
    pub enum Shell {
        /// bash
        Bash = "bash",
        /// zsh
        Zsh = "zsh",
        /// fish
        Fish = "fish",
    }
}

struct Setup {
    shell: Shell,
    dark_mode: bool,
}

impl Event for Setup {
    const NAME: &'static str = "setup";
    const DESCRIPTION: &'static str = "How the tool is set up.";
    const FIELDS: &'static [FieldDecl] = &[
        FieldDecl::enumeration("shell", "The shell.", Shell::LABELS, 1.0),
        FieldDecl::boolean("dark_mode", "Dark mode on.", 1.0),
    ];
    fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
        out(Value::Enum(self.shell.index()));
        out(Value::Bool(self.dark_mode));
    }
}

/// SplitMix64: a fixed, dependency-free stream for test data (not for privacy).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn builder(home: &Path) -> telemetry_core::Builder {
    Telemetry::builder("acme")
        .app_version("1.0.0")
        .env(env_for(home, &[]))
        .print_warnings(false)
        .event::<Setup>()
}

/// One install: a seeded install secret, consent, one run recording `setup`.
fn simulate_install(home: &Path, rng: &mut SplitMix, setup: &Setup) {
    let secrets = home.join(".config/acme/secrets");
    fs::create_dir_all(&secrets).unwrap();
    fs::set_permissions(&secrets, fs::Permissions::from_mode(0o700)).unwrap();
    let secret: String = (0..4).map(|_| format!("{:016x}", rng.next())).collect();
    let file = secrets.join("install.secret");
    fs::write(&file, secret).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    builder(home).build().enable().unwrap();
    let telemetry = builder(home).build();
    assert!(telemetry.is_enabled(), "install {}", home.display());
    telemetry.record(setup);
    let written = telemetry.flush().unwrap();
    assert!(written.is_some());
}

#[test]
fn aggregate_recovers_true_proportions_from_many_installs() {
    // 1,000 installs make ~5,000 fsyncs (consent, secret, ledger, payload): on a RAM-backed
    // file system where there is one, since the disk's speed is not what is tested.
    let shm = Path::new("/dev/shm");
    let root = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let mut rng = SplitMix(0x5EED_2026_1121);
    let (mut shells, mut dark) = ([0usize; 3], 0usize);
    for i in 0..INSTALLS {
        // True population: bash 50 %, zsh 35 %, fish 15 %; dark mode 30 %.
        let u = rng.unit();
        let shell = if u < 0.50 {
            Shell::Bash
        } else if u < 0.85 {
            Shell::Zsh
        } else {
            Shell::Fish
        };
        let dark_mode = rng.unit() < 0.30;
        shells[shell.index() as usize] += 1;
        dark += usize::from(dark_mode);
        let setup = Setup { shell, dark_mode };
        simulate_install(
            &root.path().join(format!("install-{i:04}")),
            &mut rng,
            &setup,
        );
    }
    // A broken file among them is reported and skipped, not fatal.
    let broken = "install-0000/01912d68-783e-7a03-8467-000000000000.json";
    fs::write(root.path().join(broken), b"{").unwrap();

    let argv = ["aggregate", root.path().to_str().unwrap(), "--json"];
    let b = builder(root.path());
    let r = run_builder(&b, root.path(), Form::Mounted, &argv, "");
    assert_eq!(r.code, exit::OK, "{}", r.err);
    assert!(r.err.contains("1 file skipped"), "{}", r.err);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&r.out).unwrap();
    let row = |field: &str, value: &str| {
        rows.iter()
            .find(|r| r["event"] == "setup" && r["field"] == field && r["value"] == value)
            .unwrap_or_else(|| panic!("no row for setup.{field} = {value}: {rows:?}"))
    };
    let mut checks = vec![("dark_mode", "true", dark)];
    for (i, label) in Shell::LABELS.iter().enumerate() {
        checks.push(("shell", label, shells[i]));
    }
    for (field, value, count) in checks {
        let truth = count as f64 / INSTALLS as f64;
        let r = row(field, value);
        let estimate = r["estimate"].as_f64().unwrap();
        let se = r["standard_error"].as_f64().unwrap();
        assert_eq!(r["n"], INSTALLS as u64, "{r}");
        assert!(se > 0.0 && se < 0.1, "{field}={value}: standard error {se}");
        assert!(
            (estimate - truth).abs() <= 3.0 * se,
            "{field}={value}: estimate {estimate:.4} ± {se:.4}, truth {truth:.4}"
        );
        eprintln!("{field}={value}: estimate {estimate:.4} ± {se:.4}, truth {truth:.4}");
    }
}
