//! Terminal escape injection (#16, class 3): untrusted text — file names in the pending
//! directory, a payload's schema version, unknown keys and values quoted by the decoder and the
//! schema validator, environment values, command arguments — never reaches a person's terminal
//! with a control or format character other than `\n` and `\t`. What it carries is shown
//! escaped (`<U+001B>`); `--json` output stays exact JSON.
//!
//! In-process with hostile strings made by proptest, and through a real pseudo-terminal with
//! the `telemetry` binary.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use proptest::prelude::*;
use serde_json::Value;
use telemetry_cli::{Form, Io, exit};
use telemetry_core::Telemetry;
use telemetry_schema::display::is_escaped_on_terminal;

mod common;
use common::{Run, acme, env_for, parse, run_in};

const FULL: &str = "../telemetry-schema/fixtures/v1/valid/full.json";

fn full() -> Value {
    serde_json::from_slice(&fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(FULL)).unwrap())
        .unwrap()
}

/// The first control or format character (other than `\n`, `\t`) in `text`, if any.
fn first_raw(text: &str) -> Option<(usize, char)> {
    text.char_indices()
        .find(|&(_, c)| is_escaped_on_terminal(c))
}

fn assert_clean(what: &str, stream: &str, text: &str) -> Result<(), TestCaseError> {
    if let Some((at, c)) = first_raw(text) {
        return Err(TestCaseError::fail(format!(
            "{what}: {stream} carries {c:?} raw at byte {at}: {text:?}"
        )));
    }
    Ok(())
}

/// Pieces of hostile text: escape sequences, lone controls, C1, bidi and other format
/// characters, and printable text (including a literal `<U+001B>` and Rust's `\u{1b}`) around
/// them.
const PIECES: &[&str] = &[
    "\x1b",
    "\x1b[31m",
    "\x1b[2J\x1b[H",
    "\x1b]0;title\x07",
    "\x1b]8;;https:evil.example\x07click\x1b]8;;\x07",
    "\x1b]8;;x\x1b\\",
    "\x07",
    "\r",
    "\x08",
    "\x7f",
    "\u{9b}31m",
    "\u{9d}8;;x\u{9c}",
    "\u{85}",
    "\u{202E}",
    "\u{202A}",
    "\u{202B}",
    "\u{202C}",
    "\u{202D}",
    "\u{2066}",
    "\u{2067}",
    "\u{2068}",
    "\u{2069}",
    "\u{200E}",
    "\u{200F}",
    "\u{061C}",
    "\u{200B}",
    "\u{200D}",
    "\u{FEFF}",
    "\u{2028}",
    "\u{E0041}",
    "a",
    "Z9",
    " ",
    "é",
    "日本",
    "\\u{1b}",
    "<U+001B>",
    "<",
    "U+",
    "\\",
    "\n",
    "\t",
];

fn hostile() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 1..8).prop_map(|p| p.concat())
}

/// `s` as a file name: no `/` or NUL, at most 180 bytes, never empty.
fn file_stem(s: &str) -> String {
    let mut stem = String::from("p");
    for c in s.chars().filter(|&c| c != '/' && c != '\0') {
        if stem.len() + c.len_utf8() > 180 {
            break;
        }
        stem.push(c);
    }
    stem
}

fn write_private(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
}

/// The pending directory of `acme` under `home`, created 0700 like the recorder does.
fn pending_dir(home: &Path) -> PathBuf {
    let dir = home.join(".config/acme/uploads-pending");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .unwrap();
    dir
}

/// Plants four payload files whose names carry `s` and whose contents carry it where the
/// decoder and the validator quote it: as the schema version, as an unknown key, as the app
/// name and as a redacted text. Returns their paths.
fn plant(home: &Path, s: &str) -> Vec<PathBuf> {
    let dir = pending_dir(home);
    let stem = file_stem(s);
    let mut version = full();
    version["schema"]["version"] = Value::String(s.into());
    let mut key = full();
    key[s] = Value::from(1);
    let mut app = full();
    app["app"]["name"] = Value::String(s.into());
    let mut text = full();
    text["events"][1]["fields"]["error"]["redacted"] = Value::String(format!("oops {s}"));
    let mut paths = Vec::new();
    for (suffix, doc) in [("", version), ("-k", key), ("-a", app), ("-t", text)] {
        let path = dir.join(format!("{stem}{suffix}.json"));
        write_private(
            &path,
            serde_json::to_string_pretty(&doc).unwrap().as_bytes(),
        );
        paths.push(path);
    }
    paths
}

fn check(what: &str, r: &Run) -> Result<(), TestCaseError> {
    assert_clean(what, "stdout", &r.out)?;
    assert_clean(what, "stderr", &r.err)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_control_or_format_character_of_untrusted_text_reaches_human_output(s in hostile()) {
        let home = tempfile::tempdir().unwrap();
        let paths = plant(home.path(), &s);
        let pending = paths[0].parent().unwrap().to_str().unwrap().to_owned();
        let run = |extra: &[(&str, &str)], argv: &[&str]| run_in(home.path(), extra, argv, "");

        let r = run(&[], &["show"]);
        prop_assert_eq!(r.code, exit::OK);
        check("show", &r)?;
        prop_assert!(r.out.contains("UNREADABLE"), "{}", r.out);
        for path in &paths {
            let r = run(&[], &["verify-payload", path.to_str().unwrap()]);
            check("verify-payload", &r)?;
        }
        let r = run(&[], &["verify-payload", &format!("x{s}")]);
        check("verify-payload of a missing target", &r)?;
        let r = run(&[], &["aggregate", &pending]);
        check("aggregate", &r)?;
        let mut argv = vec!["aggregate"];
        argv.extend(paths.iter().map(|p| p.to_str().unwrap()));
        let r = run(&[], &argv);
        prop_assert!(r.err.contains("skipped"), "{}", r.err);
        check("aggregate of files", &r)?;

        // Environment values and command arguments.
        let r = run(&[("ACME_TELEMETRY", &s), ("DO_NOT_TRACK", &s)], &["status"]);
        check("status", &r)?;
        let r = run(&[("ACME_TELEMETRY", &s)], &["show"]);
        check("show under a hostile override", &r)?;
        let r = run(&[], &["config", "get", &format!("x{s}")]);
        prop_assert_eq!(r.code, exit::USAGE);
        check("config get", &r)?;
        let r = run(&[], &["config", "set", "telemetry.enabled", &format!("x{s}")]);
        prop_assert_eq!(r.code, exit::USAGE);
        check("config set", &r)?;

        // --json stays exact JSON, and says what is there, unescaped (serde_json escapes C0
        // controls; DEL, C1 and format characters are valid JSON as they are).
        let r = run(&[], &["show", "--json"]);
        let v: Value = serde_json::from_str(&r.out).unwrap();
        let stem = file_stem(&s);
        prop_assert!(
            v["payloads"].as_array().unwrap().iter().any(|p| p["run_id"] == stem.as_str()),
            "{}", r.out
        );
    }
}

#[test]
fn json_output_is_byte_exact_json() {
    // The same bytes as serde_json writes, ESC and U+202E included (escaped by JSON itself, or,
    // for U+202E, as the character: JSON is for programs, which are not fooled by it).
    let home = tempfile::tempdir().unwrap();
    let s = "\x1b]8;;https:evil.example\x07click\u{202E}\r";
    plant(home.path(), s);
    let r = run_in(home.path(), &[], &["show", "--json"], "");
    assert_eq!(r.code, exit::OK);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(
        r.out,
        format!("{}\n", serde_json::to_string_pretty(&v).unwrap())
    );
    assert!(
        r.out.contains(r"\u001b]8;;https:evil.example\u0007click"),
        "{}",
        r.out
    );
    assert!(r.out.contains('\u{202E}'), "{}", r.out);
    let stems: Vec<_> = v["payloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["run_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(stems.contains(&file_stem(s)), "{stems:?}");
}

#[test]
fn human_output_shows_what_it_escaped() {
    let home = tempfile::tempdir().unwrap();
    plant(
        home.path(),
        "\x1b]8;;https:evil.example\x07click\x1b]8;;\x07\u{202E}",
    );
    let r = run_in(home.path(), &[], &["show"], "");
    assert!(
        r.out.contains(
            "p<U+001B>]8;;https:evil.example<U+0007>click<U+001B>]8;;<U+0007><U+202E>  (pending)"
        ),
        "{}",
        r.out
    );
    // A literal `<U+001B>` in a name is not shown like an escaped ESC.
    let home = tempfile::tempdir().unwrap();
    plant(home.path(), "<U+001B>");
    let r = run_in(home.path(), &[], &["show"], "");
    assert!(r.out.contains("p<U+003C>U+001B>  (pending)"), "{}", r.out);
    // A value quoted by a message with Rust's `{:?}` (already `\u{1b}`) reads as it did.
    let r = run_in(home.path(), &[("ACME_TELEMETRY", "x\x1b")], &["status"], "");
    assert!(
        r.err.contains(r#"unrecognised value "x\u{1b}""#),
        "{}",
        r.err
    );
}

#[test]
fn colour_sequences_of_the_cli_pass_and_untrusted_ones_do_not() {
    let home = tempfile::tempdir().unwrap();
    let builder = Telemetry::builder("acme").env(env_for(
        home.path(),
        &[("ACME_TELEMETRY", "\x1b[32menabled\x1b[0m")],
    ));
    let args = parse(&["status"]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = telemetry_cli::run_as(
        &builder,
        &args,
        Form::Standalone,
        &mut Io {
            out: &mut out,
            err: &mut err,
            input: &mut &b""[..],
            color: true,
        },
    );
    assert_eq!(code, exit::OK);
    let out = String::from_utf8(out).unwrap();
    let err = String::from_utf8(err).unwrap();
    // The state word in colour, exactly as before; nothing else raw.
    assert!(
        out.contains("acme telemetry: \x1b[33mdisabled\x1b[0m\n"),
        "{out:?}"
    );
    let rest = out.replace("\x1b[33m", "").replace("\x1b[0m", "");
    assert_eq!(first_raw(&rest), None, "{out:?}");
    assert!(out.contains("<U+001B>[32menabled<U+001B>[0m"), "{out:?}");
    assert_eq!(first_raw(&err), None, "{err:?}");
}

/// What a terminal receives when the `telemetry` binary runs on it: the bytes read from the
/// master side of a pseudo-terminal whose slave is the child's stdin, stdout and stderr, with
/// output post-processing off (so the terminal's own `\n` → `\r\n` adds no CR).
fn on_a_terminal(home: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, Vec<u8>) {
    let mut argv = vec!["--app", "acme"];
    argv.extend_from_slice(args);
    on_a_terminal_as_given(home, env, &argv)
}

/// [`on_a_terminal`] with exactly `args` (no `--app`).
fn on_a_terminal_as_given(home: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, Vec<u8>) {
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    use rustix::termios::{OptionalActions, OutputModes, tcgetattr, tcsetattr};

    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    let mut modes = tcgetattr(&slave).unwrap();
    modes.output_modes.remove(OutputModes::OPOST);
    tcsetattr(&slave, OptionalActions::Now, &modes).unwrap();

    let mut command = Command::new(env!("CARGO_BIN_EXE_telemetry"));
    command
        .env_clear()
        .env("HOME", home)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("TERM", "xterm")
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    let mut child = command.spawn().unwrap();
    // Our copies of the slave are closed with `command`: once the child exits, reading the
    // master ends (EIO on Linux).
    drop(command);
    let reader = std::thread::spawn(move || {
        let mut master = fs::File::from(master);
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
        received
    });
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), reader.join().unwrap())
}

/// Fails if `received` holds a byte sequence a terminal obeys rather than shows: ESC, BEL, CR,
/// BS, DEL or any other C0 control but `\n` and `\t`; a C1 control, raw or UTF-8 encoded; a
/// bidirectional or other format character; or bytes that are not UTF-8.
fn assert_nothing_raw(what: &str, received: &[u8]) {
    let text = std::str::from_utf8(received)
        .unwrap_or_else(|e| panic!("{what}: not UTF-8 ({e}): {received:?}"));
    if let Some((at, c)) = first_raw(text) {
        panic!("{what}: the terminal received {c:?} raw at byte {at}:\n{text}");
    }
}

#[test]
fn a_real_terminal_receives_no_escape_sequence_from_a_planted_file_name() {
    let home = tempfile::tempdir().unwrap();
    let dir = pending_dir(home.path());
    // An OSC 8 hyperlink ("click", pointing elsewhere; a file name cannot hold `/`, so the
    // target's slashes are U+2215), and a name that clears the screen, rewrites the line and
    // reverses the rest of it.
    let names = [
        "\x1b]8;;http:\u{2215}\u{2215}evil\x07click\x1b]8;;\x07.json",
        "\u{202E}nosj.\r\x1b[2J\u{9b}H\u{2066}\x08\x7f.json",
    ];
    let mut paths = Vec::new();
    for name in names {
        let path = dir.join(name);
        write_private(&path, b"{\"schema\": 1}");
        paths.push(path);
    }

    let (code, received) = on_a_terminal(home.path(), &[], &["show"]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&received));
    assert_nothing_raw("show", &received);
    let shown = String::from_utf8(received).unwrap();
    assert!(
        shown.contains("<U+001B>]8;;http:∕∕evil<U+0007>click<U+001B>]8;;<U+0007>  (pending)"),
        "{shown}"
    );
    assert!(
        shown.contains(
            "<U+202E>nosj.<U+000D><U+001B>[2J<U+009B>H<U+2066><U+0008><U+007F>  (pending)"
        ),
        "{shown}"
    );

    for path in &paths {
        let (code, received) = on_a_terminal(
            home.path(),
            &[],
            &["verify-payload", path.to_str().unwrap()],
        );
        assert_eq!(code, 1);
        assert_nothing_raw("verify-payload", &received);
    }
    let mut argv = vec!["aggregate"];
    argv.extend(paths.iter().map(|p| p.to_str().unwrap()));
    let (code, received) = on_a_terminal(home.path(), &[], &argv);
    assert_eq!(code, 1);
    assert_nothing_raw("aggregate", &received);
    assert!(String::from_utf8(received).unwrap().contains("skipped"));

    // An environment value, shown by `status` and warned about on stderr. With colour on (a
    // terminal, NO_COLOR unset), the only escape sequences are the CLI's own SGR colours.
    let env = [("ACME_TELEMETRY", "\x1b]0;pwned\x07\u{202E}")];
    let (code, received) = on_a_terminal(home.path(), &env, &["status"]);
    assert_eq!(code, 0);
    let text = String::from_utf8(received).unwrap();
    assert!(text.contains("\x1b[33mdisabled\x1b[0m"), "{text}");
    assert!(text.contains("<U+001B>]0;pwned<U+0007><U+202E>"), "{text}");
    assert_nothing_raw(
        "status",
        text.replace("\x1b[33m", "")
            .replace("\x1b[0m", "")
            .as_bytes(),
    );
    let (_, received) = on_a_terminal(home.path(), &[("NO_COLOR", "1"), env[0]], &["status"]);
    assert_nothing_raw("status without colour", &received);
}

#[test]
fn the_warnings_the_core_prints_in_a_host_are_escaped() {
    // A HOME whose path rewrites the window title and reverses the line, and a malformed
    // config under it: the core warns about the config file, naming its path.
    let base = tempfile::tempdir().unwrap();
    let home = base.path().join("h\x1b]0;pwned\x07\u{202E}\r\u{9b}");
    fs::create_dir_all(home.join(".config/acme")).unwrap();
    fs::write(home.join(".config/acme/config.toml"), "telemetry = [").unwrap();
    let output = Command::new(acme())
        .env_clear()
        .env("HOME", &home)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("TERM", "xterm")
        .arg("work")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr
            .contains("h<U+001B>]0;pwned<U+0007><U+202E><U+000D><U+009B>/.config/acme/config.toml"),
        "{stderr}"
    );
    assert_eq!(first_raw(&stderr), None, "{stderr:?}");
}

#[test]
fn a_usage_error_quoting_an_environment_value_is_escaped_on_a_terminal() {
    // clap quotes the refused value of `TELEMETRY_APP` (its styling layer strips some ANSI
    // sequences, not a CR, a C1 control or a bidi override).
    let home = tempfile::tempdir().unwrap();
    let env = [("TELEMETRY_APP", "x\x1b]0;pwned\x07\r\u{9b}2J\u{202E}")];
    let (code, received) = on_a_terminal_as_given(home.path(), &env, &["status"]);
    assert_eq!(code, 2);
    assert_nothing_raw("a usage error", &received);
    let text = String::from_utf8(received).unwrap();
    assert!(text.contains("invalid value"), "{text}");
    assert!(text.contains("<U+000D><U+009B>2J<U+202E>"), "{text}");
    // Help is unchanged: the toolkit's own text.
    let (code, received) = on_a_terminal_as_given(home.path(), &[], &["--help"]);
    assert_eq!(code, 0);
    let help = String::from_utf8(received).unwrap();
    assert!(
        help.contains("Inspect and control the telemetry of an app"),
        "{help}"
    );
    assert!(
        help.contains("\x1b["),
        "help keeps its styling on a terminal: {help}"
    );
}
