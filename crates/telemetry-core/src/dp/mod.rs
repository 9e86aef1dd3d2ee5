//! Local differential privacy: exact samplers, the per-field mechanisms and their memoisation.
//!
//! Everything a report says about a user is randomised here, on the machine, before it is written anywhere
//! (DESIGN §8). The module is *pure*: no file, environment, clock or network access. Randomness comes from a
//! caller-supplied [`rand::RngCore`], so tests can use seeded generators, and in production from one of two
//! sources:
//!
//! - memoised answers ([`memo::Memoizer`]) draw from a stream that starts with
//!   HMAC-SHA-256(install secret, field, effective value) and continues with SHA-256 in counter mode — the same question always gets the same answer, so
//!   repeating a report cannot average the noise away (RAPPOR's permanent randomised response);
//! - fresh, non-memoised draws use [`os_seeded_rng`]: 256 bits from the operating system's CSPRNG
//!   (`getrandom`, via [`rand::rngs::OsRng`]) expanded by ChaCha20. We seed per call instead of using
//!   `OsRng.unwrap_err()` directly because that adapter panics if the OS source fails, and this module never
//!   panics: [`os_seeded_rng`] returns an error instead, and the caller fails closed (drops the report).
//!
//! # Layout
//! - [`sampler`]: exact integer-arithmetic samplers after Canonne, Kamath & Steinke (2020), "The Discrete
//!   Gaussian for Differential Privacy", Algorithms 1 and 2: Bernoulli(n/d), Bernoulli(e^−γ) for rational γ and
//!   the discrete Laplace distribution. No floating-point `ln(uniform)` anywhere (Mironov 2012: floating-point
//!   Laplace noise leaks through the holes in its support).
//! - [`mechanism`]: randomised response (bool), k-ary randomised response (closed enums), the bounded integer
//!   mechanism (clamp + discrete Laplace) and bucketed durations.
//! - [`memo`]: memoisation with a keyed PRF, and the daily identifier.
//!
//! # Example
//! ```
//! use telemetry_core::dp::{Epsilon, memo::Memoizer, mechanism::{RandomizedResponse, KaryRandomizedResponse}};
//!
//! let epsilon = Epsilon::from_f64(std::f64::consts::LN_2 + 0.4)?; // ≈ ln 3
//! let rr = RandomizedResponse::new(epsilon);
//! let memo = Memoizer::new(&[7u8; 32]); // the install secret, supplied by the caller
//!
//! // Same secret, same field, same value: the same randomised answer, every time.
//! let first = memo.randomize("build_finished", "cache_hit", &rr, true);
//! assert_eq!(first, memo.randomize("build_finished", "cache_hit", &rr, true));
//!
//! // A closed enum of 4 values, index 2 is the true value.
//! let kind = KaryRandomizedResponse::new(4, epsilon)?;
//! let reported = memo.randomize("build_finished", "profile", &kind, 2);
//! assert!(reported < 4);
//! # Ok::<(), telemetry_core::dp::DpError>(())
//! ```

use std::fmt;

use rand::TryRngCore as _;
use rand::rngs::OsRng;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng as _;

pub mod mechanism;
pub mod memo;
pub mod sampler;

/// Name of the sampler family, for the payload's `privacy.dp` description: exact integer samplers after
/// Canonne–Kamath–Steinke 2020 (Algorithms 1 and 2). Bumped if the sampling algorithms ever change, because
/// memoised answers would change with them.
pub const SAMPLER: &str = "cks2020-exact-v1";

/// Why a DP parameter or sampler input was refused.
///
/// Every constructor validates its parameters and returns one of these instead of panicking; the recording
/// pipeline treats any of them as "fail closed: drop the field or report".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DpErrorKind {
    /// A probability or scale had a zero denominator.
    ZeroDenominator,
    /// A probability `num/den` was greater than one.
    ProbabilityAboveOne,
    /// A discrete Laplace scale of zero was asked for (that would be "no noise", which must be explicit).
    ZeroScale,
    /// ε was not finite, not positive, below the representable resolution or above [`Epsilon::MAX`].
    InvalidEpsilon,
    /// A closed domain with no values (k = 0) or a bucket list with no bounds.
    EmptyDomain,
    /// A closed domain larger than [`mechanism::MAX_DOMAIN`].
    DomainTooLarge,
    /// A bounded-integer range with `min > max`, or duration bucket bounds that are not strictly increasing.
    InvalidRange,
    /// The noise scale `(max − min) / ε` does not fit the sampler's 64-bit rational representation.
    ScaleOverflow,
    /// The operating system's random source failed.
    Rng,
}

/// Error returned by the DP constructors and the fallible samplers: a [`DpErrorKind`] plus a fixed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpError {
    kind: DpErrorKind,
    message: &'static str,
}

impl DpError {
    pub(crate) const fn new(kind: DpErrorKind, message: &'static str) -> Self {
        Self { kind, message }
    }

    /// What went wrong, for callers that react differently per kind (e.g. config validation messages).
    pub fn kind(&self) -> DpErrorKind {
        self.kind
    }
}

impl fmt::Display for DpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl std::error::Error for DpError {}

/// The privacy parameter ε of a mechanism, held as an exact rational `num / den`.
///
/// The exact samplers work on rationals, so ε is a rational too: what the payload states is exactly what the
/// sampler used. [`Epsilon::from_f64`] rounds *down* to a multiple of 2⁻²⁰ (≈ 9.5 × 10⁻⁷): the power-of-two
/// denominator makes the conversion exact in binary floating point, and rounding down means the privacy actually
/// given is never weaker than the ε asked for. Use [`Epsilon::as_f64`] (not the requested value) when
/// describing or de-biasing reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Epsilon {
    num: u64,
    den: u64,
}

impl Epsilon {
    /// Denominator used by [`Epsilon::from_f64`]: 2²⁰.
    pub const DENOMINATOR: u64 = 1 << 20;
    /// Largest accepted ε. Beyond it e^−ε < 2 × 10⁻⁷ and "randomised" response is the truth in all but name;
    /// refusing it keeps a misconfiguration from silently switching privacy off.
    pub const MAX: f64 = 16.0;

    /// ε from a float, rounded down to a multiple of 2⁻²⁰.
    ///
    /// Errors with [`DpErrorKind::InvalidEpsilon`] if `epsilon` is NaN, infinite, ≤ 0, rounds to 0 or exceeds
    /// [`Epsilon::MAX`].
    pub fn from_f64(epsilon: f64) -> Result<Self, DpError> {
        if !epsilon.is_finite() || epsilon <= 0.0 || epsilon > Self::MAX {
            return Err(invalid_epsilon());
        }
        // Exact: multiplying by a power of two only changes the exponent, and the result is < 2^25.
        let scaled = (epsilon * Self::DENOMINATOR as f64).floor();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let num = scaled as u64;
        Self::from_ratio(num, Self::DENOMINATOR)
    }

    /// ε = `num / den` exactly. The fraction is reduced to lowest terms.
    ///
    /// Errors with [`DpErrorKind::InvalidEpsilon`] if `num` or `den` is zero or the value exceeds
    /// [`Epsilon::MAX`].
    pub fn from_ratio(num: u64, den: u64) -> Result<Self, DpError> {
        if num == 0 || den == 0 {
            return Err(invalid_epsilon());
        }
        // num/den > MAX  <=>  num > MAX*den (MAX is an integer; compare in u128 so nothing overflows).
        if u128::from(num) > (Self::MAX as u128) * u128::from(den) {
            return Err(invalid_epsilon());
        }
        let g = gcd(num, den);
        Ok(Self {
            num: num / g,
            den: den / g,
        })
    }

    /// Numerator of the exact rational value.
    pub fn num(&self) -> u64 {
        self.num
    }

    /// Denominator of the exact rational value.
    pub fn den(&self) -> u64 {
        self.den
    }

    /// The exact rational as a float, for descriptions and estimators (correct to f64 rounding).
    pub fn as_f64(&self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

impl fmt::Display for Epsilon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

fn invalid_epsilon() -> DpError {
    DpError::new(
        DpErrorKind::InvalidEpsilon,
        "epsilon must be finite, positive, at least 2^-20 and at most 16",
    )
}

/// Greatest common divisor (binary-free Euclid); `gcd(0, 0) = 0`, otherwise ≥ 1.
pub(crate) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let r = a % b;
        a = b;
        b = r;
    }
    a
}

/// Fills `out` from the operating system's CSPRNG (`getrandom`), or errors with [`DpErrorKind::Rng`].
///
/// For keys and identifiers (the session nonce, a preview's throw-away secret) this is all that is needed;
/// it skips ChaCha20, whose first use detects CPU features (CPUID, a VM exit under a hypervisor), which a
/// host's start-up should not pay for 48 bytes.
pub fn os_random_bytes(out: &mut [u8]) -> Result<(), DpError> {
    OsRng.try_fill_bytes(out).map_err(|_| {
        DpError::new(
            DpErrorKind::Rng,
            "the operating system's random source failed",
        )
    })
}

/// A ChaCha20 generator keyed with 256 fresh bits from the operating system's CSPRNG.
///
/// This is the production source for non-memoised draws. It is seeded per call (cheap: one `getrandom`
/// call), so a forked child never replays its parent's stream. Errors with [`DpErrorKind::Rng`] if the OS
/// source fails; callers then drop the report rather than fall back to anything weaker.
pub fn os_seeded_rng() -> Result<ChaCha20Rng, DpError> {
    let mut seed = [0u8; 32];
    os_random_bytes(&mut seed)?;
    Ok(ChaCha20Rng::from_seed(seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsilon_rounds_down_and_validates() {
        let e = Epsilon::from_f64(libm::log(3.0)).unwrap();
        assert!(e.as_f64() <= libm::log(3.0));
        assert!(libm::log(3.0) - e.as_f64() < 1.0 / Epsilon::DENOMINATOR as f64);
        assert_eq!(
            Epsilon::from_f64(0.5).unwrap(),
            Epsilon::from_ratio(1, 2).unwrap()
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 16.5, 1e-9] {
            assert_eq!(
                Epsilon::from_f64(bad).unwrap_err().kind(),
                DpErrorKind::InvalidEpsilon,
                "{bad}"
            );
        }
        assert!(Epsilon::from_ratio(0, 1).is_err());
        assert!(Epsilon::from_ratio(1, 0).is_err());
        assert!(Epsilon::from_ratio(u64::MAX, 1).is_err());
        assert!(Epsilon::from_ratio(16, 1).is_ok());
        assert_eq!(Epsilon::from_ratio(6, 4).unwrap().to_string(), "3/2");
    }

    #[test]
    fn os_seeded_rng_works() {
        use rand::RngCore as _;
        let mut a = os_seeded_rng().unwrap();
        let mut b = os_seeded_rng().unwrap();
        assert_ne!(a.next_u64(), b.next_u64());
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        os_random_bytes(&mut x).unwrap();
        os_random_bytes(&mut y).unwrap();
        assert_ne!(x, y);
        assert_ne!(x, [0u8; 32]);
    }
}
