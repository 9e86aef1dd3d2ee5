//! Rule 4: no network in the binaries.
//!
//! Builds the release `telemetry` binary and the `acme` example with default features and lists the
//! dynamic symbols they import (ELF undefined symbols, read with the `object` crate): none may be a
//! socket or resolver function. A control proves the reader can see them: the guard's probe program,
//! which connects, must import `connect`. Built with `upload`, `telemetry` must import them as soon as
//! the upload resolve contains a network crate (rule 2's data).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use object::Object;

use super::RuleReport;

/// libc functions through which a program reaches the network.
pub const NETWORK_SYMBOLS: &[&str] = &[
    "connect",
    "socket",
    "getaddrinfo",
    "gethostbyname",
    "gethostbyname2",
    "gethostbyname_r",
    "gethostbyname2_r",
    "sendto",
    "sendmsg",
    "sendmmsg",
];

/// A built program and the symbols it imports.
#[derive(Debug, Clone)]
pub struct Binary {
    pub label: String,
    pub imports: Vec<String>,
}

/// The dynamic symbols an ELF file imports, without version suffixes.
pub fn imports(data: &[u8]) -> anyhow::Result<Vec<String>> {
    let file = object::File::parse(data).context("not an object file")?;
    let mut names = Vec::new();
    for import in file.imports().context("reading the dynamic imports")? {
        let import = import.context("reading a dynamic import")?;
        let object::read::NameOrOrdinal::Name(name) = import.name() else {
            continue; // by-ordinal imports exist in PE files only
        };
        let name = String::from_utf8_lossy(name);
        names.push(name.split('@').next().unwrap_or_default().to_owned());
    }
    names.sort();
    names.dedup();
    Ok(names)
}

pub fn network_imports(imports: &[String]) -> Vec<String> {
    imports
        .iter()
        .filter(|i| NETWORK_SYMBOLS.contains(&i.as_str()))
        .cloned()
        .collect()
}

/// `cargo build --profile opt <args>` in `root`; returns the executables cargo reports. The
/// `opt` profile is release without LTO: quicker to build, and its dynamic imports are a
/// superset of the shipped (LTO) build's, so the check stays conservative.
pub fn cargo_build(root: &Path, args: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("audit rule 4: cargo build --profile opt {}", args.join(" "));
    let output = Command::new(cargo)
        .args([
            "build",
            "--profile",
            "opt",
            "--message-format=json-render-diagnostics",
        ])
        .args(args)
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !output.status.success() {
        bail!(
            "`cargo build --profile opt {}` failed ({})",
            args.join(" "),
            output.status
        );
    }
    let mut executables = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact"
            && let Some(exe) = message["executable"].as_str()
        {
            executables.push(PathBuf::from(exe));
        }
    }
    Ok(executables)
}

fn inspect(root: &Path, args: &[&str], suffix: &str) -> anyhow::Result<Vec<Binary>> {
    let mut binaries = Vec::new();
    for exe in cargo_build(root, args)? {
        let data = std::fs::read(&exe).with_context(|| format!("reading {}", exe.display()))?;
        let name = exe
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        binaries.push(Binary {
            label: format!("{name} ({suffix})"),
            imports: imports(&data).with_context(|| format!("reading {}", exe.display()))?,
        });
    }
    if binaries.is_empty() {
        bail!(
            "`cargo build --profile opt {}` reported no executable",
            args.join(" ")
        );
    }
    Ok(binaries)
}

/// Judges the symbol lists. `upload_network` names the network crates of the upload resolve.
pub fn evaluate(
    default: &[Binary],
    upload: &[Binary],
    control: &Binary,
    upload_network: &[String],
) -> RuleReport {
    let mut report = RuleReport::new(4, "no network in the binaries");
    let control_seen = network_imports(&control.imports);
    if control_seen.iter().any(|s| s == "connect") {
        report.note(format!(
            "control: {} imports {}",
            control.label,
            control_seen.join(", ")
        ));
    } else {
        report.fail(format!(
            "control failed: {} connects but the reader found no `connect` import; the check is blind",
            control.label
        ));
    }
    for binary in default {
        let found = network_imports(&binary.imports);
        if !found.is_empty() {
            report.fail(format!("{} imports {}", binary.label, found.join(", ")));
        }
    }
    for binary in upload {
        let found = network_imports(&binary.imports);
        let shown = if found.is_empty() {
            "none".to_owned()
        } else {
            found.join(", ")
        };
        let must = binary.label.starts_with("telemetry ") && !upload_network.is_empty();
        if must && found.is_empty() {
            report.fail(format!(
                "{} imports no network symbol although the upload build contains {}: the check cannot see it",
                binary.label,
                upload_network.join(", ")
            ));
        } else {
            report.note(format!(
                "{}: network imports {shown}{}",
                binary.label,
                if upload_network.is_empty() {
                    " (transport has no network crate yet, none required)"
                } else {
                    ""
                }
            ));
        }
    }
    report.checked = format!(
        "dynamic imports of {} release binaries (default features) against {}",
        default
            .iter()
            .map(|b| b.label.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        NETWORK_SYMBOLS.join(", ")
    );
    report
}

/// Builds everything and evaluates.
pub fn check(root: &Path, upload_network: &[String]) -> RuleReport {
    let built = (|| -> anyhow::Result<_> {
        let default = inspect(
            root,
            &[
                "-p",
                "telemetry-cli",
                "--bin",
                "telemetry",
                "--example",
                "acme",
            ],
            "default",
        )?;
        let upload = inspect(
            root,
            &[
                "-p",
                "telemetry-cli",
                "--features",
                "upload",
                "--bin",
                "telemetry",
                "--example",
                "acme",
            ],
            "--features upload",
        )?;
        let control = inspect(
            root,
            &["-p", "privacy-guard", "--bin", "privacy-guard-probe"],
            "control",
        )?;
        Ok((default, upload, control))
    })();
    match built {
        Ok((default, upload, control)) => evaluate(&default, &upload, &control[0], upload_network),
        Err(err) => {
            let mut report = RuleReport::new(4, "no network in the binaries");
            report.checked = "optimised (opt profile) builds of telemetry and acme".to_owned();
            report.fail(format!("{err:#}"));
            report
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(label: &str, imports: &[&str]) -> Binary {
        Binary {
            label: label.to_owned(),
            imports: imports.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_reader_sees_this_test_binarys_imports() {
        let exe = std::env::current_exe().unwrap();
        let found = imports(&std::fs::read(exe).unwrap()).unwrap();
        assert!(found.iter().any(|s| s == "write"), "{found:?}");
    }

    #[test]
    fn a_network_import_in_a_default_binary_fails() {
        let control = binary("probe (control)", &["connect", "write"]);
        let clean = [binary("telemetry (default)", &["write", "read"])];
        assert!(evaluate(&clean, &clean, &control, &[]).passed());
        let dirty = [binary(
            "telemetry (default)",
            &["connect", "getaddrinfo", "write"],
        )];
        let report = evaluate(&dirty, &clean, &control, &[]);
        assert_eq!(
            report.findings,
            ["telemetry (default) imports connect, getaddrinfo"]
        );
    }

    #[test]
    fn blind_checks_fail() {
        let clean = [binary("telemetry (default)", &["write"])];
        let report = evaluate(&clean, &clean, &binary("probe (control)", &["write"]), &[]);
        assert!(
            report.findings[0].starts_with("control failed"),
            "{:?}",
            report.findings
        );
        let control = binary("probe (control)", &["connect"]);
        let upload = [binary("telemetry (--features upload)", &["write"])];
        let report = evaluate(&clean, &upload, &control, &["ureq".to_owned()]);
        assert!(
            report.findings[0]
                .contains("imports no network symbol although the upload build contains ureq")
        );
        let upload = [binary(
            "telemetry (--features upload)",
            &["connect", "socket"],
        )];
        assert!(evaluate(&clean, &upload, &control, &["ureq".to_owned()]).passed());
    }
}
