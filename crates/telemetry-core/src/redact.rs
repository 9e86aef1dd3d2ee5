//! Redaction of free text before it may enter a payload (DESIGN §2.4 and §7).
//!
//! Typed fields are the rule; free text (an error message, a panic reason) is the exception and always passes
//! through a [`Redactor`]. The redactor removes what DESIGN §7 says must never leave the machine — file
//! paths, the user's home, username and hostname, e-mail addresses, IP addresses, URLs, environment variable
//! values and anything shaped like a key, token or secret — replacing each with a typed placeholder
//! (`<path>`, `<home>`, `<user>`, `<host>`, `<email>`, `<ip>`, `<url>`, `<env>`, `<secret>`), so the
//! message keeps its shape ("cannot open `<path>`: permission denied") without its content.
//!
//! The module is pure and testable: it never reads the environment itself. The caller supplies a
//! [`RedactionContext`] (the values to hunt for); [`RedactionContext::from_process`] gathers them from the
//! current process for production use.
//!
//! # Policy (rules version [`RULES_VERSION`])
//! - **Rejected** ([`RedactionStatus::Rejected`], text dropped): input longer than [`MAX_INPUT_BYTES`] (a dump,
//!   not a message); input with a control or format character other than the line breaks below — C0, DEL,
//!   C1, bidi marks, embeddings, overrides and isolates, zero-width characters, the byte order mark, tags and
//!   every other Unicode `Cf` character (used to smuggle text past pattern rules, or past a person's eyes on a
//!   terminal): exactly the class [`telemetry_schema::display::is_control_or_format`] that a `RedactedText`
//!   refuses, so the validator accepts what the redactor lets through; and input of which more than half was
//!   redacted (a line that is mostly secrets is useless and its residue — fragments around the secrets — is
//!   risky).
//! - Tab, newline, carriage return and the line and paragraph separators (U+2028, U+2029) become spaces: the
//!   output is one line.
//! - Rules run in a fixed order on the text not yet redacted (a placeholder is never matched again):
//!   PEM blocks; URLs (every URL, not only those with credentials: hosts, paths and query strings carry
//!   identities and tokens, and an app that needs a domain should declare a closed enum); known key shapes
//!   (AWS `AKIA…`, GitHub `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`/`github_pat_`, `sk-…`, Slack `xox[abprs]-`, JWTs
//!   `eyJ…`, `Bearer …`, and the value of `password=`/`token:`/`api_key=`-style assignments); e-mail
//!   addresses; the context's literal values (home, username, hostname — case-insensitively — and
//!   environment values, longest first); IPv6 (validated by the standard library's parser) and IPv4
//!   addresses; UUIDs and hex strings of 16+ digits (hashes, block ids); high-entropy tokens (≥ 20 characters
//!   of `[A-Za-z0-9+/_=-]` with letters and digits and Shannon entropy ≥ 3.4 bits/char); finally paths
//!   (any token containing `/` or `\`, Windows drive and UNC paths, `~user`).
//! - The result is truncated to [`MAX_OUTPUT_CHARS`] characters, never inside a placeholder.
//!
//! Redaction errs towards removing too much: "and/or" becomes `<path>`, a four-part version number `<ip>`.
//!
//! # Example
//! ```
//! use telemetry_core::redact::{RedactionContext, RedactionStatus, Redactor};
//!
//! let redactor = Redactor::new(RedactionContext {
//!     home: Some("/home/alice".into()),
//!     username: Some("alice".into()),
//!     hostname: Some("alice-laptop".into()),
//!     env_values: vec!["s3cr3t-value".into()],
//! });
//! let out = redactor.redact("alice: cannot read /home/alice/.config/app.toml on alice-laptop (key s3cr3t-value)");
//! assert_eq!(out.text, "<user>: cannot read <path> on <host> (key <env>)");
//! assert_eq!(out.status, RedactionStatus::Redacted(4));
//!
//! assert_eq!(redactor.redact("build finished").status, RedactionStatus::Clean);
//! ```

use std::fmt;
use std::net::Ipv6Addr;
use std::sync::OnceLock;

use regex_lite::Regex;

/// Version of the redaction rules, stated in each payload's `privacy.redaction.rules`. Bump it whenever a
/// rule changes what is removed.
/// Version 2 rejects every control and format character that the payload schema refuses in text (version 1
/// rejected C0/C1 controls and a list of bidi and zero-width characters, and let U+061C, U+2028/U+2029 and
/// other format characters through).
/// Version 3 matches with a small regex engine (`regex-lite`) instead of `regex`, for a lighter app:
/// whitespace in the rules is still Unicode's (an explicit class), but `\b` and `(?i)` in the built-in
/// rules are ASCII's, which only adds matches next to non-ASCII letters (`éAKIA…` is now a key); the
/// context literals match case-insensitively by the standard library's Unicode case mappings, and a
/// short username or hostname is a whole word by Unicode's letters and digits.
pub const RULES_VERSION: &str = "3";

/// Inputs longer than this many bytes are rejected outright.
pub const MAX_INPUT_BYTES: usize = 2048;

/// Redacted output is truncated to this many characters.
pub const MAX_OUTPUT_CHARS: usize = 200;

/// The machine-specific values the redactor must remove, collected by the caller.
///
/// Kept separate from [`Redactor`] so that tests (and hosts with their own notion of identity) can supply
/// them explicitly; [`RedactionContext::from_process`] gathers them from the running process.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RedactionContext {
    /// The user's home directory (replaced by `<home>` where it appears outside a longer path).
    pub home: Option<String>,
    /// The login name (replaced by `<user>`, case-insensitively).
    pub username: Option<String>,
    /// The machine's host name (replaced by `<host>`, case-insensitively).
    pub hostname: Option<String>,
    /// Values of the process's environment variables (each replaced by `<env>`).
    pub env_values: Vec<String>,
}

impl fmt::Debug for RedactionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The context is the very data we must not leak; never print it.
        f.debug_struct("RedactionContext")
            .field("home", &self.home.is_some())
            .field("username", &self.username.is_some())
            .field("hostname", &self.hostname.is_some())
            .field("env_values", &self.env_values.len())
            .finish()
    }
}

/// Environment values too common to be worth hunting for (and that would shred ordinary text).
const COMMON_ENV_VALUES: &[&str] = &[
    "true", "false", "yes", "no", "on", "off", "none", "null", "auto", "always", "never", "default",
];

impl RedactionContext {
    /// Gathers the context from the current process: `HOME` (or `USERPROFILE`), `USER` / `LOGNAME` /
    /// `USERNAME`, `HOSTNAME` / `COMPUTERNAME` or, on Unix, `uname().nodename`, and the value of every
    /// environment variable that is valid UTF-8, at least 4 characters long, at most [`MAX_INPUT_BYTES`]
    /// long (a longer one cannot occur in accepted input) and not a common word like `true`.
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let home = var("HOME").or_else(|| var("USERPROFILE"));
        let username = var("USER")
            .or_else(|| var("LOGNAME"))
            .or_else(|| var("USERNAME"));
        let hostname = var("HOSTNAME")
            .or_else(|| var("COMPUTERNAME"))
            .or_else(nodename);
        let mut env_values: Vec<String> = std::env::vars_os()
            .filter_map(|(_, v)| v.into_string().ok())
            .filter(|v| v.chars().count() >= 4 && v.len() <= MAX_INPUT_BYTES)
            .filter(|v| !COMMON_ENV_VALUES.iter().any(|c| v.eq_ignore_ascii_case(c)))
            .collect();
        env_values.sort();
        env_values.dedup();
        Self {
            home,
            username,
            hostname,
            env_values,
        }
    }
}

#[cfg(unix)]
fn nodename() -> Option<String> {
    let uname = rustix::system::uname();
    uname
        .nodename()
        .to_str()
        .ok()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(not(unix))]
fn nodename() -> Option<String> {
    None
}

/// The kind of value a placeholder stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Placeholder {
    /// A file path.
    Path,
    /// The user's home directory.
    Home,
    /// The username.
    User,
    /// The host name.
    Host,
    /// An e-mail address.
    Email,
    /// An IPv4 or IPv6 address.
    Ip,
    /// A URL.
    Url,
    /// An environment variable's value.
    Env,
    /// A key, token, hash or other secret-shaped string.
    Secret,
}

impl Placeholder {
    /// The placeholder text written in place of the value, e.g. `<path>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Placeholder::Path => "<path>",
            Placeholder::Home => "<home>",
            Placeholder::User => "<user>",
            Placeholder::Host => "<host>",
            Placeholder::Email => "<email>",
            Placeholder::Ip => "<ip>",
            Placeholder::Url => "<url>",
            Placeholder::Env => "<env>",
            Placeholder::Secret => "<secret>",
        }
    }
}

/// Why an input was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// Longer than [`MAX_INPUT_BYTES`].
    TooLong,
    /// Contains a control or format character (other than tab, newline, carriage return and the line and
    /// paragraph separators): a C0 or C1 control, DEL, a bidi control, a zero-width character, ...
    ControlCharacters,
    /// More than half of the input's words contain a redaction.
    MostlyRedacted,
}

/// The outcome of redaction, for the payload's `privacy.redaction.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RedactionStatus {
    /// Nothing was found; the text is the input (single-lined, possibly truncated).
    Clean,
    /// This many values were replaced by placeholders.
    Redacted(u32),
    /// The input was dropped; the text is empty.
    Rejected(RejectReason),
}

impl RedactionStatus {
    /// Stable lower-case name: `clean`, `redacted` or `rejected`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RedactionStatus::Clean => "clean",
            RedactionStatus::Redacted(_) => "redacted",
            RedactionStatus::Rejected(_) => "rejected",
        }
    }
}

/// Redacted text and what was done to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    /// The text that may be sent (empty when rejected).
    pub text: String,
    /// Number of values replaced by placeholders.
    pub replacements: u32,
    /// Clean, redacted or rejected.
    pub status: RedactionStatus,
    /// Whether the output was cut to [`MAX_OUTPUT_CHARS`].
    pub truncated: bool,
}

impl Redacted {
    fn rejected(reason: RejectReason) -> Self {
        Self {
            text: String::new(),
            replacements: 0,
            status: RedactionStatus::Rejected(reason),
            truncated: false,
        }
    }
}

/// The context-independent rules, compiled once per process (compiling costs about a millisecond, so it is
/// done on first use, not at telemetry start-up).
struct Rules {
    pem: Regex,
    url: Regex,
    keys: Regex,
    assignment: Regex,
    email: Regex,
    ipv6_candidate: Regex,
    ipv4: Regex,
    hex_id: Regex,
    token: Regex,
    path: Regex,
    tilde: Regex,
}

fn rules() -> Option<&'static Rules> {
    static RULES: OnceLock<Option<Rules>> = OnceLock::new();
    RULES
        .get_or_init(|| {
            let re = |p: &str| Regex::new(&unicode_white_space(p)).ok();
            Some(Rules {
                pem: re(r"-----BEGIN [A-Z0-9 ]{1,64}-----(?:.*?-----END [A-Z0-9 ]{1,64}-----|.*)")?,
                url: re(r"(?i)\b[a-z][a-z0-9+.\-]{1,31}://[^\s<>]*")?,
                keys: re(concat!(
                    r"\bAKIA[0-9A-Z]{16}\b",
                    r"|\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}",
                    r"|\bgithub_pat_[A-Za-z0-9_]{20,}",
                    r"|\bsk-[A-Za-z0-9_\-]{16,}",
                    r"|\bxox[abprs]-[A-Za-z0-9\-]{10,}",
                    r"|\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}(?:\.[A-Za-z0-9_\-]*)?",
                    r"|(?i:\bbearer\s+)[A-Za-z0-9._~+/=\-]{8,}",
                ))?,
                assignment: re(concat!(
                    r"(?i)(?:^|[\s,;(\[{])(?:password|passwd|pwd|passphrase|secret|client_secret|token|access_token|",
                    r"refresh_token|auth_token|api[_\-]?key|access[_\-]?key|private[_\-]?key|credentials?)",
                    r#"\s*[:=]\s*["']?([^\s"',;]+)"#,
                ))?,
                email: re(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")?,
                ipv6_candidate: re(r"[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*(?:%[A-Za-z0-9_.\-]+)?")?,
                ipv4: re(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")?,
                hex_id: re(concat!(
                    r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
                    r"|\b[0-9a-f]{16,}\b|\b[0-9A-F]{16,}\b",
                ))?,
                token: re(r"[A-Za-z0-9+/_=\-]{20,}")?,
                path: re(r#"[^\s"'`()\[\]{}<>,;|]*[/\\][^\s"'`()\[\]{}<>,;|]*"#)?,
                tilde: re(r"(?:^|\s)(~[A-Za-z_][A-Za-z0-9._\-]*)")?,
            })
        })
        .as_ref()
}

/// Unicode's `White_Space` characters as the body of a regex class (what `\s` means in `regex`).
const WHITE_SPACE: &str =
    r"\t\n\x0B\x0C\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}";

/// `pattern` with each `\s` spelled as Unicode's white space: regex-lite's `\s` is ASCII's, and
/// a path or URL rule must stop at a no-break or ideographic space as it did with `regex`.
fn unicode_white_space(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut in_class = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('s') if in_class => out.push_str(WHITE_SPACE),
                Some('s') => {
                    out.push('[');
                    out.push_str(WHITE_SPACE);
                    out.push(']');
                }
                Some(escaped) => {
                    out.push('\\');
                    out.push(escaped);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// One matched region of a raw segment: byte range and placeholder.
type Hit = (usize, usize, Placeholder);

/// Redacts free text. Build one per process (or per context) and reuse it; `redact` takes `&self`.
pub struct Redactor {
    /// Context literals (home, user, host, env values), longest first: at a position the first
    /// that matches wins, as in a leftmost-first alternation.
    literals: Vec<Literal>,
    /// Every byte a literal can start with (its first character in each case), so that most
    /// positions are passed over after one lookup.
    first_bytes: [bool; 256],
}

/// One value of the context to hunt for.
struct Literal {
    value: String,
    kind: Placeholder,
    /// Home, username and hostname: by the standard library's Unicode case mappings.
    fold_case: bool,
    /// A username or hostname shorter than 3 characters: only where no letter, digit or `_`
    /// (Unicode's) touches it, so that a one-letter login does not shred every sentence.
    whole_word: bool,
}

impl Literal {
    /// The end of this literal if it occurs in `s` at byte `at`.
    fn match_at(&self, s: &str, at: usize) -> Option<usize> {
        let rest = &s[at..];
        let end = if self.fold_case {
            let mut hay = rest.char_indices();
            let mut end = 0;
            for wanted in self.value.chars() {
                let (i, found) = hay.next()?;
                if found != wanted && !found.to_lowercase().eq(wanted.to_lowercase()) {
                    return None;
                }
                end = i + found.len_utf8();
            }
            at + end
        } else {
            rest.starts_with(self.value.as_str())
                .then_some(at + self.value.len())?
        };
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        if self.whole_word && (word(s[..at].chars().next_back()) || word(s[end..].chars().next())) {
            return None;
        }
        Some(end)
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("literals", &self.literals.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor for `context`. Home, username and hostname match case-insensitively (file systems and DNS
    /// often are); a username or hostname shorter than 3 characters matches only as a whole word, so a
    /// one-letter login does not shred every sentence. Environment values match exactly.
    pub fn new(context: RedactionContext) -> Self {
        let mut literals: Vec<Literal> = Vec::new();
        let mut push = |value: Option<String>, kind: Placeholder, fold_case: bool| {
            if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
                let whole_word = kind != Placeholder::Env && value.chars().count() < 3;
                literals.push(Literal {
                    value,
                    kind,
                    fold_case,
                    whole_word,
                });
            }
        };
        push(context.home, Placeholder::Home, true);
        push(context.username, Placeholder::User, true);
        push(context.hostname, Placeholder::Host, true);
        for v in context.env_values {
            push(Some(v), Placeholder::Env, false);
        }
        // Longest first, so that a value containing another (PWD containing HOME) wins at the same start.
        literals.sort_by_key(|l| std::cmp::Reverse(l.value.len()));
        let mut first_bytes = [false; 256];
        for literal in &literals {
            let Some(first) = literal.value.chars().next() else {
                continue;
            };
            let mut mark = |c: char| {
                first_bytes[usize::from(c.to_string().as_bytes()[0])] = true;
            };
            mark(first);
            if literal.fold_case {
                // A character matches when it lower-cases as the first does: its upper and
                // lower case, and for a non-ASCII first character (or `k`, which KELVIN SIGN
                // lower-cases to) every multi-byte lead byte.
                first.to_lowercase().for_each(&mut mark);
                first.to_uppercase().for_each(&mut mark);
                if !first.is_ascii() || first.eq_ignore_ascii_case(&'k') {
                    (0xC0..=0xFF).for_each(|b| first_bytes[b] = true);
                }
            }
        }
        Self {
            literals,
            first_bytes,
        }
    }

    /// Where the context's literals occur in `s`: leftmost first, the longest at a position.
    fn literal_hits(&self, s: &str) -> Vec<Hit> {
        let mut hits = Vec::new();
        let mut at = 0;
        while at < s.len() {
            if self.first_bytes[usize::from(s.as_bytes()[at])]
                && let Some((end, kind)) = self
                    .literals
                    .iter()
                    .find_map(|l| l.match_at(s, at).map(|end| (end, l.kind)))
            {
                hits.push(widen_to_path(s, at, end, kind));
                at = end;
                continue;
            }
            at += s[at..].chars().next().map_or(1, char::len_utf8);
        }
        hits
    }

    /// Redacts `text` according to the module's policy (see the module docs).
    pub fn redact(&self, text: &str) -> Redacted {
        if text.len() > MAX_INPUT_BYTES {
            return Redacted::rejected(RejectReason::TooLong);
        }
        if text.chars().any(is_forbidden_char) {
            return Redacted::rejected(RejectReason::ControlCharacters);
        }
        let Some(rules) = rules() else {
            // The built-in patterns failed to compile: impossible unless the regex crate is broken; fail closed.
            return Redacted::rejected(RejectReason::MostlyRedacted);
        };
        let single_line: String = text
            .chars()
            .map(|c| if is_line_break(c) { ' ' } else { c })
            .collect();

        let mut segs = vec![Seg::Raw(single_line)];
        let mut count = 0u32;
        let mut pass = |segs: Vec<Seg>, find: &dyn Fn(&str) -> Vec<Hit>| -> Vec<Seg> {
            let mut out = Vec::with_capacity(segs.len());
            for seg in segs {
                let Seg::Raw(raw) = seg else {
                    out.push(seg);
                    continue;
                };
                let mut last = 0;
                for (start, end, kind) in find(&raw) {
                    // Overlapping hits are merged, never dropped: clip to what is not yet covered.
                    let start = start.max(last);
                    if end <= start {
                        continue;
                    }
                    if start > last {
                        out.push(Seg::Raw(raw[last..start].to_owned()));
                    }
                    out.push(Seg::Red(kind));
                    count = count.saturating_add(1);
                    last = end;
                }
                if last < raw.len() {
                    out.push(Seg::Raw(raw[last..].to_owned()));
                }
            }
            out
        };

        segs = pass(segs, &|s| all(&rules.pem, s, Placeholder::Secret));
        segs = pass(segs, &|s| all(&rules.url, s, Placeholder::Url));
        segs = pass(segs, &|s| all(&rules.keys, s, Placeholder::Secret));
        segs = pass(segs, &|s| {
            group(&rules.assignment, s, 1, Placeholder::Secret)
        });
        segs = pass(segs, &|s| all(&rules.email, s, Placeholder::Email));
        if !self.literals.is_empty() {
            segs = pass(segs, &|s| self.literal_hits(s));
        }
        segs = pass(segs, &|s| ipv6(&rules.ipv6_candidate, s));
        segs = pass(segs, &|s| ipv4(&rules.ipv4, s));
        segs = pass(segs, &|s| all(&rules.hex_id, s, Placeholder::Secret));
        segs = pass(segs, &|s| high_entropy(&rules.token, s));
        segs = pass(segs, &|s| paths(&rules.path, s));
        segs = pass(segs, &|s| group(&rules.tilde, s, 1, Placeholder::Path));

        if count > 0 && mostly_redacted(&segs) {
            return Redacted::rejected(RejectReason::MostlyRedacted);
        }

        // Assemble, truncating to MAX_OUTPUT_CHARS without cutting a placeholder.
        let mut out = String::new();
        let mut chars = 0usize;
        let mut truncated = false;
        for seg in &segs {
            match seg {
                Seg::Red(kind) => {
                    let p = kind.as_str();
                    if chars + p.len() > MAX_OUTPUT_CHARS {
                        truncated = true;
                        break;
                    }
                    out.push_str(p);
                    chars += p.len();
                }
                Seg::Raw(raw) => {
                    for c in raw.chars() {
                        if chars == MAX_OUTPUT_CHARS {
                            truncated = true;
                            break;
                        }
                        out.push(c);
                        chars += 1;
                    }
                    if truncated {
                        break;
                    }
                }
            }
        }
        let status = if count == 0 {
            RedactionStatus::Clean
        } else {
            RedactionStatus::Redacted(count)
        };
        Redacted {
            text: out,
            replacements: count,
            status,
            truncated,
        }
    }
}

/// True if more than half of the output's words (whitespace-separated) contain a placeholder.
fn mostly_redacted(segs: &[Seg]) -> bool {
    // Control characters were rejected earlier, so NUL can stand for "a placeholder is here".
    let mut flat = String::new();
    for seg in segs {
        match seg {
            Seg::Raw(raw) => flat.push_str(raw),
            Seg::Red(_) => flat.push('\0'),
        }
    }
    let (mut words, mut redacted) = (0usize, 0usize);
    for word in flat.split_whitespace() {
        words += 1;
        if word.contains('\0') {
            redacted += 1;
        }
    }
    redacted * 2 > words
}

enum Seg {
    Raw(String),
    Red(Placeholder),
}

/// Control and format characters (the class a `RedactedText` refuses) other than the line breaks that become
/// spaces: C0/C1 controls, DEL, bidi marks/embeddings/overrides/isolates, zero-width, BOM, tags, ...
fn is_forbidden_char(c: char) -> bool {
    telemetry_schema::display::is_control_or_format(c) && !is_line_break(c)
}

/// Tab, LF, CR and the Unicode line and paragraph separators: each becomes a space.
fn is_line_break(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

fn all(re: &Regex, s: &str, kind: Placeholder) -> Vec<Hit> {
    re.find_iter(s)
        .map(|m| (m.start(), m.end(), kind))
        .collect()
}

fn group(re: &Regex, s: &str, index: usize, kind: Placeholder) -> Vec<Hit> {
    re.captures_iter(s)
        .filter_map(|c| c.get(index))
        .map(|m| (m.start(), m.end(), kind))
        .collect()
}

fn ipv6(re: &Regex, s: &str) -> Vec<Hit> {
    let bytes = s.as_bytes();
    re.find_iter(s)
        .filter_map(|m| {
            let (mut start, mut end) = (m.start(), m.end());
            let zone = m.as_str().find('%').map(|z| start + z);
            // Punctuation glued on by the sentence ("addr:fe80::1", "at 2001:db8::1:") is not the address:
            // drop a single leading/trailing ':' (but keep "::") and trailing dots.
            let mut addr_end = zone.unwrap_or(end);
            loop {
                let head = &s[start..addr_end];
                if head.ends_with('.') || (head.ends_with(':') && !head.ends_with("::")) {
                    addr_end -= 1;
                } else {
                    break;
                }
            }
            if zone.is_none() {
                end = addr_end;
            }
            if s[start..addr_end].starts_with(':') && !s[start..addr_end].starts_with("::") {
                start += 1;
            }
            let addr = s.get(start..addr_end)?;
            // Not glued to a word (Rust paths like `std::fs`), and a valid address per the std parser.
            let before_ok = start == 0 || !is_word_byte(bytes[start - 1]);
            let after_ok = end == s.len() || !is_word_byte(bytes[end]);
            let valid =
                addr.bytes().any(|b| b.is_ascii_hexdigit()) && addr.parse::<Ipv6Addr>().is_ok();
            (before_ok && after_ok && valid).then_some((start, end, Placeholder::Ip))
        })
        .collect()
}

fn ipv4(re: &Regex, s: &str) -> Vec<Hit> {
    re.find_iter(s)
        .filter(|m| {
            m.as_str()
                .split('.')
                .all(|o| o.parse::<u16>().is_ok_and(|v| v <= 255))
        })
        .map(|m| (m.start(), m.end(), Placeholder::Ip))
        .collect()
}

fn high_entropy(re: &Regex, s: &str) -> Vec<Hit> {
    re.find_iter(s)
        .filter(|m| {
            let t = m.as_str();
            !t.starts_with('/')
                && t.bytes().any(|b| b.is_ascii_digit())
                && t.bytes().any(|b| b.is_ascii_alphabetic())
                && shannon_entropy(t) >= 3.4
        })
        .map(|m| (m.start(), m.end(), Placeholder::Secret))
        .collect()
}

fn paths(re: &Regex, s: &str) -> Vec<Hit> {
    re.find_iter(s)
        // A lone separator ("a / b") is punctuation, not a path.
        .filter_map(|m| {
            // Sentence punctuation after a path ("open /etc/hosts: denied") is not part of it.
            let path = m.as_str().trim_end_matches(['.', ':', '!', '?']);
            path.chars()
                .any(|c| c != '/' && c != '\\')
                .then(|| (m.start(), m.start() + path.len(), Placeholder::Path))
        })
        .collect()
}

/// Path-token characters: the complement of the delimiters used by the path rule.
fn is_path_char(c: char) -> bool {
    !c.is_whitespace()
        && !matches!(
            c,
            '"' | '\'' | '`' | '(' | ')' | '[' | ']' | '{' | '}' | '<' | '>' | ',' | ';' | '|'
        )
}

/// A literal (home, user, host, env value) inside a path-like token (`/home/alice/src`, `C:\Users\alice`)
/// takes the whole token as one `<path>`, instead of leaving `<home><path>` fragments.
fn widen_to_path(s: &str, start: usize, end: usize, kind: Placeholder) -> Hit {
    let left = s[..start]
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_path_char(c))
        .last()
        .map_or(start, |(i, _)| i);
    let right = s[end..]
        .char_indices()
        .find(|&(_, c)| !is_path_char(c))
        .map_or(s.len(), |(i, _)| end + i);
    if (left, right) != (start, end) && s[left..right].contains(['/', '\\']) {
        (left, right, Placeholder::Path)
    } else {
        (start, end, kind)
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Shannon entropy of the byte distribution of `s`, in bits per byte.
fn shannon_entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| f64::from(c) / n)
        .map(|p| -p * libm::log2(p))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_exactly_the_control_and_format_characters_a_redacted_text_refuses() {
        use telemetry_schema::RedactedText;
        use telemetry_schema::display::is_control_or_format;
        let r = Redactor::new(RedactionContext::default());
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            if !is_control_or_format(c) && !c.is_ascii() && u32::from(c) % 97 != 0 {
                continue; // every control/format character and every ASCII one; a sample of the rest
            }
            let out = r.redact(&format!("x{c}y"));
            let rejected = out.status == RedactionStatus::Rejected(RejectReason::ControlCharacters);
            assert_eq!(rejected, is_forbidden_char(c), "{c:?}");
            assert_eq!(
                rejected,
                is_control_or_format(c)
                    && !matches!(c, '\t' | '\n' | '\r' | '\u{2028}' | '\u{2029}'),
                "{c:?}"
            );
            if !rejected {
                assert!(
                    !out.text.chars().any(is_control_or_format),
                    "{c:?}: {:?}",
                    out.text
                );
                if !matches!(c, '/' | '\\' | '@') {
                    assert!(
                        RedactedText::new(&out.text).is_ok(),
                        "{c:?}: {:?}",
                        out.text
                    );
                }
            }
        }
    }

    #[test]
    fn entropy_examples() {
        assert!(shannon_entropy("aaaaaaaaaaaaaaaaaaaa") < 0.01);
        assert!((shannon_entropy("abcd") - 2.0).abs() < 1e-12);
    }

    #[test]
    fn context_debug_hides_values() {
        let c = RedactionContext {
            username: Some("alice".into()),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("alice"));
    }

    #[test]
    fn from_process_collects_something() {
        let c = RedactionContext::from_process();
        assert!(c.env_values.iter().all(|v| v.chars().count() >= 4));
        #[cfg(unix)]
        assert!(c.hostname.is_some());
    }
}
