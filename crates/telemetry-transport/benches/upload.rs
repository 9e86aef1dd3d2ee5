//! Issue #7's figures: how long a host waits at exit for a background upload whose endpoint
//! accepts connections and never answers (target ≤ 50 ms), and how long uploading 500 pending
//! payloads to a loopback endpoint takes.
//!
//! Run: `cargo bench -p telemetry-transport --bench upload -- --warm-up-time 1 --measurement-time 5`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use support::{Reply, Server, builder, pending, pending_files};
use telemetry_transport::{UploadOptions, start_background, upload_pending};

const PAYLOADS: usize = 500;

fn options(server: &Server) -> UploadOptions {
    UploadOptions {
        endpoint: Some(server.url()),
        max_per_minute: u32::MAX,
        ..UploadOptions::default()
    }
}

/// Copies of one real pending payload under `PAYLOADS` distinct run ids (UUIDv7 layout).
fn fill(home: &Path, template: &[u8], run_id: &str) {
    let dir = home.join(".config/acme/uploads-pending");
    let text = String::from_utf8(template.to_vec()).unwrap();
    for i in 0..PAYLOADS {
        let id = format!("{}{:012x}", &run_id[..24], i);
        std::fs::write(dir.join(format!("{id}.json")), text.replace(run_id, &id)).unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let home = tempfile::tempdir().unwrap();
    let first = pending(home.path(), 1).remove(0);
    let template = std::fs::read(&first).unwrap();
    let run_id = first.file_stem().unwrap().to_str().unwrap().to_owned();
    std::fs::remove_file(&first).unwrap();

    let black_hole = Server::http(Reply::BlackHole);
    let one = tempfile::tempdir().unwrap();
    pending(one.path(), 1);
    c.bench_function("exit_wait_black_holed_endpoint", |b| {
        b.iter_batched(
            || {
                let upload = start_background(&builder(one.path(), &[]), options(&black_hole))
                    .expect("started");
                // The request is in flight when the host exits.
                let deadline = std::time::Instant::now() + Duration::from_secs(5);
                let seen = black_hole.requests().len();
                while black_hole.requests().len() == seen && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                upload
            },
            |upload| upload.finish(Duration::from_millis(50)),
            BatchSize::PerIteration,
        );
    });

    let server = Server::http(Reply::Status(202));
    let mut group = c.benchmark_group("upload");
    group.sample_size(10);
    group.bench_function("500_pending_to_loopback", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_file(home.path().join(".config/acme/upload-state.json"));
                fill(home.path(), &template[..], &run_id);
            },
            |()| {
                let report = upload_pending(&builder(home.path(), &[]), &options(&server)).unwrap();
                assert!(report.all_sent() && report.payloads.len() >= PAYLOADS);
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
    assert!(pending_files(home.path()).is_empty());
}

criterion_group!(benches, bench);
criterion_main!(benches);
