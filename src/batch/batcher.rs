//! The batcher as a pure state machine: no I/O, no clock of its own, so every flush rule is tested directly.
//!
//! Rules. A batch is sealed when the next entry would push it past `max_items` or `max_bytes`, or when it is full.
//! An open batch is flushed
//! - when no export is in flight: nothing to wait for, so a lone client sees no added latency;
//! - when an export slot is free and the batch is older than the linger (or `timeout`, if shorter). The caller
//!   passes a linger of about half the backend's recent export latency: requests arriving while an export is in
//!   flight coalesce for a while, then a slow backend still gets concurrent exports instead of a convoy behind the
//!   one in flight, and no request waits much longer than the backend itself makes it wait.
//!
//! While every slot is busy, data accumulates: batches grow exactly when the backend is the bottleneck.

use std::time::Duration;

use tokio::time::Instant;

/// Something with a size in items and bytes.
pub(crate) trait Weighed {
    /// Items (spans, points, records).
    fn items(&self) -> u64;
    /// Bytes of protobuf.
    fn bytes(&self) -> usize;
}

/// Why a batch left the batcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlushReason {
    /// It reached `max_items` or `max_bytes`.
    Size,
    /// It reached `timeout` while exports were in flight.
    Timeout,
    /// It waited `linger` while other exports were in flight, and a slot was free.
    Linger,
    /// No export was in flight.
    Idle,
    /// The bridge is stopping.
    Shutdown,
}

impl FlushReason {
    /// Every reason, for metrics registered before the first flush.
    pub(crate) const ALL: [FlushReason; 5] =
        [FlushReason::Size, FlushReason::Timeout, FlushReason::Linger, FlushReason::Idle, FlushReason::Shutdown];

    /// The metric label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FlushReason::Size => "size",
            FlushReason::Timeout => "timeout",
            FlushReason::Linger => "linger",
            FlushReason::Idle => "idle",
            FlushReason::Shutdown => "shutdown",
        }
    }
}

/// Entries that leave together.
#[derive(Debug)]
pub(crate) struct Batch<T> {
    /// In arrival order.
    pub entries: Vec<T>,
    /// Sum of the entries' items.
    pub items: u64,
    /// Sum of the entries' bytes.
    pub bytes: usize,
    /// Why it left.
    pub reason: FlushReason,
    /// When its first entry came.
    pub opened: Instant,
}

/// Limits of a batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Items that fill a batch.
    pub max_items: u64,
    /// Bytes that fill a batch.
    pub max_bytes: usize,
    /// Longest a batch waits to fill while exports are in flight.
    pub timeout: Duration,
}

impl Limits {
    /// These limits for `kind`: a self-contained signal's entries (profiles, whose indices point into their own
    /// request's dictionary) each fill a batch alone, even an empty one, so no export merges two requests.
    pub(crate) fn for_signal(self, kind: crate::signal::SignalKind) -> Limits {
        if kind.self_contained() {
            Limits { max_items: 0, ..self }
        } else {
            self
        }
    }
}

/// The open batch; see the module docs.
#[derive(Debug)]
pub(crate) struct Batcher<T> {
    limits: Limits,
    open: Vec<T>,
    items: u64,
    bytes: usize,
    opened_at: Option<Instant>,
}

impl<T: Weighed> Batcher<T> {
    /// An empty batcher.
    pub(crate) fn new(limits: Limits) -> Batcher<T> {
        Batcher { limits, open: Vec::new(), items: 0, bytes: 0, opened_at: None }
    }

    /// Adds an entry; returns the batches this sealed (at most two: the one it did not fit in, and its own if it
    /// fills one alone).
    pub(crate) fn offer(&mut self, entry: T, now: Instant) -> Vec<Batch<T>> {
        let mut sealed = Vec::new();
        let fits =
            self.items + entry.items() <= self.limits.max_items && self.bytes + entry.bytes() <= self.limits.max_bytes;
        if !fits && !self.open.is_empty() {
            sealed.extend(self.take(FlushReason::Size));
        }
        if self.open.is_empty() {
            self.opened_at = Some(now);
        }
        self.items += entry.items();
        self.bytes += entry.bytes();
        self.open.push(entry);
        if self.items >= self.limits.max_items || self.bytes >= self.limits.max_bytes {
            sealed.extend(self.take(FlushReason::Size));
        }
        sealed
    }

    /// Whether the open batch should go now, given the exports in flight, the slots for them, and how long data
    /// may wait for more while other exports are in flight.
    pub(crate) fn due(
        &self,
        now: Instant,
        in_flight: usize,
        max_in_flight: usize,
        linger: Duration,
    ) -> Option<FlushReason> {
        let opened_at = self.opened_at?;
        let age = now.saturating_duration_since(opened_at);
        if in_flight == 0 {
            Some(FlushReason::Idle)
        } else if in_flight >= max_in_flight {
            None
        } else if age >= self.limits.timeout {
            Some(FlushReason::Timeout)
        } else if age >= linger {
            Some(FlushReason::Linger)
        } else {
            None
        }
    }

    /// When the open batch may go out on a free slot, if there is one.
    pub(crate) fn deadline(&self, linger: Duration) -> Option<Instant> {
        self.opened_at.map(|t| t + self.limits.timeout.min(linger))
    }

    /// Takes the open batch, if any.
    pub(crate) fn take(&mut self, reason: FlushReason) -> Option<Batch<T>> {
        let opened = self.opened_at.take()?;
        let batch =
            Batch { entries: std::mem::take(&mut self.open), items: self.items, bytes: self.bytes, reason, opened };
        self.items = 0;
        self.bytes = 0;
        Some(batch)
    }

    /// Items in the open batch.
    pub(crate) fn items(&self) -> u64 {
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct E(u64, usize);
    impl Weighed for E {
        fn items(&self) -> u64 {
            self.0
        }
        fn bytes(&self) -> usize {
            self.1
        }
    }

    const L: Duration = Duration::from_millis(2);

    fn limits() -> Limits {
        Limits { max_items: 10, max_bytes: 1000, timeout: Duration::from_millis(200) }
    }

    #[test]
    fn an_idle_exporter_takes_data_at_once() {
        let t0 = Instant::now();
        let mut b = Batcher::new(limits());
        assert!(b.offer(E(1, 10), t0).is_empty());
        assert_eq!(b.due(t0, 0, 4, L), Some(FlushReason::Idle));
        let batch = b.take(FlushReason::Idle).unwrap();
        assert_eq!((batch.items, batch.bytes, batch.entries.len()), (1, 10, 1));
        assert_eq!(b.due(t0, 0, 4, L), None, "nothing left to flush");
    }

    #[test]
    fn data_lingers_while_an_export_is_in_flight_then_takes_a_free_slot() {
        let t0 = Instant::now();
        let mut b = Batcher::new(limits());
        b.offer(E(1, 10), t0);
        b.offer(E(2, 10), t0 + Duration::from_millis(1));
        assert_eq!(b.due(t0 + Duration::from_millis(1), 1, 4, L), None, "lingers while an export is in flight");
        assert_eq!(b.deadline(L), Some(t0 + Duration::from_millis(2)), "the age counts from the first entry");
        assert_eq!(b.due(t0 + Duration::from_millis(2), 1, 4, L), Some(FlushReason::Linger));
        assert_eq!(b.due(t0 + Duration::from_millis(500), 4, 4, L), None, "no free slot: keep growing");
        assert_eq!(b.due(t0 + Duration::from_millis(500), 3, 4, L), Some(FlushReason::Timeout));
        assert_eq!(b.due(t0, 0, 4, L), Some(FlushReason::Idle));
    }

    #[test]
    fn a_timeout_shorter_than_the_linger_wins() {
        let t0 = Instant::now();
        let mut b = Batcher::new(Limits { timeout: Duration::ZERO, ..limits() });
        b.offer(E(1, 10), t0);
        assert_eq!(b.due(t0, 1, 4, L), Some(FlushReason::Timeout), "timeout 0: every free slot is used at once");
    }

    #[test]
    fn an_entry_that_does_not_fit_seals_the_open_batch() {
        let t0 = Instant::now();
        let mut b = Batcher::new(limits());
        b.offer(E(6, 10), t0);
        let sealed = b.offer(E(6, 10), t0);
        assert_eq!(sealed.len(), 1);
        assert_eq!(sealed[0].entries, vec![E(6, 10)]);
        assert_eq!(sealed[0].reason, FlushReason::Size);
        assert_eq!(b.items(), 6);
    }

    #[test]
    fn a_full_batch_is_sealed_by_items_or_bytes() {
        let t0 = Instant::now();
        let mut b = Batcher::new(limits());
        assert_eq!(b.offer(E(10, 1), t0).len(), 1, "10 items fill it");
        assert_eq!(b.offer(E(1, 1000), t0).len(), 1, "1000 bytes fill it");
        let sealed = b.offer(E(5, 10), t0);
        assert!(sealed.is_empty());
        let sealed = b.offer(E(20, 10), t0);
        assert_eq!(sealed.len(), 2, "the open batch, then the oversized entry alone");
        assert_eq!(sealed[1].entries, vec![E(20, 10)]);
        assert!(b.take(FlushReason::Shutdown).is_none());
    }

    #[test]
    fn batches_never_exceed_the_limits_unless_one_entry_does() {
        let t0 = Instant::now();
        let mut b = Batcher::new(limits());
        let mut all = Vec::new();
        for i in 0..500u64 {
            all.extend(b.offer(E(i % 7 + 1, (i as usize * 37) % 400 + 1), t0));
        }
        all.extend(b.take(FlushReason::Shutdown));
        let total: u64 = all.iter().map(|batch| batch.items).sum();
        assert_eq!(total, (0..500u64).map(|i| i % 7 + 1).sum::<u64>(), "every item leaves exactly once");
        for batch in &all {
            assert!(batch.items <= 10 && batch.bytes <= 1000, "{} items {} bytes", batch.items, batch.bytes);
            assert_eq!(batch.items, batch.entries.iter().map(|e| e.0).sum::<u64>());
        }
    }
}
