//! The gRPC input's one error table: what can go wrong with a call, and the status each answers with.
//!
//! | situation | code | details |
//! |---|---|---|
//! | delivered (direct: every backend acknowledged; queued: fsynced) | `OK` | partial success, after the sanity check |
//! | memory limit busy, queue full, bridge stopping | `UNAVAILABLE` | `RetryInfo` (status details and `google.rpc.retryinfo-bin`) |
//! | a backend refused | the backend's code and message, no address | its `RetryInfo` delay when retryable |
//! | message over `--max-body-bytes` (wire or decompressed), or over the whole memory limit | `RESOURCE_EXHAUSTED` | none: not retried |
//! | malformed protobuf, bad framing, bad compressed data, unprintable forwarded metadata | `INVALID_ARGUMENT` | the field named |
//! | no accepted bearer token | `UNAUTHENTICATED` | the reason, never the token |
//! | unknown service or method; unsupported `grpc-encoding` | `UNIMPLEMENTED` | `grpc-accept-encoding` for the latter |
//! | the client's `grpc-timeout` passed before the promise held; the message arrived too slowly | `DEADLINE_EXCEEDED` | none |
//! | a bug | `INTERNAL` | none |

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use prost::Message;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

use super::body::GrpcBody;
use crate::ingest::{IngestError, Retry};
use crate::limit::MemoryError;
use crate::receive::auth::AuthFailure;
use crate::receive::ReceiveError;

/// The encodings a message may arrive in, as `grpc-accept-encoding` lists them.
pub(super) const ACCEPT_ENCODING: &str = "identity,gzip,zstd";

/// Everything that can go wrong with one call.
#[derive(Debug, thiserror::Error)]
pub(super) enum CallError {
    /// Not one of the four OTLP Export methods.
    #[error("unknown method {0}: this port serves the OTLP Export methods of TraceService, MetricsService, LogsService and ProfilesService (v1development)")]
    UnknownMethod(String),
    /// A `grpc-encoding` the input does not decompress.
    #[error("unsupported grpc-encoding {0:?}: use identity, gzip or zstd")]
    UnsupportedEncoding(String),
    /// No accepted bearer token in the `authorization` metadata; never the presented token.
    #[error("unauthenticated: {0}")]
    Unauthorized(AuthFailure),
    /// A `--forward-header` metadata value that cannot be passed on.
    #[error("metadata {0} is forwarded to the backend and must be printable ASCII")]
    ForwardHeader(String),
    /// Over `--max-body-bytes`, as sent or decompressed.
    #[error("message{} of {size} bytes exceeds the limit of {limit} bytes (--max-body-bytes)", if *decompressed { " after decompression" } else { "" })]
    TooLarge {
        /// The limit.
        limit: usize,
        /// The size seen (the declared length on the wire; what decompressed so far).
        size: usize,
        /// Whether the decompressed message passed the limit.
        decompressed: bool,
    },
    /// The message's gRPC framing is wrong (not exactly one length-prefixed message, a compressed flag without a
    /// `grpc-encoding`).
    #[error("invalid gRPC message framing: {0}")]
    Framing(String),
    /// The message did not arrive in time, or stopped part way.
    #[error("the message did not arrive in time: {0}")]
    Slow(String),
    /// The client's `grpc-timeout` passed before the delivery promise held.
    #[error(
        "the data was not delivered within the call's deadline ({0:?}); it may still be delivered, retry to be sure"
    )]
    Deadline(Duration),
    /// What the body steps shared with HTTP said (decompression failures, memory while inflating).
    #[error("{0}")]
    Body(ReceiveError),
    /// What the ingest step said: memory, malformed protobuf, the sink's refusal.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ReceiveError> for CallError {
    fn from(e: ReceiveError) -> CallError {
        match e {
            ReceiveError::BodyTooLarge { limit, inflated, seen } => {
                CallError::TooLarge { limit, size: seen.unwrap_or(limit.saturating_add(1)), decompressed: inflated }
            }
            ReceiveError::Memory(e) => CallError::Ingest(IngestError::Memory(e)),
            other => CallError::Body(other),
        }
    }
}

impl CallError {
    /// The table: the code and retry of every variant.
    pub(super) fn class(&self) -> (Code, Retry) {
        use CallError as E;
        match self {
            E::UnknownMethod(_) | E::UnsupportedEncoding(_) => (Code::Unimplemented, Retry::No),
            E::Unauthorized(_) => (Code::Unauthenticated, Retry::No),
            E::ForwardHeader(_) | E::Framing(_) => (Code::InvalidArgument, Retry::No),
            // OTLP clients do not retry RESOURCE_EXHAUSTED without RetryInfo: the message will never fit.
            E::TooLarge { .. } | E::Ingest(IngestError::Memory(MemoryError::TooLarge { .. })) => {
                (Code::ResourceExhausted, Retry::No)
            }
            E::Slow(_) | E::Deadline(_) => (Code::DeadlineExceeded, Retry::No),
            E::Body(ReceiveError::Decompress { .. }) => (Code::InvalidArgument, Retry::No),
            E::Body(_) | E::Internal(_) => (Code::Internal, Retry::No),
            E::Ingest(IngestError::Memory(MemoryError::Exhausted { .. })) => {
                (Code::Unavailable, Retry::After(crate::retry::RETRY_AFTER_MIN))
            }
            E::Ingest(IngestError::Json(_) | IngestError::Protobuf(_)) => (Code::InvalidArgument, Retry::No),
            E::Ingest(IngestError::Delivery(e)) => (e.code(), e.retry()),
        }
    }
}

/// `code`'s name as the metrics and logs spell it (`OK`, `UNAVAILABLE`, ...).
pub(super) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The status of a refused call as gRPC metadata: `grpc-status`, `grpc-message`, and for a retryable refusal
/// `google.rpc.RetryInfo` twice, in `grpc-status-details-bin` (the standard place) and in
/// `google.rpc.retryinfo-bin` (where the OpenTelemetry Python exporter reads it).
pub(super) fn status_headers(code: Code, retry: Retry, message: &str) -> HeaderMap {
    let status = match retry {
        Retry::No => tonic::Status::new(code, message),
        Retry::After(delay) => {
            let mut metadata = MetadataMap::new();
            let info = tonic_types::pb::RetryInfo::from(tonic_types::RetryInfo::new(Some(delay)));
            metadata.insert_bin("google.rpc.retryinfo-bin", MetadataValue::from_bytes(&info.encode_to_vec()));
            tonic::Status::with_error_details_and_metadata(
                code,
                message,
                ErrorDetails::with_retry_info(Some(delay)),
                metadata,
            )
        }
    };
    let mut headers = HeaderMap::new();
    if status.add_header(&mut headers).is_err() {
        // Only a message that cannot be a header value fails; the code alone still answers.
        headers.insert("grpc-status", HeaderValue::from(code as i32));
    }
    headers
}

/// A Trailers-Only answer: HTTP 200 whose headers carry the status, and no message.
pub(super) fn refusal(code: Code, retry: Retry, message: &str) -> Response<GrpcBody> {
    let mut response = Response::new(GrpcBody::empty());
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.extend(status_headers(code, retry, message));
    if code == Code::Unimplemented {
        headers.insert("grpc-accept-encoding", HeaderValue::from_static(ACCEPT_ENCODING));
    }
    response
}

/// The answer to a request that is not gRPC (no `application/grpc` Content-Type): 415 saying where it belongs.
pub(super) fn not_grpc() -> Response<GrpcBody> {
    let text = "this is the OTLP/gRPC port (--grpc-listen): it takes gRPC calls (Content-Type application/grpc); \
                send OTLP/HTTP to the --listen port\n";
    let mut response = Response::new(GrpcBody::text(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// The answer of a delivered call: the response message, then `grpc-status: 0` in the trailers.
pub(super) fn success(message: Vec<u8>) -> Response<GrpcBody> {
    let mut framed = Vec::with_capacity(5 + message.len());
    framed.push(0);
    framed.extend_from_slice(&u32::try_from(message.len()).unwrap_or(u32::MAX).to_be_bytes());
    framed.extend_from_slice(&message);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let mut response = Response::new(GrpcBody::message(Bytes::from(framed), trailers));
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-accept-encoding", HeaderValue::from_static(ACCEPT_ENCODING));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn a_retryable_refusal_carries_retry_info_in_both_places() {
        let headers = status_headers(Code::Unavailable, Retry::After(Duration::from_secs(3)), "busy; retry later");
        assert_eq!(headers["grpc-status"], "14");
        let status = tonic::Status::from_header_map(&headers).unwrap();
        assert_eq!(status.message(), "busy; retry later", "percent-encoded as gRPC says, and back");
        assert_eq!(status.get_details_retry_info().unwrap().retry_delay, Some(Duration::from_secs(3)));
        let raw = headers["google.rpc.retryinfo-bin"].to_str().unwrap();
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD.decode(raw.trim_end_matches('=')).unwrap();
        let info = tonic_types::pb::RetryInfo::decode(raw.as_slice()).unwrap();
        assert_eq!(info.retry_delay, Some(prost_types::Duration { seconds: 3, nanos: 0 }));
    }

    #[test]
    fn a_final_refusal_has_no_retry_info() {
        let headers = status_headers(Code::ResourceExhausted, Retry::No, "too large");
        assert_eq!(headers["grpc-status"], "8");
        assert!(headers.get("grpc-status-details-bin").is_none());
        assert!(headers.get("google.rpc.retryinfo-bin").is_none());
    }

    #[test]
    fn the_table_sends_limits_without_retry_and_busy_memory_with_it() {
        let too_large = CallError::TooLarge { limit: 1, size: 2, decompressed: true };
        assert_eq!(too_large.class(), (Code::ResourceExhausted, Retry::No));
        assert!(too_large.to_string().contains("after decompression"));
        let busy = CallError::Ingest(IngestError::Memory(MemoryError::Exhausted { held: 1, limit: 1 }));
        assert_eq!(busy.class(), (Code::Unavailable, Retry::After(crate::retry::RETRY_AFTER_MIN)));
        let whole = CallError::Ingest(IngestError::Memory(MemoryError::TooLarge { needed: 2, limit: 1 }));
        assert_eq!(whole.class(), (Code::ResourceExhausted, Retry::No));
        assert_eq!(CallError::UnknownMethod("/x".into()).class().0, Code::Unimplemented);
        let auth = CallError::Unauthorized(AuthFailure::UnknownToken);
        assert_eq!(auth.class().0, Code::Unauthenticated);
        let refused = refusal(Code::Unimplemented, Retry::No, "no");
        assert_eq!(refused.headers()["grpc-accept-encoding"], ACCEPT_ENCODING);
        assert_eq!(code_name(Code::Unavailable), "UNAVAILABLE");
    }
}
