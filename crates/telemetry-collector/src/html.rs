//! The report as one self-contained HTML page (placeholder until the charts land).

use crate::report::AppReport;

/// The page.
pub fn to_html(reports: &[AppReport]) -> String {
    format!(
        "<!doctype html><title>telemetry report</title><p>{} apps</p>",
        reports.len()
    )
}
