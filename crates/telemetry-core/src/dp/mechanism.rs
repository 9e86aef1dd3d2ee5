//! The per-field local-DP mechanisms of DESIGN §8.
//!
//! Each mechanism is built once from its declared parameters (validation happens here, so a bad catalogue
//! entry fails at start-up, not at record time) and then randomises values infallibly. Every mechanism is
//! ε-locally-differentially-private: for any two inputs x, x′ and any output y,
//! P(y | x) ≤ e^ε · P(y | x′). All coins are exact (see [`super::sampler`]).
//!
//! The [`Mechanism`] trait is what [`super::memo::Memoizer`] uses: besides randomising, a mechanism states the
//! *effective* input (the value after clamping / bucketing / domain check — two raw values with the same
//! effective input must share one memoised answer, or a user re-reporting a clamped value would hand out fresh,
//! independent noise for the same information) and a descriptor of its parameters.

use std::time::Duration;

use rand::RngCore;

use super::memo::MemoEncoder;
use super::sampler::{BernoulliExpNeg, DiscreteLaplace, uniform_below_nonzero};
use super::{DpError, DpErrorKind, Epsilon};

/// Largest closed domain k accepted by [`KaryRandomizedResponse`]: 2¹⁶ values.
///
/// The exact keep-coin takes at most k rounds in expectation (see `keep_coin`), so the bound keeps the worst
/// case to well under a millisecond. Closed enums in a telemetry catalogue are far smaller.
pub const MAX_DOMAIN: u32 = 1 << 16;

/// A local randomiser that [`super::memo::Memoizer`] can memoise.
pub trait Mechanism {
    /// The true value handed in by the recording pipeline.
    type Input;
    /// The randomised value that may be written to a payload.
    type Output;

    /// Randomises `input` with coins from `rng`.
    fn randomize<R: RngCore + ?Sized>(&self, input: Self::Input, rng: &mut R) -> Self::Output;

    /// Writes the canonical encoding of the *effective* input: equal for two inputs iff the mechanism treats
    /// them the same. The memo PRF is keyed on it, so e.g. every value above a bounded integer's `max` shares
    /// one answer.
    fn write_memo_input(&self, input: &Self::Input, out: &mut MemoEncoder<'_>);

    /// Writes a tag naming the mechanism and its parameters. Part of the memo PRF input: a changed ε, domain
    /// or range is a different mechanism with fresh (and freshly charged) answers.
    fn write_descriptor(&self, out: &mut MemoEncoder<'_>);
}

/// Exact Bernoulli(1 / (1 + c·e^−ε)) = Bernoulli(e^ε / (e^ε + c)): the "keep the true value" coin of
/// (k-ary) randomised response with c = k − 1 other values. `q` samples Bernoulli(e^−ε).
///
/// This is a two-coin Bernoulli factory (Huber's two-coin algorithm). Each round:
/// - with probability 1/(1+c) (an exact uniform draw in `[0, c]` hitting 0) stop and answer **true**;
/// - otherwise (probability c/(1+c)) draw Q ~ Bernoulli(e^−ε): if Q = 1 stop and answer **false**;
/// - otherwise start another round.
///
/// Proof. Rounds are independent and identical, with P(true this round) = 1/(1+c) and
/// P(false this round) = c·e^−ε/(1+c). So P(answer true) = P(true | stop) =
/// (1/(1+c)) / (1/(1+c) + c·e^−ε/(1+c)) = 1/(1 + c·e^−ε) = e^ε/(e^ε + c). ∎
/// Each round stops with probability ≥ 1/(1+c), so the expected number of rounds is
/// (1+c)/(1 + c·e^−ε) ≤ 1 + c = k — at most 2 for boolean randomised response.
#[inline]
fn keep_coin<R: RngCore + ?Sized>(rng: &mut R, others: u64, q: &BernoulliExpNeg) -> bool {
    let branches = others.saturating_add(1);
    loop {
        if uniform_below_nonzero(rng, branches) == 0 {
            return true;
        }
        if q.sample(rng) {
            return false;
        }
    }
}

/// Randomised response for a boolean: report the truth with probability p = e^ε/(1+e^ε), else its negation.
///
/// ε-LDP: the likelihood ratio of any output under the two inputs is p/(1−p) = e^ε.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomizedResponse {
    epsilon: Epsilon,
    q: BernoulliExpNeg,
}

impl RandomizedResponse {
    /// Randomised response with privacy parameter `epsilon`.
    pub fn new(epsilon: Epsilon) -> Self {
        Self {
            epsilon,
            q: exp_neg_epsilon(epsilon),
        }
    }

    /// The ε this mechanism gives.
    pub fn epsilon(&self) -> Epsilon {
        self.epsilon
    }

    /// p = e^ε/(1+e^ε), the probability of reporting the truth (for descriptions and estimators).
    pub fn truth_probability(&self) -> f64 {
        1.0 / (1.0 + libm::exp(-self.epsilon.as_f64()))
    }

    /// Randomises `value`.
    pub fn randomize<R: RngCore + ?Sized>(&self, value: bool, rng: &mut R) -> bool {
        if keep_coin(rng, 1, &self.q) {
            value
        } else {
            !value
        }
    }
}

impl Mechanism for RandomizedResponse {
    type Input = bool;
    type Output = bool;

    fn randomize<R: RngCore + ?Sized>(&self, input: bool, rng: &mut R) -> bool {
        RandomizedResponse::randomize(self, input, rng)
    }

    fn write_memo_input(&self, input: &bool, out: &mut MemoEncoder<'_>) {
        out.word(u64::from(*input));
    }

    fn write_descriptor(&self, out: &mut MemoEncoder<'_>) {
        out.bytes(b"rr");
        out.word(self.epsilon.num());
        out.word(self.epsilon.den());
    }
}

/// k-ary randomised response over a closed domain {0, …, k−1} (the indices of a closed enum).
///
/// An in-domain value is kept with probability p = e^ε/(e^ε + k − 1), otherwise replaced by a value drawn
/// uniformly from the k − 1 others. An out-of-domain index (≥ k: a variant the catalogue does not know) is
/// answered uniformly over the whole domain, which reveals nothing about it and is ε-indistinguishable from
/// every in-domain input (1/k lies between (1−p)/(k−1) and p).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KaryRandomizedResponse {
    k: u32,
    epsilon: Epsilon,
    q: BernoulliExpNeg,
}

impl KaryRandomizedResponse {
    /// k-RR over `k` values. Errors with [`DpErrorKind::EmptyDomain`] for k = 0 and
    /// [`DpErrorKind::DomainTooLarge`] above [`MAX_DOMAIN`]. k = 1 is allowed (the answer is always 0).
    pub fn new(k: u32, epsilon: Epsilon) -> Result<Self, DpError> {
        if k == 0 {
            return Err(DpError::new(
                DpErrorKind::EmptyDomain,
                "k-ary randomised response needs k >= 1",
            ));
        }
        if k > MAX_DOMAIN {
            return Err(DpError::new(
                DpErrorKind::DomainTooLarge,
                "k-ary randomised response domain exceeds 65536",
            ));
        }
        Ok(Self {
            k,
            epsilon,
            q: exp_neg_epsilon(epsilon),
        })
    }

    /// The domain size k.
    pub fn k(&self) -> u32 {
        self.k
    }

    /// The ε this mechanism gives.
    pub fn epsilon(&self) -> Epsilon {
        self.epsilon
    }

    /// p = e^ε/(e^ε + k − 1), the probability of keeping an in-domain value.
    pub fn keep_probability(&self) -> f64 {
        let e = libm::exp(self.epsilon.as_f64());
        e / (e + f64::from(self.k - 1))
    }

    /// Randomises the index `value`; the result is always `< k`.
    pub fn randomize<R: RngCore + ?Sized>(&self, value: u32, rng: &mut R) -> u32 {
        let k = u64::from(self.k);
        if value >= self.k {
            return to_u32(uniform_below_nonzero(rng, k));
        }
        if keep_coin(rng, k - 1, &self.q) {
            return value;
        }
        // Uniform over the k − 1 other values: draw from [0, k−1) and skip over `value`.
        let other = to_u32(uniform_below_nonzero(rng, k - 1));
        if other >= value { other + 1 } else { other }
    }
}

impl Mechanism for KaryRandomizedResponse {
    type Input = u32;
    type Output = u32;

    fn randomize<R: RngCore + ?Sized>(&self, input: u32, rng: &mut R) -> u32 {
        KaryRandomizedResponse::randomize(self, input, rng)
    }

    fn write_memo_input(&self, input: &u32, out: &mut MemoEncoder<'_>) {
        // Every out-of-domain value is the same effective input: "unknown".
        out.word(if *input < self.k {
            u64::from(*input)
        } else {
            u64::MAX
        });
    }

    fn write_descriptor(&self, out: &mut MemoEncoder<'_>) {
        out.bytes(b"krr");
        out.word(u64::from(self.k));
        out.word(self.epsilon.num());
        out.word(self.epsilon.den());
    }
}

/// Bounded integer: clamp to `[min, max]`, then add discrete Laplace noise with scale (max − min)/ε.
///
/// The sensitivity of the clamped value is Δ = max − min, so noise of scale Δ/ε gives ε-LDP: the likelihood
/// ratio of an output y under x and x′ is e^{(|y−x′| − |y−x|)·ε/Δ} ≤ e^{|x−x′|·ε/Δ} ≤ e^ε. The scale is the
/// exact rational Δ·ε.den / ε.num (see [`Epsilon`] for how a float ε becomes a rational). The noisy output is
/// *not* clamped again, so the mean estimator stays unbiased; it saturates at the `i64` limits.
///
/// If `min == max` the sensitivity is zero and the mechanism returns `min` without noise (ε = 0 is spent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundedInteger {
    min: i64,
    max: i64,
    epsilon: Epsilon,
    noise: Option<DiscreteLaplace>,
}

impl BoundedInteger {
    /// Clamp-and-noise over `[min, max]`.
    ///
    /// Errors with [`DpErrorKind::InvalidRange`] if `min > max` and [`DpErrorKind::ScaleOverflow`] if
    /// (max − min)·ε.den does not fit in 64 bits (a range wider than about 1.7 × 10¹³ with a float ε).
    pub fn new(min: i64, max: i64, epsilon: Epsilon) -> Result<Self, DpError> {
        if min > max {
            return Err(DpError::new(
                DpErrorKind::InvalidRange,
                "bounded integer range has min > max",
            ));
        }
        let delta = u64::try_from(i128::from(max) - i128::from(min)).map_err(|_| {
            DpError::new(
                DpErrorKind::ScaleOverflow,
                "bounded integer range does not fit in 64 bits",
            )
        })?;
        let noise = if delta == 0 {
            None
        } else {
            let t = delta.checked_mul(epsilon.den()).ok_or(DpError::new(
                DpErrorKind::ScaleOverflow,
                "bounded integer noise scale (max - min)/epsilon does not fit in 64 bits",
            ))?;
            Some(DiscreteLaplace::new(t, epsilon.num())?)
        };
        Ok(Self {
            min,
            max,
            epsilon,
            noise,
        })
    }

    /// Lower bound of the clamp.
    pub fn min(&self) -> i64 {
        self.min
    }

    /// Upper bound of the clamp.
    pub fn max(&self) -> i64 {
        self.max
    }

    /// The ε this mechanism gives.
    pub fn epsilon(&self) -> Epsilon {
        self.epsilon
    }

    /// The discrete Laplace scale (max − min)/ε as a reduced fraction, or `None` when min == max.
    pub fn scale(&self) -> Option<(u64, u64)> {
        self.noise.map(|n| n.scale())
    }

    /// `value` clamped to `[min, max]`: the effective input.
    pub fn clamp(&self, value: i64) -> i64 {
        value.clamp(self.min, self.max)
    }

    /// Randomises `value`.
    pub fn randomize<R: RngCore + ?Sized>(&self, value: i64, rng: &mut R) -> i64 {
        let clamped = self.clamp(value);
        match &self.noise {
            None => clamped,
            Some(noise) => clamped.saturating_add(noise.sample(rng)),
        }
    }
}

impl Mechanism for BoundedInteger {
    type Input = i64;
    type Output = i64;

    fn randomize<R: RngCore + ?Sized>(&self, input: i64, rng: &mut R) -> i64 {
        BoundedInteger::randomize(self, input, rng)
    }

    fn write_memo_input(&self, input: &i64, out: &mut MemoEncoder<'_>) {
        out.word(self.clamp(*input).cast_unsigned());
    }

    fn write_descriptor(&self, out: &mut MemoEncoder<'_>) {
        out.bytes(b"bint");
        out.word(self.min.cast_unsigned());
        out.word(self.max.cast_unsigned());
        out.word(self.epsilon.num());
        out.word(self.epsilon.den());
    }
}

/// Duration buckets: strictly increasing upper bounds in milliseconds. A duration d falls in bucket i, the
/// first with d ≤ bound\[i\]; durations above the last bound fall in the overflow bucket `bounds.len()`.
///
/// Bucketing (before noise) is what makes a duration a *bounded* integer with a small sensitivity: the bucket
/// index ranges over `[0, bounds.len()]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationBuckets {
    upper_bounds_ms: Vec<u64>,
}

impl DurationBuckets {
    /// Buckets from strictly increasing upper bounds in milliseconds.
    ///
    /// Errors with [`DpErrorKind::EmptyDomain`] for an empty list, [`DpErrorKind::InvalidRange`] if the bounds
    /// are not strictly increasing and [`DpErrorKind::DomainTooLarge`] above [`MAX_DOMAIN`] bounds.
    pub fn new(upper_bounds_ms: Vec<u64>) -> Result<Self, DpError> {
        if upper_bounds_ms.is_empty() {
            return Err(DpError::new(
                DpErrorKind::EmptyDomain,
                "duration buckets need at least one bound",
            ));
        }
        if upper_bounds_ms.len() > MAX_DOMAIN as usize {
            return Err(DpError::new(
                DpErrorKind::DomainTooLarge,
                "too many duration buckets",
            ));
        }
        if upper_bounds_ms.windows(2).any(|w| w[0] >= w[1]) {
            return Err(DpError::new(
                DpErrorKind::InvalidRange,
                "duration bucket bounds must strictly increase",
            ));
        }
        Ok(Self { upper_bounds_ms })
    }

    /// A default, roughly logarithmic scale: ≤10 ms, ≤100 ms, ≤1 s, ≤10 s, ≤1 min, ≤10 min, ≤1 h, longer.
    pub fn default_log_scale() -> Self {
        Self {
            upper_bounds_ms: vec![10, 100, 1_000, 10_000, 60_000, 600_000, 3_600_000],
        }
    }

    /// The upper bounds in milliseconds.
    pub fn upper_bounds_ms(&self) -> &[u64] {
        &self.upper_bounds_ms
    }

    /// The bucket index of `duration`, in `[0, upper_bounds_ms().len()]`.
    pub fn bucket(&self, duration: Duration) -> u32 {
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let index = self.upper_bounds_ms.partition_point(|&bound| bound < ms);
        u32::try_from(index).unwrap_or(u32::MAX)
    }
}

/// A duration: bucketed with [`DurationBuckets`], then randomised as a [`BoundedInteger`] over the bucket
/// indices `[0, n]` (n = number of bounds), i.e. with discrete Laplace noise of scale n/ε.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketedDuration {
    buckets: DurationBuckets,
    inner: BoundedInteger,
}

impl BucketedDuration {
    /// A duration mechanism over `buckets` with privacy parameter `epsilon`.
    pub fn new(buckets: DurationBuckets, epsilon: Epsilon) -> Result<Self, DpError> {
        let n = i64::try_from(buckets.upper_bounds_ms.len()).unwrap_or(i64::MAX);
        let inner = BoundedInteger::new(0, n, epsilon)?;
        Ok(Self { buckets, inner })
    }

    /// The buckets.
    pub fn buckets(&self) -> &DurationBuckets {
        &self.buckets
    }

    /// The bounded-integer mechanism applied to the bucket index.
    pub fn inner(&self) -> &BoundedInteger {
        &self.inner
    }

    /// Randomises `duration`: a noisy bucket index (may fall outside `[0, n]`; de-bias, don't clamp).
    pub fn randomize<R: RngCore + ?Sized>(&self, duration: Duration, rng: &mut R) -> i64 {
        self.inner
            .randomize(i64::from(self.buckets.bucket(duration)), rng)
    }
}

impl Mechanism for BucketedDuration {
    type Input = Duration;
    type Output = i64;

    fn randomize<R: RngCore + ?Sized>(&self, input: Duration, rng: &mut R) -> i64 {
        BucketedDuration::randomize(self, input, rng)
    }

    fn write_memo_input(&self, input: &Duration, out: &mut MemoEncoder<'_>) {
        out.word(u64::from(self.buckets.bucket(*input)));
    }

    fn write_descriptor(&self, out: &mut MemoEncoder<'_>) {
        out.bytes(b"dur");
        out.word(self.inner.epsilon.num());
        out.word(self.inner.epsilon.den());
        out.word(self.buckets.upper_bounds_ms.len() as u64);
        for bound in &self.buckets.upper_bounds_ms {
            out.word(*bound);
        }
    }
}

/// Bernoulli(e^−ε). An [`Epsilon`] always has a non-zero denominator, so this cannot fail.
fn exp_neg_epsilon(epsilon: Epsilon) -> BernoulliExpNeg {
    BernoulliExpNeg::from_nonzero_den(epsilon.num(), epsilon.den())
}

fn to_u32(x: u64) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}
