//! Rule 1: the dependency edges between workspace crates match the architecture table.
//!
//! The table below is the source of truth; `docs/architecture.md` carries a rendered copy between
//! markers and the rule fails when the copy differs. Every workspace crate must be in the table, and
//! every dependency (normal, build or dev) on another workspace crate must be an allowed edge.

use std::collections::BTreeSet;

use super::RuleReport;
use super::metadata::Metadata;

/// How a crate may depend on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Any kind: normal, build or dev.
    Always,
    /// Only as an optional normal dependency enabled by exactly this feature, never by `default`.
    OnlyViaFeature(&'static str),
    /// Only as an optional normal dependency enabled by exactly this feature, which may be a
    /// default one: on unless the dependent crate's user opts out with `default-features = false`.
    OptionalFeature(&'static str),
    /// Only as a dev-dependency.
    DevOnly,
}

/// One row of the table: `from` may depend on `to`.
pub struct Edge {
    pub from: &'static str,
    pub to: &'static str,
    pub allowed: Allowed,
}

const fn edge(from: &'static str, to: &'static str, allowed: Allowed) -> Edge {
    Edge { from, to, allowed }
}

/// Every workspace crate, with its role. A crate not listed here fails the rule.
pub const CRATES: &[(&str, &str)] = &[
    (
        "telemetry-schema",
        "pure wire types and schemas; depends on no workspace crate",
    ),
    ("telemetry-core", "local state and decisions; no network"),
    (
        "telemetry-derive",
        "`#[derive(Event, Label)]`, a proc-macro re-exported by core; depends on no workspace crate",
    ),
    (
        "telemetry-transport",
        "the only crate that may use the network",
    ),
    (
        "telemetry-cli",
        "the `telemetry` binary and mountable subcommand; nothing depends on it",
    ),
    (
        "telemetry-collector",
        "the operator's side; depends on schema only, never a dependency of the client crates",
    ),
    ("xtask", "project automation; never a dependency"),
    ("privacy-guard", "test support; only ever a dev-dependency"),
    (
        "privacy-guard-preload",
        "test support, compiled by privacy-guard's build script; no edges",
    ),
];

/// The allowed edges. Anything else between workspace crates fails the rule, naming the edge.
pub const EDGES: &[Edge] = &[
    edge("telemetry-core", "telemetry-schema", Allowed::Always),
    // A proc-macro: compile time only, nothing of it is linked. On by default for app authors;
    // `default-features = false` leaves a core without it (events implemented by hand).
    edge(
        "telemetry-core",
        "telemetry-derive",
        Allowed::OptionalFeature("derive"),
    ),
    edge("telemetry-transport", "telemetry-core", Allowed::Always),
    edge("telemetry-transport", "telemetry-schema", Allowed::Always),
    edge("telemetry-cli", "telemetry-core", Allowed::Always),
    edge("telemetry-cli", "telemetry-schema", Allowed::Always),
    edge(
        "telemetry-cli",
        "telemetry-transport",
        Allowed::OnlyViaFeature("upload"),
    ),
    edge("telemetry-collector", "telemetry-schema", Allowed::Always),
    // Its end-to-end tests run the real recorder and uploader against it.
    edge("telemetry-collector", "telemetry-core", Allowed::DevOnly),
    edge(
        "telemetry-collector",
        "telemetry-transport",
        Allowed::DevOnly,
    ),
    edge("xtask", "telemetry-schema", Allowed::Always),
    edge("xtask", "telemetry-core", Allowed::DevOnly),
    edge("xtask", "telemetry-transport", Allowed::DevOnly),
    edge("telemetry-schema", "privacy-guard", Allowed::DevOnly),
    edge("telemetry-core", "privacy-guard", Allowed::DevOnly),
    edge("telemetry-transport", "privacy-guard", Allowed::DevOnly),
    edge("telemetry-cli", "privacy-guard", Allowed::DevOnly),
    edge("xtask", "privacy-guard", Allowed::DevOnly),
];

pub const DOC_PATH: &str = "docs/architecture.md";
/// The heading of the table in [`DOC_PATH`] that must agree with [`EDGES`] (normal edges only).
pub const DOC_HEADING: &str = "## Allowed dependency edges";

/// The table as Markdown: normal edges between shipped crates, in the form `docs/architecture.md` uses.
pub fn render_table() -> String {
    let mut out = String::from("| crate | may depend on |\n| --- | --- |\n");
    for (name, _) in CRATES.iter().filter(|(n, _)| !is_test_support(n)) {
        let targets: Vec<String> = normal_edges(name)
            .map(|e| match e.allowed {
                Allowed::OnlyViaFeature(f) => format!("{} (optional, feature `{f}` only)", e.to),
                Allowed::OptionalFeature(f) => {
                    format!("{} (optional, feature `{f}`, may be a default)", e.to)
                }
                _ => e.to.to_owned(),
            })
            .collect();
        let targets = if targets.is_empty() {
            "—".to_owned()
        } else {
            targets.join(", ")
        };
        out.push_str(&format!("| {name} | {targets} |\n"));
    }
    out
}

fn is_test_support(name: &str) -> bool {
    name.starts_with("privacy-guard")
}

fn normal_edges(from: &str) -> impl Iterator<Item = &'static Edge> + '_ {
    EDGES
        .iter()
        .filter(move |e| e.from == from && e.allowed != Allowed::DevOnly)
}

/// Splits `a, b (x, y), c` at the commas outside parentheses.
fn split_outside_parens(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Compares the doc's edge table with [`EDGES`]; returns the differences.
pub fn check_doc(doc: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let Some((_, after)) = doc.split_once(DOC_HEADING) else {
        return vec![format!("{DOC_PATH}: no \"{DOC_HEADING}\" section")];
    };
    let rows: Vec<Vec<String>> = after
        .lines()
        .skip_while(|l| !l.trim_start().starts_with('|'))
        .take_while(|l| l.trim_start().starts_with('|'))
        .skip(2) // header and separator
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split('|')
                .map(|c| c.replace('`', "").trim().to_owned())
                .collect()
        })
        .collect();
    let mut listed = BTreeSet::new();
    for row in &rows {
        let [name, targets] = &row[..] else {
            problems.push(format!("{DOC_PATH}: cannot read table row {row:?}"));
            continue;
        };
        listed.insert(name.clone());
        // (crate, optional, may be on by default)
        let doc_targets: BTreeSet<(String, bool, bool)> = split_outside_parens(targets)
            .into_iter()
            .map(str::trim)
            .filter(|t| !matches!(*t, "" | "—" | "-" | "nothing"))
            .map(|t| {
                (
                    t.split_whitespace().next().unwrap_or_default().to_owned(),
                    t.contains("optional"),
                    t.contains("default"),
                )
            })
            .collect();
        let table: BTreeSet<(String, bool, bool)> = normal_edges(name)
            .map(|e| {
                (
                    e.to.to_owned(),
                    matches!(
                        e.allowed,
                        Allowed::OnlyViaFeature(_) | Allowed::OptionalFeature(_)
                    ),
                    matches!(e.allowed, Allowed::OptionalFeature(_)),
                )
            })
            .collect();
        if !CRATES.iter().any(|(n, _)| n == name) {
            problems.push(format!(
                "{DOC_PATH}: crate `{name}` is not in xtask's table"
            ));
        } else if doc_targets != table {
            problems.push(format!(
                "{DOC_PATH}: edges of `{name}` are {doc_targets:?} in the doc but {table:?} in xtask/src/audit/edges.rs"
            ));
        }
    }
    for (name, _) in CRATES.iter().filter(|(n, _)| !is_test_support(n)) {
        if !listed.contains(*name) {
            problems.push(format!(
                "{DOC_PATH}: crate `{name}` has no row in the edge table"
            ));
        }
    }
    problems
}

fn kind_name(kind: Option<&str>) -> &str {
    kind.unwrap_or("normal")
}

/// Features that `start` turns on, transitively (`feature`, `dep:x`, `x/feat`, `x?/feat` entries).
fn feature_closure(
    features: &std::collections::BTreeMap<String, Vec<String>>,
    start: &str,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![start.to_owned()];
    while let Some(f) = todo.pop() {
        if !seen.insert(f.clone()) {
            continue;
        }
        for item in features.get(&f).into_iter().flatten() {
            todo.push(item.clone());
        }
    }
    seen
}

/// Does feature entry `item` enable dependency `dep`?
fn enables(item: &str, dep: &str) -> bool {
    item == dep
        || item.strip_prefix("dep:") == Some(dep)
        || item
            .strip_prefix(dep)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Checks the edges in `meta` (and, when given, the copy of the table in the architecture doc).
pub fn check(meta: &Metadata, doc: Option<&str>) -> RuleReport {
    let mut report = RuleReport::new(1, "dependency edges");
    let members = meta.members();
    let names: BTreeSet<&str> = members.iter().map(|p| p.name.as_str()).collect();
    let mut edges_seen = 0;
    for package in &members {
        if !CRATES.iter().any(|(n, _)| *n == package.name) {
            report.fail(format!(
                "workspace crate `{}` is not in the architecture table (xtask/src/audit/edges.rs)",
                package.name
            ));
        }
        for dep in package
            .dependencies
            .iter()
            .filter(|d| names.contains(d.name.as_str()))
        {
            edges_seen += 1;
            let kind = dep.kind.as_deref();
            let label = format!("{} -> {} ({})", package.name, dep.name, kind_name(kind));
            let Some(rule) = EDGES
                .iter()
                .find(|e| e.from == package.name && e.to == dep.name)
            else {
                report.fail(format!(
                    "edge {label} is not allowed by the architecture table"
                ));
                continue;
            };
            match rule.allowed {
                Allowed::Always => {}
                Allowed::DevOnly if kind == Some("dev") => {}
                Allowed::DevOnly => {
                    report.fail(format!("edge {label} is allowed as a dev-dependency only"))
                }
                Allowed::OnlyViaFeature(feature) | Allowed::OptionalFeature(feature) => {
                    let default_ok = matches!(rule.allowed, Allowed::OptionalFeature(_));
                    if kind.is_some() || !dep.optional {
                        report.fail(format!(
                            "edge {label}{} must be an optional normal dependency enabled only by feature `{feature}`",
                            if dep.optional { "" } else { ", not optional," }
                        ));
                        continue;
                    }
                    for (name, items) in &package.features {
                        if name != feature && items.iter().any(|i| enables(i, &dep.name)) {
                            report
                                .fail(format!("edge {label} is also enabled by feature `{name}`"));
                        }
                    }
                    if !package
                        .features
                        .get(feature)
                        .is_some_and(|items| items.iter().any(|i| enables(i, &dep.name)))
                    {
                        report.fail(format!(
                            "edge {label}: feature `{feature}` does not enable it"
                        ));
                    }
                    if !default_ok
                        && feature_closure(&package.features, "default").contains(feature)
                    {
                        report.fail(format!(
                            "edge {label}: feature `{feature}` is on by default in `{}`",
                            package.name
                        ));
                    }
                }
            }
        }
    }
    report.checked = format!(
        "{} workspace crates, {edges_seen} edges between them, against {} allowed edges",
        members.len(),
        EDGES.len()
    );
    if let Some(doc) = doc {
        for problem in check_doc(doc) {
            report.fail(problem);
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::super::metadata::Metadata;
    use super::*;

    /// A workspace whose crates have the given dependencies: `(crate, [(dep, kind, optional)])`.
    #[allow(clippy::type_complexity)]
    fn workspace(crates: &[(&str, &[(&str, Option<&str>, bool)], &str)]) -> Metadata {
        let packages: Vec<serde_json::Value> = crates
            .iter()
            .map(|(name, deps, features)| {
                let deps: Vec<_> = deps
                    .iter()
                    .map(|(d, kind, optional)| serde_json::json!({"name": d, "kind": kind, "optional": optional}))
                    .collect();
                let features: serde_json::Value = serde_json::from_str(features).unwrap();
                serde_json::json!({"id": format!("{name} 0.5.0"), "name": name, "dependencies": deps, "features": features})
            })
            .collect();
        let members: Vec<_> = crates
            .iter()
            .map(|(n, _, _)| format!("{n} 0.5.0"))
            .collect();
        Metadata::parse(
            &serde_json::json!({"packages": packages, "workspace_members": members}).to_string(),
        )
        .unwrap()
    }

    const CLI_FEATURES: &str = r#"{"default": [], "upload": ["dep:telemetry-transport"]}"#;
    const CORE_FEATURES: &str = r#"{"default": ["derive"], "derive": ["dep:telemetry-derive"]}"#;

    #[allow(clippy::type_complexity)]
    fn good() -> Vec<(
        &'static str,
        &'static [(&'static str, Option<&'static str>, bool)],
        &'static str,
    )> {
        vec![
            ("telemetry-schema", &[("serde", None, false)], "{}"),
            (
                "telemetry-core",
                &[
                    ("telemetry-schema", None, false),
                    ("telemetry-derive", None, true),
                    ("privacy-guard", Some("dev"), false),
                ],
                CORE_FEATURES,
            ),
            (
                "telemetry-transport",
                &[
                    ("telemetry-core", None, false),
                    ("telemetry-schema", None, false),
                ],
                "{}",
            ),
            (
                "telemetry-cli",
                &[
                    ("telemetry-core", None, false),
                    ("telemetry-schema", None, false),
                    ("telemetry-transport", None, true),
                ],
                CLI_FEATURES,
            ),
            (
                "telemetry-collector",
                &[
                    ("telemetry-schema", None, false),
                    ("telemetry-core", Some("dev"), false),
                    ("telemetry-transport", Some("dev"), false),
                ],
                "{}",
            ),
            ("xtask", &[("telemetry-schema", None, false)], "{}"),
            ("telemetry-derive", &[("syn", None, false)], "{}"),
        ]
    }

    fn doc() -> String {
        format!(
            "# Architecture\n\n{DOC_HEADING} (normal dependencies)\n\n{}\n## Next\n",
            render_table()
        )
    }

    #[test]
    fn the_architecture_passes() {
        let report = check(&workspace(&good()), Some(&doc()));
        assert!(report.passed(), "{:?}", report.findings);
    }

    #[test]
    fn a_forbidden_edge_is_named() {
        let mut crates = good();
        crates[1] = (
            "telemetry-core",
            &[
                ("telemetry-schema", None, false),
                ("telemetry-cli", None, false),
            ],
            "{}",
        );
        let report = check(&workspace(&crates), None);
        assert_eq!(
            report.findings,
            [
                "edge telemetry-core -> telemetry-cli (normal) is not allowed by the architecture table"
            ]
        );
    }

    #[test]
    fn no_client_crate_may_depend_on_the_collector_and_it_not_on_the_recorder() {
        for (index, kind) in [(1, None), (2, None), (3, None), (3, Some("dev"))] {
            let mut crates = good();
            let mut deps = crates[index].1.to_vec();
            deps.push(("telemetry-collector", kind, false));
            crates[index].1 = Box::leak(deps.into_boxed_slice());
            let report = check(&workspace(&crates), None);
            assert!(
                report
                    .findings
                    .iter()
                    .any(|f| f.contains("-> telemetry-collector") && f.contains("not allowed")),
                "{}: {:?}",
                crates[index].0,
                report.findings
            );
        }
        let mut crates = good();
        crates[4].1 = &[
            ("telemetry-schema", None, false),
            ("telemetry-core", None, false),
        ];
        let report = check(&workspace(&crates), None);
        assert!(
            report.findings[0].contains("telemetry-collector -> telemetry-core (normal)"),
            "{:?}",
            report.findings
        );
    }

    #[test]
    fn schema_may_not_depend_on_core() {
        let mut crates = good();
        crates[0] = ("telemetry-schema", &[("telemetry-core", None, false)], "{}");
        let report = check(&workspace(&crates), None);
        assert!(
            report.findings[0].contains("telemetry-schema -> telemetry-core"),
            "{:?}",
            report.findings
        );
    }

    #[test]
    fn transport_must_stay_optional_and_off_by_default() {
        let mut crates = good();
        crates[3].1 = &[
            ("telemetry-core", None, false),
            ("telemetry-transport", None, false),
        ];
        let report = check(&workspace(&crates), None);
        assert!(
            report.findings[0].contains("not optional"),
            "{:?}",
            report.findings
        );

        let mut crates = good();
        crates[3].2 = r#"{"default": ["upload"], "upload": ["dep:telemetry-transport"]}"#;
        let report = check(&workspace(&crates), None);
        assert!(
            report.findings[0].contains("on by default"),
            "{:?}",
            report.findings
        );

        let mut crates = good();
        crates[3].2 = r#"{"default": [], "upload": ["dep:telemetry-transport"], "net": ["telemetry-transport/x"]}"#;
        let report = check(&workspace(&crates), None);
        assert!(
            report.findings[0].contains("also enabled by feature `net`"),
            "{:?}",
            report.findings
        );
    }

    #[test]
    fn derive_stays_optional_behind_its_feature_which_may_be_default() {
        // As in the workspace: optional, feature `derive`, on by default.
        assert!(check(&workspace(&good()), None).passed());
        // Off by default is stricter, and allowed too.
        let mut crates = good();
        crates[1].2 = r#"{"default": [], "derive": ["dep:telemetry-derive"]}"#;
        assert!(check(&workspace(&crates), None).passed());

        let mut crates = good();
        crates[1].1 = &[
            ("telemetry-schema", None, false),
            ("telemetry-derive", None, false),
        ];
        let report = check(&workspace(&crates), None);
        assert!(
            report.findings[0]
                .contains("telemetry-core -> telemetry-derive (normal), not optional,"),
            "{:?}",
            report.findings
        );

        let mut crates = good();
        crates[1].2 =
            r#"{"default": ["dep:telemetry-derive"], "derive": ["dep:telemetry-derive"]}"#;
        let report = check(&workspace(&crates), None);
        assert!(
            report.findings[0].contains("also enabled by feature `default`"),
            "{:?}",
            report.findings
        );

        let mut crates = good();
        crates[6].1 = &[("syn", None, false), ("telemetry-core", None, false)];
        let report = check(&workspace(&crates), None);
        assert!(
            report.findings[0]
                .contains("telemetry-derive -> telemetry-core (normal) is not allowed"),
            "{:?}",
            report.findings
        );

        // The doc must say that the feature may be a default, and must not for `upload`.
        let not_default = doc().replace(", may be a default)", ")");
        assert!(check_doc(&not_default)[0].contains("edges of `telemetry-core`"));
    }

    #[test]
    fn test_support_is_dev_only_and_unknown_crates_fail() {
        let mut crates = good();
        crates[1].1 = &[
            ("telemetry-schema", None, false),
            ("privacy-guard", None, false),
        ];
        crates.push(("privacy-guard", &[], "{}"));
        crates.push(("mystery", &[], "{}"));
        let report = check(&workspace(&crates), None);
        assert_eq!(report.findings.len(), 2, "{:?}", report.findings);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.contains("`mystery` is not in the architecture table"))
        );
        assert!(report.findings.iter().any(|f| f.contains(
            "telemetry-core -> privacy-guard (normal) is allowed as a dev-dependency only"
        )));
    }

    #[test]
    fn a_stale_doc_table_fails() {
        let stale = doc().replace(
            "| telemetry-core | telemetry-schema,",
            "| telemetry-core | telemetry-schema, telemetry-cli,",
        );
        let report = check(&workspace(&good()), Some(&stale));
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        assert!(
            report.findings[0].contains("edges of `telemetry-core`"),
            "{:?}",
            report.findings
        );
        let not_optional = doc().replace(
            "telemetry-transport (optional, feature `upload` only)",
            "telemetry-transport",
        );
        assert!(check_doc(&not_optional)[0].contains("edges of `telemetry-cli`"));
        let missing_row = doc().replace("| xtask | telemetry-schema |\n", "");
        assert_eq!(
            check_doc(&missing_row),
            ["docs/architecture.md: crate `xtask` has no row in the edge table"]
        );
        let report = check(&workspace(&good()), Some("# Architecture\n"));
        assert!(
            report.findings[0].contains("no \"## Allowed dependency edges\" section"),
            "{:?}",
            report.findings
        );
    }

    #[test]
    fn the_lead_engineers_doc_format_is_understood() {
        let doc = "## Allowed dependency edges (normal dependencies)\n\n| crate | may depend on |\n| --- | --- |\n\
            | telemetry-schema | — |\n\
            | telemetry-core | telemetry-schema, telemetry-derive (optional, feature `derive`, may be a default) |\n\
            | telemetry-derive | — |\n\
            | telemetry-transport | telemetry-core, telemetry-schema |\n\
            | telemetry-cli | telemetry-core, telemetry-schema, telemetry-transport (optional, feature `upload` only) |\n\
            | telemetry-collector | telemetry-schema |\n\
            | xtask | telemetry-schema |\n\n## The decision order\n";
        assert_eq!(check_doc(doc), Vec::<String>::new());
    }
}
