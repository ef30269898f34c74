//! The OTLP/gRPC input (`--grpc-listen`): the four Export methods over HTTP/2, served on the same accept loop as
//! HTTP (TLS and mTLS from the same files, connection cap, header timeout, connection age), with the protobuf
//! forwarded byte for byte through the ingest step.
//!
//! Why not tonic's server: tonic buffers a whole message (up to its own 4 MiB default) before a handler runs, and
//! hands it over decoded; here the memory limit admits a message by its length prefix before a byte is kept, the
//! message is only scanned (never decoded to prost types), and the status of every refusal, `RetryInfo` included,
//! comes from one table ([`status`]). A unary gRPC call is one HTTP/2 request: a length-prefixed message in, a
//! length-prefixed message and `grpc-status` trailers out (or a Trailers-Only answer), which is all this serves.
//!
//! ```text
//! call.rs     route, grpc-encoding, grpc-timeout, auth, forwarded metadata, message (admitted by its prefix),
//!             decompress, ingest (decode, split, count, submit)
//! status.rs   the error table, the status headers (RetryInfo twice), the answers
//! body.rs     the answer body: message then trailers
//! ```

mod body;
mod call;
mod status;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Request, Response};
use hyper::body::Incoming;
use tower::Service;

pub(crate) use body::GrpcBody;

use crate::ingest::Ingest;
use crate::receive::auth::Tokens;
use crate::telemetry::Telemetry;

/// What the gRPC input needs, shared by all connections.
pub(crate) struct GrpcInput {
    /// The transport-neutral steps.
    pub ingest: Arc<Ingest>,
    /// Metrics.
    pub telemetry: Arc<Telemetry>,
    /// Message limit, on the wire and decompressed (`--max-body-bytes`).
    pub max_body_bytes: usize,
    /// Time for a message to arrive (`--read-timeout`), within the client's own deadline.
    pub read_timeout: Duration,
    /// Longest pause inside a message while it holds memory.
    pub body_idle_timeout: Duration,
    /// Accepted bearer tokens; `None`: no authentication.
    pub auth: Option<Arc<Tokens>>,
    /// `--forward-header` names, read from the call's metadata.
    pub forward_headers: Vec<HeaderName>,
}

/// The service for one call: [`call::handle`], a panic answered `INTERNAL` instead of a reset stream.
pub(crate) fn service(
    input: Arc<GrpcInput>,
) -> impl Service<Request<Incoming>, Response = Response<GrpcBody>, Error = Infallible, Future: Send> + Clone + Send {
    input.telemetry.register_input("grpc", &["protobuf"]);
    if input.auth.is_some() {
        crate::receive::auth::count_from_zero(&input.telemetry);
    }
    tower::service_fn(move |req| {
        let input = Arc::clone(&input);
        async move {
            let answer = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(call::handle(input, req)));
            Ok::<_, Infallible>(answer.await.unwrap_or_else(|_| {
                tracing::error!("a gRPC call panicked; answered INTERNAL");
                status::refusal(tonic::Code::Internal, crate::ingest::Retry::No, "internal error")
            }))
        }
    })
}
