//! The operator's commands besides `serve`: `backup` copies a store that is being written to,
//! and `report`, `prune` and `backup` never create a store a typo names.

#[path = "support/collector.rs"]
mod support;

use std::process::{Command, Output};

use support::{COLLECTOR, Collector, Sample, submit};

fn collector(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(COLLECTOR)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap()
}

fn payloads(dir: &std::path::Path, store: &str) -> u64 {
    let out = collector(dir, &["report", "--store", store, "--json"]);
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["payloads"].as_u64().unwrap()
}

#[test]
fn backup_copies_a_store_while_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let sample = Sample::new(dir.path());
    let catalog = sample.catalog_file.to_str().unwrap().to_owned();
    let c = Collector::start(dir.path(), &["--store", "live.db", "--catalog", &catalog]);
    for i in 1..=25 {
        let (run, body) = sample.variant(i);
        assert_eq!(submit(c.addr, "demo", &run, &body).status, 201);
    }
    let out = collector(
        dir.path(),
        &["backup", "--store", "live.db", "--to", "copy.db"],
    );
    assert!(out.status.success(), "{out:?}");
    // The copy is a store of its own, with everything committed before it was taken.
    assert_eq!(payloads(dir.path(), "copy.db"), 25);
    let (run, body) = sample.variant(26);
    assert_eq!(submit(c.addr, "demo", &run, &body).status, 201);
    assert_eq!(payloads(dir.path(), "live.db"), 26);
    assert_eq!(payloads(dir.path(), "copy.db"), 25);
    // Never over an existing file; never of ClickHouse.
    let again = collector(
        dir.path(),
        &["backup", "--store", "live.db", "--to", "copy.db"],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists"),
        "{again:?}"
    );
    let ch = collector(
        dir.path(),
        &[
            "backup",
            "--store",
            "clickhouse://127.0.0.1:1/x",
            "--to",
            "x.db",
        ],
    );
    assert_eq!(ch.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&ch.stderr).contains("ClickHouse"),
        "{ch:?}"
    );
}

#[test]
fn a_store_that_does_not_exist_is_an_error_not_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["report", "--store", "typo.db"][..],
        &["prune", "--store", "typo.db", "--older-than", "7"],
        &["backup", "--store", "typo.db", "--to", "copy.db"],
    ] {
        let out = collector(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("there is no store at \"typo.db\""),
            "{args:?}: {out:?}"
        );
        assert!(!dir.path().join("typo.db").exists(), "{args:?} created it");
    }
}
