//! Rule 2: default builds contain no network crate.
//!
//! Reads the resolved graph from `cargo metadata --filter-platform <host>` (never `cargo tree`, whose exit
//! code and dev-edge handling are easy to misread) and walks it from each root over normal and build
//! edges only: a dev-dependency is not part of a build. Fails when, with default features, schema, core
//! or cli reach `telemetry-transport` or a crate from [`NETWORK_CRATES`]. The same walk with
//! `--features telemetry-cli/upload` must reach `telemetry-transport` from the cli, or the check is blind.

use std::collections::{BTreeMap, VecDeque};

use super::RuleReport;
use super::metadata::Metadata;

/// Crates whose presence means network code (clients, runtimes, sockets, TLS, resolvers).
pub const NETWORK_CRATES: &[&str] = &[
    "ureq",
    "reqwest",
    "hyper",
    "hyper-util",
    "hyper-tls",
    "hyper-rustls",
    "h2",
    "h3",
    "quinn",
    "http-body-util",
    "tokio",
    "tokio-util",
    "async-std",
    "smol",
    "async-io",
    "mio",
    "socket2",
    "curl",
    "curl-sys",
    "isahc",
    "attohttpc",
    "minreq",
    "surf",
    "ehttp",
    "http_req",
    "tiny_http",
    "native-tls",
    "openssl",
    "openssl-sys",
    "rustls",
    "tokio-rustls",
    "webpki-roots",
    "rustls-native-certs",
    "trust-dns-resolver",
    "hickory-resolver",
    "hickory-proto",
    "tungstenite",
    "libnghttp2-sys",
];

/// Features of general system crates that add sockets (`cargo metadata` reports the unified features of
/// each resolved crate, so this is conservative: a dev-only user of the feature also trips it).
pub const NETWORK_FEATURES: &[(&str, &str)] = &[
    ("rustix", "net"),
    ("nix", "net"),
    ("nix", "socket"),
    ("libc", "extra_traits_net"),
];

/// The crates a default build must keep free of network code.
pub const ROOTS: &[&str] = &["telemetry-schema", "telemetry-core", "telemetry-cli"];
pub const TRANSPORT: &str = "telemetry-transport";

/// Every crate reachable from `root` over normal and build edges, each with the chain that reaches it.
pub fn reachable(meta: &Metadata, root: &str) -> BTreeMap<String, Vec<String>> {
    let mut found = BTreeMap::new();
    let (Some(resolve), Some(start)) = (&meta.resolve, meta.package_named(root)) else {
        return found;
    };
    let name_of = |id: &str| {
        meta.package(id)
            .map_or_else(|| id.to_owned(), |p| p.name.clone())
    };
    let mut queue = VecDeque::from([(start.id.clone(), vec![root.to_owned()])]);
    let mut seen = std::collections::BTreeSet::new();
    while let Some((id, chain)) = queue.pop_front() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let Some(node) = resolve.nodes.iter().find(|n| n.id == id) else {
            continue;
        };
        for dep in &node.deps {
            let built = dep
                .dep_kinds
                .iter()
                .any(|k| k.kind.as_deref() != Some("dev"));
            if !built {
                continue;
            }
            let mut next = chain.clone();
            next.push(name_of(&dep.pkg));
            found
                .entry(name_of(&dep.pkg))
                .or_insert_with(|| next.clone());
            queue.push_back((dep.pkg.clone(), next));
        }
    }
    found
}

/// The features the resolve enabled on the crate named `name`.
fn features_of(meta: &Metadata, name: &str) -> Vec<String> {
    let ids: Vec<&str> = meta
        .packages
        .iter()
        .filter(|p| p.name == name)
        .map(|p| p.id.as_str())
        .collect();
    meta.resolve
        .iter()
        .flat_map(|r| &r.nodes)
        .filter(|n| ids.contains(&n.id.as_str()))
        .flat_map(|n| n.features.clone())
        .collect()
}

pub fn check(default: &Metadata, upload: &Metadata) -> RuleReport {
    let mut report = RuleReport::new(2, "no network crates in default builds");
    let mut total = 0;
    for root in ROOTS {
        if default.package_named(root).is_none() {
            report.fail(format!("root crate `{root}` is missing from the workspace"));
            continue;
        }
        let deps = reachable(default, root);
        total += deps.len();
        for (name, chain) in &deps {
            if name == TRANSPORT || NETWORK_CRATES.contains(&name.as_str()) {
                report.fail(format!(
                    "default build of `{root}` contains `{name}`: {}",
                    chain.join(" -> ")
                ));
            }
            for (krate, feature) in NETWORK_FEATURES.iter().filter(|(k, _)| k == name) {
                if features_of(default, krate).iter().any(|f| f == feature) {
                    report.fail(format!(
                        "default build of `{root}` contains `{krate}` with network feature `{feature}`: {}",
                        chain.join(" -> ")
                    ));
                }
            }
        }
    }
    let with_upload = reachable(upload, "telemetry-cli");
    match with_upload.get(TRANSPORT) {
        Some(chain) => {
            let network: Vec<&str> = with_upload
                .keys()
                .filter(|n| NETWORK_CRATES.contains(&n.as_str()))
                .map(String::as_str)
                .collect();
            report.note(format!(
                "control: with --features telemetry-cli/upload the check sees {} ; network crates then: {}",
                chain.join(" -> "),
                if network.is_empty() { "none yet".to_owned() } else { network.join(", ") }
            ));
        }
        None => report.fail(
            "control failed: with --features telemetry-cli/upload the resolve does not reach telemetry-transport \
             from telemetry-cli, so this check cannot see it"
                .to_owned(),
        ),
    }
    report.checked = format!(
        "resolve of {} (default features, normal+build edges, {total} crates reached) against {} network crates + {TRANSPORT}",
        ROOTS.join(", "),
        NETWORK_CRATES.len()
    );
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resolved graph: `(package, [(dep, kind)])`, kind `None` = normal.
    #[allow(clippy::type_complexity)]
    fn graph(edges: &[(&str, &[(&str, Option<&str>)])]) -> Metadata {
        let mut names: Vec<&str> = edges.iter().map(|(n, _)| *n).collect();
        for (_, deps) in edges {
            names.extend(deps.iter().map(|(d, _)| *d));
        }
        names.sort();
        names.dedup();
        let packages: Vec<_> = names
            .iter()
            .map(|n| serde_json::json!({"id": format!("{n}-id"), "name": n}))
            .collect();
        let nodes: Vec<_> = edges
            .iter()
            .map(|(n, deps)| {
                let deps: Vec<_> = deps
                    .iter()
                    .map(|(d, k)| serde_json::json!({"pkg": format!("{d}-id"), "dep_kinds": [{"kind": k}]}))
                    .collect();
                serde_json::json!({"id": format!("{n}-id"), "deps": deps})
            })
            .collect();
        Metadata::parse(
            &serde_json::json!({"packages": packages, "resolve": {"nodes": nodes}}).to_string(),
        )
        .unwrap()
    }

    fn clean() -> Metadata {
        graph(&[
            ("telemetry-schema", &[("serde", None)]),
            (
                "telemetry-core",
                &[("telemetry-schema", None), ("tokio", Some("dev"))],
            ),
            ("telemetry-cli", &[("telemetry-core", None), ("clap", None)]),
        ])
    }

    fn upload() -> Metadata {
        graph(&[
            (
                "telemetry-cli",
                &[("telemetry-core", None), ("telemetry-transport", None)],
            ),
            ("telemetry-transport", &[("ureq", None)]),
        ])
    }

    #[test]
    fn clean_graph_passes_and_dev_edges_do_not_count() {
        let report = check(&clean(), &upload());
        assert!(report.passed(), "{:?}", report.findings);
        assert!(
            report.notes[0].contains("telemetry-cli -> telemetry-transport"),
            "{:?}",
            report.notes
        );
        assert!(report.notes[0].contains("ureq"));
    }

    #[test]
    fn a_network_crate_deep_in_the_graph_is_named_with_its_chain() {
        let bad = graph(&[
            ("telemetry-schema", &[]),
            (
                "telemetry-core",
                &[("telemetry-schema", None), ("helper", None)],
            ),
            ("helper", &[("socket2", Some("build"))]),
            ("telemetry-cli", &[("telemetry-core", None)]),
        ]);
        let report = check(&bad, &upload());
        assert!(report.findings.contains(
            &"default build of `telemetry-core` contains `socket2`: telemetry-core -> helper -> socket2".to_owned()
        ), "{:?}", report.findings);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.starts_with("default build of `telemetry-cli` contains `socket2`"))
        );
    }

    #[test]
    fn a_network_feature_of_a_system_crate_fails() {
        let mut bad = clean();
        bad.packages.push(
            serde_json::from_value(serde_json::json!({"id": "rustix-id", "name": "rustix"}))
                .unwrap(),
        );
        let resolve = bad.resolve.as_mut().unwrap();
        resolve.nodes.push(
            serde_json::from_value(
                serde_json::json!({"id": "rustix-id", "features": ["fs", "net"]}),
            )
            .unwrap(),
        );
        let core = resolve
            .nodes
            .iter_mut()
            .find(|n| n.id == "telemetry-core-id")
            .unwrap();
        core.deps.push(
            serde_json::from_value(
                serde_json::json!({"pkg": "rustix-id", "dep_kinds": [{"kind": null}]}),
            )
            .unwrap(),
        );
        let report = check(&bad, &upload());
        assert!(
            report.findings[0].contains("`rustix` with network feature `net`"),
            "{:?}",
            report.findings
        );
    }

    #[test]
    fn transport_in_a_default_build_fails() {
        let bad = graph(&[
            ("telemetry-schema", &[]),
            ("telemetry-core", &[("telemetry-schema", None)]),
            (
                "telemetry-cli",
                &[("telemetry-core", None), ("telemetry-transport", None)],
            ),
        ]);
        let report = check(&bad, &upload());
        assert_eq!(
            report.findings,
            [
                "default build of `telemetry-cli` contains `telemetry-transport`: telemetry-cli -> telemetry-transport"
            ]
        );
    }

    #[test]
    fn a_blind_upload_control_fails() {
        let report = check(&clean(), &clean());
        assert!(
            report.findings[0].starts_with("control failed"),
            "{:?}",
            report.findings
        );
    }
}
