//! The durable queue: accepted data is appended to a log on local disk and answered once fsynced; one reader per
//! backend delivers it from there, across backend outages and bridge restarts.
//!
//! ```text
//! DIR/lock                    flock: one bridge per directory
//! DIR/segments/<id>.seg       append-only log, records framed with length + CRC (see `record`)
//! DIR/cursors/<backend>.cursor  per backend: the first record it has not acknowledged (see `cursor`)
//! DIR/quarantine/             segments found corrupt at start, kept for inspection, never read again
//! ```
//! Invariants. An append is answered Ok only after the fdatasync that covers it (`writer`). A reader's cursor is
//! at or before every record it has not delivered, and is stored durably before anything depends on it. A
//! segment is deleted only when every configured backend's *durable* cursor lies in a later segment, and never
//! while it is the active one; so no record is deleted before every backend has it (Vector #25570 deleted first).
//! Bytes on disk (all segments) never exceed `--queue-max-bytes` by more than a segment's unsynced tail.

mod cursor;
mod deliver;
mod read;
mod record;
mod recover;
mod segment;
mod writer;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

pub(crate) use crate::config::QueueConfig;
pub(crate) use deliver::{DeliveryConfig, ReaderExport};
pub(crate) use record::Record;
pub(crate) use segment::Pos;

use crate::signal::SignalKind;
use crate::telemetry::{QueueMetrics, Telemetry};

/// Why an append was refused; the client hears 503 with `Retry-After`, and nothing it sent is kept.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum QueueError {
    /// The queue holds `--queue-max-bytes`.
    #[error(
        "the durable queue is full ({used} of {max} bytes, --queue-max-bytes) while backends catch up; retry later"
    )]
    Full {
        /// Bytes on disk.
        used: u64,
        /// The limit.
        max: u64,
    },
    /// Writing or syncing failed (a full disk, an I/O error); the data was not kept.
    #[error("the durable queue could not store the data ({0}); retry later")]
    Io(String),
    /// The bridge is stopping.
    #[error("the bridge is shutting down; the data was not queued, retry against another instance")]
    Closed,
}

/// `Retry-After` when the queue is full or cannot write: it drains at the backends' pace (or waits for disk), so
/// later than a busy moment, yet soon enough that a client's own retry budget (the SDKs' is about a minute) holds.
const FULL_RETRY_AFTER: Duration = Duration::from_secs(5);
/// Appends that wait beyond this many are pushed back to the receiver, which holds their memory reservation: the
/// channel itself then never holds data the memory limit does not count.
const WRITER_CHANNEL_CAPACITY: usize = 1024;

impl QueueError {
    /// When the client may try again: a full queue drains at the backends' pace, so later than a busy moment.
    pub(crate) fn retry_after(&self) -> Duration {
        match self {
            QueueError::Full { .. } | QueueError::Io(_) => FULL_RETRY_AFTER,
            QueueError::Closed => crate::retry::RETRY_AFTER_MIN,
        }
    }
}

/// Why the queue could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process holds the directory's lock.
    #[error("queue directory {0} is in use by another otlp-bridge (its lock file is held); give each bridge its own --queue-dir")]
    Locked(PathBuf),
    /// The directory or a file in it could not be used.
    #[error("cannot use queue directory {path}: {source}")]
    Io {
        /// What failed.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> OpenError + '_ {
    move |source| OpenError::Io { path: path.to_path_buf(), source }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these leaves consistent data (plain maps and positions).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Wall-clock milliseconds since the Unix epoch (queued data outlives the process, so not a monotonic clock).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The clock that dates records and ages them against `--queue-max-age`: the system's wall clock ([`now_ms`]),
/// or in tests one they move, so that "a day later" needs no day (and "2 s later" no sleep). tokio's paused clock
/// cannot stand in: it is monotonic and starts at the process start, and a record's date must survive restarts.
#[derive(Clone)]
pub(crate) struct WallClock(Arc<dyn Fn() -> u64 + Send + Sync>);

impl WallClock {
    /// The system's wall clock.
    pub(crate) fn system() -> WallClock {
        WallClock(Arc::new(now_ms))
    }

    /// A clock that reads `now` (milliseconds since the Unix epoch).
    #[cfg(test)]
    pub(crate) fn from_fn(now: impl Fn() -> u64 + Send + Sync + 'static) -> WallClock {
        WallClock(Arc::new(now))
    }

    /// Milliseconds since the Unix epoch.
    pub(crate) fn now_ms(&self) -> u64 {
        (self.0)()
    }
}

/// One backend's delivery state shared with the metrics.
struct ReaderState {
    label: String,
    signals: [bool; SignalKind::COUNT],
    cursor_path: PathBuf,
    /// The cursor as last stored durably: everything before it was delivered (or dropped and counted).
    durable: Mutex<Pos>,
    /// Items of this backend's signals appended and not yet passed by its reader.
    backlog_items: AtomicI64,
    /// Enqueue time (ms) of the oldest record this reader holds undelivered; 0 when none.
    oldest_ms: AtomicU64,
}

/// What the writer, the readers and the metrics share.
struct Shared {
    segments_dir: PathBuf,
    max_bytes: u64,
    used: AtomicU64,
    /// Every live segment and its durable length.
    segments: Mutex<BTreeMap<u64, u64>>,
    /// The end of the durable log: readers read up to here.
    committed: watch::Sender<Pos>,
    readers: Vec<ReaderState>,
    /// Whether the last append failed on I/O (then /ready says so until one succeeds).
    failing: AtomicBool,
    telemetry: Arc<Telemetry>,
    /// Dates records and ages them.
    clock: WallClock,
    /// Until when stopping readers may finish the exports of what they read (see [`Queue::drain_until`]).
    drain_until: Mutex<Option<tokio::time::Instant>>,
}

impl Shared {
    fn admit(&self, bytes: u64) -> Result<(), QueueError> {
        let used = self.used.load(Ordering::Acquire);
        if used.saturating_add(bytes) > self.max_bytes {
            self.telemetry.queue_refused("full", 1);
            return Err(QueueError::Full { used, max: self.max_bytes });
        }
        Ok(())
    }

    /// Sets the queue's gauges (called before /metrics renders).
    fn observe(&self, gauges: &QueueMetrics) {
        let segments = lock(&self.segments).clone();
        let total: u64 = segments.values().sum();
        let now = self.clock.now_ms();
        gauges.used(total);
        for (index, reader) in self.readers.iter().enumerate() {
            let cursor = *lock(&reader.durable);
            let behind: u64 = segments.range(cursor.segment..).map(|(_, len)| *len).sum();
            let behind = behind.saturating_sub(if segments.contains_key(&cursor.segment) { cursor.offset } else { 0 });
            let oldest = reader.oldest_ms.load(Ordering::Relaxed);
            let age = if oldest == 0 { 0.0 } else { now.saturating_sub(oldest) as f64 / 1000.0 };
            let items = reader.backlog_items.load(Ordering::Relaxed).max(0) as u64;
            gauges.backlog(index, behind, items, age);
        }
    }

    fn segment_created(&self, id: u64) {
        lock(&self.segments).insert(id, 0);
    }

    fn grown(&self, id: u64, bytes: u64) {
        *lock(&self.segments).entry(id).or_insert(0) += bytes;
        self.used.fetch_add(bytes, Ordering::AcqRel);
        self.failing.store(false, Ordering::Release);
    }

    fn appended(&self, record: &Record) {
        for reader in &self.readers {
            if reader.signals[record.kind.index()] {
                reader.backlog_items.fetch_add(record.items as i64, Ordering::Relaxed);
            }
        }
    }

    fn publish(&self, pos: Pos) {
        self.committed.send_replace(pos);
    }

    fn segment_after(&self, id: u64) -> Option<u64> {
        lock(&self.segments).range(id + 1..).next().map(|(id, _)| *id)
    }

    fn first_segment_from(&self, id: u64) -> Option<u64> {
        lock(&self.segments).range(id..).next().map(|(id, _)| *id)
    }

    /// Deletes the segments every backend's durable cursor has passed.
    fn collect_garbage(&self) {
        let Some(oldest_needed) = self.readers.iter().map(|r| lock(&r.durable).segment).min() else { return };
        let active = self.committed.borrow().segment;
        // Claimed (taken out of the map) under one lock: every reader collects after storing its cursor, on the
        // blocking pool, so two may collect at once, and a segment both picked would be subtracted from `used`
        // twice, wrapping it: the queue would then refuse every append as full, for good.
        let done: Vec<(u64, u64)> = {
            let mut segments = lock(&self.segments);
            let ids: Vec<u64> = segments.range(..oldest_needed.min(active)).map(|(id, _)| *id).collect();
            ids.into_iter().filter_map(|id| segments.remove(&id).map(|len| (id, len))).collect()
        };
        for (id, len) in done {
            let path = self.segments_dir.join(segment::file_name(id));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!("queue: cannot delete delivered segment {}: {e}", path.display());
                    // Still on disk: counted again, and tried again at the next collection.
                    lock(&self.segments).insert(id, len);
                    continue;
                }
            }
            self.used.fetch_sub(len, Ordering::AcqRel);
            tracing::debug!(segment = id, bytes = len, "queue: segment delivered to every backend, deleted");
        }
    }
}

/// Takes appends; cheap to clone. When every clone is gone, the writer finishes what it was given and stops.
#[derive(Clone)]
pub(crate) struct Appender {
    tx: mpsc::Sender<writer::Append>,
    clock: WallClock,
}

impl Appender {
    /// Appends one request's chunks as records and waits until they are durable (all of them or none).
    pub(crate) async fn append(
        &self,
        kind: SignalKind,
        chunks: Vec<(Bytes, u64)>,
        headers: &[(String, String)],
    ) -> Result<(), QueueError> {
        let enqueued_ms = self.clock.now_ms();
        let records = chunks
            .into_iter()
            .map(|(payload, items)| Record { kind, enqueued_ms, items, headers: headers.to_vec(), payload })
            .collect();
        let (reply, answer) = oneshot::channel();
        self.tx.send(writer::Append { records, reply }).await.map_err(|_| QueueError::Closed)?;
        answer.await.unwrap_or(Err(QueueError::Closed))
    }
}

/// An open queue: its shared state and the writer thread.
pub(crate) struct Queue {
    shared: Arc<Shared>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    _lock: File,
}

/// A backend the queue delivers to: its label and the signals it takes.
#[derive(Debug, Clone)]
pub(crate) struct QueueBackend {
    /// The label of logs, metrics and the cursor file.
    pub label: String,
    /// Which signals, by [`SignalKind::index`].
    pub signals: [bool; SignalKind::COUNT],
}

impl Queue {
    /// Opens (or creates) the queue at `config.dir` for `backends`: takes the lock, recovers the segments (torn
    /// tails cut, corrupt segments quarantined) and the cursors, and starts the writer on a new segment.
    pub(crate) fn open(
        config: &QueueConfig,
        backends: &[QueueBackend],
        telemetry: Arc<Telemetry>,
    ) -> Result<(Queue, Appender), OpenError> {
        Queue::open_with_clock(config, backends, telemetry, WallClock::system())
    }

    /// [`Queue::open`] with the clock that dates and ages records.
    pub(crate) fn open_with_clock(
        config: &QueueConfig,
        backends: &[QueueBackend],
        telemetry: Arc<Telemetry>,
        clock: WallClock,
    ) -> Result<(Queue, Appender), OpenError> {
        let dir = &config.dir;
        let (segments_dir, cursors_dir, quarantine_dir) =
            (dir.join("segments"), dir.join("cursors"), dir.join("quarantine"));
        for d in [dir, &segments_dir, &cursors_dir, &quarantine_dir] {
            std::fs::create_dir_all(d).map_err(io_at(d))?;
        }
        let lock_path = dir.join("lock");
        let lock_file =
            OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io_at(&lock_path))?;
        match rustix::fs::flock(&lock_file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(OpenError::Locked(dir.clone())),
            Err(e) => return Err(OpenError::Io { path: lock_path, source: e.into() }),
        }
        let gauges =
            telemetry.register_queue(config.max_bytes, &backends.iter().map(|b| b.label.clone()).collect::<Vec<_>>());

        let recovered = recover::recover(&segments_dir, &cursors_dir, &quarantine_dir, backends, &telemetry)?;
        // Past every id seen, quarantined ones too: a new segment never takes an old one's name.
        let next_id = recovered.last_id + 1;
        let used = recovered.segments.values().sum();
        let readers = backends
            .iter()
            .zip(recovered.cursors)
            .zip(recovered.backlog)
            .map(|((b, cursor), backlog)| ReaderState {
                label: b.label.clone(),
                signals: b.signals,
                cursor_path: cursor::path(&cursors_dir, &b.label),
                durable: Mutex::new(cursor.unwrap_or(Pos { segment: 0, offset: 0 })),
                backlog_items: AtomicI64::new(backlog as i64),
                oldest_ms: AtomicU64::new(0),
            })
            .collect();
        let (committed, _) = watch::channel(Pos { segment: next_id, offset: 0 });
        let shared = Arc::new(Shared {
            segments_dir,
            max_bytes: config.max_bytes,
            used: AtomicU64::new(used),
            segments: Mutex::new(recovered.segments),
            committed,
            readers,
            failing: AtomicBool::new(false),
            telemetry,
            clock: clock.clone(),
            drain_until: Mutex::new(None),
        });
        // The gauges are read at each scrape, through a weak handle: the registry outlives no queue.
        let weak = Arc::downgrade(&shared);
        shared.telemetry.on_scrape(move || {
            if let Some(shared) = weak.upgrade() {
                shared.observe(&gauges);
            }
        });
        let file = writer::Writer::create(&shared, next_id).map_err(io_at(&shared.segments_dir))?;
        shared.collect_garbage();
        let writer = writer::Writer {
            shared: Arc::clone(&shared),
            segment_bytes: segment_bytes(config.max_bytes),
            id: next_id,
            file,
            synced: 0,
        };
        let (tx, rx) = mpsc::channel(WRITER_CHANNEL_CAPACITY);
        let thread = std::thread::Builder::new()
            .name("queue-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(io_at(dir))?;
        let queue = Queue { shared, writer: Mutex::new(Some(thread)), _lock: lock_file };
        Ok((queue, Appender { tx, clock }))
    }

    /// Whether the queue accepts data now; why not, if not.
    pub(crate) fn accepting(&self) -> Result<(), String> {
        if lock(&self.writer).as_ref().is_none_or(std::thread::JoinHandle::is_finished) {
            return Err("the queue writer has stopped".into());
        }
        let used = self.shared.used.load(Ordering::Acquire);
        if used >= self.shared.max_bytes {
            return Err(format!("the durable queue is full ({used} of {} bytes)", self.shared.max_bytes));
        }
        if self.shared.failing.load(Ordering::Acquire) {
            return Err("the durable queue cannot write to its directory (disk full?)".into());
        }
        Ok(())
    }

    /// Lets readers of outputs with batches of their own (an archive) told to stop export what they have read until
    /// `deadline`: every open batch goes, with the last piece of every open unit (an archive's open objects are
    /// completed at shutdown), and the cursors pass what was delivered. Without it, and for other outputs, a
    /// stopping reader ends at once and leaves what it read to the next start.
    pub(crate) fn drain_until(&self, deadline: tokio::time::Instant) {
        *lock(&self.shared.drain_until) = Some(deadline);
    }

    /// Waits (on the blocking pool) for the writer to answer every append it was given; call after every
    /// [`Appender`] is dropped.
    pub(crate) async fn close(&self) {
        let thread = lock(&self.writer).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Segments are an eighth of the queue, so a backend that is behind frees disk in steps of an eighth; within
/// bounds that keep the file count low and deletion prompt.
fn segment_bytes(max_bytes: u64) -> u64 {
    (max_bytes / 8).clamp(64 * 1024, 32 * 1024 * 1024)
}

#[cfg(test)]
mod tests;
