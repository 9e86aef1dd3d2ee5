//! Exact samplers in integer arithmetic.
//!
//! Following Canonne, Kamath & Steinke (2020), "The Discrete Gaussian for Differential Privacy" (CKS):
//! every sampler here consumes uniformly random 64-bit words and makes decisions by comparing integers, so the
//! output distribution is *exactly* the stated one (up to the quality of the random source) — there is no
//! floating-point rounding for an attacker to exploit (Mironov 2012). The algorithms are fixed and versioned
//! by [`super::SAMPLER`]: memoised answers are a deterministic function of the random stream, so changing an
//! algorithm would change every user's memoised answers.
//!
//! Validated, reusable forms ([`BernoulliExpNeg`], [`DiscreteLaplace`]) check their parameters once and then
//! sample infallibly in the hot path; the free functions validate on every call and return [`DpError`] on
//! degenerate input. Nothing here panics, overflows or allocates.
//!
//! Termination: every loop stops on each iteration with a probability bounded away from zero (stated per
//! function), so the running time has a geometric tail; there are no hard iteration caps, because a cap would
//! bias the distribution.

use rand::RngCore;

use super::{DpError, DpErrorKind, gcd};

/// A uniformly random integer in `[0, n)`, exactly.
///
/// Lemire's multiply-and-reject method (Lemire 2019, "Fast random integer generation in an interval"): one
/// 32-bit word (for `n` ≤ 2³²−1) or 64-bit word (above) almost always, with rejection of the `2^64 mod n` biased low products, so every value has
/// probability exactly `1/n`. We implement it here rather than call `rand`'s range sampling so that the
/// consumption of the stream (and therefore every memoised answer) does not depend on `rand`'s internals.
///
/// Errors with [`DpErrorKind::ZeroDenominator`] if `n == 0`.
pub fn uniform_below<R: RngCore + ?Sized>(rng: &mut R, n: u64) -> Result<u64, DpError> {
    if n == 0 {
        return Err(DpError::new(
            DpErrorKind::ZeroDenominator,
            "uniform range [0, 0) is empty",
        ));
    }
    Ok(uniform_below_nonzero(rng, n))
}

/// [`uniform_below`] for a caller that has already checked `n > 0` (a zero `n` yields 0, not a panic).
#[inline]
pub(crate) fn uniform_below_nonzero<R: RngCore + ?Sized>(rng: &mut R, n: u64) -> u64 {
    if n <= 1 {
        return 0;
    }
    if let Ok(n32) = u32::try_from(n) {
        // Same method on 32-bit words: half the randomness, which matters for memoised streams.
        return u64::from(uniform_below_u32(rng, n32));
    }
    let n128 = u128::from(n);
    let mut m = u128::from(rng.next_u64()) * n128;
    #[allow(clippy::cast_possible_truncation)]
    let mut low = m as u64;
    if low < n {
        // threshold = 2^64 mod n; products whose low word is below it are rejected (P(reject) < n / 2^64).
        let threshold = n.wrapping_neg() % n;
        while low < threshold {
            m = u128::from(rng.next_u64()) * n128;
            #[allow(clippy::cast_possible_truncation)]
            {
                low = m as u64;
            }
        }
    }
    #[allow(clippy::cast_possible_truncation)]
    let high = (m >> 64) as u64;
    high
}

/// Lemire's method on 32-bit words for `2 <= n <= u32::MAX`.
#[inline]
fn uniform_below_u32<R: RngCore + ?Sized>(rng: &mut R, n: u32) -> u32 {
    let n64 = u64::from(n);
    let mut m = u64::from(rng.next_u32()) * n64;
    #[allow(clippy::cast_possible_truncation)]
    let mut low = m as u32;
    if low < n {
        let threshold = n.wrapping_neg() % n;
        while low < threshold {
            m = u64::from(rng.next_u32()) * n64;
            #[allow(clippy::cast_possible_truncation)]
            {
                low = m as u32;
            }
        }
    }
    #[allow(clippy::cast_possible_truncation)]
    let high = (m >> 32) as u32;
    high
}

/// A fair coin: Bernoulli(1/2) from the lowest bit of one 32-bit word.
#[inline]
pub fn bernoulli_half<R: RngCore + ?Sized>(rng: &mut R) -> bool {
    rng.next_u32() & 1 == 1
}

/// Exact Bernoulli(`num / den`): true iff a uniform integer in `[0, den)` is below `num`.
///
/// Errors with [`DpErrorKind::ZeroDenominator`] if `den == 0` and [`DpErrorKind::ProbabilityAboveOne`] if
/// `num > den`. `num == 0` is always false and `num == den` always true (one word is still drawn so the
/// stream position does not depend on the parameters' values).
pub fn bernoulli<R: RngCore + ?Sized>(rng: &mut R, num: u64, den: u64) -> Result<bool, DpError> {
    if den == 0 {
        return Err(DpError::new(
            DpErrorKind::ZeroDenominator,
            "Bernoulli probability has a zero denominator",
        ));
    }
    if num > den {
        return Err(DpError::new(
            DpErrorKind::ProbabilityAboveOne,
            "Bernoulli probability num/den exceeds one",
        ));
    }
    Ok(uniform_below_nonzero(rng, den) < num)
}

/// Bernoulli(e^−γ) for γ = `num / den` ≥ 0 (CKS Algorithm 1).
///
/// Errors with [`DpErrorKind::ZeroDenominator`] if `den == 0`. See [`BernoulliExpNeg`] for the algorithm and
/// the form to reuse in a loop.
pub fn bernoulli_exp_neg<R: RngCore + ?Sized>(
    rng: &mut R,
    num: u64,
    den: u64,
) -> Result<bool, DpError> {
    Ok(BernoulliExpNeg::new(num, den)?.sample(rng))
}

/// A validated Bernoulli(e^−γ) sampler for rational γ = `num / den` ≥ 0 (CKS Algorithm 1).
///
/// For γ ∈ [0, 1]: draw A₁ ~ Bernoulli(γ/1), A₂ ~ Bernoulli(γ/2), … until the first failure at index K, and
/// answer "K is odd". P(K > k) = γᵏ/k!, so P(K odd) = Σ_{k odd} (γ^{k−1}/(k−1)! − γᵏ/k!) = 1 − γ + γ²/2! − … =
/// e^−γ. Each Bernoulli(γ/k) = Bernoulli(num / (den·k)) is one exact uniform draw; if `den·k` would overflow,
/// it is drawn as Bernoulli(num/den) ∧ Bernoulli(1/k), which has the same probability. Expected draws ≤ e.
///
/// For γ > 1: e^−γ = (e^−1)^⌊γ⌋ · e^−(γ−⌊γ⌋), so draw Bernoulli(e^−1) up to ⌊γ⌋ times, answering false at the
/// first failure, then one Bernoulli(e^−(γ−⌊γ⌋)). Each Bernoulli(e^−1) fails with probability ≈ 0.63, so the
/// expected work is bounded whatever ⌊γ⌋ is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BernoulliExpNeg {
    whole: u64,
    frac_num: u64,
    den: u64,
}

impl BernoulliExpNeg {
    /// Validates γ = `num / den` (reduced to lowest terms). Errors with [`DpErrorKind::ZeroDenominator`] if
    /// `den == 0`; every `num` is valid (γ = 0 gives an always-true coin).
    pub fn new(num: u64, den: u64) -> Result<Self, DpError> {
        if den == 0 {
            return Err(DpError::new(
                DpErrorKind::ZeroDenominator,
                "exponent gamma has a zero denominator",
            ));
        }
        Ok(Self::from_nonzero_den(num, den))
    }

    /// Infallible constructor for callers whose type already guarantees `den > 0` (a zero `den` is treated
    /// as 1 rather than panicking).
    pub(crate) fn from_nonzero_den(num: u64, den: u64) -> Self {
        let den = den.max(1);
        let g = gcd(num, den).max(1);
        let (num, den) = (num / g, den / g);
        Self {
            whole: num / den,
            frac_num: num % den,
            den,
        }
    }

    /// Draws one Bernoulli(e^−γ) sample.
    #[inline]
    pub fn sample<R: RngCore + ?Sized>(&self, rng: &mut R) -> bool {
        let mut i = 0;
        while i < self.whole {
            if !exp_neg_unit(rng, 1, 1) {
                return false;
            }
            i += 1;
        }
        exp_neg_unit(rng, self.frac_num, self.den)
    }
}

/// Bernoulli(e^−num/den) for `num ≤ den`, `den ≥ 1` (the γ ∈ [0, 1] branch of CKS Algorithm 1).
#[inline]
fn exp_neg_unit<R: RngCore + ?Sized>(rng: &mut R, num: u64, den: u64) -> bool {
    if num == 0 {
        return true;
    }
    let mut k: u64 = 1;
    loop {
        // A ~ Bernoulli(num / (den * k)).
        let a = match den.checked_mul(k) {
            Some(dk) => uniform_below_nonzero(rng, dk) < num,
            None => uniform_below_nonzero(rng, den) < num && uniform_below_nonzero(rng, k) == 0,
        };
        if !a {
            return k % 2 == 1;
        }
        k = k.saturating_add(1);
    }
}

/// One sample of the discrete Laplace distribution with scale `scale_num / scale_den` (CKS Algorithm 2).
///
/// Errors as [`DiscreteLaplace::new`]. Use [`DiscreteLaplace`] to validate once and sample many times.
pub fn discrete_laplace<R: RngCore + ?Sized>(
    rng: &mut R,
    scale_num: u64,
    scale_den: u64,
) -> Result<i64, DpError> {
    Ok(DiscreteLaplace::new(scale_num, scale_den)?.sample(rng))
}

/// A validated sampler of the discrete Laplace distribution (two-sided geometric) with rational scale
/// b = t/s: P(X = x) = (1 − e^{−1/b}) / (1 + e^{−1/b}) · e^{−|x|/b} for every integer x.
///
/// CKS Algorithm 2, with t = `scale_num`, s = `scale_den`:
/// 1. U ← uniform in {0, …, t−1}; D ← Bernoulli(e^{−U/t}); if D = 0, restart.
/// 2. V ← number of successes of Bernoulli(e^−1) before the first failure.
/// 3. X ← U + t·V — X is geometric: P(X = x) ∝ e^{−x/t}.
/// 4. Y ← ⌊X / s⌋ — geometric with P(Y = y) ∝ e^{−y·s/t}.
/// 5. B ← Bernoulli(1/2); if B = 1 and Y = 0, restart (otherwise 0 would be counted twice).
/// 6. Return (1 − 2B)·Y.
///
/// Step 1 accepts with probability ≥ 1 − e^−1 ≈ 0.63 on average and step 5 with probability ≥ 1/2, so the
/// expected number of restarts is below 3.2 whatever the scale.
///
/// X is computed in 128 bits and cannot overflow. A magnitude beyond `i64::MAX` (which would need ~10¹⁹
/// consecutive successes of Bernoulli(e^−1), or a scale above 2⁶³) saturates at ±`i64::MAX`: documented
/// clamping, never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscreteLaplace {
    t: u64,
    s: u64,
}

impl DiscreteLaplace {
    /// Validates the scale `scale_num / scale_den` and reduces it to lowest terms.
    ///
    /// Errors with [`DpErrorKind::ZeroScale`] if `scale_num == 0` (no noise must be asked for explicitly, not
    /// by accident) and [`DpErrorKind::ZeroDenominator`] if `scale_den == 0`.
    pub fn new(scale_num: u64, scale_den: u64) -> Result<Self, DpError> {
        if scale_den == 0 {
            return Err(DpError::new(
                DpErrorKind::ZeroDenominator,
                "discrete Laplace scale has a zero denominator",
            ));
        }
        if scale_num == 0 {
            return Err(DpError::new(
                DpErrorKind::ZeroScale,
                "discrete Laplace scale is zero",
            ));
        }
        let g = gcd(scale_num, scale_den);
        Ok(Self {
            t: scale_num / g,
            s: scale_den / g,
        })
    }

    /// The scale as a reduced fraction `(num, den)`.
    pub fn scale(&self) -> (u64, u64) {
        (self.t, self.s)
    }

    /// Draws one sample.
    pub fn sample<R: RngCore + ?Sized>(&self, rng: &mut R) -> i64 {
        loop {
            let u = uniform_below_nonzero(rng, self.t);
            if !exp_neg_unit(rng, u, self.t) {
                continue;
            }
            let mut v: u64 = 0;
            while exp_neg_unit(rng, 1, 1) {
                v = v.saturating_add(1);
            }
            // u < t ≤ 2^64 − 1 and v ≤ 2^64 − 1, so u + t·v ≤ 2^128 − 2^64: no overflow.
            let x = u128::from(u) + u128::from(self.t) * u128::from(v);
            let y = x / u128::from(self.s);
            let negative = bernoulli_half(rng);
            if negative && y == 0 {
                continue;
            }
            let magnitude = i64::try_from(y).unwrap_or(i64::MAX);
            return if negative { -magnitude } else { magnitude };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;
    use rand::rngs::SmallRng;

    #[test]
    fn degenerate_inputs_are_errors_not_panics() {
        let mut rng = SmallRng::seed_from_u64(1);
        assert_eq!(
            uniform_below(&mut rng, 0).unwrap_err().kind(),
            DpErrorKind::ZeroDenominator
        );
        assert_eq!(
            bernoulli(&mut rng, 1, 0).unwrap_err().kind(),
            DpErrorKind::ZeroDenominator
        );
        assert_eq!(
            bernoulli(&mut rng, 2, 1).unwrap_err().kind(),
            DpErrorKind::ProbabilityAboveOne
        );
        assert_eq!(
            bernoulli_exp_neg(&mut rng, 1, 0).unwrap_err().kind(),
            DpErrorKind::ZeroDenominator
        );
        assert_eq!(
            discrete_laplace(&mut rng, 0, 1).unwrap_err().kind(),
            DpErrorKind::ZeroScale
        );
        assert_eq!(
            discrete_laplace(&mut rng, 1, 0).unwrap_err().kind(),
            DpErrorKind::ZeroDenominator
        );
    }

    #[test]
    fn extreme_but_valid_inputs_do_not_panic() {
        let mut rng = SmallRng::seed_from_u64(2);
        for _ in 0..1000 {
            assert!(uniform_below(&mut rng, u64::MAX).unwrap() < u64::MAX);
            assert_eq!(uniform_below(&mut rng, 1).unwrap(), 0);
            assert!(!bernoulli(&mut rng, 0, u64::MAX).unwrap());
            assert!(bernoulli(&mut rng, u64::MAX, u64::MAX).unwrap());
            assert!(bernoulli_exp_neg(&mut rng, 0, 5).unwrap());
            // γ = 2^64 − 1: overwhelmingly false, and it must stop quickly.
            let _ = bernoulli_exp_neg(&mut rng, u64::MAX, 1).unwrap();
            // den·k overflows immediately: exercises the Bernoulli(num/den) ∧ Bernoulli(1/k) branch.
            let _ = bernoulli_exp_neg(&mut rng, u64::MAX - 1, u64::MAX).unwrap();
            let _ = discrete_laplace(&mut rng, u64::MAX, 1).unwrap();
            let tiny = discrete_laplace(&mut rng, 1, u64::MAX).unwrap();
            assert!(tiny.abs() <= 1);
        }
    }

    #[test]
    fn scale_is_reduced() {
        assert_eq!(DiscreteLaplace::new(6, 4).unwrap().scale(), (3, 2));
        assert_eq!(
            BernoulliExpNeg::new(6, 4).unwrap(),
            BernoulliExpNeg::new(3, 2).unwrap()
        );
    }
}
