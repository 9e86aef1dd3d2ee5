//! Every committed fixture: valid ones keep validating forever; invalid ones fail for their reason.

use telemetry_schema::{
    ConsistencyError, MAX_DEPTH, MAX_PAYLOAD_BYTES, RedactionStatus, ValidationError, Version,
    decode_payload, validate_payload,
};

macro_rules! fixture {
    ($kind:literal, $name:literal) => {
        (
            $name,
            include_bytes!(concat!("../fixtures/v1/", $kind, "/", $name, ".json")).as_slice(),
        )
    };
}

/// Released-format fixtures (v1.0.0). Never delete or edit one: add new files instead.
const VALID_V1: &[(&str, &[u8])] = &[
    fixture!("valid", "minimal"),
    fixture!("valid", "full"),
    fixture!("valid", "event_without_fields"),
];

/// Released-format fixtures (v1.1.0: redaction outcome and counts). Never delete or edit one.
const VALID_V1_1: &[(&str, &[u8])] = &[
    fixture!("valid", "redaction_clean"),
    fixture!("valid", "redaction_redacted"),
    fixture!("valid", "redaction_rejected"),
];

fn kind(err: &ValidationError) -> &'static str {
    match err {
        ValidationError::TooLarge { .. } => "too_large",
        ValidationError::NotUtf8 { .. } => "not_utf8",
        ValidationError::TooDeep { .. } => "too_deep",
        ValidationError::Malformed { .. } => "malformed",
        ValidationError::NotAnEnvelope { .. } => "not_an_envelope",
        ValidationError::MissingVersion => "missing_version",
        ValidationError::UnsupportedVersion(_) => "unsupported_version",
        ValidationError::Schema { .. } => "schema",
        ValidationError::Inconsistent(_) => "inconsistent",
        ValidationError::Decode(_) => "decode",
        ValidationError::Internal(_) => "internal",
    }
}

/// (fixture, error kind, text the error must contain, why it must fail).
type Case = (
    (&'static str, &'static [u8]),
    &'static str,
    &'static str,
    &'static str,
);

const INVALID_V1: &[Case] = &[
    (
        fixture!("invalid", "unknown_top_level_property"),
        "schema",
        "hostname",
        "unknown properties are refused: no place for a host name",
    ),
    (
        fixture!("invalid", "unknown_event_property"),
        "schema",
        "/events/0",
        "events carry name and fields only: no timestamps",
    ),
    (
        fixture!("invalid", "path_as_label"),
        "schema",
        "/events/0/fields/command",
        "a path is not a label, version or number",
    ),
    (
        fixture!("invalid", "email_as_app_name"),
        "schema",
        "/app/name",
        "app names are labels: no `@`",
    ),
    (
        fixture!("invalid", "timestamp_in_period"),
        "schema",
        "/period/day",
        "only the day, never a finer timestamp",
    ),
    (
        fixture!("invalid", "impossible_day"),
        "decode",
        "Day",
        "the day must exist in the calendar",
    ),
    (
        fixture!("invalid", "run_id_not_uuid_v7"),
        "schema",
        "/run_id",
        "run ids are UUIDv7",
    ),
    (
        fixture!("invalid", "session_id_upper_case"),
        "schema",
        "/ids/session",
        "ids are lower-case hex of a fixed length",
    ),
    (
        fixture!("invalid", "free_text_os"),
        "schema",
        "/platform/os",
        "the OS is a closed enum",
    ),
    (
        fixture!("invalid", "future_major_version"),
        "unsupported_version",
        "unsupported schema version 2.0.0 (this build knows up to 1.1.0)",
        "a version this build does not know",
    ),
    (
        fixture!("invalid", "newer_minor_version"),
        "unsupported_version",
        "unsupported schema version 1.2.0 (this build knows up to 1.1.0)",
        "a newer minor may carry fields this build cannot check",
    ),
    (
        fixture!("invalid", "missing_version"),
        "missing_version",
        "/schema/version",
        "every payload states its version",
    ),
    (
        fixture!("invalid", "not_an_envelope"),
        "not_an_envelope",
        "telemetry-toolkit.catalog",
        "a catalogue is not a payload",
    ),
    (
        fixture!("invalid", "path_in_redacted_text"),
        "schema",
        "/events/1/fields/error",
        "redacted text never contains `/`",
    ),
    (
        fixture!("invalid", "raw_string_text"),
        "schema",
        "/events/1/fields/error",
        "free text must be wrapped as {\"redacted\": ...}",
    ),
    (
        fixture!("invalid", "field_without_dp_block"),
        "inconsistent",
        "command_run.retries has no parameter block",
        "every field states its mechanism",
    ),
    (
        fixture!("invalid", "p_inconsistent_with_epsilon"),
        "inconsistent",
        "p is 0.9",
        "internals must match epsilon",
    ),
    (
        fixture!("invalid", "label_under_randomized_response"),
        "inconsistent",
        "randomized_response produces a boolean",
        "value type must match the mechanism",
    ),
    (
        fixture!("invalid", "epsilon_zero"),
        "schema",
        "/privacy/dp/1/params",
        "epsilon must be positive",
    ),
    (
        fixture!("invalid", "true_value_in_dp_block"),
        "schema",
        "true_value",
        "a DP block never carries the true value",
    ),
    (
        fixture!("invalid", "ledger_overspent"),
        "inconsistent",
        "exceeds epsilon_cap",
        "the ledger never spends more than its cap",
    ),
    (
        fixture!("invalid", "text_with_not_applicable_redaction"),
        "inconsistent",
        "redaction",
        "text implies redaction was applied",
    ),
    (
        fixture!("invalid", "redacted_without_count"),
        "inconsistent",
        "status redacted requires redacted_values ≥ 1",
        "`redacted` states how many text values were redacted",
    ),
    (
        fixture!("invalid", "clean_with_count"),
        "inconsistent",
        "status clean requires redacted_values and rejected_values to be 0 or absent",
        "`clean` means nothing was redacted or dropped",
    ),
    (
        fixture!("invalid", "clean_in_1_0_0_document"),
        "schema",
        "/privacy/redaction/status",
        "`clean` exists since 1.1.0; a 1.0.0 document is checked against the 1.0.0 schema",
    ),
    (
        fixture!("invalid", "count_in_1_0_0_document"),
        "schema",
        "redacted_values",
        "the counts exist since 1.1.0; a 1.0.0 document cannot carry them",
    ),
    (
        fixture!("invalid", "float_integer"),
        "schema",
        "/events/0/fields/files",
        "integers are integers",
    ),
    (
        fixture!("invalid", "malformed_json"),
        "malformed",
        "line 2",
        "truncated JSON",
    ),
];

#[test]
fn released_valid_fixtures_keep_validating() {
    for (name, bytes) in VALID_V1 {
        let checked = validate_payload(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(checked.version.as_str(), "1.0.0", "{name}");
        // Round trip: what we decode re-encodes to a payload that validates again.
        validate_payload(checked.envelope.to_json().as_bytes()).unwrap();
    }
}

#[test]
fn released_1_1_fixtures_keep_validating() {
    let expected = [
        (RedactionStatus::Clean, 0, 0),
        (RedactionStatus::Redacted, 1, 0),
        (RedactionStatus::Rejected, 1, 1),
    ];
    for ((name, bytes), (status, redacted, rejected)) in VALID_V1_1.iter().zip(expected) {
        let checked = validate_payload(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(checked.version.as_str(), "1.1.0", "{name}");
        let r = &checked.envelope.privacy.redaction;
        assert_eq!(
            (r.status, r.redacted_values, r.rejected_values),
            (status, redacted, rejected),
            "{name}"
        );
        validate_payload(checked.envelope.to_json().as_bytes()).unwrap();
    }
}

#[test]
fn a_1_0_0_document_is_a_valid_1_1_0_document() {
    // 1.1.0 only added optional things: every 1.0.0 fixture, re-declared as 1.1.0, validates
    // (`applied` stays valid, though 1.1 producers write clean / redacted / rejected).
    for (name, bytes) in VALID_V1 {
        let text = std::str::from_utf8(bytes).unwrap();
        let text = text.replacen("\"version\": \"1.0.0\"", "\"version\": \"1.1.0\"", 1);
        let checked = validate_payload(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(checked.version.as_str(), "1.1.0", "{name}");
    }
}

#[test]
fn a_1_0_0_envelope_built_in_rust_cannot_use_1_1_redaction() {
    // The Rust-side check agrees with the frozen 1.0.0 schema, for envelopes never serialised.
    let (_, bytes) = VALID_V1_1[2];
    let mut envelope = validate_payload(bytes).unwrap().envelope;
    envelope.schema.version = Version::new("1.0.0").unwrap();
    let errors = envelope.check_consistency().unwrap_err();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "/privacy/redaction/status: status rejected exists since format 1.1.0, but the document declares 1.0.0",
            "/privacy/redaction/redacted_values: redacted_values exists since format 1.1.0, but the document declares 1.0.0",
            "/privacy/redaction/rejected_values: rejected_values exists since format 1.1.0, but the document declares 1.0.0",
        ]
    );
    // Every status/count combination that is not the 1.1 producer's rule is refused.
    for (status, redacted, rejected, ok) in [
        (RedactionStatus::NotApplicable, 0, 0, true),
        (RedactionStatus::NotApplicable, 1, 0, false),
        (RedactionStatus::Applied, 0, 0, true),
        (RedactionStatus::Applied, 0, 1, false),
        (RedactionStatus::Clean, 0, 0, true),
        (RedactionStatus::Clean, 0, 1, false),
        (RedactionStatus::Redacted, 2, 0, true),
        (RedactionStatus::Redacted, 0, 0, false),
        (RedactionStatus::Redacted, 1, 1, false),
        (RedactionStatus::Rejected, 0, 1, true),
        (RedactionStatus::Rejected, 3, 2, true),
        (RedactionStatus::Rejected, 1, 0, false),
    ] {
        let mut e = validate_payload(VALID_V1_1[0].1).unwrap().envelope;
        e.events.clear();
        e.privacy.dp.clear();
        e.privacy.redaction.status = status;
        e.privacy.redaction.redacted_values = redacted;
        e.privacy.redaction.rejected_values = rejected;
        assert_eq!(
            e.check_consistency().is_ok(),
            ok,
            "{status} {redacted} {rejected}: {:?}",
            e.check_consistency()
        );
    }
}

/// `decode_payload` (for listing, and `verify-payload` in a host built without the validator) is
/// `validate_payload` minus the JSON Schema: it agrees on every valid fixture, refuses every
/// invalid one for the same reason when that reason is not a schema rule, and refuses the
/// schema-invalid ones too (the typed decoder and the consistency check enforce those rules).
#[test]
fn decode_payload_is_validate_payload_without_the_schema() {
    for (name, bytes) in VALID_V1.iter().chain(VALID_V1_1) {
        let full = validate_payload(bytes).unwrap();
        let decoded = decode_payload(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded.envelope, full.envelope, "{name}");
        assert_eq!(decoded.version, full.version, "{name}");
    }
    let mut refused = 0;
    for ((name, bytes), expected_kind, _, _) in INVALID_V1 {
        let full = validate_payload(bytes).unwrap_err();
        let err = decode_payload(bytes).expect_err(name);
        if *expected_kind == "schema" {
            continue;
        }
        assert_eq!(kind(&err), kind(&full), "{name}: {err}");
        refused += 1;
    }
    assert!(refused >= 5, "only {refused} non-schema invalid fixtures");
}

#[test]
fn invalid_fixtures_fail_for_their_reason() {
    for ((name, bytes), expected_kind, needle, why) in INVALID_V1 {
        let err = match validate_payload(bytes) {
            Ok(_) => panic!("{name} validated but must fail: {why}"),
            Err(e) => e,
        };
        let text = err.to_string();
        assert_eq!(kind(&err), *expected_kind, "{name} ({why}): {text}");
        assert!(
            text.contains(needle),
            "{name} ({why}): {text:?} lacks {needle:?}"
        );
    }
}

#[test]
fn schema_errors_are_structured() {
    let bytes = include_bytes!("../fixtures/v1/invalid/path_as_label.json");
    let ValidationError::Schema {
        violations, total, ..
    } = validate_payload(bytes).unwrap_err()
    else {
        panic!("expected schema violations")
    };
    assert!(total >= 1);
    let v = &violations[0];
    assert_eq!(v.instance_path, "/events/0/fields/command");
    assert_eq!(v.keyword, "anyOf");
    assert!(
        v.schema_path.starts_with("/$defs/Event/properties/fields"),
        "{}",
        v.schema_path
    );
}

#[test]
fn consistency_errors_are_structured() {
    let bytes = include_bytes!("../fixtures/v1/invalid/field_without_dp_block.json");
    let ValidationError::Inconsistent(errors) = validate_payload(bytes).unwrap_err() else {
        panic!()
    };
    assert_eq!(
        errors,
        vec![ConsistencyError::MissingDpBlock {
            event_index: 0,
            event: "command_run".into(),
            field: "retries".into()
        }]
    );
}

#[test]
fn hostile_inputs_get_clear_errors() {
    // Too large: refused before parsing, whatever the content.
    let huge = vec![b' '; MAX_PAYLOAD_BYTES + 1];
    let err = validate_payload(&huge).unwrap_err();
    assert_eq!(
        err,
        ValidationError::TooLarge {
            size: MAX_PAYLOAD_BYTES + 1,
            limit: MAX_PAYLOAD_BYTES
        }
    );
    assert!(
        err.to_string()
            .contains("larger than the 4194304-byte limit")
    );

    // Deep nesting: refused by the byte scan (serde_json would recurse).
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let err = validate_payload(deep.as_bytes()).unwrap_err();
    assert_eq!(err, ValidationError::TooDeep { limit: MAX_DEPTH });
    let ok_depth = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert_ne!(
        validate_payload(ok_depth.as_bytes()).unwrap_err(),
        ValidationError::TooDeep { limit: MAX_DEPTH }
    );

    // Not UTF-8.
    let mut bytes = include_bytes!("../fixtures/v1/valid/minimal.json").to_vec();
    bytes.insert(10, 0xff);
    let err = validate_payload(&bytes).unwrap_err();
    assert_eq!(err, ValidationError::NotUtf8 { valid_up_to: 10 });
    assert!(err.to_string().contains("not UTF-8"));

    // Not JSON / not an object / empty.
    for junk in [
        &b""[..],
        b"null",
        b"[]",
        b"42",
        b"\"x\"",
        b"{",
        b"{\"schema\": 1}",
    ] {
        let err = validate_payload(junk).unwrap_err();
        assert!(
            matches!(kind(&err), "malformed" | "not_an_envelope"),
            "{:?}: {err}",
            String::from_utf8_lossy(junk)
        );
    }

    // A version that is not a string, or not a version.
    for version in [
        "1",
        "\"one\"",
        "\"1.0.0-rc.1\"",
        "\"99999999999999999999.0.0\"",
    ] {
        let doc = format!(
            "{{\"schema\": {{\"id\": \"telemetry-toolkit.envelope\", \"version\": {version}}}}}"
        );
        let err = validate_payload(doc.as_bytes()).unwrap_err();
        assert!(
            matches!(kind(&err), "missing_version" | "unsupported_version"),
            "{version}: {err}"
        );
    }
}

#[test]
fn many_violations_are_capped() {
    let mut v: serde_json::Value =
        serde_json::from_slice(include_bytes!("../fixtures/v1/valid/minimal.json")).unwrap();
    let bad_events: Vec<_> = (0..500)
        .map(|_| serde_json::json!({"name": "Bad Name", "fields": {}}))
        .collect();
    v["events"] = serde_json::Value::Array(bad_events);
    let ValidationError::Schema {
        violations, total, ..
    } = validate_payload(v.to_string().as_bytes()).unwrap_err()
    else {
        panic!()
    };
    assert_eq!(
        violations.len(),
        telemetry_schema::validate::MAX_REPORTED_VIOLATIONS
    );
    assert!(total >= 500, "{total}");
}

#[test]
fn a_one_mib_payload_validates() {
    // Many events: about 1 MiB of valid JSON (the CLI's verify-payload budget is measured in a bench).
    let mut v: serde_json::Value =
        serde_json::from_slice(include_bytes!("../fixtures/v1/valid/full.json")).unwrap();
    let events = v["events"].as_array().unwrap().clone();
    let mut all = Vec::new();
    while all.len() < 9_000 {
        all.extend(events.iter().cloned());
    }
    all.truncate(telemetry_schema::MAX_EVENTS);
    v["events"] = serde_json::Value::Array(all);
    let text = v.to_string();
    assert!(text.len() > 700_000, "{}", text.len());
    validate_payload(text.as_bytes()).unwrap();
}

/// Every member removed, every scalar replaced by a hostile value, an unknown member added to
/// every object: for each such mutation of the largest valid fixture of each released version
/// (the others are parts of these), `decode_payload` accepts
/// exactly what `validate_payload` accepts, and decodes it to the same envelope.
#[test]
fn decode_payload_agrees_with_validate_payload_on_mutations() {
    use serde_json::Value;

    fn paths(value: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(at.clone());
        let children: Vec<(String, &Value)> = match value {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            _ => Vec::new(),
        };
        for (key, child) in children {
            at.push(key);
            paths(child, at, out);
            at.pop();
        }
    }
    fn at<'a>(value: &'a mut Value, path: &[String]) -> &'a mut Value {
        path.iter().fold(value, |v, key| match v {
            Value::Object(map) => map.get_mut(key).unwrap(),
            Value::Array(items) => &mut items[key.parse::<usize>().unwrap()],
            _ => unreachable!(),
        })
    }
    let replacements = [
        Value::Null,
        Value::Bool(true),
        serde_json::json!(-1),
        serde_json::json!(1.5),
        serde_json::json!(u64::MAX),
        serde_json::json!("/home/alice"),
        serde_json::json!({}),
    ];
    let (mut compared, mut accepted) = (0usize, 0usize);
    let mut disagreements = Vec::new();
    let largest = |fixtures: &'static [(&'static str, &'static [u8])]| {
        fixtures
            .iter()
            .max_by_key(|(_, bytes)| bytes.len())
            .unwrap()
    };
    for (name, bytes) in [largest(VALID_V1), largest(VALID_V1_1)] {
        let original: Value = serde_json::from_slice(bytes).unwrap();
        let mut all = Vec::new();
        paths(&original, &mut Vec::new(), &mut all);
        let mut mutants = Vec::new();
        for path in &all {
            let target = at(&mut original.clone(), path).clone();
            if let Some((last, parent)) = path.split_last() {
                let mut removed = original.clone();
                match at(&mut removed, parent) {
                    Value::Object(map) => drop(map.remove(last)),
                    Value::Array(items) => drop(items.remove(last.parse::<usize>().unwrap())),
                    _ => unreachable!(),
                }
                mutants.push((format!("{name}: without {path:?}"), removed));
            }
            if target.is_object() {
                let mut extra = original.clone();
                if let Value::Object(map) = at(&mut extra, path) {
                    map.insert("hostname".into(), serde_json::json!("alice-laptop"));
                }
                mutants.push((format!("{name}: extra member in {path:?}"), extra));
            } else if !target.is_array() {
                for replacement in &replacements {
                    let mut changed = original.clone();
                    *at(&mut changed, path) = replacement.clone();
                    mutants.push((format!("{name}: {path:?} = {replacement}"), changed));
                }
            }
        }
        for (what, mutant) in mutants {
            let bytes = serde_json::to_vec(&mutant).unwrap();
            let full = validate_payload(&bytes);
            let typed = decode_payload(&bytes);
            match (&full, &typed) {
                (Ok(full), Ok(typed)) => {
                    assert_eq!(full.envelope, typed.envelope, "{what}");
                    accepted += 1;
                }
                (Err(_), Err(_)) => {}
                _ => disagreements.push(format!(
                    "{what}: validate_payload {:?}, decode_payload {:?}",
                    full.as_ref().map(|_| ()),
                    typed.as_ref().map(|_| ())
                )),
            }
            compared += 1;
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    assert!(compared > 1000, "only {compared} mutants");
    assert!(
        accepted > 10,
        "only {accepted} mutants were valid: the mutations say little"
    );
}
