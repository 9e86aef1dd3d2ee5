//! `cargo xtask codegen [--check]`: writes the JSON Schemas generated from telemetry-schema's types.
//!
//! Without `--check` it (re)writes every generated file. With `--check` it writes nothing and fails,
//! naming the first differing line and saying "run `cargo xtask codegen`", when a committed file
//! differs from what the code generates. The comparison itself lives in
//! `telemetry_schema::codegen::check`, which the schema crate's own tests also use.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use telemetry_schema::codegen::{self, REGENERATE_HINT};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the repository root")
        .to_path_buf()
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut check = false;
    for arg in args {
        match arg.as_str() {
            "--check" => check = true,
            other => bail!("unknown argument {other:?}; usage: cargo xtask codegen [--check]"),
        }
    }
    let root = repo_root();
    let mut drifts = Vec::new();
    for file in codegen::generated_files() {
        let path = root.join(file.path);
        if check {
            let committed = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
            };
            if let Err(drift) = codegen::check(file.path, &committed, &file.contents) {
                drifts.push(drift.to_string());
            }
        } else {
            let unchanged = std::fs::read_to_string(&path).is_ok_and(|t| t == file.contents);
            if unchanged {
                println!("unchanged {}", file.path);
                continue;
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(&path, &file.contents)
                .with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", file.path);
        }
    }
    if !drifts.is_empty() {
        for d in &drifts {
            eprintln!("{d}");
        }
        bail!(
            "{} generated file(s) out of date; {REGENERATE_HINT}",
            drifts.len()
        );
    }
    if check {
        println!("generated files are up to date");
    }
    Ok(())
}
