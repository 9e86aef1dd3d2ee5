//! Recording: randomise on the spot, buffer in memory, write one payload per run at flush.
//!
//! `record` never touches the disk. `flush` reserves privacy budget in the ledger (under a
//! file lock, so the cap holds across concurrent processes), assembles one v1 envelope and
//! writes it atomically to `uploads-pending/<run_id>.json` (mode 0600) — or, in preview
//! mode, to `previews/`, charging nothing and using only throw-away identifiers.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

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
use crate::warning::{Location, Warning};

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
    /// The event's name, checked.
    name: Identifier,
    /// What the payload says of each field (its name, checked, and its mechanism), in the
    /// order of [`EventInfo::fields`]: worked out once, here, not at every flush.
    privacy: Vec<FieldPrivacy>,
    fields: Vec<Compiled>,
    /// ε of one report whose answers are all new: what the payload states, whatever the values.
    epsilon: f64,
    /// The value tuples this run has already handled (recorded, merged or refused).
    seen: SeenTable,
}

/// One report of a run: an event's randomised answers, sent once however often they recur.
struct Report {
    event: usize,
    values: Vec<Option<FieldValue>>,
    /// The ledger keys of the memoised answers behind it, with their field's ε: every distinct
    /// true value whose answer this report shows is charged once a day.
    charges: Vec<(u64, f64)>,
}

/// Distinct value tuples one event kind may contribute to a run; past that, new tuples are
/// dropped (and counted). Bounds the recorder's memory per event kind, not per call.
pub const MAX_REPORTS_PER_EVENT: usize = 64;
/// Slots of an event's [`SeenTable`]: twice the tuples it holds, so probes stay short.
const SEEN_SLOTS: usize = 2 * MAX_REPORTS_PER_EVENT;

/// Fingerprints of the value tuples an event kind has seen in this run, readable without a lock:
/// a repeated `record` of the same values (the common case) is a hash and a few atomic loads.
/// Written only under the run's mutex; 0 marks an empty slot.
struct SeenTable {
    slots: Box<[AtomicU64]>,
}

impl SeenTable {
    fn new() -> Self {
        Self {
            slots: (0..SEEN_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    #[inline]
    fn contains(&self, fingerprint: u64) -> bool {
        let mask = SEEN_SLOTS - 1;
        let mut i = fingerprint as usize & mask;
        for _ in 0..SEEN_SLOTS {
            match self.slots[i].load(Ordering::Acquire) {
                0 => return false,
                f if f == fingerprint => return true,
                _ => i = (i + 1) & mask,
            }
        }
        false
    }

    /// Adds `fingerprint` (the caller holds the run's mutex and has checked `contains`).
    fn insert(&self, fingerprint: u64) {
        let mask = SEEN_SLOTS - 1;
        let mut i = fingerprint as usize & mask;
        for _ in 0..SEEN_SLOTS {
            if self.slots[i].load(Ordering::Relaxed) == 0 {
                self.slots[i].store(fingerprint, Ordering::Release);
                return;
            }
            i = (i + 1) & mask;
        }
    }
}

/// A 64-bit fingerprint of an event's value tuple (kind tags, values, count), never 0. Not
/// keyed and never stored or sent: it only tells repeats apart within one run. A collision
/// (about 2⁻⁵² for a full table) would take a new tuple for a repeat and not record it.
#[derive(Clone, Copy)]
struct Fingerprint(u64);

impl Fingerprint {
    const SEED: u64 = 0x243f_6a88_85a3_08d3;

    #[inline]
    fn word(&mut self, w: u64) {
        let x = (self.0 ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = x ^ (x >> 29);
    }

    #[inline]
    fn value(&mut self, value: Value<'_>) {
        match value {
            Value::Bool(b) => self.word(1 << 56 | u64::from(b)),
            Value::Enum(i) => {
                self.word(2 << 56);
                self.word(u64::from(i));
            }
            Value::Integer(n) => {
                self.word(3 << 56);
                self.word(n as u64);
            }
            Value::Duration(d) => {
                self.word(4 << 56);
                self.word(d.as_secs());
                self.word(u64::from(d.subsec_nanos()));
            }
            Value::Version(s) => self.bytes(5, s.as_bytes()),
            Value::Text(s) => self.bytes(6, s.as_bytes()),
            Value::Missing => self.word(7 << 56),
        }
    }

    fn bytes(&mut self, tag: u64, bytes: &[u8]) {
        self.word(tag << 56 | bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            self.word(u64::from_le_bytes(w));
        }
        let mut w = [0u8; 8];
        w[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.word(u64::from_le_bytes(w));
    }

    #[inline]
    fn finish(self) -> u64 {
        let x = self.0 ^ (self.0 >> 32);
        if x == 0 { 1 } else { x }
    }
}

#[derive(Default)]
struct RunState {
    reports: Vec<Report>,
    /// Distinct value tuples handled per event kind (index as in `Recorder::events`).
    distinct: Vec<usize>,
    /// Event names recorded but not registered, already warned about.
    unknown: Vec<&'static str>,
    /// (event, field) pairs whose values did not fit their declaration, already warned about;
    /// `usize::MAX` as field for a wrong number of values, `usize::MAX - 1` for a full run.
    misfits: Vec<(usize, usize)>,
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
    text_clean: AtomicU32,
    /// Text values of this run in which the redactor replaced something.
    text_redacted: AtomicU32,
    /// Text values of this run dropped entirely (rejected by the redactor, or refused as
    /// `RedactedText`), sent as `null`.
    text_rejected: AtomicU32,
    /// Warnings about the app's own use of the API (unregistered events, values that do not
    /// fit their declaration), each once per run.
    misuse: Mutex<Vec<Warning>>,
    /// The app name to prefix warnings printed on stderr with; `None`: not printed.
    print_as: Option<String>,
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

/// The events compiled to their mechanisms: what a [`Recorder`] records with. Compiling them
/// is also the check that the declarations are sound, so a run that checks and then records
/// compiles once.
pub(crate) struct CompiledEvents(Vec<CompiledEvent>);

/// Compiles every event to its mechanisms, or says which declaration does not compile.
pub(crate) fn compile_events(events: &[EventInfo]) -> Result<CompiledEvents, RecordError> {
    events
        .iter()
        .map(|e| compile(*e))
        .collect::<Result<_, _>>()
        .map(CompiledEvents)
}

fn compile(info: EventInfo) -> Result<CompiledEvent, RecordError> {
    let spec = info
        .spec()
        .map_err(|e| RecordError::Declaration(format!("{}: {e}", info.name)))?;
    let privacy = spec
        .fields
        .into_iter()
        .map(|field| FieldPrivacy {
            event: spec.name.clone(),
            field: field.name,
            params: field.mechanism,
        })
        .collect();
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
        name: spec.name,
        privacy,
        fields,
        epsilon: total,
        seen: SeenTable::new(),
    })
}

impl Recorder {
    /// A recorder that compiles `events` itself (the tests' way; `Builder` compiles them once
    /// while checking the declarations, then calls [`Recorder::compiled`]).
    #[cfg(test)]
    pub(crate) fn new(
        mode: Mode,
        secret: [u8; 32],
        events: &[EventInfo],
        app: (String, String),
        pending_dir: PathBuf,
        ledger_file: PathBuf,
        limits: Limits,
    ) -> Result<Self, RecordError> {
        let events = compile_events(events)?;
        Ok(Self::compiled(
            mode,
            secret,
            events,
            app,
            pending_dir,
            ledger_file,
            limits,
        ))
    }

    /// [`Recorder::new`] with events already compiled.
    pub(crate) fn compiled(
        mode: Mode,
        secret: [u8; 32],
        CompiledEvents(events): CompiledEvents,
        app: (String, String),
        pending_dir: PathBuf,
        ledger_file: PathBuf,
        limits: Limits,
    ) -> Self {
        Self {
            mode,
            memo: Memoizer::new(&secret),
            secret,
            state: Mutex::new(RunState {
                distinct: vec![0; events.len()],
                ..RunState::default()
            }),
            events,
            redactor: std::sync::OnceLock::new(),
            text_clean: AtomicU32::new(0),
            text_redacted: AtomicU32::new(0),
            text_rejected: AtomicU32::new(0),
            misuse: Mutex::new(Vec::new()),
            print_as: None,
            day: crate::time::today(),
            app,
            pending_dir,
            ledger_file,
            limits,
        }
    }

    /// Prints each misuse warning on stderr as it is found, prefixed with `app`.
    pub(crate) fn print_warnings_as(mut self, app: Option<String>) -> Self {
        self.print_as = app;
        self
    }

    /// Randomises and buffers one event. A value tuple this run has already handled costs a
    /// hash and a few atomic loads: its report is already buffered (or was refused). Unknown
    /// (unregistered) events and values that do not fit their declaration are dropped with a
    /// warning: only what the catalogue publishes can be recorded, and nothing is guessed.
    #[inline]
    pub(crate) fn record(&self, name: &'static str, visit: Visit<'_>) {
        let Some(index) = self.event_index(name) else {
            self.unknown_event(name);
            return;
        };
        let mut fingerprint = Fingerprint(Fingerprint::SEED ^ index as u64);
        let mut count = 0u64;
        visit(&mut |value| {
            fingerprint.value(value);
            count += 1;
        });
        fingerprint.word(count);
        let fingerprint = fingerprint.finish();
        if self.events[index].seen.contains(fingerprint) {
            return;
        }
        self.record_new(index, fingerprint, visit);
    }

    #[inline]
    fn event_index(&self, name: &str) -> Option<usize> {
        // The same `&'static str` constant usually has one address: compare that first.
        self.events
            .iter()
            .position(|e| std::ptr::eq(e.info.name, name))
            .or_else(|| self.events.iter().position(|e| e.info.name == name))
    }

    #[cold]
    fn unknown_event(&self, name: &'static str) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.unknown.contains(&name) || state.unknown.len() >= MAX_WARNED {
            return;
        }
        state.unknown.push(name);
        drop(state);
        self.warn(format!(
            "event `{name}` is not registered, so it is not recorded: add `.event::<…>()` for it \
             to the telemetry builder"
        ));
    }

    #[cold]
    fn record_new(&self, index: usize, fingerprint: u64, visit: Visit<'_>) {
        let event = &self.events[index];
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        // Another thread may have handled the same values meanwhile.
        if event.seen.contains(fingerprint) {
            return;
        }
        if state.distinct[index] >= MAX_REPORTS_PER_EVENT {
            let first = !state.misfits.contains(&(index, FULL_RUN));
            if first {
                state.misfits.push((index, FULL_RUN));
                drop(state);
                self.warn(format!(
                    "event `{}`: more than {MAX_REPORTS_PER_EVENT} distinct reports in one run; \
                     further new values are not recorded",
                    event.info.name
                ));
            }
            return;
        }
        state.distinct[index] += 1;
        event.seen.insert(fingerprint);

        let mut values = Vec::with_capacity(event.fields.len());
        let mut charges = Vec::new();
        let mut misfit: Option<(usize, String)> = None;
        let mut i = 0;
        visit(&mut |value| {
            if misfit.is_none() {
                match event.fields.get(i) {
                    Some(mechanism) => {
                        match self.randomize(event, i, mechanism, value, &mut charges) {
                            Ok(answer) => values.push(answer),
                            Err(why) => misfit = Some((i, why)),
                        }
                    }
                    None => misfit = Some((WRONG_COUNT, String::new())),
                }
            }
            i += 1;
        });
        if misfit.is_none() && i != event.fields.len() {
            misfit = Some((WRONG_COUNT, String::new()));
        }
        if let Some((field, why)) = misfit {
            let first = !state.misfits.contains(&(index, field));
            if first && state.misfits.len() < MAX_WARNED {
                state.misfits.push((index, field));
                drop(state);
                let name = event.info.name;
                self.warn(match event.info.fields.get(field) {
                    Some(decl) => format!(
                        "event `{name}` field `{}`: {why}; the report is dropped (check its \
                         `values`, or derive `Event`)",
                        decl.name()
                    ),
                    None => format!(
                        "event `{name}`: `values` produced {i} values for {} declared fields; the \
                         report is dropped (check its `values`, or derive `Event`)",
                        event.fields.len()
                    ),
                });
            }
            return;
        }
        // Another tuple may have drawn the same answers: one report shows them, charged for
        // every true value behind it.
        match state
            .reports
            .iter_mut()
            .find(|r| r.event == index && r.values == values)
        {
            Some(report) => report.charges.extend(charges),
            None => state.reports.push(Report {
                event: index,
                values,
                charges,
            }),
        }
    }

    /// The answer sent for field `i`'s true `value`, or why the value does not fit the field.
    fn randomize(
        &self,
        event: &CompiledEvent,
        i: usize,
        mechanism: &Compiled,
        value: Value<'_>,
        charges: &mut Vec<(u64, f64)>,
    ) -> Result<Option<FieldValue>, String> {
        let (name, decl) = (event.info.name, &event.info.fields[i]);
        let field = decl.name();
        let mut charged = |key| charges.push((key, decl.epsilon()));
        Ok(match (mechanism, value) {
            // Optional fields (`Option<…>` in a derived event) send `null`.
            (_, Value::Missing) => None,
            (Compiled::Bool(m), Value::Bool(b)) => {
                let (answer, key) = self.memo.randomize_keyed(name, field, m, b);
                charged(key);
                Some(FieldValue::Bool(answer))
            }
            (Compiled::Enum(m, labels), Value::Enum(index)) => {
                if index as usize >= labels.len() {
                    return Err(format!(
                        "label index {index} is outside its {} labels",
                        labels.len()
                    ));
                }
                let (out, key) = self.memo.randomize_keyed(name, field, m, index);
                charged(key);
                let label = labels.get(out as usize).ok_or("no such label")?;
                Some(FieldValue::Label(
                    WireLabel::new(*label).map_err(|e| e.to_string())?,
                ))
            }
            (Compiled::Integer(m), Value::Integer(n)) => {
                let (answer, key) = self.memo.randomize_keyed(name, field, m, n);
                charged(key);
                Some(FieldValue::Integer(answer))
            }
            (Compiled::Duration(m), Value::Duration(d)) => {
                let (answer, key) = self.memo.randomize_keyed(name, field, m, d);
                charged(key);
                Some(FieldValue::Integer(answer))
            }
            (Compiled::Version, Value::Version(v)) => Some(FieldValue::Version(
                Version::new(v).map_err(|e| format!("not a version: {e}"))?,
            )),
            (Compiled::Text, Value::Text(text)) => self.redact(text),
            (_, other) => {
                return Err(format!(
                    "got {} for a field declared {}",
                    value_kind(&other),
                    decl_kind(decl)
                ));
            }
        })
    }

    fn redact(&self, text: &str) -> Option<FieldValue> {
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
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1));
        sent
    }

    fn warn(&self, message: String) {
        let warning = Warning::new(Location::Programmatic, message);
        if let Some(app) = &self.print_as {
            let line = format!("{app}: telemetry: warning: {warning}\n");
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                telemetry_schema::display::escape_for_terminal(&line).as_bytes(),
            );
        }
        if let Ok(mut misuse) = self.misuse.lock() {
            misuse.push(warning);
        }
    }

    /// The warnings about the app's use of the API found so far in this run.
    pub(crate) fn misuse_warnings(&self) -> Vec<Warning> {
        self.misuse.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Number of buffered reports.
    pub(crate) fn buffered(&self) -> usize {
        self.state.lock().map_or(0, |s| s.reports.len())
    }

    /// Writes the run's payload. Returns its path, or `None` when there is nothing to send:
    /// nothing buffered, or every report dropped by the ledger (no payload without events).
    pub(crate) fn flush(&self) -> Result<Option<PathBuf>, RecordError> {
        let reports = match self.state.lock() {
            Ok(mut state) => {
                // The next payload shows every report anew (repeats cost the ledger nothing).
                for event in &self.events {
                    for slot in &event.seen.slots {
                        slot.store(0, Ordering::Relaxed);
                    }
                }
                state.distinct.iter_mut().for_each(|n| *n = 0);
                std::mem::take(&mut state.reports)
            }
            Err(_) => return Ok(None),
        };
        if reports.is_empty() {
            return Ok(None);
        }
        let (kept, dropped) = match self.mode {
            Mode::Live => self.charge(reports)?,
            Mode::Preview => (reports, 0),
        };
        if kept.is_empty() {
            return Ok(None);
        }
        let cap = self.limits.daily_epsilon_cap;
        // What the payload states is independent of the true values (see `charge`).
        let worst_case: f64 = kept.iter().map(|r| self.events[r.event].epsilon).sum();
        let ledger = LedgerState {
            epsilon_spent: match self.mode {
                Mode::Live => worst_case.min(cap),
                Mode::Preview => 0.0,
            },
            epsilon_cap: cap,
            dropped_reports: dropped,
        };
        let path = &self.pending_dir;
        // Opened and checked once: the lock, the payload, the listing and the removals are
        // relative to it.
        let dir = store::ensure_private_dir(path)
            .map_err(|e| RecordError::Io(path.clone(), e.to_string()))?;
        // One draw of the OS random source for the run id's random bits and the session id.
        let mut random = [0u8; 26];
        crate::dp::os_random_bytes(&mut random)
            .map_err(|e| RecordError::Io(path.clone(), e.to_string()))?;
        let (run_random, session) = random.split_at(10);
        let run_id = run_id(
            std::time::SystemTime::now(),
            run_random.try_into().unwrap_or_default(),
        );
        let session = session.try_into().unwrap_or_default();
        let envelope = self.envelope(&run_id, session, kept, ledger)?;
        let bytes = envelope.to_json();
        let name = format!("{run_id}.json");
        let _lock = dir.lock(".lock").map_err(RecordError::Refused)?;
        // Durability (architecture.md, "Durability"): renamed into place whole, not fsynced. A
        // power failure may lose the payload; a torn file never passes validation, so no
        // reader takes it for a payload.
        dir.write_replacing(&name, bytes.as_bytes(), 0o600)
            .map_err(|e| RecordError::Io(path.join(&name), e.to_string()))?;
        // One listing serves the sweep of temporary files and the bounds: with the store at
        // its bound (500 payloads, the steady state without an uploader) each listing costs
        // more than the rest of the flush. No index is written here (`payload_index`: `show`
        // keeps it), since replacing it by a rename cost a host 0.4–1 ms a run on ext4.
        let Some(mut listing) = PendingListing::read(&dir) else {
            return Ok(Some(path.join(name)));
        };
        if listing.has_temp_files {
            // Temporary files of a writer killed mid-flush: never read, but they must not pile up.
            dir.remove_stale_temp_files();
        }
        if self.mode == Mode::Live {
            enforce_bounds(&dir, self.limits, &mut listing.payloads);
        }
        Ok(Some(path.join(name)))
    }

    fn envelope(
        &self,
        run_id: &str,
        session: [u8; 16],
        kept: Vec<Report>,
        ledger: LedgerState,
    ) -> Result<Envelope, RecordError> {
        let decl = |m: String| RecordError::Declaration(m);
        let mut dp = Vec::new();
        // Each event kind's fields are described once, at its first report.
        let mut described = vec![false; self.events.len()];
        let mut events = Vec::with_capacity(kept.len());
        for r in kept {
            let compiled = &self.events[r.event];
            let mut fields = telemetry_schema::Fields::with_capacity(compiled.privacy.len());
            let describe = !std::mem::replace(&mut described[r.event], true);
            for (privacy, value) in compiled.privacy.iter().zip(r.values) {
                if describe {
                    dp.push(privacy.clone());
                }
                fields.insert(privacy.field.clone(), value);
            }
            events.push(WireEvent {
                name: compiled.name.clone(),
                fields,
            });
        }
        let text_values = |counter: &AtomicU32| counter.load(Ordering::Relaxed);
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

    /// Charges today's budget for what the buffered reports reveal, under a lock on
    /// `ledger.lock` so the cap holds across concurrent processes, and returns the reports that
    /// fit with the number dropped.
    ///
    /// A memoised answer is a function of (install secret, event, field, mechanism, true
    /// value): sending it again reveals nothing new. So each distinct answer is charged its
    /// field's ε once a day, and the ledger keeps the one-way keys of today's charged answers
    /// (up to [`MAX_LEDGER_KEYS`]; past that, answers are charged every time, which only errs
    /// on the safe side). A report whose answers are all charged costs nothing; one that does
    /// not fit under the cap is dropped whole. The ledger is written only when it changes, and
    /// replaced atomically: a crash leaves the old or the new ledger, never an empty one. A
    /// ledger whose content cannot be read fails closed: today's budget counts as spent. A
    /// ledger (or lock) that is not a regular file is refused: nothing is recorded in this
    /// run, and it is left in place for the user to see.
    ///
    /// What is charged depends on the true values (whether one recurs), so it never leaves the
    /// machine: the payload states the value-independent worst case of its reports instead.
    fn charge(&self, reports: Vec<Report>) -> Result<(Vec<Report>, u32), RecordError> {
        let path = &self.ledger_file;
        let io = |e: std::io::Error| RecordError::Io(path.clone(), e.to_string());
        let _lock = lock(&ledger_lock_path(path))?;
        let today = self.day.to_string();
        let cap = self.limits.daily_epsilon_cap;
        let spent = || Ledger {
            day: today.clone(),
            epsilon_spent: f64::INFINITY,
            charged: Vec::new(),
        };
        let read = match store::read_bounded(path, MAX_LEDGER_BYTES) {
            Ok(None) => None,
            Ok(Some(bytes)) => Some(serde_json::from_slice(&bytes).unwrap_or_else(|_| spent())),
            Err(refusal) => match refusal.kind {
                // Unreadable or oversized content: fail closed and replace it.
                store::RefusalKind::Io(..) | store::RefusalKind::TooLarge { .. } => Some(spent()),
                _ => return Err(RecordError::Refused(refusal)),
            },
        };
        let before = read.clone();
        let mut ledger = read.unwrap_or_default();
        if ledger.day != today {
            ledger = Ledger {
                day: today,
                epsilon_spent: 0.0,
                charged: Vec::new(),
            };
        }
        if !ledger.epsilon_spent.is_finite() || ledger.epsilon_spent < 0.0 {
            ledger.epsilon_spent = cap;
        }
        // A sorted vector searched by halves, not a hash set (whose random keys cost a
        // `getrandom` call of their own) nor a tree (more code in every host): at most
        // `MAX_LEDGER_KEYS` keys.
        let mut charged: Vec<u64> = ledger.charged.clone();
        charged.sort_unstable();
        charged.dedup();
        let mut kept = Vec::with_capacity(reports.len());
        let mut dropped = 0u32;
        for report in reports {
            let mut new: Vec<u64> = Vec::new();
            let mut cost = 0.0;
            for &(key, epsilon) in &report.charges {
                if charged.binary_search(&key).is_err() && !new.contains(&key) {
                    new.push(key);
                    cost += epsilon;
                }
            }
            if ledger.epsilon_spent + cost <= cap + 1e-9 {
                ledger.epsilon_spent += cost;
                for key in new {
                    if charged.len() >= MAX_LEDGER_KEYS {
                        break;
                    }
                    if let Err(at) = charged.binary_search(&key) {
                        charged.insert(at, key);
                        ledger.charged.push(key);
                    }
                }
                kept.push(report);
            } else {
                dropped += 1;
            }
        }
        if before.as_ref() != Some(&ledger) {
            let bytes = serde_json::to_vec(&ledger).map_err(|e| io(e.into()))?;
            let (dir, name) = match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
                (Some(dir), Some(name)) => (dir, name),
                _ => return Err(io(std::io::ErrorKind::InvalidInput.into())),
            };
            // Not fsynced either: a torn ledger reads as spent (fail closed), and where the
            // journal commits metadata in order (ext4, XFS) a payload that survives a power
            // failure implies that the ledger renamed before it did too.
            store::write_replacing(dir, name, &bytes, 0o600).map_err(io)?;
            // Where the ledger (and the config) are written, killed writers leave temporary
            // files: swept when this writes too (a listing a run that charges nothing skips).
            store::remove_stale_temp_files(dir);
        }
        Ok((kept, dropped))
    }
}

/// ε charged on `day` according to the ledger at `path`, read without a lock and without
/// writing: `None` when nothing is charged that day (no ledger, or one of another day); a ledger
/// that cannot be read counts as spent (infinite), as it does when recording.
pub(crate) fn spent_today(path: &Path, day: telemetry_schema::Day) -> Option<f64> {
    let ledger: Ledger = match store::read_bounded(path, MAX_LEDGER_BYTES) {
        Ok(None) => return None,
        Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
            Ok(ledger) => ledger,
            Err(_) => return Some(f64::INFINITY),
        },
        Err(_) => return Some(f64::INFINITY),
    };
    if ledger.day != day.to_string() {
        return None;
    }
    Some(
        if ledger.epsilon_spent.is_finite() && ledger.epsilon_spent >= 0.0 {
            ledger.epsilon_spent
        } else {
            f64::INFINITY
        },
    )
}

/// Most answer keys the ledger keeps a day (8 bytes each, about 20 in JSON).
pub const MAX_LEDGER_KEYS: usize = 4096;
/// Largest ledger file read (a full one is about 90 KiB).
const MAX_LEDGER_BYTES: u64 = 256 * 1024;
/// Most misuse warnings (and unknown event names) kept per run.
const MAX_WARNED: usize = 32;
/// `RunState::misfits`' field index for a `values` that produced the wrong number of values.
const WRONG_COUNT: usize = usize::MAX;
/// `RunState::misfits`' field index for an event kind that reached [`MAX_REPORTS_PER_EVENT`].
const FULL_RUN: usize = usize::MAX - 1;

fn value_kind(value: &Value<'_>) -> &'static str {
    match value {
        Value::Bool(_) => "a bool",
        Value::Enum(_) => "a label index",
        Value::Integer(_) => "an integer",
        Value::Duration(_) => "a duration",
        Value::Version(_) => "a version",
        Value::Text(_) => "a text",
        Value::Missing => "no value",
    }
}

fn decl_kind(decl: &FieldDecl) -> &'static str {
    match decl {
        FieldDecl::Bool { .. } => "a bool",
        FieldDecl::Enum { .. } => "an enum (values are label indexes)",
        FieldDecl::Integer { .. } => "an integer",
        FieldDecl::Duration { .. } => "a duration",
        FieldDecl::Version { .. } => "a version",
        FieldDecl::Text { .. } => "a text",
    }
}

/// The lock file that serialises ledger updates (`ledger.lock` next to `ledger.json`): the
/// ledger itself is replaced by rename, which a lock on it would not survive.
pub(crate) fn ledger_lock_path(ledger: &Path) -> PathBuf {
    ledger.with_extension("lock")
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Ledger {
    day: String,
    epsilon_spent: f64,
    /// Keys of the answers charged today ([`Memoizer::randomize_keyed`]).
    #[serde(default)]
    charged: Vec<u64>,
}

/// A payload's run id: a UUIDv7 of `now` (milliseconds since the epoch) and 74 random bits, so
/// names sort by age (see [`enforce_bounds`]). Within a process each id is later than the one
/// before, as RFC 9562 allows: a flush in the same millisecond as the last takes the next one.
fn run_id(now: std::time::SystemTime, random: [u8; 10]) -> String {
    static LAST_MILLIS: AtomicU64 = AtomicU64::new(0);
    let now = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let next = |last: u64| Some(now.max(last.saturating_add(1)));
    let last = LAST_MILLIS
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, next)
        .unwrap_or(now);
    let millis = next(last).unwrap_or(now);
    uuid::Builder::from_unix_timestamp_millis(millis, &random)
        .into_uuid()
        .to_string()
}

/// Locks `path` (see [`store::lock_file`]: never through a symlink, never on a pipe).
fn lock(path: &Path) -> Result<File, RecordError> {
    store::lock_file(path).map_err(RecordError::Refused)
}

/// What a flush needs to know of the pending directory, from one listing.
struct PendingListing {
    /// The payload files (regular `*.json` files): name and size.
    payloads: Vec<(String, u64)>,
    /// Whether any entry is a temporary file (`.tmp-*`) of an atomic write.
    has_temp_files: bool,
}

impl PendingListing {
    fn read(dir: &store::OpenDir) -> Option<Self> {
        let is_payload = |name: &std::ffi::OsStr| name.as_encoded_bytes().ends_with(b".json");
        let entries = dir.list_sizing(&is_payload).ok()?;
        let has_temp_files = entries
            .iter()
            .any(|(e, _)| e.name.as_encoded_bytes().starts_with(b".tmp-"));
        let payloads = entries
            .into_iter()
            .filter_map(|(e, size)| Some((e.name.into_string().ok()?, size?)))
            .collect();
        Some(Self {
            payloads,
            has_temp_files,
        })
    }
}

/// Deletes the oldest pending payloads (run ids are UUIDv7, so names sort by age) until at
/// most `max_pending_files` and `max_pending_bytes` remain; `payloads` (names and sizes, as
/// listed) keeps those that remain.
fn enforce_bounds(dir: &store::OpenDir, limits: Limits, payloads: &mut Vec<(String, u64)>) {
    let mut files = std::mem::take(payloads);
    // By name: strings, not paths, whose comparison walks components (it showed in profiles).
    files.sort_unstable();
    let mut total: u64 = files.iter().map(|(_, n)| n).sum();
    let mut count = files.len() as u64;
    for (name, len) in files {
        let over = count > limits.max_pending_files || total > limits.max_pending_bytes;
        if over && dir.remove(&name).is_ok() {
            count -= 1;
            total = total.saturating_sub(len);
        } else {
            payloads.push((name, len));
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

// Symlinks, named pipes and file times of the Unix store.
#[cfg(all(test, unix))]
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
    fn run_ids_are_v7_and_increase_within_a_process() {
        let now = std::time::SystemTime::now();
        let ids: Vec<String> = (0..5u8).map(|i| run_id(now, [i; 10])).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
        }
        for id in &ids {
            let uuid = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(uuid.get_version_num(), 7, "{id}");
            // The random bits are those drawn (ids of the same instant differ by them too).
            assert_eq!(&uuid.as_bytes()[10..], &[uuid.as_bytes()[15]; 6], "{id}");
        }
        // An id of a clock set back stays after the last one made.
        let past = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1);
        assert!(run_id(past, [9; 10]) > ids[4]);
    }

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

    /// Every report holds the memoised answers computed afresh; a repeated value tuple is one
    /// report (however often it is recorded), and an event kind holds at most
    /// `MAX_REPORTS_PER_EVENT` distinct ones: memory is bounded per event kind, not per call.
    #[test]
    fn reports_are_fresh_memoised_answers_once_per_distinct_tuple_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let r = recorder(dir.path());
        let sizes: Vec<i64> = (0..10).chain(0..10).chain(0..10).collect();
        for &size in &sizes {
            let event = SizeEvent {
                size,
                flag: size % 3 == 0,
            };
            r.record(SizeEvent::NAME, &|out| event.values(out));
        }
        let Compiled::Integer(m) = &r.events[0].fields[0] else {
            panic!("size is an integer field")
        };
        let Compiled::Bool(rr) = &r.events[0].fields[1] else {
            panic!("flag is a bool field")
        };
        let memo = Memoizer::new(&[7; 32]);
        let fresh = |size: i64| {
            vec![
                Some(FieldValue::Integer(
                    memo.randomize("sized", "size", m, size),
                )),
                Some(FieldValue::Bool(memo.randomize(
                    "sized",
                    "flag",
                    rr,
                    size % 3 == 0,
                ))),
            ]
        };
        {
            let state = r.state.lock().unwrap();
            let mut expected: Vec<Vec<Option<FieldValue>>> = Vec::new();
            for size in 0..10 {
                if !expected.contains(&fresh(size)) {
                    expected.push(fresh(size));
                }
            }
            let got: Vec<_> = state.reports.iter().map(|r| r.values.clone()).collect();
            assert_eq!(got, expected, "one report per distinct answer tuple");
            // Two charges per true tuple (one per randomised field), merged or not.
            let charges: usize = state.reports.iter().map(|r| r.charges.len()).sum();
            assert_eq!(charges, 20);
        }
        for size in 10..1000 {
            let event = SizeEvent { size, flag: true };
            r.record(SizeEvent::NAME, &|out| event.values(out));
        }
        let state = r.state.lock().unwrap();
        assert_eq!(state.distinct[0], MAX_REPORTS_PER_EVENT);
        assert!(state.reports.len() <= MAX_REPORTS_PER_EVENT);
        drop(state);
        let warnings = r.misuse_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0]
                .message
                .contains("more than 64 distinct reports")
        );
    }

    struct Misfit(u8);

    impl Event for Misfit {
        const NAME: &'static str = "misfit";
        const DESCRIPTION: &'static str = "A hand-written event out of step with its fields.";
        const FIELDS: &'static [FieldDecl] = &[
            FieldDecl::enumeration("outcome", "How.", &["success", "failure"], 1.0),
            FieldDecl::boolean("flag", "A flag.", 1.0),
        ];
        fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
            match self.0 {
                0 => {
                    out(Value::Integer(1)); // an integer for an enum field
                    out(Value::Bool(true));
                }
                1 => {
                    out(Value::Enum(9)); // outside the two labels
                    out(Value::Bool(true));
                }
                2 => {} // nothing at all
                3 => {
                    out(Value::Enum(0));
                    out(Value::Bool(true));
                    out(Value::Bool(false)); // one too many
                }
                4 => {
                    out(Value::Bool(true)); // swapped
                    out(Value::Enum(1));
                }
                _ => {
                    out(Value::Enum(1)); // right
                    out(Value::Bool(false));
                }
            }
        }
    }

    /// Issue #17: a hand-written `values` out of step with `FIELDS` is a warning naming the
    /// event and field, and its report is dropped — never stored as `null` or another label.
    #[test]
    fn values_that_do_not_fit_are_dropped_with_a_warning_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let misfit_recorder = || {
            Recorder::new(
                Mode::Preview,
                [7; 32],
                &[EventInfo::of::<Misfit>()],
                ("acme".into(), "1.0.0".into()),
                dir.path().join("previews"),
                dir.path().join("ledger.json"),
                Limits::default(),
            )
            .unwrap()
        };
        let expected = [
            "event `misfit` field `outcome`: got an integer for a field declared an enum",
            "event `misfit` field `outcome`: label index 9 is outside its 2 labels",
            "event `misfit`: `values` produced 0 values for 2 declared fields",
            "event `misfit`: `values` produced 3 values for 2 declared fields",
            "event `misfit` field `outcome`: got a bool for a field declared an enum",
        ];
        for (case, want) in (0..).zip(expected) {
            let r = misfit_recorder();
            for _ in 0..3 {
                let event = Misfit(case);
                r.record(Misfit::NAME, &|out| event.values(out));
            }
            assert_eq!(r.buffered(), 0, "case {case}: a misfit was kept");
            let warnings: Vec<String> = r.misuse_warnings().iter().map(|w| w.to_string()).collect();
            assert_eq!(
                warnings.len(),
                1,
                "case {case}: once per run: {warnings:#?}"
            );
            assert!(warnings[0].contains(want), "case {case}: {warnings:#?}");
            assert!(
                warnings[0].contains("the report is dropped"),
                "{warnings:#?}"
            );
        }
        let r = misfit_recorder();
        let event = Misfit(5);
        r.record(Misfit::NAME, &|out| event.values(out));
        assert_eq!(r.buffered(), 1, "a fitting report is kept");
        // An unregistered event: dropped, not counted, warned about once.
        r.record(SizeEvent::NAME, &|out| {
            SizeEvent {
                size: 1,
                flag: true,
            }
            .values(out)
        });
        r.record(SizeEvent::NAME, &|out| {
            SizeEvent {
                size: 1,
                flag: true,
            }
            .values(out)
        });
        assert_eq!(r.buffered(), 1);
        let unknown: Vec<_> = r
            .misuse_warnings()
            .into_iter()
            .filter(|w| w.message.contains("`sized` is not registered"))
            .collect();
        assert_eq!(unknown.len(), 1, "{unknown:?}");
        assert!(unknown[0].message.contains(".event::<"), "{}", unknown[0]);
    }

    fn ledger(root: &Path) -> Ledger {
        serde_json::from_slice(&std::fs::read(root.join("ledger.json")).unwrap()).unwrap()
    }

    fn payload(path: &Path) -> telemetry_schema::Envelope {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// Issue #17: a memoised answer already charged today costs nothing more, in this run or
    /// a later one; a new value is charged its field's ε; the payload states the worst case
    /// of its reports, whatever was charged (that depends on the values, and stays local).
    #[test]
    fn the_ledger_charges_each_distinct_answer_once_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let run = |sizes: &[i64]| {
            let r = live_recorder(root);
            for &size in sizes {
                let event = SizeEvent { size, flag: true };
                r.record(SizeEvent::NAME, &|out| event.values(out));
            }
            r.flush().unwrap()
        };
        let first = run(&[3, 3, 3]).expect("a payload");
        assert_eq!(ledger(root).epsilon_spent, 2.0);
        assert_eq!(ledger(root).charged.len(), 2);
        let p = payload(&first);
        assert_eq!(p.events.len(), 1);
        assert_eq!(p.privacy.ledger.epsilon_spent, 2.0);
        let before = std::fs::read(root.join("ledger.json")).unwrap();
        for _ in 0..50 {
            let again = run(&[3]).expect("a payload");
            assert_eq!(payload(&again).privacy.ledger.epsilon_spent, 2.0);
        }
        assert_eq!(
            std::fs::read(root.join("ledger.json")).unwrap(),
            before,
            "a repeat rewrote the ledger"
        );
        // A new size is charged (1.0); `flag = true` was charged already.
        run(&[4]).expect("a payload");
        assert_eq!(ledger(root).epsilon_spent, 3.0);
        assert_eq!(ledger(root).charged.len(), 3);
    }

    /// A ledger holding `MAX_LEDGER_KEYS` keys (duplicates in it count once) keeps no more:
    /// a new answer is then charged every time, which errs on the safe side.
    #[test]
    fn a_full_ledger_charges_new_answers_every_time() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let run = |size: i64| {
            let r = live_recorder(root);
            let event = SizeEvent { size, flag: true };
            r.record(SizeEvent::NAME, &|out| event.values(out));
            r.flush().unwrap().expect("a payload")
        };
        run(1);
        let today = ledger(root).day;
        let mut charged: Vec<u64> = (1..MAX_LEDGER_KEYS as u64).collect();
        charged.push(1); // a duplicate: still MAX_LEDGER_KEYS - 1 distinct keys
        let full = |charged: &[u64]| {
            let text = serde_json::json!({"day": today, "epsilon_spent": 0.0, "charged": charged});
            std::fs::write(root.join("ledger.json"), text.to_string()).unwrap();
        };
        full(&charged);
        // Two new answers (size 2, flag): one more key fits, the other is charged untracked.
        run(2);
        let after = ledger(root);
        assert_eq!(after.epsilon_spent, 2.0);
        assert_eq!(after.charged.len(), charged.len() + 1);
        run(2);
        let again = ledger(root);
        assert!(
            again.epsilon_spent > 2.0,
            "the untracked answer was not charged again"
        );
        assert_eq!(
            again.charged.len(),
            after.charged.len(),
            "a full ledger grew"
        );
    }

    /// When the budget is spent, new answers are dropped whole, repeats still go out, and a
    /// run whose every report is dropped writes no payload at all.
    #[test]
    fn a_spent_budget_drops_new_answers_and_writes_no_empty_payload() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let limits = Limits {
            daily_epsilon_cap: 4.0,
            ..Limits::default()
        };
        let live = || {
            Recorder::new(
                Mode::Live,
                [7; 32],
                &[EventInfo::of::<SizeEvent>()],
                ("acme".into(), "1.0.0".into()),
                root.join("uploads-pending"),
                root.join("ledger.json"),
                limits,
            )
            .unwrap()
        };
        let r = live();
        for size in [1, 2, 3] {
            let event = SizeEvent { size, flag: true };
            r.record(SizeEvent::NAME, &|out| event.values(out));
        }
        let path = r.flush().unwrap().expect("a payload");
        let p = payload(&path);
        // size 1 + flag (2.0), size 2 (1.0), size 3 (1.0): 4.0 exactly.
        assert_eq!(p.events.len(), 3);
        assert_eq!(p.privacy.ledger.dropped_reports, 0);
        let r = live();
        for size in [5, 6] {
            let event = SizeEvent { size, flag: true };
            r.record(SizeEvent::NAME, &|out| event.values(out));
        }
        assert_eq!(r.flush().unwrap(), None, "only dropped reports: no payload");
        assert_eq!(json_files(&root.join("uploads-pending")), 1);
        let r = live();
        for size in [2, 7] {
            let event = SizeEvent { size, flag: true };
            r.record(SizeEvent::NAME, &|out| event.values(out));
        }
        let p = payload(&r.flush().unwrap().expect("the repeat goes out"));
        assert_eq!(p.events.len(), 1);
        assert_eq!(p.privacy.ledger.dropped_reports, 1);
        assert_eq!(ledger(root).epsilon_spent, 4.0);
    }
}
