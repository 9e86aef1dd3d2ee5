//! How payloads leave the machine (only when built with it): upload of pending payloads to an
//! operator-supplied endpoint. Reached only through the `upload` feature of `telemetry-cli`, which is
//! off by default.
//!
//! Invariant: the only crate in the workspace that may open sockets, and absent from default builds
//! (`cargo xtask audit`, rules 1, 2 and 4).

#![forbid(unsafe_code)]
