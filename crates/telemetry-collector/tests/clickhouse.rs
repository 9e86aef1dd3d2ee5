//! The ClickHouse store against a real ClickHouse server (started per test): the same answers
//! as the SQLite store, each run id counted once across collectors, inclusive day filters,
//! pruning, catalogues, and clear errors for unreachable or malformed URLs.

#[path = "support/clickhouse_server.rs"]
mod clickhouse_server;

use std::time::{Duration, Instant};

use clickhouse_server::ClickHouseServer;
use telemetry_collector::store::clickhouse::ClickHouse;
use telemetry_collector::store::sqlite::Sqlite;
use telemetry_collector::store::{
    self, Accepted, Query, ReportValue, Store, StoreError, StoredReport, TallyRow,
};
use telemetry_schema::{Day, MechanismParams, params_key};

fn day(s: &str) -> Day {
    s.parse().unwrap()
}

fn rr() -> String {
    params_key(&MechanismParams::randomized_response(1.0).unwrap())
}

fn k_rr() -> String {
    params_key(&MechanismParams::k_rr(1.0, &["a", "b"]).unwrap())
}

fn laplace() -> String {
    params_key(&MechanismParams::discrete_laplace(1.0, 0, 7).unwrap())
}

fn report(event: &str, field: &str, params: String, value: ReportValue) -> StoredReport {
    StoredReport {
        event: event.into(),
        field: field.into(),
        params,
        value,
    }
}

/// A payload with the usual reports: a bit, a label and the same integer field twice.
fn payload(run_id: &str, app: &str, on: &str) -> Accepted {
    custom(
        run_id,
        app,
        on,
        vec![
            report("open", "dark_mode", rr(), ReportValue::Bit(true)),
            report("open", "theme", k_rr(), ReportValue::Label("a".into())),
            report("open", "tabs", laplace(), ReportValue::Integer(5)),
            report("open", "tabs", laplace(), ReportValue::Integer(5)),
        ],
    )
}

fn custom(run_id: &str, app: &str, on: &str, reports: Vec<StoredReport>) -> Accepted {
    Accepted {
        run_id: run_id.into(),
        app: app.into(),
        app_version: "1.2.3".into(),
        day: day(on),
        received: day("2026-12-02"),
        schema_version: "1".into(),
        // Raw tab, newline, quote, backslash, control character and non-ASCII text.
        body: format!("{{\"run_id\":\"{run_id}\",\"note\":\"é\t\n\\\"'\u{1} 😀\"}}").into_bytes(),
        reports,
    }
}

fn sqlite(dir: &tempfile::TempDir) -> Sqlite {
    Sqlite::open(&dir.path().join("collector.db")).unwrap()
}

fn clickhouse(server: &ClickHouseServer) -> ClickHouse {
    let url = server.url();
    ClickHouse::open(url.strip_prefix("clickhouse://").unwrap()).unwrap()
}

fn sorted(mut rows: Vec<TallyRow>) -> Vec<TallyRow> {
    rows.sort_by_key(|r| format!("{r:?}"));
    rows
}

fn tallies(store: &dyn Store, app: &str, query: &Query) -> Vec<TallyRow> {
    sorted(store.tallies(app, query).unwrap())
}

const ID: [&str; 6] = [
    "0190b2a4-0000-7000-8000-000000000001",
    "0190b2a4-0000-7000-8000-000000000002",
    "0190b2a4-0000-7000-8000-000000000003",
    "0190b2a4-0000-7000-8000-000000000004",
    "0190b2a4-0000-7000-8000-000000000005",
    "0190b2a4-0000-7000-8000-000000000006",
];

#[test]
fn same_answers_as_sqlite() {
    let server = ClickHouseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (lite, ch) = (sqlite(&dir), clickhouse(&server));
    let batch = vec![
        payload(ID[0], "demo", "2026-11-30"),
        custom(
            ID[1],
            "demo",
            "2026-11-30",
            vec![
                report("open", "dark_mode", rr(), ReportValue::Bit(false)),
                report("open", "dark_mode", rr(), ReportValue::Bit(true)),
                report("open", "dark_mode", rr(), ReportValue::Bit(true)),
                report("open", "theme", k_rr(), ReportValue::Label("b".into())),
                report("open", "tabs", laplace(), ReportValue::Integer(-3)),
                report(
                    "save",
                    "note",
                    k_rr(),
                    ReportValue::Label("é\t'\\\"\n".into()),
                ),
            ],
        ),
        payload(ID[2], "demo", "2026-12-01"),
        custom(ID[3], "demo", "2026-12-01", Vec::new()),
        payload(ID[4], "other-app", "2026-12-01"),
        // Day 0 of a ClickHouse Date, which it prints as 0000-00-00.
        payload(ID[5], "demo", "1970-01-01"),
    ];
    let all = Query::default();
    assert_eq!(lite.insert(&batch).unwrap(), vec![true; 6]);
    assert_eq!(ch.insert(&batch).unwrap(), vec![true; 6]);

    for app in ["demo", "other-app", "absent"] {
        assert_eq!(tallies(&ch, app, &all), tallies(&lite, app, &all), "{app}");
    }
    let demo = tallies(&ch, "demo", &all);
    let tabs = demo
        .iter()
        .find(|r| r.field == "tabs" && r.day == day("2026-11-30"))
        .unwrap();
    // Three reports of `tabs` that day, two of them equal, all kept.
    assert_eq!((tabs.n, tabs.sum, tabs.sum_sq), (3, 7.0, 59.0));
    let dark = demo
        .iter()
        .find(|r| r.field == "dark_mode" && r.day == day("2026-11-30"))
        .unwrap();
    assert_eq!((dark.n, dark.ones, dark.label.as_deref()), (4, 3, None));
    assert!(
        demo.iter()
            .any(|r| r.label.as_deref() == Some("é\t'\\\"\n"))
    );

    let counts = ch.payload_counts(&all).unwrap();
    assert_eq!(counts, lite.payload_counts(&all).unwrap());
    assert_eq!(
        counts,
        vec![
            ("demo".into(), day("1970-01-01"), 1),
            ("demo".into(), day("2026-11-30"), 2),
            ("demo".into(), day("2026-12-01"), 2),
            ("other-app".into(), day("2026-12-01"), 1),
        ]
    );
    assert!(ch.contains(ID[3]).unwrap());
    assert!(!ch.contains("0190b2a4-0000-7000-8000-00000000ffff").unwrap());

    // The exact bytes of each body are kept.
    let stored = server.query(&format!(
        "SELECT hex(body) FROM telemetry.payloads WHERE run_id = '{}'",
        ID[1]
    ));
    let hex: String = batch[1].body.iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(stored.trim(), hex);
    ch.check().unwrap();
}

#[test]
fn duplicates_count_once() {
    let server = ClickHouseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let lite = sqlite(&dir);
    // Two collectors writing to one ClickHouse.
    let (one, two) = (clickhouse(&server), clickhouse(&server));
    let (x, y) = (
        payload(ID[0], "demo", "2026-12-01"),
        payload(ID[1], "demo", "2026-12-01"),
    );
    assert_eq!(one.insert(&[x.clone(), x.clone()]).unwrap(), [true, false]);
    assert_eq!(one.insert(std::slice::from_ref(&x)).unwrap(), [false]);
    assert_eq!(two.insert(&[x.clone(), y.clone()]).unwrap(), [false, true]);
    assert_eq!(two.insert(&[y.clone(), x.clone()]).unwrap(), [false, false]);
    assert_eq!(one.insert(&[]).unwrap(), Vec::<bool>::new());
    lite.insert(&[x, y]).unwrap();

    let all = Query::default();
    let expected_counts = vec![("demo".to_string(), day("2026-12-01"), 2)];
    assert_eq!(lite.payload_counts(&all).unwrap(), expected_counts);
    let expected = tallies(&lite, "demo", &all);
    assert_eq!(expected.iter().map(|r| r.n).sum::<u64>(), 8);
    for store in [&one, &two] {
        assert_eq!(store.payload_counts(&all).unwrap(), expected_counts);
        assert_eq!(tallies(store, "demo", &all), expected);
    }

    // Duplicates that slipped in (two collectors inserting at the same moment) still count once.
    for table in ["payloads", "reports"] {
        server.query(&format!(
            "INSERT INTO telemetry.{table} SELECT * FROM telemetry.{table}"
        ));
    }
    let rows = server.query("SELECT count() FROM telemetry.payloads");
    assert_eq!(rows.trim(), "4", "the duplicates are there");
    assert_eq!(one.payload_counts(&all).unwrap(), expected_counts);
    assert_eq!(tallies(&two, "demo", &all), expected);

    // Reports whose payload never got stored (a batch that failed half-way) are not counted.
    server.query(
        "INSERT INTO telemetry.reports SELECT app, day, 'orphan', position, event, field, params,
         kind, ones, value, label FROM telemetry.reports",
    );
    assert_eq!(tallies(&one, "demo", &all), expected);
    assert_eq!(one.prune(day("2026-12-02")).unwrap(), 2);
}

#[test]
fn large_batches() {
    let server = ClickHouseServer::start();
    let ch = clickhouse(&server);
    // More run ids than one lookup query holds (256 KiB of text), and megabytes of bodies.
    let batch: Vec<Accepted> = (0..7000)
        .map(|i| {
            let mut p = payload(
                &format!("0190b2a4-0000-7000-8000-{i:012}"),
                "demo",
                "2026-12-01",
            );
            p.body.extend(std::iter::repeat_n(b'x', 1000));
            p
        })
        .collect();
    assert!(ch.insert(&batch).unwrap().iter().all(|fresh| *fresh));
    assert!(ch.insert(&batch).unwrap().iter().all(|fresh| !*fresh));
    let all = Query::default();
    assert_eq!(
        ch.payload_counts(&all).unwrap(),
        vec![("demo".into(), day("2026-12-01"), 7000)]
    );
    let n: u64 = ch.tallies("demo", &all).unwrap().iter().map(|r| r.n).sum();
    assert_eq!(n, 4 * 7000);
}

#[test]
fn query_filters_are_inclusive() {
    let server = ClickHouseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (lite, ch) = (sqlite(&dir), clickhouse(&server));
    let mut batch = Vec::new();
    for (i, on) in ["2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02"]
        .iter()
        .enumerate()
    {
        batch.push(payload(&format!("{}-a", ID[i]), "demo", on));
        batch.push(payload(&format!("{}-b", ID[i]), "other", on));
    }
    // Quotes and backslashes in filters are escaped, not interpreted.
    batch.push(payload(ID[5], r"it's\", "2026-11-30"));
    lite.insert(&batch).unwrap();
    ch.insert(&batch).unwrap();

    let q = |app: Option<&str>, since: Option<&str>, until: Option<&str>| Query {
        app: app.map(Into::into),
        since: since.map(day),
        until: until.map(day),
    };
    let middle = q(Some("demo"), Some("2026-11-30"), Some("2026-12-01"));
    assert_eq!(
        ch.payload_counts(&middle).unwrap(),
        vec![
            ("demo".into(), day("2026-11-30"), 1),
            ("demo".into(), day("2026-12-01"), 1),
        ]
    );
    let days: Vec<Day> = tallies(&ch, "demo", &middle)
        .iter()
        .map(|r| r.day)
        .collect();
    assert!(days.contains(&day("2026-11-30")) && days.contains(&day("2026-12-01")));
    assert!(
        days.iter()
            .all(|d| *d >= day("2026-11-30") && *d <= day("2026-12-01"))
    );

    for query in [
        Query::default(),
        middle,
        q(None, Some("2026-12-01"), None),
        q(Some("other"), None, Some("2026-11-30")),
        q(None, Some("2026-12-02"), Some("2026-12-02")),
        q(None, Some("2026-12-02"), Some("2026-11-29")),
        q(None, Some("2026-12-03"), None),
        q(None, None, Some("9999-12-31")),
        q(None, Some("9999-12-31"), None),
        q(Some("absent"), None, None),
        q(Some(r"it's\"), None, None),
        q(Some("it's"), None, None),
    ] {
        assert_eq!(
            ch.payload_counts(&query).unwrap(),
            lite.payload_counts(&query).unwrap(),
            "{query:?}"
        );
        for app in [
            "demo",
            "other",
            r"it's\\",
            r"it's\",
            "it's",
            "' OR 1 = 1 --",
        ] {
            assert_eq!(
                tallies(&ch, app, &query),
                tallies(&lite, app, &query),
                "{app} {query:?}"
            );
        }
    }
    assert_eq!(tallies(&ch, r"it's\", &Query::default()).len(), 3);
    assert_eq!(
        ch.payload_counts(&q(None, Some("2026-12-02"), None))
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn prune_removes_old_days() {
    let server = ClickHouseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (lite, ch) = (sqlite(&dir), clickhouse(&server));
    let batch = vec![
        payload(ID[0], "demo", "2026-10-31"),
        payload(ID[1], "demo", "2026-11-30"),
        payload(ID[2], "other", "2026-11-30"),
        payload(ID[3], "demo", "2026-12-01"),
    ];
    lite.insert(&batch).unwrap();
    ch.insert(&batch).unwrap();

    let started = Instant::now();
    assert_eq!(ch.prune(day("2026-12-01")).unwrap(), 3);
    let took = started.elapsed();
    assert_eq!(lite.prune(day("2026-12-01")).unwrap(), 3);
    for table in ["payloads", "reports"] {
        let old = server.query(&format!(
            "SELECT count() FROM telemetry.{table} WHERE day < '2026-12-01'"
        ));
        assert_eq!(old.trim(), "0", "{table} (prune took {took:?})");
        let kept = server.query(&format!("SELECT count() FROM telemetry.{table}"));
        assert_ne!(kept.trim(), "0", "{table}");
    }
    let all = Query::default();
    assert_eq!(
        ch.payload_counts(&all).unwrap(),
        vec![("demo".into(), day("2026-12-01"), 1)]
    );
    assert_eq!(tallies(&ch, "demo", &all), tallies(&lite, "demo", &all));
    assert!(!ch.contains(ID[0]).unwrap());
    assert_eq!(ch.prune(day("2026-12-01")).unwrap(), 0);
    // A day past what a ClickHouse Date holds removes everything.
    assert_eq!(ch.prune(day("9999-12-31")).unwrap(), 1);
    assert_eq!(ch.payload_counts(&all).unwrap(), Vec::new());
    assert_eq!(ch.tallies("demo", &all).unwrap(), Vec::new());
}

#[test]
fn catalogs_are_replaced_and_listed() {
    let server = ClickHouseServer::start();
    let (one, two) = (clickhouse(&server), clickhouse(&server));
    assert_eq!(one.catalogs().unwrap(), Vec::<String>::new());
    one.register_catalog("demo", "1.0.0", r#"{"v":"first"}"#)
        .unwrap();
    one.register_catalog("demo", "0.9.0", r#"{"v":"old"}"#)
        .unwrap();
    two.register_catalog("alpha", "2.0.0", r#"{"v":"é\n\t\\\"'"}"#)
        .unwrap();
    two.register_catalog("demo", "1.0.0", r#"{"v":"second"}"#)
        .unwrap();
    let expected = [
        r#"{"v":"é\n\t\\\"'"}"#,
        r#"{"v":"old"}"#,
        r#"{"v":"second"}"#,
    ];
    assert_eq!(one.catalogs().unwrap(), expected);
    assert_eq!(two.catalogs().unwrap(), expected);
    one.register_catalog("demo", "1.0.0", r#"{"v":"third"}"#)
        .unwrap();
    assert_eq!(two.catalogs().unwrap()[2], r#"{"v":"third"}"#);
}

#[test]
fn check_refuses_tables_not_ours() {
    let server = ClickHouseServer::start();
    let ch = clickhouse(&server);
    ch.check().unwrap();
    assert!(ch.describe().contains("telemetry"), "{}", ch.describe());

    server.query("CREATE DATABASE other");
    server.query("CREATE TABLE other.payloads (x UInt8) ENGINE = MergeTree() ORDER BY x");
    let url = server.url_of("other");
    match store::open(&url) {
        Err(StoreError::Corrupt(m)) => assert!(m.contains("payloads"), "{m}"),
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("opened a database with a foreign payloads table"),
    }

    server.query("DROP TABLE telemetry.reports");
    match ch.check() {
        Err(StoreError::Corrupt(m)) => assert!(m.contains("reports"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_urls_fail_clearly() {
    let started = Instant::now();
    match store::open("clickhouse://127.0.0.1:1/telemetry") {
        Err(StoreError::Unavailable(m)) => assert!(m.contains("ClickHouse"), "{m}"),
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("opened a ClickHouse store where nothing listens"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    for bad in [
        "clickhouse://nonsense",
        "clickhouse://127.0.0.1:x/db",
        "clickhouse://127.0.0.1:8123/",
        "clickhouse://127.0.0.1:8123/bad-name",
    ] {
        match store::open(bad) {
            Err(StoreError::Invalid(m)) => {
                assert!(m.contains("clickhouse://HOST:PORT/DATABASE"), "{m}")
            }
            Err(e) => panic!("{bad}: {e:?}"),
            Ok(_) => panic!("{bad} opened"),
        }
    }

    // A server that goes away after the store opened.
    let server = ClickHouseServer::start();
    let ch = clickhouse(&server);
    drop(server);
    let started = Instant::now();
    match ch.insert(&[payload(ID[0], "demo", "2026-12-01")]) {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(ch.check(), Err(StoreError::Unavailable(_))));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
