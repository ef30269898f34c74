//! The OTLP/HTTP input: what only HTTP needs (head, route, auth, body, inflate, rescue, respond) around the
//! transport-neutral [`crate::ingest`] steps, and the one place its errors become HTTP answers.
//!
//! ```text
//! server.rs, tls.rs, age.rs   HTTP/1.1 + h2c (or TLS, ALPN); header timeout, connection cap, connection age
//! tower layers: cross-cutting only (stack)
//!   CORS          cors.rs     browsers: preflights, and CORS headers on every answer, errors included
//!   catch panic   panic.rs    a bug answers 500 (Internal, via rescue::answer) instead of resetting the stream
//! handle: one handler, typed steps in order; a step returns its value or a ReceiveError
//!   head     RequestHead::parse(parts)        -> RequestHead   every header the chain reads, read once
//!   route    route::route(&head)              -> Route         404, 405, 415
//!   auth     auth::authorize(tokens, ..)      -> ()            401       | before a byte of the body:
//!   reserve  budget.admit(content_length)     -> Reservation   503, 413  | a refused body is drained
//!   forward  head.forwarded                   -> metadata      400       | (bounded) by the rescue
//!   read     body::read_limited(body, ..)     -> Bytes         413, 408, 400, 503 (reservation follows the bytes;
//!                                                             a 503 part way drains the rest of the body itself)
//!   inflate  body::inflate(encoding, ..)      -> Bytes         413, 400, 503      | large bodies: both on
//!   decode   ingest.decode(kind, format, ..)  -> Decoded       400, 503           | the blocking pool
//!   ingest   ingest.submit(Transport::Http..) -> PartialSuccess  split, count, sink: the delivery refusal
//!   respond  respond::success::<S>(format)    -> 200, in the request's encoding
//! rescue     rescue::rescue(error, ..)        every refusal: counted, hinted, answered (error.rs's table), drained
//! count      telemetry.request(signal, status, elapsed) for every answer the handler gives
//! ```

mod age;
pub(crate) mod auth;
pub(crate) mod body;
mod cors;
mod error;
mod head;
mod hint;
mod panic;
pub(crate) mod pings;
mod rescue;
mod respond;
mod route;
pub(crate) mod server;
pub(crate) mod tls;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::time::Instant;
use tower::{Service, ServiceBuilder};

pub(crate) use body::ContentEncoding;
pub use error::ReceiveError;
pub(crate) use head::forwarded_headers;
pub(crate) use respond::Format;
pub(crate) use server::serve;

use head::RequestHead;
use rescue::{rescue, Refused};
use route::Route;

use crate::ingest::{Decoded, Ingest, Transport};
use crate::limit::Reservation;
use crate::signal::{Logs, Metrics, Profiles, Signal, SignalKind, Traces};
use crate::telemetry::Telemetry;

/// Bodies larger than this are inflated and decoded on the blocking pool, so one big request does not stall the
/// other connections served by the same runtime thread.
const BLOCKING_THRESHOLD: usize = 1 << 20;

/// The same for compressed bodies, which may inflate up to `--max-body-bytes`.
const BLOCKING_THRESHOLD_COMPRESSED: usize = 16 << 10;

/// What the receiver needs, shared by all connections.
pub(crate) struct Receiver {
    /// The transport-neutral steps: memory admission, decode, split, count, submit to the sink.
    pub ingest: Arc<Ingest>,
    /// Metrics.
    pub telemetry: Arc<Telemetry>,
    /// Body limit, wire and inflated.
    pub max_body_bytes: usize,
    /// Time to read a body.
    pub read_timeout: Duration,
    /// Accepted bearer tokens; `None`: no authentication.
    pub auth: Option<Arc<auth::Tokens>>,
    /// Longest a body may pause between two of its bytes while it holds memory.
    pub body_idle_timeout: Duration,
    /// `--forward-header` names, whose values go with the request's data as gRPC metadata.
    pub forward_headers: Vec<http::HeaderName>,
    /// Set once a gRPC client called this port and that was logged (it is logged once per receiver).
    pub grpc_warned: std::sync::atomic::AtomicBool,
    /// The address the gRPC input is bound to, when it is on: named to a gRPC client that called this port.
    pub grpc_listen: Option<std::net::SocketAddr>,
}

/// The service for one client request: the cross-cutting layers around [`handle`].
pub(crate) fn stack(
    receiver: Arc<Receiver>,
    cors_allowed_origins: &[String],
) -> impl Service<Request<Incoming>, Response = Response<Full<Bytes>>, Error = Infallible, Future: Send> + Clone + Send
{
    if receiver.auth.is_some() {
        auth::count_from_zero(&receiver.telemetry);
    }
    ServiceBuilder::new()
        // Browsers: answer preflights and add CORS headers to every answer, errors included.
        .option_layer(cors::layer(cors_allowed_origins))
        // A bug answers 500 with a Status body instead of resetting the connection; one place for every request.
        .layer(panic::CatchPanicLayer)
        .service_fn(move |req| {
            let receiver = Arc::clone(&receiver);
            async move { Ok::<_, Infallible>(handle(&receiver, req).await) }
        })
}

/// The handler: the steps of the module's chart in order, every refusal answered by [`rescue`], every answer
/// counted by signal and status (timed from the first look at the request to the answer, draining included).
async fn handle(receiver: &Receiver, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let head = RequestHead::parse(&parts, &receiver.forward_headers);
    drop(parts);
    if hint::is_grpc(head.content_type.as_deref()) {
        let response = grpc_on_http_port(receiver, &head, body).await;
        receiver.telemetry.request(head.signal, response.status(), started.elapsed());
        return response;
    }
    let response = match admit(receiver, &head) {
        Err(error) => rescue(receiver, &head, error, Refused::BeforeBody(body)).await,
        Ok(admitted) => {
            let route = admitted.route;
            let accepted = match route.kind {
                SignalKind::Traces => accept::<Traces>(receiver, admitted, head.content_length, body).await,
                SignalKind::Metrics => accept::<Metrics>(receiver, admitted, head.content_length, body).await,
                SignalKind::Logs => accept::<Logs>(receiver, admitted, head.content_length, body).await,
                SignalKind::Profiles => accept::<Profiles>(receiver, admitted, head.content_length, body).await,
            };
            match accepted {
                Ok(response) => response,
                Err(error) => rescue(receiver, &head, error, Refused::AfterRoute(route)).await,
            }
        }
    };
    receiver.telemetry.request(head.signal, response.status(), started.elapsed());
    response
}

/// A gRPC client on the OTLP/HTTP port (an exporter with the wrong protocol or port) gets a gRPC answer it can show:
/// UNIMPLEMENTED with a message that says where gRPC goes, instead of a 404 its library words as "Received http2
/// header with status: 404". Trailers-only (HTTP 200, `grpc-status` in the headers, no body), as gRPC answers a call
/// it refuses before any message. Logged at warn the first time only: one misconfigured exporter retries for ever.
async fn grpc_on_http_port(receiver: &Receiver, head: &RequestHead, body: Incoming) -> Response<Full<Bytes>> {
    let hint = hint::grpc_on_http_port(receiver.grpc_listen);
    if !receiver.grpc_warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            path = head.path.as_str(),
            user_agent = head.user_agent.as_ref().and_then(|v| v.to_str().ok()).unwrap_or(""),
            "a gRPC client called the OTLP/HTTP port (logged once): {hint}"
        );
    }
    let timeout = receiver.read_timeout.min(rescue::DISCARD_TIMEOUT);
    body::discard(body, head.content_length, receiver.max_body_bytes, timeout).await;
    respond::grpc_status(tonic::Code::Unimplemented, &hint)
}

/// What an admitted request holds before its body is read.
struct Admitted {
    /// Its signal, format and compression.
    route: Route,
    /// Its share of the memory budget: up to [`crate::limit::UPFRONT_RESERVATION`] now, then what arrives.
    reservation: Reservation,
    /// The `--forward-header` metadata its data carries to the backend.
    forwarded: Vec<(String, String)>,
}

/// The steps before the body (route, auth, reserve, forward), in that order; none reads a byte of it.
fn admit(receiver: &Receiver, head: &RequestHead) -> Result<Admitted, ReceiveError> {
    let route = route::route(head)?;
    auth::authorize(receiver.auth.as_deref(), head.authorization.as_ref())?;
    let reservation = receiver.ingest.admit(head.content_length.unwrap_or(0))?;
    let forwarded = head.forwarded.clone().map_err(|name| ReceiveError::ForwardHeader(name.to_string()))?;
    Ok(Admitted { route, reservation, forwarded })
}

/// The steps from the body on (read, inflate, decode, split, submit, respond) for signal `S`; `declared` is the
/// body's `Content-Length`.
async fn accept<S: Signal>(
    receiver: &Receiver,
    admitted: Admitted,
    declared: Option<usize>,
    body: Incoming,
) -> Result<Response<Full<Bytes>>, ReceiveError> {
    let Admitted { route, mut reservation, forwarded } = admitted;
    let limit = receiver.max_body_bytes;
    let read = body::read_limited(body, declared, limit, receiver.body_idle_timeout, &mut reservation);
    let wire = tokio::time::timeout(receiver.read_timeout, read)
        .await
        .map_err(|_| ReceiveError::ReadTimeout(receiver.read_timeout))??;

    // A large body, or a compressed one that may inflate a lot, is decoded on the blocking pool so it does not
    // stall the other requests served by this runtime thread; small ones are cheaper to decode in place.
    let blocking = wire.len() > BLOCKING_THRESHOLD
        || (route.encoding != ContentEncoding::Identity && wire.len() > BLOCKING_THRESHOLD_COMPRESSED);
    // A body that does not inflate or decode as its headers say is told which header to change when its first bytes
    // are clearly something else (JSON sent as protobuf, gzip without Content-Encoding, ...).
    let first = wire.slice(..wire.len().min(hint::SNIFF_BYTES));
    let misnamed = move |error: ReceiveError| match hint::wrong_headers(route.format, route.encoding, &first) {
        Some(advice) => ReceiveError::Hinted(Box::new(error), advice),
        None => error,
    };
    let ingest = Arc::clone(&receiver.ingest);
    let work = move || -> Result<(Decoded, Option<String>, Reservation), ReceiveError> {
        let plain = body::inflate(route.encoding, wire, limit, &mut reservation).map_err(|e| match e {
            ReceiveError::Decompress { .. } => misnamed(e),
            e => e,
        })?;
        let decoded =
            ingest.decode(S::KIND, route.format, plain.clone(), &mut reservation).map_err(
                |e| match ReceiveError::from(e) {
                    e @ (ReceiveError::Json(_) | ReceiveError::Protobuf(_)) => misnamed(e),
                    e => e,
                },
            )?;
        // An empty JSON request is fine, unless it is empty because its keys were another signal's (or typos).
        let warning = (decoded.items == 0 && route.format == Format::Json)
            .then(|| hint::ignored_top_level_keys(S::KIND, &plain))
            .flatten();
        Ok((decoded, warning, reservation))
    };
    let (decoded, warning, reservation) = if blocking {
        tokio::task::spawn_blocking(work).await.map_err(|e| {
            tracing::error!("decoding a request failed: {e}");
            ReceiveError::Internal(format!("decoding failed: {e}"))
        })??
    } else {
        work()?
    };

    if decoded.items == 0 {
        // Nothing to deliver (OTLP: an empty request succeeds; the spec allows a warning with 0 rejected).
        let partial = warning.map(|message| crate::signal::PartialSuccess { rejected: 0, message });
        return Ok(respond::success::<S>(route.format, partial));
    }
    let partial = receiver.ingest.submit(Transport::Http, S::KIND, decoded, forwarded, reservation).await?;
    Ok(respond::success::<S>(route.format, Some(partial)))
}

#[cfg(test)]
mod tests;
