//! Statistical tests of the mechanisms: exact output distributions, empirical privacy loss between
//! neighbouring inputs (≤ ε within sampling error), identical support, and negative controls that prove the
//! loss check can fail.
// Std's float functions are fine here: a test is not a host (clippy.toml says why they are not
// in the library).
#![allow(clippy::disallowed_methods)]

#[path = "dp_stats.rs"]
mod dp_stats;

use std::time::Duration;

use dp_stats::{Z, assert_chi2, assert_privacy_loss, binomial_z, violates_privacy_loss};
use rand::SeedableRng as _;
use rand::rngs::SmallRng;
use telemetry_core::dp::mechanism::{
    BoundedInteger, BucketedDuration, DurationBuckets, KaryRandomizedResponse, MAX_DOMAIN,
    RandomizedResponse,
};
use telemetry_core::dp::{DpErrorKind, Epsilon};

const N: usize = 200_000;

fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}

fn ln3() -> Epsilon {
    Epsilon::from_f64(3f64.ln()).unwrap()
}

#[test]
fn rr_reports_truth_with_p() {
    for (i, eps) in [0.1, 3f64.ln(), 1.0, 2.5, 6.0].into_iter().enumerate() {
        let e = Epsilon::from_f64(eps).unwrap();
        let rr = RandomizedResponse::new(e);
        let p = 1.0 / (1.0 + (-e.as_f64()).exp());
        assert!((rr.truth_probability() - p).abs() < 1e-15);
        let mut r = rng(500 + i as u64);
        let truthful = (0..N).filter(|_| rr.randomize(true, &mut r)).count() as u64;
        let z = binomial_z(truthful, N as u64, p);
        assert!(
            z.abs() < Z,
            "RR eps {eps}: {truthful}/{N} truthful vs p = {p:.5}, z = {z:.2}"
        );
    }
}

#[test]
fn rr_privacy_loss_is_epsilon() {
    let e = ln3();
    let rr = RandomizedResponse::new(e);
    let mut r = rng(510);
    let a: Vec<bool> = (0..N).map(|_| rr.randomize(true, &mut r)).collect();
    let b: Vec<bool> = (0..N).map(|_| rr.randomize(false, &mut r)).collect();
    let loss = assert_privacy_loss("RR", &a, &b, e.as_f64());
    // RR is tight: the loss is ε itself, not less (otherwise the estimator's p would be wrong).
    assert!(
        loss > e.as_f64() - 0.05,
        "RR loss {loss} well below epsilon"
    );
    // Identical support: both outputs occur under both inputs.
    for v in [true, false] {
        assert!(a.contains(&v) && b.contains(&v));
    }
}

#[test]
fn privacy_loss_check_catches_an_overclaimed_epsilon() {
    // Negative control: a mechanism really running at ε = ln 3 + 0.3 but claimed as ln 3 must be flagged.
    let real = RandomizedResponse::new(Epsilon::from_f64(3f64.ln() + 0.3).unwrap());
    let mut r = rng(520);
    let a: Vec<bool> = (0..N).map(|_| real.randomize(true, &mut r)).collect();
    let b: Vec<bool> = (0..N).map(|_| real.randomize(false, &mut r)).collect();
    assert!(violates_privacy_loss(&a, &b, 3f64.ln()));
    // Same for the bounded integer with half the noise it should have.
    let claimed = 1.0;
    let weak = BoundedInteger::new(0, 10, Epsilon::from_f64(2.0 * claimed).unwrap()).unwrap();
    let a: Vec<i64> = (0..N).map(|_| weak.randomize(0, &mut r)).collect();
    let b: Vec<i64> = (0..N).map(|_| weak.randomize(10, &mut r)).collect();
    assert!(violates_privacy_loss(&a, &b, claimed));
}

#[test]
fn krr_distribution_is_exact() {
    for (i, (k, eps)) in [(2u32, 3f64.ln()), (5, 1.0), (7, 0.5), (12, 3.0)]
        .into_iter()
        .enumerate()
    {
        let e = Epsilon::from_f64(eps).unwrap();
        let m = KaryRandomizedResponse::new(k, e).unwrap();
        let ee = e.as_f64().exp();
        let p = ee / (ee + f64::from(k - 1));
        assert!((m.keep_probability() - p).abs() < 1e-12);
        let truth = k / 2;
        let mut counts = vec![0u64; k as usize];
        let mut r = rng(600 + i as u64);
        for _ in 0..N {
            counts[m.randomize(truth, &mut r) as usize] += 1;
        }
        // Exact pmf: p on the truth, (1 − p)/(k − 1) elsewhere. df = k − 1.
        let probs: Vec<f64> = (0..k)
            .map(|y| {
                if y == truth {
                    p
                } else {
                    (1.0 - p) / f64::from(k - 1)
                }
            })
            .collect();
        assert_chi2(&format!("k-RR k={k} eps={eps}"), &counts, &probs);
    }
}

#[test]
fn krr_privacy_loss_and_support() {
    let e = Epsilon::from_f64(1.2).unwrap();
    let k = 5;
    let m = KaryRandomizedResponse::new(k, e).unwrap();
    let mut r = rng(610);
    let outputs =
        |x: u32, r: &mut SmallRng| -> Vec<u32> { (0..N).map(|_| m.randomize(x, r)).collect() };
    let a = outputs(0, &mut r);
    let b = outputs(3, &mut r);
    let ood = outputs(99, &mut r);
    let loss = assert_privacy_loss("k-RR 0 vs 3", &a, &b, e.as_f64());
    assert!(loss > e.as_f64() - 0.05, "k-RR loss {loss} should be tight");
    assert_privacy_loss("k-RR 0 vs out-of-domain", &a, &ood, e.as_f64());
    assert_privacy_loss("k-RR 3 vs out-of-domain", &b, &ood, e.as_f64());
    // Identical support {0..k} for every input, in-domain or not; nothing outside it.
    for sample in [&a, &b, &ood] {
        let mut seen: Vec<u32> = sample.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, (0..k).collect::<Vec<_>>());
    }
    // Out-of-domain answers are uniform (df = 4, critical value 33.38).
    let mut counts = vec![0u64; k as usize];
    for y in ood {
        counts[y as usize] += 1;
    }
    assert_chi2("k-RR out-of-domain", &counts, &[0.2; 5]);
}

#[test]
fn krr_edge_cases() {
    let e = ln3();
    assert_eq!(
        KaryRandomizedResponse::new(0, e).unwrap_err().kind(),
        DpErrorKind::EmptyDomain
    );
    assert_eq!(
        KaryRandomizedResponse::new(MAX_DOMAIN + 1, e)
            .unwrap_err()
            .kind(),
        DpErrorKind::DomainTooLarge
    );
    let one = KaryRandomizedResponse::new(1, e).unwrap();
    let mut r = rng(620);
    for x in [0, 1, u32::MAX] {
        assert_eq!(one.randomize(x, &mut r), 0);
    }
    // The largest domain with a large ε still terminates and stays in range.
    let big =
        KaryRandomizedResponse::new(MAX_DOMAIN, Epsilon::from_f64(Epsilon::MAX).unwrap()).unwrap();
    for x in [0, 1, MAX_DOMAIN - 1, MAX_DOMAIN, u32::MAX] {
        assert!(big.randomize(x, &mut r) < MAX_DOMAIN);
    }
}

#[test]
fn bounded_integer_privacy_loss_and_support() {
    let e = Epsilon::from_f64(1.0).unwrap();
    let m = BoundedInteger::new(0, 10, e).unwrap();
    assert_eq!(m.scale(), Some((10, 1)));
    let mut r = rng(700);
    let a: Vec<i64> = (0..N).map(|_| m.randomize(0, &mut r)).collect();
    let b: Vec<i64> = (0..N).map(|_| m.randomize(10, &mut r)).collect();
    let loss = assert_privacy_loss("bounded integer 0 vs 10", &a, &b, e.as_f64());
    // Outside [0, 10] the ratio is exactly e^ε: the bound is attained.
    assert!(
        loss > e.as_f64() - 0.1,
        "bounded-integer loss {loss} should reach about epsilon"
    );
    // Support: every integer in a window around the range is reachable from both extremes.
    for y in -15..=25 {
        assert!(
            a.contains(&y) && b.contains(&y),
            "output {y} not seen for both inputs"
        );
    }
}

#[test]
fn bounded_integer_clamps_then_adds_unbiased_noise() {
    let e = Epsilon::from_f64(2.0).unwrap();
    let m = BoundedInteger::new(-5, 5, e).unwrap();
    assert_eq!((m.clamp(-100), m.clamp(3), m.clamp(i64::MAX)), (-5, 3, 5));
    let mut r = rng(710);
    // Scale 10/2 = 5: Var = 2r/(1−r)² with r = e^{-1/5}.
    let rr = (-0.2f64).exp();
    let sd = (2.0 * rr / (1.0 - rr).powi(2)).sqrt();
    for (input, effective) in [(1_000, 5), (-1_000, -5), (2, 2)] {
        let mean = (0..N)
            .map(|_| m.randomize(input, &mut r) as f64)
            .sum::<f64>()
            / N as f64;
        let z = (mean - effective as f64) / (sd / (N as f64).sqrt());
        assert!(
            z.abs() < Z,
            "input {input}: mean {mean:.3} vs {effective}, z = {z:.2}"
        );
    }
    // Degenerate range: no noise, no error.
    let point = BoundedInteger::new(7, 7, e).unwrap();
    assert_eq!(point.scale(), None);
    assert_eq!(point.randomize(-3, &mut r), 7);
    // Extreme ranges saturate instead of overflowing.
    assert_eq!(
        BoundedInteger::new(1, 0, e).unwrap_err().kind(),
        DpErrorKind::InvalidRange
    );
    // Full i64 range: fits with ε = 2/1 (scale (2^64 − 1)/2), overflows with ε = 1.1 (denominator 2^20).
    let full = BoundedInteger::new(i64::MIN, i64::MAX, e).unwrap();
    let _ = full.randomize(0, &mut r);
    let fine = Epsilon::from_f64(1.1).unwrap();
    assert_eq!(
        BoundedInteger::new(i64::MIN, i64::MAX, fine)
            .unwrap_err()
            .kind(),
        DpErrorKind::ScaleOverflow
    );
    let wide = BoundedInteger::new(i64::MAX - 1000, i64::MAX, e).unwrap();
    for _ in 0..1000 {
        let _ = wide.randomize(i64::MAX, &mut r);
    }
}

#[test]
fn durations_bucket_then_noise() {
    let b = DurationBuckets::new(vec![10, 100, 1_000]).unwrap();
    let ms = Duration::from_millis;
    assert_eq!(
        [
            b.bucket(ms(0)),
            b.bucket(ms(10)),
            b.bucket(ms(11)),
            b.bucket(ms(1_000)),
            b.bucket(ms(1_001))
        ],
        [0, 0, 1, 2, 3]
    );
    assert_eq!(b.bucket(Duration::MAX), 3);
    assert_eq!(
        DurationBuckets::new(vec![]).unwrap_err().kind(),
        DpErrorKind::EmptyDomain
    );
    assert_eq!(
        DurationBuckets::new(vec![5, 5]).unwrap_err().kind(),
        DpErrorKind::InvalidRange
    );
    assert_eq!(
        DurationBuckets::new(vec![5, 4]).unwrap_err().kind(),
        DpErrorKind::InvalidRange
    );

    let e = Epsilon::from_f64(1.0).unwrap();
    let m = BucketedDuration::new(b, e).unwrap();
    assert_eq!(
        (m.inner().min(), m.inner().max(), m.inner().scale()),
        (0, 3, Some((3, 1)))
    );
    let mut r = rng(800);
    let a: Vec<i64> = (0..N).map(|_| m.randomize(ms(1), &mut r)).collect();
    let c: Vec<i64> = (0..N)
        .map(|_| m.randomize(Duration::from_secs(3600), &mut r))
        .collect();
    assert_privacy_loss("duration 1ms vs 1h", &a, &c, e.as_f64());
    let d = BucketedDuration::new(DurationBuckets::default_log_scale(), e).unwrap();
    assert_eq!(d.buckets().upper_bounds_ms().len(), 7);
}
