//! The app's identity: its name, and the names derived from it.

use std::fmt;

/// A validated app name: 1–64 characters of ASCII letters, digits, `-` and `_`, starting
/// with a letter or digit. It names the app's directory and prefixes its environment
/// variables, so it must be safe in a path and in a variable name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AppName(String);

/// Why a string is not a valid [`AppName`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidAppName {
    /// The rejected input (truncated for display).
    pub input: String,
}

impl fmt::Display for InvalidAppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid app name {:?}: use 1-64 ASCII letters, digits, '-' or '_', starting with a letter or digit",
            self.input
        )
    }
}

impl std::error::Error for InvalidAppName {}

impl AppName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, InvalidAppName> {
        let valid_chars = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let valid_start = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if valid_chars && valid_start && name.len() <= 64 {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidAppName {
                input: name.chars().take(80).collect(),
            })
        }
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The prefix of the app's environment variables: upper-cased, non-alphanumerics as `_`
    /// (`my-app` → `MY_APP`).
    pub fn env_prefix(&self) -> String {
        self.0.chars().map(prefix_char).collect()
    }

    /// `<APP>_TELEMETRY`.
    pub fn telemetry_var(&self) -> String {
        self.var("_TELEMETRY")
    }

    /// `<APP>_TELEMETRY_DISABLED`.
    pub fn disabled_var(&self) -> String {
        self.var("_TELEMETRY_DISABLED")
    }

    /// `<APP>_TELEMETRY_ENABLED`.
    pub fn enabled_var(&self) -> String {
        self.var("_TELEMETRY_ENABLED")
    }

    /// `<APP><suffix>`, built without `format!`: every run, a disabled one too, names these
    /// variables, and the formatting code is one more page to fault in for a fresh process.
    fn var(&self, suffix: &str) -> String {
        // Sized at once: a name that grows calls out to the allocator's growth path, more code.
        let mut name = String::with_capacity(self.0.len() + suffix.len());
        name.extend(self.0.chars().map(prefix_char));
        name.push_str(suffix);
        name
    }

    /// `<APP>_TELEMETRY_DIR`.
    pub fn dir_var(&self) -> String {
        self.var("_TELEMETRY_DIR")
    }
}

/// A character of the app name as it is in the variables' prefix (names are ASCII).
fn prefix_char(c: char) -> char {
    if c.is_ascii_alphanumeric() {
        c.to_ascii_uppercase()
    } else {
        '_'
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_prefix_upper_cases_and_replaces_punctuation() {
        let app = AppName::new("my-app_2").unwrap();
        assert_eq!(app.env_prefix(), "MY_APP_2");
        assert_eq!(app.telemetry_var(), "MY_APP_2_TELEMETRY");
        assert_eq!(app.dir_var(), "MY_APP_2_TELEMETRY_DIR");
        assert_eq!(app.disabled_var(), "MY_APP_2_TELEMETRY_DISABLED");
        assert_eq!(app.enabled_var(), "MY_APP_2_TELEMETRY_ENABLED");
    }

    #[test]
    fn rejects_names_unsafe_in_paths_or_variables() {
        for bad in ["", "-x", "a/b", "..", "a b", "é", &"a".repeat(65)] {
            assert!(AppName::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(AppName::new("Acme-CLI").is_ok());
    }
}
