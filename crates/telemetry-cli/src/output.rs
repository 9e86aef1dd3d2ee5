//! Where commands write, and how: stdout for results, stderr for warnings.

use std::io::{self, BufRead, IsTerminal, Write};

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
    /// `text` in `code` colour when colour is on.
    pub fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
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

    #[test]
    fn no_color_wins_unless_empty() {
        assert!(use_color(true, None));
        assert!(use_color(true, Some(OsStr::new(""))));
        assert!(!use_color(true, Some(OsStr::new("1"))));
        assert!(!use_color(false, None));
    }
}
