//! Checked string types: every string that can appear in an envelope is one of these.
//!
//! Each type checks its format in Rust when it is constructed (and when it is deserialised) and
//! publishes the same constraint as a JSON Schema `pattern`, so a payload that passes either check
//! passes both (one exception: [`RedactedText`]'s pattern cannot name the few format characters
//! above U+FFFF, which only the Rust check refuses). None of these formats can hold a path (`/`,
//! `\`), an e-mail address or user name (`@`), whitespace, control or format characters.

use std::fmt;

// The `JsonSchema` impls only feed `codegen` (feature `json-schema`).
#[cfg(feature = "json-schema")]
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smol_str::SmolStr;
#[cfg(feature = "json-schema")]
use std::borrow::Cow;

/// Why a string was refused by one of the checked string types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    /// The type that refused the value (e.g. `"Label"`).
    pub type_name: &'static str,
    /// What the type expects, in words and as the JSON Schema pattern.
    pub expected: &'static str,
    /// The refused value, truncated to 80 characters so an error never echoes a huge input.
    pub value: String,
}

impl FormatError {
    fn new(type_name: &'static str, expected: &'static str, value: &str) -> Self {
        let value: String = value.chars().take(80).collect();
        Self {
            type_name,
            expected,
            value,
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}: {:?} (expected {})",
            self.type_name, self.value, self.expected
        )
    }
}

impl std::error::Error for FormatError {}

macro_rules! checked_string {
    (
        $(#[$meta:meta])*
        $name:ident, check = $check:path, pattern = $pattern:expr, max_len = $max:expr,
        expected = $expected:expr, description = $desc:expr
    ) => {
        $(#[$meta])*
        ///
        /// Stored inline when at most 23 bytes long (most names and labels), so decoding one
        /// allocates nothing; cloning a longer one shares it.
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(SmolStr);

        impl $name {
            /// The JSON Schema `pattern` this type publishes (ECMA-262 and Rust `regex` compatible).
            pub const PATTERN: &'static str = $pattern;
            /// The maximum length in characters.
            pub const MAX_LEN: usize = $max;

            /// Checks `value` and wraps it.
            pub fn new(value: impl AsRef<str>) -> Result<Self, FormatError> {
                let value = value.as_ref();
                if value.chars().count() <= $max && $check(value) {
                    Ok(Self(SmolStr::new(value)))
                } else {
                    Err(FormatError::new(stringify!($name), $expected, value))
                }
            }

            /// The checked string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(CheckedVisitor(|s: &str| Self::new(s)))
            }
        }

        impl TryFrom<String> for $name {
            type Error = FormatError;
            fn try_from(value: String) -> Result<Self, FormatError> {
                Self::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = FormatError;
            fn try_from(value: &str) -> Result<Self, FormatError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0.into()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = FormatError;
            fn from_str(s: &str) -> Result<Self, FormatError> {
                Self::new(s)
            }
        }

        #[cfg(feature = "json-schema")]
        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "description": $desc,
                    "type": "string",
                    "pattern": $pattern,
                    "maxLength": $max,
                })
            }
        }
    };
}

/// Deserialises any JSON string (borrowed, or unescaped into a scratch buffer) through a checked
/// constructor: no `String` in between.
struct CheckedVisitor<F>(F);

impl<T, F: FnOnce(&str) -> Result<T, FormatError>> serde::de::Visitor<'_> for CheckedVisitor<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<T, E> {
        (self.0)(value).map_err(E::custom)
    }
}

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn check_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| is_lower_alnum(c) || c == '_')
}

fn check_label(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if is_lower_alnum(c))
        && chars.all(|c| is_lower_alnum(c) || matches!(c, '_' | '.' | '-'))
}

fn check_numeric(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

fn check_version(s: &str) -> bool {
    let (core, pre) = match s.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (s, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| check_numeric(p)) {
        return false;
    }
    match pre {
        None => true,
        Some(pre) => pre.split('.').all(|ident| {
            !ident.is_empty()
                && ident
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }),
    }
}

fn check_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn check_hex32(s: &str) -> bool {
    check_hex(s, 32)
}

fn check_hex64(s: &str) -> bool {
    check_hex(s, 64)
}

fn check_uuid_v7(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            14 => c == b'7',
            19 => matches!(c, b'8' | b'9' | b'a' | b'b'),
            _ => matches!(c, b'0'..=b'9' | b'a'..=b'f'),
        })
}

fn check_redacted_text(s: &str) -> bool {
    s.chars()
        .all(|c| !matches!(c, '/' | '\\' | '@') && !crate::display::is_control_or_format(c))
}

checked_string!(
    /// An event or field name: `^[a-z][a-z0-9_]{0,63}$` (snake_case, at most 64 characters).
    Identifier,
    check = check_identifier,
    pattern = "^[a-z][a-z0-9_]{0,63}$",
    max_len = 64,
    expected = "snake_case identifier matching ^[a-z][a-z0-9_]{0,63}$",
    description = "Event or field name from a closed catalogue: snake_case, at most 64 characters."
);

checked_string!(
    /// A closed-enum label, app name or SDK name: `^[a-z0-9][a-z0-9_.-]{0,63}$`.
    ///
    /// No `/`, `\`, `@`, spaces or upper case: a label cannot be a path, an e-mail address or free text.
    Label,
    check = check_label,
    pattern = "^[a-z0-9][a-z0-9_.-]{0,63}$",
    max_len = 64,
    expected = "label matching ^[a-z0-9][a-z0-9_.-]{0,63}$",
    description = "A value from a closed set (enum label, app or SDK name): lower-case letters, digits, `_`, `.`, `-`; at most 64 characters."
);

checked_string!(
    /// A semantic version `MAJOR.MINOR.PATCH[-PRERELEASE]` (no build metadata), at most 64 characters.
    Version,
    check = check_version,
    pattern = "^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?$",
    max_len = 64,
    expected = "semantic version MAJOR.MINOR.PATCH[-PRERELEASE], at most 64 characters",
    description = "Semantic version MAJOR.MINOR.PATCH with an optional pre-release; no build metadata; at most 64 characters."
);

checked_string!(
    /// A run id: a lower-case hyphenated UUID version 7 (unique, sortable by creation time).
    RunId,
    check = check_uuid_v7,
    pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
    max_len = 36,
    expected = "lower-case hyphenated UUIDv7",
    description = "Run id: lower-case hyphenated UUID version 7. Names the pending payload file; one payload per run."
);

checked_string!(
    /// A session id: 128 random bits as 32 lower-case hex digits, new per process, never persisted.
    SessionId,
    check = check_hex32,
    pattern = "^[0-9a-f]{32}$",
    max_len = 32,
    expected = "32 lower-case hex digits",
    description = "Session id: 128 random bits (32 lower-case hex digits), new per process, never persisted."
);

checked_string!(
    /// A daily id: HMAC-SHA-256(install secret, day) truncated to 128 bits, as 32 lower-case hex digits.
    DailyId,
    check = check_hex32,
    pattern = "^[0-9a-f]{32}$",
    max_len = 32,
    expected = "32 lower-case hex digits",
    description = "Daily id: HMAC-SHA-256 of the install secret and the day, truncated to 128 bits (32 lower-case hex digits). Unlinkable across days."
);

checked_string!(
    /// A SHA-256 digest as 64 lower-case hex digits.
    Sha256Hex,
    check = check_hex64,
    pattern = "^[0-9a-f]{64}$",
    max_len = 64,
    expected = "64 lower-case hex digits",
    description = "SHA-256 digest, 64 lower-case hex digits."
);

checked_string!(
    /// Free text that the app explicitly declared as text and that went through the core's redactor.
    ///
    /// At most 200 characters, and never `/`, `\`, `@`, a control character (C0, DEL, C1), a
    /// format character (Unicode `Cf`: bidirectional marks, embeddings, overrides and isolates,
    /// zero-width characters, the byte order mark, tags, ...) or a line or paragraph separator:
    /// exactly the class [`crate::display::is_control_or_format`], which the core's redactor
    /// refuses too and which a terminal would not show as text. The schema is a backstop, the
    /// redactor is the guard. Text is redacted, **not** randomised.
    ///
    /// The pattern names the characters of that class in the Basic Multilingual Plane; the few
    /// format characters above it (U+110BD, U+110CD, U+13430–U+1343F, U+1BCA0–U+1BCA3,
    /// U+1D173–U+1D17A, U+E0001, U+E0020–U+E007F) cannot be named by a pattern that means the
    /// same to an ECMA-262 engine without the `u` flag (it sees UTF-16 halves), so only the Rust
    /// check, which every decoded payload passes, refuses those.
    RedactedText,
    check = check_redacted_text,
    pattern = "^[^/\\\\@\\x00-\\x1f\\x7f-\\x9f\\xad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\ufeff\\ufff9-\\ufffb]{0,200}$",
    max_len = 200,
    expected = "redacted text: at most 200 characters, no `/`, `\\`, `@`, control or format characters",
    description = "Redacted free text (redaction only, not randomised): at most 200 characters, never `/`, `\\`, `@`, control characters, format characters (bidirectional controls, zero-width characters, byte order mark) or line separators."
);

/// Lower-case hex encoding.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

impl SessionId {
    /// Wraps 128 random bits (the caller draws them from the OS CSPRNG).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(hex(&bytes).into())
    }
}

impl DailyId {
    /// Wraps the first 128 bits of an HMAC-SHA-256 output (the caller computes the HMAC).
    pub fn from_mac(mac: &[u8; 32]) -> Self {
        Self(hex(&mac[..16]).into())
    }
}

impl RunId {
    /// Wraps the 16 bytes of a UUIDv7 (the caller generates it); refuses other UUID versions.
    pub fn from_uuid_bytes(bytes: [u8; 16]) -> Result<Self, FormatError> {
        let h = hex(&bytes);
        Self::new(format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        ))
    }
}

impl Sha256Hex {
    /// Wraps a SHA-256 digest.
    pub fn from_digest(digest: &[u8; 32]) -> Self {
        Self(hex(digest).into())
    }
}

impl Version {
    /// The numeric `(major, minor, patch)` triple.
    pub fn triple(&self) -> (u64, u64, u64) {
        let core = self.0.split('-').next().unwrap_or_default();
        let mut it = core
            .split('.')
            .map(|p| p.parse::<u64>().unwrap_or(u64::MAX));
        (
            it.next().unwrap_or_default(),
            it.next().unwrap_or_default(),
            it.next().unwrap_or_default(),
        )
    }
}

/// A calendar day `YYYY-MM-DD` (UTC), the only time information a payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Day {
    year: u16,
    month: u8,
    day: u8,
}

impl Day {
    /// The JSON Schema pattern (the Rust constructor also checks the day exists in that month).
    pub const PATTERN: &'static str = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";

    /// A checked calendar day (years 1970..=9999).
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, FormatError> {
        let leap =
            (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => 0,
        };
        if (1970..=9999).contains(&year) && day >= 1 && day <= days_in_month {
            Ok(Self { year, month, day })
        } else {
            Err(FormatError::new(
                "Day",
                "an existing calendar day YYYY-MM-DD, years 1970..=9999",
                &format!("{year:04}-{month:02}-{day:02}"),
            ))
        }
    }

    /// The day containing `unix_seconds` (UTC). The caller reads the clock; this crate never does.
    pub fn from_unix_seconds(unix_seconds: i64) -> Result<Self, FormatError> {
        // Howard Hinnant's civil_from_days.
        let z = unix_seconds.div_euclid(86_400) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        let invalid = || {
            FormatError::new(
                "Day",
                "a day in years 1970..=9999",
                &unix_seconds.to_string(),
            )
        };
        let year = u16::try_from(y).map_err(|_| invalid())?;
        Self::new(year, m as u8, d as u8).map_err(|_| invalid())
    }

    /// Year, month (1–12) and day of month (1–31).
    pub fn ymd(&self) -> (u16, u8, u8) {
        (self.year, self.month, self.day)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl TryFrom<String> for Day {
    type Error = FormatError;
    fn try_from(value: String) -> Result<Self, FormatError> {
        value.parse()
    }
}

impl std::str::FromStr for Day {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self, FormatError> {
        let err = || FormatError::new("Day", "YYYY-MM-DD", s);
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(err());
        }
        let num = |r: std::ops::Range<usize>| -> Result<u16, FormatError> {
            let part = &s[r];
            if part.bytes().all(|c| c.is_ascii_digit()) {
                part.parse().map_err(|_| err())
            } else {
                Err(err())
            }
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        Self::new(y, m as u8, d as u8).map_err(|_| err())
    }
}

impl From<Day> for String {
    fn from(value: Day) -> String {
        value.to_string()
    }
}

#[cfg(feature = "json-schema")]
impl JsonSchema for Day {
    fn schema_name() -> Cow<'static, str> {
        "Day".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A calendar day YYYY-MM-DD (UTC). Payloads never carry a finer timestamp.",
            "type": "string",
            "pattern": Day::PATTERN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(Identifier::new("command_run").is_ok());
        for bad in ["", "Command", "1abc", "a-b", "a b", "a/b", &"a".repeat(65)] {
            assert!(Identifier::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn labels_refuse_paths_and_people() {
        assert!(Label::new("build").is_ok());
        assert!(Label::new("gpt-4.1").is_ok());
        for bad in [
            "",
            "/home/alice",
            "alice@example.com",
            "C:\\x",
            "two words",
            "Upper",
            "-lead",
            "é",
        ] {
            let err = Label::new(bad).unwrap_err();
            assert_eq!(err.type_name, "Label");
        }
    }

    #[test]
    fn versions() {
        for ok in ["0.0.0", "1.2.3", "10.20.30", "1.0.0-rc.1", "1.0.0-alpha-2"] {
            assert!(Version::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "1.2",
            "01.2.3",
            "1.2.3+build",
            "1.2.3-",
            "1.2.3-a..b",
            "v1.2.3",
            "1.2.3.4",
        ] {
            assert!(Version::new(bad).is_err(), "{bad}");
        }
        assert_eq!(Version::new("1.20.3-rc").unwrap().triple(), (1, 20, 3));
    }

    #[test]
    fn ids() {
        assert_eq!(SessionId::from_bytes([0xab; 16]).as_str(), "ab".repeat(16));
        assert!(SessionId::new("AB".repeat(16)).is_err());
        assert_eq!(DailyId::from_mac(&[1; 32]).as_str().len(), 32);
        let mut uuid = [0u8; 16];
        uuid[6] = 0x70;
        uuid[8] = 0x80;
        assert!(RunId::from_uuid_bytes(uuid).is_ok());
        uuid[6] = 0x40; // v4
        assert!(RunId::from_uuid_bytes(uuid).is_err());
    }

    #[test]
    fn days() {
        assert_eq!(Day::new(2024, 2, 29).unwrap().to_string(), "2024-02-29");
        assert!(Day::new(2023, 2, 29).is_err());
        assert!(Day::new(2024, 13, 1).is_err());
        assert!("2024-1-01".parse::<Day>().is_err());
        assert!("2024-01-01T00:00:00Z".parse::<Day>().is_err());
        assert!("+024-01-01".parse::<Day>().is_err());
        assert_eq!(Day::from_unix_seconds(0).unwrap().to_string(), "1970-01-01");
        assert_eq!(
            Day::from_unix_seconds(1_709_210_096).unwrap().to_string(),
            "2024-02-29"
        );
        assert!(Day::from_unix_seconds(-1).is_err());
    }

    #[test]
    fn redacted_text() {
        assert!(RedactedText::new("could not open <path>").is_ok());
        for bad in [
            "/etc/passwd",
            "a\\b",
            "me@host",
            "line\nbreak",
            &"x".repeat(201),
            "tab\there",
            "bell\u{7}",
            "esc \u{1b}[31m red",
            "c1 \u{9b}31m",
            "nel\u{85}",
            "invoice\u{202E}fdp.exe",
            "isolate \u{2066}x\u{2069}",
            "mark \u{200F} \u{061C}",
            "zero\u{200B}width",
            "soft\u{AD}hyphen",
            "bom\u{FEFF}",
            "line\u{2028}separator",
            "tag \u{E0041}",
        ] {
            assert!(RedactedText::new(bad).is_err(), "{bad:?}");
        }
        assert!(RedactedText::new("ε ≤ 1, 日本語, עברית, emoji ❤\u{FE0F}").is_ok());
    }

    #[test]
    #[cfg(feature = "validate")]
    fn the_redacted_text_pattern_refuses_what_the_rust_check_refuses() {
        // Every character of the Basic Multilingual Plane (and a sample above it) alone, through
        // the JSON Schema pattern and through the Rust check: the same answer, except for the
        // format characters above U+FFFF that only the Rust check can refuse (type docs).
        let schema = serde_json::json!({ "type": "string", "pattern": RedactedText::PATTERN });
        let validator = jsonschema::validator_for(&schema).unwrap();
        let astral = [
            0x1F980, 0x10000, 0x110BD, 0xE0001, 0xE0041, 0x1D173, 0x1BCA0,
        ];
        for c in (0..0x10000).chain(astral).filter_map(char::from_u32) {
            let text = c.to_string();
            let rust = RedactedText::new(&text).is_ok();
            let pattern = validator.is_valid(&serde_json::Value::String(text));
            if u32::from(c) > 0xFFFF && crate::display::is_control_or_format(c) {
                assert!(!rust && pattern, "{c:?}");
            } else {
                assert_eq!(rust, pattern, "{c:?}: Rust {rust}, pattern {pattern}");
            }
        }
    }

    #[test]
    fn checked_strings_decode_and_encode_as_plain_json_strings() {
        // Escaped, short (stored inline) and long (stored on the heap) values all round-trip.
        let id: Identifier = serde_json::from_str(r#""comm\u0061nd_run""#).unwrap();
        assert_eq!(id.as_str(), "command_run");
        let long = "could not open <path>: permission denied".repeat(4);
        let text: RedactedText = serde_json::from_value(serde_json::json!(long)).unwrap();
        assert_eq!(text.as_str(), long);
        assert_eq!(serde_json::to_string(&text).unwrap(), format!("{long:?}"));
        assert_eq!(String::from(text.clone()), long);
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""command_run""#);

        // The format is checked while decoding, with the checked type's own message.
        let err = serde_json::from_str::<Identifier>(r#""Command""#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid Identifier: \"Command\""),
            "{err}"
        );
        let err = serde_json::from_str::<Label>(&format!("{:?}", "a".repeat(65))).unwrap_err();
        assert!(err.to_string().starts_with("invalid Label"), "{err}");
        let err = serde_json::from_str::<Identifier>("5").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid type: integer `5`, expected a string"),
            "{err}"
        );
        assert!(serde_json::from_str::<Version>("null").is_err());
    }
}
