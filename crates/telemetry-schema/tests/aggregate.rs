//! Aggregation across payloads, and catalogue validation.
// Std's float functions are fine here: a test is not a host (clippy.toml says why they are not
// in the library).
#![allow(clippy::disallowed_methods)]

use telemetry_schema::{
    Catalog, EstimateStatus, EventSpec, FieldSpec, FieldValue, MechanismKind, NameVersion, RunId,
    aggregate, aggregate_with_catalog, validate_catalog, validate_payload,
};

fn full() -> telemetry_schema::Envelope {
    validate_payload(include_bytes!("../fixtures/v1/valid/full.json"))
        .unwrap()
        .envelope
}

/// The `full` fixture under another run id (the same run id is counted once).
fn full_as(i: u8) -> telemetry_schema::Envelope {
    let mut e = full();
    e.run_id = RunId::new(format!("01912d68-783e-7a03-8467-5661c1243a{i:02x}")).unwrap();
    e
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
    let payloads = vec![full_as(1), full_as(2), full_as(3)];
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
    let a = full_as(1);
    let mut b = full_as(2);
    b.privacy.dp[1].params = telemetry_schema::MechanismParams::randomized_response(1.0).unwrap();
    let mut c = full_as(3);
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

#[test]
fn a_run_id_is_counted_once_however_often_it_is_given() {
    let once = aggregate(&[full_as(1)]);
    let thrice = aggregate(&[full_as(1), full_as(1), full_as(1)]);
    assert_eq!(once, thrice);
    let twice = aggregate(&[full_as(1), full_as(2), full_as(1)]);
    let ok =
        |rows: &[telemetry_schema::AggregateRow]| rows.iter().find(|r| r.field == "ok").unwrap().n;
    assert_eq!((ok(&once), ok(&twice)), (2, 4));
}

#[test]
fn proportions_are_shown_clipped_with_the_raw_estimate_kept_and_intervals_at_95_percent() {
    let with = aggregate_with_catalog(&[full_as(1), full_as(2), full_as(3)], &catalog());
    let run = with
        .iter()
        .find(|r| r.field == "command" && r.value.as_deref() == Some("run"))
        .unwrap();
    assert!(run.estimate < 0.0 && run.shown == 0.0, "{run:?}");
    assert!(
        run.ci95.0 == 0.0 && run.ci95.1 > 0.0 && run.ci95.1 <= 1.0,
        "{run:?}"
    );
    for r in &with {
        assert!(r.ci95.0 <= r.shown && r.shown <= r.ci95.1, "{r:?}");
        if r.status == EstimateStatus::Ok && r.value.is_some() {
            let half = telemetry_schema::Z95 * r.standard_error;
            assert!(r.ci95.1 <= (r.estimate + half).min(1.0) + 1e-12, "{r:?}");
        }
    }
}

#[test]
fn an_estimate_the_parameters_make_meaningless_is_reported_as_such() {
    // One report: no standard error.
    let one = aggregate(&[full_as(1)]);
    let files = one.iter().find(|r| r.field == "files").unwrap();
    assert_eq!((files.n, files.status), (2, EstimateStatus::Ok));
    let mut e = full_as(1);
    e.events.truncate(1);
    let rows = aggregate(&[e]);
    assert!(
        rows.iter()
            .all(|r| r.n >= 2 || r.status == EstimateStatus::TooFewReports),
        "{rows:#?}"
    );
    // A forged, tiny ε: p − q underflows, the estimate is infinite or enormous.
    let mut forged = full_as(2);
    for block in &mut forged.privacy.dp {
        if block.field.as_str() == "ok"
            && let telemetry_schema::MechanismParams::RandomizedResponse { epsilon, .. } =
                &mut block.params
        {
            *epsilon = 1e-300;
        }
    }
    let rows = aggregate(&[forged.clone(), {
        let mut f = forged;
        f.run_id = RunId::new("01912d68-783e-7a03-8467-5661c1243aff").unwrap();
        f
    }]);
    let ok = rows.iter().find(|r| r.field == "ok").unwrap();
    assert_eq!(ok.status, EstimateStatus::Uninformative, "{ok:?}");
    assert!(
        EstimateStatus::Uninformative
            .note()
            .unwrap()
            .contains("meaningless")
    );
}

#[test]
fn moments_give_the_same_mean_as_the_reports() {
    use telemetry_schema::{Moments, estimate_discrete_laplace_mean};
    let reports = [57i64, -3, 12, 0, 7, 7, -20];
    let mut m = Moments::default();
    let (mut a, mut b) = (Moments::default(), Moments::default());
    for (i, r) in reports.iter().enumerate() {
        m.add(*r);
        if i % 2 == 0 { a.add(*r) } else { b.add(*r) }
    }
    a.merge(&b);
    let direct = estimate_discrete_laplace_mean(&reports).unwrap();
    let from = telemetry_schema::estimate_discrete_laplace_mean_from_moments(&a).unwrap();
    assert_eq!(a, m);
    assert!((direct.value - 60.0 / 7.0).abs() < 1e-12);
    assert!((direct.standard_error - from.standard_error).abs() < 1e-12);
}
