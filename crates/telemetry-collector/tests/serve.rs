//! `telemetry-collector serve` as a process, spoken to over raw HTTP/1.1 on loopback: every
//! answer's status and JSON body, the limits a slow or greedy client meets, graceful shutdown,
//! what is (not) kept about a client, and clear errors for bad command lines.

#[path = "support/collector.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{COLLECTOR, Collector, Sample, raw, read_answer, submit, submit_request};
use telemetry_collector::store::Store;
use telemetry_collector::store::sqlite::Sqlite;

fn started(dir: &std::path::Path, extra: &[&str]) -> (Collector, Sample) {
    let sample = Sample::new(dir);
    let catalog = sample.catalog_file.to_str().unwrap().to_owned();
    let mut args = vec!["--store", "c.db", "--catalog", &catalog];
    args.extend_from_slice(extra);
    (Collector::start(dir, &args), sample)
}

#[test]
fn every_answer_has_its_status_and_a_json_body() {
    let dir = tempfile::tempdir().unwrap();
    let (c, s) = started(dir.path(), &[]);
    let a = c.addr;

    let first = submit(a, "demo", &s.run_id, &s.body);
    assert_eq!(first.status, 201, "{first:?}");
    assert_eq!(first.json()["stored"], "new");
    let again = submit(a, "demo", &s.run_id, &s.body);
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.json()["stored"], "already");

    let bad = submit(a, "demo", &s.run_id, b"{\"schema\": 1");
    assert_eq!(
        (bad.status, bad.json()["error"].as_str()),
        (400, Some("invalid"))
    );

    // Schema-valid, but not what the catalogue says `ok` is (a boolean).
    let (run, body) = s.variant(1);
    let label = String::from_utf8(body)
        .unwrap()
        .replace("\"ok\":true", "\"ok\":\"yes\"")
        .replace("\"ok\":false", "\"ok\":\"yes\"");
    let mismatch = submit(a, "demo", &run, label.as_bytes());
    assert_eq!(mismatch.status, 400, "{mismatch:?}");
    assert!(
        !mismatch.json()["problems"].as_array().unwrap().is_empty(),
        "the problems are listed: {}",
        mismatch.body
    );

    let (other, body) = s.variant(2);
    let wrong_url = submit(a, "demo", &s.variant(3).0, &body);
    assert_eq!(wrong_url.status, 400);
    assert!(wrong_url.body.contains(&other), "{}", wrong_url.body);

    let unknown = submit(a, "nosuchapp", &s.run_id, &s.body);
    assert_eq!(
        (unknown.status, unknown.json()["error"].as_str()),
        (404, Some("unknown_app"))
    );

    let nowhere = raw(a, b"GET /admin HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    assert_eq!(
        (nowhere.status, nowhere.json()["error"].as_str()),
        (404, Some("not_found"))
    );

    let get = raw(
        a,
        format!("GET /submit/demo/{} HTTP/1.1\r\nhost: x\r\n\r\n", s.run_id).as_bytes(),
    )
    .unwrap();
    assert_eq!(
        (get.status, get.header("allow").as_deref()),
        (405, Some("POST"))
    );

    let chunked = raw(
        a,
        format!(
            "POST /submit/demo/{} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             transfer-encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n",
            s.run_id
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(chunked.status, 411, "{chunked:?}");
    let no_length = raw(
        a,
        format!(
            "POST /submit/demo/{} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\r\n",
            s.run_id
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(no_length.status, 411);

    // Refused on the declared length alone: the 5 MiB are never sent.
    let huge = raw(
        a,
        format!(
            "POST /submit/demo/{} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             content-length: 5242880\r\n\r\n",
            s.run_id
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        (huge.status, huge.json()["error"].as_str()),
        (413, Some("too_large"))
    );

    let text = String::from_utf8(submit_request("demo", &s.run_id, &s.body))
        .unwrap()
        .replace("application/json", "text/plain");
    let wrong_type = raw(a, text.as_bytes()).unwrap();
    assert_eq!(wrong_type.status, 415);

    let health = raw(a, b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    assert_eq!(health.status, 200);
    let report = raw(a, b"GET /report.json?app=demo HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    assert_eq!(report.status, 200);
    assert_eq!(
        report.json()[0]["payloads"],
        1,
        "stored once: {}",
        report.body
    );
    let html = raw(a, b"GET /report HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    assert_eq!(html.status, 200);
    assert!(
        html.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let bad_query = raw(
        a,
        b"GET /report.json?since=yesterday HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .unwrap();
    assert_eq!(bad_query.status, 400);

    let (status, err) = c.terminate();
    assert!(status.success(), "{status:?} {err}");
    assert!(
        err.contains("1 payloads stored, 1 repeated run ids"),
        "{err}"
    );
}

#[test]
fn a_payload_from_the_future_is_refused_and_old_days_can_be_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let (c, s) = started(dir.path(), &[]);
    let day = |body: &[u8]| -> String {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        v["period"]["day"].as_str().unwrap().to_owned()
    };
    let today = day(&s.body);
    let with_day = |i: u64, d: &str| {
        let (run, body) = s.variant(i);
        let body = String::from_utf8(body)
            .unwrap()
            .replace(&format!("\"day\":\"{today}\""), &format!("\"day\":\"{d}\""));
        (run, body)
    };
    let (run, body) = with_day(1, "2999-01-01");
    let future = submit(c.addr, "demo", &run, body.as_bytes());
    assert_eq!(future.status, 400, "{future:?}");
    assert!(future.body.contains("in the future"), "{}", future.body);
    for (i, d) in [(2, "2020-01-01"), (3, "2020-01-02"), (4, today.as_str())] {
        let (run, body) = with_day(i, d);
        assert_eq!(submit(c.addr, "demo", &run, body.as_bytes()).status, 201);
    }
    drop(c);

    let collector = |args: &[&str]| {
        Command::new(COLLECTOR)
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .output()
            .unwrap()
    };
    let report = collector(&[
        "report",
        "--store",
        "c.db",
        "--json",
        "--until",
        "2020-01-01",
    ]);
    assert!(report.status.success());
    let v: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(v[0]["payloads"], 1, "--until is inclusive");
    let pruned = collector(&["prune", "--store", "c.db", "--older-than", "30"]);
    assert!(pruned.status.success(), "{pruned:?}");
    assert!(
        String::from_utf8_lossy(&pruned.stdout).starts_with("removed 2 payloads"),
        "{pruned:?}"
    );
    let report = collector(&["report", "--store", "c.db", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(v[0]["payloads"], 1, "today's payload is kept: {v}");
    let n: u64 = v[0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["n"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(n, 1, "the statistics of pruned days are gone too");
}

#[test]
fn a_slow_client_cannot_hold_a_worker() {
    let dir = tempfile::tempdir().unwrap();
    let (c, s) = started(
        dir.path(),
        &["--header-timeout-ms", "400", "--body-timeout-ms", "400"],
    );
    // A head that never ends: the connection is closed.
    let mut slow = TcpStream::connect(c.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    slow.write_all(b"POST /submit/demo/x HTTP/1.1\r\nhost: x\r\n")
        .unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 512];
    let n = slow.read(&mut buf).unwrap_or(0);
    let closed_after = t.elapsed();
    assert!(
        closed_after < Duration::from_secs(3),
        "closed after {closed_after:?}, read {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    // A body that never ends: 408 and closed.
    let mut stalled = TcpStream::connect(c.addr).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = submit_request("demo", &s.run_id, &s.body);
    stalled.write_all(&request[..request.len() - 100]).unwrap();
    let answer = read_answer(&mut stalled).expect("an answer before the body ends");
    assert_eq!(answer.status, 408, "{answer:?}");
    // Others are served all along.
    assert_eq!(submit(c.addr, "demo", &s.run_id, &s.body).status, 201);
}

#[test]
fn connections_over_the_limit_are_turned_away_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let (c, s) = started(dir.path(), &["--max-connections", "1"]);
    let held = TcpStream::connect(c.addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let turned = raw(c.addr, &submit_request("demo", &s.run_id, &s.body)).unwrap();
    assert_eq!(turned.status, 503, "{turned:?}");
    assert_eq!(turned.header("retry-after").as_deref(), Some("1"));
    assert_eq!(turned.json()["error"], "overloaded");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let a = submit(c.addr, "demo", &s.run_id, &s.body);
        if a.status == 201 {
            break;
        }
        assert!(Instant::now() < deadline, "never served again: {a:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (c, s) = started(dir.path(), &[]);
    let mut stream = TcpStream::connect(c.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = submit_request("demo", &s.run_id, &s.body);
    let (first, rest) = request.split_at(request.len() / 2);
    stream.write_all(first).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let pid = c.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(rest).unwrap();
    let answer = read_answer(&mut stream).expect("the request in flight is answered");
    assert_eq!(answer.status, 201, "{answer:?}");
    let addr = c.addr;
    let (status, err) = c.terminate();
    assert!(status.success(), "{status:?} {err}");
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
    let store = Sqlite::open(&dir.path().join("c.db")).unwrap();
    assert!(store.contains(&s.run_id).unwrap());
    store.check().unwrap();
}

#[test]
fn nothing_about_the_client_is_stored_or_logged() {
    let dir = tempfile::tempdir().unwrap();
    let (c, s) = started(dir.path(), &[]);
    // The client's address is 127.0.0.1 (loopback to loopback); its headers carry canaries.
    let mut request = String::from_utf8(submit_request("demo", &s.run_id, &s.body)).unwrap();
    request = request.replacen(
        "host: x\r\n",
        "host: x\r\nuser-agent: canary-agent/7.7\r\nx-forwarded-for: 203.0.113.77\r\nx-canary: c4n4ry-7f3e\r\n",
        1,
    );
    assert_eq!(raw(c.addr, request.as_bytes()).unwrap().status, 201);
    let (_, log) = c.terminate();
    let mut bytes = log.clone().into_bytes();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("c.db")
        {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(bytes.len() > 4096, "the store was read");
    for secret in [
        "127.0.0.1",
        "canary-agent",
        "203.0.113.77",
        "c4n4ry-7f3e",
        "user-agent",
    ] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} was kept"
        );
    }
    // No column could hold a time finer than the day.
    let conn = rusqlite::Connection::open(dir.path().join("c.db")).unwrap();
    let received: String = conn
        .query_row("SELECT received FROM payloads", [], |r| r.get(0))
        .unwrap();
    assert_eq!(received.len(), 10, "{received}");
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('payloads')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        columns,
        [
            "run_id",
            "app",
            "app_version",
            "day",
            "received",
            "schema_version",
            "body"
        ]
    );
}

#[test]
fn bad_command_lines_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = Sample::new(dir.path());
    std::fs::write(dir.path().join("junk.json"), b"{\"not\": \"a catalogue\"}").unwrap();
    let run = |args: &[&str]| {
        let t = Instant::now();
        let out = Command::new(COLLECTOR)
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .output()
            .unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{args:?} took {:?}",
            t.elapsed()
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let catalog = s.catalog_file.to_str().unwrap();
    for (args, code, says) in [
        (
            &["serve", "--catalog", "missing.json"][..],
            Some(1),
            "cannot read the catalogue",
        ),
        (&["serve", "--catalog", "junk.json"], Some(1), "junk.json"),
        (
            &["serve", "--catalog", "/dev"],
            Some(1),
            "cannot read the catalogue",
        ),
        (
            &["serve", "--store", "postgres://x/y", "--catalog", catalog],
            Some(1),
            "unknown store",
        ),
        (
            &["serve", "--store", "clickhouse://127.0.0.1:1/db"],
            Some(1),
            "cannot open the store",
        ),
        (&["serve", "--listen", "nonsense"], Some(2), "invalid value"),
        (
            &["serve", "--max-connections", "0", "--catalog", catalog],
            Some(1),
            "at least 1",
        ),
        (
            &["report", "--since", "2026-12-05", "--until", "2026-12-01"],
            Some(1),
            "after --until",
        ),
        (
            &["report", "--since", "yesterday"],
            Some(2),
            "invalid value",
        ),
        (&["prune", "--older-than", "0"], Some(1), "at least 1"),
        (
            &["report", "--store", "/nonexistent/dir/c.db"],
            Some(1),
            "there is no store",
        ),
    ] {
        let (got, err) = run(args);
        assert_eq!(got, code, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // A port in use.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let (got, err) = run(&["serve", "--listen", &addr, "--catalog", catalog]);
    assert_eq!(got, Some(1), "{err}");
    assert!(err.contains("cannot listen"), "{err}");
}
