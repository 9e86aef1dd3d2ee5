//! The uploader against real loopback endpoints: plain HTTP on 127.0.0.1, and HTTPS with a
//! certificate made at test time. Nothing here leaves the machine.

mod support;

use std::time::{Duration, Instant};

use support::{Reply, Server, TestCert, builder, pending, pending_files};
use telemetry_transport::{
    Outcome, STATE_FILE, USER_AGENT, UploadError, UploadOptions, start_background, upload_pending,
};

fn to(server: &Server) -> UploadOptions {
    UploadOptions {
        endpoint: Some(server.url()),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        ..UploadOptions::default()
    }
}

fn sha256_of(path: &std::path::Path) -> String {
    telemetry_core::inspect::sha256_hex(&std::fs::read(path).unwrap())
}

#[test]
fn success_sends_the_exact_bytes_and_deletes() {
    let home = tempfile::tempdir().unwrap();
    let files = pending(home.path(), 2);
    assert_eq!(files.len(), 2);
    let shas: Vec<String> = files.iter().map(|p| sha256_of(p)).collect();
    let verified = builder(home.path(), &[])
        .recording(false)
        .build()
        .verify_payload(files[0].to_str().unwrap())
        .unwrap();
    assert_eq!(verified.sha256, shas[0], "verify-payload's SHA-256");
    let server = Server::http(Reply::Status(202));

    let report = upload_pending(&builder(home.path(), &[]), &to(&server)).unwrap();

    assert!(report.all_sent(), "{report:#?}");
    assert!(pending_files(home.path()).is_empty());
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for ((request, sha), file) in requests.iter().zip(&shas).zip(&files) {
        // The endpoint is the collector's base URL; the uploader adds submit/APP/RUN_ID.
        let run_id = file.file_stem().unwrap().to_str().unwrap();
        let line = format!("POST /v1/payloads/submit/acme/{run_id} HTTP/1.1\r\n");
        assert!(request.head.starts_with(&line), "{}", request.head);
        assert_eq!(&telemetry_core::inspect::sha256_hex(&request.body), sha);
        assert_eq!(
            request.header("content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(
            request.header("telemetry-schema-version").as_deref(),
            Some("1.1.0")
        );
        assert_eq!(request.header("user-agent").as_deref(), Some(USER_AGENT));
        assert_eq!(request.header("cookie"), None);
        // Nothing about the machine: the headers are exactly these.
        let mut names: Vec<String> = request
            .head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_ascii_lowercase()))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "accept",
                "content-length",
                "content-type",
                "host",
                "telemetry-schema-version",
                "user-agent"
            ],
            "{}",
            request.head
        );
    }
    let sent: Vec<_> = report
        .payloads
        .iter()
        .map(|p| p.sha256.clone().unwrap())
        .collect();
    assert_eq!(sent, shas);
    // What stays: the times of the two attempts (the rate limit's window), no failure.
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(home.path().join(".config/acme").join(STATE_FILE)).unwrap(),
    )
    .unwrap();
    assert_eq!(state["attempts"], serde_json::json!({}));
    assert_eq!(state["recent"].as_array().map(Vec::len), Some(2));
}

#[test]
fn client_errors_delete_with_a_reason() {
    let home = tempfile::tempdir().unwrap();
    pending(home.path(), 1);
    let server = Server::http(Reply::Status(400));
    let report = upload_pending(&builder(home.path(), &[]), &to(&server)).unwrap();
    assert_eq!(
        report.payloads[0].outcome,
        Outcome::Rejected { status: 400 }
    );
    assert!(pending_files(home.path()).is_empty());
}

#[test]
fn a_path_the_endpoint_does_not_serve_keeps_the_payload() {
    // A 404 that is not a collector's `unknown_app` refusal: a wrong endpoint (a proxy prefix,
    // a typo), not this payload's fault. Nothing is lost.
    let home = tempfile::tempdir().unwrap();
    pending(home.path(), 1);
    let server = Server::http(Reply::Status(404));
    let report = upload_pending(&builder(home.path(), &[]), &to(&server)).unwrap();
    match &report.payloads[0].outcome {
        Outcome::Kept {
            problem,
            failures: 1,
            ..
        } => {
            assert!(problem.starts_with("HTTP 404: no such path"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pending_files(home.path()).len(), 1);
}

#[test]
fn server_errors_keep_and_back_off_until_the_last_attempt() {
    let home = tempfile::tempdir().unwrap();
    let files = pending(home.path(), 1);
    let server = Server::http(Reply::Status(503));
    let options = UploadOptions {
        max_attempts: 3,
        backoff_base: Duration::from_secs(100),
        ..to(&server)
    };
    let state = home.path().join(".config/acme").join(STATE_FILE);
    let mut waits = Vec::new();
    for attempt in 1..=2u32 {
        let before = std::time::SystemTime::now();
        let report = upload_pending(&builder(home.path(), &[]), &options).unwrap();
        let Outcome::Kept {
            failures,
            not_before,
            problem,
        } = &report.payloads[0].outcome
        else {
            panic!("{report:#?}");
        };
        assert_eq!((*failures, problem.as_str()), (attempt, "HTTP 503"));
        waits.push(not_before.duration_since(before).unwrap().as_secs_f64());
        assert_eq!(pending_files(home.path()), files, "kept");
        // Due again: a second run right away waits instead of sending.
        let again = upload_pending(&builder(home.path(), &[]), &options).unwrap();
        assert!(
            matches!(&again.payloads[0].outcome, Outcome::NotTried { reason } if reason.starts_with("waiting")),
            "{again:#?}"
        );
        // Pretend the wait is over.
        let text = std::fs::read_to_string(&state).unwrap();
        let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
        for a in json["attempts"].as_object_mut().unwrap().values_mut() {
            a["not_before"] = 0.into();
        }
        std::fs::write(&state, json.to_string()).unwrap();
    }
    assert_eq!(server.requests().len(), 2);
    // Exponential with jitter in [0.5, 1.5): 100 s × [0.5, 1.5), then 200 s × [0.5, 1.5).
    assert!((49.0..151.0).contains(&waits[0]), "{waits:?}");
    assert!((99.0..301.0).contains(&waits[1]), "{waits:?}");
    let last = upload_pending(&builder(home.path(), &[]), &options).unwrap();
    assert!(
        matches!(
            &last.payloads[0].outcome,
            Outcome::GaveUp { failures: 3, .. }
        ),
        "{last:#?}"
    );
    assert!(
        pending_files(home.path()).is_empty(),
        "given up after the last attempt"
    );
}

#[test]
fn rate_limit_leaves_the_rest_for_later() {
    let home = tempfile::tempdir().unwrap();
    pending(home.path(), 4);
    let server = Server::http(Reply::Status(200));
    let options = UploadOptions {
        max_per_minute: 3,
        ..to(&server)
    };
    let report = upload_pending(&builder(home.path(), &[]), &options).unwrap();
    assert_eq!(report.count(|o| matches!(o, Outcome::Sent { .. })), 3);
    assert!(
        matches!(&report.payloads[3].outcome, Outcome::NotTried { reason } if reason.starts_with("rate limit")),
        "{report:#?}"
    );
    assert_eq!(pending_files(home.path()).len(), 1);
    // The window spans runs: a second run within the minute sends nothing.
    let again = upload_pending(&builder(home.path(), &[]), &options).unwrap();
    assert_eq!(again.count(|o| matches!(o, Outcome::Sent { .. })), 0);
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn do_not_track_set_after_recording_sends_nothing() {
    let home = tempfile::tempdir().unwrap();
    let files = pending(home.path(), 2);
    let server = Server::http(Reply::Status(200));
    for (name, value) in [
        ("DO_NOT_TRACK", "1"),
        ("ACME_TELEMETRY", "0"),
        ("CI", "true"),
    ] {
        let err =
            upload_pending(&builder(home.path(), &[(name, value)]), &to(&server)).unwrap_err();
        let UploadError::Refused(reason) = &err else {
            panic!("{err:?}");
        };
        assert!(reason.contains(name), "{reason}");
        assert!(start_background(&builder(home.path(), &[(name, value)]), to(&server)).is_err());
    }
    // Consent withdrawn: same.
    std::fs::remove_file(home.path().join(".config/acme/secrets/consent.token")).unwrap();
    assert!(matches!(
        upload_pending(&builder(home.path(), &[]), &to(&server)),
        Err(UploadError::Refused(_))
    ));
    std::thread::sleep(Duration::from_millis(50));
    assert!(server.requests().is_empty(), "nothing reached the endpoint");
    let _ = files;
}

#[test]
fn redirects_to_another_host_are_not_followed() {
    let home = tempfile::tempdir().unwrap();
    let files = pending(home.path(), 1);
    let elsewhere = Server::http_on(Reply::Status(200), "127.0.0.2:0");
    let server = Server::http(Reply::Redirect(elsewhere.url()));
    let report = upload_pending(&builder(home.path(), &[]), &to(&server)).unwrap();
    let Outcome::Kept { problem, .. } = &report.payloads[0].outcome else {
        panic!("{report:#?}");
    };
    assert!(problem.contains("not followed"), "{problem}");
    assert_eq!(server.requests().len(), 1);
    assert!(elsewhere.requests().is_empty());
    assert_eq!(pending_files(home.path()), files);
}

#[test]
fn plain_http_to_another_host_is_refused_before_any_connection() {
    let home = tempfile::tempdir().unwrap();
    pending(home.path(), 1);
    for url in [
        "http://example.org/v1",
        "http://10.0.0.1/",
        "ftp://127.0.0.1/",
        "not a url",
    ] {
        let options = UploadOptions {
            endpoint: Some(url.into()),
            ..UploadOptions::default()
        };
        let err = upload_pending(&builder(home.path(), &[]), &options).unwrap_err();
        assert!(matches!(err, UploadError::Endpoint(_)), "{url}: {err:?}");
    }
    assert!(matches!(
        upload_pending(&builder(home.path(), &[]), &UploadOptions::default()),
        Err(UploadError::NoEndpoint)
    ));
    assert_eq!(pending_files(home.path()).len(), 1);
}

#[test]
fn https_with_the_configured_ca_bundle() {
    let home = tempfile::tempdir().unwrap();
    let files = pending(home.path(), 1);
    let sha = sha256_of(&files[0]);
    let cert = TestCert::new();
    let server = Server::https(Reply::Status(201), &cert);
    // Without the bundle the self-signed certificate is not trusted: kept, nothing lost.
    let report = upload_pending(&builder(home.path(), &[]), &to(&server)).unwrap();
    assert!(
        matches!(&report.payloads[0].outcome, Outcome::Kept { .. }),
        "{report:#?}"
    );
    assert_eq!(pending_files(home.path()), files);
    // With it (from the config, as an operator sets it): sent.
    let bundle = cert.write_bundle(home.path());
    let trusted =
        builder(home.path(), &[]).config("telemetry.ca_bundle", bundle.display().to_string());
    let options = UploadOptions {
        backoff_base: Duration::ZERO,
        ..to(&server)
    };
    std::fs::remove_file(home.path().join(".config/acme").join(STATE_FILE)).unwrap();
    let report = upload_pending(&trusted, &options).unwrap();
    assert_eq!(
        report.payloads[0].outcome,
        Outcome::Sent { status: 201 },
        "{report:#?}"
    );
    let bodies: Vec<_> = server.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies.len(), 1, "the untrusted handshake sent no request");
    assert_eq!(telemetry_core::inspect::sha256_hex(&bodies[0]), sha);
    // A bundle without a certificate is an error, not a silent fallback to the built-in roots.
    std::fs::write(&bundle, "not a certificate").unwrap();
    let err = upload_pending(&trusted, &options).unwrap_err();
    assert!(matches!(err, UploadError::CaBundle { .. }), "{err:?}");
}

#[test]
fn https_proxy_is_used_unless_no_proxy_names_the_host() {
    let home = tempfile::tempdir().unwrap();
    pending(home.path(), 1);
    let cert = TestCert::new();
    let server = Server::https(Reply::Status(200), &cert);
    let proxy = Server::http(Reply::Status(502));
    let proxy_url = format!("http://{}", proxy.addr);
    let report = upload_pending(
        &builder(home.path(), &[("HTTPS_PROXY", &proxy_url)]),
        &to(&server),
    )
    .unwrap();
    assert!(
        matches!(&report.payloads[0].outcome, Outcome::Kept { .. }),
        "{report:#?}"
    );
    let connects = proxy.requests();
    assert_eq!(connects.len(), 1, "one CONNECT to the proxy");
    assert!(
        connects[0]
            .head
            .starts_with(&format!("CONNECT {} ", server.addr)),
        "{}",
        connects[0].head
    );
    assert!(server.requests().is_empty());
    std::fs::remove_file(home.path().join(".config/acme").join(STATE_FILE)).unwrap();
    let bundle = cert.write_bundle(home.path());
    let direct = builder(
        home.path(),
        &[
            ("HTTPS_PROXY", &proxy_url),
            ("NO_PROXY", "localhost,127.0.0.1"),
        ],
    )
    .config("telemetry.ca_bundle", bundle.display().to_string());
    let report = upload_pending(&direct, &to(&server)).unwrap();
    assert!(report.all_sent(), "{report:#?}");
    assert_eq!(proxy.requests().len(), 1, "the proxy saw nothing more");
}

#[test]
fn a_black_holed_endpoint_never_holds_the_host() {
    let home = tempfile::tempdir().unwrap();
    let files = pending(home.path(), 1);
    let server = Server::http(Reply::BlackHole);
    let upload = start_background(&builder(home.path(), &[]), to(&server)).unwrap();
    // Let the request reach the endpoint, as at the end of a host's run.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.requests().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(server.requests().len(), 1);
    let exit = Instant::now();
    let report = upload.finish(Duration::from_millis(50));
    let waited = exit.elapsed();
    assert!(report.is_none(), "the endpoint never answered: {report:#?}");
    // Not a timing benchmark (benches/upload.rs measures it): proof that `finish` returns on
    // its own wait, not on the request timeout of 5 s.
    assert!(waited < Duration::from_secs(1), "{waited:?}");
    assert_eq!(
        pending_files(home.path()),
        files,
        "still pending for a later run"
    );
}

#[test]
fn nothing_is_started_without_an_endpoint_or_consent() {
    let home = tempfile::tempdir().unwrap();
    // Fresh install: no consent.
    let err = start_background(&builder(home.path(), &[]), UploadOptions::default()).err();
    assert!(matches!(err, Some(UploadError::Refused(_))), "{err:?}");
    pending(home.path(), 1);
    let err = start_background(&builder(home.path(), &[]), UploadOptions::default()).err();
    assert!(matches!(err, Some(UploadError::NoEndpoint)), "{err:?}");
}
