//! Warnings: what went wrong while deciding, and where.
//!
//! Deciding never fails: any doubt turns telemetry off and leaves a [`Warning`] that names
//! the file or variable involved, so the user can fix it.

use std::fmt;
use std::path::PathBuf;

/// Where a warning's subject lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// An environment variable.
    EnvVar(String),
    /// A file or directory.
    Path(PathBuf),
    /// A key in a file.
    FileKey {
        /// The file.
        path: PathBuf,
        /// The dotted key.
        key: String,
    },
    /// The app's own code (builder options).
    Programmatic,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::EnvVar(name) => write!(f, "environment variable {name}"),
            Location::Path(path) => write!(f, "{}", path.display()),
            Location::FileKey { path, key } => write!(f, "{} (key {key})", path.display()),
            Location::Programmatic => f.write_str("the app's code"),
        }
    }
}

/// One problem found while deciding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// Where the problem is.
    pub location: Location,
    /// What is wrong, in plain words.
    pub message: String,
}

impl Warning {
    /// A warning about `location`.
    pub fn new(location: Location, message: impl Into<String>) -> Self {
        Self {
            location,
            message: message.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}
