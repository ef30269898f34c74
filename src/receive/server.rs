//! The accept loop: HTTP/1.1 and h2c on one port (or HTTPS, see [`super::tls`]), a header read timeout, a
//! connection cap, graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::Service;

use super::age;
use super::pings::{PingGuard, PingPolicy};
use super::tls::{self, ServerTls};
use crate::telemetry::Telemetry;

/// hyper's default read buffer may grow to ~400 KiB per connection while a body streams in; the body is copied out
/// of it as it arrives, so 64 KiB costs no throughput and keeps 1000 busy connections from holding 400 MiB.
const HTTP1_READ_BUFFER: usize = 64 * 1024;
/// Concurrent requests on one HTTP/2 connection: as many as the memory limit can usefully admit from one client
/// (hyper's default, 200, is of the same order); the memory limit, not this, bounds what they hold.
const HTTP2_MAX_STREAMS: u32 = 256;
/// HTTP/2 pings to idle clients, so connections a NAT or load balancer dropped silently free their slots.
const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
/// Pause after a failed accept (EMFILE and friends): long enough not to spin on a full fd table, short enough that
/// the listener is back as soon as a connection closes.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// How often a partly received HTTP/2 preface is peeked again (peek does not consume, so it must pause).
const PREFACE_PEEK_INTERVAL: Duration = Duration::from_millis(5);

/// Limits of the accept loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServeLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Time to send request headers.
    pub header_timeout: Duration,
    /// Time to finish in-flight requests after shutdown begins.
    pub drain: Duration,
    /// Connections end gracefully after about this age (see [`super::age`]).
    pub max_connection_age: Option<Duration>,
    /// Which listener this is, as the `listener` label of the connection metrics (`otlp`, `grpc` or `admin`), so that
    /// a flood of the admin port is not read as clients being turned away.
    pub listener: &'static str,
    /// How often HTTP/2 clients may ping (see [`super::pings`]); `None`: as h2 allows.
    pub pings: Option<PingPolicy>,
    /// An HTTP/2 connection with no request in flight for this long gets GOAWAY; `None`: kept while it pings.
    pub max_idle: Option<Duration>,
}

/// Serves `service` on `listener` until `shutdown` resolves, then lets open connections finish their requests
/// (new requests are refused) for up to `limits.drain`. `open` counts open connections. With `tls`, connections
/// are TLS (h2 or http/1.1 by ALPN).
pub(crate) async fn serve<S, B>(
    listener: TcpListener,
    tls: Option<Arc<ServerTls>>,
    service: S,
    limits: ServeLimits,
    telemetry: Arc<Telemetry>,
    open: Arc<AtomicUsize>,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .max_buf_size(HTTP1_READ_BUFFER);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(HTTP2_MAX_STREAMS)
        .keep_alive_interval(HTTP2_KEEPALIVE_INTERVAL);
    let graceful = age::Drain::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning; the listener stays usable.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if open.load(Ordering::Relaxed) >= limits.max_connections {
            telemetry.connection_refused(limits.listener, 1);
            tracing::debug!(%peer, "connection cap reached, closing connection");
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let guard = ConnectionGuard::new(Arc::clone(&open));
        let builder = builder.clone();
        let service = service.clone();
        let watcher = graceful.watcher();
        let telemetry = Arc::clone(&telemetry);
        let tls = tls.clone();
        tokio::spawn(async move {
            let _guard = guard;
            if !request_started(&stream, limits.header_timeout).await {
                telemetry.connection_timed_out(limits.listener, 1);
                tracing::debug!(%peer, "connection sent no request in time, closing it");
                return;
            }
            let stream = match tls::accept(tls.as_deref(), stream, limits.header_timeout).await {
                Ok(stream) => stream,
                Err(e) => {
                    telemetry.tls_handshake_failed(1);
                    tracing::debug!(%peer, "connection closed: {e}");
                    return;
                }
            };
            let age = age::ConnectionAge::new(limits.max_connection_age, limits.max_idle);
            let service = TowerToHyperService::new(age.wrap(service));
            let stream = PingGuard::new(stream, limits.pings);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection.into_owned(), age).await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.drain) => tracing::warn!("shutdown: connections still open after {:?}, closing them", limits.drain),
    }
}

/// Waits until the client has sent enough to tell HTTP/1 from HTTP/2, within `timeout`; false if it did not.
///
/// hyper's header timeout only starts once the HTTP/1-or-2 detection has read the first bytes, and that read has no
/// deadline of its own: without this, clients that connect and stay silent (or stop inside the HTTP/2 preface)
/// would hold their connection slots forever and lock everyone else out at `--max-connections`.
async fn request_started(stream: &tokio::net::TcpStream, timeout: Duration) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let deadline = tokio::time::Instant::now() + timeout;
    let mut peeked = [0u8; PREFACE.len()];
    loop {
        match tokio::time::timeout_at(deadline, stream.peek(&mut peeked)).await {
            Ok(Ok(n)) if n > 0 => {
                if n == PREFACE.len() || peeked[..n] != PREFACE[..n] {
                    // A full HTTP/2 preface, or HTTP/1 (whose header timeout hyper enforces from here on).
                    return true;
                }
                // Part of an HTTP/2 preface: peek again once more has arrived (peek does not consume, so pause).
                if tokio::time::timeout_at(deadline, tokio::time::sleep(PREFACE_PEEK_INTERVAL)).await.is_err() {
                    return false;
                }
            }
            // Closed, failed, or silent until the deadline.
            _ => return false,
        }
    }
}

struct ConnectionGuard(Arc<AtomicUsize>);

impl ConnectionGuard {
    fn new(open: Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(open)
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
