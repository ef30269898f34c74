//! Delivery: one reader task per backend streams records from the log and exports them with retry until
//! `--queue-max-age`, then moves its cursor. The reader is a [`Feed`] of the dispatch loop that direct mode runs
//! too ([`dispatch::run`]): partitions, batches, export slots and flush times are that loop's; reading, memory,
//! the cursor and what a finished export settles are the reader's.
//!
//! Batches are partitioned by signal and by the record's forwarded headers, and each export carries its
//! partition's headers as gRPC metadata: one export never mixes two tenants, in this mode as in direct mode.
//!
//! Each reader is independent: a backend that is down stalls only its own reader, whose cursor then holds its
//! segments on disk (up to `--queue-max-bytes`). Memory: a reader holds at most its share of the memory limit
//! in records read but not delivered (plus one record), reserved from the same budget as requests.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::read::read_chunk;
use super::segment::{Pos, SegmentReader};
use super::{cursor, lock, Queue, Record, Shared};
use crate::batch::dispatch::{self, Dispatch, Feed, Flush};
use crate::batch::{Batch, FlushReason, Limits, PartitionKey, Weighed};
use crate::export::{BatchLimits, Export, ExportError, Payload};
use crate::limit::{MemoryBudget, Reservation};
use crate::signal::{PartialSuccess, SignalKind};
use crate::telemetry::{BatchMetrics, QueueDrops};

/// How readers deliver.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeliveryConfig {
    /// Batch limits.
    pub limits: Limits,
    /// Exports in flight per backend.
    pub concurrency: usize,
    /// Data older than this is dropped.
    pub max_age: Duration,
    /// Bytes of read records this reader may hold.
    pub hold_bytes: usize,
}

/// A backend's exporters, by signal (`None`: the backend does not take that signal).
pub(crate) type ReaderExport = [Option<Arc<dyn Export>>; SignalKind::COUNT];

/// Shortest interval between two cursor writes while data flows (each is an fsync and a rename).
const STORE_INTERVAL: Duration = Duration::from_millis(200);

/// Pause after a failed segment read before trying again: the error is logged each time, so not a busy loop.
const READ_RETRY_DELAY: Duration = Duration::from_millis(500);
/// How often a reader waiting for memory (held by requests in flight) looks again: memory frees in milliseconds.
const MEMORY_WAIT_POLL: Duration = Duration::from_millis(20);

/// A batch never mixes signals or forwarded-header values (a record without headers: the no-header partition),
/// and is exported with its partition's values as gRPC metadata, as in direct mode.
type Partition = (SignalKind, PartitionKey);

struct Entry {
    pos: Pos,
    record: Record,
    _hold: Arc<Option<Reservation>>,
}

impl Weighed for Entry {
    fn items(&self) -> u64 {
        self.record.items
    }
    fn bytes(&self) -> usize {
        self.record.payload.len()
    }
}

/// A finished export: its signal, records, items, payload bytes and result.
type Outcome = (SignalKind, Vec<Pos>, u64, usize, Result<PartialSuccess, ExportError>);

impl Queue {
    /// Starts one reader per backend (in the order given to [`Queue::open`]); they run until `stop` turns true.
    pub(crate) fn start_readers(
        &self,
        exporters: Vec<(ReaderExport, Option<BatchLimits>)>,
        config: DeliveryConfig,
        budget: Arc<MemoryBudget>,
        stop: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        exporters
            .into_iter()
            .enumerate()
            .map(|(index, (exporters, own))| {
                let mut config = config;
                // An output's own batching: its limits, within what the reader may hold, and a fixed linger.
                let linger = own.map(|own| {
                    config.limits = Limits {
                        max_items: own.max_items,
                        max_bytes: own.max_bytes.min(config.hold_bytes),
                        timeout: own.linger,
                    };
                    own.linger
                });
                let telemetry = &self.shared.telemetry;
                let reasons = FlushReason::ALL.map(FlushReason::as_str);
                let state = &self.shared.readers[index];
                let read = *lock(&state.durable);
                let reader = Reader {
                    batch_metrics: SignalKind::ALL.map(|kind| BatchMetrics::new(telemetry, kind, &reasons)),
                    drops: QueueDrops::new(telemetry, &state.label),
                    label: state.label.clone(),
                    shared: Arc::clone(&self.shared),
                    index,
                    exporters,
                    config,
                    linger,
                    budget: Arc::clone(&budget),
                    stop: stop.clone(),
                    committed: self.shared.committed.subscribe(),
                    read,
                    segment: None,
                    pending: BTreeMap::new(),
                    held: 0,
                    caught_up: false,
                    stored: read,
                    stored_at: Instant::now(),
                    cursor: read,
                    memory_wait: false,
                    can_read: false,
                    broken: false,
                };
                let flush = linger.map_or(Flush::ByFeed, Flush::Fixed);
                let lanes = Dispatch::new(
                    config.limits,
                    |(kind, _), limits| limits.for_signal(*kind),
                    usize::MAX,
                    config.concurrency,
                    flush,
                );
                tokio::spawn(dispatch::run(reader, lanes))
            })
            .collect()
    }
}

struct Reader {
    shared: Arc<Shared>,
    index: usize,
    exporters: ReaderExport,
    config: DeliveryConfig,
    /// `Some`: the output batches by its own limits, and an open batch waits this long for more data even when
    /// the reader has caught up (an archive object); `None`: what is open goes as soon as the reader catches up.
    linger: Option<Duration>,
    budget: Arc<MemoryBudget>,
    batch_metrics: [BatchMetrics; SignalKind::COUNT],
    drops: QueueDrops,
    label: String,
    stop: watch::Receiver<bool>,
    committed: watch::Receiver<Pos>,
    /// Where reading has got to.
    read: Pos,
    segment: Option<SegmentReader>,
    /// Records read and not yet settled, with their enqueue time: the first one is where the cursor stays.
    pending: BTreeMap<Pos, u64>,
    /// Payload bytes of the pending records.
    held: usize,
    caught_up: bool,
    /// The cursor as last stored, and when.
    stored: Pos,
    stored_at: Instant,
    /// The cursor as of the last [`Feed::after_launch`].
    cursor: Pos,
    /// The memory budget refused the last read.
    memory_wait: bool,
    /// Reading may go on at once.
    can_read: bool,
    /// A read task died: the reader stops (its cursor stays where it was).
    broken: bool,
}

type Lanes = Dispatch<Partition, Entry, Outcome>;

impl Reader {
    fn state(&self) -> &super::ReaderState {
        &self.shared.readers[self.index]
    }

    /// Reads one chunk of records (up to its share of memory) and offers them to their partitions' batches.
    async fn read_more(&mut self, lanes: &mut Lanes) {
        let committed = *self.committed.borrow_and_update();
        let want = self.config.hold_bytes.saturating_sub(self.held).min(1 << 20);
        let mut reservation = match self.budget.reserve(want) {
            Err(_) => {
                self.memory_wait = true;
                // Nothing more can be read for now: what is open goes, and its memory with it, unless a batch of
                // this reader's own is on its way out (it frees its memory when it settles).
                if !lanes.frees_memory() {
                    lanes.seal_all(FlushReason::Size);
                }
                return;
            }
            Ok(reservation) => reservation,
        };
        self.memory_wait = false;
        let shared = Arc::clone(&self.shared);
        let mut r = self.segment.take();
        let mut at = self.read;
        let job = tokio::task::spawn_blocking(move || {
            let chunk = read_chunk(&shared, &mut r, &mut at, committed, want);
            (r, at, chunk)
        });
        let Ok((r, at, chunk)) = job.await else {
            self.broken = true;
            return;
        };
        self.segment = r;
        self.read = at;
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                tracing::warn!(backend = %self.label, "queue: reading failed, retrying: {e}");
                self.segment = None;
                tokio::time::sleep(READ_RETRY_DELAY).await;
                return;
            }
        };
        let bytes: usize = chunk.iter().map(|(_, r)| r.payload.len()).sum();
        // A record larger than the share is read anyway (once), so delivery never stalls on it.
        let _ = reservation.resize(bytes);
        self.caught_up = chunk.is_empty();
        let hold = Arc::new(Some(reservation));
        let now = Instant::now();
        let mut too_old = [0u64; SignalKind::COUNT];
        for (pos, record) in chunk {
            let kind = record.kind;
            if self.exporters[kind.index()].is_none() {
                continue;
            }
            let age = self.shared.clock.now_ms().saturating_sub(record.enqueued_ms);
            if age > self.config.max_age.as_millis() as u64 {
                too_old[kind.index()] += record.items;
                self.state().backlog_items.fetch_sub(record.items as i64, Ordering::Relaxed);
                continue;
            }
            let key: Partition = (kind, Arc::new(record.headers.clone()));
            let (bytes, enqueued_ms) = (record.payload.len(), record.enqueued_ms);
            // The readers' partitions are unbounded (the map is emptied whenever the reader catches up), so the
            // entry is always taken.
            if lanes.offer(&key, Entry { pos, record, _hold: Arc::clone(&hold) }, now).is_ok() {
                self.held += bytes;
                self.pending.insert(pos, enqueued_ms);
            }
        }
        for kind in SignalKind::ALL {
            self.drop_counted(kind, "queue_max_age", too_old[kind.index()], "older than --queue-max-age");
        }
        // Holding its whole share in open batches alone: what is open goes now. Otherwise, with many tenants (none
        // of whose batches fills), the reader would wait on itself for ever. While a batch is sealed or in flight,
        // its settling frees memory and the open batches keep growing: sealing them then cut every object in two
        // (the batch that filled, then a tiny one holding the record that did not fit). Caught up: what is open
        // goes now, unless the output batches by its own linger.
        if self.held >= self.config.hold_bytes && !lanes.frees_memory() {
            lanes.seal_all(FlushReason::Size);
        } else if self.caught_up && self.linger.is_none() {
            lanes.seal_all(FlushReason::Idle);
        }
    }

    /// Stores `cursor` durably, then frees what every backend has passed. False if it could not be stored.
    async fn store(&self, cursor: Pos) -> bool {
        let shared = Arc::clone(&self.shared);
        let index = self.index;
        let done = tokio::task::spawn_blocking(move || {
            let state = &shared.readers[index];
            match cursor::store(&state.cursor_path, cursor) {
                Ok(()) => {
                    *lock(&state.durable) = cursor;
                    shared.collect_garbage();
                    true
                }
                Err(e) => {
                    tracing::warn!(backend = %state.label, "queue: cannot store the cursor (will retry): {e}");
                    false
                }
            }
        });
        done.await.unwrap_or(false)
    }

    fn settle_outcome(&self, kind: SignalKind, items: u64, result: Result<PartialSuccess, ExportError>) {
        self.state().backlog_items.fetch_sub(items as i64, Ordering::Relaxed);
        match result {
            Ok(partial) if partial.rejected > 0 => {
                let rejected = (partial.rejected as u64).min(items);
                self.drop_counted(
                    kind,
                    "rejected_by_backend",
                    rejected,
                    &format!("partial success: {}", partial.message),
                );
            }
            Ok(_) => {}
            Err(e) if e.is_retryable() => {
                self.drop_counted(kind, "queue_max_age", items, &format!("still failing at --queue-max-age: {e}"))
            }
            Err(e) => self.drop_counted(kind, "rejected_by_backend", items, &format!("rejected: {e}")),
        }
    }

    fn drop_counted(&self, kind: SignalKind, reason: &'static str, items: u64, why: &str) {
        if items == 0 {
            return;
        }
        let label = &self.state().label;
        self.drops.dropped(kind, reason, items);
        tracing::warn!(backend = %label, signal = kind.name(), items, reason, "queued data dropped: {why}");
    }
}

impl Feed for Reader {
    type Key = Partition;
    type Entry = Entry;
    type Done = Outcome;

    async fn take(&mut self, lanes: &mut Lanes) {
        // Read while there is room for more.
        let room = self.config.hold_bytes.saturating_sub(self.held);
        if !self.caught_up && room > 0 && lanes.sealed_len() < self.config.concurrency {
            self.read_more(lanes).await;
        }
    }

    fn export(&self, (kind, metadata): Partition, batch: Batch<Entry>) -> impl Future<Output = Outcome> + 'static {
        let exporter = self.exporters[kind.index()].clone();
        let max_age = self.config.max_age;
        let clock = self.shared.clock.clone();
        // The same batch metrics as direct mode: a dashboard reads one family whichever mode runs.
        self.batch_metrics[kind.index()].flushed(batch.reason.as_str(), batch.items, batch.bytes);
        async move {
            let positions: Vec<Pos> = batch.entries.iter().map(|e| e.pos).collect();
            let now = clock.now_ms();
            let oldest = batch.entries.iter().map(|e| e.record.enqueued_ms).min().unwrap_or(now);
            let left = (oldest + max_age.as_millis() as u64).saturating_sub(now);
            let deadline = Instant::now() + Duration::from_millis(left);
            let parts = batch.entries.iter().map(|e| e.record.payload.clone()).collect();
            let payload = Payload { parts, metadata, arrived_ms: Some(oldest) };
            let result = match exporter {
                Some(exporter) => exporter.export(payload, batch.items, Some(deadline)).await,
                None => Ok(PartialSuccess::default()),
            };
            (kind, positions, batch.items, batch.bytes, result)
        }
    }

    fn settle(&mut self, (kind, positions, items, bytes, result): Outcome) {
        for pos in &positions {
            self.pending.remove(pos);
        }
        self.held = self.held.saturating_sub(bytes);
        self.settle_outcome(kind, items, result);
    }

    async fn after_launch(&mut self, lanes: &Lanes) {
        let oldest = self.pending.first_key_value().map_or(0, |(_, ms)| *ms);
        self.state().oldest_ms.store(oldest, Ordering::Relaxed);
        // The cursor: the first record not yet delivered, or where reading has got to.
        self.cursor = self.pending.first_key_value().map_or(self.read, |(pos, _)| *pos);
        if self.cursor != self.stored && self.stored_at.elapsed() >= STORE_INTERVAL {
            if self.store(self.cursor).await {
                self.stored = self.cursor;
            }
            self.stored_at = Instant::now();
        }
        self.can_read =
            !self.caught_up && self.held < self.config.hold_bytes && lanes.sealed_len() < self.config.concurrency;
    }

    fn done(&self, _lanes: &Lanes) -> bool {
        self.broken || *self.stop.borrow()
    }

    async fn wait(&mut self) {
        if self.can_read && !self.memory_wait {
            return;
        }
        let wake = if self.memory_wait {
            Some(MEMORY_WAIT_POLL)
        } else if self.cursor != self.stored {
            Some(STORE_INTERVAL.saturating_sub(self.stored_at.elapsed()))
        } else {
            None
        };
        tokio::select! {
            changed = self.committed.changed(), if self.caught_up => {
                // The writer gone: nothing new will come.
                self.caught_up = changed.is_err();
            }
            _ = self.stop.changed() => {}
            () = sleep(wake), if wake.is_some() => {}
        }
    }

    async fn finish(self, mut lanes: Lanes) {
        lanes.abort().await;
        let cursor = self.pending.first_key_value().map_or(self.read, |(pos, _)| *pos);
        if cursor != self.stored {
            self.store(cursor).await;
        }
        tracing::debug!(backend = %self.label, "queue reader stopped");
    }
}

async fn sleep(wake: Option<Duration>) {
    match wake {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
