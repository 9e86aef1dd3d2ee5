//! User configuration: `config.toml` in the app directory, layered with the environment and
//! the app's code.
//!
//! Layers, lowest first: built-in defaults < `config.toml` < `<APP>_CONFIG_<SECTION>__<KEY>`
//! environment variables < values set by the app's code. Every effective value remembers
//! which layer it came from ([`ConfigSource`]) so `telemetry status` and `config list`
//! can say where a setting comes from.
//!
//! Loading never fails: a malformed, unreadable, oversized or mistyped file yields
//! [`ConfigOutcome::problem`], and the decision treats it as *disabled*.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::app::AppName;
use crate::env::Env;
use crate::paths::Paths;
use crate::store;
use crate::warning::{Location, Warning};

/// The largest config file read; anything larger is refused (it cannot be a hand-written
/// config, and reading it must not fill memory).
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// The typed configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The `[telemetry]` table.
    pub telemetry: TelemetryConfig,
}

/// The `[telemetry]` table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// `telemetry.enabled`: `false` is the user's persistent "no". `true` is not consent.
    pub enabled: Option<bool>,
    /// `telemetry.endpoint`: where `upload` sends payloads (upload builds only).
    pub endpoint: Option<String>,
    /// `telemetry.ca_bundle`: a PEM file of the CA certificates `upload` trusts for the
    /// endpoint instead of the built-in roots (a corporate TLS-inspecting proxy's, or a private
    /// endpoint's). Upload builds only.
    pub ca_bundle: Option<String>,
    /// `telemetry.max_pending_files`: bound on `uploads-pending/`.
    pub max_pending_files: Option<u64>,
    /// `telemetry.max_pending_bytes`: bound on `uploads-pending/`.
    pub max_pending_bytes: Option<u64>,
}

/// The kind of value a key takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// `true` or `false`.
    Bool,
    /// A non-negative integer.
    Count,
    /// An `https://` URL, or `http://` to a loopback address.
    Endpoint,
    /// An absolute file path.
    Path,
}

/// A documented configuration key.
#[derive(Clone, Copy, Debug)]
pub struct KeySpec {
    /// Dotted name, e.g. `telemetry.enabled`.
    pub name: &'static str,
    /// Its kind.
    pub kind: KeyKind,
    /// One line for `config list`.
    pub help: &'static str,
}

/// Every key the toolkit reads. Anything else in the file is warned about and ignored.
pub const KEYS: &[KeySpec] = &[
    KeySpec {
        name: "telemetry.enabled",
        kind: KeyKind::Bool,
        help: "false turns telemetry off for good; true alone is not consent",
    },
    KeySpec {
        name: "telemetry.endpoint",
        kind: KeyKind::Endpoint,
        help: "upload endpoint (https, or http to loopback); upload builds only",
    },
    KeySpec {
        name: "telemetry.ca_bundle",
        kind: KeyKind::Path,
        help: "PEM file of CAs trusted for the endpoint instead of the built-in roots; upload builds only",
    },
    KeySpec {
        name: "telemetry.max_pending_files",
        kind: KeyKind::Count,
        help: "at most this many pending payloads are kept (oldest go first)",
    },
    KeySpec {
        name: "telemetry.max_pending_bytes",
        kind: KeyKind::Count,
        help: "at most this many bytes of pending payloads are kept",
    },
];

/// The spec of `name`, if it is a known key.
pub fn key_spec(name: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.name == name)
}

/// Which layer an effective value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// Built-in default.
    Default,
    /// The config file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// The app's code.
    Programmatic,
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::Default => f.write_str("default"),
            ConfigSource::File(p) => write!(f, "{}", p.display()),
            ConfigSource::Env(v) => write!(f, "environment variable {v}"),
            ConfigSource::Programmatic => f.write_str("the app's code"),
        }
    }
}

/// The result of loading the configuration.
#[derive(Clone, Debug, Default)]
pub struct ConfigOutcome {
    /// Effective values (defaults where a layer failed).
    pub config: Config,
    /// Where each set key came from (the last layer that set it), in the order first set:
    /// [`ConfigOutcome::source_of`]. A short list of known keys, searched in order.
    sources: Vec<(String, ConfigSource)>,
    /// Non-fatal problems (unknown keys).
    pub warnings: Vec<Warning>,
    /// A problem that makes the configuration untrustworthy: telemetry must be disabled.
    pub problem: Option<Warning>,
}

impl ConfigOutcome {
    /// The source of `key`, `Default` when no layer set it.
    pub fn source_of(&self, key: &str) -> ConfigSource {
        self.sources
            .iter()
            .find(|(k, _)| k == key)
            .map_or(ConfigSource::Default, |(_, source)| source.clone())
    }

    /// Records that `key` was set by `source`, over any layer below it.
    fn set_source(&mut self, key: String, source: ConfigSource) {
        match self.sources.iter_mut().find(|(k, _)| *k == key) {
            Some((_, existing)) => *existing = source,
            None => self.sources.push((key, source)),
        }
    }

    /// The effective value of `key` rendered as text (`None` when unset).
    pub fn value_of(&self, key: &str) -> Option<String> {
        let t = &self.config.telemetry;
        match key {
            "telemetry.enabled" => t.enabled.map(|b| b.to_string()),
            "telemetry.endpoint" => t.endpoint.clone(),
            "telemetry.ca_bundle" => t.ca_bundle.clone(),
            "telemetry.max_pending_files" => t.max_pending_files.map(|n| n.to_string()),
            "telemetry.max_pending_bytes" => t.max_pending_bytes.map(|n| n.to_string()),
            _ => None,
        }
    }
}

/// Whether `env` has a `<APP>_CONFIG_*` variable, which [`load`] layers over the file.
pub(crate) fn has_variables(app: &AppName, env: &Env) -> bool {
    let prefix = format!("{}_CONFIG_", app.env_prefix());
    env.any_name(|name| name.to_str().is_some_and(|n| n.starts_with(&prefix)))
}

/// Loads the configuration for `app` from `paths` (if any), `env` and `overrides`
/// (dotted key → value, set by the app's code).
///
/// Layering five known keys needs no merge of trees: each layer assigns the keys it sets, in
/// order, and every value is checked against its key's kind as it is assigned, so a mistyped
/// value is reported where it was written.
pub fn load(
    app: &AppName,
    paths: Option<&Paths>,
    env: &Env,
    overrides: &[(String, toml::Value)],
) -> ConfigOutcome {
    let mut outcome = ConfigOutcome::default();

    if let Some(paths) = paths {
        let path = paths.config_file();
        let layered = match read_table(&path) {
            Ok(Some(table)) => assign_table(&mut outcome, &path, "", &table),
            Ok(None) => Ok(()),
            Err(message) => Err((Location::Path(path.clone()), message)),
        };
        if let Err((location, message)) = layered {
            outcome.problem = Some(disabling(location, message));
            return outcome;
        }
    }

    let prefix = format!("{}_CONFIG_", app.env_prefix());
    for (name, value) in env.iter() {
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let key = rest.to_ascii_lowercase().replace("__", ".");
        let Some(spec) = key_spec(&key) else {
            outcome.warnings.push(Warning::new(
                Location::EnvVar(name.to_owned()),
                format!("does not name a known key ({key}), ignored"),
            ));
            continue;
        };
        let assigned = match value.to_str() {
            Some(text) => parse_value(spec, text)
                .and_then(|value| outcome.config.telemetry.assign(spec, &value)),
            None => Err("is not valid UTF-8".to_owned()),
        };
        match assigned {
            Ok(()) => outcome.set_source(key, ConfigSource::Env(name.to_owned())),
            Err(message) => {
                outcome.problem = Some(disabling(Location::EnvVar(name.to_owned()), message));
                return outcome;
            }
        }
    }

    for (key, value) in overrides {
        let Some(spec) = key_spec(key) else {
            outcome.warnings.push(Warning::new(
                Location::Programmatic,
                format!("{key:?} is not a known key, ignored"),
            ));
            continue;
        };
        if let Err(message) = outcome.config.telemetry.assign(spec, value) {
            let message = format!("{key}: {message}");
            outcome.problem = Some(disabling(Location::Programmatic, message));
            return outcome;
        }
        outcome.set_source(key.clone(), ConfigSource::Programmatic);
    }

    if let Some(endpoint) = &outcome.config.telemetry.endpoint
        && let Err(message) = validate_endpoint(endpoint)
    {
        outcome.warnings.push(Warning::new(
            Location::FileKey {
                path: paths.map(Paths::config_file).unwrap_or_default(),
                key: "telemetry.endpoint".into(),
            },
            message,
        ));
    }
    outcome
}

/// Assigns the known keys of `table` (whose keys are under `prefix`, dotted) from the file at
/// `path`, and warns about the unknown ones. A known key of the wrong kind, or a value where
/// a table of known keys belongs (`telemetry = 5`), is the problem returned.
fn assign_table(
    outcome: &mut ConfigOutcome,
    path: &Path,
    prefix: &str,
    table: &toml::Table,
) -> Result<(), (Location, String)> {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let at = |key: String| Location::FileKey {
            path: path.to_owned(),
            key,
        };
        if let Some(spec) = key_spec(&key) {
            outcome
                .config
                .telemetry
                .assign(spec, value)
                .map_err(|message| (at(key.clone()), message))?;
            outcome.set_source(key, ConfigSource::File(path.to_owned()));
            continue;
        }
        match value {
            toml::Value::Table(inner) => assign_table(outcome, path, &key, inner)?,
            _ if is_table_of_keys(&key) => {
                let message = format!("expected a table, found {}", value.type_str());
                return Err((at(key), message));
            }
            _ => outcome
                .warnings
                .push(Warning::new(at(key), "unknown key, ignored")),
        }
    }
    Ok(())
}

/// The problem that turns telemetry off: `message` at `location`, and that it disables.
fn disabling(location: Location, message: impl fmt::Display) -> Warning {
    Warning::new(
        location,
        format!("{message}; telemetry is disabled until it is fixed"),
    )
}

/// Whether `name` is a table that holds known keys (`telemetry`).
fn is_table_of_keys(name: &str) -> bool {
    KEYS.iter().any(|k| {
        k.name
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

impl TelemetryConfig {
    /// Sets the key `spec` names to `value`, if it is of the key's kind.
    fn assign(&mut self, spec: &KeySpec, value: &toml::Value) -> Result<(), String> {
        let mismatch =
            |expected: &str| format!("expected {expected}, found {} {value}", value.type_str());
        let text = || match value {
            toml::Value::String(s) => Ok(Some(s.clone())),
            _ => Err(mismatch("a string")),
        };
        let count = || match value {
            toml::Value::Integer(n) => u64::try_from(*n)
                .map(Some)
                .map_err(|_| mismatch("a whole number")),
            _ => Err(mismatch("a whole number")),
        };
        match spec.name {
            "telemetry.enabled" => match value {
                toml::Value::Boolean(b) => self.enabled = Some(*b),
                _ => return Err(mismatch("true or false")),
            },
            "telemetry.endpoint" => self.endpoint = text()?,
            "telemetry.ca_bundle" => self.ca_bundle = text()?,
            "telemetry.max_pending_files" => self.max_pending_files = count()?,
            "telemetry.max_pending_bytes" => self.max_pending_bytes = count()?,
            other => return Err(format!("{other}: not a key this version reads")),
        }
        Ok(())
    }
}

fn read_table(path: &Path) -> Result<Option<toml::Table>, String> {
    let bytes = match store::read_bounded(path, MAX_CONFIG_BYTES) {
        Ok(None) => return Ok(None),
        Ok(Some(bytes)) => bytes,
        // A named pipe, a symlink, a device: refused unopened, said what it is.
        Err(refusal) => match refusal.kind {
            store::RefusalKind::Io(_, message) => {
                return Err(format!("cannot read the config file: {message}"));
            }
            _ => return Err(format!("the config file {}", refusal.reason())),
        },
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "the config file is not valid UTF-8 (at byte {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    text.parse::<toml::Table>()
        .map(Some)
        .map_err(|e| format!("malformed TOML: {}", e.message()))
}

/// Parses and validates a textual value for `spec`.
pub fn parse_value(spec: &KeySpec, raw: &str) -> Result<toml::Value, String> {
    let raw = raw.trim();
    match spec.kind {
        KeyKind::Bool => match raw.to_ascii_lowercase().as_str() {
            "true" => Ok(toml::Value::Boolean(true)),
            "false" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!(
                "{}: expected true or false, got {raw:?}",
                spec.name
            )),
        },
        KeyKind::Count => raw
            .parse::<u32>()
            .map(|n| toml::Value::Integer(i64::from(n)))
            .map_err(|_| format!("{}: expected a whole number, got {raw:?}", spec.name)),
        KeyKind::Endpoint => validate_endpoint(raw).map(|()| toml::Value::String(raw.to_owned())),
        KeyKind::Path if Path::new(raw).is_absolute() && !raw.chars().any(char::is_control) => {
            Ok(toml::Value::String(raw.to_owned()))
        }
        KeyKind::Path => Err(format!(
            "{}: expected an absolute file path, got {raw:?}",
            spec.name
        )),
    }
}

/// An upload endpoint must be `https://`, or `http://` to a loopback address.
pub fn validate_endpoint(url: &str) -> Result<(), String> {
    if url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the endpoint must be a single URL without spaces".into());
    }
    if let Some(rest) = url.strip_prefix("https://") {
        return if host_of(rest).is_empty() {
            Err(format!("{url:?} has no host"))
        } else {
            Ok(())
        };
    }
    if let Some(rest) = url.strip_prefix("http://") {
        let host = host_of(rest);
        let loopback = host == "localhost" || host == "[::1]" || is_ipv4_loopback(host);
        return if loopback {
            Ok(())
        } else {
            Err(format!(
                "{url:?} is plain http to a non-loopback host; use https:// (http is allowed only for 127.0.0.1, [::1] and localhost)"
            ))
        };
    }
    Err(format!("{url:?} is not an https:// URL"))
}

// Parsed by hand: this crate stays clear of `std::net` altogether (the audit checks it).
fn is_ipv4_loopback(host: &str) -> bool {
    let octets: Vec<_> = host.split('.').collect();
    octets.len() == 4
        && octets
            .iter()
            .all(|o| !o.is_empty() && o.len() <= 3 && o.parse::<u8>().is_ok())
        && octets[0] == "127"
}

fn host_of(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    if host_port.starts_with('[') {
        host_port.split_inclusive(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    }
}

/// Why `config set` refused.
#[derive(Debug)]
pub enum SetError {
    /// Not a documented key.
    UnknownKey(String),
    /// The value does not fit the key.
    InvalidValue(String),
    /// The existing file cannot be updated safely (malformed, unreadable).
    ExistingFile(String),
    /// Writing failed.
    Write(String),
}

impl fmt::Display for SetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetError::UnknownKey(key) => {
                let known: Vec<_> = KEYS.iter().map(|k| k.name).collect();
                write!(f, "unknown key {key:?} (known keys: {})", known.join(", "))
            }
            SetError::InvalidValue(m) | SetError::ExistingFile(m) | SetError::Write(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for SetError {}

/// Sets `key` to `raw` in `config.toml`, atomically. The file is left untouched when the
/// key is unknown, the value invalid, or the existing file cannot be parsed.
pub fn set(paths: &Paths, key: &str, raw: &str) -> Result<(), SetError> {
    let spec = key_spec(key).ok_or_else(|| SetError::UnknownKey(key.to_owned()))?;
    let value = parse_value(spec, raw).map_err(SetError::InvalidValue)?;
    let path = paths.config_file();
    let mut table = read_table(&path)
        .map_err(|m| SetError::ExistingFile(format!("{}: {m}; not changed", path.display())))?
        .unwrap_or_default();
    let mut parts = key.split('.').peekable();
    let mut current = &mut table;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part.to_owned(), value.clone());
            break;
        }
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(SetError::ExistingFile(format!(
                    "{}: {part} is not a table; not changed",
                    path.display()
                )));
            }
        };
    }
    let text = toml::to_string(&table).map_err(|e| SetError::Write(e.to_string()))?;
    store::ensure_dir(paths.root()).map_err(|e| SetError::Write(e.to_string()))?;
    store::write_atomic(paths.root(), "config.toml", text.as_bytes(), 0o600)
        .map_err(|e| SetError::Write(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(contents: &[u8]) -> (tempfile::TempDir, Paths) {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::at(dir.path());
        std::fs::write(paths.config_file(), contents).unwrap();
        (dir, paths)
    }

    fn app() -> AppName {
        AppName::new("acme").unwrap()
    }

    #[test]
    fn nothing_layered_is_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = load(
            &app(),
            Some(&Paths::at(dir.path())),
            &Env::from_pairs::<_, &str, &str>([]),
            &[],
        );
        assert_eq!(outcome.config, Config::default());
        assert!(
            outcome.problem.is_none() && outcome.warnings.is_empty() && outcome.sources.is_empty()
        );
        assert_eq!(
            outcome.source_of("telemetry.enabled"),
            ConfigSource::Default
        );
    }

    /// Every key, set by the file, is read with its kind and its source.
    #[test]
    fn every_key_is_read_from_the_file() {
        let (_d, paths) = setup(
            b"[telemetry]\nenabled = true\nendpoint = \"https://t.example.org/v1\"\n\
              ca_bundle = \"/etc/ca.pem\"\nmax_pending_files = 7\nmax_pending_bytes = 9000\n",
        );
        let out = load(&app(), Some(&paths), &Env::default(), &[]);
        assert!(out.problem.is_none() && out.warnings.is_empty(), "{out:?}");
        let expected = TelemetryConfig {
            enabled: Some(true),
            endpoint: Some("https://t.example.org/v1".into()),
            ca_bundle: Some("/etc/ca.pem".into()),
            max_pending_files: Some(7),
            max_pending_bytes: Some(9000),
        };
        assert_eq!(out.config.telemetry, expected);
        for key in KEYS {
            assert_eq!(
                out.source_of(key.name),
                ConfigSource::File(paths.config_file()),
                "{}",
                key.name
            );
        }
    }

    /// A value of the wrong kind, or a value where the table of known keys belongs, disables
    /// telemetry and names the file and the key; a whole table of unknown keys is warned
    /// about key by key.
    #[test]
    fn mistyped_keys_in_the_file_are_problems_at_their_key() {
        let cases: [(&[u8], &str, &str); 5] = [
            (
                b"telemetry = 5\n",
                "telemetry",
                "expected a table, found integer",
            ),
            (
                b"[telemetry.enabled]\nx = 1\n",
                "telemetry.enabled",
                "found table",
            ),
            (
                b"[telemetry]\nmax_pending_files = -3\n",
                "telemetry.max_pending_files",
                "whole number",
            ),
            (
                b"[telemetry]\nmax_pending_bytes = 1.5\n",
                "telemetry.max_pending_bytes",
                "found float",
            ),
            (
                b"[telemetry]\nendpoint = 443\n",
                "telemetry.endpoint",
                "expected a string",
            ),
        ];
        for (contents, key, needle) in cases {
            let (_d, paths) = setup(contents);
            let out = load(&app(), Some(&paths), &Env::default(), &[]);
            let problem = out.problem.expect("a problem");
            assert_eq!(
                problem.location,
                Location::FileKey {
                    path: paths.config_file(),
                    key: key.into()
                }
            );
            assert!(problem.message.contains(needle), "{problem}");
            assert!(problem.message.contains("disabled"), "{problem}");
        }
        let (_d, paths) = setup(b"[other]\na = 1\nb = { c = 2 }\n");
        let out = load(&app(), Some(&paths), &Env::default(), &[]);
        assert!(out.problem.is_none());
        let keys: Vec<_> = out.warnings.iter().map(|w| w.location.clone()).collect();
        let at = |key: &str| Location::FileKey {
            path: paths.config_file(),
            key: key.into(),
        };
        assert_eq!(keys, [at("other.a"), at("other.b.c")]);
    }

    /// The app's code is a layer like the others: a value of the wrong kind disables, naming
    /// the key; a key this version does not read is warned about, not silently dropped.
    #[test]
    fn the_apps_code_is_checked_like_the_other_layers() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::at(dir.path());
        let bad = [(
            "telemetry.max_pending_files".to_owned(),
            toml::Value::String("many".into()),
        )];
        let out = load(&app(), Some(&paths), &Env::default(), &bad);
        let problem = out.problem.expect("a problem");
        assert_eq!(problem.location, Location::Programmatic);
        assert!(
            problem
                .message
                .contains("telemetry.max_pending_files: expected a whole number, found string"),
            "{problem}"
        );
        let unknown = [
            ("telemetry.colour".to_owned(), toml::Value::Integer(3)),
            (
                "telemetry.max_pending_files".to_owned(),
                toml::Value::Integer(4),
            ),
        ];
        let out = load(&app(), Some(&paths), &Env::default(), &unknown);
        assert!(out.problem.is_none());
        assert_eq!(out.warnings.len(), 1);
        assert!(out.warnings[0].to_string().contains("telemetry.colour"));
        assert_eq!(out.config.telemetry.max_pending_files, Some(4));
        assert_eq!(out.source_of("telemetry.colour"), ConfigSource::Default);
    }

    /// Issue #16: a named pipe as `config.toml` (even under `DO_NOT_TRACK=1`, where `status`
    /// still loads the file to show it) is refused without blocking, naming the file and what
    /// it is, and means disabled.
    #[cfg(unix)] // a named pipe; `set` writes through the Unix store
    #[test]
    fn a_config_file_that_is_a_named_pipe_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::at(dir.path());
        crate::test_support::mkfifo(&paths.config_file());
        let env = Env::from_pairs([("DO_NOT_TRACK", "1")]);
        let for_thread = paths.clone();
        let out = crate::test_support::within("config::load(a named pipe)", move || {
            load(&app(), Some(&for_thread), &env, &[])
        });
        let problem = out.problem.expect("a problem");
        assert_eq!(problem.location, Location::Path(paths.config_file()));
        assert!(
            problem
                .message
                .contains("is a named pipe, not a regular file"),
            "{problem}"
        );
        let for_thread = paths.clone();
        let set = crate::test_support::within("config::set(a named pipe)", move || {
            set(&for_thread, "telemetry.enabled", "false")
        });
        assert!(
            set.is_err(),
            "config set replaced a named pipe it could not read"
        );
    }

    #[test]
    fn reads_enabled_from_the_file_with_its_source() {
        let (_d, paths) = setup(b"[telemetry]\nenabled = false\n");
        let out = load(&app(), Some(&paths), &Env::default(), &[]);
        assert!(out.problem.is_none());
        assert_eq!(out.config.telemetry.enabled, Some(false));
        assert_eq!(
            out.source_of("telemetry.enabled"),
            ConfigSource::File(paths.config_file())
        );
    }

    #[test]
    fn env_layer_beats_file_and_code_beats_env() {
        let (_d, paths) = setup(b"[telemetry]\nenabled = true\n");
        let env = Env::from_pairs([("ACME_CONFIG_TELEMETRY__ENABLED", "false")]);
        let out = load(&app(), Some(&paths), &env, &[]);
        assert_eq!(out.config.telemetry.enabled, Some(false));
        assert_eq!(
            out.source_of("telemetry.enabled"),
            ConfigSource::Env("ACME_CONFIG_TELEMETRY__ENABLED".into())
        );
        let code = [("telemetry.enabled".to_owned(), toml::Value::Boolean(true))];
        let out = load(&app(), Some(&paths), &env, &code);
        assert_eq!(out.config.telemetry.enabled, Some(true));
        assert_eq!(
            out.source_of("telemetry.enabled"),
            ConfigSource::Programmatic
        );
    }

    #[test]
    fn malformed_mistyped_huge_and_non_utf8_files_are_problems_naming_the_file() {
        let huge = vec![b'#'; MAX_CONFIG_BYTES as usize + 1];
        let cases: [(&[u8], &str); 4] = [
            (b"[telemetry\nenabled = ", "malformed TOML"),
            (b"[telemetry]\nenabled = \"yes\"\n", "telemetry.enabled"),
            (&huge, "limit"),
            (b"[telemetry]\nenabled = \xff\n", "UTF-8"),
        ];
        for (contents, needle) in cases {
            let (_d, paths) = setup(contents);
            let out = load(&app(), Some(&paths), &Env::default(), &[]);
            let problem = out.problem.expect("a problem");
            let text = problem.to_string();
            assert!(text.contains(needle), "{text}");
            assert!(text.contains("config.toml"), "{text}");
        }
    }

    #[test]
    fn unknown_keys_are_warned_about_and_ignored() {
        let (_d, paths) = setup(b"[telemetry]\nenabled = false\ncolour = 3\n");
        let out = load(&app(), Some(&paths), &Env::default(), &[]);
        assert!(out.problem.is_none());
        assert_eq!(out.warnings.len(), 1);
        assert!(out.warnings[0].to_string().contains("telemetry.colour"));
    }

    #[cfg(unix)] // `set` writes through the Unix store
    #[test]
    fn set_validates_and_leaves_the_file_untouched_on_bad_input() {
        let (_d, paths) = setup(b"# mine\n[telemetry]\nenabled = true\n");
        let before = std::fs::read(paths.config_file()).unwrap();
        assert!(matches!(
            set(&paths, "telemetry.enabled", "maybe"),
            Err(SetError::InvalidValue(_))
        ));
        assert!(matches!(
            set(&paths, "telemetry.colour", "1"),
            Err(SetError::UnknownKey(_))
        ));
        assert!(set(&paths, "telemetry.endpoint", "http://example.com").is_err());
        assert_eq!(std::fs::read(paths.config_file()).unwrap(), before);
        set(&paths, "telemetry.enabled", "false").unwrap();
        let out = load(&app(), Some(&paths), &Env::default(), &[]);
        assert_eq!(out.config.telemetry.enabled, Some(false));
    }

    #[test]
    fn set_refuses_to_rewrite_a_malformed_file() {
        let (_d, paths) = setup(b"[telemetry\n");
        assert!(matches!(
            set(&paths, "telemetry.enabled", "false"),
            Err(SetError::ExistingFile(_))
        ));
        assert_eq!(std::fs::read(paths.config_file()).unwrap(), b"[telemetry\n");
    }

    #[test]
    fn endpoints_must_be_https_or_loopback_http() {
        for ok in [
            "https://t.example.org/v1",
            "http://127.0.0.1:8080/x",
            "http://localhost/",
            "http://[::1]:9/",
        ] {
            assert!(validate_endpoint(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.org",
            "http://127.0.0.1.evil.org/",
            "ftp://x",
            "https://",
            "https://a b",
            "http://user@10.0.0.1/",
        ] {
            assert!(validate_endpoint(bad).is_err(), "{bad}");
        }
    }
}
