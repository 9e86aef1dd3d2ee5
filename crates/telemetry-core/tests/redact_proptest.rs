//! Property test: sensitive values embedded anywhere in random noise never survive redaction.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use telemetry_core::redact::{MAX_OUTPUT_CHARS, RedactionContext, RedactionStatus, Redactor};

#[derive(Debug, Clone)]
struct Ctx {
    user: String,
    host: String,
    env: Vec<String>,
}

fn ctx_strategy() -> impl Strategy<Value = Ctx> {
    (
        "[a-z]{3,10}",
        "[a-z]{3,8}-[0-9]{1,3}",
        prop::collection::vec("[A-Za-z0-9_.:@/+-]{6,24}", 1..4),
    )
        .prop_map(|(user, host, env)| Ctx { user, host, env })
}

/// A sensitive item: (the text to embed, whether the check is case-insensitive).
fn item_strategy(ctx: Ctx) -> impl Strategy<Value = (String, bool)> {
    let home = format!("/home/{}", ctx.user);
    prop_oneof![
        // Paths: Unix absolute and relative, Windows drive, UNC, tilde.
        "(/[a-zA-Z0-9][a-zA-Z0-9._-]{0,9}){1,5}".prop_map(|p| (p, false)),
        "[a-z0-9_]{1,8}(/[a-zA-Z0-9._-]{1,8}){1,4}".prop_map(|p| (p, false)),
        "[A-Z]:(\\\\[A-Za-z0-9._-]{1,8}){1,4}".prop_map(|p| (p, false)),
        "\\\\\\\\[a-z0-9]{1,8}(\\\\[A-Za-z0-9._-]{1,8}){1,3}".prop_map(|p| (p, false)),
        "~/[a-z0-9._-]{1,8}(/[a-z0-9._-]{1,8}){0,3}".prop_map(|p| (p, false)),
        // The context: home (alone and with a sub-path), username, hostname, env values.
        Just((home.clone(), true)),
        "(/[a-z0-9._-]{1,8}){1,3}".prop_map(move |p| (format!("{home}{p}"), true)),
        Just((ctx.user.clone(), true)),
        Just((ctx.host.clone(), true)),
        prop::sample::select(ctx.env.clone()).prop_map(|e| (e, false)),
        // E-mail, IPv4, IPv6, URLs with credentials.
        "[a-z0-9._+-]{1,12}@[a-z0-9-]{1,10}\\.(com|org|io|co\\.uk)".prop_map(|e| (e, false)),
        any::<u32>().prop_map(|ip| (Ipv4Addr::from(ip).to_string(), false)),
        any::<[u16; 8]>().prop_map(|g| (Ipv6Addr::from(g).to_string(), false)),
        ("(https?|ftp|ssh)", "[a-z0-9]{1,8}", "[A-Za-z0-9]{1,10}", "[a-z0-9.-]{1,12}", "(/[a-z0-9]{0,6}){0,3}")
            .prop_map(|(s, u, p, h, path)| (format!("{s}://{u}:{p}@{h}{path}"), false)),
        // Key and token shapes.
        "AKIA[0-9A-Z]{16}".prop_map(|k| (k, false)),
        "(ghp|gho)_[A-Za-z0-9]{36}".prop_map(|k| (k, false)),
        "github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{30}".prop_map(|k| (k, false)),
        "sk-[A-Za-z0-9_-]{20,48}".prop_map(|k| (k, false)),
        "xox[bp]-[0-9]{10}-[A-Za-z0-9]{12}".prop_map(|k| (k, false)),
        "eyJ[A-Za-z0-9_-]{10,30}\\.eyJ[A-Za-z0-9_-]{10,40}\\.[A-Za-z0-9_-]{20,43}".prop_map(|k| (k, false)),
        "-----BEGIN (RSA |EC )?PRIVATE KEY-----\n[A-Za-z0-9+/]{20,64}\n-----END (RSA |EC )?PRIVATE KEY-----"
            .prop_map(|k| (k, false)),
        // Long random tokens that contain both letters and digits.
        "[A-Za-z]{8,16}[0-9]{2,4}[A-Za-z0-9]{12,24}".prop_map(|k| (k, false)),
    ]
}

const SEPARATORS: &[&str] = &[
    " ", ", ", " (", ") ", " = ", ": ", "\n", " \"", "\" ", "\t", "; ",
];

fn case_fold_contains(haystack: &str, needle: &str, case_insensitive: bool) -> bool {
    if case_insensitive {
        haystack.to_lowercase().contains(&needle.to_lowercase())
    } else {
        haystack.contains(needle)
    }
}

/// (context, sensitive items with their case-insensitivity flag, noise words, separator indices).
type Scenario = (Ctx, Vec<(String, bool)>, Vec<String>, Vec<usize>);

fn scenario() -> impl Strategy<Value = Scenario> {
    ctx_strategy().prop_flat_map(|ctx| {
        let items = prop::collection::vec(item_strategy(ctx.clone()), 1..5);
        let noise = prop::collection::vec("[a-z]{1,9}", 1..12);
        let seps = prop::collection::vec(0..SEPARATORS.len(), 20);
        (Just(ctx), items, noise, seps)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn sensitive_values_never_survive((ctx, items, noise, seps) in scenario()) {
        let redactor = Redactor::new(RedactionContext {
            home: Some(format!("/home/{}", ctx.user)),
            username: Some(ctx.user.clone()),
            hostname: Some(ctx.host.clone()),
            env_values: ctx.env.clone(),
        });
        // Interleave noise words and items with random separators.
        let mut parts: Vec<&str> = Vec::new();
        let mut ni = noise.iter();
        for (item, _) in &items {
            if let Some(w) = ni.next() { parts.push(w); }
            parts.push(item);
        }
        parts.extend(ni.map(String::as_str));
        let mut text = String::new();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 { text.push_str(SEPARATORS[seps[i % seps.len()]]); }
            text.push_str(part);
        }

        let out = redactor.redact(&text);
        for (item, ci) in &items {
            prop_assert!(
                !case_fold_contains(&out.text, item, *ci),
                "{:?} survived in {:?} (input {:?})", item, out.text, text
            );
        }
        prop_assert!(out.text.chars().count() <= MAX_OUTPUT_CHARS);
        prop_assert!(!out.text.contains('\n'));
        match out.status {
            RedactionStatus::Rejected(_) => prop_assert!(out.text.is_empty()),
            RedactionStatus::Redacted(n) => prop_assert_eq!(n, out.replacements),
            RedactionStatus::Clean => prop_assert!(false, "nothing redacted in {:?}", text),
        }
    }

    #[test]
    fn noise_only_text_is_clean_or_unchanged(words in prop::collection::vec("[a-z]{1,9}", 0..20)) {
        let text = words.join(" ");
        let out = Redactor::new(RedactionContext::default()).redact(&text);
        let expected: String = text.chars().take(MAX_OUTPUT_CHARS).collect();
        prop_assert_eq!(out.status, RedactionStatus::Clean);
        prop_assert_eq!(out.text, expected);
    }

    #[test]
    fn arbitrary_input_never_panics(text in any::<String>()) {
        let out = Redactor::new(RedactionContext::from_process()).redact(&text);
        prop_assert!(out.text.chars().count() <= MAX_OUTPUT_CHARS);
    }
}
