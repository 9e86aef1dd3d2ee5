//! `cargo xtask bench-collector [--payloads N] [--connections C] [--stored N] [--compare N]
//! [--runs N] [--no-wrk] [--quick] [--profile NAME]`: whole-process figures of the collector
//! (issue #15), in one run.
//!
//! 1. **Ingest.** `telemetry-collector serve` (built with the `dist` profile, as shipped) on a
//!    fresh SQLite store with the bench's catalogue; a load generator in this process: C std
//!    threads, each with its own kept-alive HTTP/1.1 connection on loopback, sends N distinct
//!    valid payloads (~2.6 KB, 9 fields like an acme payload), bounded by N and by
//!    [`INGEST_MAX_TIME`]. Prints payloads/s, the client's latency p50/p90/p99/max, the CPU of
//!    the collector and of the generator (from `/proc`), and checks that the store holds exactly
//!    the payloads answered 201 (`report --json`). Targets: ≥ 5,000 payloads/s, p99 ≤ 20 ms.
//!    Then, if `/usr/bin/wrk` is installed (and not `--no-wrk`), a short `wrk` run with a Lua
//!    script making each request's run id distinct, on another fresh store, as a cross-check.
//! 2. **Report.** A store of `--stored` payloads spread over 30 days, seeded **through the
//!    server** (the same generator and client, [`SEED_CONNECTIONS`] connections): every row is
//!    one the collector itself accepted, checked and stored. Then `telemetry-collector report
//!    --store X --json` and the text form, whole processes, median of `--runs`. Target ≤ 1 s.
//! 3. **Side by side.** The first `--compare` of the same payloads (payload `i` is a function of
//!    `i`) as a second store (a copy of the first after its first `--compare` payloads) and as
//!    `<run_id>.json` files: `report --json` against `telemetry --app bench aggregate DIR
//!    --json`, interleaved with the runs of (2), and a correctness check: the same rows, the
//!    same n, estimates and standard errors within 1e-9.
//!
//! Why seeding goes through HTTP and not `telemetry_collector::store::sqlite::Sqlite::insert`
//! in-process (which would be faster): xtask may not depend on telemetry-collector — the edge
//! `xtask -> telemetry-collector` is not in the architecture table that `cargo xtask audit`
//! enforces (rule 1, `xtask/src/audit/edges.rs`) — and going through the server makes every
//! stored row one the server accepted.
//!
//! Not part of `cargo xtask ci`: a measurement, not a test; it prints PASS/MISS and exits 0
//! either way (but fails if a payload is refused, the store count is off or the tools disagree).
//!
//! The generator is only an honest client when optimised (it shares the two cores with the
//! server), so a debug build of xtask (what `cargo xtask` runs) re-runs itself as
//! `cargo run --release -p xtask`. Everything runs in a scratch directory under the target
//! directory, removed afterwards.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail, ensure};
use serde_json::Value;
use telemetry_schema::{
    Arch, Catalog, DailyId, Day, Envelope, EnvelopeSchemaRef, Event, EventSpec, FieldKind,
    FieldPrivacy, FieldSpec, FieldValue, Identifier, Ids, Label, LedgerState, MechanismParams,
    NameVersion, Os, Period, Platform, Privacy, PrivacyUnit, RedactedText, Redaction, RunId,
    SessionId, TextValue, Version, k_rr_probabilities, rr_probabilities, validate_payload,
};

const USAGE: &str = "usage: cargo xtask bench-collector [--payloads N] [--connections C] \
                     [--stored N] [--compare N] [--runs N] [--no-wrk] [--quick] [--profile NAME]";

/// The ingest goal: valid payloads per second, whole server, on the 2-core machine.
const THROUGHPUT_TARGET: f64 = 5_000.0;
/// The ingest goal: the client's 99th percentile latency.
const P99_TARGET: Duration = Duration::from_millis(20);
/// The report goal, whole process, over `--stored` payloads.
const REPORT_TARGET: Duration = Duration::from_secs(1);
/// The load loop stops after this long even if payloads are left.
const INGEST_MAX_TIME: Duration = Duration::from_secs(30);
/// Payloads sent before measuring (not counted in the figures; counted in the store check).
const INGEST_WARMUP: usize = 1_000;
/// How long the `wrk` cross-check runs.
const WRK_TIME: Duration = Duration::from_secs(5);
/// Connections that seed the report's store (more in flight: larger commits).
const SEED_CONNECTIONS: usize = 32;
/// Seeding stops after this long even if payloads are left (the report is then over fewer).
const SEED_MAX_TIME: Duration = Duration::from_secs(300);
/// Days the payloads are spread over (today and the days before).
const DAYS: u64 = 30;
/// Largest difference allowed between the two tools' estimates.
const TOLERANCE: f64 = 1e-9;
/// The environment variable that marks the optimised re-run (so it does not re-run itself).
const CHILD_ENV: &str = "XTASK_BENCH_COLLECTOR_OPTIMISED";

const APP: &str = "bench";
const APP_VERSION: &str = "1.0.0";

struct Options {
    payloads: usize,
    connections: usize,
    stored: usize,
    compare: usize,
    runs: usize,
    wrk: bool,
    profile: String,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let quick = args.iter().any(|a| a == "--quick");
    let mut o = if quick {
        Options {
            payloads: 3_000,
            connections: 8,
            stored: 20_000,
            compare: 5_000,
            runs: 3,
            wrk: true,
            profile: "dist".into(),
        }
    } else {
        Options {
            payloads: 50_000,
            connections: 16,
            stored: 1_000_000,
            compare: 100_000,
            runs: 5,
            wrk: true,
            profile: "dist".into(),
        }
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => continue,
            "--no-wrk" => {
                o.wrk = false;
                continue;
            }
            "--profile" => {
                o.profile = args
                    .next()
                    .filter(|n| !n.is_empty() && !n.starts_with('-'))
                    .with_context(|| format!("--profile needs a profile name; {USAGE}"))?
                    .clone();
                continue;
            }
            _ => {}
        }
        let slot = match arg.as_str() {
            "--payloads" => &mut o.payloads,
            "--connections" => &mut o.connections,
            "--stored" => &mut o.stored,
            "--compare" => &mut o.compare,
            "--runs" => &mut o.runs,
            other => bail!("unknown argument {other:?}; {USAGE}"),
        };
        let value = args
            .next()
            .with_context(|| format!("{arg} needs a number; {USAGE}"))?;
        *slot = value
            .replace('_', "")
            .parse()
            .with_context(|| format!("{arg} {value:?}: not a number; {USAGE}"))?;
    }
    ensure!(
        o.payloads > 0 && o.connections > 0 && o.stored > 0 && o.compare > 0 && o.runs > 0,
        "--payloads, --connections, --stored, --compare and --runs must be at least 1"
    );
    ensure!(
        o.connections <= 256,
        "--connections {} : at most 256 (the server's own limit is 512)",
        o.connections
    );
    o.compare = o.compare.min(o.stored);
    Ok(o)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the repository root")
        .to_path_buf()
}

/// A debug xtask re-runs itself optimised: the load generator shares the two cores with the
/// server, and seeding a million payloads unoptimised (serde, SQLite at -O0) takes minutes.
fn rerun_optimised(args: &[String]) -> anyhow::Result<()> {
    eprintln!(
        "bench-collector: re-running optimised: cargo run --profile opt -p xtask -- bench-collector …"
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "run",
            "--quiet",
            "--profile",
            "opt",
            "-p",
            "xtask",
            "--",
            "bench-collector",
        ])
        .args(args)
        .env(CHILD_ENV, "1")
        .current_dir(repo_root())
        .status()
        .context("running cargo run --release -p xtask")?;
    if !status.success() {
        bail!("the optimised bench-collector exited with {status}");
    }
    Ok(())
}

struct Binaries {
    collector: PathBuf,
    telemetry: PathBuf,
}

/// `cargo build --profile <profile>` of `telemetry-collector` and `telemetry`.
fn build(root: &Path, profile: &str) -> anyhow::Result<Binaries> {
    let mut exes = crate::bench::build_executables(
        root,
        profile,
        "bench-collector",
        &[
            "-p",
            "telemetry-collector",
            "--bin",
            "telemetry-collector",
            "-p",
            "telemetry-cli",
            "--bin",
            "telemetry",
        ],
        &["telemetry-collector", "telemetry"],
    )?;
    let mut take = |name: &str| exes.remove(name).expect("checked by build_executables");
    Ok(Binaries {
        collector: take("telemetry-collector"),
        telemetry: take("telemetry"),
    })
}

// ---------------------------------------------------------------------------------------------
// The bench app: its catalogue and its payloads.

const COMMANDS: [&str; 6] = ["build", "test", "run", "check", "lint", "fmt"];
const COMPONENTS: [&str; 3] = ["core", "cli", "daemon"];
const DURATION_BOUNDS: [u64; 4] = [100, 1_000, 10_000, 60_000];
const RUNTIMES: [&str; 3] = ["1.89.0", "1.90.0", "1.91.1"];
/// Redacted notes (what the core's redactor leaves); `None`: no note that run.
const NOTES: [Option<&str>; 5] = [
    None,
    None,
    None,
    Some("cache miss, rebuilt from scratch"),
    Some("could not open <path>: permission denied"),
];

/// The true distributions behind the generated reports (what the estimates should find).
struct Truth {
    /// Per label of [`COMMANDS`].
    command: [f64; 6],
    /// Per label of [`COMPONENTS`].
    component: [f64; 3],
    /// Per duration bucket 0..=4: mean 1.12.
    duration: [f64; 5],
    /// Uniform over `start..start + len`: mean 39.5.
    files: (i64, u64),
    /// Share of `true`.
    flag: f64,
    /// Uniform over `start..start + len` percent: mean 69.5.
    hit_ratio: (f64, u64),
}

const TRUTH: Truth = Truth {
    command: [0.35, 0.25, 0.2, 0.1, 0.06, 0.04],
    component: [0.5, 0.3, 0.2],
    duration: [0.3, 0.4, 0.2, 0.08, 0.02],
    files: (10, 60),
    flag: 0.3,
    hit_ratio: (40.0, 60),
};

/// The bench's catalogue: nine fields covering every mechanism (k-RR, RR, discrete Laplace on
/// a duration and on an integer, 1BitMean, redaction only, not randomised), like acme's.
fn catalog() -> anyhow::Result<Catalog> {
    let hit_ratio = FieldSpec::new(
        "hit_ratio",
        "Share of cache lookups that hit, in percent (1BitMean, per day).",
        FieldKind::Integer { min: 0, max: 100 },
        MechanismParams::one_bit_mean(0.5, 0, 100)?.with_unit(PrivacyUnit::PerDay),
    )?;
    let catalog = Catalog::new(
        Some(NameVersion::new(APP, APP_VERSION)?),
        vec![
            EventSpec::new(
                "command_run",
                "A command ran.",
                vec![
                    FieldSpec::enumeration("command", "Which command.", &COMMANDS, 1.0)?,
                    FieldSpec::duration(
                        "duration",
                        "How long it took (bucketed).",
                        &DURATION_BOUNDS,
                        1.0,
                    )?,
                    FieldSpec::integer("files", "How many input files.", 0, 100, 0.5)?,
                    FieldSpec::text("note", "The --note text, redacted.", 120)?,
                ],
            )?,
            EventSpec::new(
                "feature_used",
                "Whether the optional feature was used.",
                vec![FieldSpec::bool("flag", "--flag given.", 3f64.ln())?],
            )?,
            EventSpec::new(
                "cache_stats",
                "The day's cache statistics.",
                vec![hit_ratio],
            )?,
            EventSpec::component_initialized(&COMPONENTS, 1.0)?,
        ],
    );
    catalog.check()?;
    Ok(catalog)
}

/// SplitMix64: payload `i` of a set is a pure function of (set, i).
struct Mix(u64);

impl Mix {
    fn new(set: u64, i: u64) -> Self {
        let mut m = Self(set.wrapping_mul(0xA076_1D64_78BD_642F) ^ i);
        m.next();
        m
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let r = self.next().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        out
    }

    /// A uniform draw in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Two-sided geometric noise of scale `scale`, `P(Z = z) ∝ exp(-|z|/scale)`: what discrete
    /// Laplace adds (the difference of two geometric draws; not the core's exact sampler).
    fn discrete_laplace(&mut self, scale: f64) -> i64 {
        let ln_alpha = -1.0 / scale;
        let mut geometric = || (self.unit().ln() / ln_alpha).floor() as i64;
        geometric() - geometric()
    }

    /// Index `i` with probability `weights[i]` (weights summing to 1).
    fn pick(&mut self, weights: &[f64]) -> usize {
        let mut u = self.unit();
        for (i, w) in weights.iter().enumerate() {
            if u < *w {
                return i;
            }
            u -= w;
        }
        weights.len() - 1
    }

    /// k-ary randomised response: the true index with probability `p`, else one of the others.
    fn k_rr(&mut self, truth: usize, k: usize, epsilon: f64) -> usize {
        let (p, _) = k_rr_probabilities(epsilon, k);
        if self.unit() < p {
            truth
        } else {
            (truth + 1 + self.below(k as u64 - 1) as usize) % k
        }
    }

    /// A bit that is 1 with probability `p`.
    fn bit(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Everything of a payload that does not depend on `i`: the envelope with its DP blocks.
struct Generator {
    template: Envelope,
    /// The UTC day now (the days of the payloads are this and the 29 before).
    today: Day,
    today_unix: i64,
    /// Run ids of different sets never collide (the set is in their timestamp bits).
    set: u64,
}

fn ident(s: &str) -> Identifier {
    Identifier::new(s).expect("a valid identifier")
}

impl Generator {
    fn new(catalog: &Catalog, set: u64) -> anyhow::Result<Self> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)?
            .as_secs() as i64;
        let dp = catalog
            .events
            .iter()
            .flat_map(|e| {
                e.fields.iter().map(|f| FieldPrivacy {
                    event: e.name.clone(),
                    field: f.name.clone(),
                    params: f.mechanism.clone(),
                })
            })
            .collect();
        let template = Envelope {
            schema: EnvelopeSchemaRef::current(),
            run_id: RunId::from_uuid_bytes([
                0x01, 0x90, 0, 0, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, 0,
            ])?,
            app: NameVersion::new(APP, APP_VERSION)?,
            sdk: NameVersion::new("telemetry-core", "0.5.0")?,
            platform: Platform {
                os: Os::Linux,
                arch: Arch::X86_64,
            },
            ids: Ids {
                session: SessionId::from_bytes([0; 16]),
                daily: DailyId::from_mac(&[0; 32]),
            },
            period: Period {
                day: Day::from_unix_seconds(now)?,
            },
            events: Vec::new(),
            privacy: Privacy {
                redaction: Redaction::from_counts(Version::new("1.0.0")?, 0, 0, 0),
                dp,
                ledger: LedgerState {
                    epsilon_spent: 0.0,
                    epsilon_cap: 8.0,
                    dropped_reports: 0,
                },
            },
        };
        Ok(Self {
            template,
            today: Day::from_unix_seconds(now)?,
            today_unix: now,
            set,
        })
    }

    /// Payload `i` of this generator's set: its run id and its compact JSON bytes.
    fn payload(&self, i: u64) -> anyhow::Result<(String, Vec<u8>)> {
        let e = self.envelope(i)?;
        Ok((e.run_id.to_string(), e.to_json().into_bytes()))
    }

    /// Payload `i` of this generator's set, before serialisation.
    fn envelope(&self, i: u64) -> anyhow::Result<Envelope> {
        let mut r = Mix::new(self.set, i);
        let mut e = self.template.clone();
        // UUIDv7: 48 bits of milliseconds (increasing with i, as real run ids arrive roughly
        // in time order), version 7, variant 10, random rest.
        let ms = 0x0190_0000_0000u64 + (self.set << 36) + i;
        let mut uuid: [u8; 16] = r.bytes();
        uuid[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
        uuid[6] = 0x70 | (uuid[6] & 0x0f);
        uuid[8] = 0x80 | (uuid[8] & 0x3f);
        e.run_id = RunId::from_uuid_bytes(uuid)?;
        e.platform = Platform {
            os: [Os::Linux, Os::Linux, Os::Macos, Os::Windows][r.below(4) as usize],
            arch: [Arch::X86_64, Arch::Aarch64][r.below(2) as usize],
        };
        e.ids = Ids {
            session: SessionId::from_bytes(r.bytes()),
            daily: DailyId::from_mac(&r.bytes()),
        };
        let days_ago = (i % DAYS) as i64;
        e.period.day = Day::from_unix_seconds(self.today_unix - days_ago * 86_400)?;

        // The reports as the core sends them: true values drawn from [`TRUTH`]'s distributions,
        // then randomised with each field's own mechanism and parameters, so the estimates
        // recover the truth (within their standard errors).
        let truth = r.pick(&TRUTH.command);
        let command = COMMANDS[r.k_rr(truth, COMMANDS.len(), 1.0)];
        let truth = r.pick(&TRUTH.component);
        let component = COMPONENTS[r.k_rr(truth, COMPONENTS.len(), 1.0)];
        let duration = r.pick(&TRUTH.duration) as i64 + r.discrete_laplace(4.0);
        let files = TRUTH.files.0 + r.below(TRUTH.files.1) as i64 + r.discrete_laplace(200.0);
        let (p_rr, _) = rr_probabilities(3f64.ln());
        let flag = {
            let truth = r.bit(TRUTH.flag);
            if r.bit(p_rr) { truth } else { !truth }
        };
        let hit_ratio = {
            let (p, q) = rr_probabilities(0.5);
            let x = TRUTH.hit_ratio.0 + r.below(TRUTH.hit_ratio.1) as f64;
            r.bit(q + x / 100.0 * (p - q))
        };
        let note = NOTES[r.below(NOTES.len() as u64) as usize];
        let mut run = vec![
            (
                ident("command"),
                Some(FieldValue::Label(Label::new(command)?)),
            ),
            (ident("duration"), Some(FieldValue::Integer(duration))),
            (ident("files"), Some(FieldValue::Integer(files))),
            (
                ident("note"),
                note.map(|t| {
                    RedactedText::new(t).map(|redacted| FieldValue::Text(TextValue { redacted }))
                })
                .transpose()?,
            ),
        ];
        run.sort_by(|a, b| a.0.cmp(&b.0));
        let (clean, redacted) = match note {
            Some(t) if t.contains('<') => (0, 1),
            Some(_) => (1, 0),
            None => (0, 0),
        };
        e.privacy.redaction = Redaction::from_counts(Version::new("1.0.0")?, clean, redacted, 0);
        e.events = vec![
            Event {
                name: ident("component_initialized"),
                fields: [
                    (
                        ident("component"),
                        Some(FieldValue::Label(Label::new(component)?)),
                    ),
                    (
                        ident("runtime_version"),
                        Some(FieldValue::Version(Version::new(
                            RUNTIMES[r.below(RUNTIMES.len() as u64) as usize],
                        )?)),
                    ),
                    (
                        ident("sdk_version"),
                        Some(FieldValue::Version(Version::new("0.5.0")?)),
                    ),
                ]
                .into_iter()
                .collect(),
            },
            Event {
                name: ident("command_run"),
                fields: run.into_iter().collect(),
            },
            Event {
                name: ident("feature_used"),
                fields: [(ident("flag"), Some(FieldValue::Bool(flag)))].into(),
            },
            Event {
                name: ident("cache_stats"),
                fields: [(ident("hit_ratio"), Some(FieldValue::Bool(hit_ratio)))].into(),
            },
        ];
        e.privacy.ledger.epsilon_spent = 1.0 + 1.0 + 0.5 + 3f64.ln() + 0.5 + 1.0;
        Ok(e)
    }

    /// What the collector checks of a body (`ingest::accept`): the schema, the URL's run id and
    /// app, the day, and the catalogue. The server checks every payload again.
    fn check(&self, catalog: &Catalog, run_id: &str, body: &[u8]) -> anyhow::Result<()> {
        let valid = validate_payload(body).map_err(|e| anyhow::anyhow!("{e}"))?;
        let e = &valid.envelope;
        ensure!(e.run_id.as_str() == run_id && e.app.name.as_str() == APP);
        ensure!(
            e.period.day <= self.today,
            "payload day {} is in the future",
            e.period.day
        );
        catalog
            .check_payload(e, 20)
            .map_err(|m| anyhow::anyhow!("{m}"))?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Processes and /proc.

/// A child process killed (by its pid) and reaped on drop unless it was waited for.
struct Running(Option<Child>);

impl Running {
    fn pid(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// SIGTERM (graceful shutdown), then waits up to `grace` before killing it.
    fn terminate(&mut self, grace: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self.0.take().context("already stopped")?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if started.elapsed() > grace {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "did not stop within {} s of SIGTERM; killed",
                    grace.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `(name, CPU time user + system)` of a `/proc/.../stat` line (USER_HZ = 100).
fn parse_stat(stat: &str) -> Option<(String, Duration)> {
    let name = &stat[stat.find('(')? + 1..stat.rfind(')')?];
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((name.to_owned(), Duration::from_millis(ticks * 10)))
}

/// CPU time of process `pid` (or `self`) so far, from `/proc/PID/stat`.
fn cpu_time(pid: &str) -> Option<Duration> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?).map(|(_, t)| t)
}

/// CPU time of process `pid`'s live threads so far, summed by thread name.
fn thread_times(pid: &str) -> BTreeMap<String, Duration> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.filter_map(Result::ok) {
        if let Some((name, t)) = std::fs::read_to_string(task.path().join("stat"))
            .ok()
            .as_deref()
            .and_then(parse_stat)
        {
            // The main thread bears the (truncated) process name.
            let name = if name.starts_with("telemetry-col") {
                "main".to_owned()
            } else {
                name
            };
            *out.entry(name).or_default() += t;
        }
    }
    out
}

/// Cores, CPU model and memory, from `/proc`.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        })
        .map_or_else(
            || "unknown".into(),
            |kb| format!("{:.0} GB", kb as f64 / 1048576.0),
        );
    format!(
        "{} cores ({model}), {memory} RAM",
        std::thread::available_parallelism().map_or(0, usize::from)
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// `telemetry-collector serve` on `store`; returns the child and the address it printed.
fn serve(
    bins: &Binaries,
    store: &Path,
    catalog: &Path,
    log: &Path,
) -> anyhow::Result<(Running, SocketAddr)> {
    let log_file = std::fs::File::create(log)?;
    let mut child = Command::new(&bins.collector)
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--store"])
        .arg(store)
        .arg("--catalog")
        .arg(catalog)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .spawn()
        .context("starting telemetry-collector serve")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let running = Running(Some(child));
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first)?;
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .and_then(|a| a.strip_suffix('/'))
        .and_then(|a| a.parse().ok())
        .with_context(|| {
            format!(
                "serve printed {first:?} first; its log: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        })?;
    Ok((running, addr))
}

/// `telemetry-collector report --store STORE --json`, parsed.
fn report_json(bins: &Binaries, store: &Path) -> anyhow::Result<Value> {
    let output = Command::new(&bins.collector)
        .arg("report")
        .arg("--store")
        .arg(store)
        .arg("--json")
        .env_clear()
        .stdin(Stdio::null())
        .output()?;
    ensure!(
        output.status.success(),
        "report exited with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

fn stored_payloads(report: &Value) -> u64 {
    report
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["payloads"].as_u64())
        .sum()
}

// ---------------------------------------------------------------------------------------------
// The load generator: a minimal HTTP/1.1 client.

/// One `POST /submit/APP/RUN_ID` with its head and body in one buffer.
fn request(addr: SocketAddr, run_id: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST /submit/{APP}/{run_id} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

struct Connection {
    addr: SocketAddr,
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        Ok(Self {
            addr,
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    fn reconnect(&mut self) -> std::io::Result<()> {
        *self = Self::open(self.addr)?;
        Ok(())
    }

    /// Sends `request` and reads one response: its status and whether the server closes.
    fn exchange(&mut self, request: &[u8]) -> anyhow::Result<(u16, bool)> {
        self.stream.write_all(request)?;
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let n = self.stream.read(&mut chunk)?;
            ensure!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).context("response head")?;
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line in {head:?}"))?;
        let (mut length, mut close) = (0usize, false);
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().context("content-length")?;
                } else if name.eq_ignore_ascii_case("connection") {
                    close = value.eq_ignore_ascii_case("close");
                }
            }
        }
        while self.buf.len() < head_end + length {
            let n = self.stream.read(&mut chunk)?;
            ensure!(n > 0, "the server closed the connection mid-body");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        self.buf.drain(..head_end + length);
        Ok((status, close))
    }
}

#[derive(Default)]
struct LoadResult {
    latencies: Vec<Duration>,
    created: usize,
    repeated: usize,
    busy: usize,
    /// Payloads not sent: the time bound was reached.
    unsent: usize,
    other: BTreeMap<u16, usize>,
    errors: Vec<String>,
    elapsed: Duration,
}

/// Where a load's requests come from: request `i` of `count`.
type Source = Arc<dyn Fn(usize) -> Vec<u8> + Send + Sync>;

/// Sends requests `0..count` of `source` over `connections` kept-alive connections, until all
/// are sent or `limit` has passed. A 503 (overloaded) is counted and the same payload sent
/// again 5 ms later; latencies are those of the final attempts.
fn load(
    addr: SocketAddr,
    source: Source,
    count: usize,
    connections: usize,
    limit: Duration,
) -> anyhow::Result<LoadResult> {
    let next = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(connections + 1));
    let mut threads = Vec::new();
    for _ in 0..connections {
        let (source, next, barrier) = (source.clone(), next.clone(), barrier.clone());
        threads.push(std::thread::spawn(move || -> LoadResult {
            let mut out = LoadResult::default();
            let connection = Connection::open(addr);
            barrier.wait();
            let started = Instant::now();
            let mut connection = match connection {
                Ok(c) => c,
                Err(e) => {
                    out.errors.push(format!("connect: {e}"));
                    return out;
                }
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                if started.elapsed() > limit {
                    out.unsent += 1;
                    continue;
                }
                let request = source(i);
                loop {
                    let t0 = Instant::now();
                    let answer = connection.exchange(&request);
                    let took = t0.elapsed();
                    match answer {
                        Ok((status, close)) => {
                            match status {
                                201 => out.created += 1,
                                200 => out.repeated += 1,
                                503 => out.busy += 1,
                                s => *out.other.entry(s).or_default() += 1,
                            }
                            if close && let Err(e) = connection.reconnect() {
                                out.errors.push(format!("reconnect: {e}"));
                                return out;
                            }
                            if status == 503 {
                                if started.elapsed() < limit {
                                    std::thread::sleep(Duration::from_millis(5));
                                    continue;
                                }
                                out.unsent += 1;
                                break;
                            }
                            out.latencies.push(took);
                        }
                        Err(e) => {
                            out.errors.push(e.to_string());
                            if connection.reconnect().is_err() {
                                return out;
                            }
                        }
                    }
                    break;
                }
            }
            out.elapsed = started.elapsed();
            out
        }));
    }
    barrier.wait();
    let mut total = LoadResult::default();
    for t in threads {
        let r = t
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))?;
        total.latencies.extend(r.latencies);
        total.created += r.created;
        total.repeated += r.repeated;
        total.busy += r.busy;
        total.unsent += r.unsent;
        for (s, n) in r.other {
            *total.other.entry(s).or_default() += n;
        }
        total.errors.extend(r.errors);
        total.elapsed = total.elapsed.max(r.elapsed);
    }
    total.latencies.sort();
    Ok(total)
}

/// The sample at quantile `q` (0..=1) of sorted `samples`.
fn quantile(samples: &[Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let i = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

struct IngestFigures {
    rate: f64,
    p99: Duration,
}

fn ingest(
    bins: &Binaries,
    scratch: &Path,
    catalog_file: &Path,
    catalog: &Catalog,
    o: &Options,
) -> anyhow::Result<IngestFigures> {
    let generator = Generator::new(catalog, 2)?;
    let started = Instant::now();
    let total = INGEST_WARMUP + o.payloads;
    let mut payloads = Vec::with_capacity(total);
    for i in 0..total as u64 {
        payloads.push(generator.payload(i)?);
    }
    // The server checks every one; a few are checked here so a bad generator fails clearly.
    for (run_id, body) in payloads.iter().step_by(997) {
        generator
            .check(catalog, run_id, body)
            .context("a generated payload does not fit")?;
    }
    let mean = payloads.iter().map(|p| p.1.len()).sum::<usize>() / payloads.len();
    println!(
        "ingest: {total} distinct payloads generated in {:.1} s (mean {mean} bytes), the first {} \
         as warm-up",
        started.elapsed().as_secs_f64(),
        INGEST_WARMUP
    );

    let store = scratch.join("ingest.db");
    let (mut server, addr) = serve(bins, &store, catalog_file, &scratch.join("serve.log"))?;
    let pid = server.pid().to_string();
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        payloads
            .iter()
            .map(|(id, b)| request(addr, id, b))
            .collect(),
    );
    drop(payloads);
    let warm_source: Source = {
        let requests = requests.clone();
        Arc::new(move |i| requests[i].clone())
    };
    let warm = load(
        addr,
        warm_source,
        INGEST_WARMUP,
        o.connections,
        INGEST_MAX_TIME,
    )?;
    ensure!(
        warm.errors.is_empty() && warm.other.is_empty(),
        "warm-up: errors {:?}, statuses {:?}",
        warm.errors.first(),
        warm.other
    );
    let measured: Source = {
        let requests = requests.clone();
        Arc::new(move |i| requests[INGEST_WARMUP + i].clone())
    };

    println!("load average before: {}", load_average());
    let (server_cpu0, self_cpu0, threads0) = (cpu_time(&pid), cpu_time("self"), thread_times(&pid));
    let r = load(addr, measured, o.payloads, o.connections, INGEST_MAX_TIME)?;
    let (server_cpu1, self_cpu1, threads1) = (cpu_time(&pid), cpu_time("self"), thread_times(&pid));
    println!("load average after:  {}", load_average());
    let status = server.terminate(Duration::from_secs(30))?;
    drop(requests);
    let log = std::fs::read_to_string(scratch.join("serve.log")).unwrap_or_default();
    ensure!(status.success(), "serve exited with {status}: {log}");

    let answered = r.created + r.repeated;
    let rate = answered as f64 / r.elapsed.as_secs_f64();
    println!(
        "ingest: {answered} payloads answered in {:.2} s over {} connections: {rate:.0} payloads/s \
         ({} new, {} repeated, {} answered 503 and re-sent, {} unsent at the time bound)",
        r.elapsed.as_secs_f64(),
        o.connections,
        r.created,
        r.repeated,
        r.busy,
        r.unsent
    );
    let l = &r.latencies;
    println!(
        "ingest: latency p50 {}  p90 {}  p99 {}  max {}",
        ms(quantile(l, 0.5)),
        ms(quantile(l, 0.9)),
        ms(quantile(l, 0.99)),
        ms(quantile(l, 1.0))
    );
    let wall = r.elapsed.as_secs_f64();
    let pct = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.0}%", (b - a).as_secs_f64() / wall * 100.0),
        _ => "unknown".into(),
    };
    let by_thread: Vec<String> = threads1
        .iter()
        .map(|(name, t1)| {
            let t0 = threads0.get(name).copied().unwrap_or_default();
            format!("{name} {}", pct(Some(t0), Some(*t1)))
        })
        .collect();
    println!(
        "ingest: CPU during the measured load (of {}% on this machine): collector {} ({}), \
         generator {}",
        100 * std::thread::available_parallelism().map_or(1, usize::from),
        pct(server_cpu0, server_cpu1),
        by_thread.join(", "),
        pct(self_cpu0, self_cpu1)
    );
    if let Some(line) = log.lines().find(|l| l.contains("stopped")) {
        println!(
            "ingest: collector: {}",
            line.trim_start_matches("telemetry-collector: ")
        );
    }
    if !r.errors.is_empty() || !r.other.is_empty() {
        bail!(
            "ingest: {} errors (first: {:?}), other statuses {:?}",
            r.errors.len(),
            r.errors.first(),
            r.other
        );
    }
    let in_store = stored_payloads(&report_json(bins, &store)?);
    let expected = (warm.created + r.created) as u64;
    ensure!(
        in_store == expected,
        "the store holds {in_store} payloads; {expected} were answered 201"
    );
    println!(
        "ingest: the store holds {in_store} payloads = every one answered 201 (warm-up included)"
    );
    Ok(IngestFigures {
        rate,
        p99: quantile(l, 0.99),
    })
}

/// A short `wrk` run (Debian's, with LuaJIT) on a fresh store: each request a distinct run id
/// in an otherwise identical payload. A cross-check of the generator, not the main figure.
fn wrk(
    bins: &Binaries,
    scratch: &Path,
    catalog_file: &Path,
    catalog: &Catalog,
    o: &Options,
) -> anyhow::Result<()> {
    let generator = Generator::new(catalog, 3)?;
    let (run_id, body) = generator.payload(0)?;
    let body = String::from_utf8(body)?;
    // The last 12 hex digits of the run id are replaced by thread number and counter.
    let prefix = &run_id[..24];
    let template = body.replace(&run_id, "RUNID");
    ensure!(!template.contains("]==]"));
    let script = format!(
        r#"local template = [==[{template}]==]
local prefix = "{prefix}"
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local n = 0
local headers = {{ ["content-type"] = "application/json" }}
function request()
  n = n + 1
  local id = prefix .. string.format("%04x%08x", tid, n)
  local payload = string.gsub(template, "RUNID", id)
  return wrk.format("POST", "/submit/{APP}/" .. id, headers, payload)
end
"#
    );
    let script_path = scratch.join("wrk.lua");
    std::fs::write(&script_path, script)?;
    let store = scratch.join("wrk.db");
    let (mut server, addr) = serve(bins, &store, catalog_file, &scratch.join("wrk-serve.log"))?;
    let output = Command::new("/usr/bin/wrk")
        .args([
            "-t2",
            &format!("-c{}", o.connections),
            "--latency",
            "--timeout",
            "5s",
        ])
        .arg(format!("-d{}s", WRK_TIME.as_secs()))
        .arg("-s")
        .arg(&script_path)
        .arg(format!("http://{addr}/"))
        .stdin(Stdio::null())
        .output()
        .context("running wrk")?;
    let status = server.terminate(Duration::from_secs(30))?;
    ensure!(status.success(), "serve (wrk) exited with {status}");
    let text = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "wrk exited with {}: {text}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    println!(
        "wrk (-t2 -c{}, {} s, cross-check):",
        o.connections,
        WRK_TIME.as_secs()
    );
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("50%")
            || t.starts_with("90%")
            || t.starts_with("99%")
            || t.starts_with("Latency ")
            || t.contains("requests in")
            || t.starts_with("Requests/sec")
            || t.starts_with("Non-2xx")
            || t.starts_with("Socket errors")
        {
            println!("  {t}");
        }
    }
    let in_store = stored_payloads(&report_json(bins, &store)?);
    println!("  store: {in_store} payloads (wrk counts only the requests it saw answered)");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Seeding a store (through the server), and the report figures.

/// Seeds `store` through a collector with payloads `range` of `generator`'s set, generated as
/// they are sent; returns how many were stored (fewer than asked only at [`SEED_MAX_TIME`]).
fn seed(
    bins: &Binaries,
    scratch: &Path,
    catalog_file: &Path,
    generator: &Arc<Generator>,
    range: std::ops::Range<usize>,
    store: &Path,
) -> anyhow::Result<usize> {
    let log = scratch.join("seed.log");
    let (mut server, addr) = serve(bins, store, catalog_file, &log)?;
    let (start, count) = (range.start, range.len());
    let g = generator.clone();
    let source: Source = Arc::new(move |i| {
        let (id, body) = g
            .payload((start + i) as u64)
            .expect("the generator makes valid envelopes");
        request(addr, &id, &body)
    });
    let r = load(addr, source, count, SEED_CONNECTIONS, SEED_MAX_TIME)?;
    let status = server.terminate(Duration::from_secs(60))?;
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    ensure!(
        status.success(),
        "serve (seeding) exited with {status}: {log}"
    );
    ensure!(
        r.errors.is_empty() && r.other.is_empty() && r.repeated == 0,
        "seeding: {} errors (first {:?}), other statuses {:?}, {} repeated run ids",
        r.errors.len(),
        r.errors.first(),
        r.other,
        r.repeated
    );
    println!(
        "seed: payloads {start}..{}: {} stored through the server in {:.1} s ({:.0}/s over {} \
         connections, {} answered 503 and re-sent{})",
        range.end,
        r.created,
        r.elapsed.as_secs_f64(),
        r.created as f64 / r.elapsed.as_secs_f64(),
        SEED_CONNECTIONS,
        r.busy,
        if r.unsent > 0 {
            format!(", {} not sent: time bound", r.unsent)
        } else {
            String::new()
        }
    );
    Ok(r.created)
}

/// Copies an SQLite store closed by its server (and its WAL, if one was left).
fn copy_store(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    let wal = |p: &Path| PathBuf::from(format!("{}-wal", p.display()));
    if wal(from).exists() {
        std::fs::copy(wal(from), wal(to))?;
    }
    Ok(())
}

struct Case {
    label: String,
    exe: PathBuf,
    args: Vec<String>,
    env_home: Option<PathBuf>,
}

impl Case {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.exe);
        c.args(&self.args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(home) = &self.env_home {
            c.env("HOME", home);
        }
        c
    }
}

/// The rows `(event, field, value, mechanism, epsilon)` → `(n, estimate, standard_error)` of
/// a `report --json` (app `bench`) or of `telemetry aggregate --json`.
type Rows = BTreeMap<String, (u64, f64, f64)>;

fn row_of(r: &Value) -> Option<(String, (u64, f64, f64))> {
    let key = format!(
        "{}.{} {} [{} ε {}]",
        r["event"].as_str()?,
        r["field"].as_str()?,
        r["value"].as_str().unwrap_or("(mean)"),
        r["mechanism"].as_str()?,
        r["epsilon"]
    );
    Some((
        key,
        (
            r["n"].as_u64()?,
            r["estimate"].as_f64()?,
            r["standard_error"].as_f64()?,
        ),
    ))
}

fn report_rows(report: &Value) -> anyhow::Result<(u64, Rows)> {
    let app = report
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["app"] == APP)
        .context("report --json has no app bench")?;
    let mut rows = Rows::new();
    for f in app["fields"].as_array().into_iter().flatten() {
        for e in f["estimates"].as_array().into_iter().flatten() {
            let (k, v) = row_of(e).with_context(|| format!("report row {e}"))?;
            rows.insert(k, v);
        }
    }
    Ok((app["payloads"].as_u64().unwrap_or(0), rows))
}

fn aggregate_rows(json: &Value) -> anyhow::Result<Rows> {
    let mut rows = Rows::new();
    for r in json.as_array().context("aggregate --json is not a list")? {
        let (k, v) = row_of(r).with_context(|| format!("aggregate row {r}"))?;
        rows.insert(k, v);
    }
    Ok(rows)
}

fn close_enough(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOLERANCE * a.abs().max(b.abs()).max(1.0)
}

/// Runs `telemetry --app bench aggregate DIR --json` and `report --json` on the same set and
/// compares every row; prints the table.
fn compare(bins: &Binaries, store: &Path, dir: &Path, home: &Path, n: usize) -> anyhow::Result<()> {
    let (payloads, from_report) = report_rows(&report_json(bins, store)?)?;
    let output = Command::new(&bins.telemetry)
        .args(["--app", APP, "aggregate"])
        .arg(dir)
        .arg("--json")
        .env_clear()
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()?;
    ensure!(
        output.status.success(),
        "telemetry aggregate exited with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let from_cli = aggregate_rows(&serde_json::from_slice(&output.stdout)?)?;
    ensure!(
        payloads == n as u64,
        "report counts {payloads} payloads of the {n}"
    );
    println!();
    println!(
        "same {n} payloads, `report --json` against `telemetry --app {APP} aggregate DIR --json`:"
    );
    println!(
        "{:<58} {:>8} {:>12} {:>12} {:>10} {:>10}",
        "row", "n", "estimate", "(aggregate)", "SE", "max |Δ|"
    );
    let mut mismatches = Vec::new();
    for key in from_report
        .keys()
        .chain(from_cli.keys().filter(|k| !from_report.contains_key(*k)))
    {
        match (from_report.get(key), from_cli.get(key)) {
            (Some(a), Some(b)) => {
                let delta = (a.1 - b.1).abs().max((a.2 - b.2).abs());
                println!(
                    "{key:<58} {:>8} {:>12.6} {:>12.6} {:>10.6} {:>10.1e}",
                    a.0, a.1, b.1, a.2, delta
                );
                if a.0 != b.0 || !close_enough(a.1, b.1) || !close_enough(a.2, b.2) {
                    mismatches.push(format!("{key}: report {a:?}, aggregate {b:?}"));
                }
            }
            (a, b) => mismatches.push(format!("{key}: report {a:?}, aggregate {b:?}")),
        }
    }
    if mismatches.is_empty() {
        println!(
            "PASS  the tools agree: {} rows, the same n, estimates and standard errors within {TOLERANCE:e}",
            from_report.len()
        );
        Ok(())
    } else {
        for m in &mismatches {
            println!("MISS  {m}");
        }
        bail!(
            "report and telemetry aggregate disagree on {} rows",
            mismatches.len()
        )
    }
}

fn reports(
    bins: &Binaries,
    scratch: &Path,
    catalog_file: &Path,
    catalog: &Catalog,
    o: &Options,
) -> anyhow::Result<(Duration, usize)> {
    let big = scratch.join("report.db");
    let small = scratch.join("compare.db");
    let dir = scratch.join("payloads");
    let home = scratch.join("home");
    std::fs::create_dir_all(&dir)?;
    std::fs::create_dir_all(&home)?;
    let generator = Arc::new(Generator::new(catalog, 1)?);

    // The side-by-side set as files, as `telemetry aggregate` reads them.
    let t = Instant::now();
    for i in 0..o.compare {
        let (run_id, body) = generator.payload(i as u64)?;
        if i % 997 == 0 {
            generator
                .check(catalog, &run_id, &body)
                .context("a generated payload does not fit")?;
        }
        std::fs::write(dir.join(format!("{run_id}.json")), body)?;
    }
    println!(
        "files: payloads 0..{} written as <run_id>.json in {:.1} s",
        o.compare,
        t.elapsed().as_secs_f64()
    );

    let first = seed(bins, scratch, catalog_file, &generator, 0..o.compare, &big)?;
    ensure!(
        first == o.compare,
        "only {first} of the {} side-by-side payloads were stored in {} s",
        o.compare,
        SEED_MAX_TIME.as_secs()
    );
    let separate = o.compare < o.stored;
    if separate {
        copy_store(&big, &small)?;
        seed(
            bins,
            scratch,
            catalog_file,
            &generator,
            o.compare..o.stored,
            &big,
        )?;
    }
    let small = if separate { small } else { big.clone() };
    let s = stored_payloads(&report_json(bins, &big)?) as usize;
    if s != o.stored {
        println!(
            "report: the store holds {s} payloads, not {}: the seeding time bound",
            o.stored
        );
    }
    println!(
        "report: store {:.0} MB for {s} payloads",
        std::fs::metadata(&big)?.len() as f64 / 1e6
    );

    let collector = |label: String, store: &Path, json: bool| Case {
        label,
        exe: bins.collector.clone(),
        args: ["report", "--store", &store.to_string_lossy()]
            .into_iter()
            .map(str::to_owned)
            .chain(json.then(|| "--json".to_owned()))
            .collect(),
        env_home: None,
    };
    let c = o.compare;
    let mut cases = vec![
        collector(format!("report --json ({s})"), &big, true),
        collector(format!("report, text ({s})"), &big, false),
    ];
    if separate {
        cases.push(collector(format!("report --json ({c})"), &small, true));
    }
    cases.push(Case {
        label: format!("telemetry aggregate --json ({c})"),
        exe: bins.telemetry.clone(),
        args: vec![
            "--app".into(),
            APP.into(),
            "aggregate".into(),
            dir.to_string_lossy().into_owned(),
            "--json".into(),
        ],
        env_home: Some(home.clone()),
    });
    for case in &cases {
        let status = case.command().status()?;
        ensure!(status.success(), "{} exited with {status}", case.label);
    }
    println!(
        "report: {} runs of each case after one warm-up, interleaved; load average {}",
        o.runs,
        load_average()
    );
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for i in 0..o.runs {
        for k in 0..cases.len() {
            let j = (i + k) % cases.len();
            let started = Instant::now();
            let status = cases[j].command().status()?;
            samples[j].push(started.elapsed());
            ensure!(status.success(), "{} exited with {status}", cases[j].label);
        }
    }
    for s in &mut samples {
        s.sort();
    }
    println!();
    println!(
        "{:<36} {:>11} {:>11} {:>11}",
        "case", "median", "min", "max"
    );
    for (case, s) in cases.iter().zip(&samples) {
        println!(
            "{:<36} {:>11} {:>11} {:>11}",
            case.label,
            ms(quantile(s, 0.5)),
            ms(s[0]),
            ms(s[s.len() - 1])
        );
    }
    let same_set = quantile(&samples[if separate { 2 } else { 0 }], 0.5);
    let aggregate = quantile(&samples[samples.len() - 1], 0.5);
    println!(
        "side by side on {c} payloads: report --json {}, telemetry aggregate --json {} ({:.0}× the \
         report's time)",
        ms(same_set),
        ms(aggregate),
        aggregate.as_secs_f64() / same_set.as_secs_f64()
    );
    compare(bins, &small, &dir, &home, c)?;
    Ok((quantile(&samples[0], 0.5), s))
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    if cfg!(debug_assertions) && std::env::var_os(CHILD_ENV).is_none() {
        return rerun_optimised(args);
    }
    let started = Instant::now();
    let root = repo_root();
    let bins = build(&root, &options.profile)?;
    let target_dir = bins
        .collector
        .parent()
        .and_then(Path::parent)
        .context("the collector executable has no target directory")?;
    let scratch = crate::bench::Scratch(
        target_dir
            .join("xtask-bench-collector")
            .join(std::process::id().to_string()),
    );
    let _ = std::fs::remove_dir_all(&scratch.0);
    std::fs::create_dir_all(&scratch.0)?;

    let catalog = catalog()?;
    let catalog_json = serde_json::to_string_pretty(&catalog)?;
    let catalog_file = scratch.0.join("catalog.json");
    std::fs::write(&catalog_file, &catalog_json)?;

    println!(
        "bench-collector ({} profile): ingest {} payloads over {} connections; report over {} \
         stored payloads; side by side on {}",
        options.profile, options.payloads, options.connections, options.stored, options.compare,
    );
    println!("machine: {}", machine());
    let figures = ingest(&bins, &scratch.0, &catalog_file, &catalog, &options)?;
    if options.wrk
        && Path::new("/usr/bin/wrk").exists()
        && let Err(e) = wrk(&bins, &scratch.0, &catalog_file, &catalog, &options)
    {
        println!("wrk: skipped: {e:#}");
    }
    println!();
    let (report, stored) = reports(&bins, &scratch.0, &catalog_file, &catalog, &options)?;

    println!();
    let mut missed = 0;
    for (ok, line) in [
        (
            figures.rate >= THROUGHPUT_TARGET,
            format!(
                "ingest: {:.0} payloads/s (target ≥ {THROUGHPUT_TARGET:.0})",
                figures.rate
            ),
        ),
        (
            figures.p99 <= P99_TARGET,
            format!(
                "ingest: p99 {} (target ≤ {})",
                ms(figures.p99),
                ms(P99_TARGET)
            ),
        ),
        (
            report <= REPORT_TARGET,
            format!(
                "report --json over {stored} payloads: {} (target ≤ {})",
                ms(report),
                ms(REPORT_TARGET)
            ),
        ),
    ] {
        missed += usize::from(!ok);
        println!("{}  {line}", verdict(ok));
    }
    println!(
        "bench-collector: {} targets met, {missed} missed; {:.0} s in all",
        3 - missed,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_payloads_fit_the_catalogue_and_are_distinct() {
        let catalog = catalog().unwrap();
        let g = Generator::new(&catalog, 1).unwrap();
        let mut ids = std::collections::BTreeSet::new();
        let mut days = std::collections::BTreeSet::new();
        for i in 0..200 {
            let (id, body) = g.payload(i).unwrap();
            g.check(&catalog, &id, &body).unwrap();
            let e = validate_payload(&body).unwrap().envelope;
            let reports: usize = e
                .events
                .iter()
                .map(|ev| ev.fields.iter().filter(|(_, v)| v.is_some()).count())
                .sum();
            assert!((8..=9).contains(&reports), "{reports}");
            assert!((2_000..3_200).contains(&body.len()), "{}", body.len());
            assert!(ids.insert(id));
            days.insert(e.period.day);
        }
        assert_eq!(days.len(), DAYS as usize);
        // Other sets never reuse a run id.
        let other = Generator::new(&catalog, 2).unwrap();
        assert!(!ids.contains(&other.payload(0).unwrap().0));
    }

    #[test]
    fn estimates_recover_the_true_distributions() {
        let catalog = catalog().unwrap();
        let g = Generator::new(&catalog, 7).unwrap();
        let envelopes: Vec<Envelope> = (0..20_000).map(|i| g.envelope(i).unwrap()).collect();
        let rows = telemetry_schema::aggregate_with_catalog(&envelopes, &catalog);
        let find = |field: &str, value: Option<&str>| {
            rows.iter()
                .find(|r| r.field == field && r.value.as_deref() == value)
                .unwrap_or_else(|| panic!("no row {field} {value:?}"))
        };
        let mut expected: Vec<(&str, Option<&str>, f64)> = vec![
            ("duration", None, 1.12),
            ("files", None, 39.5),
            ("flag", Some("true"), TRUTH.flag),
            ("hit_ratio", None, 69.5),
        ];
        for (label, p) in COMMANDS.iter().zip(TRUTH.command) {
            expected.push(("command", Some(label), p));
        }
        for (label, p) in COMPONENTS.iter().zip(TRUTH.component) {
            expected.push(("component", Some(label), p));
        }
        for (field, value, truth) in expected {
            let r = find(field, value);
            assert!(
                (r.estimate - truth).abs() <= 4.5 * r.standard_error,
                "{field} {value:?}: {} ± {} against {truth}",
                r.estimate,
                r.standard_error
            );
        }
    }

    #[test]
    fn options() {
        let o = parse(&["--quick".into(), "--payloads".into(), "10".into()]).unwrap();
        assert_eq!((o.payloads, o.stored), (10, 20_000));
        let o = parse(&["--stored".into(), "1_000".into()]).unwrap();
        assert_eq!((o.stored, o.compare), (1_000, 1_000));
        assert!(parse(&["--bogus".into()]).is_err());
        assert!(parse(&["--runs".into(), "0".into()]).is_err());
    }
}
