//! # telemetry-core: what stays on the machine
//!
//! Consent, hard overrides, configuration, the secure local store, and (as they land)
//! typed events, redaction, local differential privacy and the privacy ledger.
//!
//! **Invariant: this crate has no network code and no network dependency.** It never opens
//! a socket, resolves a name or links an HTTP client; `cargo xtask audit` proves it. Payloads
//! leave the machine only through `telemetry-transport`, which is not part of a default build.
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
//! means disabled, with a [`Warning`] naming the file or variable.
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
#![forbid(unsafe_code)]

pub mod app;
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
mod recorder;
pub mod redact;
pub mod store;
mod telemetry;
pub mod time;
pub mod warning;

pub use app::AppName;
pub use decision::{Decision, Effect, Input, Source, Stage};
pub use env::Env;
pub use inspect::{
    PayloadKind, PayloadSummary, PurgeOutcome, PurgePlan, Sendability, Verification, VerifyError,
};
pub use manage::{DisableOutcome, EnableError, EnableOutcome};
pub use paths::Paths;
pub use recorder::{Limits, RecordError};
pub use telemetry::{Builder, NoticeMode, ReleasePolicy, StatusReport, Telemetry, notice_text};
pub use warning::Warning;
