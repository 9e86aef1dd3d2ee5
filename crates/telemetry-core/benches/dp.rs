//! Criterion benchmarks for the DP samplers (filled in next).
fn main() {}
