//! `telemetry upload` (upload builds only), as a process under the privacy guard: it may reach
//! the loopback endpoint the test runs and nothing else.
#![cfg(feature = "upload")]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use privacy_guard::Sandbox;

const TELEMETRY: &str = env!("CARGO_BIN_EXE_telemetry");
const PAYLOAD: &str = include_str!("../../telemetry-schema/fixtures/v1/valid/redaction_clean.json");
const RUN_ID: &str = "01912d68-783e-7a03-8467-5661c1243ad4";

/// A loopback endpoint answering 202 to every request; returns its URL and the bodies received.
fn endpoint() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/payloads", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut data = Vec::new();
            let mut buf = [0u8; 4096];
            // Head, then as many body bytes as content-length says.
            let body = loop {
                let Ok(n) = stream.read(&mut buf) else {
                    break None;
                };
                if n == 0 {
                    break None;
                }
                data.extend_from_slice(&buf[..n]);
                let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if data.len() >= end + 4 + length {
                    break Some(data[end + 4..end + 4 + length].to_vec());
                }
            };
            if let Some(body) = body {
                seen.lock().unwrap().push(body);
                let _ = stream.write_all(
                    b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        }
    });
    (url, bodies)
}

fn pending_file(sandbox: &Sandbox) -> std::path::PathBuf {
    sandbox
        .config_home()
        .join(format!("demo/uploads-pending/{RUN_ID}.json"))
}

fn store_payload(sandbox: &Sandbox) {
    let path = pending_file(sandbox);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, PAYLOAD).unwrap();
}

fn telemetry(sandbox: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = sandbox.command(TELEMETRY);
    command.args(["--app", "demo"]).args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    command.run()
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn upload_sends_what_verify_payload_shows_and_only_when_allowed() {
    let sandbox = Sandbox::new();
    let (url, bodies) = endpoint();
    store_payload(&sandbox);
    // No consent yet: refused by policy, nothing sent.
    let refused = telemetry(&sandbox, &["upload", "--endpoint", &url], &[]);
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    assert!(
        telemetry(&sandbox, &["enable", "--yes"], &[])
            .status
            .success()
    );
    // DO_NOT_TRACK after the payload was written: refused, still pending.
    let dnt = telemetry(
        &sandbox,
        &["upload", "--endpoint", &url],
        &[("DO_NOT_TRACK", "1")],
    );
    assert_eq!(dnt.status.code(), Some(3), "{dnt:?}");
    assert!(
        String::from_utf8_lossy(&dnt.stderr).contains("DO_NOT_TRACK=1"),
        "{dnt:?}"
    );
    // Plain http to another host: a usage error before any lookup (the guard would see one).
    let http = telemetry(
        &sandbox,
        &["upload", "--endpoint", "http://example.org/"],
        &[],
    );
    assert_eq!(http.status.code(), Some(2), "{http:?}");
    assert!(bodies.lock().unwrap().is_empty());
    assert!(pending_file(&sandbox).exists());

    let verify = telemetry(&sandbox, &["verify-payload", RUN_ID, "--json"], &[]);
    let shown: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(shown["sendable"], true, "{shown}");
    let sent = telemetry(&sandbox, &["upload", "--endpoint", &url, "--json"], &[]);
    assert!(sent.status.success(), "{sent:?}");
    let report: serde_json::Value = serde_json::from_slice(&sent.stdout).unwrap();
    assert_eq!(report["sent"], 1, "{report}");
    assert_eq!(report["payloads"][0]["outcome"], "sent");
    assert_eq!(report["payloads"][0]["sha256"], shown["sha256"]);
    let received = bodies.lock().unwrap().clone();
    assert_eq!(received, [PAYLOAD.as_bytes().to_vec()], "the exact bytes");
    assert!(!pending_file(&sandbox).exists(), "deleted after the 2xx");
    let again = telemetry(&sandbox, &["upload", "--endpoint", &url], &[]);
    assert!(again.status.success());
    assert_eq!(stdout(&again), "No pending payloads: nothing to send.\n");
}

#[test]
fn upload_uses_the_configured_endpoint_and_says_when_there_is_none() {
    let sandbox = Sandbox::new();
    let (url, bodies) = endpoint();
    assert!(
        telemetry(&sandbox, &["enable", "--yes"], &[])
            .status
            .success()
    );
    store_payload(&sandbox);
    let none = telemetry(&sandbox, &["upload"], &[]);
    assert_eq!(none.status.code(), Some(2), "{none:?}");
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("no endpoint"),
        "{none:?}"
    );
    assert!(
        telemetry(
            &sandbox,
            &["config", "set", "telemetry.endpoint", &url],
            &[]
        )
        .status
        .success()
    );
    let sent = telemetry(&sandbox, &["upload"], &[]);
    assert!(sent.status.success(), "{sent:?}");
    let text = stdout(&sent);
    assert!(text.contains(&format!("Uploading to {url}:")), "{text}");
    assert!(
        text.contains("1 sent, 0 still pending, 0 deleted unsent."),
        "{text}"
    );
    assert_eq!(bodies.lock().unwrap().len(), 1);
}
