//! The one dispatch loop: partitions of open batches ([`Partitions`] of [`Batcher`](super::batcher::Batcher)s),
//! the sealed batches waiting for a slot, the exports in flight and when to flush. Direct mode's lanes (one per
//! signal and output) and the queue's readers (one per output) are each a [`Feed`] driven by [`run`]; they differ
//! only in where entries come from, how a batch is exported and what its outcome settles.
//!
//! The loop, once per wake-up: the feed takes in what is ready without waiting (a channel's queued requests, a
//! chunk read from the queue), sealed and due batches take the free export slots, the feed does its bookkeeping;
//! then it waits for an export to end, for the feed (new data, a stop, a timer of its own) or for the earliest
//! open batch's flush time.

use std::collections::VecDeque;
use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::batcher::{Batch, FlushReason, Limits, Weighed};
use super::partition::Partitions;

/// When an open batch leaves without being full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    /// At once when no export is in flight; otherwise once it has waited about half the recent export latency (or
    /// the limits' timeout) and a slot is free. Direct mode: a lone client sees no added latency, and data queues
    /// only when the output is the bottleneck.
    Adaptive,
    /// Once it has waited this long, whatever is in flight: an output with its own batching (an archive object).
    Fixed(Duration),
    /// Only when the feed seals it ([`Dispatch::seal_all`]): the queue's readers, which know when they caught up.
    ByFeed,
}

/// Where a dispatch loop's entries come from and where its batches go. Every method but [`Feed::wait`] runs
/// between two waits, so it may change the [`Dispatch`] freely.
pub(crate) trait Feed: Send {
    /// What entries are batched by: entries of two keys never share a batch.
    type Key: Hash + Eq + Clone + Send + Sync + 'static;
    /// One request's (or record's) data.
    type Entry: Weighed + Send + 'static;
    /// What an export returns to [`Feed::settle`].
    type Done: Send + 'static;

    /// Offers what is ready now to `lanes`, without waiting for new data to arrive.
    fn take(&mut self, lanes: &mut Dispatch<Self::Key, Self::Entry, Self::Done>) -> impl Future<Output = ()> + Send;

    /// The export of one batch, run on its own task (called as batches take their slots, in the order they were
    /// sealed).
    fn export(
        &mut self,
        key: Self::Key,
        batch: Batch<Self::Entry>,
    ) -> impl Future<Output = Self::Done> + Send + 'static + use<Self>;

    /// An export ended.
    fn settle(&mut self, done: Self::Done);

    /// Bookkeeping after the slots were filled (gauges, the queue's cursor).
    fn after_launch(&mut self, lanes: &Dispatch<Self::Key, Self::Entry, Self::Done>)
        -> impl Future<Output = ()> + Send;

    /// Whether the loop is over.
    fn done(&self, lanes: &Dispatch<Self::Key, Self::Entry, Self::Done>) -> bool;

    /// Waits until [`Feed::take`] may find something (or the feed has another reason to look again). Cancel safe:
    /// the loop drops it when an export ends first.
    fn wait(&mut self) -> impl Future<Output = ()> + Send;

    /// After the loop: what is still in flight or open, and any state to keep.
    fn finish(self, lanes: Dispatch<Self::Key, Self::Entry, Self::Done>) -> impl Future<Output = ()> + Send;
}

/// Drives `feed` over `lanes` until the feed says it is done.
pub(crate) async fn run<F: Feed>(mut feed: F, mut lanes: Dispatch<F::Key, F::Entry, F::Done>) {
    loop {
        if feed.done(&lanes) {
            break;
        }
        feed.take(&mut lanes).await;
        lanes.launch(Instant::now(), |key, batch| feed.export(key, batch));
        feed.after_launch(&lanes).await;
        if feed.done(&lanes) {
            break;
        }
        let deadline = lanes.deadline();
        tokio::select! {
            Some(done) = lanes.in_flight.join_next(), if !lanes.in_flight.is_empty() => {
                if let Ok((took, done)) = done {
                    lanes.latency.observe(took);
                    feed.settle(done);
                }
            }
            () = feed.wait() => {}
            () = sleep_until(deadline), if deadline.is_some() => {}
        }
    }
    feed.finish(lanes).await;
}

/// A dispatch loop's state: open batches by key, sealed batches waiting for a slot, exports in flight.
pub(crate) struct Dispatch<K, T, R> {
    open: Partitions<K, T>,
    sealed: VecDeque<(K, Batch<T>)>,
    in_flight: JoinSet<(Duration, R)>,
    slots: usize,
    flush: Flush,
    latency: ExportLatency,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static, T: Weighed + Send + 'static, R: Send + 'static> Dispatch<K, T, R> {
    /// Batches of at most `limits` (`limits_of` adapts them to a key), at most `max_partitions` keys open, at most
    /// `slots` exports at once, flushed by `flush`.
    pub(crate) fn new(
        limits: Limits,
        limits_of: fn(&K, Limits) -> Limits,
        max_partitions: usize,
        slots: usize,
        flush: Flush,
    ) -> Self {
        Dispatch {
            open: Partitions::new(limits, limits_of, max_partitions),
            sealed: VecDeque::new(),
            in_flight: JoinSet::new(),
            slots: slots.max(1),
            flush,
            latency: ExportLatency::default(),
        }
    }

    /// Adds `entry` to `key`'s open batch; gives it back when `key` is new and the open keys are at their bound.
    pub(crate) fn offer(&mut self, key: &K, entry: T, now: Instant) -> Result<(), T> {
        let sealed = self.open.offer(key, entry, now)?;
        self.sealed.extend(sealed);
        Ok(())
    }

    /// Seals every open batch for `reason`; the keys are forgotten, so quiet ones do not accumulate.
    pub(crate) fn seal_all(&mut self, reason: FlushReason) {
        self.sealed.extend(self.open.take_all(reason));
    }

    /// Starts exports on the free slots: sealed batches first, then the open ones that are due.
    fn launch<Fut>(&mut self, now: Instant, mut export: impl FnMut(K, Batch<T>) -> Fut)
    where
        Fut: Future<Output = R> + Send + 'static,
    {
        if let Flush::Fixed(linger) = self.flush {
            self.sealed.extend(self.open.take_aged(now, linger));
        }
        let linger = self.latency.linger();
        while self.in_flight.len() < self.slots {
            let next = match self.sealed.pop_front() {
                Some(batch) => batch,
                None if self.flush == Flush::Adaptive => {
                    match self.open.due(now, self.in_flight.len(), self.slots, linger) {
                        Some(batch) => batch,
                        None => break,
                    }
                }
                None => break,
            };
            let (key, batch) = next;
            let export = export(key, batch);
            self.in_flight.spawn(async move {
                let started = Instant::now();
                let done = export.await;
                (started.elapsed(), done)
            });
        }
    }

    /// When the loop must look again for an open batch to flush, if ever.
    fn deadline(&self) -> Option<Instant> {
        match self.flush {
            Flush::Adaptive => self.open.deadline(self.latency.linger()).filter(|_| self.in_flight.len() < self.slots),
            Flush::Fixed(linger) => self.open.deadline(linger),
            Flush::ByFeed => None,
        }
    }

    /// Items in open and sealed batches (not those in flight).
    pub(crate) fn waiting_items(&self) -> u64 {
        self.open.items() + self.sealed.iter().map(|(_, b)| b.items).sum::<u64>()
    }

    /// Sealed batches waiting for a slot.
    pub(crate) fn sealed_len(&self) -> usize {
        self.sealed.len()
    }

    /// Seals `key`'s open batch, or an empty one for `key` when nothing is open: a feed whose own unit spans
    /// several batches ends it on its own time.
    pub(crate) fn seal_key(&mut self, key: &K, reason: FlushReason, now: Instant) {
        let batch = self.open.take(key, reason).unwrap_or(Batch {
            entries: Vec::new(),
            items: 0,
            bytes: 0,
            reason,
            opened: now,
        });
        self.sealed.push_back((key.clone(), batch));
    }

    /// Takes every open and sealed batch (not those in flight), to be read again.
    pub(crate) fn discard_waiting(&mut self) -> Vec<(K, Batch<T>)> {
        let mut all: Vec<_> = self.sealed.drain(..).collect();
        all.extend(self.open.take_all(FlushReason::Shutdown));
        all
    }

    /// Whether a batch is sealed or in flight: its export will settle and free what it holds, without the open
    /// batches having to go.
    pub(crate) fn frees_memory(&self) -> bool {
        !self.sealed.is_empty() || !self.in_flight.is_empty()
    }

    /// Nothing open, sealed or in flight.
    pub(crate) fn is_empty(&self) -> bool {
        self.in_flight.is_empty() && self.sealed.is_empty() && self.open.items() == 0 && self.open.is_empty()
    }

    /// Cancels the exports in flight and waits for their tasks to end.
    pub(crate) async fn abort(&mut self) {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
    }
}

/// Longest export time the latency average takes in: a failed export's retries say nothing about the next one's.
const LATENCY_CAP: Duration = Duration::from_secs(1);
/// Weights of the average so far and of the newest export: about the last five exports count.
const LATENCY_KEEP: f64 = 0.8;
const LATENCY_WEIGHT: f64 = 0.2;
/// Shortest linger: data arriving together while an export is in flight still coalesces.
const MIN_LINGER: Duration = Duration::from_millis(1);

/// A moving average of how long exports take, which sets how long new data lingers for more while other exports
/// are in flight: half of it. Requests then coalesce behind a fast output, and a slow output (the reason data
/// queues at all) still gets concurrent exports, with no request waiting much longer than the output itself makes
/// it wait.
#[derive(Debug, Default)]
struct ExportLatency {
    average: Option<Duration>,
}

impl ExportLatency {
    fn observe(&mut self, took: Duration) {
        let took = took.min(LATENCY_CAP);
        self.average = Some(match self.average {
            None => took,
            Some(avg) => avg.mul_f64(LATENCY_KEEP) + took.mul_f64(LATENCY_WEIGHT),
        });
    }

    fn linger(&self) -> Duration {
        self.average.map_or(MIN_LINGER, |avg| (avg / 2).max(MIN_LINGER))
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
