//! Connection lifetime: a graceful end at shutdown, and at `--max-connection-age` so that clients reconnect and a
//! scaled-out fleet of bridges evens out (behind a Kubernetes Service, a connection stays on the pod it first
//! reached; only new connections see new pods).
//!
//! At the age (jittered +-10%, so that connections opened together do not all reconnect together):
//! - HTTP/2 gets GOAWAY (hyper's graceful shutdown: a first GOAWAY that still admits streams already on their way,
//!   then the final one); streams in flight finish, the client opens a new connection for the next request.
//! - HTTP/1.1 answers its next response with `Connection: close` and hyper closes after writing it. An idle
//!   keep-alive connection is not closed under the client: a request it sends at that moment would fail, which is
//!   the one thing this must never cause.
//!
//! At shutdown every connection gets hyper's graceful shutdown (h2 GOAWAY; h1 closes when idle, after the answer
//! otherwise), as `hyper_util`'s `GracefulShutdown` does; it is replaced here because it owns the connection and
//! so cannot also end it at an age.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{header, HeaderValue, Request, Response, Version};
use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::Service;

/// Starts the graceful end of every watched connection, and waits for them.
#[derive(Debug)]
pub(crate) struct Drain {
    signal: watch::Sender<bool>,
}

impl Drain {
    pub(crate) fn new() -> Drain {
        Drain { signal: watch::channel(false).0 }
    }

    /// A watcher for one connection.
    pub(crate) fn watcher(&self) -> Watcher {
        Watcher { signal: self.signal.subscribe() }
    }

    /// Asks every connection to end gracefully and waits until all have.
    pub(crate) async fn shutdown(self) {
        self.signal.send_replace(true);
        // Each connection's watcher holds a receiver until its connection is done.
        self.signal.closed().await;
    }
}

/// Drives one connection to its end.
#[derive(Debug)]
pub(crate) struct Watcher {
    signal: watch::Receiver<bool>,
}

impl Watcher {
    /// Serves `conn` until it ends, ending it gracefully at shutdown or, for HTTP/2, at `age`'s deadline.
    pub(crate) async fn watch<C: GracefulConnection>(mut self, conn: C, age: ConnectionAge) -> Result<(), C::Error> {
        tokio::pin!(conn);
        let mut ending = false;
        let mut aged = age.deadline.is_none();
        let deadline = age.deadline.unwrap_or_else(Instant::now);
        let mut idle_check = age.idle.as_ref().map(|idle| Instant::now() + idle.max);
        loop {
            tokio::select! {
                done = &mut conn => return done,
                () = tokio::time::sleep_until(idle_check.unwrap_or_else(Instant::now)), if idle_check.is_some() && !ending => {
                    idle_check = match age.idle.as_ref().and_then(|idle| idle.until()) {
                        Some(next) => Some(next),
                        None => {
                            tracing::debug!("connection idle for too long: GOAWAY");
                            conn.as_mut().graceful_shutdown();
                            ending = true;
                            None
                        }
                    };
                }
                // A dropped `Drain` counts as shutdown too.
                _ = self.signal.wait_for(|stop| *stop), if !ending => {
                    conn.as_mut().graceful_shutdown();
                    ending = true;
                }
                () = tokio::time::sleep_until(deadline), if !aged && !ending => {
                    aged = true;
                    if age.http2.load(Ordering::Relaxed) {
                        tracing::debug!("connection reached its maximum age: GOAWAY");
                        conn.as_mut().graceful_shutdown();
                        ending = true;
                    }
                    // HTTP/1: `AgedService` closes it with its next answer.
                }
            }
        }
    }
}

/// The age limit of one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionAge {
    deadline: Option<Instant>,
    /// Whether the connection speaks HTTP/2 (learnt from its first request).
    http2: Arc<AtomicBool>,
    /// The idle limit, with what the connection is doing.
    idle: Option<Arc<Idle>>,
}

/// How long a connection may go without a request in flight, and when it last had one.
#[derive(Debug)]
pub(crate) struct Idle {
    max: Duration,
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
}

impl Idle {
    /// When to look again, or `None` when the connection has been idle for `max` now.
    fn until(&self) -> Option<Instant> {
        let now = Instant::now();
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Some(now + self.max);
        }
        let last = *self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = last + self.max;
        (due > now).then_some(due)
    }

    fn touch(&self) {
        *self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
    }
}

/// Counts one request in flight until dropped.
struct InFlight(Option<Arc<Idle>>);

impl InFlight {
    fn new(idle: Option<Arc<Idle>>) -> InFlight {
        if let Some(idle) = &idle {
            idle.in_flight.fetch_add(1, Ordering::AcqRel);
            idle.touch();
        }
        InFlight(idle)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(idle) = &self.0 {
            idle.touch();
            idle.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl ConnectionAge {
    /// A connection opened now that may live about `max` (+-10%; `None`: for ever), and as an HTTP/2 connection
    /// go without a request for `max_idle` (`None`: for ever).
    pub(crate) fn new(max: Option<Duration>, max_idle: Option<Duration>) -> ConnectionAge {
        let deadline = max.map(|max| Instant::now() + max.mul_f64(0.9 + 0.2 * fastrand::f64()));
        let idle = max_idle
            .map(|max| Arc::new(Idle { max, in_flight: AtomicUsize::new(0), last: Mutex::new(Instant::now()) }));
        ConnectionAge { deadline, http2: Arc::new(AtomicBool::new(false)), idle }
    }

    /// `service`, answering HTTP/1 with `Connection: close` once the age is reached.
    pub(crate) fn wrap<S>(&self, service: S) -> AgedService<S> {
        AgedService { inner: service, age: self.clone() }
    }

    fn reached(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// See [`ConnectionAge::wrap`].
#[derive(Debug, Clone)]
pub(crate) struct AgedService<S> {
    inner: S,
    age: ConnectionAge,
}

impl<S, B, ResBody> Service<Request<B>> for AgedService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let http1 = req.version() < Version::HTTP_2;
        if !http1 {
            self.age.http2.store(true, Ordering::Relaxed);
        }
        let age = self.age.clone();
        let in_flight = InFlight::new(age.idle.clone());
        let answer = self.inner.call(req);
        Box::pin(async move {
            let mut response = answer.await?;
            drop(in_flight);
            if http1 && age.reached() {
                response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: Version) -> Request<()> {
        Request::builder().version(version).body(()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn http1_answers_say_close_once_the_age_is_reached_and_not_before() {
        let ok = tower::service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(())) });
        let age = ConnectionAge::new(Some(Duration::from_secs(100)), None);
        let mut service = age.wrap(ok);
        let r = service.call(request(Version::HTTP_11)).await.unwrap();
        assert!(r.headers().get(header::CONNECTION).is_none());
        tokio::time::advance(Duration::from_secs(89)).await;
        let r = service.call(request(Version::HTTP_11)).await.unwrap();
        assert!(r.headers().get(header::CONNECTION).is_none(), "jitter is at most 10%");
        tokio::time::advance(Duration::from_secs(22)).await;
        let r = service.call(request(Version::HTTP_11)).await.unwrap();
        assert_eq!(r.headers().get(header::CONNECTION).unwrap(), "close");
        // HTTP/2 never gets the (forbidden) header; it is ended with GOAWAY instead.
        let r = service.call(request(Version::HTTP_2)).await.unwrap();
        assert!(r.headers().get(header::CONNECTION).is_none());
        assert!(age.http2.load(Ordering::Relaxed));
    }

    #[test]
    fn without_a_maximum_a_connection_never_ages() {
        assert!(!ConnectionAge::new(None, None).reached());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_is_counted_from_the_last_request_and_not_while_one_is_in_flight() {
        let age = ConnectionAge::new(None, Some(Duration::from_secs(60)));
        let idle = age.idle.clone().unwrap();
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(idle.until().is_some());
        let request = InFlight::new(Some(Arc::clone(&idle)));
        tokio::time::advance(Duration::from_secs(120)).await;
        assert!(idle.until().is_some(), "a request in flight is not idle");
        drop(request);
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(idle.until().is_some());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(idle.until().is_none(), "60 s after the last answer");
    }
}
