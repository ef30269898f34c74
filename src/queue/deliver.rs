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
//!
//! Units: an output whose own batches are larger than the reader's share (an archive object of 8 MiB when the
//! share is 5) and that takes a batch in pieces ([`crate::export::Unit`]) gets it piece by piece: the reader batches
//! pieces (the unit split evenly, each at most half the share), adds each to its partition's open unit in order and
//! frees it once added; the records stay behind the cursor until the unit is complete (its size, its age, or its
//! last piece sealed by the piece's own age). At most `--export-concurrency` units are open at once (each holds
//! state of its own: an archive object's compressor, reserved from the memory budget); a piece of another partition
//! meanwhile goes as a batch of its own. A unit that fails for good (past `--queue-max-age`, or the output lost it)
//! is given up and everything after the cursor is read again (in whole batches for the next minute, so that a store
//! that keeps losing uploads cannot hold the reader in a loop): at least once, with memory within the share whatever
//! the unit's size.
//!
//! Shutdown: a reader of an output with batches of its own (an archive) drains, until the deadline
//! [`Queue::drain_until`] sets: its open batches and every open unit's last piece go, so open objects are completed,
//! and its cursor passes what was stored. Other readers stop at once: their batches are milliseconds old and stay
//! queued. An archive's cursor is stored as soon as an object is, so a crash repeats at most objects in flight.

use std::collections::{BTreeMap, HashMap};
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
use crate::export::{BatchLimits, Export, ExportError, ExportUnit, Payload};
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
/// After a unit failed for good, how long new data goes in whole batches instead of units: a store that keeps
/// losing multipart uploads must not hold the reader in a loop of re-reading the same data.
const UNITS_PAUSE: Duration = Duration::from_secs(60);

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

/// A finished export, of the reader's `generation` at the time (an outcome of an older one, from before the reader
/// went back to its cursor, only frees memory).
enum Outcome {
    /// A batch delivered on its own: its signal, records, items, payload bytes and result.
    Batch {
        generation: u64,
        kind: SignalKind,
        positions: Vec<Pos>,
        items: u64,
        bytes: usize,
        result: Result<PartialSuccess, ExportError>,
    },
    /// A piece of a unit: the payload bytes it held and what became of its unit.
    Piece { generation: u64, kind: SignalKind, bytes: usize, done: PieceDone },
}

/// What a piece's export did to its unit.
enum PieceDone {
    /// Added (or nothing to do): the unit goes on, its records stay behind the cursor.
    Added,
    /// The unit is complete: its records are delivered, as `result` says.
    Complete { positions: Vec<Pos>, items: u64, result: Result<PartialSuccess, ExportError> },
    /// The unit failed for good and was given up: its data must be read again.
    Failed,
}

/// How a reader hands an output batches larger than its memory share: in pieces of a unit.
#[derive(Debug, Clone, Copy)]
struct Units {
    /// Bytes of a unit (the output's own batch limit).
    max_bytes: usize,
    /// Bytes of a piece (the reader's batch limit).
    piece_bytes: usize,
    /// A unit is complete this long after its first piece opened.
    max_age: Duration,
}

/// A partition's unit being filled.
struct OpenUnit {
    shared: Arc<UnitShared>,
    /// Pieces handed over so far.
    next_seq: u64,
    /// Their payload bytes.
    bytes: usize,
    /// When its first piece opened.
    opened: Instant,
    /// Enqueue time of its oldest record: its retry budget ends at this plus `--queue-max-age`.
    oldest_ms: u64,
    /// Its last piece is sealed (by its age).
    closing: bool,
}

/// What the exports of a unit's pieces share: the unit, and whose turn it is.
struct UnitShared {
    state: tokio::sync::Mutex<UnitState>,
    /// Pieces done: piece `seq` goes once this reaches `seq`, so pieces are added in order whatever task runs first.
    turn: watch::Sender<u64>,
}

struct UnitState {
    /// `None` once complete or given up.
    export: Option<Box<dyn ExportUnit>>,
    /// Records and items added so far.
    positions: Vec<Pos>,
    items: u64,
    /// Items the output refused for good (did not decode) so far, and its last word on them.
    rejected: u64,
    message: String,
}

impl UnitShared {
    fn new(export: Box<dyn ExportUnit>) -> Arc<UnitShared> {
        Arc::new(UnitShared {
            state: tokio::sync::Mutex::new(UnitState {
                export: Some(export),
                positions: Vec::new(),
                items: 0,
                rejected: 0,
                message: String::new(),
            }),
            turn: watch::channel(0).0,
        })
    }

    /// Gives the unit up (its data is read again).
    async fn give_up(&self) {
        let export = self.state.lock().await.export.take();
        if let Some(export) = export {
            export.abort().await;
        }
    }
}

/// A piece's place in its unit.
struct Turn {
    shared: Arc<UnitShared>,
    /// Its number in the unit.
    seq: u64,
    /// The unit completes after it.
    last: bool,
    /// The end of its retry budget (the unit's oldest record's `--queue-max-age`).
    deadline: Instant,
}

/// One piece's turn at its unit: adds it (freeing its memory), and completes the unit if it is the last.
async fn add_piece(turn: &Turn, batch: Batch<Entry>, metadata: PartitionKey) -> PieceDone {
    let Turn { shared, seq, last, deadline } = turn;
    let (seq, last, deadline) = (*seq, *last, *deadline);
    let mut turn = shared.turn.subscribe();
    // The sender lives in `shared`: this only ends at our turn.
    let _ = turn.wait_for(|done| *done >= seq).await;
    let mut state = shared.state.lock().await;
    let done = async {
        let Some(export) = state.export.as_mut() else {
            // Given up after an earlier piece failed: the reader reads all of it again.
            return PieceDone::Added;
        };
        if !batch.entries.is_empty() {
            let oldest = batch.entries.iter().map(|e| e.record.enqueued_ms).min();
            let parts = batch.entries.iter().map(|e| e.record.payload.clone()).collect();
            let payload = Payload { parts, metadata, arrived_ms: oldest };
            match export.add(seq, payload, batch.items, Some(deadline)).await {
                Ok(partial) => {
                    if partial.rejected > 0 {
                        state.rejected += u64::try_from(partial.rejected).unwrap_or(0);
                        state.message = partial.message;
                    }
                }
                Err(_) => return PieceDone::Failed,
            }
        }
        state.positions.extend(batch.entries.iter().map(|e| e.pos));
        state.items += batch.items;
        // Added: the piece's memory is the unit's business no more.
        drop(batch);
        if !last {
            return PieceDone::Added;
        }
        let items = state.items;
        let Some(export) = state.export.as_mut() else { return PieceDone::Added };
        match export.complete(items, Some(deadline)).await {
            Ok(_) => {
                state.export = None;
                let rejected = i64::try_from(state.rejected.min(items)).unwrap_or(i64::MAX);
                let partial = PartialSuccess { rejected, message: std::mem::take(&mut state.message) };
                PieceDone::Complete { positions: std::mem::take(&mut state.positions), items, result: Ok(partial) }
            }
            Err(_) => PieceDone::Failed,
        }
    }
    .await;
    if matches!(done, PieceDone::Failed) {
        if let Some(export) = state.export.take() {
            export.abort().await;
        }
    }
    drop(state);
    shared.turn.send_modify(|done| *done = (*done).max(seq + 1));
    done
}

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
                let mut units = None;
                // An output's own batching: its limits, within what the reader may hold, and a fixed linger; a batch
                // larger than the share goes in pieces of a unit when the output takes units.
                let linger = own.map(|own| {
                    let max_bytes = if own.units && own.max_bytes > config.hold_bytes {
                        // Even pieces of at most half the share: one is read while the one before is added, and a
                        // unit of whole pieces fills to its size.
                        let pieces = own.max_bytes.div_ceil((config.hold_bytes / 2).max(1));
                        let piece_bytes = own.max_bytes.div_ceil(pieces);
                        units = Some(Units { max_bytes: own.max_bytes, piece_bytes, max_age: own.linger });
                        piece_bytes
                    } else {
                        own.max_bytes.min(config.hold_bytes)
                    };
                    config.limits = Limits { max_items: own.max_items, max_bytes, timeout: own.linger };
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
                    units,
                    open_units: HashMap::new(),
                    completing: Vec::new(),
                    draining: None,
                    generation: 0,
                    rewind: false,
                    units_paused_until: None,
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
    /// `Some`: the output's batches go in pieces of units.
    units: Option<Units>,
    /// The units being filled, by partition.
    open_units: HashMap<Partition, OpenUnit>,
    /// Units whose last piece is handed over, until their exports end: given up if the reader stops first.
    completing: Vec<Arc<UnitShared>>,
    /// Bumped each time the reader goes back to its cursor: older outcomes only free memory.
    generation: u64,
    /// Told to stop: no more reading; what was read is exported until this deadline.
    draining: Option<Instant>,
    /// A unit failed for good: go back to the cursor before reading on.
    rewind: bool,
    /// No new units before this (a unit failed for good not long ago).
    units_paused_until: Option<Instant>,
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

    /// Stopping: for an output with batches of its own (an archive's objects, open for up to a minute), seals every
    /// open batch and the last piece of every open unit (an empty one when nothing of it is open), to be exported
    /// until the queue's drain deadline: objects are completed at shutdown. Other outputs stop at once, as their
    /// batches are milliseconds old and the queue keeps them (a backend that is down must not hold the stop).
    fn start_draining(&mut self, lanes: &mut Lanes) {
        let now = Instant::now();
        let deadline = match self.linger {
            Some(_) => (*lock(&self.shared.drain_until)).unwrap_or(now),
            None => now,
        };
        self.draining = Some(deadline);
        for (key, unit) in &mut self.open_units {
            if !unit.closing {
                unit.closing = true;
                lanes.seal_key(key, FlushReason::Shutdown, now);
            }
        }
        lanes.seal_all(FlushReason::Shutdown);
    }

    /// Seals the last piece of every unit that has reached its age (an empty piece when nothing is open).
    fn close_aged_units(&mut self, lanes: &mut Lanes) {
        let Some(units) = self.units else { return };
        let now = Instant::now();
        for (key, unit) in &mut self.open_units {
            if !unit.closing && now >= unit.opened + units.max_age {
                unit.closing = true;
                lanes.seal_key(key, FlushReason::Timeout, now);
            }
        }
    }

    /// When the next unit reaches its age.
    fn next_unit_due(&self) -> Option<Instant> {
        let units = self.units?;
        self.open_units.values().filter(|u| !u.closing).map(|u| u.opened + units.max_age).min()
    }

    /// Goes back to the cursor after a unit failed for good: what is open or sealed is dropped, every open unit
    /// given up, and everything after the cursor read again (exports still in flight only free their memory).
    fn go_back_to_cursor(&mut self, lanes: &mut Lanes) {
        self.rewind = false;
        self.units_paused_until = Some(Instant::now() + UNITS_PAUSE);
        self.generation += 1;
        for (_, batch) in lanes.discard_waiting() {
            self.held = self.held.saturating_sub(batch.bytes);
        }
        for (_, unit) in self.open_units.drain() {
            tokio::spawn(async move { unit.shared.give_up().await });
        }
        let cursor = self.pending.first_key_value().map_or(self.read, |(pos, _)| *pos);
        // The output's own line said why (one warning per event).
        tracing::debug!(backend = %self.label, "queue: reading again from the cursor after a unit was given up");
        self.pending.clear();
        self.read = cursor;
        self.segment = None;
        self.caught_up = false;
    }

    /// Hands `batch` to its partition's unit (opening one if needed): its turn, whether it is the unit's last
    /// piece, and its retry deadline; `None` when the output opens no unit (the batch then goes on its own).
    fn piece(&mut self, key: &Partition, batch: &Batch<Entry>, units: Units) -> Option<Turn> {
        if !self.open_units.contains_key(key) {
            if self.units_paused_until.is_some_and(|until| Instant::now() < until) {
                return None;
            }
            if self.open_units.len() >= self.config.concurrency {
                // Each open unit holds its own state (an archive object: its compressor, reserved from the memory
                // budget beside the share), so no more are open than export slots; with more partitions than that,
                // this one's piece goes as a batch of its own (a smaller object).
                return None;
            }
            let oldest = batch.entries.iter().map(|e| e.record.enqueued_ms).min()?;
            let export = self.exporters[key.0.index()].as_ref()?.open_unit(&key.1, Some(oldest))?;
            let unit = OpenUnit {
                shared: UnitShared::new(export),
                next_seq: 0,
                bytes: 0,
                opened: batch.opened,
                oldest_ms: oldest,
                closing: false,
            };
            self.open_units.insert(key.clone(), unit);
        }
        let unit = self.open_units.get_mut(key)?;
        let seq = unit.next_seq;
        unit.next_seq += 1;
        unit.bytes += batch.bytes;
        // The last piece: sealed by age (the unit's or its own) or at shutdown, or another whole piece would not fit.
        let last = matches!(batch.reason, FlushReason::Timeout | FlushReason::Shutdown)
            || unit.bytes + units.piece_bytes > units.max_bytes;
        let left = (unit.oldest_ms + self.config.max_age.as_millis() as u64).saturating_sub(self.shared.clock.now_ms());
        let deadline = Instant::now() + Duration::from_millis(left);
        let shared = Arc::clone(&unit.shared);
        if last {
            self.open_units.remove(key);
            // Those whose exports ended hold no other reference.
            self.completing.retain(|u| Arc::strong_count(u) > 1);
            self.completing.push(Arc::clone(&shared));
        }
        Some(Turn { shared, seq, last, deadline })
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
        if self.draining.is_some() {
            // Stopping: nothing more is read or read again; what failed stays behind the cursor.
            return;
        }
        if *self.stop.borrow() {
            self.start_draining(lanes);
            return;
        }
        if self.rewind {
            self.go_back_to_cursor(lanes);
        }
        self.close_aged_units(lanes);
        // Read while there is room for more.
        let room = self.config.hold_bytes.saturating_sub(self.held);
        if !self.caught_up && room > 0 && lanes.sealed_len() < self.config.concurrency {
            self.read_more(lanes).await;
        }
    }

    fn export(&mut self, key: Partition, batch: Batch<Entry>) -> impl Future<Output = Outcome> + 'static + use<> {
        let (kind, metadata) = key.clone();
        let generation = self.generation;
        let bytes = batch.bytes;
        if !batch.entries.is_empty() {
            // The same batch metrics as direct mode: a dashboard reads one family whichever mode runs.
            self.batch_metrics[kind.index()].flushed(batch.reason.as_str(), batch.items, batch.bytes);
        }
        // Profiles never share a unit: each request is its own batch, as each indexes into its own dictionary.
        let units = self.units.filter(|_| !kind.self_contained());
        let piece = match units {
            Some(_) if batch.entries.is_empty() && !self.open_units.contains_key(&key) => {
                // An empty last piece of a unit that already ended.
                return futures_util::future::Either::Left(std::future::ready(Outcome::Piece {
                    generation,
                    kind,
                    bytes,
                    done: PieceDone::Added,
                }));
            }
            Some(units) => self.piece(&key, &batch, units),
            None => None,
        };
        let exporter = self.exporters[kind.index()].clone();
        let max_age = self.config.max_age;
        let clock = self.shared.clock.clone();
        futures_util::future::Either::Right(async move {
            if let Some(turn) = piece {
                let done = add_piece(&turn, batch, metadata).await;
                return Outcome::Piece { generation, kind, bytes, done };
            }
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
            Outcome::Batch { generation, kind, positions, items: batch.items, bytes, result }
        })
    }

    fn settle(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Batch { generation, kind, positions, items, bytes, result } => {
                self.held = self.held.saturating_sub(bytes);
                if generation != self.generation {
                    return;
                }
                for pos in &positions {
                    self.pending.remove(pos);
                }
                self.settle_outcome(kind, items, result);
            }
            Outcome::Piece { generation, kind, bytes, done } => {
                self.held = self.held.saturating_sub(bytes);
                if generation != self.generation {
                    return;
                }
                match done {
                    PieceDone::Added => {}
                    PieceDone::Complete { positions, items, result } => {
                        for pos in &positions {
                            self.pending.remove(pos);
                        }
                        self.settle_outcome(kind, items, result);
                    }
                    PieceDone::Failed => self.rewind = true,
                }
            }
        }
    }

    async fn after_launch(&mut self, lanes: &Lanes) {
        let oldest = self.pending.first_key_value().map_or(0, |(_, ms)| *ms);
        self.state().oldest_ms.store(oldest, Ordering::Relaxed);
        // The cursor: the first record not yet delivered, or where reading has got to.
        self.cursor = self.pending.first_key_value().map_or(self.read, |(pos, _)| *pos);
        // An output with batches of its own (an archive's objects, seconds to minutes apart) has its cursor stored as
        // soon as one is delivered: a crash then repeats at most what was in flight, not a whole object whose
        // cursor waited for the interval; others at most every STORE_INTERVAL, an fsync and a rename each.
        let due = self.linger.is_some() || self.stored_at.elapsed() >= STORE_INTERVAL;
        if self.cursor != self.stored && due {
            if self.store(self.cursor).await {
                self.stored = self.cursor;
            }
            self.stored_at = Instant::now();
        }
        self.can_read =
            !self.caught_up && self.held < self.config.hold_bytes && lanes.sealed_len() < self.config.concurrency;
    }

    fn done(&self, lanes: &Lanes) -> bool {
        // A stop seen by `done` first is seen by the next `take`, which starts the drain.
        self.broken || self.draining.is_some_and(|deadline| lanes.is_empty() || Instant::now() >= deadline)
    }

    async fn wait(&mut self) {
        if let Some(deadline) = self.draining {
            // Exports end on their own (the loop wakes for each); the deadline ends the rest.
            tokio::time::sleep_until(deadline).await;
            return;
        }
        if *self.stop.borrow() {
            return;
        }
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
        // A unit reaching its age is sealed by the next turn of the loop.
        let unit_due = self.next_unit_due().map(|at| at.saturating_duration_since(Instant::now()));
        let wake = match (wake, unit_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
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

    async fn finish(mut self, mut lanes: Lanes) {
        lanes.abort().await;
        // Open units, and those whose completion was cut short, are given up (an archive object's multipart upload
        // is aborted, not left for the store to keep and bill): their records are behind the cursor, and archived
        // after the next start. A completed unit's export is gone, so giving it up does nothing.
        let open = self.open_units.drain().map(|(_, unit)| unit.shared);
        let units: Vec<Arc<UnitShared>> = open.chain(self.completing.drain(..)).collect();
        // At once: each is bounded (an archive's abort waits at most 5 s), but not their sum.
        futures_util::future::join_all(units.iter().map(|unit| unit.give_up())).await;
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
