//! The store's system calls on Unix: every open is `O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC` and is
//! checked through the descriptor (`fstat`), with the owner and permission bits that make a
//! file private. The only module of the crate (with its tests) that names `rustix` or
//! `std::os::unix` for the store; `cargo xtask audit` (rule 7) proves it is only built on Unix.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::{
    DirItem, FileFacts, FileType, MAX_SECRET_BYTES, Refusal, RefusalKind, STALE_TEMP_AGE,
    check_app_dir, check_private, describe_type,
};

/// What keeps a checked directory open.
pub(super) type DirHandle = OwnedFd;

fn from_raw(raw: rustix::fs::FileType) -> FileType {
    use rustix::fs::FileType as Raw;
    match raw {
        Raw::RegularFile => FileType::RegularFile,
        Raw::Directory => FileType::Directory,
        Raw::Symlink => FileType::Symlink,
        Raw::Fifo => FileType::Fifo,
        Raw::Socket => FileType::Socket,
        Raw::CharacterDevice => FileType::CharacterDevice,
        Raw::BlockDevice => FileType::BlockDevice,
        _ => FileType::Unknown,
    }
}

pub(super) fn file_type(t: fs::FileType) -> FileType {
    if t.is_symlink() {
        FileType::Symlink
    } else if t.is_dir() {
        FileType::Directory
    } else if t.is_file() {
        FileType::RegularFile
    } else if t.is_fifo() {
        FileType::Fifo
    } else if t.is_socket() {
        FileType::Socket
    } else if t.is_char_device() {
        FileType::CharacterDevice
    } else if t.is_block_device() {
        FileType::BlockDevice
    } else {
        FileType::Unknown
    }
}

pub(super) fn not_found() -> io::Error {
    Errno::NOENT.into()
}

fn facts_of(fd: &OwnedFd) -> Result<FileFacts, Errno> {
    let stat = rustix::fs::fstat(fd)?;
    Ok(FileFacts {
        file_type: from_raw(rustix::fs::FileType::from_raw_mode(stat.st_mode)),
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

pub(super) fn open_regular(path: &Path) -> Result<Option<File>, Refusal> {
    open_regular_at(rustix::fs::CWD, path, path).map(|opened| opened.map(|(file, _)| file))
}

/// [`open_regular`], with the file's size when opened.
pub(super) fn open_regular_sized(path: &Path) -> Result<Option<(File, u64)>, Refusal> {
    open_regular_at(rustix::fs::CWD, path, path)
        .map(|opened| opened.map(|(file, facts)| (file, facts.size)))
}

/// [`open_regular`] of `name` relative to the directory `dir` (`path` is what errors name),
/// with the facts checked.
fn open_regular_at(
    dir: impl AsFd,
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

/// How lock files are opened. Read-write: where `flock` is emulated with POSIX locks (NFS),
/// an exclusive lock needs it. With O_NONBLOCK, opening a named pipe read-write does not block
/// either; nothing is ever written to the lock file.
const LOCK_FLAGS: OFlags = OFlags::RDWR
    .union(OFlags::CREATE)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);

pub(super) fn lock_file(path: &Path) -> Result<File, Refusal> {
    let fd = rustix::fs::open(path, LOCK_FLAGS, Mode::from_raw_mode(0o600))
        .map_err(|errno| io_refusal(path, errno))?;
    lock_opened(fd, path)
}

pub(super) fn lock_at(dir: &OwnedFd, name: &str, path: &Path) -> Result<File, Refusal> {
    let fd = rustix::fs::openat(dir, name, LOCK_FLAGS, Mode::from_raw_mode(0o600))
        .map_err(|errno| io_refusal(path, errno))?;
    lock_opened(fd, path)
}

fn lock_opened(fd: OwnedFd, path: &Path) -> Result<File, Refusal> {
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

pub(super) fn open_app_dir(path: &Path) -> Result<Option<OwnedFd>, Refusal> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::NOTDIR) => {
            let what = fs::metadata(path).map_or("not a directory", |m| {
                describe_type(file_type(m.file_type()), true)
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

pub(super) fn list_dir(path: &Path) -> Result<Vec<DirItem>, Refusal> {
    let fd = match rustix::fs::open(path, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(errno) => return Err(io_refusal(path, errno)),
    };
    list_fd(&fd, path)
}

pub(super) fn list_dir_sizing(
    path: &Path,
    sized: &dyn Fn(&std::ffi::OsStr) -> bool,
) -> Result<Vec<(DirItem, Option<u64>)>, Refusal> {
    let fd = match rustix::fs::open(path, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(errno) => return Err(io_refusal(path, errno)),
    };
    list_sizing_at(&fd, path, sized)
}

pub(super) fn list_sizing_at(
    fd: &OwnedFd,
    path: &Path,
    sized: &dyn Fn(&std::ffi::OsStr) -> bool,
) -> Result<Vec<(DirItem, Option<u64>)>, Refusal> {
    Ok(list_fd(fd, path)?
        .into_iter()
        .map(|item| {
            // Relative to the open directory: one name looked up, not the whole path again.
            let size = (item.file_type == FileType::RegularFile && sized(&item.name))
                .then(|| rustix::fs::statat(fd, &item.name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW))
                .and_then(Result::ok)
                .filter(|st| {
                    rustix::fs::FileType::from_raw_mode(st.st_mode)
                        == rustix::fs::FileType::RegularFile
                })
                .map(|st| u64::try_from(st.st_size).unwrap_or(0));
            (item, size)
        })
        .collect())
}

fn list_fd(fd: &OwnedFd, path: &Path) -> Result<Vec<DirItem>, Refusal> {
    let mut items = Vec::new();
    for_each_entry(fd, &mut |name, file_type| {
        if name == b"." || name == b".." {
            return;
        }
        let raw = match file_type {
            rustix::fs::FileType::Unknown => rustix::fs::statat(
                fd,
                std::ffi::OsStr::from_bytes(name),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_or(rustix::fs::FileType::Unknown, |st| {
                rustix::fs::FileType::from_raw_mode(st.st_mode)
            }),
            known => known,
        };
        items.push(DirItem {
            name: std::ffi::OsStr::from_bytes(name).to_owned(),
            file_type: from_raw(raw),
        });
    })
    .map_err(|e| io_refusal(path, e))?;
    Ok(items)
}

/// Calls `f` with the name and type of every entry of the open directory `fd`, from its
/// start whatever was read of it before.
///
/// On Linux with `getdents64` straight into one buffer on the open descriptor: `Dir` would
/// first reopen the directory (`fcntl` and `openat` of `"."`, then a `close`) and allocate
/// its buffer twice, and a flush lists its pending directory every run.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn for_each_entry(
    fd: &OwnedFd,
    f: &mut dyn FnMut(&[u8], rustix::fs::FileType),
) -> rustix::io::Result<()> {
    // Reading restarts at the directory's beginning (the descriptor may have been listed).
    rustix::fs::seek(fd, rustix::fs::SeekFrom::Start(0))?;
    // Room for several entries of the longest name (255 bytes and a 19-byte header).
    let mut buf = Vec::with_capacity(4096);
    let mut dir = rustix::fs::RawDir::new(fd, buf.spare_capacity_mut());
    while let Some(entry) = dir.next() {
        let entry = entry?;
        f(entry.file_name().to_bytes(), entry.file_type());
    }
    Ok(())
}

/// Calls `f` with the name and type of every entry of the open directory `fd`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn for_each_entry(
    fd: &OwnedFd,
    f: &mut dyn FnMut(&[u8], rustix::fs::FileType),
) -> rustix::io::Result<()> {
    // A new descriptor of the same directory, read from its start.
    for entry in rustix::fs::Dir::read_from(fd)? {
        let entry = entry?;
        f(entry.file_name().to_bytes(), entry.file_type());
    }
    Ok(())
}

pub(super) fn open_private_dir(path: &Path) -> Result<Option<OwnedFd>, Refusal> {
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

pub(super) fn read_private_files<const N: usize>(
    dir: &Path,
    names: [&str; N],
) -> [Result<Option<Vec<u8>>, Refusal>; N] {
    match open_private_dir(dir) {
        Ok(Some(dir_fd)) => names.map(|name| read_private_at(&dir_fd, dir, name)),
        Ok(None) => names.map(|_| Ok(None)),
        Err(refusal) => names.map(|_| Err(refusal.clone())),
    }
}

fn read_private_at(dir_fd: &OwnedFd, dir: &Path, name: &str) -> Result<Option<Vec<u8>>, Refusal> {
    let path = dir.join(name);
    let Some((file, facts)) = open_regular_at(dir_fd, Path::new(name), &path)? else {
        return Ok(None);
    };
    check_private(facts, false, current_uid()).map_err(|kind| Refusal {
        path: path.clone(),
        kind,
    })?;
    let bytes = super::read_sized(file, facts.size, MAX_SECRET_BYTES).map_err(|e| Refusal {
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

pub(super) fn ensure_private_dir(path: &Path) -> Result<OwnedFd, Refusal> {
    // Most calls find it there: checked through a descriptor, as after creating it.
    if let Some(fd) = open_private_dir(path)? {
        return Ok(fd);
    }
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
    open_private_dir(path)?.ok_or_else(|| Refusal {
        path: path.to_owned(),
        kind: RefusalKind::Io(
            io::ErrorKind::NotFound,
            "vanished while being created".into(),
        ),
    })
}

pub(super) fn ensure_dir(path: &Path) -> Result<(), Refusal> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| Refusal {
            path: path.to_owned(),
            kind: RefusalKind::Io(e.kind(), e.to_string()),
        })
}

/// Creates a new temporary file `.tmp-<16 random hex digits>` in the directory `dir` holding
/// `bytes`, with permission bits exactly `mode`, and returns it with its name. Created with
/// `O_CREAT|O_EXCL`, which never follows a symlink nor opens an existing file: a planted name
/// is skipped for another random one. On a failed write the file is removed again.
fn temp_file_at(dir: &OwnedFd, bytes: &[u8], mode: u32) -> io::Result<(File, String)> {
    use rand::TryRngCore as _;
    let flags = OFlags::WRONLY
        .union(OFlags::CREATE)
        .union(OFlags::EXCL)
        .union(OFlags::NOFOLLOW)
        .union(OFlags::NOCTTY)
        .union(OFlags::CLOEXEC);
    let mut attempts = 0;
    let (fd, name) = loop {
        let random = rand::rngs::OsRng.try_next_u64().map_err(io::Error::other)?;
        let name = format!(".tmp-{random:016x}");
        match rustix::fs::openat(dir, &name, flags, Mode::from_raw_mode(mode)) {
            Ok(fd) => break (fd, name),
            Err(Errno::EXIST) if attempts < 8 => attempts += 1,
            Err(errno) => return Err(errno.into()),
        }
    };
    let written = (|| {
        // The umask may have narrowed the mode; it can never have widened it. Made exact only
        // when it differs: an fstat is cheaper than a chmod, which dirties the inode again.
        if rustix::fs::fstat(&fd)?.st_mode & 0o7777 != mode {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
        }
        let mut file = File::from(fd);
        file.write_all(bytes)?;
        Ok::<_, io::Error>(file)
    })();
    match written {
        Ok(file) => Ok((file, name)),
        Err(err) => {
            discard_temp(dir, &name);
            Err(err)
        }
    }
}

/// Removes the temporary file `tmp` of `dir` after a failed write (best effort: a leftover is
/// swept later by [`remove_stale_temp_files`]).
fn discard_temp(dir: &OwnedFd, tmp: &str) {
    let _ = rustix::fs::unlinkat(dir, tmp, rustix::fs::AtFlags::empty());
}

/// Renames the temporary file `tmp` of `dir` over `name`, or removes it if that fails.
fn rename_into_place(dir: &OwnedFd, tmp: &str, name: &str) -> io::Result<()> {
    rustix::fs::renameat(dir, tmp, dir, name).map_err(|errno| {
        discard_temp(dir, tmp);
        io::Error::from(errno)
    })
}

pub(super) fn write_atomic(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir_fd = open_dir(dir).map_err(Refusal::into_io_error)?;
    let (file, tmp) = temp_file_at(&dir_fd, bytes, mode)?;
    if let Err(err) = file.sync_all() {
        discard_temp(&dir_fd, &tmp);
        return Err(err);
    }
    drop(file);
    rename_into_place(&dir_fd, &tmp, name)?;
    File::from(dir_fd).sync_all()
}

pub(super) fn write_replacing(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir_fd = open_dir(dir).map_err(Refusal::into_io_error)?;
    write_replacing_at(&dir_fd, name, bytes, mode)
}

pub(super) fn write_replacing_at(
    dir: &OwnedFd,
    name: &str,
    bytes: &[u8],
    mode: u32,
) -> io::Result<()> {
    let (file, tmp) = temp_file_at(dir, bytes, mode)?;
    drop(file);
    rename_into_place(dir, &tmp, name)
}

pub(super) fn remove_at(dir: &OwnedFd, name: &str) -> io::Result<()> {
    rustix::fs::unlinkat(dir, name, rustix::fs::AtFlags::empty()).map_err(io::Error::from)
}

pub(super) fn remove_stale_temp_files(dir: &Path) {
    if let Ok(fd) = open_dir(dir) {
        remove_stale_temp_files_at(&fd);
    }
}

pub(super) fn remove_stale_temp_files_at(fd: &OwnedFd) {
    let Ok(items) = list_fd(fd, Path::new(".")) else {
        return;
    };
    for item in items {
        if item.file_type != FileType::RegularFile || !item.name.as_bytes().starts_with(b".tmp-") {
            continue;
        }
        // Checked again right before removal, relative to the directory and not following
        // a symlink; `unlinkat` removes a name, never what a symlink points to.
        let Ok(stat) = rustix::fs::statat(fd, &item.name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        else {
            continue;
        };
        let modified = std::time::UNIX_EPOCH
            + std::time::Duration::new(
                u64::try_from(stat.st_mtime).unwrap_or(0),
                u32::try_from(stat.st_mtime_nsec).unwrap_or(0),
            );
        let stale = modified.elapsed().is_ok_and(|age| age > STALE_TEMP_AGE);
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile
            && stale
        {
            let _ = rustix::fs::unlinkat(fd, &item.name, rustix::fs::AtFlags::empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_lists_whole_and_alike_however_often_its_descriptor_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        // More entries, with long names, than one 4 KB read of the directory returns.
        let mut expected: Vec<String> = (0..300)
            .map(|i| format!("{i:03}-{}.json", "n".repeat(200)))
            .collect();
        for name in &expected {
            fs::write(dir.path().join(name), b"{}").unwrap();
        }
        fs::create_dir(dir.path().join("sub")).unwrap();
        expected.push("sub".to_owned());
        expected.sort();
        let fd = open_dir(dir.path()).unwrap();
        let listed = |fd: &OwnedFd| {
            let mut items: Vec<(String, FileType)> = list_fd(fd, dir.path())
                .unwrap()
                .into_iter()
                .map(|item| (item.name.into_string().unwrap(), item.file_type))
                .collect();
            items.sort_by(|a, b| a.0.cmp(&b.0));
            items
        };
        let first = listed(&fd);
        let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, expected, "no `.`/`..`, every entry once");
        assert_eq!(first.last().unwrap().1, FileType::Directory);
        assert!(
            first[..300]
                .iter()
                .all(|(_, t)| *t == FileType::RegularFile)
        );
        assert_eq!(
            listed(&fd),
            first,
            "a second listing starts from the beginning"
        );
    }
}
