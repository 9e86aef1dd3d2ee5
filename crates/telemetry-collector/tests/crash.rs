//! A payload answered as accepted is never lost: the collector is killed with SIGKILL while
//! clients send payloads as fast as they can, then restarted on the same store, three times.
//! Every run id that was answered 201 or 200 is in the store, the store passes SQLite's
//! integrity check, and the statistics count exactly the stored payloads.

#[path = "support/collector.rs"]
mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Collector, Sample, read_answer, submit_request};
use telemetry_collector::store::sqlite::Sqlite;
use telemetry_collector::store::{Query, Store};

const CLIENTS: u64 = 4;
/// Bounds of one round of load: whichever comes first.
const ROUND: Duration = Duration::from_millis(1500);
const MAX_PER_CLIENT: u64 = 5_000;

#[test]
fn kill_9_under_load_loses_no_accepted_payload() {
    let dir = tempfile::tempdir().unwrap();
    let sample = Sample::new(dir.path());
    let catalog = sample.catalog_file.to_str().unwrap().to_owned();
    let sample = Arc::new(sample);
    let accepted = Arc::new(Mutex::new(BTreeSet::new()));
    let next = Arc::new(AtomicU64::new(1));
    for round in 0..3 {
        let collector = Collector::start(dir.path(), &["--store", "c.db", "--catalog", &catalog]);
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (sample, accepted, next, stop) =
                    (sample.clone(), accepted.clone(), next.clone(), stop.clone());
                let addr = collector.addr;
                std::thread::spawn(move || {
                    let mut stream: Option<TcpStream> = None;
                    for _ in 0..MAX_PER_CLIENT {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let (run_id, body) = sample.variant(i);
                        if stream.is_none() {
                            stream = TcpStream::connect(addr).ok();
                            if let Some(s) = &stream {
                                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                            }
                        }
                        let Some(s) = stream.as_mut() else { break };
                        let answer = s
                            .write_all(&submit_request("demo", &run_id, &body))
                            .ok()
                            .and_then(|()| read_answer(s));
                        match answer {
                            Some(a) if a.status == 201 || a.status == 200 => {
                                accepted.lock().unwrap().insert(run_id);
                            }
                            Some(a) => assert_eq!(a.status, 503, "only overload may refuse: {a:?}"),
                            // Killed mid-request: nothing was promised.
                            None => stream = None,
                        }
                    }
                })
            })
            .collect();
        let start = Instant::now();
        let before = accepted.lock().unwrap().len();
        while start.elapsed() < ROUND && accepted.lock().unwrap().len() < before + 200 {
            std::thread::sleep(Duration::from_millis(10));
        }
        // Kill at a moment of load, not between rounds.
        std::thread::sleep(Duration::from_millis(100 + 150 * round));
        drop(collector); // SIGKILL
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        let got = accepted.lock().unwrap().len();
        assert!(
            got > before + 50,
            "round {round}: too little load ({})",
            got - before
        );
    }

    let store = Sqlite::open(&dir.path().join("c.db")).unwrap();
    store.check().unwrap();
    let accepted = accepted.lock().unwrap();
    let missing: Vec<&String> = accepted
        .iter()
        .filter(|r| !store.contains(r).unwrap())
        .collect();
    assert!(
        missing.is_empty(),
        "{} accepted run ids lost: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let stored: u64 = store
        .payload_counts(&Query::default())
        .unwrap()
        .iter()
        .map(|c| c.2)
        .sum();
    // Some payloads may be stored without their answer having reached a client.
    assert!(stored >= accepted.len() as u64);
    let tallies = store.tallies("demo", &Query::default()).unwrap();
    let ok_reports: u64 = tallies
        .iter()
        .filter(|t| t.event == "ran" && t.field == "ok")
        .map(|t| t.n)
        .sum();
    assert_eq!(
        ok_reports, stored,
        "statistics count each stored payload once"
    );
    eprintln!("{} accepted, {stored} stored over 3 kills", accepted.len());
}
