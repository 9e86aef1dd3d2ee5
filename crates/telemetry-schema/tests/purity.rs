//! The crate's invariant, checked on its own source: no file, environment, process, network or
//! clock access and no randomness in non-test code (`cargo xtask audit` checks it with a parser too).

const SOURCES: &[(&str, &str)] = &[
    ("lib.rs", include_str!("../src/lib.rs")),
    ("catalog.rs", include_str!("../src/catalog.rs")),
    ("codegen.rs", include_str!("../src/codegen.rs")),
    ("dp.rs", include_str!("../src/dp.rs")),
    ("envelope.rs", include_str!("../src/envelope.rs")),
    ("estimate.rs", include_str!("../src/estimate.rs")),
    ("ids.rs", include_str!("../src/ids.rs")),
    ("validate.rs", include_str!("../src/validate.rs")),
];

const FORBIDDEN: &[&str] = &[
    "std::fs",
    "std::env",
    "std::net",
    "std::process",
    "SystemTime",
    "Instant",
    "rand::",
    "getrandom",
    "File::",
    "env!(",
    "option_env!(",
    "TcpStream",
    "UdpSocket",
];

fn scan(source: &str) -> Vec<String> {
    // Non-test code ends where the unit-test module starts.
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .flat_map(|l| {
            FORBIDDEN
                .iter()
                .filter(move |f| l.contains(*f))
                .map(move |f| format!("{f} in {l:?}"))
        })
        .collect()
}

#[test]
fn non_test_code_is_pure() {
    for (name, source) in SOURCES {
        let hits = scan(source);
        assert!(hits.is_empty(), "{name}: {hits:?}");
    }
}

#[test]
fn the_scan_can_fail() {
    assert_eq!(scan("fn f() { let _ = std::fs::read(\"x\"); }").len(), 1);
    assert!(scan("// std::fs in a comment\n").is_empty());
    assert!(scan("fn f() {}\n#[cfg(test)]\nmod t { fn g() { std::env::var(\"X\"); } }").is_empty());
}
