//! # telemetry-core: what stays on the machine
//!
//! Consent, hard overrides, configuration, the secure local store, and (as they land)
//! typed events, redaction, local differential privacy and the privacy ledger.
//!
//! **Invariant: this crate has no network code and no network dependency.** It never opens
//! a socket, resolves a name or links an HTTP client; `cargo xtask audit` proves it. Payloads
//! leave the machine only through `telemetry-transport`, which is not part of a default build.
//!
//! ## Quick start
//!
//! ```
//! use telemetry_core::{Telemetry, event::Event};
//!
//! /// The `build` command ran.
//! #[derive(Event)]
//! struct BuildRun {
//!     /// Whether it used the cache.
//!     #[telemetry(epsilon = 1.0)] // each randomised field names its privacy budget
//!     cached: bool,
//! }
//! # let dir = tempfile::tempdir()?;
//! # let env = telemetry_core::Env::from_pairs([("HOME", dir.path())]);
//! let telemetry = Telemetry::builder("acme").event::<BuildRun>()
//! #   .env(env)
//!     .build(); // decides once: off until the user consents, and every off-switch wins
//! telemetry.record(&BuildRun { cached: true }); // randomised when on, else a no-op
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Mount `telemetry-cli`'s subcommand so users can run `acme telemetry status|enable|show`.
//!
//! ## Zero telemetry by default
//!
//! A fresh install records nothing and writes nothing. Telemetry is on only when every one
//! of these holds (DESIGN §4), checked in this order, each recorded with its source in the
//! [`Decision`]:
//!
//! 1. no hard override: `DO_NOT_TRACK`, `<APP>_TELEMETRY` with a disabling or unknown value,
//!    `<APP>_TELEMETRY_DISABLED` truthy, `<APP>_TELEMETRY_ENABLED` falsy, a CI environment;
//! 2. not disabled for this invocation (`--no-telemetry`, [`Builder::disabled`]);
//! 3. not disabled in `config.toml` (`telemetry.enabled = false`), and the config is readable;
//! 4. consent: a valid token for the app's consent version (opt-in, the default), or, for an
//!    opt-out beta, the first-run notice was shown in an earlier run.
//!
//! Any doubt (unreadable config, a token with loose permissions, an unknown env value)
//! means disabled, with a [`Warning`] naming the file or variable. So does a platform where
//! the toolkit cannot keep its files private yet (every target but Unix; see [`platform`]):
//! it builds there, and telemetry stays off.
//!
//! ```
//! use telemetry_core::{Env, Telemetry};
//!
//! let dir = tempfile::tempdir()?;
//! let env = Env::from_pairs([("HOME", dir.path().as_os_str())]);
//! let telemetry = Telemetry::builder("acme").app_version("1.2.3").env(env.clone()).build();
//! assert!(!telemetry.is_enabled()); // opt-in: nothing without consent
//! assert_eq!(std::fs::read_dir(dir.path())?.count(), 0); // and nothing written
//!
//! telemetry.enable()?; // what `acme telemetry enable` does
//! let telemetry = Telemetry::builder("acme").env(env.clone()).build();
//! assert!(telemetry.is_enabled());
//!
//! // A hard override beats consent.
//! let mut vars: Vec<(std::ffi::OsString, std::ffi::OsString)> =
//!     env.iter().map(|(k, v)| (k.into(), v.into())).collect();
//! vars.push(("DO_NOT_TRACK".into(), "1".into()));
//! let telemetry = Telemetry::builder("acme").env(Env::from_pairs(vars)).build();
//! assert!(!telemetry.is_enabled());
//! assert_eq!(telemetry.decision().deciding_input().unwrap().name, "DO_NOT_TRACK");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Declaring events
//!
//! An event is a struct; its fields' Rust types decide their kinds, its doc comments are what
//! `telemetry catalog` shows people before they consent, and every randomised field names its ε.
//! `#[derive(Event)]` and `#[derive(Label)]` (feature `derive`, on by default) write the
//! [`event::Event`] and [`event::Label`] impls; see [`event`] for the hand-written form.
//!
//! ```
//! use telemetry_core::event::{Event, Label};
//!
//! /// Which command ran.
//! #[derive(Clone, Copy, Label)]
//! enum Command { Build, Test }
//!
//! /// A command ran.
//! #[derive(Event)]
//! struct CommandRun {
//!     /// Which command.
//!     #[telemetry(epsilon = 1.0)]
//!     command: Command,
//!     /// How many targets it built.
//!     #[telemetry(range = 0..=100, epsilon = 0.5)]
//!     targets: u32,
//! }
//!
//! let builder = telemetry_core::Telemetry::builder("acme").disabled().event::<CommandRun>();
//! let telemetry = builder.build();
//! telemetry.record(&CommandRun { command: Command::Test, targets: 3 }); // disabled: a no-op
//! assert_eq!(telemetry.catalog()?.events[1].name.as_str(), "command_run");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod app;
pub mod budget;
pub mod config;
pub mod consent;
pub mod decision;
pub mod dp;
pub mod env;
pub mod event;
pub mod inspect;
mod manage;
pub mod paths;
mod payload_index;
pub mod platform;
mod recorder;
pub mod redact;
pub mod store;
mod telemetry;
// Named pipes and file times of the Unix store: its tests are Unix-only too.
#[cfg(all(test, unix))]
mod test_support;
pub mod time;
pub mod warning;

pub use app::AppName;
pub use decision::{Decision, Effect, Input, Source, Stage};
pub use env::Env;
/// The [`event::Event`] and [`event::Label`] traits, with their derives (feature `derive`).
pub use event::{Event, Label};
pub use inspect::{
    PayloadCheck, PayloadKind, PayloadSummary, PurgeOutcome, PurgePlan, Sendability, Verification,
    VerifyError,
};
pub use manage::{DisableOutcome, EnableError, EnableOutcome};
pub use paths::Paths;
pub use recorder::{Limits, MAX_LEDGER_KEYS, MAX_REPORTS_PER_EVENT, RecordError};
pub use telemetry::{Builder, NoticeMode, ReleasePolicy, StatusReport, Telemetry, notice_text};
pub use warning::Warning;
