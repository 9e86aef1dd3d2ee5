//! The shipped crates can be published as a set (issue #17, item 6). `cargo xtask ci` runs `cargo
//! package` on them (each package built on its own, in dependency order); these tests check what that
//! does not: complete crates.io metadata with no placeholder URL, and packages whose tests still
//! compile: cargo silently drops a path-only dev-dependency, and a test that includes a file from a
//! sibling crate compiles in the repository but not from the `.crate`.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

/// In dependency order, as `cargo package` handles them.
const SHIPPED: [&str; 6] = [
    "telemetry-derive",
    "telemetry-schema",
    "telemetry-core",
    "telemetry-transport",
    "telemetry-cli",
    "telemetry-collector",
];

/// `license = "MIT OR Apache-2.0"` obliges every package to carry both texts.
const LICENSE_FILES: [&str; 2] = ["LICENSE-MIT", "LICENSE-APACHE"];

/// crates.io's category slugs (rust-lang/crates.io, `src/boot/categories.toml`). crates.io ignores an
/// unknown slug at upload with only a warning, so a typo would go unnoticed without this list.
const CATEGORIES: &[&str] = &[
    "algorithms",
    "api-bindings",
    "asynchronous",
    "authentication",
    "caching",
    "command-line-interface",
    "command-line-utilities",
    "compression",
    "computer-vision",
    "concurrency",
    "config",
    "cryptography",
    "cryptography::cryptocurrencies",
    "data-structures",
    "database",
    "database-implementations",
    "date-and-time",
    "development-tools",
    "development-tools::build-utils",
    "development-tools::cargo-plugins",
    "development-tools::debugging",
    "development-tools::ffi",
    "development-tools::procedural-macro-helpers",
    "development-tools::profiling",
    "development-tools::testing",
    "email",
    "embedded",
    "emulators",
    "encoding",
    "external-ffi-bindings",
    "filesystem",
    "game-development",
    "game-engines",
    "games",
    "graphics",
    "gui",
    "hardware-support",
    "internationalization",
    "localization",
    "mathematics",
    "memory-management",
    "multimedia",
    "multimedia::audio",
    "multimedia::encoding",
    "multimedia::images",
    "multimedia::video",
    "network-programming",
    "no-std",
    "os",
    "os::linux-apis",
    "os::macos-apis",
    "os::unix-apis",
    "os::windows-apis",
    "parser-implementations",
    "parsing",
    "rendering",
    "rendering::data-formats",
    "rendering::engine",
    "rendering::graphics-api",
    "rust-patterns",
    "science",
    "science::robotics",
    "simulation",
    "template-engine",
    "text-editors",
    "text-processing",
    "value-formatting",
    "visualization",
    "wasm",
    "web-programming",
    "web-programming::http-client",
    "web-programming::http-server",
    "web-programming::websocket",
];

/// What a URL invented to fill a field looks like. Published metadata cannot be taken back.
const PLACEHOLDERS: &[&str] = &[
    "example.invalid",
    "example.com",
    "example.org",
    "example.net",
    ".invalid/",
    "localhost",
    "127.0.0.1",
    "todo",
    "fixme",
    "owner/",
    "your-",
    "<",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is one level below the root")
        .to_path_buf()
}

/// A cargo with only what it needs: its toolchain, its registry cache (offline: the workspace's
/// dependencies are already there) and no `CI`, `HOME` or terminal settings from the caller.
fn cargo() -> Command {
    let mut command = Command::new(env!("CARGO"));
    command.env_clear();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    for (var, default) in [("CARGO_HOME", ".cargo"), ("RUSTUP_HOME", ".rustup")] {
        match std::env::var_os(var) {
            Some(value) => {
                command.env(var, value);
            }
            None => {
                if let Some(home) = &home {
                    command.env(var, home.join(default));
                }
            }
        }
    }
    for var in ["PATH", "RUSTUP_TOOLCHAIN"] {
        if let Some(value) = std::env::var_os(var) {
            command.env(var, value);
        }
    }
    command
        .env("CARGO_NET_OFFLINE", "true")
        .env("CARGO_TERM_COLOR", "never");
    command
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("starting a process");
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn workspace_metadata() -> Value {
    let stdout = run(cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(root().join("Cargo.toml")));
    serde_json::from_str(&stdout).expect("cargo metadata prints JSON")
}

fn str_of<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value[key].as_str().filter(|s| !s.trim().is_empty())
}

fn strings(value: &Value, key: &str) -> Vec<String> {
    value[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `publish = false` is `[]` in `cargo metadata`; `null` means any registry.
fn unpublishable(package: &Value) -> bool {
    package["publish"].as_array().is_some_and(Vec::is_empty)
}

/// Everything that would make `cargo publish` of a shipped crate fail, or publish it with missing
/// or invented metadata.
fn metadata_findings(meta: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    let by_name = |name: &str| packages.iter().find(|p| p["name"] == name);
    for name in SHIPPED {
        let Some(package) = by_name(name) else {
            findings.push(format!("{name}: not in the workspace"));
            continue;
        };
        let dir = Path::new(package["manifest_path"].as_str().unwrap_or_default())
            .parent()
            .unwrap_or(Path::new(""))
            .to_path_buf();
        if unpublishable(package) {
            findings.push(format!("{name}: publish = false"));
        }
        if str_of(package, "description").is_none() {
            findings.push(format!("{name}: no description"));
        }
        match str_of(package, "license") {
            None => findings.push(format!("{name}: no license")),
            Some(license) => {
                if license != "MIT OR Apache-2.0" {
                    findings.push(format!("{name}: license {license:?}, not the workspace's"));
                }
                for file in LICENSE_FILES {
                    if !dir.join(file).is_file() {
                        findings.push(format!("{name}: no {file} in {}", dir.display()));
                    }
                }
            }
        }
        match str_of(package, "readme") {
            None => findings.push(format!("{name}: no readme")),
            Some(readme) => {
                if !dir.join(readme).is_file() {
                    findings.push(format!("{name}: readme {readme} does not exist"));
                }
            }
        }
        if str_of(package, "rust_version").is_none() {
            findings.push(format!("{name}: no rust-version"));
        }
        let keywords = strings(package, "keywords");
        if keywords.is_empty() || keywords.len() > 5 {
            findings.push(format!("{name}: {} keywords (1 to 5)", keywords.len()));
        }
        for keyword in &keywords {
            let valid = (1..=20).contains(&keyword.len())
                && keyword.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && keyword
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_+".contains(c));
            if !valid {
                findings.push(format!(
                    "{name}: keyword {keyword:?} (lowercase, at most 20 characters)"
                ));
            }
        }
        let categories = strings(package, "categories");
        if categories.is_empty() || categories.len() > 5 {
            findings.push(format!("{name}: {} categories (1 to 5)", categories.len()));
        }
        for category in &categories {
            if !CATEGORIES.contains(&category.as_str()) {
                findings.push(format!(
                    "{name}: category {category:?} is not a crates.io slug"
                ));
            }
        }
        for key in ["repository", "homepage", "documentation"] {
            let Some(url) = str_of(package, key) else {
                continue;
            };
            let lower = url.to_ascii_lowercase();
            if !lower.starts_with("https://") {
                findings.push(format!("{name}: {key} {url:?} is not https"));
            }
            if let Some(p) = PLACEHOLDERS.iter().find(|p| lower.contains(*p)) {
                findings.push(format!("{name}: {key} {url:?} is a placeholder ({p})"));
            }
        }
        if let Some(url) = str_of(package, "documentation")
            && url.starts_with("https://docs.rs/")
            && url.trim_end_matches('/') != format!("https://docs.rs/{name}")
        {
            findings.push(format!("{name}: documentation {url:?} is another crate's"));
        }
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            if dep["path"].is_null() || dep["req"] != "*" {
                continue;
            }
            let dep_name = dep["name"].as_str().unwrap_or_default();
            let dev = dep["kind"] == "dev";
            // A path-only dev-dependency on a crate that is never published is dropped from the
            // package; `packaged_files_use_only_what_the_package_keeps` proves no packaged file needs it.
            if !(dev && by_name(dep_name).is_some_and(unpublishable)) {
                findings.push(format!(
                    "{name}: path dependency {dep_name} has no version (cargo would {} it)",
                    if dev { "drop" } else { "refuse" }
                ));
            }
        }
    }
    let members = strings(meta, "workspace_members");
    for package in &packages {
        let name = package["name"].as_str().unwrap_or_default();
        let id = package["id"].as_str().unwrap_or_default();
        if members.iter().any(|m| m == id) && !SHIPPED.contains(&name) && !unpublishable(package) {
            findings.push(format!(
                "{name}: not a shipped crate but publishable (`cargo publish --workspace` would upload it)"
            ));
        }
    }
    findings
}

/// The dependency names a normalised (packaged) `Cargo.toml` keeps as dev-dependencies.
fn packaged_dev_dependencies(manifest: &str) -> Vec<String> {
    manifest
        .lines()
        .filter_map(|line| {
            let header = line.trim().strip_prefix('[')?.strip_suffix(']')?;
            let (_, name) = header.rsplit_once("dev-dependencies.")?;
            Some(name.trim_matches('"').to_owned())
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading an unpacked package") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether `ident` is used as a crate in `source` (`ident::`, `use ident`, `extern crate ident`).
fn uses_crate(source: &str, ident: &str) -> bool {
    let bytes = source.as_bytes();
    source.match_indices(ident).any(|(at, _)| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':') {
            return false;
        }
        let rest = &source[at + ident.len()..];
        let prefix = source[..at].trim_end();
        rest.starts_with("::")
            || ((prefix.ends_with("use") || prefix.ends_with("extern crate"))
                && rest.starts_with(|c: char| !c.is_ascii_alphanumeric() && c != '_'))
    })
}

/// The literal paths of `include_str!("…")` and `include_bytes!("…")` in `source` (a path built
/// with `concat!` is not a literal and is skipped: the verified build catches it in library code).
fn included_paths(source: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for mac in ["include_str!", "include_bytes!"] {
        for (at, _) in source.match_indices(mac) {
            let rest = source[at + mac.len()..].trim_start();
            let Some(rest) = rest.strip_prefix('(') else {
                continue;
            };
            let Some(literal) = rest.trim_start().strip_prefix('"') else {
                continue;
            };
            if let Some(end) = literal.find('"') {
                paths.push(literal[..end].to_owned());
            }
        }
    }
    paths
}

/// `path` with `.` and `..` resolved without touching the file system (the target may not exist).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// A dev-dependency of the original manifest: its package name and the name code uses.
struct DevDep {
    name: String,
    ident: String,
}

fn dev_dependencies(meta: &Value, crate_name: &str) -> Vec<DevDep> {
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    let package = packages
        .iter()
        .find(|p| p["name"] == crate_name)
        .expect("a shipped crate");
    package["dependencies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["kind"] == "dev")
        .map(|d| {
            let name = d["name"].as_str().unwrap_or_default().to_owned();
            let ident = d["rename"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| name.replace('-', "_"));
            DevDep { name, ident }
        })
        .collect()
}

/// What in an unpacked package at `dir` would not compile, or is missing, although it did in the
/// repository: a dropped dev-dependency still used, a file included from outside the package, a
/// licence text or readme left behind.
fn package_findings(dir: &Path, dev_deps: &[DevDep]) -> Vec<String> {
    let mut findings = Vec::new();
    let label = dir.file_name().unwrap_or_default().to_string_lossy();
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
    for file in LICENSE_FILES {
        if !dir.join(file).is_file() {
            findings.push(format!("{label}: {file} is not in the package"));
        }
    }
    let readme = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("readme = "))
        .map(|v| v.trim_matches('"').to_owned());
    match readme {
        Some(readme) if dir.join(&readme).is_file() => {}
        Some(readme) => findings.push(format!("{label}: readme {readme} is not in the package")),
        None => findings.push(format!("{label}: the packaged manifest names no readme")),
    }
    let kept = packaged_dev_dependencies(&manifest);
    let dropped: Vec<&DevDep> = dev_deps
        .iter()
        .filter(|d| !kept.contains(&d.name))
        .collect();
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    files.sort();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap_or_default();
        let shown = file.strip_prefix(dir).unwrap_or(file).display();
        for dep in &dropped {
            if uses_crate(&source, &dep.ident) {
                findings.push(format!(
                    "{label}/{shown} uses dev-dependency {}, which the package drops",
                    dep.name
                ));
            }
        }
        for included in included_paths(&source) {
            let target = lexical(&file.parent().unwrap_or(dir).join(&included));
            if !target.starts_with(dir) || !target.is_file() {
                findings.push(format!(
                    "{label}/{shown} includes {included:?}, which is not in the package"
                ));
            }
        }
    }
    findings
}

/// Packages `crates` as `cargo package` does, without building them (in `scratch`), and unpacks
/// each `.crate` into `unpacked`; returns the unpacked directories.
fn package_and_unpack(crates: &[&str], scratch: &Path, unpacked: &Path) -> Vec<PathBuf> {
    let target = scratch.join("target");
    let mut command = cargo();
    command
        .args(["package", "--no-verify", "--allow-dirty", "--offline"])
        .arg("--manifest-path")
        .arg(root().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target);
    for name in crates {
        command.args(["-p", name]);
    }
    run(&mut command);
    let version = env!("CARGO_PKG_VERSION");
    std::fs::create_dir_all(unpacked).unwrap();
    crates
        .iter()
        .map(|name| {
            let archive = target
                .join("package")
                .join(format!("{name}-{version}.crate"));
            run(Command::new("tar")
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .arg("-xzf")
                .arg(&archive)
                .arg("-C")
                .arg(unpacked));
            unpacked.join(format!("{name}-{version}"))
        })
        .collect()
}

#[test]
fn shipped_crates_have_complete_metadata() {
    let findings = metadata_findings(&workspace_metadata());
    assert!(findings.is_empty(), "{findings:#?}");
}

/// One complete package whose files exist, and the finding each single defect must produce.
#[test]
fn each_missing_or_invented_metadata_key_is_found() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["README.md", "LICENSE-MIT", "LICENSE-APACHE"] {
        std::fs::write(dir.path().join(file), "text").unwrap();
    }
    let manifest = dir.path().join("Cargo.toml");
    let good = |name: &str| {
        json!({
            "name": name,
            "id": format!("path+file:///{name}#0.5.0"),
            "manifest_path": manifest,
            "publish": null,
            "description": "A crate.",
            "license": "MIT OR Apache-2.0",
            "readme": "README.md",
            "rust_version": "1.89",
            "keywords": ["telemetry", "privacy"],
            "categories": ["development-tools"],
            "documentation": format!("https://docs.rs/{name}"),
            "dependencies": [],
        })
    };
    let guard = json!({
        "name": "privacy-guard", "id": "path+file:///privacy-guard#0.5.0", "publish": [],
    });
    let workspace = |packages: Vec<Value>| {
        let members: Vec<Value> = packages.iter().map(|p| p["id"].clone()).collect();
        json!({ "packages": packages, "workspace_members": members })
    };
    let all_good = || -> Vec<Value> {
        let mut packages: Vec<Value> = SHIPPED.iter().map(|n| good(n)).collect();
        packages.push(guard.clone());
        packages
    };
    // The path-only dev-dependency on an unpublished fixture is what the package check covers.
    let mut packages = all_good();
    packages[4]["dependencies"] = json!([
        { "name": "privacy-guard", "kind": "dev", "req": "*", "path": "/privacy-guard" }
    ]);
    assert_eq!(
        metadata_findings(&workspace(packages)),
        Vec::<String>::new()
    );

    type Defect = fn(&mut Value);
    let defects: [(&str, Defect, &str); 17] = [
        (
            "description",
            |p| p["description"] = json!(""),
            "no description",
        ),
        ("license", |p| p["license"] = Value::Null, "no license"),
        (
            "license kind",
            |p| p["license"] = json!("MIT"),
            "not the workspace's",
        ),
        ("readme", |p| p["readme"] = Value::Null, "no readme"),
        (
            "readme file",
            |p| p["readme"] = json!("MISSING.md"),
            "does not exist",
        ),
        (
            "rust-version",
            |p| p["rust_version"] = Value::Null,
            "no rust-version",
        ),
        ("keywords", |p| p["keywords"] = json!([]), "0 keywords"),
        (
            "six keywords",
            |p| p["keywords"] = json!(["a", "b", "c", "d", "e", "f"]),
            "6 keywords",
        ),
        (
            "long keyword",
            |p| p["keywords"] = json!(["differential-privacy1"]),
            "at most 20",
        ),
        (
            "upper-case keyword",
            |p| p["keywords"] = json!(["Telemetry"]),
            "lowercase",
        ),
        (
            "categories",
            |p| p["categories"] = json!([]),
            "0 categories",
        ),
        (
            "unknown category",
            |p| p["categories"] = json!(["telemetry"]),
            "not a crates.io slug",
        ),
        (
            "placeholder repository",
            |p| p["repository"] = json!("https://example.invalid/telemetry-toolkit"),
            "placeholder",
        ),
        (
            "http homepage",
            |p| p["homepage"] = json!("http://docs.example"),
            "not https",
        ),
        (
            "another crate's docs",
            |p| p["documentation"] = json!("https://docs.rs/serde"),
            "another crate's",
        ),
        (
            "publish = false",
            |p| p["publish"] = json!([]),
            "publish = false",
        ),
        (
            "versionless path dependency",
            |p| {
                p["dependencies"] =
                    json!([{ "name": "telemetry-schema", "req": "*", "path": "/schema" }])
            },
            "has no version (cargo would refuse it)",
        ),
    ];
    for (what, defect, expected) in defects {
        let mut packages = all_good();
        defect(&mut packages[2]);
        let findings = metadata_findings(&workspace(packages));
        assert!(
            findings.len() == 1 && findings[0].contains(expected),
            "{what}: expected one finding with {expected:?}, got {findings:#?}"
        );
    }

    let mut packages = all_good();
    std::fs::remove_file(dir.path().join("LICENSE-APACHE")).unwrap();
    packages.truncate(1);
    let findings = metadata_findings(&workspace(packages));
    assert!(
        findings.iter().any(|f| f.contains("no LICENSE-APACHE")),
        "{findings:#?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f.contains("telemetry-cli: not in the workspace")),
        "{findings:#?}"
    );

    std::fs::write(dir.path().join("LICENSE-APACHE"), "text").unwrap();
    let mut packages = all_good();
    packages.push(json!({ "name": "xtask", "id": "path+file:///xtask#0.5.0", "publish": null }));
    let findings = metadata_findings(&workspace(packages));
    assert!(
        findings.len() == 1
            && findings[0].starts_with("xtask: not a shipped crate but publishable"),
        "{findings:#?}"
    );
}

#[test]
fn packaged_files_use_only_what_the_package_keeps() {
    let meta = workspace_metadata();
    let scratch = tempfile::tempdir().unwrap();
    let dirs = package_and_unpack(&SHIPPED, scratch.path(), &scratch.path().join("unpacked"));
    let mut findings = Vec::new();
    for (name, dir) in SHIPPED.iter().zip(&dirs) {
        findings.extend(package_findings(dir, &dev_dependencies(&meta, name)));
    }
    assert!(findings.is_empty(), "{findings:#?}");
    // `cargo install telemetry-cli` reads only the packaged manifest: it must carry the
    // shipping profile, the workspace root's `[profile.release]` (which is not packaged).
    let release = |manifest: &str| -> toml::Value {
        let table: toml::Table = manifest.parse().unwrap();
        table
            .get("profile")
            .and_then(|p| p.get("release"))
            .cloned()
            .unwrap_or_else(|| panic!("no [profile.release] in\n{manifest}"))
    };
    let shipped = release(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap());
    assert_eq!(
        shipped.get("lto"),
        Some(&toml::Value::Boolean(true)),
        "{shipped}"
    );
    let (_, cli) = SHIPPED
        .iter()
        .zip(&dirs)
        .find(|(name, _)| **name == "telemetry-cli")
        .unwrap();
    let packaged = std::fs::read_to_string(cli.join("Cargo.toml")).unwrap();
    assert_eq!(
        release(&packaged),
        shipped,
        "the packaged telemetry-cli's [profile.release]"
    );
}

#[test]
fn a_package_that_lost_a_dev_dependency_or_a_fixture_is_found() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("telemetry-cli-0.5.0");
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    for file in ["README.md", "LICENSE-MIT", "LICENSE-APACHE"] {
        std::fs::write(dir.join(file), "text").unwrap();
    }
    std::fs::write(scratch.path().join("outside.json"), "{}").unwrap();
    std::fs::write(dir.join("tests/inside.json"), "{}").unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"telemetry-cli\"\nreadme = \"README.md\"\n\n\
         [dev-dependencies.tempfile]\nversion = \"3\"\n\n\
         [target.'cfg(unix)'.dev-dependencies.rustix]\nversion = \"1\"\n",
    )
    .unwrap();
    let deps = [
        DevDep {
            name: "tempfile".into(),
            ident: "tempfile".into(),
        },
        DevDep {
            name: "rustix".into(),
            ident: "rustix".into(),
        },
        DevDep {
            name: "privacy-guard".into(),
            ident: "privacy_guard".into(),
        },
    ];
    let clean = "use rustix::fs;\nconst A: &str = include_str!(\"inside.json\");\n\
                 fn f() { tempfile::tempdir(); } // privacy_guard_x::y, my_privacy_guard::z\n";
    std::fs::write(dir.join("tests/a.rs"), clean).unwrap();
    assert_eq!(package_findings(&dir, &deps), Vec::<String>::new());

    std::fs::write(
        dir.join("tests/b.rs"),
        "use privacy_guard::Sandbox;\nconst B: &[u8] = include_bytes! ( \"../../outside.json\" );\n",
    )
    .unwrap();
    std::fs::remove_file(dir.join("LICENSE-MIT")).unwrap();
    let findings = package_findings(&dir, &deps);
    assert_eq!(
        findings,
        [
            "telemetry-cli-0.5.0: LICENSE-MIT is not in the package",
            "telemetry-cli-0.5.0/tests/b.rs uses dev-dependency privacy-guard, which the package drops",
            "telemetry-cli-0.5.0/tests/b.rs includes \"../../outside.json\", which is not in the package",
        ],
        "{findings:#?}"
    );
}

/// Makes `to` hold exactly the files of `from`, rewriting only those whose content differs, so
/// that their modification times tell cargo what changed. A `.crate` stores one fixed time for
/// every file: unpacked over the last build, an edited file would look older than that build and
/// be taken as compiled already.
fn sync_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(to).unwrap() {
        let entry = entry.unwrap();
        let source = from.join(entry.file_name());
        let is_dir = entry.file_type().unwrap().is_dir();
        if !source.exists() || source.is_dir() != is_dir {
            if is_dir {
                std::fs::remove_dir_all(entry.path()).unwrap();
            } else {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
    }
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            sync_dir(&entry.path(), &target);
        } else {
            let content = std::fs::read(entry.path()).unwrap();
            if std::fs::read(&target).ok().as_ref() != Some(&content) {
                std::fs::write(&target, content).unwrap();
            }
        }
    }
}

/// The proof by compilation: every package, with its tests, examples and benchmarks, built from
/// the unpacked `.crate` files alone. The packages form a workspace of their own, in which
/// `[patch.crates-io]` stands for the not-yet-published versions. This replaces `cargo package`'s
/// own verification: that one builds a dependency from the copy it unpacked under
/// `$CARGO_HOME/registry/src` the first time it saw the version, so after a change to an
/// unpublished crate it builds the stale copy (seen here: it failed on code deleted since), and it
/// never builds tests.
#[test]
fn packaged_crates_and_their_tests_compile() {
    let scratch = tempfile::tempdir().unwrap();
    let staged = scratch.path().join("workspace");
    let dirs = package_and_unpack(&SHIPPED, scratch.path(), &staged);
    let mut manifest = String::from("[workspace]\nresolver = \"3\"\nmembers = [\n");
    let mut patch = String::from("\n[patch.crates-io]\n");
    for (name, dir) in SHIPPED.iter().zip(&dirs) {
        let dir = dir.file_name().unwrap().to_string_lossy();
        manifest.push_str(&format!("    \"{dir}\",\n"));
        patch.push_str(&format!("{name} = {{ path = \"{dir}\" }}\n"));
    }
    manifest.push_str("]\n");
    manifest.push_str(&patch);
    std::fs::write(staged.join("Cargo.toml"), manifest).unwrap();
    // The workspace's lock file, not the packages': theirs were resolved against the index at
    // packaging time and may name versions this offline machine has not downloaded; the packages'
    // files are under test here, not the newest semver-compatible versions.
    std::fs::copy(root().join("Cargo.lock"), staged.join("Cargo.lock")).unwrap();
    // Built next to the workspace's own build and kept between runs, so the dependencies stay
    // built and only what changed is compiled again.
    let target = std::env::current_exe()
        .unwrap()
        .ancestors()
        .nth(3)
        .expect("target/<profile>/deps/<test>")
        .join("packaged-tests");
    let packages = target.join("src");
    sync_dir(&staged, &packages);
    // `check`, not `test --no-run`: whether every target compiles is the question, and type
    // checking answers it without code generation or linking (a third of the time, cold).
    run(cargo()
        .args(["check", "--offline", "--workspace", "--all-targets"])
        .arg("--manifest-path")
        .arg(packages.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        // Only whether it compiles matters: no debug info and no incremental state, a quarter of
        // the disk (6 GB with both) and less to write.
        .env("CARGO_PROFILE_DEV_DEBUG", "false")
        .env("CARGO_INCREMENTAL", "0"));
}
