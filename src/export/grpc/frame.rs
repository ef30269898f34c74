//! The gRPC frame of a batch written from its parts: the batch is never copied into one buffer.
//!
//! A batch is a list of `Bytes` (the clients' own protobuf, concatenated at whole entries), and a gRPC message on
//! the wire is a 5-byte prefix followed by the message. tonic's codecs must copy a message into their buffer, which
//! was a tenth of the bridge's CPU per protobuf span. For an uncompressed export the call hands tonic an empty
//! message and the parts beside it, in the request's extensions ([`Parts`]); [`WriteParts`], the service under
//! tonic, then replaces tonic's 5-byte body with the prefix and the parts themselves ([`PartsBody`]), which
//! hyper/h2 send as they are. Compressed exports go through the codec as before (the compressor reads the parts).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Request;
use http_body::{Frame, SizeHint};
use tower::Service;

use crate::export::Payload;

/// A batch's parts waiting to become the request's body (see the module docs).
#[derive(Debug, Clone)]
pub(super) struct Parts(PartsBody);

impl Parts {
    /// Takes the payload's parts as one uncompressed gRPC message; `None` (and the payload untouched) when the
    /// message is too long for a gRPC length prefix (4 GiB; batches are far smaller): the codec then refuses it.
    pub(super) fn take(payload: &mut Payload) -> Option<Parts> {
        let len = payload.len();
        let prefix_len = u32::try_from(len).ok()?;
        let parts = std::mem::take(&mut payload.parts);
        let mut prefix = [0u8; 5];
        // Byte 0 is the compressed flag (0: not compressed), then the length, big-endian.
        prefix[1..].copy_from_slice(&prefix_len.to_be_bytes());
        let mut frames = VecDeque::with_capacity(parts.len() + 1);
        frames.push_back(Bytes::copy_from_slice(&prefix));
        frames.extend(parts.into_iter().filter(|part| !part.is_empty()));
        Some(Parts(PartsBody { frames, remaining: len as u64 + 5 }))
    }
}

/// One gRPC message as a body: the prefix, then each part as a data frame of its own.
#[derive(Debug, Clone)]
pub(super) struct PartsBody {
    frames: VecDeque<Bytes>,
    remaining: u64,
}

impl http_body::Body for PartsBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.frames.pop_front();
        if let Some(data) = &next {
            self.remaining -= data.len() as u64;
        }
        Poll::Ready(next.map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// The service under tonic that writes a request's [`Parts`], when it carries some, as its body.
#[derive(Debug, Clone)]
pub(super) struct WriteParts<S>(pub(super) S);

impl<S> Service<Request<tonic::body::Body>> for WriteParts<S>
where
    S: Service<Request<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<tonic::body::Body>) -> Self::Future {
        if let Some(Parts(body)) = request.extensions_mut().remove::<Parts>() {
            // tonic's body holds only the prefix of the empty message it was given.
            *request.body_mut() = tonic::body::Body::new(body);
        }
        self.0.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn the_body_is_the_prefix_then_every_part_uncopied() {
        let a = Bytes::from_static(b"\x0a\x03abc");
        let b = Bytes::from(vec![0x0a, 0x01, b'z']);
        let mut payload = Payload { parts: vec![a.clone(), Bytes::new(), b.clone()], ..Payload::default() };
        let Some(Parts(body)) = Parts::take(&mut payload) else { panic!("fits") };
        assert!(payload.parts.is_empty(), "the codec gets an empty message");
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(5 + 8));
        let mut body = std::pin::pin!(body);
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            frames.push(frame.unwrap().into_data().unwrap());
        }
        assert_eq!(frames[0].as_ref(), &[0, 0, 0, 0, 8]);
        // The same memory, not a copy: the parts are sent as they are.
        assert_eq!(frames[1].as_ptr(), a.as_ptr());
        assert_eq!(frames[2].as_ptr(), b.as_ptr());
        assert_eq!(frames.len(), 3, "empty parts are skipped");
        assert!(http_body::Body::is_end_stream(&*body));
    }

    #[tokio::test]
    async fn a_request_with_parts_gets_them_as_its_body_and_others_keep_theirs() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = {
            let seen = std::sync::Arc::clone(&seen);
            tower::service_fn(move |request: Request<tonic::body::Body>| {
                let seen = std::sync::Arc::clone(&seen);
                async move {
                    let mut body = std::pin::pin!(request.into_body());
                    let mut bytes = Vec::new();
                    while let Some(frame) = body.frame().await {
                        bytes.extend_from_slice(&frame.unwrap().into_data().unwrap());
                    }
                    seen.lock().unwrap().push(bytes);
                    Ok::<_, Infallible>(())
                }
            })
        };
        let mut service = WriteParts(record);
        let mut with_parts =
            Request::new(tonic::body::Body::new(http_body_util::Full::new(Bytes::from_static(&[0, 0, 0, 0, 0]))));
        let mut payload = Payload { parts: vec![Bytes::from_static(b"\x0a\x00")], ..Payload::default() };
        with_parts.extensions_mut().insert(Parts::take(&mut payload).unwrap());
        service.call(with_parts).await.unwrap();
        let plain = Request::new(tonic::body::Body::new(http_body_util::Full::new(Bytes::from_static(b"kept"))));
        service.call(plain).await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0], [0, 0, 0, 0, 2, 0x0a, 0x00]);
        assert_eq!(seen[1], b"kept");
    }
}
