//! Benchmarks of the recording path (DESIGN §11, issue #17): disabled `record` ≤ 1 ns;
//! enabled `record` ≤ 25 ns for a memoised event of two fields (`record_enabled_memoised`: the
//! same values again, as a host reports the same command or flag many times a run) — ≥ 4×
//! cheaper than Glean's `counter.add` call site and ≥ 30× than its `event.record`, measured
//! side by side (docs/benchmarks.md); handle creation (env + config + token) ≤ 150 µs. The flush
//! a host pays at exit is `flush_10_events`; its whole-process cost is `cargo xtask bench-host`.
//!
//! Run: `cargo bench -p telemetry-core --bench record -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use telemetry_core::event::Event;
use telemetry_core::{Env, Telemetry};

/// A feature was used.
#[derive(Event)]
struct FeatureUsed {
    /// A flag.
    #[telemetry(epsilon = 0.5)]
    flag: bool,
    /// A size; the range is wide enough for 998 distinct reports in one run.
    #[telemetry(range = 0..=1000, epsilon = 0.5)]
    size: u32,
}

fn handle(home: &Path) -> Telemetry {
    Telemetry::builder("bench")
        .env(Env::from_pairs([("HOME", home)]))
        .event::<FeatureUsed>()
        .print_warnings(false)
        .build()
}

/// Runs `report` `iters` times over handles of at most 10,000 reports each, timing only the
/// reports: a run records thousands of events at most, and one handle over criterion's
/// millions of iterations would measure a state no run reaches (with a per-call buffer, the
/// page faults of gigabytes). Handle creation and drop are outside the timed span; each handle
/// is disabled before its drop, so the benchmark writes no payload.
fn in_runs(home: &Path, iters: u64, mut report: impl FnMut(&Telemetry, u64)) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let t = handle(home);
        assert!(t.is_enabled());
        let n = (iters - done).min(10_000);
        let start = Instant::now();
        for i in 0..n {
            report(&t, done + i);
        }
        total += start.elapsed();
        t.disable();
        done += n;
    }
    total
}

/// A fresh install with consent and a handle holding `n` distinct reports (sizes `0..n`) of
/// ε = 1 under a cap of 1000, so the ledger drops none of them.
fn filled_once(n: u32) -> (tempfile::TempDir, Telemetry) {
    let home = tempfile::tempdir().unwrap();
    handle(home.path()).enable().unwrap();
    let t = Telemetry::builder("bench")
        .env(Env::from_pairs([("HOME", home.path())]))
        .event::<FeatureUsed>()
        .daily_epsilon_cap(1000.0)
        .print_warnings(false)
        .build();
    for size in 0..n {
        t.record(&FeatureUsed {
            flag: size.is_multiple_of(2),
            size,
        });
    }
    (home, t)
}

/// [`filled_once`] with 10 reports, on an install whose answers for them are all different: two
/// reports that drew the same answers are one event in the payload (rare: a new install
/// secret draws new answers), and this flush must write 11 events with component_initialized.
fn filled_10() -> (tempfile::TempDir, Telemetry) {
    for _ in 0..20 {
        let (home, t) = filled_once(10);
        if t.buffered_events() == 11 {
            return (home, t);
        }
        t.disable();
    }
    panic!("20 installs in a row merged some of 10 distinct reports");
}

fn record(c: &mut Criterion) {
    let home = tempfile::tempdir().unwrap();
    let event = FeatureUsed {
        flag: true,
        size: 42,
    };

    let disabled = handle(home.path());
    assert!(!disabled.is_enabled());
    c.bench_function("record_disabled", |b| {
        b.iter(|| disabled.record(black_box(&event)))
    });

    handle(home.path()).enable().unwrap();
    {
        // Memory per event kind, not per call: what one handle holds after many reports of
        // one value (printed, for docs/benchmarks.md).
        let t = handle(home.path());
        for _ in 0..100_000 {
            t.record(&event);
        }
        eprintln!(
            "record: after 100,000 reports of one value, {} event(s) buffered (component_initialized included)",
            t.buffered_events()
        );
        t.disable();
    }

    // The figure compared with Glean's call sites: one event kind, two randomised fields, the
    // same values each time, so every answer is already memoised.
    c.bench_function("record_enabled_memoised", |b| {
        b.iter_custom(|iters| in_runs(home.path(), iters, |t, _| t.record(black_box(&event))))
    });
    // Several values: 50 distinct ones cycling (within the recorder's bound per kind), each
    // randomised once per run and then served from the answer cache.
    c.bench_function("record_enabled_varied_values", |b| {
        b.iter_custom(|iters| {
            in_runs(home.path(), iters, |t, i| {
                let i = (i % 50) as u32;
                t.record(black_box(&FeatureUsed {
                    flag: i.is_multiple_of(2),
                    size: i,
                }))
            })
        })
    });

    // The first report of a value: computes the memoised answers (HMAC-SHA-256 per field).
    // A fresh handle per batch so that nothing is cached yet.
    c.bench_function("record_enabled_uncached", |b| {
        b.iter_batched(
            || handle(home.path()),
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

    // The flush a host pays at exit (`cargo xtask bench-host`'s enabled run): a fresh install
    // per iteration, 10 distinct reports, 11 events written (with component_initialized).
    c.bench_function("flush_10_events", |b| {
        b.iter_batched(
            filled_10,
            |(home, t)| {
                black_box(t.flush().unwrap());
                drop(t);
                home
            },
            BatchSize::PerIteration,
        )
    });

    // A run that reports 998 distinct values of one event kind: the recorder keeps a bounded
    // number of reports per kind, so this is the largest payload one kind can make.
    let (_home, t) = filled_once(998);
    eprintln!(
        "record: 998 distinct reports of one kind buffer {} event(s) (component_initialized included)",
        t.buffered_events()
    );
    t.disable();
    c.bench_function("flush_998_reports_one_kind", |b| {
        b.iter_batched(
            || filled_once(998),
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
