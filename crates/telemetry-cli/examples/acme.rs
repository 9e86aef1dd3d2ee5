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
use telemetry_core::event::{Event, FieldDecl, Label, Value};

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

telemetry_core::labels! {
    /// Which acme command ran.
    pub enum CommandName {
        /// `acme work`.
        Work = "work",
        /// `acme telemetry ...` (never recorded: telemetry commands only inspect).
        Telemetry = "telemetry",
    }
}

telemetry_core::labels! {
    /// How it ended.
    pub enum Outcome {
        /// Exit 0.
        Success = "success",
        /// Exit 1.
        Failure = "failure",
    }
}

/// `command_run`: which command, how it ended, how long it took.
struct CommandRun {
    command: CommandName,
    outcome: Outcome,
    duration: Duration,
    note: Option<String>,
}

impl Event for CommandRun {
    const NAME: &'static str = "command_run";
    const DESCRIPTION: &'static str = "An acme command ran.";
    const FIELDS: &'static [FieldDecl] = &[
        FieldDecl::enumeration("command", "Which command.", CommandName::LABELS, 1.0),
        FieldDecl::enumeration("outcome", "How it ended.", Outcome::LABELS, 1.0),
        FieldDecl::duration("duration", "How long it took (bucketed).", 1.0),
        FieldDecl::text("note", "The --note text, redacted.", 120),
    ];
    fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
        out(Value::Enum(self.command.index()));
        out(Value::Enum(self.outcome.index()));
        out(Value::Duration(self.duration));
        out(self.note.as_deref().map_or(Value::Missing, Value::Text));
    }
}

/// `feature_used`: whether `--flag` was given.
struct FeatureUsed {
    flag: bool,
}

impl Event for FeatureUsed {
    const NAME: &'static str = "feature_used";
    const DESCRIPTION: &'static str = "Whether the optional feature (--flag) was used.";
    const FIELDS: &'static [FieldDecl] = &[FieldDecl::boolean("flag", "--flag given.", 1.0)];
    fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
        out(Value::Bool(self.flag));
    }
}

fn main() -> ExitCode {
    let cli = Acme::parse();
    let builder = Telemetry::builder("acme")
        .app_version(env!("CARGO_PKG_VERSION"))
        .no_telemetry_flag(cli.no_telemetry)
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
