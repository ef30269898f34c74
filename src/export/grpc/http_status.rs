//! Answers that are not gRPC: a backend, or a load balancer or proxy in front of it, that replies with a plain
//! HTTP error (`502 text/plain`) instead of a gRPC status.
//!
//! tonic would read such a body as a gRPC frame and fail with INTERNAL ("invalid compression flag"), which the
//! bridge must not retry and clients hear as a 500 they drop data on. gRPC's own rule (doc/http-grpc-status-mapping
//! in grpc/grpc) maps the HTTP status instead: this wrapper turns such an answer into a trailers-only gRPC answer
//! with that code, so that the retry policy and the HTTP mapping see what really happened.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, StatusCode};
use tonic::Code;
use tower::Service;

/// A gRPC client service that maps non-gRPC HTTP answers of `S` to gRPC statuses.
#[derive(Debug, Clone)]
pub(super) struct GrpcStatusFromHttp<S>(pub(super) S);

/// The gRPC code for an HTTP status that came without a `grpc-status`, as gRPC maps it.
pub(super) fn code_for_http_status(status: StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

impl<S, ReqBody> Service<Request<ReqBody>> for GrpcStatusFromHttp<S>
where
    S: Service<Request<ReqBody>, Response = Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let answer = self.0.call(req);
        Box::pin(async move {
            let response = answer.await?;
            let status = response.status();
            if status == StatusCode::OK || response.headers().contains_key("grpc-status") {
                return Ok(response);
            }
            let code = code_for_http_status(status);
            let kind = response.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            // grpc-message is percent-encoded text; this one is plain ASCII without '%'.
            let message = format!(
                "the backend (or a proxy in front of it) answered plain HTTP instead of gRPC, mapped from HTTP \
                 status code {} {}{}",
                status.as_u16(),
                status.canonical_reason().unwrap_or(""),
                if kind.is_empty() { String::new() } else { format!(" ({kind})") }
            );
            let message: String =
                message.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').filter(|c| *c != '%').collect();
            let mut mapped = Response::new(tonic::body::Body::empty());
            let headers = mapped.headers_mut();
            headers.insert("content-type", HeaderValue::from_static("application/grpc"));
            headers.insert("grpc-status", HeaderValue::from(code as i32));
            if let Ok(value) = HeaderValue::from_str(&message) {
                headers.insert("grpc-message", value);
            }
            // The status as a number, for the probe's diagnosis (tonic hands these headers over as the status's
            // metadata).
            headers.insert(super::probe::HTTP_STATUS_METADATA, HeaderValue::from(status.as_u16()));
            Ok(mapped)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_statuses_map_as_grpc_maps_them() {
        for (http, code) in [
            (502, Code::Unavailable),
            (503, Code::Unavailable),
            (504, Code::Unavailable),
            (429, Code::Unavailable),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (400, Code::Internal),
            (500, Code::Unknown),
        ] {
            assert_eq!(code_for_http_status(StatusCode::from_u16(http).unwrap()), code, "{http}");
        }
    }
}
