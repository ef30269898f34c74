//! One open batch per partition: the values of the `--forward-header` headers a request carried.
//!
//! A batch is exported with its partition's values as gRPC metadata, so two tenants' data can never share an
//! export (the Collector's batch processor merged them once and lost the headers, opentelemetry-collector#14795).
//! Requests without any of the headers form their own partition (the empty key). Without `--forward-header` every
//! request has the empty key and this is exactly one [`Batcher`].
//!
//! Live partitions (those with an open batch) are bounded by [`MAX_PARTITIONS`](crate::config::MAX_PARTITIONS): data of a new partition past the
//! bound is refused, never merged into another one; the receiver answers 503 with `Retry-After`, and the client's
//! retry gets in as soon as some partition's batch has gone out (which takes at most the batch timeout).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::batcher::{Batch, Batcher, FlushReason, Limits, Weighed};

/// Forwarded header values: (lowercase name, value) in `--forward-header` order, absent headers left out.
pub(crate) type PartitionKey = Arc<Vec<(String, String)>>;

/// The open batches, by partition (`K`: the forwarded headers, and in the queue's readers the signal too).
#[derive(Debug)]
pub(crate) struct Partitions<K, T> {
    limits: Limits,
    /// The limits of one key's batches (a self-contained signal's entries each fill one).
    limits_of: fn(&K, Limits) -> Limits,
    open: HashMap<K, Batcher<T>>,
    max: usize,
}

impl<K: Hash + Eq + Clone, T: Weighed> Partitions<K, T> {
    /// No open batch yet; at most `max` partitions at once, each batching by `limits_of(key, limits)`.
    pub(crate) fn new(limits: Limits, limits_of: fn(&K, Limits) -> Limits, max: usize) -> Partitions<K, T> {
        Partitions { limits, limits_of, open: HashMap::new(), max }
    }

    /// Adds `entry` to its partition's batch and returns the batches this sealed, each with its key; gives the
    /// entry back if its partition is new and [`MAX_PARTITIONS`](crate::config::MAX_PARTITIONS) are already open.
    pub(crate) fn offer(&mut self, key: &K, entry: T, now: Instant) -> Result<Vec<(K, Batch<T>)>, T> {
        if !self.open.contains_key(key) && self.open.len() >= self.max {
            return Err(entry);
        }
        let limits = (self.limits_of)(key, self.limits);
        let batcher = self.open.entry(key.clone()).or_insert_with(|| Batcher::new(limits));
        let sealed = batcher.offer(entry, now);
        if batcher.deadline(Duration::ZERO).is_none() {
            // The entry filled a batch on its own: nothing of this partition stays open.
            self.open.remove(key);
        }
        Ok(sealed.into_iter().map(|b| (key.clone(), b)).collect())
    }

    /// The batch that should go now, if any: of the due ones, the one opened first.
    pub(crate) fn due(
        &mut self,
        now: Instant,
        in_flight: usize,
        max_in_flight: usize,
        linger: Duration,
    ) -> Option<(K, Batch<T>)> {
        let (key, reason) = self
            .open
            .iter()
            .filter_map(|(key, b)| Some((key, b.due(now, in_flight, max_in_flight, linger)?, b.deadline(linger)?)))
            .min_by_key(|(_, _, at)| *at)
            .map(|(key, reason, _)| (key.clone(), reason))?;
        let batch = self.open.remove(&key)?.take(reason)?;
        Some((key, batch))
    }

    /// Takes `key`'s open batch, if any.
    pub(crate) fn take(&mut self, key: &K, reason: FlushReason) -> Option<Batch<T>> {
        self.open.remove(key)?.take(reason)
    }

    /// Takes every open batch (shutdown).
    pub(crate) fn take_all(&mut self, reason: FlushReason) -> Vec<(K, Batch<T>)> {
        self.open.drain().filter_map(|(key, mut b)| Some((key, b.take(reason)?))).collect()
    }

    /// Takes the open batches that have waited `linger` by `now` (reason: timeout).
    pub(crate) fn take_aged(&mut self, now: Instant, linger: Duration) -> Vec<(K, Batch<T>)> {
        let mut aged = Vec::new();
        self.open.retain(|key, batcher| match batcher.deadline(linger) {
            Some(at) if at <= now => {
                aged.extend(batcher.take(FlushReason::Timeout).map(|batch| (key.clone(), batch)));
                false
            }
            _ => true,
        });
        aged
    }

    /// No partition open.
    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// When the earliest open batch may go out on a free slot.
    pub(crate) fn deadline(&self, linger: Duration) -> Option<Instant> {
        self.open.values().filter_map(|b| b.deadline(linger)).min()
    }

    /// Items in open batches.
    pub(crate) fn items(&self) -> u64 {
        self.open.values().map(Batcher::items).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MAX_PARTITIONS;

    #[derive(Debug)]
    struct E(u64);
    impl Weighed for E {
        fn items(&self) -> u64 {
            self.0
        }
        fn bytes(&self) -> usize {
            10
        }
    }

    fn key(values: &[(&str, &str)]) -> PartitionKey {
        Arc::new(values.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    fn same(_: &PartitionKey, limits: Limits) -> Limits {
        limits
    }

    fn limits() -> Limits {
        Limits { max_items: 10, max_bytes: 1000, timeout: Duration::from_millis(200) }
    }

    #[tokio::test(start_paused = true)]
    async fn each_partition_batches_on_its_own_and_none_mixes() {
        let (a, b, none) = (key(&[("x-scope-orgid", "a")]), key(&[("x-scope-orgid", "b")]), key(&[]));
        let mut p = Partitions::new(limits(), same, MAX_PARTITIONS);
        let t0 = Instant::now();
        for (i, k) in [&a, &b, &none, &a, &b, &none].into_iter().enumerate() {
            assert!(p.offer(k, E(i as u64 + 1), t0).unwrap().is_empty());
        }
        assert_eq!(p.items(), 21);
        let mut seen = Vec::new();
        while let Some((k, batch)) = p.due(t0, 0, 4, Duration::from_millis(1)) {
            assert_eq!(batch.entries.len(), 2, "two entries per partition");
            seen.push((k, batch.entries.iter().map(|e| e.0).collect::<Vec<_>>()));
        }
        seen.sort();
        assert_eq!(seen, vec![(none, vec![3, 6]), (a, vec![1, 4]), (b, vec![2, 5])]);
        assert_eq!(p.items(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_partition_past_the_bound_is_refused_not_merged() {
        let mut p = Partitions::new(limits(), same, 2);
        let t0 = Instant::now();
        p.offer(&key(&[("t", "1")]), E(1), t0).unwrap();
        p.offer(&key(&[("t", "2")]), E(1), t0).unwrap();
        assert!(p.offer(&key(&[("t", "3")]), E(1), t0).is_err());
        // Open partitions still take data; once one has gone out, the new one gets in.
        p.offer(&key(&[("t", "1")]), E(1), t0).unwrap();
        assert!(p.due(t0, 0, 4, Duration::from_millis(1)).is_some());
        assert!(p.offer(&key(&[("t", "3")]), E(1), t0).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_seals_with_its_key_and_closes_the_partition() {
        let mut p = Partitions::new(limits(), same, MAX_PARTITIONS);
        let a = key(&[("t", "a")]);
        let sealed = p.offer(&a, E(10), Instant::now()).unwrap();
        assert_eq!(sealed.len(), 1);
        assert_eq!(sealed[0].0, a);
        assert!(p.deadline(Duration::from_millis(1)).is_none(), "nothing left open");
    }
}
