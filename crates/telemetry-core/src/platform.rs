//! What the operating system decides: whether the toolkit can keep its files private here.
//!
//! Consent, the install secret, the ledger and every payload are kept private with Unix
//! ownership and permission bits, checked through the opened descriptor (see
//! [`crate::store`]). Where no such owner-only check exists yet — every target that is not
//! Unix, Windows included — the toolkit still builds, and fails closed: the decision gets a
//! disabling input named [`INPUT_NAME`] that `telemetry status` lists with
//! [`UNSUPPORTED_REASON`], `enable` refuses, and the store creates and writes nothing. What
//! only reads (`status`, `show`, `verify-payload` of a file, `catalog`, `schema`) works.
//!
//! macOS is Unix and behaves as Linux does, directory included (`$XDG_CONFIG_HOME/<app>`,
//! else `$HOME/.config/<app>`: DESIGN §5); on Windows the directory is `%APPDATA%\<app>`
//! (see [`crate::paths`]).

use std::path::Path;

use crate::decision::{Effect, Input, Source, Stage};

/// Why telemetry stays off on a platform without an owner-only permission check.
pub const UNSUPPORTED_REASON: &str = "this platform has no owner-only permission check yet, so the toolkit's files \
     could not be kept private; telemetry stays off";

/// The name of the decision input recorded on such a platform.
pub const INPUT_NAME: &str = "platform";

/// `Some(why)` where telemetry cannot be enabled on this platform; `None` on Unix.
pub fn unsupported_reason() -> Option<&'static str> {
    reason_for(cfg!(unix))
}

fn reason_for(has_owner_only_check: bool) -> Option<&'static str> {
    (!has_owner_only_check).then_some(UNSUPPORTED_REASON)
}

/// The disabling input the decision records on this platform (`None` on Unix), for the app
/// directory `root`: stage [`Stage::Config`], where an app directory that cannot be trusted
/// is recorded too, so it reads as what it is — not an override the user could unset — and
/// beats consent.
pub fn decision_input(root: Option<&Path>) -> Option<Input> {
    input_for(cfg!(unix), std::env::consts::OS, root)
}

fn input_for(has_owner_only_check: bool, os: &str, root: Option<&Path>) -> Option<Input> {
    let reason = reason_for(has_owner_only_check)?;
    Some(Input {
        stage: Stage::Config,
        name: INPUT_NAME.into(),
        value: os.into(),
        source: root.map_or(Source::Default, |root| Source::AppDirectory {
            path: root.to_owned(),
        }),
        effect: Effect::Disables,
        reason: reason.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Decision;

    fn consent_given() -> Input {
        Input {
            stage: Stage::Consent,
            name: "consent token".into(),
            value: "consent version 1".into(),
            source: Source::Default,
            effect: Effect::Enables,
            reason: "the user consented".into(),
        }
    }

    #[test]
    fn without_an_owner_only_check_telemetry_stays_off_even_with_consent() {
        let root = Path::new("/appdata/acme");
        let input = input_for(false, "windows", Some(root)).expect("a disabling input");
        assert_eq!(input.effect, Effect::Disables);
        assert_eq!(input.stage, Stage::Config);
        let decision = Decision::from_inputs(vec![input, consent_given()], false);
        assert!(!decision.enabled);
        assert_eq!(decision.deciding_input().unwrap().name, INPUT_NAME);
        assert_eq!(
            decision.decided_by_label(),
            "platform=windows (app directory /appdata/acme)"
        );
        assert!(
            decision
                .deciding_input()
                .unwrap()
                .reason
                .contains("no owner-only permission check yet")
        );
        let no_dir = input_for(false, "windows", None).unwrap();
        assert_eq!(no_dir.source, Source::Default);
    }

    #[test]
    fn with_the_check_the_platform_adds_nothing() {
        assert_eq!(input_for(true, "linux", None), None);
        assert_eq!(reason_for(true), None);
        assert_eq!(reason_for(false), Some(UNSUPPORTED_REASON));
        let decision = Decision::from_inputs(vec![consent_given()], false);
        assert!(decision.enabled);
    }

    /// The build this runs in: Unix has the check.
    #[cfg(unix)]
    #[test]
    fn unix_has_the_check() {
        assert_eq!(unsupported_reason(), None);
        assert_eq!(decision_input(Some(Path::new("/h/.config/acme"))), None);
    }
}
