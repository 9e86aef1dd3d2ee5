//! Rule 7: every use of a Unix-only API in the client crates is inside a `cfg(unix)` item, so
//! schema, core, transport and cli build on every platform (issue #17: off Unix the toolkit
//! builds and fails closed; `cargo check --target x86_64-pc-windows-gnu` in CI is the other
//! half of the proof).
//!
//! What is scanned: `src/**`, `examples/**` and `build.rs` of each crate in [`SCOPES`], parsed
//! with `syn`, unit tests included — a `#[cfg(test)]` module that uses a Unix API must say
//! `#[cfg(all(test, unix))]`, so `cargo test` builds on every platform too. Not scanned:
//! `tests/` and `benches/` (integration tests that need Unix carry `#![cfg(unix)]` by
//! convention; nothing here checks it).
//!
//! What counts as Unix-only ([`verdict`]): a path or `use` beginning with one of
//! [`UNIX_PATHS`] (`std::os::unix`, `std::os::fd`, `rustix`, `libc`, `nix`, ...), one of the
//! Unix-only names [`UNIX_IDENTS`] anywhere, and a method of a Unix extension trait
//! ([`UNIX_TRAIT_METHODS`]: `.mode()`, `.uid()`, `.ino()`, `.is_fifo()`, ...) called where
//! such a trait is imported. Names are resolved through the `use` declarations of the
//! enclosing module and blocks (`use rustix::fs::FileType;` makes `FileType::from_raw_mode`
//! a rustix path; `use std::os;` makes `os::unix::...` one), and the token streams of macro
//! calls are read as paths too.
//!
//! What is gated: an item, module, `impl` member, statement, expression, match arm, field or
//! variant whose `#[cfg(...)]` implies Unix ([`implies_unix`]: `unix`,
//! `target_family = "unix"`, a Unix `target_os`, `all(.., unix, ..)`, or `any(..)` whose every
//! branch implies Unix — `any(unix, windows)` does not, since it builds on Windows), and
//! everything inside it, following `mod x;` declarations from each crate root: a file declared
//! by `#[cfg(unix)] mod unix;` is entirely inside, as is a file with `#![cfg(unix)]`.
//!
//! What it cannot see: types. A method of an extension trait is only recognised by name, and
//! only with the trait imported by name in scope (not through a glob of a non-Unix module, a
//! re-export or `use super::*` across files); a Unix type reached through a type alias, a
//! re-export from another crate or a macro defined elsewhere is not seen; `cfg_attr` and
//! `cfg!` are not gates. The Windows `cargo check` catches what this misses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};

use super::RuleReport;
use super::source_scan::item_attrs;

/// The rule's number and name.
pub const ID: u8 = 7;
pub const NAME: &str = "Unix-only code behind cfg(unix)";

/// The crates scanned: every crate an app depends on (the collector and xtask are Unix tools).
pub const SCOPES: &[(&str, &str)] = &[
    ("telemetry-schema", "crates/telemetry-schema"),
    ("telemetry-core", "crates/telemetry-core"),
    ("telemetry-transport", "crates/telemetry-transport"),
    ("telemetry-cli", "crates/telemetry-cli"),
];

/// Modules and crates that exist only on Unix, as paths begin.
pub const UNIX_PATHS: &[&[&str]] = &[
    &["std", "os", "unix"],
    &["std", "os", "fd"],
    &["std", "os", "linux"],
    &["std", "os", "android"],
    &["std", "os", "macos"],
    &["std", "os", "darwin"],
    &["std", "os", "ios"],
    &["std", "os", "freebsd"],
    &["std", "os", "netbsd"],
    &["std", "os", "openbsd"],
    &["std", "os", "dragonfly"],
    &["std", "os", "illumos"],
    &["std", "os", "solaris"],
    &["rustix"],
    &["libc"],
    &["nix"],
];

/// Types and traits only Unix (and WASI) have, wherever they are named.
pub const UNIX_IDENTS: &[&str] = &[
    "PermissionsExt",
    "DirBuilderExt",
    "FileTypeExt",
    "OwnedFd",
    "BorrowedFd",
    "AsFd",
    "AsRawFd",
    "RawFd",
    "FromRawFd",
    "IntoRawFd",
    "UnixStream",
    "UnixListener",
    "UnixDatagram",
];

/// The methods of the Unix extension traits: a call of one is Unix-only where its trait is
/// imported from a Unix module.
pub const UNIX_TRAIT_METHODS: &[(&str, &[&str])] = &[
    (
        "MetadataExt",
        &[
            "dev",
            "ino",
            "mode",
            "nlink",
            "uid",
            "gid",
            "rdev",
            "size",
            "atime",
            "atime_nsec",
            "mtime",
            "mtime_nsec",
            "ctime",
            "ctime_nsec",
            "blksize",
            "blocks",
        ],
    ),
    ("PermissionsExt", &["mode", "set_mode", "from_mode"]),
    ("DirBuilderExt", &["mode"]),
    ("OpenOptionsExt", &["mode", "custom_flags"]),
    (
        "FileTypeExt",
        &["is_block_device", "is_char_device", "is_fifo", "is_socket"],
    ),
    (
        "FileExt",
        &["read_at", "write_at", "read_exact_at", "write_all_at"],
    ),
    ("OsStrExt", &["as_bytes", "from_bytes"]),
    ("OsStringExt", &["from_vec", "into_vec"]),
    (
        "CommandExt",
        &[
            "uid",
            "gid",
            "groups",
            "exec",
            "arg0",
            "process_group",
            "pre_exec",
        ],
    ),
    (
        "ExitStatusExt",
        &["signal", "core_dumped", "stopped_signal", "continued"],
    ),
    ("AsRawFd", &["as_raw_fd"]),
    ("AsFd", &["as_fd"]),
    ("IntoRawFd", &["into_raw_fd"]),
    ("FromRawFd", &["from_raw_fd"]),
];

/// The `target_os` values that are Unix.
const UNIX_OSES: &[&str] = &[
    "linux",
    "android",
    "macos",
    "ios",
    "tvos",
    "watchos",
    "visionos",
    "freebsd",
    "netbsd",
    "openbsd",
    "dragonfly",
    "illumos",
    "solaris",
];

/// Why `path` (resolved) is Unix-only, if it is.
pub fn verdict(path: &[String]) -> Option<String> {
    let starts = |prefix: &[&str]| {
        path.len() >= prefix.len() && path.iter().zip(prefix).all(|(a, b)| a == b)
    };
    if let Some(prefix) = UNIX_PATHS.iter().find(|p| starts(p)) {
        return Some(if prefix.len() == 1 {
            format!("Unix-only crate {}", prefix[0])
        } else {
            format!("Unix-only module {}", prefix.join("::"))
        });
    }
    path.iter()
        .find(|s| UNIX_IDENTS.contains(&s.as_str()))
        .map(|ident| format!("Unix-only API {ident}"))
}

/// Whether a `cfg` predicate holds only on Unix.
pub fn implies_unix(meta: &syn::Meta) -> bool {
    match meta {
        syn::Meta::Path(p) => p.is_ident("unix"),
        syn::Meta::NameValue(nv) => {
            let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(value),
                ..
            }) = &nv.value
            else {
                return false;
            };
            let value = value.value();
            (nv.path.is_ident("target_family") && value == "unix")
                || (nv.path.is_ident("target_os") && UNIX_OSES.contains(&value.as_str()))
        }
        syn::Meta::List(list) => {
            let Ok(args) =
                list.parse_args_with(Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated)
            else {
                return false;
            };
            if list.path.is_ident("all") {
                args.iter().any(implies_unix)
            } else if list.path.is_ident("any") {
                !args.is_empty() && args.iter().all(implies_unix)
            } else {
                false
            }
        }
    }
}

/// Whether `attrs` hold a `#[cfg(..)]` (or `#![cfg(..)]`) that implies Unix.
pub fn gated(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .parse_args::<syn::Meta>()
                .is_ok_and(|meta| implies_unix(&meta))
    })
}

/// The names a module or block brings into scope with `use`.
#[derive(Clone, Debug, Default)]
struct Scope {
    /// Name → the full path it stands for.
    aliases: BTreeMap<String, Vec<String>>,
    /// Method name → the Unix extension trait in scope that provides it.
    methods: BTreeMap<String, String>,
}

/// One `use` leaf: the path, the name it binds (`None` for a glob), and where it is.
struct UseLeaf {
    path: Vec<String>,
    binds: Option<String>,
    glob: bool,
    span: Span,
}

fn flatten_use(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<UseLeaf>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) if n.ident == "self" => out.push(UseLeaf {
            path: prefix.clone(),
            binds: prefix.last().cloned(),
            glob: false,
            span: n.ident.span(),
        }),
        syn::UseTree::Name(n) => out.push(UseLeaf {
            path: with(prefix, &n.ident),
            binds: Some(n.ident.to_string()),
            glob: false,
            span: n.ident.span(),
        }),
        syn::UseTree::Rename(r) => out.push(UseLeaf {
            path: with(prefix, &r.ident),
            binds: Some(r.rename.to_string()),
            glob: false,
            span: r.ident.span(),
        }),
        syn::UseTree::Glob(g) => out.push(UseLeaf {
            path: prefix.clone(),
            binds: None,
            glob: true,
            span: g.star_token.span,
        }),
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

/// `path` with a leading imported name replaced by what it stands for (a few times: an
/// import may name another).
fn expand(aliases: &BTreeMap<String, Vec<String>>, path: &[String]) -> Vec<String> {
    let mut path = path.to_vec();
    for _ in 0..4 {
        let Some(target) = path.first().and_then(|first| aliases.get(first)) else {
            break;
        };
        if target.first() == path.first() && target.len() == 1 {
            break;
        }
        let mut expanded = target.clone();
        expanded.extend(path.drain(1..));
        path = expanded;
    }
    path
}

/// The scope of a module or block with these items: `inherited` (a block sees its module's
/// names; a module only with `use super::*`) plus its own `use` declarations.
fn scope_of<'a>(items: impl Iterator<Item = &'a syn::Item> + Clone, inherited: &Scope) -> Scope {
    let leaves: Vec<UseLeaf> = items
        .filter_map(|item| match item {
            syn::Item::Use(u) => Some(u),
            _ => None,
        })
        .flat_map(|u| {
            let mut out = Vec::new();
            flatten_use(&u.tree, &mut Vec::new(), &mut out);
            out
        })
        .collect();
    let mut scope = inherited.clone();
    for leaf in &leaves {
        if let Some(name) = &leaf.binds
            && name != "_"
        {
            scope.aliases.insert(name.clone(), leaf.path.clone());
        }
    }
    for leaf in &leaves {
        let path = expand(&scope.aliases, &leaf.path);
        if verdict(&path).is_none() {
            continue;
        }
        let traits: Vec<&str> = if leaf.glob {
            UNIX_TRAIT_METHODS.iter().map(|(t, _)| *t).collect()
        } else {
            path.last().map(String::as_str).into_iter().collect()
        };
        for (name, methods) in UNIX_TRAIT_METHODS {
            if traits.contains(name) {
                for method in *methods {
                    scope
                        .methods
                        .entry((*method).to_owned())
                        .or_insert_with(|| (*name).to_owned());
                }
            }
        }
    }
    scope
}

/// A `mod x;` found in a file: its name, `#[path]`, the inline modules it is nested in, and
/// whether it is gated.
struct ModDecl {
    name: String,
    path_attr: Option<String>,
    nesting: Vec<String>,
    gated: bool,
}

struct Scanner<'a> {
    file: &'a str,
    /// Gates enclosing the current node (the file's own counts as one).
    gates: usize,
    scopes: Vec<Scope>,
    /// Inline modules enclosing the current node.
    nesting: Vec<String>,
    findings: Vec<(usize, String)>,
    modules: Vec<ModDecl>,
}

impl Scanner<'_> {
    fn scope(&self) -> &Scope {
        self.scopes.last().expect("a file scope")
    }

    fn report(&mut self, span: Span, what: String, why: String) {
        if self.gates == 0 {
            let line = span.start().line;
            self.findings.push((
                line,
                format!(
                    "{}:{line}: {what} ({why}) is not inside a cfg(unix) item",
                    self.file
                ),
            ));
        }
    }

    fn check_path(&mut self, path: &[String], span: Span) {
        if matches!(
            path.first().map(String::as_str),
            Some("self" | "super" | "crate")
        ) {
            return;
        }
        let resolved = expand(&self.scope().aliases, path);
        if let Some(why) = verdict(&resolved) {
            let why = if resolved == path {
                why
            } else {
                format!("{}: {why}", resolved.join("::"))
            };
            self.report(span, format!("`{}`", path.join("::")), why);
        } else if path.len() >= 2
            && let Some(tr) = path
                .last()
                .and_then(|f| self.scope().methods.get(f))
                .cloned()
        {
            // `Permissions::from_mode(..)`, `OsStr::from_bytes(..)`: the trait's function
            // called through the type.
            self.report(
                span,
                format!("`{}`", path.join("::")),
                format!("function of the Unix extension trait {tr} imported here"),
            );
        }
    }

    fn check_method(&mut self, name: &str, span: Span) {
        if let Some(tr) = self.scope().methods.get(name).cloned() {
            self.report(
                span,
                format!("`.{name}()`"),
                format!("method of the Unix extension trait {tr} imported here"),
            );
        }
    }

    /// Paths (`ident (:: ident)*`) and method calls (`. ident (`) inside a macro's tokens.
    fn scan_tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut run: Vec<String> = Vec::new();
        let mut span = Span::call_site();
        let mut colons = 0;
        let mut after_dot = false;
        for (i, tree) in trees.iter().enumerate() {
            match tree {
                TokenTree::Ident(ident) => {
                    if colons != 2 && !run.is_empty() {
                        self.check_path(&std::mem::take(&mut run), span);
                    }
                    let call = matches!(
                        trees.get(i + 1),
                        Some(TokenTree::Group(g)) if g.delimiter() == proc_macro2::Delimiter::Parenthesis
                    );
                    if after_dot && call {
                        self.check_method(&ident.to_string(), ident.span());
                    }
                    if run.is_empty() {
                        span = ident.span();
                    }
                    run.push(ident.to_string());
                    colons = 0;
                    after_dot = false;
                }
                TokenTree::Punct(p) if p.as_char() == ':' && colons < 2 => colons += 1,
                other => {
                    if !run.is_empty() {
                        self.check_path(&std::mem::take(&mut run), span);
                    }
                    colons = 0;
                    after_dot = matches!(other, TokenTree::Punct(p) if p.as_char() == '.');
                    if let TokenTree::Group(group) = other {
                        self.scan_tokens(group.stream());
                    }
                }
            }
        }
        if !run.is_empty() {
            self.check_path(&run, span);
        }
    }

    /// Runs `f` with one more gate when `attrs` gate.
    fn gated_by(&mut self, attrs: &[syn::Attribute], f: impl FnOnce(&mut Self)) {
        let gate = gated(attrs);
        self.gates += usize::from(gate);
        f(self);
        self.gates -= usize::from(gate);
    }
}

fn path_attr(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|attr| match &attr.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

fn impl_item_attrs(item: &syn::ImplItem) -> &[syn::Attribute] {
    match item {
        syn::ImplItem::Const(i) => &i.attrs,
        syn::ImplItem::Fn(i) => &i.attrs,
        syn::ImplItem::Type(i) => &i.attrs,
        syn::ImplItem::Macro(i) => &i.attrs,
        _ => &[],
    }
}

fn trait_item_attrs(item: &syn::TraitItem) -> &[syn::Attribute] {
    match item {
        syn::TraitItem::Const(i) => &i.attrs,
        syn::TraitItem::Fn(i) => &i.attrs,
        syn::TraitItem::Type(i) => &i.attrs,
        syn::TraitItem::Macro(i) => &i.attrs,
        _ => &[],
    }
}

fn expr_attrs(expr: &syn::Expr) -> &[syn::Attribute] {
    use syn::Expr::*;
    match expr {
        Array(e) => &e.attrs,
        Assign(e) => &e.attrs,
        Async(e) => &e.attrs,
        Await(e) => &e.attrs,
        Binary(e) => &e.attrs,
        Block(e) => &e.attrs,
        Break(e) => &e.attrs,
        Call(e) => &e.attrs,
        Cast(e) => &e.attrs,
        Closure(e) => &e.attrs,
        Const(e) => &e.attrs,
        Continue(e) => &e.attrs,
        Field(e) => &e.attrs,
        ForLoop(e) => &e.attrs,
        Group(e) => &e.attrs,
        If(e) => &e.attrs,
        Index(e) => &e.attrs,
        Infer(e) => &e.attrs,
        Let(e) => &e.attrs,
        Lit(e) => &e.attrs,
        Loop(e) => &e.attrs,
        Macro(e) => &e.attrs,
        Match(e) => &e.attrs,
        MethodCall(e) => &e.attrs,
        Paren(e) => &e.attrs,
        Path(e) => &e.attrs,
        Range(e) => &e.attrs,
        Reference(e) => &e.attrs,
        Repeat(e) => &e.attrs,
        Return(e) => &e.attrs,
        Struct(e) => &e.attrs,
        Try(e) => &e.attrs,
        TryBlock(e) => &e.attrs,
        Tuple(e) => &e.attrs,
        Unary(e) => &e.attrs,
        Unsafe(e) => &e.attrs,
        While(e) => &e.attrs,
        Yield(e) => &e.attrs,
        _ => &[],
    }
}

impl<'ast> Visit<'ast> for Scanner<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        self.gated_by(item_attrs(item), |s| match item {
            syn::Item::Mod(m) => match &m.content {
                None => s.modules.push(ModDecl {
                    name: m.ident.to_string(),
                    path_attr: path_attr(&m.attrs),
                    nesting: s.nesting.clone(),
                    gated: s.gates > 0,
                }),
                Some((_, items)) => {
                    let inherits = items.iter().any(|item| {
                        matches!(item, syn::Item::Use(u) if matches!(&u.tree,
                            syn::UseTree::Path(p) if p.ident == "super"
                                && matches!(*p.tree, syn::UseTree::Glob(_))))
                    });
                    let parent = if inherits {
                        s.scope().clone()
                    } else {
                        Scope::default()
                    };
                    let scope = scope_of(items.iter(), &parent);
                    s.scopes.push(scope);
                    s.nesting.push(m.ident.to_string());
                    for item in items {
                        s.visit_item(item);
                    }
                    s.nesting.pop();
                    s.scopes.pop();
                }
            },
            _ => visit::visit_item(s, item),
        });
    }

    fn visit_block(&mut self, block: &'ast syn::Block) {
        let items = block.stmts.iter().filter_map(|stmt| match stmt {
            syn::Stmt::Item(item) => Some(item),
            _ => None,
        });
        let scope = scope_of(items, self.scope());
        self.scopes.push(scope);
        visit::visit_block(self, block);
        self.scopes.pop();
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        self.gated_by(impl_item_attrs(item), |s| visit::visit_impl_item(s, item));
    }

    fn visit_trait_item(&mut self, item: &'ast syn::TraitItem) {
        self.gated_by(trait_item_attrs(item), |s| visit::visit_trait_item(s, item));
    }

    fn visit_local(&mut self, local: &'ast syn::Local) {
        self.gated_by(&local.attrs, |s| visit::visit_local(s, local));
    }

    fn visit_expr(&mut self, expr: &'ast syn::Expr) {
        self.gated_by(expr_attrs(expr), |s| visit::visit_expr(s, expr));
    }

    fn visit_stmt_macro(&mut self, mac: &'ast syn::StmtMacro) {
        self.gated_by(&mac.attrs, |s| visit::visit_stmt_macro(s, mac));
    }

    fn visit_arm(&mut self, arm: &'ast syn::Arm) {
        self.gated_by(&arm.attrs, |s| visit::visit_arm(s, arm));
    }

    fn visit_field(&mut self, field: &'ast syn::Field) {
        self.gated_by(&field.attrs, |s| visit::visit_field(s, field));
    }

    fn visit_field_value(&mut self, field: &'ast syn::FieldValue) {
        self.gated_by(&field.attrs, |s| visit::visit_field_value(s, field));
    }

    fn visit_variant(&mut self, variant: &'ast syn::Variant) {
        self.gated_by(&variant.attrs, |s| visit::visit_variant(s, variant));
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut leaves = Vec::new();
        flatten_use(&u.tree, &mut Vec::new(), &mut leaves);
        for leaf in leaves {
            self.check_path(&leaf.path, leaf.span);
        }
    }

    fn visit_item_extern_crate(&mut self, e: &'ast syn::ItemExternCrate) {
        self.check_path(&[e.ident.to_string()], e.ident.span());
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if let Some(first) = path.segments.first() {
            self.check_path(&segments, first.ident.span());
        }
        visit::visit_path(self, path);
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        self.check_method(&call.method.to_string(), call.method.span());
        visit::visit_expr_method_call(self, call);
    }

    fn visit_attribute(&mut self, _attr: &'ast syn::Attribute) {
        // `#[cfg(unix)]` and friends name no API.
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        visit::visit_macro(self, mac);
        self.scan_tokens(mac.tokens.clone());
    }
}

/// What scanning one file found: findings (sorted by line), its `mod x;` declarations, and
/// whether a gate encloses all of it.
struct FileScan {
    findings: Vec<String>,
    modules: Vec<ModDecl>,
    whole_file_gated: bool,
}

fn scan_file(label: &str, text: &str, gated_from_outside: bool) -> FileScan {
    let file = match syn::parse_file(text) {
        Ok(file) => file,
        Err(err) => {
            let line = err.span().start().line;
            return FileScan {
                findings: vec![format!("{label}:{line}: cannot parse: {err}")],
                modules: Vec::new(),
                whole_file_gated: false,
            };
        }
    };
    let whole_file_gated = gated_from_outside || gated(&file.attrs);
    let mut scanner = Scanner {
        file: label,
        gates: usize::from(whole_file_gated),
        scopes: vec![scope_of(file.items.iter(), &Scope::default())],
        nesting: Vec::new(),
        findings: Vec::new(),
        modules: Vec::new(),
    };
    for item in &file.items {
        scanner.visit_item(item);
    }
    scanner.findings.sort_by_key(|(line, _)| *line);
    FileScan {
        findings: scanner.findings.into_iter().map(|(_, f)| f).collect(),
        modules: scanner.modules,
        whole_file_gated,
    }
}

/// The file a `mod` declaration in `file` names (the first that exists of `x.rs`, `x/mod.rs`).
fn module_file(file: &Path, is_root_like: bool, decl: &ModDecl) -> Option<PathBuf> {
    let dir = file.parent().unwrap_or(Path::new(""));
    if let Some(path) = &decl.path_attr
        && decl.nesting.is_empty()
    {
        return Some(dir.join(path));
    }
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let mut base = if is_root_like || stem == "mod" {
        dir.to_path_buf()
    } else {
        dir.join(stem)
    };
    for inline in &decl.nesting {
        base = base.join(inline);
    }
    [
        base.join(format!("{}.rs", decl.name)),
        base.join(&decl.name).join("mod.rs"),
    ]
    .into_iter()
    .find(|p| p.is_file())
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

/// The crate roots of the crate in `dir`: library, binaries, examples, build script.
fn crate_roots(dir: &Path) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = ["src/lib.rs", "src/main.rs", "build.rs"]
        .iter()
        .map(|p| dir.join(p))
        .filter(|p| p.is_file())
        .collect();
    for sub in ["src/bin", "examples"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter_map(|p| {
                if p.extension().is_some_and(|e| e == "rs") {
                    Some(p)
                } else {
                    Some(p.join("main.rs")).filter(|m| m.is_file())
                }
            })
            .collect();
        found.sort();
        roots.extend(found);
    }
    roots
}

/// Scans the crates in [`SCOPES`] under `root`: findings, the number of files scanned, and
/// how many of them a `cfg(unix)` gate encloses entirely.
pub fn scan_workspace(root: &Path) -> (Vec<String>, usize, usize) {
    let mut findings = Vec::new();
    let mut scanned = 0;
    let mut whole_files_gated = 0;
    for (name, dir) in SCOPES {
        let dir = root.join(dir);
        if !dir.join("Cargo.toml").is_file() {
            findings.push(format!("crate {name} not found at {}", dir.display()));
            continue;
        }
        let label = |file: &Path| {
            file.strip_prefix(root)
                .unwrap_or(file)
                .display()
                .to_string()
        };
        // Files reached from a root, each with whether a gate encloses it (the first way
        // found; a file reached ungated by any declaration counts as ungated).
        let mut reached: BTreeMap<PathBuf, bool> = BTreeMap::new();
        let mut queue: Vec<(PathBuf, bool, bool)> = crate_roots(&dir)
            .into_iter()
            .map(|root| (root, false, true))
            .collect();
        while let Some((file, gate, root_like)) = queue.pop() {
            match reached.get(&file) {
                Some(&seen) if seen == gate || !seen => continue,
                _ => {}
            }
            reached.insert(file.clone(), gate);
            let Ok(text) = std::fs::read_to_string(&file) else {
                findings.push(format!("{}: cannot read", label(&file)));
                continue;
            };
            let scan = scan_file(&label(&file), &text, gate);
            for decl in &scan.modules {
                if let Some(child) = module_file(&file, root_like, decl) {
                    queue.push((child, gate || decl.gated, false));
                }
            }
        }
        // Every `.rs` file under `src/` and `examples/` is scanned: one no root reaches is
        // scanned as ungated (it may be `include!`d).
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        rust_files(&dir.join("examples"), &mut files);
        if dir.join("build.rs").is_file() {
            files.push(dir.join("build.rs"));
        }
        for file in files {
            let gate = reached.get(&file).copied().unwrap_or(false);
            let Ok(text) = std::fs::read_to_string(&file) else {
                findings.push(format!("{}: cannot read", label(&file)));
                continue;
            };
            scanned += 1;
            let scan = scan_file(&label(&file), &text, gate);
            whole_files_gated += usize::from(scan.whole_file_gated);
            findings.extend(scan.findings);
        }
    }
    (findings, scanned, whole_files_gated)
}

pub fn check(root: &Path) -> RuleReport {
    let mut report = RuleReport::new(ID, NAME);
    let (findings, scanned, gated_files) = scan_workspace(root);
    for f in findings {
        report.fail(f);
    }
    report.checked = format!(
        "{scanned} source files of {} (src/, examples/, build.rs; unit tests included) parsed with syn: \
         every path, `use` and macro token naming std::os::unix, std::os::fd, rustix, libc, nix \
         or a Unix-only type, and every method of a Unix extension trait in scope, must be inside \
         a cfg(unix) item ({gated_files} files are cfg(unix) as a whole)",
        SCOPES.iter().map(|s| s.0).collect::<Vec<_>>().join(", "),
    );
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans one file's text as a crate root (or a module no gate encloses): the findings.
    fn scan_source(label: &str, text: &str) -> Vec<String> {
        scan_file(label, text, false).findings
    }

    /// The issue's injection: an ungated `PermissionsExt` import and an ungated
    /// `rustix::fs::open` call are both reported, with file and line.
    #[test]
    fn ungated_unix_apis_are_reported_with_file_and_line() {
        let src = r#"use std::os::unix::fs::PermissionsExt;

pub fn open(path: &std::path::Path) {
    let _ = rustix::fs::open(path, rustix::fs::OFlags::RDONLY, rustix::fs::Mode::empty());
}
"#;
        let found = scan_source("crates/telemetry-core/src/x.rs", src);
        assert_eq!(
            found,
            [
                "crates/telemetry-core/src/x.rs:1: `std::os::unix::fs::PermissionsExt` (Unix-only module std::os::unix) is not inside a cfg(unix) item",
                "crates/telemetry-core/src/x.rs:4: `rustix::fs::open` (Unix-only crate rustix) is not inside a cfg(unix) item",
                "crates/telemetry-core/src/x.rs:4: `rustix::fs::OFlags::RDONLY` (Unix-only crate rustix) is not inside a cfg(unix) item",
                "crates/telemetry-core/src/x.rs:4: `rustix::fs::Mode::empty` (Unix-only crate rustix) is not inside a cfg(unix) item",
            ]
        );
    }

    /// The same code behind every spelling of a Unix gate is accepted.
    #[test]
    fn gated_unix_apis_are_accepted() {
        for gate in [
            "unix",
            "target_family = \"unix\"",
            "all(test, unix)",
            "any(unix, target_os = \"linux\")",
            "target_os = \"macos\"",
        ] {
            let src = format!(
                r#"#[cfg({gate})]
use std::os::unix::fs::PermissionsExt;

#[cfg({gate})]
pub fn open(path: &std::path::Path) {{
    let _ = rustix::fs::open(path, rustix::fs::OFlags::RDONLY, rustix::fs::Mode::empty());
}}
"#
            );
            assert_eq!(scan_source("x.rs", &src), Vec::<String>::new(), "{gate}");
        }
        let src = "#![cfg(unix)]\nuse std::os::unix::fs::PermissionsExt;\n";
        assert!(scan_source("x.rs", src).is_empty());
    }

    #[test]
    fn gates_that_also_build_elsewhere_do_not_count() {
        for gate in [
            "any(unix, windows)",
            "not(windows)",
            "test",
            "feature = \"unix\"",
            "target_os = \"windows\"",
        ] {
            let src = format!("#[cfg({gate})]\nfn f() {{ let _ = libc::getpid(); }}\n");
            assert_eq!(scan_source("x.rs", &src).len(), 1, "{gate}");
        }
    }

    /// Imports resolve names: a gated import used by ungated code (the bug the Windows build
    /// hits) is reported, whether the name is a path or a trait method.
    #[test]
    fn names_imported_under_a_gate_and_used_without_one_are_reported() {
        let src = r#"#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
#[cfg(unix)]
use rustix::fs::FileType;
use std::os;

fn a(m: &std::fs::Metadata) -> u32 { m.permissions().mode() }
fn b(mode: u32) -> bool { FileType::from_raw_mode(mode) == FileType::Fifo }
fn c() { let _ = os::unix::fs::symlink("a", "b"); }
fn d(f: std::fs::File) -> std::os::fd::OwnedFd { f.into() }
fn e() { println!("{}", std::os::unix::ffi::OsStrExt::as_bytes(std::ffi::OsStr::new("x")).len()); }
fn f(m: &Metadata) -> u32 { m.size() as u32 } // no MetadataExt in scope: std's own methods
fn p(mode: u32) -> std::fs::Permissions { std::fs::Permissions::from_mode(mode) }
#[cfg(unix)]
fn g(m: &std::fs::Metadata) -> u32 { m.permissions().mode() }
mod inner {
    fn h(m: &std::fs::Metadata) -> u32 { m.permissions().mode() } // another scope
}
"#;
        let found = scan_source("x.rs", src);
        let lines: Vec<&str> = found
            .iter()
            .map(|f| f.split(" is not inside").next().unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                "x.rs:7: `.mode()` (method of the Unix extension trait PermissionsExt imported here)",
                "x.rs:8: `FileType::from_raw_mode` (rustix::fs::FileType::from_raw_mode: Unix-only crate rustix)",
                "x.rs:8: `FileType::Fifo` (rustix::fs::FileType::Fifo: Unix-only crate rustix)",
                "x.rs:9: `os::unix::fs::symlink` (std::os::unix::fs::symlink: Unix-only module std::os::unix)",
                "x.rs:10: `std::os::fd::OwnedFd` (Unix-only module std::os::fd)",
                "x.rs:11: `std::os::unix::ffi::OsStrExt::as_bytes` (Unix-only module std::os::unix)",
                "x.rs:13: `std::fs::Permissions::from_mode` (function of the Unix extension trait PermissionsExt imported here)",
            ]
        );
    }

    #[test]
    fn statements_arms_fields_and_impl_members_can_be_gated() {
        let src = r#"
struct S { #[cfg(unix)] fd: std::os::fd::OwnedFd }
impl S {
    #[cfg(unix)]
    fn uid() -> u32 { rustix::process::geteuid().as_raw() }
}
fn f(x: u8) {
    #[cfg(unix)]
    let _ = libc::getpid();
    #[cfg(unix)]
    {
        let _ = nix::unistd::getpid();
    }
    #[cfg(unix)]
    println!("{}", libc::getpid());
    match x {
        #[cfg(unix)]
        0 => drop(rustix::process::getpid()),
        _ => {}
    }
    let _ = rustix::process::getpid();
}
"#;
        let found = scan_source("x.rs", src);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("x.rs:21: `rustix::process::getpid`"));
    }

    #[test]
    fn macro_tokens_are_read_too() {
        let src = "fn f() { assert!(rustix::process::geteuid().is_root()); }\n\
                   #[cfg(unix)] use std::os::unix::fs::MetadataExt;\n\
                   fn g(m: &std::fs::Metadata) { println!(\"{}\", m.ino()); }\n";
        let found = scan_source("x.rs", src);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("x.rs:1: `rustix::process::geteuid`"));
        assert!(found[1].starts_with("x.rs:3: `.ino()`"), "{found:?}");
    }

    fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (_, krate) in SCOPES {
            let krate = dir.path().join(krate);
            std::fs::create_dir_all(krate.join("src")).unwrap();
            std::fs::write(krate.join("Cargo.toml"), "").unwrap();
            std::fs::write(krate.join("src/lib.rs"), "").unwrap();
        }
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    /// A file declared under `#[cfg(unix)] mod x;` is entirely inside the gate, nested
    /// declarations included; the same file declared without one is reported.
    #[test]
    fn modules_declared_under_a_gate_are_inside_it() {
        let unix_code = "use std::os::unix::fs::PermissionsExt;\nmod deeper;\n";
        let deeper = "pub fn f() -> rustix::process::Pid { rustix::process::getpid() }\n";
        let gated = fixture(&[
            (
                "crates/telemetry-core/src/lib.rs",
                "mod store;\n#[cfg(all(test, unix))]\nmod test_support;\n",
            ),
            (
                "crates/telemetry-core/src/store.rs",
                "#[cfg(unix)]\nmod unix;\n#[cfg(not(unix))]\nmod other;\n",
            ),
            ("crates/telemetry-core/src/store/unix.rs", unix_code),
            ("crates/telemetry-core/src/store/unix/deeper.rs", deeper),
            (
                "crates/telemetry-core/src/store/other.rs",
                "pub fn f() {}\n",
            ),
            (
                "crates/telemetry-core/src/test_support.rs",
                "pub fn fifo() { rustix::fs::mkfifoat(rustix::fs::CWD, \"p\", rustix::fs::Mode::empty()).unwrap(); }\n",
            ),
        ]);
        let report = check(gated.path());
        assert!(report.passed(), "{:?}", report.findings);
        assert!(
            report
                .checked
                .contains("(3 files are cfg(unix) as a whole)"),
            "{}",
            report.checked
        );

        let ungated = fixture(&[
            ("crates/telemetry-cli/src/lib.rs", "mod unix;\n"),
            ("crates/telemetry-cli/src/unix.rs", unix_code),
            ("crates/telemetry-cli/src/unix/deeper.rs", deeper),
            ("crates/telemetry-cli/src/orphan.rs", "use libc::c_int;\n"),
        ]);
        let report = check(ungated.path());
        let mut found: Vec<&str> = report
            .findings
            .iter()
            .map(|f| f.split(": `").next().unwrap())
            .collect();
        found.sort_unstable();
        assert_eq!(
            found,
            [
                "crates/telemetry-cli/src/orphan.rs:1",
                "crates/telemetry-cli/src/unix.rs:1",
                "crates/telemetry-cli/src/unix/deeper.rs:1",
                "crates/telemetry-cli/src/unix/deeper.rs:1",
            ],
            "{:?}",
            report.findings
        );
    }

    /// The real workspace passes: every Unix-only use in the client crates is gated.
    #[test]
    fn the_workspace_passes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let report = check(root);
        assert!(report.passed(), "{:#?}", report.findings);
        // Controls: the Unix store is there, and it is gated as a whole.
        let (_, scanned, gated_files) = scan_workspace(root);
        assert!(scanned > 20, "{scanned}");
        assert!(gated_files >= 1, "{gated_files}");
    }
}
