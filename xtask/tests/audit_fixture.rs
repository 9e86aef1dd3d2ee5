//! End to end: `xtask audit` on a real (miniature) cargo workspace passes, and each injected violation
//! makes it fail with a non-zero exit, naming the offending item in the human report and in `--json`.
//! Rules 4 and 5 build or read the real repository and are covered by their unit tests with injected data.

use std::path::{Path, PathBuf};
use std::process::Command;

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");
const RULES: &str = "1,2,3,6";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("workspace");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/workspace"),
        &root,
    );
    (dir, root)
}

struct Audit {
    success: bool,
    human: String,
    json: serde_json::Value,
}

fn audit(root: &Path) -> Audit {
    let run = |json: bool| {
        let mut command = Command::new(XTASK);
        command
            .args(["audit", "--only", RULES, "--workspace"])
            .arg(root)
            .env("CARGO_NET_OFFLINE", "true");
        if json {
            command.arg("--json");
        }
        command.output().unwrap()
    };
    let human = run(false);
    let json = run(true);
    assert_eq!(human.status.success(), json.status.success());
    Audit {
        success: human.status.success(),
        human: String::from_utf8_lossy(&human.stdout).into_owned(),
        json: serde_json::from_slice(&json.stdout).expect("--json prints JSON"),
    }
}

fn findings(audit: &Audit, rule: u64) -> Vec<String> {
    let rule = audit.json["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == rule)
        .expect("rule ran");
    rule["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect()
}

fn edit(root: &Path, file: &str, from: &str, to: &str) {
    let path = root.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} lacks {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn the_clean_fixture_passes() {
    let (_dir, root) = fixture();
    let audit = audit(&root);
    assert!(audit.success, "{}", audit.human);
    assert_eq!(audit.json["ok"], true);
    for id in [1, 2, 3, 6] {
        assert!(
            audit.human.contains(&format!("PASS  rule {id}:")),
            "{}",
            audit.human
        );
    }
    assert!(
        audit.human.contains("grep output: (empty)"),
        "{}",
        audit.human
    );
}

#[test]
fn rule_1_a_non_optional_transport_edge_fails() {
    let (_dir, root) = fixture();
    edit(
        &root,
        "crates/telemetry-cli/Cargo.toml",
        ", optional = true",
        "",
    );
    edit(
        &root,
        "crates/telemetry-cli/Cargo.toml",
        "upload = [\"dep:telemetry-transport\"]",
        "upload = []",
    );
    let audit = audit(&root);
    assert!(!audit.success);
    assert!(audit.human.contains("FAIL  rule 1:"), "{}", audit.human);
    let rule1 = findings(&audit, 1);
    assert!(
        rule1
            .iter()
            .any(|f| f.contains("telemetry-cli -> telemetry-transport (normal), not optional,")),
        "{rule1:?}"
    );
    let rule2 = findings(&audit, 2);
    assert!(
        rule2.contains(&"default build of `telemetry-cli` contains `telemetry-transport`: telemetry-cli -> telemetry-transport".to_owned()),
        "{rule2:?}"
    );
}

#[test]
fn rule_2_a_network_crate_in_core_fails() {
    let (_dir, root) = fixture();
    edit(
        &root,
        "crates/telemetry-core/Cargo.toml",
        "[dependencies]\n",
        "[dependencies]\nureq = { path = \"../../vendor/ureq\" }\n",
    );
    let audit = audit(&root);
    assert!(!audit.success);
    let rule2 = findings(&audit, 2);
    assert!(
        rule2.contains(
            &"default build of `telemetry-core` contains `ureq`: telemetry-core -> ureq".to_owned()
        ),
        "{rule2:?}"
    );
    assert!(
        rule2
            .iter()
            .any(|f| f.starts_with("default build of `telemetry-cli` contains `ureq`")),
        "{rule2:?}"
    );
}

#[test]
fn rule_3_network_code_in_the_cli_fails() {
    let (_dir, root) = fixture();
    edit(
        &root,
        "crates/telemetry-cli/src/lib.rs",
        "pub fn f() {}",
        "pub fn f() {\n    let _ = std::net::TcpStream::connect(\"198.51.100.7:443\");\n}",
    );
    let audit = audit(&root);
    assert!(!audit.success);
    let rule3 = findings(&audit, 3);
    assert_eq!(rule3.len(), 2, "{rule3:?}");
    assert!(
        rule3[0].starts_with("crates/telemetry-cli/src/lib.rs:8: `std::net::TcpStream::connect`"),
        "{rule3:?}"
    );
    assert!(rule3[1].starts_with("grep recipe matched"), "{rule3:?}");
}

#[test]
fn rule_6_a_missing_invariant_or_forbid_fails() {
    let (_dir, root) = fixture();
    edit(
        &root,
        "crates/telemetry-core/src/lib.rs",
        "//! Invariant: fixture.\n",
        "",
    );
    edit(
        &root,
        "crates/telemetry-schema/src/lib.rs",
        "#![forbid(unsafe_code)]\n",
        "",
    );
    edit(
        &root,
        "crates/telemetry-cli/src/lib.rs",
        "pub fn f() {}",
        "pub fn f(p: *const u8) -> u8 {\n    unsafe { *p }\n}",
    );
    let audit = audit(&root);
    assert!(!audit.success);
    let mut rule6 = findings(&audit, 6);
    rule6.sort();
    assert_eq!(
        rule6,
        [
            "crates/telemetry-cli/src/lib.rs:8: `unsafe` in telemetry-cli, which is not an audited exception",
            "telemetry-core: the `//!` doc of crates/telemetry-core/src/lib.rs does not state the crate's invariant (no \"Invariant\")",
            "telemetry-schema: crates/telemetry-schema/src/lib.rs lacks `#![forbid(unsafe_code)]` and is not an audited exception",
        ]
    );
}
