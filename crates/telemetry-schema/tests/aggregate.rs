//! Aggregation across payloads, and catalogue validation.

use telemetry_schema::{
    Catalog, EventSpec, FieldSpec, FieldValue, MechanismKind, NameVersion, aggregate,
    aggregate_with_catalog, validate_catalog, validate_payload,
};

fn full() -> telemetry_schema::Envelope {
    validate_payload(include_bytes!("../fixtures/v1/valid/full.json"))
        .unwrap()
        .envelope
}

fn catalog() -> Catalog {
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
                    FieldSpec::bool("ok", "Whether it succeeded.", 3f64.ln()).unwrap(),
                    FieldSpec::integer("files", "Inputs.", 0, 100, 0.5).unwrap(),
                    FieldSpec::integer("duration", "Bucket.", 0, 3, 1.0).unwrap(),
                    FieldSpec::text("error", "Error, redacted.", 120).unwrap(),
                ],
            )
            .unwrap(),
            EventSpec::component_initialized(&["core", "cli"], 1.0).unwrap(),
        ],
    )
}

#[test]
fn aggregates_every_mechanism() {
    let payloads = vec![full(), full(), full()];
    let rows = aggregate(&payloads);
    let find = |event: &str, field: &str, value: Option<&str>| {
        rows.iter()
            .find(|r| r.event == event && r.field == field && r.value.as_deref() == value)
            .unwrap_or_else(|| panic!("no row {event}.{field}={value:?} in {rows:#?}"))
    };
    let ok = find("command_run", "ok", Some("true"));
    assert_eq!((ok.mechanism, ok.n), (MechanismKind::RandomizedResponse, 6));
    // 3 of 6 reports true at p = 0.75: estimate 0.5.
    assert!((ok.estimate - 0.5).abs() < 1e-9);
    let files = find("command_run", "files", None);
    assert_eq!(files.mechanism, MechanismKind::DiscreteLaplace);
    assert!((files.estimate - 27.0).abs() < 1e-9, "{}", files.estimate); // mean of 57 and -3
    assert_eq!(find("command_run", "command", Some("build")).n, 6);
    assert_eq!(
        find("cache_hit", "hit_ratio", None).mechanism,
        MechanismKind::OneBitMean
    );
    let v = find("component_initialized", "sdk_version", Some("0.5.0"));
    assert_eq!(
        (v.mechanism, v.estimate, v.n),
        (MechanismKind::NotRandomized, 1.0, 3)
    );
    // null values are not reports: 3 payloads × 1 redacted error.
    assert_eq!(
        find(
            "command_run",
            "error",
            Some("could not open <path>: permission denied")
        )
        .n,
        3
    );
    // Unseen labels only with a catalogue.
    assert!(rows.iter().all(|r| r.value.as_deref() != Some("run")));
    let with = aggregate_with_catalog(&payloads, &catalog());
    let run = with
        .iter()
        .find(|r| r.field == "command" && r.value.as_deref() == Some("run"))
        .unwrap();
    assert_eq!(run.n, 6);
    assert!(
        run.estimate < 0.0,
        "no reports of `run` de-biases below zero: {}",
        run.estimate
    );
}

#[test]
fn differing_parameters_never_mix_and_mismatched_values_are_not_counted() {
    let a = full();
    let mut b = full();
    b.privacy.dp[1].params = telemetry_schema::MechanismParams::randomized_response(1.0).unwrap();
    let mut c = full();
    // A label where a boolean is expected is skipped, never counted.
    c.events[0].fields.insert(
        "ok".parse().unwrap(),
        Some(FieldValue::Label("yes".parse().unwrap())),
    );
    let rows = aggregate(&[a, b, c]);
    let ok_rows: Vec<_> = rows.iter().filter(|r| r.field == "ok").collect();
    assert_eq!(ok_rows.len(), 2, "{ok_rows:#?}");
    let ln3 = ok_rows
        .iter()
        .find(|r| (r.epsilon.unwrap() - 3f64.ln()).abs() < 1e-12)
        .unwrap();
    assert_eq!(ln3.n, 3);
    assert!(aggregate(&[]).is_empty());
}

#[test]
fn catalog_round_trips_through_its_schema() {
    let c = catalog();
    c.check().unwrap();
    let json = serde_json::to_string_pretty(&c).unwrap();
    assert_eq!(validate_catalog(json.as_bytes()).unwrap(), c);

    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["events"][0]["fields"][0]["kind"]["values"][0] = "/etc".into();
    assert!(validate_catalog(v.to_string().as_bytes()).is_err());
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["schema"]["version"] = "9.0.0".into();
    let err = validate_catalog(v.to_string().as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("unsupported schema version 9.0.0"),
        "{err}"
    );
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["events"][0]["fields"][1]["mechanism"] = serde_json::json!({"mechanism": "not_randomized"});
    let err = validate_catalog(v.to_string().as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("a bool needs randomized_response"),
        "{err}"
    );
}
