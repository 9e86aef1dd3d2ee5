//! One test per redaction rule, clean text passing unchanged, and the reject/truncate policy.

use telemetry_core::redact::{
    MAX_INPUT_BYTES, MAX_OUTPUT_CHARS, RULES_VERSION, RedactionContext, RedactionStatus, Redactor,
    RejectReason,
};

fn plain() -> Redactor {
    Redactor::new(RedactionContext::default())
}

fn ctx() -> Redactor {
    Redactor::new(RedactionContext {
        home: Some("/home/alice".into()),
        username: Some("alice".into()),
        hostname: Some("wonderland-7".into()),
        env_values: vec!["hunter2-env-value".into(), "/opt/acme/bin:/usr/bin".into()],
    })
}

#[track_caller]
fn check(r: &Redactor, input: &str, want: &str) {
    let out = r.redact(input);
    assert_eq!(out.text, want, "input: {input:?}");
    assert!(
        matches!(out.status, RedactionStatus::Redacted(n) if n >= 1),
        "{input:?}: {:?}",
        out.status
    );
}

#[test]
fn clean_text_passes_unchanged() {
    let r = ctx();
    for text in [
        "build finished in 3 steps",
        "error: expected `;`, found `}` at line 3",
        "std::fs::read failed: permission denied",
        "retrying (attempt 2 of 5) at 12:30:45",
        "version 1.2.3 is out of date",
        "ThisIsAVeryLongIdentifierName and recording_pipeline_stage",
        "",
    ] {
        let out = r.redact(text);
        assert_eq!(out.text, text);
        assert_eq!(
            (out.status, out.replacements, out.truncated),
            (RedactionStatus::Clean, 0, false)
        );
    }
    assert_eq!(RULES_VERSION, "3");
}

#[test]
fn paths() {
    let r = plain();
    check(
        &r,
        "cannot open /etc/passwd: denied",
        "cannot open <path>: denied",
    );
    check(&r, "see src/main.rs for details", "see <path> for details");
    check(
        &r,
        "missing C:\\Users\\Bob\\file.txt here",
        "missing <path> here",
    );
    check(
        &r,
        "share \\\\server\\share\\dir is down",
        "share <path> is down",
    );
    check(
        &r,
        "config at ~/.config/app.toml was bad",
        "config at <path> was bad",
    );
    check(
        &r,
        "owned by ~bob now, not you",
        "owned by <path> now, not you",
    );
    // A lone slash is punctuation.
    assert_eq!(r.redact("a / b").text, "a / b");
}

#[test]
fn home_user_host() {
    let r = ctx();
    check(&r, "home is /home/alice today", "home is <home> today");
    check(&r, "read /home/alice/projects/x.rs now", "read <path> now");
    check(
        &r,
        "hello ALICE and Alice again",
        "hello <user> and <user> again",
    );
    check(&r, "connected to wonderland-7 ok", "connected to <host> ok");
    // Short usernames only match whole words.
    let short = Redactor::new(RedactionContext {
        username: Some("al".into()),
        ..Default::default()
    });
    assert_eq!(short.redact("also al here").text, "also <user> here");
}

#[test]
fn env_values() {
    let r = ctx();
    check(
        &r,
        "token hunter2-env-value was used",
        "token <env> was used",
    );
    check(&r, "PATH is /opt/acme/bin:/usr/bin ok", "PATH is <env> ok");
}

#[test]
fn emails() {
    check(
        &plain(),
        "mail bob.smith+tag@example.co.uk about it",
        "mail <email> about it",
    );
}

#[test]
fn ip_addresses() {
    let r = plain();
    check(
        &r,
        "connect to 192.168.1.20:8080 failed",
        "connect to <ip>:8080 failed",
    );
    check(&r, "peer 2001:db8::8a2e:370:7334 reset", "peer <ip> reset");
    check(&r, "bound [::1]:80 ok", "bound [<ip>]:80 ok");
    check(&r, "link fe80::1%eth0 up", "link <ip> up");
    check(&r, "mapped ::ffff:10.0.0.1 seen", "mapped <ip> seen");
    // Not addresses: times, Rust paths, out-of-range octets.
    for text in ["at 12:30:45", "use std::fs::File", "999.300.1.1 is no ip"] {
        assert_eq!(r.redact(text).status, RedactionStatus::Clean, "{text}");
    }
}

#[test]
fn urls() {
    let r = plain();
    check(
        &r,
        "fetch https://user:pa55@example.com/x?y=1 failed",
        "fetch <url> failed",
    );
    check(&r, "see http://example.com for more", "see <url> for more");
    check(
        &r,
        "remote ssh://git@host.example:22/repo.git gone",
        "remote <url> gone",
    );
}

#[test]
fn key_shapes() {
    let r = plain();
    for (secret, label) in [
        ("AKIAIOSFODNN7EXAMPLE", "aws"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "github"),
        ("gho_16C7e42F292c6912E7710c838347Ae178B4a", "github oauth"),
        (
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            "github pat",
        ),
        ("sk-proj-abcdefghijklmnopqrstuvwx", "openai"),
        ("xoxb-123456789012-abcdefghijkl", "slack"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "jwt",
        ),
        ("0123456789abcdef0123456789abcdef01234567", "hex hash"),
        ("123e4567-e89b-12d3-a456-426614174000", "uuid"),
        ("q8Zt3kLmN0pXv7Rw2YsB9cDf", "high entropy"),
    ] {
        let out = r.redact(&format!("the value {secret} leaked"));
        assert_eq!(out.text, "the value <secret> leaked", "{label}");
    }
    check(
        &r,
        "login with password=hunter2 failed",
        "login with password=<secret> failed",
    );
    check(
        &r,
        "header Authorization: Bearer abc.def.ghi123 sent",
        "header Authorization: <secret> sent",
    );
    check(
        &r,
        "got -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY----- in log file today",
        "got <secret> in log file today",
    );
}

#[test]
fn rejects() {
    let r = ctx();
    let long = "a".repeat(MAX_INPUT_BYTES + 1);
    assert_eq!(
        r.redact(&long).status,
        RedactionStatus::Rejected(RejectReason::TooLong)
    );
    for bad in [
        "bell\u{7}",
        "esc \u{1b}[31m red",
        "bidi \u{202E}txt",
        "zero\u{200B}width",
        "nul\0",
        "del\u{7f}",
        "c1 csi \u{9b}31m",
        "arabic letter mark \u{061C}",
        "isolate \u{2066}x\u{2069}",
        "rlm \u{200F}",
        "tag \u{E0041}",
        "interlinear \u{FFF9}",
    ] {
        let out = r.redact(bad);
        assert_eq!(
            out.status,
            RedactionStatus::Rejected(RejectReason::ControlCharacters),
            "{bad:?}"
        );
        assert!(out.text.is_empty());
    }
    // The Unicode line and paragraph separators become spaces, like newlines.
    assert_eq!(
        r.redact("one\u{2028}two\u{2029}three").text,
        "one two three"
    );
    // Mostly sensitive: dropped.
    let out = r.redact("/etc/passwd 10.0.0.1 alice");
    assert_eq!(
        (out.status, out.text.as_str()),
        (RedactionStatus::Rejected(RejectReason::MostlyRedacted), "")
    );
    assert_eq!(out.status.as_str(), "rejected");
}

#[test]
fn newlines_become_spaces_and_output_is_truncated() {
    let r = plain();
    let out = r.redact("line one\nline two\ttabbed\r\n");
    assert_eq!(out.text, "line one line two tabbed  ");
    let long = format!("{} /etc/hosts", "word ".repeat(100));
    let out = r.redact(&long);
    assert!(out.truncated);
    assert_eq!(out.text.chars().count(), MAX_OUTPUT_CHARS);
    // A placeholder is never cut in half.
    let near = format!("{} /etc/hosts more", "x".repeat(MAX_OUTPUT_CHARS - 4));
    let out = r.redact(&near);
    assert!(out.truncated && !out.text.contains('<'), "{}", out.text);
}

/// Rules version 3 (regex-lite): Unicode white space still ends a token, and the context's
/// literals keep Unicode case and word boundaries.
#[test]
fn unicode_survives_the_small_engine() {
    let r = plain();
    // A no-break or ideographic space ends a path or URL as an ASCII space does.
    check(&r, "open /etc/hosts\u{a0}failed", "open <path>\u{a0}failed");
    check(
        &r,
        "see https://example.com/x\u{3000}then",
        "see <url>\u{3000}then",
    );
    check(
        &r,
        "token\u{2003}=\u{2003}abcdefgh",
        "token\u{2003}=\u{2003}<secret>",
    );

    let r = Redactor::new(RedactionContext {
        username: Some("José".into()),
        hostname: Some("Jö".into()),
        env_values: vec!["öl-value".into()],
        ..Default::default()
    });
    // Case-insensitive beyond ASCII.
    check(&r, "JOSÉ logged in", "<user> logged in");
    check(&r, "hello josé", "hello <user>");
    // A short host name is a whole word, by Unicode's letters: not inside "Jöns".
    check(&r, "host Jö is down", "host <host> is down");
    let out = r.redact("Jöns is here");
    assert_eq!(
        (out.text.as_str(), out.status),
        ("Jöns is here", RedactionStatus::Clean)
    );
    // A short name that is not a whole word does not hide a value that starts inside it.
    check(&r, "read Jöl-value twice", "read J<env> twice");
}

#[test]
fn white_space_class_is_unicodes() {
    // Every Unicode White_Space character separates two words of a path (it cannot be in one).
    let r = plain();
    for c in (0..=0x10FFFF)
        .filter_map(char::from_u32)
        .filter(|c| c.is_whitespace())
    {
        let out = r.redact(&format!("a/b{c}word"));
        if matches!(c, '\t' | '\n' | '\r' | '\u{2028}' | '\u{2029}') {
            assert_eq!(out.text, "<path> word", "{c:?}");
        } else if out.status != RedactionStatus::Rejected(RejectReason::ControlCharacters) {
            assert_eq!(out.text, format!("<path>{c}word"), "{c:?}");
        }
    }
}
