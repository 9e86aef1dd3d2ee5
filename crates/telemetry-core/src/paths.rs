//! Where an app's telemetry files live (DESIGN §5).
//!
//! On Unix, macOS included: `$<APP>_TELEMETRY_DIR`, else `$XDG_CONFIG_HOME/<app>`, else
//! `$HOME/.config/<app>` (macOS keeps the XDG rule, as command-line tools there commonly do,
//! rather than `~/Library/Application Support`). On Windows: `$<APP>_TELEMETRY_DIR`, else
//! `%APPDATA%\<app>`. Only absolute paths are used; everything is read through [`Env`].

use std::path::{Path, PathBuf};

use crate::app::AppName;
use crate::env::{Env, EnvValue};
use crate::warning::{Location, Warning};

/// Every path the toolkit may use for one app. Resolving paths creates nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    root: PathBuf,
    /// Which rule chose the root.
    pub root_source: RootSource,
}

/// How the app directory was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootSource {
    /// `$<APP>_TELEMETRY_DIR`.
    DirOverride(String),
    /// `$XDG_CONFIG_HOME/<app>`.
    XdgConfigHome,
    /// `$HOME/.config/<app>`.
    Home,
    /// `%APPDATA%\<app>` (Windows).
    AppData,
    /// Given by the app's code.
    Programmatic,
}

impl Paths {
    /// Paths rooted at an explicit directory.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            root_source: RootSource::Programmatic,
        }
    }

    /// Resolves the app directory: `$<APP>_TELEMETRY_DIR`, else `$XDG_CONFIG_HOME/<app>`
    /// (absolute paths only, as the XDG spec says), else `$HOME/.config/<app>`; on Windows
    /// `$<APP>_TELEMETRY_DIR`, else `%APPDATA%\<app>`.
    ///
    /// Returns the warnings for ignored variables; `None` when no directory can be found,
    /// which means telemetry must stay disabled.
    pub fn resolve(app: &AppName, env: &Env) -> (Option<Self>, Vec<Warning>) {
        Self::resolve_as(Convention::CURRENT, app, env)
    }

    /// [`Paths::resolve`] by the rule of `convention`, whatever this platform is.
    pub(crate) fn resolve_as(
        convention: Convention,
        app: &AppName,
        env: &Env,
    ) -> (Option<Self>, Vec<Warning>) {
        let mut warnings = Vec::new();
        let dir_var = app.dir_var();
        if let Some(root) = absolute_var(env, &dir_var, &mut warnings) {
            return (
                Some(Self {
                    root,
                    root_source: RootSource::DirOverride(dir_var),
                }),
                warnings,
            );
        }
        if convention == Convention::Windows {
            return Self::app_data(app, env, &dir_var, warnings);
        }
        if let Some(base) = absolute_var(env, "XDG_CONFIG_HOME", &mut warnings) {
            return (
                Some(Self {
                    root: base.join(app.as_str()),
                    root_source: RootSource::XdgConfigHome,
                }),
                warnings,
            );
        }
        if let Some(home) = absolute_var(env, "HOME", &mut warnings) {
            return (
                Some(Self {
                    root: home.join(".config").join(app.as_str()),
                    root_source: RootSource::Home,
                }),
                warnings,
            );
        }
        warnings.push(Warning::new(
            Location::EnvVar("HOME".into()),
            format!(
                "no usable HOME, XDG_CONFIG_HOME or {dir_var}: telemetry has no directory and stays disabled"
            ),
        ));
        (None, warnings)
    }

    fn app_data(
        app: &AppName,
        env: &Env,
        dir_var: &str,
        mut warnings: Vec<Warning>,
    ) -> (Option<Self>, Vec<Warning>) {
        if let Some(base) = absolute_var(env, "APPDATA", &mut warnings) {
            return (
                Some(Self {
                    root: base.join(app.as_str()),
                    root_source: RootSource::AppData,
                }),
                warnings,
            );
        }
        warnings.push(Warning::new(
            Location::EnvVar("APPDATA".into()),
            format!(
                "no usable APPDATA or {dir_var}: telemetry has no directory and stays disabled"
            ),
        ));
        (None, warnings)
    }

    /// The app directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `config.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    /// `secrets/` (0700).
    pub fn secrets_dir(&self) -> PathBuf {
        self.root.join("secrets")
    }
    /// `secrets/consent.token` (0600).
    pub fn consent_token(&self) -> PathBuf {
        self.secrets_dir().join(CONSENT_TOKEN_FILE)
    }
    /// `secrets/install.secret` (0600).
    pub fn install_secret(&self) -> PathBuf {
        self.secrets_dir().join(INSTALL_SECRET_FILE)
    }
    /// `uploads-pending/` (0700).
    pub fn pending_dir(&self) -> PathBuf {
        self.root.join("uploads-pending")
    }
    /// `previews/` (0700).
    pub fn previews_dir(&self) -> PathBuf {
        self.root.join("previews")
    }
    /// `ledger.json` (0600).
    pub fn ledger_file(&self) -> PathBuf {
        self.root.join("ledger.json")
    }
    /// `upload-state.json` (0600): the uploader's failed attempts and recent attempt times
    /// (written only by upload builds; removed by `purge` and `disable`).
    pub fn upload_state_file(&self) -> PathBuf {
        self.root.join("upload-state.json")
    }
    /// The marker recording that the opt-out first-run notice was shown.
    pub fn notice_marker(&self) -> PathBuf {
        self.root.join("notice-shown")
    }
}

/// Which platform's rule finds the app directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Convention {
    /// XDG base directories: Linux, macOS and every other target but Windows.
    Xdg,
    /// `%APPDATA%`.
    Windows,
}

impl Convention {
    /// This build's.
    pub(crate) const CURRENT: Self = if cfg!(windows) {
        Self::Windows
    } else {
        Self::Xdg
    };
}

/// File name of the consent token inside `secrets/`.
pub const CONSENT_TOKEN_FILE: &str = "consent.token";
/// File name of the install secret inside `secrets/`.
pub const INSTALL_SECRET_FILE: &str = "install.secret";

fn absolute_var(env: &Env, name: &str, warnings: &mut Vec<Warning>) -> Option<PathBuf> {
    match env.get(name) {
        EnvValue::Unset | EnvValue::Text("") => None,
        EnvValue::NotUnicode => {
            // Non-UTF-8 paths are legal on Unix; accept them when absolute.
            let path = PathBuf::from(env.get_os(name)?);
            if path.is_absolute() {
                Some(path)
            } else {
                warnings.push(relative_warning(name));
                None
            }
        }
        EnvValue::Text(text) => {
            let path = PathBuf::from(text);
            if path.is_absolute() {
                Some(path)
            } else {
                warnings.push(relative_warning(name));
                None
            }
        }
    }
}

fn relative_warning(name: &str) -> Warning {
    Warning::new(
        Location::EnvVar(name.into()),
        "is not an absolute path and is ignored",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> AppName {
        AppName::new("acme").unwrap()
    }

    #[test]
    fn dir_override_wins_then_xdg_then_home() {
        let env = Env::from_pairs([
            ("ACME_TELEMETRY_DIR", "/o"),
            ("XDG_CONFIG_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(
            Paths::resolve(&app(), &env).0.unwrap().root(),
            Path::new("/o")
        );
        let env = Env::from_pairs([("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(
            Paths::resolve(&app(), &env).0.unwrap().root(),
            Path::new("/x/acme")
        );
        let env = Env::from_pairs([("HOME", "/h")]);
        assert_eq!(
            Paths::resolve(&app(), &env).0.unwrap().root(),
            Path::new("/h/.config/acme")
        );
    }

    #[test]
    fn relative_xdg_config_home_is_ignored_with_a_warning() {
        let env = Env::from_pairs([("XDG_CONFIG_HOME", "rel/dir"), ("HOME", "/h")]);
        let (paths, warnings) = Paths::resolve(&app(), &env);
        assert_eq!(paths.unwrap().root(), Path::new("/h/.config/acme"));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].to_string().contains("XDG_CONFIG_HOME"));
    }

    #[test]
    fn no_home_means_no_directory_and_a_warning() {
        let (paths, warnings) = Paths::resolve(&app(), &Env::default());
        assert!(paths.is_none());
        assert!(warnings[0].message.contains("stays disabled"));
        let (paths, _) = Paths::resolve(&app(), &Env::from_pairs([("HOME", "relative")]));
        assert!(paths.is_none());
    }

    #[test]
    fn windows_uses_appdata_after_the_override_and_ignores_xdg_and_home() {
        let resolve = |pairs: &[(&str, &str)]| {
            Paths::resolve_as(
                Convention::Windows,
                &app(),
                &Env::from_pairs(pairs.to_vec()),
            )
        };
        // Absolute on the platform running the test: the rule, not the path syntax, is
        // what is tested here.
        let (paths, warnings) = resolve(&[
            ("APPDATA", "/roaming"),
            ("XDG_CONFIG_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        let paths = paths.unwrap();
        assert_eq!(paths.root(), Path::new("/roaming/acme"));
        assert_eq!(paths.root_source, RootSource::AppData);
        assert!(warnings.is_empty(), "{warnings:?}");
        let (paths, _) = resolve(&[("ACME_TELEMETRY_DIR", "/o"), ("APPDATA", "/roaming")]);
        assert_eq!(paths.unwrap().root(), Path::new("/o"));
    }

    #[test]
    fn windows_without_a_usable_appdata_has_no_directory() {
        for pairs in [
            vec![("HOME", "/h"), ("XDG_CONFIG_HOME", "/x")],
            vec![("APPDATA", "")],
            vec![("APPDATA", "relative\\roaming")],
        ] {
            let (paths, warnings) =
                Paths::resolve_as(Convention::Windows, &app(), &Env::from_pairs(pairs.clone()));
            assert!(paths.is_none(), "{pairs:?}");
            let last = warnings.last().expect("a warning");
            assert_eq!(last.location, Location::EnvVar("APPDATA".into()));
            assert!(last.message.contains("stays disabled"), "{last}");
        }
    }

    #[test]
    fn this_build_resolves_by_its_platform_rule() {
        let env = Env::from_pairs([("APPDATA", "/roaming"), ("HOME", "/h")]);
        assert_eq!(
            Paths::resolve(&app(), &env),
            Paths::resolve_as(Convention::CURRENT, &app(), &env)
        );
        if cfg!(not(windows)) {
            assert_eq!(
                Paths::resolve(&app(), &env).0.unwrap().root(),
                Path::new("/h/.config/acme")
            );
        }
    }
}
