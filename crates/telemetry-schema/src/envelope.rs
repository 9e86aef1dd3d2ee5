//! The v1 payload envelope: everything that can leave a machine, and nothing else.

use std::collections::BTreeMap;
use std::fmt;

#[cfg(feature = "json-schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dp::{MechanismKind, MechanismParams, ParamError};
use crate::ids::{DailyId, Day, Identifier, Label, RedactedText, RunId, SessionId, Version};

/// The `schema.id` of every envelope.
pub const ENVELOPE_SCHEMA_ID: &str = "telemetry-toolkit.envelope";
/// The envelope version this build writes (and the newest it validates).
///
/// 1.1.0 (a minor version: optional additions only) added the redaction outcomes `clean`,
/// `redacted` and `rejected` and the counts `redacted_values` / `rejected_values`
/// ([`Redaction`]). 1.0.0 documents keep validating against the frozen 1.0.0 schema.
pub const ENVELOPE_VERSION: &str = "1.1.0";
/// The first envelope version with the redaction outcomes `clean` / `redacted` / `rejected` and
/// the counts `redacted_values` / `rejected_values`.
pub const REDACTION_OUTCOMES_SINCE: &str = "1.1.0";
/// Most events one envelope may carry.
pub const MAX_EVENTS: usize = 10_000;
/// Most fields one event may carry.
pub const MAX_FIELDS: usize = 64;

/// `schema.id` of an envelope: a closed enum with one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
pub enum EnvelopeSchemaId {
    /// `"telemetry-toolkit.envelope"`.
    #[serde(rename = "telemetry-toolkit.envelope")]
    Envelope,
}

/// Which schema (and which version of it) a document follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSchemaRef {
    /// Always `"telemetry-toolkit.envelope"`.
    pub id: EnvelopeSchemaId,
    /// Semantic version of the envelope format, e.g. `"1.0.0"`.
    pub version: Version,
}

impl EnvelopeSchemaRef {
    /// The reference this build writes: id and [`ENVELOPE_VERSION`].
    pub fn current() -> Self {
        Self {
            id: EnvelopeSchemaId::Envelope,
            version: Version::new(ENVELOPE_VERSION).expect("valid constant"),
        }
    }
}

/// A name and a version (of the app or of the SDK).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NameVersion {
    /// Name, e.g. `"acme"` or `"telemetry-core"`.
    pub name: Label,
    /// Version, e.g. `"1.4.2"`.
    pub version: Version,
}

impl NameVersion {
    /// Checks both parts.
    pub fn new(name: &str, version: &str) -> Result<Self, crate::ids::FormatError> {
        Ok(Self {
            name: Label::new(name)?,
            version: Version::new(version)?,
        })
    }
}

/// Operating system family (a closed set; unknown systems are `other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Os {
    Linux,
    Macos,
    Windows,
    Freebsd,
    Netbsd,
    Openbsd,
    Dragonfly,
    Android,
    Ios,
    Illumos,
    Solaris,
    Other,
}

impl Os {
    /// Maps a Rust `target_os` name (the caller passes the standard library's `consts::OS`).
    pub fn from_target_os(os: &str) -> Self {
        match os {
            "linux" => Self::Linux,
            "macos" => Self::Macos,
            "windows" => Self::Windows,
            "freebsd" => Self::Freebsd,
            "netbsd" => Self::Netbsd,
            "openbsd" => Self::Openbsd,
            "dragonfly" => Self::Dragonfly,
            "android" => Self::Android,
            "ios" => Self::Ios,
            "illumos" => Self::Illumos,
            "solaris" => Self::Solaris,
            _ => Self::Other,
        }
    }
}

/// CPU architecture (a closed set; unknown architectures are `other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Arch {
    X86_64,
    X86,
    Aarch64,
    Arm,
    Riscv64,
    Powerpc64,
    S390x,
    Loongarch64,
    Wasm32,
    Other,
}

impl Arch {
    /// Maps a Rust `target_arch` name (the caller passes the standard library's `consts::ARCH`).
    pub fn from_target_arch(arch: &str) -> Self {
        match arch {
            "x86_64" => Self::X86_64,
            "x86" => Self::X86,
            "aarch64" => Self::Aarch64,
            "arm" => Self::Arm,
            "riscv64" => Self::Riscv64,
            "powerpc64" => Self::Powerpc64,
            "s390x" => Self::S390x,
            "loongarch64" => Self::Loongarch64,
            "wasm32" => Self::Wasm32,
            _ => Self::Other,
        }
    }
}

/// The platform, as two closed enums. Never a kernel version, host name or distribution string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Platform {
    /// OS family.
    pub os: Os,
    /// CPU architecture.
    pub arch: Arch,
}

/// The two identifiers a payload carries. Neither is linkable across days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Ids {
    /// Random per process, never persisted.
    pub session: SessionId,
    /// Keyed hash of the install secret and the day.
    pub daily: DailyId,
}

/// The period a payload covers: one day, never a finer timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// The day (UTC).
    pub day: Day,
}

/// Redacted free text, written `{"redacted": "..."}` so it can never be mistaken for a label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TextValue {
    /// The text after redaction.
    pub redacted: RedactedText,
}

/// One field value on the wire (already randomised where the field's mechanism says so).
///
/// Integers are reported after discrete Laplace noise and **may fall outside the declared
/// range**; the estimators expect exactly that. `null` means the app did not record this
/// optional field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(untagged)]
pub enum FieldValue {
    /// A boolean (randomised response or a 1BitMean bit).
    Bool(bool),
    /// An integer (noised; may be outside the declared range).
    Integer(
        #[cfg_attr(feature = "json-schema", schemars(range(min = -MAX_SAFE_INTEGER, max = MAX_SAFE_INTEGER)))]
         i64,
    ),
    /// A closed-enum label.
    Label(Label),
    /// A version.
    Version(Version),
    /// Redacted text (redaction only, not randomised).
    Text(TextValue),
}

impl FieldValue {
    /// The value as a short display string (for aggregation tables).
    pub fn display(&self) -> String {
        match self {
            Self::Bool(b) => b.to_string(),
            Self::Integer(i) => i.to_string(),
            Self::Label(l) => l.to_string(),
            Self::Version(v) => v.to_string(),
            Self::Text(t) => t.redacted.to_string(),
        }
    }
}

/// Largest magnitude of an integer field value: 2^53 − 1, the largest integer every JSON reader
/// represents exactly (the schema's `minimum` / `maximum`).
pub const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// Decodes by the JSON token's type instead of serde's `untagged` (which buffers every value and
/// tries each variant in turn): one pass, and errors that say what was wrong. Accepts exactly what
/// the schema's `FieldValue` accepts: a boolean, an integer within ±[`MAX_SAFE_INTEGER`], a
/// label, a version (a string that is both is a label), or `{"redacted": text}`.
impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = FieldValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean, an integer, a label, a version or {\"redacted\": text}")
            }

            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<FieldValue, E> {
                Ok(FieldValue::Bool(v))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<FieldValue, E> {
                if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&v) {
                    Ok(FieldValue::Integer(v))
                } else {
                    Err(E::custom(format_args!(
                        "integer {v} is outside ±{MAX_SAFE_INTEGER}"
                    )))
                }
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<FieldValue, E> {
                match i64::try_from(v) {
                    Ok(v) => self.visit_i64(v),
                    Err(_) => Err(E::custom(format_args!(
                        "integer {v} is outside ±{MAX_SAFE_INTEGER}"
                    ))),
                }
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FieldValue, E> {
                if let Ok(label) = Label::new(v) {
                    return Ok(FieldValue::Label(label));
                }
                Version::new(v).map(FieldValue::Version).map_err(|_| {
                    E::custom(format_args!(
                        "{:?} is neither a label nor a version",
                        v.chars().take(80).collect::<String>()
                    ))
                })
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<FieldValue, A::Error> {
                TextValue::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(FieldValue::Text)
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

/// An event's field values by name (`None`: not recorded), in name order, each name once; on the
/// wire a JSON object of at most [`MAX_FIELDS`] members.
///
/// A sorted vector rather than a `BTreeMap`: events carry a handful of fields, and a map's node
/// costs several times their size, which a payload of thousands of events pays in memory and time.
/// Decoding keeps the last of repeated names, as a JSON object does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<(Identifier, Option<FieldValue>)>);

impl Fields {
    /// No fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// No fields, with room for `capacity` without reallocating (a recorder knows how many
    /// fields each event has).
    pub fn with_capacity(capacity: usize) -> Self {
        Self(Vec::with_capacity(capacity))
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of field `name`, if the event has that field.
    pub fn get(&self, name: &str) -> Option<&Option<FieldValue>> {
        self.position(name).ok().map(|i| &self.0[i].1)
    }

    /// Sets field `name`; returns the value it replaced.
    pub fn insert(
        &mut self,
        name: Identifier,
        value: Option<FieldValue>,
    ) -> Option<Option<FieldValue>> {
        match self.position(name.as_str()) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (name, value));
                None
            }
        }
    }

    /// Every field in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Identifier, &Option<FieldValue>)> {
        self.0.iter().map(|(name, value)| (name, value))
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }
}

impl FromIterator<(Identifier, Option<FieldValue>)> for Fields {
    /// In name order; of repeated names the last wins.
    fn from_iter<I: IntoIterator<Item = (Identifier, Option<FieldValue>)>>(iter: I) -> Self {
        // In place: a payload decodes thousands of these, and every byte allocated is a page
        // a fresh process must fault in. The sort is stable, so equal names stay in input order
        // and the value moved into the kept (first) entry is the last one.
        let mut fields: Vec<_> = iter.into_iter().collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        fields.dedup_by(|later, kept| {
            let repeated = later.0 == kept.0;
            if repeated {
                std::mem::swap(&mut later.1, &mut kept.1);
            }
            repeated
        });
        fields.shrink_to_fit();
        Self(fields)
    }
}

impl<const N: usize> From<[(Identifier, Option<FieldValue>); N]> for Fields {
    fn from(fields: [(Identifier, Option<FieldValue>); N]) -> Self {
        fields.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a Identifier, &'a Option<FieldValue>);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Identifier, Option<FieldValue>)>,
        fn(&'a (Identifier, Option<FieldValue>)) -> (&'a Identifier, &'a Option<FieldValue>),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(name, value)| (name, value))
    }
}

impl std::ops::Index<&Identifier> for Fields {
    type Output = Option<FieldValue>;

    /// Panics if the event has no field `name`, like a map's index.
    fn index(&self, name: &Identifier) -> &Option<FieldValue> {
        match self.get(name.as_str()) {
            Some(value) => value,
            None => panic!("no field {name}"),
        }
    }
}

impl Serialize for Fields {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Fields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of field values")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields, A::Error> {
                let mut all = Vec::with_capacity(map.size_hint().unwrap_or(4).min(MAX_FIELDS));
                while let Some(entry) = map.next_entry::<Identifier, Option<FieldValue>>()? {
                    all.push(entry);
                }
                let fields = Fields::from_iter(all);
                if fields.len() > MAX_FIELDS {
                    return Err(serde::de::Error::custom(format_args!(
                        "{} fields, more than the {MAX_FIELDS} an event may carry",
                        fields.len()
                    )));
                }
                Ok(fields)
            }
        }

        deserializer.deserialize_map(Visitor)
    }
}

/// The schema of the map it stands for (the generated schemas stay as they were).
#[cfg(feature = "json-schema")]
impl JsonSchema for Fields {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <BTreeMap<Identifier, Option<FieldValue>>>::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        <BTreeMap<Identifier, Option<FieldValue>>>::schema_id()
    }

    fn inline_schema() -> bool {
        <BTreeMap<Identifier, Option<FieldValue>>>::inline_schema()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <BTreeMap<Identifier, Option<FieldValue>>>::json_schema(generator)
    }
}

/// One event: a catalogue name and its typed fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Event name from the app's closed catalogue.
    pub name: Identifier,
    /// Field values by field name; `null` means not recorded.
    #[cfg_attr(feature = "json-schema", schemars(extend("maxProperties" = 64, "propertyNames" = {"pattern": "^[a-z][a-z0-9_]{0,63}$"})))]
    pub fields: Fields,
}

/// What the redactor did to the payload's text values.
///
/// Since format 1.1.0 a producer writes `not_applicable` when the run recorded no text value,
/// and otherwise the most severe outcome over all its text values: `rejected` if any was dropped
/// entirely, else `redacted` if any had something replaced, else `clean`. `applied` is the 1.0.0
/// value (redaction ran, outcome unstated); it stays valid but 1.1 producers no longer write it.
/// `clean`, `redacted` and `rejected` are refused in documents declaring 1.0.x.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RedactionStatus {
    /// Every text field in this payload was redacted (format 1.0.0; outcome not stated).
    Applied,
    /// The payload has no text fields (no text value was recorded).
    NotApplicable,
    /// Since 1.1.0: text values were recorded and the redactor found nothing to replace in any.
    Clean,
    /// Since 1.1.0: something was replaced in at least one text value (`redacted_values` ≥ 1)
    /// and none was dropped.
    Redacted,
    /// Since 1.1.0: at least one text value was dropped entirely (`rejected_values` ≥ 1).
    Rejected,
}

impl RedactionStatus {
    /// The wire name (`applied`, `not_applicable`, `clean`, `redacted`, `rejected`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::NotApplicable => "not_applicable",
            Self::Clean => "clean",
            Self::Redacted => "redacted",
            Self::Rejected => "rejected",
        }
    }

    /// Whether this value exists only since format 1.1.0.
    pub fn since_1_1(self) -> bool {
        matches!(self, Self::Clean | Self::Redacted | Self::Rejected)
    }
}

impl fmt::Display for RedactionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The redaction section.
///
/// The counts are optional (absent means 0) and exist since format 1.1.0, so a 1.0.0 document
/// serialises exactly as before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Redaction {
    /// Status.
    pub status: RedactionStatus,
    /// Version of the redaction rules the core applied.
    pub rules_version: Version,
    /// Since 1.1.0, optional (absent = 0): number of text values in which the redactor replaced
    /// something with a placeholder.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redacted_values: u32,
    /// Since 1.1.0, optional (absent = 0): number of text values the redactor dropped entirely
    /// (sent as `null`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rejected_values: u32,
}

impl Redaction {
    /// The section in plain words (`telemetry verify-payload`), e.g. `redacted: something was
    /// replaced in 2 text values (rules 1.0.0)`.
    pub fn describe(&self) -> String {
        let values = |n: u32| {
            if n == 1 {
                "1 text value".to_owned()
            } else {
                format!("{n} text values")
            }
        };
        let what = match self.status {
            RedactionStatus::NotApplicable => "not applicable: no free text".to_owned(),
            RedactionStatus::Applied => "applied to every text value".to_owned(),
            RedactionStatus::Clean => "clean: no text value needed redaction".to_owned(),
            RedactionStatus::Redacted => format!(
                "redacted: something was replaced in {}",
                values(self.redacted_values)
            ),
            RedactionStatus::Rejected => format!(
                "rejected: {} dropped entirely (sent as null){}",
                values(self.rejected_values),
                if self.redacted_values > 0 {
                    format!(", something replaced in {}", values(self.redacted_values))
                } else {
                    String::new()
                }
            ),
        };
        format!("{what} (rules {})", self.rules_version)
    }

    /// The 1.1 redaction section for a run that recorded `clean` + `redacted` + `rejected` text
    /// values: `not_applicable` without text values, else `rejected` if any was dropped, else
    /// `redacted` if any had something replaced, else `clean`.
    ///
    /// ```
    /// use telemetry_schema::{Redaction, RedactionStatus, Version};
    /// let rules = Version::new("1.0.0").unwrap();
    /// let status = |c, r, x| Redaction::from_counts(rules.clone(), c, r, x).status;
    /// assert_eq!(status(0, 0, 0), RedactionStatus::NotApplicable);
    /// assert_eq!(status(3, 0, 0), RedactionStatus::Clean);
    /// assert_eq!(status(3, 1, 0), RedactionStatus::Redacted);
    /// assert_eq!(status(0, 1, 1), RedactionStatus::Rejected);
    /// let r = Redaction::from_counts(rules.clone(), 2, 1, 0);
    /// assert_eq!((r.redacted_values, r.rejected_values), (1, 0));
    /// ```
    pub fn from_counts(rules_version: Version, clean: u32, redacted: u32, rejected: u32) -> Self {
        let status = if rejected > 0 {
            RedactionStatus::Rejected
        } else if redacted > 0 {
            RedactionStatus::Redacted
        } else if clean > 0 {
            RedactionStatus::Clean
        } else {
            RedactionStatus::NotApplicable
        };
        Self {
            status,
            rules_version,
            redacted_values: redacted,
            rejected_values: rejected,
        }
    }
}

/// The DP parameter block of one field of one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct FieldPrivacy {
    /// Event name.
    pub event: Identifier,
    /// Field name.
    pub field: Identifier,
    /// Mechanism and all its parameters.
    pub params: MechanismParams,
}

/// The largest ε a ledger may state (spent or cap), as the schema's `maximum`.
pub const LEDGER_MAX_EPSILON: f64 = 1000.0;

/// Privacy-budget ledger state for the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LedgerState {
    /// ε spent by this install in the period, including this payload's reports.
    #[cfg_attr(feature = "json-schema", schemars(range(min = 0.0, max = 1000.0)))]
    pub epsilon_spent: f64,
    /// ε cap for the period; when reached, further reports are dropped.
    #[cfg_attr(feature = "json-schema", schemars(range(min = 0.0, max = 1000.0)))]
    pub epsilon_cap: f64,
    /// Number of events dropped (never sent) in this run because the budget was spent.
    pub dropped_reports: u32,
}

/// The privacy section: what an auditor needs to judge this payload alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Privacy {
    /// Redaction status and rules version.
    pub redaction: Redaction,
    /// One parameter block per (event, field) that appears in `events`.
    #[cfg_attr(feature = "json-schema", schemars(length(max = 4096)))]
    pub dp: Vec<FieldPrivacy>,
    /// Ledger state.
    pub ledger: LedgerState,
}

/// A telemetry payload, format v1. One per run.
///
/// Every string in it is a closed enum, a version, an identifier with a checked format, or text
/// the app declared as text and the core redacted; unknown properties are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    feature = "json-schema",
    schemars(title = "Telemetry payload envelope v1")
)]
pub struct Envelope {
    /// Schema id and version.
    pub schema: EnvelopeSchemaRef,
    /// Run id (UUIDv7).
    pub run_id: RunId,
    /// The app that recorded the events.
    pub app: NameVersion,
    /// The telemetry SDK that assembled the payload.
    pub sdk: NameVersion,
    /// OS family and architecture.
    pub platform: Platform,
    /// Session and daily ids.
    pub ids: Ids,
    /// The day.
    pub period: Period,
    /// Events, already randomised.
    #[cfg_attr(feature = "json-schema", schemars(length(max = 10000)))]
    pub events: Vec<Event>,
    /// Redaction, DP parameters and ledger state.
    pub privacy: Privacy,
}

/// A semantic inconsistency that JSON Schema cannot express (cross references between sections).
#[derive(Debug, Clone, PartialEq)]
pub enum ConsistencyError {
    /// An event carries a field without a DP parameter block.
    MissingDpBlock {
        /// Index in `events`.
        event_index: usize,
        /// Event name.
        event: String,
        /// Field name.
        field: String,
    },
    /// Two DP blocks for the same (event, field).
    DuplicateDpBlock {
        /// Event name.
        event: String,
        /// Field name.
        field: String,
    },
    /// A value of the wrong type for its mechanism (e.g. a label under discrete Laplace).
    ValueMismatch {
        /// Index in `events`.
        event_index: usize,
        /// Field name.
        field: String,
        /// The mechanism.
        mechanism: MechanismKind,
        /// What the mechanism produces.
        expected: &'static str,
    },
    /// A DP block whose numbers disagree with each other.
    BadParams {
        /// Event name.
        event: String,
        /// Field name.
        field: String,
        /// Why.
        error: ParamError,
    },
    /// Text present but redaction status is `not_applicable`.
    RedactionStatus,
    /// The redaction status disagrees with the counts (e.g. `redacted` without
    /// `redacted_values`, `clean` with a count).
    RedactionCounts {
        /// The stated status.
        status: RedactionStatus,
        /// What that status requires.
        expected: &'static str,
    },
    /// A value or property newer than the version the document declares (e.g. status `clean`
    /// in a 1.0.0 document).
    NewerThanDeclared {
        /// JSON Pointer to the offending part.
        path: &'static str,
        /// What was found.
        found: String,
        /// The version that introduced it.
        since: &'static str,
        /// The version the document declares.
        declared: String,
    },
    /// Ledger: spent more than the cap, or non-finite numbers.
    Ledger(String),
}

impl fmt::Display for ConsistencyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingDpBlock {
                event_index,
                event,
                field,
            } => write!(
                f,
                "/events/{event_index}: field {event}.{field} has no parameter block in /privacy/dp"
            ),
            Self::DuplicateDpBlock { event, field } => {
                write!(f, "/privacy/dp: two parameter blocks for {event}.{field}")
            }
            Self::ValueMismatch {
                event_index,
                field,
                mechanism,
                expected,
            } => write!(
                f,
                "/events/{event_index}/fields/{field}: mechanism {mechanism} produces {expected}"
            ),
            Self::BadParams {
                event,
                field,
                error,
            } => write!(f, "/privacy/dp ({event}.{field}): {error}"),
            Self::RedactionStatus => write!(
                f,
                "/privacy/redaction/status: payload has text fields but says not_applicable"
            ),
            Self::RedactionCounts { status, expected } => {
                write!(f, "/privacy/redaction: status {status} requires {expected}")
            }
            Self::NewerThanDeclared {
                path,
                found,
                since,
                declared,
            } => write!(
                f,
                "{path}: {found} exists since format {since}, but the document declares {declared}"
            ),
            Self::Ledger(msg) => write!(f, "/privacy/ledger: {msg}"),
        }
    }
}

impl std::error::Error for ConsistencyError {}

impl Envelope {
    /// Serialises to compact JSON (infallible for these types).
    ///
    /// Into a buffer sized from the counts of events and DP blocks, so that a typical payload is
    /// written without growing it: serde_json's default buffer starts at 128 bytes and doubles,
    /// which for a 2.4 KB payload allocated 8 KB and copied 4 KB (in a fresh process each page
    /// of heap first touched is a page fault).
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(self.json_size_hint());
        serde_json::to_writer(&mut out, self).expect("envelope serialises");
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }

    /// About the compact JSON's length: a fixed part (schema, ids, app, platform, ledger) and
    /// a part per event and per DP block, each a little over what the recorder's typical
    /// events take (measured: 2,367 bytes for 11 events and 5 blocks; hinted: 2,976).
    fn json_size_hint(&self) -> usize {
        const FIXED: usize = 640;
        const PER_EVENT: usize = 96;
        const PER_DP_BLOCK: usize = 256;
        FIXED
            .saturating_add(self.events.len().saturating_mul(PER_EVENT))
            .saturating_add(self.privacy.dp.len().saturating_mul(PER_DP_BLOCK))
    }

    /// Serialises to pretty JSON (what `telemetry show` prints).
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("envelope serialises")
    }

    /// The DP block of `(event, field)`, if any.
    pub fn dp_block(&self, event: &str, field: &str) -> Option<&MechanismParams> {
        self.privacy
            .dp
            .iter()
            .find(|b| b.event.as_str() == event && b.field.as_str() == field)
            .map(|b| &b.params)
    }

    /// Cross-section checks JSON Schema cannot express: every field value has exactly one DP block,
    /// values have the type their mechanism produces, DP numbers are consistent, text implies
    /// redaction, the redaction status agrees with its counts and exists in the declared version,
    /// ledger spent ≤ cap. Returns every problem found.
    pub fn check_consistency(&self) -> Result<(), Vec<ConsistencyError>> {
        let mut errors = Vec::new();
        let mut blocks: BTreeMap<(&str, &str), &MechanismParams> = BTreeMap::new();
        for b in &self.privacy.dp {
            if blocks
                .insert((b.event.as_str(), b.field.as_str()), &b.params)
                .is_some()
            {
                errors.push(ConsistencyError::DuplicateDpBlock {
                    event: b.event.to_string(),
                    field: b.field.to_string(),
                });
            }
            if let Err(error) = b.params.check() {
                errors.push(ConsistencyError::BadParams {
                    event: b.event.to_string(),
                    field: b.field.to_string(),
                    error,
                });
            }
        }
        let mut has_text = false;
        for (i, ev) in self.events.iter().enumerate() {
            for (field, value) in &ev.fields {
                let Some(params) = blocks.get(&(ev.name.as_str(), field.as_str())) else {
                    errors.push(ConsistencyError::MissingDpBlock {
                        event_index: i,
                        event: ev.name.to_string(),
                        field: field.to_string(),
                    });
                    continue;
                };
                let Some(value) = value else { continue };
                let (ok, expected) = match params.kind() {
                    MechanismKind::RandomizedResponse | MechanismKind::OneBitMean => {
                        (matches!(value, FieldValue::Bool(_)), "a boolean")
                    }
                    MechanismKind::KRandomizedResponse => {
                        (matches!(value, FieldValue::Label(_)), "a label")
                    }
                    MechanismKind::DiscreteLaplace => {
                        (matches!(value, FieldValue::Integer(_)), "an integer")
                    }
                    MechanismKind::RedactionOnly => {
                        (matches!(value, FieldValue::Text(_)), "redacted text")
                    }
                    MechanismKind::NotRandomized => (
                        matches!(value, FieldValue::Version(_) | FieldValue::Label(_)),
                        "a version or a label",
                    ),
                };
                if let (FieldValue::Text(t), MechanismParams::RedactionOnly { max_len }) =
                    (value, params)
                {
                    has_text = true;
                    if t.redacted.as_str().chars().count() > *max_len as usize {
                        errors.push(ConsistencyError::ValueMismatch {
                            event_index: i,
                            field: field.to_string(),
                            mechanism: MechanismKind::RedactionOnly,
                            expected: "text no longer than its max_len",
                        });
                    }
                }
                if !ok {
                    errors.push(ConsistencyError::ValueMismatch {
                        event_index: i,
                        field: field.to_string(),
                        mechanism: params.kind(),
                        expected,
                    });
                }
            }
        }
        if has_text && self.privacy.redaction.status == RedactionStatus::NotApplicable {
            errors.push(ConsistencyError::RedactionStatus);
        }
        self.check_redaction(&mut errors);
        let l = &self.privacy.ledger;
        if !(l.epsilon_spent.is_finite() && l.epsilon_cap.is_finite()) {
            errors.push(ConsistencyError::Ledger("non-finite epsilon".into()));
        } else if let Some((name, value)) = [
            ("epsilon_spent", l.epsilon_spent),
            ("epsilon_cap", l.epsilon_cap),
        ]
        .into_iter()
        .find(|(_, value)| !(0.0..=LEDGER_MAX_EPSILON).contains(value))
        {
            // The schema's range, checked here too so that a build without the JSON Schema
            // validator (`decode_payload`) refuses the same documents.
            errors.push(ConsistencyError::Ledger(format!(
                "{name} {value} is outside 0..={LEDGER_MAX_EPSILON}"
            )));
        } else if l.epsilon_spent > l.epsilon_cap + 1e-9 {
            errors.push(ConsistencyError::Ledger(format!(
                "epsilon_spent {} exceeds epsilon_cap {}",
                l.epsilon_spent, l.epsilon_cap
            )));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Status versus counts, and 1.1-only values in a document declaring 1.0.x.
    fn check_redaction(&self, errors: &mut Vec<ConsistencyError>) {
        let r = &self.privacy.redaction;
        let (redacted, rejected) = (r.redacted_values, r.rejected_values);
        let expected = match r.status {
            RedactionStatus::Applied | RedactionStatus::NotApplicable | RedactionStatus::Clean
                if redacted > 0 || rejected > 0 =>
            {
                Some("redacted_values and rejected_values to be 0 or absent")
            }
            RedactionStatus::Redacted if redacted == 0 => Some("redacted_values ≥ 1"),
            RedactionStatus::Redacted if rejected > 0 => {
                Some("rejected_values to be 0 or absent (a dropped value makes it rejected)")
            }
            RedactionStatus::Rejected if rejected == 0 => Some("rejected_values ≥ 1"),
            _ => None,
        };
        if let Some(expected) = expected {
            errors.push(ConsistencyError::RedactionCounts {
                status: r.status,
                expected,
            });
        }
        let declared = self.schema.version.triple();
        let since = Version::new(REDACTION_OUTCOMES_SINCE)
            .expect("valid constant")
            .triple();
        if declared.0 == since.0 && (declared.1, declared.2) < (since.1, since.2) {
            let mut newer = |path: &'static str, found: String| {
                errors.push(ConsistencyError::NewerThanDeclared {
                    path,
                    found,
                    since: REDACTION_OUTCOMES_SINCE,
                    declared: self.schema.version.to_string(),
                });
            };
            if r.status.since_1_1() {
                newer("/privacy/redaction/status", format!("status {}", r.status));
            }
            if redacted > 0 {
                newer(
                    "/privacy/redaction/redacted_values",
                    "redacted_values".into(),
                );
            }
            if rejected > 0 {
                newer(
                    "/privacy/redaction/rejected_values",
                    "rejected_values".into(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> Identifier {
        Identifier::new(name).unwrap()
    }

    #[test]
    fn fields_stay_sorted_and_unique() {
        let mut fields = Fields::from([(id("b"), None), (id("a"), Some(FieldValue::Bool(true)))]);
        assert_eq!(fields.insert(id("c"), Some(FieldValue::Integer(3))), None);
        assert_eq!(
            fields.insert(id("b"), Some(FieldValue::Integer(2))),
            Some(None)
        );
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(fields.get("b"), Some(&Some(FieldValue::Integer(2))));
        assert_eq!(fields.get("d"), None);
        assert_eq!(fields[&id("a")], Some(FieldValue::Bool(true)));
        assert_eq!(
            serde_json::to_string(&fields).unwrap(),
            r#"{"a":true,"b":2,"c":3}"#
        );
    }

    #[test]
    fn to_json_writes_what_serde_json_writes_into_a_buffer_it_need_not_grow() {
        for fixture in [
            include_str!("../fixtures/v1/valid/full.json"),
            include_str!("../fixtures/v1/valid/minimal.json"),
            include_str!("../fixtures/v1/valid/redaction_redacted.json"),
        ] {
            let envelope: Envelope = serde_json::from_str(fixture).unwrap();
            let json = envelope.to_json();
            assert_eq!(json, serde_json::to_string(&envelope).unwrap());
            assert!(
                json.len() <= envelope.json_size_hint(),
                "{} bytes over a hint of {}",
                json.len(),
                envelope.json_size_hint()
            );
        }
    }

    #[test]
    fn fields_decode_like_a_json_object() {
        // A repeated name: the last value wins, as in serde_json's own maps.
        let fields: Fields = serde_json::from_str(r#"{"z": 1, "a": null, "z": 2}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&fields).unwrap(),
            r#"{"a":null,"z":2}"#
        );
        let too_many: String = format!(
            "{{{}}}",
            (0..=MAX_FIELDS)
                .map(|i| format!("\"f{i}\": null"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let err = serde_json::from_str::<Fields>(&too_many).unwrap_err();
        assert!(
            err.to_string().contains("65 fields, more than the 64"),
            "{err}"
        );
        assert!(serde_json::from_str::<Fields>(r#"{"Bad": 1}"#).is_err());
        assert!(serde_json::from_str::<Fields>("[]").is_err());
    }

    #[test]
    fn field_values_decode_by_token_type() {
        let decode = |json: &str| serde_json::from_str::<FieldValue>(json);
        assert_eq!(decode("true").unwrap(), FieldValue::Bool(true));
        assert_eq!(
            decode("-9007199254740991").unwrap(),
            FieldValue::Integer(-MAX_SAFE_INTEGER)
        );
        assert_eq!(
            decode("\"build\"").unwrap(),
            FieldValue::Label("build".parse().unwrap())
        );
        // A string that is both a label and a version is a label, as the schema's first match.
        assert!(matches!(decode("\"1.2.3\"").unwrap(), FieldValue::Label(_)));
        assert!(matches!(
            decode("\"1.2.3-RC1\"").unwrap(),
            FieldValue::Version(_)
        ));
        assert!(matches!(
            decode(r#"{"redacted": "x"}"#).unwrap(),
            FieldValue::Text(_)
        ));
        for (bad, message) in [
            ("9007199254740992", "outside"),
            ("18446744073709551615", "outside"),
            ("1.0", "floating point"),
            ("\"Not Label\"", "neither a label nor a version"),
            (r#"{"redacted": "x", "more": 1}"#, "unknown field"),
            ("[true]", "sequence"),
        ] {
            let err = decode(bad).unwrap_err().to_string();
            assert!(err.contains(message), "{bad}: {err}");
        }
    }
}
