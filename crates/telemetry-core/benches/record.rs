//! Benchmarks of the recording path (DESIGN §11): disabled `record` ≤ 2 ns, enabled
//! `record` ≤ 250 ns, handle creation (env + config + token) ≤ 150 µs, flush of 1,000
//! events ≤ 2 ms.
//!
//! Run: `cargo bench -p telemetry-core --bench record -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use telemetry_core::event::{Event, FieldDecl, Value};
use telemetry_core::{Env, Telemetry};

struct FeatureUsed {
    flag: bool,
    size: i64,
}

impl Event for FeatureUsed {
    const NAME: &'static str = "feature_used";
    const DESCRIPTION: &'static str = "A feature was used.";
    const FIELDS: &'static [FieldDecl] = &[
        FieldDecl::boolean("flag", "A flag.", 0.5),
        FieldDecl::integer("size", "A size.", 0, 100, 0.5),
    ];
    fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
        out(Value::Bool(self.flag));
        out(Value::Integer(self.size));
    }
}

fn handle(home: &Path, extra: &[(&str, &str)]) -> Telemetry {
    let mut vars = vec![("HOME".to_owned(), home.display().to_string())];
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Telemetry::builder("bench")
        .env(Env::from_pairs(vars))
        .event::<FeatureUsed>()
        .print_warnings(false)
        .build()
}

fn record(c: &mut Criterion) {
    let home = tempfile::tempdir().unwrap();
    let event = FeatureUsed {
        flag: true,
        size: 42,
    };

    let disabled = handle(home.path(), &[]);
    assert!(!disabled.is_enabled());
    c.bench_function("record_disabled", |b| {
        b.iter(|| disabled.record(black_box(&event)))
    });

    handle(home.path(), &[]).enable().unwrap();
    // A run records thousands of events at most: each handle takes up to 10,000 reports
    // and is then dropped without writing, so the buffer never grows to the gigabytes a
    // single handle would reach over criterion's millions of iterations. Handle creation
    // and drop are outside the timed loop.
    fn in_runs(home: &Path, iters: u64, mut report: impl FnMut(&Telemetry, u64)) -> Duration {
        let mut total = Duration::ZERO;
        let mut done = 0;
        while done < iters {
            let t = handle(home, &[]);
            assert!(t.is_enabled());
            let n = (iters - done).min(10_000);
            let start = Instant::now();
            for i in 0..n {
                report(&t, done + i);
            }
            total += start.elapsed();
            t.disable(); // do not write the benchmark's events at drop
            done += n;
        }
        total
    }
    c.bench_function("record_enabled_two_fields", |b| {
        b.iter_custom(|iters| in_runs(home.path(), iters, |t, _| t.record(black_box(&event))))
    });
    // Realistic use: a few hundred distinct values, each randomised once and then served
    // from the answer cache.
    c.bench_function("record_enabled_varied_values", |b| {
        b.iter_custom(|iters| {
            in_runs(home.path(), iters, |t, i| {
                let i = (i % 300) as i64;
                t.record(black_box(&FeatureUsed {
                    flag: i % 2 == 0,
                    size: i % 101,
                }))
            })
        })
    });

    // The first report of a value: computes the memoised answer (HMAC-SHA-256 per field).
    // A fresh handle per batch so that nothing is cached yet.
    c.bench_function("record_enabled_uncached", |b| {
        b.iter_batched(
            || handle(home.path(), &[]),
            |t| {
                t.record(black_box(&event));
                t.disable();
                t
            },
            BatchSize::PerIteration,
        )
    });

    c.bench_function("build_handle_enabled", |b| {
        b.iter(|| {
            let t = Telemetry::builder("bench")
                .env(Env::from_pairs([("HOME", home.path())]))
                .print_warnings(false)
                .recording(false)
                .build();
            black_box(t.is_enabled())
        })
    });

    // A fresh install per iteration and 998 reports of ε = 1 under a cap of 1000, so the
    // ledger drops nothing: all 999 events (998 + component_initialized) are written.
    c.bench_function("flush_1000_events", |b| {
        b.iter_batched(
            || {
                let home = tempfile::tempdir().unwrap();
                handle(home.path(), &[]).enable().unwrap();
                let t = Telemetry::builder("bench")
                    .env(Env::from_pairs([("HOME", home.path())]))
                    .event::<FeatureUsed>()
                    .daily_epsilon_cap(1000.0)
                    .print_warnings(false)
                    .build();
                for i in 0..499 {
                    t.record(&FeatureUsed {
                        flag: i % 2 == 0,
                        size: i % 100,
                    });
                    t.record(&FeatureUsed {
                        flag: i % 3 == 0,
                        size: i % 7,
                    });
                }
                (home, t)
            },
            |(home, t)| {
                black_box(t.flush().unwrap());
                drop(t);
                home
            },
            BatchSize::PerIteration,
        )
    });
}

criterion_group!(benches, record);
criterion_main!(benches);
