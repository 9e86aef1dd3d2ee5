//! The event catalogue: every event an app may emit, each field's kind, domain and DP mechanism.
//! This is what `telemetry catalog` prints and what an auditor reads before consenting.

use std::collections::BTreeSet;
use std::fmt;

#[cfg(feature = "json-schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dp::{ClampRange, MechanismParams, ParamError, check_domain, domain_sha256};
use crate::envelope::NameVersion;
use crate::ids::{Identifier, Label, Version};

/// The `schema.id` of every catalogue document.
pub const CATALOG_SCHEMA_ID: &str = "telemetry-toolkit.catalog";
/// The catalogue format version this build writes.
pub const CATALOG_VERSION: &str = "1.0.0";

/// `schema.id` of a catalogue: a closed enum with one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
pub enum CatalogSchemaId {
    /// `"telemetry-toolkit.catalog"`.
    #[serde(rename = "telemetry-toolkit.catalog")]
    Catalog,
}

/// Which schema (and version) a catalogue follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CatalogSchemaRef {
    /// Always `"telemetry-toolkit.catalog"`.
    pub id: CatalogSchemaId,
    /// Semantic version of the catalogue format.
    pub version: Version,
}

/// What kind of value a field holds, with its domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FieldKind {
    /// `true` / `false`.
    Bool {},
    /// One label of a closed set.
    Enum {
        /// The domain, in declared order (its SHA-256 is in the DP block).
        #[cfg_attr(feature = "json-schema", schemars(length(min = 2, max = 4096)))]
        values: Vec<Label>,
    },
    /// An integer, clamped to `[min, max]` before noise.
    Integer {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// A duration, sent as the index of its bucket: bucket `i` holds durations in
    /// `[bounds_ms[i-1], bounds_ms[i])` (bucket 0 starts at 0, the last bucket is open-ended),
    /// so indices run from 0 to `bounds_ms.len()`.
    Duration {
        /// Strictly increasing upper bounds in milliseconds.
        #[cfg_attr(feature = "json-schema", schemars(length(min = 1, max = 64)))]
        bounds_ms: Vec<u64>,
    },
    /// A semantic version.
    Version {},
    /// Free text the app explicitly declared; sent after redaction, not randomised.
    Text {
        /// Maximum length after redaction (≤ 200).
        #[cfg_attr(feature = "json-schema", schemars(range(min = 1, max = 200)))]
        max_len: u32,
    },
}

impl FieldKind {
    /// A closed enum over `values`.
    pub fn enumeration<S: AsRef<str>>(values: &[S]) -> Result<Self, CatalogError> {
        let values = values
            .iter()
            .map(|v| Label::new(v.as_ref()).map_err(|e| CatalogError::Format(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::Enum { values })
    }

    /// The domain in plain words (`telemetry catalog`), e.g. `one of: build, test`.
    pub fn describe(&self) -> String {
        match self {
            Self::Bool {} => "yes or no".to_owned(),
            Self::Enum { values } => {
                let values: Vec<&str> = values.iter().map(Label::as_str).collect();
                format!("one of: {}", values.join(", "))
            }
            Self::Integer { min, max } => format!("a whole number from {min} to {max}"),
            Self::Duration { bounds_ms } => format!(
                "a duration, sent as one of {} buckets (upper bounds in ms: {})",
                bounds_ms.len() + 1,
                bounds_ms
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::Version {} => "a version number".to_owned(),
            Self::Text { max_len } => {
                format!("free text, redacted on this machine, at most {max_len} characters")
            }
        }
    }

    /// The integer range a numeric mechanism must clamp to, if this kind is numeric.
    pub fn numeric_range(&self) -> Option<(i64, i64)> {
        match self {
            Self::Integer { min, max } => Some((*min, *max)),
            Self::Duration { bounds_ms } => Some((0, bounds_ms.len() as i64)),
            _ => None,
        }
    }
}

/// One field of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Field name.
    pub name: Identifier,
    /// What it means, for people.
    #[cfg_attr(feature = "json-schema", schemars(length(max = 500)))]
    pub description: String,
    /// Kind and domain.
    pub kind: FieldKind,
    /// DP mechanism and parameters.
    pub mechanism: MechanismParams,
}

impl FieldSpec {
    /// A field; call [`Catalog::check`] on the whole catalogue to verify kind and mechanism agree.
    pub fn new(
        name: &str,
        description: &str,
        kind: FieldKind,
        mechanism: MechanismParams,
    ) -> Result<Self, CatalogError> {
        Ok(Self {
            name: Identifier::new(name).map_err(|e| CatalogError::Format(e.to_string()))?,
            description: description.to_string(),
            kind,
            mechanism,
        })
    }

    /// A boolean field with randomised response at `epsilon`.
    pub fn bool(name: &str, description: &str, epsilon: f64) -> Result<Self, CatalogError> {
        Self::new(
            name,
            description,
            FieldKind::Bool {},
            MechanismParams::randomized_response(epsilon)?,
        )
    }

    /// A closed-enum field with k-ary randomised response at `epsilon`.
    pub fn enumeration<S: AsRef<str>>(
        name: &str,
        description: &str,
        values: &[S],
        epsilon: f64,
    ) -> Result<Self, CatalogError> {
        let kind = FieldKind::enumeration(values)?;
        let mechanism = MechanismParams::k_rr(epsilon, values)?;
        Self::new(name, description, kind, mechanism)
    }

    /// A bounded integer with discrete Laplace noise at `epsilon`.
    pub fn integer(
        name: &str,
        description: &str,
        min: i64,
        max: i64,
        epsilon: f64,
    ) -> Result<Self, CatalogError> {
        Self::new(
            name,
            description,
            FieldKind::Integer { min, max },
            MechanismParams::discrete_laplace(epsilon, min, max)?,
        )
    }

    /// A bucketed duration with discrete Laplace noise on the bucket index at `epsilon`.
    pub fn duration(
        name: &str,
        description: &str,
        bounds_ms: &[u64],
        epsilon: f64,
    ) -> Result<Self, CatalogError> {
        Self::new(
            name,
            description,
            FieldKind::Duration {
                bounds_ms: bounds_ms.to_vec(),
            },
            MechanismParams::discrete_laplace(epsilon, 0, bounds_ms.len() as i64)?,
        )
    }

    /// A version field (not randomised).
    pub fn version(name: &str, description: &str) -> Result<Self, CatalogError> {
        Self::new(
            name,
            description,
            FieldKind::Version {},
            MechanismParams::not_randomized(),
        )
    }

    /// A redacted text field (redaction only, not randomised).
    pub fn text(name: &str, description: &str, max_len: u32) -> Result<Self, CatalogError> {
        Self::new(
            name,
            description,
            FieldKind::Text { max_len },
            MechanismParams::redaction_only(max_len)?,
        )
    }
}

/// One event an app may emit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// Event name.
    pub name: Identifier,
    /// What it means, for people.
    #[cfg_attr(feature = "json-schema", schemars(length(max = 500)))]
    pub description: String,
    /// Its fields.
    #[cfg_attr(feature = "json-schema", schemars(length(max = 64)))]
    pub fields: Vec<FieldSpec>,
}

impl EventSpec {
    /// An event.
    pub fn new(
        name: &str,
        description: &str,
        fields: Vec<FieldSpec>,
    ) -> Result<Self, CatalogError> {
        Ok(Self {
            name: Identifier::new(name).map_err(|e| CatalogError::Format(e.to_string()))?,
            description: description.to_string(),
            fields,
        })
    }

    /// The built-in `component_initialized { component, sdk_version, runtime_version }`.
    /// `component` is a closed enum of the host's components, sent with k-ary RR at `epsilon`.
    pub fn component_initialized<S: AsRef<str>>(
        components: &[S],
        epsilon: f64,
    ) -> Result<Self, CatalogError> {
        Self::new(
            "component_initialized",
            "A component of the app started.",
            vec![
                FieldSpec::enumeration(
                    "component",
                    "Which component started.",
                    components,
                    epsilon,
                )?,
                FieldSpec::version("sdk_version", "Version of the telemetry SDK.")?,
                FieldSpec::version(
                    "runtime_version",
                    "Version of the Rust runtime or host runtime.",
                )?,
            ],
        )
    }
}

/// Every event an app may emit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    feature = "json-schema",
    schemars(title = "Telemetry event catalogue v1")
)]
pub struct Catalog {
    /// Schema id and version.
    pub schema: CatalogSchemaRef,
    /// The app, if the catalogue belongs to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<NameVersion>,
    /// Events.
    #[cfg_attr(feature = "json-schema", schemars(length(max = 1024)))]
    pub events: Vec<EventSpec>,
}

/// Why a catalogue is not acceptable.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogError {
    /// A name or label with a bad format.
    Format(String),
    /// Bad DP parameters.
    Params(ParamError),
    /// Two events, or two fields of one event, with the same name.
    Duplicate(String),
    /// A mechanism that does not fit the field's kind or domain.
    Mismatch {
        /// `event.field`.
        field: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Format(e) => write!(f, "{e}"),
            Self::Params(e) => write!(f, "{e}"),
            Self::Duplicate(name) => write!(f, "duplicate name {name}"),
            Self::Mismatch { field, reason } => write!(f, "{field}: {reason}"),
        }
    }
}

impl std::error::Error for CatalogError {}

impl From<ParamError> for CatalogError {
    fn from(e: ParamError) -> Self {
        Self::Params(e)
    }
}

impl Catalog {
    /// A catalogue in the current format.
    pub fn new(app: Option<NameVersion>, events: Vec<EventSpec>) -> Self {
        Self {
            schema: CatalogSchemaRef {
                id: CatalogSchemaId::Catalog,
                version: Version::new(CATALOG_VERSION).expect("valid constant"),
            },
            app,
            events,
        }
    }

    /// Looks up a field.
    pub fn field(&self, event: &str, field: &str) -> Option<&FieldSpec> {
        self.events
            .iter()
            .find(|e| e.name.as_str() == event)?
            .fields
            .iter()
            .find(|f| f.name.as_str() == field)
    }

    /// Checks names are unique and every mechanism fits its field: bool → randomised response,
    /// enum → k-ary RR over exactly that domain (size and SHA-256) or not randomised, integer and
    /// duration → discrete Laplace or 1BitMean clamped to exactly the declared range, version →
    /// not randomised, text → redaction only with the same `max_len`.
    pub fn check(&self) -> Result<(), CatalogError> {
        let mut events = BTreeSet::new();
        for ev in &self.events {
            if !events.insert(ev.name.as_str()) {
                return Err(CatalogError::Duplicate(ev.name.to_string()));
            }
            let mut fields = BTreeSet::new();
            for f in &ev.fields {
                let path = format!("{}.{}", ev.name, f.name);
                if !fields.insert(f.name.as_str()) {
                    return Err(CatalogError::Duplicate(path));
                }
                f.mechanism.check()?;
                let mismatch = |reason: String| CatalogError::Mismatch {
                    field: path.clone(),
                    reason,
                };
                let m = &f.mechanism;
                match &f.kind {
                    FieldKind::Bool {} => {
                        if !matches!(m, MechanismParams::RandomizedResponse { .. }) {
                            return Err(mismatch(format!(
                                "a bool needs randomized_response, not {}",
                                m.kind()
                            )));
                        }
                    }
                    FieldKind::Enum { values } => {
                        check_domain(values).map_err(|_| {
                            mismatch("enum values must be 2..=4096 distinct labels".into())
                        })?;
                        match m {
                            MechanismParams::KRandomizedResponse { domain, .. } => {
                                if domain.size as usize != values.len()
                                    || domain.sha256 != domain_sha256(values)
                                {
                                    return Err(mismatch(
                                        "k-RR domain size or sha256 does not match the values"
                                            .into(),
                                    ));
                                }
                            }
                            MechanismParams::NotRandomized {} => {}
                            other => {
                                return Err(mismatch(format!(
                                    "an enum needs k_randomized_response, not {}",
                                    other.kind()
                                )));
                            }
                        }
                    }
                    FieldKind::Integer { .. } | FieldKind::Duration { .. } => {
                        if let FieldKind::Duration { bounds_ms } = &f.kind
                            && (bounds_ms.is_empty() || !bounds_ms.windows(2).all(|w| w[0] < w[1]))
                        {
                            return Err(mismatch(
                                "duration bounds must be strictly increasing".into(),
                            ));
                        }
                        let (min, max) = f.kind.numeric_range().unwrap_or_default();
                        ClampRange::new(min, max)?;
                        let clamp = match m {
                            MechanismParams::DiscreteLaplace { clamp, .. }
                            | MechanismParams::OneBitMean { clamp, .. } => clamp,
                            other => {
                                return Err(mismatch(format!(
                                    "a number needs discrete_laplace or one_bit_mean, not {}",
                                    other.kind()
                                )));
                            }
                        };
                        if (clamp.min, clamp.max) != (min, max) {
                            return Err(mismatch(format!(
                                "clamp [{}, {}] differs from the declared range [{min}, {max}]",
                                clamp.min, clamp.max
                            )));
                        }
                    }
                    FieldKind::Version {} => {
                        if !matches!(m, MechanismParams::NotRandomized {}) {
                            return Err(mismatch("a version is sent not_randomized".into()));
                        }
                    }
                    FieldKind::Text { max_len } => match m {
                        MechanismParams::RedactionOnly { max_len: m_len } if m_len == max_len => {}
                        _ => {
                            return Err(mismatch(
                                "text is redaction_only with the same max_len".into(),
                            ));
                        }
                    },
                }
            }
        }
        Ok(())
    }

    /// Checks that a (schema-valid) payload is one this catalogue allows: the same app, only
    /// catalogued events and fields, each field's DP block exactly the catalogued mechanism and
    /// parameters, and each value of the field's kind and domain (a label of its enum; noisy
    /// integers may fall outside the range). At most `limit` problems are listed; the count of
    /// the rest is in the returned [`PayloadMismatch`].
    pub fn check_payload(
        &self,
        envelope: &crate::envelope::Envelope,
        limit: usize,
    ) -> Result<(), PayloadMismatch> {
        use crate::envelope::FieldValue;
        let mut out = PayloadMismatch::default();
        let mut problem = |p: String| {
            if out.problems.len() < limit {
                out.problems.push(p);
            } else {
                out.more += 1;
            }
        };
        if let Some(app) = &self.app
            && app.name != envelope.app.name
        {
            problem(format!(
                "app {:?} is not this catalogue's app {:?}",
                envelope.app.name.as_str(),
                app.name.as_str()
            ));
        }
        for block in &envelope.privacy.dp {
            match self.field(block.event.as_str(), block.field.as_str()) {
                None => problem(format!(
                    "{}.{}: not in the catalogue",
                    block.event, block.field
                )),
                Some(spec) if spec.mechanism != block.params => {
                    let eps = |p: &MechanismParams| {
                        p.epsilon()
                            .map_or_else(|| "no ε".to_owned(), |e| format!("ε {e}"))
                    };
                    problem(format!(
                        "{}.{}: DP parameters differ from the catalogue's ({} {} declared, {} {} sent)",
                        block.event,
                        block.field,
                        spec.mechanism.kind(),
                        eps(&spec.mechanism),
                        block.params.kind(),
                        eps(&block.params)
                    ))
                }
                Some(_) => {}
            }
        }
        for (i, ev) in envelope.events.iter().enumerate() {
            let Some(spec) = self.events.iter().find(|e| e.name == ev.name) else {
                problem(format!(
                    "events/{i}: event {} is not in the catalogue",
                    ev.name
                ));
                continue;
            };
            for (name, value) in ev.fields.iter() {
                let Some(field) = spec.fields.iter().find(|f| &f.name == name) else {
                    problem(format!(
                        "events/{i}: field {}.{name} is not in the catalogue",
                        ev.name
                    ));
                    continue;
                };
                let Some(value) = value else { continue };
                let fits = match (&field.kind, value) {
                    (FieldKind::Bool {}, FieldValue::Bool(_)) => true,
                    (FieldKind::Enum { values }, FieldValue::Label(l)) => values.contains(l),
                    (
                        FieldKind::Integer { .. } | FieldKind::Duration { .. },
                        FieldValue::Integer(_),
                    ) => {
                        matches!(field.mechanism, MechanismParams::DiscreteLaplace { .. })
                    }
                    (
                        FieldKind::Integer { .. } | FieldKind::Duration { .. },
                        FieldValue::Bool(_),
                    ) => {
                        matches!(field.mechanism, MechanismParams::OneBitMean { .. })
                    }
                    (FieldKind::Version {}, FieldValue::Version(_)) => true,
                    // A version-shaped label (`1`) decodes as a label.
                    (FieldKind::Version {}, FieldValue::Label(l)) => {
                        Version::new(l.as_str()).is_ok()
                    }
                    (FieldKind::Text { max_len }, FieldValue::Text(t)) => {
                        t.redacted.as_str().chars().count() <= *max_len as usize
                    }
                    _ => false,
                };
                if !fits {
                    problem(format!(
                        "events/{i}: {}.{name} = {:?} is not {}",
                        ev.name,
                        value.display().chars().take(80).collect::<String>(),
                        field.kind.describe()
                    ));
                }
            }
        }
        if out.problems.is_empty() {
            Ok(())
        } else {
            Err(out)
        }
    }

    /// Human-readable listing (one line per field) for `telemetry catalog`.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for ev in &self.events {
            out.push_str(&format!("{} — {}\n", ev.name, ev.description));
            for f in &ev.fields {
                let kind = match &f.kind {
                    FieldKind::Bool {} => "bool".to_string(),
                    FieldKind::Enum { values } => format!(
                        "one of {}",
                        values
                            .iter()
                            .map(Label::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    FieldKind::Integer { min, max } => format!("integer in [{min}, {max}]"),
                    FieldKind::Duration { bounds_ms } => format!(
                        "duration bucket (bounds ms: {})",
                        bounds_ms
                            .iter()
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    FieldKind::Version {} => "version".to_string(),
                    FieldKind::Text { max_len } => format!("redacted text (≤ {max_len} chars)"),
                };
                out.push_str(&format!(
                    "  {}: {kind} — {}\n    {}\n",
                    f.name,
                    f.description,
                    f.mechanism.describe()
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Catalog {
        Catalog::new(
            Some(NameVersion::new("acme", "1.2.3").unwrap()),
            vec![
                EventSpec::new(
                    "command_run",
                    "A command ran.",
                    vec![
                        FieldSpec::enumeration(
                            "command",
                            "Which command.",
                            &["build", "run", "test"],
                            1.0,
                        )
                        .unwrap(),
                        FieldSpec::bool("ok", "Whether it succeeded.", 1.0).unwrap(),
                        FieldSpec::duration(
                            "duration",
                            "How long it took.",
                            &[100, 1000, 10_000],
                            1.0,
                        )
                        .unwrap(),
                        FieldSpec::integer("files", "How many inputs.", 0, 100, 0.5).unwrap(),
                        FieldSpec::text("error", "Error message, redacted.", 120).unwrap(),
                    ],
                )
                .unwrap(),
                EventSpec::component_initialized(&["core", "cli"], 1.0).unwrap(),
            ],
        )
    }

    #[test]
    fn good_catalog_checks_and_describes_text_plainly() {
        let c = sample();
        c.check().unwrap();
        let d = c.describe();
        assert!(
            d.contains("NOT randomised: free text sent after redaction only"),
            "{d}"
        );
        assert!(d.contains("k-ary randomised response over 3 values"), "{d}");
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Catalog>(&json).unwrap(), c);
    }

    #[test]
    fn mismatches_are_refused() {
        let mut c = sample();
        c.events[0].fields[0].kind = FieldKind::enumeration(&["build", "run", "lint"]).unwrap();
        assert!(matches!(c.check(), Err(CatalogError::Mismatch { .. })));

        let mut c = sample();
        c.events[0].fields[1].mechanism = MechanismParams::not_randomized();
        assert!(matches!(c.check(), Err(CatalogError::Mismatch { .. })));

        let mut c = sample();
        c.events[0].fields[3].mechanism = MechanismParams::discrete_laplace(0.5, 0, 50).unwrap();
        assert!(c.check().unwrap_err().to_string().contains("clamp [0, 50]"));

        let mut c = sample();
        c.events.push(c.events[0].clone());
        assert!(matches!(c.check(), Err(CatalogError::Duplicate(_))));

        let mut c = sample();
        c.events[0].fields[2].kind = FieldKind::Duration {
            bounds_ms: vec![100, 100, 1000],
        };
        assert!(c.check().is_err());

        assert!(FieldSpec::bool("Bad Name", "", 1.0).is_err());
        assert!(FieldSpec::enumeration("x", "", &["a/b", "c"], 1.0).is_err());
        assert!(FieldSpec::text("x", "", 500).is_err());
    }
}

/// Why a payload does not fit its app's catalogue: the first problems, and how many more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayloadMismatch {
    /// The first problems found, in order.
    pub problems: Vec<String>,
    /// How many more were not listed.
    pub more: usize,
}

impl fmt::Display for PayloadMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("payload does not fit the app's catalogue:")?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        if self.more > 0 {
            write!(f, "\n  … and {} more", self.more)?;
        }
        Ok(())
    }
}

impl std::error::Error for PayloadMismatch {}
