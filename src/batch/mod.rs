//! Batching with end-to-end acknowledgement: one worker task per signal owns a [`Batcher`], sends sealed batches
//! to the [`Exporter`] with bounded concurrency, and answers every request with the outcome of the batch(es) that
//! carried its data. Nothing is acknowledged before the backends have acknowledged it.

mod batcher;
mod partition;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

pub(crate) use batcher::{Batch, Batcher, FlushReason, Limits, Weighed};
pub(crate) use partition::{PartitionKey, Partitions};

use crate::export::{combine, Export, ExportError, Payload, Rejections};
use crate::limit::Reservation;
use crate::signal::{PartialSuccess, SignalKind};
use crate::telemetry::{BatchMetrics, Telemetry};

#[cfg(test)]
mod tests;

type Reply = oneshot::Sender<Result<PartialSuccess, ExportError>>;

/// One request's data (or one chunk of it) waiting to be exported.
pub(crate) struct Entry {
    payload: Bytes,
    items: u64,
    /// End of the retry budget, counted from the request's arrival.
    deadline: Option<Instant>,
    /// The forwarded header values; only entries of one partition share a batch.
    partition: PartitionKey,
    reply: Reply,
    /// Keeps the request's bytes counted against the memory limit until its export is over, even if the client
    /// has gone.
    _hold: Arc<Reservation>,
}

impl Weighed for Entry {
    fn items(&self) -> u64 {
        self.items
    }
    fn bytes(&self) -> usize {
        self.payload.len()
    }
}

/// The sending side of a signal's pipeline; cheap to clone. When every handle is dropped, the worker flushes what
/// it holds, waits for its exports and ends.
#[derive(Clone)]
pub(crate) struct Pipeline {
    tx: mpsc::Sender<Entry>,
    retry_budget: Option<Duration>,
}

impl Pipeline {
    /// Starts the worker of `kind`. Each request's data may spend `retry_budget` (from its arrival) queued and in
    /// retries before its client is answered; `None` means one attempt and no retries.
    pub(crate) fn start<E: Export>(
        kind: SignalKind,
        exporter: E,
        limits: Limits,
        max_in_flight: usize,
        max_partitions: usize,
        retry_budget: Option<Duration>,
        telemetry: Arc<Telemetry>,
    ) -> (Pipeline, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let metrics = Arc::new(BatchMetrics::new(&telemetry, kind, &FlushReason::ALL.map(FlushReason::as_str)));
        let worker = Worker { exporter: Arc::new(exporter), max_in_flight, max_partitions, metrics };
        let handle = tokio::spawn(worker.run(rx, Partitions::new(limits, max_partitions)));
        (Pipeline { tx, retry_budget }, handle)
    }

    /// Exports `chunks` (valid requests, split from one client request) with `headers` as gRPC metadata, and waits
    /// for their outcome: success only when every backend acknowledged every chunk.
    pub(crate) async fn submit(
        &self,
        chunks: Vec<(Bytes, u64)>,
        headers: Vec<(String, String)>,
        reservation: Reservation,
    ) -> Result<PartialSuccess, ExportError> {
        let partition: PartitionKey = Arc::new(headers);
        let hold = Arc::new(reservation);
        let deadline = self.retry_budget.map(|budget| Instant::now() + budget);
        let mut replies = Vec::with_capacity(chunks.len());
        for (payload, items) in chunks {
            let (reply, rx) = oneshot::channel();
            let entry =
                Entry { payload, items, deadline, partition: Arc::clone(&partition), reply, _hold: Arc::clone(&hold) };
            self.tx.send(entry).await.map_err(|_| ExportError::ShuttingDown)?;
            replies.push(rx);
        }
        drop(hold);
        let mut outcomes = Vec::with_capacity(replies.len());
        for rx in replies {
            outcomes.push(rx.await.unwrap_or(Err(ExportError::ShuttingDown)));
        }
        combine(outcomes, Rejections::Disjoint)
    }
}

/// Owns the batcher of one signal and sends its batches to `E`, at most `max_in_flight` at once.
struct Worker<E> {
    exporter: Arc<E>,
    max_in_flight: usize,
    /// Partitions with an open batch at most (see [`MAX_PARTITIONS`](crate::config::MAX_PARTITIONS)).
    max_partitions: usize,
    metrics: Arc<BatchMetrics>,
}

impl<E: Export> Worker<E> {
    async fn run(self, mut rx: mpsc::Receiver<Entry>, mut batcher: Partitions<Entry>) {
        let mut sealed: VecDeque<(PartitionKey, Batch<Entry>)> = VecDeque::new();
        let mut in_flight: JoinSet<Duration> = JoinSet::new();
        let mut receiving = true;
        let mut latency = ExportLatency::default();
        // What this worker last set the waiting-items gauge to.
        let mut waiting = 0;
        loop {
            let now = Instant::now();
            let linger = latency.linger();
            while in_flight.len() < self.max_in_flight {
                let batch = match sealed.pop_front() {
                    Some(batch) => batch,
                    None => match batcher.due(now, in_flight.len(), self.max_in_flight, linger) {
                        Some(batch) => batch,
                        None => break,
                    },
                };
                in_flight.spawn(self.export(batch));
            }
            let queued = batcher.items() + sealed.iter().map(|(_, b)| b.items).sum::<u64>();
            self.metrics.waiting(waiting, queued);
            waiting = queued;
            if !receiving && queued == 0 && in_flight.is_empty() {
                return;
            }
            let deadline = batcher.deadline(linger).filter(|_| in_flight.len() < self.max_in_flight);
            tokio::select! {
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    if let Ok(took) = done {
                        latency.observe(took);
                    }
                }
                received = rx.recv(), if receiving => match received {
                    Some(entry) => {
                        // Its arrival, not the loop's last wake-up (which may be long past while an export runs):
                        // linger counts from here.
                        let now = Instant::now();
                        self.offer(&mut batcher, &mut sealed, entry, now);
                        // Whatever else is already waiting joins the same batch before anything is sent.
                        while let Ok(entry) = rx.try_recv() {
                            self.offer(&mut batcher, &mut sealed, entry, now);
                        }
                    }
                    None => {
                        receiving = false;
                        sealed.extend(batcher.take_all(FlushReason::Shutdown));
                    }
                },
                () = sleep_until(deadline), if deadline.is_some() => {}
            }
        }
    }

    /// Adds `entry` to its partition's batch; past `max_partitions`, tells its client to retry.
    fn offer(
        &self,
        batcher: &mut Partitions<Entry>,
        sealed: &mut VecDeque<(PartitionKey, Batch<Entry>)>,
        entry: Entry,
        now: Instant,
    ) {
        let key = Arc::clone(&entry.partition);
        match batcher.offer(&key, entry, now) {
            Ok(batches) => sealed.extend(batches),
            Err(entry) => {
                self.metrics.partition_refused();
                let _ = entry.reply.send(Err(ExportError::TooManyPartitions { limit: self.max_partitions }));
            }
        }
    }

    fn export(
        &self,
        (partition, batch): (PartitionKey, Batch<Entry>),
    ) -> impl std::future::Future<Output = Duration> + Send + 'static {
        let exporter = Arc::clone(&self.exporter);
        let metrics = Arc::clone(&self.metrics);
        metrics.flushed(batch.reason.as_str(), batch.items, batch.bytes);
        async move {
            let started = Instant::now();
            let parts = batch.entries.iter().map(|e| e.payload.clone()).collect();
            let payload = Payload { parts, metadata: partition, arrived_ms: None };
            // The batch's budget ends with its oldest request's.
            let deadline = batch.entries.iter().filter_map(|e| e.deadline).min();
            let result = exporter.export(payload, batch.items, deadline).await;
            let took = started.elapsed();
            let single = batch.entries.len() == 1;
            for entry in batch.entries {
                let answer = match &result {
                    Ok(p) if !single && !p.is_empty() => Ok(attribute(p, entry.items, batch.items)),
                    other => other.clone(),
                };
                let failed = answer.is_err();
                if entry.reply.send(answer).is_err() && failed {
                    // The client went away before hearing of the failure: nobody else will know.
                    metrics.client_gone(entry.items);
                }
            }
            took
        }
    }
}

/// Entries a signal's worker may have waiting in its channel; a submit past this waits (holding the request's
/// memory reservation), so the channel never holds data the memory limit does not count.
const CHANNEL_CAPACITY: usize = 1024;
/// Longest export time the latency average takes in: a failed export's retries say nothing about the next one's.
const LATENCY_CAP: Duration = Duration::from_secs(1);
/// Weights of the average so far and of the newest export: about the last five exports count.
const LATENCY_KEEP: f64 = 0.8;
const LATENCY_WEIGHT: f64 = 0.2;
/// Shortest linger: data arriving together while an export is in flight still coalesces.
const MIN_LINGER: Duration = Duration::from_millis(1);

/// A moving average of how long exports take, which sets how long new data lingers for more while other exports
/// are in flight: half of it. Requests then coalesce behind a fast backend, and a slow backend (the reason data
/// queues at all) still gets concurrent exports, with no request waiting much longer than the backend itself makes
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

/// A batch's partial success, as seen by one request in it. The backend only says how many of the batch's items it
/// rejected, not which: each request hears that figure (capped at its own items) with an explanation.
fn attribute(p: &PartialSuccess, entry_items: u64, batch_items: u64) -> PartialSuccess {
    PartialSuccess {
        rejected: p.rejected.min(i64::try_from(entry_items).unwrap_or(i64::MAX)),
        message: format!(
            "{} (the backend rejected {} of the {} items in the batch that carried this request)",
            p.message, p.rejected, batch_items
        ),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
