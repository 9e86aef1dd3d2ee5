//! Rule 3: no network in the code of schema, core and cli (and, for schema, no file, env, process or clock).
//!
//! Every non-test source file of the default build (`src/**`, `examples/**`, `build.rs`; not `tests/`,
//! not `#[cfg(test)]`, `#[test]` or `#[cfg(feature = "upload")]` items, not files of such a `mod x;`) is
//! parsed with `syn`. Paths everywhere, including
//! flattened `use` trees, `extern crate` and the token streams of macro calls, are checked against the
//! forbidden lists. Comments and string literals are not code and are not matched. The seed's grep
//! recipe, adapted to this repo, runs as well and must print nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::visit::{self, Visit};

use super::RuleReport;

/// The crates scanned, and whether the purity lists (fs, env, process, clock) apply too.
pub const SCOPES: &[(&str, &str, bool)] = &[
    ("telemetry-schema", "crates/telemetry-schema", true),
    ("telemetry-core", "crates/telemetry-core", false),
    ("telemetry-cli", "crates/telemetry-cli", false),
];

/// Network crates as they appear in paths (`ureq::get`, `use reqwest::Client`, `extern crate curl`).
pub const NETWORK_CRATE_ROOTS: &[&str] = &[
    "ureq",
    "reqwest",
    "hyper",
    "hyper_util",
    "h2",
    "h3",
    "quinn",
    "tokio",
    "async_std",
    "smol",
    "mio",
    "socket2",
    "curl",
    "isahc",
    "attohttpc",
    "minreq",
    "surf",
    "ehttp",
    "http_req",
    "native_tls",
    "openssl",
    "rustls",
    "tungstenite",
    "hickory_resolver",
    "trust_dns_resolver",
    "telemetry_transport",
];
/// Socket types and traits, wherever they are named.
pub const NETWORK_IDENTS: &[&str] = &["TcpStream", "TcpListener", "UdpSocket", "ToSocketAddrs"];
/// Network modules.
pub const NETWORK_MODULES: &[&[&str]] = &[&["std", "net"], &["core", "net"]];
/// Plain address values in those modules: parsing or printing an IP (e.g. to redact one) does no I/O.
/// Everything else in `std::net` (sockets, lookups, the module itself, globs) is forbidden.
pub const PURE_NET_TYPES: &[&str] = &[
    "IpAddr",
    "Ipv4Addr",
    "Ipv6Addr",
    "SocketAddr",
    "SocketAddrV4",
    "SocketAddrV6",
    "AddrParseError",
    "Ipv6MulticastScope",
];
/// What the pure schema crate may not touch: files, environment, processes, the clock (and the network).
pub const PURITY_PATHS: &[&[&str]] = &[
    &["std", "fs"],
    &["std", "env"],
    &["std", "process"],
    &["SystemTime", "now"],
    &["Instant", "now"],
];

/// The seed's verification grep, adapted: Rust HTTP clients and socket types instead of Python ones.
pub const GREP_RECIPE: &str = "grep -rnE 'std::net(;|::[*{]|::(Tcp|Udp|ToSocket))|TcpStream|TcpListener|UdpSocket|ToSocketAddrs|ureq|reqwest|hyper|isahc|attohttpc|curl|socket2' crates/telemetry-schema/src crates/telemetry-core/src crates/telemetry-cli/src crates/telemetry-cli/examples --include='*.rs' | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' | grep -v 'localhost\\|127\\.0\\.0\\.1\\|--endpoint'";

/// Why `path` is forbidden, if it is.
fn verdict(path: &[String], purity: bool) -> Option<String> {
    let starts = |prefix: &[&str]| {
        path.len() >= prefix.len() && path.iter().zip(prefix).all(|(a, b)| a == b)
    };
    let contains = |run: &[&str]| {
        path.windows(run.len())
            .any(|w| w.iter().zip(run).all(|(a, b)| a == b))
    };
    if let Some(m) = NETWORK_MODULES.iter().find(|m| starts(m)) {
        let pure = path
            .get(m.len())
            .is_some_and(|t| PURE_NET_TYPES.contains(&t.as_str()));
        if !pure {
            return Some(format!("network module {}", m.join("::")));
        }
    }
    if let Some(first) = path
        .first()
        .filter(|f| NETWORK_CRATE_ROOTS.contains(&f.as_str()))
    {
        return Some(format!("network crate {first}"));
    }
    if let Some(ident) = path.iter().find(|s| NETWORK_IDENTS.contains(&s.as_str())) {
        return Some(format!("socket API {ident}"));
    }
    if purity
        && let Some(p) = PURITY_PATHS
            .iter()
            .find(|p| starts(p) || (p[0] != "std" && contains(p)))
    {
        return Some(format!("impure: {}", p.join("::")));
    }
    None
}

/// Test code, or code only in `upload` builds (`#[cfg(feature = "upload")]`): neither is in a
/// default build, which is what this rule is about (rule 2 and 4 check the upload build's reach).
fn is_test_attr(attr: &syn::Attribute) -> bool {
    if attr.path().is_ident("test") {
        return true;
    }
    if !attr.path().is_ident("cfg") {
        return false;
    }
    let syn::Meta::List(list) = &attr.meta else {
        return false;
    };
    let mut idents = BTreeSet::new();
    collect_idents(list.tokens.clone(), &mut idents);
    let upload_only = list.tokens.to_string().replace(' ', "") == "feature=\"upload\"";
    (idents.contains("test") && !idents.contains("not")) || upload_only
}

fn collect_idents(tokens: TokenStream, out: &mut BTreeSet<String>) {
    for tree in tokens {
        match tree {
            TokenTree::Ident(i) => {
                out.insert(i.to_string());
            }
            TokenTree::Group(g) => collect_idents(g.stream(), out),
            _ => {}
        }
    }
}

/// The attributes of any item (shared with rule 7).
pub(super) fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    use syn::Item::*;
    match item {
        Const(i) => &i.attrs,
        Enum(i) => &i.attrs,
        ExternCrate(i) => &i.attrs,
        Fn(i) => &i.attrs,
        ForeignMod(i) => &i.attrs,
        Impl(i) => &i.attrs,
        Macro(i) => &i.attrs,
        Mod(i) => &i.attrs,
        Static(i) => &i.attrs,
        Struct(i) => &i.attrs,
        Trait(i) => &i.attrs,
        TraitAlias(i) => &i.attrs,
        Type(i) => &i.attrs,
        Union(i) => &i.attrs,
        Use(i) => &i.attrs,
        _ => &[],
    }
}

fn flatten_use(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<(Vec<String>, Span)>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) if n.ident == "self" => out.push((prefix.clone(), n.ident.span())),
        syn::UseTree::Name(n) => out.push((with(prefix, &n.ident), n.ident.span())),
        syn::UseTree::Rename(r) => out.push((with(prefix, &r.ident), r.ident.span())),
        syn::UseTree::Glob(g) => out.push((prefix.clone(), g.star_token.span)),
        syn::UseTree::Group(g) => {
            for tree in &g.items {
                flatten_use(tree, prefix, out);
            }
        }
    }
}

fn with(prefix: &[String], ident: &syn::Ident) -> Vec<String> {
    let mut path = prefix.to_vec();
    path.push(ident.to_string());
    path
}

struct Scanner<'a> {
    file: &'a str,
    purity: bool,
    findings: Vec<String>,
    /// `#[cfg(test)] mod name;` declarations: their files are test code.
    test_modules: Vec<String>,
}

impl Scanner<'_> {
    fn check(&mut self, path: &[String], span: Span) {
        if let Some(why) = verdict(path, self.purity) {
            self.findings.push(format!(
                "{}:{}: `{}` ({why})",
                self.file,
                span.start().line,
                path.join("::")
            ));
        }
    }

    /// Paths inside a macro's tokens: runs of `ident (:: ident)*`.
    fn scan_tokens(&mut self, tokens: TokenStream) {
        let mut run: Vec<String> = Vec::new();
        let mut span = Span::call_site();
        let mut colons = 0;
        for tree in tokens {
            match tree {
                TokenTree::Ident(ident) => {
                    if colons != 2 && !run.is_empty() {
                        self.check(&std::mem::take(&mut run), span);
                    }
                    if run.is_empty() {
                        span = ident.span();
                    }
                    run.push(ident.to_string());
                    colons = 0;
                }
                TokenTree::Punct(p) if p.as_char() == ':' && colons < 2 => colons += 1,
                other => {
                    if !run.is_empty() {
                        self.check(&std::mem::take(&mut run), span);
                    }
                    colons = 0;
                    if let TokenTree::Group(group) = other {
                        self.scan_tokens(group.stream());
                    }
                }
            }
        }
        if !run.is_empty() {
            self.check(&run, span);
        }
    }
}

impl<'ast> Visit<'ast> for Scanner<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if item_attrs(item).iter().any(is_test_attr) {
            if let syn::Item::Mod(m) = item
                && m.content.is_none()
            {
                self.test_modules.push(m.ident.to_string());
            }
            return;
        }
        visit::visit_item(self, item);
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !f.attrs.iter().any(is_test_attr) {
            visit::visit_impl_item_fn(self, f);
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut paths = Vec::new();
        flatten_use(&u.tree, &mut Vec::new(), &mut paths);
        for (path, span) in paths {
            self.check(&path, span);
        }
    }

    fn visit_item_extern_crate(&mut self, e: &'ast syn::ItemExternCrate) {
        self.check(&[e.ident.to_string()], e.ident.span());
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if let Some(first) = path.segments.first() {
            self.check(&segments, first.ident.span());
        }
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        visit::visit_macro(self, mac);
        self.scan_tokens(mac.tokens.clone());
    }
}

/// Scans one file's text. Returns findings and the names of `#[cfg(test)] mod x;` declarations.
pub fn scan_source(label: &str, text: &str, purity: bool) -> (Vec<String>, Vec<String>) {
    let file = match syn::parse_file(text) {
        Ok(file) => file,
        Err(err) => {
            let line = err.span().start().line;
            return (
                vec![format!("{label}:{line}: cannot parse: {err}")],
                Vec::new(),
            );
        }
    };
    let mut scanner = Scanner {
        file: label,
        purity,
        findings: Vec::new(),
        test_modules: Vec::new(),
    };
    scanner.visit_file(&file);
    (scanner.findings, scanner.test_modules)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The files of a `#[cfg(test)] mod name;` declared in `file`.
fn module_files(file: &Path, name: &str) -> [PathBuf; 2] {
    let dir = file.parent().unwrap_or(Path::new(""));
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let base = if matches!(stem, "mod" | "lib" | "main") {
        dir.to_path_buf()
    } else {
        dir.join(stem)
    };
    [
        base.join(format!("{name}.rs")),
        base.join(name).join("mod.rs"),
    ]
}

/// Scans the crates in [`SCOPES`] under `root`.
pub fn scan_workspace(root: &Path) -> (Vec<String>, usize) {
    let mut findings = Vec::new();
    let mut scanned = 0;
    for (name, dir, purity) in SCOPES {
        let dir = root.join(dir);
        if !dir.join("Cargo.toml").is_file() {
            findings.push(format!("crate {name} not found at {}", dir.display()));
            continue;
        }
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        rust_files(&dir.join("examples"), &mut files);
        if dir.join("build.rs").is_file() {
            files.push(dir.join("build.rs"));
        }
        let mut test_files = BTreeSet::new();
        let mut results = Vec::new();
        for file in &files {
            let label = file
                .strip_prefix(root)
                .unwrap_or(file)
                .display()
                .to_string();
            let text = match std::fs::read_to_string(file) {
                Ok(text) => text,
                Err(err) => {
                    findings.push(format!("{label}: cannot read: {err}"));
                    continue;
                }
            };
            let (found, test_mods) = scan_source(&label, &text, *purity);
            for m in test_mods {
                test_files.extend(module_files(file, &m));
            }
            results.push((file.clone(), found));
        }
        for (file, found) in results {
            if !test_files.contains(&file) {
                scanned += 1;
                findings.extend(found);
            }
        }
    }
    (findings, scanned)
}

/// Runs [`GREP_RECIPE`] in `root`; returns its output (empty is the pass).
pub fn run_grep(root: &Path) -> anyhow::Result<(String, String)> {
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(GREP_RECIPE)
        .current_dir(root)
        .output()?;
    Ok((
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

pub fn check(root: &Path) -> RuleReport {
    let mut report = RuleReport::new(3, "no network in the code");
    let (findings, scanned) = scan_workspace(root);
    for f in findings {
        report.fail(f);
    }
    match run_grep(root) {
        Ok((stdout, stderr)) => {
            report.note(format!("grep recipe: {GREP_RECIPE}"));
            report.note(format!(
                "grep output: {}",
                if stdout.trim().is_empty() {
                    "(empty)".to_owned()
                } else {
                    stdout.trim().to_owned()
                }
            ));
            for line in stdout.lines() {
                report.fail(format!("grep recipe matched (review it): {line}"));
            }
            if !stderr.trim().is_empty() {
                report.fail(format!("grep recipe failed: {}", stderr.trim()));
            }
        }
        Err(err) => report.fail(format!("cannot run the grep recipe: {err}")),
    }
    report.checked = format!(
        "{scanned} non-test source files of {} parsed with syn for std::net, socket types and {} network crates; \
         schema also for std::fs, std::env, std::process, SystemTime::now, Instant::now; plus the grep recipe",
        SCOPES.iter().map(|s| s.0).collect::<Vec<_>>().join(", "),
        NETWORK_CRATE_ROOTS.len()
    );
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str, purity: bool) -> Vec<String> {
        scan_source("x.rs", text, purity).0
    }

    #[test]
    fn every_way_of_naming_the_network_is_found() {
        let src = r#"
use std::{io, net::{self, TcpStream as T}};
use ureq;
extern crate reqwest;
fn a() { let _ = std::net::UdpSocket::bind("0.0.0.0:0"); }
fn b() { let _ = format!("{:?}", hyper::Client::new()); }
fn c<X: ToSocketAddrs>(_: X) {}
fn d() { my_macro!(core::net::TcpStream::connect); }
fn e() { let _ = std::net::Ipv6Addr::LOCALHOST; let _: std::net::IpAddr = "::1".parse().unwrap(); }
use std::net::*;
"#;
        let found = scan(src, false);
        let expect = [
            "x.rs:2: `std::net` (network module std::net)",
            "x.rs:2: `std::net::TcpStream` (network module std::net)",
            "x.rs:3: `ureq` (network crate ureq)",
            "x.rs:4: `reqwest` (network crate reqwest)",
            "x.rs:5: `std::net::UdpSocket::bind` (network module std::net)",
            "x.rs:6: `hyper::Client::new` (network crate hyper)",
            "x.rs:7: `ToSocketAddrs` (socket API ToSocketAddrs)",
            "x.rs:8: `core::net::TcpStream::connect` (network module core::net)",
            "x.rs:10: `std::net` (network module std::net)",
        ];
        assert_eq!(found, expect);
    }

    #[test]
    fn comments_strings_and_tests_are_not_code() {
        let src = r#"
//! Never uses std::net or ureq.
/// TcpStream is not used here.
fn a() -> &'static str { "std::net::TcpStream" }
#[cfg(test)]
mod tests { use std::net::TcpListener; }
#[cfg(all(test, unix))]
fn helper() { let _ = std::net::TcpStream::connect("127.0.0.1:1"); }
#[test]
fn t() { let _ = std::net::UdpSocket::bind("127.0.0.1:0"); }
#[cfg(test)]
mod more;
"#;
        let (found, test_mods) = scan_source("x.rs", src, false);
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(test_mods, ["more"]);
        let upload_only = "#[cfg(feature = \"upload\")]\nmod upload;\n#[cfg(feature = \"upload\")]\nuse telemetry_transport::upload_pending;";
        let (found, upload_mods) = scan_source("x.rs", upload_only, false);
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(upload_mods, ["upload"]);
        let not_upload =
            "#[cfg(not(feature = \"upload\"))]\nuse telemetry_transport::upload_pending;";
        assert_eq!(scan(not_upload, false).len(), 1);
        let not_test = "#[cfg(not(test))]\nfn f() { std::net::TcpStream::connect(\"a:1\"); }";
        assert_eq!(scan(not_test, false).len(), 1);
    }

    #[test]
    fn the_schema_crate_must_be_pure() {
        let src = r#"
use std::{env, fs::File};
fn a() { let _ = std::time::SystemTime::now(); let _ = Instant::now(); std::process::exit(1); }
fn b(t: std::time::SystemTime) -> std::time::SystemTime { t }
"#;
        let found = scan(src, true);
        assert_eq!(
            found,
            [
                "x.rs:2: `std::env` (impure: std::env)",
                "x.rs:2: `std::fs::File` (impure: std::fs)",
                "x.rs:3: `std::time::SystemTime::now` (impure: SystemTime::now)",
                "x.rs:3: `Instant::now` (impure: Instant::now)",
                "x.rs:3: `std::process::exit` (impure: std::process)",
            ]
        );
        assert!(scan(src, false).is_empty(), "purity applies to schema only");
    }

    #[test]
    fn a_fixture_crate_with_network_code_fails_the_rule() {
        let dir = tempfile::tempdir().unwrap();
        for (name, _, _) in SCOPES {
            let krate = dir.path().join("crates").join(name);
            std::fs::create_dir_all(krate.join("src")).unwrap();
            std::fs::write(krate.join("Cargo.toml"), "").unwrap();
            std::fs::write(
                krate.join("src/lib.rs"),
                "#[cfg(test)]\nmod tests;\nmod net_helper;\n",
            )
            .unwrap();
            std::fs::write(krate.join("src/tests.rs"), "use core::net;\n").unwrap();
            std::fs::write(krate.join("src/net_helper.rs"), "pub fn f() {}\n").unwrap();
        }
        std::fs::create_dir_all(dir.path().join("crates/telemetry-cli/examples")).unwrap();
        let clean = check(dir.path());
        assert!(clean.passed(), "{:?}", clean.findings);
        assert!(
            clean.notes.iter().any(|n| n == "grep output: (empty)"),
            "{:?}",
            clean.notes
        );

        std::fs::write(
            dir.path().join("crates/telemetry-core/src/net_helper.rs"),
            "pub fn f() { let _ = std::net::TcpStream::connect(\"198.51.100.1:80\"); }\n",
        )
        .unwrap();
        let report = check(dir.path());
        assert_eq!(report.findings.len(), 2, "{:?}", report.findings);
        assert!(report.findings[0].starts_with(
            "crates/telemetry-core/src/net_helper.rs:1: `std::net::TcpStream::connect`"
        ));
        assert!(report.findings[1].starts_with(
            "grep recipe matched (review it): crates/telemetry-core/src/net_helper.rs:1:"
        ));
    }
}
