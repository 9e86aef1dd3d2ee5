//! Validation of untrusted payload bytes against the schema of the version they declare.
//!
//! Order of checks, each before any work that could cost memory proportional to a hostile input:
//! size ([`MAX_PAYLOAD_BYTES`]), UTF-8, nesting depth ([`MAX_DEPTH`], by a byte scan before parsing),
//! JSON syntax, declared version, JSON Schema, then semantic consistency
//! ([`Envelope::check_consistency`]). Nothing here panics on any input.
//!
//! A document is checked against the schema of the version it declares: the newest known
//! version of a major uses the committed generated schema, older minor versions their frozen copy
//! under `schemas/v1/released/` (so a 1.0.0 document cannot carry what 1.1.0 added).

use std::fmt;
use std::sync::OnceLock;

use serde_json::Value;

use crate::catalog::{CATALOG_VERSION, Catalog};
use crate::envelope::{ConsistencyError, ENVELOPE_SCHEMA_ID, ENVELOPE_VERSION, Envelope};
use crate::ids::Version;

/// Largest accepted document, in bytes (4 MiB).
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;
/// Deepest accepted nesting of arrays and objects (a v1 envelope needs 6).
pub const MAX_DEPTH: usize = 64;
/// At most this many schema violations are reported (the rest are counted).
pub const MAX_REPORTED_VIOLATIONS: usize = 50;

/// The committed v1 envelope schema.
pub(crate) const ENVELOPE_V1: &str = include_str!("../schemas/v1/envelope.schema.json");
/// The committed v1 catalogue schema.
pub(crate) const CATALOG_V1: &str = include_str!("../schemas/v1/catalog.schema.json");
/// The frozen envelope schema of the released format 1.0.0.
pub(crate) const ENVELOPE_V1_0_0: &str =
    include_str!("../schemas/v1/released/envelope-1.0.0.schema.json");

/// Every envelope format version this build validates, oldest first: (version, schema). The newest
/// version of a major is the committed generated schema; older minors are frozen released copies.
const ENVELOPE_VERSIONS: &[(&str, &str)] =
    &[("1.0.0", ENVELOPE_V1_0_0), (ENVELOPE_VERSION, ENVELOPE_V1)];
/// Every catalogue format version this build validates, oldest first.
const CATALOG_VERSIONS: &[(&str, &str)] = &[(CATALOG_VERSION, CATALOG_V1)];

/// A payload declared a schema version this build does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedVersion {
    /// What the document (or the caller) asked for, truncated to 80 characters.
    pub declared: String,
    /// The newest version this build knows.
    pub latest: &'static str,
}

impl fmt::Display for UnsupportedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unsupported schema version {} (this build knows up to {})",
            self.declared, self.latest
        )
    }
}

impl std::error::Error for UnsupportedVersion {}

/// One JSON Schema violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON Pointer to the offending part of the document, e.g. `/events/0/name` (`""` = root).
    pub instance_path: String,
    /// JSON Pointer into the schema, e.g. `/properties/events/items/...`.
    pub schema_path: String,
    /// The schema keyword that failed (`pattern`, `required`, `additionalProperties`, ...).
    pub keyword: String,
    /// What was expected, in words (at most 300 characters).
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.instance_path.is_empty() {
            "/"
        } else {
            &self.instance_path
        };
        write!(f, "{path}: {} ({})", self.message, self.keyword)
    }
}

/// Why a document is not a valid payload. Every variant has a clear message; none is a panic.
#[derive(Debug, Clone, PartialEq)]
pub enum ValidationError {
    /// Larger than [`MAX_PAYLOAD_BYTES`].
    TooLarge {
        /// Document size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not UTF-8.
    NotUtf8 {
        /// Byte offset of the first invalid sequence.
        valid_up_to: usize,
    },
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// Not JSON.
    Malformed {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The document is JSON but not a telemetry envelope (no `schema.id` of an envelope).
    NotAnEnvelope {
        /// What `schema.id` says, if anything.
        found: Option<String>,
    },
    /// No `schema.version` string, or one that is not a semantic version.
    MissingVersion,
    /// A version this build does not know.
    UnsupportedVersion(UnsupportedVersion),
    /// JSON Schema violations.
    Schema {
        /// The first [`MAX_REPORTED_VIOLATIONS`] violations.
        violations: Vec<Violation>,
        /// How many were found in total.
        total: usize,
    },
    /// Valid against the schema but inconsistent across sections.
    Inconsistent(Vec<ConsistencyError>),
    /// Schema-valid but refused by the Rust types (should not happen; reported, never a panic).
    Decode(String),
    /// The committed schema failed to compile (a build defect; reported, never a panic).
    Internal(String),
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { size, limit } => {
                write!(
                    f,
                    "document is {size} bytes, larger than the {limit}-byte limit"
                )
            }
            Self::NotUtf8 { valid_up_to } => {
                write!(
                    f,
                    "document is not UTF-8 (invalid byte sequence at offset {valid_up_to})"
                )
            }
            Self::TooDeep { limit } => {
                write!(
                    f,
                    "document nests arrays/objects deeper than {limit} levels"
                )
            }
            Self::Malformed {
                line,
                column,
                message,
            } => write!(
                f,
                "malformed JSON at line {line}, column {column}: {message}"
            ),
            Self::NotAnEnvelope { found } => match found {
                Some(id) => write!(
                    f,
                    "not a telemetry envelope: schema.id is {id:?}, expected {ENVELOPE_SCHEMA_ID:?}"
                ),
                None => write!(
                    f,
                    "not a telemetry envelope: no schema.id (expected {ENVELOPE_SCHEMA_ID:?})"
                ),
            },
            Self::MissingVersion => write!(
                f,
                "no schema version: /schema/version must be a version string such as \"{ENVELOPE_VERSION}\""
            ),
            Self::UnsupportedVersion(e) => e.fmt(f),
            Self::Schema { violations, total } => {
                write!(f, "{total} schema violation(s):")?;
                for v in violations {
                    write!(f, "\n  {v}")?;
                }
                if *total > violations.len() {
                    write!(f, "\n  ... and {} more", total - violations.len())?;
                }
                Ok(())
            }
            Self::Inconsistent(errors) => {
                write!(f, "{} consistency error(s):", errors.len())?;
                for e in errors {
                    write!(f, "\n  {e}")?;
                }
                Ok(())
            }
            Self::Decode(msg) => write!(f, "document does not decode: {msg}"),
            Self::Internal(msg) => write!(f, "internal error: {msg}"),
        }
    }
}

impl std::error::Error for ValidationError {}

/// A payload that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedPayload {
    /// The version it declared.
    pub version: Version,
    /// The decoded envelope.
    pub envelope: Envelope,
}

/// The newest version in `table`.
fn latest(table: &[(&'static str, &'static str)]) -> &'static str {
    table.last().map_or(ENVELOPE_VERSION, |k| k.0)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// Finds the schema for a requested version in `table` and returns its index: `"1"` or `"v1"`
/// (the newest 1.x), `"1.0"` (the newest 1.0.x), `"1.0.0"`; `None` = the newest of all. A version
/// newer than the newest known of its major is refused; a known major's version in between two
/// known ones uses the newest known version not above it.
fn lookup(
    table: &[(&'static str, &'static str)],
    version: Option<&str>,
) -> Result<usize, UnsupportedVersion> {
    let unsupported = |v: &str| UnsupportedVersion {
        declared: truncate(v, 80),
        latest: latest(table),
    };
    let Some(v) = version else {
        return table.len().checked_sub(1).ok_or_else(|| unsupported(""));
    };
    let trimmed = v.strip_prefix('v').unwrap_or(v);
    let parts: Vec<&str> = trimmed.split('.').collect();
    let nums: Option<Vec<u64>> = parts
        .iter()
        .map(|p| {
            if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                p.parse().ok()
            } else {
                None
            }
        })
        .collect();
    let Some(nums) = nums.filter(|n| (1..=3).contains(&n.len())) else {
        return Err(unsupported(v));
    };
    let major = nums[0];
    let lowest = (
        major,
        nums.get(1).copied().unwrap_or(0),
        nums.get(2).copied().unwrap_or(0),
    );
    let highest = (
        major,
        nums.get(1).copied().unwrap_or(u64::MAX),
        nums.get(2).copied().unwrap_or(u64::MAX),
    );
    let known: Vec<(usize, (u64, u64, u64))> = table
        .iter()
        .enumerate()
        .filter_map(|(i, k)| Some((i, Version::new(k.0).ok()?.triple())))
        .filter(|(_, t)| t.0 == major)
        .collect();
    match known.last() {
        Some((_, newest)) if lowest <= *newest => {}
        _ => return Err(unsupported(v)),
    }
    known
        .iter()
        .rev()
        .find(|(_, t)| *t <= highest)
        .map(|(i, _)| *i)
        .ok_or_else(|| unsupported(v))
}

/// The envelope JSON Schema for `version` (`None`: the newest), one self-contained document with
/// every definition inline under `$defs`. This is what `telemetry schema` prints. The newest
/// version is the committed generated schema; an older minor (`"1.0.0"`) is its frozen copy.
pub fn envelope_schema_json(version: Option<&str>) -> Result<&'static str, UnsupportedVersion> {
    lookup(ENVELOPE_VERSIONS, version).map(|i| ENVELOPE_VERSIONS[i].1)
}

/// The committed catalogue JSON Schema for `version` (`None`: the newest). The catalogue has its
/// own version line ([`CATALOG_VERSION`]), independent of the envelope's.
pub fn catalog_schema_json(version: Option<&str>) -> Result<&'static str, UnsupportedVersion> {
    lookup(CATALOG_VERSIONS, version).map(|i| CATALOG_VERSIONS[i].1)
}

/// Size, UTF-8 and depth checks, then parse. Shared by envelopes and catalogues.
pub fn parse_bounded(bytes: &[u8]) -> Result<Value, ValidationError> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(ValidationError::TooLarge {
            size: bytes.len(),
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| ValidationError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    check_depth(text.as_bytes())?;
    serde_json::from_str(text).map_err(|e| ValidationError::Malformed {
        line: e.line(),
        column: e.column(),
        message: truncate(&e.to_string(), 200),
    })
}

/// Scans bytes for array/object nesting deeper than [`MAX_DEPTH`], skipping string contents.
fn check_depth(bytes: &[u8]) -> Result<(), ValidationError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ValidationError::TooDeep { limit: MAX_DEPTH });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

type Compiled = Result<jsonschema::Validator, String>;

fn compile(text: &str) -> Compiled {
    let schema: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .map_err(|e| e.to_string())
}

/// The compiled schema of `ENVELOPE_VERSIONS[index]`, compiled on first use.
fn envelope_validator(index: usize) -> Result<&'static jsonschema::Validator, ValidationError> {
    static COMPILED: [OnceLock<Compiled>; ENVELOPE_VERSIONS.len()] =
        [const { OnceLock::new() }; ENVELOPE_VERSIONS.len()];
    let (Some(cell), Some((_, text))) = (COMPILED.get(index), ENVELOPE_VERSIONS.get(index)) else {
        return Err(ValidationError::Internal(format!(
            "no envelope schema number {index}"
        )));
    };
    cell.get_or_init(|| compile(text))
        .as_ref()
        .map_err(|e| ValidationError::Internal(e.clone()))
}

fn catalog_validator() -> Result<&'static jsonschema::Validator, ValidationError> {
    static V1: OnceLock<Compiled> = OnceLock::new();
    V1.get_or_init(|| compile(CATALOG_V1))
        .as_ref()
        .map_err(|e| ValidationError::Internal(e.clone()))
}

fn schema_errors(validator: &jsonschema::Validator, value: &Value) -> Result<(), ValidationError> {
    // The common case first: a valid document, checked without building any error.
    if validator.is_valid(value) {
        return Ok(());
    }
    let mut violations = Vec::new();
    let mut total = 0usize;
    for err in validator.iter_errors(value) {
        total += 1;
        if violations.len() < MAX_REPORTED_VIOLATIONS {
            violations.push(Violation {
                instance_path: err.instance_path().as_str().to_string(),
                schema_path: err.schema_path().as_str().to_string(),
                keyword: err.kind().keyword().to_string(),
                message: truncate(&err.to_string(), 300),
            });
        }
    }
    if total == 0 {
        Ok(())
    } else {
        Err(ValidationError::Schema { violations, total })
    }
}

/// Validates untrusted bytes as a telemetry envelope against the schema of the version it declares
/// (a 1.0.0 document against the frozen 1.0.0 schema), then checks cross-section consistency, and
/// returns the decoded envelope.
pub fn validate_payload(bytes: &[u8]) -> Result<ValidatedPayload, ValidationError> {
    decode(bytes, true)
}

/// Every check of [`validate_payload`] except the JSON Schema: bounds, JSON, envelope id,
/// a known version, decoding into [`Envelope`] (formats of ids, labels, versions) and
/// consistency. For listing stored payloads quickly (`telemetry show`), where compiling the
/// schema would cost more than the rest of the process; validate before trusting or sending.
pub fn decode_payload(bytes: &[u8]) -> Result<ValidatedPayload, ValidationError> {
    decode(bytes, false)
}

fn decode(bytes: &[u8], against_schema: bool) -> Result<ValidatedPayload, ValidationError> {
    let value = parse_bounded(bytes)?;
    let schema = value.get("schema");
    match schema.and_then(|s| s.get("id")).map(|id| id.as_str()) {
        Some(Some(ENVELOPE_SCHEMA_ID)) => {}
        Some(Some(other)) => {
            return Err(ValidationError::NotAnEnvelope {
                found: Some(truncate(other, 80)),
            });
        }
        _ => return Err(ValidationError::NotAnEnvelope { found: None }),
    }
    let declared = schema
        .and_then(|s| s.get("version"))
        .and_then(Value::as_str)
        .ok_or(ValidationError::MissingVersion)?;
    let version = Version::new(declared).map_err(|_| {
        ValidationError::UnsupportedVersion(UnsupportedVersion {
            declared: truncate(declared, 80),
            latest: latest(ENVELOPE_VERSIONS),
        })
    })?;
    if declared.contains('-') {
        // Pre-releases of the format are never released; refuse them explicitly.
        return Err(ValidationError::UnsupportedVersion(UnsupportedVersion {
            declared: truncate(declared, 80),
            latest: latest(ENVELOPE_VERSIONS),
        }));
    }
    let index =
        lookup(ENVELOPE_VERSIONS, Some(declared)).map_err(ValidationError::UnsupportedVersion)?;
    if against_schema {
        schema_errors(envelope_validator(index)?, &value)?;
    }
    let envelope: Envelope = serde_json::from_value(value)
        .map_err(|e| ValidationError::Decode(truncate(&e.to_string(), 300)))?;
    envelope
        .check_consistency()
        .map_err(ValidationError::Inconsistent)?;
    Ok(ValidatedPayload { version, envelope })
}

/// Validates untrusted bytes as an event catalogue (schema, then [`Catalog::check`]).
pub fn validate_catalog(bytes: &[u8]) -> Result<Catalog, ValidationError> {
    let value = parse_bounded(bytes)?;
    if let Some(declared) = value.pointer("/schema/version").and_then(Value::as_str) {
        lookup(CATALOG_VERSIONS, Some(declared)).map_err(ValidationError::UnsupportedVersion)?;
    }
    schema_errors(catalog_validator()?, &value)?;
    let catalog: Catalog = serde_json::from_value(value)
        .map_err(|e| ValidationError::Decode(truncate(&e.to_string(), 300)))?;
    catalog
        .check()
        .map_err(|e| ValidationError::Decode(e.to_string()))?;
    Ok(catalog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_lookup() {
        assert_eq!(envelope_schema_json(None), Ok(ENVELOPE_V1));
        for (ok, schema) in [
            ("1", ENVELOPE_V1),
            ("v1", ENVELOPE_V1),
            ("1.1", ENVELOPE_V1),
            ("1.1.0", ENVELOPE_V1),
            ("1.0", ENVELOPE_V1_0_0),
            ("1.0.0", ENVELOPE_V1_0_0),
            ("1.0.3", ENVELOPE_V1_0_0),
        ] {
            assert_eq!(envelope_schema_json(Some(ok)), Ok(schema), "{ok}");
        }
        assert_ne!(ENVELOPE_V1, ENVELOPE_V1_0_0);
        for bad in [
            "2", "1.2", "1.2.0", "1.1.1", "0.9.0", "", "x", "1.0.0.0", "1..0",
        ] {
            let err = envelope_schema_json(Some(bad)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("unsupported schema version {bad} (this build knows up to 1.1.0)")
            );
        }
        // The catalogue has its own version line, still 1.0.0.
        assert_eq!(catalog_schema_json(Some("1.0.0")), Ok(CATALOG_V1));
        let err = catalog_schema_json(Some("1.1.0")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported schema version 1.1.0 (this build knows up to 1.0.0)"
        );
    }

    #[test]
    fn depth_scan_ignores_brackets_in_strings() {
        let inner = "[".repeat(100);
        assert!(check_depth(format!("{{\"a\": \"{inner}\"}}").as_bytes()).is_ok());
        assert!(check_depth(format!("{{\"a\": \"\\\"{inner}\"}}").as_bytes()).is_ok());
        assert_eq!(
            check_depth(inner.as_bytes()),
            Err(ValidationError::TooDeep { limit: MAX_DEPTH })
        );
    }

    #[test]
    fn committed_schemas_compile() {
        for index in 0..ENVELOPE_VERSIONS.len() {
            envelope_validator(index).unwrap();
        }
        assert!(envelope_validator(ENVELOPE_VERSIONS.len()).is_err());
        catalog_validator().unwrap();
    }
}
