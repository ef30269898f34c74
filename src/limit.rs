//! Memory limit: bytes of request data held anywhere in the bridge (being read, inflated, decoded, batched, in
//! retry), as a shared budget and a tower layer.
//!
//! Before a byte of the body is read, a request whose `Content-Length` does not fit in what is free is refused (503,
//! or 413 when it exceeds the whole limit), but it reserves only up to [`UPFRONT_RESERVATION`]: a client that
//! declares a large body and then sends nothing holds almost nothing. The reservation then grows with the buffer the
//! body actually fills as bytes arrive, grows as the body inflates and decodes, shrinks to the protobuf it forwards,
//! and is carried into the batch. The reservation is released
//! when the batch that holds the data has been answered by every backend (even if the client has gone), so the
//! figure counts what is really held.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};

/// Most a request reserves before its body has sent a byte: one read buffer's worth. Reserving the whole declared
/// length up front let two idle connections declaring 10 MiB each shut every other client out (issue 9).
pub const UPFRONT_RESERVATION: usize = 64 * 1024;

/// The shared budget.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    held: AtomicUsize,
}

/// Why a reservation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    /// The bridge holds too much data right now; retry later.
    #[error("the bridge is holding {held} of its {limit} bytes of request data; retry later")]
    Exhausted {
        /// Bytes held when the reservation failed.
        held: usize,
        /// The limit.
        limit: usize,
    },
    /// The request alone needs more than the whole budget: it can never be accepted.
    #[error("this request needs {needed} bytes in memory, more than the bridge's whole limit of {limit} bytes (--memory-limit-mib); send smaller requests")]
    TooLarge {
        /// Bytes the request needs.
        needed: usize,
        /// The limit.
        limit: usize,
    },
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget { limit, held: AtomicUsize::new(0) })
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    fn try_add(&self, bytes: usize) -> Result<(), MemoryError> {
        let limit = self.limit;
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|&total| total <= limit)
            })
            .map(|_| ())
            .map_err(|held| MemoryError::Exhausted { held, limit })
    }

    fn release(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Whether `bytes` more would fit now (nothing is reserved).
    pub fn check(&self, bytes: usize) -> Result<(), MemoryError> {
        if bytes > self.limit {
            return Err(MemoryError::TooLarge { needed: bytes, limit: self.limit });
        }
        let held = self.held();
        if held.saturating_add(bytes) > self.limit {
            return Err(MemoryError::Exhausted { held, limit: self.limit });
        }
        Ok(())
    }

    /// Reserves `bytes`, or fails without waiting.
    pub fn reserve(self: &Arc<Self>, bytes: usize) -> Result<Reservation, MemoryError> {
        let mut r = Reservation { budget: Arc::clone(self), bytes: 0 };
        r.resize(bytes)?;
        Ok(r)
    }
}

/// Bytes held on behalf of one request; released on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl Reservation {
    /// Bytes this reservation holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Grows or shrinks to `bytes`; growing fails (and keeps the old size) when the budget is short.
    pub fn resize(&mut self, bytes: usize) -> Result<(), MemoryError> {
        if bytes > self.budget.limit {
            return Err(MemoryError::TooLarge { needed: bytes, limit: self.budget.limit });
        }
        if bytes > self.bytes {
            self.budget.try_add(bytes - self.bytes)?;
        } else {
            self.budget.release(self.bytes - bytes);
        }
        self.bytes = bytes;
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// Checks a request's declared `Content-Length` against what is free before its body is read, reserves up to
/// [`UPFRONT_RESERVATION`] of it, and hands the [`Reservation`] to the inner service in the request's extensions; a request the budget cannot take is answered by `refuse` instead,
/// which gets the whole request (so it can discard the body a client is still sending before answering).
#[derive(Clone)]
pub struct MemoryLimitLayer<R> {
    budget: Arc<MemoryBudget>,
    refuse: R,
}

impl<R> MemoryLimitLayer<R> {
    /// `refuse` turns a refused request and its [`MemoryError`] into the response (the single error -> HTTP mapping
    /// lives elsewhere).
    pub fn new(budget: Arc<MemoryBudget>, refuse: R) -> Self {
        MemoryLimitLayer { budget, refuse }
    }
}

impl<S, R: Clone> Layer<S> for MemoryLimitLayer<R> {
    type Service = MemoryLimit<S, R>;
    fn layer(&self, inner: S) -> Self::Service {
        MemoryLimit { inner, budget: Arc::clone(&self.budget), refuse: self.refuse.clone() }
    }
}

/// See [`MemoryLimitLayer`].
#[derive(Clone)]
pub struct MemoryLimit<S, R> {
    inner: S,
    budget: Arc<MemoryBudget>,
    refuse: R,
}

impl<S, R, B, Resp, Refusal> Service<Request<B>> for MemoryLimit<S, R>
where
    S: Service<Request<B>, Response = Resp>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    Resp: Send + 'static,
    R: Fn(Request<B>, MemoryError) -> Refusal,
    Refusal: std::future::Future<Output = Resp> + Send + 'static,
{
    type Response = Resp;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Resp, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let declared = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let reserved =
            self.budget.check(declared).and_then(|()| self.budget.reserve(declared.min(UPFRONT_RESERVATION)));
        match reserved {
            Ok(reservation) => {
                req.extensions_mut().insert(SharedReservation::new(reservation));
                Box::pin(self.inner.call(req))
            }
            Err(e) => {
                let refusal = (self.refuse)(req, e);
                Box::pin(async move { Ok(refusal.await) })
            }
        }
    }
}

/// A [`Reservation`] in request extensions (which must be `Clone`); the handler takes it out once.
#[derive(Clone, Debug)]
pub struct SharedReservation(Arc<std::sync::Mutex<Option<Reservation>>>);

impl SharedReservation {
    fn new(r: Reservation) -> Self {
        SharedReservation(Arc::new(std::sync::Mutex::new(Some(r))))
    }

    /// Takes the reservation out (once).
    pub fn take(&self) -> Option<Reservation> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_released_on_drop_and_never_exceed_the_limit() {
        let budget = MemoryBudget::new(100);
        let a = budget.reserve(60).unwrap();
        assert_eq!(budget.reserve(41).unwrap_err(), MemoryError::Exhausted { held: 60, limit: 100 });
        let mut b = budget.reserve(40).unwrap();
        assert_eq!(budget.held(), 100);
        b.resize(10).unwrap();
        assert_eq!(budget.held(), 70);
        drop(a);
        assert_eq!(budget.held(), 10);
        b.resize(90).unwrap();
        let c = budget.reserve(10).unwrap();
        assert!(b.resize(91).is_err(), "growing past the limit fails");
        assert_eq!(b.bytes(), 90, "a failed grow keeps the old size");
        drop((b, c));
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn a_request_larger_than_the_whole_budget_is_too_large_not_exhausted() {
        let budget = MemoryBudget::new(100);
        assert_eq!(budget.reserve(101).unwrap_err(), MemoryError::TooLarge { needed: 101, limit: 100 });
    }

    #[tokio::test]
    async fn the_layer_refuses_before_the_inner_service_runs() {
        use tower::ServiceExt;
        let budget = MemoryBudget::new(10);
        let _held = budget.reserve(8).unwrap();
        let inner = tower::service_fn(|req: Request<()>| async move {
            Ok::<_, std::convert::Infallible>(
                req.extensions().get::<SharedReservation>().and_then(|r| r.take()).map(|r| r.bytes()),
            )
        });
        let svc = MemoryLimitLayer::new(Arc::clone(&budget), |_: Request<()>, _e| std::future::ready(Some(usize::MAX)))
            .layer(inner);
        let req = |len: &str| Request::builder().header("content-length", len).body(()).unwrap();
        assert_eq!(svc.clone().oneshot(req("2")).await.unwrap(), Some(2));
        assert_eq!(svc.oneshot(req("3")).await.unwrap(), Some(usize::MAX), "refused: 8 + 3 > 10");
    }

    #[tokio::test]
    async fn a_large_declared_length_reserves_only_the_upfront_amount() {
        use tower::ServiceExt;
        let budget = MemoryBudget::new(20 << 20);
        let inner = tower::service_fn(|req: Request<()>| async move {
            Ok::<_, std::convert::Infallible>(req.extensions().get::<SharedReservation>().and_then(|r| r.take()))
        });
        let svc =
            MemoryLimitLayer::new(Arc::clone(&budget), |_: Request<()>, _e| std::future::ready(None)).layer(inner);
        let req = || Request::builder().header("content-length", "10485760").body(()).unwrap();
        // Two idle requests declaring 10 MiB each no longer hold the whole 20 MiB budget.
        let a = svc.clone().oneshot(req()).await.unwrap().unwrap();
        let b = svc.clone().oneshot(req()).await.unwrap().unwrap();
        assert_eq!((a.bytes(), b.bytes()), (UPFRONT_RESERVATION, UPFRONT_RESERVATION));
        assert!(svc.clone().oneshot(req()).await.unwrap().is_some(), "a third still gets in");
        let too_big = Request::builder().header("content-length", "20971521").body(()).unwrap();
        assert!(svc.oneshot(too_big).await.unwrap().is_none(), "more than the whole limit is refused at once");
    }
}
