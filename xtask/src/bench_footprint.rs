//! `cargo xtask bench-footprint [--root DIR] [--profile release|dist] [--list] [--tree-only]
//! [--keep]`: what the toolkit adds to a small clap host (issue #17 item 3).
//!
//! Four tiny hosts are generated in a scratch directory under the target directory (removed
//! afterwards), each with path dependencies on the crates of the workspace at `--root` (this
//! one unless told, so a `git archive` of another commit can be measured with the tool of this
//! one):
//!
//! - `clap`: a clap derive parser with two subcommands, nothing else;
//! - `+core`: the same, plus `telemetry-core` (a builder, one `#[derive(Event)]`, one record);
//! - `+core+cli`: the same, plus the mounted `telemetry` subcommand of `telemetry-cli`, as the
//!   README mounts it (`default-features = false`: no JSON Schema validator);
//! - `+core+cli+schema`: the same with telemetry-cli's default feature `schema-check` (what the
//!   standalone `telemetry` binary has).
//!
//! For each: the distinct crates (name and version) of `cargo tree -e normal` (proc-macros and
//! what they build included: they cost build time, not bytes), the wall time of a clean
//! `cargo build` in a target directory of its own, and the size of the stripped binary. The
//! builds run back to back and the load average is printed around them: on a shared
//! machine a wall time means little without it. Not part of `cargo xtask ci`: a measurement.
//!
//! Every host has a `[workspace]` table of its own, so it never joins the workspace it sits
//! in, and a copy of the measured workspace's `Cargo.lock`, so it builds the same versions.
//! `--tree-only` counts crates without building (seconds, not minutes); `--keep` leaves the
//! hosts and their target directories in place for a closer look (and says where).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench::Scratch;

const USAGE: &str = "usage: cargo xtask bench-footprint [--root DIR] [--profile release|dist] [--list] [--tree-only] [--keep]";

struct Options {
    /// The workspace whose crates the hosts depend on.
    root: PathBuf,
    profile: String,
    /// Also print which crates each step adds.
    list: bool,
    /// Count crates only: no build.
    tree_only: bool,
    /// Leave the scratch directory in place.
    keep: bool,
}

fn parse(args: &[String], default_root: PathBuf) -> anyhow::Result<Options> {
    let mut options = Options {
        root: default_root,
        profile: "release".into(),
        list: false,
        tree_only: false,
        keep: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--root" => {
                let dir = args
                    .next()
                    .filter(|dir| !dir.is_empty() && !dir.starts_with('-'))
                    .with_context(|| format!("--root needs a directory; {USAGE}"))?;
                options.root = PathBuf::from(dir);
            }
            "--profile" => {
                let profile = args
                    .next()
                    .with_context(|| format!("--profile needs a name; {USAGE}"))?;
                // Only the two profiles the generated manifests define.
                if profile != "release" && profile != "dist" {
                    bail!("--profile {profile:?}: release or dist; {USAGE}");
                }
                options.profile = profile.clone();
            }
            "--list" => options.list = true,
            "--tree-only" => options.tree_only = true,
            "--keep" => options.keep = true,
            other => bail!("unknown argument {other:?}; {USAGE}"),
        }
    }
    let root = &options.root;
    for needed in ["Cargo.lock", "crates/telemetry-core/Cargo.toml"] {
        if !root.join(needed).is_file() {
            bail!(
                "{} is not the toolkit's workspace (no {needed})",
                root.display()
            );
        }
    }
    options.root = root
        .canonicalize()
        .with_context(|| format!("resolving {}", root.display()))?;
    Ok(options)
}

/// One generated host.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Host {
    Clap,
    Core,
    CoreCli,
    CoreCliSchema,
}

impl Host {
    const ALL: [Host; 4] = [Host::Clap, Host::Core, Host::CoreCli, Host::CoreCliSchema];

    fn mounts_cli(self) -> bool {
        matches!(self, Host::CoreCli | Host::CoreCliSchema)
    }

    fn package(self) -> &'static str {
        match self {
            Host::Clap => "host-clap",
            Host::Core => "host-core",
            Host::CoreCli => "host-core-cli",
            Host::CoreCliSchema => "host-core-cli-schema",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Host::Clap => "clap",
            Host::Core => "+core",
            Host::CoreCli => "+core+cli",
            Host::CoreCliSchema => "+core+cli+schema",
        }
    }

    fn manifest(self, root: &Path) -> String {
        let crates = root.join("crates");
        let path = |name: &str| toml_string(&crates.join(name));
        let mut deps = String::from(
            "clap = { version = \"4\", default-features = true, features = [\"derive\"] }\n",
        );
        if self != Host::Clap {
            deps += &format!("telemetry-core = {{ path = {} }}\n", path("telemetry-core"));
        }
        if self == Host::CoreCli {
            deps += &format!(
                "telemetry-cli = {{ path = {}, default-features = false }}\n",
                path("telemetry-cli")
            );
        }
        if self == Host::CoreCliSchema {
            deps += &format!("telemetry-cli = {{ path = {} }}\n", path("telemetry-cli"));
        }
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
             # Its own workspace: never a member of the one it is generated in.\n[workspace]\n\n\
             [dependencies]\n{deps}\n\
             [profile.release]\nstrip = \"symbols\"\n\n\
             # As the toolkit's own `dist` profile.\n\
             [profile.dist]\ninherits = \"release\"\nlto = true\ncodegen-units = 1\n",
            name = self.package(),
        )
    }

    fn main_rs(self) -> String {
        let mut imports = String::from("use clap::{Parser, Subcommand};\n");
        let mut variants = String::new();
        let mut arms = String::new();
        let mut declarations = String::new();
        let mut record = String::new();
        if self != Host::Clap {
            imports +=
                "use telemetry_core::Telemetry;\nuse telemetry_core::event::{Event, Label};\n";
            declarations += r#"
/// Which command ran.
#[derive(Clone, Copy, Label)]
enum CommandName {
    /// `host hello`.
    Hello,
    /// `host count`.
    Count,
}

/// A command ran.
#[derive(Event)]
struct CommandRun {
    /// Which command.
    #[telemetry(epsilon = 1.0)]
    command: CommandName,
    /// Whether it succeeded.
    #[telemetry(epsilon = 1.0)]
    ok: bool,
}
"#;
            record += r#"    let builder = Telemetry::builder("host")
        .app_version(env!("CARGO_PKG_VERSION"))
        .event::<CommandRun>();
"#;
        }
        if self.mounts_cli() {
            variants += "    /// See and control telemetry.\n    Telemetry(telemetry_cli::TelemetryArgs),\n";
            arms += "        Command::Telemetry(args) => {\n            std::process::exit(telemetry_cli::run_with_stdio(&builder, &args).into())\n        }\n";
        }
        let (hello, count) = if self == Host::Clap {
            (String::new(), String::new())
        } else {
            let record = |name: &str| {
                format!(
                    "            builder.build().record(&CommandRun {{ command: CommandName::{name}, ok: true }});\n"
                )
            };
            (record("Hello"), record("Count"))
        };
        format!(
            r#"{imports}
#[derive(Parser)]
#[command(name = "host", version)]
struct Cli {{
    #[command(subcommand)]
    command: Command,
}}

#[derive(Subcommand)]
enum Command {{
    /// Say hello.
    Hello {{
        /// Whom to greet.
        #[arg(long)]
        name: Option<String>,
    }},
    /// Count up to N.
    Count {{ n: u32 }},
{variants}}}
{declarations}
fn main() {{
    let cli = Cli::parse();
{record}    match cli.command {{
        Command::Hello {{ name }} => {{
            println!("hello, {{}}", name.as_deref().unwrap_or("world"));
{hello}        }}
        Command::Count {{ n }} => {{
            for i in 1..=n {{
                println!("{{i}}");
            }}
{count}        }}
{arms}    }}
}}
"#
        )
    }
}

/// A path as a TOML basic string.
fn toml_string(path: &Path) -> String {
    let text = path.display().to_string();
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

struct Built {
    wall: Duration,
    /// User + system time of the build's processes, when the platform says (Linux).
    cpu: Option<Duration>,
    stripped_bytes: u64,
    load_before: String,
    load_after: String,
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // The outer cargo's target directory and build script variables are not the host's.
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_MANIFEST_DIR",
    ] {
        command.env_remove(var);
    }
    command.stdin(Stdio::null());
    command
}

/// Distinct `name version` pairs of `cargo tree -e normal`, the host itself left out.
fn tree(dir: &Path, host: Host) -> anyhow::Result<BTreeSet<String>> {
    let output = cargo()
        .args(["tree", "-e", "normal", "--prefix", "none"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .context("running cargo tree")?;
    if !output.status.success() {
        bail!(
            "cargo tree for {} failed: {}",
            host.label(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let crates = parse_tree(&String::from_utf8_lossy(&output.stdout), host.package());
    if crates.is_empty() {
        bail!("cargo tree for {} listed no dependency", host.label());
    }
    Ok(crates)
}

/// `cargo tree --prefix none` prints `name vX.Y.Z [(path)] [(proc-macro)] [(*)]` per line.
fn parse_tree(text: &str, own: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let version = words.next().filter(|v| v.starts_with('v'))?;
            (name != own).then(|| format!("{name} {version}"))
        })
        .collect()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| {
            let fields: Vec<&str> = text.split_whitespace().take(3).collect();
            (fields.len() == 3).then(|| fields.join(" "))
        })
        .unwrap_or_else(|| "n/a".into())
}

/// CPU time of this process's waited-for children (and theirs): `cutime + cstime` of
/// `/proc/self/stat`, in the kernel's fixed user-space tick of 1/100 s.
fn children_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name, which may itself hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // cutime and cstime are fields 16 and 17 of the whole line, 14 and 15 after the name.
    let ticks: u64 = fields.get(13)?.parse::<u64>().ok()? + fields.get(14)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn build(dir: &Path, host: Host, profile: &str) -> anyhow::Result<Built> {
    let target = dir.join("target");
    let load_before = load_average();
    let cpu_before = children_cpu();
    let started = Instant::now();
    let output = cargo()
        .args(["build", "--quiet", "--profile", profile])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target)
        .stdout(Stdio::null())
        .output()
        .context("running cargo build")?;
    let wall = started.elapsed();
    let cpu = children_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    if !output.status.success() {
        bail!(
            "cargo build of {} failed: {}",
            host.label(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let exe = target.join(profile).join(format!(
        "{}{}",
        host.package(),
        std::env::consts::EXE_SUFFIX
    ));
    let stripped_bytes = std::fs::metadata(&exe)
        .with_context(|| format!("reading {}", exe.display()))?
        .len();
    Ok(Built {
        wall,
        cpu,
        stripped_bytes,
        load_before,
        load_after: load_average(),
    })
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the repository root")
        .to_path_buf()
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let here = repo_root();
    let options = parse(args, here.clone())?;
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => here.join(dir),
        None => here.join("target"),
    };
    let scratch = Scratch(
        target_dir
            .join("xtask-bench-footprint")
            .join(std::process::id().to_string()),
    );
    let _ = std::fs::remove_dir_all(&scratch.0);
    let lock = std::fs::read(options.root.join("Cargo.lock")).context("reading Cargo.lock")?;

    let mut dirs = Vec::new();
    for host in Host::ALL {
        let dir = scratch.0.join(host.package());
        std::fs::create_dir_all(dir.join("src"))
            .with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("Cargo.toml"), host.manifest(&options.root))?;
        std::fs::write(dir.join("src/main.rs"), host.main_rs())?;
        std::fs::write(dir.join("Cargo.lock"), &lock)?;
        dirs.push(dir);
    }

    // Resolution first, for all of them, so the timed builds only compile.
    let mut trees = Vec::new();
    for (host, dir) in Host::ALL.iter().zip(&dirs) {
        trees.push(tree(dir, *host)?);
    }

    let mut built = Vec::new();
    if !options.tree_only {
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        eprintln!(
            "bench-footprint: clean `cargo build --profile {}` of {} hosts against {} ({cores} cores), back to back",
            options.profile,
            Host::ALL.len(),
            options.root.display()
        );
        for (host, dir) in Host::ALL.iter().zip(&dirs) {
            eprintln!("bench-footprint: building {}", host.label());
            built.push(build(dir, *host, &options.profile)?);
        }
    }

    println!(
        "footprint of the toolkit in a small clap host ({} profile, stripped; root {})",
        options.profile,
        options.root.display()
    );
    print!("{:<10} {:>7} {:>8}", "host", "crates", "+crates");
    if built.is_empty() {
        println!();
    } else {
        println!(
            " {:>8} {:>7} {:>12} {:>8}  load 1/5/15 min (before → after)",
            "build s", "cpu s", "stripped MB", "+MB"
        );
    }
    for (i, host) in Host::ALL.iter().enumerate() {
        print!(
            "{:<10} {:>7} {:>+8}",
            host.label(),
            trees[i].len(),
            trees[i].len() as i64 - trees[0].len() as i64,
        );
        let Some(b) = built.get(i) else {
            println!();
            continue;
        };
        let cpu = b.cpu.map_or_else(
            || "n/a".to_owned(),
            |cpu| format!("{:.1}", cpu.as_secs_f64()),
        );
        println!(
            " {:>8.1} {:>7} {:>12.2} {:>+8.2}  {} → {}",
            b.wall.as_secs_f64(),
            cpu,
            mb(b.stripped_bytes),
            mb(b.stripped_bytes) - mb(built[0].stripped_bytes),
            b.load_before,
            b.load_after,
        );
    }
    if options.list {
        for (i, host) in Host::ALL.iter().enumerate().skip(1) {
            let added: Vec<&str> = trees[i]
                .difference(&trees[i - 1])
                .map(String::as_str)
                .collect();
            println!(
                "\n{} adds {} crates over {}:\n  {}",
                host.label(),
                added.len(),
                Host::ALL[i - 1].label(),
                added.join(", ")
            );
        }
    }
    if options.keep {
        eprintln!("bench-footprint: hosts kept in {}", scratch.0.display());
        std::mem::forget(scratch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_lines_are_deduplicated_by_name_and_version_without_the_host() {
        let text = "host-core v0.1.0 (/tmp/x)\n\
                    clap v4.5.0\n\
                    clap_derive v4.5.0 (proc-macro)\n\
                    syn v2.0.1\n\
                    syn v2.0.1 (*)\n\
                    syn v1.0.9\n\
                    \n\
                    telemetry-core v0.5.0 (/work/crates/telemetry-core)\n";
        let crates = parse_tree(text, "host-core");
        let expected: BTreeSet<String> = [
            "clap v4.5.0",
            "clap_derive v4.5.0",
            "syn v1.0.9",
            "syn v2.0.1",
            "telemetry-core v0.5.0",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(crates, expected);
    }

    #[test]
    fn bad_arguments_are_refused() {
        let root = repo_root();
        for args in [
            vec!["--profile", "debug"],
            vec!["--profile"],
            vec!["--root"],
            vec!["--root", "/nonexistent/telemetry"],
            vec!["--frobnicate"],
        ] {
            let args: Vec<String> = args.into_iter().map(String::from).collect();
            assert!(parse(&args, root.clone()).is_err(), "{args:?} was accepted");
        }
        let options = parse(&["--list".into()], root.clone()).unwrap();
        assert!(options.list);
        assert_eq!(options.profile, "release");
    }

    #[test]
    fn hosts_differ_only_by_what_they_add() {
        let root = Path::new("/w");
        let clap = Host::Clap.manifest(root);
        let cli = Host::CoreCli.manifest(root);
        assert!(clap.contains("[workspace]") && cli.contains("[workspace]"));
        assert!(!clap.contains("telemetry-core"));
        assert!(
            Host::Core
                .manifest(root)
                .contains("path = \"/w/crates/telemetry-core\"")
        );
        assert!(!Host::Core.manifest(root).contains("telemetry-cli"));
        assert!(cli.contains("path = \"/w/crates/telemetry-cli\", default-features = false"));
        let schema = Host::CoreCliSchema.manifest(root);
        assert!(schema.contains("telemetry-cli = { path = \"/w/crates/telemetry-cli\" }"));
        assert_eq!(Host::CoreCli.main_rs(), Host::CoreCliSchema.main_rs());
        assert!(!Host::Clap.main_rs().contains("telemetry"));
        assert!(Host::Core.main_rs().contains(".record(&CommandRun"));
        assert!(
            Host::CoreCli
                .main_rs()
                .contains("telemetry_cli::run_with_stdio")
        );
    }
}
