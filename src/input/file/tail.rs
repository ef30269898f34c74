//! One file being read: its open descriptor, the bytes read but not yet made into lines, the multiline record in
//! progress, and three positions: what was read, what was handed to the sink (`sent`), and what the sink
//! acknowledged (`acked`, the only one ever saved).
//!
//! The descriptor stays open while the file is tracked, so a file renamed or deleted by rotation is still read to
//! its end through it; an open descriptor also keeps the inode from being reused while it is tracked.

use std::fs::File;

use crate::proto::logs::v1::LogRecord;
use tokio::time::Instant;

use super::identity::{read_at, FileKey, CHECK_BYTES, HEAD_BYTES};
use super::lines::{next_line, Encoding};
use super::multiline::{Multiline, FLUSH_TIMEOUT};
use super::record::{self, Parsing, Source};

/// Bytes read from a file at once.
const READ_CHUNK: usize = 256 * 1024;

/// How lines become records for one input.
#[derive(Debug)]
pub(crate) struct Shape {
    pub parsing: Parsing,
    pub encoding: Encoding,
    pub max_line_bytes: usize,
    pub multiline_start: Option<regex::Regex>,
}

/// Records on their way to the sink, and the file positions they complete.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub records: Vec<LogRecord>,
    pub bytes: usize,
    /// Per file (and generation): the end of its last record in this batch.
    pub commits: Vec<(FileKey, u64, u64)>,
    pub parse_failures: u64,
    pub long_lines: u64,
    pub read_bytes: u64,
    /// Most bytes before the batch is sent.
    pub max_bytes: usize,
}

/// Most records in one batch: the Collector's batch size.
const MAX_RECORDS: usize = 8192;

impl Batch {
    pub(crate) fn new(max_bytes: usize) -> Batch {
        Batch { max_bytes, ..Batch::default() }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.bytes >= self.max_bytes || self.records.len() >= MAX_RECORDS
    }

    fn push(&mut self, record: LogRecord, key: FileKey, generation: u64, end: u64) {
        self.bytes += record::size(&record);
        self.records.push(record);
        match self.commits.last_mut() {
            Some((k, g, e)) if *k == key && *g == generation => *e = end,
            _ => self.commits.push((key, generation, end)),
        }
    }
}

/// A tracked file.
#[derive(Debug)]
pub(crate) struct Tracked {
    pub key: FileKey,
    pub source: Source,
    pub file: File,
    /// The first bytes (refreshed while shorter than [`HEAD_BYTES`]).
    pub head: Vec<u8>,
    /// File offset of `buf[0]`: everything before it has been made into lines.
    pub buf_start: u64,
    buf: Vec<u8>,
    /// The bytes just before `buf_start` (up to [`CHECK_BYTES`]).
    pub tail: Vec<u8>,
    multiline: Option<Multiline>,
    in_long_line: bool,
    last_growth: Instant,
    /// The file's size when last seen.
    pub size: u64,
    /// End of the last record the sink acknowledged: the position saved.
    pub acked: u64,
    /// Bumped when the file is truncated: acknowledgements of records from before are then not positions in it.
    pub generation: u64,
    /// Whether the latest scan named it.
    pub found: bool,
    /// Since when no scan named it (renamed out of the globs, or deleted): it is read to its end, then released.
    pub gone_since: Option<Instant>,
}

impl Tracked {
    /// A file read from `offset`, whose records up to `acked` were acknowledged.
    pub(crate) fn new(key: FileKey, source: Source, file: File, offset: u64, acked: u64, now: Instant) -> Tracked {
        let head = read_at(&file, 0, HEAD_BYTES).unwrap_or_default();
        let tail = super::identity::bytes_before(&file, offset, CHECK_BYTES).unwrap_or_default();
        let size = file.metadata().map_or(offset, |m| m.len());
        Tracked {
            key,
            source,
            file,
            head,
            buf_start: offset,
            buf: Vec::new(),
            tail,
            multiline: None,
            in_long_line: false,
            last_growth: now,
            size,
            acked,
            generation: 0,
            found: true,
            gone_since: None,
        }
    }

    /// End of what was read into memory.
    pub(crate) fn read_end(&self) -> u64 {
        self.buf_start + self.buf.len() as u64
    }

    /// Bytes written but not acknowledged.
    pub(crate) fn lag(&self) -> u64 {
        self.size.saturating_sub(self.acked)
    }

    /// Whether a multiline record or a partial line is held in memory.
    pub(crate) fn holds_data(&self) -> bool {
        !self.buf.is_empty() || self.multiline.as_ref().is_some_and(Multiline::is_pending)
    }

    /// When held data becomes due without new bytes.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let partial = (!self.buf.is_empty()).then_some(self.last_growth + FLUSH_TIMEOUT);
        let joined = self.multiline.as_ref().and_then(Multiline::deadline);
        partial.into_iter().chain(joined).min()
    }

    /// Moves the multiline state and partial-line flags of a truncated file to the copy that continues it.
    pub(crate) fn hand_over(&mut self, to: &mut Tracked) {
        to.multiline = self.multiline.take();
        to.in_long_line = self.in_long_line;
        to.tail = self.tail.clone();
    }

    /// Starts over at offset 0 (the file was truncated): a new generation.
    pub(crate) fn restart(&mut self, now: Instant) {
        self.generation += 1;
        self.buf_start = 0;
        self.buf.clear();
        self.tail.clear();
        self.multiline = None;
        self.in_long_line = false;
        self.last_growth = now;
        self.acked = 0;
        self.head = read_at(&self.file, 0, HEAD_BYTES).unwrap_or_default();
        self.size = self.file.metadata().map_or(0, |m| m.len());
    }

    /// Reads new bytes and adds the records they complete to `batch` until it is full or the file has no more.
    /// `force` flushes what is held (the file is being released or was truncated). Returns whether the batch
    /// filled up before the file was exhausted.
    pub(crate) fn read(
        &mut self,
        shape: &Shape,
        batch: &mut Batch,
        now: Instant,
        force: bool,
    ) -> std::io::Result<bool> {
        let observed = record::now_nanos();
        loop {
            let flush_partial = force || now.duration_since(self.last_growth) >= FLUSH_TIMEOUT;
            self.lines(shape, batch, observed, now, flush_partial && self.at_eof(), true);
            if batch.is_full() {
                return Ok(true);
            }
            let room = READ_CHUNK.max(shape.max_line_bytes + 4).saturating_sub(self.buf.len()).min(READ_CHUNK);
            let bytes = read_at(&self.file, self.read_end(), room)?;
            if bytes.is_empty() {
                break;
            }
            batch.read_bytes += bytes.len() as u64;
            self.buf.extend_from_slice(&bytes);
            self.last_growth = now;
            self.size = self.size.max(self.read_end());
            if self.head.len() < HEAD_BYTES && self.buf_start < HEAD_BYTES as u64 {
                self.head = read_at(&self.file, 0, HEAD_BYTES).unwrap_or_default();
            }
        }
        let flush_partial = force || now.duration_since(self.last_growth) >= FLUSH_TIMEOUT;
        self.lines(shape, batch, observed, now, flush_partial, true);
        if let Some(joined) = self.multiline.as_mut().and_then(|m| m.flush(now, force)) {
            self.emit(shape, batch, &joined.text, joined.end, observed);
        }
        Ok(batch.is_full())
    }

    /// Flushes what is held in memory (partial line, multiline record) into `batch`, however full it is: the
    /// file was truncated, and these bytes exist nowhere else now.
    pub(crate) fn read_held(&mut self, shape: &Shape, batch: &mut Batch, now: Instant) {
        let observed = record::now_nanos();
        self.lines(shape, batch, observed, now, true, false);
        if let Some(joined) = self.multiline.as_mut().and_then(|m| m.flush(now, true)) {
            self.emit(shape, batch, &joined.text, joined.end, observed);
        }
    }

    /// When bytes last arrived.
    pub(crate) fn last_growth(&self) -> Instant {
        self.last_growth
    }

    fn at_eof(&self) -> bool {
        self.file.metadata().map_or(true, |m| m.len() <= self.read_end())
    }

    /// Makes the complete lines in `buf` into records (and, when `flush`, what is left).
    fn lines(&mut self, shape: &Shape, batch: &mut Batch, observed: u64, now: Instant, flush: bool, bounded: bool) {
        let mut used = 0;
        while !(bounded && batch.is_full()) {
            let Some(found) = next_line(shape.encoding, &self.buf[used..], shape.max_line_bytes, flush) else { break };
            let start = self.buf_start + used as u64;
            let bytes = &self.buf[used..used + found.len];
            let cut = !found.complete && self.buf.len() - used > shape.max_line_bytes;
            if cut && !self.in_long_line {
                batch.long_lines += 1;
            }
            self.in_long_line = cut;
            let text = shape.encoding.decode(shape.encoding.strip_ending(bytes), start == 0);
            used += found.len;
            let end = self.buf_start + used as u64;
            match (&mut self.multiline, &shape.multiline_start) {
                (Some(m), _) => {
                    if let Some(joined) = m.push(text, end, now) {
                        self.emit(shape, batch, &joined.text, joined.end, observed);
                    }
                }
                (None, Some(start)) => {
                    let mut m = Multiline::new(start.clone(), shape.max_line_bytes);
                    let first = m.push(text, end, now);
                    debug_assert!(first.is_none());
                    self.multiline = Some(m);
                }
                (None, None) => self.emit(shape, batch, &text, end, observed),
            }
        }
        if used > 0 {
            let consumed = &self.buf[..used];
            let keep_old = CHECK_BYTES.saturating_sub(consumed.len()).min(self.tail.len());
            let mut tail = self.tail[self.tail.len() - keep_old..].to_vec();
            tail.extend_from_slice(&consumed[consumed.len().saturating_sub(CHECK_BYTES)..]);
            self.tail = tail;
            self.buf.drain(..used);
            self.buf_start += used as u64;
        }
    }

    fn emit(&self, shape: &Shape, batch: &mut Batch, text: &str, end: u64, observed: u64) {
        let (record, failed) = record::build(&shape.parsing, &self.source, text, observed);
        batch.parse_failures += u64::from(failed);
        batch.push(record, self.key, self.generation, end);
    }
}
