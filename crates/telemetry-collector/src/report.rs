//! Estimates from a store: sufficient statistics by `GROUP BY` in the store, de-biased by
//! `telemetry_schema::estimate_tallies` (the one implementation `telemetry aggregate` uses too).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use telemetry_schema::{
    AggregateRow, Catalog, Day, MechanismKind, MechanismParams, Tallies, Tally, estimate_tallies,
    validate_catalog,
};

use crate::store::{Query, Store, StoreError, TallyRow};

/// What one app's payloads say, over the days asked for.
#[derive(Debug, Clone, Serialize)]
pub struct AppReport {
    /// The app.
    pub app: String,
    /// The first day asked for, if any.
    pub since: Option<Day>,
    /// The last day asked for, if any.
    pub until: Option<Day>,
    /// Payloads counted (each run id once).
    pub payloads: u64,
    /// Payloads per day.
    pub days: Vec<DayCount>,
    /// One entry per catalogued field (and per other parameter set reports were made under),
    /// in catalogue order.
    pub fields: Vec<FieldReport>,
}

/// Payloads of one day.
#[derive(Debug, Clone, Serialize)]
pub struct DayCount {
    /// The day.
    pub day: Day,
    /// Payloads.
    pub payloads: u64,
}

/// The estimates of one field under one set of DP parameters.
#[derive(Debug, Clone, Serialize)]
pub struct FieldReport {
    /// Event name.
    pub event: String,
    /// Field name.
    pub field: String,
    /// The catalogue's description, if catalogued.
    pub description: Option<String>,
    /// The field's values in words (`one of: a, b`), if catalogued.
    pub values: Option<String>,
    /// The mechanism.
    pub mechanism: MechanismKind,
    /// ε per report (`None`: not randomised).
    pub epsilon: Option<f64>,
    /// Whether the field is in a registered catalogue.
    pub catalogued: bool,
    /// Reports counted over the whole period.
    pub n: u64,
    /// The estimates over the whole period: one per label, one for `true`, or one mean.
    pub estimates: Vec<AggregateRow>,
    /// The same per day, oldest first.
    pub trend: Vec<DayEstimates>,
}

/// One day's estimates of a field.
#[derive(Debug, Clone, Serialize)]
pub struct DayEstimates {
    /// The day.
    pub day: Day,
    /// Reports that day.
    pub n: u64,
    /// The estimates.
    pub estimates: Vec<AggregateRow>,
}

/// The catalogues a store remembers, by app (newest version last).
pub fn catalogs_by_app(store: &dyn Store) -> Result<BTreeMap<String, Vec<Catalog>>, StoreError> {
    let mut by_app: BTreeMap<String, Vec<Catalog>> = BTreeMap::new();
    for json in store.catalogs()? {
        let catalog = validate_catalog(json.as_bytes()).map_err(|e| {
            StoreError::Corrupt(format!("a stored catalogue does not validate: {e}"))
        })?;
        if let Some(app) = &catalog.app {
            by_app
                .entry(app.name.to_string())
                .or_default()
                .push(catalog);
        }
    }
    for list in by_app.values_mut() {
        list.sort_by_key(|c| c.app.as_ref().map(|a| a.version.triple()));
    }
    Ok(by_app)
}

/// The report of every app in the store (or only `query.app`), in app order.
pub fn build(store: &dyn Store, query: &Query) -> Result<Vec<AppReport>, StoreError> {
    let catalogs = catalogs_by_app(store)?;
    let counts = store.payload_counts(query)?;
    let mut apps: BTreeMap<String, Vec<DayCount>> = BTreeMap::new();
    for (app, day, payloads) in counts {
        apps.entry(app)
            .or_default()
            .push(DayCount { day, payloads });
    }
    for app in catalogs.keys() {
        if query.app.as_deref().is_none_or(|a| a == app) {
            apps.entry(app.clone()).or_default();
        }
    }
    if let Some(app) = &query.app {
        apps.entry(app.clone()).or_default();
    }
    let mut reports = Vec::new();
    for (app, days) in apps {
        let rows = store.tallies(&app, query)?;
        let catalog = catalogs.get(&app).and_then(|c| c.last());
        reports.push(app_report(&app, query, days, &rows, catalog)?);
    }
    Ok(reports)
}

fn decode_params(json: &str) -> Result<MechanismParams, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("stored DP parameters do not decode: {e}")))
}

fn add_row(tallies: &mut Tallies, row: &TallyRow, params: &MechanismParams) {
    let tally = tallies.entry(&row.event, &row.field, params);
    let mut one = Tally {
        n: row.n,
        ones: row.ones,
        ..Tally::default()
    };
    one.moments.n = if row.label.is_none() { row.n } else { 0 };
    one.moments.sum = row.sum;
    one.moments.sum_sq = row.sum_sq;
    if let Some(label) = &row.label {
        one.labels.insert(label.clone(), row.n);
    }
    tally.merge(&one);
}

/// One app's report from its statistics rows: pooled over the period, and per day.
pub fn app_report(
    app: &str,
    query: &Query,
    days: Vec<DayCount>,
    rows: &[TallyRow],
    catalog: Option<&Catalog>,
) -> Result<AppReport, StoreError> {
    let mut params_of: BTreeMap<&str, MechanismParams> = BTreeMap::new();
    let mut total = Tallies::default();
    let mut per_day: BTreeMap<Day, Tallies> = BTreeMap::new();
    for row in rows {
        if !params_of.contains_key(row.params.as_str()) {
            params_of.insert(&row.params, decode_params(&row.params)?);
        }
        let params = &params_of[row.params.as_str()];
        add_row(&mut total, row, params);
        add_row(per_day.entry(row.day).or_default(), row, params);
    }
    let overall = estimate_tallies(&total, catalog);
    let daily: Vec<(Day, u64, Vec<AggregateRow>)> = per_day
        .iter()
        .map(|(day, t)| (*day, 0, estimate_tallies(t, catalog)))
        .collect();
    let ns: BTreeMap<(Day, &str, &str, &str), u64> = per_day
        .iter()
        .flat_map(|(day, t)| {
            t.fields.iter().map(move |(k, (_, tally))| {
                (
                    (*day, k.event.as_str(), k.field.as_str(), k.params.as_str()),
                    tally.n,
                )
            })
        })
        .collect();

    // Catalogued fields first, in catalogue order (one entry each even without reports), then
    // any other (event, field, parameters) reports were made under.
    let mut fields: Vec<FieldReport> = Vec::new();
    let mut placed: Vec<(String, String, String)> = Vec::new();
    let entry = |event: &str, field: &str, params: &MechanismParams, catalogued: bool| {
        let key = telemetry_schema::params_key(params);
        let spec = catalog.and_then(|c| c.field(event, field));
        let same = |r: &&AggregateRow| {
            r.event == event
                && r.field == field
                && r.mechanism == params.kind()
                && r.epsilon == params.epsilon()
        };
        let n = total
            .fields
            .iter()
            .find(|(k, _)| k.event == event && k.field == field && k.params == key)
            .map_or(0, |(_, (_, t))| t.n);
        FieldReport {
            event: event.to_owned(),
            field: field.to_owned(),
            description: spec.map(|s| s.description.clone()),
            values: spec.map(|s| s.kind.describe()),
            mechanism: params.kind(),
            epsilon: params.epsilon(),
            catalogued,
            n,
            estimates: overall.iter().filter(same).cloned().collect(),
            trend: daily
                .iter()
                .filter_map(|(day, _, rows)| {
                    let n = ns.get(&(*day, event, field, key.as_str())).copied()?;
                    Some(DayEstimates {
                        day: *day,
                        n,
                        estimates: rows.iter().filter(same).cloned().collect(),
                    })
                })
                .collect(),
        }
    };
    if let Some(catalog) = catalog {
        for ev in &catalog.events {
            for f in &ev.fields {
                fields.push(entry(ev.name.as_str(), f.name.as_str(), &f.mechanism, true));
                placed.push((
                    ev.name.to_string(),
                    f.name.to_string(),
                    telemetry_schema::params_key(&f.mechanism),
                ));
            }
        }
    }
    for (key, (params, _)) in &total.fields {
        let k = (key.event.clone(), key.field.clone(), key.params.clone());
        if !placed.contains(&k) {
            fields.push(entry(&key.event, &key.field, params, false));
            placed.push(k);
        }
    }
    Ok(AppReport {
        app: app.to_owned(),
        since: query.since,
        until: query.until,
        payloads: days.iter().map(|d| d.payloads).sum(),
        days,
        fields,
    })
}

/// A number as people read it: 4 significant decimals for proportions, 2 for means.
fn num(x: f64, proportion: bool) -> String {
    if !x.is_finite() {
        return "—".to_owned();
    }
    if proportion {
        format!("{:.1}%", x * 100.0)
    } else {
        format!("{x:.2}")
    }
}

/// Whether a row is a proportion (shown as a percentage) rather than a mean.
pub fn is_proportion(row: &AggregateRow) -> bool {
    row.value.is_some()
}

/// The report as text, for a terminal: each field with its estimates, standard errors, 95%
/// intervals, n and ε.
///
/// Escaped for a terminal as a whole ([`telemetry_schema::display::escape_for_terminal`]):
/// app names, labels and redacted text come from payloads, and none of their control or format
/// characters may reach the operator's terminal. Escaping the finished text rather than each
/// value means a value added to the report later cannot be forgotten.
pub fn to_text(reports: &[AppReport]) -> String {
    let text = unescaped_text(reports);
    match telemetry_schema::display::escape_for_terminal(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(escaped) => escaped,
    }
}

fn unescaped_text(reports: &[AppReport]) -> String {
    let mut out = String::new();
    if reports.is_empty() {
        out.push_str("No payloads and no catalogue in the store.\n");
    }
    for r in reports {
        let period = match (r.since, r.until) {
            (None, None) => "all days".to_owned(),
            (Some(s), None) => format!("from {s}"),
            (None, Some(u)) => format!("until {u}"),
            (Some(s), Some(u)) => format!("{s} to {u}"),
        };
        let _ = writeln!(
            out,
            "{}: {} payload{} ({period}, {} day{} with data)",
            r.app,
            r.payloads,
            if r.payloads == 1 { "" } else { "s" },
            r.days.len(),
            if r.days.len() == 1 { "" } else { "s" },
        );
        for f in &r.fields {
            let eps = f
                .epsilon
                .map_or_else(|| "not randomised".to_owned(), |e| format!("ε = {e:.3}"));
            let _ = writeln!(
                out,
                "\n  {}.{}  [{}, {eps}{}]  n = {}",
                f.event,
                f.field,
                f.mechanism,
                if f.catalogued {
                    ""
                } else {
                    ", not in the catalogue"
                },
                f.n
            );
            if f.estimates.is_empty() {
                let _ = writeln!(out, "    no reports");
            }
            for e in &f.estimates {
                let p = is_proportion(e);
                let what = e.value.as_deref().unwrap_or("mean");
                let _ = write!(
                    out,
                    "    {what:<24} {:>8} ± {:<8} 95% CI [{}, {}]",
                    num(e.shown, p),
                    num(e.standard_error, p),
                    num(e.ci95.0, p),
                    num(e.ci95.1, p),
                );
                if let Some(note) = e.status.note() {
                    let _ = write!(out, "  ({note})");
                }
                out.push('\n');
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry_schema::EstimateStatus;
    use telemetry_schema::display::is_escaped_on_terminal;

    #[test]
    fn the_text_report_shows_control_and_format_characters_escaped() {
        let hostile =
            "x\u{1b}]8;;https://evil\u{7}click\u{1b}]8;;\u{7}\r\u{9b}2J\u{202E}gnp.exe\u{2066}";
        let row = AggregateRow {
            event: format!("ev{hostile}"),
            field: "f".into(),
            mechanism: MechanismKind::KRandomizedResponse,
            epsilon: Some(1.0),
            value: Some(hostile.into()),
            estimate: 0.5,
            shown: 0.5,
            standard_error: 0.1,
            ci95: (0.3, 0.7),
            n: 10,
            status: EstimateStatus::Ok,
        };
        let report = AppReport {
            app: format!("acme{hostile}"),
            since: None,
            until: None,
            payloads: 10,
            days: Vec::new(),
            fields: vec![FieldReport {
                event: format!("ev{hostile}"),
                field: format!("f{hostile}"),
                description: None,
                values: None,
                mechanism: MechanismKind::KRandomizedResponse,
                epsilon: Some(1.0),
                catalogued: false,
                n: 10,
                estimates: vec![row],
                trend: Vec::new(),
            }],
        };
        let text = to_text(&[report]);
        assert!(!text.chars().any(is_escaped_on_terminal), "{text:?}");
        let escaped = "x<U+001B>]8;;https://evil<U+0007>click<U+001B>]8;;<U+0007><U+000D><U+009B>2J\
                       <U+202E>gnp.exe<U+2066>";
        assert!(
            text.starts_with(&format!("acme{escaped}: 10 payloads")),
            "{text}"
        );
        assert!(
            text.contains(&format!("\n    {escaped}    50.0%")),
            "{text}"
        );
        // Nothing to escape: the same text, not a copy with changes.
        let plain = to_text(&[]);
        assert_eq!(plain, "No payloads and no catalogue in the store.\n");
    }
}
