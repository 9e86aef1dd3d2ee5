//! Recording: randomise on the spot, buffer in memory, write one payload per run at flush.
//!
//! `record` never touches the disk. `flush` reserves privacy budget in the ledger (under a
//! file lock, so the cap holds across concurrent processes), assembles one v1 envelope and
//! writes it atomically to `uploads-pending/<run_id>.json` (mode 0600) — or, in preview
//! mode, to `previews/`, charging nothing and using only throw-away identifiers.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use telemetry_schema::{
    Arch, DailyId, Envelope, EnvelopeSchemaRef, Event as WireEvent, FieldPrivacy, FieldValue,
    Identifier, Ids, Label as WireLabel, LedgerState, NameVersion, Os, Period, Platform, Privacy,
    RedactedText, Redaction, RunId, SessionId, TextValue, Version,
};

use crate::dp::Epsilon;
use crate::dp::mechanism::{
    BoundedInteger, BucketedDuration, DurationBuckets, KaryRandomizedResponse, RandomizedResponse,
};
use crate::dp::memo::Memoizer;
use crate::event::{EventInfo, FieldDecl, Value, Visit};
use crate::redact::{RULES_VERSION, RedactionContext, RedactionStatus, Redactor};
use crate::store;

/// The default ε cap per day and install.
pub const DEFAULT_DAILY_EPSILON_CAP: f64 = 64.0;
/// Default bound on `uploads-pending/`: number of files.
pub const DEFAULT_MAX_PENDING_FILES: u64 = 500;
/// Default bound on `uploads-pending/`: total bytes.
pub const DEFAULT_MAX_PENDING_BYTES: u64 = 50 * 1024 * 1024;

/// Live (consented) or preview recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Written to `uploads-pending/`, charged to the ledger.
    Live,
    /// Written to `previews/`, never sendable, no ledger, no persistent identifiers.
    Preview,
}

enum Compiled {
    Bool(RandomizedResponse),
    Enum(KaryRandomizedResponse, &'static [&'static str]),
    Integer(BoundedInteger),
    Duration(BucketedDuration),
    Version,
    Text,
}

struct CompiledEvent {
    info: EventInfo,
    fields: Vec<Compiled>,
    epsilon: f64,
}

struct Recorded {
    event: usize,
    values: Vec<Option<FieldValue>>,
}

/// A memoised answer is a pure function of (install secret, event, field, value), so once
/// computed it is kept: a repeated report then costs a map lookup instead of an HMAC.
/// Key: (event index, field index, the true value as a word).
type AnswerKey = (u32, u32, u64);

/// Most answers kept per run; past that, answers are recomputed (same result, just slower).
const MAX_CACHED_ANSWERS: usize = 4096;

#[derive(Default)]
struct RunState {
    buffer: Vec<Recorded>,
    answers: std::collections::HashMap<AnswerKey, Option<FieldValue>>,
}

/// The in-memory recorder of one run.
pub(crate) struct Recorder {
    mode: Mode,
    memo: Memoizer,
    secret: [u8; 32],
    events: Vec<CompiledEvent>,
    state: Mutex<RunState>,
    redactor: std::sync::OnceLock<Redactor>,
    /// Text values of this run the redactor found nothing in.
    text_clean: std::sync::atomic::AtomicU32,
    /// Text values of this run in which the redactor replaced something.
    text_redacted: std::sync::atomic::AtomicU32,
    /// Text values of this run dropped entirely (rejected by the redactor, or refused as
    /// `RedactedText`), sent as `null`.
    text_rejected: std::sync::atomic::AtomicU32,
    unknown_events: std::sync::atomic::AtomicU32,
    day: telemetry_schema::Day,
    app: (String, String),
    pending_dir: PathBuf,
    ledger_file: PathBuf,
    limits: Limits,
}

/// Bounds applied at flush.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// ε cap per day.
    pub daily_epsilon_cap: f64,
    /// Most pending files kept.
    pub max_pending_files: u64,
    /// Most pending bytes kept.
    pub max_pending_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            daily_epsilon_cap: DEFAULT_DAILY_EPSILON_CAP,
            max_pending_files: DEFAULT_MAX_PENDING_FILES,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
        }
    }
}

/// Why recording could not be set up or a flush failed.
#[derive(Debug)]
pub enum RecordError {
    /// An event declaration is invalid (bad ε, empty domain, bad name).
    Declaration(String),
    /// The file system refused.
    Io(PathBuf, String),
    /// A file the recorder needs is not what it must be (a named pipe, a symlink, another
    /// user's): refused, never opened through.
    Refused(store::Refusal),
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Declaration(m) => write!(f, "invalid event declaration: {m}"),
            RecordError::Io(p, m) => write!(f, "{}: {m}", p.display()),
            RecordError::Refused(refusal) => refusal.fmt(f),
        }
    }
}

impl std::error::Error for RecordError {}

fn epsilon(value: f64, what: &str) -> Result<Epsilon, RecordError> {
    Epsilon::from_f64(value).map_err(|e| RecordError::Declaration(format!("{what}: {e}")))
}

fn compile(info: EventInfo) -> Result<CompiledEvent, RecordError> {
    info.spec()
        .map_err(|e| RecordError::Declaration(format!("{}: {e}", info.name)))?;
    let mut fields = Vec::with_capacity(info.fields.len());
    let mut total = 0.0;
    for decl in info.fields {
        let what = format!("{}.{}", info.name, decl.name());
        total += decl.epsilon();
        let bad = |e: crate::dp::DpError| RecordError::Declaration(format!("{what}: {e}"));
        fields.push(match *decl {
            FieldDecl::Bool { epsilon: e, .. } => {
                Compiled::Bool(RandomizedResponse::new(epsilon(e, &what)?))
            }
            FieldDecl::Enum {
                labels, epsilon: e, ..
            } => Compiled::Enum(
                KaryRandomizedResponse::new(
                    u32::try_from(labels.len()).unwrap_or(u32::MAX),
                    epsilon(e, &what)?,
                )
                .map_err(bad)?,
                labels,
            ),
            FieldDecl::Integer {
                min,
                max,
                epsilon: e,
                ..
            } => Compiled::Integer(BoundedInteger::new(min, max, epsilon(e, &what)?).map_err(bad)?),
            FieldDecl::Duration { epsilon: e, .. } => Compiled::Duration(
                BucketedDuration::new(DurationBuckets::default_log_scale(), epsilon(e, &what)?)
                    .map_err(bad)?,
            ),
            FieldDecl::Version { .. } => Compiled::Version,
            FieldDecl::Text { .. } => Compiled::Text,
        });
    }
    Ok(CompiledEvent {
        info,
        fields,
        epsilon: total,
    })
}

impl Recorder {
    pub(crate) fn new(
        mode: Mode,
        secret: [u8; 32],
        events: &[EventInfo],
        app: (String, String),
        pending_dir: PathBuf,
        ledger_file: PathBuf,
        limits: Limits,
    ) -> Result<Self, RecordError> {
        Ok(Self {
            mode,
            memo: Memoizer::new(&secret),
            secret,
            events: events
                .iter()
                .map(|e| compile(*e))
                .collect::<Result<_, _>>()?,
            state: Mutex::new(RunState::default()),
            redactor: std::sync::OnceLock::new(),
            text_clean: std::sync::atomic::AtomicU32::new(0),
            text_redacted: std::sync::atomic::AtomicU32::new(0),
            text_rejected: std::sync::atomic::AtomicU32::new(0),
            unknown_events: std::sync::atomic::AtomicU32::new(0),
            day: crate::time::today(),
            app,
            pending_dir,
            ledger_file,
            limits,
        })
    }

    /// Randomises and buffers one event. Unknown (unregistered) events are counted and
    /// dropped: only what the catalogue publishes can be recorded.
    pub(crate) fn record(&self, name: &str, visit: Visit<'_>) {
        let Some(index) = self.events.iter().position(|e| e.info.name == name) else {
            self.unknown_events
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        };
        let event = &self.events[index];
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let RunState { buffer, answers } = &mut *state;
        let mut values = Vec::with_capacity(event.fields.len());
        let mut i = 0;
        visit(&mut |value| {
            if let Some(mechanism) = event.fields.get(i) {
                let key = answer_key(index, i, value);
                let cached = key.and_then(|k| answers.get(&k).cloned());
                let answer = cached.unwrap_or_else(|| {
                    let field = event.info.fields[i].name();
                    let answer = self.randomize(event.info.name, field, mechanism, value);
                    if let Some(k) = key
                        && answers.len() < MAX_CACHED_ANSWERS
                    {
                        answers.insert(k, answer.clone());
                    }
                    answer
                });
                values.push(answer);
            }
            i += 1;
        });
        values.resize(event.fields.len(), None);
        buffer.push(Recorded {
            event: index,
            values,
        });
    }

    fn randomize(
        &self,
        event: &str,
        field: &str,
        mechanism: &Compiled,
        value: Value<'_>,
    ) -> Option<FieldValue> {
        match (mechanism, value) {
            (Compiled::Bool(m), Value::Bool(b)) => {
                Some(FieldValue::Bool(self.memo.randomize(event, field, m, b)))
            }
            (Compiled::Enum(m, labels), Value::Enum(i)) => {
                let out = self.memo.randomize(event, field, m, i);
                let label = labels.get(out as usize)?;
                WireLabel::new(*label).ok().map(FieldValue::Label)
            }
            (Compiled::Integer(m), Value::Integer(n)) => {
                Some(FieldValue::Integer(self.memo.randomize(event, field, m, n)))
            }
            (Compiled::Duration(m), Value::Duration(d)) => {
                Some(FieldValue::Integer(self.memo.randomize(event, field, m, d)))
            }
            (Compiled::Version, Value::Version(v)) => Version::new(v).ok().map(FieldValue::Version),
            (Compiled::Text, Value::Text(text)) => {
                let redactor = self
                    .redactor
                    .get_or_init(|| Redactor::new(RedactionContext::from_process()));
                let redacted = redactor.redact(text);
                let sent = match redacted.status {
                    RedactionStatus::Rejected(_) => None,
                    RedactionStatus::Clean | RedactionStatus::Redacted(_) => {
                        RedactedText::new(redacted.text)
                            .ok()
                            .map(|redacted| FieldValue::Text(TextValue { redacted }))
                    }
                };
                // Counted per run for `privacy.redaction` (saturating: never wraps to 0).
                let counter = match (redacted.status, &sent) {
                    (_, None) => &self.text_rejected,
                    (RedactionStatus::Redacted(_), Some(_)) => &self.text_redacted,
                    _ => &self.text_clean,
                };
                let _ = counter.fetch_update(
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                    |n| n.checked_add(1),
                );
                sent
            }
            // Missing, or a value of the wrong kind: never guess, send nothing.
            _ => None,
        }
    }

    /// Number of buffered events.
    pub(crate) fn buffered(&self) -> usize {
        self.state.lock().map_or(0, |s| s.buffer.len())
    }

    /// Writes the run's payload. Returns its path, or `None` when nothing was buffered.
    pub(crate) fn flush(&self) -> Result<Option<PathBuf>, RecordError> {
        let recorded = match self.state.lock() {
            Ok(mut state) => std::mem::take(&mut state.buffer),
            Err(_) => return Ok(None),
        };
        if recorded.is_empty() {
            return Ok(None);
        }
        let dir = &self.pending_dir;
        store::ensure_private_dir(dir).map_err(|e| RecordError::Io(dir.clone(), e.to_string()))?;
        let (kept, ledger) = match self.mode {
            Mode::Live => self.charge(recorded)?,
            Mode::Preview => (
                recorded,
                LedgerState {
                    epsilon_spent: 0.0,
                    epsilon_cap: self.limits.daily_epsilon_cap,
                    dropped_reports: 0,
                },
            ),
        };
        let run_id = uuid::Uuid::now_v7().to_string();
        let envelope = self.envelope(&run_id, kept, ledger)?;
        let bytes = envelope.to_json();
        let name = format!("{run_id}.json");
        let _lock = lock(&dir.join(".lock"))?;
        store::write_atomic(dir, &name, bytes.as_bytes(), 0o600)
            .map_err(|e| RecordError::Io(dir.join(&name), e.to_string()))?;
        if self.mode == Mode::Live {
            enforce_bounds(dir, self.limits);
        }
        let summary = crate::payload_index::Summary {
            day: envelope.period.day,
            schema_version: envelope.schema.version.clone(),
            events: envelope.events.len(),
        };
        // A cache for `show`: failing to update it costs a re-read there, never this payload.
        let _ = crate::payload_index::record(dir, &name, summary);
        Ok(Some(dir.join(name)))
    }

    fn envelope(
        &self,
        run_id: &str,
        kept: Vec<Recorded>,
        ledger: LedgerState,
    ) -> Result<Envelope, RecordError> {
        let decl = |m: String| RecordError::Declaration(m);
        let mut dp = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut events = Vec::with_capacity(kept.len());
        for r in kept {
            let compiled = &self.events[r.event];
            let name = Identifier::new(compiled.info.name).map_err(|e| decl(e.to_string()))?;
            let mut fields = telemetry_schema::Fields::new();
            for (decl_field, value) in compiled.info.fields.iter().zip(r.values) {
                let field = Identifier::new(decl_field.name()).map_err(|e| decl(e.to_string()))?;
                if seen.insert((compiled.info.name, decl_field.name())) {
                    let spec = decl_field.spec().map_err(|e| decl(e.to_string()))?;
                    dp.push(FieldPrivacy {
                        event: name.clone(),
                        field: field.clone(),
                        params: spec.mechanism,
                    });
                }
                fields.insert(field, value);
            }
            events.push(WireEvent { name, fields });
        }
        let text_values = |counter: &std::sync::atomic::AtomicU32| {
            counter.load(std::sync::atomic::Ordering::Relaxed)
        };
        let mut session = [0u8; 16];
        let _ = crate::dp::os_seeded_rng()
            .map(|mut rng| rand::RngCore::fill_bytes(&mut rng, &mut session));
        let daily = crate::dp::memo::daily_id(&self.secret, &self.day.to_string());
        let daily_mac = {
            let mut mac = [0u8; 32];
            for (i, chunk) in daily.as_bytes().chunks(2).enumerate().take(16) {
                mac[i] =
                    u8::from_str_radix(std::str::from_utf8(chunk).unwrap_or("0"), 16).unwrap_or(0);
            }
            mac
        };
        let day = self.day;
        Ok(Envelope {
            schema: EnvelopeSchemaRef::current(),
            run_id: RunId::new(run_id).map_err(|e| decl(e.to_string()))?,
            app: NameVersion::new(&self.app.0, &self.app.1).map_err(|e| decl(e.to_string()))?,
            sdk: NameVersion::new("telemetry-core", env!("CARGO_PKG_VERSION"))
                .map_err(|e| decl(e.to_string()))?,
            platform: Platform {
                os: Os::from_target_os(std::env::consts::OS),
                arch: Arch::from_target_arch(std::env::consts::ARCH),
            },
            ids: Ids {
                session: SessionId::from_bytes(session),
                daily: DailyId::from_mac(&daily_mac),
            },
            period: Period { day },
            events,
            privacy: Privacy {
                // Format 1.1: not_applicable without text values, else rejected / redacted /
                // clean, with the counts of this run's text values.
                redaction: Redaction::from_counts(
                    Version::new(format!("{RULES_VERSION}.0.0"))
                        .map_err(|e| decl(e.to_string()))?,
                    text_values(&self.text_clean),
                    text_values(&self.text_redacted),
                    text_values(&self.text_rejected),
                ),
                dp,
                ledger,
            },
        })
    }

    /// Reserves ε for as many buffered reports as fit under today's cap, under a lock on
    /// `ledger.lock`, so the cap holds across concurrent processes. The charge depends only
    /// on which events were recorded, never on their values. The ledger is replaced
    /// atomically: a crash leaves the old or the new ledger, never an empty one. A ledger
    /// whose content cannot be read fails closed: today's budget counts as spent. A ledger
    /// (or lock) that is not a regular file — a named pipe, a symlink — is refused: nothing is
    /// recorded in this run, and it is left in place for the user to see.
    fn charge(&self, recorded: Vec<Recorded>) -> Result<(Vec<Recorded>, LedgerState), RecordError> {
        let path = &self.ledger_file;
        let io = |e: std::io::Error| RecordError::Io(path.clone(), e.to_string());
        let _lock = lock(&ledger_lock_path(path))?;
        let today = self.day.to_string();
        let cap = self.limits.daily_epsilon_cap;
        let spent = || Ledger {
            day: today.clone(),
            epsilon_spent: f64::INFINITY,
        };
        let mut ledger = match store::read_bounded(path, 64 * 1024) {
            Ok(None) => Ledger::default(),
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|_| spent()),
            Err(refusal) => match refusal.kind {
                // Unreadable or oversized content: fail closed and replace it.
                store::RefusalKind::Io(..) | store::RefusalKind::TooLarge { .. } => spent(),
                _ => return Err(RecordError::Refused(refusal)),
            },
        };
        if ledger.day != today {
            ledger = Ledger {
                day: today,
                epsilon_spent: 0.0,
            };
        }
        if !ledger.epsilon_spent.is_finite() || ledger.epsilon_spent < 0.0 {
            ledger.epsilon_spent = cap;
        }
        let mut kept = Vec::with_capacity(recorded.len());
        let mut dropped = 0u32;
        for r in recorded {
            let cost = self.events[r.event].epsilon;
            if ledger.epsilon_spent + cost <= cap + 1e-9 {
                ledger.epsilon_spent += cost;
                kept.push(r);
            } else {
                dropped += 1;
            }
        }
        let bytes = serde_json::to_vec(&ledger).map_err(|e| io(e.into()))?;
        let (dir, name) = match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
            (Some(dir), Some(name)) => (dir, name),
            _ => return Err(io(std::io::ErrorKind::InvalidInput.into())),
        };
        store::write_atomic(dir, name, &bytes, 0o600).map_err(io)?;
        // Where the ledger (and the config) are written, killed writers leave temporary files.
        store::remove_stale_temp_files(dir);
        Ok((
            kept,
            LedgerState {
                epsilon_spent: ledger.epsilon_spent.min(cap),
                epsilon_cap: cap,
                dropped_reports: dropped,
            },
        ))
    }
}

/// The lock file that serialises ledger updates (`ledger.lock` next to `ledger.json`): the
/// ledger itself is replaced by rename, which a lock on it would not survive.
pub(crate) fn ledger_lock_path(ledger: &Path) -> PathBuf {
    ledger.with_extension("lock")
}

/// The cache key of a randomised field value; `None` for values that are not randomised
/// (versions, text) or not recorded, which are never cached.
fn answer_key(event: usize, field: usize, value: Value<'_>) -> Option<AnswerKey> {
    let word = match value {
        Value::Bool(b) => u64::from(b),
        Value::Enum(i) => u64::from(i),
        Value::Integer(n) => n as u64,
        Value::Duration(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        Value::Version(_) | Value::Text(_) | Value::Missing => return None,
    };
    Some((u32::try_from(event).ok()?, u32::try_from(field).ok()?, word))
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Ledger {
    day: String,
    epsilon_spent: f64,
}

/// Locks `path` (see [`store::lock_file`]: never through a symlink, never on a pipe).
fn lock(path: &Path) -> Result<File, RecordError> {
    store::lock_file(path).map_err(RecordError::Refused)
}

/// Deletes the oldest pending payloads (run ids are UUIDv7, so names sort by age) until at
/// most `max_pending_files` and `max_pending_bytes` remain.
fn enforce_bounds(dir: &Path, limits: Limits) {
    // Temporary files of a writer killed mid-flush: never read, but they must not pile up.
    store::remove_stale_temp_files(dir);
    let Ok(entries) = store::list_dir(dir) else {
        return;
    };
    let mut files: Vec<(PathBuf, u64)> = entries
        .into_iter()
        .filter(|e| e.file_type == rustix::fs::FileType::RegularFile)
        .map(|e| dir.join(e.name))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| {
            let len = std::fs::symlink_metadata(&p).ok()?.len();
            Some((p, len))
        })
        .collect();
    files.sort();
    let mut total: u64 = files.iter().map(|(_, n)| n).sum();
    let mut count = files.len() as u64;
    for (path, len) in files {
        if count <= limits.max_pending_files && total <= limits.max_pending_bytes {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            count -= 1;
            total = total.saturating_sub(len);
        }
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("mode", &self.mode)
            .field("events", &self.events.len())
            .field("buffered", &self.buffered())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, EventInfo};

    struct SizeEvent {
        size: i64,
        flag: bool,
    }

    impl Event for SizeEvent {
        const NAME: &'static str = "sized";
        const DESCRIPTION: &'static str = "A size.";
        const FIELDS: &'static [FieldDecl] = &[
            FieldDecl::integer("size", "A size.", 0, 1_000_000, 1.0),
            FieldDecl::boolean("flag", "A flag.", 1.0),
        ];
        fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
            out(Value::Integer(self.size));
            out(Value::Bool(self.flag));
        }
    }

    fn recorder(dir: &Path) -> Recorder {
        Recorder::new(
            Mode::Preview,
            [7; 32],
            &[EventInfo::of::<SizeEvent>()],
            ("acme".into(), "1.0.0".into()),
            dir.join("previews"),
            dir.join("ledger.json"),
            Limits::default(),
        )
        .unwrap()
    }

    fn live_recorder(root: &Path) -> Recorder {
        Recorder::new(
            Mode::Live,
            [7; 32],
            &[EventInfo::of::<SizeEvent>()],
            ("acme".into(), "1.0.0".into()),
            root.join("uploads-pending"),
            root.join("ledger.json"),
            Limits::default(),
        )
        .unwrap()
    }

    fn record_one(r: &Recorder) {
        let event = SizeEvent {
            size: 3,
            flag: true,
        };
        r.record(SizeEvent::NAME, &|out| event.values(out));
    }

    fn json_files(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |rd| {
            rd.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
            })
            .count()
        })
    }

    /// Issue #16: a symlink planted as a lock file is never followed (its target is never
    /// created), and a named pipe there never blocks: the flush fails, naming the file.
    #[test]
    fn lock_files_are_never_followed_and_never_block() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        let link = dir.path().join("ledger.lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = lock(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(
            std::fs::symlink_metadata(&target).is_err(),
            "target created"
        );
        let fifo = dir.path().join(".lock");
        crate::test_support::mkfifo(&fifo);
        let err = crate::test_support::within("lock(a named pipe)", move || {
            lock(&fifo).map(drop).unwrap_err().to_string()
        });
        assert!(err.contains("is a named pipe, not a regular file"), "{err}");
    }

    /// A named pipe as `ledger.json` is refused without blocking: nothing is recorded in
    /// this run (no payload), and the pipe is left for the user to see.
    #[test]
    fn a_ledger_that_is_a_named_pipe_refuses_the_flush_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        crate::test_support::mkfifo(&root.join("ledger.json"));
        let for_thread = root.clone();
        let err = crate::test_support::within("flush with a named-pipe ledger", move || {
            let r = live_recorder(&for_thread);
            record_one(&r);
            r.flush().map(drop).unwrap_err().to_string()
        });
        assert!(err.contains("ledger.json is a named pipe"), "{err}");
        assert_eq!(json_files(&root.join("uploads-pending")), 0);
        assert!(std::fs::symlink_metadata(root.join("ledger.json")).is_ok_and(|m| !m.is_file()));
    }

    /// Issue #16: temporary files of killed writers go where the ledger is written (the app
    /// directory) as in the pending directory: old ones only, regular files only.
    #[test]
    fn stale_temporary_files_go_where_the_ledger_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let pending = root.join("uploads-pending");
        store::ensure_private_dir(&pending).unwrap();
        for d in [root, pending.as_path()] {
            std::fs::write(d.join(".tmp-old"), b"x").unwrap();
            std::fs::write(d.join(".tmp-new"), b"x").unwrap();
            crate::test_support::age(&d.join(".tmp-old"));
        }
        let r = live_recorder(root);
        record_one(&r);
        r.flush().unwrap().expect("a payload");
        for d in [root, pending.as_path()] {
            assert!(
                !d.join(".tmp-old").exists(),
                "{}/.tmp-old is left",
                d.display()
            );
            assert!(
                d.join(".tmp-new").exists(),
                "{}/.tmp-new is gone",
                d.display()
            );
        }
    }

    /// The answer cache is invisible: every answer equals the memoised answer computed
    /// afresh, for cached values, repeated values and values past the cache's bound.
    #[test]
    fn cached_answers_equal_fresh_memoised_answers() {
        let dir = tempfile::tempdir().unwrap();
        let r = recorder(dir.path());
        let sizes: Vec<i64> = (0..(MAX_CACHED_ANSWERS as i64 + 50))
            .chain(0..50)
            .chain([5_000_000, -3])
            .collect();
        for &size in &sizes {
            let event = SizeEvent {
                size,
                flag: size % 3 == 0,
            };
            r.record(SizeEvent::NAME, &|out| event.values(out));
        }
        let state = r.state.lock().unwrap();
        assert_eq!(state.buffer.len(), sizes.len());
        assert!(state.answers.len() <= MAX_CACHED_ANSWERS);
        let Compiled::Integer(m) = &r.events[0].fields[0] else {
            panic!("size is an integer field")
        };
        let Compiled::Bool(rr) = &r.events[0].fields[1] else {
            panic!("flag is a bool field")
        };
        let memo = Memoizer::new(&[7; 32]);
        for (recorded, &size) in state.buffer.iter().zip(&sizes) {
            let fresh = memo.randomize("sized", "size", m, size);
            assert_eq!(
                recorded.values[0],
                Some(FieldValue::Integer(fresh)),
                "size {size}"
            );
            let fresh = memo.randomize("sized", "flag", rr, size % 3 == 0);
            assert_eq!(
                recorded.values[1],
                Some(FieldValue::Bool(fresh)),
                "size {size}"
            );
        }
    }
}
