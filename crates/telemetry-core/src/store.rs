//! The secure local store: private directories, owner-only secrets, atomic writes.
//!
//! Secrets are opened without following symlinks and checked through the opened file
//! descriptor (`fstat`), never through the path, so there is no gap between the check and
//! the use. Every write goes to a temporary file in the same directory, is flushed to disk
//! and then renamed over the target, so a reader sees the old file or the new one, never a
//! part.

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

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.kind {
            RefusalKind::Symlink => write!(f, "{path} is a symbolic link; refusing to follow it"),
            RefusalKind::WrongType(what) => write!(f, "{path} is {what}"),
            RefusalKind::NotOwned { owner, current } => write!(
                f,
                "{path} is owned by uid {owner}, not by the current user (uid {current})"
            ),
            RefusalKind::TooPermissive { mode, required } => write!(
                f,
                "{path} has mode {mode:04o}; it must be {required:04o} (fix: chmod {required:o} {path})"
            ),
            RefusalKind::TooLarge { size, limit } => {
                write!(f, "{path} is {size} bytes; the limit is {limit}")
            }
            RefusalKind::Io(_, message) => write!(f, "{path}: {message}"),
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

fn describe_type(file_type: FileType, want_dir: bool) -> &'static str {
    match file_type {
        FileType::Directory => "a directory, not a regular file",
        FileType::RegularFile if want_dir => "a regular file, not a directory",
        FileType::Fifo => "a named pipe, not a regular file",
        FileType::Socket => "a socket, not a regular file",
        FileType::CharacterDevice | FileType::BlockDevice => "a device, not a regular file",
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
    } else {
        let err = io::Error::from(errno);
        RefusalKind::Io(err.kind(), err.to_string())
    };
    Refusal {
        path: path.to_owned(),
        kind,
    }
}

/// Opens a private directory without following a symlink at its last component and
/// checks it through the descriptor. `Ok(None)` when it does not exist.
pub fn open_private_dir(path: &Path) -> Result<Option<OwnedFd>, Refusal> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
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
    // NONBLOCK: opening a FIFO planted in place of the file must not hang.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = match rustix::fs::openat(&dir_fd, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(errno) => return Err(io_refusal(&path, errno)),
    };
    let facts = facts_of(&fd).map_err(|e| io_refusal(&path, e))?;
    check_private(facts, false, current_uid()).map_err(|kind| Refusal {
        path: path.clone(),
        kind,
    })?;
    let mut bytes = Vec::new();
    File::from(fd)
        .take(MAX_SECRET_BYTES + 1)
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
    File::open(dir)?.sync_all()
}

/// Removes a file; `Ok(false)` when it did not exist.
pub fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads at most `limit` bytes of a regular file. `Ok(None)` when absent; an error when it
/// is larger than `limit` (so a huge file never fills memory).
pub fn read_bounded(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than the {limit}-byte limit"),
        ));
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
