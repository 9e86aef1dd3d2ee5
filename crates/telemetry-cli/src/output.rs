//! Where commands write, and how: stdout for results, stderr for warnings; and the one place
//! where text meant for a person is made safe for a terminal ([`Escaping`]).

use std::cell::Cell;
use std::fmt;
use std::io::{self, BufRead, IsTerminal, Write};

use telemetry_schema::display::escape_for_terminal;

/// The streams a command uses. Tests pass buffers; the binary passes the process's.
pub struct Io<'a> {
    /// Results.
    pub out: &'a mut dyn Write,
    /// Warnings and errors.
    pub err: &'a mut dyn Write,
    /// Answers to prompts.
    pub input: &'a mut dyn BufRead,
    /// Whether to use colour (a terminal, and `NO_COLOR` unset or empty).
    pub color: bool,
}

impl Io<'_> {
    /// `text` in colour `code` (an SGR parameter such as `"32"`) when colour is on, to be
    /// formatted straight into [`Io::out`]: its colour sequences reach the terminal, while
    /// `text` is escaped like everything else a command writes (see [`crate::run_as`]).
    /// Formatted anywhere else (into a `String` first), the colour sequences are escaped too:
    /// shown, never obeyed.
    pub fn paint<'t>(&self, code: &'static str, text: &'t str) -> Painted<'t> {
        Painted {
            code: self.color.then_some(code),
            text,
        }
    }
}

thread_local! {
    /// Set only while [`Painted`] writes one of its own colour sequences: the one thing an
    /// [`Escaping`] writer passes through unescaped. Out of band (no byte of the text can set
    /// it), so no untrusted text can pass for a colour sequence.
    static WRITING_COLOUR: Cell<bool> = const { Cell::new(false) };
}

/// Text in a colour, from [`Io::paint`].
#[derive(Debug, Clone, Copy)]
pub struct Painted<'t> {
    code: Option<&'static str>,
    text: &'t str,
}

impl fmt::Display for Painted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only an SGR parameter list (digits and `;`) is ever written as a colour sequence.
        match self
            .code
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit() || b == b';'))
        {
            None => f.write_str(self.text),
            Some(code) => {
                colour_sequence(f, code)?;
                f.write_str(self.text)?;
                colour_sequence(f, "0")
            }
        }
    }
}

/// Writes `ESC [ code m` with [`WRITING_COLOUR`] set.
fn colour_sequence(f: &mut fmt::Formatter<'_>, code: &'static str) -> fmt::Result {
    WRITING_COLOUR.with(|w| w.set(true));
    let written = write!(f, "\x1b[{code}m");
    WRITING_COLOUR.with(|w| w.set(false));
    written
}

/// A writer for a person: everything written to it reaches `inner` through
/// [`escape_for_terminal`], so that no control or format character of untrusted text (a file
/// name, a value quoted by the validator, an environment value) reaches a terminal; `\n` and
/// `\t` pass, and so do the colour sequences of [`Io::paint`].
///
/// [`crate::run_as`] wraps stderr always, and stdout unless the command writes JSON: there is
/// no other way for a command to reach the streams, so no command can forget to escape.
///
/// It keeps no buffer of its own beyond a few bytes (the start of a UTF-8 sequence split
/// across two writes, or a trailing `<` or `<U` that could begin a literal `<U+`), so the
/// buffering and flushing of `inner` are unchanged; a flush writes those bytes out.
pub(crate) struct Escaping<'a> {
    inner: &'a mut dyn Write,
    /// Bytes held until the next write shows what they are (at most 3).
    held: Vec<u8>,
}

impl<'a> Escaping<'a> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: &'a mut dyn Write) -> Self {
        Self {
            inner,
            held: Vec::new(),
        }
    }

    /// Writes the held bytes as they are now: a trailing `<` or `<U` as itself, an
    /// incomplete UTF-8 sequence as U+FFFD.
    fn release(&mut self) -> io::Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let held = std::mem::take(&mut self.held);
        match std::str::from_utf8(&held) {
            Ok(text) => self.inner.write_all(text.as_bytes()),
            Err(_) => self.inner.write_all("\u{FFFD}".as_bytes()),
        }
    }

    /// Escapes `bytes` (held bytes first) into `inner`, holding back what the next write may
    /// complete.
    fn escape(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        loop {
            match std::str::from_utf8(bytes) {
                Ok(text) => {
                    // A trailing `<` or `<U` may begin a literal `<U+` that the next write
                    // completes: escaped only once it is known.
                    let hold = if text.ends_with("<U") {
                        2
                    } else if text.ends_with('<') {
                        1
                    } else {
                        0
                    };
                    let (now, later) = text.split_at(text.len() - hold);
                    self.inner.write_all(escape_for_terminal(now).as_bytes())?;
                    self.held.extend_from_slice(later.as_bytes());
                    return Ok(());
                }
                Err(e) => {
                    let (valid, rest) = bytes.split_at(e.valid_up_to());
                    // `valid` is valid UTF-8 by the error's own account.
                    let valid = std::str::from_utf8(valid).unwrap_or_default();
                    self.inner
                        .write_all(escape_for_terminal(valid).as_bytes())?;
                    match e.error_len() {
                        // The start of a character that the next write completes.
                        None => {
                            self.held.extend_from_slice(rest);
                            return Ok(());
                        }
                        Some(bad) => {
                            self.inner.write_all("\u{FFFD}".as_bytes())?;
                            bytes = &rest[bad..];
                        }
                    }
                }
            }
        }
    }
}

impl Write for Escaping<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if WRITING_COLOUR.with(Cell::get) {
            self.release()?;
            self.inner.write_all(buf)?;
        } else if self.held.is_empty() {
            self.escape(buf)?;
        } else {
            let mut joined = std::mem::take(&mut self.held);
            joined.extend_from_slice(buf);
            self.escape(&joined)?;
        }
        Ok(buf.len())
    }

    /// Writes out what is held, then flushes `inner`: a flush promises that what was written
    /// is shown, so a held `<` or `<U` is written as itself and an incomplete UTF-8 sequence (a
    /// writer that flushes in the middle of a character) as U+FFFD.
    fn flush(&mut self) -> io::Result<()> {
        self.release()?;
        self.inner.flush()
    }
}

impl Drop for Escaping<'_> {
    /// Writes out what is still held (best effort: a flush reports errors).
    fn drop(&mut self) {
        let _ = self.release();
    }
}

impl Io<'_> {
    /// Asks `question` with a `[y/N]` prompt; true only for an explicit "y" or "yes". On
    /// anything else, prints `declined` (e.g. "Not enabled") on stderr and says that nothing
    /// was changed.
    pub fn confirm(&mut self, question: &str, declined: &str) -> io::Result<bool> {
        write!(self.out, "{question} [y/N] ")?;
        self.out.flush()?;
        let mut answer = String::new();
        self.input.read_line(&mut answer)?;
        if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Ok(true);
        }
        writeln!(self.out)?;
        writeln!(
            self.err,
            "{declined}: no \"yes\" answer (use --yes to skip the question). Nothing was changed."
        )?;
        Ok(false)
    }
}

/// Colour only on a terminal, and never when `NO_COLOR` is set to a non-empty value
/// (<https://no-color.org>).
pub fn use_color(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Runs `f` with the process's streams. Like C's stdio, stdout is line-buffered on a terminal
/// (lines appear as they are written, in order with stderr) and block-buffered otherwise:
/// `show` with many payloads would otherwise make a `write` call per line. [`crate::run_as`]
/// flushes before it returns, so a write error still decides the exit status.
pub fn with_stdio<T>(f: impl FnOnce(&mut Io<'_>) -> T) -> T {
    let stdout = io::stdout();
    let is_terminal = stdout.is_terminal();
    let color = use_color(is_terminal, std::env::var_os("NO_COLOR").as_deref());
    let mut out: Box<dyn Write> = if is_terminal {
        Box::new(stdout.lock())
    } else {
        Box::new(io::BufWriter::with_capacity(64 * 1024, stdout.lock()))
    };
    let mut err = io::stderr().lock();
    let mut input = io::stdin().lock();
    let mut io = Io {
        out: &mut out,
        err: &mut err,
        input: &mut input,
        color,
    };
    f(&mut io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    const HOSTILE: &str = "ok \x1b]8;;https://evil\x07click\x1b]8;;\x07\r\u{9b}2J é \u{202E}gnp\u{2066} <U+001B> 日本 <U\n\t<";

    fn escaped_through(pieces: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = Escaping::new(&mut out);
        for p in pieces {
            w.write_all(p).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        out
    }

    #[test]
    fn escapes_like_escape_for_terminal_however_the_text_is_split() {
        let whole = escape_for_terminal(HOSTILE).into_owned();
        let bytes = HOSTILE.as_bytes();
        assert_eq!(escaped_through(&[bytes]), whole.as_bytes());
        // Split in two at every byte: inside multi-byte characters and inside a literal `<U+`.
        for i in 0..=bytes.len() {
            let (a, b) = bytes.split_at(i);
            assert_eq!(
                String::from_utf8(escaped_through(&[a, b])).unwrap(),
                whole,
                "split at {i}"
            );
        }
        // One byte per write.
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(String::from_utf8(escaped_through(&singles)).unwrap(), whole);
    }

    #[test]
    fn what_is_held_is_written_by_a_flush_and_invalid_bytes_are_replaced() {
        // A trailing `<` is held until the next write shows it is not `<U+`, or a flush.
        let mut out = Vec::new();
        let mut w = Escaping::new(&mut out);
        w.write_all(b"a <").unwrap();
        w.write_all(b"b").unwrap();
        w.write_all(b" <U").unwrap();
        w.flush().unwrap();
        drop(w);
        assert_eq!(out, b"a <b <U");
        assert_eq!(
            escaped_through(&[b"x\xffy\xe6\x97"]),
            "x\u{FFFD}y\u{FFFD}".as_bytes()
        );
        assert_eq!(
            escaped_through(&[b"\xe6", b"\x97", b"\xa5"]),
            "日".as_bytes()
        );
    }

    #[test]
    fn flushes_and_errors_reach_the_inner_writer() {
        struct Failing(usize);
        impl Write for Failing {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    format!("{}", buf.len()),
                ))
            }
            fn flush(&mut self) -> io::Result<()> {
                self.0 += 1;
                Ok(())
            }
        }
        let mut inner = Failing(0);
        let mut w = Escaping::new(&mut inner);
        assert_eq!(
            w.write_all(b"text").unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        w.flush().unwrap();
        drop(w);
        assert_eq!(inner.0, 1);
    }

    #[test]
    fn only_paint_writes_colour_sequences_raw() {
        let mut out = Vec::new();
        let mut w = Escaping::new(&mut out);
        let colour = Io {
            out: &mut Vec::new(),
            err: &mut Vec::new(),
            input: &mut &b""[..],
            color: true,
        }
        .paint("32", "on\x1b[8m");
        // Formatted into a String first, the colour is just text, escaped like any other.
        let text = colour.to_string();
        write!(w, "{colour} | {text}").unwrap();
        drop(w);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\x1b[32mon<U+001B>[8m\x1b[0m | <U+001B>[32mon<U+001B>[8m<U+001B>[0m"
        );
        let plain = Io {
            out: &mut Vec::new(),
            err: &mut Vec::new(),
            input: &mut &b""[..],
            color: false,
        }
        .paint("32", "on");
        assert_eq!(plain.to_string(), "on");
    }

    #[test]
    fn no_color_wins_unless_empty() {
        assert!(use_color(true, None));
        assert!(use_color(true, Some(OsStr::new(""))));
        assert!(!use_color(true, Some(OsStr::new("1"))));
        assert!(!use_color(false, None));
    }
}
