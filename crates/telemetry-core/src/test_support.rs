//! Helpers for the unit tests that meet a hostile local environment (issue #16).

use std::path::Path;
use std::time::{Duration, SystemTime};

/// Runs `f` on its own thread and fails the test if it takes longer than 10 s: an open that
/// blocks (a named pipe) must fail the test, never hang it.
pub(crate) fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what} HUNG (given up after 10 s)"))
}

/// A real named pipe at `path`.
pub(crate) fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
}

/// Sets the modification time of the regular file `path` back by an hour.
pub(crate) fn age(path: &Path) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
}
