//! Statistical tests of the exact samplers against their exact distributions (fixed seeds; thresholds at a
//! ~1e-6 false-failure rate per assertion, see `dp_stats.rs`).
// Std's float functions are fine here: a test is not a host (clippy.toml says why they are not
// in the library).
#![allow(clippy::disallowed_methods)]

#[path = "dp_stats.rs"]
mod dp_stats;

use dp_stats::{Z, assert_chi2, bin_counts, binomial_z, discrete_laplace_pmf, integer_bins};
use rand::SeedableRng as _;
use rand::rngs::SmallRng;
use telemetry_core::dp::sampler::{
    BernoulliExpNeg, DiscreteLaplace, bernoulli, bernoulli_exp_neg, discrete_laplace, uniform_below,
};

fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}

#[test]
fn uniform_below_is_uniform() {
    // df = n − 1: 6 and 9 (critical values 38.26 and 44.81 at 1e-6).
    for (seed, n) in [(11, 7u64), (12, 10)] {
        let mut r = rng(seed);
        let mut counts = vec![0u64; n as usize];
        for _ in 0..350_000 {
            counts[uniform_below(&mut r, n).unwrap() as usize] += 1;
        }
        assert_chi2(
            &format!("uniform_below({n})"),
            &counts,
            &vec![1.0 / n as f64; n as usize],
        );
    }
    // A range just above 2^63: rejection is frequent (P ≈ 1/2) — the top half must still be hit half the time.
    let mut r = rng(13);
    let n = (1u64 << 63) + 12_345;
    let top = (0..100_000)
        .filter(|_| uniform_below(&mut r, n).unwrap() >= n / 2)
        .count() as u64;
    assert!(binomial_z(top, 100_000, 0.5).abs() < Z);
}

#[test]
fn bernoulli_matches_its_probability() {
    for (seed, num, den) in [
        (21, 1u64, 3u64),
        (22, 2, 7),
        (23, 999, 1000),
        (24, 1, 1 << 40),
        (25, 0, 5),
        (26, 5, 5),
    ] {
        let mut r = rng(seed);
        let n = 200_000;
        let hits = (0..n)
            .filter(|_| bernoulli(&mut r, num, den).unwrap())
            .count() as u64;
        let p = num as f64 / den as f64;
        if p == 0.0 || p == 1.0 {
            assert_eq!(hits, (p * n as f64) as u64);
        } else if p * (n as f64) > 20.0 {
            let z = binomial_z(hits, n, p);
            assert!(
                z.abs() < Z,
                "Bernoulli({num}/{den}): {hits}/{n}, z = {z:.2}"
            );
        } else {
            assert!(hits <= 3, "Bernoulli({num}/{den}) fired {hits} times");
        }
    }
}

#[test]
fn bernoulli_exp_neg_frequency_matches_exp() {
    // γ in [0,1] (series branch), exactly 1, and γ > 1 (repeated Bernoulli(e^-1) then the fraction).
    let gammas = [
        (0u64, 1u64),
        (1, 10),
        (1, 2),
        (9, 10),
        (1, 1),
        (3, 2),
        (2, 1),
        (7, 3),
        (5, 1),
        (31, 10),
    ];
    for (i, (num, den)) in gammas.into_iter().enumerate() {
        let mut r = rng(100 + i as u64);
        let sampler = BernoulliExpNeg::new(num, den).unwrap();
        let n = 300_000;
        let hits = (0..n).filter(|_| sampler.sample(&mut r)).count() as u64;
        let p = (-(num as f64) / den as f64).exp();
        if num == 0 {
            assert_eq!(hits, n);
            continue;
        }
        let z = binomial_z(hits, n, p);
        assert!(
            z.abs() < Z,
            "Bernoulli(exp(-{num}/{den})): {hits}/{n} vs {p:.5}, z = {z:.2}"
        );
    }
    // The free function agrees with the struct (same stream, same answers).
    let (mut a, mut b) = (rng(7), rng(7));
    let s = BernoulliExpNeg::new(7, 3).unwrap();
    for _ in 0..1000 {
        assert_eq!(bernoulli_exp_neg(&mut a, 7, 3).unwrap(), s.sample(&mut b));
    }
}

/// Scales exercised: integer, small, fractional (< 1), large, and the (max-min)/ε shape with ε = ln 3 ≈
/// 1151917/2^20 that the bounded-integer mechanism produces.
const SCALES: [(u64, u64); 5] = [(1, 1), (3, 1), (1, 3), (5, 2), (10 * (1 << 20), 1_151_917)];

#[test]
fn discrete_laplace_fits_exact_pmf() {
    let n = 200_000u64;
    for (i, (t, s)) in SCALES.into_iter().enumerate() {
        let b = t as f64 / s as f64;
        let mut r = rng(200 + i as u64);
        let sampler = DiscreteLaplace::new(t, s).unwrap();
        let samples: Vec<i64> = (0..n).map(|_| sampler.sample(&mut r)).collect();
        // Bins: every integer in [−h, h] plus two tails, h as wide as keeps each expected count ≥ 5 (≤ 40).
        let pmf = |x: i64| discrete_laplace_pmf(x, b);
        let (lo, hi, probs) = integer_bins(&pmf, 0, n, 40);
        let counts = bin_counts(&samples, lo, hi);
        assert_chi2(
            &format!("discrete Laplace scale {t}/{s} (df {})", probs.len() - 1),
            &counts,
            &probs,
        );
    }
}

#[test]
fn discrete_laplace_is_symmetric_with_the_right_moments() {
    let n = 400_000u64;
    for (i, (t, s)) in SCALES.into_iter().enumerate() {
        let b = t as f64 / s as f64;
        let mut r = rng(300 + i as u64);
        let samples: Vec<i64> = (0..n)
            .map(|_| discrete_laplace(&mut r, t, s).unwrap())
            .collect();

        // Symmetry: among non-zero samples, positives ~ Binomial(m, 1/2).
        let pos = samples.iter().filter(|&&x| x > 0).count() as u64;
        let neg = samples.iter().filter(|&&x| x < 0).count() as u64;
        let z = binomial_z(pos, pos + neg, 0.5);
        assert!(
            z.abs() < Z,
            "scale {b}: {pos} positive vs {neg} negative, z = {z:.2}"
        );

        // Exact moments: Var = 2r/(1−r)², E[X⁴] from the pmf by summation.
        let rr = (-1.0 / b).exp();
        let var = 2.0 * rr / (1.0 - rr).powi(2);
        let m4: f64 = (-20_000i64..=20_000)
            .map(|x| (x as f64).powi(4) * discrete_laplace_pmf(x, b))
            .sum();
        let nf = n as f64;
        let mean = samples.iter().map(|&x| x as f64).sum::<f64>() / nf;
        let z_mean = mean / (var / nf).sqrt();
        assert!(
            z_mean.abs() < Z,
            "scale {b}: mean {mean:.4}, z = {z_mean:.2}"
        );
        let sample_var = samples
            .iter()
            .map(|&x| (x as f64 - mean).powi(2))
            .sum::<f64>()
            / (nf - 1.0);
        let se_var = ((m4 - var * var) / nf).sqrt();
        let z_var = (sample_var - var) / se_var;
        assert!(
            z_var.abs() < Z,
            "scale {b}: variance {sample_var:.4} vs {var:.4}, z = {z_var:.2}"
        );
    }
}

#[test]
fn a_wrong_scale_is_detected() {
    // Negative control: samples of scale 3 must fail the χ² test against scale 2.5 — proves the test has power.
    let n = 200_000u64;
    let mut r = rng(400);
    let sampler = DiscreteLaplace::new(3, 1).unwrap();
    let samples: Vec<i64> = (0..n).map(|_| sampler.sample(&mut r)).collect();
    let pmf = |x: i64| discrete_laplace_pmf(x, 2.5);
    let (lo, hi, probs) = integer_bins(&pmf, 0, n, 40);
    let (_, _, p) = dp_stats::chi2_gof(&bin_counts(&samples, lo, hi), &probs);
    assert!(
        p < dp_stats::ALPHA,
        "a scale-3 sampler passed as scale 2.5 (p = {p})"
    );
}

#[test]
fn same_seed_same_stream() {
    // Determinism is what memoisation relies on: the samplers are pure functions of the random stream.
    let (mut a, mut b) = (rng(9), rng(9));
    for _ in 0..10_000 {
        assert_eq!(
            discrete_laplace(&mut a, 7, 2).unwrap(),
            discrete_laplace(&mut b, 7, 2).unwrap()
        );
    }
}
