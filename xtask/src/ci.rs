//! `cargo xtask ci`: everything CI runs, in order, stopping at the first failure.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::bail;

enum Step {
    Cargo(
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
    ),
    Audit,
    CodegenCheck,
}

const STEPS: &[(&str, Step)] = &[
    (
        "format check",
        Step::Cargo(&["fmt", "--all", "--check"], &[]),
    ),
    (
        "clippy (default features)",
        Step::Cargo(
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        ),
    ),
    (
        "clippy (--features upload)",
        Step::Cargo(
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--features",
                "telemetry-cli/upload",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        ),
    ),
    (
        // What a host gets that mounts the subcommand without the JSON Schema validator:
        // `verify-payload` and `aggregate` by the typed decoder (core without `validate`).
        "clippy (telemetry-cli --no-default-features)",
        Step::Cargo(
            &[
                "clippy",
                "-p",
                "telemetry-cli",
                "--no-default-features",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        ),
    ),
    (
        // Every platform compiles (issue #17): what an app depends on, uploader included, built
        // for Windows, where the Unix store is left out and telemetry fails closed. A check
        // links nothing, so no Windows linker is needed (ring's C code needs mingw's gcc).
        "check for Windows (x86_64-pc-windows-gnu, --features upload)",
        Step::Cargo(
            &[
                "check",
                "--target",
                "x86_64-pc-windows-gnu",
                "-p",
                "telemetry-core",
                "-p",
                "telemetry-cli",
                "--features",
                "telemetry-cli/upload",
            ],
            &[("RUSTFLAGS", "-D warnings")],
        ),
    ),
    (
        "tests (default features)",
        Step::Cargo(&["test", "--workspace"], &[]),
    ),
    (
        "tests (--features upload)",
        Step::Cargo(
            // The collector does not change with the feature; its tests run once, above.
            &[
                "test",
                "--workspace",
                "--exclude",
                "telemetry-collector",
                "--features",
                "telemetry-cli/upload",
            ],
            &[],
        ),
    ),
    ("xtask audit", Step::Audit),
    ("codegen --check", Step::CodegenCheck),
    (
        "docs (warnings denied)",
        Step::Cargo(
            &["doc", "--workspace", "--no-deps"],
            &[("RUSTDOCFLAGS", "-D warnings")],
        ),
    ),
    (
        // What `cargo publish` would upload, packaged in dependency order (the unpublished
        // workspace crates resolve through cargo's local overlay); it uploads nothing.
        // `--allow-dirty`: ci checks the working tree before it is committed. `--no-verify`:
        // cargo's verification builds an unpublished dependency from the copy it unpacked the
        // first time it saw the version, so it passes or fails on stale code, and it builds no
        // tests; `xtask/tests/publish.rs` (in the test steps) builds every package with its
        // tests from these `.crate` files and checks their metadata.
        "package (shipped crates, no upload)",
        Step::Cargo(
            &[
                "package",
                "--allow-dirty",
                "--no-verify",
                "-p",
                "telemetry-derive",
                "-p",
                "telemetry-schema",
                "-p",
                "telemetry-core",
                "-p",
                "telemetry-transport",
                "-p",
                "telemetry-cli",
                "-p",
                "telemetry-collector",
            ],
            &[],
        ),
    ),
];

fn describe(step: &Step) -> String {
    match step {
        Step::Cargo(args, env) => {
            let env: String = env.iter().map(|(k, v)| format!("{k}={v:?} ")).collect();
            format!("{env}cargo {}", args.join(" "))
        }
        Step::Audit => "cargo xtask audit (in-process)".to_owned(),
        Step::CodegenCheck => "cargo xtask codegen --check (in-process)".to_owned(),
    }
}

fn execute(step: &Step) -> anyhow::Result<()> {
    match step {
        Step::Cargo(args, env) => {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(*args)
                .envs(env.iter().copied())
                .status()?;
            if !status.success() {
                bail!("exited with {status}");
            }
            Ok(())
        }
        Step::Audit => super::audit::run(&[]),
        Step::CodegenCheck => super::codegen::run(&["--check".to_owned()]),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    if let Some(arg) = args.first() {
        bail!("unknown argument {arg:?}; usage: cargo xtask ci");
    }
    let start = Instant::now();
    let mut done: Vec<(&str, Duration, bool)> = Vec::new();
    let mut failure = None;
    for (i, (name, step)) in STEPS.iter().enumerate() {
        println!(
            "\n==> [{}/{}] {name}: {}",
            i + 1,
            STEPS.len(),
            describe(step)
        );
        let t = Instant::now();
        let result = execute(step);
        let took = t.elapsed();
        println!(
            "<== [{}/{}] {name}: {} in {}",
            i + 1,
            STEPS.len(),
            if result.is_ok() { "ok" } else { "FAILED" },
            secs(took)
        );
        done.push((name, took, result.is_ok()));
        if let Err(err) = result {
            failure = Some(format!("{name}: {err:#}"));
            break;
        }
    }
    println!("\nci summary ({} total):", secs(start.elapsed()));
    for (name, took, ok) in &done {
        println!(
            "  {:<6} {:>9}  {name}",
            if *ok { "ok" } else { "FAILED" },
            secs(*took)
        );
    }
    for (name, _) in STEPS.iter().skip(done.len()) {
        println!("  {:<6} {:>9}  {name}", "-", "not run");
    }
    let passed = done.iter().filter(|d| d.2).count();
    println!("ci steps: {passed} passed, {} failed", done.len() - passed);
    match failure {
        Some(f) => bail!("ci failed at {f}"),
        None => Ok(()),
    }
}
