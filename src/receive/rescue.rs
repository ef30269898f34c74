//! The one rescue point: where a [`ReceiveError`] becomes an HTTP answer.
//!
//! [`rescue`] is called by the handler for every refusal, whatever step refused: it counts what the refusal means
//! (memory refusals, auth failures by reason), appends the curl hint, builds the answer with [`answer`], and drains
//! a body no step has read yet (bounded: at most the body limit, for at most [`DISCARD_TIMEOUT`]) so that an
//! HTTP/1.1 client still sending hears the answer instead of a broken pipe. [`answer`] is the only function that
//! builds an error response; the panic layer uses it too, for the 500 of a bug.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use prost::Message;

use super::error::{ReceiveError, Retry};
use super::head::RequestHead;
use super::respond::{self, Format};
use super::{body, hint, ContentEncoding, Receiver, Route};

/// Longest an early answer (404/405/415, 401, memory limit) waits for the rest of a body it will not use.
pub(super) const DISCARD_TIMEOUT: Duration = Duration::from_secs(5);

/// How far the chain got before it refused, which decides what is left to do with the body.
#[derive(Debug)]
pub(super) enum Refused {
    /// Before the body: nothing of it was read; it is drained before the answer.
    BeforeBody(Incoming),
    /// While reading or after: the body is gone (read, or dropped by the read step), the route known.
    AfterRoute(Route),
}

/// Answers `error` for the request `head`: counts it, hints, builds the answer, drains an unread body.
pub(super) async fn rescue(
    receiver: &Receiver,
    head: &RequestHead,
    error: ReceiveError,
    refused: Refused,
) -> Response<Full<Bytes>> {
    match &error {
        // Refused before the body or part way (the body grew past what is free): one count either way.
        ReceiveError::Memory(_) => receiver.telemetry.memory_refused(1),
        ReceiveError::Unauthorized(failure) => receiver.telemetry.auth_refused(failure.reason(), 1),
        _ => {}
    }
    let error = match (&error, &refused) {
        // curl's `-d` strips newlines: a binary body that fails to decode from curl most likely met it.
        (ReceiveError::Protobuf(_) | ReceiveError::Decompress { .. }, Refused::AfterRoute(route))
            if head.is_curl() && (route.format == Format::Protobuf || route.encoding != ContentEncoding::Identity) =>
        {
            ReceiveError::Hinted(Box::new(error), hint::CURL_DATA_BINARY)
        }
        _ => error,
    };
    // The message never holds a presented token (see `auth`), so it may be logged.
    tracing::debug!(path = head.path.as_str(), signal = head.signal.map(|s| s.name()), "request refused: {error}");
    let response = answer(error, head.error_format());
    if let Refused::BeforeBody(unread) = refused {
        let timeout = receiver.read_timeout.min(DISCARD_TIMEOUT);
        body::discard(unread, head.content_length, receiver.max_body_bytes, timeout).await;
    }
    response
}

/// The error as an HTTP answer in `format`: the status, gRPC code, `Retry-After` and header of its
/// [class](ReceiveError::class), and a `google.rpc.Status` body whose message tells a person with curl what is wrong.
pub(super) fn answer(error: ReceiveError, format: Format) -> Response<Full<Bytes>> {
    let class = error.class();
    let message = error.to_string();
    let body = match format {
        Format::Protobuf => {
            tonic_types::Status { code: class.code as i32, message, details: Vec::new() }.encode_to_vec()
        }
        Format::Json => {
            let mut out = format!("{{\"code\":{},\"message\":", class.code as i32);
            // serde_json escapes exactly as JSON requires; serialising a str cannot fail.
            out.push_str(&serde_json::to_string(&message).unwrap_or_default());
            out.push('}');
            out.into_bytes()
        }
    };
    let mut response = respond::build(class.status, format, body);
    if let Retry::After(after) = class.retry {
        // Whole seconds, rounded up: a hint of 1.5 s must not become "retry at once".
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
    if let Some((name, value)) = class.header {
        response.headers_mut().insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::MemoryError;

    fn body_of(response: Response<Full<Bytes>>) -> Bytes {
        #[allow(clippy::disallowed_methods)] // a small in-memory body
        let collected = futures_util::FutureExt::now_or_never(http_body_util::BodyExt::collect(response.into_body()));
        collected.unwrap().unwrap().to_bytes()
    }

    #[test]
    fn error_bodies_are_status_messages_in_the_request_encoding() {
        let json = answer(ReceiveError::UnsupportedEncoding("br".into()), Format::Json);
        assert_eq!(json.status(), 415);
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
        let text = body_of(json);
        assert!(text.starts_with(br#"{"code":3,"message":"unsupported Content-Encoding \"br\""#), "{text:?}");
        let pb = answer(ReceiveError::NotFound("/x".into()), Format::Protobuf);
        assert_eq!(pb.headers()[header::CONTENT_TYPE], "application/x-protobuf");
        let status = tonic_types::Status::decode(body_of(pb)).unwrap();
        assert_eq!(status.code, tonic::Code::NotFound as i32);
        assert!(status.message.contains("/v1/traces"));
    }

    #[test]
    fn memory_pressure_is_retryable_with_retry_after() {
        let r = answer(ReceiveError::Memory(MemoryError::Exhausted { held: 1, limit: 1 }), Format::Json);
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn retry_after_rounds_up_and_required_headers_are_sent() {
        let queue_full = crate::sink::SinkError::Queue(crate::queue::QueueError::Full { used: 1, max: 1 });
        let queue_full = ReceiveError::Delivery(queue_full.into());
        assert_eq!(answer(queue_full, Format::Json).headers()[header::RETRY_AFTER], "5");
        let r = answer(ReceiveError::MethodNotAllowed("GET".into()), Format::Json);
        assert_eq!(r.headers()[header::ALLOW], "POST, OPTIONS");
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
        let r = answer(ReceiveError::Unauthorized(super::super::auth::AuthFailure::UnknownToken), Format::Protobuf);
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
