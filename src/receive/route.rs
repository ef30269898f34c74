//! The route step: which signal, which body format, which compression; 404, 405 and 415 before anything else.

use http::Method;

use super::head::RequestHead;
use super::{ContentEncoding, Format, ReceiveError};
use crate::signal::SignalKind;

/// The request's route, found from its head before its body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    /// The signal of the path.
    pub(crate) kind: SignalKind,
    /// The body's encoding.
    pub(crate) format: Format,
    /// The body's compression.
    pub(crate) encoding: ContentEncoding,
}

/// The route of `head`, checked in this order: the path (404), the method (405), `Content-Type`, then
/// `Content-Encoding` (415).
pub(crate) fn route(head: &RequestHead) -> Result<Route, ReceiveError> {
    let kind = head.signal.ok_or_else(|| ReceiveError::NotFound(head.path.clone()))?;
    if head.method != Method::POST {
        return Err(ReceiveError::MethodNotAllowed(head.method.to_string()));
    }
    let format = head.format.ok_or_else(|| {
        ReceiveError::UnsupportedMediaType(head.content_type.clone().unwrap_or_else(|| "(none)".to_string()))
    })?;
    let encoding = ContentEncoding::parse(head.content_encoding.as_deref())?;
    Ok(Route { kind, format, encoding })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route_of(build: http::request::Builder) -> Result<Route, ReceiveError> {
        let (parts, ()) = build.body(()).unwrap().into_parts();
        route(&RequestHead::parse(&parts, &[]))
    }

    fn post(path: &str) -> http::request::Builder {
        http::Request::builder().method("POST").uri(path)
    }

    #[test]
    fn a_route_is_signal_format_and_compression() {
        let r = route_of(post("/v1/metrics").header("content-type", "application/x-protobuf")).unwrap();
        assert_eq!(
            r,
            Route { kind: SignalKind::Metrics, format: Format::Protobuf, encoding: ContentEncoding::Identity }
        );
        let r =
            route_of(post("/v1/traces").header("content-type", "application/json").header("content-encoding", "zstd"));
        assert_eq!(r.unwrap().encoding, ContentEncoding::Zstd);
    }

    #[test]
    fn the_path_is_checked_before_the_method_and_the_method_before_the_types() {
        let e = route_of(http::Request::builder().method("GET").uri("/v2/traces")).unwrap_err();
        assert!(matches!(e, ReceiveError::NotFound(ref p) if p == "/v2/traces"), "{e:?}");
        let e = route_of(http::Request::builder().method("PUT").uri("/v1/logs")).unwrap_err();
        assert!(matches!(e, ReceiveError::MethodNotAllowed(ref m) if m == "PUT"), "{e:?}");
        let e = route_of(post("/v1/logs").header("content-encoding", "br")).unwrap_err();
        assert!(matches!(e, ReceiveError::UnsupportedMediaType(ref t) if t == "(none)"), "{e:?}");
        let e = route_of(post("/v1/logs").header("content-type", "text/plain")).unwrap_err();
        assert!(matches!(e, ReceiveError::UnsupportedMediaType(ref t) if t == "text/plain"), "{e:?}");
        let e =
            route_of(post("/v1/logs").header("content-type", "application/json").header("content-encoding", " br "));
        assert!(matches!(e, Err(ReceiveError::UnsupportedEncoding(ref v)) if v == "br"), "{e:?}");
    }
}
