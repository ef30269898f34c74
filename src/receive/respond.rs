//! The one place where errors become HTTP answers: status code, `Retry-After`, and a `google.rpc.Status` body in
//! the request's own encoding whose message tells a person with curl what is wrong.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use prost::Message;

use crate::export::ExportError;
use crate::limit::MemoryError;
use crate::signal::{PartialSuccess, Signal};

/// The body encoding of a request, mirrored in its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

impl Format {
    /// The request's format from its `Content-Type`, if it is one OTLP allows (parameters such as charset are fine).
    pub fn from_content_type(value: Option<&str>) -> Option<Format> {
        let media = value?.split(';').next()?.trim();
        if media.eq_ignore_ascii_case("application/x-protobuf") || media.eq_ignore_ascii_case("application/protobuf") {
            Some(Format::Protobuf)
        } else if media.eq_ignore_ascii_case("application/json") {
            Some(Format::Json)
        } else {
            None
        }
    }

    /// The format of error bodies: the request's when it has a valid one, else JSON (readable with curl).
    pub fn for_errors(value: Option<&str>) -> Format {
        Format::from_content_type(value).unwrap_or(Format::Json)
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// Everything that can go wrong with one request, before or after the backend.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// Not one of the three OTLP paths.
    #[error("no such path {0:?}: OTLP/HTTP accepts POST /v1/traces, /v1/metrics and /v1/logs")]
    NotFound(String),
    /// A method other than POST (or OPTIONS for CORS).
    #[error("method {0} is not allowed on this path: use POST")]
    MethodNotAllowed(String),
    /// A body type OTLP does not define.
    #[error("unsupported Content-Type {0:?}: use application/x-protobuf or application/json")]
    UnsupportedMediaType(String),
    /// A compression the receiver does not inflate.
    #[error("unsupported Content-Encoding {0:?}: use gzip, deflate, zstd or identity")]
    UnsupportedEncoding(String),
    /// Over the body limit, on the wire or once inflated.
    #[error("request body{} exceeds the limit of {limit} bytes (--max-body-bytes){}", if *inflated { " after decompression" } else { "" }, seen.map(|n| format!(" (Content-Length {n})")).unwrap_or_default())]
    BodyTooLarge {
        /// The limit.
        limit: usize,
        /// Whether the inflated body (not the wire bytes) passed the limit.
        inflated: bool,
        /// The declared length, when that alone was too large.
        seen: Option<usize>,
    },
    /// The client did not send its body in time.
    #[error("the request body did not arrive within {0:?} (--read-timeout)")]
    ReadTimeout(Duration),
    /// The client stopped sending its body part way (no byte for this long).
    #[error("no byte of the request body arrived for {0:?}; send the body without pauses")]
    BodyStalled(Duration),
    /// The connection failed while reading the body.
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// The body is not valid data of its declared `Content-Encoding`.
    #[error("the body is not valid {encoding} data: {detail}")]
    Decompress {
        /// gzip, deflate or zstd.
        encoding: &'static str,
        /// What the decompressor said.
        detail: String,
    },
    /// No accepted bearer token (`--auth-token-file`); the message never contains the presented token.
    #[error("unauthorized: {0}")]
    Unauthorized(super::auth::AuthFailure),
    /// A `--forward-header` header whose value cannot be gRPC metadata.
    #[error("header {0} is forwarded to the backend as gRPC metadata and must be printable ASCII")]
    ForwardHeader(String),
    /// A bug: the bridge failed, not the request.
    #[error("internal error: {0}")]
    Internal(String),
    /// Malformed OTLP/JSON.
    #[error("invalid OTLP/JSON: {0}")]
    Json(#[from] crate::json::JsonError),
    /// Malformed OTLP protobuf.
    #[error("invalid OTLP protobuf: {0}")]
    Protobuf(#[from] crate::wire::WireError),
    /// The memory limit refused the request.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// The export failed.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// Another error with advice for the client's likely mistake appended (same status and code).
    #[error("{0}; {1}")]
    Hinted(Box<ReceiveError>, &'static str),
    /// The durable queue did not store the data (full, disk full, stopping): retryable.
    #[error(transparent)]
    Queue(crate::queue::QueueError),
}

/// The gRPC code of a `google.rpc.Status` body for an HTTP status the bridge chose itself.
fn grpc_code_for(status: StatusCode) -> tonic::Code {
    match status.as_u16() {
        400 | 413 | 415 => tonic::Code::InvalidArgument,
        401 => tonic::Code::Unauthenticated,
        403 => tonic::Code::PermissionDenied,
        404 => tonic::Code::NotFound,
        405 => tonic::Code::Unimplemented,
        408 | 504 => tonic::Code::DeadlineExceeded,
        429 => tonic::Code::ResourceExhausted,
        503 | 502 => tonic::Code::Unavailable,
        _ => tonic::Code::Internal,
    }
}

/// HTTP status for a backend's gRPC outcome, as the Collector maps it (DESIGN.md section 2). Retryable gRPC codes
/// become 503 so that clients retry; never 500 for something a retry can fix.
pub fn http_status_for_grpc(code: tonic::Code) -> StatusCode {
    use tonic::Code::*;
    match code {
        Ok => StatusCode::OK,
        Cancelled | DeadlineExceeded | Aborted | OutOfRange | Unavailable | DataLoss => StatusCode::SERVICE_UNAVAILABLE,
        ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        InvalidArgument => StatusCode::BAD_REQUEST,
        Unauthenticated => StatusCode::UNAUTHORIZED,
        PermissionDenied => StatusCode::FORBIDDEN,
        Unimplemented => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ReceiveError {
    /// The HTTP status, the gRPC code for the body, and the `Retry-After` to send.
    pub fn classify(&self) -> (StatusCode, tonic::Code, Option<Duration>) {
        let own = |status: StatusCode| (status, grpc_code_for(status), None);
        match self {
            ReceiveError::Hinted(inner, _) => inner.classify(),
            ReceiveError::NotFound(_) => own(StatusCode::NOT_FOUND),
            ReceiveError::MethodNotAllowed(_) => own(StatusCode::METHOD_NOT_ALLOWED),
            ReceiveError::UnsupportedMediaType(_) | ReceiveError::UnsupportedEncoding(_) => {
                own(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            }
            ReceiveError::BodyTooLarge { .. } | ReceiveError::Memory(MemoryError::TooLarge { .. }) => {
                own(StatusCode::PAYLOAD_TOO_LARGE)
            }
            ReceiveError::ReadTimeout(_) | ReceiveError::BodyStalled(_) => own(StatusCode::REQUEST_TIMEOUT),
            ReceiveError::Unauthorized(_) => own(StatusCode::UNAUTHORIZED),
            ReceiveError::Internal(_) => own(StatusCode::INTERNAL_SERVER_ERROR),
            ReceiveError::BodyRead(_)
            | ReceiveError::Decompress { .. }
            | ReceiveError::ForwardHeader(_)
            | ReceiveError::Json(_)
            | ReceiveError::Protobuf(_) => own(StatusCode::BAD_REQUEST),
            ReceiveError::Memory(MemoryError::Exhausted { .. }) => {
                (StatusCode::SERVICE_UNAVAILABLE, tonic::Code::Unavailable, Some(crate::retry::RETRY_AFTER_MIN))
            }
            ReceiveError::Queue(e) => {
                (StatusCode::SERVICE_UNAVAILABLE, tonic::Code::Unavailable, Some(e.retry_after()))
            }
            ReceiveError::Export(e) => {
                let code = e.code();
                let status = http_status_for_grpc(code);
                let retry_after = match status {
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                        Some(e.retry_after().unwrap_or(crate::retry::RETRY_AFTER_MIN))
                    }
                    _ => None,
                };
                (status, code, retry_after)
            }
        }
    }

    /// The error as an HTTP response in `format`.
    pub fn into_response(self, format: Format) -> Response<Full<Bytes>> {
        let (status, code, retry_after) = self.classify();
        let message = self.to_string();
        let body = match format {
            Format::Protobuf => tonic_types::Status { code: code as i32, message, details: Vec::new() }.encode_to_vec(),
            Format::Json => {
                let mut out = format!("{{\"code\":{},\"message\":", code as i32);
                // serde_json escapes exactly as JSON requires; serialising a str cannot fail.
                out.push_str(&serde_json::to_string(&message).unwrap_or_default());
                out.push('}');
                out.into_bytes()
            }
        };
        let mut response = build(status, format, body);
        if let Some(after) = retry_after {
            // Whole seconds, rounded up: a hint of 1.5 s must not become "retry at once".
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if matches!(self, ReceiveError::Unauthorized(_)) {
            // RFC 6750: the scheme the client should use.
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self, ReceiveError::MethodNotAllowed(_)) {
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
        }
        response
    }
}

/// The success response for signal `S`, with `partial_success` when items were rejected.
pub fn success<S: Signal>(format: Format, partial: Option<PartialSuccess>) -> Response<Full<Bytes>> {
    let message = S::response(partial.filter(|p| !p.is_empty()));
    let body = match format {
        Format::Protobuf => message.encode_to_vec(),
        Format::Json => crate::json::encode(&message).into_bytes(),
    };
    build(StatusCode::OK, format, body)
}

fn build(status: StatusCode, format: Format, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_map_to_http_as_the_collector_does() {
        use tonic::Code::*;
        for (code, http) in [
            (Cancelled, 503),
            (DeadlineExceeded, 503),
            (Aborted, 503),
            (OutOfRange, 503),
            (Unavailable, 503),
            (DataLoss, 503),
            (ResourceExhausted, 429),
            (InvalidArgument, 400),
            (Unauthenticated, 401),
            (PermissionDenied, 403),
            (Unimplemented, 404),
            (Internal, 500),
            (Unknown, 500),
            (NotFound, 500),
            (FailedPrecondition, 500),
        ] {
            assert_eq!(http_status_for_grpc(code).as_u16(), http, "{code:?}");
        }
    }

    #[test]
    fn content_types_tolerate_parameters_and_case() {
        assert_eq!(Format::from_content_type(Some("application/json; charset=utf-8")), Some(Format::Json));
        assert_eq!(Format::from_content_type(Some("Application/X-Protobuf")), Some(Format::Protobuf));
        assert_eq!(Format::from_content_type(Some("text/plain")), None);
        assert_eq!(Format::from_content_type(None), None);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a small in-memory body
    fn error_bodies_are_status_messages_in_the_request_encoding() {
        let json = ReceiveError::UnsupportedEncoding("br".into()).into_response(Format::Json);
        assert_eq!(json.status(), 415);
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
        let pb = ReceiveError::NotFound("/x".into()).into_response(Format::Protobuf);
        assert_eq!(pb.headers()[header::CONTENT_TYPE], "application/x-protobuf");
        let bytes = futures_util::FutureExt::now_or_never(http_body_util::BodyExt::collect(pb.into_body()))
            .unwrap()
            .unwrap()
            .to_bytes();
        let status = tonic_types::Status::decode(bytes).unwrap();
        assert_eq!(status.code, tonic::Code::NotFound as i32);
        assert!(status.message.contains("/v1/traces"));
    }

    #[test]
    fn memory_pressure_is_retryable_with_retry_after() {
        let r = ReceiveError::Memory(MemoryError::Exhausted { held: 1, limit: 1 }).into_response(Format::Json);
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }
}
