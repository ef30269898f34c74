//! The file input: log files tailed into OTLP log records, at least once from file to backend.
//!
//! ```text
//!  discover (globs, rescanned) -> scan (identity, rotation, truncation) -> tail (read, lines, multiline)
//!     -> record (parse, attributes) -> deliver (memory, sink, backoff) -> positions (saved after the answer)
//! ```
//!
//! Invariants:
//! - A file's position is saved only up to the end of records the sink acknowledged (direct: every backend; queued:
//!   fsynced), after the answer: a crash re-sends at most the batch in flight and what was read after the last
//!   save; a stop (SIGTERM) saves after the last answer, so nothing comes twice.
//! - One batch is in flight at a time and is kept until the sink takes it: a refusing sink pauses reading, and a
//!   refused line is never dropped nor read again from the file.
//! - A saved position is trusted only when the file's bytes still match it (`identity`); a truncated file's unread
//!   bytes are read from its copy or counted as lost, never silently skipped.
//! - Within a batch, each file's records are in file order.

mod deliver;
mod discover;
mod identity;
mod lines;
mod multiline;
mod parse;
mod positions;
mod record;
mod scan;
mod tail;
mod wake;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

pub(crate) use deliver::Deliver;
pub use positions::PositionsError;

use crate::config::{FileInputConfig, FileParser};
use crate::ingest::Ingest;
use crate::telemetry::{FileMetrics, Telemetry};
use deliver::Fate;
use discover::Globs;
use parse::LineParser;
use positions::{Positions, Saved};
use record::Parsing;
use scan::Files;
use tail::{Batch, Reading, Shape};

/// How often the globs are expanded again: a new file is read within about this (plus a poll).
const SCAN_INTERVAL: Duration = Duration::from_millis(500);
/// How often files are checked for new bytes when there was nothing to read (sooner when inotify says a watched
/// directory changed: [`wake`]).
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Most bytes of records in one submission (less when the memory limit or the export size is small).
const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// One file input, opened (its positions read) and ready to run.
pub(crate) struct FileInput {
    name: String,
    globs: Globs,
    include: Vec<String>,
    shape: Shape,
    start_at: crate::config::StartAt,
    positions: Positions,
    saved: Option<Vec<Saved>>,
    max_batch_bytes: usize,
    metrics: FileMetrics,
    /// Held while the input exists: no other process saves these positions.
    _lock: std::fs::File,
}

impl FileInput {
    /// Opens the input's positions (an unreadable state directory, or positions another process holds, is a
    /// start-up error; a damaged positions file is set aside and logged, and its files read from their beginning:
    /// duplicates rather than loss).
    pub(crate) fn open(
        config: &FileInputConfig,
        memory_limit: usize,
        max_export_bytes: usize,
        telemetry: &Telemetry,
    ) -> Result<FileInput, PositionsError> {
        let positions = Positions::open(&config.state_dir, &config.name)?;
        let lock = positions.lock()?;
        let saved = match positions.load() {
            Ok(saved) => saved,
            Err(e @ PositionsError::Corrupt { .. }) => {
                let aside = positions
                    .set_aside()
                    .map_err(|source| PositionsError::Io { path: positions.path().to_path_buf(), source })?;
                tracing::error!(input = %config.name, aside = %aside.display(),
                    "{e}; set aside, and every file is read from its beginning (lines may come twice, none is lost)");
                Some(Vec::new())
            }
            Err(e) => return Err(e),
        };
        let parser = match (config.parser, &config.regex) {
            (FileParser::Plain, _) => LineParser::Plain,
            (FileParser::Json, _) => LineParser::Json,
            (FileParser::Regex, Some(re)) => LineParser::Regex(re.clone()),
            (FileParser::Regex, None) => LineParser::Plain,
        };
        Ok(FileInput {
            name: config.name.clone(),
            globs: Globs::new(&config.include, &config.exclude),
            include: config.include.clone(),
            shape: Shape {
                parsing: Parsing { parser, time_format: config.time_format.clone() },
                encoding: config.encoding,
                max_line_bytes: config.max_line_bytes,
                multiline_start: config.multiline_start.clone(),
            },
            start_at: config.start_at,
            positions,
            saved,
            max_batch_bytes: MAX_BATCH_BYTES.min(memory_limit / 4).min(max_export_bytes / 2).max(1),
            metrics: telemetry.file_input(&config.name),
            _lock: lock,
        })
    }

    /// Reads until `stopping` resolves; then waits up to `drain` for the batch in flight, saves the positions of
    /// everything acknowledged and returns.
    pub(crate) async fn run(
        mut self,
        ingest: Arc<Ingest>,
        stopping: impl std::future::Future<Output = ()> + Send + 'static,
        drain: Duration,
    ) {
        let (stop_tx, mut stop) = watch::channel(false);
        let watcher = tokio::spawn(async move {
            stopping.await;
            let _ = stop_tx.send(true);
        });
        let deliver = Deliver { ingest, metrics: self.metrics.clone(), input: self.name.clone() };
        let mut files = Files::new();
        let now = Instant::now();
        files.first_scan(&self.globs, self.saved.take().as_deref(), self.start_at, now);
        if files.tracked.is_empty() {
            tracing::warn!(input = %self.name, include = ?self.include,
                "no file matches the include globs yet; files that appear are read from their beginning");
        } else {
            tracing::info!(input = %self.name, files = files.tracked.len(), "file input started");
        }
        // Saved at once: the next start is no longer a first start, whatever happens before the first batch.
        self.save(&files).await;
        let wake = wake::Wake::new();
        let mut watched = std::collections::HashSet::new();
        let mut watch = |files: &Files| {
            for t in files.tracked.values() {
                if let Some(dir) = std::path::Path::new(&t.source.path).parent() {
                    if !watched.contains(dir) {
                        wake.watch(dir);
                        watched.insert(dir.to_path_buf());
                    }
                }
            }
        };
        watch(&files);
        let mut next_scan = now + SCAN_INTERVAL;
        let mut cursor = 0usize;
        while !*stop.borrow() {
            let now = Instant::now();
            let mut batch = Batch::new(self.max_batch_bytes);
            if now >= next_scan {
                files.rescan(&self.globs, &self.shape, &mut batch, now);
                watch(&files);
                if files.release(now) > 0 {
                    self.save(&files).await;
                }
                next_scan = now + SCAN_INTERVAL;
            }
            // Every file in turn, starting with a different one each round, so a busy file cannot starve others.
            let keys: Vec<_> = files.tracked.keys().copied().collect();
            for i in 0..keys.len() {
                let key = keys[(cursor + i) % keys.len()];
                let Some(t) = files.tracked.get_mut(&key) else { continue };
                let force = t
                    .gone_since
                    .is_some_and(|since| now.duration_since(since.max(t.last_growth())) >= scan::RELEASE_AFTER);
                match t.read(&self.shape, &mut batch, now, force) {
                    Ok(Reading::Truncated) => files.truncated(key, &self.globs, &self.shape, &mut batch, now),
                    Ok(Reading::Exhausted | Reading::Full) => {}
                    Err(e) => tracing::warn!(input = %self.name, path = %t.source.path, "reading failed: {e}"),
                }
                if batch.is_full() {
                    cursor = cursor.wrapping_add(i + 1);
                    break;
                }
            }
            self.observe(&mut files, &batch);
            if batch.records.is_empty() {
                let mut due = (now + POLL_INTERVAL).min(next_scan);
                if let Some(held) = files.tracked.values().filter_map(tail::Tracked::deadline).min() {
                    due = due.min(held.max(now));
                }
                tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    () = wake.changed() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let items = batch.records.len() as u64;
            let commits = std::mem::take(&mut batch.commits);
            let payload = record::encode(std::mem::take(&mut batch.records));
            let delivery = deliver.deliver(payload, items, &mut stop, drain);
            match self.watching(delivery, &mut files, &wake).await {
                Fate::Done => {
                    for (key, generation, end) in commits {
                        if let Some(t) = files.tracked.get_mut(&key).filter(|t| t.generation == generation) {
                            t.acked = t.acked.max(end);
                        }
                    }
                    let saving = self.save(&files);
                    self.watching(saving, &mut files, &wake).await;
                }
                Fate::Stopped => break,
            }
        }
        self.save(&files).await;
        watcher.abort();
        tracing::info!(input = %self.name, "file input stopped; positions of every acknowledged line saved");
    }

    fn observe(&self, files: &mut Files, batch: &Batch) {
        // Counted once per batch (and with an empty batch while one is out: gauges and truncation losses).
        self.metrics.read_bytes.increment(batch.read_bytes);
        self.metrics.parse_failures.increment(batch.parse_failures);
        self.metrics.long_lines.increment(batch.long_lines);
        self.metrics.truncated_bytes.increment(std::mem::take(&mut files.truncated_bytes));
        self.metrics.watched.set((files.tracked.len() + files.suspects.len()) as f64);
        self.metrics.lag_bytes.set(files.tracked.values().map(tail::Tracked::lag).sum::<u64>() as f64);
    }

    /// Runs `work` (a delivery, a save) while still watching the files' sizes, on every change inotify reports and
    /// every poll: a copytruncate meanwhile then knows how much it lost (logrotate truncates moments after copying,
    /// while the input may be waiting for an answer), and the lag gauge shows an outage's backlog.
    async fn watching<T>(&self, work: impl std::future::Future<Output = T>, files: &mut Files, wake: &wake::Wake) -> T {
        tokio::pin!(work);
        let mut poll = tokio::time::interval_at(Instant::now() + POLL_INTERVAL, POLL_INTERVAL);
        loop {
            tokio::select! {
                done = &mut work => return done,
                () = wake.changed() => {}
                _ = poll.tick() => {}
            }
            files.watch_sizes();
            self.observe(files, &Batch::default());
        }
    }

    /// Saves the positions of every acknowledged line. The returned future does not borrow `files`.
    fn save(&self, files: &Files) -> impl std::future::Future<Output = ()> + use<'_> {
        let saved = files.saved();
        let positions = self.positions.clone();
        async move {
            match tokio::task::spawn_blocking(move || positions.save(&saved)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(input = %self.name, "saving read positions failed (lines may come twice after a crash): {e}")
                }
                Err(e) => tracing::error!(input = %self.name, "saving read positions failed: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests;
