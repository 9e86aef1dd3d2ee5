//! What a user can see of the payloads kept on this machine, and how they remove them.
//!
//! `telemetry show`, `verify-payload`, `aggregate` and `purge` are computed here; the CLI only
//! formats. Nothing here creates a file, and nothing touches the network: "sendable" is a
//! statement about policy, not an attempt.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use telemetry_schema::{
    Envelope, MAX_PAYLOAD_BYTES, RunId, ValidatedPayload, ValidationError, decode_payload,
};

use crate::decision::Stage;
use crate::paths::Paths;
use crate::payload_index::{self, PayloadIndex, Summary};
use crate::store;
use crate::telemetry::Telemetry;

/// Where a payload file lives, which decides whether it may ever be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadKind {
    /// `uploads-pending/`: written by a consented run, sent by an uploader if policy allows.
    Pending,
    /// `previews/`: rendered in preview mode, never sent.
    Preview,
    /// Any other file (e.g. one copied from another machine): inspected, never sent.
    External,
}

/// Whether a payload may be sent now, and why (not).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sendability {
    /// May an uploader send it under the current policy?
    pub sendable: bool,
    /// One sentence, e.g. `DO_NOT_TRACK=1 is set: this payload cannot be sent`.
    pub reason: String,
}

/// One stored payload, as `telemetry show` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct PayloadSummary {
    /// The run id (the file name without `.json`).
    pub run_id: String,
    /// Pending or preview.
    pub kind: PayloadKind,
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The day it covers (`YYYY-MM-DD`), when it validates.
    pub day: Option<String>,
    /// The format version it declares, when it validates.
    pub schema_version: Option<String>,
    /// Number of events, when it validates.
    pub events: Option<usize>,
    /// Whether it decodes as a consistent envelope of a known version (everything but the
    /// JSON-Schema check, which `verify_payload` adds: compiling the schema would cost
    /// `show` more than the rest of the process).
    pub readable: bool,
    /// Why it could not be read or decoded.
    pub problem: Option<String>,
    /// Whether it may be sent now.
    pub sendable: bool,
    /// Why (not).
    pub sendable_reason: String,
}

/// How `verify-payload` and `aggregate` checked a payload's bytes: with the feature `validate`
/// (telemetry-cli's default), against the JSON Schema too; without it (a host that mounts the
/// subcommand leaner), by the typed decoder alone.
///
/// Both refuse the same documents: `telemetry-schema`'s tests check that
/// [`decode_payload`] accepts exactly what `validate_payload` accepts on every fixture and on
/// over 2,000 mutations of them. The JSON Schema remains the reference, which the standalone
/// `telemetry` binary and the collector apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadCheck {
    /// The JSON Schema of the declared version, then the typed decoder and consistency.
    SchemaAndTypes,
    /// The typed decoder and consistency (bounds, formats, labels, versions), not the schema.
    TypesOnly,
}

impl PayloadCheck {
    /// The check this build makes.
    pub const IN_THIS_BUILD: Self = if cfg!(feature = "validate") {
        Self::SchemaAndTypes
    } else {
        Self::TypesOnly
    };
}

/// Checks `bytes` as [`PayloadCheck::IN_THIS_BUILD`] says.
fn check_in_this_build(bytes: &[u8]) -> Result<ValidatedPayload, ValidationError> {
    #[cfg(feature = "validate")]
    return telemetry_schema::validate_payload(bytes);
    #[cfg(not(feature = "validate"))]
    return decode_payload(bytes);
}

/// Everything `verify-payload` shows about one payload file ([`Telemetry::verify_payload`]).
#[derive(Debug)]
pub struct Verification {
    /// The file.
    pub path: PathBuf,
    /// Pending, preview or external.
    pub kind: PayloadKind,
    /// The exact bytes: what an uploader would send.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`, lower-case hex.
    pub sha256: String,
    /// The validated envelope, or why the file is not a valid payload.
    pub validation: Result<ValidatedPayload, ValidationError>,
    /// How `validation` was reached.
    pub check: PayloadCheck,
    /// Whether it may be sent now, and why (not).
    pub sendability: Sendability,
}

/// Why a payload could not be found or read.
#[derive(Debug)]
pub enum VerifyError {
    /// No stored payload has this run id (and no file has this path).
    NotFound {
        /// What the user asked for.
        target: String,
        /// The run ids that do exist (pending first, then previews).
        known: Vec<String>,
    },
    /// The file exists but cannot be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// The file is larger than any valid payload; it was not read.
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyError::NotFound { target, known } => {
                write!(f, "no payload with run id or path {target:?}")?;
                if known.is_empty() {
                    write!(f, "; there are no stored payloads")
                } else {
                    write!(f, "; stored run ids: {}", known.join(", "))
                }
            }
            VerifyError::Read { path, error } => write!(f, "{}: {error}", path.display()),
            VerifyError::TooLarge { path, size } => write!(
                f,
                "{}: {size} bytes, larger than any payload may be ({MAX_PAYLOAD_BYTES} bytes); not read",
                path.display()
            ),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads a payload-sized file: refuses non-regular files and anything larger than
/// [`MAX_PAYLOAD_BYTES`] without reading it.
pub fn read_payload_file(path: &Path) -> Result<Vec<u8>, VerifyError> {
    let read_err = |error| VerifyError::Read {
        path: path.to_owned(),
        error,
    };
    // Never blocks on a named pipe, never follows a symlink (store::open_regular).
    let file = store::open_regular(path)
        .map_err(|refusal| read_err(refusal.into_io_error()))?
        .ok_or_else(|| read_err(store::not_found()))?;
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(read_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    let limit = MAX_PAYLOAD_BYTES as u64;
    if meta.len() > limit {
        return Err(VerifyError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > limit {
        return Err(VerifyError::TooLarge {
            path: path.to_owned(),
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// The `*.json` regular files of `dir` (symlinks skipped), sorted by name: run ids are
/// UUIDv7, so this is oldest first.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    // Never listed through a symlink where the directory should be.
    let Ok(entries) = store::list_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .into_iter()
        .filter(store::DirItem::is_regular_file)
        .map(|e| dir.join(e.name))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    // One directory: comparing names is enough, and cheaper than whole paths.
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    files
}

/// Where stored payloads live, in the order they are listed: pending first, then previews.
fn stored_dirs(paths: &Paths) -> [(PathBuf, PayloadKind); 2] {
    [
        (paths.pending_dir(), PayloadKind::Pending),
        (paths.previews_dir(), PayloadKind::Preview),
    ]
}

/// The run id a payload file is named after (its name without `.json`).
pub fn run_id_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Telemetry {
    /// Whether a payload of `kind` that does (not) validate may be sent now, and why (not).
    /// Re-derived from this handle's decision: every hard override, the config and the
    /// consent token as they were when the handle was built.
    pub fn sendability(&self, kind: PayloadKind, valid: bool) -> Sendability {
        let no = |reason: String| Sendability {
            sendable: false,
            reason,
        };
        match kind {
            PayloadKind::Preview => return no("preview payloads are never sent".into()),
            PayloadKind::External => {
                return no(format!(
                    "this file is not in {}'s pending directory: only pending payloads are sent",
                    self.app_name()
                ));
            }
            PayloadKind::Pending => {}
        }
        if !valid {
            return no("it does not validate: an invalid payload is never sent".into());
        }
        let decision = self.decision();
        if !decision.enabled {
            return no(match decision.deciding_input() {
                Some(input) if input.stage == Stage::HardOverride => format!(
                    "{}={} is set: this payload cannot be sent",
                    input.name, input.value
                ),
                Some(input) => format!(
                    "telemetry is disabled by {}={} ({}): this payload cannot be sent",
                    input.name, input.value, input.source
                ),
                None => format!(
                    "telemetry is disabled: no consent was given (`{} telemetry enable`): this payload cannot be sent",
                    self.app_name()
                ),
            });
        }
        if !self.builder_settings().has_upload_support() {
            return no(
                "this build has no upload support: the payload stays on this machine".into(),
            );
        }
        Sendability {
            sendable: true,
            reason: "consent is given and no override is active: `telemetry upload` may send it"
                .into(),
        }
    }

    /// The run ids of every stored payload: pending first, then previews.
    pub fn stored_run_ids(&self) -> Vec<String> {
        self.stored_files()
            .iter()
            .map(|(path, _)| run_id_of(path))
            .collect()
    }

    fn stored_files(&self) -> Vec<(PathBuf, PayloadKind)> {
        let Some(paths) = self.paths() else {
            return Vec::new();
        };
        stored_dirs(paths)
            .into_iter()
            .flat_map(|(dir, kind)| json_files(&dir).into_iter().map(move |p| (p, kind)))
            .collect()
    }

    /// The pending payload files (`uploads-pending/*.json`), oldest first (run ids are UUIDv7,
    /// so their names sort by time). What an uploader works through; creates nothing.
    pub fn pending_files(&self) -> Vec<PathBuf> {
        self.paths()
            .map(|paths| json_files(&paths.pending_dir()))
            .unwrap_or_default()
    }

    /// Every pending and preview payload, with what `telemetry show` prints about it.
    ///
    /// A payload the recorder wrote and nobody changed since is summarised from the recorder's
    /// index (see `payload_index`); any other file is read and decoded.
    pub fn payloads(&self) -> Vec<PayloadSummary> {
        let Some(paths) = self.paths() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (dir, kind) in stored_dirs(paths) {
            let files = json_files(&dir);
            if files.is_empty() {
                continue;
            }
            let mut index = payload_index::load(&dir);
            let mut decoded = Vec::new();
            for path in &files {
                let (summary, fresh) = self.summarise(path, kind, &index);
                decoded.extend(fresh);
                out.push(summary);
            }
            for (name, meta, summary) in decoded {
                index.note(&name, &meta, summary);
            }
            let present: HashSet<&str> = files
                .iter()
                .filter_map(|p| p.file_name()?.to_str())
                .collect();
            // A cache: failing to write it costs the next `show` the same decodes again.
            let _ = index.save(&dir, &present);
        }
        out
    }

    /// What `show` prints about the payload at `path`, and, when it was decoded rather than
    /// taken from the index, what to note in the index: its name, metadata and summary.
    fn summarise(
        &self,
        path: &Path,
        kind: PayloadKind,
        index: &PayloadIndex,
    ) -> (PayloadSummary, Option<(String, std::fs::Metadata, Summary)>) {
        let run_id = run_id_of(path);
        // Before the read: if the file changes in between, its identity no longer matches
        // what is noted, and the note is never used.
        let meta = std::fs::symlink_metadata(path).ok();
        let name = path.file_name().and_then(|n| n.to_str());
        let indexed = meta
            .as_ref()
            .zip(name)
            .and_then(|(meta, name)| index.summary(name, meta));
        let mut fresh = None;
        let (size, checked) = match (indexed, &meta) {
            (Some(summary), Some(meta)) => (meta.len(), Ok(summary.clone())),
            _ => {
                let bytes = read_payload_file(path);
                let size = match &bytes {
                    Ok(bytes) => bytes.len() as u64,
                    Err(_) => meta.as_ref().map_or(0, std::fs::Metadata::len),
                };
                let checked = bytes
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| decode_payload(&bytes).map_err(|e| e.to_string()))
                    .map(|p| Summary {
                        day: p.envelope.period.day,
                        schema_version: p.version,
                        events: p.envelope.events.len(),
                    });
                if let (Ok(summary), Some(meta), Some(name)) = (&checked, &meta, name) {
                    fresh = Some((name.to_owned(), meta.clone(), summary.clone()));
                }
                (size, checked)
            }
        };
        let readable = checked.is_ok();
        let Sendability { sendable, reason } = self.sendability(kind, readable);
        let (day, schema_version, events, problem) = match checked {
            Ok(s) => (
                Some(s.day.to_string()),
                Some(s.schema_version.to_string()),
                Some(s.events),
                None,
            ),
            Err(problem) => (None, None, None, Some(problem)),
        };
        let summary = PayloadSummary {
            run_id,
            kind,
            path: path.to_owned(),
            size,
            day,
            schema_version,
            events,
            readable,
            problem,
            sendable,
            sendable_reason: reason,
        };
        (summary, fresh)
    }

    /// Finds a payload by run id (in `uploads-pending/`, then `previews/`) or by path, reads
    /// its exact bytes, validates them and says whether they may be sent.
    pub fn verify_payload(&self, target: &str) -> Result<Verification, VerifyError> {
        let (path, kind) = self.resolve_payload(target)?;
        let bytes = read_payload_file(&path)?;
        let validation = check_in_this_build(&bytes);
        let sendability = self.sendability(kind, validation.is_ok());
        Ok(Verification {
            sha256: sha256_hex(&bytes),
            path,
            kind,
            bytes,
            validation,
            check: PayloadCheck::IN_THIS_BUILD,
            sendability,
        })
    }

    fn resolve_payload(&self, target: &str) -> Result<(PathBuf, PayloadKind), VerifyError> {
        let stored = self.stored_files();
        if RunId::new(target).is_ok() {
            if let Some((path, kind)) = stored.iter().find(|(p, _)| run_id_of(p) == target) {
                return Ok((path.clone(), *kind));
            }
        } else {
            let path = PathBuf::from(target);
            if path.exists() {
                return Ok((path.clone(), self.kind_of(&path)));
            }
        }
        Err(VerifyError::NotFound {
            target: target.to_owned(),
            known: stored.iter().map(|(p, _)| run_id_of(p)).collect(),
        })
    }

    /// A path given by the user is pending or preview only if it really is in that
    /// directory (compared after resolving symlinks and `..`).
    fn kind_of(&self, path: &Path) -> PayloadKind {
        let Some(paths) = self.paths() else {
            return PayloadKind::External;
        };
        let parent = path
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_owned));
        let same = |dir: PathBuf| parent.is_some() && dir.canonicalize().ok() == parent;
        if same(paths.pending_dir()) {
            PayloadKind::Pending
        } else if same(paths.previews_dir()) {
            PayloadKind::Preview
        } else {
            PayloadKind::External
        }
    }

    /// What `purge` would remove, and what it would leave in place on purpose.
    pub fn purge_plan(&self) -> PurgePlan {
        let Some(paths) = self.paths() else {
            return PurgePlan::default();
        };
        let (remove, mut keep) = purge_targets(paths);
        let config = paths.config_file();
        if config.symlink_metadata().is_ok() && !config_is_telemetry_only(&config) {
            keep.push((
                config,
                "it holds settings other than telemetry's; remove its [telemetry] table by hand"
                    .into(),
            ));
        }
        PurgePlan { remove, keep }
    }

    /// Removes every file the toolkit created for this app: consent token, install secret,
    /// pending payloads, previews, ledger, notice marker, lock and temporary files, and the
    /// config file if it holds nothing but telemetry settings. Directories left empty are
    /// removed too. Turns telemetry off for the rest of this process first.
    pub fn purge(&self) -> PurgeOutcome {
        let plan = self.purge_plan();
        let mut outcome = self.remove_files(plan.remove);
        outcome.kept = plan.keep;
        outcome
    }

    /// Turns telemetry off for this process, removes `files`, then the toolkit's
    /// directories that are left empty.
    pub(crate) fn remove_files(&self, files: Vec<PathBuf>) -> PurgeOutcome {
        self.disable();
        let mut outcome = PurgeOutcome::default();
        let Some(paths) = self.paths() else {
            return outcome;
        };
        for path in files {
            match store::remove_if_exists(&path) {
                Ok(true) => outcome.removed.push(path),
                Ok(false) => {}
                Err(e) => outcome.failed.push((path, e.to_string())),
            }
        }
        for dir in [
            paths.secrets_dir(),
            paths.pending_dir(),
            paths.previews_dir(),
            paths.root().to_owned(),
        ] {
            // Only empty directories go: anything else in them is not the toolkit's.
            if std::fs::remove_dir(&dir).is_ok() {
                outcome.removed.push(dir);
            }
        }
        outcome
    }
}

/// What `purge` would do.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PurgePlan {
    /// Files to remove (directories left empty go too).
    pub remove: Vec<PathBuf>,
    /// Files left in place on purpose, with why.
    pub keep: Vec<(PathBuf, String)>,
}

/// What `purge` did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PurgeOutcome {
    /// Files and directories removed.
    pub removed: Vec<PathBuf>,
    /// Files and directories left in place on purpose, with why.
    pub kept: Vec<(PathBuf, String)>,
    /// Files that could not be removed, with the error.
    pub failed: Vec<(PathBuf, String)>,
}

/// Every file of the toolkit's for this app except the config file: what `disable`
/// removes, and what it leaves because the toolkit did not create it.
pub(crate) fn files_except_config(paths: &Paths) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let config = paths.config_file();
    let (mut files, kept) = purge_targets(paths);
    files.retain(|p| *p != config);
    (files, kept)
}

/// Why an entry where the toolkit keeps its files is left in place: the toolkit only ever
/// creates regular files and directories, so anything else was put there by someone else.
fn not_ours(file_type: store::FileType) -> Option<&'static str> {
    use store::FileType;
    match file_type {
        FileType::RegularFile | FileType::Directory => None,
        FileType::Symlink => Some(
            "a symbolic link the toolkit did not create; it was not followed. Remove it by hand",
        ),
        FileType::Fifo => Some("a named pipe the toolkit did not create. Remove it by hand"),
        _ => Some("a special file the toolkit did not create. Remove it by hand"),
    }
}

fn purge_targets(paths: &Paths) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut targets = Vec::new();
    let mut kept = Vec::new();
    // These directories are the toolkit's alone: every regular file in them goes, including
    // lock files and temporary files a killed process left behind.
    for dir in [
        paths.secrets_dir(),
        paths.pending_dir(),
        paths.previews_dir(),
    ] {
        if dir
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            // Never listed (or emptied) through: what it points to is not the toolkit's.
            kept.push((
                dir,
                not_ours(store::FileType::Symlink)
                    .unwrap_or_default()
                    .into(),
            ));
            continue;
        }
        if let Ok(entries) = store::list_dir(&dir) {
            let mut files: Vec<PathBuf> = Vec::new();
            for e in entries {
                if e.is_regular_file() {
                    files.push(dir.join(e.name));
                } else if let Some(why) = not_ours(e.file_type) {
                    kept.push((dir.join(e.name), why.to_owned()));
                }
            }
            files.sort();
            targets.extend(files);
        }
    }
    for path in [
        paths.ledger_file(),
        crate::recorder::ledger_lock_path(&paths.ledger_file()),
        paths.notice_marker(),
        paths.upload_state_file(),
    ] {
        if let Ok(m) = path.symlink_metadata() {
            match not_ours(store::FileType::from(m.file_type())) {
                None if m.is_file() => targets.push(path),
                None => {}
                Some(why) => kept.push((path, why.to_owned())),
            }
        }
    }
    // Temporary files of an atomic write that was killed (config, ledger).
    if let Ok(entries) = std::fs::read_dir(paths.root()) {
        let mut leftovers: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            .map(|e| e.path())
            .collect();
        leftovers.sort();
        targets.extend(leftovers);
    }
    let config = paths.config_file();
    if config_is_telemetry_only(&config) {
        targets.push(config);
    }
    kept.sort();
    (targets, kept)
}

/// True when `path` is a TOML file whose only top-level key is `telemetry` (what
/// `telemetry config set` writes); false when absent, unreadable or holding anything else.
fn config_is_telemetry_only(path: &Path) -> bool {
    let Ok(Some(bytes)) = store::read_bounded(path, 1024 * 1024) else {
        return false;
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return false;
    };
    match text.parse::<toml::Table>() {
        Ok(table) => table.keys().all(|k| k == "telemetry"),
        Err(_) => false,
    }
}

/// Payload files read for `aggregate`.
#[derive(Debug)]
pub struct PayloadSet {
    /// Valid payloads, with the file each came from.
    pub payloads: Vec<(PathBuf, Envelope)>,
    /// Files that were not valid payloads (or not readable), with why. Skipped, counted.
    pub skipped: Vec<(PathBuf, String)>,
    /// How each file was checked.
    pub check: PayloadCheck,
}

impl Default for PayloadSet {
    fn default() -> Self {
        Self {
            payloads: Vec::new(),
            skipped: Vec::new(),
            check: PayloadCheck::IN_THIS_BUILD,
        }
    }
}

/// How deep `read_payloads` descends into directories.
pub const MAX_WALK_DEPTH: usize = 16;

/// Reads payloads for aggregation: each input is a file (read whatever its name) or a
/// directory, searched for payload files (`<run id>.json`) up to [`MAX_WALK_DEPTH`] levels
/// deep without following symlinks. Every file read must validate; the others are skipped
/// with a reason.
pub fn read_payloads(inputs: &[PathBuf]) -> PayloadSet {
    let mut files = Vec::new();
    let mut set = PayloadSet::default();
    for input in inputs {
        match std::fs::metadata(input) {
            Ok(m) if m.is_dir() => walk(input, 0, &mut files, &mut set.skipped),
            Ok(_) => files.push(input.clone()),
            Err(e) => set.skipped.push((input.clone(), e.to_string())),
        }
    }
    for path in files {
        let checked = read_payload_file(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| check_in_this_build(&bytes).map_err(|e| e.to_string()));
        match checked {
            Ok(valid) => set.payloads.push((path, valid.envelope)),
            Err(why) => set.skipped.push((path, why)),
        }
    }
    set
}

/// What a special file found where payloads are searched is, and that it was not read.
fn special_file(kind: std::fs::FileType) -> &'static str {
    match store::FileType::from(kind) {
        store::FileType::Fifo => "is a named pipe, not a regular file; not read",
        store::FileType::Socket => "is a socket, not a regular file; not read",
        _ => "is a device, not a regular file; not read",
    }
}

/// `<run id>.json`: how payloads are named, in `uploads-pending/` and wherever they are
/// collected. Other files in a searched directory (`ledger.json`, notes) are not read.
fn is_payload_name(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "json")
        && path
            .file_stem()
            .and_then(|s| s.to_str())
            .is_some_and(|s| RunId::new(s).is_ok())
}

fn walk(dir: &Path, depth: usize, files: &mut Vec<PathBuf>, skipped: &mut Vec<(PathBuf, String)>) {
    if depth > MAX_WALK_DEPTH {
        skipped.push((
            dir.to_owned(),
            format!("deeper than {MAX_WALK_DEPTH} directory levels; not searched"),
        ));
        return;
    }
    let mut entries: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(Result::ok).collect(),
        Err(e) => {
            skipped.push((dir.to_owned(), e.to_string()));
            return;
        }
    };
    entries.sort_by_key(std::fs::DirEntry::path);
    for entry in entries {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            walk(&path, depth + 1, files, skipped);
        } else if kind.is_file() && is_payload_name(&path) {
            files.push(path);
        } else if !kind.is_symlink() && is_payload_name(&path) {
            // Named like a payload but a named pipe, socket or device: never opened, named.
            skipped.push((path, special_file(kind).into()));
        }
    }
}
