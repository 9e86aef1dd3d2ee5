//! `cargo xtask bench-cli [--iterations N] [--payloads N] [--profile NAME]`: whole-process wall time of the
//! `telemetry` CLI against a hello-world binary built with the same profile (issue #5).
//!
//! Targets: `telemetry status` and `telemetry show` within 1.5× the median wall time of
//! `hello` (the `hello` example of telemetry-cli), and `verify-payload` of a 1 MiB payload in
//! at most 20 ms. Both are measured in one run, interleaved (every iteration runs every case,
//! in a rotating order), so a busy machine slows all of them alike and the ratio stays
//! meaningful. Not part of `cargo xtask ci`: a wall time on a shared machine is a
//! measurement, not a test; the command prints PASS/MISS and exits 0 either way.
//!
//! Everything runs in a scratch directory under the target directory, removed afterwards:
//! a fresh HOME, and a HOME where `acme telemetry enable --yes` and N × `acme work` left N
//! pending payloads; `verify-payload` reads one of those (small) and a ~1 MiB payload built
//! from the `full.json` fixture, written to the scratch directory. Every child gets a cleared
//! environment (HOME only; PATH too for the set-up runs of `acme`), so neither `CI` nor
//! `DO_NOT_TRACK` nor the developer's own config leaks in.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use telemetry_schema::{MAX_EVENTS, validate_payload};

/// `status` and `show` may take at most this many times hello's median wall time.
const RATIO_TARGET: f64 = 1.5;
/// `verify-payload` of a 1 MiB payload, whole process.
const VERIFY_TARGET: Duration = Duration::from_millis(20);
/// Size of the large payload (it ends up a few hundred bytes above this).
const LARGE_PAYLOAD_BYTES: usize = 1024 * 1024;
/// Iterations of every case run and discarded before measuring.
const WARMUP: usize = 20;

const USAGE: &str = "usage: cargo xtask bench-cli [--iterations N] [--payloads N] [--profile NAME]";

struct Options {
    iterations: usize,
    payloads: usize,
    /// The cargo profile both `telemetry` and hello are built with (`dist` unless told).
    profile: String,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        iterations: 300,
        payloads: 20,
        profile: "dist".into(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--profile" {
            options.profile = args
                .next()
                .filter(|name| !name.is_empty() && !name.starts_with('-'))
                .with_context(|| format!("--profile needs a profile name; {USAGE}"))?
                .clone();
            continue;
        }
        let slot = match arg.as_str() {
            "--iterations" => &mut options.iterations,
            "--payloads" => &mut options.payloads,
            other => bail!("unknown argument {other:?}; {USAGE}"),
        };
        let value = args
            .next()
            .with_context(|| format!("{arg} needs a number; {USAGE}"))?;
        *slot = value
            .parse()
            .with_context(|| format!("{arg} {value:?}: not a number; {USAGE}"))?;
    }
    if options.iterations == 0 || options.payloads == 0 {
        bail!("--iterations and --payloads must be at least 1");
    }
    Ok(options)
}

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the repository root")
        .to_path_buf()
}

struct Binaries {
    telemetry: PathBuf,
    hello: PathBuf,
    acme: PathBuf,
}

/// `cargo build --profile <profile>` (`dist` by default: how binaries ship, release with fat LTO) of the `telemetry`
/// binary and the `hello` and `acme` examples.
fn build(root: &Path, profile: &str) -> anyhow::Result<Binaries> {
    let mut exes = build_executables(
        root,
        profile,
        "bench-cli",
        &[
            "-p",
            "telemetry-cli",
            "--bin",
            "telemetry",
            "--example",
            "hello",
            "--example",
            "acme",
        ],
        &["telemetry", "hello", "acme"],
    )?;
    let mut take = |name: &str| exes.remove(name).expect("checked by build_executables");
    Ok(Binaries {
        telemetry: take("telemetry"),
        hello: take("hello"),
        acme: take("acme"),
    })
}

/// `cargo build --profile <profile> <targets>`, and the executables named `wanted`, by file
/// stem: the paths come from cargo's own messages, so any target directory works. `who` names
/// the bench in what is printed.
pub(crate) fn build_executables(
    root: &Path,
    profile: &str,
    who: &str,
    targets: &[&str],
    wanted: &[&str],
) -> anyhow::Result<std::collections::BTreeMap<String, PathBuf>> {
    let mut args = vec![
        "build",
        "--profile",
        profile,
        "--message-format=json-render-diagnostics",
    ];
    args.extend_from_slice(targets);
    eprintln!("{who}: cargo {}", args.join(" "));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(&args)
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !output.status.success() {
        bail!("cargo build --profile {profile} failed ({})", output.status);
    }
    let mut found = std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(exe) = message["executable"].as_str() else {
            continue;
        };
        let exe = PathBuf::from(exe);
        if let Some(stem) = exe.file_stem().and_then(|s| s.to_str())
            && wanted.contains(&stem)
        {
            found.insert(stem.to_owned(), exe);
        }
    }
    if found.len() != wanted.len() {
        bail!("cargo did not report the {} executables", wanted.join(", "));
    }
    Ok(found)
}

/// A scratch directory, removed on drop (with its parent, when that is left empty).
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        if let Some(parent) = self.0.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// `exe args` with a cleared environment: HOME only (the set-up runs of `acme` add PATH).
pub(crate) fn command(exe: &Path, home: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(exe);
    command
        .args(args)
        .env_clear()
        .env("HOME", home)
        .stdin(Stdio::null());
    command
}

/// Runs `command` to completion, failing with its stderr unless it exits 0.
pub(crate) fn run_checked(mut command: Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// The `*.json` files in every directory named `uploads-pending` below `dir`.
pub(crate) fn pending_payloads(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            pending_payloads(&path, found);
        } else if dir.file_name().is_some_and(|n| n == "uploads-pending")
            && path.extension().is_some_and(|x| x == "json")
        {
            found.push(path);
        }
    }
}

/// A valid v1 payload of at least `target` bytes (compact JSON, as the core writes them),
/// built from the `full.json` fixture: every redacted text is lengthened to the `max_len` its
/// DP block allows, then the events are repeated. Checked with `validate_payload`.
///
/// The fixture's events average ~100 bytes, so at the schema's cap of [`MAX_EVENTS`] events
/// they would stay just under 1 MiB; the lengthened text brings the average to ~120 bytes.
fn large_payload(fixture: &str, target: usize) -> anyhow::Result<(Vec<u8>, usize)> {
    let mut doc: Value = serde_json::from_str(fixture).context("parsing full.json")?;
    let mut limits = Vec::new();
    for block in doc["privacy"]["dp"].as_array().into_iter().flatten() {
        if let Some(max_len) = block["params"]["max_len"].as_u64() {
            limits.push((block["event"].clone(), block["field"].clone(), max_len));
        }
    }
    let mut template = doc["events"]
        .as_array()
        .cloned()
        .context("full.json has no events")?;
    for event in &mut template {
        let name = event["name"].clone();
        let Some(fields) = event["fields"].as_object_mut() else {
            continue;
        };
        for (field, value) in fields.iter_mut() {
            let limit = limits
                .iter()
                .find(|(e, f, _)| *e == name && f.as_str() == Some(field.as_str()));
            if let (Some((_, _, max_len)), Some(Value::String(text))) =
                (limit, value.get_mut("redacted"))
                && !text.is_empty()
            {
                let max_len = usize::try_from(*max_len)?;
                *text = text
                    .chars()
                    .chain([';', ' '])
                    .cycle()
                    .take(max_len)
                    .collect();
            }
        }
    }
    doc["events"] = Value::Array(Vec::new());
    let mut size = serde_json::to_vec(&doc)?.len();
    let mut events = Vec::new();
    for event in template.iter().cycle() {
        if size >= target || events.len() == MAX_EVENTS {
            break;
        }
        size += serde_json::to_vec(event)?.len() + usize::from(!events.is_empty());
        events.push(event.clone());
    }
    let count = events.len();
    doc["events"] = Value::Array(events);
    let bytes = serde_json::to_vec(&doc)?;
    if let Err(err) = validate_payload(&bytes) {
        bail!(
            "the generated {}-byte payload does not validate: {err}",
            bytes.len()
        );
    }
    if bytes.len() < target {
        eprintln!(
            "bench-cli: note: the largest valid payload built from full.json has {} bytes ({count} events, the cap is {MAX_EVENTS})",
            bytes.len()
        );
    }
    Ok((bytes, count))
}

struct Case {
    label: String,
    exe: PathBuf,
    home: PathBuf,
    args: Vec<String>,
    /// Compared with hello's median (status, show), or with an absolute time (verify).
    target: Target,
}

#[derive(Clone, Copy)]
enum Target {
    Baseline,
    /// Shown for comparison, no target.
    Info,
    Ratio(f64),
    Absolute(Duration),
}

impl Case {
    fn command(&self) -> Command {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut command = command(&self.exe, &self.home, &args);
        command.stdout(Stdio::null()).stderr(Stdio::null());
        command
    }
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The sample at quantile `q` (0..=1) of sorted `samples`.
pub(crate) fn quantile(samples: &[Duration], q: f64) -> Duration {
    let i = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[i]
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    let root = repo_root();
    let bins = build(&root, &options.profile)?;
    let target_dir = bins
        .telemetry
        .parent()
        .and_then(Path::parent)
        .context("telemetry executable has no target directory")?;
    let scratch = Scratch(
        target_dir
            .join("xtask-bench-cli")
            .join(std::process::id().to_string()),
    );
    let _ = std::fs::remove_dir_all(&scratch.0);
    let fresh = scratch.0.join("home-fresh");
    let enabled = scratch.0.join("home-enabled");
    for dir in [&fresh, &enabled] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }

    // (b): consent, then N runs of `acme work`, each writing one pending payload.
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut setup = command(&bins.acme, &enabled, &["telemetry", "enable", "--yes"]);
    setup.env("PATH", &path);
    run_checked(setup, "acme telemetry enable --yes")?;
    for _ in 0..options.payloads {
        let mut work = command(&bins.acme, &enabled, &["work"]);
        work.env("PATH", &path);
        run_checked(work, "acme work")?;
    }
    let mut pending = Vec::new();
    pending_payloads(&enabled, &mut pending);
    if pending.len() != options.payloads {
        bail!(
            "expected {} pending payloads after {} runs of `acme work`, found {}",
            options.payloads,
            options.payloads,
            pending.len()
        );
    }

    let fixture_path = root.join("crates/telemetry-schema/fixtures/v1/valid/full.json");
    let fixture = std::fs::read_to_string(&fixture_path)
        .with_context(|| format!("reading {}", fixture_path.display()))?;
    let (payload, events) = large_payload(&fixture, LARGE_PAYLOAD_BYTES)?;
    let large = scratch.0.join("payload-1mib.json");
    std::fs::write(&large, &payload).with_context(|| format!("writing {}", large.display()))?;

    let telemetry = |label: &str, home: &Path, args: &[&str], target| Case {
        label: label.to_owned(),
        exe: bins.telemetry.clone(),
        home: home.to_owned(),
        args: ["--app", "acme"]
            .iter()
            .chain(args)
            .map(|s| (*s).to_owned())
            .collect(),
        target,
    };
    let n = options.payloads;
    let large_arg = large.to_string_lossy().into_owned();
    pending.sort();
    let small_arg = pending[0].to_string_lossy().into_owned();
    let cases = [
        Case {
            label: "hello".to_owned(),
            exe: bins.hello.clone(),
            home: fresh.clone(),
            args: Vec::new(),
            target: Target::Baseline,
        },
        telemetry(
            "status (fresh)",
            &fresh,
            &["status"],
            Target::Ratio(RATIO_TARGET),
        ),
        telemetry(
            "show (fresh)",
            &fresh,
            &["show"],
            Target::Ratio(RATIO_TARGET),
        ),
        telemetry(
            &format!("status ({n} payloads)"),
            &enabled,
            &["status"],
            Target::Ratio(RATIO_TARGET),
        ),
        telemetry(
            &format!("show ({n} payloads)"),
            &enabled,
            &["show"],
            Target::Ratio(RATIO_TARGET),
        ),
        // Start-up plus one small validation: what compiling the JSON Schema costs a process.
        telemetry(
            "verify-payload (small)",
            &enabled,
            &["verify-payload", &small_arg],
            Target::Info,
        ),
        telemetry(
            "verify-payload (1 MiB)",
            &enabled,
            &["verify-payload", &large_arg],
            Target::Absolute(VERIFY_TARGET),
        ),
    ];

    // Every case must succeed once, with its output visible on failure.
    for case in &cases {
        run_checked(case.command(), &case.label)?;
    }

    println!(
        "bench-cli: {} iterations after {WARMUP} warm-up, cases interleaved; {n} pending payloads; \
         large payload {} bytes ({events} events)",
        options.iterations,
        payload.len()
    );
    println!("load average before: {}", load_average());
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(options.iterations); cases.len()];
    for i in 0..WARMUP + options.iterations {
        for k in 0..cases.len() {
            let j = (i + k) % cases.len();
            let mut command = cases[j].command();
            let started = Instant::now();
            let status = command.status();
            let took = started.elapsed();
            let status = status.with_context(|| format!("running {}", cases[j].label))?;
            if !status.success() {
                bail!("{} exited with {status}", cases[j].label);
            }
            if i >= WARMUP {
                samples[j].push(took);
            }
        }
    }
    println!("load average after:  {}", load_average());
    for s in &mut samples {
        s.sort();
    }

    let hello = quantile(&samples[0], 0.5);
    println!();
    println!(
        "{:<24} {:>10} {:>10} {:>10} {:>9}",
        "case", "median", "p10", "p90", "vs hello"
    );
    for (case, s) in cases.iter().zip(&samples) {
        let median = quantile(s, 0.5);
        println!(
            "{:<24} {:>10} {:>10} {:>10} {:>8.2}×",
            case.label,
            millis(median),
            millis(quantile(s, 0.1)),
            millis(quantile(s, 0.9)),
            median.as_secs_f64() / hello.as_secs_f64()
        );
    }
    println!();
    let mut missed = 0;
    for (case, s) in cases.iter().zip(&samples) {
        let median = quantile(s, 0.5);
        let ratio = median.as_secs_f64() / hello.as_secs_f64();
        let (ok, line) = match case.target {
            Target::Baseline | Target::Info => continue,
            Target::Ratio(max) => (
                ratio <= max,
                format!("{}: {ratio:.2}× hello (target ≤ {max}×)", case.label),
            ),
            Target::Absolute(max) => (
                median <= max,
                format!(
                    "{}: {} (target ≤ {})",
                    case.label,
                    millis(median),
                    millis(max)
                ),
            ),
        };
        missed += usize::from(!ok);
        println!("{}  {line}", if ok { "PASS" } else { "MISS" });
    }
    let targets = cases
        .iter()
        .filter(|c| matches!(c.target, Target::Ratio(_) | Target::Absolute(_)))
        .count();
    println!(
        "bench-cli: {} targets met, {missed} missed",
        targets - missed
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_payload_is_valid_and_large() {
        let fixture = include_str!("../../crates/telemetry-schema/fixtures/v1/valid/full.json");
        let (bytes, events) = large_payload(fixture, LARGE_PAYLOAD_BYTES).unwrap();
        assert!(bytes.len() >= LARGE_PAYLOAD_BYTES, "{} bytes", bytes.len());
        assert!(
            bytes.len() < LARGE_PAYLOAD_BYTES + 1024,
            "{} bytes",
            bytes.len()
        );
        assert!(events <= MAX_EVENTS);
    }

    #[test]
    fn options() {
        let o = parse(&["--iterations".into(), "5".into()]).unwrap();
        assert_eq!(
            (o.iterations, o.payloads, o.profile.as_str()),
            (5, 20, "dist")
        );
        let o = parse(&["--profile".into(), "release".into()]).unwrap();
        assert_eq!(o.profile, "release");
        assert!(parse(&["--profile".into()]).is_err());
        assert!(parse(&["--profile".into(), "--iterations".into()]).is_err());
        assert!(parse(&["--iterations".into()]).is_err());
        assert!(parse(&["--bogus".into()]).is_err());
    }
}
