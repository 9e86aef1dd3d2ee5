//! The consent token and the install secret, both under `secrets/`.
//!
//! The token records that the user said yes, when, and to which consent version. It is
//! only ever read through [`crate::store::read_private_file`], which refuses symlinks,
//! other owners, non-regular files and any group/other permission bit.

use std::time::SystemTime;

use rand::TryRngCore;
use serde::{Deserialize, Serialize};

use crate::paths::{CONSENT_TOKEN_FILE, INSTALL_SECRET_FILE, Paths};
use crate::store::{self, Refusal};

/// The on-disk consent token (`secrets/consent.token`, JSON, mode 0600).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentToken {
    /// Token format; currently 1.
    pub format: u32,
    /// The app the consent is for.
    pub app: String,
    /// The consent version the user agreed to.
    pub consent_version: u32,
    /// When consent was given (UTC, seconds).
    pub given_at: String,
}

/// What was found at `secrets/consent.token`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenState {
    /// No token.
    Absent,
    /// A valid token for the current consent version.
    Valid(ConsentToken),
    /// A valid token for an older (or other) consent version: not consent.
    Outdated {
        /// The token found.
        token: ConsentToken,
        /// The version the app requires.
        required: u32,
    },
    /// A token that was refused, with the reason.
    Refused(String),
}

impl TokenState {
    /// `"absent"`, `"present"` or `"refused"` (an outdated token is present but not consent).
    pub fn label(&self) -> &'static str {
        match self {
            TokenState::Absent => "absent",
            TokenState::Valid(_) | TokenState::Outdated { .. } => "present",
            TokenState::Refused(_) => "refused",
        }
    }
}

/// Reads and checks the consent token for `app`.
pub fn load_token(paths: &Paths, app: &str, required_version: u32) -> TokenState {
    let read = store::read_private_file(&paths.secrets_dir(), CONSENT_TOKEN_FILE);
    token_state(read, paths, app, required_version)
}

/// Reads the consent token and the install secret through one opening of the secrets
/// directory: what a run that may record needs (the secret is used only if it does).
pub fn load_token_and_secret(
    paths: &Paths,
    app: &str,
    required_version: u32,
) -> (TokenState, Result<Option<[u8; 32]>, Refusal>) {
    let [token, secret] = store::read_private_files(
        &paths.secrets_dir(),
        [CONSENT_TOKEN_FILE, INSTALL_SECRET_FILE],
    );
    (
        token_state(token, paths, app, required_version),
        install_secret(secret, paths),
    )
}

/// Checks what was read at the consent token's path.
fn token_state(
    read: Result<Option<Vec<u8>>, Refusal>,
    paths: &Paths,
    app: &str,
    required_version: u32,
) -> TokenState {
    let bytes = match read {
        Ok(None) => return TokenState::Absent,
        Ok(Some(bytes)) => bytes,
        Err(refusal) => return TokenState::Refused(refusal.to_string()),
    };
    let path = paths.consent_token();
    let token: ConsentToken = match serde_json::from_slice(&bytes) {
        Ok(token) => token,
        Err(err) => {
            return TokenState::Refused(format!(
                "{} does not parse as a consent token ({err})",
                path.display()
            ));
        }
    };
    if token.format != 1 || token.app != app {
        return TokenState::Refused(format!(
            "{} is a token of format {} for app {:?}, not format 1 for {app:?}",
            path.display(),
            token.format,
            token.app
        ));
    }
    if token.consent_version != required_version {
        return TokenState::Outdated {
            token,
            required: required_version,
        };
    }
    TokenState::Valid(token)
}

/// Why consent could not be written.
#[derive(Debug)]
pub enum WriteError {
    /// A directory or file was refused by the secure store.
    Refused(Refusal),
    /// An I/O error.
    Io(std::io::Error),
    /// The OS random generator failed.
    Random(String),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Refused(r) => r.fmt(f),
            WriteError::Io(e) => e.fmt(f),
            WriteError::Random(e) => write!(f, "the OS random generator failed: {e}"),
        }
    }
}

impl std::error::Error for WriteError {}

/// Writes a consent token and, if absent, a fresh install secret. Creates `secrets/` 0700.
pub fn grant(paths: &Paths, app: &str, consent_version: u32) -> Result<ConsentToken, WriteError> {
    let secrets = paths.secrets_dir();
    store::ensure_private_dir(&secrets).map_err(WriteError::Refused)?;
    let token = ConsentToken {
        format: 1,
        app: app.to_owned(),
        consent_version,
        given_at: crate::time::rfc3339_utc(SystemTime::now()),
    };
    let mut bytes = serde_json::to_vec_pretty(&token).map_err(|e| WriteError::Io(e.into()))?;
    bytes.push(b'\n');
    ensure_install_secret(paths)?;
    store::write_atomic(&secrets, CONSENT_TOKEN_FILE, &bytes, 0o600).map_err(WriteError::Io)?;
    Ok(token)
}

/// The install secret, created (with `secrets/`) if absent.
pub fn ensure_install_secret(paths: &Paths) -> Result<Option<[u8; 32]>, WriteError> {
    let secrets = paths.secrets_dir();
    store::ensure_private_dir(&secrets).map_err(WriteError::Refused)?;
    if let Some(secret) = read_install_secret(paths).map_err(WriteError::Refused)? {
        return Ok(Some(secret));
    }
    let mut secret = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut secret)
        .map_err(|e| WriteError::Random(e.to_string()))?;
    store::write_atomic(
        &secrets,
        INSTALL_SECRET_FILE,
        hex(&secret).as_bytes(),
        0o600,
    )
    .map_err(WriteError::Io)?;
    Ok(Some(secret))
}

/// The install secret, if one exists and passes the store's checks.
pub fn read_install_secret(paths: &Paths) -> Result<Option<[u8; 32]>, Refusal> {
    install_secret(
        store::read_private_file(&paths.secrets_dir(), INSTALL_SECRET_FILE),
        paths,
    )
}

/// Checks what was read at the install secret's path.
fn install_secret(
    read: Result<Option<Vec<u8>>, Refusal>,
    paths: &Paths,
) -> Result<Option<[u8; 32]>, Refusal> {
    let Some(bytes) = read? else {
        return Ok(None);
    };
    let refused = |why: &str| Refusal {
        path: paths.install_secret(),
        kind: store::RefusalKind::Io(std::io::ErrorKind::InvalidData, why.to_owned()),
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| refused("not valid UTF-8"))?;
    let text = text.trim();
    if text.len() != 64 {
        return Err(refused("not a 64-digit hex secret"));
    }
    let mut secret = [0u8; 32];
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
            .map_err(|_| refused("not a 64-digit hex secret"))?;
    }
    Ok(Some(secret))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// `grant` writes through the Unix store; off Unix the store refuses every write.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn grant_then_load_round_trips_and_versions_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::at(dir.path());
        grant(&paths, "acme", 2).unwrap();
        assert!(matches!(
            load_token(&paths, "acme", 2),
            TokenState::Valid(_)
        ));
        assert!(matches!(
            load_token(&paths, "acme", 3),
            TokenState::Outdated { required: 3, .. }
        ));
        assert!(matches!(
            load_token(&paths, "other", 2),
            TokenState::Refused(_)
        ));
        assert!(read_install_secret(&paths).unwrap().is_some());
    }

    #[test]
    fn install_secret_survives_a_second_grant() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::at(dir.path());
        grant(&paths, "acme", 1).unwrap();
        let first = read_install_secret(&paths).unwrap();
        grant(&paths, "acme", 1).unwrap();
        assert_eq!(read_install_secret(&paths).unwrap(), first);
    }
}
