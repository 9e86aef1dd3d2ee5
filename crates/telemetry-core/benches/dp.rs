//! Benchmarks for the DP primitives (DESIGN §11): exact discrete Laplace ≥ 1 M samples/s, and the memoised
//! mechanisms that sit inside an enabled `record` (budget ≤ 250 ns).
//!
//! Run: `cargo bench -p telemetry-core --bench dp -- --warm-up-time 1 --measurement-time 3`.
// Std's float functions are fine here: a test is not a host (clippy.toml says why they are not
// in the library).
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use telemetry_core::dp::Epsilon;
use telemetry_core::dp::mechanism::{
    BoundedInteger, BucketedDuration, DurationBuckets, KaryRandomizedResponse, RandomizedResponse,
};
use telemetry_core::dp::memo::Memoizer;
use telemetry_core::dp::sampler::DiscreteLaplace;
use telemetry_core::redact::{RedactionContext, Redactor};

fn samplers(c: &mut Criterion) {
    let mut g = c.benchmark_group("sampler");
    g.throughput(Throughput::Elements(1));
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let eps = Epsilon::from_f64(3f64.ln()).unwrap();
    // Scale (max − min)/ε for a [0, 10] integer at ε = ln 3 — the shape the mechanism uses.
    let dl = DiscreteLaplace::new(10 * eps.den(), eps.num()).unwrap();
    g.bench_function("discrete_laplace_chacha20", |b| {
        b.iter(|| black_box(dl.sample(&mut rng)))
    });
    let small = DiscreteLaplace::new(1, 1).unwrap();
    g.bench_function("discrete_laplace_scale1_chacha20", |b| {
        b.iter(|| black_box(small.sample(&mut rng)))
    });
    let rr = RandomizedResponse::new(eps);
    g.bench_function("rr_fresh_chacha20", |b| {
        b.iter(|| black_box(rr.randomize(black_box(true), &mut rng)))
    });
    g.finish();
}

fn memoised(c: &mut Criterion) {
    let mut g = c.benchmark_group("memoised");
    g.throughput(Throughput::Elements(1));
    let eps = Epsilon::from_f64(3f64.ln()).unwrap();
    let memo = Memoizer::new(&[42u8; 32]);
    let rr = RandomizedResponse::new(eps);
    let krr = KaryRandomizedResponse::new(8, eps).unwrap();
    let bint = BoundedInteger::new(0, 100, eps).unwrap();
    let dur = BucketedDuration::new(DurationBuckets::default_log_scale(), eps).unwrap();
    g.bench_function("rr", |b| {
        b.iter(|| black_box(memo.randomize("build", "cache_hit", &rr, black_box(true))))
    });
    g.bench_function("krr_k8", |b| {
        b.iter(|| black_box(memo.randomize("build", "profile", &krr, black_box(3))))
    });
    g.bench_function("bounded_integer_0_100", |b| {
        b.iter(|| black_box(memo.randomize("build", "crates", &bint, black_box(37))))
    });
    g.bench_function("duration", |b| {
        b.iter(|| {
            black_box(memo.randomize(
                "build",
                "took",
                &dur,
                black_box(Duration::from_millis(1234)),
            ))
        })
    });
    g.finish();
}

fn redaction(c: &mut Criterion) {
    let redactor = Redactor::new(RedactionContext::from_process());
    let _ = redactor.redact("warm up the compiled rules");
    c.bench_function("redact/error_message", |b| {
        b.iter(|| {
            black_box(redactor.redact(black_box(
                "cannot open /home/alice/.config/app.toml: permission denied",
            )))
        })
    });
}

criterion_group!(benches, samplers, memoised, redaction);
criterion_main!(benches);
