//! The handle an app creates once: [`Telemetry::builder`].

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::app::AppName;
use crate::config::{self, ConfigOutcome, ConfigSource};
use crate::consent::{self, TokenState};
use crate::decision::{self, Decision, Effect, EnvReading, Input, Source, Stage};
use crate::env::{Env, EnvValue};
use crate::event::{ComponentInitialized, Event, EventInfo};
use crate::paths::Paths;
use crate::recorder::{
    CompiledEvents, DEFAULT_MAX_PENDING_BYTES, DEFAULT_MAX_PENDING_FILES, Limits, Mode,
    RecordError, Recorder,
};
use crate::store;
use crate::warning::{Location, Warning};

/// How an app releases telemetry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleasePolicy {
    /// Off until the user runs `telemetry enable` (the default, and the only honest
    /// default for a stable release).
    #[default]
    OptIn,
    /// On unless disabled, for an app's beta channel — but never before the first-run
    /// notice has been shown, and never in the run that shows it.
    OptOut,
}

/// When the opt-out first-run notice may be shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NoticeMode {
    /// Only when standard error is a terminal.
    #[default]
    Terminal,
    /// Never (tools that inspect state, like `telemetry status`).
    Never,
    /// Always, to standard error (tests).
    Always,
}

/// Configures and builds a [`Telemetry`] handle.
#[derive(Clone, Debug)]
pub struct Builder {
    app: String,
    app_version: String,
    policy: ReleasePolicy,
    consent_version: u32,
    ci_detection: bool,
    env: Option<Env>,
    root: Option<PathBuf>,
    no_telemetry_flag: bool,
    disabled_by_code: bool,
    config_overrides: Vec<(String, toml::Value)>,
    notice: NoticeMode,
    print_warnings: bool,
    events: Vec<EventInfo>,
    recording: bool,
    daily_epsilon_cap: f64,
    upload_support: bool,
    posture: Option<String>,
    /// Builder calls that could not be honoured, reported as warnings by `build`; an invalid
    /// event declaration among them turns telemetry off.
    problems: Vec<BuilderProblem>,
}

#[derive(Clone, Debug, PartialEq)]
enum BuilderProblem {
    /// Ignored, keeping the default.
    Setting(String),
    /// The app's events cannot be recorded as declared.
    Declaration(String),
}

impl Builder {
    /// The app's version (reported in payloads).
    pub fn app_version(mut self, version: impl Into<String>) -> Self {
        self.app_version = version.into();
        self
    }
    /// The release policy; [`ReleasePolicy::OptIn`] by default.
    pub fn policy(mut self, policy: ReleasePolicy) -> Self {
        self.policy = policy;
        self
    }
    /// The version of what the user consents to. Raise it when what is collected changes:
    /// tokens for older versions stop counting as consent.
    pub fn consent_version(mut self, version: u32) -> Self {
        self.consent_version = version;
        self
    }
    /// Whether a CI environment disables telemetry (default: yes).
    pub fn ci_detection(mut self, on: bool) -> Self {
        self.ci_detection = on;
        self
    }
    /// Use this environment instead of the process's (tests, embedding).
    pub fn env(mut self, env: Env) -> Self {
        self.env = Some(env);
        self
    }
    /// Use this app directory instead of resolving one from the environment.
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }
    /// The host's `--no-telemetry` flag.
    pub fn no_telemetry_flag(mut self, set: bool) -> Self {
        self.no_telemetry_flag = set;
        self
    }
    /// Disable telemetry from the app's code.
    pub fn disabled(mut self) -> Self {
        self.disabled_by_code = true;
        self
    }
    /// Set a config key from the app's code (the top config layer).
    pub fn config(mut self, key: impl Into<String>, value: impl Into<toml::Value>) -> Self {
        self.config_overrides.push((key.into(), value.into()));
        self
    }
    /// When the opt-out notice may be shown.
    pub fn notice(mut self, mode: NoticeMode) -> Self {
        self.notice = mode;
        self
    }
    /// Whether this binary was built with an uploader (`telemetry-transport`). This crate never
    /// uploads; the flag only lets [`Telemetry::sendability`] say why a payload cannot leave
    /// (default: no upload support, as in every default build).
    pub fn upload_support(mut self, built_in: bool) -> Self {
        self.upload_support = built_in;
        self
    }

    /// The environment decisions are made from: the one given to [`Builder::env`], else the
    /// process's, read now. (An uploader takes its proxy settings from it too.)
    pub fn effective_env(&self) -> Env {
        self.env.clone().unwrap_or_else(Env::from_process)
    }

    /// Whether the binary has an uploader (see [`Builder::upload_support`]).
    pub fn has_upload_support(&self) -> bool {
        self.upload_support
    }

    /// Whether [`Builder::build`] prints warnings to standard error (default: yes).
    pub fn print_warnings(mut self, on: bool) -> Self {
        self.print_warnings = on;
        self
    }

    /// The consent version the app asks for.
    pub fn consent_version_value(&self) -> u32 {
        self.consent_version
    }

    /// Whether this handle records at all (default: yes). Tools that only inspect state,
    /// like `telemetry status`, turn it off so that looking never writes a payload.
    pub fn recording(mut self, on: bool) -> Self {
        self.recording = on;
        self
    }

    /// The privacy budget per install and day (default 64); reports beyond it are dropped.
    /// A value outside `(0, 1000]` keeps the default, with a warning.
    pub fn daily_epsilon_cap(mut self, cap: f64) -> Self {
        if cap.is_finite() && cap > 0.0 && cap <= 1000.0 {
            self.daily_epsilon_cap = cap;
        } else {
            self.problems.push(BuilderProblem::Setting(format!(
                "daily_epsilon_cap({cap}) is outside (0, 1000]; the default {} is used",
                self.daily_epsilon_cap
            )));
        }
        self
    }

    /// Where the app tells its users what its telemetry does and how to check it (a URL or a
    /// document shipped with the app), named in `telemetry status` and the consent prompt.
    /// Without it, the toolkit's own sentence is printed with no reference.
    pub fn posture(mut self, document: impl Into<String>) -> Self {
        self.posture = Some(document.into()).filter(|d| !d.trim().is_empty());
        self
    }

    /// The document set with [`Builder::posture`].
    pub fn posture_document(&self) -> Option<&str> {
        self.posture.as_deref()
    }

    /// Declares an event type the app may record. Only declared events are recorded, and
    /// the app's catalogue ([`Telemetry::catalog`]) lists exactly these. Declaring the same
    /// type twice is harmless; two different declarations under one name are an invalid
    /// declaration: telemetry stays off, with a warning.
    pub fn event<E: Event>(mut self) -> Self {
        let info = EventInfo::of::<E>();
        match self.events.iter().find(|e| e.name == info.name) {
            None => self.events.push(info),
            Some(known) if known.same_declaration(&info) => {}
            Some(_) => self.problems.push(BuilderProblem::Declaration(format!(
                "two different event types are named `{}`",
                info.name
            ))),
        }
        self
    }

    /// The declared events, the built-in `component_initialized` first.
    pub fn events(&self) -> Vec<EventInfo> {
        let mut all = vec![EventInfo::of::<ComponentInitialized<'static>>()];
        all.extend(self.events.iter().copied());
        all
    }

    /// The app name as given.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// Decides, and returns a handle for looking, not recording: no notice, no warnings
    /// printed (they stay in [`Telemetry::warnings`] for the caller to show), recording off.
    /// What `telemetry status`, `show` and the uploader decide with; writes nothing.
    pub fn build_inspector(self) -> Telemetry {
        self.notice(NoticeMode::Never)
            .print_warnings(false)
            .recording(false)
            .build()
    }

    /// Decides, and returns the handle. Never fails and never panics: any doubt means
    /// disabled, with a warning. Writes nothing, except the opt-out notice marker in the
    /// run that shows the notice.
    ///
    /// Switched off by a hard override (`DO_NOT_TRACK`, `<APP>_TELEMETRY`, CI), or an opt-in
    /// app with no app directory yet (never given consent), it reads only the environment: the
    /// app directory, config and consent token, which cannot turn it on, are read when
    /// [`Telemetry::decision`], [`Telemetry::status`] or the warnings are first asked for, and
    /// show what the files said then (consent given meanwhile applies from the next run).
    pub fn build(self) -> Telemetry {
        let env = self.env.clone().unwrap_or_else(Env::from_process);
        let mut warnings = Vec::new();
        for problem in &self.problems {
            if let BuilderProblem::Setting(why) = problem {
                warnings.push(Warning::new(Location::Programmatic, why.clone()));
            }
        }
        let app = match AppName::new(&self.app) {
            Ok(app) => Some(app),
            Err(err) => {
                warnings.push(Warning::new(Location::Programmatic, err.to_string()));
                None
            }
        };
        // Off for certain before any file is read, with no preview asked for:
        // - switched off by a hard override (DO_NOT_TRACK, <APP>_TELEMETRY, CI), which nothing
        //   overrules;
        // - or an opt-in app with no app directory at all: no consent token can exist, and
        //   no config file either (with no `<APP>_CONFIG_*` variable nor override in code,
        //   nothing would even warn).
        // The rest of the decision is then worked out only when asked for (`decision`,
        // `status`): a disabled run pays for reading the environment, not for files. Both
        // usual ways to be off are checked here first, without building the overrides'
        // explanation (`decide` does, for a warning or a preview). Switched off by a hard
        // override, the run does not even resolve the app directory's paths (`Telemetry::paths`
        // does, when asked for): it reads the environment only.
        let quick = app
            .as_ref()
            .map(|app| quick_overrides(app, &env, self.ci_detection));
        if let (Some(app), Some(QuickOverrides::Off)) = (&app, quick) {
            let app = app.clone();
            return self.off_before_files(app, AppPaths::Deferred(OnceLock::new()), env, warnings);
        }
        let (paths, path_warnings) = resolve_paths(app.as_ref(), self.root.as_deref(), &env);
        warnings.extend(path_warnings);
        let mut app_dir = None;
        if let (Some(app), Some(QuickOverrides::Inactive)) = (&app, quick)
            && self.never_consented(app, &env, paths.as_ref(), &mut app_dir)
        {
            if self.print_warnings {
                print_warnings(&self.app, warnings.iter());
            }
            let app = app.clone();
            let paths = AppPaths::Resolved(paths);
            return self.off_before_files(app, paths, env, warnings);
        }
        self.decide(env, warnings, app, paths, app_dir)
    }

    /// Whether this opt-in app has never been given consent here: no app directory at all, and
    /// nothing (a `<APP>_CONFIG_*` variable, an override in code) that would be read or warned
    /// about without one. The directory, when opened, is checked and its verdict kept in
    /// `app_dir` for the resolution, which then does not open it again.
    fn never_consented(
        &self,
        app: &AppName,
        env: &Env,
        paths: Option<&Paths>,
        app_dir: &mut Option<Result<(), store::Refusal>>,
    ) -> bool {
        if app_dir.is_some()
            || self.policy != ReleasePolicy::OptIn
            || !self.config_overrides.is_empty()
            || config::has_variables(app, env)
        {
            return false;
        }
        let Some(paths) = paths else { return false };
        let opened = store::open_app_dir(paths.root());
        let absent = matches!(opened, Ok(None));
        *app_dir = Some(opened.map(|_| ()));
        absent
    }

    /// The rest of [`Builder::build`]: the hard overrides with their explanation, then the app
    /// directory, config and consent token (`app_dir`: the app directory's check, if `build`
    /// made it). Kept out of `build` so that a run found off there does not reserve this
    /// function's stack frame (several KB: a page fault or two in a fresh process).
    #[inline(never)]
    fn decide(
        self,
        env: Env,
        warnings: Vec<Warning>,
        app: Option<AppName>,
        paths: Option<Paths>,
        mut app_dir: Option<Result<(), store::Refusal>>,
    ) -> Telemetry {
        // The same two ways to be off as in `build`, for the overrides that need explaining.
        let overrides = app
            .as_ref()
            .map(|app| Overrides::read(app, &env, self.ci_detection));
        if let (Some(app), Some(overrides)) = (&app, &overrides) {
            let Overrides {
                inputs,
                warnings: override_warnings,
                preview,
            } = overrides;
            let preview = *preview;
            let overridden = inputs.iter().any(|i| i.effect == Effect::Disables);
            if !preview
                && (overridden || self.never_consented(app, &env, paths.as_ref(), &mut app_dir))
            {
                if self.print_warnings {
                    if overridden {
                        print_warnings(&self.app, quiet_warnings(override_warnings, inputs));
                    } else {
                        // All of them, in the order a full decision lists them.
                        print_warnings(&self.app, warnings.iter().chain(override_warnings));
                    }
                }
                let app = app.clone();
                let paths = AppPaths::Resolved(paths);
                return self.off_before_files(app, paths, env, warnings);
            }
        }
        let (resolved, compiled, secret) =
            self.resolve(&env, &app, &paths, warnings, overrides, app_dir);
        let Resolved {
            decision,
            token,
            config,
            mut warnings,
            platform_refused,
        } = resolved;

        // Not even a preview is written into a directory others control, or that the
        // platform cannot keep private.
        let recorder = if platform_refused {
            None
        } else {
            self.recorder(
                &decision,
                paths.as_ref(),
                &config,
                compiled,
                secret,
                &mut warnings,
            )
            .map(Box::new)
        };
        // `is_enabled` tells the truth: on only if this run can record (or only looks).
        let enabled = decision.enabled && (recorder.is_some() || !self.recording);
        let telemetry = Telemetry {
            enabled: AtomicBool::new(enabled),
            active: AtomicBool::new(recorder.is_some()),
            recorder,
            app_name: self.app.clone(),
            app,
            builder: self,
            paths: AppPaths::Resolved(paths),
            resolved: OnceLock::from(Box::new(Resolved {
                decision,
                token,
                config,
                warnings,
                platform_refused,
            })),
            env,
            // Only the lazy path reads them; here the decision is already resolved.
            early_warnings: Vec::new(),
        };
        if telemetry.builder.print_warnings {
            print_warnings(&telemetry.app_name, telemetry.printed_warnings());
        }
        if telemetry.active.load(Ordering::Relaxed) {
            telemetry.record(&ComponentInitialized {
                component: 0,
                sdk_version: env!("CARGO_PKG_VERSION"),
                runtime_version: RUSTC_VERSION,
            });
        }
        telemetry
    }

    /// The handle of a run found off before any file was read: the rest of the decision is
    /// worked out when first asked for ([`Telemetry::resolved`]).
    fn off_before_files(
        self,
        app: AppName,
        paths: AppPaths,
        env: Env,
        early_warnings: Vec<Warning>,
    ) -> Telemetry {
        Telemetry {
            enabled: AtomicBool::new(false),
            active: AtomicBool::new(false),
            recorder: None,
            app_name: self.app.clone(),
            app: Some(app),
            builder: self,
            paths,
            resolved: OnceLock::new(),
            env,
            early_warnings,
        }
    }

    /// Everything the decision takes from the app directory, the config and the consent token,
    /// after what [`Builder::build`] read first (`warnings` so far). No file is written, except
    /// the first-run notice's marker of an opt-out app that is not switched off.
    fn resolve(
        &self,
        env: &Env,
        app: &Option<AppName>,
        paths: &Option<Paths>,
        mut warnings: Vec<Warning>,
        overrides: Option<Overrides>,
        app_dir: Option<Result<(), store::Refusal>>,
    ) -> (Resolved, Option<CompiledEvents>, Option<SecretRead>) {
        // Off Unix nothing can prove the app directory private: the platform keeps telemetry
        // off, says so in `status`, and the directory is not even opened.
        let platform_input = crate::platform::decision_input(paths.as_ref().map(Paths::root));
        // Every other path is inside the app directory: if another user may write to it,
        // none of its files can be trusted (a planted lock, a replaced ledger, a forged token).
        let app_dir_refused = paths
            .as_ref()
            .filter(|_| platform_input.is_none())
            .and_then(|p| {
                app_dir
                    .unwrap_or_else(|| store::open_app_dir(p.root()).map(|_| ()))
                    .err()
            })
            .map(|refusal| app_dir_refusal(&refusal, app.as_ref()));
        if let (Some(why), Some(paths)) = (&app_dir_refused, &paths) {
            warnings.push(Warning::new(
                Location::Path(paths.root().to_owned()),
                why.clone(),
            ));
        }
        let config = match &app {
            Some(app) => config::load(app, paths.as_ref(), env, &self.config_overrides),
            None => ConfigOutcome::default(),
        };
        warnings.extend(config.warnings.iter().cloned());
        warnings.extend(config.problem.iter().cloned());
        // An opt-in app that records needs the install secret whenever the token gives
        // consent: both are read through one opening of the secrets directory.
        let (token, secret) = match &paths {
            Some(paths) if self.recording && self.policy == ReleasePolicy::OptIn => {
                let (token, secret) =
                    consent::load_token_and_secret(paths, &self.app, self.consent_version);
                (token, Some(secret))
            }
            Some(paths) => (
                consent::load_token(paths, &self.app, self.consent_version),
                None,
            ),
            None => (TokenState::Absent, None),
        };
        if let TokenState::Refused(why) = &token {
            warnings.push(Warning::new(
                Location::Path(paths.as_ref().map(Paths::consent_token).unwrap_or_default()),
                format!("consent token refused, telemetry stays disabled: {why}"),
            ));
        }

        let mut inputs = Vec::new();
        let mut preview = false;
        if let Some(app) = &app {
            // Read by `build` already, unless this runs later (`Telemetry::resolved`).
            let read = overrides.unwrap_or_else(|| Overrides::read(app, env, self.ci_detection));
            inputs.extend(read.inputs);
            warnings.extend(read.warnings);
            preview = read.preview;
        } else {
            inputs.push(Input {
                stage: Stage::HardOverride,
                name: "app name".into(),
                value: self.app.clone(),
                source: Source::Programmatic,
                effect: Effect::Disables,
                reason: "the app name is invalid".into(),
            });
        }
        inputs.push(Input {
            stage: Stage::PerInvocation,
            name: "--no-telemetry".into(),
            value: on_off(self.no_telemetry_flag).into(),
            source: Source::CliFlag {
                flag: "--no-telemetry".into(),
            },
            effect: disables_if(self.no_telemetry_flag),
            reason: if self.no_telemetry_flag {
                "telemetry off for this invocation"
            } else {
                "not set"
            }
            .into(),
        });
        inputs.push(Input {
            stage: Stage::PerInvocation,
            name: "disable()".into(),
            value: on_off(self.disabled_by_code).into(),
            source: Source::Programmatic,
            effect: disables_if(self.disabled_by_code),
            reason: if self.disabled_by_code {
                "the app disabled telemetry in code"
            } else {
                "not called"
            }
            .into(),
        });
        inputs.extend(platform_input.clone());
        if let (Some(why), Some(paths)) = (&app_dir_refused, &paths) {
            inputs.push(Input {
                stage: Stage::Config,
                name: APP_DIRECTORY_INPUT.into(),
                value: "refused".into(),
                source: Source::AppDirectory {
                    path: paths.root().to_owned(),
                },
                effect: Effect::Disables,
                reason: why.clone(),
            });
        }
        inputs.push(config_input(&config, paths.as_ref()));
        let consent_input = match self.policy {
            ReleasePolicy::OptIn => opt_in_input(&token, paths.as_ref()),
            ReleasePolicy::OptOut => opt_out_input(paths.as_ref()),
        };
        inputs.push(consent_input);

        let mut decision = Decision::from_inputs(inputs, preview);
        // Opt-out: the run that shows the notice records nothing.
        if self.policy == ReleasePolicy::OptOut
            && decision.decided_by.is_none()
            && let Some(paths) = &paths
        {
            self.first_run_notice(paths, &mut decision, &mut warnings);
        }

        // An app whose events cannot be recorded as declared records nothing, and says so
        // (checked only when something would be recorded: the check costs microseconds).
        let checked = (decision.enabled || decision.preview).then(|| self.check_declarations());
        let (compiled, invalid) = match checked {
            Some(Ok(events)) => (Some(events), None),
            Some(Err(why)) => (None, Some(why)),
            None => (None, None),
        };
        if let Some(why) = invalid {
            warnings.push(Warning::new(
                Location::Programmatic,
                format!("invalid event declaration: {why}; telemetry stays off"),
            ));
            decision.inputs.push(Input {
                stage: Stage::PerInvocation,
                name: DECLARATIONS_INPUT.into(),
                value: "invalid".into(),
                source: Source::Programmatic,
                effect: Effect::Disables,
                reason: format!("the app's event declarations are invalid: {why}"),
            });
            decision.decided_by = Some(decision.inputs.len() - 1);
            decision.enabled = false;
            decision.preview = false;
        }

        let resolved = Resolved {
            decision,
            token,
            config,
            warnings,
            platform_refused: app_dir_refused.is_some() || platform_input.is_some(),
        };
        (resolved, compiled, secret)
    }

    /// Whether the declared events can be recorded: each compiles to its mechanisms, names
    /// are unique (the built-in `component_initialized` included), and the catalogue checks.
    /// Returns them compiled, for the recorder.
    fn check_declarations(&self) -> Result<CompiledEvents, String> {
        if let Some(BuilderProblem::Declaration(why)) = self
            .problems
            .iter()
            .find(|p| matches!(p, BuilderProblem::Declaration(_)))
        {
            return Err(why.clone());
        }
        let events = self.events();
        for (i, e) in events.iter().enumerate() {
            if events[..i].iter().any(|earlier| earlier.name == e.name) {
                return Err(format!("the event name `{}` is taken", e.name));
            }
        }
        crate::recorder::compile_events(&events).map_err(|e| match e {
            RecordError::Declaration(why) => why,
            other => other.to_string(),
        })
    }

    /// Sets up recording when enabled (live) or in preview mode; `None` otherwise, or when
    /// anything needed is missing (then with a warning: telemetry stays off for the run).
    fn recorder(
        &self,
        decision: &Decision,
        paths: Option<&Paths>,
        config: &ConfigOutcome,
        compiled: Option<CompiledEvents>,
        secret: Option<SecretRead>,
        warnings: &mut Vec<Warning>,
    ) -> Option<Recorder> {
        if !self.recording {
            return None;
        }
        let paths = paths?;
        let preview_only = decision.preview
            && decision
                .inputs
                .iter()
                .filter(|i| i.effect == Effect::Disables)
                .all(|i| i.stage == Stage::HardOverride);
        let (mode, secret, dir) = if decision.enabled {
            let secret = match self.policy {
                // An opt-out app has no `enable` step: its secret is made on first use.
                ReleasePolicy::OptOut => {
                    consent::ensure_install_secret(paths).map_err(|e| store::Refusal {
                        path: paths.install_secret(),
                        kind: store::RefusalKind::Io(std::io::ErrorKind::Other, e.to_string()),
                    })
                }
                ReleasePolicy::OptIn => {
                    secret.unwrap_or_else(|| consent::read_install_secret(paths))
                }
            };
            match secret {
                Ok(Some(secret)) => (Mode::Live, secret, paths.pending_dir()),
                Ok(None) => {
                    warnings.push(Warning::new(
                        Location::Path(paths.install_secret()),
                        "the install secret is missing; run `telemetry enable` again. Telemetry stays off for this run",
                    ));
                    return None;
                }
                Err(refusal) => {
                    warnings.push(Warning::new(
                        Location::Path(paths.install_secret()),
                        format!("{refusal}; telemetry stays off for this run"),
                    ));
                    return None;
                }
            }
        } else if decision.preview || preview_only {
            // A throw-away secret: previews create no persistent identifier.
            let mut secret = [0u8; 32];
            crate::dp::os_random_bytes(&mut secret).ok()?;
            (Mode::Preview, secret, paths.previews_dir())
        } else {
            return None;
        };
        let t = &config.config.telemetry;
        let limits = Limits {
            max_pending_files: t.max_pending_files.unwrap_or(DEFAULT_MAX_PENDING_FILES),
            max_pending_bytes: t.max_pending_bytes.unwrap_or(DEFAULT_MAX_PENDING_BYTES),
            daily_epsilon_cap: self.daily_epsilon_cap,
        };
        // Compiled by the declaration check whenever the decision is on or a preview.
        let compiled = match compiled {
            Some(compiled) => Ok(compiled),
            None => crate::recorder::compile_events(&self.events()),
        };
        match compiled.map(|events| {
            Recorder::compiled(
                mode,
                secret,
                events,
                (self.app.clone(), self.app_version.clone()),
                dir,
                paths.ledger_file(),
                limits,
            )
        }) {
            Ok(recorder) => {
                Some(recorder.print_warnings_as(self.print_warnings.then(|| self.app.clone())))
            }
            Err(err) => {
                warnings.push(Warning::new(
                    Location::Programmatic,
                    format!("{err}; telemetry stays off"),
                ));
                None
            }
        }
    }

    fn first_run_notice(
        &self,
        paths: &Paths,
        decision: &mut Decision,
        warnings: &mut Vec<Warning>,
    ) {
        let show = match self.notice {
            NoticeMode::Never => false,
            NoticeMode::Always => true,
            NoticeMode::Terminal => std::io::stderr().is_terminal(),
        };
        let marker = paths.notice_marker();
        let (value, reason) = if !show {
            (
                "not shown",
                "the first-run notice has not been shown yet (only shown on a terminal)",
            )
        } else {
            let text = notice_text(&self.app);
            let _ = std::io::stderr()
                .lock()
                .write_all(telemetry_schema::display::escape_for_terminal(&text).as_bytes());
            let written = store::ensure_dir(paths.root())
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    store::write_atomic(paths.root(), "notice-shown", b"1\n", 0o600)
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = written {
                warnings.push(Warning::new(
                    Location::Path(marker.clone()),
                    format!("cannot record that the notice was shown ({e}); telemetry stays off"),
                ));
            }
            (
                "shown now",
                "the first-run notice was shown in this run, which records nothing",
            )
        };
        decision.inputs.push(Input {
            stage: Stage::Consent,
            name: "first-run notice".into(),
            value: value.into(),
            source: Source::NoticeMarker { path: marker },
            effect: Effect::Disables,
            reason: reason.into(),
        });
        decision.decided_by = Some(decision.inputs.len() - 1);
        decision.enabled = false;
    }
}

/// The first-run notice of an opt-out app: what happens, and every way to turn it off.
pub fn notice_text(app: &str) -> String {
    let prefix = AppName::new(app)
        .map(|a| a.env_prefix())
        .unwrap_or_default();
    format!(
        "{app} collects anonymous, locally randomised usage statistics in this beta.\n\
         Nothing was recorded in this run. To turn it off, use any of:\n\
         \x20 {app} telemetry disable\n\
         \x20 {app} telemetry config set telemetry.enabled false\n\
         \x20 {app} --no-telemetry ...          (this run only)\n\
         \x20 DO_NOT_TRACK=1 or {prefix}_TELEMETRY=disabled in the environment\n\
         See what would be sent with `{app} telemetry show`.\n"
    )
}

/// The name of the decision input recorded when the app's event declarations are invalid.
pub(crate) const DECLARATIONS_INPUT: &str = "event declarations";

/// The name of the decision input recorded when the app directory is refused.
pub(crate) const APP_DIRECTORY_INPUT: &str = "app directory";

/// The input that keeps a run off when consent was given after it started (read lazily).
pub(crate) const STARTED_OFF_INPUT: &str = "state at start-up";

/// Why the app directory is refused, with the command that fixes it.
fn app_dir_refusal(refusal: &store::Refusal, app: Option<&AppName>) -> String {
    let untrusted = "another user could plant or replace the toolkit's files in it, so \
                     telemetry stays disabled";
    match &refusal.kind {
        store::RefusalKind::WritableByOthers { .. } => {
            format!("the app directory {}: {untrusted}", refusal.reason())
        }
        store::RefusalKind::NotOwned { current, .. } => {
            let other = app.map_or_else(|| "the app's _TELEMETRY_DIR".to_owned(), AppName::dir_var);
            format!(
                "the app directory {} (fix: chown {current} {}, or set {other} to a directory \
                 you own): {untrusted}",
                refusal.reason(),
                refusal.path.display()
            )
        }
        store::RefusalKind::Io(_, message) => {
            format!("the app directory cannot be opened ({message}); telemetry stays disabled")
        }
        _ => format!(
            "the app directory {}; telemetry stays disabled",
            refusal.reason()
        ),
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "set" } else { "unset" }
}

fn disables_if(on: bool) -> Effect {
    if on { Effect::Disables } else { Effect::None }
}

/// The hard overrides in the environment: their inputs and warnings, and whether a preview
/// was asked for.
struct Overrides {
    inputs: Vec<Input>,
    warnings: Vec<Warning>,
    preview: bool,
}

impl Overrides {
    fn read(app: &AppName, env: &Env, ci_detection: bool) -> Self {
        let mut read = Self {
            inputs: Vec::new(),
            warnings: Vec::new(),
            preview: false,
        };
        hard_overrides(
            app,
            env,
            ci_detection,
            &mut read.inputs,
            &mut read.warnings,
            &mut read.preview,
        );
        read
    }
}

type OverrideReader = fn(EnvValue<'_>) -> EnvReading;

/// The hard overrides' variables (but CI's), each with how its value is read.
fn override_vars(app: &AppName) -> [(String, OverrideReader); 4] {
    [
        ("DO_NOT_TRACK".to_owned(), decision::read_do_not_track),
        (app.telemetry_var(), decision::read_app_telemetry),
        (app.disabled_var(), decision::read_disabled_alias),
        (app.enabled_var(), decision::read_enabled_alias),
    ]
}

/// The CI variable that is set, if any.
fn ci_var(env: &Env) -> Option<&'static str> {
    decision::CI_VARS
        .iter()
        .copied()
        .find(|v| decision::read_ci(env.get(v)) != EnvReading::Inactive)
}

/// What [`hard_overrides`] would find, read without building its explanation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QuickOverrides {
    /// Switched off, with nothing to warn about.
    Off,
    /// No hard override is active.
    Inactive,
    /// A preview, or a value to warn about: [`hard_overrides`] is needed.
    NeedsExplaining,
}

fn quick_overrides(app: &AppName, env: &Env, ci_detection: bool) -> QuickOverrides {
    let mut off = false;
    for (name, read) in override_vars(app) {
        match read(env.get(&name)) {
            EnvReading::Inactive => {}
            EnvReading::Disables => off = true,
            EnvReading::Preview | EnvReading::Unrecognised => {
                return QuickOverrides::NeedsExplaining;
            }
        }
    }
    if off || (ci_detection && ci_var(env).is_some()) {
        QuickOverrides::Off
    } else {
        QuickOverrides::Inactive
    }
}

fn hard_overrides(
    app: &AppName,
    env: &Env,
    ci_detection: bool,
    inputs: &mut Vec<Input>,
    warnings: &mut Vec<Warning>,
    preview: &mut bool,
) {
    for (name, read) in override_vars(app) {
        let value = env.get(&name);
        let reading = read(value);
        let shown = match value {
            EnvValue::Unset => "unset".to_owned(),
            EnvValue::Text(v) => v.chars().take(40).collect(),
            EnvValue::NotUnicode => "<not UTF-8>".to_owned(),
        };
        let (effect, reason) = match reading {
            EnvReading::Inactive => (Effect::None, "not active".to_owned()),
            EnvReading::Disables => (
                Effect::Disables,
                "hard override: telemetry disabled".to_owned(),
            ),
            EnvReading::Preview => {
                *preview = true;
                (
                    Effect::Disables,
                    "preview mode: payloads are rendered locally and never sent".to_owned(),
                )
            }
            EnvReading::Unrecognised => {
                warnings.push(Warning::new(
                    Location::EnvVar(name.clone()),
                    format!("unrecognised value {shown:?}, treated as disabled"),
                ));
                (
                    Effect::Disables,
                    "unrecognised value, treated as disabled".to_owned(),
                )
            }
        };
        inputs.push(Input {
            stage: Stage::HardOverride,
            name: name.clone(),
            value: shown,
            source: Source::EnvVar { name },
            effect,
            reason,
        });
    }
    let (name, effect, reason, value) = match (ci_var(env), ci_detection) {
        (Some(var), true) => (
            var,
            Effect::Disables,
            "CI environment detected: telemetry disabled",
            env_text(env, var),
        ),
        (Some(var), false) => (
            var,
            Effect::None,
            "CI environment detected, but the app turned CI detection off",
            env_text(env, var),
        ),
        (None, _) => (
            "CI",
            Effect::None,
            "not a CI environment",
            "unset".to_owned(),
        ),
    };
    inputs.push(Input {
        stage: Stage::HardOverride,
        name: name.to_owned(),
        value,
        source: Source::EnvVar {
            name: name.to_owned(),
        },
        effect,
        reason: reason.into(),
    });
}

fn env_text(env: &Env, name: &str) -> String {
    match env.get(name) {
        EnvValue::Text(v) => v.chars().take(40).collect(),
        EnvValue::NotUnicode => "<not UTF-8>".into(),
        EnvValue::Unset => "unset".into(),
    }
}

fn config_input(config: &ConfigOutcome, paths: Option<&Paths>) -> Input {
    let key = "telemetry.enabled".to_owned();
    if let Some(problem) = &config.problem {
        let layer = match &problem.location {
            Location::Path(p) | Location::FileKey { path: p, .. } => p.display().to_string(),
            other => other.to_string(),
        };
        return Input {
            stage: Stage::Config,
            name: key.clone(),
            value: "unreadable".into(),
            source: Source::Config { layer, key },
            effect: Effect::Disables,
            reason: format!("the configuration cannot be trusted: {}", problem.message),
        };
    }
    let source = config.source_of(&key);
    let layer = match (&source, paths) {
        (ConfigSource::Default, Some(p)) => {
            format!("default (no value in {})", p.config_file().display())
        }
        _ => source.to_string(),
    };
    let (value, effect, reason) = match config.config.telemetry.enabled {
        Some(false) => ("false", Effect::Disables, "the user turned telemetry off"),
        Some(true) => (
            "true",
            Effect::None,
            "allows telemetry; consent is still required",
        ),
        None => ("unset", Effect::None, "no persistent choice"),
    };
    Input {
        stage: Stage::Config,
        name: key.clone(),
        value: value.into(),
        source: Source::Config { layer, key },
        effect,
        reason: reason.into(),
    }
}

fn opt_in_input(token: &TokenState, paths: Option<&Paths>) -> Input {
    let path = paths.map(Paths::consent_token).unwrap_or_default();
    let (value, effect, reason) = match token {
        TokenState::Absent => (
            "absent".to_owned(),
            Effect::None,
            "no consent given (opt-in)".to_owned(),
        ),
        TokenState::Valid(t) => (
            format!(
                "consent version {}, given {}",
                t.consent_version, t.given_at
            ),
            Effect::Enables,
            "the user consented".to_owned(),
        ),
        TokenState::Outdated { token, required } => (
            format!("consent version {}", token.consent_version),
            Effect::None,
            format!(
                "consent was given for version {}, the app now asks for version {required}",
                token.consent_version
            ),
        ),
        // Fail closed: a token that cannot be trusted is a reason to stay off, and says so.
        TokenState::Refused(why) => ("refused".to_owned(), Effect::Disables, why.clone()),
    };
    Input {
        stage: Stage::Consent,
        name: "consent token".into(),
        value,
        source: Source::ConsentToken { path },
        effect,
        reason,
    }
}

fn opt_out_input(paths: Option<&Paths>) -> Input {
    let marker = paths.map(Paths::notice_marker).unwrap_or_default();
    let shown = paths.is_some() && std::fs::symlink_metadata(&marker).is_ok_and(|m| m.is_file());
    Input {
        stage: Stage::Consent,
        name: "first-run notice".into(),
        value: if shown { "shown earlier" } else { "not shown" }.into(),
        source: Source::NoticeMarker { path: marker },
        effect: if shown { Effect::Enables } else { Effect::None },
        reason: if shown {
            "opt-out policy (beta): on, the notice was shown in an earlier run"
        } else {
            "opt-out policy (beta): the first-run notice has not been shown yet"
        }
        .into(),
    }
}

/// The telemetry handle. Create one per process with [`Telemetry::builder`].
#[derive(Debug)]
pub struct Telemetry {
    enabled: AtomicBool,
    /// Whether `record` does anything: enabled (or preview) and a recorder exists.
    active: AtomicBool,
    /// Boxed, as `resolved` is: a handle lives in the host's `main` for the whole run, and an
    /// inline recorder and decision made it 1.5 KB of stack that a disabled run touched for
    /// nothing (each new stack page is a page fault in a fresh process).
    recorder: Option<Box<Recorder>>,
    app_name: String,
    app: Option<AppName>,
    builder: Builder,
    paths: AppPaths,
    /// The decision and what it read, worked out at `build` unless a hard override made that
    /// unnecessary (then on first use).
    resolved: OnceLock<Box<Resolved>>,
    /// The environment `build` saw, for working out the rest of the decision later.
    env: Env,
    /// The warnings `build` found before the app directory, config and token.
    early_warnings: Vec<Warning>,
}

/// The install secret as read (with the consent token, by [`Builder::resolve`]).
type SecretRead = Result<Option<[u8; 32]>, store::Refusal>;

/// The app directory's paths (`None` when none can be resolved) and the warnings resolving
/// them gave.
type ResolvedPaths = (Option<Paths>, Vec<Warning>);

/// The app directory's paths as a handle keeps them.
#[derive(Debug)]
enum AppPaths {
    /// Resolved by `build`; its warnings are among the early ones.
    Resolved(Option<Paths>),
    /// Not resolved by `build` (a hard override switched the run off first): resolved when
    /// first asked for.
    Deferred(OnceLock<ResolvedPaths>),
}

/// Where the app directory is: the builder's `root`, else by the platform's convention from
/// the environment; none without a valid app name.
fn resolve_paths(app: Option<&AppName>, root: Option<&Path>, env: &Env) -> ResolvedPaths {
    match (app, root) {
        (_, Some(root)) => (Some(Paths::at(root)), Vec::new()),
        (Some(app), None) => Paths::resolve(app, env),
        (None, None) => (None, Vec::new()),
    }
}

/// What the decision takes from the app directory, config and consent token ([`Builder::resolve`]).
#[derive(Debug)]
struct Resolved {
    decision: Decision,
    token: TokenState,
    config: ConfigOutcome,
    warnings: Vec<Warning>,
    /// The app directory or the platform cannot keep files private: nothing is recorded.
    platform_refused: bool,
}

/// Prints `warnings` on stderr, each quoting what it is about, escaped (shown, not obeyed).
fn print_warnings<'a>(app: &str, warnings: impl Iterator<Item = &'a Warning>) {
    let mut stderr = std::io::stderr().lock();
    for w in warnings {
        let line = format!("{app}: telemetry: warning: {w}\n");
        let _ = stderr.write_all(telemetry_schema::display::escape_for_terminal(&line).as_bytes());
    }
}

/// The warnings printed when a hard override switched telemetry off: only those about an
/// override's own variable (the host's output stays quiet; `status` lists every warning).
fn quiet_warnings<'a>(
    warnings: &'a [Warning],
    inputs: &'a [Input],
) -> impl Iterator<Item = &'a Warning> {
    let overrides: Vec<&str> = inputs
        .iter()
        .filter(|i| i.stage == Stage::HardOverride)
        .map(|i| i.name.as_str())
        .collect();
    warnings.iter().filter(move |w| {
        matches!(&w.location, Location::EnvVar(name) if overrides.contains(&name.as_str()))
    })
}

impl Telemetry {
    /// Starts configuring the handle for `app` (e.g. `"acme"`).
    pub fn builder(app: impl Into<String>) -> Builder {
        Builder {
            app: app.into(),
            app_version: "0.0.0".into(),
            policy: ReleasePolicy::OptIn,
            consent_version: 1,
            ci_detection: true,
            env: None,
            root: None,
            no_telemetry_flag: false,
            disabled_by_code: false,
            config_overrides: Vec::new(),
            notice: NoticeMode::Terminal,
            print_warnings: true,
            events: Vec::new(),
            recording: true,
            daily_epsilon_cap: crate::recorder::DEFAULT_DAILY_EPSILON_CAP,
            upload_support: false,
            posture: None,
            problems: Vec::new(),
        }
    }

    /// Whether telemetry is on for this process: one atomic load.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Records one event: randomised on the spot and kept in memory until [`Telemetry::flush`]
    /// (or drop). When telemetry is off this is one atomic load: no allocation, no I/O,
    /// no randomness.
    ///
    /// An event kind's repeated values cost a hash and a few atomic loads: they are sent once
    /// per payload, and memory grows with the distinct values of an event kind (at most
    /// [`MAX_REPORTS_PER_EVENT`](crate::MAX_REPORTS_PER_EVENT)), not with calls. An
    /// unregistered event, or values that do not fit their declaration (a hand-written
    /// [`Event::values`] out of step with [`Event::FIELDS`]), are dropped with a warning
    /// ([`Telemetry::recording_warnings`]) — never stored as `null` or as another label.
    #[inline]
    pub fn record<E: Event>(&self, event: &E) {
        if !self.active.load(Ordering::Relaxed) {
            return;
        }
        if let Some(recorder) = &self.recorder {
            recorder.record(E::NAME, &|out| event.values(out));
        }
    }

    /// Warnings about the app's own use of the API found while recording (an unregistered
    /// event, a value that does not fit its field), each once per run. Also printed on stderr
    /// when found, unless the builder turned printing off.
    pub fn recording_warnings(&self) -> Vec<Warning> {
        self.recorder
            .as_ref()
            .map_or_else(Vec::new, |recorder| recorder.misuse_warnings())
    }

    /// Writes this run's payload (one per run) to `uploads-pending/` — or `previews/` in
    /// preview mode — and returns its path; `Ok(None)` when nothing was recorded.
    pub fn flush(&self) -> Result<Option<PathBuf>, RecordError> {
        let Some(recorder) = &self.recorder else {
            return Ok(None);
        };
        if !self.active.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let written = recorder.flush()?;
        if self.resolved().decision.preview
            && let Some(path) = &written
        {
            let run = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let line = format!(
                "{}: telemetry preview written (never sent): run id {run} at {}\n",
                self.app_name,
                path.display()
            );
            let _ = std::io::stderr()
                .write_all(telemetry_schema::display::escape_for_terminal(&line).as_bytes());
        }
        Ok(written)
    }

    /// Events recorded and not yet flushed.
    pub fn buffered_events(&self) -> usize {
        self.recorder
            .as_ref()
            .map_or(0, |recorder| recorder.buffered())
    }

    /// The app's catalogue: every event it may send, each field's kind, domain and DP
    /// mechanism — derived from the same declarations `record` uses.
    pub fn catalog(&self) -> Result<telemetry_schema::Catalog, telemetry_schema::CatalogError> {
        let events = self
            .builder
            .events()
            .iter()
            .map(EventInfo::spec)
            .collect::<Result<Vec<_>, _>>()?;
        let app =
            telemetry_schema::NameVersion::new(&self.app_name, &self.builder.app_version).ok();
        let catalog = telemetry_schema::Catalog::new(app, events);
        catalog.check()?;
        Ok(catalog)
    }

    /// Turns telemetry off for the rest of this process.
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::Relaxed);
        self.active.store(false, Ordering::Relaxed);
    }

    /// The decision made at start-up, with every input and its provenance. (It does not
    /// reflect a later [`Telemetry::disable`].)
    pub fn decision(&self) -> &Decision {
        &self.resolved().decision
    }

    /// The warnings a handle prints on stderr when it is built (unless the builder turned that
    /// off): every warning, except that under a hard override only those about an override's
    /// own variable.
    pub fn printed_warnings(&self) -> impl Iterator<Item = &Warning> {
        // Switched off by a hard override (DO_NOT_TRACK, <APP>_TELEMETRY, CI): the toolkit
        // says nothing in the host's output (cron, systemd, CI logs) except about an override
        // value it could not read; `status` still lists every warning.
        let resolved = self.resolved();
        let quiet = resolved.decision.hard_override().is_some();
        let (all, quiet_only): (&[Warning], Vec<&Warning>) = if quiet {
            (
                &[],
                quiet_warnings(&resolved.warnings, &resolved.decision.inputs).collect(),
            )
        } else {
            (&resolved.warnings, Vec::new())
        };
        all.iter().chain(quiet_only)
    }

    /// The rest of the decision, worked out now if `build` did not need it.
    fn resolved(&self) -> &Resolved {
        self.resolved.get_or_init(|| {
            let (paths, path_warnings) = self.resolved_paths();
            let mut early_warnings = self.early_warnings.clone();
            early_warnings.extend(path_warnings.iter().cloned());
            let paths = &paths.cloned();
            let (mut resolved, _, _) =
                self.builder
                    .resolve(&self.env, &self.app, paths, early_warnings, None, None);
            // `build` found telemetry off before reading files. Only consent given since then
            // (a token that appeared) can make the files say otherwise; this run stays off, and
            // the decision says why rather than contradict `is_enabled`.
            let decision = &mut resolved.decision;
            if decision.enabled {
                decision.inputs.push(Input {
                    stage: Stage::Consent,
                    name: STARTED_OFF_INPUT.into(),
                    value: "off".into(),
                    source: Source::ConsentToken {
                        path: self.paths().map(Paths::consent_token).unwrap_or_default(),
                    },
                    effect: Effect::Disables,
                    reason:
                        "consent was given after this process started; it applies from the next run"
                            .into(),
                });
                decision.decided_by = Some(decision.inputs.len() - 1);
                decision.enabled = false;
            }
            Box::new(resolved)
        })
    }

    /// Every warning found while deciding (what `status` lists).
    pub fn warnings(&self) -> &[Warning] {
        &self.resolved().warnings
    }

    /// The app name as given to the builder.
    pub fn app_name(&self) -> &str {
        &self.app_name
    }

    /// The validated app name (`None` when the builder got an invalid one).
    pub fn app(&self) -> Option<&AppName> {
        self.app.as_ref()
    }

    /// The app version.
    pub fn app_version(&self) -> &str {
        &self.builder.app_version
    }

    /// The release policy.
    pub fn policy(&self) -> ReleasePolicy {
        self.builder.policy
    }

    /// The app directory's paths (`None` when no directory could be resolved).
    pub fn paths(&self) -> Option<&Paths> {
        self.resolved_paths().0
    }

    /// The paths and, if resolved only now, the warnings resolving them gave.
    fn resolved_paths(&self) -> (Option<&Paths>, &[Warning]) {
        match &self.paths {
            AppPaths::Resolved(paths) => (paths.as_ref(), &[]),
            AppPaths::Deferred(lazy) => {
                let (paths, warnings) = lazy.get_or_init(|| {
                    resolve_paths(self.app.as_ref(), self.builder.root.as_deref(), &self.env)
                });
                (paths.as_ref(), warnings)
            }
        }
    }

    /// What was found at the consent token's path.
    pub fn consent_token(&self) -> &TokenState {
        &self.resolved().token
    }

    /// The loaded configuration and its provenance.
    pub fn config(&self) -> &ConfigOutcome {
        &self.resolved().config
    }

    /// The builder this handle was made from (to re-decide, e.g. before an upload).
    pub fn builder_settings(&self) -> &Builder {
        &self.builder
    }

    /// Re-reads everything (environment, config, token) and decides again.
    pub fn redecide(&self) -> Telemetry {
        self.builder
            .clone()
            .env(Env::from_process())
            .build_inspector()
    }

    /// The number of pending payload files (`uploads-pending/*.json`). Creates nothing.
    pub fn pending_payloads(&self) -> usize {
        self.paths()
            .map_or(0, |p| count_json_files(&p.pending_dir()))
    }

    /// A snapshot for `telemetry status`.
    pub fn status(&self) -> StatusReport {
        let Resolved {
            decision,
            token,
            warnings,
            ..
        } = self.resolved();
        let dnt = decision.input("DO_NOT_TRACK");
        let env_var = self.app.as_ref().map(AppName::telemetry_var);
        let env_override = self.app.as_ref().and_then(|app| {
            [app.telemetry_var(), app.disabled_var(), app.enabled_var()]
                .into_iter()
                .filter_map(|name| decision.input(&name))
                .find(|i| i.effect == Effect::Disables)
        });
        StatusReport {
            app: self.app_name.clone(),
            enabled: decision.enabled,
            preview: decision.preview,
            policy: self.builder.policy,
            decided_by: decision.decided_by_label(),
            do_not_track_active: dnt.is_some_and(|i| i.effect == Effect::Disables),
            do_not_track_value: dnt.map(|i| i.value.clone()).unwrap_or_default(),
            env_override_active: env_override.is_some(),
            env_override_var: env_override
                .map(|i| i.name.clone())
                .or(env_var)
                .unwrap_or_default(),
            env_override_value: env_override.map(|i| i.value.clone()),
            consent_token: token.label().to_owned(),
            consent_token_detail: match &token {
                TokenState::Absent => None,
                TokenState::Valid(t) => Some(format!(
                    "consent version {} given {}",
                    t.consent_version, t.given_at
                )),
                TokenState::Outdated { token, required } => Some(format!(
                    "for consent version {}, but version {required} is required: not consent",
                    token.consent_version
                )),
                TokenState::Refused(why) => Some(why.clone()),
            },
            consent_token_path: self.paths().map(Paths::consent_token),
            pending_payloads: self.pending_payloads(),
            pending_dir: self.paths().map(Paths::pending_dir),
            directory: self.paths().map(|p| p.root().to_owned()),
            inputs: decision.inputs.clone(),
            warnings: warnings.iter().map(ToString::to_string).collect(),
            budget: self.budget(),
            posture: self.builder.posture.clone(),
        }
    }

    /// The daily privacy budget, what is spent today (read from the ledger, never written)
    /// and what the cap allows each declared event.
    pub fn budget(&self) -> crate::budget::Budget {
        let cap = self.builder.daily_epsilon_cap;
        let events = self.builder.events();
        let fields = events.iter().flat_map(|e| {
            e.fields
                .iter()
                .map(move |f| (e.name, f.name(), f.epsilon()))
        });
        let ledger = self.paths().map(Paths::ledger_file);
        crate::budget::Budget {
            daily_cap: cap,
            spent_today: ledger
                .as_deref()
                .and_then(|l| crate::recorder::spent_today(l, crate::time::today()))
                .map(|spent| spent.min(cap)),
            ledger,
            events: crate::budget::allowance(cap, fields),
        }
    }
}

impl Drop for Telemetry {
    /// Flushes what was recorded. Never panics and never blocks on anything but the local
    /// disk; a failure is a warning, not a change to the host's exit code.
    fn drop(&mut self) {
        if self.buffered_events() == 0 {
            return;
        }
        if let Err(err) = self.flush() {
            let line = format!(
                "{}: telemetry: warning: payload not written ({err}); telemetry is off for this run\n",
                self.app_name
            );
            let _ = std::io::stderr()
                .write_all(telemetry_schema::display::escape_for_terminal(&line).as_bytes());
        }
    }
}

/// The version of the compiler that built this crate — in a cargo build, the one that built
/// the host app too (cargo compiles a whole dependency graph with one `rustc`). Read by
/// `build.rs`; `None` when it could not tell.
const RUSTC_VERSION: Option<&str> = option_env!("TELEMETRY_CORE_RUSTC_VERSION");

fn count_json_files(dir: &std::path::Path) -> usize {
    store::list_dir(dir).map_or(0, |entries| {
        entries
            .iter()
            .filter(|e| {
                std::path::Path::new(&e.name)
                    .extension()
                    .is_some_and(|x| x == "json")
                    && e.is_regular_file()
            })
            .count()
    })
}

/// What `telemetry status` shows; its JSON form is `telemetry status --json`.
#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    /// The app.
    pub app: String,
    /// Effective state.
    pub enabled: bool,
    /// Preview mode (`<APP>_TELEMETRY=preview`).
    pub preview: bool,
    /// Release policy.
    pub policy: ReleasePolicy,
    /// What decided, with its source.
    pub decided_by: String,
    /// Whether `DO_NOT_TRACK` disables.
    pub do_not_track_active: bool,
    /// `DO_NOT_TRACK`'s value (`unset` when absent).
    pub do_not_track_value: String,
    /// Whether an `<APP>_TELEMETRY*` variable disables.
    pub env_override_active: bool,
    /// The active override variable, else `<APP>_TELEMETRY`.
    pub env_override_var: String,
    /// The active override's value.
    pub env_override_value: Option<String>,
    /// `"absent"`, `"present"` or `"refused"`.
    pub consent_token: String,
    /// Details: version and date, or why it was refused.
    pub consent_token_detail: Option<String>,
    /// Where the token lives.
    pub consent_token_path: Option<PathBuf>,
    /// Number of pending payloads.
    pub pending_payloads: usize,
    /// Where pending payloads live.
    pub pending_dir: Option<PathBuf>,
    /// The app directory.
    pub directory: Option<PathBuf>,
    /// Every input of the decision.
    pub inputs: Vec<Input>,
    /// Warnings, as text.
    pub warnings: Vec<String>,
    /// The daily privacy budget and what it allows the app's events.
    pub budget: crate::budget::Budget,
    /// Where the app explains its telemetry ([`Builder::posture`]), if it says.
    pub posture: Option<String>,
}

// Modes of the Unix store.
#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use super::*;

    /// The quick reading in `build` agrees with the explained one on every combination of
    /// values: off exactly when the overrides disable with no warning and no preview.
    #[test]
    fn a_run_switched_off_by_an_override_resolves_its_paths_when_asked_and_alike() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        for (xdg, expected) in [
            (None, dir.path().join(".config/acme")),
            // A relative XDG_CONFIG_HOME is ignored with a warning, read late as early.
            (Some("relative/xdg"), dir.path().join(".config/acme")),
            (Some("/abs/xdg"), PathBuf::from("/abs/xdg/acme")),
        ] {
            let env = |dnt: bool| {
                let mut pairs = vec![("HOME", home)];
                pairs.extend(xdg.map(|x| ("XDG_CONFIG_HOME", x)));
                if dnt {
                    pairs.push(("DO_NOT_TRACK", "1"));
                }
                Env::from_pairs(pairs)
            };
            let build = |dnt: bool| {
                Telemetry::builder("acme")
                    .env(env(dnt))
                    .print_warnings(false)
                    .build()
            };
            let (off, consulted) = (build(true), build(false));
            assert!(
                off.resolved.get().is_none(),
                "DO_NOT_TRACK decides before any file"
            );
            assert!(
                matches!(&off.paths, AppPaths::Deferred(lazy) if lazy.get().is_none()),
                "nor are its paths resolved at build"
            );
            assert_eq!(off.paths().map(Paths::root), Some(expected.as_path()));
            assert_eq!(off.paths(), consulted.paths());
            let messages = |t: &Telemetry| -> Vec<String> {
                t.warnings()
                    .iter()
                    .map(|w| w.to_string())
                    .filter(|m| m.contains("XDG_CONFIG_HOME"))
                    .collect()
            };
            assert_eq!(messages(&off), messages(&consulted), "{xdg:?}");
            assert_eq!(
                messages(&off).len(),
                usize::from(xdg == Some("relative/xdg"))
            );
        }
    }

    #[test]
    fn quick_overrides_agree_with_the_explained_ones() {
        let app = AppName::new("acme").unwrap();
        let values = [
            None,
            Some("1"),
            Some("0"),
            Some("true"),
            Some("off"),
            Some("preview"),
            Some("maybe"),
            Some(""),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for dnt in values {
            for own in values {
                for alias in [None, Some("1"), Some("0"), Some("maybe")] {
                    for ci in [None, Some("true")] {
                        for ci_detection in [true, false] {
                            let pairs = [
                                ("DO_NOT_TRACK", dnt),
                                ("ACME_TELEMETRY", own),
                                ("ACME_TELEMETRY_DISABLED", alias),
                                ("ACME_TELEMETRY_ENABLED", alias),
                                ("GITHUB_ACTIONS", ci),
                            ];
                            let env = Env::from_pairs(
                                pairs.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))),
                            );
                            let (mut inputs, mut warnings, mut preview) =
                                (Vec::new(), Vec::new(), false);
                            hard_overrides(
                                &app,
                                &env,
                                ci_detection,
                                &mut inputs,
                                &mut warnings,
                                &mut preview,
                            );
                            let explained = if preview || !warnings.is_empty() {
                                QuickOverrides::NeedsExplaining
                            } else if inputs.iter().any(|i| i.effect == Effect::Disables) {
                                QuickOverrides::Off
                            } else {
                                QuickOverrides::Inactive
                            };
                            let quick = quick_overrides(&app, &env, ci_detection);
                            assert_eq!(quick, explained, "{pairs:?}, CI detection {ci_detection}");
                            seen.insert(format!("{quick:?}"));
                        }
                    }
                }
            }
        }
        assert_eq!(seen.len(), 3, "every reading was exercised: {seen:?}");
    }

    fn builder(home: &Path, root: &Path, extra: &[(&str, &str)]) -> Builder {
        let mut vars = vec![("HOME", home.as_os_str())];
        vars.extend(extra.iter().map(|(k, v)| (*k, std::ffi::OsStr::new(*v))));
        Telemetry::builder("acme")
            .env(Env::from_pairs(vars))
            .root(root)
            .print_warnings(false)
            .notice(NoticeMode::Never)
    }

    fn everything_under(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                out.extend(everything_under(&path));
            }
            out.push(path);
        }
        out.sort();
        out
    }

    /// Issue #16: an app directory group or others may write to is refused — the decision is
    /// disabled by it (an input `status` lists, with the `chmod go-w` that fixes it), nothing
    /// is recorded or written into it, not even a preview, and `enable` refuses. Readable is
    /// fine.
    #[test]
    fn an_app_directory_others_may_write_to_disables_and_says_how_to_fix_it() {
        let home = tempfile::tempdir().unwrap();
        let root = home.path().join("acme");
        builder(home.path(), &root, &[])
            .build_inspector()
            .enable()
            .unwrap();
        for mode in [0o700, 0o755, 0o750, 0o705] {
            std::fs::set_permissions(&root, std::fs::Permissions::from_mode(mode)).unwrap();
            let t = builder(home.path(), &root, &[]).build_inspector();
            assert!(t.is_enabled(), "{mode:o}: {:?}", t.warnings());
        }
        for mode in [0o777, 0o775, 0o770, 0o722, 0o1777] {
            std::fs::set_permissions(&root, std::fs::Permissions::from_mode(mode)).unwrap();
            let before = everything_under(&root);
            let t = builder(home.path(), &root, &[]).build_inspector();
            assert!(!t.is_enabled(), "{mode:o}");
            let input = t.decision().deciding_input().expect("decided by an input");
            assert_eq!(input.name, "app directory", "{mode:o}");
            assert_eq!(input.effect, Effect::Disables);
            assert_eq!(input.source, Source::AppDirectory { path: root.clone() });
            let fix = format!("chmod go-w {}", root.display());
            assert!(input.reason.contains(&fix), "{}", input.reason);
            assert!(
                t.warnings()
                    .iter()
                    .any(|w| w.location == Location::Path(root.clone())
                        && w.message.contains(&fix)),
                "{:?}",
                t.warnings()
            );
            assert!(t.status().warnings.iter().any(|w| w.contains(&fix)));
            assert!(matches!(
                t.enable(),
                Err(crate::EnableError::UntrustedDirectory(_))
            ));
            for extra in [&[][..], &[("ACME_TELEMETRY", "preview")][..]] {
                let t = builder(home.path(), &root, extra).build();
                assert!(!t.is_enabled());
                t.record(&ComponentInitialized {
                    component: 0,
                    sdk_version: "1.0.0",
                    runtime_version: Some("1.89.0"),
                });
                assert_eq!(t.flush().unwrap(), None, "{mode:o} {extra:?}");
            }
            assert_eq!(
                everything_under(&root),
                before,
                "{mode:o}: something was written"
            );
        }
    }
}
