//! The store where there is no owner-only permission check yet (every target that is not
//! Unix, Windows included). It fails closed: it reads what is not secret and removes files,
//! but creates, locks and writes nothing, and refuses a private directory or secret that
//! exists, with [`UNSUPPORTED_REASON`]. Telemetry stays off there (see [`crate::platform`]),
//! so none of this is reached while recording; it keeps `status`, `show`, `verify-payload`
//! and `disable` working and makes any write that slips through fail.
//!
//! Opens here check the type on the path first, then on the opened file: without
//! `O_NOFOLLOW` a file swapped in between is not caught, which is acceptable only because
//! nothing read here is trusted (no consent, no secret, no ledger is ever accepted).

use std::fs::{self, File};
use std::io;
use std::path::Path;

use super::{DirItem, FileType, Refusal, RefusalKind, describe_type};
use crate::platform::UNSUPPORTED_REASON;

/// Never made: no directory is ever accepted as private here.
pub(super) type DirHandle = std::convert::Infallible;

pub(super) fn file_type(t: fs::FileType) -> FileType {
    if t.is_symlink() {
        FileType::Symlink
    } else if t.is_dir() {
        FileType::Directory
    } else if t.is_file() {
        FileType::RegularFile
    } else {
        FileType::Unknown
    }
}

pub(super) fn not_found() -> io::Error {
    io::ErrorKind::NotFound.into()
}

fn unsupported(path: &Path) -> Refusal {
    Refusal {
        path: path.to_owned(),
        kind: RefusalKind::Io(io::ErrorKind::Unsupported, UNSUPPORTED_REASON.to_owned()),
    }
}

fn io_refusal(path: &Path, err: &io::Error) -> Refusal {
    Refusal {
        path: path.to_owned(),
        kind: RefusalKind::Io(err.kind(), err.to_string()),
    }
}

/// The type at `path` without following a symlink; `Ok(None)` when nothing is there.
fn type_at(path: &Path) -> Result<Option<FileType>, Refusal> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(file_type(meta.file_type()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_refusal(path, &e)),
    }
}

/// [`open_regular`], with the file's size when opened.
pub(super) fn open_regular_sized(path: &Path) -> Result<Option<(File, u64)>, Refusal> {
    let Some(file) = open_regular(path)? else {
        return Ok(None);
    };
    let size = file.metadata().map_err(|e| io_refusal(path, &e))?.len();
    Ok(Some((file, size)))
}

pub(super) fn open_regular(path: &Path) -> Result<Option<File>, Refusal> {
    let wrong = |file_type| match file_type {
        FileType::Symlink => RefusalKind::Symlink,
        other => RefusalKind::WrongType(describe_type(other, false)),
    };
    match type_at(path)? {
        None => return Ok(None),
        Some(FileType::RegularFile) => {}
        Some(other) => {
            return Err(Refusal {
                path: path.to_owned(),
                kind: wrong(other),
            });
        }
    }
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_refusal(path, &e)),
    };
    let meta = file.metadata().map_err(|e| io_refusal(path, &e))?;
    if !meta.is_file() {
        return Err(Refusal {
            path: path.to_owned(),
            kind: wrong(file_type(meta.file_type())),
        });
    }
    Ok(Some(file))
}

pub(super) fn lock_file(path: &Path) -> Result<File, Refusal> {
    Err(unsupported(path))
}

/// `Ok(None)` when absent (so a fresh install reads as one), else refused: its owner and
/// permissions cannot be checked here.
fn refuse_existing(path: &Path) -> Result<Option<DirHandle>, Refusal> {
    match type_at(path)? {
        None => Ok(None),
        Some(_) => Err(unsupported(path)),
    }
}

pub(super) fn open_app_dir(path: &Path) -> Result<Option<DirHandle>, Refusal> {
    refuse_existing(path)
}

pub(super) fn open_private_dir(path: &Path) -> Result<Option<DirHandle>, Refusal> {
    refuse_existing(path)
}

pub(super) fn read_private_files<const N: usize>(
    dir: &Path,
    names: [&str; N],
) -> [Result<Option<Vec<u8>>, Refusal>; N] {
    // The directory is refused if it exists; an absent one holds no secret.
    let dir = refuse_existing(dir).map(|_| None);
    names.map(|_| dir.clone())
}

pub(super) fn list_dir_sizing(
    path: &Path,
    sized: &dyn Fn(&std::ffi::OsStr) -> bool,
) -> Result<Vec<(DirItem, Option<u64>)>, Refusal> {
    Ok(list_dir(path)?
        .into_iter()
        .map(|item| {
            let size = (item.file_type == FileType::RegularFile && sized(&item.name))
                .then(|| std::fs::symlink_metadata(path.join(&item.name)))
                .and_then(Result::ok)
                .filter(std::fs::Metadata::is_file)
                .map(|m| m.len());
            (item, size)
        })
        .collect())
}

pub(super) fn list_dir(path: &Path) -> Result<Vec<DirItem>, Refusal> {
    match type_at(path)? {
        Some(FileType::Directory) => {}
        Some(FileType::Symlink) => {
            return Err(Refusal {
                path: path.to_owned(),
                kind: RefusalKind::Symlink,
            });
        }
        Some(_) => {
            return Err(Refusal {
                path: path.to_owned(),
                kind: RefusalKind::WrongType("not a directory"),
            });
        }
        None => return Err(io_refusal(path, &not_found())),
    }
    let entries = fs::read_dir(path).map_err(|e| io_refusal(path, &e))?;
    let mut items = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_refusal(path, &e))?;
        // A directory entry's own type: a symlink is reported as one, never followed.
        let file_type = entry.file_type().map_or(FileType::Unknown, file_type);
        items.push(DirItem {
            name: entry.file_name(),
            file_type,
        });
    }
    Ok(items)
}

pub(super) fn ensure_private_dir(path: &Path) -> Result<DirHandle, Refusal> {
    Err(unsupported(path))
}

pub(super) fn ensure_dir(path: &Path) -> Result<(), Refusal> {
    Err(unsupported(path))
}

pub(super) fn write_atomic(dir: &Path, name: &str, _bytes: &[u8], _mode: u32) -> io::Result<()> {
    Err(unsupported(&dir.join(name)).into_io_error())
}

pub(super) fn write_replacing(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_atomic(dir, name, bytes, mode)
}

/// Nothing is ever written here, so no temporary file of the toolkit's can be left over.
pub(super) fn remove_stale_temp_files(_dir: &Path) {}

// What an open directory does: never reached, since none is ever opened here (and only built
// where this is the store, not for its tests on Unix).

#[cfg(not(unix))]
pub(super) fn lock_at(dir: &DirHandle, _name: &str, _path: &Path) -> Result<File, Refusal> {
    match *dir {}
}

#[cfg(not(unix))]
pub(super) fn write_replacing_at(
    dir: &DirHandle,
    _name: &str,
    _bytes: &[u8],
    _mode: u32,
) -> io::Result<()> {
    match *dir {}
}

#[cfg(not(unix))]
pub(super) fn list_sizing_at(
    dir: &DirHandle,
    _path: &Path,
    _sized: &dyn Fn(&std::ffi::OsStr) -> bool,
) -> Result<Vec<(DirItem, Option<u64>)>, Refusal> {
    match *dir {}
}

#[cfg(not(unix))]
pub(super) fn remove_stale_temp_files_at(dir: &DirHandle) {
    match *dir {}
}

#[cfg(not(unix))]
pub(super) fn remove_at(dir: &DirHandle, _name: &str) -> io::Result<()> {
    match *dir {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsupported_kind() -> RefusalKind {
        RefusalKind::Io(io::ErrorKind::Unsupported, UNSUPPORTED_REASON.to_owned())
    }

    /// Nothing is created, locked or written, and nothing is left behind.
    #[test]
    fn every_write_is_refused_and_nothing_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let app = d.join("acme");
        assert_eq!(ensure_dir(&app).unwrap_err().kind, unsupported_kind());
        assert_eq!(
            ensure_private_dir(&app.join("secrets")).unwrap_err().kind,
            unsupported_kind()
        );
        assert_eq!(
            lock_file(&d.join(".lock")).unwrap_err().kind,
            unsupported_kind()
        );
        let err = write_atomic(d, "config.toml", b"x", 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        assert!(
            err.to_string().contains("no owner-only permission check"),
            "{err}"
        );
        assert!(write_replacing(d, ".index", b"x", 0o600).is_err());
        remove_stale_temp_files(d);
        assert_eq!(fs::read_dir(d).unwrap().count(), 0, "something was created");
    }

    /// A regular file opens with its size; nothing there is `None`, a directory refused.
    #[test]
    fn open_regular_sized_gives_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ledger.json");
        fs::write(&file, b"12345").unwrap();
        let (_, size) = open_regular_sized(&file).unwrap().unwrap();
        assert_eq!(size, 5);
        assert!(
            open_regular_sized(&dir.path().join("absent"))
                .unwrap()
                .is_none()
        );
        assert!(open_regular_sized(dir.path()).is_err());
    }

    /// A fresh install reads as one; a private directory or secret that exists is refused,
    /// since its owner and permissions cannot be checked.
    #[test]
    fn absent_private_things_are_none_and_existing_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("acme");
        let secrets = app.join("secrets");
        assert!(open_app_dir(&app).unwrap().is_none());
        assert!(open_private_dir(&secrets).unwrap().is_none());
        let [token, secret] = read_private_files(&secrets, ["consent.token", "install.secret"]);
        assert_eq!((token.unwrap(), secret.unwrap()), (None, None));
        fs::create_dir_all(&secrets).unwrap();
        fs::write(secrets.join("consent.token"), b"forged").unwrap();
        for refusal in [
            open_app_dir(&app).unwrap_err(),
            open_private_dir(&secrets).unwrap_err(),
        ]
        .into_iter()
        .chain(
            read_private_files(&secrets, ["consent.token", "install.secret"])
                .map(|r| r.unwrap_err()),
        ) {
            assert_eq!(refusal.kind, unsupported_kind(), "{refusal}");
        }
    }

    /// What is not secret is still read and listed (status, show, verify-payload), and a
    /// directory or a missing file is told apart as on Unix.
    #[test]
    fn plain_files_are_read_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("a.json"), b"{}").unwrap();
        fs::create_dir(d.join("sub")).unwrap();
        let mut file = open_regular(&d.join("a.json")).unwrap().expect("a file");
        let mut text = String::new();
        io::Read::read_to_string(&mut file, &mut text).unwrap();
        assert_eq!(text, "{}");
        assert!(open_regular(&d.join("absent.json")).unwrap().is_none());
        assert_eq!(
            open_regular(&d.join("sub")).unwrap_err().kind,
            RefusalKind::WrongType("a directory, not a regular file")
        );
        let mut listed: Vec<(String, FileType)> = list_dir(d)
            .unwrap()
            .into_iter()
            .map(|e| (e.name.into_string().unwrap(), e.file_type))
            .collect();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            listed,
            [
                ("a.json".to_owned(), FileType::RegularFile),
                ("sub".to_owned(), FileType::Directory)
            ]
        );
        assert!(list_dir(&d.join("a.json")).is_err());
        assert!(list_dir(&d.join("absent")).is_err());
        let sized = super::super::sized_names(list_dir_sizing(d, &super::super::is_json));
        assert_eq!(
            sized,
            [("a.json".to_owned(), Some(2)), ("sub".to_owned(), None)]
        );
        assert_eq!(not_found().kind(), io::ErrorKind::NotFound);
    }

    /// A symlink is refused where a file or a directory is read, never followed.
    #[cfg(unix)]
    #[test]
    fn symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("real"), b"x").unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("link")).unwrap();
        std::os::unix::fs::symlink(d, d.join("dirlink")).unwrap();
        assert_eq!(
            open_regular(&d.join("link")).unwrap_err().kind,
            RefusalKind::Symlink
        );
        assert_eq!(
            list_dir(&d.join("dirlink")).unwrap_err().kind,
            RefusalKind::Symlink
        );
        let listed = list_dir(d).unwrap();
        let link = listed.iter().find(|e| e.name == "link").unwrap();
        assert_eq!(link.file_type, FileType::Symlink);
    }
}
