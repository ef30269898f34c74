//! The admin server's one handler: `GET /metrics`, `/health`, `/ready`.

use std::future::Future;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;

use super::Telemetry;

/// What `/ready` checks.
pub(crate) trait Readiness: Send + Sync + 'static {
    /// Whether the bridge can deliver: listening, and every backend reachable.
    fn ready(&self) -> impl Future<Output = Result<(), String>> + Send;
}

/// Answers one admin request.
pub(crate) async fn admin<R: Readiness>(
    telemetry: &Telemetry,
    readiness: &R,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
        r
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n".into());
    }
    match req.uri().path() {
        "/metrics" => {
            let mut r = text(StatusCode::OK, telemetry.render());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        "/health" | "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/ready" | "/readyz" => match readiness.ready().await {
            Ok(()) => text(StatusCode::OK, "ready\n".into()),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
        },
        _ => text(StatusCode::NOT_FOUND, "admin paths: /metrics /health /ready\n".into()),
    }
}
