//! Delivery: one reader task per backend streams records from the log, batches them with the [`Batcher`] and
//! exports them with retry until `--queue-max-age`, then moves its cursor.
//!
//! Batches are partitioned by signal and by the record's forwarded headers, and each export carries its
//! partition's headers as gRPC metadata: one export never mixes two tenants, in this mode as in direct mode.
//!
//! Each reader is independent: a backend that is down stalls only its own reader, whose cursor then holds its
//! segments on disk (up to `--queue-max-bytes`). Memory: a reader holds at most its share of the memory limit
//! in records read but not delivered (plus one record), reserved from the same budget as requests.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::read::read_chunk;
use super::segment::{Pos, SegmentReader};
use super::{cursor, lock, Queue, Record, Shared};
use crate::batch::{Batch, Batcher, FlushReason, Limits, PartitionKey, Weighed};
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
                let reader = Reader {
                    batch_metrics: SignalKind::ALL.map(|kind| BatchMetrics::new(telemetry, kind, &reasons)),
                    drops: QueueDrops::new(telemetry, &self.shared.readers[index].label),
                    shared: Arc::clone(&self.shared),
                    index,
                    exporters,
                    config,
                    linger,
                    budget: Arc::clone(&budget),
                };
                tokio::spawn(reader.run(stop.clone()))
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
}

impl Reader {
    fn state(&self) -> &super::ReaderState {
        &self.shared.readers[self.index]
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let label = self.state().label.clone();
        let mut committed_rx = self.shared.committed.subscribe();
        let mut read = *lock(&self.state().durable);
        let mut segment: Option<SegmentReader> = None;
        let mut pending: BTreeMap<Pos, u64> = BTreeMap::new();
        let mut batchers: HashMap<Partition, Batcher<Entry>> = HashMap::new();
        let mut sealed: VecDeque<(Partition, Batch<Entry>)> = VecDeque::new();
        let mut in_flight: JoinSet<Outcome> = JoinSet::new();
        let mut held = 0usize;
        let mut caught_up = false;
        let mut stored = read;
        let mut stored_at = Instant::now();
        let mut memory_wait = false;
        loop {
            if *stop.borrow() {
                break;
            }
            // Read while there is room for more.
            let room = self.config.hold_bytes.saturating_sub(held);
            if !caught_up && room > 0 && sealed.len() < self.config.concurrency {
                let committed = *committed_rx.borrow_and_update();
                let want = room.min(1 << 20);
                match self.budget.reserve(want) {
                    Err(_) => {
                        memory_wait = true;
                        // Nothing more can be read for now: what is open goes, and its memory with it.
                        seal_open(&mut batchers, &mut sealed, FlushReason::Size);
                    }
                    Ok(mut reservation) => {
                        memory_wait = false;
                        let shared = Arc::clone(&self.shared);
                        let mut r = segment.take();
                        let mut at = read;
                        let job = tokio::task::spawn_blocking(move || {
                            let chunk = read_chunk(&shared, &mut r, &mut at, committed, want);
                            (r, at, chunk)
                        });
                        let Ok((r, at, chunk)) = job.await else { break };
                        segment = r;
                        read = at;
                        let chunk = match chunk {
                            Ok(chunk) => chunk,
                            Err(e) => {
                                tracing::warn!(backend = %label, "queue: reading failed, retrying: {e}");
                                segment = None;
                                tokio::time::sleep(READ_RETRY_DELAY).await;
                                continue;
                            }
                        };
                        let bytes: usize = chunk.iter().map(|(_, r)| r.payload.len()).sum();
                        // A record larger than the share is read anyway (once), so delivery never stalls on it.
                        let _ = reservation.resize(bytes);
                        caught_up = chunk.is_empty();
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
                            held += record.payload.len();
                            pending.insert(pos, record.enqueued_ms);
                            let key: Partition = (kind, Arc::new(record.headers.clone()));
                            let batcher = batchers
                                .entry(key.clone())
                                .or_insert_with(|| Batcher::new(self.config.limits.for_signal(kind)));
                            let entry = Entry { pos, record, _hold: Arc::clone(&hold) };
                            sealed.extend(batcher.offer(entry, now).into_iter().map(|b| (key.clone(), b)));
                        }
                        for kind in SignalKind::ALL {
                            self.drop_counted(
                                kind,
                                "queue_max_age",
                                too_old[kind.index()],
                                "older than --queue-max-age",
                            );
                        }
                        // Caught up, or holding its whole share: what is open goes now. Otherwise, with many
                        // tenants (none of whose batches fills), the reader would wait on itself for ever.
                        if held >= self.config.hold_bytes {
                            seal_open(&mut batchers, &mut sealed, FlushReason::Size);
                        } else if caught_up && self.linger.is_none() {
                            seal_open(&mut batchers, &mut sealed, FlushReason::Idle);
                        }
                    }
                }
            }
            if let Some(linger) = self.linger {
                seal_aged(&mut batchers, &mut sealed, linger, Instant::now());
            }
            while in_flight.len() < self.config.concurrency {
                let Some((partition, batch)) = sealed.pop_front() else { break };
                in_flight.spawn(self.export(partition, batch));
            }
            let oldest = pending.first_key_value().map_or(0, |(_, ms)| *ms);
            self.state().oldest_ms.store(oldest, Ordering::Relaxed);

            // The cursor: the first record not yet delivered, or where reading has got to.
            let cursor = pending.first_key_value().map_or(read, |(pos, _)| *pos);
            let store_due = cursor != stored && stored_at.elapsed() >= STORE_INTERVAL;
            if store_due {
                if self.store(cursor).await {
                    stored = cursor;
                }
                stored_at = Instant::now();
            }
            let can_read = !caught_up && held < self.config.hold_bytes && sealed.len() < self.config.concurrency;
            if can_read && !memory_wait {
                continue;
            }
            let wake = if memory_wait {
                Some(MEMORY_WAIT_POLL)
            } else if cursor != stored {
                Some(STORE_INTERVAL.saturating_sub(stored_at.elapsed()))
            } else {
                None
            };
            // A lingering batch wakes the reader when its time is up.
            let aged = self.linger.and_then(|linger| batchers.values().filter_map(|b| b.deadline(linger)).min());
            let wake = match (wake, aged) {
                (w, None) => w,
                (w, Some(at)) => {
                    let due = at.saturating_duration_since(Instant::now());
                    Some(w.map_or(due, |w| w.min(due)))
                }
            };
            tokio::select! {
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    let Ok((kind, positions, items, bytes, result)) = done else { continue };
                    for pos in &positions {
                        pending.remove(pos);
                    }
                    held = held.saturating_sub(bytes);
                    self.settle(kind, items, result);
                }
                changed = committed_rx.changed(), if caught_up => {
                    caught_up = false;
                    if changed.is_err() {
                        caught_up = true;
                    }
                }
                _ = stop.changed() => {}
                () = sleep(wake), if wake.is_some() => {}
            }
        }
        in_flight.abort_all();
        while in_flight.join_next().await.is_some() {}
        let cursor = pending.first_key_value().map_or(read, |(pos, _)| *pos);
        if cursor != stored {
            self.store(cursor).await;
        }
        tracing::debug!(backend = %label, "queue reader stopped");
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

    fn export(
        &self,
        (kind, metadata): Partition,
        batch: Batch<Entry>,
    ) -> impl std::future::Future<Output = Outcome> + 'static {
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

    fn settle(&self, kind: SignalKind, items: u64, result: Result<PartialSuccess, ExportError>) {
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

/// Seals every open batch, each with its partition. The map is emptied, so partitions of tenants gone quiet do
/// not accumulate: it holds at most one partition per record being read.
fn seal_open(
    batchers: &mut HashMap<Partition, Batcher<Entry>>,
    sealed: &mut VecDeque<(Partition, Batch<Entry>)>,
    reason: FlushReason,
) {
    for (key, mut batcher) in batchers.drain() {
        sealed.extend(batcher.take(reason).map(|batch| (key, batch)));
    }
}

/// Seals the open batches that have waited `linger`.
fn seal_aged(
    batchers: &mut HashMap<Partition, Batcher<Entry>>,
    sealed: &mut VecDeque<(Partition, Batch<Entry>)>,
    linger: Duration,
    now: Instant,
) {
    batchers.retain(|key, batcher| match batcher.deadline(linger) {
        Some(at) if at <= now => {
            sealed.extend(batcher.take(FlushReason::Timeout).map(|batch| (key.clone(), batch)));
            false
        }
        _ => true,
    });
}

async fn sleep(wake: Option<Duration>) {
    match wake {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
