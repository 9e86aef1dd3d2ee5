//! `acme`: a small host that uses the telemetry toolkit exactly as an app author would.
//!
//! `acme [--no-telemetry] work [--fail]` does its (pretend) work; `acme telemetry <command>`
//! is the mounted telemetry CLI. The exit code never depends on telemetry.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use telemetry_core::Telemetry;

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
    },
    /// See and control acme's telemetry.
    Telemetry(telemetry_cli::TelemetryArgs),
}

fn main() -> ExitCode {
    let cli = Acme::parse();
    let builder = Telemetry::builder("acme")
        .app_version(env!("CARGO_PKG_VERSION"))
        .no_telemetry_flag(cli.no_telemetry);
    match cli.command {
        Command::Telemetry(args) => ExitCode::from(telemetry_cli::run_with_stdio(&builder, &args)),
        Command::Work { fail } => {
            let _telemetry = builder.build();
            println!("acme: working");
            if fail {
                eprintln!("acme: failed as asked");
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
