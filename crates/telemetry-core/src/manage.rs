//! What the user does to their own telemetry: enable (give consent) and disable (take it
//! back and delete what was kept).

use std::fmt;
use std::path::PathBuf;

use crate::config::{self, ConfigSource, SetError};
use crate::consent::{self, WriteError};
use crate::decision::Input;
use crate::telemetry::{ReleasePolicy, Telemetry};

/// Why `enable` did nothing.
#[derive(Debug)]
pub enum EnableError {
    /// A hard override is active: nothing may enable telemetry (exit status 3).
    Refused(Box<Input>),
    /// No app directory could be resolved (e.g. no HOME).
    NoDirectory,
    /// The app directory is refused (another user may write to it, or owns it): no consent
    /// is written where someone else could forge or remove it. Why, and the fix.
    UntrustedDirectory(String),
    /// This platform has no owner-only permission check yet ([`crate::platform`]): consent
    /// and the install secret could not be kept private, so none is written. Why.
    UnsupportedPlatform(&'static str),
    /// The configuration cannot be read safely; fix it first.
    Config(String),
    /// Writing the token or secret failed.
    Write(WriteError),
    /// Updating `telemetry.enabled` failed.
    SetConfig(SetError),
}

impl fmt::Display for EnableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnableError::Refused(input) => write!(
                f,
                "{}={} is set ({}): telemetry cannot be enabled while it is set",
                input.name, input.value, input.source
            ),
            EnableError::NoDirectory => f.write_str(
                "no directory for telemetry files: set HOME, XDG_CONFIG_HOME or the app's _TELEMETRY_DIR",
            ),
            EnableError::UntrustedDirectory(m) => write!(f, "{m}; nothing was changed"),
            EnableError::UnsupportedPlatform(why) => write!(
                f,
                "telemetry cannot be enabled on {}: {why}; nothing was changed",
                std::env::consts::OS
            ),
            EnableError::Config(m) => write!(f, "{m}"),
            EnableError::Write(e) => write!(f, "cannot store consent: {e}"),
            EnableError::SetConfig(e) => write!(f, "cannot update the config: {e}"),
        }
    }
}

impl std::error::Error for EnableError {}

/// What `enable` did.
#[derive(Clone, Debug)]
pub struct EnableOutcome {
    /// The consent token written.
    pub token_path: PathBuf,
    /// The install secret (created if absent).
    pub secret_path: PathBuf,
    /// `telemetry.enabled = false` in the config file was changed to `true`.
    pub config_file_updated: Option<PathBuf>,
    /// A setting that still keeps telemetry off, which `enable` cannot change.
    pub still_disabled_by: Option<String>,
}

/// What `disable` removed.
#[derive(Clone, Debug, Default)]
pub struct DisableOutcome {
    /// Files removed.
    pub removed: Vec<PathBuf>,
    /// `telemetry.enabled = false` was written (opt-out apps).
    pub config_file_updated: Option<PathBuf>,
    /// Files that could not be removed, with the error.
    pub failed: Vec<(PathBuf, String)>,
    /// Files left in place because the toolkit did not create them (symlinks, named pipes),
    /// with why.
    pub kept: Vec<(PathBuf, String)>,
    /// Telemetry is still enabled after all (decided again once the files were removed), and
    /// what keeps it on: e.g. a consent token that could not be removed.
    pub still_enabled: Option<String>,
}

impl Telemetry {
    /// Gives consent: writes the consent token (and a fresh install secret). Refuses under
    /// any hard override. If the config file says `telemetry.enabled = false`, the user's
    /// explicit `enable` flips it to `true` and says so.
    pub fn enable(&self) -> Result<EnableOutcome, EnableError> {
        if let Some(input) = self.decision().hard_override() {
            return Err(EnableError::Refused(Box::new(input.clone())));
        }
        if let Some(why) = crate::platform::unsupported_reason() {
            return Err(EnableError::UnsupportedPlatform(why));
        }
        let paths = self.paths().ok_or(EnableError::NoDirectory)?;
        if let Some(input) = self
            .decision()
            .input(crate::telemetry::APP_DIRECTORY_INPUT)
            .filter(|i| i.effect == crate::decision::Effect::Disables)
        {
            return Err(EnableError::UntrustedDirectory(format!(
                "{}: {}",
                paths.root().display(),
                input.reason
            )));
        }
        if let Some(problem) = &self.config().problem {
            return Err(EnableError::Config(format!(
                "{problem}; nothing was changed"
            )));
        }
        let mut config_file_updated = None;
        let mut still_disabled_by = None;
        if self.config().config.telemetry.enabled == Some(false) {
            match self.config().source_of("telemetry.enabled") {
                ConfigSource::File(path) => {
                    config::set(paths, "telemetry.enabled", "true")
                        .map_err(EnableError::SetConfig)?;
                    config_file_updated = Some(path);
                }
                other => {
                    still_disabled_by = Some(format!("telemetry.enabled = false from {other}"));
                }
            }
        }
        consent::grant(paths, self.app_name(), self.consent_version())
            .map_err(EnableError::Write)?;
        Ok(EnableOutcome {
            token_path: paths.consent_token(),
            secret_path: paths.install_secret(),
            config_file_updated,
            still_disabled_by,
        })
    }

    /// Takes consent back: removes the consent token, the install secret, every pending
    /// payload and preview, the ledger and the notice marker — everything but the config
    /// file. For an opt-out app it also writes `telemetry.enabled = false`, since the
    /// absence of a token does not turn an opt-out app off — except where the platform keeps
    /// telemetry off anyway ([`crate::platform`]), whose store writes nothing.
    pub fn forget(&self) -> DisableOutcome {
        let (files, kept) = self
            .paths()
            .map_or_else(Default::default, crate::inspect::files_except_config);
        let removed = self.remove_files(files);
        let mut outcome = DisableOutcome {
            removed: removed.removed,
            config_file_updated: None,
            failed: removed.failed,
            kept,
            still_enabled: None,
        };
        if self.policy() == ReleasePolicy::OptOut
            && crate::platform::unsupported_reason().is_none()
            && let Some(paths) = self.paths()
        {
            match config::set(paths, "telemetry.enabled", "false") {
                Ok(()) => outcome.config_file_updated = Some(paths.config_file()),
                Err(e) => outcome.failed.push((paths.config_file(), e.to_string())),
            }
        }
        // Never claim what did not happen: decide again from what is on disk now.
        let now = self.builder_settings().clone().build_inspector();
        if now.is_enabled() {
            outcome.still_enabled = Some(match now.decision().decided_by {
                Some(i) => {
                    let input = &now.decision().inputs[i];
                    format!("{} ({}) still enables it", input.name, input.source)
                }
                None => "the app's policy still enables it".to_owned(),
            });
        }
        outcome
    }

    fn consent_version(&self) -> u32 {
        self.builder_settings().consent_version_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsupported_platform_is_named_with_why_and_that_nothing_changed() {
        let text =
            EnableError::UnsupportedPlatform(crate::platform::UNSUPPORTED_REASON).to_string();
        assert!(
            text.starts_with(&format!(
                "telemetry cannot be enabled on {}: this platform has no owner-only permission check yet",
                std::env::consts::OS
            )),
            "{text}"
        );
        assert!(text.ends_with("; nothing was changed"), "{text}");
    }

    /// On Unix the platform never refuses: `enable` goes on to write consent.
    #[cfg(unix)]
    #[test]
    fn unix_enables() {
        let home = tempfile::tempdir().unwrap();
        let env = crate::Env::from_pairs([("HOME", home.path().as_os_str())]);
        let telemetry = Telemetry::builder("acme")
            .env(env)
            .print_warnings(false)
            .build_inspector();
        let outcome = telemetry.enable().expect("enabled");
        assert!(outcome.token_path.is_file());
    }
}
