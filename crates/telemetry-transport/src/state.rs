//! What the uploader remembers between runs: failed attempts per payload (for backoff) and when
//! recent attempts were made (for the rate limit). One small JSON file, `upload-state.json` in the
//! app's telemetry directory (0600, replaced atomically), removed by `purge` and `disable` like
//! every other file the toolkit creates. An unreadable state file counts as empty: the worst
//! case is one early retry, never a lost payload.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use telemetry_core::store;

/// The file's name in the app's telemetry directory.
pub const STATE_FILE: &str = "upload-state.json";
const MAX_STATE_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct State {
    /// Failed attempts of payloads still pending, by run id.
    #[serde(default)]
    pub attempts: BTreeMap<String, Attempts>,
    /// Unix times (seconds) of the attempts of the last minute.
    #[serde(default)]
    pub recent: Vec<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Attempts {
    /// Failed attempts so far.
    pub failures: u32,
    /// No new attempt before this unix time (seconds).
    pub not_before: i64,
}

impl State {
    pub fn load(root: &Path) -> State {
        store::read_bounded(&root.join(STATE_FILE), MAX_STATE_BYTES)
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Writes the state, or removes the file when there is nothing to remember.
    pub fn save(&self, root: &Path) -> std::io::Result<()> {
        if self.attempts.is_empty() && self.recent.is_empty() {
            return store::remove_if_exists(&root.join(STATE_FILE)).map(drop);
        }
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        store::write_atomic(root, STATE_FILE, &bytes, 0o600)
    }

    /// Forgets attempts older than a minute and entries of payloads no longer pending.
    pub fn prune(&mut self, now: i64, pending: &[String]) {
        self.recent.retain(|&t| now - t < 60 && t <= now);
        self.attempts.retain(|id, _| pending.contains(id));
    }
}

/// The wait after the `failures`-th failed attempt: `base` doubled per earlier failure, capped at
/// six hours, times a jitter factor in [0.5, 1.5) so that installs that failed together do not
/// retry together.
pub(crate) fn backoff(base: Duration, failures: u32, jitter: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    let wait = base
        .saturating_mul(1u32 << doublings)
        .min(Duration::from_secs(6 * 3600));
    wait.mul_f64(jitter.clamp(0.5, 1.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_core_knows_the_file_it_must_purge() {
        let paths = telemetry_core::Paths::at("/x");
        assert_eq!(paths.upload_state_file(), Path::new("/x").join(STATE_FILE));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let base = Duration::from_secs(60);
        assert_eq!(backoff(base, 1, 1.0), base);
        assert_eq!(backoff(base, 2, 1.0), base * 2);
        assert_eq!(backoff(base, 4, 1.0), base * 8);
        assert_eq!(backoff(base, 3, 0.5), base * 2);
        assert_eq!(backoff(base, 50, 1.0), Duration::from_secs(6 * 3600));
        assert_eq!(backoff(base, 1, 9.0), base.mul_f64(1.5));
    }

    #[test]
    fn state_round_trips_and_prunes() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(State::load(dir.path()), State::default());
        let mut state = State::default();
        state.attempts.insert(
            "a".into(),
            Attempts {
                failures: 2,
                not_before: 100,
            },
        );
        state.attempts.insert(
            "gone".into(),
            Attempts {
                failures: 1,
                not_before: 0,
            },
        );
        state.recent = vec![10, 100, 130];
        state.prune(140, &["a".to_owned()]);
        assert_eq!(state.recent, vec![100, 130]);
        assert_eq!(state.attempts.keys().collect::<Vec<_>>(), ["a"]);
        state.save(dir.path()).unwrap();
        assert_eq!(State::load(dir.path()), state);
        std::fs::write(dir.path().join(STATE_FILE), b"{not json").unwrap();
        assert_eq!(State::load(dir.path()), State::default());
        State::default().save(dir.path()).unwrap();
        assert!(!dir.path().join(STATE_FILE).exists());
    }
}
