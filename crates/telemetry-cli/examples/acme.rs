//! `acme`: a small host that uses the telemetry toolkit exactly as an app author would,
//! through public API only.
//!
//! `acme [--no-telemetry] work [--fail] [--flag] [--note TEXT]` does its (pretend) work and
//! records `command_run`, `feature_used` and, with `--note`, a redacted text field.
//! `acme telemetry <command>` is the mounted telemetry CLI. The exit code never depends on
//! telemetry.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use telemetry_core::Telemetry;
use telemetry_core::event::{Event, Label};

#[derive(Parser)]
#[command(name = "acme", version)]
struct Acme {
    /// Turn telemetry off for this run.
    #[arg(long, global = true)]
    no_telemetry: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Do some work.
    Work {
        /// Fail on purpose (exit 1).
        #[arg(long)]
        fail: bool,
        /// Use the optional feature.
        #[arg(long)]
        flag: bool,
        /// A note; telemetry keeps only a redacted form.
        #[arg(long)]
        note: Option<String>,
    },
    /// See and control acme's telemetry.
    Telemetry(telemetry_cli::TelemetryArgs),
}

/// Which acme command ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Label)]
pub enum CommandName {
    /// `acme work`.
    Work,
    /// `acme telemetry ...` (never recorded: telemetry commands only inspect).
    Telemetry,
}

/// How it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Label)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1.
    Failure,
}

// The doc comments below are the catalogue's descriptions (`acme telemetry catalog`); the field
// types decide the kinds, and each randomised field spends the ε its struct gives.

/// An acme command ran.
#[derive(Event)]
#[telemetry(epsilon = 1.0)]
struct CommandRun {
    /// Which command.
    command: CommandName,
    /// How it ended.
    outcome: Outcome,
    /// How long it took (bucketed).
    duration: Duration,
    /// The --note text, redacted.
    #[telemetry(text, max_len = 120)]
    note: Option<String>,
}

/// Whether the optional feature (--flag) was used.
#[derive(Event)]
struct FeatureUsed {
    /// --flag given.
    #[telemetry(epsilon = 1.0)]
    flag: bool,
}

fn main() -> ExitCode {
    let cli = Acme::parse();
    let builder = Telemetry::builder("acme")
        .app_version(env!("CARGO_PKG_VERSION"))
        .no_telemetry_flag(cli.no_telemetry)
        // What acme's users are pointed at by `acme telemetry status`.
        .posture("https://acme.example/telemetry")
        .event::<CommandRun>()
        .event::<FeatureUsed>();
    match cli.command {
        Command::Telemetry(args) => ExitCode::from(telemetry_cli::run_with_stdio(&builder, &args)),
        Command::Work { fail, flag, note } => {
            let telemetry = builder.build();
            let started = Instant::now();
            println!("acme: working");
            let outcome = if fail {
                eprintln!("acme: failed as asked");
                Outcome::Failure
            } else {
                Outcome::Success
            };
            telemetry.record(&FeatureUsed { flag });
            telemetry.record(&CommandRun {
                command: CommandName::Work,
                outcome,
                duration: started.elapsed(),
                note,
            });
            // The payload is written when `telemetry` is dropped; errors are warnings.
            drop(telemetry);
            match outcome {
                Outcome::Success => ExitCode::SUCCESS,
                Outcome::Failure => ExitCode::FAILURE,
            }
        }
    }
}
