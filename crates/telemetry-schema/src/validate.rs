//! Validation of untrusted payload bytes against the schema of the version they declare.
//!
//! Order of checks, each before any work that could cost memory proportional to a hostile input:
//! size ([`MAX_PAYLOAD_BYTES`]), UTF-8, nesting depth ([`MAX_DEPTH`], by a byte scan before parsing),
//! JSON syntax, declared version, JSON Schema, then semantic consistency
//! ([`Envelope::check_consistency`]). Nothing here panics on any input.
//!
//! Memory stays within a small multiple of [`MAX_PAYLOAD_BYTES`] for any document: valid ones
//! are decoded straight into their types (the fast path); the others are checked in pieces by
//! the `bounded` module (event by event, DP block by DP block, at most
//! [`MAX_REPORTED_VIOLATIONS`] violations kept and about [`MAX_COUNTED_VIOLATIONS`] counted),
//! never as one JSON tree with every violation at once.
//!
//! A document is checked against the schema of the version it declares: the newest known
//! version of a major uses the committed generated schema, older minor versions their frozen copy
//! under `schemas/v1/released/` (so a 1.0.0 document cannot carry what 1.1.0 added).
//!
//! The JSON Schema check ([`validate_payload`], [`validate_catalog`]) needs the `validate` feature
//! (on by default): it links a JSON Schema validator and its regex engines, which an app that
//! only records payloads does not need. [`decode_payload`], the committed schemas' text and the
//! error types are always here.

use std::fmt;
#[cfg(feature = "validate")]
use std::sync::OnceLock;

#[cfg(feature = "validate")]
use serde::Deserialize;
use serde_json::Value;

use crate::catalog::CATALOG_VERSION;
#[cfg(feature = "validate")]
use crate::catalog::Catalog;
use crate::envelope::{ConsistencyError, ENVELOPE_SCHEMA_ID, ENVELOPE_VERSION, Envelope};
#[cfg(feature = "validate")]
use crate::envelope::{Event, MAX_EVENTS};
use crate::ids::Version;

/// Largest accepted document, in bytes (4 MiB).
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;
/// Deepest accepted nesting of arrays and objects (a v1 envelope needs 6).
pub const MAX_DEPTH: usize = 64;
/// At most this many schema violations are reported (the rest are counted).
pub const MAX_REPORTED_VIOLATIONS: usize = 50;
/// Counting of schema violations stops about here (in `events`, and again in `privacy.dp`):
/// the error then says "at least" so many. Counting them all would cost time in proportion to
/// the document (4 MiB of empty events holds 2.8 million violations), for no more information.
pub const MAX_COUNTED_VIOLATIONS: usize = 10_000;
/// Characters of a violation's message kept (longer ones end with `…`).
#[cfg(feature = "validate")]
const MESSAGE_CHARS: usize = 300;
/// JSON nodes the fast path builds outside `events` (a valid document has at most about 4096
/// DP blocks of about 20): a document with more goes the reference way, which bounds them.
#[cfg(feature = "validate")]
const FAST_PATH_NODES: usize = 1 << 17;
/// The members of an envelope (every version's; `the_fast_path_knows_every_member` checks them
/// against the schemas): the fast path leaves a document with any other to the reference path.
#[cfg(feature = "validate")]
const ENVELOPE_MEMBERS: [&str; 9] = [
    "app", "events", "ids", "period", "platform", "privacy", "run_id", "schema", "sdk",
];

#[cfg(feature = "validate")]
mod bounded;

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
        /// Whether `total` is all of them. `false` when counting stopped at
        /// [`MAX_COUNTED_VIOLATIONS`], or when part of a document far outside the schema was
        /// not examined (more members or items than any schema version allows, or more than
        /// a message shows of a value where none is allowed): `total` is then a lower bound.
        complete: bool,
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
            Self::Schema {
                violations,
                total,
                complete,
            } => {
                let at_least = if *complete { "" } else { "at least " };
                write!(f, "{at_least}{total} schema violation(s):")?;
                for v in violations {
                    write!(f, "\n  {v}")?;
                }
                match total.saturating_sub(violations.len()) {
                    0 if *complete => {}
                    0 => write!(f, "\n  ... and possibly more")?,
                    more => write!(f, "\n  ... and {at_least}{more} more")?,
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
    let text = bounded_text(bytes)?;
    serde_json::from_str(text).map_err(malformed)
}

/// Size, UTF-8 and depth checks: the bytes as text, not yet parsed.
fn bounded_text(bytes: &[u8]) -> Result<&str, ValidationError> {
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
    Ok(text)
}

fn malformed(e: serde_json::Error) -> ValidationError {
    ValidationError::Malformed {
        line: e.line(),
        column: e.column(),
        message: truncate(&e.to_string(), 200),
    }
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

#[cfg(feature = "validate")]
type Compiled = Result<jsonschema::Validator, String>;

#[cfg(feature = "validate")]
fn compile(text: &str) -> Compiled {
    let schema: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .map_err(|e| e.to_string())
}

#[cfg(feature = "validate")]
static COMPILED: [OnceLock<Compiled>; ENVELOPE_VERSIONS.len()] =
    [const { OnceLock::new() }; ENVELOPE_VERSIONS.len()];

/// Whether the schema of `ENVELOPE_VERSIONS[index]` is compiled already.
#[cfg(feature = "validate")]
fn envelope_validator_ready(index: usize) -> bool {
    COMPILED.get(index).is_some_and(|cell| cell.get().is_some())
}

/// The compiled schema of `ENVELOPE_VERSIONS[index]`, compiled on first use.
#[cfg(feature = "validate")]
fn envelope_validator(index: usize) -> Result<&'static jsonschema::Validator, ValidationError> {
    let (Some(cell), Some((_, text))) = (COMPILED.get(index), ENVELOPE_VERSIONS.get(index)) else {
        return Err(ValidationError::Internal(format!(
            "no envelope schema number {index}"
        )));
    };
    cell.get_or_init(|| compile(text))
        .as_ref()
        .map_err(|e| ValidationError::Internal(e.clone()))
}

#[cfg(feature = "validate")]
fn catalog_validator() -> Result<&'static jsonschema::Validator, ValidationError> {
    static V1: OnceLock<Compiled> = OnceLock::new();
    V1.get_or_init(|| compile(CATALOG_V1))
        .as_ref()
        .map_err(|e| ValidationError::Internal(e.clone()))
}

#[cfg(feature = "validate")]
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
                message: truncate(&err.to_string(), MESSAGE_CHARS),
            });
        }
    }
    if total == 0 {
        Ok(())
    } else {
        Err(ValidationError::Schema {
            violations,
            total,
            complete: true,
        })
    }
}

/// Validates untrusted bytes as a telemetry envelope against the schema of the version it declares
/// (a 1.0.0 document against the frozen 1.0.0 schema), then checks cross-section consistency, and
/// returns the decoded envelope.
#[cfg(feature = "validate")]
pub fn validate_payload(bytes: &[u8]) -> Result<ValidatedPayload, ValidationError> {
    check_size(bytes)?;
    // Until every schema is compiled (the first validations in a process): compiling one costs
    // about as much as parsing a large document, so the schema of the version the document
    // declares (the newest if that cannot be read cheaply) is compiled on a second thread
    // meanwhile. Computation only; the result is the same.
    if !(0..ENVELOPE_VERSIONS.len()).all(envelope_validator_ready) {
        let index = peek_declared_index(bytes).unwrap_or(ENVELOPE_VERSIONS.len() - 1);
        if !envelope_validator_ready(index) {
            return std::thread::scope(|scope| {
                scope.spawn(|| envelope_validator(index));
                decode_checked(bytes)
            });
        }
    }
    decode_checked(bytes)
}

/// Every check of [`validate_payload`] except the JSON Schema: bounds, JSON, envelope id,
/// a known version, decoding into [`Envelope`] (formats of ids, labels, versions) and
/// consistency. For listing stored payloads quickly (`telemetry show`), where compiling the
/// schema would cost more than the rest of the process; validate before trusting or sending.
/// Available without the `validate` feature.
pub fn decode_payload(bytes: &[u8]) -> Result<ValidatedPayload, ValidationError> {
    check_size(bytes)?;
    // The typed fast path first; whatever it does not accept goes the reference way, whose
    // errors are reported.
    decode_typed(bytes).unwrap_or_else(|| {
        let value = parse_bounded(bytes)?;
        let (version, _) = declared_version(&value)?;
        decode_value(value, version)
    })
}

fn check_size(bytes: &[u8]) -> Result<(), ValidationError> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(ValidationError::TooLarge {
            size: bytes.len(),
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    Ok(())
}

/// The index of the schema a document declares, read from its top-level `schema` member and
/// nothing after it (the core writes that member first). `None` when there is no readable,
/// known version before the document ends or stops being JSON; the full decode reports why.
#[cfg(feature = "validate")]
fn peek_declared_index(bytes: &[u8]) -> Option<usize> {
    use serde::de::{self, Deserializer as _, IgnoredAny, MapAccess};

    #[derive(Deserialize)]
    struct Declared {
        version: String,
    }

    struct Peek<'a>(&'a mut Option<usize>);

    impl<'de> de::Visitor<'de> for Peek<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            // Top-level member names only: a handful of short strings.
            while let Some(name) = map.next_key::<String>()? {
                if name == "schema" {
                    let declared: Declared = map.next_value()?;
                    *self.0 = version_index(&declared.version).ok().map(|(_, i)| i);
                    // Found: stop here rather than read the rest of the document.
                    return Err(de::Error::custom("declared version found"));
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }

    let mut found = None;
    let _stopped = serde_json::Deserializer::from_slice(bytes).deserialize_map(Peek(&mut found));
    found
}

/// The fast path first; whatever it does not accept goes the reference way, the bounded one
/// ([`bounded::decode_bounded`], whose result is [`decode_whole`]'s). The fast path skips the
/// UTF-8 and depth scans: serde_json checks UTF-8 as it reads, a typed envelope cannot nest
/// deeper than a few levels, and anything it refuses is scanned by the reference.
#[cfg(feature = "validate")]
fn decode_checked(bytes: &[u8]) -> Result<ValidatedPayload, ValidationError> {
    decode_split(bytes).unwrap_or_else(|| {
        let text = bounded_text(bytes)?;
        let guess = peek_declared_index(bytes).unwrap_or(ENVELOPE_VERSIONS.len() - 1);
        bounded::decode_bounded(text, guess)
    })
}

/// The fast path without the schema: the typed [`Envelope`] straight from the bytes, then the
/// header checks of [`declared_version`] on what it decoded. `None`: not accepted here (the
/// reference path decides and reports).
fn decode_typed(bytes: &[u8]) -> Option<Result<ValidatedPayload, ValidationError>> {
    let envelope: Envelope = serde_json::from_slice(bytes).ok()?;
    Some(
        version_index(envelope.schema.version.as_str()).and_then(|(version, _)| {
            envelope
                .check_consistency()
                .map_err(ValidationError::Inconsistent)?;
            Ok(ValidatedPayload { version, envelope })
        }),
    )
}

/// The reference path: the whole document as one JSON value, checked against the whole schema,
/// then decoded. Slow for large documents (every event becomes a tree of maps first), and the
/// one whose errors are reported: any document the fast path does not accept comes here.
#[cfg(feature = "validate")]
fn decode_whole(text: &str, against_schema: bool) -> Result<ValidatedPayload, ValidationError> {
    let value: Value = serde_json::from_str(text).map_err(malformed)?;
    let (version, index) = declared_version(&value)?;
    if against_schema {
        schema_errors(envelope_validator(index)?, &value)?;
    }
    decode_value(value, version)
}

/// A document's JSON value (checked against the schema, or not to be) as an [`Envelope`] whose
/// sections are consistent.
fn decode_value(value: Value, version: Version) -> Result<ValidatedPayload, ValidationError> {
    let envelope: Envelope = serde_json::from_value(value)
        .map_err(|e| ValidationError::Decode(truncate(&e.to_string(), 300)))?;
    envelope
        .check_consistency()
        .map_err(ValidationError::Inconsistent)?;
    Ok(ValidatedPayload { version, envelope })
}

/// The fast path, for documents that turn out valid: `events` is decoded straight into typed
/// [`Event`]s, everything else into a small JSON value that is checked against the schema with
/// `events` empty. `None` means "not accepted here": the caller runs [`decode_whole`], so
/// every error, and every verdict, is the reference path's.
///
/// Same verdict because a typed [`Event`] decodes only what the schema's `Event` definition
/// accepts (its checked strings are the schema's patterns, [`FieldValue`] its `anyOf`, with the
/// same integer range and field count), and the root schema asks of `events` only an array of at
/// most [`MAX_EVENTS`] of them. `fast_path_agrees_with_the_reference` holds both paths equal on
/// generated documents; `root_asks_of_events_only_items_and_count` pins the root schema.
#[cfg(feature = "validate")]
fn decode_split(bytes: &[u8]) -> Option<Result<ValidatedPayload, ValidationError>> {
    let Split {
        events: Some(events),
        rest,
    } = serde_json::from_slice(bytes).ok()?
    else {
        return None;
    };
    if events.len() > MAX_EVENTS {
        return None;
    }
    let mut skeleton = Value::Object(rest);
    let (version, index) = match declared_version(&skeleton) {
        Ok(found) => found,
        Err(e) => return Some(Err(e)),
    };
    skeleton["events"] = Value::Array(Vec::new());
    if !envelope_validator(index).ok()?.is_valid(&skeleton) {
        return None;
    }
    let mut envelope: Envelope = serde_json::from_value(skeleton).ok()?;
    envelope.events = events;
    Some(match envelope.check_consistency() {
        Ok(()) => Ok(ValidatedPayload { version, envelope }),
        Err(errors) => Err(ValidationError::Inconsistent(errors)),
    })
}

/// A top-level JSON object with `events` decoded into typed events and every other member kept
/// as JSON (at most [`FAST_PATH_NODES`] nodes of it). A repeated member, or more nodes, is
/// refused (the reference path then decides).
#[cfg(feature = "validate")]
struct Split {
    events: Option<Vec<Event>>,
    rest: serde_json::Map<String, Value>,
}

#[cfg(feature = "validate")]
impl<'de> Deserialize<'de> for Split {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Split;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Split, A::Error> {
                let mut split = Split {
                    events: None,
                    rest: serde_json::Map::new(),
                };
                let mut budget = FAST_PATH_NODES;
                while let Some(key) = map.next_key::<String>()? {
                    if !ENVELOPE_MEMBERS.contains(&key.as_str()) {
                        // Refused by the schema whatever follows: not worth building.
                        return Err(serde::de::Error::custom("unknown member"));
                    }
                    let repeated = if key == "events" {
                        split.events.replace(map.next_value()?).is_some()
                    } else {
                        let value = map.next_value_seed(bounded::Counted(&mut budget))?;
                        split.rest.insert(key, value).is_some()
                    };
                    if repeated {
                        return Err(serde::de::Error::custom("repeated member"));
                    }
                }
                Ok(split)
            }
        }

        deserializer.deserialize_map(Visitor)
    }
}

/// The envelope id and declared version, and the index of that version's schema.
fn declared_version(value: &Value) -> Result<(Version, usize), ValidationError> {
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
    version_index(declared)
}

/// A declared envelope version and the index of its schema, or why it is not supported.
fn version_index(declared: &str) -> Result<(Version, usize), ValidationError> {
    let unsupported = || {
        ValidationError::UnsupportedVersion(UnsupportedVersion {
            declared: truncate(declared, 80),
            latest: latest(ENVELOPE_VERSIONS),
        })
    };
    let version = Version::new(declared).map_err(|_| unsupported())?;
    if declared.contains('-') {
        // Pre-releases of the format are never released; refuse them explicitly.
        return Err(unsupported());
    }
    let index =
        lookup(ENVELOPE_VERSIONS, Some(declared)).map_err(ValidationError::UnsupportedVersion)?;
    Ok((version, index))
}

/// Validates untrusted bytes as an event catalogue (schema, then [`Catalog::check`]).
#[cfg(feature = "validate")]
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

    /// What `show` relies on in an app built without `validate`: every check but the schema.
    #[test]
    fn decode_payload_needs_no_validator() {
        let valid = include_bytes!("../fixtures/v1/valid/full.json");
        let decoded = decode_payload(valid).unwrap();
        assert_eq!(decoded.version.as_str(), "1.0.0");
        assert!(!decoded.envelope.events.is_empty());

        let refused = |bytes: &[u8]| decode_payload(bytes).unwrap_err();
        assert!(matches!(
            refused(include_bytes!("../fixtures/v1/invalid/malformed_json.json")),
            ValidationError::Malformed { .. }
        ));
        assert!(matches!(
            refused(include_bytes!(
                "../fixtures/v1/invalid/future_major_version.json"
            )),
            ValidationError::UnsupportedVersion(_)
        ));
        assert!(matches!(
            refused(include_bytes!(
                "../fixtures/v1/invalid/not_an_envelope.json"
            )),
            ValidationError::NotAnEnvelope { found: Some(_) }
        ));
        assert!(matches!(
            refused(&vec![b' '; MAX_PAYLOAD_BYTES + 1]),
            ValidationError::TooLarge { .. }
        ));
        // Refused by the typed decode, not only by the schema: a run id that is not a UUIDv7.
        let text = std::str::from_utf8(valid).unwrap();
        let run_id = "01912d68-783e-7a03-8467-5661c1243ad4";
        assert!(text.contains(run_id));
        let bad = text.replace(run_id, "01912d68-783e-4a03-8467-5661c1243ad4");
        assert!(matches!(
            refused(bad.as_bytes()),
            ValidationError::Decode(_)
        ));
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
    #[cfg(feature = "validate")]
    fn the_declared_version_is_peeked_from_the_schema_member_alone() {
        let schema =
            |version: &str| format!(r#"{{"id":"{ENVELOPE_SCHEMA_ID}","version":"{version}"}}"#);
        let (old, new) = (Some(0), Some(ENVELOPE_VERSIONS.len() - 1));
        let cases = [
            (format!(r#"{{"schema":{}}}"#, schema("1.0.0")), old),
            (format!(r#"{{"schema":{}}}"#, schema(ENVELOPE_VERSION)), new),
            // Not first: the members before it are skipped, not decoded.
            (
                format!(
                    r#"{{"run_id":7,"events":[[1,{{}}]],"schema":{}}}"#,
                    schema("1.0.0")
                ),
                old,
            ),
            // Whatever follows the schema member is not read: broken JSON after it still peeks.
            (
                format!(r#"{{"schema":{},"events":[}}"#, schema("1.0.0")),
                old,
            ),
            (format!(r#"{{"schema":{}}}"#, schema("9.0.0")), None),
            (format!(r#"{{"schema":{}}}"#, schema("1.0.0-rc.1")), None),
            (r#"{"schema":{"version":7}}"#.to_owned(), None),
            (r#"{"schema":"1.0.0"}"#.to_owned(), None),
            (r#"{"events":[]}"#.to_owned(), None),
            (r#"[{"schema":{"version":"1.0.0"}}]"#.to_owned(), None),
            (r#"{"schema":"#.to_owned(), None),
            (String::new(), None),
            // Nesting far beyond serde_json's recursion limit before the member: skipped without
            // recursion (no stack overflow), and the member after it is still found.
            (
                format!(
                    r#"{{"a":{}0{},"schema":{}}}"#,
                    "[".repeat(100_000),
                    "]".repeat(100_000),
                    schema("1.0.0")
                ),
                old,
            ),
        ];
        for (document, expected) in cases {
            assert_eq!(
                peek_declared_index(document.as_bytes()),
                expected,
                "{:.120}",
                document
            );
        }
    }

    #[test]
    #[cfg(feature = "validate")]
    fn committed_schemas_compile() {
        for index in 0..ENVELOPE_VERSIONS.len() {
            envelope_validator(index).unwrap();
        }
        assert!(envelope_validator(ENVELOPE_VERSIONS.len()).is_err());
        catalog_validator().unwrap();
    }

    /// Generated documents around valid fixtures: events with valid, mistyped and malformed
    /// values (edge strings, integers at and beyond ±2^53, floats, objects with extra members,
    /// too many fields, repeated members), versions 1.0.x and 1.1.0, top-level damage.
    #[cfg(feature = "validate")]
    mod differential {
        use super::ValidationError;
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        use serde_json::{Value, json};

        const BASES: [&str; 3] = [
            include_str!("../fixtures/v1/valid/full.json"),
            include_str!("../fixtures/v1/valid/redaction_redacted.json"),
            include_str!("../fixtures/v1/valid/redaction_rejected.json"),
        ];
        const CHARS: [char; 18] = [
            'a', 'z', '0', '9', '_', '.', '-', 'A', '/', '\\', '@', ' ', '\u{1}', '\u{7f}',
            '\u{85}', 'é', '"', 'x',
        ];

        fn string(rng: &mut StdRng) -> String {
            let len = match rng.random_range(0..20) {
                0 => rng.random_range(60..70),
                1 => rng.random_range(195..205),
                2 => 0,
                _ => rng.random_range(1..6),
            };
            let pure = rng.random_bool(0.8);
            (0..len)
                .map(|i| {
                    if pure && i > 0 {
                        CHARS[rng.random_range(0..7)]
                    } else if pure {
                        CHARS[rng.random_range(0..4)]
                    } else {
                        CHARS[rng.random_range(0..CHARS.len())]
                    }
                })
                .collect()
        }

        fn integer(rng: &mut StdRng) -> Value {
            match rng.random_range(0..24) {
                0 => json!(9_007_199_254_740_991i64),
                1 => json!(-9_007_199_254_740_991i64),
                2 => json!(9_007_199_254_740_992i64),
                3 => json!(-9_007_199_254_740_992i64),
                4 => json!(u64::MAX),
                5 => json!(i64::MIN),
                _ => json!(rng.random_range(-100i64..100)),
            }
        }

        fn version(rng: &mut StdRng) -> String {
            match rng.random_range(0..5) {
                0 => "1.0.0".into(),
                1 => "01.2.3".into(),
                2 => "1.2.3-rc.1".into(),
                3 => "1.2".into(),
                _ => format!(
                    "{}.{}.{}",
                    rng.random_range(0..3),
                    rng.random_range(0..12),
                    0
                ),
            }
        }

        /// A value for a field whose mechanism is `mechanism`: usually the right type.
        fn value(rng: &mut StdRng, mechanism: &str) -> Value {
            if rng.random_bool(0.92) {
                return match mechanism {
                    "randomized_response" | "one_bit_mean" => json!(rng.random_bool(0.5)),
                    "discrete_laplace" => integer(rng),
                    "redaction_only" => json!({ "redacted": string(rng) }),
                    "not_randomized" if rng.random_bool(0.5) => json!(version(rng)),
                    _ => json!(string(rng)),
                };
            }
            match rng.random_range(0..9) {
                0 => Value::Null,
                1 => json!(rng.random_bool(0.5)),
                2 => integer(rng),
                3 => json!(1.0),
                4 => json!(2.5),
                5 => json!(string(rng)),
                6 => json!({ "redacted": string(rng), "extra": 1 }),
                7 => json!({}),
                _ => json!([string(rng)]),
            }
        }

        fn event(rng: &mut StdRng, blocks: &[(String, String, String)]) -> Value {
            let (name, ..) = &blocks[rng.random_range(0..blocks.len())];
            let mut fields = serde_json::Map::new();
            for (event, field, mechanism) in blocks {
                if event == name && rng.random_bool(0.8) {
                    fields.insert(field.clone(), value(rng, mechanism));
                }
            }
            match rng.random_range(0..20) {
                0 => {
                    fields.insert(string(rng), json!(true));
                }
                1 => {
                    for i in 0..65 {
                        fields.insert(format!("f{i}"), Value::Null);
                    }
                }
                _ => {}
            }
            let mut event = json!({ "name": name, "fields": fields });
            match rng.random_range(0..25) {
                0 => event["name"] = json!(string(rng)),
                1 => event["extra"] = json!(1),
                2 => event = json!([name]),
                _ => {}
            }
            event
        }

        /// What the bounded reference path bounds, in small and large: arrays longer than the
        /// schema allows, unknown and extra members (a few, and more than it keeps), values
        /// where the schema has none of their kind (small, and larger than it keeps), items
        /// that are not objects, DP blocks with errors.
        fn set(doc: &mut Value, parent: &str, name: &str, value: Value) {
            if let Some(object) = doc.pointer_mut(parent).and_then(Value::as_object_mut) {
                object.insert(name.to_owned(), value);
            }
        }

        fn hostile(rng: &mut StdRng, doc: &mut Value) {
            let events = doc["events"].as_array().cloned().unwrap_or_default();
            let garbage = |rng: &mut StdRng, nodes: usize| -> Value {
                match rng.random_range(0..3) {
                    0 => Value::Array((0..nodes).map(|i| json!(i % 7)).collect()),
                    1 => json!({ "a": [[1, 2], { "b": (0..nodes).collect::<Vec<_>>() }] }),
                    _ => Value::Object(
                        (0..nodes)
                            .map(|i| (format!("k{:03}", (i * 7919) % 1000), json!([i])))
                            .collect(),
                    ),
                }
            };
            let nodes = if rng.random_bool(0.2) {
                rng.random_range(1000..1400)
            } else {
                rng.random_range(0..20)
            };
            let members = if rng.random_bool(0.2) {
                rng.random_range(60..140)
            } else {
                rng.random_range(1..5)
            };
            // Documents with more items than the schema allows are slow to check (the reference
            // path in a debug build), so a few only.
            let long = rng.random_bool(0.04);
            match rng.random_range(0..14) {
                0 if long => {
                    let n = super::MAX_EVENTS + rng.random_range(0..3);
                    let mut all: Vec<Value> = (0..n)
                        .map(|i| {
                            events
                                .get(i % events.len().max(1))
                                .cloned()
                                .unwrap_or(json!({"name": "a", "fields": {}}))
                        })
                        .collect();
                    for _ in 0..rng.random_range(0..4) {
                        let at = rng.random_range(0..n);
                        all[at] = json!({ "name": "Bad", "fields": { "x": [] } });
                    }
                    doc["events"] = Value::Array(all);
                }
                1 if long => {
                    let first = doc.pointer("/privacy/dp/0").cloned().unwrap_or(json!({}));
                    let n = 4096 + rng.random_range(0..3);
                    let mut all = vec![first; n];
                    if rng.random_bool(0.5) {
                        all[rng.random_range(0..n)] = json!({ "event": "a" });
                    }
                    doc["privacy"]["dp"] = Value::Array(all);
                }
                2 => {
                    for i in 0..members {
                        set(doc, "", &format!("extra{i}"), json!(i));
                    }
                }
                3 => {
                    if let Some(fields) = doc
                        .pointer_mut("/events/0/fields")
                        .and_then(Value::as_object_mut)
                    {
                        for i in 0..members {
                            let name = if i % 3 == 0 {
                                format!("F{i}")
                            } else {
                                format!("f{i}")
                            };
                            fields.insert(name, if i % 2 == 0 { json!(null) } else { json!([i]) });
                        }
                    }
                }
                4 => {
                    if let Some(params) = doc
                        .pointer_mut("/privacy/dp/1/params")
                        .and_then(Value::as_object_mut)
                    {
                        for i in 0..members {
                            params.insert(format!("p{i}"), json!(i));
                        }
                        params.remove("epsilon");
                    }
                }
                5 => set(doc, "", "run_id", garbage(rng, nodes)),
                6 => set(doc, "/period", "day", garbage(rng, nodes)),
                7 => set(doc, "/events/0", "name", garbage(rng, nodes)),
                8 => set(doc, "/privacy/dp/0/params", "clamp", garbage(rng, nodes)),
                9 => set(doc, "/schema", "extra", garbage(rng, nodes)),
                10 => {
                    let items = [json!(0), json!("x"), json!([]), json!(null), json!([{}])];
                    if let Some(all) = doc["events"].as_array_mut() {
                        all.push(items[rng.random_range(0..items.len())].clone());
                    }
                }
                11 => set(doc, "/privacy/dp/0", "event", json!("Not An Identifier")),
                12 => doc["events"] = garbage(rng, nodes),
                _ => doc["privacy"] = garbage(rng, nodes),
            }
        }

        fn document(rng: &mut StdRng) -> Vec<u8> {
            let mut doc: Value = serde_json::from_str(BASES[rng.random_range(0..BASES.len())])
                .expect("fixture parses");
            let blocks: Vec<(String, String, String)> = doc["privacy"]["dp"]
                .as_array()
                .expect("dp blocks")
                .iter()
                .map(|b| {
                    let text = |v: &Value| v.as_str().expect("string").to_owned();
                    (
                        text(&b["event"]),
                        text(&b["field"]),
                        text(&b["params"]["mechanism"]),
                    )
                })
                .collect();
            let events: Vec<Value> = (0..rng.random_range(0..4))
                .map(|_| event(rng, &blocks))
                .collect();
            doc["events"] = Value::Array(events);
            match rng.random_range(0..50) {
                0 => doc["schema"]["version"] = json!("1.0.0"),
                1 => doc["schema"]["version"] = json!("1.0.7"),
                2 => doc["schema"]["version"] = json!("1.1.0"),
                3 => doc["schema"]["version"] = json!("1.2.0"),
                4 => doc["extra"] = json!(1),
                5 => drop(doc.as_object_mut().expect("object").remove("ids")),
                6 => doc["events"] = json!({}),
                7 => doc["privacy"]["redaction"]["redacted_values"] = json!(0),
                8 => doc["period"]["day"] = json!("2026-02-30"),
                _ => {}
            }
            if rng.random_bool(0.3) {
                hostile(rng, &mut doc);
            }
            let text = serde_json::to_string(&doc).expect("serialises");
            let deep = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let text = match rng.random_range(0..50) {
                0 => text.replacen("\"events\":", "\"events\":[],\"events\":", 1),
                // Repeated members whose first value has streams: the last one counts.
                5 => text.replacen("\"events\":", "\"events\":[{},7],\"events\":", 1),
                6 => text.replacen(
                    "\"privacy\":",
                    "\"privacy\":{\"dp\":[{},0]},\"privacy\":",
                    1,
                ),
                7 => text.replacen("\"dp\":", "\"dp\":[[]],\"dp\":", 1),
                // A first `schema` member that is not the one that counts (the items are then
                // checked against the version it declares first, and read again).
                8 => text.replacen(
                    "{",
                    "{\"schema\":{\"id\":\"telemetry-toolkit.envelope\",\"version\":\"1.0.0\"},",
                    1,
                ),
                9 => text.replacen(
                    "{",
                    "{\"schema\":{\"id\":\"telemetry-toolkit.envelope\",\"version\":\"1.1.0\"},",
                    1,
                ),
                1 => text.replacen("\"name\":", "\"name\":\"x\",\"name\":", 1),
                2 => text.replacen("\"run_id\":", "\"run_id\":\"x\",\"run_id\":", 1),
                3 => text.replacen("{", &format!("{{\"deep\":{},", deep(70)), 1),
                4 => text.replacen("{", &format!("{{\"deep\":{},", deep(300)), 1),
                _ => text,
            };
            let mut bytes = text.into_bytes();
            if rng.random_range(0..50) == 0 {
                let at = rng.random_range(0..bytes.len());
                bytes[at] = 0xff;
            }
            bytes
        }

        #[test]
        fn fast_path_agrees_with_the_reference() {
            let mut rng = StdRng::seed_from_u64(0x7e1e_3e77);
            let (mut accepted, mut refused, mut pruned, mut long) = (0, 0, 0, 0);
            for _ in 0..3000 {
                let bytes = document(&mut rng);
                long += usize::from(bytes.len() > 400_000);
                for against_schema in [true, false] {
                    let fast = if against_schema {
                        super::validate_payload(&bytes)
                    } else {
                        super::decode_payload(&bytes)
                    };
                    let reference = super::bounded_text(&bytes)
                        .and_then(|text| super::decode_whole(text, against_schema));
                    let text = String::from_utf8_lossy(&bytes);
                    match (&fast, &reference) {
                        // Where part of the document is beyond what the bounded path keeps, it
                        // says so: the same verdict, and at most the reference's violations.
                        (
                            Err(ValidationError::Schema {
                                total,
                                complete: false,
                                ..
                            }),
                            Err(ValidationError::Schema { total: all, .. }),
                        ) => {
                            assert!(*total >= 1 && total <= all, "{total} / {all}: {text:.300}");
                            pruned += 1;
                        }
                        _ => assert_eq!(
                            fast, reference,
                            "schema: {against_schema}, document: {text:.2000}"
                        ),
                    }
                    if fast.is_ok() {
                        accepted += 1;
                    } else {
                        refused += 1;
                    }
                }
            }
            // Both outcomes are exercised in earnest, or the comparison proves little.
            assert!(accepted > 1000 && refused > 2000, "{accepted} / {refused}");
            // The bounded path's limits are met, but rarely (they are far from real payloads).
            assert!((20..300).contains(&pruned), "{pruned}");
            assert!(long >= 3, "{long}");
        }

        #[test]
        fn root_asks_of_events_only_items_and_count() {
            for (version, text) in super::ENVELOPE_VERSIONS {
                let schema: Value = serde_json::from_str(text).expect("schema parses");
                let events = &schema["properties"]["events"];
                let mut keys: Vec<&str> = events
                    .as_object()
                    .expect("events schema")
                    .keys()
                    .map(String::as_str)
                    .collect();
                keys.sort_unstable();
                assert_eq!(
                    keys,
                    ["description", "items", "maxItems", "type"],
                    "{version}"
                );
                assert_eq!(events["type"], "array", "{version}");
                assert_eq!(
                    events["items"],
                    json!({ "$ref": "#/$defs/Event" }),
                    "{version}"
                );
                assert_eq!(events["maxItems"], super::MAX_EVENTS, "{version}");
            }
        }
    }
}
