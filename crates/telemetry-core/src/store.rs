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

use std::fmt;
use std::fs::{self, File, Permissions};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

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

fn facts_of(fd: &OwnedFd) -> Result<FileFacts, Errno> {
    let stat = rustix::fs::fstat(fd)?;
    Ok(FileFacts {
        file_type: FileType::from_raw_mode(stat.st_mode),
        uid: stat.st_uid,
        mode: stat.st_mode & 0o7777,
        size: u64::try_from(stat.st_size).unwrap_or(0),
    })
}

fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn io_refusal(path: &Path, errno: Errno) -> Refusal {
    let kind = if errno == Errno::LOOP {
        RefusalKind::Symlink
    } else if errno == Errno::NOTDIR {
        RefusalKind::WrongType("not a directory")
    } else if errno == Errno::NXIO {
        // What opening a socket (or a FIFO for writing, without a reader) reports.
        RefusalKind::WrongType("a socket or a named pipe, not a regular file")
    } else {
        let err = io::Error::from(errno);
        RefusalKind::Io(err.kind(), err.to_string())
    };
    Refusal {
        path: path.to_owned(),
        kind,
    }
}

/// How every file the toolkit reads is opened: read-only, never following a symlink at the
/// last component, never blocking (a named pipe or a device where a file is expected must not
/// hang the host; the type is checked through the descriptor right after), never becoming a
/// controlling terminal, never inherited by a child.
const READ_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);

/// How every directory the toolkit lists, checks or syncs is opened: only a directory, never
/// through a symlink at the last component.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Opens `path` for reading, safely whatever is there: without following a symlink and
/// without blocking, then checks through the descriptor that it is a regular file. A symlink,
/// a named pipe, a socket, a device or a directory is refused, with what it is. `Ok(None)`
/// when nothing is there. The one way the toolkit opens a file it reads.
pub fn open_regular(path: &Path) -> Result<Option<File>, Refusal> {
    open_regular_at(rustix::fs::CWD, path, path).map(|opened| opened.map(|(file, _)| file))
}

/// [`open_regular`] of `name` relative to the directory `dir` (`path` is what errors name),
/// with the facts checked.
fn open_regular_at(
    dir: impl std::os::fd::AsFd,
    name: &Path,
    path: &Path,
) -> Result<Option<(File, FileFacts)>, Refusal> {
    let fd = match rustix::fs::openat(dir, name, READ_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(errno) => return Err(io_refusal(path, errno)),
    };
    let facts = facts_of(&fd).map_err(|e| io_refusal(path, e))?;
    if facts.file_type != FileType::RegularFile {
        return Err(Refusal {
            path: path.to_owned(),
            kind: RefusalKind::WrongType(describe_type(facts.file_type, false)),
        });
    }
    Ok(Some((File::from(fd), facts)))
}

/// Opens (creating it, mode 0600, if absent) the lock file `path` and takes an exclusive lock
/// on it, held until the returned file is dropped. Never follows a symlink (a planted link's
/// target is never created or written), never blocks on a named pipe, and refuses anything
/// but a regular file owned by the current user.
pub fn lock_file(path: &Path) -> Result<File, Refusal> {
    // Read-write: where `flock` is emulated with POSIX locks (NFS), an exclusive lock needs
    // it. With O_NONBLOCK, opening a named pipe read-write does not block either; nothing is
    // ever written to the lock file.
    let flags = OFlags::RDWR
        | OFlags::CREATE
        | OFlags::NOFOLLOW
        | OFlags::NONBLOCK
        | OFlags::NOCTTY
        | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::from_raw_mode(0o600))
        .map_err(|errno| io_refusal(path, errno))?;
    let facts = facts_of(&fd).map_err(|e| io_refusal(path, e))?;
    let refused = |kind| Refusal {
        path: path.to_owned(),
        kind,
    };
    if facts.file_type != FileType::RegularFile {
        return Err(refused(RefusalKind::WrongType(describe_type(
            facts.file_type,
            false,
        ))));
    }
    let current = current_uid();
    if facts.uid != current {
        return Err(refused(RefusalKind::NotOwned {
            owner: facts.uid,
            current,
        }));
    }
    let file = File::from(fd);
    file.lock()
        .map_err(|e| refused(RefusalKind::Io(e.kind(), e.to_string())))?;
    Ok(file)
}

/// Opens the app directory and checks it through the descriptor ([`check_app_dir`]: owned by
/// the current user, not writable by group or others). A symlink at `path` itself is
/// followed (dotfile managers link `~/.config/<app>`), and the directory it leads to is what
/// is checked. `Ok(None)` when it does not exist (yet).
pub fn open_app_dir(path: &Path) -> Result<Option<OwnedFd>, Refusal> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::NOTDIR) => {
            let what = fs::metadata(path).map_or("not a directory", |m| {
                describe_type(
                    FileType::from_raw_mode(std::os::unix::fs::MetadataExt::mode(&m)),
                    true,
                )
            });
            return Err(Refusal {
                path: path.to_owned(),
                kind: RefusalKind::WrongType(what),
            });
        }
        Err(errno) => return Err(io_refusal(path, errno)),
    };
    let facts = facts_of(&fd).map_err(|e| io_refusal(path, e))?;
    check_app_dir(facts, current_uid()).map_err(|kind| Refusal {
        path: path.to_owned(),
        kind,
    })?;
    Ok(Some(fd))
}

/// Opens a directory to sync, list or clean it: `O_DIRECTORY|O_NOFOLLOW`. Only the app
/// directory may be a symlink (see [`open_app_dir`]); then the directory it leads to is
/// checked as the app directory is.
fn open_dir(path: &Path) -> Result<OwnedFd, Refusal> {
    match rustix::fs::open(path, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(errno @ (Errno::NOTDIR | Errno::LOOP))
            if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) =>
        {
            open_app_dir(path)?.ok_or_else(|| io_refusal(path, errno))
        }
        Err(errno) => Err(io_refusal(path, errno)),
    }
}

/// One entry of a directory listed by [`list_dir`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirItem {
    /// Its name.
    pub name: std::ffi::OsString,
    /// Its type, not following symlinks.
    pub file_type: FileType,
}

/// The entries of the directory `path` (without `.` and `..`), read through a descriptor
/// opened `O_DIRECTORY|O_NOFOLLOW`: a symlink where one of the toolkit's directories should
/// be is refused, never listed through. Types are those of the entries themselves (a symlink
/// is a symlink).
pub fn list_dir(path: &Path) -> Result<Vec<DirItem>, Refusal> {
    let fd = match rustix::fs::open(path, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(errno) => return Err(io_refusal(path, errno)),
    };
    list_fd(&fd, path)
}

fn list_fd(fd: &OwnedFd, path: &Path) -> Result<Vec<DirItem>, Refusal> {
    use std::os::unix::ffi::OsStrExt;
    let dir = rustix::fs::Dir::read_from(fd).map_err(|e| io_refusal(path, e))?;
    let mut items = Vec::new();
    for entry in dir {
        let entry = entry.map_err(|e| io_refusal(path, e))?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let file_type = match entry.file_type() {
            FileType::Unknown => {
                rustix::fs::statat(fd, entry.file_name(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                    .map_or(FileType::Unknown, |st| FileType::from_raw_mode(st.st_mode))
            }
            known => known,
        };
        items.push(DirItem {
            name: std::ffi::OsStr::from_bytes(name).to_owned(),
            file_type,
        });
    }
    Ok(items)
}

/// Opens a private directory without following a symlink at its last component and
/// checks it through the descriptor. `Ok(None)` when it does not exist.
pub fn open_private_dir(path: &Path) -> Result<Option<OwnedFd>, Refusal> {
    let fd = match rustix::fs::open(path, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::NOTDIR) => {
            // O_DIRECTORY|O_NOFOLLOW on a symlink reports ENOTDIR on Linux; tell them apart.
            let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            return Err(Refusal {
                path: path.to_owned(),
                kind: if is_link {
                    RefusalKind::Symlink
                } else {
                    RefusalKind::WrongType("not a directory")
                },
            });
        }
        Err(errno) => return Err(io_refusal(path, errno)),
    };
    let facts = facts_of(&fd).map_err(|e| io_refusal(path, e))?;
    check_private(facts, true, current_uid()).map_err(|kind| Refusal {
        path: path.to_owned(),
        kind,
    })?;
    Ok(Some(fd))
}

/// Reads a secret file `name` inside the private directory `dir`: the directory and the
/// file are both checked through their descriptors. `Ok(None)` when either is absent.
pub fn read_private_file(dir: &Path, name: &str) -> Result<Option<Vec<u8>>, Refusal> {
    let Some(dir_fd) = open_private_dir(dir)? else {
        return Ok(None);
    };
    let path = dir.join(name);
    let Some((file, facts)) = open_regular_at(&dir_fd, Path::new(name), &path)? else {
        return Ok(None);
    };
    check_private(facts, false, current_uid()).map_err(|kind| Refusal {
        path: path.clone(),
        kind,
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Refusal {
            path: path.clone(),
            kind: RefusalKind::Io(e.kind(), e.to_string()),
        })?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(Refusal {
            path,
            kind: RefusalKind::TooLarge {
                size: bytes.len() as u64,
                limit: MAX_SECRET_BYTES,
            },
        });
    }
    Ok(Some(bytes))
}

/// Creates `path` (and missing parents) as a directory with mode 0700, or checks that the
/// existing one is private. Never loosens or silently repairs an existing directory: a
/// directory with the wrong mode is refused, with the `chmod` that fixes it.
pub fn ensure_private_dir(path: &Path) -> Result<(), Refusal> {
    if let Some(parent) = path.parent() {
        ensure_dir(parent)?;
    }
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Refusal {
                path: path.to_owned(),
                kind: RefusalKind::Io(e.kind(), e.to_string()),
            });
        }
    }
    open_private_dir(path)?.map(|_| ()).ok_or_else(|| Refusal {
        path: path.to_owned(),
        kind: RefusalKind::Io(
            io::ErrorKind::NotFound,
            "vanished while being created".into(),
        ),
    })
}

/// Creates `path` and its parents (mode 0700 for those created here).
pub fn ensure_dir(path: &Path) -> Result<(), Refusal> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| Refusal {
            path: path.to_owned(),
            kind: RefusalKind::Io(e.kind(), e.to_string()),
        })
}

/// Writes `bytes` to `dir/name` atomically with permission bits `mode`: a temporary file in
/// the same directory, `fsync`, rename, then `fsync` of the directory.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // The umask may have narrowed the mode; it can never have widened it, but make it exact.
    tmp.as_file()
        .set_permissions(Permissions::from_mode(mode))?;
    tmp.persist(dir.join(name)).map_err(|e| e.error)?;
    let dir_fd = open_dir(dir).map_err(Refusal::into_io_error)?;
    File::from(dir_fd).sync_all()
}

/// Age after which a temporary file (`.tmp-*`) is a leftover of a killed writer.
pub const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes the temporary files of atomic writes that were killed (`.tmp-*`) from `dir`: only
/// regular files (a symlink, directory or pipe of that name is someone else's; none is
/// followed) and only those older than [`STALE_TEMP_AGE`], so a concurrent writer's file is
/// never touched. Best effort: what cannot be removed stays. Call where the toolkit writes
/// into `dir` anyway (the pending directory at flush, the app directory with the ledger).
pub fn remove_stale_temp_files(dir: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(fd) = open_dir(dir) else {
        return;
    };
    let Ok(items) = list_fd(&fd, dir) else {
        return;
    };
    for item in items {
        if item.file_type != FileType::RegularFile || !item.name.as_bytes().starts_with(b".tmp-") {
            continue;
        }
        // Checked again right before removal, relative to the directory and not following
        // a symlink; `unlinkat` removes a name, never what a symlink points to.
        let Ok(stat) = rustix::fs::statat(&fd, &item.name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        else {
            continue;
        };
        let modified = std::time::UNIX_EPOCH
            + std::time::Duration::new(
                u64::try_from(stat.st_mtime).unwrap_or(0),
                u32::try_from(stat.st_mtime_nsec).unwrap_or(0),
            );
        let stale = modified.elapsed().is_ok_and(|age| age > STALE_TEMP_AGE);
        if FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile && stale {
            let _ = rustix::fs::unlinkat(&fd, &item.name, rustix::fs::AtFlags::empty());
        }
    }
}

/// Removes a file; `Ok(false)` when it did not exist.
pub fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads at most `limit` bytes of a regular file, opened with [`open_regular`] (no symlink
/// followed, never blocking on a named pipe). `Ok(None)` when absent; refused when it is not a
/// regular file or larger than `limit` (so a huge file never fills memory).
pub fn read_bounded(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, Refusal> {
    let Some(file) = open_regular(path)? else {
        return Ok(None);
    };
    let io_err = |e: io::Error| Refusal {
        path: path.to_owned(),
        kind: RefusalKind::Io(e.kind(), e.to_string()),
    };
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

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
            Mode::from_raw_mode(0o600),
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
