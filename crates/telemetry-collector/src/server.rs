//! The HTTP/1.1 server: hyper on tokio, with the limits an endpoint on the open internet needs.
//!
//! - A slow client cannot hold a worker: the request head must arrive within `header_timeout`
//!   and the body within `body_timeout` (408 then), or the connection is closed.
//! - Bounded concurrency: at most `max_connections` connections are served; one more is answered
//!   503 with `Retry-After` and closed. Accepted payloads wait for the store in a queue of
//!   `queue` places; when it is full the answer is 503 with `Retry-After` (overloaded).
//! - Durable answers: a payload is answered as accepted (201, or 200 for a run id already stored)
//!   only after the store committed it. One writer thread batches whatever is queued into one
//!   transaction, so the cost of a commit is shared.
//! - Graceful shutdown on SIGTERM or SIGINT: no new connection is accepted, requests in flight
//!   are finished (up to `grace`), the queue is drained into the store, then the process exits.
//! - Privacy: the peer address returned by `accept` is dropped unread; no header but the three
//!   the checks need is looked at; nothing about a request is logged.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use telemetry_schema::Day;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};

use crate::ingest::{self, Head, Refusal, Registry, Route};
use crate::report;
use crate::store::{Accepted, Query, Store, StoreError};

/// How the server behaves. [`Default`] is what `telemetry-collector serve` uses.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest body accepted.
    pub max_body: usize,
    /// Time for a request head to arrive (also how long an idle keep-alive connection stays).
    pub header_timeout: Duration,
    /// Time for a body to arrive once the head has.
    pub body_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Accepted payloads waiting for the store.
    pub queue: usize,
    /// Payloads the writer commits in one transaction at most.
    pub batch: usize,
    /// Time in-flight requests get to finish at shutdown.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: ingest::MAX_BODY_BYTES,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 512,
            queue: 4096,
            batch: 512,
            grace: Duration::from_secs(10),
        }
    }
}

/// Counts since start, printed at shutdown.
#[derive(Debug, Default)]
pub struct Counters {
    /// Payloads stored for the first time.
    pub stored: AtomicU64,
    /// Payloads whose run id was already stored.
    pub duplicates: AtomicU64,
    /// Requests refused (4xx and 5xx).
    pub refused: AtomicU64,
}

struct Job {
    accepted: Accepted,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

struct State {
    registry: Registry,
    store: Arc<dyn Store>,
    limits: Limits,
    writer: SyncSender<Job>,
    counters: Arc<Counters>,
}

/// The UTC day now (the only receive time anything keeps).
pub fn today() -> Day {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Day::from_unix_seconds(secs).unwrap_or_else(|_| Day::new(1970, 1, 1).expect("valid day"))
}

/// Commits queued payloads in batches until every sender is gone and the queue is empty.
fn write_loop(store: Arc<dyn Store>, jobs: Receiver<Job>, batch: usize) {
    while let Ok(first) = jobs.recv() {
        let mut pending = vec![first];
        while pending.len() < batch {
            match jobs.try_recv() {
                Ok(job) => pending.push(job),
                Err(_) => break,
            }
        }
        let (accepted, replies): (Vec<Accepted>, Vec<_>) =
            pending.into_iter().map(|j| (j.accepted, j.reply)).unzip();
        match store.insert(&accepted) {
            Ok(fresh) => {
                for (reply, new) in replies.into_iter().zip(fresh) {
                    let _ = reply.send(Ok(new));
                }
            }
            Err(e) => {
                eprintln!("telemetry-collector: {e}");
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

fn json_response(status: u16, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn refusal_response(r: &Refusal) -> Response<Full<Bytes>> {
    let mut response = json_response(r.status, r.body());
    if let Some(secs) = r.retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    if let Some(allow) = r.allow {
        response
            .headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}

fn store_refusal(e: &StoreError) -> Refusal {
    match e {
        // A full store stays full for a while: ask uploaders to come back much later, so their
        // few attempts are spread over hours instead of spent in minutes.
        StoreError::Full(m) => Refusal {
            retry_after: Some(600),
            ..Refusal::new(507, "store_full", format!("the store is full: {m}"))
        },
        other => Refusal::unavailable(
            "store_unavailable",
            format!("the store cannot take payloads now: {other}"),
            30,
        ),
    }
}

/// Parses `app=A&since=DAY&until=DAY` (values are identifiers and days: no decoding needed, and
/// anything else is refused rather than guessed at).
pub fn parse_query(query: &str) -> Result<Query, Refusal> {
    let mut q = Query::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = |what: &str| {
            Refusal::new(
                400,
                "invalid",
                format!("{what}: expected app=NAME, since=YYYY-MM-DD, until=YYYY-MM-DD"),
            )
        };
        let day = |v: &str| v.parse::<Day>().map_err(|_| bad(&format!("{key}={v:.40}")));
        match key {
            "app"
                if !value.is_empty()
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                q.app = Some(value.to_owned());
            }
            "since" => q.since = Some(day(value)?),
            "until" => q.until = Some(day(value)?),
            _ => return Err(bad(&format!("{pair:.60}"))),
        }
    }
    Ok(q)
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let response = match respond(&state, request).await {
        Ok(r) => r,
        Err(refusal) => refusal_response(&refusal),
    };
    if response.status().as_u16() >= 400 {
        state.counters.refused.fetch_add(1, Ordering::Relaxed);
    }
    response
}

async fn respond(
    state: &Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Refusal> {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    match ingest::route(request.method().as_str(), &path)? {
        Route::Health => Ok(json_response(200, r#"{"status":"ok"}"#.into())),
        Route::Report { json, query } => {
            let query = parse_query(&query)?;
            let store = state.store.clone();
            let built = tokio::task::spawn_blocking(move || report::build(&*store, &query))
                .await
                .map_err(|e| Refusal::new(500, "internal", e.to_string()))?
                .map_err(|e| store_refusal(&e))?;
            if json {
                Ok(json_response(
                    200,
                    serde_json::to_string(&built).unwrap_or_default(),
                ))
            } else {
                let mut r = Response::new(Full::new(Bytes::from(crate::html::to_html(&built))));
                r.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                Ok(r)
            }
        }
        Route::Submit { app, run_id } => submit(state, request, &app, &run_id).await,
    }
}

async fn submit(
    state: &Arc<State>,
    request: Request<Incoming>,
    app: &str,
    run_id: &str,
) -> Result<Response<Full<Bytes>>, Refusal> {
    if !state.registry.knows(app) {
        return Err(ingest::unknown_app(app));
    }
    let headers = request.headers();
    let head = Head {
        content_type: headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        content_length: headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok()),
        chunked: headers.contains_key(hyper::header::TRANSFER_ENCODING),
    };
    let length = ingest::check_head(&head, state.limits.max_body)?;
    let body = Limited::new(request.into_body(), length.max(1));
    let bytes = match tokio::time::timeout(state.limits.body_timeout, body.collect()).await {
        Err(_) => {
            return Err(Refusal::new(
                408,
                "timeout",
                "the body did not arrive in time",
            ));
        }
        Ok(Err(e)) => {
            return Err(Refusal::new(
                400,
                "invalid",
                format!("the body could not be read: {e}"),
            ));
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let accepted = ingest::accept(&state.registry, app, run_id, &bytes, today())?;
    let run_id = accepted.run_id.clone();
    let (reply, answer) = oneshot::channel();
    match state.writer.try_send(Job { accepted, reply }) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            return Err(Refusal::unavailable(
                "overloaded",
                "too many payloads are waiting for the store; try again shortly",
                1,
            ));
        }
        Err(TrySendError::Disconnected(_)) => {
            return Err(Refusal::unavailable(
                "store_unavailable",
                "the collector is shutting down",
                5,
            ));
        }
    }
    let fresh = answer
        .await
        .map_err(|_| Refusal::unavailable("store_unavailable", "the store writer stopped", 5))?
        .map_err(|e| store_refusal(&e))?;
    let counter = if fresh {
        &state.counters.stored
    } else {
        &state.counters.duplicates
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let body = serde_json::json!({
        "status": "accepted",
        "run_id": run_id,
        "stored": if fresh { "new" } else { "already" },
    });
    Ok(json_response(
        if fresh { 201 } else { 200 },
        body.to_string(),
    ))
}

/// A running collector's parts that outlive the accept loop.
pub struct Server {
    listener: TcpListener,
    state: Arc<State>,
    writer: std::thread::JoinHandle<()>,
}

impl Server {
    /// Binds `listen` and starts the store's writer thread. Call inside a tokio runtime.
    pub async fn bind(
        listen: SocketAddr,
        registry: Registry,
        store: Arc<dyn Store>,
        limits: Limits,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let (tx, rx) = sync_channel(limits.queue);
        let writer_store = store.clone();
        let batch = limits.batch.max(1);
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || write_loop(writer_store, rx, batch))?;
        Ok(Self {
            listener,
            state: Arc::new(State {
                registry,
                store,
                limits,
                writer: tx,
                counters: Arc::default(),
            }),
            writer,
        })
    }

    /// The address it listens on (with the port chosen for `:0`).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The counters.
    pub fn counters(&self) -> Arc<Counters> {
        self.state.counters.clone()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests (up to the grace
    /// period) and commits everything queued before returning.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let Self {
            listener,
            state,
            writer,
        } = self;
        let permits = Arc::new(Semaphore::new(state.limits.max_connections));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(state.limits.header_timeout)
            .max_buf_size(64 * 1024);
        tokio::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    // The peer address is dropped here, unread.
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of descriptors and the like: wait a moment instead of spinning.
                        eprintln!("telemetry-collector: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                state.counters.refused.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(turn_away(stream));
                continue;
            };
            let state = state.clone();
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(state, request).await) }
            });
            let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                let _ = connection.await;
                drop(permit);
            });
        }
        drop(listener);
        let grace = state.limits.grace;
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            eprintln!(
                "telemetry-collector: some connections did not finish within {} s",
                grace.as_secs()
            );
        }
        // Every handler holding the writer's sender is gone (or abandoned): the writer drains
        // the queue and stops.
        drop(state);
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::spawn(move || {
            let _ = writer.join();
            let _ = done_tx.send(());
        });
        let _ = tokio::time::timeout(Duration::from_secs(30), done_rx).await;
    }
}

/// Answers a connection over the limit with 503 and closes it, without reading it.
async fn turn_away(mut stream: tokio::net::TcpStream) {
    let refusal = Refusal::unavailable("overloaded", "too many connections; try again shortly", 1);
    let body = refusal.body();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Resolves on SIGTERM or SIGINT.
pub async fn signals() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the default action (exit) applies; wait forever here.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
