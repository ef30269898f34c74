//! The request head, read once: every header the chain looks at, taken out of the request before any step runs.
//!
//! Nothing here refuses a request: a header that cannot be read is recorded as such (absent, or the bad
//! forwarded header's name), and the step that needs it decides, so that the order of refusals is the chain's
//! (404/405/415, then 401, then 503/413, then 400), never the order headers happen to be read in.

use http::request::Parts;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method};

use super::respond::Format;
use crate::signal::SignalKind;

/// What the chain knows of a request before its body: parsed from the headers exactly once.
#[derive(Debug)]
pub(crate) struct RequestHead {
    /// The URI's path (no query).
    pub(crate) path: String,
    /// The request method.
    pub(crate) method: Method,
    /// The signal of the path, if it is an OTLP path: the `signal` label of the request metrics, whatever the answer.
    pub(crate) signal: Option<SignalKind>,
    /// `Content-Type` as text; `None` when absent or not visible ASCII (the 415 says `(none)` then).
    pub(crate) content_type: Option<String>,
    /// The body format `Content-Type` names; `None` when it names none OTLP defines.
    pub(crate) format: Option<Format>,
    /// `Content-Length`; `None` when absent or not a number (the body is then read as it comes).
    pub(crate) content_length: Option<usize>,
    /// `Content-Encoding` as text, `(not ASCII)` when it is not; `None` when absent.
    pub(crate) content_encoding: Option<String>,
    /// `User-Agent`, for the curl hint.
    pub(crate) user_agent: Option<HeaderValue>,
    /// `Authorization`, checked against the tokens and never logged.
    pub(crate) authorization: Option<HeaderValue>,
    /// The `--forward-header` values in the configured order, or the name of the first one that cannot be gRPC
    /// metadata.
    pub(crate) forwarded: Result<Vec<(String, String)>, HeaderName>,
}

impl RequestHead {
    /// Reads what the chain needs from `parts`; `forward` are the `--forward-header` names.
    pub(crate) fn parse(parts: &Parts, forward: &[HeaderName]) -> RequestHead {
        let headers = &parts.headers;
        let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let path = parts.uri.path().to_string();
        let content_type = text(header::CONTENT_TYPE).map(str::to_string);
        RequestHead {
            signal: SignalKind::from_http_path(&path),
            path,
            method: parts.method.clone(),
            format: Format::from_content_type(content_type.as_deref()),
            content_type,
            content_length: text(header::CONTENT_LENGTH).and_then(|v| v.parse().ok()),
            content_encoding: headers
                .get(header::CONTENT_ENCODING)
                .map(|v| v.to_str().unwrap_or("(not ASCII)").to_string()),
            user_agent: headers.get(header::USER_AGENT).cloned(),
            authorization: headers.get(header::AUTHORIZATION).cloned(),
            forwarded: forwarded_headers(forward, headers),
        }
    }

    /// The encoding of error bodies: the request's when it names one OTLP defines, else JSON (readable with curl).
    pub(crate) fn error_format(&self) -> Format {
        self.format.unwrap_or(Format::Json)
    }

    /// Whether the client is curl, whose `-d` corrupts binary bodies (see [`super::hint`]).
    pub(crate) fn is_curl(&self) -> bool {
        super::hint::looks_like_curl_d(self.user_agent.as_ref().map(HeaderValue::as_bytes))
    }
}

/// The `--forward-header` values of a request, in the configured order; all values of a repeated header joined
/// with `,` (as HTTP reads them); absent headers left out. Values must be visible ASCII to become gRPC metadata:
/// otherwise the header's name is the error.
pub(crate) fn forwarded_headers(
    names: &[HeaderName],
    headers: &HeaderMap,
) -> Result<Vec<(String, String)>, HeaderName> {
    let mut forwarded = Vec::new();
    for name in names {
        let mut joined: Option<String> = None;
        for value in headers.get_all(name) {
            let text = value
                .to_str()
                .ok()
                .filter(|v| v.bytes().all(|b| (0x20..0x7f).contains(&b)))
                .ok_or_else(|| name.clone())?;
            match &mut joined {
                Some(j) => {
                    j.push(',');
                    j.push_str(text.trim());
                }
                None => joined = Some(text.trim().to_string()),
            }
        }
        if let Some(value) = joined {
            forwarded.push((name.as_str().to_string(), value));
        }
    }
    Ok(forwarded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(build: http::request::Builder, forward: &[&str]) -> RequestHead {
        let (parts, ()) = build.body(()).unwrap().into_parts();
        let forward: Vec<HeaderName> = forward.iter().map(|n| HeaderName::from_bytes(n.as_bytes()).unwrap()).collect();
        RequestHead::parse(&parts, &forward)
    }

    #[test]
    fn every_header_the_chain_needs_is_read_once() {
        let h = head(
            http::Request::builder()
                .method("POST")
                .uri("/v1/logs?x=1")
                .header("content-type", "application/json; charset=utf-8")
                .header("content-length", "42")
                .header("content-encoding", "gzip")
                .header("user-agent", "curl/8.5.0")
                .header("authorization", "Bearer t"),
            &[],
        );
        assert_eq!(h.path, "/v1/logs");
        assert_eq!(h.method, Method::POST);
        assert_eq!(h.signal, Some(SignalKind::Logs));
        assert_eq!(h.content_type.as_deref(), Some("application/json; charset=utf-8"));
        assert_eq!(h.format, Some(Format::Json));
        assert_eq!(h.content_length, Some(42));
        assert_eq!(h.content_encoding.as_deref(), Some("gzip"));
        assert!(h.is_curl());
        assert_eq!(h.authorization.as_ref().map(HeaderValue::as_bytes), Some(&b"Bearer t"[..]));
        assert_eq!(h.forwarded, Ok(Vec::new()));
    }

    #[test]
    fn unreadable_headers_are_recorded_as_such_not_refused() {
        let h = head(
            http::Request::builder()
                .uri("/nowhere")
                .header("content-type", HeaderValue::from_bytes(b"application/json\xff").unwrap())
                .header("content-length", "lots")
                .header("content-encoding", HeaderValue::from_bytes(b"gz\xffip").unwrap()),
            &[],
        );
        assert_eq!((h.signal, h.content_type.as_deref(), h.format, h.content_length), (None, None, None, None));
        assert_eq!(h.content_encoding.as_deref(), Some("(not ASCII)"));
        assert_eq!(h.error_format(), Format::Json);
        assert!(!h.is_curl());
        let pb = head(http::Request::builder().header("content-type", "application/x-protobuf"), &[]);
        assert_eq!(pb.error_format(), Format::Protobuf);
    }

    #[test]
    fn forwarded_headers_keep_the_configured_order_and_join_repeats() {
        let h = head(
            http::Request::builder()
                .header("x-b", " two ")
                .header("x-a", "one")
                .header("x-a", "uno")
                .header("x-unused", "z"),
            &["x-a", "x-b", "x-absent"],
        );
        let expected = vec![("x-a".to_string(), "one,uno".to_string()), ("x-b".to_string(), "two".to_string())];
        assert_eq!(h.forwarded, Ok(expected));
        let bad =
            head(http::Request::builder().header("x-a", HeaderValue::from_bytes(b"\xe9t\xe9").unwrap()), &["x-a"]);
        assert_eq!(bad.forwarded, Err(HeaderName::from_static("x-a")));
        let tab = head(http::Request::builder().header("x-a", "a\tb"), &["x-a"]);
        assert_eq!(tab.forwarded, Err(HeaderName::from_static("x-a")), "control characters cannot be metadata");
    }
}
