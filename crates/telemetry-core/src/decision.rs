//! The decision: is telemetry enabled for this run, and why (DESIGN §4).
//!
//! Inputs are considered in a fixed order and all of them are recorded, with their value,
//! where they came from, and their effect. The first input that disables decides; if none
//! does, the input that grants consent decides; otherwise the default (off) does.
//!
//! 1. Hard overrides: `DO_NOT_TRACK`, `<APP>_TELEMETRY`, `<APP>_TELEMETRY_DISABLED`,
//!    `<APP>_TELEMETRY_ENABLED`, a CI environment.
//! 2. Per invocation: `--no-telemetry`, a programmatic `disable()`.
//! 3. Persistent choice: `telemetry.enabled = false` (or an unreadable config, or an app
//!    directory another user may write to or owns: none of its files can be trusted).
//! 4. Consent: a valid token for the app's consent version (opt-in), or the first-run
//!    notice having been shown in an earlier run (opt-out).

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::env::EnvValue;

/// Where an input came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// An environment variable.
    EnvVar {
        /// Its name.
        name: String,
    },
    /// A key in the config file (or one of its layers).
    Config {
        /// The layer: the file path, an env var name, `default` or `the app's code`.
        layer: String,
        /// The dotted key.
        key: String,
    },
    /// The consent token file.
    ConsentToken {
        /// Its path.
        path: PathBuf,
    },
    /// The first-run notice marker.
    NoticeMarker {
        /// Its path.
        path: PathBuf,
    },
    /// The app directory itself (refused when another user may write to it).
    AppDirectory {
        /// Its path.
        path: PathBuf,
    },
    /// A command-line flag the host passed through.
    CliFlag {
        /// The flag.
        flag: String,
    },
    /// The app's code.
    Programmatic,
    /// The toolkit's defaults and the app's release policy.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::EnvVar { name } => write!(f, "environment variable {name}"),
            Source::Config { layer, key } => write!(f, "{key} in {layer}"),
            Source::ConsentToken { path } => write!(f, "consent token {}", path.display()),
            Source::NoticeMarker { path } => write!(f, "notice marker {}", path.display()),
            Source::AppDirectory { path } => write!(f, "app directory {}", path.display()),
            Source::CliFlag { flag } => write!(f, "command-line flag {flag}"),
            Source::Programmatic => f.write_str("the app's code"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// What an input does to the outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Turns telemetry off; nothing later can turn it back on.
    Disables,
    /// Grants consent (only consent inputs can).
    Enables,
    /// Considered, no effect.
    None,
}

/// Which rule an input belongs to, in precedence order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Environment hard overrides.
    HardOverride,
    /// This invocation only.
    PerInvocation,
    /// The user's persistent choice.
    Config,
    /// Consent and release policy.
    Consent,
}

/// One input considered by the decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Input {
    /// Which rule.
    pub stage: Stage,
    /// Short name, e.g. `DO_NOT_TRACK`, `telemetry.enabled`, `consent token`.
    pub name: String,
    /// The value seen, as text (`unset` when absent).
    pub value: String,
    /// Where it came from.
    pub source: Source,
    /// What it did.
    pub effect: Effect,
    /// Why, in plain words.
    pub reason: String,
}

/// The outcome: enabled or not, and every input with its provenance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Whether telemetry is enabled for this run.
    pub enabled: bool,
    /// `<APP>_TELEMETRY=preview`: render payloads locally, never send, no identifiers.
    pub preview: bool,
    /// Every input, in precedence order.
    pub inputs: Vec<Input>,
    /// Index in `inputs` of the input that decided, or `None` for the default.
    pub decided_by: Option<usize>,
}

impl Decision {
    /// Computes the outcome from inputs given in precedence order.
    pub fn from_inputs(inputs: Vec<Input>, preview: bool) -> Self {
        let disabling = inputs.iter().position(|i| i.effect == Effect::Disables);
        let enabling = inputs.iter().position(|i| i.effect == Effect::Enables);
        let (enabled, decided_by) = match (disabling, enabling) {
            (Some(i), _) => (false, Some(i)),
            (None, Some(i)) => (true, Some(i)),
            (None, None) => (false, None),
        };
        Self {
            enabled,
            preview,
            inputs,
            decided_by,
        }
    }

    /// The deciding input, if one decided.
    pub fn deciding_input(&self) -> Option<&Input> {
        self.decided_by.and_then(|i| self.inputs.get(i))
    }

    /// One line: what decided, e.g. `DO_NOT_TRACK=1 (environment variable DO_NOT_TRACK)`.
    pub fn decided_by_label(&self) -> String {
        match self.deciding_input() {
            Some(input) => format!("{}={} ({})", input.name, input.value, input.source),
            None => "default (telemetry is opt-in and no consent was given)".to_owned(),
        }
    }

    /// The first active hard override (environment or CI), if any.
    pub fn hard_override(&self) -> Option<&Input> {
        self.inputs
            .iter()
            .find(|i| i.stage == Stage::HardOverride && i.effect == Effect::Disables)
    }

    /// The input named `name`.
    pub fn input(&self, name: &str) -> Option<&Input> {
        self.inputs.iter().find(|i| i.name == name)
    }
}

/// How an environment variable's value reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvReading {
    /// Unset, or a value that does not disable.
    Inactive,
    /// A documented value that disables.
    Disables,
    /// `<APP>_TELEMETRY=preview`.
    Preview,
    /// A value this toolkit does not recognise: treated as disabling, with a warning.
    Unrecognised,
}

fn normalised(value: &str) -> String {
    value.trim().to_ascii_lowercase()
}

const FALSY: &[&str] = &["", "0", "false", "no", "off"];
const TRUTHY: &[&str] = &["1", "true", "yes", "on"];

/// `DO_NOT_TRACK`: disables unless unset, empty, `0`, `false`, `no` or `off` (trimmed, any
/// case). Any other value, including one that is not UTF-8, disables.
pub fn read_do_not_track(value: EnvValue<'_>) -> EnvReading {
    match value {
        EnvValue::Unset => EnvReading::Inactive,
        EnvValue::NotUnicode => EnvReading::Disables,
        EnvValue::Text(v) if FALSY.contains(&normalised(v).as_str()) => EnvReading::Inactive,
        EnvValue::Text(_) => EnvReading::Disables,
    }
}

/// `<APP>_TELEMETRY`: `disabled`, `off`, `0`, `false`, `no` disable; `preview` renders
/// payloads locally without sending; `enabled`, `on`, `1`, `true`, `yes` and empty are
/// accepted and change nothing (they never count as consent). Anything else disables.
pub fn read_app_telemetry(value: EnvValue<'_>) -> EnvReading {
    match value {
        EnvValue::Unset => EnvReading::Inactive,
        EnvValue::NotUnicode => EnvReading::Unrecognised,
        EnvValue::Text(v) => match normalised(v).as_str() {
            "disabled" | "off" | "0" | "false" | "no" => EnvReading::Disables,
            "preview" => EnvReading::Preview,
            "" | "enabled" | "on" | "1" | "true" | "yes" => EnvReading::Inactive,
            _ => EnvReading::Unrecognised,
        },
    }
}

/// `<APP>_TELEMETRY_DISABLED`: `1`, `true`, `yes`, `on` disable; `0`, `false`, `no`, `off`
/// and empty do not; anything else disables.
pub fn read_disabled_alias(value: EnvValue<'_>) -> EnvReading {
    match value {
        EnvValue::Unset => EnvReading::Inactive,
        EnvValue::NotUnicode => EnvReading::Unrecognised,
        EnvValue::Text(v) => {
            let v = normalised(v);
            if TRUTHY.contains(&v.as_str()) {
                EnvReading::Disables
            } else if FALSY.contains(&v.as_str()) {
                EnvReading::Inactive
            } else {
                EnvReading::Unrecognised
            }
        }
    }
}

/// `<APP>_TELEMETRY_ENABLED`: `0`, `false`, `no`, `off` disable; `1`, `true`, `yes`, `on`
/// and empty do not (and are not consent); anything else disables.
pub fn read_enabled_alias(value: EnvValue<'_>) -> EnvReading {
    match value {
        EnvValue::Unset => EnvReading::Inactive,
        EnvValue::NotUnicode => EnvReading::Unrecognised,
        EnvValue::Text(v) => {
            let v = normalised(v);
            if v.is_empty() || TRUTHY.contains(&v.as_str()) {
                EnvReading::Inactive
            } else if FALSY.contains(&v.as_str()) {
                EnvReading::Disables
            } else {
                EnvReading::Unrecognised
            }
        }
    }
}

/// Variables whose presence means "running in CI". `CI` is the common one; the others are
/// set by widely used services that do not always set `CI`.
pub const CI_VARS: &[&str] = &[
    "CI",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "BUILDKITE",
    "CIRCLECI",
    "TRAVIS",
    "TF_BUILD",
    "JENKINS_URL",
    "TEAMCITY_VERSION",
];

/// A CI variable counts when set to anything but empty, `0`, `false`, `no` or `off`.
pub fn read_ci(value: EnvValue<'_>) -> EnvReading {
    read_do_not_track(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use EnvReading::*;

    fn t(v: &str) -> EnvValue<'_> {
        EnvValue::Text(v)
    }

    #[test]
    fn do_not_track_matrix() {
        for v in ["", "0", "false", "FALSE", " no ", "Off"] {
            assert_eq!(read_do_not_track(t(v)), Inactive, "{v:?}");
        }
        for v in ["1", "true", "yes", "2", "anything", " 1 "] {
            assert_eq!(read_do_not_track(t(v)), Disables, "{v:?}");
        }
        assert_eq!(read_do_not_track(EnvValue::Unset), Inactive);
        assert_eq!(read_do_not_track(EnvValue::NotUnicode), Disables);
    }

    #[test]
    fn app_telemetry_matrix() {
        for v in ["disabled", "DISABLED", " off ", "0", "false", "No"] {
            assert_eq!(read_app_telemetry(t(v)), Disables, "{v:?}");
        }
        for v in ["", "enabled", "On", "1", "TRUE", "yes"] {
            assert_eq!(read_app_telemetry(t(v)), Inactive, "{v:?}");
        }
        assert_eq!(read_app_telemetry(t("Preview")), Preview);
        for v in ["disable", "nope", "2", "enabled please"] {
            assert_eq!(read_app_telemetry(t(v)), Unrecognised, "{v:?}");
        }
        assert_eq!(read_app_telemetry(EnvValue::NotUnicode), Unrecognised);
    }

    #[test]
    fn alias_matrices() {
        for v in ["1", "true", "TRUE", " yes", "on"] {
            assert_eq!(read_disabled_alias(t(v)), Disables, "{v:?}");
            assert_eq!(read_enabled_alias(t(v)), Inactive, "{v:?}");
        }
        for v in ["0", "false", "False", "no", "off"] {
            assert_eq!(read_disabled_alias(t(v)), Inactive, "{v:?}");
            assert_eq!(read_enabled_alias(t(v)), Disables, "{v:?}");
        }
        assert_eq!(read_disabled_alias(t("")), Inactive);
        assert_eq!(read_enabled_alias(t("")), Inactive);
        for v in ["2", "maybe", "enabled"] {
            assert_eq!(read_disabled_alias(t(v)), Unrecognised, "{v:?}");
            assert_eq!(read_enabled_alias(t(v)), Unrecognised, "{v:?}");
        }
    }

    fn input(stage: Stage, effect: Effect) -> Input {
        Input {
            stage,
            name: format!("{stage:?}"),
            value: "v".into(),
            source: Source::Default,
            effect,
            reason: String::new(),
        }
    }

    #[test]
    fn first_disabling_input_wins_over_any_enabling_one() {
        let d = Decision::from_inputs(
            vec![
                input(Stage::HardOverride, Effect::None),
                input(Stage::Config, Effect::Disables),
                input(Stage::Consent, Effect::Enables),
            ],
            false,
        );
        assert!(!d.enabled);
        assert_eq!(d.decided_by, Some(1));
        let d = Decision::from_inputs(vec![input(Stage::Consent, Effect::Enables)], false);
        assert!(d.enabled);
        let d = Decision::from_inputs(vec![input(Stage::Consent, Effect::None)], false);
        assert!(!d.enabled);
        assert_eq!(d.decided_by, None);
        assert!(d.decided_by_label().starts_with("default"));
    }
}
