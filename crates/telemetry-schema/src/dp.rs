//! Differential-privacy parameter blocks: what a payload (and the catalogue) says about how each
//! field was randomised, complete enough to audit one payload on its own. Never the true value.

use std::fmt;

#[cfg(feature = "json-schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{Label, Sha256Hex};

/// Largest ε a parameter block may state. Anything larger gives no meaningful protection.
pub const MAX_EPSILON: f64 = 20.0;

/// The privacy unit an ε is accounted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PrivacyUnit {
    /// ε bounds what one report reveals.
    PerReport,
    /// ε bounds what all reports of one install in one period (day) reveal together.
    PerDay,
}

/// The exact sampler the core used. Samplers never use `ln(uniform)` floating-point tricks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
pub enum SamplerId {
    /// Exact Bernoulli sampling (Canonne–Kamath–Steinke 2020) for binary randomised response.
    #[serde(rename = "cks2020-rr")]
    Cks2020Rr,
    /// Exact Bernoulli keep/replace plus a uniform draw of another domain value, for k-ary RR.
    #[serde(rename = "cks2020-k-rr")]
    Cks2020KRr,
    /// Exact discrete Laplace (two-sided geometric) sampler of Canonne–Kamath–Steinke 2020.
    #[serde(rename = "cks2020-discrete-laplace")]
    Cks2020DiscreteLaplace,
    /// Exact Bernoulli sampling for 1BitMean (Ding–Kulkarni–Yekhanin 2017).
    #[serde(rename = "cks2020-1bitmean")]
    Cks2020OneBitMean,
}

/// The estimator that de-biases collected reports of this field (see the `estimate` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
pub enum EstimatorId {
    /// De-biased proportion of binary randomised response (`estimate_rr_proportion`).
    #[serde(rename = "rr-debias-v1")]
    RrDebias,
    /// De-biased label frequencies of k-ary randomised response (`estimate_k_rr_frequencies`).
    #[serde(rename = "k-rr-debias-v1")]
    KRrDebias,
    /// Sample mean of discrete-Laplace-noised integers (`estimate_discrete_laplace_mean`).
    #[serde(rename = "sample-mean-v1")]
    SampleMean,
    /// De-biased mean from 1BitMean bits (`estimate_one_bit_mean`).
    #[serde(rename = "1bitmean-debias-v1")]
    OneBitMeanDebias,
    /// Plain frequencies; used only for fields that are not randomised.
    #[serde(rename = "plain-frequency-v1")]
    PlainFrequency,
}

/// The domain of a closed enum, by size and digest (the labels themselves are in the catalogue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EnumDomain {
    /// Number of labels, k ≥ 2.
    #[cfg_attr(feature = "json-schema", schemars(range(min = 2, max = 4096)))]
    pub size: u32,
    /// SHA-256 over the labels in declared order, each followed by `\n`.
    pub sha256: Sha256Hex,
}

/// An inclusive clamp range for integers: true values are clamped into `[min, max]` before noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ClampRange {
    /// Smallest value (inclusive).
    #[cfg_attr(feature = "json-schema", schemars(range(min = -1_000_000_000_000i64, max = 1_000_000_000_000i64)))]
    pub min: i64,
    /// Largest value (inclusive), greater than `min`.
    #[cfg_attr(feature = "json-schema", schemars(range(min = -1_000_000_000_000i64, max = 1_000_000_000_000i64)))]
    pub max: i64,
}

impl ClampRange {
    /// Largest accepted bound magnitude (keeps every derived number exact in f64 and JSON).
    pub const BOUND: i64 = 1_000_000_000_000;

    /// A checked range (`min < max`, both within ±[`Self::BOUND`]).
    pub fn new(min: i64, max: i64) -> Result<Self, ParamError> {
        if min < max && min >= -Self::BOUND && max <= Self::BOUND {
            Ok(Self { min, max })
        } else {
            Err(ParamError::BadRange { min, max })
        }
    }

    /// `max - min`: the L1 sensitivity of one clamped value.
    pub fn width(&self) -> u64 {
        self.max.abs_diff(self.min)
    }
}

/// SHA-256 of an enum domain: the labels in declared order, each followed by one `\n`.
pub fn domain_sha256<S: AsRef<str>>(labels: &[S]) -> Sha256Hex {
    let mut h = Sha256::new();
    for l in labels {
        h.update(l.as_ref().as_bytes());
        h.update(b"\n");
    }
    Sha256Hex::from_digest(&h.finalize().into())
}

/// How one field is randomised, with every parameter an auditor needs.
///
/// The JSON form is an object tagged by `"mechanism"`. Privacy parameters are named `epsilon`
/// and `delta` on the wire. `p`, `q` and `scale` are derived from ε and the domain and are
/// re-checked by `MechanismParams::check`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(tag = "mechanism", rename_all = "snake_case", deny_unknown_fields)]
pub enum MechanismParams {
    /// Binary randomised response (booleans): the true bit is reported with probability
    /// `p = e^ε/(1+e^ε)`, flipped with `q = 1 - p`.
    RandomizedResponse {
        /// ε.
        #[cfg_attr(feature = "json-schema", schemars(range(max = 20.0), extend("exclusiveMinimum" = 0)))]
        epsilon: f64,
        /// δ (0: pure ε-LDP).
        #[cfg_attr(feature = "json-schema", schemars(range(min = 0.0, max = 0.0)))]
        delta: f64,
        /// Privacy unit.
        unit: PrivacyUnit,
        /// Probability of reporting the true value.
        #[cfg_attr(feature = "json-schema", schemars(range(min = 0.5, max = 1.0)))]
        p: f64,
        /// Probability of reporting the other value.
        #[cfg_attr(feature = "json-schema", schemars(range(min = 0.0, max = 0.5)))]
        q: f64,
        /// Sampler.
        sampler: SamplerId,
        /// Whether the randomised answer for a (field, true value) is memoised (permanent RR).
        memoized: bool,
        /// Estimator.
        estimator: EstimatorId,
    },
    /// k-ary randomised response (closed enums): the true label with probability
    /// `p = e^ε/(e^ε+k-1)`, each other label with `q = 1/(e^ε+k-1)`; out-of-domain → uniform.
    KRandomizedResponse {
        /// ε.
        #[cfg_attr(feature = "json-schema", schemars(range(max = 20.0), extend("exclusiveMinimum" = 0)))]
        epsilon: f64,
        /// δ (0: pure ε-LDP).
        #[cfg_attr(feature = "json-schema", schemars(range(min = 0.0, max = 0.0)))]
        delta: f64,
        /// Privacy unit.
        unit: PrivacyUnit,
        /// Domain size and digest.
        domain: EnumDomain,
        /// Probability of reporting the true label.
        #[cfg_attr(feature = "json-schema", schemars(range(min = 0.0, max = 1.0)))]
        p: f64,
        /// Probability of reporting one given other label.
        #[cfg_attr(feature = "json-schema", schemars(range(min = 0.0, max = 1.0)))]
        q: f64,
        /// Sampler.
        sampler: SamplerId,
        /// Whether the randomised answer is memoised.
        memoized: bool,
        /// Estimator.
        estimator: EstimatorId,
    },
    /// Discrete Laplace (two-sided geometric) noise added to the clamped integer:
    /// `P(Z = z) ∝ exp(-|z|/scale)` with `scale = sensitivity/ε`. Reports may fall outside the range.
    DiscreteLaplace {
        /// ε.
        #[cfg_attr(feature = "json-schema", schemars(range(max = 20.0), extend("exclusiveMinimum" = 0)))]
        epsilon: f64,
        /// δ (0: pure ε-LDP).
        #[cfg_attr(feature = "json-schema", schemars(range(min = 0.0, max = 0.0)))]
        delta: f64,
        /// Privacy unit.
        unit: PrivacyUnit,
        /// Clamp range of the true value.
        clamp: ClampRange,
        /// L1 sensitivity, `clamp.max - clamp.min`.
        #[cfg_attr(feature = "json-schema", schemars(range(min = 1)))]
        sensitivity: u64,
        /// Noise scale `sensitivity/ε`.
        #[cfg_attr(feature = "json-schema", schemars(range(min = 0.0)))]
        scale: f64,
        /// Sampler.
        sampler: SamplerId,
        /// Whether the noisy answer is memoised.
        memoized: bool,
        /// Estimator.
        estimator: EstimatorId,
    },
    /// 1BitMean (Ding–Kulkarni–Yekhanin 2017): one bit, 1 with probability
    /// `q + (x-min)/(max-min)·(p-q)` where `p = e^ε/(1+e^ε)`, `q = 1/(1+e^ε)`. Sent as a boolean.
    OneBitMean {
        /// ε.
        #[cfg_attr(feature = "json-schema", schemars(range(max = 20.0), extend("exclusiveMinimum" = 0)))]
        epsilon: f64,
        /// δ (0: pure ε-LDP).
        #[cfg_attr(feature = "json-schema", schemars(range(min = 0.0, max = 0.0)))]
        delta: f64,
        /// Privacy unit.
        unit: PrivacyUnit,
        /// Clamp range of the true value.
        clamp: ClampRange,
        /// Probability of a 1 when the value is `clamp.max`.
        #[cfg_attr(feature = "json-schema", schemars(range(min = 0.5, max = 1.0)))]
        p: f64,
        /// Probability of a 1 when the value is `clamp.min`.
        #[cfg_attr(feature = "json-schema", schemars(range(min = 0.0, max = 0.5)))]
        q: f64,
        /// Sampler.
        sampler: SamplerId,
        /// Whether the bit is memoised.
        memoized: bool,
        /// Estimator.
        estimator: EstimatorId,
    },
    /// Redaction only, NOT randomised: explicitly declared free text, sent after the core's
    /// redactor removed paths, addresses and identifiers. No ε protects it.
    RedactionOnly {
        /// Maximum length in characters after redaction (at most 200).
        #[cfg_attr(feature = "json-schema", schemars(range(min = 1, max = 200)))]
        max_len: u32,
    },
    /// Not randomised: sent exactly as declared (versions of the app, SDK or runtime, which are
    /// the same for every user of a release). No ε protects it.
    NotRandomized {},
}

/// The mechanism name alone (the `"mechanism"` tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MechanismKind {
    /// [`MechanismParams::RandomizedResponse`].
    RandomizedResponse,
    /// [`MechanismParams::KRandomizedResponse`].
    KRandomizedResponse,
    /// [`MechanismParams::DiscreteLaplace`].
    DiscreteLaplace,
    /// [`MechanismParams::OneBitMean`].
    OneBitMean,
    /// [`MechanismParams::RedactionOnly`].
    RedactionOnly,
    /// [`MechanismParams::NotRandomized`].
    NotRandomized,
}

impl MechanismKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RandomizedResponse => "randomized_response",
            Self::KRandomizedResponse => "k_randomized_response",
            Self::DiscreteLaplace => "discrete_laplace",
            Self::OneBitMean => "one_bit_mean",
            Self::RedactionOnly => "redaction_only",
            Self::NotRandomized => "not_randomized",
        }
    }
}

impl fmt::Display for MechanismKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why DP parameters were refused.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamError {
    /// ε is not finite or not in `(0, MAX_EPSILON]`.
    BadEpsilon(f64),
    /// δ is not 0 (all mechanisms here are pure ε-LDP).
    BadDelta(f64),
    /// k-ary RR needs at least 2 (and at most 4096) labels.
    BadDomainSize(usize),
    /// An empty or inverted clamp range, or bounds beyond ±[`ClampRange::BOUND`].
    BadRange {
        /// Lower bound.
        min: i64,
        /// Upper bound.
        max: i64,
    },
    /// A stated internal (p, q, scale, sensitivity, sampler, estimator) does not match ε and the domain.
    Inconsistent {
        /// Which parameter.
        parameter: &'static str,
        /// What it should be.
        expected: String,
        /// What it is.
        found: String,
    },
    /// Redacted text longer than 200 characters, or 0.
    BadMaxLen(u32),
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadEpsilon(e) => write!(
                f,
                "epsilon must be finite and in (0, {MAX_EPSILON}], got {e}"
            ),
            Self::BadDelta(d) => write!(f, "delta must be 0 (pure epsilon-LDP), got {d}"),
            Self::BadDomainSize(k) => write!(
                f,
                "k-ary randomised response needs 2..=4096 labels, got {k}"
            ),
            Self::BadRange { min, max } => write!(
                f,
                "clamp range must have min < max within ±{}, got [{min}, {max}]",
                ClampRange::BOUND
            ),
            Self::Inconsistent {
                parameter,
                expected,
                found,
            } => write!(f, "{parameter} is {found}, expected {expected}"),
            Self::BadMaxLen(n) => write!(f, "redacted text max_len must be 1..=200, got {n}"),
        }
    }
}

impl std::error::Error for ParamError {}

fn check_epsilon(epsilon: f64) -> Result<(), ParamError> {
    if epsilon.is_finite() && epsilon > 0.0 && epsilon <= MAX_EPSILON {
        Ok(())
    } else {
        Err(ParamError::BadEpsilon(epsilon))
    }
}

/// `(p, q)` of binary randomised response: `e^ε/(1+e^ε)`, `1/(1+e^ε)`.
pub fn rr_probabilities(epsilon: f64) -> (f64, f64) {
    let e = libm::exp(epsilon);
    (e / (1.0 + e), 1.0 / (1.0 + e))
}

/// `(p, q)` of k-ary randomised response: `e^ε/(e^ε+k-1)`, `1/(e^ε+k-1)`.
pub fn k_rr_probabilities(epsilon: f64, k: usize) -> (f64, f64) {
    let e = libm::exp(epsilon);
    let d = e + (k as f64) - 1.0;
    (e / d, 1.0 / d)
}

impl MechanismParams {
    /// Binary randomised response for a bool field, memoised, ε per report.
    pub fn randomized_response(epsilon: f64) -> Result<Self, ParamError> {
        check_epsilon(epsilon)?;
        let (p, q) = rr_probabilities(epsilon);
        Ok(Self::RandomizedResponse {
            epsilon,
            delta: 0.0,
            unit: PrivacyUnit::PerReport,
            p,
            q,
            sampler: SamplerId::Cks2020Rr,
            memoized: true,
            estimator: EstimatorId::RrDebias,
        })
    }

    /// k-ary randomised response over `labels` (k = `labels.len()`), memoised, ε per report.
    pub fn k_rr<S: AsRef<str>>(epsilon: f64, labels: &[S]) -> Result<Self, ParamError> {
        check_epsilon(epsilon)?;
        let k = labels.len();
        if !(2..=4096).contains(&k) {
            return Err(ParamError::BadDomainSize(k));
        }
        let (p, q) = k_rr_probabilities(epsilon, k);
        Ok(Self::KRandomizedResponse {
            epsilon,
            delta: 0.0,
            unit: PrivacyUnit::PerReport,
            domain: EnumDomain {
                size: k as u32,
                sha256: domain_sha256(labels),
            },
            p,
            q,
            sampler: SamplerId::Cks2020KRr,
            memoized: true,
            estimator: EstimatorId::KRrDebias,
        })
    }

    /// Discrete Laplace over the clamp range `[min, max]`: scale `(max-min)/ε`, memoised.
    pub fn discrete_laplace(epsilon: f64, min: i64, max: i64) -> Result<Self, ParamError> {
        check_epsilon(epsilon)?;
        let clamp = ClampRange::new(min, max)?;
        let sensitivity = clamp.width();
        Ok(Self::DiscreteLaplace {
            epsilon,
            delta: 0.0,
            unit: PrivacyUnit::PerReport,
            clamp,
            sensitivity,
            scale: sensitivity as f64 / epsilon,
            sampler: SamplerId::Cks2020DiscreteLaplace,
            memoized: true,
            estimator: EstimatorId::SampleMean,
        })
    }

    /// 1BitMean over the clamp range `[min, max]`, memoised.
    pub fn one_bit_mean(epsilon: f64, min: i64, max: i64) -> Result<Self, ParamError> {
        check_epsilon(epsilon)?;
        let clamp = ClampRange::new(min, max)?;
        let (p, q) = rr_probabilities(epsilon);
        Ok(Self::OneBitMean {
            epsilon,
            delta: 0.0,
            unit: PrivacyUnit::PerReport,
            clamp,
            p,
            q,
            sampler: SamplerId::Cks2020OneBitMean,
            memoized: true,
            estimator: EstimatorId::OneBitMeanDebias,
        })
    }

    /// Redaction only (text fields): not randomised.
    pub fn redaction_only(max_len: u32) -> Result<Self, ParamError> {
        if (1..=200).contains(&max_len) {
            Ok(Self::RedactionOnly { max_len })
        } else {
            Err(ParamError::BadMaxLen(max_len))
        }
    }

    /// Not randomised (version fields).
    pub fn not_randomized() -> Self {
        Self::NotRandomized {}
    }

    /// Returns the block with another privacy unit.
    pub fn with_unit(mut self, new_unit: PrivacyUnit) -> Self {
        match &mut self {
            Self::RandomizedResponse { unit, .. }
            | Self::KRandomizedResponse { unit, .. }
            | Self::DiscreteLaplace { unit, .. }
            | Self::OneBitMean { unit, .. } => *unit = new_unit,
            Self::RedactionOnly { .. } | Self::NotRandomized {} => {}
        }
        self
    }

    /// Returns the block with memoisation switched on or off.
    pub fn with_memoized(mut self, on: bool) -> Self {
        match &mut self {
            Self::RandomizedResponse { memoized, .. }
            | Self::KRandomizedResponse { memoized, .. }
            | Self::DiscreteLaplace { memoized, .. }
            | Self::OneBitMean { memoized, .. } => *memoized = on,
            Self::RedactionOnly { .. } | Self::NotRandomized {} => {}
        }
        self
    }

    /// The mechanism name.
    pub fn kind(&self) -> MechanismKind {
        match self {
            Self::RandomizedResponse { .. } => MechanismKind::RandomizedResponse,
            Self::KRandomizedResponse { .. } => MechanismKind::KRandomizedResponse,
            Self::DiscreteLaplace { .. } => MechanismKind::DiscreteLaplace,
            Self::OneBitMean { .. } => MechanismKind::OneBitMean,
            Self::RedactionOnly { .. } => MechanismKind::RedactionOnly,
            Self::NotRandomized {} => MechanismKind::NotRandomized,
        }
    }

    /// ε, or `None` for fields that are not randomised.
    pub fn epsilon(&self) -> Option<f64> {
        match self {
            Self::RandomizedResponse { epsilon, .. }
            | Self::KRandomizedResponse { epsilon, .. }
            | Self::DiscreteLaplace { epsilon, .. }
            | Self::OneBitMean { epsilon, .. } => Some(*epsilon),
            Self::RedactionOnly { .. } | Self::NotRandomized {} => None,
        }
    }

    /// Whether values of this field are randomised on the machine.
    pub fn is_randomized(&self) -> bool {
        self.epsilon().is_some()
    }

    /// One plain sentence for people (`telemetry catalog`), e.g. "randomised response, ε = 1.10 per report".
    pub fn describe(&self) -> String {
        let unit = |u: &PrivacyUnit| match u {
            PrivacyUnit::PerReport => "per report",
            PrivacyUnit::PerDay => "per day",
        };
        let memo = |m: &bool| if *m { ", memoised" } else { "" };
        match self {
            Self::RandomizedResponse {
                epsilon,
                unit: u,
                p,
                memoized,
                ..
            } => format!(
                "randomised response, ε = {epsilon:.3} {}: the true answer is sent with probability {p:.3}{}",
                unit(u),
                memo(memoized)
            ),
            Self::KRandomizedResponse {
                epsilon,
                unit: u,
                domain,
                p,
                memoized,
                ..
            } => format!(
                "k-ary randomised response over {} values, ε = {epsilon:.3} {}: the true value is sent with probability {p:.3}{}",
                domain.size,
                unit(u),
                memo(memoized)
            ),
            Self::DiscreteLaplace {
                epsilon,
                unit: u,
                clamp,
                scale,
                memoized,
                ..
            } => format!(
                "discrete Laplace noise of scale {scale:.3} added to the value clamped to [{}, {}], ε = {epsilon:.3} {}{}",
                clamp.min,
                clamp.max,
                unit(u),
                memo(memoized)
            ),
            Self::OneBitMean {
                epsilon,
                unit: u,
                clamp,
                memoized,
                ..
            } => format!(
                "1BitMean: one random bit whose bias encodes the value clamped to [{}, {}], ε = {epsilon:.3} {}{}",
                clamp.min,
                clamp.max,
                unit(u),
                memo(memoized)
            ),
            Self::RedactionOnly { max_len } => format!(
                "NOT randomised: free text sent after redaction only (at most {max_len} characters); no ε protects it"
            ),
            Self::NotRandomized {} => {
                "NOT randomised: sent exactly as declared; no ε protects it".to_string()
            }
        }
    }

    /// What an observer of one report can and cannot learn, in plain words
    /// (`telemetry verify-payload` and `catalog`).
    pub fn observer_view(&self) -> String {
        let bound = |epsilon: &f64| {
            format!(
                "any two true values are at most {:.2} times (e^ε) as likely to have produced what was sent",
                libm::exp(*epsilon)
            )
        };
        let memo = |m: &bool| {
            if *m {
                " The answer is memoised: sending it again reveals nothing new, so repetition cannot average the noise away."
            } else {
                ""
            }
        };
        match self {
            Self::RandomizedResponse {
                epsilon, memoized, ..
            } => format!(
                "An observer cannot tell this install's true answer: {}. Only a proportion over many installs can be estimated.{}",
                bound(epsilon),
                memo(memoized)
            ),
            Self::KRandomizedResponse {
                epsilon, memoized, ..
            } => format!(
                "An observer cannot tell which value is true: {}. Only frequencies over many installs can be estimated.{}",
                bound(epsilon),
                memo(memoized)
            ),
            Self::DiscreteLaplace {
                epsilon, memoized, ..
            }
            | Self::OneBitMean {
                epsilon, memoized, ..
            } => format!(
                "An observer learns only a noisy value: {}. Only a mean over many installs can be estimated.{}",
                bound(epsilon),
                memo(memoized)
            ),
            Self::RedactionOnly { .. } => "An observer reads the redacted text as it is: paths, user and host names, addresses and secret-shaped strings were removed, but no ε bounds what the remaining words reveal.".to_owned(),
            Self::NotRandomized {} => "An observer sees this value exactly as sent.".to_owned(),
        }
    }

    /// Checks that ε, δ and every derived internal agree (a payload is auditable on its own only if
    /// its numbers are consistent). Tolerance 1e-9 for derived probabilities and scales.
    pub fn check(&self) -> Result<(), ParamError> {
        fn close(parameter: &'static str, expected: f64, found: f64) -> Result<(), ParamError> {
            if (expected - found).abs() <= 1e-9 * expected.abs().max(1.0) {
                Ok(())
            } else {
                Err(ParamError::Inconsistent {
                    parameter,
                    expected: format!("{expected}"),
                    found: format!("{found}"),
                })
            }
        }
        fn same<T: fmt::Debug + PartialEq>(
            parameter: &'static str,
            expected: T,
            found: T,
        ) -> Result<(), ParamError> {
            if expected == found {
                Ok(())
            } else {
                Err(ParamError::Inconsistent {
                    parameter,
                    expected: format!("{expected:?}"),
                    found: format!("{found:?}"),
                })
            }
        }
        fn delta_zero(delta: f64) -> Result<(), ParamError> {
            if delta == 0.0 {
                Ok(())
            } else {
                Err(ParamError::BadDelta(delta))
            }
        }
        match self {
            Self::RandomizedResponse {
                epsilon,
                delta,
                p,
                q,
                sampler,
                estimator,
                ..
            } => {
                check_epsilon(*epsilon)?;
                delta_zero(*delta)?;
                let (ep, eq) = rr_probabilities(*epsilon);
                close("p", ep, *p)?;
                close("q", eq, *q)?;
                same("sampler", SamplerId::Cks2020Rr, *sampler)?;
                same("estimator", EstimatorId::RrDebias, *estimator)
            }
            Self::KRandomizedResponse {
                epsilon,
                delta,
                domain,
                p,
                q,
                sampler,
                estimator,
                ..
            } => {
                check_epsilon(*epsilon)?;
                delta_zero(*delta)?;
                let k = domain.size as usize;
                if !(2..=4096).contains(&k) {
                    return Err(ParamError::BadDomainSize(k));
                }
                let (ep, eq) = k_rr_probabilities(*epsilon, k);
                close("p", ep, *p)?;
                close("q", eq, *q)?;
                same("sampler", SamplerId::Cks2020KRr, *sampler)?;
                same("estimator", EstimatorId::KRrDebias, *estimator)
            }
            Self::DiscreteLaplace {
                epsilon,
                delta,
                clamp,
                sensitivity,
                scale,
                sampler,
                estimator,
                ..
            } => {
                check_epsilon(*epsilon)?;
                delta_zero(*delta)?;
                ClampRange::new(clamp.min, clamp.max)?;
                same("sensitivity", clamp.width(), *sensitivity)?;
                close("scale", clamp.width() as f64 / epsilon, *scale)?;
                same("sampler", SamplerId::Cks2020DiscreteLaplace, *sampler)?;
                same("estimator", EstimatorId::SampleMean, *estimator)
            }
            Self::OneBitMean {
                epsilon,
                delta,
                clamp,
                p,
                q,
                sampler,
                estimator,
                ..
            } => {
                check_epsilon(*epsilon)?;
                delta_zero(*delta)?;
                ClampRange::new(clamp.min, clamp.max)?;
                let (ep, eq) = rr_probabilities(*epsilon);
                close("p", ep, *p)?;
                close("q", eq, *q)?;
                same("sampler", SamplerId::Cks2020OneBitMean, *sampler)?;
                same("estimator", EstimatorId::OneBitMeanDebias, *estimator)
            }
            Self::RedactionOnly { max_len } => {
                if (1..=200).contains(max_len) {
                    Ok(())
                } else {
                    Err(ParamError::BadMaxLen(*max_len))
                }
            }
            Self::NotRandomized {} => Ok(()),
        }
    }
}

/// Checks a label list for use as an enum domain: 2..=4096 distinct labels.
pub(crate) fn check_domain(labels: &[Label]) -> Result<(), ParamError> {
    let mut seen = std::collections::BTreeSet::new();
    if !(2..=4096).contains(&labels.len()) || !labels.iter().all(|l| seen.insert(l)) {
        return Err(ParamError::BadDomainSize(labels.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rr_internals() {
        let m = MechanismParams::randomized_response(libm::log(3.0)).unwrap();
        let MechanismParams::RandomizedResponse { p, q, .. } = m else {
            panic!()
        };
        assert!((p - 0.75).abs() < 1e-12 && (q - 0.25).abs() < 1e-12);
        m.check().unwrap();
    }

    #[test]
    fn k_rr_internals_and_domain_hash() {
        let labels = ["build", "run", "test"];
        let m = MechanismParams::k_rr(libm::log(2.0), &labels).unwrap();
        let MechanismParams::KRandomizedResponse { p, q, domain, .. } = &m else {
            panic!()
        };
        assert!((p - 0.5).abs() < 1e-12 && (q - 0.25).abs() < 1e-12);
        assert_eq!(domain.size, 3);
        // sha256("build\nrun\ntest\n")
        assert_eq!(
            domain.sha256.as_str(),
            "455caba6d1e74bcca1709c425686abc8e847879b12a3a30e2a58e206a7ecd635"
        );
        assert_ne!(domain_sha256(&["run", "build", "test"]), domain.sha256);
        assert_eq!(
            MechanismParams::k_rr(1.0, &["only"]).unwrap_err(),
            ParamError::BadDomainSize(1)
        );
    }

    #[test]
    fn bad_parameters_are_refused() {
        for e in [0.0, -1.0, f64::NAN, f64::INFINITY, 20.5] {
            assert!(MechanismParams::randomized_response(e).is_err(), "{e}");
        }
        assert!(MechanismParams::discrete_laplace(1.0, 5, 5).is_err());
        assert!(MechanismParams::discrete_laplace(1.0, 0, i64::MAX).is_err());
        assert!(MechanismParams::redaction_only(201).is_err());
        assert!(MechanismParams::redaction_only(0).is_err());
    }

    #[test]
    fn check_catches_tampered_internals() {
        let MechanismParams::DiscreteLaplace {
            epsilon,
            delta,
            unit,
            clamp,
            sensitivity,
            sampler,
            memoized,
            estimator,
            ..
        } = MechanismParams::discrete_laplace(0.5, 0, 100).unwrap()
        else {
            panic!()
        };
        assert_eq!(sensitivity, 100);
        let tampered = MechanismParams::DiscreteLaplace {
            epsilon,
            delta,
            unit,
            clamp,
            sensitivity,
            scale: 2.0,
            sampler,
            memoized,
            estimator,
        };
        let err = tampered.check().unwrap_err();
        assert!(
            matches!(
                err,
                ParamError::Inconsistent {
                    parameter: "scale",
                    ..
                }
            ),
            "{err}"
        );
        let mut rr =
            serde_json::to_value(MechanismParams::randomized_response(1.0).unwrap()).unwrap();
        rr["delta"] = serde_json::json!(0.1);
        let rr: MechanismParams = serde_json::from_value(rr).unwrap();
        assert_eq!(rr.check().unwrap_err(), ParamError::BadDelta(0.1));
    }

    #[test]
    fn wire_names() {
        let v = serde_json::to_value(MechanismParams::randomized_response(1.0).unwrap()).unwrap();
        assert_eq!(v["mechanism"], "randomized_response");
        assert!(v.get("epsilon").is_some() && v.get("delta").is_some());
        assert_eq!(v["sampler"], "cks2020-rr");
        let v = serde_json::to_value(MechanismParams::not_randomized()).unwrap();
        assert_eq!(v, serde_json::json!({"mechanism": "not_randomized"}));
        let err = serde_json::from_value::<MechanismParams>(serde_json::json!({
            "mechanism": "not_randomized", "true_value": 3
        }));
        assert!(err.is_err(), "unknown fields are refused");
    }
}
