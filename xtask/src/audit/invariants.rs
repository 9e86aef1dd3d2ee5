//! Rule 6: crate invariants are written down, and `unsafe` stays where it was audited.
//!
//! Each workspace crate's root (its library, else its binary) must open with a `//!` doc that states the
//! crate's invariant (the word "Invariant" must appear in it). Every library must carry
//! `#![forbid(unsafe_code)]` unless it is listed in [`UNSAFE_EXCEPTIONS`], and no source file of any other
//! crate (src, tests, examples, benches, build script) may contain the `unsafe` keyword at all.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use proc_macro2::{TokenStream, TokenTree};

use super::RuleReport;
use super::metadata::Metadata;

/// Crates allowed to use `unsafe`, with the reason and what keeps it honest.
pub const UNSAFE_EXCEPTIONS: &[(&str, &str)] = &[(
    "privacy-guard-preload",
    "test-only LD_PRELOAD guard: interposing libc is FFI; every unsafe block has a SAFETY comment \
     (clippy::undocumented_unsafe_blocks = deny); nothing may depend on it (rule 1)",
)];

const LIB_KINDS: &[&str] = &["lib", "rlib", "dylib", "cdylib", "staticlib", "proc-macro"];

/// Checks one crate root's text.
pub fn check_root(name: &str, label: &str, text: &str, is_lib: bool) -> Vec<String> {
    let mut findings = Vec::new();
    let file = match syn::parse_file(text) {
        Ok(file) => file,
        Err(err) => return vec![format!("{name}: {label}: cannot parse: {err}")],
    };
    let mut doc = String::new();
    let mut forbids_unsafe = false;
    for attr in file
        .attrs
        .iter()
        .filter(|a| matches!(a.style, syn::AttrStyle::Inner(_)))
    {
        if attr.path().is_ident("doc")
            && let syn::Meta::NameValue(nv) = &attr.meta
            && let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
        {
            doc.push_str(&s.value());
            doc.push('\n');
        }
        if attr.path().is_ident("forbid")
            && let syn::Meta::List(list) = &attr.meta
        {
            forbids_unsafe |= list
                .tokens
                .to_string()
                .split(',')
                .any(|t| t.trim() == "unsafe_code");
        }
    }
    if doc.trim().is_empty() {
        findings.push(format!("{name}: {label} has no `//!` crate doc"));
    } else if !doc.to_lowercase().contains("invariant") {
        findings.push(format!("{name}: the `//!` doc of {label} does not state the crate's invariant (no \"Invariant\")"));
    }
    let excepted = UNSAFE_EXCEPTIONS.iter().any(|(n, _)| *n == name);
    if is_lib && !excepted && !forbids_unsafe {
        findings.push(format!(
            "{name}: {label} lacks `#![forbid(unsafe_code)]` and is not an audited exception"
        ));
    }
    findings
}

/// Lines of `text` where the `unsafe` keyword occurs (comments and strings excluded).
pub fn unsafe_lines(text: &str) -> Result<Vec<usize>, String> {
    fn walk(tokens: TokenStream, out: &mut Vec<usize>) {
        for tree in tokens {
            match tree {
                TokenTree::Ident(i) if i == "unsafe" => out.push(i.span().start().line),
                TokenTree::Group(g) => walk(g.stream(), out),
                _ => {}
            }
        }
    }
    let tokens = TokenStream::from_str(text).map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    walk(tokens, &mut lines);
    Ok(lines)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let skip = path
            .file_name()
            .is_some_and(|n| n == "target" || n == "fixtures");
        if path.is_dir() && !skip {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

pub fn check(meta: &Metadata, root: &Path) -> RuleReport {
    let mut report = RuleReport::new(6, "crate invariants written, unsafe only where audited");
    let members = meta.members();
    let mut files_scanned = 0;
    for package in &members {
        let label_of = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
        let lib = package
            .targets
            .iter()
            .find(|t| t.kind.iter().any(|k| LIB_KINDS.contains(&k.as_str())));
        let crate_root = lib.or_else(|| {
            package
                .targets
                .iter()
                .find(|t| t.kind.iter().any(|k| k == "bin"))
        });
        let Some(target) = crate_root else {
            report.fail(format!("{}: no library or binary target", package.name));
            continue;
        };
        match std::fs::read_to_string(&target.src_path) {
            Ok(text) => {
                for f in check_root(
                    &package.name,
                    &label_of(&target.src_path),
                    &text,
                    lib.is_some(),
                ) {
                    report.fail(f);
                }
            }
            Err(err) => report.fail(format!(
                "{}: cannot read {}: {err}",
                package.name,
                target.src_path.display()
            )),
        }
        if UNSAFE_EXCEPTIONS.iter().any(|(n, _)| *n == package.name) {
            continue;
        }
        let mut files = Vec::new();
        if let Some(dir) = package.manifest_path.parent() {
            rust_files(dir, &mut files);
        }
        for file in files {
            files_scanned += 1;
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            match unsafe_lines(&text) {
                Ok(lines) => {
                    for line in lines {
                        report.fail(format!(
                            "{}:{line}: `unsafe` in {}, which is not an audited exception",
                            label_of(&file),
                            package.name
                        ));
                    }
                }
                Err(err) => report.fail(format!("{}: cannot tokenize: {err}", label_of(&file))),
            }
        }
    }
    for (name, why) in UNSAFE_EXCEPTIONS {
        if members.iter().any(|p| p.name == *name) {
            report.note(format!("audited unsafe exception: {name}: {why}"));
        } else {
            report.fail(format!(
                "stale unsafe exception: {name} is not a workspace crate"
            ));
        }
    }
    report.checked = format!(
        "`//!` invariant docs of {} crates, #![forbid(unsafe_code)] in libraries, `unsafe` tokens in {files_scanned} files",
        members.len()
    );
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "//! Does things.\n//!\n//! Invariant: never does the wrong thing.\n\n#![forbid(unsafe_code)]\n\npub fn f() {}\n";

    #[test]
    fn a_documented_forbidding_library_passes() {
        assert!(check_root("c", "c/src/lib.rs", GOOD, true).is_empty());
        let bin = "//! A tool.\n//! Invariant: harmless.\nfn main() {}\n";
        assert!(check_root("tool", "tool/src/main.rs", bin, false).is_empty());
    }

    #[test]
    fn missing_doc_invariant_or_forbid_fail() {
        let no_doc = "#![forbid(unsafe_code)]\npub fn f() {}\n";
        assert_eq!(
            check_root("c", "lib.rs", no_doc, true),
            ["c: lib.rs has no `//!` crate doc"]
        );
        let no_invariant = "//! placeholder\n#![forbid(unsafe_code)]\n";
        assert!(
            check_root("c", "lib.rs", no_invariant, true)[0]
                .contains("does not state the crate's invariant")
        );
        let no_forbid = "//! Invariant: x.\n#![deny(unsafe_code)]\n";
        assert_eq!(
            check_root("c", "lib.rs", no_forbid, true),
            ["c: lib.rs lacks `#![forbid(unsafe_code)]` and is not an audited exception"]
        );
        assert!(
            check_root("privacy-guard-preload", "lib.rs", no_forbid, true).is_empty(),
            "audited exception"
        );
    }

    #[test]
    fn unsafe_is_found_in_code_but_not_in_comments_or_strings() {
        let text = "// unsafe in a comment\nfn f() -> &'static str { \"unsafe\" }\n#[unsafe(no_mangle)]\nextern \"C\" fn g() {}\nfn h() { unsafe { } }\n";
        assert_eq!(unsafe_lines(text).unwrap(), [3, 5]);
    }
}
