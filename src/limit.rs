//! Memory limit: bytes of request data held anywhere in the bridge (being read, inflated, decoded, batched, in
//! retry), as a shared budget.
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

/// Most a request reserves before its body has sent a byte: one read buffer's worth. Reserving the whole declared
/// length up front let two idle connections declaring 10 MiB each shut every other client out (issue 9).
pub(crate) const UPFRONT_RESERVATION: usize = 64 * 1024;

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

    /// The reserve step: admits a request whose body declares `declared` bytes (0 when it declares none) if they
    /// fit in what is free now, reserving only up to [`UPFRONT_RESERVATION`] of them; the reservation then grows
    /// with the bytes that arrive. 503 (`Exhausted`) or 413 (`TooLarge`) otherwise, before a byte is read.
    pub fn admit(self: &Arc<Self>, declared: usize) -> Result<Reservation, MemoryError> {
        self.check(declared)?;
        self.reserve(declared.min(UPFRONT_RESERVATION))
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

    #[test]
    fn admission_refuses_what_does_not_fit_before_anything_is_reserved() {
        let budget = MemoryBudget::new(10);
        let _held = budget.reserve(8).unwrap();
        assert_eq!(budget.admit(2).unwrap().bytes(), 2);
        assert_eq!(budget.admit(3).unwrap_err(), MemoryError::Exhausted { held: 8, limit: 10 }, "8 + 3 > 10");
        assert_eq!(budget.held(), 8, "a refusal holds nothing");
        assert_eq!(budget.admit(0).unwrap().bytes(), 0, "no declared length: nothing up front");
    }

    #[test]
    fn a_large_declared_length_reserves_only_the_upfront_amount() {
        let budget = MemoryBudget::new(20 << 20);
        // Two idle requests declaring 10 MiB each no longer hold the whole 20 MiB budget.
        let a = budget.admit(10 << 20).unwrap();
        let b = budget.admit(10 << 20).unwrap();
        assert_eq!((a.bytes(), b.bytes()), (UPFRONT_RESERVATION, UPFRONT_RESERVATION));
        assert!(budget.admit(10 << 20).is_ok(), "a third still gets in");
        let too_big = budget.admit((20 << 20) + 1).unwrap_err();
        assert!(matches!(too_big, MemoryError::TooLarge { .. }), "more than the whole limit is refused at once");
    }
}
