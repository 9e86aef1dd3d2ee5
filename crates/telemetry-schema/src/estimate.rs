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
///
/// The SE is evaluated at the report rate the estimate implies once clipped to `[0, 1]`: the
/// observed rate whenever the estimate is in range, and `q` (or `p`) when noise pushed it out,
/// where the observed rate would give a misleading SE of 0 (no report of a label at all).
fn debias(count: u64, n: u64, p: f64, q: f64) -> Estimate {
    let y = count as f64 / n as f64;
    let value = (y - q) / (p - q);
    let y_var = if value.is_finite() {
        q + value.clamp(0.0, 1.0) * (p - q)
    } else {
        y
    };
    Estimate {
        value,
        standard_error: (y_var * (1.0 - y_var) / n as f64).sqrt() / (p - q),
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
    let alpha = libm::exp(-epsilon / sensitivity as f64);
    2.0 * alpha / ((1.0 - alpha) * (1.0 - alpha))
}

/// Discrete Laplace: the mean of the (clamped) true values is the sample mean of the noisy reports
/// (the noise has mean 0); its SE is the sample standard deviation over √n (it includes the noise).
///
/// Theoretical SE: `sqrt((σ² + 2α/(1-α)²)/n)` where σ² is the variance of the clamped true values.
pub fn estimate_discrete_laplace_mean(reports: &[i64]) -> Result<Estimate, EstimateError> {
    let mut moments = Moments::default();
    for &r in reports {
        moments.add(r);
    }
    estimate_discrete_laplace_mean_from_moments(&moments)
}

/// The sufficient statistics of integer reports: count, sum and sum of squares, exact (reports
/// are within ±2^53 by schema, so `i128` sums of up to 2^20 reports, and `f64` beyond, suffice).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    /// Number of reports.
    pub n: u64,
    /// Sum of the reports.
    pub sum: f64,
    /// Sum of their squares.
    pub sum_sq: f64,
}

impl Moments {
    /// Adds one report.
    pub fn add(&mut self, report: i64) {
        let r = report as f64;
        self.n += 1;
        self.sum += r;
        self.sum_sq += r * r;
    }

    /// Adds the moments of other reports.
    pub fn merge(&mut self, other: &Moments) {
        self.n += other.n;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
    }
}

/// [`estimate_discrete_laplace_mean`] from the reports' sufficient statistics, as a store computes
/// them with `GROUP BY` (`count`, `sum`, `sum` of squares).
pub fn estimate_discrete_laplace_mean_from_moments(
    moments: &Moments,
) -> Result<Estimate, EstimateError> {
    let n = moments.n;
    if n == 0 {
        return Err(EstimateError::NoReports);
    }
    let mean = moments.sum / n as f64;
    let var = if n > 1 {
        // Clamped at 0: in floating point, a sum of squares of equal values can land a hair
        // below sum²/n.
        ((moments.sum_sq - moments.sum * mean) / (n - 1) as f64).max(0.0)
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

/// Whether an estimate says anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EstimateStatus {
    /// A usable estimate with its standard error.
    Ok,
    /// Fewer than 2 reports: no standard error can be estimated from them.
    TooFewReports,
    /// The mechanism's parameters leave (almost) no signal: the standard error is not finite or
    /// wider than the whole range of the quantity (e.g. a forged ε of 1e-300). The number is
    /// kept in `estimate`, but it means nothing.
    Uninformative,
}

impl EstimateStatus {
    /// A short note for people, `None` when the estimate is usable.
    pub fn note(self) -> Option<&'static str> {
        match self {
            Self::Ok => None,
            Self::TooFewReports => Some("too few reports for an error estimate (n < 2)"),
            Self::Uninformative => Some("meaningless: these DP parameters leave no usable signal"),
        }
    }
}

/// The multiplier of the standard error for a two-sided 95% normal interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// One row of an aggregation table (what `telemetry aggregate` and `telemetry-collector report`
/// print): one per boolean field, per label, or per mean, and per set of DP parameters.
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
    /// The estimate, unbiased and not clipped: a proportion may fall slightly outside `[0, 1]`.
    pub estimate: f64,
    /// The estimate as shown to people: a proportion clipped to `[0, 1]`, a 1BitMean mean to its
    /// clamp range; a discrete Laplace mean as is.
    pub shown: f64,
    /// Its standard error.
    pub standard_error: f64,
    /// The 95% interval `estimate ± 1.96·SE`, clipped like `shown`.
    pub ci95: (f64, f64),
    /// Number of (non-null) reports.
    pub n: u64,
    /// Whether the estimate says anything.
    pub status: EstimateStatus,
}

/// The sufficient statistics of one field's reports under one set of DP parameters: every
/// estimator de-biases from these alone, so a store can compute them with `GROUP BY`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Non-null reports of the mechanism's type.
    pub n: u64,
    /// `true` reports (randomised response, 1BitMean).
    pub ones: u64,
    /// Integer reports (discrete Laplace).
    pub moments: Moments,
    /// Reports per label, version or text (k-ary RR, not randomised, redaction only).
    pub labels: BTreeMap<String, u64>,
}

/// What a report adds to a [`Tally`]: the part of a [`FieldValue`] its mechanism uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report<'a> {
    /// A bit (randomised response, 1BitMean).
    Bit(bool),
    /// A noisy integer (discrete Laplace).
    Integer(i64),
    /// A label, version or redacted text.
    Label(&'a str),
}

impl<'a> Report<'a> {
    /// The report `value` makes under `mechanism`, or `None` for a value of the wrong type
    /// (`Envelope::check_consistency` reports those; they are never counted).
    pub fn of(mechanism: MechanismKind, value: &'a FieldValue) -> Option<Self> {
        match (mechanism, value) {
            (
                MechanismKind::RandomizedResponse | MechanismKind::OneBitMean,
                FieldValue::Bool(b),
            ) => Some(Self::Bit(*b)),
            (MechanismKind::DiscreteLaplace, FieldValue::Integer(i)) => Some(Self::Integer(*i)),
            (
                MechanismKind::KRandomizedResponse
                | MechanismKind::NotRandomized
                | MechanismKind::RedactionOnly,
                FieldValue::Label(l),
            ) => Some(Self::Label(l.as_str())),
            (
                MechanismKind::KRandomizedResponse
                | MechanismKind::NotRandomized
                | MechanismKind::RedactionOnly,
                FieldValue::Version(v),
            ) => Some(Self::Label(v.as_str())),
            (
                MechanismKind::KRandomizedResponse
                | MechanismKind::NotRandomized
                | MechanismKind::RedactionOnly,
                FieldValue::Text(t),
            ) => Some(Self::Label(t.redacted.as_str())),
            _ => None,
        }
    }
}

impl Tally {
    /// Counts one report.
    pub fn add(&mut self, report: Report<'_>) {
        self.n += 1;
        match report {
            Report::Bit(b) => self.ones += u64::from(b),
            Report::Integer(i) => self.moments.add(i),
            Report::Label(l) => *self.labels.entry(l.to_owned()).or_default() += 1,
        }
    }

    /// Adds another tally of the same field and parameters (e.g. another day's).
    pub fn merge(&mut self, other: &Tally) {
        self.n += other.n;
        self.ones += other.ones;
        self.moments.merge(&other.moments);
        for (label, count) in &other.labels {
            *self.labels.entry(label.clone()).or_default() += count;
        }
    }
}

/// Which reports a [`Tally`] counts: one field under one exact set of DP parameters. Reports
/// made under different parameters never share a key, so they are never pooled.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TallyKey {
    /// Event name.
    pub event: String,
    /// Field name.
    pub field: String,
    /// The DP parameter block as canonical JSON ([`params_key`]).
    pub params: String,
}

/// The canonical JSON of a parameter block: the key that keeps different parameters apart.
pub fn params_key(params: &MechanismParams) -> String {
    serde_json::to_string(params).unwrap_or_default()
}

/// Tallies of many fields: what [`estimate_tallies`] turns into rows.
#[derive(Debug, Clone, Default)]
pub struct Tallies {
    /// Per key, the parameters (decoded) and the tally.
    pub fields: BTreeMap<TallyKey, (MechanismParams, Tally)>,
}

impl Tallies {
    /// The tally of `event.field` under `params` (created empty).
    pub fn entry(&mut self, event: &str, field: &str, params: &MechanismParams) -> &mut Tally {
        let key = TallyKey {
            event: event.to_owned(),
            field: field.to_owned(),
            params: params_key(params),
        };
        &mut self
            .fields
            .entry(key)
            .or_insert_with(|| (params.clone(), Tally::default()))
            .1
    }

    /// Counts every non-null report of one payload. The caller counts each run id once.
    pub fn add_envelope(&mut self, envelope: &Envelope) {
        for ev in &envelope.events {
            for (field, value) in ev.fields.iter() {
                let (Some(value), Some(params)) =
                    (value, envelope.dp_block(ev.name.as_str(), field.as_str()))
                else {
                    continue;
                };
                if let Some(report) = Report::of(params.kind(), value) {
                    self.entry(ev.name.as_str(), field.as_str(), params)
                        .add(report);
                }
            }
        }
    }
}

/// Payloads gathered for estimation under the rules every estimate follows: one app at a time
/// (payloads of other apps are counted apart, never pooled) and each run id once (a payload
/// collected twice, or re-sent, adds nothing). `telemetry aggregate` uses it over files; the
/// collector's stores apply the same rules in their queries.
#[derive(Debug, Clone, Default)]
pub struct Collection {
    app: Option<String>,
    seen: std::collections::HashSet<String>,
    /// The statistics of the payloads counted.
    pub tallies: Tallies,
    /// Payloads counted.
    pub counted: usize,
    /// Payloads not counted because their run id was counted already.
    pub repeated: usize,
    /// Payloads not counted because they belong to another app, by app.
    pub other_apps: BTreeMap<String, usize>,
}

/// What [`Collection::add`] did with a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Counted.
    Counted,
    /// Its run id was counted already.
    Repeated,
    /// It belongs to another app.
    OtherApp,
}

impl Collection {
    /// Payloads of `app` only (`None`: of any app, pooled; for tests and single-app inputs).
    pub fn new(app: Option<&str>) -> Self {
        Self {
            app: app.map(str::to_owned),
            ..Self::default()
        }
    }

    /// Counts `envelope` unless it is another app's or its run id was counted.
    pub fn add(&mut self, envelope: &Envelope) -> Added {
        if let Some(app) = &self.app
            && envelope.app.name.as_str() != app
        {
            *self
                .other_apps
                .entry(envelope.app.name.to_string())
                .or_default() += 1;
            return Added::OtherApp;
        }
        if !self.seen.insert(envelope.run_id.to_string()) {
            self.repeated += 1;
            return Added::Repeated;
        }
        self.tallies.add_envelope(envelope);
        self.counted += 1;
        Added::Counted
    }

    /// The estimates ([`estimate_tallies`]).
    pub fn estimate(&self, catalog: Option<&Catalog>) -> Vec<AggregateRow> {
        estimate_tallies(&self.tallies, catalog)
    }
}

/// Aggregates reports of every (event, field) across payloads, grouping by identical DP
/// parameters and counting each run id once. Enum rows cover the labels seen; use
/// [`aggregate_with_catalog`] to include unseen labels.
pub fn aggregate(payloads: &[Envelope]) -> Vec<AggregateRow> {
    collect(payloads).estimate(None)
}

/// Like [`aggregate`], and for enum fields whose domain digest matches the catalogue, one row per
/// label of the domain (in domain order), including labels nobody reported.
pub fn aggregate_with_catalog(payloads: &[Envelope], catalog: &Catalog) -> Vec<AggregateRow> {
    collect(payloads).estimate(Some(catalog))
}

fn collect(payloads: &[Envelope]) -> Collection {
    let mut c = Collection::new(None);
    for env in payloads {
        c.add(env);
    }
    c
}

/// The bounds a shown value and its interval are clipped to, if any.
fn bounds(params: &MechanismParams) -> Option<(f64, f64)> {
    match params {
        MechanismParams::OneBitMean { clamp, .. } => Some((clamp.min as f64, clamp.max as f64)),
        MechanismParams::DiscreteLaplace { .. } => None,
        _ => Some((0.0, 1.0)),
    }
}

/// The width a standard error must stay under to say anything: the quantity's whole range.
fn usable_width(params: &MechanismParams) -> f64 {
    match params {
        MechanismParams::OneBitMean { clamp, .. }
        | MechanismParams::DiscreteLaplace { clamp, .. } => clamp.width() as f64,
        _ => 1.0,
    }
}

/// One row from an estimate: clipping, interval and status applied the same way everywhere.
fn row(
    key: &TallyKey,
    params: &MechanismParams,
    value: Option<String>,
    e: Estimate,
) -> AggregateRow {
    let clip = |x: f64| match bounds(params) {
        Some((lo, hi)) if x.is_finite() => x.clamp(lo, hi),
        _ => x,
    };
    let status = if e.n < 2 {
        EstimateStatus::TooFewReports
    } else if !(e.value.is_finite() && e.standard_error.is_finite())
        || e.standard_error > usable_width(params)
    {
        EstimateStatus::Uninformative
    } else {
        EstimateStatus::Ok
    };
    let half = Z95 * e.standard_error;
    AggregateRow {
        event: key.event.clone(),
        field: key.field.clone(),
        mechanism: params.kind(),
        epsilon: params.epsilon(),
        value,
        estimate: e.value,
        shown: clip(e.value),
        standard_error: e.standard_error,
        ci95: (clip(e.value - half), clip(e.value + half)),
        n: e.n,
        status,
    }
}

/// De-biases every tally with its mechanism's estimator: one row per boolean field (`"true"`),
/// per label, or per mean. With a catalogue, an enum field whose domain digest matches it has one
/// row per label of the domain, in domain order, including labels nobody reported. The one
/// implementation behind `telemetry aggregate` and `telemetry-collector report`.
pub fn estimate_tallies(tallies: &Tallies, catalog: Option<&Catalog>) -> Vec<AggregateRow> {
    let mut rows = Vec::new();
    for (key, (params, g)) in &tallies.fields {
        let (event, field) = (key.event.as_str(), key.field.as_str());
        match params {
            MechanismParams::RandomizedResponse { epsilon, .. } => {
                if let Ok(e) = estimate_rr_proportion(g.ones, g.n, *epsilon) {
                    rows.push(row(key, params, Some("true".into()), e));
                }
            }
            MechanismParams::OneBitMean { epsilon, clamp, .. } => {
                if let Ok(e) = estimate_one_bit_mean(g.ones, g.n, *epsilon, clamp.min, clamp.max) {
                    rows.push(row(key, params, None, e));
                }
            }
            MechanismParams::DiscreteLaplace { .. } => {
                if let Ok(e) = estimate_discrete_laplace_mean_from_moments(&g.moments) {
                    rows.push(row(key, params, None, e));
                }
            }
            MechanismParams::KRandomizedResponse {
                epsilon, domain, ..
            } => {
                let mut labels: Vec<String> = Vec::new();
                if let Some(spec) = catalog.and_then(|c| c.field(event, field))
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
                        rows.push(row(key, params, Some(label), e));
                    }
                }
            }
            MechanismParams::RedactionOnly { .. } | MechanismParams::NotRandomized {} => {
                for (label, count) in &g.labels {
                    if let Ok(e) = estimate_plain_frequency(*count, g.n) {
                        rows.push(row(key, params, Some(label.clone()), e));
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
        let e = estimate_rr_proportion(5_000, 10_000, libm::log(3.0)).unwrap();
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
