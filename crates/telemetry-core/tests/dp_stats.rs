//! Statistics helpers shared by the DP tests (included with `#[path = "dp_stats.rs"] mod dp_stats;`), and
//! tests of the helpers themselves against reference values computed with mpmath.
//!
//! Every statistical assertion in the DP tests uses a false-failure probability of about 10⁻⁶ per assertion:
//! χ² tests require a p-value above [`ALPHA`] (critical values for the df used are listed in [`tests`]),
//! and normal-approximation tests require |z| below [`Z`] (two-sided P(|Z| > 5) ≈ 5.7 × 10⁻⁷). The seeds are
//! fixed, so a pass is reproducible; the thresholds are what make a *wrong* sampler fail.
#![allow(dead_code, missing_docs)]
// Std's float functions are fine here: a test is not a host (clippy.toml says why they are not
// in the library).
#![allow(clippy::disallowed_methods)]

/// Per-assertion false-failure rate for χ² tests.
pub const ALPHA: f64 = 1e-6;
/// |z| threshold for normal-approximation tests (two-sided ≈ 5.7e-7).
pub const Z: f64 = 5.0;

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; relative error < 1e-13 in our range).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised upper incomplete gamma Q(a, x) (Numerical Recipes: series below a + 1, Lentz continued
/// fraction above).
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let gln = ln_gamma(a);
    if x < a + 1.0 {
        let mut ap = a;
        let mut sum = 1.0 / a;
        let mut del = sum;
        for _ in 0..10_000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        1.0 - sum * (-x + a * x.ln() - gln).exp()
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (-x + a * x.ln() - gln).exp() * h
    }
}

/// P(χ²_df > x).
pub fn chi2_sf(x: f64, df: usize) -> f64 {
    gamma_q(df as f64 / 2.0, x / 2.0)
}

/// Pearson χ² goodness of fit of `observed` counts against bin probabilities `probs` (which must sum to 1).
/// Panics (fails the test) if any expected count is below 5, where the χ² approximation is unreliable.
/// Returns (statistic, df, p-value).
pub fn chi2_gof(observed: &[u64], probs: &[f64]) -> (f64, usize, f64) {
    assert_eq!(observed.len(), probs.len());
    let total_p: f64 = probs.iter().sum();
    assert!(
        (total_p - 1.0).abs() < 1e-9,
        "bin probabilities sum to {total_p}"
    );
    let n: u64 = observed.iter().sum();
    let mut stat = 0.0;
    for (&o, &p) in observed.iter().zip(probs) {
        let e = p * n as f64;
        assert!(e >= 5.0, "expected count {e} < 5: merge bins");
        stat += (o as f64 - e).powi(2) / e;
    }
    let df = observed.len() - 1;
    (stat, df, chi2_sf(stat, df))
}

/// Asserts a χ² goodness of fit at [`ALPHA`].
pub fn assert_chi2(what: &str, observed: &[u64], probs: &[f64]) {
    let (stat, df, p) = chi2_gof(observed, probs);
    assert!(
        p > ALPHA,
        "{what}: chi2 = {stat:.2} with df = {df}, p = {p:.3e} <= {ALPHA:e}\nobserved {observed:?}"
    );
}

/// z-score of `successes` out of `n` against probability `p`.
pub fn binomial_z(successes: u64, n: u64, p: f64) -> f64 {
    let n = n as f64;
    (successes as f64 - n * p) / (n * p * (1.0 - p)).sqrt()
}

/// Exact pmf of the discrete Laplace distribution with scale b at x.
pub fn discrete_laplace_pmf(x: i64, b: f64) -> f64 {
    let r = (-1.0 / b).exp();
    (1.0 - r) / (1.0 + r) * r.powi(x.unsigned_abs().min(i32::MAX as u64) as i32)
}

/// Bins for a χ² test of an integer distribution with pmf `pmf`: one bin per integer in `lo..=hi` plus two
/// tail bins (< lo, > hi). Chooses the widest symmetric window around `centre` whose tails still expect ≥ 5.
/// Returns (lo, hi, probabilities of [tail_low, lo, …, hi, tail_high]).
pub fn integer_bins(
    pmf: &dyn Fn(i64) -> f64,
    centre: i64,
    n: u64,
    max_half_width: i64,
) -> (i64, i64, Vec<f64>) {
    let mut half = max_half_width;
    loop {
        let (lo, hi) = (centre - half, centre + half);
        let inner: Vec<f64> = (lo..=hi).map(pmf).collect();
        // Tails by summation (pmf decays geometrically; 20000 terms is far beyond any scale used).
        let low_tail: f64 = (1..20_000).map(|i| pmf(lo - i)).sum();
        let high_tail: f64 = (1..20_000).map(|i| pmf(hi + i)).sum();
        let min_expected = inner
            .iter()
            .chain([&low_tail, &high_tail])
            .fold(f64::MAX, |m, &p| m.min(p * n as f64));
        if min_expected >= 5.0 || half == 0 {
            let mut probs = vec![low_tail];
            probs.extend(inner);
            probs.push(high_tail);
            let total: f64 = probs.iter().sum();
            // Normalise the tiny truncation error of the tail sums.
            for p in &mut probs {
                *p /= total;
            }
            return (lo, hi, probs);
        }
        half -= 1;
    }
}

/// Counts of `samples` in the bins produced by [`integer_bins`].
pub fn bin_counts(samples: &[i64], lo: i64, hi: i64) -> Vec<u64> {
    let width = usize::try_from(hi - lo + 1).unwrap();
    let mut counts = vec![0u64; width + 2];
    for &s in samples {
        let i = if s < lo {
            0
        } else if s > hi {
            width + 1
        } else {
            usize::try_from(s - lo).unwrap() + 1
        };
        counts[i] += 1;
    }
    counts
}

/// Maximum over outputs of |ln P̂(y | x) − ln P̂(y | x′)| and the sampling tolerance of each compared bin.
///
/// Only outputs seen at least `min_count` times under *both* inputs are compared (the log of a small count is
/// too noisy to say anything). For each compared bin the tolerance is `Z_LOSS` standard errors of the log-ratio,
/// √((1−p₁)/c₁ + (1−p₂)/c₂) by the delta method. Returns (max excess of |log-ratio| over `epsilon` in units of
/// the tolerance, the largest |log-ratio|, bins compared).
pub fn privacy_loss<T: Ord + Clone>(a: &[T], b: &[T], min_count: u64) -> Vec<(T, f64, f64)> {
    use std::collections::BTreeMap;
    let mut ca: BTreeMap<T, u64> = BTreeMap::new();
    let mut cb: BTreeMap<T, u64> = BTreeMap::new();
    for x in a {
        *ca.entry(x.clone()).or_default() += 1;
    }
    for x in b {
        *cb.entry(x.clone()).or_default() += 1;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let mut out = Vec::new();
    for (y, &c1) in &ca {
        let Some(&c2) = cb.get(y) else { continue };
        if c1 < min_count || c2 < min_count {
            continue;
        }
        let (p1, p2) = (c1 as f64 / na, c2 as f64 / nb);
        let loss = (p1 / p2).ln().abs();
        let se = ((1.0 - p1) / c1 as f64 + (1.0 - p2) / c2 as f64).sqrt();
        out.push((y.clone(), loss, se));
    }
    out
}

/// z used per compared bin in privacy-loss checks: with up to ~50 bins compared, Bonferroni keeps the
/// family-wise false-failure rate near 50 × 5.7e-7 ≈ 3e-5 per check at z = 5; we use 5.5 (≈ 4e-8 per bin).
pub const Z_LOSS: f64 = 5.5;

/// Asserts the empirical privacy loss between the output samples of two neighbouring inputs is at most
/// `epsilon` within sampling error, and returns the largest observed |log-ratio|.
pub fn assert_privacy_loss<T: Ord + Clone + std::fmt::Debug>(
    what: &str,
    a: &[T],
    b: &[T],
    epsilon: f64,
) -> f64 {
    let bins = privacy_loss(a, b, 500);
    assert!(
        !bins.is_empty(),
        "{what}: no output seen often enough under both inputs"
    );
    let mut max_loss: f64 = 0.0;
    for (y, loss, se) in &bins {
        assert!(
            *loss <= epsilon + Z_LOSS * se,
            "{what}: output {y:?} has privacy loss {loss:.4} > epsilon {epsilon:.4} + {Z_LOSS} x se {se:.4}"
        );
        max_loss = max_loss.max(*loss);
    }
    max_loss
}

/// True iff some compared bin's loss exceeds `epsilon` beyond sampling error (the negative control).
pub fn violates_privacy_loss<T: Ord + Clone>(a: &[T], b: &[T], epsilon: f64) -> bool {
    privacy_loss(a, b, 500)
        .iter()
        .any(|(_, loss, se)| *loss > epsilon + Z_LOSS * se)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from mpmath (gammainc(k/2, x/2, inf, regularized=True)).
    #[test]
    fn chi2_sf_matches_mpmath() {
        let cases = [
            (20.0, 10, 0.029_252_688_076_961_1),
            (51.0, 10, 1.746_428_185_133_61e-7),
            (3.0, 1, 0.083_264_516_663_550_4),
            (100.0, 60, 0.000_916_828_861_456_08),
            (0.5, 2, 0.778_800_783_071_405),
            (0.001, 4, 0.999_999_875_041_659),
            (300.0, 200, 5.924_540_335_483_92e-6),
        ];
        for (x, df, want) in cases {
            let got = chi2_sf(x, df);
            assert!(
                ((got - want) / want).abs() < 1e-9,
                "chi2_sf({x}, {df}) = {got}, want {want}"
            );
        }
    }

    /// Critical values at α = 1e-6 (mpmath): the p > 1e-6 rule is exactly "statistic below these".
    #[test]
    fn critical_values_at_alpha() {
        let table = [
            (1, 23.92813),
            (2, 27.63102),
            (4, 33.37684),
            (6, 38.25834),
            (9, 44.81094),
            (10, 46.86305),
            (20, 65.42068),
            (30, 82.04414),
            (40, 97.65296),
        ];
        for (df, crit) in table {
            let p = chi2_sf(crit, df);
            assert!(
                (p - ALPHA).abs() / ALPHA < 1e-5,
                "df {df}: sf({crit}) = {p}"
            );
        }
    }

    #[test]
    fn chi2_gof_rejects_a_wrong_distribution() {
        // 10,000 fair-coin-like counts against p = 0.45: must fail; against 0.5: must pass.
        let observed = [5_020, 4_980];
        assert!(chi2_gof(&observed, &[0.5, 0.5]).2 > ALPHA);
        assert!(chi2_gof(&observed, &[0.45, 0.55]).2 < ALPHA);
    }
}
