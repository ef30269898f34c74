//! CORS for browser exporters: only the configured origins.
//!
//! An allowed origin is echoed together with `Access-Control-Allow-Credentials: true`: browsers send
//! `navigator.sendBeacon` with credentials, and without that header Chromium blocks the POST after the preflight
//! (OpenTelemetry JS's beacon exporter then reports success while every span is lost). The Collector does the same.
//! `*` is answered as `*` and never with credentials, which the Fetch standard forbids together.

use std::time::Duration;

use http::{header, HeaderValue, Method};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

/// The CORS layer for `origins`, or `None` when CORS is off (no origins configured).
pub(super) fn layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let any = origins.iter().any(|o| o == "*");
    let allow_origin = if any {
        AllowOrigin::any()
    } else {
        let patterns: Vec<String> = origins.iter().map(|o| o.trim_end_matches('/').to_ascii_lowercase()).collect();
        AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            let origin = origin.to_str().unwrap_or_default().to_ascii_lowercase();
            patterns.iter().any(|p| origin_matches(p, &origin))
        })
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::POST, Method::OPTIONS])
            // Exporters send Content-Type, Content-Encoding and their own auth headers; the origin check is the gate.
            .allow_headers(AllowHeaders::mirror_request())
            // A browser may only read Retry-After if it is exposed.
            .expose_headers([header::RETRY_AFTER])
            .allow_credentials(!any)
            .max_age(Duration::from_secs(7200)),
    )
}

/// `*` in a pattern stands for one or more characters of a host name (no `/`).
fn origin_matches(pattern: &str, origin: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == origin,
        Some((prefix, suffix)) => {
            origin.len() > prefix.len() + suffix.len()
                && origin.starts_with(prefix)
                && origin_matches_rest(&origin[prefix.len()..], suffix)
        }
    }
}

fn origin_matches_rest(rest: &str, suffix_pattern: &str) -> bool {
    // The wildcard takes at least one character and never a '/' (it spans labels of the host only).
    (1..=rest.len())
        .any(|n| rest.is_char_boundary(n) && !rest[..n].contains('/') && origin_matches(suffix_pattern, &rest[n..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_origins_match_subdomains_only() {
        let p = "https://*.example.com";
        assert!(origin_matches(p, "https://app.example.com"));
        assert!(origin_matches(p, "https://a.b.example.com"));
        assert!(!origin_matches(p, "https://example.com"));
        assert!(!origin_matches(p, "http://app.example.com"));
        assert!(!origin_matches(p, "https://app.example.com.evil.net"));
        assert!(!origin_matches(p, "https://evil.net/x.example.com"));
        assert!(origin_matches("http://localhost:3000", "http://localhost:3000"));
        assert!(origin_matches("http://localhost:*", "http://localhost:8080"));
    }

    #[test]
    fn no_origins_means_no_cors() {
        assert!(layer(&[]).is_none());
    }
}
