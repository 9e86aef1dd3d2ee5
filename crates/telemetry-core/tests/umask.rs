//! A narrow umask never leaves a written file with other permission bits than asked for.
//! Its own test binary: the umask is per process, and no other test may run under it.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;

#[test]
fn a_narrow_umask_does_not_change_the_mode_of_written_files() {
    let dir = tempfile::tempdir().unwrap();
    let before = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o377));
    let written = telemetry_core::store::write_atomic(dir.path(), "config.toml", b"x = 1\n", 0o600);
    rustix::process::umask(before);
    written.unwrap();
    let mode = std::fs::metadata(dir.path().join("config.toml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o600, "mode {mode:o}");
}
