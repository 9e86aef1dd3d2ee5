//! Showing untrusted text to a person: [`escape_for_terminal`].
//!
//! Everything the toolkit prints for a person may carry text it did not write: file names in
//! the pending directory, a payload's invalid schema version or unknown keys quoted by the
//! decoder and the schema validator, environment values, a collector's stored labels and
//! redacted text. Written raw to a terminal, an ESC starts a CSI or OSC sequence (colours,
//! cursor moves, a window title, an OSC 8 hyperlink whose target is not what it shows), a CR
//! or a backspace overwrites what was shown, a BEL rings, and a bidirectional override
//! (U+202E) or isolate (U+2066–U+2069) reorders the rest of the line, so that what a person
//! reads is not what is there.
//!
//! It lives here, in the pure crate every other crate depends on, so that the CLI, the core's
//! own warnings and the collector's report escape with one function, and so that the rule for
//! what a text field may carry ([`crate::RedactedText`]) and the rule for what is escaped on a
//! terminal are the same character class ([`is_control_or_format`]): text the validator
//! accepts is shown as it is (but for a literal `<U+`, below).
//!
//! The escape is the Unicode standard's name of the code point, in angle brackets: `<U+001B>`
//! (upper-case hex, at least four digits). It is printable ASCII, so no terminal interprets it;
//! it cannot be mistaken for the quoting of Rust's `{:?}`, which messages quoting a value
//! already use (`"\u{1b}"`), so a value escaped by both reads cleanly; and it is unambiguous: a
//! literal `<U+` in the input is written with its `<` escaped (`<U+003C>U+`), so every
//! `<U+…>` in the output stands for exactly one escaped character and every other character is
//! itself.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` is a control, format or line/paragraph separator character: Unicode general
/// category `Cc` (C0 controls, DEL and the C1 controls U+0080–U+009F), `Cf` (format
/// characters: the bidirectional marks, embeddings, overrides and isolates U+061C,
/// U+200E/U+200F, U+202A–U+202E, U+2066–U+2069; zero-width space, non-joiner and joiner
/// U+200B–U+200D; word joiner and invisible operators U+2060–U+2064; the byte order mark
/// U+FEFF; the soft hyphen U+00AD; tag characters U+E0001, U+E0020–U+E007F; and the others),
/// `Zl` (U+2028) or `Zp` (U+2029), and the unassigned U+2065 in the middle of the format block.
///
/// None of these is text a person reads: each one is invisible or changes how what follows is
/// shown. A redacted text field refuses every one of them ([`crate::RedactedText`]), and
/// [`escape_for_terminal`] escapes every one of them except `\n` and `\t`.
pub fn is_control_or_format(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Cf, Unicode 16, in code point order; plus Zl/Zp and the reserved U+2065.
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
        )
}

/// Whether [`escape_for_terminal`] escapes `c` wherever it occurs: every
/// [`is_control_or_format`] character except `\n` and `\t`.
pub fn is_escaped_on_terminal(c: char) -> bool {
    c != '\n' && c != '\t' && is_control_or_format(c)
}

/// `s` as it may be written to a terminal: printable text, `\n` and `\t` unchanged; every
/// other control or format character ([`is_escaped_on_terminal`]) replaced by its visible
/// escape `<U+HEX>`; and the `<` of a literal `<U+` escaped too, so the output is unambiguous
/// (module docs).
///
/// Borrows `s` when nothing needs escaping, which is the common case (no allocation).
///
/// ```
/// use telemetry_schema::display::escape_for_terminal;
///
/// assert_eq!(
///     escape_for_terminal("\u{1b}]8;;https://evil\u{7}click\u{1b}]8;;\u{7}"),
///     "<U+001B>]8;;https://evil<U+0007>click<U+001B>]8;;<U+0007>"
/// );
/// assert_eq!(escape_for_terminal("abc\u{202E}fdp.exe"), "abc<U+202E>fdp.exe");
/// assert!(matches!(escape_for_terminal("plain text\n"), std::borrow::Cow::Borrowed(_)));
/// ```
pub fn escape_for_terminal(s: &str) -> Cow<'_, str> {
    // The common case, decided byte by byte without decoding characters: printable ASCII,
    // newlines and tabs only (a 1 MiB payload printed by `verify-payload` is all of that).
    if s.bytes().all(|b| matches!(b, b' '..=b'~' | b'\n' | b'\t')) && !s.contains("<U+") {
        return Cow::Borrowed(s);
    }
    let Some(first) = s
        .char_indices()
        .find(|&(i, c)| escaped_at(s, i, c))
        .map(|(i, _)| i)
    else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(&s[..first]);
    for (i, c) in s[first..].char_indices() {
        if escaped_at(s, first + i, c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "<U+{:04X}>", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether the character `c` at byte `i` of `s` is escaped: a control or format character, or
/// the `<` of a literal `<U+`.
fn escaped_at(s: &str, i: usize, c: char) -> bool {
    is_escaped_on_terminal(c) || (c == '<' && s[i + 1..].starts_with("U+"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        escape_for_terminal(s).into_owned()
    }

    #[test]
    fn printable_text_newline_and_tab_are_borrowed() {
        for s in [
            "",
            "plain ASCII: 0123 ~!#$%^&*()_+-=[]{}|;':\",./<>?",
            "line one\n\tline two\n",
            "Unicode: ε ± é 日本語 עברית العربية 🦀 ❤\u{FE0F}",
            r#"Rust's quoting: "\u{1b}[31m" and \n, \x1b, \\"#,
            "<U> <U-001B> <u+001b> U+001B <",
            "ends with <",
            "ends with <U",
        ] {
            let out = escape_for_terminal(s);
            assert!(matches!(out, Cow::Borrowed(_)), "{s:?} was copied");
            assert_eq!(out, s);
        }
    }

    #[test]
    fn c0_controls_except_newline_and_tab_del_and_c1_are_escaped() {
        for c in (0u32..0x20).chain([0x7f]).chain(0x80..0xa0) {
            let c = char::from_u32(c).unwrap();
            let out = esc(&format!("a{c}b"));
            if c == '\n' || c == '\t' {
                assert_eq!(out, format!("a{c}b"));
            } else {
                assert_eq!(out, format!("a<U+{:04X}>b", u32::from(c)), "{c:?}");
            }
        }
        assert_eq!(esc("\r"), "<U+000D>");
        assert_eq!(esc("\u{7}"), "<U+0007>");
        assert_eq!(esc("\u{8}"), "<U+0008>");
        assert_eq!(esc("\u{0}"), "<U+0000>");
        assert_eq!(esc("\u{7f}"), "<U+007F>");
        assert_eq!(esc("\u{9b}31m"), "<U+009B>31m"); // C1 CSI
        assert_eq!(esc("\u{85}"), "<U+0085>"); // NEL
    }

    #[test]
    fn escape_sequences_lose_their_escape_character() {
        assert_eq!(esc("\x1b[2J\x1b[H"), "<U+001B>[2J<U+001B>[H"); // CSI: clear screen
        assert_eq!(esc("\x1b]0;title\x07"), "<U+001B>]0;title<U+0007>"); // OSC: window title
        assert_eq!(
            esc("\x1b]8;;http://evil\x07click\x1b]8;;\x07"),
            "<U+001B>]8;;http://evil<U+0007>click<U+001B>]8;;<U+0007>"
        ); // OSC 8: a clickable link
        assert_eq!(esc("\x1b]8;;x\x1b\\y"), "<U+001B>]8;;x<U+001B>\\y"); // ST terminator
        assert_eq!(esc("ok\rFAKE"), "ok<U+000D>FAKE");
    }

    #[test]
    fn bidi_controls_are_escaped() {
        for c in [
            '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}',
            '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ] {
            assert_eq!(esc(&c.to_string()), format!("<U+{:04X}>", u32::from(c)));
        }
        assert_eq!(esc("invoice\u{202E}fdp.exe"), "invoice<U+202E>fdp.exe");
    }

    #[test]
    fn other_format_characters_and_separators_are_escaped() {
        for (c, escaped) in [
            ('\u{00AD}', "<U+00AD>"),
            ('\u{200B}', "<U+200B>"),
            ('\u{200C}', "<U+200C>"),
            ('\u{200D}', "<U+200D>"),
            ('\u{2028}', "<U+2028>"),
            ('\u{2029}', "<U+2029>"),
            ('\u{2060}', "<U+2060>"),
            ('\u{2065}', "<U+2065>"),
            ('\u{FEFF}', "<U+FEFF>"),
            ('\u{FFF9}', "<U+FFF9>"),
            ('\u{E0001}', "<U+E0001>"),
            ('\u{E0041}', "<U+E0041>"),
            ('\u{1D173}', "<U+1D173>"),
        ] {
            assert_eq!(esc(&c.to_string()), escaped);
        }
    }

    #[test]
    fn what_is_escaped_is_exactly_the_control_and_format_class() {
        let mut escaped = 0;
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let s = c.to_string();
            let out = escape_for_terminal(&s);
            if is_escaped_on_terminal(c) {
                escaped += 1;
                assert_eq!(out, format!("<U+{:04X}>", u32::from(c)));
                assert!(out.chars().all(|o| o.is_ascii_graphic()));
            } else {
                assert!(matches!(out, Cow::Borrowed(_)), "{c:?}");
            }
        }
        // 65 Cc − 2 (\n, \t) + 170 Cf (Unicode 16) + 2 (Zl, Zp) + 1 (U+2065).
        assert_eq!(escaped, 63 + 170 + 2 + 1);
        // Printable neighbours stay.
        for c in [
            '\u{00AC}', '\u{00AE}', '\u{2027}', '\u{2030}', '\u{205F}', '\u{FE0F}',
        ] {
            assert!(!is_control_or_format(c), "{c:?}");
        }
    }

    #[test]
    fn a_literal_escape_cannot_pass_for_an_escaped_character() {
        // A file literally named `<U+001B>` is not shown like one whose name holds an ESC.
        assert_eq!(esc("<U+001B>"), "<U+003C>U+001B>");
        assert_ne!(esc("<U+001B>"), esc("\u{1b}"));
        assert_eq!(esc("<<U+"), "<<U+003C>U+");
        assert_eq!(esc("<\u{1b}"), "<<U+001B>");
        // Decoding is unique: every `<U+…>` is one escaped character.
        for s in [
            "<U+003C>U+",
            "<\u{1b}",
            "<U+001B>",
            "\u{1b}",
            "<<U+001B>",
            "<U\u{1b}+",
        ] {
            assert_eq!(unescape(&esc(s)), s, "{s:?}");
        }
    }

    /// The inverse of [`escape_for_terminal`], for the test above.
    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("<U+") {
            out.push_str(&rest[..i]);
            let end = rest[i..].find('>').unwrap() + i;
            let code = u32::from_str_radix(&rest[i + 3..end], 16).unwrap();
            out.push(char::from_u32(code).unwrap());
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn the_output_carries_no_control_or_format_character() {
        // Escaping its own output again only escapes the `<` of its escapes: never raw.
        let once = esc("a\u{1b}b\u{202E}c\u{E0041}");
        assert_eq!(once, "a<U+001B>b<U+202E>c<U+E0041>");
        assert!(!once.chars().any(is_escaped_on_terminal));
        assert_eq!(
            esc(&once),
            "a<U+003C>U+001B>b<U+003C>U+202E>c<U+003C>U+E0041>"
        );
    }
}
