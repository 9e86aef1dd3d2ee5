//! # telemetry-schema: what may leave a machine
//!
//! This crate describes everything the telemetry toolkit can send: the versioned payload
//! envelope ([`Envelope`]), the event catalogue an app declares ([`Catalog`]), the differential
//! privacy parameter block of every field ([`MechanismParams`]), the generated JSON Schemas
//! ([`codegen`], committed under `crates/telemetry-schema/schemas/`), validation of untrusted
//! payload bytes ([`validate_payload`]) and the estimators that de-bias collected reports
//! ([`estimate`]).
//!
//! **This crate does no I/O.** It opens no files, reads no environment variables, reads no clock,
//! opens no sockets and draws no random numbers: callers pass in the day, the identifiers and the
//! already-randomised values. The committed schemas are compiled in with `include_str!`.
//!
//! Invariant: pure — no file, env, clock, network or randomness.
//!
//! ## What an envelope can carry
//! Every string in an envelope is a closed enum ([`Os`], [`Arch`], ...), a [`Version`], an
//! identifier with a checked format ([`Identifier`], [`Label`], [`RunId`], [`SessionId`],
//! [`DailyId`], [`Day`]) or — only for fields an app explicitly declares as text — a
//! [`RedactedText`] that went through the core's redactor (at most 200 characters, never `/`, `\`,
//! `@`, control or format characters). Paths, host names, user names, IP addresses and
//! environment data have no place to go, and the schema refuses unknown properties.
//!
//! The wire format, the DP block, the estimators and the versioning rules are specified in
//! `docs/telemetry/v1/SPEC.md`.
//!
//! ## Features
//! Both are on by default, for whoever checks payloads (the CLI, a collector, CI). An app's
//! recording path needs neither: `telemetry-core` depends on this crate with
//! `default-features = false`, which keeps about 50 crates (a JSON Schema validator, its regex
//! engines, schemars) out of the app's build.
//! - `validate`: [`validate_payload`] and [`validate_catalog`], the JSON Schema check of untrusted
//!   bytes (the `jsonschema` crate). Without it, [`decode_payload`] still decodes and checks
//!   everything but the schema, and the committed schemas are still here as text.
//! - `json-schema`: the `schemars::JsonSchema` impls of the wire types and [`codegen`], which
//!   generates the committed schemas (`cargo xtask codegen`). Nothing needs it at run time.
//!
//! ## Example: build an envelope, serialise it, validate it
//! ```
//! use telemetry_schema::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ok = MechanismParams::randomized_response(3f64.ln())?;
//! let envelope = Envelope {
//!     schema: EnvelopeSchemaRef::current(),
//!     run_id: RunId::new("01912d68-783e-7a03-8467-5661c1243ad4")?,
//!     app: NameVersion::new("acme", "1.2.3")?,
//!     sdk: NameVersion::new("telemetry-core", "0.5.0")?,
//!     platform: Platform { os: Os::from_target_os("linux"), arch: Arch::from_target_arch("x86_64") },
//!     ids: Ids { session: SessionId::from_bytes([7; 16]), daily: DailyId::from_mac(&[9; 32]) },
//!     period: Period { day: Day::new(2025, 3, 14)? },
//!     events: vec![Event {
//!         name: Identifier::new("command_run")?,
//!         // already randomised by the core:
//!         fields: Fields::from([(Identifier::new("ok")?, Some(FieldValue::Bool(true)))]),
//!     }],
//!     privacy: Privacy {
//!         // No text field recorded: `not_applicable`, no counts (see `Redaction::from_counts`).
//!         redaction: Redaction::from_counts(Version::new("1.0.0")?, 0, 0, 0),
//!         dp: vec![FieldPrivacy {
//!             event: Identifier::new("command_run")?,
//!             field: Identifier::new("ok")?,
//!             params: ok,
//!         }],
//!         ledger: LedgerState { epsilon_spent: 1.1, epsilon_cap: 8.0, dropped_reports: 0 },
//!     },
//! };
//! let bytes = envelope.to_json();
//! let checked = validate_payload(bytes.as_bytes())?;
//! assert_eq!(checked.envelope, envelope);
//!
//! // A payload from a future format version is refused with a clear message.
//! let future = bytes.replace("\"version\":\"1.1.0\"", "\"version\":\"2.0.0\"");
//! let err = validate_payload(future.as_bytes()).unwrap_err();
//! assert_eq!(err.to_string(), "unsupported schema version 2.0.0 (this build knows up to 1.1.0)");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod catalog;
#[cfg(feature = "json-schema")]
pub mod codegen;
pub mod display;
pub mod dp;
pub mod envelope;
pub mod estimate;
pub mod ids;
pub mod validate;

pub use catalog::{
    CATALOG_SCHEMA_ID, CATALOG_VERSION, Catalog, CatalogError, CatalogSchemaId, CatalogSchemaRef,
    EventSpec, FieldKind, FieldSpec, PayloadMismatch,
};
pub use dp::{
    ClampRange, EnumDomain, EstimatorId, MAX_EPSILON, MechanismKind, MechanismParams, ParamError,
    PrivacyUnit, SamplerId, domain_sha256, k_rr_probabilities, rr_probabilities,
};
pub use envelope::{
    Arch, ConsistencyError, ENVELOPE_SCHEMA_ID, ENVELOPE_VERSION, Envelope, EnvelopeSchemaId,
    EnvelopeSchemaRef, Event, FieldPrivacy, FieldValue, Fields, Ids, LedgerState, MAX_EVENTS,
    MAX_FIELDS, NameVersion, Os, Period, Platform, Privacy, REDACTION_OUTCOMES_SINCE, Redaction,
    RedactionStatus, TextValue,
};
pub use estimate::{
    Added, AggregateRow, Collection, Estimate, EstimateError, EstimateStatus, Moments, Report,
    Tallies, Tally, TallyKey, Z95, aggregate, aggregate_with_catalog,
    discrete_laplace_noise_variance, estimate_discrete_laplace_mean,
    estimate_discrete_laplace_mean_from_moments, estimate_k_rr_frequencies,
    estimate_k_rr_frequency, estimate_one_bit_mean, estimate_plain_frequency,
    estimate_rr_proportion, estimate_tallies, params_key,
};
pub use ids::{
    DailyId, Day, FormatError, Identifier, Label, RedactedText, RunId, SessionId, Sha256Hex,
    Version,
};
pub use validate::{
    MAX_DEPTH, MAX_PAYLOAD_BYTES, UnsupportedVersion, ValidatedPayload, ValidationError, Violation,
    catalog_schema_json, decode_payload, envelope_schema_json,
};
#[cfg(feature = "validate")]
pub use validate::{validate_catalog, validate_payload};
