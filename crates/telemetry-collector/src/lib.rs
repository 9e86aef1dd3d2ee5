//! # telemetry-collector: the operator's side
//!
//! Receives what `telemetry upload` sends, checks it, keeps it, and estimates usage with error
//! bars. Invariant: depends on `telemetry-schema` (validation, catalogue checks, estimators) and
//! nothing of the client's recording path; it is never a dependency of `telemetry-core`,
//! `telemetry-cli` or `telemetry-transport` (`cargo xtask audit` checks both). It stores no client
//! address, no header and no time finer than the day, and logs no client address.
#![forbid(unsafe_code)]

pub mod html;
pub mod ingest;
pub mod report;
pub mod server;
pub mod store;
