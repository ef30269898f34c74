//! The batcher as a pure state machine: no I/O, no clock of its own, so every flush rule is tested directly.
//!
//! Rules. A batch is sealed when the next entry would push it past `max_items` or `max_bytes`, or when it is full.
//! An open batch is flushed when no export is in flight (nothing to wait for: the data goes out at once, so a lone
//! client sees no added latency), or when it is older than `timeout` and an export slot is free. While exports are
//! in flight, data accumulates: batches grow exactly when the backend is the bottleneck.

use std::time::Duration;

use tokio::time::Instant;

/// Something with a size in items and bytes.
pub trait Weighed {
    /// Items (spans, points, records).
    fn items(&self) -> u64;
    /// Bytes of protobuf.
    fn bytes(&self) -> usize;
}

/// Why a batch left the batcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushReason {
    /// It reached `max_items` or `max_bytes`.
    Size,
    /// It waited `timeout` while exports were in flight.
    Timeout,
    /// No export was in flight.
    Idle,
    /// The bridge is stopping.
    Shutdown,
}

impl FlushReason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            FlushReason::Size => "size",
            FlushReason::Timeout => "timeout",
            FlushReason::Idle => "idle",
            FlushReason::Shutdown => "shutdown",
        }
    }
}

/// Entries that leave together.
#[derive(Debug)]
pub struct Batch<T> {
    /// In arrival order.
    pub entries: Vec<T>,
    /// Sum of the entries' items.
    pub items: u64,
    /// Sum of the entries' bytes.
    pub bytes: usize,
    /// Why it left.
    pub reason: FlushReason,
}

/// Limits of a batch.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Items that fill a batch.
    pub max_items: u64,
    /// Bytes that fill a batch.
    pub max_bytes: usize,
    /// Longest wait while exports are in flight.
    pub timeout: Duration,
}

/// The open batch; see the module docs.
#[derive(Debug)]
pub struct Batcher<T> {
    limits: Limits,
    open: Vec<T>,
    items: u64,
    bytes: usize,
    opened_at: Option<Instant>,
}

impl<T: Weighed> Batcher<T> {
    /// An empty batcher.
    pub fn new(limits: Limits) -> Batcher<T> {
        Batcher { limits, open: Vec::new(), items: 0, bytes: 0, opened_at: None }
    }

    /// Adds an entry; returns the batches this sealed (at most two: the one it did not fit in, and its own if it
    /// fills one alone).
    pub fn offer(&mut self, entry: T, now: Instant) -> Vec<Batch<T>> {
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

    /// Whether the open batch should go now, given the exports in flight and the slots for them.
    pub fn due(&self, now: Instant, in_flight: usize, max_in_flight: usize) -> Option<FlushReason> {
        let opened_at = self.opened_at?;
        if in_flight == 0 {
            Some(FlushReason::Idle)
        } else if in_flight < max_in_flight && now >= opened_at + self.limits.timeout {
            Some(FlushReason::Timeout)
        } else {
            None
        }
    }

    /// When the open batch times out, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        self.opened_at.map(|t| t + self.limits.timeout)
    }

    /// Takes the open batch, if any.
    pub fn take(&mut self, reason: FlushReason) -> Option<Batch<T>> {
        self.opened_at.take()?;
        let batch = Batch { entries: std::mem::take(&mut self.open), items: self.items, bytes: self.bytes, reason };
        self.items = 0;
        self.bytes = 0;
        Some(batch)
    }

    /// Items in the open batch.
    pub fn items(&self) -> u64 {
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

    fn limits() -> Limits {
        Limits { max_items: 10, max_bytes: 1000, timeout: Duration::from_millis(200) }
    }

    #[test]
    fn an_idle_exporter_takes_data_at_once() {
        let t0 = Instant::now();
        let mut b = Batcher::new(limits());
        assert!(b.offer(E(1, 10), t0).is_empty());
        assert_eq!(b.due(t0, 0, 4), Some(FlushReason::Idle));
        let batch = b.take(FlushReason::Idle).unwrap();
        assert_eq!((batch.items, batch.bytes, batch.entries.len()), (1, 10, 1));
        assert_eq!(b.due(t0, 0, 4), None, "nothing left to flush");
    }

    #[test]
    fn data_accumulates_while_an_export_is_in_flight_until_the_timeout() {
        let t0 = Instant::now();
        let mut b = Batcher::new(limits());
        b.offer(E(1, 10), t0);
        b.offer(E(2, 10), t0 + Duration::from_millis(50));
        assert_eq!(b.due(t0 + Duration::from_millis(199), 1, 4), None);
        assert_eq!(b.deadline(), Some(t0 + Duration::from_millis(200)), "the age counts from the first entry");
        assert_eq!(b.due(t0 + Duration::from_millis(200), 1, 4), Some(FlushReason::Timeout));
        assert_eq!(b.due(t0 + Duration::from_millis(200), 4, 4), None, "no free slot: keep growing");
        assert_eq!(b.due(t0 + Duration::from_millis(200), 0, 4), Some(FlushReason::Idle));
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
