//! `cargo xtask audit [--json] [--only 1,2,..] [--workspace DIR] [--print-edges]`: proves the crate split.
//!
//! Rules (each a function over data, so its tests feed it violations without building anything):
//! 1. dependency edges between workspace crates match the architecture table ([`edges`]);
//! 2. default builds of schema, core and cli resolve no network crate and not transport ([`network_deps`]);
//! 3. no network (and, in schema, no fs/env/process/clock) in the non-test source ([`source_scan`]);
//! 4. the release `telemetry` and `acme` binaries import no socket or resolver symbol ([`symbols`]);
//! 5. generated files are current (`codegen --check`);
//! 6. crate roots state their invariant; libraries forbid `unsafe` unless audited ([`invariants`]);
//! 7. every Unix-only API in schema, core, transport and cli is inside a `cfg(unix)` item ([`unix_only`]).
//!
//! The exit status is non-zero when any rule that ran failed.

pub mod edges;
pub mod invariants;
pub mod metadata;
pub mod network_deps;
pub mod source_scan;
pub mod symbols;
pub mod unix_only;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use metadata::Metadata;

/// The outcome of one rule.
#[derive(Debug, Clone)]
pub struct RuleReport {
    pub id: u8,
    pub name: &'static str,
    /// What was checked, in one line.
    pub checked: String,
    /// Offending items; empty means pass.
    pub findings: Vec<String>,
    /// Evidence worth showing even on a pass (controls, the grep output).
    pub notes: Vec<String>,
}

impl RuleReport {
    pub fn new(id: u8, name: &'static str) -> Self {
        RuleReport {
            id,
            name,
            checked: String::new(),
            findings: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn fail(&mut self, finding: String) {
        self.findings.push(finding);
    }

    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    pub fn passed(&self) -> bool {
        self.findings.is_empty()
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "status": if self.passed() { "pass" } else { "fail" },
            "checked": self.checked,
            "findings": self.findings,
            "notes": self.notes,
        })
    }
}

const RULE_NAMES: [&str; 7] = [
    "dependency edges",
    "no network crates in default builds",
    "no network in the code",
    "no network in the binaries",
    "generated files are current",
    "crate invariants written, unsafe only where audited",
    unix_only::NAME,
];

struct Options {
    json: bool,
    only: Option<BTreeSet<u8>>,
    workspace: PathBuf,
    print_edges: bool,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is one level below the root")
        .to_path_buf()
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        json: false,
        only: None,
        workspace: repo_root(),
        print_edges: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => options.json = true,
            "--print-edges" => options.print_edges = true,
            "--only" => {
                let list = args.next().context("--only needs a list like 1,2,3")?;
                let ids = list
                    .split(',')
                    .map(|s| s.trim().parse::<u8>().ok().filter(|n| (1..=7).contains(n)))
                    .collect::<Option<BTreeSet<u8>>>()
                    .with_context(|| format!("--only {list:?}: rules are 1 to 7"))?;
                options.only = Some(ids);
            }
            "--workspace" => {
                let dir = args.next().context("--workspace needs a directory")?;
                options.workspace = PathBuf::from(dir);
            }
            other => bail!(
                "unknown argument {other:?}; usage: cargo xtask audit [--json] [--only 1,2,..] [--workspace DIR] [--print-edges]"
            ),
        }
    }
    Ok(options)
}

fn not_loaded(id: u8, err: &anyhow::Error) -> RuleReport {
    let mut report = RuleReport::new(id, RULE_NAMES[id as usize - 1]);
    report.checked = "cargo metadata".to_owned();
    report.fail(format!("cannot read the workspace: {err:#}"));
    report
}

fn run_rules(options: &Options) -> Vec<RuleReport> {
    let wants = |id: u8| options.only.as_ref().is_none_or(|only| only.contains(&id));
    let root = &options.workspace;
    let manifest = root.join("Cargo.toml");
    let host = metadata::host_triple();
    let load = |features: Option<&str>| -> anyhow::Result<Metadata> {
        let host = host.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        Metadata::load(&manifest, host, features)
    };
    let default = if wants(1) || wants(2) || wants(6) {
        Some(load(None))
    } else {
        None
    };
    let upload = if wants(2) || wants(4) {
        Some(load(Some("telemetry-cli/upload")))
    } else {
        None
    };
    let mut reports = Vec::new();

    if wants(1) {
        reports.push(match default.as_ref().expect("loaded") {
            Ok(meta) => {
                let doc = std::fs::read_to_string(root.join(edges::DOC_PATH)).unwrap_or_default();
                edges::check(meta, Some(&doc))
            }
            Err(err) => not_loaded(1, err),
        });
    }
    if wants(2) {
        reports.push(
            match (
                default.as_ref().expect("loaded"),
                upload.as_ref().expect("loaded"),
            ) {
                (Ok(default), Ok(upload)) => network_deps::check(default, upload),
                (Err(err), _) | (_, Err(err)) => not_loaded(2, err),
            },
        );
    }
    if wants(3) {
        reports.push(source_scan::check(root));
    }
    if wants(4) {
        reports.push(match upload.as_ref().expect("loaded") {
            Ok(upload) => {
                let network: Vec<String> = network_deps::reachable(upload, "telemetry-cli")
                    .into_keys()
                    .filter(|n| network_deps::NETWORK_CRATES.contains(&n.as_str()))
                    .collect();
                symbols::check(root, &network)
            }
            Err(err) => not_loaded(4, err),
        });
    }
    if wants(5) {
        let mut report = RuleReport::new(5, RULE_NAMES[4]);
        report.checked = "`cargo xtask codegen --check`: committed generated files equal what the code generates".into();
        if let Err(err) = crate::codegen::run(&["--check".to_owned()]) {
            report.fail(format!("{err:#}"));
        }
        reports.push(report);
    }
    if wants(6) {
        reports.push(match default.as_ref().expect("loaded") {
            Ok(meta) => invariants::check(meta, root),
            Err(err) => not_loaded(6, err),
        });
    }
    if wants(unix_only::ID) {
        reports.push(unix_only::check(root));
    }
    reports
}

fn print_human(options: &Options, reports: &[RuleReport]) {
    println!("cargo xtask audit: {}", options.workspace.display());
    for report in reports {
        let status = if report.passed() { "PASS" } else { "FAIL" };
        println!(
            "{status}  rule {}: {} — checked {}",
            report.id, report.name, report.checked
        );
        for finding in &report.findings {
            println!("        offending: {finding}");
        }
        for note in &report.notes {
            println!("        {note}");
        }
    }
    for id in 1..=7u8 {
        if !reports.iter().any(|r| r.id == id) {
            println!(
                "SKIP  rule {id}: {} — not run (--only)",
                RULE_NAMES[id as usize - 1]
            );
        }
    }
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    if options.print_edges {
        print!("{}", edges::render_table());
        return Ok(());
    }
    let reports = run_rules(&options);
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.id.to_string())
        .collect();
    if options.json {
        let json = serde_json::json!({
            "workspace": options.workspace,
            "ok": failed.is_empty(),
            "rules": reports.iter().map(RuleReport::to_json).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print_human(&options, &reports);
    }
    let ran = reports.len();
    if failed.is_empty() {
        if !options.json {
            println!("audit: {ran} rules passed, 0 failed");
        }
        Ok(())
    } else {
        if !options.json {
            println!(
                "audit: {} rules passed, {} failed",
                ran - failed.len(),
                failed.len()
            );
        }
        bail!("audit failed: rule(s) {}", failed.join(", "))
    }
}
