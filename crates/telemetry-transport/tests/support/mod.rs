//! Test support: a loopback HTTP(S) endpoint that records what it receives and answers as told,
//! and pending payloads made through the core's real recording path.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use telemetry_core::event::{Event, FieldDecl, Value};
use telemetry_core::{Builder, Env, Telemetry};

/// How the endpoint answers every request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This status, empty body.
    Status(u16),
    /// 307 to this location.
    Redirect(String),
    /// Accept the connection, read the request, never answer.
    BlackHole,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    /// Request line and headers, as sent.
    pub head: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

struct Shared {
    reply: Mutex<Reply>,
    requests: Mutex<Vec<Request>>,
    stop: AtomicBool,
}

/// A loopback endpoint on its own thread, stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    https: bool,
    shared: Arc<Shared>,
}

/// A self-signed certificate for 127.0.0.1, made now.
pub struct TestCert {
    pub pem: String,
    config: Arc<rustls::ServerConfig>,
}

impl TestCert {
    pub fn new() -> Self {
        let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let pem = key.cert.pem();
        let der = key.cert.der().clone();
        let private =
            rustls::pki_types::PrivateKeyDer::try_from(key.signing_key.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der], private)
        .unwrap();
        Self {
            pem,
            config: Arc::new(config),
        }
    }

    /// Writes the certificate as a PEM CA bundle into `dir`.
    pub fn write_bundle(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.pem).unwrap();
        path
    }
}

impl Server {
    pub fn http(reply: Reply) -> Self {
        Self::start(reply, None, "127.0.0.1:0")
    }

    pub fn http_on(reply: Reply, addr: &str) -> Self {
        Self::start(reply, None, addr)
    }

    pub fn https(reply: Reply, cert: &TestCert) -> Self {
        Self::start(reply, Some(cert.config.clone()), "127.0.0.1:0")
    }

    fn start(reply: Reply, tls: Option<Arc<rustls::ServerConfig>>, addr: &str) -> Self {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let shared = Arc::new(Shared {
            reply: Mutex::new(reply),
            requests: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let https = tls.is_some();
        let addr = listener.local_addr().unwrap();
        let state = shared.clone();
        std::thread::spawn(move || {
            while !state.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let state = state.clone();
                        let tls = tls.clone();
                        std::thread::spawn(move || serve(stream, tls, &state));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Self {
            addr,
            https,
            shared,
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}/v1/payloads", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn set_reply(&self, reply: Reply) {
        *self.shared.reply.lock().unwrap() = reply;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(stream: TcpStream, tls: Option<Arc<rustls::ServerConfig>>, shared: &Shared) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    match tls {
        Some(config) => {
            let Ok(conn) = rustls::ServerConnection::new(config) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(conn, stream);
            handle(&mut tls, shared);
        }
        None => {
            let mut stream = stream;
            handle(&mut stream, shared);
        }
    }
}

/// Serves requests on one connection until it closes.
fn handle(stream: &mut (impl Read + Write), shared: &Shared) {
    loop {
        let Some(request) = read_request(stream) else {
            return;
        };
        shared.requests.lock().unwrap().push(request);
        let reply = shared.reply.lock().unwrap().clone();
        let response = match reply {
            Reply::Status(code) => {
                format!("HTTP/1.1 {code} Test\r\ncontent-length: 0\r\n\r\n")
            }
            Reply::Redirect(to) => {
                format!("HTTP/1.1 307 Elsewhere\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n")
            }
            Reply::BlackHole => {
                while !shared.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return;
            }
        };
        if stream.write_all(response.as_bytes()).is_err() || stream.flush().is_err() {
            return;
        }
    }
}

fn read_request(stream: &mut impl Read) -> Option<Request> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let request = Request {
        head,
        body: Vec::new(),
    };
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    Some(Request { body, ..request })
}

/// The event every test payload carries.
pub struct Ran {
    pub ok: bool,
}

impl Event for Ran {
    const NAME: &'static str = "ran";
    const DESCRIPTION: &'static str = "The app ran.";
    const FIELDS: &'static [FieldDecl] = &[FieldDecl::boolean("ok", "Whether it worked.", 1.0)];
    fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
        out(Value::Bool(self.ok));
    }
}

/// The environment of a test: HOME and nothing else unless given.
pub fn env(home: &Path, extra: &[(&str, &str)]) -> Env {
    let mut vars = vec![("HOME".to_owned(), home.display().to_string())];
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Env::from_pairs(vars)
}

pub fn builder(home: &Path, extra: &[(&str, &str)]) -> Builder {
    Telemetry::builder("acme")
        .app_version("1.2.3")
        .env(env(home, extra))
        .event::<Ran>()
        .print_warnings(false)
}

/// Consents, then records and flushes `runs` runs: one pending payload each.
pub fn pending(home: &Path, runs: usize) -> Vec<PathBuf> {
    builder(home, &[]).build().enable().unwrap();
    for _ in 0..runs {
        let t = builder(home, &[]).build();
        t.record(&Ran { ok: true });
        t.flush().unwrap();
    }
    pending_files(home)
}

pub fn pending_files(home: &Path) -> Vec<PathBuf> {
    let dir = home.join(".config/acme/uploads-pending");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "json"));
    files.sort();
    files
}
