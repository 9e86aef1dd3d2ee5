//! `telemetry-collector`: serve, report, prune.
fn main() {}
