//! Catching panics of request handling, so that a bug answers 500 with a `google.rpc.Status` instead of resetting
//! the connection (and every other request multiplexed on it with HTTP/2).
//!
//! The answer is [`ReceiveError::Internal`] through the rescue point's [`answer`], like every other error. This
//! layer sits outside the handler, so it reads `Content-Type` itself: the panic may have struck before (or while)
//! the handler parsed the request head.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::FutureExt;
use http::{Request, Response};
use http_body_util::Full;
use tower::{Layer, Service};

use super::error::ReceiveError;
use super::rescue::answer;
use super::respond::Format;

/// Wraps a service so that a panic in `call` or in its future becomes a 500 answer.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CatchPanicLayer;

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;
    fn layer(&self, inner: S) -> CatchPanic<S> {
        CatchPanic { inner }
    }
}

/// See [`CatchPanicLayer`].
#[derive(Debug, Clone)]
pub(super) struct CatchPanic<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for CatchPanic<S>
where
    S: Service<Request<B>, Response = Response<Full<Bytes>>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let format = Format::for_errors(req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()));
        // The handler owns nothing shared that a panic could leave half-updated: reservations release on drop.
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(future) => Box::pin(async move {
                match AssertUnwindSafe(future).catch_unwind().await {
                    Ok(response) => response,
                    Err(panic) => Ok(answer_panic(panic, format)),
                }
            }),
            Err(panic) => {
                let response = answer_panic(panic, format);
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

fn answer_panic(panic: Box<dyn std::any::Any + Send>, format: Format) -> Response<Full<Bytes>> {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    tracing::error!("a request handler panicked (a bug; please report it): {what}");
    let bug = "the bridge failed while handling this request (a bug, logged); the data was not accepted";
    answer(ReceiveError::Internal(bug.into()), format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_in_the_handler_future_answers_500_with_a_status_body() {
        let inner = tower::service_fn(|_req: Request<()>| async move {
            if true {
                panic!("boom");
            }
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        });
        let mut svc = CatchPanicLayer.layer(inner);
        let req = Request::builder().header("content-type", "application/json").body(()).unwrap();
        let response = svc.call(req).await.unwrap();
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()["content-type"], "application/json");
    }

    #[tokio::test]
    async fn a_panic_in_call_itself_answers_500() {
        #[derive(Clone)]
        struct PanicsInCall;
        impl Service<Request<()>> for PanicsInCall {
            type Response = Response<Full<Bytes>>;
            type Error = Infallible;
            type Future = std::future::Ready<Result<Self::Response, Infallible>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: Request<()>) -> Self::Future {
                panic!("in call")
            }
        }
        let mut svc = CatchPanicLayer.layer(PanicsInCall);
        let req = Request::builder().header("content-type", "application/x-protobuf").body(()).unwrap();
        let response = svc.call(req).await.unwrap();
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    }
}
