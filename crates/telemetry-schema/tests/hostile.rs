//! Issue #16, memory amplification: the worst documents within the size limit. Each is refused
//! with at most `MAX_REPORTED_VIOLATIONS` violations listed and the rest counted (up to about
//! `MAX_COUNTED_VIOLATIONS`, then "at least"), and validation finishes. No timing and no
//! memory is measured here (docs/benchmarks.md has the peak memory of the CLI on these inputs);
//! what is asserted is what bounds both: how many violations are built and counted.

use telemetry_schema::validate::{MAX_COUNTED_VIOLATIONS, MAX_REPORTED_VIOLATIONS};
use telemetry_schema::{
    MAX_DEPTH, MAX_EVENTS, MAX_PAYLOAD_BYTES, ValidationError, validate_payload,
};

const MINIMAL: &str = include_str!("../fixtures/v1/valid/minimal.json");

/// The minimal fixture with `"events": []` replaced by `events`, `"dp": []` by `dp`, and
/// `extra` members added at the top level.
fn envelope(events: &str, dp: &str, extra: &str) -> String {
    let text = MINIMAL
        .replacen("\"events\": []", &format!("\"events\": [{events}]"), 1)
        .replacen("\"dp\": []", &format!("\"dp\": [{dp}]"), 1);
    if extra.is_empty() {
        text
    } else {
        text.replacen('{', &format!("{{{extra},"), 1)
    }
}

/// As many copies of `unit` (joined by commas) as fit in `room` bytes.
fn repeat(unit: &str, room: usize) -> (String, usize) {
    let n = (room + 1) / (unit.len() + 1);
    (vec![unit; n].join(","), n)
}

/// Room left in a document of `MAX_PAYLOAD_BYTES` around what `template` holds already.
fn room(template: &str) -> usize {
    MAX_PAYLOAD_BYTES - template.len()
}

/// A document of (almost exactly) `MAX_PAYLOAD_BYTES` with `unit` repeated in `events`.
fn full_of_events(unit: &str) -> (String, usize) {
    let (body, n) = repeat(unit, room(&envelope("", "", "")));
    let doc = envelope(&body, "", "");
    assert!(doc.len() <= MAX_PAYLOAD_BYTES && doc.len() > MAX_PAYLOAD_BYTES - 2 * unit.len() - 2);
    (doc, n)
}

struct Refused {
    violations: Vec<telemetry_schema::Violation>,
    total: usize,
    complete: bool,
    text: String,
}

fn refused(doc: &str) -> Refused {
    let err = validate_payload(doc.as_bytes()).expect_err("refused");
    let text = err.to_string();
    let ValidationError::Schema {
        violations,
        total,
        complete,
    } = err
    else {
        panic!("expected schema violations, got {text}");
    };
    Refused {
        violations,
        total,
        complete,
        text,
    }
}

/// At most `MAX_REPORTED_VIOLATIONS` listed, each message at most 300 characters and `…`, and
/// the text is the list, a count line and a heading.
fn assert_capped(r: &Refused) {
    assert!(r.violations.len() <= MAX_REPORTED_VIOLATIONS);
    assert!(r.violations.len() <= r.total);
    for v in &r.violations {
        assert!(v.message.chars().count() <= 301, "{}", v.message.len());
    }
    assert!(r.text.lines().count() <= MAX_REPORTED_VIOLATIONS + 2);
}

#[test]
fn four_mib_of_empty_events_is_counted_up_to_the_ceiling() {
    let (doc, n) = full_of_events("{}");
    assert!(n > 1_000_000, "{n}");
    let r = refused(&doc);
    assert_capped(&r);
    assert_eq!(r.violations.len(), MAX_REPORTED_VIOLATIONS);
    // Two violations an event ("name" and "fields" required), counted until the ceiling is
    // reached: far fewer than the 2.8 million there are.
    assert!(
        (MAX_COUNTED_VIOLATIONS..MAX_COUNTED_VIOLATIONS + 10).contains(&r.total),
        "{}",
        r.total
    );
    assert!(!r.complete);
    assert!(
        r.text
            .starts_with(&format!("at least {} schema violation(s):", r.total)),
        "{}",
        r.text
    );
    let more = r.total - MAX_REPORTED_VIOLATIONS;
    assert!(
        r.text
            .ends_with(&format!("\n  ... and at least {more} more")),
        "{}",
        r.text
    );
    // The list starts with the array's own violation (too many items), then the first events.
    assert_eq!(r.violations[0].instance_path, "/events");
    assert_eq!(r.violations[0].keyword, "maxItems");
    assert!(r.violations[0].message.starts_with("[{},{},{}"));
    assert_eq!(r.violations[1].instance_path, "/events/0");
    assert_eq!(r.violations[1].keyword, "required");
}

#[test]
fn four_mib_of_any_small_item_is_counted_up_to_the_ceiling() {
    for unit in [
        "0",
        "\"\"",
        "[]",
        "null",
        "{\"name\":\"Bad\",\"fields\":{\"x\":[]}}",
    ] {
        let (doc, _) = full_of_events(unit);
        let r = refused(&doc);
        assert_capped(&r);
        assert!(r.total >= MAX_COUNTED_VIOLATIONS, "{unit}: {}", r.total);
        assert!(
            r.total < MAX_COUNTED_VIOLATIONS + 100,
            "{unit}: {}",
            r.total
        );
        assert!(!r.complete, "{unit}");
    }
    // The same in the DP blocks.
    let (body, _) = repeat("{}", room(&envelope("", "", "")));
    let r = refused(&envelope("", &body, ""));
    assert_capped(&r);
    assert!(r.total >= MAX_COUNTED_VIOLATIONS && !r.complete);
    assert_eq!(r.violations[0].instance_path, "/privacy/dp");
}

#[test]
fn below_the_ceiling_every_violation_is_counted() {
    let n = 3000;
    let events = vec!["{}"; n].join(",");
    let r = refused(&envelope(&events, "", ""));
    assert_capped(&r);
    assert_eq!(r.total, 2 * n);
    assert!(r.complete);
    assert!(r.text.ends_with(&format!(
        "\n  ... and {} more",
        2 * n - MAX_REPORTED_VIOLATIONS
    )));
    // One event too many, all valid: one violation, the array's.
    let event = r#"{"name":"a","fields":{}}"#;
    let events = vec![event; MAX_EVENTS + 1].join(",");
    let r = refused(&envelope(&events, "", ""));
    assert_eq!((r.total, r.complete), (1, true));
    assert_eq!(r.violations[0].keyword, "maxItems");
    assert!(
        r.violations[0]
            .message
            .starts_with("[{\"fields\":{},\"name\":\"a\"},")
    );
    assert!(r.violations[0].message.ends_with('…'));
}

#[test]
fn four_mib_of_deep_but_allowed_nesting_is_capped() {
    // Events whose name is an object chain as deep as the depth limit allows (the document
    // root, `events` and the event are three levels).
    let depth = MAX_DEPTH - 3;
    let name = format!("{}0{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let (doc, n) = full_of_events(&format!("{{\"name\":{name},\"fields\":{{}}}}"));
    assert!(n > 10_000, "{n}");
    let r = refused(&doc);
    assert_capped(&r);
    assert!(r.total > MAX_EVENTS && !r.complete, "{}", r.total);
    assert_eq!(r.violations[1].instance_path, "/events/0/name");
    assert_eq!(r.violations[1].keyword, "type");

    // The same nesting in an unknown member, and arrays of arrays: one violation, the unknown
    // member's, and not all of it is examined.
    let nested = format!(
        "{}0{}",
        "[".repeat(MAX_DEPTH - 2),
        "]".repeat(MAX_DEPTH - 2)
    );
    let template = envelope("", "", "\"x\":[]");
    let (body, _) = repeat(&nested, room(&template));
    let r = refused(&envelope("", "", &format!("\"x\":[{body}]")));
    assert_capped(&r);
    assert_eq!(r.total, 1);
    assert!(!r.complete);
    assert_eq!(r.violations[0].keyword, "additionalProperties");
    assert!(r.text.ends_with("\n  ... and possibly more"), "{}", r.text);
}

#[test]
fn four_mib_of_unknown_members_is_capped() {
    // At the top level: one violation (the unknown members), naming the first of them.
    let mut extra = String::new();
    let mut i = 0;
    let base = envelope("", "", "").len() + 1;
    while base + extra.len() + 16 < MAX_PAYLOAD_BYTES {
        extra.push_str(&format!("\"k{i:07}\":0,"));
        i += 1;
    }
    extra.pop();
    let doc = envelope("", "", &extra);
    assert!(doc.len() <= MAX_PAYLOAD_BYTES && i > 300_000, "{i}");
    let r = refused(&doc);
    assert_capped(&r);
    assert_eq!(r.total, 1);
    assert_eq!(r.violations[0].keyword, "additionalProperties");
    assert!(
        r.violations[0]
            .message
            .starts_with("Additional properties are not allowed ('k0000000', 'k0000001',"),
        "{}",
        r.violations[0].message
    );

    // In an event's fields (valid names, invalid values): the count is over, the list capped.
    let template = envelope(r#"{"name":"a","fields":{}}"#, "", "");
    let mut fields = String::new();
    let mut i = 0;
    while template.len() + fields.len() + 16 < MAX_PAYLOAD_BYTES {
        fields.push_str(&format!("\"f{i}\":[],"));
        i += 1;
    }
    fields.pop();
    let doc = envelope(&format!(r#"{{"name":"a","fields":{{{fields}}}}}"#), "", "");
    let r = refused(&doc);
    assert_capped(&r);
    assert_eq!(r.violations.len(), MAX_REPORTED_VIOLATIONS);
    assert!(!r.complete);
    assert!(r.violations.iter().any(|v| v.keyword == "maxProperties"));
}

#[test]
fn huge_strings_are_reported_in_short() {
    // One string of 4 MiB where a run id goes: its violations are counted exactly, each
    // message is 300 characters and an ellipsis.
    let template = MINIMAL.replacen("\"01912d68-783e-7a03-8467-5661c1243ad4\"", "\"\"", 1);
    let long = "A".repeat(MAX_PAYLOAD_BYTES - template.len());
    let doc = template.replacen("\"\"", &format!("\"{long}\""), 1);
    assert_eq!(doc.len(), MAX_PAYLOAD_BYTES);
    let r = refused(&doc);
    assert_capped(&r);
    assert!(r.complete);
    assert!(r.total >= 1 && r.total <= 3, "{}", r.total);
    assert!(r.violations.iter().all(|v| v.instance_path == "/run_id"));
    assert!(r.violations.iter().all(|v| v.message.ends_with('…')));

    // Many long names: every one counted (below the ceiling), two violations each (pattern
    // and length).
    let (doc, n) = full_of_events(&format!(
        "{{\"name\":\"{}\",\"fields\":{{}}}}",
        "A".repeat(1000)
    ));
    let r = refused(&doc);
    assert_capped(&r);
    assert!(r.complete);
    assert_eq!(r.total, 2 * n);
}
