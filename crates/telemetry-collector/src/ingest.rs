//! What the collector answers, decided without I/O: routes, the checks on a request's head, and
//! the validation of a body into an [`Accepted`] payload. The server moves the bytes.
//!
//! Checks, in order: the route (404, 405), the app is registered (404), the head (411 without a
//! length, 413 over the limit, 415 not JSON), then the body: the JSON Schema of the version it
//! declares, the URL's app and run id are the body's, the day is not in the future, and the
//! app's catalogue allows every event, field, value and DP parameter block (400, listing the
//! problems).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use telemetry_schema::{
    Catalog, Day, Envelope, MechanismParams, Report, params_key, validate_catalog, validate_payload,
};

use crate::store::{Accepted, ReportValue, StoredReport};

/// Largest body accepted: the payload format's own limit.
pub const MAX_BODY_BYTES: usize = telemetry_schema::MAX_PAYLOAD_BYTES;

/// How many problems a 400 answer lists at most (the rest are counted).
pub const MAX_LISTED_PROBLEMS: usize = 20;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /submit/APP/RUN_ID`: one payload.
    Submit {
        /// The app named in the URL.
        app: String,
        /// The run id named in the URL.
        run_id: String,
    },
    /// `GET /report` (HTML) or `GET /report.json`.
    Report {
        /// JSON rather than HTML.
        json: bool,
        /// The query string, undecoded.
        query: String,
    },
    /// `GET /health`: the process is up (for a load balancer).
    Health,
}

/// A refusal: an HTTP status and a JSON body saying why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The HTTP status.
    #[serde(skip)]
    pub status: u16,
    /// A stable code: `not_found`, `unknown_app`, `method_not_allowed`, `length_required`,
    /// `too_large`, `unsupported_media_type`, `invalid`, `overloaded`, `store_unavailable`,
    /// `store_full`, `timeout`.
    pub error: &'static str,
    /// What went wrong, in words.
    pub message: String,
    /// Each problem found (validation errors), at most [`MAX_LISTED_PROBLEMS`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Problems not listed.
    #[serde(skip_serializing_if = "is_zero")]
    pub more_problems: usize,
    /// Seconds to wait before trying again (`Retry-After`), for 503.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u32>,
    /// The methods the path allows (`Allow`), for 405.
    #[serde(skip)]
    pub allow: Option<&'static str>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Refusal {
    /// A refusal with no problem list.
    pub fn new(status: u16, error: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error,
            message: message.into(),
            problems: Vec::new(),
            more_problems: 0,
            retry_after: None,
            allow: None,
        }
    }

    /// 400 with the problems listed.
    fn invalid(message: impl Into<String>, mut problems: Vec<String>) -> Self {
        let more = problems.len().saturating_sub(MAX_LISTED_PROBLEMS);
        problems.truncate(MAX_LISTED_PROBLEMS);
        Self {
            problems,
            more_problems: more,
            ..Self::new(400, "invalid", message)
        }
    }

    /// 503 with `Retry-After`.
    pub fn unavailable(error: &'static str, message: impl Into<String>, retry_after: u32) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(503, error, message)
        }
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.error, self.message)
    }
}

/// Routes `method path` (the path without its query string is matched; `query` is kept for
/// reports).
pub fn route(method: &str, path_and_query: &str) -> Result<Route, Refusal> {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (route, allow) = match segments.as_slice() {
        ["submit", app, run_id] if !app.is_empty() && !run_id.is_empty() => (
            Route::Submit {
                app: (*app).to_owned(),
                run_id: (*run_id).to_owned(),
            },
            "POST",
        ),
        ["report"] => (
            Route::Report {
                json: false,
                query: query.to_owned(),
            },
            "GET, HEAD",
        ),
        ["report.json"] => (
            Route::Report {
                json: true,
                query: query.to_owned(),
            },
            "GET, HEAD",
        ),
        ["health"] => (Route::Health, "GET, HEAD"),
        _ => {
            return Err(Refusal::new(
                404,
                "not_found",
                "no such path: payloads go to POST /submit/APP/RUN_ID; reports are at GET /report",
            ));
        }
    };
    let allowed = match route {
        Route::Submit { .. } => method == "POST",
        _ => method == "GET" || method == "HEAD",
    };
    if !allowed {
        return Err(Refusal {
            allow: Some(allow),
            ..Refusal::new(
                405,
                "method_not_allowed",
                format!("{method} is not allowed here; use {allow}"),
            )
        });
    }
    Ok(route)
}

/// The parts of a request head the checks read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Head<'a> {
    /// `Content-Type`, if any.
    pub content_type: Option<&'a str>,
    /// `Content-Length`, if present and a number.
    pub content_length: Option<u64>,
    /// Whether the body is sent chunked (no length known in advance).
    pub chunked: bool,
}

/// Checks a submission's head before its body is read.
pub fn check_head(head: &Head<'_>, max_body: usize) -> Result<usize, Refusal> {
    let Some(length) = head.content_length.filter(|_| !head.chunked) else {
        return Err(Refusal::new(
            411,
            "length_required",
            "a payload needs a Content-Length (chunked bodies are not accepted)",
        ));
    };
    if length > max_body as u64 {
        return Err(Refusal::new(
            413,
            "too_large",
            format!("the body is {length} bytes; the limit is {max_body}"),
        ));
    }
    let media = head
        .content_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase());
    if media.as_deref() != Some("application/json") {
        return Err(Refusal::new(
            415,
            "unsupported_media_type",
            format!(
                "the body must be application/json, not {}",
                head.content_type
                    .map_or_else(|| "unspecified".to_owned(), |t| format!("{t:?}"))
            ),
        ));
    }
    Ok(length as usize)
}

/// The catalogues the collector accepts payloads for, by app.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    by_app: BTreeMap<String, Vec<Catalog>>,
}

impl Registry {
    /// Registers a catalogue (the JSON of `<app> telemetry catalog --json`): it must validate,
    /// pass `Catalog::check` and name its app. Returns the app and version.
    pub fn add_json(&mut self, json: &[u8]) -> Result<(String, String), String> {
        let catalog = validate_catalog(json).map_err(|e| e.to_string())?;
        catalog.check().map_err(|e| e.to_string())?;
        let Some(app) = catalog.app.clone() else {
            return Err(
                "the catalogue names no app (use the output of `<app> telemetry catalog --json`)"
                    .into(),
            );
        };
        let list = self.by_app.entry(app.name.to_string()).or_default();
        list.retain(|c| c.app.as_ref().map(|a| &a.version) != Some(&app.version));
        list.push(catalog);
        list.sort_by_key(|c| c.app.as_ref().map(|a| a.version.triple()));
        Ok((app.name.to_string(), app.version.to_string()))
    }

    /// Whether `app` has a catalogue.
    pub fn knows(&self, app: &str) -> bool {
        self.by_app.contains_key(app)
    }

    /// The registered apps.
    pub fn apps(&self) -> impl Iterator<Item = &str> {
        self.by_app.keys().map(String::as_str)
    }

    /// Checks `envelope` against its app's catalogue of the same app version if registered;
    /// otherwise it must fit one of the app's catalogues (problems are those of the newest).
    fn check(&self, envelope: &Envelope) -> Result<(), telemetry_schema::PayloadMismatch> {
        let Some(list) = self.by_app.get(envelope.app.name.as_str()) else {
            return Err(telemetry_schema::PayloadMismatch {
                problems: vec![format!("no catalogue for app {}", envelope.app.name)],
                more: 0,
            });
        };
        let same_version = list
            .iter()
            .find(|c| c.app.as_ref().map(|a| &a.version) == Some(&envelope.app.version));
        if let Some(catalog) = same_version {
            return catalog.check_payload(envelope, MAX_LISTED_PROBLEMS);
        }
        let mut newest = None;
        for catalog in list.iter().rev() {
            match catalog.check_payload(envelope, MAX_LISTED_PROBLEMS) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    newest.get_or_insert(e);
                }
            }
        }
        Err(newest.unwrap_or_default())
    }
}

/// Validates a submission's body for `app`/`run_id` (from the URL) received on `today`, and
/// reduces it to what the store keeps.
pub fn accept(
    registry: &Registry,
    app: &str,
    run_id: &str,
    body: &[u8],
    today: Day,
) -> Result<Accepted, Refusal> {
    if !registry.knows(app) {
        return Err(unknown_app(app));
    }
    let valid = validate_payload(body).map_err(|e| {
        let text = e.to_string();
        let mut lines = text.lines();
        let head = lines.next().unwrap_or("invalid payload").to_owned();
        Refusal::invalid(
            format!("the payload does not validate: {head}"),
            lines.map(|l| l.trim().to_owned()).collect(),
        )
    })?;
    let envelope = &valid.envelope;
    let mut problems = Vec::new();
    if envelope.app.name.as_str() != app {
        problems.push(format!(
            "the URL names app {app:?}, the payload {:?}",
            envelope.app.name.as_str()
        ));
    }
    if envelope.run_id.as_str() != run_id {
        problems.push(format!(
            "the URL names run id {run_id:?}, the payload {:?}",
            envelope.run_id.as_str()
        ));
    }
    let day = envelope.period.day;
    if day > next_day(today) {
        problems.push(format!(
            "the payload's day {day} is in the future (today is {today} UTC)"
        ));
    }
    if !problems.is_empty() {
        return Err(Refusal::invalid(
            "the payload does not match its URL",
            problems,
        ));
    }
    registry.check(envelope).map_err(|m| {
        let mut r = Refusal::invalid(
            format!("the payload does not fit the catalogue of {app}"),
            m.problems,
        );
        r.more_problems += m.more;
        r
    })?;
    Ok(Accepted {
        run_id: envelope.run_id.to_string(),
        app: envelope.app.name.to_string(),
        app_version: envelope.app.version.to_string(),
        day,
        received: today,
        schema_version: valid.version.to_string(),
        body: body.to_vec(),
        reports: reports_of(envelope),
    })
}

/// 404 for an app without a catalogue.
pub fn unknown_app(app: &str) -> Refusal {
    let shown: String = app.chars().take(64).collect();
    Refusal::new(
        404,
        "unknown_app",
        format!("no catalogue is registered for app {shown:?} (serve --catalog FILE)"),
    )
}

/// The day after `day` (what "not in the future" allows for clocks a little ahead).
fn next_day(day: Day) -> Day {
    let (y, m, d) = day.ymd();
    Day::new(y, m, d + 1)
        .or_else(|_| Day::new(y, m + 1, 1))
        .or_else(|_| Day::new(y + 1, 1, 1))
        .unwrap_or(day)
}

/// Every non-null report of `envelope`, with its DP parameter block's canonical JSON.
pub fn reports_of(envelope: &Envelope) -> Vec<StoredReport> {
    let mut keys: BTreeMap<(&str, &str), (String, &MechanismParams)> = BTreeMap::new();
    for block in &envelope.privacy.dp {
        keys.insert(
            (block.event.as_str(), block.field.as_str()),
            (params_key(&block.params), &block.params),
        );
    }
    let mut out = Vec::new();
    for ev in &envelope.events {
        for (field, value) in ev.fields.iter() {
            let (Some(value), Some((key, params))) =
                (value, keys.get(&(ev.name.as_str(), field.as_str())))
            else {
                continue;
            };
            let Some(report) = Report::of(params.kind(), value) else {
                continue;
            };
            out.push(StoredReport {
                event: ev.name.to_string(),
                field: field.to_string(),
                params: key.clone(),
                value: match report {
                    Report::Bit(b) => ReportValue::Bit(b),
                    Report::Integer(i) => ReportValue::Integer(i),
                    Report::Label(l) => ReportValue::Label(l.to_owned()),
                },
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_methods() {
        assert_eq!(
            route("POST", "/submit/acme/01912d68-783e-7a03-8467-5661c1243ad4"),
            Ok(Route::Submit {
                app: "acme".into(),
                run_id: "01912d68-783e-7a03-8467-5661c1243ad4".into()
            })
        );
        assert_eq!(
            route("GET", "/report.json?app=acme"),
            Ok(Route::Report {
                json: true,
                query: "app=acme".into()
            })
        );
        for (method, path, status) in [
            ("GET", "/submit/acme/x", 405),
            ("POST", "/report", 405),
            ("PUT", "/health", 405),
            ("POST", "/submit/acme", 404),
            ("POST", "/submit//x", 404),
            ("POST", "/submit/acme/x/y", 404),
            ("GET", "/", 404),
            ("GET", "/../etc/passwd", 404),
        ] {
            assert_eq!(
                route(method, path).unwrap_err().status,
                status,
                "{method} {path}"
            );
        }
        assert_eq!(route("GET", "/submit/a/b").unwrap_err().allow, Some("POST"));
    }

    #[test]
    fn head_checks() {
        let json = Some("application/json");
        let ok = Head {
            content_type: json,
            content_length: Some(10),
            chunked: false,
        };
        assert_eq!(check_head(&ok, 100), Ok(10));
        let with_charset = Head {
            content_type: Some("Application/JSON; charset=utf-8"),
            ..ok
        };
        assert_eq!(check_head(&with_charset, 100), Ok(10));
        let status = |h: Head<'_>| check_head(&h, 100).unwrap_err().status;
        assert_eq!(
            status(Head {
                content_length: None,
                ..ok
            }),
            411
        );
        assert_eq!(
            status(Head {
                chunked: true,
                ..ok
            }),
            411
        );
        assert_eq!(
            status(Head {
                content_length: Some(101),
                ..ok
            }),
            413
        );
        assert_eq!(
            status(Head {
                content_type: None,
                ..ok
            }),
            415
        );
        assert_eq!(
            status(Head {
                content_type: Some("text/plain"),
                ..ok
            }),
            415
        );
    }

    #[test]
    fn refusal_bodies_are_json_with_a_code() {
        let r = Refusal::invalid("bad", (0..30).map(|i| format!("p{i}")).collect());
        let v: serde_json::Value = serde_json::from_str(&r.body()).unwrap();
        assert_eq!(v["error"], "invalid");
        assert_eq!(v["problems"].as_array().unwrap().len(), MAX_LISTED_PROBLEMS);
        assert_eq!(v["more_problems"], 10);
        let busy = Refusal::unavailable("overloaded", "busy", 1);
        assert_eq!((busy.status, busy.retry_after), (503, Some(1)));
    }

    #[test]
    fn next_day_rolls_over_months_and_years() {
        let d = |y, m, d| Day::new(y, m, d).unwrap();
        assert_eq!(next_day(d(2026, 12, 2)), d(2026, 12, 3));
        assert_eq!(next_day(d(2026, 2, 28)), d(2026, 3, 1));
        assert_eq!(next_day(d(2026, 12, 31)), d(2027, 1, 1));
    }
}
