//! `upload` (upload builds only): formats what `telemetry_transport::upload_pending` did.

use std::io;

use serde_json::json;
use telemetry_core::Builder;
use telemetry_transport::{Outcome, UploadError, UploadOptions, UploadReport, upload_pending};

use crate::exit;
use crate::output::Io;
use crate::payloads::to_json;

pub(crate) fn upload(
    builder: &Builder,
    endpoint: &Option<String>,
    json: bool,
    io: &mut Io<'_>,
) -> io::Result<u8> {
    let options = UploadOptions {
        endpoint: endpoint.clone(),
        ..UploadOptions::default()
    };
    let report = match upload_pending(builder, &options) {
        Ok(report) => report,
        Err(err) => {
            writeln!(io.err, "error: {err}")?;
            return Ok(match err {
                UploadError::Refused(_) => exit::REFUSED,
                UploadError::NoEndpoint | UploadError::Endpoint(_) => exit::USAGE,
                UploadError::CaBundle { .. } => exit::ERROR,
            });
        }
    };
    if let Some(problem) = &report.state_problem {
        writeln!(io.err, "warning: {problem}")?;
    }
    let failed = report.count(|o| {
        matches!(
            o,
            Outcome::Rejected { .. } | Outcome::Kept { .. } | Outcome::GaveUp { .. }
        )
    });
    if json {
        to_json(&report_json(&report), io)?;
    } else {
        text(&report, io)?;
    }
    Ok(if failed == 0 { exit::OK } else { exit::ERROR })
}

fn text(report: &UploadReport, io: &mut Io<'_>) -> io::Result<()> {
    if report.payloads.is_empty() {
        return writeln!(io.out, "No pending payloads: nothing to send.");
    }
    writeln!(io.out, "Uploading to {}:", report.endpoint)?;
    for p in &report.payloads {
        let line = match &p.outcome {
            Outcome::Sent { status } => format!("sent (HTTP {status}), then deleted"),
            Outcome::Rejected { status } => {
                format!("refused (HTTP {status}): it would never be accepted, so it was deleted")
            }
            Outcome::Kept {
                problem,
                failures,
                not_before,
            } => format!(
                "kept for a later try: {problem} (failed attempt {failures}; next not before {})",
                telemetry_core::time::rfc3339_utc(*not_before)
            ),
            Outcome::GaveUp { problem, failures } => {
                format!("given up after {failures} failed attempts ({problem}): deleted")
            }
            Outcome::NotTried { reason } => format!("not tried: {reason}"),
        };
        writeln!(io.out, "  {}  {line}", p.run_id)?;
        if let (Some(sha), Outcome::Sent { .. }) = (&p.sha256, &p.outcome) {
            writeln!(io.out, "    sha256 {sha}")?;
        }
    }
    let sent = report.count(|o| matches!(o, Outcome::Sent { .. }));
    let kept = report.count(|o| matches!(o, Outcome::Kept { .. } | Outcome::NotTried { .. }));
    let deleted = report.count(|o| matches!(o, Outcome::Rejected { .. } | Outcome::GaveUp { .. }));
    writeln!(
        io.out,
        "{sent} sent, {kept} still pending, {deleted} deleted unsent."
    )
}

fn report_json(report: &UploadReport) -> serde_json::Value {
    let payloads: Vec<_> = report
        .payloads
        .iter()
        .map(|p| {
            let mut row = json!({ "run_id": p.run_id, "sha256": p.sha256 });
            let detail = match &p.outcome {
                Outcome::Sent { status } => json!({ "outcome": "sent", "status": status }),
                Outcome::Rejected { status } => json!({ "outcome": "rejected", "status": status }),
                Outcome::Kept {
                    problem,
                    failures,
                    not_before,
                } => json!({
                    "outcome": "kept",
                    "problem": problem,
                    "failures": failures,
                    "not_before": telemetry_core::time::rfc3339_utc(*not_before),
                }),
                Outcome::GaveUp { problem, failures } => {
                    json!({ "outcome": "gave_up", "problem": problem, "failures": failures })
                }
                Outcome::NotTried { reason } => json!({ "outcome": "not_tried", "reason": reason }),
            };
            if let (Some(row), Some(detail)) = (row.as_object_mut(), detail.as_object()) {
                row.extend(detail.clone());
            }
            row
        })
        .collect();
    json!({
        "endpoint": report.endpoint,
        "payloads": payloads,
        "sent": report.count(|o| matches!(o, Outcome::Sent { .. })),
        "state_problem": report.state_problem,
    })
}
