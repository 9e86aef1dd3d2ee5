//! Estimators: de-bias collected (randomised) reports and give standard errors.
//!
//! All functions are pure. Standard errors are plug-in estimates (the variance formula evaluated at
//! the observed report frequencies or sample variance), the usual choice for LDP frequency oracles.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::catalog::{Catalog, FieldKind};
use crate::dp::{MechanismKind, MechanismParams, k_rr_probabilities, rr_probabilities};
use crate::envelope::{Envelope, FieldValue};

/// An unbiased estimate and its standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// The estimate (a proportion in `[0, 1]` before clipping may fall slightly outside it).
    pub value: f64,
    /// Its standard error.
    pub standard_error: f64,
    /// Number of reports it is based on.
    pub n: u64,
}

/// Why an estimate cannot be computed.
#[derive(Debug, Clone, PartialEq)]
pub enum EstimateError {
    /// No reports.
    NoReports,
    /// ε not finite and positive.
    BadEpsilon(f64),
    /// A count larger than the number of reports.
    CountExceedsReports {
        /// The count.
        count: u64,
        /// The number of reports.
        n: u64,
    },
    /// k < 2, or a clamp range with `min >= max`.
    BadDomain,
}

impl fmt::Display for EstimateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoReports => write!(f, "no reports to estimate from"),
            Self::BadEpsilon(e) => write!(f, "epsilon must be finite and positive, got {e}"),
            Self::CountExceedsReports { count, n } => {
                write!(f, "count {count} exceeds the number of reports {n}")
            }
            Self::BadDomain => write!(f, "domain must have k >= 2 values / min < max"),
        }
    }
}

impl std::error::Error for EstimateError {}

fn check(epsilon: f64, count: u64, n: u64) -> Result<(), EstimateError> {
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(EstimateError::BadEpsilon(epsilon));
    }
    if n == 0 {
        return Err(EstimateError::NoReports);
    }
    if count > n {
        return Err(EstimateError::CountExceedsReports { count, n });
    }
    Ok(())
}

/// De-biases a frequency oracle: `(count/n - q)/(p - q)`, SE `sqrt(y(1-y)/n)/(p - q)`.
fn debias(count: u64, n: u64, p: f64, q: f64) -> Estimate {
    let y = count as f64 / n as f64;
    Estimate {
        value: (y - q) / (p - q),
        standard_error: (y * (1.0 - y) / n as f64).sqrt() / (p - q),
        n,
    }
}

/// Binary randomised response: the proportion of true values, from `reports_true` of `n` reports.
///
/// At ε = ln 3 (p = 0.75) and n = 10,000 the standard error at a proportion of 0.5 is 1.0 point.
pub fn estimate_rr_proportion(
    reports_true: u64,
    n: u64,
    epsilon: f64,
) -> Result<Estimate, EstimateError> {
    check(epsilon, reports_true, n)?;
    let (p, q) = rr_probabilities(epsilon);
    Ok(debias(reports_true, n, p, q))
}

/// k-ary randomised response: the frequency of one label with `count` reports of `n`, domain size `k`.
pub fn estimate_k_rr_frequency(
    count: u64,
    n: u64,
    epsilon: f64,
    k: usize,
) -> Result<Estimate, EstimateError> {
    check(epsilon, count, n)?;
    if k < 2 {
        return Err(EstimateError::BadDomain);
    }
    let (p, q) = k_rr_probabilities(epsilon, k);
    Ok(debias(count, n, p, q))
}

/// k-ary randomised response: the frequency of every label, from the report counts of all `k` labels
/// (in domain order; `n` is their sum).
pub fn estimate_k_rr_frequencies(
    counts: &[u64],
    epsilon: f64,
) -> Result<Vec<Estimate>, EstimateError> {
    let n = counts
        .iter()
        .try_fold(0u64, |a, &c| a.checked_add(c))
        .ok_or(EstimateError::BadDomain)?;
    counts
        .iter()
        .map(|&c| estimate_k_rr_frequency(c, n, epsilon, counts.len()))
        .collect()
}

/// Variance of discrete Laplace noise with scale `sensitivity/ε`: `2α/(1-α)²`, `α = e^(-ε/sensitivity)`.
pub fn discrete_laplace_noise_variance(epsilon: f64, sensitivity: u64) -> f64 {
    let alpha = (-epsilon / sensitivity as f64).exp();
    2.0 * alpha / ((1.0 - alpha) * (1.0 - alpha))
}

/// Discrete Laplace: the mean of the (clamped) true values is the sample mean of the noisy reports
/// (the noise has mean 0); its SE is the sample standard deviation over √n (it includes the noise).
///
/// Theoretical SE: `sqrt((σ² + 2α/(1-α)²)/n)` where σ² is the variance of the clamped true values.
pub fn estimate_discrete_laplace_mean(reports: &[i64]) -> Result<Estimate, EstimateError> {
    let n = reports.len() as u64;
    if n == 0 {
        return Err(EstimateError::NoReports);
    }
    // Two passes in f64: reports are within ±2^53 by schema, sums of 10^7 of them stay exact enough.
    let mean = reports.iter().map(|&r| r as f64).sum::<f64>() / n as f64;
    let var = if n > 1 {
        reports
            .iter()
            .map(|&r| (r as f64 - mean).powi(2))
            .sum::<f64>()
            / (n - 1) as f64
    } else {
        0.0
    };
    Ok(Estimate {
        value: mean,
        standard_error: (var / n as f64).sqrt(),
        n,
    })
}

/// 1BitMean: the mean of values clamped to `[min, max]`, from `ones` one-bits among `n` reports:
/// `min + (max-min)·(ȳ(e^ε+1) - 1)/(e^ε-1)`, SE `(max-min)·(e^ε+1)/(e^ε-1)·sqrt(ȳ(1-ȳ)/n)`.
pub fn estimate_one_bit_mean(
    ones: u64,
    n: u64,
    epsilon: f64,
    min: i64,
    max: i64,
) -> Result<Estimate, EstimateError> {
    check(epsilon, ones, n)?;
    if min >= max {
        return Err(EstimateError::BadDomain);
    }
    let (p, q) = rr_probabilities(epsilon);
    let width = (max as f64) - (min as f64);
    let e = debias(ones, n, p, q);
    Ok(Estimate {
        value: min as f64 + width * e.value,
        standard_error: width * e.standard_error,
        n,
    })
}

/// Plain frequency (non-randomised fields): `count/n`, SE `sqrt(y(1-y)/n)`.
pub fn estimate_plain_frequency(count: u64, n: u64) -> Result<Estimate, EstimateError> {
    if n == 0 {
        return Err(EstimateError::NoReports);
    }
    if count > n {
        return Err(EstimateError::CountExceedsReports { count, n });
    }
    Ok(debias(count, n, 1.0, 0.0))
}

/// One row of an aggregation table (what `telemetry aggregate` prints).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AggregateRow {
    /// Event name.
    pub event: String,
    /// Field name.
    pub field: String,
    /// Mechanism of the reports in this row.
    pub mechanism: MechanismKind,
    /// ε of the reports (rows with different ε are kept apart), `None` if not randomised.
    pub epsilon: Option<f64>,
    /// The value whose frequency is estimated (`"true"` for booleans, the label for enums),
    /// or `None` for means.
    pub value: Option<String>,
    /// The estimate: a proportion, or a mean.
    pub estimate: f64,
    /// Its standard error.
    pub standard_error: f64,
    /// Number of (non-null) reports.
    pub n: u64,
}

#[derive(Default)]
struct Group {
    bools: (u64, u64),
    ints: Vec<i64>,
    labels: BTreeMap<String, u64>,
    n: u64,
}

/// Aggregates reports of every (event, field) across payloads, grouping by identical DP parameters.
/// Enum rows cover the labels seen; use [`aggregate_with_catalog`] to include unseen labels.
pub fn aggregate(payloads: &[Envelope]) -> Vec<AggregateRow> {
    aggregate_inner(payloads, None)
}

/// Like [`aggregate`], and for enum fields whose domain digest matches the catalogue, one row per
/// label of the domain (in domain order), including labels nobody reported.
pub fn aggregate_with_catalog(payloads: &[Envelope], catalog: &Catalog) -> Vec<AggregateRow> {
    aggregate_inner(payloads, Some(catalog))
}

fn aggregate_inner(payloads: &[Envelope], catalog: Option<&Catalog>) -> Vec<AggregateRow> {
    // Key: (event, field, canonical JSON of the params) so that differing parameters never mix.
    let mut groups: BTreeMap<(String, String, String), (MechanismParams, Group)> = BTreeMap::new();
    for env in payloads {
        for ev in &env.events {
            for (field, value) in &ev.fields {
                let (Some(value), Some(params)) =
                    (value, env.dp_block(ev.name.as_str(), field.as_str()))
                else {
                    continue;
                };
                let key = (
                    ev.name.to_string(),
                    field.to_string(),
                    serde_json::to_string(params).unwrap_or_default(),
                );
                let (_, g) = groups
                    .entry(key)
                    .or_insert_with(|| (params.clone(), Group::default()));
                match (params.kind(), value) {
                    (
                        MechanismKind::RandomizedResponse | MechanismKind::OneBitMean,
                        FieldValue::Bool(b),
                    ) => {
                        if *b {
                            g.bools.1 += 1;
                        } else {
                            g.bools.0 += 1;
                        }
                    }
                    (MechanismKind::DiscreteLaplace, FieldValue::Integer(i)) => g.ints.push(*i),
                    (
                        MechanismKind::KRandomizedResponse
                        | MechanismKind::NotRandomized
                        | MechanismKind::RedactionOnly,
                        FieldValue::Label(_) | FieldValue::Version(_) | FieldValue::Text(_),
                    ) => *g.labels.entry(value.display()).or_default() += 1,
                    _ => continue, // a type mismatch: check_consistency reports it; never counted
                }
                g.n += 1;
            }
        }
    }

    let mut rows = Vec::new();
    for ((event, field, _), (params, g)) in groups {
        let row = |value: Option<String>, e: Estimate| AggregateRow {
            event: event.clone(),
            field: field.clone(),
            mechanism: params.kind(),
            epsilon: params.epsilon(),
            value,
            estimate: e.value,
            standard_error: e.standard_error,
            n: e.n,
        };
        match &params {
            MechanismParams::RandomizedResponse { epsilon, .. } => {
                if let Ok(e) = estimate_rr_proportion(g.bools.1, g.n, *epsilon) {
                    rows.push(row(Some("true".into()), e));
                }
            }
            MechanismParams::OneBitMean { epsilon, clamp, .. } => {
                if let Ok(e) = estimate_one_bit_mean(g.bools.1, g.n, *epsilon, clamp.min, clamp.max)
                {
                    rows.push(row(None, e));
                }
            }
            MechanismParams::DiscreteLaplace { .. } => {
                if let Ok(e) = estimate_discrete_laplace_mean(&g.ints) {
                    rows.push(row(None, e));
                }
            }
            MechanismParams::KRandomizedResponse {
                epsilon, domain, ..
            } => {
                let mut labels: Vec<String> = Vec::new();
                if let Some(spec) = catalog.and_then(|c| c.field(&event, &field))
                    && let (
                        FieldKind::Enum { values },
                        MechanismParams::KRandomizedResponse { domain: d, .. },
                    ) = (&spec.kind, &spec.mechanism)
                    && d == domain
                {
                    labels.extend(values.iter().map(|l| l.to_string()));
                }
                for seen in g.labels.keys() {
                    if !labels.contains(seen) {
                        labels.push(seen.clone());
                    }
                }
                for label in labels {
                    let count = g.labels.get(&label).copied().unwrap_or(0);
                    if let Ok(e) =
                        estimate_k_rr_frequency(count, g.n, *epsilon, domain.size as usize)
                    {
                        rows.push(row(Some(label), e));
                    }
                }
            }
            MechanismParams::RedactionOnly { .. } | MechanismParams::NotRandomized {} => {
                for (label, count) in &g.labels {
                    if let Ok(e) = estimate_plain_frequency(*count, g.n) {
                        rows.push(row(Some(label.clone()), e));
                    }
                }
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rr_se_at_ln3_is_one_point() {
        let e = estimate_rr_proportion(5_000, 10_000, 3f64.ln()).unwrap();
        assert!((e.value - 0.5).abs() < 1e-12);
        assert!(
            (e.standard_error - 0.01).abs() < 1e-12,
            "{}",
            e.standard_error
        );
        let plain = estimate_plain_frequency(5_000, 10_000).unwrap();
        assert!((plain.standard_error - 0.005).abs() < 1e-12);
    }

    #[test]
    fn bad_inputs() {
        assert_eq!(
            estimate_rr_proportion(1, 0, 1.0),
            Err(EstimateError::NoReports)
        );
        assert_eq!(
            estimate_rr_proportion(11, 10, 1.0),
            Err(EstimateError::CountExceedsReports { count: 11, n: 10 })
        );
        assert!(matches!(
            estimate_rr_proportion(1, 10, f64::NAN),
            Err(EstimateError::BadEpsilon(_))
        ));
        assert!(matches!(
            estimate_rr_proportion(1, 10, 0.0),
            Err(EstimateError::BadEpsilon(_))
        ));
        assert_eq!(
            estimate_k_rr_frequencies(&[5], 1.0),
            Err(EstimateError::BadDomain)
        );
        assert_eq!(
            estimate_k_rr_frequencies(&[u64::MAX, 1], 1.0),
            Err(EstimateError::BadDomain)
        );
        assert_eq!(
            estimate_discrete_laplace_mean(&[]),
            Err(EstimateError::NoReports)
        );
        assert_eq!(
            estimate_one_bit_mean(1, 2, 1.0, 5, 5),
            Err(EstimateError::BadDomain)
        );
    }

    #[test]
    fn k_rr_frequencies_sum_to_one() {
        let est = estimate_k_rr_frequencies(&[500, 300, 200], 1.0).unwrap();
        let total: f64 = est.iter().map(|e| e.value).sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
    }

    #[test]
    fn dl_variance_formula() {
        // ε = 1, Δ = 1: α = 1/e, variance = 2α/(1-α)^2 ≈ 1.8413
        assert!((discrete_laplace_noise_variance(1.0, 1) - 1.841_347_188).abs() < 1e-6);
    }
}
