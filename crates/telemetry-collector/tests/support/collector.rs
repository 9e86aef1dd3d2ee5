//! Test support: a real `telemetry-collector serve` process, and real payloads to send it.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use telemetry_core::event::{Event, FieldDecl, Value};
use telemetry_core::{Env, Telemetry};

pub const COLLECTOR: &str = env!("CARGO_BIN_EXE_telemetry-collector");
/// The only `PATH` a child process is given.
pub const PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// How long a collector may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `telemetry-collector serve`; killed (SIGKILL) when dropped unless stopped before.
///
/// Its environment is cleared (PATH and HOME only, never `CI` nor the real home), its stderr goes
/// to a log file (never a pipe nobody reads) and its stdout is drained after the first line.
pub struct Collector {
    pub child: Child,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Where its stderr goes.
    pub log: PathBuf,
}

impl Collector {
    /// [`Collector::start_named`] with the log `dir/collector.log`.
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        Self::start_named(dir, "collector", args)
    }

    /// Starts `serve --listen 127.0.0.1:0` with `args`, in `dir` and with `HOME=dir`, its stderr
    /// to `dir/NAME.log` (truncated), and waits (at most 30 s) for its `listening on` line.
    pub fn start_named(dir: &Path, name: &str, args: &[&str]) -> Self {
        let log = dir.join(format!("{name}.log"));
        let stderr =
            fs::File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let mut child = Command::new(COLLECTOR)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start telemetry-collector");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining: the collector must never write into a closed or full pipe.
            for _ in lines {}
        });
        let first = rx.recv_timeout(START_TIMEOUT);
        let addr = match &first {
            Ok(Some(Ok(line))) => line
                .trim()
                .strip_prefix("listening on http://")
                .and_then(|a| a.strip_suffix('/'))
                .and_then(|a| a.parse::<SocketAddr>().ok()),
            _ => None,
        };
        let Some(addr) = addr.filter(|a| a.ip() == std::net::Ipv4Addr::LOCALHOST) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "collector {name} did not start: first line {first:?}; its log:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Self {
            child,
            addr,
            url: format!("http://{addr}"),
            log,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        self.url.clone()
    }

    /// What it has written to stderr so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (at most 30 s) for the exit; returns its status and its log.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = wait_timeout(&mut self.child, Duration::from_secs(30)).unwrap_or_else(|| {
            panic!(
                "the collector did not exit within 30 s of SIGTERM; its log:\n{}",
                self.log_text()
            )
        });
        (status, self.log_text())
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// An HTTP response as read off the wire.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Reads one response (head, then a Content-Length body) from `stream`.
pub fn read_answer(stream: &mut TcpStream) -> Option<Answer> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let mut answer = Answer {
        status,
        head,
        body: String::new(),
    };
    let length: usize = answer
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    answer.body = String::from_utf8_lossy(&body).into_owned();
    Some(answer)
}

/// Sends raw bytes on a new connection and reads one response (10 s at most).
pub fn raw(addr: SocketAddr, request: &[u8]) -> Option<Answer> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream.write_all(request).ok()?;
    read_answer(&mut stream)
}

/// `POST /submit/APP/RUN_ID` with a JSON body.
pub fn submit_request(app: &str, run_id: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST /submit/{app}/{run_id} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

pub fn submit(addr: SocketAddr, app: &str, run_id: &str, body: &[u8]) -> Answer {
    raw(addr, &submit_request(app, run_id, body)).expect("an answer")
}

/// The event of the test app `demo`.
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

/// A real payload of app `demo` and its catalogue, made by the real recorder.
pub struct Sample {
    pub catalog_file: PathBuf,
    pub body: Vec<u8>,
    pub run_id: String,
}

impl Sample {
    /// Records one run of `demo` in `dir/home` and writes the catalogue to `dir/demo.json`.
    pub fn new(dir: &Path) -> Self {
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let builder = || {
            Telemetry::builder("demo")
                .app_version("1.0.0")
                .env(Env::from_pairs([(
                    "HOME".to_owned(),
                    home.display().to_string(),
                )]))
                .event::<Ran>()
                .print_warnings(false)
        };
        builder().build().enable().unwrap();
        let telemetry = builder().build();
        telemetry.record(&Ran { ok: true });
        let path = telemetry.flush().unwrap().expect("a payload");
        let body = std::fs::read(&path).unwrap();
        let catalog = serde_json::to_string_pretty(&telemetry.catalog().unwrap()).unwrap();
        let catalog_file = dir.join("demo.json");
        std::fs::write(&catalog_file, catalog).unwrap();
        let run_id = path.file_stem().unwrap().to_str().unwrap().to_owned();
        Self {
            catalog_file,
            body,
            run_id,
        }
    }

    /// The same payload under the `i`-th other run id: `(run_id, body)`.
    pub fn variant(&self, i: u64) -> (String, Vec<u8>) {
        let run_id = format!("{}{:012x}", &self.run_id[..24], i);
        let body = String::from_utf8(self.body.clone())
            .unwrap()
            .replace(&self.run_id, &run_id)
            .into_bytes();
        (run_id, body)
    }
}
