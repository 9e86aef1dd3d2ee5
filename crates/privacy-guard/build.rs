//! Compiles the LD_PRELOAD guard (`crates/privacy-guard-preload/src/lib.rs`) into this crate's OUT_DIR and
//! passes its absolute path to the library as `PRIVACY_GUARD_PRELOAD`.
//!
//! Why a build script: cargo does not tell a dependent test where a dependency's cdylib is, and an extra
//! "build the guard first" step would make a plain `cargo test` silently depend on CI. Compiling the
//! single-file, dependency-free guard with the same rustc here makes every test that dev-depends on
//! `privacy-guard` find a fresh guard at a path fixed at compile time.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let source = manifest_dir.join("../privacy-guard-preload/src/lib.rs");
    let source = source.canonicalize().unwrap_or_else(|err| {
        panic!(
            "privacy-guard: guard source {} missing: {err}",
            source.display()
        )
    });
    println!("cargo::rerun-if-changed={}", source.display());
    println!("cargo::rerun-if-changed=build.rs");

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let output = out_dir.join("libprivacy_guard_preload.so");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("TARGET");
    let result = Command::new(&rustc)
        .args([
            "--crate-name",
            "privacy_guard_preload",
            "--crate-type",
            "cdylib",
        ])
        .args(["--edition", "2024", "--target", &target])
        .args([
            "-C",
            "opt-level=1",
            "-C",
            "debuginfo=0",
            "--cap-lints",
            "warn",
        ])
        .arg("-o")
        .arg(&output)
        .arg(&source)
        .output()
        .unwrap_or_else(|err| panic!("privacy-guard: cannot run {rustc:?}: {err}"));
    if !result.status.success() {
        panic!(
            "privacy-guard: compiling the guard failed ({}):\n{}",
            result.status,
            String::from_utf8_lossy(&result.stderr)
        );
    }
    println!(
        "cargo::rustc-env=PRIVACY_GUARD_PRELOAD={}",
        output.display()
    );
}
