//! The gRPC answer's body: one length-prefixed message and the trailers that carry its status, or nothing (a
//! Trailers-Only answer carries its status in the headers).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

/// See the module.
#[derive(Debug, Default)]
pub(crate) struct GrpcBody {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl GrpcBody {
    /// No message, no trailers.
    pub(super) fn empty() -> GrpcBody {
        GrpcBody::default()
    }

    /// `data` alone (a plain-text answer to a request that is not gRPC).
    pub(super) fn text(data: Bytes) -> GrpcBody {
        GrpcBody { data: Some(data), trailers: None }
    }

    /// `data` (a framed message), then `trailers`.
    pub(super) fn message(data: Bytes, trailers: HeaderMap) -> GrpcBody {
        GrpcBody { data: Some(data), trailers: Some(trailers) }
    }
}

impl Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}
