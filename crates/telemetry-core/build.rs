//! Reads the version of the compiler building this crate — in a cargo build, the compiler
//! that builds the host app too — for the built-in `component_initialized` event. If it
//! cannot tell, the field is sent as absent: a guess would be a wrong fact.

fn main() {
    println!("cargo::rerun-if-env-changed=RUSTC");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = std::process::Command::new(rustc).arg("--version").output() else {
        return;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)" or "rustc 1.97.0-nightly (…)"
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().nth(1).unwrap_or("");
    let core = version.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if out.status.success() && numeric {
        println!("cargo::rustc-env=TELEMETRY_CORE_RUSTC_VERSION={core}");
    }
}
