//! Where payloads go: the operator's endpoint, checked, and the proxy (if any) to reach it.

use std::fmt;

use telemetry_core::Env;
use telemetry_core::config::validate_endpoint;

/// An upload endpoint that passed every check: `https://`, or `http://` to a loopback address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: String,
    host: String,
    https: bool,
}

/// Why an endpoint or proxy setting was refused. Nothing was sent and nothing was looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointError(pub String);

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EndpointError {}

impl Endpoint {
    /// Checks `url` (the rules of `telemetry.endpoint`, shared with `config set`).
    pub fn parse(url: &str) -> Result<Self, EndpointError> {
        let url = url.trim();
        validate_endpoint(url).map_err(EndpointError)?;
        let https = url.starts_with("https://");
        let rest = url.split_once("://").map_or("", |(_, rest)| rest);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if rest.contains(['?', '#']) {
            return Err(EndpointError(format!(
                "{url:?} has a query or fragment; give the collector's base URL (payloads are \
                 sent to BASE/submit/APP/RUN_ID)"
            )));
        }
        if authority.contains('@') {
            return Err(EndpointError(format!(
                "{url:?} carries credentials; put them nowhere in the URL (payloads need none)"
            )));
        }
        let host = if authority.starts_with('[') {
            authority.split_inclusive(']').next().unwrap_or("")
        } else {
            authority.split(':').next().unwrap_or("")
        };
        Ok(Self {
            url: url.to_owned(),
            host: host.trim_matches(['[', ']']).to_ascii_lowercase(),
            https,
        })
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where one payload is sent: `BASE/submit/APP/RUN_ID` (the collector's layout, in the way
    /// Mozilla's ingestion edge carries the document id in the URL). `app` and `run_id` come
    /// from the validated payload, so they are an identifier and a UUID: nothing to escape.
    pub fn submit_url(&self, app: &str, run_id: &str) -> String {
        format!("{}/submit/{app}/{run_id}", self.url.trim_end_matches('/'))
    }

    /// The host, lower-cased, without brackets or port.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the endpoint is `https://`.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The proxy to reach this endpoint through, from `HTTPS_PROXY` (https endpoints) or
    /// `HTTP_PROXY` (http ones), then `ALL_PROXY`, upper or lower case, unless `NO_PROXY`
    /// names the host. Read from `env`, the same environment the decision was made from.
    pub fn proxy(&self, env: &Env) -> Result<Option<String>, EndpointError> {
        let var = |name: &str| {
            [name.to_owned(), name.to_ascii_lowercase()]
                .into_iter()
                .find_map(|n| env.get_os(&n).and_then(|v| v.to_str()).map(str::trim))
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        if var("NO_PROXY").is_some_and(|list| no_proxy_matches(&list, &self.host)) {
            return Ok(None);
        }
        let scheme_var = if self.https {
            "HTTPS_PROXY"
        } else {
            "HTTP_PROXY"
        };
        let Some(proxy) = var(scheme_var).or_else(|| var("ALL_PROXY")) else {
            return Ok(None);
        };
        if !(proxy.starts_with("http://") || proxy.starts_with("https://")) {
            return Err(EndpointError(format!(
                "proxy {proxy:?} (from {scheme_var} or ALL_PROXY) is not an http:// or https:// URL"
            )));
        }
        Ok(Some(proxy))
    }
}

/// `NO_PROXY`: comma-separated hosts; `*` matches every host, `example.org` and `.example.org`
/// match it and its subdomains; ports are ignored; IP addresses match exactly.
pub fn no_proxy_matches(list: &str, host: &str) -> bool {
    list.split(',')
        .map(|entry| entry.trim().to_ascii_lowercase())
        .filter(|entry| !entry.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry.trim_start_matches("*.").trim_start_matches('.');
            let entry = if entry.starts_with('[') {
                entry.split_inclusive(']').next().unwrap_or("")
            } else if entry.matches(':').count() == 1 {
                entry.split(':').next().unwrap_or("")
            } else {
                entry
            };
            let entry = entry.trim_matches(['[', ']']);
            host == entry || host.ends_with(&format!(".{entry}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_to_loopback() {
        for ok in [
            "https://t.example.org/v1",
            "http://127.0.0.1:8080/x",
            "http://localhost/",
            "http://[::1]:9/",
        ] {
            assert!(Endpoint::parse(ok).is_ok(), "{ok}");
        }
        let host = |url: &str| Endpoint::parse(url).unwrap().host().to_owned();
        assert_eq!(host("https://T.Example.org:8443/v1"), "t.example.org");
        assert_eq!(host("http://[::1]:9/"), "::1");
        for bad in [
            "http://example.org/",
            "http://127.0.0.1.evil.org/",
            "ftp://x",
            "https://",
            "https://user:pw@t.example.org/",
            "https://t.example.org/?app=x",
            "https://t.example.org/#x",
            "",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn payloads_go_to_submit_app_run_id_under_the_base_url() {
        let run = "01912d68-783e-7a03-8467-5661c1243ad4";
        for (base, url) in [
            (
                "http://127.0.0.1:4318",
                "http://127.0.0.1:4318/submit/acme/",
            ),
            (
                "http://127.0.0.1:4318/",
                "http://127.0.0.1:4318/submit/acme/",
            ),
            (
                "https://t.example.org/telemetry/",
                "https://t.example.org/telemetry/submit/acme/",
            ),
        ] {
            let e = Endpoint::parse(base).unwrap();
            assert_eq!(e.submit_url("acme", run), format!("{url}{run}"));
        }
    }

    #[test]
    fn proxies_come_from_the_given_environment() {
        let https = Endpoint::parse("https://t.example.org/v1").unwrap();
        let http = Endpoint::parse("http://127.0.0.1:9/").unwrap();
        let env = Env::from_pairs([
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
            ("http_proxy", "http://other:8080"),
        ]);
        assert_eq!(
            https.proxy(&env).unwrap().as_deref(),
            Some("http://proxy.corp:3128")
        );
        assert_eq!(
            http.proxy(&env).unwrap().as_deref(),
            Some("http://other:8080")
        );
        let bypass = Env::from_pairs([
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
            ("NO_PROXY", "localhost, .example.org"),
        ]);
        assert_eq!(https.proxy(&bypass).unwrap(), None);
        assert_eq!(
            https.proxy(&Env::from_pairs([("ALL_PROXY", "")])).unwrap(),
            None
        );
        assert!(
            https
                .proxy(&Env::from_pairs([("HTTPS_PROXY", "socks5://x:1")]))
                .is_err()
        );
    }

    #[test]
    fn no_proxy_patterns() {
        assert!(no_proxy_matches("*", "anything"));
        assert!(no_proxy_matches("example.org", "example.org"));
        assert!(no_proxy_matches("example.org", "t.example.org"));
        assert!(no_proxy_matches(".example.org", "t.example.org"));
        assert!(no_proxy_matches("x, 127.0.0.1:8080", "127.0.0.1"));
        assert!(no_proxy_matches("[::1]", "::1"));
        assert!(!no_proxy_matches("example.org", "badexample.org"));
        assert!(!no_proxy_matches("127.0.0.1", "127.0.0.10"));
        assert!(!no_proxy_matches("", "example.org"));
    }
}
