//! # telemetry-cli: how a person sees and controls telemetry
//!
//! The `telemetry` binary (`telemetry --app NAME <command>`) and the same commands as a clap
//! subcommand that a host mounts as `<host> telemetry <command>`. Both forms share one
//! implementation, [`run`]. The CLI only formats: every fact it prints is computed by
//! `telemetry-core` or `telemetry-schema`.
//!
//! **Invariant: no network in a default build.** The `upload` feature (off by default) is
//! the only way `telemetry-transport` enters the build; `cargo xtask audit` proves it.
//! Read commands (`status`, `config get|list`) never create files.
//!
//! ## Mounting in a host
//!
//! ```
//! use clap::{Parser, Subcommand};
//! use telemetry_core::Telemetry;
//!
//! #[derive(Parser)]
//! struct Acme {
//!     /// Turn telemetry off for this run.
//!     #[arg(long, global = true)]
//!     no_telemetry: bool,
//!     #[command(subcommand)]
//!     command: Command,
//! }
//!
//! #[derive(Subcommand)]
//! enum Command {
//!     /// See and control telemetry.
//!     Telemetry(telemetry_cli::TelemetryArgs),
//! }
//!
//! let cli = Acme::parse_from(["acme", "telemetry", "status", "--json"]);
//! let builder = Telemetry::builder("acme").no_telemetry_flag(cli.no_telemetry);
//! let Command::Telemetry(args) = cli.command;
//! # let dir = tempfile::tempdir().unwrap();
//! # let builder = builder.env(telemetry_core::Env::from_pairs([("HOME", dir.path())]));
//! let code = telemetry_cli::run_with_stdio(&builder, &args);
//! assert_eq!(code, telemetry_cli::exit::OK);
//! ```
//!
//! ## Features
//!
//! - `schema-check` (default): `verify-payload` and `aggregate` also check the JSON Schema of
//!   the version a payload declares. A host can leave it out (`default-features = false`) to
//!   save the validator's ~6 MB; they then check by the typed decoder
//!   ([`telemetry_core::PayloadCheck::TypesOnly`]), which refuses the same documents, and say so.
//! - `upload`: `telemetry upload`, the only network code.
#![forbid(unsafe_code)]

mod commands;
mod output;
mod payloads;
#[cfg(feature = "upload")]
mod upload;

#[cfg(feature = "upload")]
pub use commands::UploadArgs;
pub use commands::{
    AggregateArgs, CatalogArgs, Command, ConfigCommand, Deferred, Form, JsonFlag, SchemaArgs,
    TelemetryArgs, VerifyPayloadArgs, YesFlag, run, run_as, run_with_stdio,
};
pub use output::{Io, Painted, with_stdio};

/// Exit statuses of every command, documented in `docs/telemetry/v1/SPEC.md`.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// An error (I/O, unreadable state, declined prompt).
    pub const ERROR: u8 = 1;
    /// Bad usage: unknown command, key or value.
    pub const USAGE: u8 = 2;
    /// Refused by policy: a hard override is active.
    pub const REFUSED: u8 = 3;
}

/// The first line of `status` while nothing is collected (followed by " Verified: see …" when
/// the app names its posture document, `Builder::posture`).
pub const NO_TELEMETRY_LINE: &str =
    "No telemetry. No network calls outside endpoints you pass via flags.";
