//! Estimators against simulated populations (fixed seeds). For each mechanism:
//! one population of n = 10,000: the estimate is within 3 standard errors of the truth;
//! 400 replicate populations: the empirical SD of the estimates is within 10% of the formula.
//!
//! Run with `--nocapture` to see the measured figures quoted in docs/telemetry/v1/SPEC.md.
// Std's float functions are fine here: a test is not a host (clippy.toml says why they are not
// in the library).
#![allow(clippy::disallowed_methods)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use telemetry_schema::{
    Estimate, discrete_laplace_noise_variance, estimate_discrete_laplace_mean,
    estimate_k_rr_frequencies, estimate_one_bit_mean, estimate_rr_proportion, k_rr_probabilities,
    rr_probabilities,
};

const N: u64 = 10_000;
const REPLICATES: usize = 400;

fn sd(xs: &[f64]) -> f64 {
    let m = xs.iter().sum::<f64>() / xs.len() as f64;
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

fn check(name: &str, truth: f64, first: Estimate, replicate_values: &[f64], formula_se: f64) {
    let z = (first.value - truth) / first.standard_error;
    let empirical = sd(replicate_values);
    let ratio = empirical / formula_se;
    println!(
        "{name}: truth {truth:.4}, estimate {:.4} ± {:.4} (z = {z:+.2}); formula SE {formula_se:.5}, empirical SE {empirical:.5} (ratio {ratio:.3})",
        first.value, first.standard_error
    );
    assert!(
        z.abs() < 3.0,
        "{name}: estimate {} not within 3 SE of {truth}",
        first.value
    );
    assert!(
        (ratio - 1.0).abs() < 0.10,
        "{name}: empirical SE {empirical} vs formula {formula_se}"
    );
    assert!(
        (first.standard_error / formula_se - 1.0).abs() < 0.10,
        "{name}: plug-in SE off"
    );
}

fn rr_report(rng: &mut StdRng, truth: bool, p: f64) -> bool {
    if rng.random_bool(p) { truth } else { !truth }
}

#[test]
fn randomized_response_proportion() {
    let epsilon = 3f64.ln();
    let (p, q) = rr_probabilities(epsilon);
    let pi = 0.30;
    let mut rng = StdRng::seed_from_u64(0x5eed_0001);
    let mut run = || {
        let ones = (0..N).filter(|_| {
            let truth = rng.random_bool(pi);
            rr_report(&mut rng, truth, p)
        });
        estimate_rr_proportion(ones.count() as u64, N, epsilon).unwrap()
    };
    let first = run();
    let values: Vec<f64> = (0..REPLICATES).map(|_| run().value).collect();
    let y = q + pi * (p - q);
    let formula = (y * (1.0 - y) / N as f64).sqrt() / (p - q);
    check("RR ε=ln3 π=0.30", pi, first, &values, formula);
    // The headline figure: at π = 0.5 the SE is 1.0 point (0.5 without privacy).
    let half = estimate_rr_proportion(N / 2, N, epsilon).unwrap();
    assert!((half.standard_error - 0.010).abs() < 1e-9);
}

#[test]
fn k_ary_randomized_response_frequencies() {
    let epsilon = 1.0;
    let truth = [0.5, 0.3, 0.15, 0.05];
    let k = truth.len();
    let (p, q) = k_rr_probabilities(epsilon, k);
    let mut rng = StdRng::seed_from_u64(0x5eed_0002);
    let mut run = || {
        let mut counts = vec![0u64; k];
        for _ in 0..N {
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let v = truth.iter().position(|t| {
                acc += t;
                u < acc
            });
            let v = v.unwrap_or(k - 1);
            let reported = if rng.random_bool(p - q) {
                v // keep with prob (p - q), otherwise uniform over all k (overall: p for v, q for others)
            } else {
                rng.random_range(0..k)
            };
            counts[reported] += 1;
        }
        estimate_k_rr_frequencies(&counts, epsilon).unwrap()
    };
    let first = run();
    let reps: Vec<Vec<Estimate>> = (0..REPLICATES).map(|_| run()).collect();
    for (i, &t) in truth.iter().enumerate() {
        let y = q + t * (p - q);
        let formula = (y * (1.0 - y) / N as f64).sqrt() / (p - q);
        let values: Vec<f64> = reps.iter().map(|r| r[i].value).collect();
        check(
            &format!("k-RR ε=1 k=4 value {i} (f={t})"),
            t,
            first[i],
            &values,
            formula,
        );
    }
}

/// Two-sided geometric noise P(z) ∝ α^|z| as the difference of two geometrics (test-only sampler;
/// the core uses the exact CKS sampler).
fn discrete_laplace(rng: &mut StdRng, alpha: f64) -> i64 {
    let mut geometric = || {
        let u: f64 = rng.random::<f64>();
        ((1.0 - u).ln() / alpha.ln()).floor() as i64
    };
    geometric() - geometric()
}

#[test]
fn discrete_laplace_mean() {
    let (epsilon, min, max) = (1.0, 0i64, 20i64);
    let sensitivity = (max - min) as u64;
    let alpha = (-epsilon / sensitivity as f64).exp();
    // True values: uniform on 0..=10 (mean 5, variance 10).
    let (mean, var) = (5.0, 10.0);
    let mut rng = StdRng::seed_from_u64(0x5eed_0003);
    let mut run = || {
        let reports: Vec<i64> = (0..N)
            .map(|_| {
                rng.random_range(0..=10i64).clamp(min, max) + discrete_laplace(&mut rng, alpha)
            })
            .collect();
        estimate_discrete_laplace_mean(&reports).unwrap()
    };
    let first = run();
    let values: Vec<f64> = (0..REPLICATES).map(|_| run().value).collect();
    let formula = ((var + discrete_laplace_noise_variance(epsilon, sensitivity)) / N as f64).sqrt();
    check(
        "discrete Laplace ε=1 [0,20] mean",
        mean,
        first,
        &values,
        formula,
    );
}

#[test]
fn one_bit_mean() {
    let (epsilon, min, max) = (1.0, 0i64, 100i64);
    let (p, q) = rr_probabilities(epsilon);
    // True values: uniform on 0..=60 (mean 30).
    let mean = 30.0;
    let mut rng = StdRng::seed_from_u64(0x5eed_0004);
    let mut run = || {
        let ones = (0..N)
            .filter(|_| {
                let x = rng.random_range(0..=60i64);
                let prob = q + (x - min) as f64 / (max - min) as f64 * (p - q);
                rng.random_bool(prob)
            })
            .count() as u64;
        estimate_one_bit_mean(ones, N, epsilon, min, max).unwrap()
    };
    let first = run();
    let values: Vec<f64> = (0..REPLICATES).map(|_| run().value).collect();
    let y = q + (mean - min as f64) / (max - min) as f64 * (p - q);
    let formula = (max - min) as f64 * (y * (1.0 - y) / N as f64).sqrt() / (p - q);
    check("1BitMean ε=1 [0,100] mean", mean, first, &values, formula);
}
