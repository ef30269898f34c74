//! Batching with end-to-end acknowledgement in direct mode: one lane per signal and output, each a [`dispatch`]
//! loop that owns its partitions' [`Batcher`](batcher::Batcher)s and sends sealed batches to its output with
//! bounded concurrency. A request's chunks go to every lane of their signal, and the request is answered with the
//! combined outcome: nothing is acknowledged before every output has acknowledged it, but a slow output holds only
//! its own lane (its slots and its batches), never another output's.

mod batcher;
pub(crate) mod dispatch;
mod partition;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

pub(crate) use batcher::{Batch, FlushReason, Limits, Weighed};
use dispatch::{Dispatch, Feed, Flush};
pub(crate) use partition::PartitionKey;

use crate::export::{combine, Export, ExportError, Payload, Rejections};
use crate::limit::Reservation;
use crate::signal::{PartialSuccess, SignalKind};
use crate::telemetry::{BatchMetrics, Telemetry};

#[cfg(test)]
mod tests;

type Reply = oneshot::Sender<Result<PartialSuccess, ExportError>>;

/// One request's data (or one chunk of it) waiting to be exported by one output's lane.
pub(crate) struct Entry {
    payload: Bytes,
    items: u64,
    /// End of the retry budget, counted from the request's arrival.
    deadline: Option<Instant>,
    /// The forwarded header values; only entries of one partition share a batch.
    partition: PartitionKey,
    reply: Reply,
    /// Shared by the chunk's copies in every lane: its loss to a gone client is counted once, not per output.
    gone: Arc<AtomicBool>,
    /// Keeps the request's bytes counted against the memory limit until every output's export of it is over,
    /// even if the client has gone.
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

/// The sending side of a signal's lanes; cheap to clone. When every handle is dropped, each lane flushes what it
/// holds, waits for its exports and ends.
#[derive(Clone)]
pub(crate) struct Pipeline {
    lanes: Vec<mpsc::Sender<Entry>>,
    retry_budget: Option<Duration>,
}

impl Pipeline {
    /// Starts one lane of `kind` per exporter (one per output). Each request's data may spend `retry_budget` (from
    /// its arrival) queued and in retries before its client is answered; `None` means one attempt and no retries.
    pub(crate) fn start<E: Export>(
        kind: SignalKind,
        exporters: Vec<E>,
        limits: Limits,
        max_in_flight: usize,
        max_partitions: usize,
        retry_budget: Option<Duration>,
        telemetry: Arc<Telemetry>,
    ) -> (Pipeline, Vec<tokio::task::JoinHandle<()>>) {
        let metrics = Arc::new(BatchMetrics::new(&telemetry, kind, &FlushReason::ALL.map(FlushReason::as_str)));
        let mut lanes = Vec::with_capacity(exporters.len());
        let mut workers = Vec::with_capacity(exporters.len());
        for exporter in exporters {
            let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
            let lane = Lane {
                rx,
                arrived: Vec::new(),
                receiving: true,
                exporter: Arc::new(exporter),
                max_partitions,
                metrics: Arc::clone(&metrics),
                waiting: 0,
            };
            let state = Dispatch::new(limits, |_, limits| limits, max_partitions, max_in_flight, Flush::Adaptive);
            workers.push(tokio::spawn(dispatch::run(lane, state)));
            lanes.push(tx);
        }
        (Pipeline { lanes, retry_budget }, workers)
    }

    /// Exports `chunks` (valid requests, split from one client request) with `headers` as gRPC metadata through
    /// every lane, and waits for their outcome: success only when every output acknowledged every chunk.
    pub(crate) async fn submit(
        &self,
        chunks: Vec<(Bytes, u64)>,
        headers: Vec<(String, String)>,
        reservation: Reservation,
    ) -> Result<PartialSuccess, ExportError> {
        let partition: PartitionKey = Arc::new(headers);
        let hold = Arc::new(reservation);
        let deadline = self.retry_budget.map(|budget| Instant::now() + budget);
        let mut replies = Vec::with_capacity(chunks.len() * self.lanes.len());
        for (payload, items) in chunks {
            let gone = Arc::new(AtomicBool::new(false));
            for (i, lane) in self.lanes.iter().enumerate() {
                let (reply, rx) = oneshot::channel();
                let entry = Entry {
                    payload: payload.clone(),
                    items,
                    deadline,
                    partition: Arc::clone(&partition),
                    reply,
                    gone: Arc::clone(&gone),
                    _hold: Arc::clone(&hold),
                };
                lane.send(entry).await.map_err(|_| ExportError::ShuttingDown)?;
                replies.push((i == 0, rx));
            }
        }
        drop(hold);
        // Per chunk, the outputs' answers overlap (each saw every item); the chunks' answers add up.
        let mut outcomes = Vec::with_capacity(replies.len() / self.lanes.len().max(1));
        let mut chunk = Vec::with_capacity(self.lanes.len());
        for (first, rx) in replies {
            if first && !chunk.is_empty() {
                outcomes.push(combine(chunk.drain(..), Rejections::Overlap));
            }
            chunk.push(rx.await.unwrap_or(Err(ExportError::ShuttingDown)));
        }
        if !chunk.is_empty() {
            outcomes.push(combine(chunk, Rejections::Overlap));
        }
        combine(outcomes, Rejections::Disjoint)
    }
}

/// One output's lane of a signal: takes entries from its channel and exports their batches to `E`.
struct Lane<E> {
    rx: mpsc::Receiver<Entry>,
    /// Entries received while waiting, offered by the next [`Feed::take`].
    arrived: Vec<Entry>,
    receiving: bool,
    exporter: Arc<E>,
    /// Partitions with an open batch at most (see [`MAX_PARTITIONS`](crate::config::MAX_PARTITIONS)).
    max_partitions: usize,
    metrics: Arc<BatchMetrics>,
    /// What this lane last added to the signal's waiting-items gauge.
    waiting: u64,
}

type LaneState = Dispatch<PartitionKey, Entry, ()>;

impl<E: Export> Lane<E> {
    /// Adds `entry` to its partition's batch; past `max_partitions`, tells its client to retry.
    fn offer(&self, lanes: &mut LaneState, entry: Entry, now: Instant) {
        let key = Arc::clone(&entry.partition);
        if let Err(entry) = lanes.offer(&key, entry, now) {
            self.metrics.partition_refused();
            let _ = entry.reply.send(Err(ExportError::TooManyPartitions { limit: self.max_partitions }));
        }
    }
}

impl<E: Export> Feed for Lane<E> {
    type Key = PartitionKey;
    type Entry = Entry;
    type Done = ();

    async fn take(&mut self, lanes: &mut LaneState) {
        // Their arrival, not the loop's last wake-up (which may be long past while an export runs): linger counts
        // from here. Whatever else is already waiting joins the same batch before anything is sent.
        let now = Instant::now();
        for entry in std::mem::take(&mut self.arrived) {
            self.offer(lanes, entry, now);
        }
        while let Ok(entry) = self.rx.try_recv() {
            self.offer(lanes, entry, now);
        }
        if !self.receiving {
            lanes.seal_all(FlushReason::Shutdown);
        }
    }

    fn export(
        &mut self,
        partition: PartitionKey,
        batch: Batch<Entry>,
    ) -> impl std::future::Future<Output = ()> + 'static + use<E> {
        let exporter = Arc::clone(&self.exporter);
        let metrics = Arc::clone(&self.metrics);
        metrics.flushed(batch.reason.as_str(), batch.items, batch.bytes);
        async move {
            let parts = batch.entries.iter().map(|e| e.payload.clone()).collect();
            let payload = Payload { parts, metadata: partition, arrived_ms: None };
            // The batch's budget ends with its oldest request's.
            let deadline = batch.entries.iter().filter_map(|e| e.deadline).min();
            let result = exporter.export(payload, batch.items, deadline).await;
            let single = batch.entries.len() == 1;
            for entry in batch.entries {
                let answer = match &result {
                    Ok(p) if !single && !p.is_empty() => Ok(attribute(p, entry.items, batch.items)),
                    other => other.clone(),
                };
                let failed = answer.is_err();
                if entry.reply.send(answer).is_err() && failed && !entry.gone.swap(true, Ordering::Relaxed) {
                    // The client went away before hearing of the failure: nobody else will know.
                    metrics.client_gone(entry.items);
                }
            }
        }
    }

    fn settle(&mut self, (): ()) {}

    async fn after_launch(&mut self, lanes: &LaneState) {
        let waiting = lanes.waiting_items();
        self.metrics.waiting(self.waiting, waiting);
        self.waiting = waiting;
    }

    fn done(&self, lanes: &LaneState) -> bool {
        !self.receiving && self.arrived.is_empty() && lanes.is_empty()
    }

    async fn wait(&mut self) {
        if !self.receiving {
            return std::future::pending().await;
        }
        match self.rx.recv().await {
            Some(entry) => self.arrived.push(entry),
            None => self.receiving = false,
        }
    }

    async fn finish(self, _lanes: LaneState) {
        self.metrics.waiting(self.waiting, 0);
    }
}

/// Entries a lane may have waiting in its channel; a submit past this waits (holding the request's memory
/// reservation), so the channel never holds data the memory limit does not count.
const CHANNEL_CAPACITY: usize = 1024;

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
