//! Project automation for the telemetry toolkit.
//!
//! - `cargo xtask codegen [--check]` writes (or checks) the committed JSON Schemas.
//! - `cargo xtask audit [--json]` proves the crate split: no network in default builds.
//! - `cargo xtask ci` runs everything CI runs.
//! - `cargo xtask bench-cli` times `telemetry status`/`show`/`verify-payload` as whole processes
//!   against a hello-world binary (not part of `ci`: a measurement, not a test).
//! - `cargo xtask bench-collector` measures the collector as whole processes: ingest throughput
//!   and latency over loopback, `report` over a large store, `report` against `telemetry
//!   aggregate` on the same payloads (not part of `ci` either).
//!
//! Invariant: xtask is never a dependency of a shipped crate; it may do anything a developer may do.

mod audit;
mod bench;
mod bench_collector;
mod bench_footprint;
mod bench_host;
mod ci;
mod codegen;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("codegen") => codegen::run(&args[1..]),
        Some("audit") => audit::run(&args[1..]),
        Some("ci") => ci::run(&args[1..]),
        Some("bench-cli") => bench::run(&args[1..]),
        Some("bench-collector") => bench_collector::run(&args[1..]),
        Some("bench-footprint") => bench_footprint::run(&args[1..]),
        Some("bench-host") => bench_host::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <codegen [--check] | audit [--json] | ci | bench-cli [--iterations N] [--payloads N] | bench-collector [--payloads N] [--connections C] [--stored N] [--compare N] [--quick]>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
