//! What the daily privacy budget allows, for people: `telemetry status` (from the app's
//! declared events and the local ledger) and `verify-payload` (from a payload's own `dp`
//! section) print it.
//!
//! The ledger charges a memoised answer once a day: its field's ε the first time a true value
//! is reported, nothing for repeats (the same value always gives the same answer, so a repeat
//! reveals nothing new). A report whose answers are all new costs the sum of its randomised
//! fields' ε, so a cap of 64 with ε = 2 per report allows 32 reports of new values a day, and
//! any number of repeats.
//!
//! ```
//! use telemetry_core::budget::allowance;
//!
//! let events = allowance(64.0, [("command_run", "outcome", 1.0), ("command_run", "fast", 1.0)]);
//! assert_eq!(events[0].epsilon_per_new_report, 2.0);
//! assert_eq!(events[0].new_reports_a_day, Some(32));
//! ```

use std::path::PathBuf;

use serde::Serialize;

/// What the budget allows one event kind.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventAllowance {
    /// The event's name.
    pub event: String,
    /// ε of one report whose answers are all new (the sum of its randomised fields' ε).
    pub epsilon_per_new_report: f64,
    /// How many such reports fit in a day's cap; `None` when reports cost nothing (only
    /// versions and redacted text, which are not randomised).
    pub new_reports_a_day: Option<u64>,
}

/// The daily budget of an install: its cap, what is spent today and what that allows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Budget {
    /// ε cap per day and install.
    pub daily_cap: f64,
    /// ε charged today, from the local ledger; `None` when nothing is charged today (no ledger,
    /// or one of another day). A ledger that cannot be read counts as spent, as it does when
    /// recording.
    pub spent_today: Option<f64>,
    /// Where the ledger is.
    pub ledger: Option<PathBuf>,
    /// What the cap allows each event kind.
    pub events: Vec<EventAllowance>,
}

/// What a cap of `daily_cap` allows each event, from its randomised fields' ε as
/// `(event, field, ε)` triples (events in first-seen order; fields with ε = 0 may be left out).
pub fn allowance<'a>(
    daily_cap: f64,
    fields: impl IntoIterator<Item = (&'a str, &'a str, f64)>,
) -> Vec<EventAllowance> {
    let mut events: Vec<EventAllowance> = Vec::new();
    for (event, _field, epsilon) in fields {
        let epsilon = if epsilon.is_finite() && epsilon > 0.0 {
            epsilon
        } else {
            0.0
        };
        match events.iter_mut().find(|e| e.event == event) {
            Some(e) => e.epsilon_per_new_report += epsilon,
            None => events.push(EventAllowance {
                event: event.to_owned(),
                epsilon_per_new_report: epsilon,
                new_reports_a_day: None,
            }),
        }
    }
    for e in &mut events {
        e.new_reports_a_day = (e.epsilon_per_new_report > 0.0).then(|| {
            // The recorder admits a report within 1e-9 of the cap; so does this count.
            let fit = (daily_cap + 1e-9) / e.epsilon_per_new_report;
            if fit.is_finite() && fit >= 0.0 {
                fit.floor().min(u64::MAX as f64) as u64
            } else {
                0
            }
        });
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowance_sums_fields_per_event_and_counts_what_fits() {
        let a = allowance(
            64.0,
            [
                ("a", "x", 1.0),
                ("b", "y", 0.3),
                ("a", "z", 3.0),
                ("c", "v", 0.0),
                ("b", "w", f64::NAN),
            ],
        );
        assert_eq!(a.len(), 3);
        assert_eq!(
            (a[0].epsilon_per_new_report, a[0].new_reports_a_day),
            (4.0, Some(16))
        );
        // 64 / 0.3 = 213.3…
        assert_eq!(a[1].new_reports_a_day, Some(213));
        assert_eq!(a[2].new_reports_a_day, None, "a free report is not limited");
        // 0.1 × 30 is 3.0000000000000004 in floats: still 30 reports fit, as in the ledger.
        assert_eq!(
            allowance(3.0, [("d", "f", 0.1)])[0].new_reports_a_day,
            Some(30)
        );
    }
}
