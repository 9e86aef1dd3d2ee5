//! The catalogue's rules, repeated so that a wrong declaration fails to compile rather than at
//! `spec_of`. The authority is `telemetry-schema` (`ids.rs`, `dp.rs`, `catalog.rs`); this crate
//! depends on no workspace crate, so the numbers are copied here, and telemetry-core's
//! `tests/derive.rs` checks that what the derive accepts, the schema accepts too.

/// `MAX_EPSILON` in `telemetry_schema::dp`.
pub const MAX_EPSILON: f64 = 20.0;
/// `ClampRange::BOUND`: integer clamp bounds stay within ±this.
pub const CLAMP_BOUND: i128 = 1_000_000_000_000;
/// Redacted text keeps 1 to this many characters.
pub const MAX_TEXT_LEN: u32 = 200;
/// Longest event or field description.
pub const MAX_DESCRIPTION: usize = 500;
/// Most fields in one event.
pub const MAX_FIELDS: usize = 64;
/// k-ary randomised response needs this many labels, at least and at most.
pub const LABEL_COUNT: (usize, usize) = (2, 4096);

/// `Identifier`: `^[a-z][a-z0-9_]{0,63}$`.
pub fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    s.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `Label`: `^[a-z0-9][a-z0-9_.-]{0,63}$`.
pub fn is_label(s: &str) -> bool {
    let mut bytes = s.bytes();
    s.len() <= 64
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

/// `CommandRun` → `command_run`, `HTTPServer` → `http_server`, `V2Beta` → `v2_beta`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let boundary = prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
            });
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A privacy budget the catalogue accepts.
pub fn epsilon_ok(epsilon: f64) -> bool {
    epsilon.is_finite() && epsilon > 0.0 && epsilon <= MAX_EPSILON
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_follows_rust_naming() {
        for (from, to) in [
            ("CommandRun", "command_run"),
            ("FeatureUsed", "feature_used"),
            ("Work", "work"),
            ("HTTPServer", "http_server"),
            ("V2Beta", "v2_beta"),
            ("Gpt4o", "gpt4o"),
            ("Already_Snake", "already_snake"),
            ("ABC", "abc"),
        ] {
            assert_eq!(snake_case(from), to, "{from}");
        }
    }

    #[test]
    fn names_and_labels_follow_the_schema() {
        assert!(is_identifier("command_run"));
        assert!(is_identifier(&"a".repeat(64)));
        for bad in ["", "_x", "1x", "Command", "a-b", &"a".repeat(65)] {
            assert!(!is_identifier(bad), "{bad:?}");
        }
        assert!(is_label("gpt-4.1") && is_label("0") && is_label("dry_run"));
        for bad in ["", "-x", "A", "a b", &"a".repeat(65)] {
            assert!(!is_label(bad), "{bad:?}");
        }
    }

    #[test]
    fn epsilon_is_finite_positive_and_bounded() {
        assert!(epsilon_ok(1.0) && epsilon_ok(MAX_EPSILON) && epsilon_ok(0.01));
        for bad in [0.0, -1.0, 20.5, f64::INFINITY, f64::NAN] {
            assert!(!epsilon_ok(bad), "{bad}");
        }
    }
}
