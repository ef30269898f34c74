//! The OTLP/HTTP side: routing, body limits, inflating, decoding, and answering.
//!
//! ```text
//! CORS -> Routed (404/405/415, request metrics) -> MemoryLimit (reserve Content-Length) -> handle:
//!   read (wire limit, timeout) -> inflate (inflated limit) -> decode<S> (wire scan | JSON) -> split -> sink
//! ```

mod age;
pub mod auth;
pub mod body;
mod cors;
mod hint;
mod panic;
pub mod respond;
pub mod server;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::time::Instant;
use tower::{Service, ServiceBuilder};

pub use body::ContentEncoding;
pub use respond::{Format, ReceiveError};
pub use server::serve;

use crate::limit::{MemoryBudget, MemoryError, MemoryLimitLayer, Reservation, SharedReservation};
use crate::signal::{Logs, Metrics, Profiles, Signal, SignalKind, Traces};
use crate::sink::{Sink, SinkError, Submission};
use crate::telemetry::Telemetry;

/// Bodies larger than this are inflated and decoded on the blocking pool, so one big request does not stall the
/// other connections served by the same runtime thread.
const BLOCKING_THRESHOLD: usize = 1 << 20;

/// The same for compressed bodies, which may inflate up to `--max-body-bytes`.
const BLOCKING_THRESHOLD_COMPRESSED: usize = 16 << 10;

/// Longest an early answer (404/405/415, memory limit) waits for the rest of a body it will not use.
const DISCARD_TIMEOUT: Duration = Duration::from_secs(5);

fn declared_length<B>(req: &Request<B>) -> Option<usize> {
    req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

/// What the receiver needs, shared by all connections.
pub struct Receiver {
    /// Where accepted data goes (direct or queued delivery).
    pub sink: Arc<dyn Sink>,
    /// The memory budget.
    pub budget: Arc<MemoryBudget>,
    /// Metrics.
    pub telemetry: Arc<Telemetry>,
    /// Body limit, wire and inflated.
    pub max_body_bytes: usize,
    /// Largest export; bigger requests are split.
    pub max_export_bytes: usize,
    /// Time to read a body.
    pub read_timeout: Duration,
    /// Accepted bearer tokens; `None`: no authentication.
    pub auth: Option<Arc<auth::Tokens>>,
    /// Longest a body may pause between two of its bytes while it holds memory.
    pub body_idle_timeout: Duration,
    /// `--forward-header` names, whose values go with the request's data as gRPC metadata.
    pub forward_headers: Vec<http::HeaderName>,
}

/// The request's route, found before its body is read.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// The signal of the path.
    pub kind: SignalKind,
    /// The body's encoding.
    pub format: Format,
    /// The body's compression.
    pub encoding: ContentEncoding,
}

fn content_type(req: &Request<Incoming>) -> Option<&str> {
    req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

fn route(req: &Request<Incoming>) -> Result<Route, ReceiveError> {
    let path = req.uri().path();
    let kind = SignalKind::from_http_path(path).ok_or_else(|| ReceiveError::NotFound(path.to_string()))?;
    if req.method() != Method::POST {
        return Err(ReceiveError::MethodNotAllowed(req.method().to_string()));
    }
    let raw_type = content_type(req);
    let format = Format::from_content_type(raw_type)
        .ok_or_else(|| ReceiveError::UnsupportedMediaType(raw_type.unwrap_or("(none)").to_string()))?;
    let raw_encoding = req.headers().get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("(not ASCII)"));
    let encoding = ContentEncoding::parse(raw_encoding)?;
    Ok(Route { kind, format, encoding })
}

/// The tower stack for one client request, from CORS to the handler.
pub fn stack(
    receiver: Arc<Receiver>,
    cors_allowed_origins: &[String],
) -> impl Service<Request<Incoming>, Response = Response<Full<Bytes>>, Error = Infallible, Future: Send> + Clone + Send
{
    let telemetry = Arc::clone(&receiver.telemetry);
    let (discard_limit, discard_timeout) = (receiver.max_body_bytes, receiver.read_timeout.min(DISCARD_TIMEOUT));
    let refuse = move |req: Request<Incoming>, e: MemoryError| {
        telemetry.memory_refused();
        let response = ReceiveError::Memory(e).into_response(Format::for_errors(content_type(&req)));
        let declared = declared_length(&req);
        async move {
            body::discard(req.into_body(), declared, discard_limit, discard_timeout).await;
            response
        }
    };
    let auth = receiver.auth.as_ref().map(|tokens| {
        auth::AuthLayer::new(Arc::clone(tokens), Arc::clone(&receiver.telemetry), discard_limit, discard_timeout)
    });
    let handler = ServiceBuilder::new()
        // Who may write: checked before memory is reserved or a byte of the body is read.
        .option_layer(auth)
        // Refuse what the memory limit cannot hold before a byte of the body is read.
        .layer(MemoryLimitLayer::new(Arc::clone(&receiver.budget), refuse))
        .service_fn({
            let receiver = Arc::clone(&receiver);
            move |req| handle(Arc::clone(&receiver), req)
        });
    ServiceBuilder::new()
        // Browsers: answer preflights and add CORS headers to every answer, errors included.
        .option_layer(cors::layer(cors_allowed_origins))
        // A bug answers 500 with a Status body instead of resetting the connection; one place for every request.
        .layer(panic::CatchPanicLayer)
        .service(Routed {
            inner: handler,
            telemetry: Arc::clone(&receiver.telemetry),
            discard_limit: receiver.max_body_bytes,
            discard_timeout: receiver.read_timeout.min(DISCARD_TIMEOUT),
        })
}

/// Answers 404/405/415 before the body is read or memory reserved, and times and counts every answer.
#[derive(Clone)]
struct Routed<S> {
    inner: S,
    telemetry: Arc<Telemetry>,
    discard_limit: usize,
    discard_timeout: Duration,
}

impl<S> Service<Request<Incoming>> for Routed<S>
where
    S: Service<Request<Incoming>, Response = Response<Full<Bytes>>, Error = Infallible> + Send,
    S::Future: Send + 'static,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Incoming>) -> Self::Future {
        let started = Instant::now();
        let telemetry = Arc::clone(&self.telemetry);
        match route(&req) {
            Ok(route) => {
                req.extensions_mut().insert(route);
                let answer = self.inner.call(req);
                Box::pin(async move {
                    let response = answer.await?;
                    telemetry.request(Some(route.kind), response.status(), started.elapsed());
                    Ok(response)
                })
            }
            Err(e) => {
                let kind = SignalKind::from_http_path(req.uri().path());
                let response = e.into_response(Format::for_errors(content_type(&req)));
                let declared = declared_length(&req);
                let (limit, timeout) = (self.discard_limit, self.discard_timeout);
                Box::pin(async move {
                    body::discard(req.into_body(), declared, limit, timeout).await;
                    telemetry.request(kind, response.status(), started.elapsed());
                    Ok(response)
                })
            }
        }
    }
}

async fn handle(receiver: Arc<Receiver>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let route = req.extensions().get::<Route>().copied();
    let reservation = req.extensions().get::<SharedReservation>().and_then(SharedReservation::take);
    let (Some(route), Some(reservation)) = (route, reservation) else {
        // The stack always sets both; answering beats panicking if it ever does not.
        let e = ReceiveError::Internal("request reached the handler unrouted".into());
        return Ok(e.into_response(Format::Json));
    };
    let declared = declared_length(&req);
    let curl = hint::looks_like_curl_d(req.headers().get(header::USER_AGENT).map(http::HeaderValue::as_bytes));
    let forwarded = match forwarded_headers(&receiver.forward_headers, req.headers()) {
        Ok(forwarded) => forwarded,
        Err(e) => {
            let timeout = receiver.read_timeout.min(DISCARD_TIMEOUT);
            body::discard(req.into_body(), declared, receiver.max_body_bytes, timeout).await;
            return Ok(e.into_response(route.format));
        }
    };
    let body = req.into_body();
    let result = match route.kind {
        SignalKind::Traces => receive::<Traces>(&receiver, route, declared, body, forwarded, reservation).await,
        SignalKind::Metrics => receive::<Metrics>(&receiver, route, declared, body, forwarded, reservation).await,
        SignalKind::Logs => receive::<Logs>(&receiver, route, declared, body, forwarded, reservation).await,
        SignalKind::Profiles => receive::<Profiles>(&receiver, route, declared, body, forwarded, reservation).await,
    };
    Ok(result.unwrap_or_else(|e| {
        if matches!(e, ReceiveError::Memory(_)) {
            // Refused part way (the body grew past what is free), as counted for refusals before the body.
            receiver.telemetry.memory_refused();
        }
        let binary = route.format == Format::Protobuf || route.encoding != ContentEncoding::Identity;
        let e = match e {
            ReceiveError::Protobuf(_) | ReceiveError::Decompress { .. } if curl && binary => {
                ReceiveError::Hinted(Box::new(e), hint::CURL_DATA_BINARY)
            }
            e => e,
        };
        tracing::debug!(signal = route.kind.name(), "request refused: {e}");
        e.into_response(route.format)
    }))
}

/// The `--forward-header` values of a request, in the configured order; all values of a repeated header joined
/// with `,` (as HTTP reads them); absent headers left out. Values must be visible ASCII to become gRPC metadata.
fn forwarded_headers(
    names: &[http::HeaderName],
    headers: &http::HeaderMap,
) -> Result<Vec<(String, String)>, ReceiveError> {
    let mut forwarded = Vec::new();
    for name in names {
        let mut joined: Option<String> = None;
        for value in headers.get_all(name) {
            let text = value
                .to_str()
                .ok()
                .filter(|v| v.bytes().all(|b| (0x20..0x7f).contains(&b)))
                .ok_or_else(|| ReceiveError::ForwardHeader(name.to_string()))?;
            match &mut joined {
                Some(j) => {
                    j.push(',');
                    j.push_str(text.trim());
                }
                None => joined = Some(text.trim().to_string()),
            }
        }
        if let Some(value) = joined {
            forwarded.push((name.as_str().to_string(), value));
        }
    }
    Ok(forwarded)
}

/// A request body as it will be forwarded: valid protobuf and its item count.
struct Decoded {
    payload: Bytes,
    items: u64,
    scan: Option<crate::wire::Scan>,
}

async fn receive<S: Signal>(
    receiver: &Receiver,
    route: Route,
    declared: Option<usize>,
    body: Incoming,
    forwarded: Vec<(String, String)>,
    mut reservation: Reservation,
) -> Result<Response<Full<Bytes>>, ReceiveError> {
    let limit = receiver.max_body_bytes;
    let read = body::read_limited(body, declared, limit, receiver.body_idle_timeout, &mut reservation);
    let wire = tokio::time::timeout(receiver.read_timeout, read)
        .await
        .map_err(|_| ReceiveError::ReadTimeout(receiver.read_timeout))??;

    // A large body, or a compressed one that may inflate a lot, is decoded on the blocking pool so it does not
    // stall the other requests served by this runtime thread; small ones are cheaper to decode in place.
    let blocking = wire.len() > BLOCKING_THRESHOLD
        || (route.encoding != ContentEncoding::Identity && wire.len() > BLOCKING_THRESHOLD_COMPRESSED);
    let work = move || -> Result<(Decoded, Option<String>, Reservation), ReceiveError> {
        let plain = body::inflate(route.encoding, wire, limit, &mut reservation)?;
        let decoded = decode::<S>(route.format, plain.clone(), &mut reservation)?;
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
    let encoding_label = match route.format {
        Format::Json => "json",
        Format::Protobuf => "protobuf",
    };
    let items = decoded.items;
    receiver.telemetry.accepted(S::KIND, encoding_label, items);
    let chunks = split(S::KIND, decoded, receiver.max_export_bytes)?;
    let submission = Submission { kind: S::KIND, chunks, headers: forwarded, reservation };
    match receiver.sink.submit(submission).await {
        Ok(partial) => Ok(respond::success::<S>(route.format, Some(partial))),
        Err(e) => {
            receiver.telemetry.refused(S::KIND, items);
            Err(match e {
                SinkError::Export(e) => e.into(),
                SinkError::Queue(e) => ReceiveError::Queue(e),
            })
        }
    }
}

fn decode<S: Signal>(format: Format, plain: Bytes, reservation: &mut Reservation) -> Result<Decoded, ReceiveError> {
    match format {
        Format::Protobuf => {
            let scan = crate::wire::scan(S::KIND.schema(), &plain)?;
            Ok(Decoded { items: scan.items, payload: plain, scan: Some(scan) })
        }
        Format::Json => {
            // Straight from JSON text to protobuf, no message tree: the output lives beside the text for a moment.
            // It is usually about half the text, so the text's size is reserved for it; long packed arrays of small
            // numbers (`bucketCounts`) can make it up to four times longer, and then it is done again with room
            // for that, so what is reserved always bounds what is held.
            let text = plain.len();
            reservation.resize(text.saturating_mul(2))?;
            let mut protobuf = Vec::new();
            let items = match crate::json::transcode_within::<S::Request>(&plain, &mut protobuf, text)? {
                Some(items) => items,
                None => {
                    let room = text.saturating_mul(4).saturating_add(64 * 1024);
                    reservation.resize(text.saturating_add(room))?;
                    crate::json::transcode_within::<S::Request>(&plain, &mut protobuf, room)?.ok_or(
                        MemoryError::TooLarge { needed: text.saturating_add(room), limit: reservation.bytes() },
                    )?
                }
            };
            drop(plain);
            // Held until the backend answers: keep only what it uses, not the text-sized capacity.
            protobuf.shrink_to_fit();
            let payload = Bytes::from(protobuf);
            reservation.resize(payload.len())?;
            Ok(Decoded { payload, items, scan: None })
        }
    }
}

/// Splits a request larger than one export into valid requests at whole resource/scope/item entries.
fn split(kind: SignalKind, decoded: Decoded, max_bytes: usize) -> Result<Vec<(Bytes, u64)>, ReceiveError> {
    if decoded.payload.len() <= max_bytes {
        return Ok(vec![(decoded.payload, decoded.items)]);
    }
    let scan = match decoded.scan {
        Some(scan) => scan,
        None => crate::wire::scan(kind.schema(), &decoded.payload)?,
    };
    let chunks = crate::wire::split(kind.schema(), &decoded.payload, &scan, max_bytes);
    Ok(chunks.into_iter().map(|c| (c.body, c.items)).collect())
}
