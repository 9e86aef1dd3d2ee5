//! Sending pending payloads: decide again, then POST each payload's exact bytes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use telemetry_core::inspect::{read_payload_file, run_id_of, sha256_hex};
use telemetry_core::{Builder, PayloadKind};
use telemetry_schema::validate_payload;
use ureq::tls::{PemItem, RootCerts, TlsConfig};

use crate::endpoint::{Endpoint, EndpointError};
use crate::state::{Attempts, State, backoff};

/// The `User-Agent` of every request: the toolkit and its version, nothing about the machine.
pub const USER_AGENT: &str = concat!("telemetry-toolkit/", env!("CARGO_PKG_VERSION"));
/// The header naming the payload's envelope format version.
pub const SCHEMA_VERSION_HEADER: &str = "telemetry-schema-version";

/// How an upload behaves. [`Default`] is what `telemetry upload` uses.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// The endpoint; `None`: `telemetry.endpoint` from the config.
    pub endpoint: Option<String>,
    /// Time to connect (TCP and TLS), per payload.
    pub connect_timeout: Duration,
    /// Time for a whole request, per payload.
    pub request_timeout: Duration,
    /// Failed attempts after which a payload is given up (deleted, with a warning).
    pub max_attempts: u32,
    /// Attempts allowed per minute, over all runs; the rest wait for a later upload.
    pub max_per_minute: u32,
    /// The wait after a first failure; doubled for each further one, with jitter.
    pub backoff_base: Duration,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            endpoint: None,
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            max_attempts: 5,
            max_per_minute: 15,
            backoff_base: Duration::from_secs(60),
        }
    }
}

/// Why nothing was sent. Nothing was looked up or connected to either.
#[derive(Debug)]
pub enum UploadError {
    /// The decision, made again now, does not allow sending (the reason names what decided).
    Refused(String),
    /// No endpoint: neither given nor `telemetry.endpoint` in the config.
    NoEndpoint,
    /// The endpoint or the proxy setting is not acceptable.
    Endpoint(EndpointError),
    /// The configured CA bundle could not be read or holds no certificate.
    CaBundle {
        /// Its path.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
}

impl fmt::Display for UploadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(reason) => write!(f, "nothing sent: {reason}"),
            Self::NoEndpoint => f.write_str(
                "nothing sent: no endpoint (pass --endpoint URL or set telemetry.endpoint)",
            ),
            Self::Endpoint(e) => write!(f, "nothing sent: {e}"),
            Self::CaBundle { path, problem } => write!(
                f,
                "nothing sent: CA bundle {} (telemetry.ca_bundle): {problem}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for UploadError {}

/// What happened to one pending payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted (2xx): the file was deleted.
    Sent {
        /// The HTTP status.
        status: u16,
    },
    /// Refused for good (4xx): the file was deleted; it would never be accepted.
    Rejected {
        /// The HTTP status.
        status: u16,
    },
    /// Failed (5xx, 408, 429, a redirect, a timeout, no connection): kept for a later attempt.
    Kept {
        /// What went wrong.
        problem: String,
        /// Failed attempts so far.
        failures: u32,
        /// No new attempt before this time.
        not_before: SystemTime,
    },
    /// Failed for the last allowed time: the file was deleted.
    GaveUp {
        /// What went wrong the last time.
        problem: String,
        /// Failed attempts.
        failures: u32,
    },
    /// Not attempted now; the file stays (backoff, rate limit, unreachable endpoint, or a file
    /// that does not validate and is never sent).
    NotTried {
        /// Why.
        reason: String,
    },
}

/// One pending payload and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadOutcome {
    /// Its run id (the file name).
    pub run_id: String,
    /// SHA-256 of the bytes sent (as `verify-payload` shows it); `None` if not read.
    pub sha256: Option<String>,
    /// What happened.
    pub outcome: Outcome,
}

/// The result of one upload run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadReport {
    /// Where the payloads went.
    pub endpoint: String,
    /// Every pending payload, oldest first.
    pub payloads: Vec<PayloadOutcome>,
    /// A problem remembering attempts (`upload-state.json`), if any; nothing was lost.
    pub state_problem: Option<String>,
}

impl UploadReport {
    /// How many payloads ended in `matches`.
    pub fn count(&self, matches: impl Fn(&Outcome) -> bool) -> usize {
        self.payloads.iter().filter(|p| matches(&p.outcome)).count()
    }

    /// Whether every attempted payload was accepted.
    pub fn all_sent(&self) -> bool {
        self.payloads
            .iter()
            .all(|p| matches!(p.outcome, Outcome::Sent { .. }))
    }
}

/// Everything checked, nothing sent yet: the decision allows it, the endpoint is acceptable.
struct Plan {
    endpoint: Endpoint,
    agent: ureq::Agent,
    root: PathBuf,
    pending: Vec<PathBuf>,
    options: UploadOptions,
}

/// Decides again from the same settings (config, consent token and the builder's environment are
/// read now), then checks the endpoint, proxy and CA bundle. No network.
fn plan(builder: &Builder, options: &UploadOptions) -> Result<Plan, UploadError> {
    let telemetry = builder.clone().upload_support(true).build_inspector();
    let sendability = telemetry.sendability(PayloadKind::Pending, true);
    if !sendability.sendable {
        return Err(UploadError::Refused(sendability.reason));
    }
    let Some(root) = telemetry.paths().map(|p| p.root().to_owned()) else {
        return Err(UploadError::Refused(
            "there is no directory for telemetry files".into(),
        ));
    };
    let config = &telemetry.config().config.telemetry;
    let url = options
        .endpoint
        .clone()
        .or_else(|| config.endpoint.clone())
        .ok_or(UploadError::NoEndpoint)?;
    let endpoint = Endpoint::parse(&url).map_err(UploadError::Endpoint)?;
    let proxy = endpoint
        .proxy(&builder.effective_env())
        .map_err(UploadError::Endpoint)?
        .map(|p| {
            ureq::Proxy::new(&p)
                .map_err(|e| UploadError::Endpoint(EndpointError(format!("proxy {p:?}: {e}"))))
        })
        .transpose()?;
    let mut tls = TlsConfig::builder();
    if let Some(bundle) = &config.ca_bundle {
        tls = tls.root_certs(ca_bundle(Path::new(bundle))?);
    }
    let agent = ureq::Agent::config_builder()
        .https_only(endpoint.is_https())
        .proxy(proxy)
        .tls_config(tls.build())
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent(USER_AGENT)
        .timeout_connect(Some(options.connect_timeout))
        .timeout_global(Some(options.request_timeout))
        .max_idle_connections_per_host(1)
        .build()
        .new_agent();
    Ok(Plan {
        endpoint,
        agent,
        root,
        pending: telemetry.pending_files(),
        options: options.clone(),
    })
}

fn ca_bundle(path: &Path) -> Result<RootCerts, UploadError> {
    let problem = |problem: String| UploadError::CaBundle {
        path: path.to_owned(),
        problem,
    };
    // The configured path may be a distribution's symlink (`/etc/ssl/cert.pem`): resolved
    // first, then opened as every file is (no symlink followed, never blocking on a pipe).
    let resolved = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let pem = telemetry_core::store::read_bounded(&resolved, 4 * 1024 * 1024)
        .map_err(|e| problem(e.reason()))?
        .ok_or_else(|| problem("no such file".into()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let PemItem::Certificate(cert) = item.map_err(|e| problem(e.to_string()))? {
            certs.push(cert);
        }
    }
    if certs.is_empty() {
        return Err(problem("no PEM certificate in it".into()));
    }
    Ok(RootCerts::new_with_certs(&certs))
}

/// Decides again and, if allowed, sends every pending payload that is due, oldest first, within
/// the rate limit; then deletes what was accepted (2xx) or refused for good (4xx) and remembers
/// failures for backoff. Blocks for at most about `request_timeout` per payload; after a payload
/// fails to connect or times out, the rest wait for a later run instead of each timing out in
/// turn.
pub fn upload_pending(
    builder: &Builder,
    options: &UploadOptions,
) -> Result<UploadReport, UploadError> {
    Ok(plan(builder, options)?.run())
}

impl Plan {
    fn run(self) -> UploadReport {
        let now = SystemTime::now();
        let now_s = unix(now);
        let run_ids: Vec<String> = self.pending.iter().map(|p| run_id_of(p)).collect();
        let mut state = State::load(&self.root);
        state.prune(now_s, &run_ids);
        let mut unreachable: Option<String> = None;
        let mut payloads = Vec::with_capacity(self.pending.len());
        for (path, run_id) in self.pending.iter().zip(run_ids) {
            let not_tried = |reason: String| Outcome::NotTried { reason };
            let waiting = state.attempts.get(&run_id).copied();
            let outcome = if let Some(problem) = &unreachable {
                (None, not_tried(format!("not tried after {problem}")))
            } else if let Some(a) = waiting.filter(|a| a.not_before > now_s) {
                let wait = a.not_before - now_s;
                (
                    None,
                    not_tried(format!(
                        "waiting {wait} s after {} failed attempt(s)",
                        a.failures
                    )),
                )
            } else if state.recent.len() >= self.options.max_per_minute as usize {
                (
                    None,
                    not_tried(format!(
                        "rate limit: at most {} attempts per minute",
                        self.options.max_per_minute
                    )),
                )
            } else {
                let (sha, outcome) = self.attempt(path, &run_id, &mut state, now);
                // An endpoint that cannot be reached or does not answer in time would cost
                // the same for every payload: the rest wait for a later run.
                if let Outcome::Kept { problem, .. } = &outcome
                    && (problem.starts_with("no connection") || problem.starts_with("timed out"))
                {
                    unreachable = Some(problem.clone());
                }
                (sha, outcome)
            };
            payloads.push(PayloadOutcome {
                run_id,
                sha256: outcome.0,
                outcome: outcome.1,
            });
        }
        let state_problem = state
            .save(&self.root)
            .err()
            .map(|e| format!("could not remember attempts in upload-state.json: {e}"));
        UploadReport {
            endpoint: self.endpoint.url().to_owned(),
            payloads,
            state_problem,
        }
    }

    /// One POST of one payload's exact bytes.
    fn attempt(
        &self,
        path: &Path,
        run_id: &str,
        state: &mut State,
        now: SystemTime,
    ) -> (Option<String>, Outcome) {
        let bytes = match read_payload_file(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                return (
                    None,
                    Outcome::NotTried {
                        reason: e.to_string(),
                    },
                );
            }
        };
        let sha = sha256_hex(&bytes);
        let (version, url) = match validate_payload(&bytes) {
            Ok(valid) => (
                valid.version.to_string(),
                self.endpoint.submit_url(
                    valid.envelope.app.name.as_str(),
                    valid.envelope.run_id.as_str(),
                ),
            ),
            Err(e) => {
                return (
                    Some(sha),
                    Outcome::NotTried {
                        reason: format!("it does not validate, so it is never sent: {e}"),
                    },
                );
            }
        };
        state.recent.push(unix(now));
        let response = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .header(SCHEMA_VERSION_HEADER, &version)
            .send(&bytes[..]);
        let mut retry_after: Option<Duration> = None;
        let problem = match response {
            Ok(r) => {
                let status = r.status().as_u16();
                match status {
                    200..=299 => {
                        return (
                            Some(sha),
                            self.delete(path, run_id, state, Outcome::Sent { status }),
                        );
                    }
                    300..=399 => {
                        let to = r
                            .headers()
                            .get("location")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("nowhere");
                        format!("HTTP {status}: redirected to {to:?}, which is not followed")
                    }
                    408 | 429 | 500..=599 => {
                        // The collector's own word on when to come back (seconds; a date form
                        // is not used by it and is ignored), at most a day.
                        retry_after = r
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(|s| Duration::from_secs(s.min(86_400)));
                        format!("HTTP {status}")
                    }
                    // A path the collector does not serve is a wrong endpoint, not a refusal
                    // of this payload (a collector's 404 for an unknown app says so).
                    404 if !says_unknown_app(r) => "HTTP 404: no such path at the endpoint \
                         (telemetry.endpoint must be the collector's base URL)"
                        .to_owned(),
                    _ => {
                        return (
                            Some(sha),
                            self.delete(path, run_id, state, Outcome::Rejected { status }),
                        );
                    }
                }
            }
            Err(e) => describe(&e),
        };
        let failures = state.attempts.get(run_id).map_or(0, |a| a.failures) + 1;
        if failures >= self.options.max_attempts {
            let outcome = Outcome::GaveUp { problem, failures };
            return (Some(sha), self.delete(path, run_id, state, outcome));
        }
        let wait = backoff(
            self.options.backoff_base,
            failures,
            rand::random_range(0.5..1.5),
        )
        .max(retry_after.unwrap_or_default());
        let not_before = now + wait;
        state.attempts.insert(
            run_id.to_owned(),
            Attempts {
                failures,
                not_before: unix(not_before).max(unix(now) + 1),
            },
        );
        (
            Some(sha),
            Outcome::Kept {
                problem,
                failures,
                not_before,
            },
        )
    }

    fn delete(&self, path: &Path, run_id: &str, state: &mut State, outcome: Outcome) -> Outcome {
        state.attempts.remove(run_id);
        match telemetry_core::store::remove_if_exists(path) {
            Ok(_) => outcome,
            Err(e) => Outcome::NotTried {
                reason: format!("{outcome:?}, but the file could not be deleted: {e}"),
            },
        }
    }
}

/// Whether a 404 answer is the collector's `unknown_app` refusal (a JSON body with that
/// `error`), read within 64 KiB.
fn says_unknown_app(response: ureq::http::Response<ureq::Body>) -> bool {
    let mut body = response.into_body();
    body.with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v["error"] == "unknown_app")
}

fn describe(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Timeout(what) => format!("timed out ({what})"),
        ureq::Error::Io(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
            ) =>
        {
            format!("no connection: {e}")
        }
        ureq::Error::HostNotFound => "no connection: host not found".into(),
        ureq::Error::ConnectionFailed => "no connection: connection failed".into(),
        other => other.to_string(),
    }
}

fn unix(t: SystemTime) -> i64 {
    telemetry_core::time::unix_seconds(t)
}

/// An upload running on a background thread, so that the host never waits for the network.
pub struct BackgroundUpload {
    result: mpsc::Receiver<UploadReport>,
}

/// Starts [`upload_pending`] on a background thread, after deciding and checking everything on
/// the caller's thread (no network there). `Err`: nothing was started and nothing will be sent.
///
/// A thread, not a detached process: no process outlives the host or shows up unannounced in
/// its process list, and nothing needs cleaning up. The cost: a payload in flight when the host
/// exits is cut off and stays pending (it is deleted only after a 2xx), to be sent by a later run.
pub fn start_background(
    builder: &Builder,
    options: UploadOptions,
) -> Result<BackgroundUpload, UploadError> {
    let plan = plan(builder, &options)?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("telemetry-upload".into())
        .spawn(move || {
            let _ = tx.send(plan.run());
        })
        .map_err(|e| UploadError::Refused(format!("could not start the upload thread: {e}")))?;
    Ok(BackgroundUpload { result: rx })
}

impl BackgroundUpload {
    /// Waits at most `max_wait` for the upload (call it at exit with e.g. 50 ms). `None`: still
    /// running; the thread is left to end with the process.
    pub fn finish(self, max_wait: Duration) -> Option<UploadReport> {
        self.result.recv_timeout(max_wait).ok()
    }
}
