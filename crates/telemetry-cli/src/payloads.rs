//! `show`, `verify-payload`, `catalog`, `aggregate` and `purge`: formatting of what
//! `telemetry_core::inspect` and `telemetry_schema` compute.

use std::io;
use std::path::PathBuf;

use serde_json::json;
use telemetry_core::inspect::{self, PayloadCheck, PayloadKind};
use telemetry_core::{Telemetry, Verification, VerifyError};
use telemetry_schema::{AggregateRow, Collection, EstimateStatus, ValidationError};

use crate::exit;
use crate::output::Io;

type Outcome = io::Result<u8>;

pub(crate) fn to_json<T: serde::Serialize>(value: &T, io: &mut Io<'_>) -> io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    writeln!(io.out, "{text}")
}

fn kind_label(kind: PayloadKind) -> &'static str {
    match kind {
        PayloadKind::Pending => "pending",
        PayloadKind::Preview => "preview",
        PayloadKind::External => "external file",
    }
}

/// What `verify-payload` says after "valid", and `aggregate` before its rows.
fn check_note(check: PayloadCheck) -> &'static str {
    match check {
        PayloadCheck::SchemaAndTypes => "valid",
        PayloadCheck::TypesOnly => {
            "valid by the toolkit's typed decoder; this build leaves out the JSON Schema \
             validator, which `telemetry verify-payload` and the collector apply"
        }
    }
}

fn yes_no(on: bool) -> &'static str {
    if on { "yes" } else { "no" }
}

fn dir_or_none(dir: Option<PathBuf>) -> String {
    dir.map_or_else(|| "no directory".to_owned(), |d| d.display().to_string())
}

pub(crate) fn show(telemetry: &Telemetry, json: bool, io: &mut Io<'_>) -> Outcome {
    let payloads = telemetry.payloads();
    let pending_dir = telemetry.paths().map(|p| p.pending_dir());
    let previews_dir = telemetry.paths().map(|p| p.previews_dir());
    if json {
        to_json(
            &json!({
                "app": telemetry.app_name(),
                "pending_dir": pending_dir,
                "previews_dir": previews_dir,
                "payloads": payloads,
            }),
            io,
        )?;
        return Ok(exit::OK);
    }
    let (pending, previews) = (dir_or_none(pending_dir), dir_or_none(previews_dir));
    if payloads.is_empty() {
        writeln!(
            io.out,
            "No stored payloads for {} (pending: {pending}; previews: {previews}).",
            telemetry.app_name()
        )?;
        return Ok(exit::OK);
    }
    writeln!(
        io.out,
        "{} stored payload{} for {} (pending: {pending}; previews: {previews}):",
        payloads.len(),
        if payloads.len() == 1 { "" } else { "s" },
        telemetry.app_name()
    )?;
    for p in &payloads {
        writeln!(io.out)?;
        writeln!(io.out, "{}  ({})", p.run_id, kind_label(p.kind))?;
        match (&p.day, &p.schema_version, p.events) {
            (Some(day), Some(version), Some(events)) => writeln!(
                io.out,
                "  day {day}, {} bytes, schema {version}, {events} event{}",
                p.size,
                if events == 1 { "" } else { "s" }
            )?,
            _ => writeln!(
                io.out,
                "  {} bytes, UNREADABLE: {}",
                p.size,
                p.problem.as_deref().unwrap_or("unreadable")
            )?,
        }
        writeln!(
            io.out,
            "  sendable now: {} ({})",
            yes_no(p.sendable),
            p.sendable_reason
        )?;
    }
    writeln!(io.out)?;
    writeln!(
        io.out,
        "See one in full: {} telemetry verify-payload <RUN_ID>",
        telemetry.app_name()
    )?;
    Ok(exit::OK)
}

pub(crate) fn verify(telemetry: &Telemetry, target: &str, json: bool, io: &mut Io<'_>) -> Outcome {
    let v = match telemetry.verify_payload(target) {
        Ok(v) => v,
        Err(err) => {
            writeln!(io.err, "error: {err}")?;
            if let VerifyError::NotFound { known, .. } = &err
                && !known.is_empty()
            {
                writeln!(
                    io.err,
                    "List them with: {} telemetry show",
                    telemetry.app_name()
                )?;
            }
            return Ok(exit::ERROR);
        }
    };
    report_verification(&v, json, io)
}

/// `verify-payload`'s output for a payload found and read.
fn report_verification(v: &Verification, json: bool, io: &mut Io<'_>) -> Outcome {
    let valid = v.validation.is_ok();
    if json {
        let (version, redaction, dp, ledger, payload, errors) = match &v.validation {
            Ok(p) => (
                Some(p.version.to_string()),
                serde_json::to_value(&p.envelope.privacy.redaction).ok(),
                serde_json::to_value(&p.envelope.privacy.dp).ok(),
                serde_json::to_value(&p.envelope.privacy.ledger).ok(),
                serde_json::from_slice::<serde_json::Value>(&v.bytes).ok(),
                Vec::new(),
            ),
            Err(e) => (None, None, None, None, None, validation_problems(e)),
        };
        let explained: Vec<_> = match &v.validation {
            Ok(p) => p
                .envelope
                .privacy
                .dp
                .iter()
                .map(|f| {
                    json!({
                        "event": f.event.as_str(),
                        "field": f.field.as_str(),
                        "mechanism": f.params.kind(),
                        "epsilon": f.params.epsilon(),
                        "description": f.params.describe(),
                        "observer": f.params.observer_view(),
                    })
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        to_json(
            &json!({
                "path": v.path,
                "kind": v.kind,
                "size": v.bytes.len(),
                "sha256": v.sha256,
                "schema_version": version,
                "valid": valid,
                "checked": v.check,
                "errors": errors,
                "redaction": redaction,
                "dp": dp,
                "dp_explained": explained,
                "ledger": ledger,
                "sendable": v.sendability.sendable,
                "sendable_reason": v.sendability.reason,
                "payload": payload,
            }),
            io,
        )?;
        return Ok(if valid { exit::OK } else { exit::ERROR });
    }
    let p = match &v.validation {
        Ok(p) => p,
        Err(e) => {
            // The error lists its schema violations itself (at most
            // `telemetry_schema::validate::MAX_REPORTED_VIOLATIONS`, then "... and N more").
            writeln!(
                io.err,
                "error: {} is not a valid telemetry payload: {e}",
                v.path.display()
            )?;
            writeln!(io.err, "Its bytes are not shown: it is not a payload.")?;
            return Ok(exit::ERROR);
        }
    };
    let out = &mut *io.out;
    let privacy = &p.envelope.privacy;
    writeln!(out, "Payload {}", v.path.display())?;
    writeln!(out, "  kind:           {}", kind_label(v.kind))?;
    writeln!(
        out,
        "  schema version: {} ({})",
        p.version,
        check_note(v.check)
    )?;
    writeln!(out, "  size:           {} bytes", v.bytes.len())?;
    writeln!(out, "  sha256:         {}", v.sha256)?;
    writeln!(out, "  redaction:      {}", privacy.redaction.describe())?;
    writeln!(
        out,
        "  privacy budget: a daily cap of ε {}; these reports cost at most ε {} (an answer \
         already sent today costs nothing again); {} report(s) dropped at the cap",
        privacy.ledger.epsilon_cap, privacy.ledger.epsilon_spent, privacy.ledger.dropped_reports
    )?;
    let fields = privacy
        .dp
        .iter()
        .filter_map(|f| Some((f.event.as_str(), f.field.as_str(), f.params.epsilon()?)));
    crate::commands::write_allowance(
        out,
        &telemetry_core::budget::allowance(privacy.ledger.epsilon_cap, fields),
        "    ",
    )?;
    writeln!(
        out,
        "  sendable now:   {} ({})",
        yes_no(v.sendability.sendable),
        v.sendability.reason
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Each field, as randomised on this machine before the file was written:"
    )?;
    for f in &privacy.dp {
        writeln!(out, "  {}.{}: {}", f.event, f.field, f.params.describe())?;
        writeln!(out, "    {}", f.params.observer_view())?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "The exact bytes (what an uploader would send, nothing else):"
    )?;
    out.write_all(&v.bytes)?;
    if !v.bytes.ends_with(b"\n") {
        writeln!(out)?;
    }
    Ok(exit::OK)
}

/// One line per problem: the error, then each schema violation by location.
fn validation_problems(err: &ValidationError) -> Vec<String> {
    let mut lines = vec![err.to_string()];
    if let ValidationError::Schema { violations, .. } = err {
        lines.extend(violations.iter().map(ToString::to_string));
    }
    lines
}

pub(crate) fn catalog(
    telemetry: &Telemetry,
    standalone: bool,
    json: bool,
    io: &mut Io<'_>,
) -> Outcome {
    let app = telemetry.app_name();
    if standalone {
        writeln!(
            io.err,
            "The `telemetry` binary does not know {app}'s events: they are declared in {app}'s code.\n\
             Run `{app} telemetry catalog` (the same command, mounted in {app}), or read the catalogue {app} publishes with its documentation."
        )?;
        return Ok(exit::USAGE);
    }
    let catalog = match telemetry.catalog() {
        Ok(c) => c,
        Err(err) => {
            writeln!(
                io.err,
                "error: {app}'s event declarations are invalid: {err}"
            )?;
            return Ok(exit::ERROR);
        }
    };
    if json {
        to_json(&catalog, io)?;
        return Ok(exit::OK);
    }
    let out = &mut *io.out;
    writeln!(
        out,
        "Every event {app} can record ({} in all). Nothing is recorded without consent; each value is randomised on this machine as described before it is written.",
        catalog.events.len()
    )?;
    for event in &catalog.events {
        writeln!(out)?;
        writeln!(out, "{}: {}", event.name, event.description)?;
        for field in &event.fields {
            writeln!(out, "  {}: {}", field.name, field.description)?;
            writeln!(out, "    values:  {}", field.kind.describe())?;
            writeln!(out, "    privacy: {}", field.mechanism.describe())?;
        }
    }
    Ok(exit::OK)
}

pub(crate) fn aggregate(
    telemetry: &Telemetry,
    inputs: &[PathBuf],
    json: bool,
    io: &mut Io<'_>,
) -> Outcome {
    let app = telemetry.app_name();
    let set = inspect::read_payloads(inputs);
    if set.check == PayloadCheck::TypesOnly {
        writeln!(io.err, "note: payloads read are {}", check_note(set.check))?;
    }
    for (path, why) in &set.skipped {
        writeln!(io.err, "skipped {}: {why}", path.display())?;
    }
    // One app at a time, each run id once: the rules of every estimate (telemetry_schema).
    let mut collection = Collection::new(Some(app));
    for (_, envelope) in &set.payloads {
        collection.add(envelope);
    }
    let catalog = telemetry.catalog().ok();
    let rows: Vec<AggregateRow> = collection.estimate(catalog.as_ref());
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "event": r.event,
                    "field": r.field,
                    "value": r.value,
                    "mechanism": r.mechanism,
                    "epsilon": r.epsilon,
                    "estimate": r.estimate,
                    "shown": r.shown,
                    "standard_error": r.standard_error,
                    "ci95": [r.ci95.0, r.ci95.1],
                    "n": r.n,
                    "status": r.status,
                    "note": r.status.note(),
                })
            })
            .collect();
        to_json(&rows, io)?;
    } else {
        writeln!(
            io.out,
            "{} payload{} of {app} counted, {} skipped.",
            collection.counted,
            if collection.counted == 1 { "" } else { "s" },
            set.skipped.len()
        )?;
        if !rows.is_empty() {
            writeln!(
                io.out,
                "De-biased estimates (proportion of reports for a value, clipped to [0, 1], or \
                 mean) ± one standard error, with the 95% interval:"
            )?;
        }
        for r in &rows {
            let what = match &r.value {
                Some(value) => format!("{}.{} = {value}", r.event, r.field),
                None => format!("{}.{} (mean)", r.event, r.field),
            };
            if r.status == EstimateStatus::Uninformative {
                // Its numbers mean nothing (and may not be finite): none is printed.
                write!(io.out, "  {what}: —  (n = {})", r.n)?;
            } else {
                write!(
                    io.out,
                    "  {what}: {:.4} ± {:.4}  [{:.4}, {:.4}]  (n = {})",
                    r.shown, r.standard_error, r.ci95.0, r.ci95.1, r.n
                )?;
            }
            match r.status.note() {
                Some(note) => writeln!(io.out, "  {note}")?,
                None => writeln!(io.out)?,
            }
        }
    }
    if collection.repeated > 0 {
        writeln!(
            io.err,
            "{} payload{} not counted again: a run id already counted.",
            collection.repeated,
            if collection.repeated == 1 { "" } else { "s" }
        )?;
    }
    for (other, count) in &collection.other_apps {
        writeln!(
            io.err,
            "{count} payload{} of app {other} not counted (this is {app}; aggregate one app at a time: telemetry --app {other} aggregate ...).",
            if *count == 1 { "" } else { "s" }
        )?;
    }
    if !set.skipped.is_empty() {
        writeln!(
            io.err,
            "{} file{} skipped (not valid payloads).",
            set.skipped.len(),
            if set.skipped.len() == 1 { "" } else { "s" }
        )?;
    }
    if collection.counted == 0 {
        writeln!(io.err, "error: no valid payload of {app} to aggregate")?;
        return Ok(exit::ERROR);
    }
    Ok(exit::OK)
}

pub(crate) fn purge(telemetry: &Telemetry, yes: bool, io: &mut Io<'_>) -> Outcome {
    let app = telemetry.app_name();
    let plan = telemetry.purge_plan();
    if plan.remove.is_empty() {
        writeln!(io.out, "Nothing to remove: {app} has no telemetry files.")?;
        for (path, why) in &plan.keep {
            writeln!(io.out, "Kept {}: {why}", path.display())?;
        }
        return Ok(exit::OK);
    }
    if !yes {
        writeln!(io.out, "This removes every telemetry file of {app}:")?;
        for path in &plan.remove {
            writeln!(io.out, "  {}", path.display())?;
        }
        if !io.confirm("Remove them?", "Not removed")? {
            return Ok(exit::ERROR);
        }
    }
    let outcome = telemetry.purge();
    for path in &outcome.removed {
        writeln!(io.out, "Removed {}", path.display())?;
    }
    for (path, why) in &outcome.kept {
        writeln!(io.out, "Kept {}: {why}", path.display())?;
    }
    for (path, err) in &outcome.failed {
        writeln!(io.err, "error: could not remove {}: {err}", path.display())?;
    }
    if outcome.failed.is_empty() {
        writeln!(
            io.out,
            "{app}'s telemetry is as on a fresh install (see `{app} telemetry status`)."
        )?;
        Ok(exit::OK)
    } else {
        Ok(exit::ERROR)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use telemetry_core::inspect::{PayloadCheck, PayloadKind};
    use telemetry_core::{Sendability, Verification};

    use crate::output::Io;

    /// A host that leaves the validator out says how its `verify-payload` checked, in both
    /// forms; the default build says nothing more than "valid".
    #[test]
    fn verification_says_how_the_payload_was_checked() {
        // Read, not included: the packaged crate has no fixtures of telemetry-schema.
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../telemetry-schema/fixtures/v1/valid/full.json"
        );
        let bytes = std::fs::read(fixture).unwrap();
        let report = |check: PayloadCheck, json: bool| {
            let v = Verification {
                path: PathBuf::from("full.json"),
                kind: PayloadKind::External,
                validation: telemetry_schema::decode_payload(&bytes),
                sha256: String::new(),
                bytes: bytes.clone(),
                check,
                sendability: Sendability {
                    sendable: false,
                    reason: "an external file is never sent".into(),
                },
            };
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let mut input: &[u8] = b"";
            let mut io = Io {
                out: &mut out,
                err: &mut err,
                input: &mut input,
                color: false,
            };
            assert_eq!(
                super::report_verification(&v, json, &mut io).unwrap(),
                crate::exit::OK
            );
            String::from_utf8(out).unwrap()
        };
        let lean = report(PayloadCheck::TypesOnly, false);
        assert!(lean.contains("(valid by the toolkit's typed decoder; this build leaves out the JSON Schema validator"), "{lean}");
        let full = report(PayloadCheck::SchemaAndTypes, false);
        assert!(full.contains("schema version: 1.0.0 (valid)\n"), "{full}");
        let json: serde_json::Value =
            serde_json::from_str(&report(PayloadCheck::TypesOnly, true)).unwrap();
        assert_eq!(json["checked"], "types_only");
        assert_eq!(json["valid"], true);
        let json: serde_json::Value =
            serde_json::from_str(&report(PayloadCheck::SchemaAndTypes, true)).unwrap();
        assert_eq!(json["checked"], "schema_and_types");
    }
}
