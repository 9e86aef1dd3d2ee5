//! Shared by the CLI's test files: run a command in-process against a temporary HOME.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};

use clap::Parser;
use telemetry_cli::{Form, Io, TelemetryArgs};
use telemetry_core::{Builder, Env, Telemetry};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: TelemetryArgs,
}

/// What a command printed and returned, with the temporary HOME replaced by `[HOME]`.
pub struct Run {
    pub code: u8,
    pub out: String,
    pub err: String,
}

/// The complete environment of a test: HOME plus `extra`, nothing inherited (CI=true in
/// the real environment would turn everything off).
pub fn env_for(home: &Path, extra: &[(&str, &str)]) -> Env {
    let mut vars = vec![("HOME".to_owned(), home.display().to_string())];
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Env::from_pairs(vars)
}

/// Runs `argv` for app `acme` with HOME = `home` plus `extra` variables.
pub fn run_in(home: &Path, extra: &[(&str, &str)], argv: &[&str], stdin: &str) -> Run {
    let builder = Telemetry::builder("acme").env(env_for(home, extra));
    run_builder(&builder, home, Form::Mounted, argv, stdin)
}

/// Parses `argv` (without the program name) as the telemetry subcommand.
pub fn parse(argv: &[&str]) -> TelemetryArgs {
    Cli::try_parse_from(std::iter::once("telemetry").chain(argv.iter().copied()))
        .expect("valid arguments")
        .args
}

/// Runs `argv` with `builder` in `form`; `home` is replaced by `[HOME]` in the output.
pub fn run_builder(builder: &Builder, home: &Path, form: Form, argv: &[&str], stdin: &str) -> Run {
    let args = parse(argv);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut input = stdin.as_bytes();
    let code = telemetry_cli::run_as(
        builder,
        &args,
        form,
        &mut Io {
            out: &mut out,
            err: &mut err,
            input: &mut input,
            color: false,
        },
    );
    let clean = |b: Vec<u8>| {
        String::from_utf8(b)
            .unwrap()
            .replace(&home.display().to_string(), "[HOME]")
    };
    Run {
        code,
        out: clean(out),
        err: clean(err),
    }
}

pub fn redact_dates(text: &str) -> String {
    // "given 2026-11-21T17:37:53Z" → "given [TIME]"
    let mut out = String::new();
    for line in text.lines() {
        match line.find("given ") {
            Some(i) if line[i + 6..].len() >= 20 => {
                out.push_str(&line[..i + 6]);
                out.push_str("[TIME]");
                out.push_str(&line[i + 6 + 20..]);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The `acme` example host next to the test's binaries (cargo builds a package's examples for
/// `cargo test`). Fails loudly when it is missing instead of skipping.
pub fn acme() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_telemetry"))
        .parent()
        .expect("target dir")
        .join("examples")
        .join("acme");
    assert!(
        path.is_file(),
        "{} is missing: run the whole package's tests (`cargo test -p telemetry-cli`), which \
         build the examples, or `cargo build -p telemetry-cli --example acme` first",
        path.display()
    );
    path
}
