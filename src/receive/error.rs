//! What can go wrong with one request, and how each kind of failure is answered: [`ReceiveError::class`] is the
//! table where every variant declares its HTTP status, its `google.rpc.Status` code and whether (and when) the
//! client should retry. [`super::rescue`] is the one place that turns it into an answer.

use std::time::Duration;

use http::{header, HeaderName, StatusCode};

pub(crate) use crate::ingest::Retry;
use crate::ingest::{DeliveryError, IngestError};
use crate::limit::MemoryError;

/// Everything that can go wrong with one request, before or after the backend.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// Not one of the OTLP paths.
    #[error(
        "no such path {0:?}: OTLP/HTTP accepts POST /v1/traces, /v1/metrics, /v1/logs and /v1development/profiles"
    )]
    NotFound(String),
    /// A method other than POST (or OPTIONS for CORS).
    #[error("method {0} is not allowed on this path: use POST")]
    MethodNotAllowed(String),
    /// A body type OTLP does not define.
    #[error(
        "unsupported Content-Type {0:?}: send binary protobuf with -H 'Content-Type: application/x-protobuf' or \
         OTLP/JSON with -H 'Content-Type: application/json'"
    )]
    UnsupportedMediaType(String),
    /// A compression the receiver does not inflate.
    #[error(
        "unsupported Content-Encoding {0:?}: send gzip, deflate or zstd data with -H 'Content-Encoding: gzip' (or \
         deflate, zstd), or an uncompressed body without the header"
    )]
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
    /// The sink did not keep its promise (a backend's refusal, a full queue): whatever delivery mode runs.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// Another error with advice for the client's likely mistake appended (same status and code).
    #[error("{0}; {1}")]
    Hinted(Box<ReceiveError>, &'static str),
}

impl From<IngestError> for ReceiveError {
    fn from(e: IngestError) -> ReceiveError {
        match e {
            IngestError::Memory(e) => ReceiveError::Memory(e),
            IngestError::Json(e) => ReceiveError::Json(e),
            IngestError::Protobuf(e) => ReceiveError::Protobuf(e),
            IngestError::Delivery(e) => ReceiveError::Delivery(e),
        }
    }
}

/// How one error is answered. Every field is declared per variant in [`ReceiveError::class`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Class {
    /// The HTTP status.
    pub(crate) status: StatusCode,
    /// The `google.rpc.Status` code of the body.
    pub(crate) code: tonic::Code,
    /// Whether and when to retry.
    pub(crate) retry: Retry,
    /// A header the status requires of this variant: `Allow` with 405 (RFC 9110), `WWW-Authenticate` with the 401
    /// of a missing token (RFC 6750).
    pub(crate) header: Option<(HeaderName, &'static str)>,
}

impl ReceiveError {
    /// The table: status, gRPC code, retry and required header of every variant, in one place.
    pub(crate) fn class(&self) -> Class {
        use tonic::Code;
        use ReceiveError as E;
        use StatusCode as S;
        let (status, code, retry, header) = match self {
            E::Hinted(inner, _) => return inner.class(),
            E::NotFound(_) => (S::NOT_FOUND, Code::NotFound, Retry::No, None),
            E::MethodNotAllowed(_) => {
                (S::METHOD_NOT_ALLOWED, Code::Unimplemented, Retry::No, Some((header::ALLOW, "POST, OPTIONS")))
            }
            E::UnsupportedMediaType(_) | E::UnsupportedEncoding(_) => {
                (S::UNSUPPORTED_MEDIA_TYPE, Code::InvalidArgument, Retry::No, None)
            }
            E::BodyTooLarge { .. } | E::Memory(MemoryError::TooLarge { .. }) => {
                (S::PAYLOAD_TOO_LARGE, Code::InvalidArgument, Retry::No, None)
            }
            E::ReadTimeout(_) | E::BodyStalled(_) => (S::REQUEST_TIMEOUT, Code::DeadlineExceeded, Retry::No, None),
            E::Unauthorized(_) => {
                (S::UNAUTHORIZED, Code::Unauthenticated, Retry::No, Some((header::WWW_AUTHENTICATE, "Bearer")))
            }
            E::Internal(_) => (S::INTERNAL_SERVER_ERROR, Code::Internal, Retry::No, None),
            E::BodyRead(_) | E::Decompress { .. } | E::ForwardHeader(_) | E::Json(_) | E::Protobuf(_) => {
                (S::BAD_REQUEST, Code::InvalidArgument, Retry::No, None)
            }
            E::Memory(MemoryError::Exhausted { .. }) => {
                (S::SERVICE_UNAVAILABLE, Code::Unavailable, Retry::After(crate::retry::RETRY_AFTER_MIN), None)
            }
            // The sink's refusal (a backend's outcome, or a full queue: UNAVAILABLE), its status mapped as the
            // Collector maps it; retryable codes carry their delay.
            E::Delivery(e) => (http_status_for_grpc(e.code()), e.code(), e.retry(), None),
        };
        Class { status, code, retry, header }
    }
}

/// HTTP status for a backend's gRPC outcome, as the Collector's otlpreceiver maps it (CANCELLED, DEADLINE_EXCEEDED,
/// ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS -> 503; RESOURCE_EXHAUSTED -> 429). Retryable gRPC codes become 503
/// so that clients retry; never 500 for something a retry can fix.
pub(crate) fn http_status_for_grpc(code: tonic::Code) -> StatusCode {
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

    fn backend(code: tonic::Code, retry_after: Option<Duration>) -> ReceiveError {
        let error = if crate::retry::is_retryable(code, true) {
            crate::export::SendError::retryable(code, "")
        } else {
            crate::export::SendError::rejected(code, "")
        };
        let error = Box::new(error.after(retry_after));
        let export = crate::export::ExportError::Backend { backend: String::new(), error, retry_after, attempts: 1 };
        ReceiveError::Delivery(crate::sink::SinkError::Export(export).into())
    }

    fn queue(e: crate::queue::QueueError) -> ReceiveError {
        ReceiveError::Delivery(crate::sink::SinkError::Queue(e).into())
    }

    #[test]
    fn the_table_declares_status_code_retry_and_header_of_every_variant() {
        use tonic::Code;
        let second = Duration::from_secs(1);
        let cases: Vec<(ReceiveError, u16, Code, Retry, Option<&str>)> = vec![
            (ReceiveError::NotFound("/x".into()), 404, Code::NotFound, Retry::No, None),
            (ReceiveError::MethodNotAllowed("GET".into()), 405, Code::Unimplemented, Retry::No, Some("allow")),
            (ReceiveError::UnsupportedMediaType("text/plain".into()), 415, Code::InvalidArgument, Retry::No, None),
            (ReceiveError::UnsupportedEncoding("br".into()), 415, Code::InvalidArgument, Retry::No, None),
            (
                ReceiveError::BodyTooLarge { limit: 1, inflated: false, seen: None },
                413,
                Code::InvalidArgument,
                Retry::No,
                None,
            ),
            (
                ReceiveError::Memory(MemoryError::TooLarge { needed: 2, limit: 1 }),
                413,
                Code::InvalidArgument,
                Retry::No,
                None,
            ),
            (ReceiveError::ReadTimeout(second), 408, Code::DeadlineExceeded, Retry::No, None),
            (ReceiveError::BodyStalled(second), 408, Code::DeadlineExceeded, Retry::No, None),
            (ReceiveError::BodyRead("reset".into()), 400, Code::InvalidArgument, Retry::No, None),
            (
                ReceiveError::Decompress { encoding: "gzip", detail: String::new() },
                400,
                Code::InvalidArgument,
                Retry::No,
                None,
            ),
            (
                ReceiveError::Unauthorized(super::super::auth::AuthFailure::Missing),
                401,
                Code::Unauthenticated,
                Retry::No,
                Some("www-authenticate"),
            ),
            (ReceiveError::ForwardHeader("x-a".into()), 400, Code::InvalidArgument, Retry::No, None),
            (ReceiveError::Internal("bug".into()), 500, Code::Internal, Retry::No, None),
            (
                ReceiveError::Memory(MemoryError::Exhausted { held: 1, limit: 1 }),
                503,
                Code::Unavailable,
                Retry::After(second),
                None,
            ),
            (queue(crate::queue::QueueError::Closed), 503, Code::Unavailable, Retry::After(second), None),
            (backend(Code::Unavailable, None), 503, Code::Unavailable, Retry::After(second), None),
            (
                backend(Code::ResourceExhausted, Some(Duration::from_secs(7))),
                429,
                Code::ResourceExhausted,
                Retry::After(Duration::from_secs(7)),
                None,
            ),
            (backend(Code::InvalidArgument, Some(second)), 400, Code::InvalidArgument, Retry::No, None),
            // A backend's 401 is the backend's business: no challenge for the client.
            (backend(Code::Unauthenticated, None), 401, Code::Unauthenticated, Retry::No, None),
            (
                ReceiveError::Hinted(Box::new(ReceiveError::BodyRead(String::new())), "advice"),
                400,
                Code::InvalidArgument,
                Retry::No,
                None,
            ),
        ];
        for (error, status, code, retry, header) in cases {
            let class = error.class();
            assert_eq!(class.status.as_u16(), status, "{error:?}");
            assert_eq!(class.code, code, "{error:?}");
            assert_eq!(class.retry, retry, "{error:?}");
            assert_eq!(class.header.as_ref().map(|(name, _)| name.as_str()), header, "{error:?}");
        }
    }
}
