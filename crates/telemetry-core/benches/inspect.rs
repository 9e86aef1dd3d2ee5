//! Benchmarks of what `telemetry verify-payload` and `telemetry show` compute (issue #5):
//! `verify_payload` of a 1 MiB payload ≤ 20 ms; `payloads()` over 20 small pending payloads.
//! In-process figures: the compiled JSON Schema is cached after the first call, so process
//! start-up and schema compilation are not in them (`cargo xtask bench-cli` measures whole
//! processes).
//!
//! Run: `cargo bench -p telemetry-core --bench inspect -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::Value;
use telemetry_core::event::{Event, FieldDecl, Value as FieldValue};
use telemetry_core::{Env, Telemetry};
use telemetry_schema::validate::parse_bounded;
use telemetry_schema::{Envelope, MAX_EVENTS, validate_payload};

const FULL: &str = include_str!("../../telemetry-schema/fixtures/v1/valid/full.json");
const LARGE_PAYLOAD_BYTES: usize = 1024 * 1024;
const PENDING_PAYLOADS: usize = 20;

/// A valid compact v1 payload of just over `target` bytes, built from `full.json` the way
/// `cargo xtask bench-cli` builds it: every redacted text lengthened to its DP block's
/// `max_len`, then the events repeated (the fixture's own events average ~100 bytes, which
/// would stay under 1 MiB at the cap of 10,000 events).
fn large_payload(target: usize) -> Vec<u8> {
    let mut doc: Value = serde_json::from_str(FULL).unwrap();
    let limits: Vec<(Value, Value, usize)> = doc["privacy"]["dp"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| {
            let max_len = b["params"]["max_len"].as_u64()?;
            Some((b["event"].clone(), b["field"].clone(), max_len as usize))
        })
        .collect();
    let mut template = doc["events"].as_array().unwrap().clone();
    for event in &mut template {
        let name = event["name"].clone();
        for (field, value) in event["fields"].as_object_mut().unwrap().iter_mut() {
            let limit = limits
                .iter()
                .find(|(e, f, _)| *e == name && f.as_str() == Some(field.as_str()));
            if let (Some((_, _, max_len)), Some(Value::String(text))) =
                (limit, value.get_mut("redacted"))
            {
                *text = text
                    .chars()
                    .chain([';', ' '])
                    .cycle()
                    .take(*max_len)
                    .collect();
            }
        }
    }
    doc["events"] = Value::Array(Vec::new());
    let mut size = serde_json::to_vec(&doc).unwrap().len();
    let mut events = Vec::new();
    for event in template.iter().cycle() {
        if size >= target || events.len() == MAX_EVENTS {
            break;
        }
        size += serde_json::to_vec(event).unwrap().len() + usize::from(!events.is_empty());
        events.push(event.clone());
    }
    doc["events"] = Value::Array(events);
    let bytes = serde_json::to_vec(&doc).unwrap();
    assert!(bytes.len() >= target, "{} bytes", bytes.len());
    validate_payload(&bytes).expect("the large payload validates");
    bytes
}

struct FeatureUsed {
    flag: bool,
}

impl Event for FeatureUsed {
    const NAME: &'static str = "feature_used";
    const DESCRIPTION: &'static str = "A feature was used.";
    const FIELDS: &'static [FieldDecl] = &[FieldDecl::boolean("flag", "A flag.", 1.0)];
    fn values(&self, out: &mut dyn FnMut(FieldValue<'_>)) {
        out(FieldValue::Bool(self.flag));
    }
}

fn handle(home: &Path, recording: bool) -> Telemetry {
    Telemetry::builder("bench")
        .env(Env::from_pairs([("HOME", home)]))
        .event::<FeatureUsed>()
        .print_warnings(false)
        .recording(recording)
        .build()
}

fn inspect(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let large = dir.path().join("payload-1mib.json");
    let bytes = large_payload(LARGE_PAYLOAD_BYTES);
    std::fs::write(&large, &bytes).unwrap();
    let target = large.to_str().unwrap().to_owned();

    let fresh = tempfile::tempdir().unwrap();
    // Inspecting handles do not record, as in the CLI.
    let t = handle(fresh.path(), false);
    let v = t.verify_payload(&target).unwrap();
    assert!(v.validation.is_ok());
    assert_eq!(v.bytes.len(), bytes.len());
    c.bench_function("verify_payload_1mib", |b| {
        b.iter(|| black_box(t.verify_payload(black_box(&target)).unwrap()))
    });
    // The parts of verify: validation and the SHA-256. Validation is parse (bounded) + JSON
    // Schema + decode into `Envelope` + consistency; JSON Schema is the remainder of
    // `validate_payload_1mib` after the other three.
    c.bench_function("validate_payload_1mib", |b| {
        b.iter(|| black_box(validate_payload(black_box(&bytes)).unwrap()))
    });
    c.bench_function("validate_part_parse_1mib", |b| {
        b.iter(|| black_box(parse_bounded(black_box(&bytes)).unwrap()))
    });
    let value = parse_bounded(&bytes).unwrap();
    c.bench_function("validate_part_decode_1mib", |b| {
        b.iter_batched(
            || value.clone(),
            |v| black_box(serde_json::from_value::<Envelope>(v).unwrap()),
            BatchSize::LargeInput,
        )
    });
    let envelope: Envelope = serde_json::from_value(value).unwrap();
    c.bench_function("validate_part_consistency_1mib", |b| {
        b.iter(|| black_box(&envelope).check_consistency().unwrap())
    });
    c.bench_function("sha256_1mib", |b| {
        b.iter(|| black_box(telemetry_core::inspect::sha256_hex(black_box(&bytes))))
    });

    // 20 small pending payloads, one per consented run (what `telemetry show` lists).
    let home = tempfile::tempdir().unwrap();
    handle(home.path(), false).enable().unwrap();
    for i in 0..PENDING_PAYLOADS {
        let t = handle(home.path(), true);
        t.record(&FeatureUsed { flag: i % 2 == 0 });
        drop(t); // writes the payload
    }
    let t = handle(home.path(), false);
    let listed = t.payloads();
    assert_eq!(listed.len(), PENDING_PAYLOADS);
    assert!(listed.iter().all(|p| p.readable));
    c.bench_function("payloads_20_pending", |b| {
        b.iter(|| black_box(t.payloads()))
    });
}

criterion_group!(benches, inspect);
criterion_main!(benches);
