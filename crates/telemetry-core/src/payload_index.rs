//! `show`'s index of the payloads it decoded: `.index` in `uploads-pending/` and `previews/`.
//!
//! `telemetry show` lists every stored payload with its day, format version and number of
//! events, and says whether it is readable. Re-reading and decoding every file to say so costs
//! ≈ 15 µs per 2.6 KB payload (more in a fresh process), which made `show` the slowest read
//! command and grew with the store (up to `telemetry.max_pending_files`, 500 by default). So
//! `show` notes what it decoded here, with the file's identity (device, inode, size,
//! modification and change time), and the next `show` decodes only the files it has not seen.
//!
//! The recorder does not write it. It used to note each payload it wrote, but replacing a
//! file by a rename makes ext4 write the new file's data out at once (`auto_da_alloc`): that
//! rename was 0.4–1 ms of every enabled run of the host, the largest single cost of a run
//! (`docs/benchmarks.md`). A host run writes its payload; the first `show` after it pays one
//! decode.
//!
//! The index is a cache, never a source of truth:
//!
//! - a summary is used only for a file whose identity is unchanged since it was noted. Any
//!   write, rename, `chmod` or link changes the change time, which no user can set, so an
//!   edited file is read and decoded again. File times are coarse (a clock tick), so, as git
//!   does for its index, a file changed in the same tick as the index was written is not
//!   trusted either: only files changed strictly before the index are;
//! - only for a format version this build writes: anything else is decoded by the schema crate;
//! - an index that is missing, unreadable, too large, a symlink, of another format or not
//!   JSON is ignored as a whole (and replaced by the next `show`); a failure to write it never
//!   fails `show`;
//! - `verify-payload` and the uploader never consult it: they read and validate the bytes.
//!
//! It holds nothing a payload does not (day, version, a count) plus the file identity, lives
//! in the same private directory with mode 0600, is written atomically (temporary file,
//! rename), and is removed by `disable` and `purge` like every other file there. Its name does
//! not end in `.json`, so it is never taken for a payload. Two `show`s at once each write a
//! whole index; either is sound, since every entry is checked against its file.

use std::collections::{HashMap, HashSet};
use std::fs::Metadata;
use std::io::{self, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};
use telemetry_schema::{Day, EnvelopeSchemaRef, Version};

/// The index's file name inside `uploads-pending/` and `previews/`.
pub(crate) const INDEX_FILE: &str = ".index";

/// The index format this build reads and writes; an index of any other format is ignored.
const FORMAT: u32 = 1;

/// An index larger than this is ignored unread (500 payloads take ≈ 120 KB).
const MAX_INDEX_BYTES: u64 = 4 << 20;

/// What `show` prints about a payload besides its name, size and sendability.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    /// The day the payload covers.
    pub(crate) day: Day,
    /// The format version it declares.
    pub(crate) schema_version: Version,
    /// Its number of events.
    pub(crate) events: usize,
}

/// What identifies one version of a file: a rewrite, rename, `chmod` or new link changes the
/// change time (`ctime`), which only the kernel sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileIdentity {
    #[cfg(unix)]
    fn of(meta: &Metadata) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        Some(Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }

    /// Off Unix there is no change time that only the system sets, so no identity: the
    /// index is never trusted there (and never written: the store writes nothing).
    #[cfg(not(unix))]
    fn of(_meta: &Metadata) -> Option<Self> {
        None
    }
}

#[derive(Clone, Debug)]
struct Entry {
    file: String,
    identity: FileIdentity,
    summary: Summary,
}

/// An entry as stored: the same fields as [`Entry`], the summary's strings unchecked until
/// [`read_entries`] checks each one.
#[derive(Serialize, Deserialize)]
struct StoredEntry {
    file: String,
    identity: FileIdentity,
    summary: StoredSummary,
}

/// [`Summary`] as stored, unchecked: serialises to the same JSON.
#[derive(Serialize, Deserialize)]
struct StoredSummary {
    day: String,
    schema_version: String,
    events: usize,
}

#[derive(Serialize, Deserialize)]
struct IndexFile<E> {
    format: u32,
    entries: Vec<E>,
}

/// The index of one directory, as read by [`load`].
#[derive(Debug, Default)]
pub(crate) struct PayloadIndex {
    entries: HashMap<String, Entry>,
    /// When the index was written (its modification time).
    written: (i64, i64),
    /// Whether [`PayloadIndex::note`] added an entry since it was read.
    changed: bool,
}

impl PayloadIndex {
    /// The recorder's summary of payload file `name`, if `meta` (its metadata now, not
    /// following symlinks) shows it unchanged since it was written, and it declares the
    /// format version this build writes.
    pub(crate) fn summary(&self, name: &str, meta: &Metadata) -> Option<&Summary> {
        let entry = self.entries.get(name)?;
        let current = EnvelopeSchemaRef::current();
        let identity = FileIdentity::of(meta)?;
        (meta.file_type().is_file()
            && entry.identity == identity
            && identity.ctime < self.written
            && entry.summary.schema_version == current.version)
            .then_some(&entry.summary)
    }
}

/// Reads the index of `dir`; empty when it is missing or anything about it is off.
pub(crate) fn load(dir: &Path) -> PayloadIndex {
    let Some((entries, meta)) = read_entries(dir) else {
        return PayloadIndex::default();
    };
    PayloadIndex {
        entries: entries.into_iter().map(|e| (e.file.clone(), e)).collect(),
        written: FileIdentity::of(&meta).map_or((0, 0), |identity| identity.mtime),
        changed: false,
    }
}

/// The entries of the index of `dir`, each checked on its own: one that does not decode (an
/// impossible day, an unknown version) is left out, and only its file is read again by `show`.
fn read_entries(dir: &Path) -> Option<(Vec<Entry>, Metadata)> {
    let (stored, meta) = read_index::<StoredEntry>(dir)?;
    let entries = stored
        .into_iter()
        .filter_map(|e| {
            Some(Entry {
                file: e.file,
                identity: e.identity,
                summary: Summary {
                    day: Day::try_from(e.summary.day).ok()?,
                    schema_version: Version::new(&e.summary.schema_version).ok()?,
                    events: e.summary.events,
                },
            })
        })
        .collect();
    Some((entries, meta))
}

fn read_index<E: serde::de::DeserializeOwned>(dir: &Path) -> Option<(Vec<E>, Metadata)> {
    // A symlink planted as the index is not followed, nor does a named pipe hang.
    let file = crate::store::open_regular(&dir.join(INDEX_FILE)).ok()??;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_INDEX_BYTES {
        return None;
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_INDEX_BYTES + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    if bytes.len() as u64 > MAX_INDEX_BYTES {
        return None;
    }
    let index: IndexFile<E> = serde_json::from_slice(&bytes).ok()?;
    (index.format == FORMAT).then_some((index.entries, meta))
}

impl PayloadIndex {
    /// Notes what `show` just decoded from payload file `name`, whose metadata before it was
    /// read is `meta`: used by the next `show` if the file is still that version of it. Only
    /// summaries of the format version this build writes are noted (no other is ever used).
    pub(crate) fn note(&mut self, name: &str, meta: &Metadata, summary: Summary) {
        let Some(identity) = FileIdentity::of(meta) else {
            return;
        };
        if !meta.file_type().is_file()
            || summary.schema_version != EnvelopeSchemaRef::current().version
        {
            return;
        }
        let entry = Entry {
            file: name.to_owned(),
            identity,
            summary,
        };
        self.entries.insert(name.to_owned(), entry);
        self.changed = true;
    }

    /// Writes the index back to `dir` if [`note`](Self::note) added to it or a file it
    /// names is no longer among `present` (sent, pruned, removed): then it is dropped. A
    /// cache: the caller ignores an error, which only costs the next `show` a re-read.
    pub(crate) fn save(mut self, dir: &Path, present: &HashSet<&str>) -> io::Result<()> {
        let before = self.entries.len();
        self.entries
            .retain(|name, _| present.contains(name.as_str()));
        if !self.changed && self.entries.len() == before {
            return Ok(());
        }
        let mut entries: Vec<StoredEntry> = self
            .entries
            .into_values()
            .map(|e| StoredEntry {
                file: e.file,
                identity: e.identity,
                summary: StoredSummary {
                    day: e.summary.day.to_string(),
                    schema_version: e.summary.schema_version.to_string(),
                    events: e.summary.events,
                },
            })
            .collect();
        entries.sort_unstable_by(|a, b| a.file.cmp(&b.file));
        let bytes = serde_json::to_vec(&IndexFile {
            format: FORMAT,
            entries,
        })
        .map_err(io::Error::other)?;
        // No fsync: after a crash the index is at worst missing or stale, and then not used.
        crate::store::write_replacing(dir, INDEX_FILE, &bytes, 0o600)
    }
}

// Real payloads in the Unix store, their modes and change times.
#[cfg(all(test, unix))]
mod tests {
    use std::fs::Permissions;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::event::{Event, FieldDecl, Value};
    use crate::{Env, Telemetry};

    struct Ran {
        flag: bool,
    }

    impl Event for Ran {
        const NAME: &'static str = "ran";
        const DESCRIPTION: &'static str = "It ran.";
        const FIELDS: &'static [FieldDecl] = &[FieldDecl::boolean("flag", "A flag.", 1.0)];
        fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
            out(Value::Bool(self.flag));
        }
    }

    fn builder(home: &Path) -> crate::Builder {
        Telemetry::builder("acme")
            .env(Env::from_pairs([("HOME", home.as_os_str())]))
            .event::<Ran>()
            .print_warnings(false)
    }

    /// Consent, then one payload per element of `events` (that many `Ran` events each).
    fn payloads(home: &Path, events: &[usize]) -> (PathBuf, Vec<String>) {
        // An inspector: a recording handle would write a payload of its own when dropped.
        builder(home).build_inspector().enable().expect("enable");
        let mut names = Vec::new();
        for &n in events {
            let t = builder(home).build();
            for _ in 0..n {
                t.record(&Ran { flag: true });
            }
            let path = t.flush().expect("flush").expect("a payload");
            names.push(path.file_name().unwrap().to_str().unwrap().to_owned());
        }
        (home.join(".config/acme/uploads-pending"), names)
    }

    /// `(file, events)` as `show` lists them.
    fn listed(home: &Path) -> Vec<(String, Option<usize>)> {
        builder(home)
            .build_inspector()
            .payloads()
            .into_iter()
            .map(|p| (format!("{}.json", p.run_id), p.events))
            .collect()
    }

    /// `(file, events)` decoded from the bytes.
    fn decoded(dir: &Path, names: &[String]) -> Vec<(String, Option<usize>)> {
        names
            .iter()
            .map(|name| {
                let bytes = std::fs::read(dir.join(name)).unwrap();
                let p = telemetry_schema::decode_payload(&bytes).expect("a valid payload");
                (name.clone(), Some(p.envelope.events.len()))
            })
            .collect()
    }

    /// Rewrites the index, after a clock tick, with `events` as the summary of `file`.
    fn doctor(dir: &Path, file: &str, version: &str, events: usize) {
        std::thread::sleep(Duration::from_millis(20));
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let real = telemetry_schema::decode_payload(&bytes).unwrap();
        let mut index = load(dir);
        let meta = std::fs::symlink_metadata(dir.join(file)).unwrap();
        let entry = Entry {
            file: file.to_owned(),
            identity: FileIdentity::of(&meta).unwrap(),
            summary: Summary {
                day: real.envelope.period.day,
                schema_version: Version::new(version).unwrap(),
                events,
            },
        };
        index.entries.insert(file.to_owned(), entry);
        index.changed = true;
        let present: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".json"))
            .collect();
        index
            .save(dir, &present.iter().map(String::as_str).collect())
            .expect("index written");
    }

    /// The files the index names.
    fn indexed(dir: &Path) -> Vec<String> {
        let (entries, _) = read_entries(dir).expect("a readable index");
        let mut names: Vec<_> = entries.into_iter().map(|e| e.file).collect();
        names.sort();
        names
    }

    #[test]
    fn the_recorder_writes_no_index() {
        let home = tempfile::tempdir().unwrap();
        let (dir, _) = payloads(home.path(), &[1, 2]);
        assert!(!dir.join(INDEX_FILE).exists());
    }

    #[test]
    fn show_indexes_what_it_decoded_and_agrees_with_the_bytes() {
        let home = tempfile::tempdir().unwrap();
        let (dir, names) = payloads(home.path(), &[1, 2, 3]);
        assert_eq!(listed(home.path()), decoded(&dir, &names));
        let meta = std::fs::symlink_metadata(dir.join(INDEX_FILE)).expect("an index");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(indexed(&dir), names);
        std::thread::sleep(Duration::from_millis(20));
        // From the index this time, and the same; never taken for a payload.
        assert_eq!(listed(home.path()), decoded(&dir, &names));
        let index = load(&dir);
        for name in &names {
            let meta = std::fs::symlink_metadata(dir.join(name)).unwrap();
            assert!(index.summary(name, &meta).is_some(), "{name} not used");
        }
        // Nothing new: the index is not rewritten.
        let written = std::fs::symlink_metadata(dir.join(INDEX_FILE)).unwrap();
        assert_eq!(listed(home.path()).len(), 3);
        let again = std::fs::symlink_metadata(dir.join(INDEX_FILE)).unwrap();
        assert_eq!(written.ino(), again.ino(), "rewritten with nothing new");

        // A new payload is decoded once and added.
        let (_, more) = payloads(home.path(), &[4]);
        let all: Vec<String> = names.iter().chain(&more).cloned().collect();
        assert_eq!(listed(home.path()), decoded(&dir, &all));
        assert_eq!(indexed(&dir), all);
    }

    #[test]
    fn an_unchanged_file_is_summarised_from_the_index_and_a_changed_one_is_read_again() {
        let home = tempfile::tempdir().unwrap();
        let (dir, names) = payloads(home.path(), &[1, 2]);
        let truth = decoded(&dir, &names);
        // A summary that differs from the bytes shows which one `show` used.
        let current = EnvelopeSchemaRef::current().version;
        doctor(&dir, &names[0], current.as_str(), 99);
        let mut expected = truth.clone();
        expected[0].1 = Some(99);
        assert_eq!(listed(home.path()), expected, "the index was not used");

        // Same bytes, rewritten: the change time moves, so the file is read again.
        let bytes = std::fs::read(dir.join(&names[0])).unwrap();
        std::fs::write(dir.join(&names[0]), &bytes).unwrap();
        assert_eq!(listed(home.path()), truth);

        // A chmod, too.
        doctor(&dir, &names[1], current.as_str(), 99);
        assert_eq!(listed(home.path())[1].1, Some(99));
        std::fs::set_permissions(dir.join(&names[1]), Permissions::from_mode(0o400)).unwrap();
        assert_eq!(listed(home.path()), truth);
    }

    #[test]
    fn a_file_changed_in_the_tick_the_index_was_written_is_read_again() {
        let home = tempfile::tempdir().unwrap();
        let (dir, names) = payloads(home.path(), &[1]);
        let current = EnvelopeSchemaRef::current().version;
        doctor(&dir, &names[0], current.as_str(), 99);
        let index = load(&dir);
        let meta = std::fs::symlink_metadata(dir.join(&names[0])).unwrap();
        assert!(index.summary(&names[0], &meta).is_some());
        let racy = PayloadIndex {
            written: (meta.ctime(), meta.ctime_nsec()),
            ..index
        };
        assert_eq!(racy.summary(&names[0], &meta), None);
    }

    #[test]
    fn only_summaries_of_the_version_this_build_writes_are_used() {
        let home = tempfile::tempdir().unwrap();
        let (dir, names) = payloads(home.path(), &[2]);
        doctor(&dir, &names[0], "1.0.0", 99);
        assert_eq!(listed(home.path()), decoded(&dir, &names));
    }

    #[test]
    fn a_bad_index_is_ignored_as_a_whole() {
        let home = tempfile::tempdir().unwrap();
        let (dir, names) = payloads(home.path(), &[1, 2]);
        let truth = decoded(&dir, &names);
        let current = EnvelopeSchemaRef::current().version;
        doctor(&dir, &names[0], current.as_str(), 99);
        let doctored = std::fs::read(dir.join(INDEX_FILE)).unwrap();
        let index = dir.join(INDEX_FILE);
        let text = String::from_utf8(doctored.clone()).unwrap();

        type Spoil<'a> = Box<dyn Fn() + 'a>;
        let cases: Vec<(&str, Spoil<'_>)> = vec![
            (
                "garbage",
                Box::new(|| std::fs::write(&index, b"\x00{not json").unwrap()),
            ),
            ("empty", Box::new(|| std::fs::write(&index, b"").unwrap())),
            (
                "another format",
                Box::new(|| {
                    std::fs::write(&index, text.replacen("\"format\":1", "\"format\":2", 1))
                        .unwrap()
                }),
            ),
            (
                "a malformed day",
                Box::new(|| {
                    let day = telemetry_schema::decode_payload(
                        &std::fs::read(dir.join(&names[0])).unwrap(),
                    )
                    .unwrap()
                    .envelope
                    .period
                    .day
                    .to_string();
                    std::fs::write(&index, text.replace(&day, "2026-13-45\u{1b}[2J")).unwrap()
                }),
            ),
            (
                "too large",
                Box::new(|| {
                    let mut big = doctored.clone();
                    big.resize(MAX_INDEX_BYTES as usize + 1, b' ');
                    std::fs::write(&index, big).unwrap()
                }),
            ),
            (
                "a symlink to a doctored index",
                Box::new(|| {
                    let elsewhere = home.path().join("elsewhere");
                    std::fs::write(&elsewhere, &doctored).unwrap();
                    std::fs::remove_file(&index).unwrap();
                    std::os::unix::fs::symlink(&elsewhere, &index).unwrap();
                }),
            ),
            (
                "a directory",
                Box::new(|| {
                    std::fs::remove_file(&index).unwrap();
                    std::fs::create_dir(&index).unwrap();
                }),
            ),
        ];
        for (what, spoil) in cases {
            let _ = std::fs::remove_file(&index);
            let _ = std::fs::remove_dir(&index);
            std::fs::write(&index, &doctored).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(listed(home.path())[0].1, Some(99), "{what}: set-up");
            spoil();
            assert_eq!(listed(home.path()), truth, "{what}: the index was used");
        }
    }

    /// An entry that does not decode (here an impossible day) costs `show` a re-read of its
    /// own file only: the other entries are still used.
    #[test]
    fn one_entry_that_does_not_decode_leaves_the_others_in_use() {
        let home = tempfile::tempdir().unwrap();
        let (dir, names) = payloads(home.path(), &[1, 2]);
        listed(home.path());
        let current = EnvelopeSchemaRef::current().version;
        doctor(&dir, &names[1], current.as_str(), 99);
        let index = dir.join(INDEX_FILE);
        let text = std::fs::read_to_string(&index).unwrap();
        let entry = text.find(names[0].as_str()).unwrap();
        let day = entry + text[entry..].find("\"day\":\"").unwrap() + "\"day\":\"".len();
        let mut spoiled = text.clone();
        spoiled.replace_range(day..day + "2026-13-45".len(), "2026-13-45");
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&index, spoiled).unwrap();
        let (entries, _) = read_entries(&dir).expect("a readable index");
        assert_eq!(entries.len(), 1, "the spoiled entry is left out");
        let shown = listed(home.path());
        let events = |name: &str| shown.iter().find(|(n, _)| n == name).and_then(|(_, e)| *e);
        assert_eq!(
            events(&names[1]),
            Some(99),
            "the sound entry is used: {shown:?}"
        );
        assert_eq!(
            events(&names[0]),
            decoded(&dir, &names[..1])[0].1,
            "{shown:?}"
        );
    }

    #[test]
    fn gone_files_leave_the_index_at_the_next_show() {
        let home = tempfile::tempdir().unwrap();
        let (dir, names) = payloads(home.path(), &[1, 1]);
        listed(home.path());
        std::fs::remove_file(dir.join(&names[0])).unwrap();
        let (_, more) = payloads(home.path(), &[1]);
        listed(home.path());
        assert_eq!(indexed(&dir), [names[1].clone(), more[0].clone()]);
    }

    #[test]
    fn a_payload_of_another_version_is_not_noted() {
        let home = tempfile::tempdir().unwrap();
        let (dir, names) = payloads(home.path(), &[1, 1]);
        let mut index = load(&dir);
        let meta = std::fs::symlink_metadata(dir.join(&names[0])).unwrap();
        let bytes = std::fs::read(dir.join(&names[0])).unwrap();
        let day = telemetry_schema::decode_payload(&bytes)
            .unwrap()
            .envelope
            .period
            .day;
        let older = Summary {
            day,
            schema_version: Version::new("1.0.0").unwrap(),
            events: 1,
        };
        index.note(&names[0], &meta, older);
        assert!(!index.changed, "a summary never used was noted");
        assert!(index.entries.is_empty());
    }
}
