//! The commands, shared by the standalone binary and every host that mounts them.

use std::io;

use clap::{ArgMatches, Args, FromArgMatches, Subcommand};
use telemetry_core::config::{self, KEYS, SetError};
use telemetry_core::{Builder, EnableError, StatusReport, Telemetry};

use crate::exit;
use crate::output::{Escaping, Io, with_stdio};
use crate::payloads;

/// `telemetry <command>`: mount this in a host's clap parser.
#[derive(Args, Debug, Clone)]
pub struct TelemetryArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The telemetry commands.
///
/// Each one's arguments are built only when it is the one invoked ([`Deferred`]): a host that
/// mounts these, and every run of `telemetry`, pays for one command's arguments, not all.
#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Show whether telemetry is on, why, and what is stored (never touches the network).
    Status(Deferred<JsonFlag>),
    /// Give consent: telemetry on from the next run (refused under DO_NOT_TRACK and other overrides).
    Enable(Deferred<YesFlag>),
    /// Take consent back and delete the consent token, install secret and pending payloads.
    Disable,
    /// Read or change `config.toml`.
    #[command(subcommand)]
    Config(Deferred<ConfigCommand>),
    /// List every pending and preview payload: run id, day, size, schema version, events,
    /// and whether it may be sent now (and why not).
    Show(Deferred<JsonFlag>),
    /// Show one payload exactly as it would be sent: its bytes and SHA-256, whether it
    /// validates, its redaction, each field's privacy in plain words, and whether it may be
    /// sent now. Never touches the network.
    #[command(name = "verify-payload")]
    VerifyPayload(Deferred<VerifyPayloadArgs>),
    /// Every event the app can record: each field, its values and its privacy mechanism and ε.
    Catalog(Deferred<CatalogArgs>),
    /// Estimate true proportions and means from payload files or directories (e.g. collected
    /// from many installs). Invalid files are reported and skipped.
    Aggregate(Deferred<AggregateArgs>),
    /// Remove every file the toolkit created for the app (consent, secret, payloads, previews,
    /// ledger, config), and say what was removed.
    Purge(Deferred<YesFlag>),
    /// Send pending payloads to the endpoint (decided again first; nothing is sent under
    /// DO_NOT_TRACK or any other override, or without consent). Upload builds only.
    #[cfg(feature = "upload")]
    Upload(Deferred<UploadArgs>),
    /// Print the payload envelope's JSON Schema (self-contained, draft 2020-12).
    Schema(Deferred<SchemaArgs>),
}

impl Command {
    /// Whether this command's stdout is JSON (or, for `schema`, a JSON Schema): written
    /// byte-exact, not escaped for a terminal ([`run_as`]). No catch-all arm: a new command
    /// has to answer.
    pub fn writes_json(&self) -> bool {
        match self {
            Command::Status(a) | Command::Show(a) => a.json,
            Command::VerifyPayload(a) => a.json,
            Command::Catalog(a) => a.json,
            Command::Aggregate(a) => a.json,
            #[cfg(feature = "upload")]
            Command::Upload(a) => a.json,
            Command::Config(c) => match &c.0 {
                ConfigCommand::List { json } => *json,
                ConfigCommand::Get { .. } | ConfigCommand::Set { .. } => false,
            },
            Command::Schema(_) => true,
            Command::Enable(_) | Command::Disable | Command::Purge(_) => false,
        }
    }
}

/// `--json` of `status` and `show`.
#[derive(Args, Debug, Clone)]
pub struct JsonFlag {
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--yes` of `enable` and `purge`.
#[derive(Args, Debug, Clone)]
pub struct YesFlag {
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

/// The arguments of `verify-payload`.
#[derive(Args, Debug, Clone)]
pub struct VerifyPayloadArgs {
    /// A run id (see `show`) or the path of a payload file.
    #[arg(value_name = "RUN_ID|PATH")]
    pub target: String,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The arguments of `catalog`.
#[derive(Args, Debug, Clone)]
pub struct CatalogArgs {
    /// The catalogue as JSON (validates against the catalogue schema).
    #[arg(long)]
    pub json: bool,
}

/// The arguments of `aggregate`.
#[derive(Args, Debug, Clone)]
pub struct AggregateArgs {
    /// Payload files, or directories searched for payload files (`<run id>.json`).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<std::path::PathBuf>,
    /// A JSON list of rows instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The arguments of `upload`.
#[cfg(feature = "upload")]
#[derive(Args, Debug, Clone)]
pub struct UploadArgs {
    /// The endpoint (https://, or http:// to a loopback address); default:
    /// `telemetry.endpoint` from the config.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The arguments of `schema`.
#[derive(Args, Debug, Clone)]
pub struct SchemaArgs {
    /// A schema version this build knows, e.g. 1.0.0 (default: the newest).
    #[arg(long)]
    pub version: Option<String>,
}

/// A command's arguments (or subcommands), added to its `clap::Command` only when clap builds
/// that command, i.e. when it is the one being parsed or its help is shown
/// ([`clap::Command::defer`]). Parsing, help and errors are unchanged.
#[derive(Debug, Clone)]
pub struct Deferred<T>(pub T);

impl<T> std::ops::Deref for Deferred<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: FromArgMatches> FromArgMatches for Deferred<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Self)
    }
    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Self)
    }
    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

impl<T: Args> Args for Deferred<T> {
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(|cmd| keeping_about(cmd, T::augment_args))
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(|cmd| keeping_about(cmd, T::augment_args_for_update))
    }
}

impl<T: Subcommand> Subcommand for Deferred<T> {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        cmd.defer(|cmd| keeping_about(cmd, T::augment_subcommands))
    }
    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(|cmd| keeping_about(cmd, T::augment_subcommands_for_update))
    }
    fn has_subcommand(name: &str) -> bool {
        T::has_subcommand(name)
    }
}

/// Runs a derived `augment` on `cmd` but keeps `cmd`'s description: the derive sets it from the
/// arguments type's doc comment, which, run deferred, would replace the command's own.
fn keeping_about(cmd: clap::Command, augment: fn(clap::Command) -> clap::Command) -> clap::Command {
    use clap::builder::Resettable;
    let kept = |text: Option<&clap::builder::StyledStr>| {
        text.cloned().map_or(Resettable::Reset, Resettable::Value)
    };
    let (about, long_about) = (kept(cmd.get_about()), kept(cmd.get_long_about()));
    augment(cmd).about(about).long_about(long_about)
}

/// `telemetry config ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum ConfigCommand {
    /// Print the bare effective value of KEY (exit 1 when unset).
    Get {
        /// e.g. telemetry.enabled
        key: String,
    },
    /// Validate VALUE and write KEY = VALUE (the file is untouched if VALUE is invalid).
    Set {
        /// e.g. telemetry.enabled
        key: String,
        /// e.g. false
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Every key with its effective value and where it comes from.
    List {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// How the commands are invoked: it changes only what `catalog` can answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `<host> telemetry <command>`: the builder carries the host's event declarations.
    Mounted,
    /// `telemetry --app NAME <command>`: the binary knows no app's events.
    Standalone,
}

/// Runs `args` for the app configured by `builder` (mounted in a host), with the process's
/// streams.
pub fn run_with_stdio(builder: &Builder, args: &TelemetryArgs) -> u8 {
    with_stdio(|io| run_as(builder, args, Form::Mounted, io))
}

/// Runs `args` for the app configured by `builder` (mounted in a host). Returns the exit
/// status (see [`crate::exit`]). A closed output pipe is not an error.
pub fn run(builder: &Builder, args: &TelemetryArgs, io: &mut Io<'_>) -> u8 {
    run_as(builder, args, Form::Mounted, io)
}

/// Runs `args` in the given [`Form`].
///
/// Every command writes through here, and here is the one place where what a person reads is
/// made safe for a terminal: stderr (warnings, errors; always for a person) and, unless the
/// command writes JSON ([`Command::writes_json`]), stdout go through an escaping writer, which
/// escapes every control and format character of untrusted text (file names, values quoted by
/// the validator, environment values) with `telemetry_schema::display::escape_for_terminal`.
/// JSON stays byte-exact (serde_json already escapes control characters in strings). Escaping
/// the writers rather than each value at its `writeln!` cannot be forgotten by a new command:
/// it never sees the raw streams, and `writes_json` has no catch-all arm, so a new command
/// must say whether its stdout is JSON before it compiles.
pub fn run_as(builder: &Builder, args: &TelemetryArgs, form: Form, io: &mut Io<'_>) -> u8 {
    let json = args.command.writes_json();
    let mut err = Escaping::new(&mut *io.err);
    let mut human_out;
    let out: &mut dyn io::Write = if json {
        &mut *io.out
    } else {
        human_out = Escaping::new(&mut *io.out);
        &mut human_out
    };
    let mut io = Io {
        out,
        err: &mut err,
        input: &mut *io.input,
        color: io.color,
    };
    // `run_escaped` flushes stdout (a failure decides the exit status); stderr is flushed here
    // so that nothing it held back is lost.
    let code = run_escaped(builder, args, form, &mut io);
    let _ = io.err.flush();
    code
}

/// [`run_as`] on the escaping streams.
fn run_escaped(builder: &Builder, args: &TelemetryArgs, form: Form, io: &mut Io<'_>) -> u8 {
    let telemetry = builder
        .clone()
        .upload_support(cfg!(feature = "upload"))
        .build_inspector();
    let result = match &args.command {
        Command::Status(a) => status(&telemetry, a.json, io),
        Command::Enable(a) => enable(&telemetry, a.yes, io),
        Command::Disable => disable(&telemetry, io),
        Command::Config(cmd) => config_command(&telemetry, cmd, io),
        Command::Show(a) => payloads::show(&telemetry, a.json, io),
        Command::VerifyPayload(a) => payloads::verify(&telemetry, &a.target, a.json, io),
        Command::Catalog(a) => payloads::catalog(&telemetry, form == Form::Standalone, a.json, io),
        Command::Aggregate(a) => payloads::aggregate(&telemetry, &a.paths, a.json, io),
        Command::Purge(a) => payloads::purge(&telemetry, a.yes, io),
        Command::Schema(a) => schema(a.version.as_deref(), io),
        #[cfg(feature = "upload")]
        Command::Upload(a) => crate::upload::upload(builder, &a.endpoint, a.json, io),
    };
    let result = result.and_then(|code| io.out.flush().map(|()| code));
    match result {
        Ok(code) => code,
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => exit::OK,
        Err(err) => {
            let _ = writeln!(io.err, "error: {err}");
            exit::ERROR
        }
    }
}

type Outcome = io::Result<u8>;

fn warn_all(telemetry: &Telemetry, io: &mut Io<'_>) -> io::Result<()> {
    for w in telemetry.warnings() {
        writeln!(io.err, "warning: {w}")?;
    }
    Ok(())
}

fn status(telemetry: &Telemetry, json: bool, io: &mut Io<'_>) -> Outcome {
    warn_all(telemetry, io)?;
    let report = telemetry.status();
    if json {
        let text = serde_json::to_string_pretty(&report).map_err(io::Error::other)?;
        writeln!(io.out, "{text}")?;
    } else {
        write_status(&report, io)?;
    }
    Ok(exit::OK)
}

fn write_status(r: &StatusReport, io: &mut Io<'_>) -> io::Result<()> {
    let out = &mut *io.out;
    let verified = r
        .posture
        .as_deref()
        .map(|doc| format!(" Verified: see {doc}."))
        .unwrap_or_default();
    if !r.enabled {
        writeln!(out, "{}{verified}", crate::NO_TELEMETRY_LINE)?;
    } else {
        writeln!(
            out,
            "Telemetry is on: anonymous, locally randomised payloads are written to {}. No network calls outside endpoints you pass via flags.{verified}",
            path_or_none(r.pending_dir.as_deref())
        )?;
    }
    writeln!(out)?;
    let state = if r.enabled {
        io.paint("32", "enabled")
    } else {
        io.paint("33", "disabled")
    };
    let preview = if r.preview {
        " (preview mode: payloads rendered locally, never sent)"
    } else {
        ""
    };
    let out = &mut *io.out;
    writeln!(out, "{} telemetry: {state}{preview}", r.app)?;
    writeln!(out, "  decided by:       {}", r.decided_by)?;
    writeln!(
        out,
        "  DO_NOT_TRACK:     {} (value: {}; source: environment variable DO_NOT_TRACK)",
        active(r.do_not_track_active),
        r.do_not_track_value
    )?;
    writeln!(
        out,
        "  {:<17} {} (value: {}; source: environment variable {})",
        format!("{}:", r.env_override_var),
        active(r.env_override_active),
        r.env_override_value
            .as_deref()
            .unwrap_or("unset or not disabling"),
        r.env_override_var
    )?;
    let token_detail = r
        .consent_token_detail
        .as_deref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default();
    writeln!(
        out,
        "  consent token:    {}{token_detail} (source: {})",
        r.consent_token,
        path_or_none(r.consent_token_path.as_deref())
    )?;
    writeln!(
        out,
        "  pending payloads: {} (source: {})",
        r.pending_payloads,
        path_or_none(r.pending_dir.as_deref())
    )?;
    writeln!(
        out,
        "  policy:           {}",
        match r.policy {
            telemetry_core::ReleasePolicy::OptIn => "opt-in (off until `telemetry enable`)",
            telemetry_core::ReleasePolicy::OptOut =>
                "opt-out beta (on after the first-run notice unless disabled)",
        }
    )?;
    let b = &r.budget;
    let spent = match b.spent_today {
        None => "nothing spent today".to_owned(),
        Some(spent) => format!("ε {} spent today", epsilon(spent)),
    };
    writeln!(
        out,
        "  privacy budget:   ε {} a day, {spent} (source: {})",
        epsilon(b.daily_cap),
        path_or_none(b.ledger.as_deref())
    )?;
    write_allowance(out, &b.events, "    ")?;
    writeln!(out)?;
    writeln!(
        out,
        "Every input, in precedence order (the first that disables decides):"
    )?;
    for input in &r.inputs {
        let effect = match input.effect {
            telemetry_core::Effect::Disables => "disables",
            telemetry_core::Effect::Enables => "enables",
            telemetry_core::Effect::None => "no effect",
        };
        writeln!(
            out,
            "  {} = {}  [{effect}: {}]  from {}",
            input.name, input.value, input.reason, input.source
        )?;
    }
    Ok(())
}

/// What the daily budget allows each event, one line each.
pub(crate) fn write_allowance(
    out: &mut dyn io::Write,
    events: &[telemetry_core::budget::EventAllowance],
    indent: &str,
) -> io::Result<()> {
    for e in events {
        match e.new_reports_a_day {
            Some(n) => writeln!(
                out,
                "{indent}{}: up to {n} reports of new values a day (ε {} each); repeats are free",
                e.event,
                epsilon(e.epsilon_per_new_report)
            )?,
            None => writeln!(out, "{indent}{}: not randomised, costs no ε", e.event)?,
        }
    }
    Ok(())
}

/// An ε for people: at most three decimals, no trailing zeros (`3.599`, `0.5`, `64`).
pub(crate) fn epsilon(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

fn active(on: bool) -> &'static str {
    if on { "active" } else { "not active" }
}

fn path_or_none(path: Option<&std::path::Path>) -> String {
    path.map_or_else(|| "no directory".to_owned(), |p| p.display().to_string())
}

fn enable(telemetry: &Telemetry, yes: bool, io: &mut Io<'_>) -> Outcome {
    warn_all(telemetry, io)?;
    if let Some(input) = telemetry.decision().hard_override() {
        writeln!(
            io.err,
            "error: {}",
            EnableError::Refused(Box::new(input.clone()))
        )?;
        writeln!(
            io.err,
            "Nothing was changed. Unset {} to be able to enable telemetry.",
            input.name
        )?;
        return Ok(exit::REFUSED);
    }
    // Refused before asking: a yes could not be kept on this platform.
    if let Some(why) = telemetry_core::platform::unsupported_reason() {
        writeln!(
            io.err,
            "error: telemetry cannot be enabled on {}: {why}; nothing was changed",
            std::env::consts::OS
        )?;
        return Ok(exit::REFUSED);
    }
    if !yes {
        writeln!(io.out, "{}", what_is_collected(telemetry.app_name()))?;
        let question = format!("Enable anonymous telemetry for {}?", telemetry.app_name());
        if !io.confirm(&question, "Not enabled")? {
            return Ok(exit::ERROR);
        }
    }
    match telemetry.enable() {
        Ok(outcome) => {
            writeln!(io.out, "Telemetry enabled for {}.", telemetry.app_name())?;
            writeln!(io.out, "Consent token:  {}", outcome.token_path.display())?;
            writeln!(
                io.out,
                "Install secret: {} (never leaves this machine)",
                outcome.secret_path.display()
            )?;
            if let Some(path) = outcome.config_file_updated {
                writeln!(
                    io.out,
                    "Changed telemetry.enabled from false to true in {}.",
                    path.display()
                )?;
            }
            if let Some(why) = outcome.still_disabled_by {
                writeln!(io.err, "warning: telemetry stays off while {why}")?;
            }
            writeln!(
                io.out,
                "Turn it off again at any time: {} telemetry disable",
                telemetry.app_name()
            )?;
            Ok(exit::OK)
        }
        Err(EnableError::Refused(input)) => {
            writeln!(io.err, "error: {}", EnableError::Refused(input))?;
            Ok(exit::REFUSED)
        }
        Err(err) => {
            writeln!(io.err, "error: {err}")?;
            Ok(exit::ERROR)
        }
    }
}

/// What `enable` tells the user before asking.
fn what_is_collected(app: &str) -> String {
    format!(
        "If you enable telemetry, {app} records which of its features you use: typed events \
         (closed choices, yes/no values, bounded numbers, versions), each randomised on this \
         machine (local differential privacy) before it is written to a local pending file.\n\
         Never collected: file paths, environment variables, usernames, hostnames, IP addresses, \
         secrets, command arguments or output.\n\
         Inspect everything with `{app} telemetry status` and `{app} telemetry show`."
    )
}

fn disable(telemetry: &Telemetry, io: &mut Io<'_>) -> Outcome {
    warn_all(telemetry, io)?;
    let outcome = telemetry.forget();
    let app = telemetry.app_name();
    match (&outcome.still_enabled, outcome.failed.is_empty()) {
        (None, true) => writeln!(io.out, "Telemetry disabled for {app}.")?,
        (None, false) => writeln!(
            io.out,
            "Telemetry is off for {app}, but some of its files could not be removed (below)."
        )?,
        (Some(_), _) => writeln!(io.out, "Telemetry could NOT be disabled for {app}.")?,
    }
    if outcome.removed.is_empty() {
        writeln!(io.out, "Nothing to remove.")?;
    }
    for path in &outcome.removed {
        writeln!(io.out, "Removed {}", path.display())?;
    }
    if let Some(path) = &outcome.config_file_updated {
        writeln!(
            io.out,
            "Set telemetry.enabled = false in {}",
            path.display()
        )?;
    }
    for (path, why) in &outcome.kept {
        writeln!(io.out, "Kept {}: {why}", path.display())?;
    }
    for (path, err) in &outcome.failed {
        writeln!(io.err, "error: could not remove {}: {err}", path.display())?;
    }
    if let Some(why) = &outcome.still_enabled {
        let var = telemetry
            .app()
            .map_or_else(|| "<APP>_TELEMETRY".to_owned(), |a| a.telemetry_var());
        writeln!(
            io.err,
            "error: telemetry is still ON for {app}: {why}. Turn it off now with DO_NOT_TRACK=1 \
             or {var}=disabled, fix the problem above, then run `{app} telemetry disable` again."
        )?;
    }
    Ok(
        if outcome.failed.is_empty() && outcome.still_enabled.is_none() {
            exit::OK
        } else {
            exit::ERROR
        },
    )
}

fn schema(version: Option<&str>, io: &mut Io<'_>) -> Outcome {
    match telemetry_schema::envelope_schema_json(version) {
        Ok(text) => {
            io.out.write_all(text.as_bytes())?;
            if !text.ends_with('\n') {
                writeln!(io.out)?;
            }
            Ok(exit::OK)
        }
        Err(err) => {
            writeln!(io.err, "error: {err}")?;
            Ok(exit::USAGE)
        }
    }
}

fn config_command(telemetry: &Telemetry, cmd: &ConfigCommand, io: &mut Io<'_>) -> Outcome {
    let outcome = telemetry.config();
    match cmd {
        ConfigCommand::Get { key } | ConfigCommand::Set { key, .. }
            if config::key_spec(key).is_none() =>
        {
            writeln!(io.err, "error: {}", SetError::UnknownKey(key.clone()))?;
            Ok(exit::USAGE)
        }
        ConfigCommand::Get { key } => {
            if let Some(problem) = &outcome.problem {
                writeln!(io.err, "error: {problem}")?;
                return Ok(exit::ERROR);
            }
            match outcome.value_of(key) {
                Some(value) => {
                    writeln!(io.out, "{value}")?;
                    Ok(exit::OK)
                }
                None => {
                    writeln!(io.err, "{key} is not set")?;
                    Ok(exit::ERROR)
                }
            }
        }
        ConfigCommand::Set { key, value } => {
            let Some(paths) = telemetry.paths() else {
                writeln!(io.err, "error: {}", EnableError::NoDirectory)?;
                return Ok(exit::ERROR);
            };
            match config::set(paths, key, value) {
                Ok(()) => {
                    writeln!(
                        io.out,
                        "Set {key} = {} in {}",
                        value.trim(),
                        paths.config_file().display()
                    )?;
                    Ok(exit::OK)
                }
                Err(err @ (SetError::InvalidValue(_) | SetError::UnknownKey(_))) => {
                    writeln!(io.err, "error: {err}; nothing was changed")?;
                    Ok(exit::USAGE)
                }
                Err(err) => {
                    writeln!(io.err, "error: {err}")?;
                    Ok(exit::ERROR)
                }
            }
        }
        ConfigCommand::List { json } => {
            if let Some(problem) = &outcome.problem {
                writeln!(io.err, "error: {problem}")?;
                return Ok(exit::ERROR);
            }
            for w in &outcome.warnings {
                writeln!(io.err, "warning: {w}")?;
            }
            if *json {
                let rows: Vec<_> = KEYS
                    .iter()
                    .map(|k| {
                        serde_json::json!({
                            "key": k.name,
                            "value": outcome.value_of(k.name),
                            "source": outcome.source_of(k.name).to_string(),
                            "help": k.help,
                        })
                    })
                    .collect();
                let text = serde_json::to_string_pretty(&rows).map_err(io::Error::other)?;
                writeln!(io.out, "{text}")?;
            } else {
                for k in KEYS {
                    let value = outcome.value_of(k.name).unwrap_or_else(|| "(unset)".into());
                    writeln!(
                        io.out,
                        "{} = {value}  (from {}; {})",
                        k.name,
                        outcome.source_of(k.name),
                        k.help
                    )?;
                }
            }
            Ok(exit::OK)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser, Debug)]
    #[command(name = "host")]
    struct Host {
        #[command(subcommand)]
        command: HostCommand,
    }

    #[derive(Subcommand, Debug)]
    enum HostCommand {
        /// The host's own work.
        Work,
        /// Telemetry, mounted.
        Telemetry(TelemetryArgs),
    }

    fn telemetry_command() -> clap::Command {
        Host::command()
            .find_subcommand("telemetry")
            .expect("mounted")
            .clone()
    }

    #[test]
    fn the_mounted_commands_are_valid_clap_commands() {
        Host::command().debug_assert();
    }

    #[test]
    fn arguments_are_built_only_for_the_command_being_parsed() {
        let telemetry = telemetry_command();
        for sub in telemetry.get_subcommands() {
            assert_eq!(
                sub.get_arguments().count(),
                0,
                "{} built its arguments before being parsed",
                sub.get_name()
            );
            assert_eq!(
                sub.get_subcommands().count(),
                0,
                "{} built its subcommands before being parsed",
                sub.get_name()
            );
            assert!(
                sub.get_about().is_some(),
                "{} lost its description",
                sub.get_name()
            );
        }
        let mut built = telemetry;
        built.build();
        let verify = built.find_subcommand("verify-payload").unwrap();
        let args: Vec<_> = verify
            .get_arguments()
            .map(|a| a.get_id().as_str())
            .collect();
        assert!(
            args.contains(&"target") && args.contains(&"json"),
            "{args:?}"
        );
        assert_eq!(
            built
                .find_subcommand("show")
                .unwrap()
                .get_about()
                .unwrap()
                .to_string(),
            "List every pending and preview payload: run id, day, size, schema version, events, \
             and whether it may be sent now (and why not)",
            "the deferred arguments replaced the command's description"
        );
        let config = built.find_subcommand("config").unwrap();
        let names: Vec<_> = config
            .get_subcommands()
            .map(clap::Command::get_name)
            .collect();
        assert_eq!(names, ["get", "set", "list", "help"]);
        assert_eq!(
            config.get_about().unwrap().to_string(),
            "Read or change `config.toml`"
        );
    }

    #[test]
    fn deferred_arguments_parse_as_before() {
        let parse = |args: &[&str]| Host::try_parse_from(args).map(|h| h.command);
        let command = |args: &[&str]| match parse(args) {
            Ok(HostCommand::Telemetry(t)) => t.command,
            other => panic!("{args:?}: {other:?}"),
        };
        assert!(
            matches!(command(&["host", "telemetry", "show", "--json"]), Command::Show(a) if a.json)
        );
        assert!(matches!(command(&["host", "telemetry", "status"]), Command::Status(a) if !a.json));
        assert!(matches!(
            command(&["host", "telemetry", "verify-payload", "x", "--json"]),
            Command::VerifyPayload(a) if a.target == "x" && a.json
        ));
        assert!(matches!(
            command(&["host", "telemetry", "config", "set", "k", "-1"]),
            Command::Config(c) if matches!(&*c, ConfigCommand::Set { key, value } if key == "k" && value == "-1")
        ));
        assert!(
            matches!(command(&["host", "telemetry", "purge", "--yes"]), Command::Purge(a) if a.yes)
        );
        let usage = |args: &[&str]| parse(args).expect_err("a usage error").kind();
        assert_eq!(
            usage(&["host", "telemetry", "show", "--jsn"]),
            clap::error::ErrorKind::UnknownArgument
        );
        assert_eq!(
            usage(&["host", "telemetry", "verify-payload"]),
            clap::error::ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            usage(&["host", "telemetry", "aggregate"]),
            clap::error::ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            usage(&["host", "telemetry", "config"]),
            clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
        assert!(matches!(parse(&["host", "work"]), Ok(HostCommand::Work)));
    }
}
