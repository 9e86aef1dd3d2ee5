//! Generation of the committed JSON Schemas, shared by `cargo xtask codegen [--check]` and the
//! crate's own tests. Generating is pure; writing the files is the xtask's job.

use std::fmt;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::Serialize;
use serde_json::Value;

use crate::catalog::Catalog;
use crate::envelope::Envelope;

/// Stable `$id` of the v1 envelope schema (an identifier, never fetched).
pub const ENVELOPE_SCHEMA_URI_V1: &str =
    "https://telemetry-toolkit.invalid/schemas/v1/envelope.schema.json";
/// Stable `$id` of the v1 catalogue schema (an identifier, never fetched).
pub const CATALOG_SCHEMA_URI_V1: &str =
    "https://telemetry-toolkit.invalid/schemas/v1/catalog.schema.json";

/// Path of the committed v1 envelope schema, relative to the repository root.
pub const ENVELOPE_SCHEMA_PATH_V1: &str = "crates/telemetry-schema/schemas/v1/envelope.schema.json";
/// Path of the committed v1 catalogue schema, relative to the repository root.
pub const CATALOG_SCHEMA_PATH_V1: &str = "crates/telemetry-schema/schemas/v1/catalog.schema.json";

/// The message every drift report ends with.
pub const REGENERATE_HINT: &str = "run `cargo xtask codegen`";

/// A file the code generates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Path relative to the repository root.
    pub path: &'static str,
    /// Exact contents (pretty JSON, sorted keys, trailing newline).
    pub contents: String,
}

/// A committed file as compiled into this crate (`include_str!`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommittedFile {
    /// Path relative to the repository root.
    pub path: &'static str,
    /// Contents at build time.
    pub contents: &'static str,
}

/// A committed file that differs from what the code generates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// Path relative to the repository root.
    pub path: String,
    /// 1-based line of the first difference.
    pub line: usize,
    /// That line in the committed file (`None`: the committed file is shorter or missing).
    pub committed: Option<String>,
    /// That line as generated (`None`: the generated file is shorter).
    pub generated: Option<String>,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |l: &Option<String>| match l {
            Some(l) => format!("{:?}", l.chars().take(120).collect::<String>()),
            None => "<end of file>".to_string(),
        };
        write!(
            f,
            "{} differs from the code at line {}: committed {}, generated {}; {REGENERATE_HINT}",
            self.path,
            self.line,
            show(&self.committed),
            show(&self.generated)
        )
    }
}

impl std::error::Error for Drift {}

/// Serialises objects with sorted keys whatever serde_json's `preserve_order` feature says.
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut m = s.serialize_map(Some(keys.len()))?;
                for k in keys {
                    m.serialize_entry(k, &Sorted(&map[k]))?;
                }
                m.end()
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Sorted(item))?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// Pretty JSON with sorted keys and a trailing newline (the committed form).
pub fn to_canonical_json(value: &Value) -> String {
    let mut out = serde_json::to_string_pretty(&Sorted(value)).expect("JSON values serialise");
    out.push('\n');
    out
}

fn root_schema<T: JsonSchema>(id: &str, description: &str) -> Value {
    let generator = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>();
    schema.insert("$id".into(), Value::String(id.into()));
    schema.insert("description".into(), Value::String(description.into()));
    schema.to_value()
}

/// The v1 envelope schema as a JSON value (self-contained: definitions inline under `$defs`).
pub fn envelope_schema() -> Value {
    root_schema::<Envelope>(
        ENVELOPE_SCHEMA_URI_V1,
        "A telemetry payload (format v1): everything that can leave a machine. Unknown properties \
         are refused; every string is a closed enum, a version, an identifier with a checked \
         format, or redacted text. Generated from telemetry-schema; do not edit by hand.",
    )
}

/// The v1 catalogue schema as a JSON value.
pub fn catalog_schema() -> Value {
    root_schema::<Catalog>(
        CATALOG_SCHEMA_URI_V1,
        "A telemetry event catalogue (format v1): every event an app may emit, with each field's \
         kind, domain and DP mechanism. Generated from telemetry-schema; do not edit by hand.",
    )
}

/// Every file `cargo xtask codegen` writes.
pub fn generated_files() -> Vec<GeneratedFile> {
    vec![
        GeneratedFile {
            path: ENVELOPE_SCHEMA_PATH_V1,
            contents: to_canonical_json(&envelope_schema()),
        },
        GeneratedFile {
            path: CATALOG_SCHEMA_PATH_V1,
            contents: to_canonical_json(&catalog_schema()),
        },
    ]
}

/// The committed versions of [`generated_files`], as compiled into this crate.
pub fn committed_files() -> Vec<CommittedFile> {
    vec![
        CommittedFile {
            path: ENVELOPE_SCHEMA_PATH_V1,
            contents: crate::validate::ENVELOPE_V1,
        },
        CommittedFile {
            path: CATALOG_SCHEMA_PATH_V1,
            contents: crate::validate::CATALOG_V1,
        },
    ]
}

/// Compares a committed file with the generated one; `Err` names the first differing line.
pub fn check(path: &str, committed: &str, generated: &str) -> Result<(), Drift> {
    if committed == generated {
        return Ok(());
    }
    let mut c = committed.lines();
    let mut g = generated.lines();
    let mut line = 1;
    loop {
        match (c.next(), g.next()) {
            (Some(a), Some(b)) if a == b => line += 1,
            (None, None) => break, // differs only in line endings / trailing newline
            (a, b) => {
                return Err(Drift {
                    path: path.to_string(),
                    line,
                    committed: a.map(str::to_string),
                    generated: b.map(str::to_string),
                });
            }
        }
    }
    Err(Drift {
        path: path.to_string(),
        line,
        committed: None,
        generated: None,
    })
}

/// Checks every committed file compiled into this crate against the code.
pub fn check_committed() -> Result<(), Vec<Drift>> {
    let committed = committed_files();
    let drifts: Vec<Drift> = generated_files()
        .into_iter()
        .filter_map(|g| {
            let c = committed
                .iter()
                .find(|c| c.path == g.path)
                .map_or("", |c| c.contents);
            check(g.path, c, &g.contents).err()
        })
        .collect();
    if drifts.is_empty() {
        Ok(())
    } else {
        Err(drifts)
    }
}
