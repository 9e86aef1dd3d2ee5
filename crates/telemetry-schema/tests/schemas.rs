//! The generated JSON Schemas: committed, snapshotted, self-contained, strict, and evolving only
//! by the versioning rules of docs/telemetry/v1/SPEC.md.

use serde_json::{Value, json};
use telemetry_schema::codegen::{self, REGENERATE_HINT};
use telemetry_schema::{envelope_schema_json, validate_payload};

#[test]
fn committed_schemas_match_the_code() {
    if let Err(drifts) = codegen::check_committed() {
        let text: Vec<String> = drifts.iter().map(ToString::to_string).collect();
        panic!("{}", text.join("\n"));
    }
}

#[test]
fn check_reports_drift_with_the_regenerate_hint() {
    for file in codegen::generated_files() {
        // Any change to a wire type changes the generated text; simulate one on the committed side.
        let altered = file.contents.replacen(
            "\"additionalProperties\": false",
            "\"additionalProperties\": true",
            1,
        );
        assert_ne!(altered, file.contents);
        let drift = codegen::check(file.path, &altered, &file.contents).unwrap_err();
        let msg = drift.to_string();
        assert!(
            msg.contains(REGENERATE_HINT) && msg.contains("run `cargo xtask codegen`"),
            "{msg}"
        );
        assert!(msg.contains(file.path), "{msg}");
        assert!(drift.line > 1);

        // Missing file, extra trailing line, CRLF endings: all drift.
        assert!(codegen::check(file.path, "", &file.contents).is_err());
        assert!(
            codegen::check(file.path, &format!("{}\n", file.contents), &file.contents).is_err()
        );
        assert!(
            codegen::check(
                file.path,
                &file.contents.replace('\n', "\r\n"),
                &file.contents
            )
            .is_err()
        );
        codegen::check(file.path, &file.contents, &file.contents).unwrap();
    }
}

#[test]
fn snapshot_envelope_schema() {
    insta::assert_snapshot!("envelope_schema_v1", codegen::generated_files()[0].contents);
}

#[test]
fn snapshot_catalog_schema() {
    insta::assert_snapshot!("catalog_schema_v1", codegen::generated_files()[1].contents);
}

fn schema() -> Value {
    serde_json::from_str(envelope_schema_json(None).unwrap()).unwrap()
}

#[test]
fn schema_is_draft_2020_12_with_a_stable_id() {
    let s = schema();
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(
        s["$id"],
        "https://telemetry-toolkit.invalid/schemas/v1/envelope.schema.json"
    );
    let c: Value =
        serde_json::from_str(telemetry_schema::catalog_schema_json(None).unwrap()).unwrap();
    assert_eq!(
        c["$id"],
        "https://telemetry-toolkit.invalid/schemas/v1/catalog.schema.json"
    );
}

fn walk<'a>(v: &'a Value, path: &str, out: &mut Vec<(String, &'a Value)>) {
    out.push((path.to_string(), v));
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, c)| walk(c, &format!("{path}/{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, c)| walk(c, &format!("{path}/{i}"), out)),
        _ => {}
    }
}

#[test]
fn schema_is_self_contained() {
    let s = schema();
    let mut nodes = Vec::new();
    walk(&s, "", &mut nodes);
    for (path, node) in &nodes {
        if let Some(r) = node.get("$ref").and_then(Value::as_str) {
            assert!(r.starts_with("#/$defs/"), "{path}: external $ref {r}");
            let name = &r["#/$defs/".len()..];
            assert!(s["$defs"].get(name).is_some(), "{path}: dangling {r}");
        }
    }
}

#[test]
fn every_object_in_the_envelope_schema_rejects_unknown_properties() {
    let s = schema();
    let mut nodes = Vec::new();
    walk(&s, "", &mut nodes);
    let mut objects = 0;
    for (path, node) in &nodes {
        if node.get("type") == Some(&json!("object")) {
            objects += 1;
            assert_eq!(
                node.get("additionalProperties"),
                Some(&json!(false)),
                "{path} accepts unknown properties"
            );
        }
    }
    assert!(objects > 15, "{objects}");
}

#[test]
fn every_string_in_the_envelope_is_constrained() {
    // A string node must be a closed enum (const/enum) or carry a pattern: no free-form strings.
    let s = schema();
    let mut nodes = Vec::new();
    walk(&s, "", &mut nodes);
    for (path, node) in &nodes {
        if node.get("type") == Some(&json!("string")) {
            let closed = node.get("const").is_some() || node.get("enum").is_some();
            let patterned = node.get("pattern").is_some();
            assert!(closed || patterned, "{path} is a free-form string");
        }
    }
}

/// Rule "minor versions only add optional fields", checked against the frozen released schema:
/// every property the release had is still there, and every object requires exactly what it did.
fn assert_compatible(released: &Value, current: &Value, path: &str) {
    match (released, current) {
        (Value::Object(r), Value::Object(c)) => {
            if let Some(req) = r.get("required") {
                assert_eq!(
                    Some(req),
                    c.get("required"),
                    "{path}: required properties changed (breaking: new major)"
                );
            } else if let Some(req) = c.get("required") {
                // New required list on an object that had none: only allowed for new objects.
                assert!(
                    r.get("properties").is_none(),
                    "{path}: became required {req} (breaking: new major)"
                );
            }
            for (k, rv) in r {
                if k == "description" || k == "title" {
                    continue;
                }
                let cv = c
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}/{k}: removed (breaking: new major)"));
                assert_compatible(rv, cv, &format!("{path}/{k}"));
            }
        }
        (Value::Array(r), Value::Array(c)) if path.ends_with("/required") => {
            assert_eq!(r, c, "{path}")
        }
        (Value::Array(r), Value::Array(c)) => {
            assert!(
                c.len() >= r.len(),
                "{path}: alternatives removed (breaking: new major)"
            );
            for (i, (rv, cv)) in r.iter().zip(c).enumerate() {
                assert_compatible(rv, cv, &format!("{path}/{i}"));
            }
        }
        (r, c) => assert_eq!(r, c, "{path}: constraint changed (breaking: new major)"),
    }
}

/// Frozen copies of every released envelope format version, oldest first.
const RELEASED_ENVELOPES: &[(&str, &str)] = &[
    (
        "1.0.0",
        include_str!("../schemas/v1/released/envelope-1.0.0.schema.json"),
    ),
    (
        "1.1.0",
        include_str!("../schemas/v1/released/envelope-1.1.0.schema.json"),
    ),
];

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn v1_only_evolves_by_adding_optional_fields() {
    // Each release is compatible with every earlier one (1.0.0 → 1.1.0), and the current
    // schema with every release.
    for (i, (old_version, old)) in RELEASED_ENVELOPES.iter().enumerate() {
        for (new_version, new) in &RELEASED_ENVELOPES[i + 1..] {
            assert_compatible(
                &parse(old),
                &parse(new),
                &format!("{old_version}→{new_version}"),
            );
        }
        assert_compatible(&parse(old), &schema(), &format!("{old_version}→current"));
    }
    let released: Value = serde_json::from_str(include_str!(
        "../schemas/v1/released/catalog-1.0.0.schema.json"
    ))
    .unwrap();
    let current: Value =
        serde_json::from_str(telemetry_schema::catalog_schema_json(None).unwrap()).unwrap();
    assert_compatible(&released, &current, "");
}

/// Removes `description` and `title` everywhere (wording may change without a new version).
fn without_wording(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| *k != "description" && *k != "title")
                .map(|(k, c)| (k.clone(), without_wording(c)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_wording).collect()),
        other => other.clone(),
    }
}

#[test]
fn the_version_this_build_writes_is_frozen_and_the_wire_format_matches_it() {
    // Releasing a format version = freezing its schema under schemas/v1/released/. The schema
    // the code generates must be exactly that frozen one (up to wording): changing the wire
    // format means a new ENVELOPE_VERSION and a new frozen file (SPEC §6).
    let (newest, frozen) = RELEASED_ENVELOPES.last().unwrap();
    assert_eq!(*newest, telemetry_schema::ENVELOPE_VERSION);
    assert_eq!(
        without_wording(&parse(frozen)),
        without_wording(&schema()),
        "the generated envelope schema differs from released/envelope-{newest}.schema.json: \
         a change of the wire format needs a new version (SPEC §6)"
    );
}

#[test]
fn each_known_version_gets_its_own_schema() {
    // A 1.0.0 document is checked against the frozen 1.0.0 schema, which knows nothing of 1.1.
    for (version, frozen) in RELEASED_ENVELOPES {
        let served = envelope_schema_json(Some(version)).unwrap();
        assert_eq!(
            without_wording(&parse(served)),
            without_wording(&parse(frozen)),
            "{version}"
        );
    }
    assert_eq!(
        envelope_schema_json(Some("1.0.0")).unwrap(),
        RELEASED_ENVELOPES[0].1
    );
    assert_eq!(
        envelope_schema_json(Some("1.1.0")).unwrap(),
        envelope_schema_json(None).unwrap()
    );
    let statuses = |text: &str| -> Vec<Value> {
        parse(text)["$defs"]["RedactionStatus"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["const"].clone())
            .collect()
    };
    assert_eq!(
        statuses(envelope_schema_json(Some("1.0.0")).unwrap()),
        [json!("applied"), json!("not_applicable")]
    );
    assert_eq!(
        statuses(envelope_schema_json(Some("1.1.0")).unwrap()),
        [
            json!("applied"),
            json!("not_applicable"),
            json!("clean"),
            json!("redacted"),
            json!("rejected")
        ]
    );
    let counts = |text: &str| -> Vec<bool> {
        let props = &parse(text)["$defs"]["Redaction"]["properties"];
        vec![
            props.get("redacted_values").is_some(),
            props.get("rejected_values").is_some(),
        ]
    };
    assert_eq!(
        counts(envelope_schema_json(Some("1.0.0")).unwrap()),
        [false, false]
    );
    assert_eq!(
        counts(envelope_schema_json(Some("1.1.0")).unwrap()),
        [true, true]
    );
}

#[test]
#[should_panic(expected = "breaking: new major")]
fn compatibility_check_catches_a_new_required_field() {
    let released = schema();
    let mut current = released.clone();
    current["required"]
        .as_array_mut()
        .unwrap()
        .push(json!("hostname"));
    assert_compatible(&released, &current, "");
}

#[test]
#[should_panic(expected = "breaking: new major")]
fn compatibility_check_catches_a_removed_field() {
    let released = schema();
    let mut current = released.clone();
    current["properties"]
        .as_object_mut()
        .unwrap()
        .remove("period");
    assert_compatible(&released, &current, "");
}

#[test]
fn compatibility_check_allows_a_new_optional_field() {
    let released = schema();
    let mut current = released.clone();
    current["properties"]["locale_region"] = json!({"enum": ["eu", "us"]});
    assert_compatible(&released, &current, "");
}

#[test]
fn any_standard_validator_can_use_the_printed_schema() {
    // The exact text `telemetry schema` prints compiles on its own (no retriever, no network) and
    // agrees with the crate's validator on the fixtures.
    let validator = jsonschema::draft202012::new(&schema()).unwrap();
    let ok: Value =
        serde_json::from_slice(include_bytes!("../fixtures/v1/valid/full.json")).unwrap();
    assert!(validator.is_valid(&ok));
    let bad: Value = serde_json::from_slice(include_bytes!(
        "../fixtures/v1/invalid/unknown_top_level_property.json"
    ))
    .unwrap();
    assert!(!validator.is_valid(&bad));
    assert!(validate_payload(ok.to_string().as_bytes()).is_ok());
}
