//! The secure local store: private directories, owner-only secrets, atomic writes.
//!
//! Every file the toolkit opens is opened here, one way: without following a symlink
//! (`O_NOFOLLOW`), without blocking (`O_NONBLOCK`: a named pipe or a device planted where a
//! file is expected must never hang the host), close-on-exec, and checked through the opened
//! descriptor (`fstat`), never through the path, so there is no gap between the check and the
//! use: [`open_regular`] (and [`read_bounded`] on top of it) for what is read, [`lock_file`]
//! for lock files, [`open_private_dir`] and [`open_app_dir`] for directories. Every write goes
//! to a temporary file in the same directory, is flushed to disk and then renamed over the
//! target, so a reader sees the old file or the new one, never a part.
//!
//! This module is the policy and the API; the system calls are in `store/unix.rs`. Off Unix
//! (`store/other.rs`) there is no owner-only permission check yet, so the store fails closed:
//! it reads what is not secret ([`open_regular`], [`read_bounded`], [`list_dir`]) and removes
//! files ([`remove_if_exists`]), but refuses to create, lock or write anything and to open
//! a private directory or secret that exists, with [`crate::platform::UNSUPPORTED_REASON`]
//! (see [`crate::platform`]).

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

// Plain `std`, so its fail-closed rules are unit-tested on Unix too.
#[cfg(any(not(unix), test))]
mod other;
#[cfg(unix)]
mod unix;

#[cfg(not(unix))]
use other as sys;
#[cfg(unix)]
use unix as sys;

/// The largest secret file the store reads (consent token, install secret).
pub const MAX_SECRET_BYTES: u64 = 4096;

/// Why a private file or directory was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// The path is a symbolic link.
    Symlink,
    /// Not a regular file (or, for a directory, not a directory).
    WrongType(&'static str),
    /// Owned by another user.
    NotOwned {
        /// The file's owner.
        owner: u32,
        /// The current (effective) user.
        current: u32,
    },
    /// A directory group or others may write to (the app directory's rule: readable is fine).
    WritableByOthers {
        /// The permission bits found.
        mode: u32,
    },
    /// Group or others have some permission.
    TooPermissive {
        /// The permission bits found.
        mode: u32,
        /// The mode required.
        required: u32,
    },
    /// Larger than the store reads.
    TooLarge {
        /// Size in bytes.
        size: u64,
        /// Limit in bytes.
        limit: u64,
    },
    /// The file could not be opened or read.
    Io(io::ErrorKind, String),
}

/// A private file or directory the store refused to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The refused path.
    pub path: PathBuf,
    /// Why.
    pub kind: RefusalKind,
}

impl Refusal {
    /// What is wrong, as the words that follow the path: `is a named pipe, not a regular
    /// file`, `is a symbolic link; refusing to follow it`, ... (for an I/O error, its message).
    pub fn reason(&self) -> String {
        let path = self.path.display();
        match &self.kind {
            RefusalKind::Symlink => "is a symbolic link; refusing to follow it".to_owned(),
            RefusalKind::WrongType(what) => format!("is {what}"),
            RefusalKind::NotOwned { owner, current } => {
                format!("is owned by uid {owner}, not by the current user (uid {current})")
            }
            RefusalKind::WritableByOthers { mode } => format!(
                "has mode {mode:04o}: group or others may write to it (fix: chmod go-w {path})"
            ),
            RefusalKind::TooPermissive { mode, required } => format!(
                "has mode {mode:04o}; it must be {required:04o} (fix: chmod {required:o} {path})"
            ),
            RefusalKind::TooLarge { size, limit } => {
                format!("is {size} bytes; the limit is {limit}")
            }
            RefusalKind::Io(_, message) => message.clone(),
        }
    }

    /// The refusal as an I/O error carrying [`Refusal::reason`] (for callers that report
    /// `path: error`).
    pub fn into_io_error(self) -> io::Error {
        let kind = match &self.kind {
            RefusalKind::Io(kind, _) => *kind,
            RefusalKind::TooLarge { .. } => io::ErrorKind::InvalidData,
            _ => io::ErrorKind::InvalidInput,
        };
        let message = match &self.kind {
            RefusalKind::Io(..) => self.reason(),
            _ => format!("it {}", self.reason()),
        };
        io::Error::new(kind, message)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.kind {
            RefusalKind::Io(_, message) => write!(f, "{path}: {message}"),
            _ => write!(f, "{path} {}", self.reason()),
        }
    }
}

impl std::error::Error for Refusal {}

/// The type of a file, not following symlinks: what the store checks before it uses a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    /// A regular file.
    RegularFile,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A named pipe (FIFO).
    Fifo,
    /// A Unix domain socket.
    Socket,
    /// A character device.
    CharacterDevice,
    /// A block device.
    BlockDevice,
    /// Anything else, or a type the platform does not tell.
    Unknown,
}

impl From<std::fs::FileType> for FileType {
    /// The type `std` reports (from `symlink_metadata` or a directory entry), with the Unix
    /// special files told apart where the platform has them.
    fn from(file_type: std::fs::FileType) -> Self {
        sys::file_type(file_type)
    }
}

/// What the store needs to know about an opened file to accept it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileFacts {
    /// Its type.
    pub file_type: FileType,
    /// Its owner.
    pub uid: u32,
    /// Its permission bits.
    pub mode: u32,
    /// Its size in bytes.
    pub size: u64,
}

/// The policy for private files and directories: owned by `current_uid`, of the expected
/// type, and no permission bit for group or others.
pub fn check_private(
    facts: FileFacts,
    want_dir: bool,
    current_uid: u32,
) -> Result<(), RefusalKind> {
    let expected = if want_dir {
        FileType::Directory
    } else {
        FileType::RegularFile
    };
    if facts.file_type == FileType::Symlink {
        return Err(RefusalKind::Symlink);
    }
    if facts.file_type != expected {
        return Err(RefusalKind::WrongType(describe_type(
            facts.file_type,
            want_dir,
        )));
    }
    if facts.uid != current_uid {
        return Err(RefusalKind::NotOwned {
            owner: facts.uid,
            current: current_uid,
        });
    }
    if facts.mode & 0o077 != 0 {
        return Err(RefusalKind::TooPermissive {
            mode: facts.mode & 0o7777,
            required: if want_dir { 0o700 } else { 0o600 },
        });
    }
    if !want_dir && facts.size > MAX_SECRET_BYTES {
        return Err(RefusalKind::TooLarge {
            size: facts.size,
            limit: MAX_SECRET_BYTES,
        });
    }
    Ok(())
}

/// The rule for the app directory (the root of every other path): a directory owned by
/// `current_uid` that neither group nor others may write to. Readable is fine (0755 is common
/// for `~/.config/<app>`; the toolkit creates it 0700): what matters is that nobody else can
/// plant, replace or remove a file in it (a symlinked lock, a reset ledger, a consent token).
pub fn check_app_dir(facts: FileFacts, current_uid: u32) -> Result<(), RefusalKind> {
    if facts.file_type != FileType::Directory {
        return Err(RefusalKind::WrongType(describe_type(facts.file_type, true)));
    }
    if facts.uid != current_uid {
        return Err(RefusalKind::NotOwned {
            owner: facts.uid,
            current: current_uid,
        });
    }
    if facts.mode & 0o022 != 0 {
        return Err(RefusalKind::WritableByOthers {
            mode: facts.mode & 0o7777,
        });
    }
    Ok(())
}

fn describe_type(file_type: FileType, want_dir: bool) -> &'static str {
    match file_type {
        FileType::Directory => "a directory, not a regular file",
        FileType::RegularFile if want_dir => "a regular file, not a directory",
        FileType::Fifo if want_dir => "a named pipe, not a directory",
        FileType::Socket if want_dir => "a socket, not a directory",
        FileType::CharacterDevice | FileType::BlockDevice if want_dir => {
            "a device, not a directory"
        }
        FileType::Fifo => "a named pipe, not a regular file",
        FileType::Socket => "a socket, not a regular file",
        FileType::CharacterDevice | FileType::BlockDevice => "a device, not a regular file",
        _ if want_dir => "not a directory",
        _ => "not a regular file",
    }
}

/// A directory opened and checked by [`open_app_dir`], [`open_private_dir`] or
/// [`ensure_private_dir`]; it stays open (and is the directory that was checked) for as long as
/// this lives. What the recorder locks, writes, lists and removes in the pending directory goes
/// through it: one path lookup and one check for all of them, and no second lookup that could
/// lead elsewhere.
#[derive(Debug)]
pub struct OpenDir {
    path: PathBuf,
    handle: sys::DirHandle,
}

impl OpenDir {
    fn new(path: &Path, handle: sys::DirHandle) -> Self {
        Self {
            path: path.to_owned(),
            handle,
        }
    }

    /// The path it was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// [`lock_file`] of `name` in this directory.
    pub(crate) fn lock(&self, name: &str) -> Result<File, Refusal> {
        sys::lock_at(&self.handle, name, &self.path.join(name))
    }

    /// [`write_replacing`] of `name` in this directory.
    pub(crate) fn write_replacing(&self, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
        sys::write_replacing_at(&self.handle, name, bytes, mode)
    }

    /// [`list_dir_sizing`] of this directory.
    pub(crate) fn list_sizing(
        &self,
        sized: &dyn Fn(&std::ffi::OsStr) -> bool,
    ) -> Result<Vec<(DirItem, Option<u64>)>, Refusal> {
        sys::list_sizing_at(&self.handle, &self.path, sized)
    }

    /// [`remove_stale_temp_files`] of this directory.
    pub(crate) fn remove_stale_temp_files(&self) {
        sys::remove_stale_temp_files_at(&self.handle);
    }

    /// Removes the entry `name` of this directory (never what a symlink of that name points to).
    pub(crate) fn remove(&self, name: &str) -> io::Result<()> {
        sys::remove_at(&self.handle, name)
    }
}

/// Opens `path` for reading, safely whatever is there: without following a symlink and
/// without blocking, then checks through the descriptor that it is a regular file. A symlink,
/// a named pipe, a socket, a device or a directory is refused, with what it is. `Ok(None)`
/// when nothing is there. The one way the toolkit opens a file it reads.
///
/// Off Unix the type is checked on the path and then on the opened file (nothing read there
/// is trusted: telemetry stays off).
pub fn open_regular(path: &Path) -> Result<Option<File>, Refusal> {
    sys::open_regular(path)
}

/// Opens (creating it, mode 0600, if absent) the lock file `path` and takes an exclusive lock
/// on it, held until the returned file is dropped. Never follows a symlink (a planted link's
/// target is never created or written), never blocks on a named pipe, and refuses anything
/// but a regular file owned by the current user. Refused off Unix.
pub fn lock_file(path: &Path) -> Result<File, Refusal> {
    sys::lock_file(path)
}

/// Opens the app directory and checks it through the descriptor ([`check_app_dir`]: owned by
/// the current user, not writable by group or others). A symlink at `path` itself is
/// followed (dotfile managers link `~/.config/<app>`), and the directory it leads to is what
/// is checked. `Ok(None)` when it does not exist (yet). Off Unix an existing one is refused.
pub fn open_app_dir(path: &Path) -> Result<Option<OpenDir>, Refusal> {
    sys::open_app_dir(path).map(|dir| dir.map(|handle| OpenDir::new(path, handle)))
}

/// One entry of a directory listed by [`list_dir`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirItem {
    /// Its name.
    pub name: std::ffi::OsString,
    /// Its type, not following symlinks.
    pub file_type: FileType,
}

impl DirItem {
    /// Whether it is a regular file (not a symlink to one): the only kind the toolkit reads.
    pub fn is_regular_file(&self) -> bool {
        self.file_type == FileType::RegularFile
    }
}

/// The entries of the directory `path` (without `.` and `..`), read through a descriptor
/// opened `O_DIRECTORY|O_NOFOLLOW`: a symlink where one of the toolkit's directories should
/// be is refused, never listed through. Types are those of the entries themselves (a symlink
/// is a symlink).
pub fn list_dir(path: &Path) -> Result<Vec<DirItem>, Refusal> {
    sys::list_dir(path)
}

/// [`list_dir`], with the size of each regular file whose name `sized` accepts (looked up
/// relative to the open directory, not following a symlink; `None` for the other entries, and
/// for a file that vanished or changed type in between).
pub fn list_dir_sizing(
    path: &Path,
    sized: &dyn Fn(&std::ffi::OsStr) -> bool,
) -> Result<Vec<(DirItem, Option<u64>)>, Refusal> {
    sys::list_dir_sizing(path, sized)
}

/// Tests of both stores: a sizing listing as sorted `(name, size)` pairs.
#[cfg(test)]
fn sized_names(
    listing: Result<Vec<(DirItem, Option<u64>)>, Refusal>,
) -> Vec<(String, Option<u64>)> {
    let mut sized: Vec<(String, Option<u64>)> = listing
        .unwrap()
        .into_iter()
        .map(|(e, size)| (e.name.into_string().unwrap(), size))
        .collect();
    sized.sort();
    sized
}

/// Tests of both stores: the filter the recorder sizes payloads with.
#[cfg(test)]
fn is_json(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().ends_with(b".json")
}

/// Opens a private directory without following a symlink at its last component and
/// checks it through the descriptor. `Ok(None)` when it does not exist. Off Unix an existing
/// one is refused.
pub fn open_private_dir(path: &Path) -> Result<Option<OpenDir>, Refusal> {
    sys::open_private_dir(path).map(|dir| dir.map(|handle| OpenDir::new(path, handle)))
}

/// Reads a secret file `name` inside the private directory `dir`: the directory and the
/// file are both checked through their descriptors. `Ok(None)` when either is absent.
pub fn read_private_file(dir: &Path, name: &str) -> Result<Option<Vec<u8>>, Refusal> {
    let [read] = sys::read_private_files(dir, [name]);
    read
}

/// [`read_private_file`] of each of `names` in `dir`, which is opened and checked once (the
/// consent token and the install secret of a run that records).
pub fn read_private_files<const N: usize>(
    dir: &Path,
    names: [&str; N],
) -> [Result<Option<Vec<u8>>, Refusal>; N] {
    sys::read_private_files(dir, names)
}

/// Creates `path` (and missing parents) as a directory with mode 0700, or checks that the
/// existing one is private. Never loosens or silently repairs an existing directory: a
/// directory with the wrong mode is refused, with the `chmod` that fixes it. Returns the
/// directory, open. Refused off Unix.
pub fn ensure_private_dir(path: &Path) -> Result<OpenDir, Refusal> {
    sys::ensure_private_dir(path).map(|handle| OpenDir::new(path, handle))
}

/// Creates `path` and its parents (mode 0700 for those created here). Refused off Unix.
pub fn ensure_dir(path: &Path) -> Result<(), Refusal> {
    sys::ensure_dir(path)
}

/// Writes `bytes` to `dir/name` atomically with permission bits `mode`: a temporary file in
/// the same directory, `fsync`, rename, then `fsync` of the directory. Refused off Unix
/// (`ErrorKind::Unsupported`).
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
    sys::write_atomic(dir, name, bytes, mode)
}

/// [`write_atomic`] without the `fsync`s: still renamed into place whole, so a reader sees
/// the old file or the new one, never a part; but a power failure may lose the write (the
/// payload index, and whatever the recorder's durability accepts losing). Refused off Unix.
pub(crate) fn write_replacing(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
    sys::write_replacing(dir, name, bytes, mode)
}

/// Age after which a temporary file (`.tmp-*`) is a leftover of a killed writer.
pub const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes the temporary files of atomic writes that were killed (`.tmp-*`) from `dir`: only
/// regular files (a symlink, directory or pipe of that name is someone else's; none is
/// followed) and only those older than [`STALE_TEMP_AGE`], so a concurrent writer's file is
/// never touched. Best effort: what cannot be removed stays. Call where the toolkit writes
/// into `dir` anyway (the pending directory at flush, the app directory with the ledger).
pub fn remove_stale_temp_files(dir: &Path) {
    sys::remove_stale_temp_files(dir);
}

/// The error a read reports for a file that is not there, as the platform words it.
pub(crate) fn not_found() -> io::Error {
    sys::not_found()
}

/// Removes a file; `Ok(false)` when it did not exist.
pub fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads at most `limit` bytes of a regular file, opened with [`open_regular`] (no symlink
/// followed, never blocking on a named pipe). `Ok(None)` when absent; refused when it is not a
/// regular file or larger than `limit` (so a huge file never fills memory).
pub fn read_bounded(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, Refusal> {
    let Some((file, size)) = sys::open_regular_sized(path)? else {
        return Ok(None);
    };
    let io_err = |e: io::Error| Refusal {
        path: path.to_owned(),
        kind: RefusalKind::Io(e.kind(), e.to_string()),
    };
    let bytes = read_sized(file, size, limit).map_err(io_err)?;
    if bytes.len() as u64 > limit {
        return Err(Refusal {
            path: path.to_owned(),
            kind: RefusalKind::TooLarge {
                size: bytes.len() as u64,
                limit,
            },
        });
    }
    Ok(Some(bytes))
}

/// Reads `file` to its end, or to `limit` + 1 bytes, knowing from its facts that it held
/// `size` bytes: in one `read` when that still holds. A buffer of `size` + 1 bytes that a read
/// leaves short, once `size` bytes are in, is the end of a regular file, so the call that
/// would only confirm it is saved. A file that shrank is read on until a read returns nothing,
/// one that grew until its end or the limit.
fn read_sized(mut file: impl Read, size: u64, limit: u64) -> io::Result<Vec<u8>> {
    let want = usize::try_from(size.min(limit).saturating_add(1)).unwrap_or(usize::MAX);
    let mut bytes = vec![0u8; want];
    let mut filled = 0;
    while filled < want {
        match file.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                let asked = want - filled;
                filled += n;
                if n < asked && filled as u64 >= size {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(filled);
    if filled == want {
        // It grew past its size: the rest, bounded.
        let rest = (limit + 1).saturating_sub(filled as u64);
        file.take(rest).read_to_end(&mut bytes)?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes a call and counts the calls.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
        calls: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            let n = buf.len().min(self.step).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn read_sized_reads_a_file_of_its_size_in_one_call_and_any_other_to_its_end() {
        let data: Vec<u8> = (0..100u8).collect();
        let read = |len: usize, size: u64, limit: u64, step: usize| {
            let mut file = Trickle {
                data: &data[..len],
                step,
                calls: 0,
            };
            let bytes = read_sized(&mut file, size, limit).unwrap();
            (bytes, file.calls)
        };
        // As stated: one call.
        assert_eq!(read(40, 40, 64, usize::MAX), (data[..40].to_vec(), 1));
        // Short reads before the stated size are not its end.
        assert_eq!(read(40, 40, 64, 7).0, data[..40].to_vec());
        // Shrunk since: read until nothing is left.
        assert_eq!(read(20, 40, 64, usize::MAX), (data[..20].to_vec(), 2));
        // Grown since: read on to the end, or to the limit + 1 that tells the caller.
        assert_eq!(read(60, 40, 64, usize::MAX).0, data[..60].to_vec());
        assert_eq!(read(100, 40, 64, usize::MAX).0, data[..65].to_vec());
        // Empty.
        assert_eq!(read(0, 0, 64, usize::MAX), (Vec::new(), 1));
    }

    fn facts(file_type: FileType, uid: u32, mode: u32) -> FileFacts {
        FileFacts {
            file_type,
            uid,
            mode,
            size: 10,
        }
    }

    #[test]
    fn policy_refuses_other_owner_wide_modes_and_wrong_types() {
        let file = FileType::RegularFile;
        assert_eq!(check_private(facts(file, 7, 0o600), false, 7), Ok(()));
        assert!(matches!(
            check_private(facts(file, 8, 0o600), false, 7),
            Err(RefusalKind::NotOwned {
                owner: 8,
                current: 7
            })
        ));
        for mode in [0o644, 0o640, 0o660, 0o604, 0o601, 0o610] {
            assert!(
                matches!(
                    check_private(facts(file, 7, mode), false, 7),
                    Err(RefusalKind::TooPermissive { .. })
                ),
                "{mode:o} accepted"
            );
        }
        assert!(matches!(
            check_private(facts(FileType::Directory, 7, 0o600), false, 7),
            Err(RefusalKind::WrongType(_))
        ));
        assert!(matches!(
            check_private(facts(FileType::Directory, 7, 0o755), true, 7),
            Err(RefusalKind::TooPermissive {
                required: 0o700,
                ..
            })
        ));
        let big = FileFacts {
            size: MAX_SECRET_BYTES + 1,
            ..facts(file, 7, 0o600)
        };
        assert!(matches!(
            check_private(big, false, 7),
            Err(RefusalKind::TooLarge { .. })
        ));
    }

    #[test]
    fn app_dir_policy_refuses_other_owners_and_group_or_other_write() {
        let dir = FileType::Directory;
        for mode in [0o700, 0o755, 0o750, 0o705, 0o711, 0o500] {
            assert_eq!(check_app_dir(facts(dir, 7, mode), 7), Ok(()), "{mode:o}");
        }
        for mode in [0o777, 0o775, 0o770, 0o757, 0o722, 0o720, 0o702, 0o1777] {
            assert_eq!(
                check_app_dir(facts(dir, 7, mode), 7),
                Err(RefusalKind::WritableByOthers { mode }),
                "{mode:o}"
            );
        }
        assert!(matches!(
            check_app_dir(facts(dir, 8, 0o700), 7),
            Err(RefusalKind::NotOwned {
                owner: 8,
                current: 7
            })
        ));
        assert!(matches!(
            check_app_dir(facts(FileType::Fifo, 7, 0o700), 7),
            Err(RefusalKind::WrongType("a named pipe, not a directory"))
        ));
        let refusal = Refusal {
            path: PathBuf::from("/h/.config/acme"),
            kind: RefusalKind::WritableByOthers { mode: 0o777 },
        };
        assert!(
            refusal
                .to_string()
                .contains("fix: chmod go-w /h/.config/acme"),
            "{refusal}"
        );
    }

    #[test]
    fn refusals_read_as_what_is_wrong_and_keep_their_kind_as_io_errors() {
        let refusal = Refusal {
            path: PathBuf::from("/h/.config/acme/secrets"),
            kind: RefusalKind::Symlink,
        };
        assert_eq!(
            refusal.to_string(),
            "/h/.config/acme/secrets is a symbolic link; refusing to follow it"
        );
        let err = refusal.into_io_error();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            "it is a symbolic link; refusing to follow it"
        );
        let unsupported = Refusal {
            path: PathBuf::from("/x/lock"),
            kind: RefusalKind::Io(io::ErrorKind::Unsupported, "no check here".into()),
        };
        assert_eq!(unsupported.to_string(), "/x/lock: no check here");
        assert_eq!(
            unsupported.into_io_error().kind(),
            io::ErrorKind::Unsupported
        );
        let item = |file_type| DirItem {
            name: "a.json".into(),
            file_type,
        };
        assert!(item(FileType::RegularFile).is_regular_file());
        for other in [FileType::Symlink, FileType::Directory, FileType::Fifo] {
            assert!(!item(other).is_regular_file(), "{other:?}");
        }
    }
}

/// The Unix store against real files: symlinks, named pipes, modes, owners.
#[cfg(all(test, unix))]
mod unix_tests {
    use std::fs::{self, Permissions};
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    #[test]
    fn atomic_write_sets_mode_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "f", b"one", 0o600).unwrap();
        write_atomic(dir.path(), "f", b"two", 0o600).unwrap();
        let path = dir.path().join("f");
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file_and_the_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory where the file goes: the rename over it fails.
        fs::create_dir(dir.path().join("f")).unwrap();
        fs::write(dir.path().join("f/inside"), b"kept").unwrap();
        assert!(write_atomic(dir.path(), "f", b"one", 0o600).is_err());
        assert!(write_replacing(dir.path(), "f", b"one", 0o600).is_err());
        let opened = ensure_private_dir(&dir.path().join("private")).unwrap();
        fs::create_dir(dir.path().join("private/g")).unwrap();
        fs::write(dir.path().join("private/g/inside"), b"kept").unwrap();
        assert!(opened.write_replacing("g", b"one", 0o600).is_err());
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .chain(fs::read_dir(dir.path().join("private")).unwrap())
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["f", "g", "private"]);
        assert_eq!(fs::read(dir.path().join("f/inside")).unwrap(), b"kept");
        // Through the open directory, as the recorder writes: in place, exact mode.
        opened.write_replacing("h", b"two", 0o640).unwrap();
        let h = dir.path().join("private/h");
        assert_eq!(fs::read(&h).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&h).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }

    #[test]
    fn private_dir_is_created_0700_and_a_symlinked_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("app/secrets");
        ensure_private_dir(&secrets).unwrap();
        assert_eq!(
            fs::metadata(&secrets).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let link = dir.path().join("link");
        symlink(&secrets, &link).unwrap();
        assert_eq!(
            open_private_dir(&link).unwrap_err().kind,
            RefusalKind::Symlink
        );
    }

    #[test]
    fn secret_reads_refuse_symlinks_fifos_and_huge_files() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        ensure_private_dir(&secrets).unwrap();
        write_atomic(&secrets, "real", b"x", 0o600).unwrap();
        symlink(secrets.join("real"), secrets.join("link")).unwrap();
        assert_eq!(
            read_private_file(&secrets, "link").unwrap_err().kind,
            RefusalKind::Symlink
        );
        assert_eq!(read_private_file(&secrets, "real").unwrap().unwrap(), b"x");
        assert_eq!(read_private_file(&secrets, "absent").unwrap(), None);
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            secrets.join("fifo"),
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        assert!(matches!(
            read_private_file(&secrets, "fifo").unwrap_err().kind,
            RefusalKind::WrongType(_)
        ));
        let huge = vec![b'a'; (MAX_SECRET_BYTES + 1) as usize];
        write_atomic(&secrets, "huge", &huge, 0o600).unwrap();
        assert!(matches!(
            read_private_file(&secrets, "huge").unwrap_err().kind,
            RefusalKind::TooLarge { .. }
        ));
    }

    /// Issue #16: a named pipe, a symlink or a directory where a file is read is refused at
    /// once, saying what it is; the read never blocks.
    #[test]
    fn bounded_reads_never_block_on_special_files_and_say_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("config.toml");
        crate::test_support::mkfifo(&fifo);
        let shown = crate::test_support::within("read_bounded(a named pipe)", move || {
            read_bounded(&fifo, 1024).unwrap_err().to_string()
        });
        assert!(
            shown.contains("is a named pipe, not a regular file"),
            "{shown}"
        );
        let real = dir.path().join("real");
        fs::write(&real, b"secret").unwrap();
        let link = dir.path().join("link");
        symlink(&real, &link).unwrap();
        let shown = read_bounded(&link, 1024).unwrap_err().to_string();
        assert!(shown.contains("symbolic link"), "{shown}");
        let shown = read_bounded(dir.path(), 1024).unwrap_err().to_string();
        assert!(shown.contains("a directory, not a regular file"), "{shown}");
    }

    /// A lock file is created 0600, never through a symlink, never on a pipe, and only
    /// another user's (as root, where ownership is the only thing that binds) is refused.
    #[test]
    fn lock_files_are_created_private_and_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join(".lock");
        let held = lock_file(&lock).unwrap();
        assert_eq!(
            fs::symlink_metadata(&lock).unwrap().permissions().mode() & 0o777,
            0o600
        );
        drop(held);
        let target = dir.path().join("target");
        let link = dir.path().join("link.lock");
        symlink(&target, &link).unwrap();
        assert_eq!(lock_file(&link).unwrap_err().kind, RefusalKind::Symlink);
        assert!(
            fs::symlink_metadata(&target).is_err(),
            "the target was created"
        );
        let fifo = dir.path().join("fifo.lock");
        crate::test_support::mkfifo(&fifo);
        let kind = crate::test_support::within("lock_file(a named pipe)", move || {
            lock_file(&fifo).unwrap_err().kind
        });
        assert_eq!(
            kind,
            RefusalKind::WrongType("a named pipe, not a regular file")
        );
        if rustix::process::geteuid().is_root() {
            let theirs = dir.path().join("theirs.lock");
            fs::write(&theirs, b"").unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
            assert!(matches!(
                lock_file(&theirs).unwrap_err().kind,
                RefusalKind::NotOwned { owner: 65534, .. }
            ));
        }
    }

    /// The app directory is checked through its descriptor; a symlink at the root itself is
    /// followed (dotfile managers), and what it leads to is checked.
    #[test]
    fn the_app_directory_is_checked_where_it_leads() {
        let home = tempfile::tempdir().unwrap();
        let root = home.path().join("acme");
        assert!(open_app_dir(&root).unwrap().is_none(), "absent is fine");
        fs::create_dir(&root).unwrap();
        let link = home.path().join("link");
        symlink(&root, &link).unwrap();
        for (mode, ok) in [(0o755, true), (0o700, true), (0o775, false), (0o777, false)] {
            fs::set_permissions(&root, Permissions::from_mode(mode)).unwrap();
            for path in [&root, &link] {
                assert_eq!(
                    open_app_dir(path).is_ok(),
                    ok,
                    "{} {mode:o}",
                    path.display()
                );
            }
        }
        let fifo = home.path().join("fifo");
        crate::test_support::mkfifo(&fifo);
        assert!(matches!(
            open_app_dir(&fifo).unwrap_err().kind,
            RefusalKind::WrongType("a named pipe, not a directory")
        ));
    }

    /// Sizes only for regular files the filter accepts: not for a directory or a symlink of
    /// such a name (not followed), nor for other names.
    #[test]
    fn listed_sizes_are_of_accepted_regular_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("a.json"), b"{}").unwrap();
        fs::write(d.join("b.txt"), b"text").unwrap();
        fs::create_dir(d.join("c.json")).unwrap();
        symlink(d.join("a.json"), d.join("d.json")).unwrap();
        let sized = sized_names(list_dir_sizing(d, &is_json));
        assert_eq!(
            sized,
            [
                ("a.json".to_owned(), Some(2)),
                ("b.txt".to_owned(), None),
                ("c.json".to_owned(), None),
                ("d.json".to_owned(), None),
            ]
        );
        assert!(list_dir_sizing(&d.join("d.json"), &|_| true).is_err());
    }

    /// Stale temporary files go; fresh ones, other names, symlinks and directories stay.
    #[test]
    fn only_stale_regular_temporary_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in [".tmp-old", ".tmp-fresh", "old.json", "target"] {
            fs::write(d.join(name), b"x").unwrap();
        }
        for name in [".tmp-old", "old.json", "target"] {
            crate::test_support::age(&d.join(name));
        }
        symlink(d.join("target"), d.join(".tmp-link")).unwrap();
        fs::create_dir(d.join(".tmp-dir")).unwrap();
        crate::test_support::mkfifo(&d.join(".tmp-pipe"));
        remove_stale_temp_files(d);
        let mut left: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".tmp-dir",
                ".tmp-fresh",
                ".tmp-link",
                ".tmp-pipe",
                "old.json",
                "target"
            ]
        );
    }

    /// What `std` reports is told apart as `fstat` tells it (the Unix special files too).
    #[test]
    fn std_file_types_map_to_the_store_types() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("file"), b"x").unwrap();
        symlink(d.join("file"), d.join("link")).unwrap();
        crate::test_support::mkfifo(&d.join("pipe"));
        let of =
            |name: &str| FileType::from(fs::symlink_metadata(d.join(name)).unwrap().file_type());
        assert_eq!(of("file"), FileType::RegularFile);
        assert_eq!(of("link"), FileType::Symlink);
        assert_eq!(of("pipe"), FileType::Fifo);
        assert_eq!(
            FileType::from(fs::metadata(d).unwrap().file_type()),
            FileType::Directory
        );
        let listed: std::collections::BTreeMap<String, FileType> = list_dir(d)
            .unwrap()
            .into_iter()
            .map(|e| (e.name.into_string().unwrap(), e.file_type))
            .collect();
        assert_eq!(listed["file"], FileType::RegularFile);
        assert_eq!(listed["link"], FileType::Symlink);
        assert_eq!(listed["pipe"], FileType::Fifo);
    }

    #[test]
    fn bounded_read_rejects_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        fs::write(&path, vec![b'x'; 100]).unwrap();
        assert!(read_bounded(&path, 99).is_err());
        assert_eq!(read_bounded(&path, 100).unwrap().unwrap().len(), 100);
        assert!(read_bounded(&dir.path().join("none"), 1).unwrap().is_none());
        assert!(read_bounded(dir.path(), 10).is_err());
    }
}
