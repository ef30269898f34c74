//! One file being read: its open descriptor, the bytes read but not yet made into lines, the multiline record in
//! progress, and three positions: what was read, what was handed to the sink (`sent`), and what the sink
//! acknowledged (`acked`, the only one ever saved).
//!
//! The descriptor stays open while the file is tracked, so a file renamed or deleted by rotation is still read to
//! its end through it; an open descriptor also keeps the inode from being reused while it is tracked.
//!
//! Every read checks that the file still holds the bytes already read (its first bytes, and the bytes just before
//! the read position, fetched by the same `pread` as the new bytes): a truncation is noticed by the next read even
//! when the file has grown back past the position since (copytruncate under a busy writer), instead of new bytes
//! being read from the middle of the next generation.

use std::fs::File;

use crate::proto::logs::v1::LogRecord;
use tokio::time::Instant;

use super::identity::{heads_agree, read_at, FileKey, CHECK_BYTES, HEAD_BYTES};
use super::lines::{next_line, Encoding};
use super::multiline::{Multiline, FLUSH_TIMEOUT};
use super::record::{self, Parsing, Source};

/// Bytes read from a file at once.
const READ_CHUNK: usize = 256 * 1024;
/// Bytes kept from before the read position. A copytruncate copy may end before it (logrotate copies, fsyncs the
/// copy, then truncates: lines written meanwhile were read here but are in no copy); the copy is recognised by its
/// last bytes when they fall in this window. 16 KiB is about 300 lines of 55 bytes, many times what a writer
/// appends during an fsync, and little memory per file.
pub(crate) const RECENT_BYTES: usize = 16 * 1024;

/// What a [`Tracked::read`] ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    /// The file has no more bytes for now.
    Exhausted,
    /// The batch filled up before the file was exhausted.
    Full,
    /// The file no longer holds the bytes read (truncated or rewritten): nothing was read from it; the caller
    /// looks for the copy ([`super::scan::Files::truncated`]).
    Truncated,
}

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
    /// The bytes just before `buf_start` (up to [`RECENT_BYTES`]).
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

    /// The bytes `[from, to)` when they were read (they lie in the kept window before `buf_start` or in the
    /// buffer), else `None`.
    pub(crate) fn known(&self, from: u64, to: u64) -> Option<Vec<u8>> {
        let first = self.buf_start.checked_sub(self.tail.len() as u64)?;
        if from < first || to > self.read_end() || from > to {
            return None;
        }
        let (a, b) = (usize::try_from(from - first).ok()?, usize::try_from(to - first).ok()?);
        let split = self.tail.len();
        let pick = |i: usize| if i < split { self.tail[i] } else { self.buf[i - split] };
        Some((a..b).map(pick).collect())
    }

    /// Whether the file still holds what was read from it: it is not shorter than it was seen to be, and it has its
    /// first bytes and the bytes before the read end. Notes its size and first bytes when it does (a truncation
    /// then knows how much it lost, and its copy is recognised even when nothing of it was read yet).
    pub(crate) fn intact(&mut self) -> bool {
        let Ok(meta) = self.file.metadata() else { return true };
        let end = self.read_end();
        // A file only shrinks by truncation: a smaller size is one even when nothing was read from it yet.
        if meta.len() < end.max(self.size) {
            return false;
        }
        let head = read_at(&self.file, 0, HEAD_BYTES).unwrap_or_default();
        let n = CHECK_BYTES.min(usize::try_from(end).unwrap_or(usize::MAX));
        let kept = head.starts_with(&self.head)
            && self
                .known(end - n as u64, end)
                .is_none_or(|b| read_at(&self.file, end - b.len() as u64, b.len()).is_ok_and(|found| found == b));
        if kept {
            self.size = self.size.max(meta.len());
            self.head = head;
        }
        kept
    }

    /// Whether a file with `head` and `size` bytes, whose `before(offset, n)` are its `n` bytes before `offset`,
    /// is a copy of this file's current generation: its first bytes are this file's, and its bytes before the
    /// shorter of its end and the read position are the ones read here (when they fall in the kept window).
    pub(crate) fn copied_by(&self, head: &[u8], size: u64, before: impl FnOnce(u64, usize) -> Option<Vec<u8>>) -> bool {
        if !heads_agree(&self.head, head) {
            return false;
        }
        if self.buf_start == 0 {
            // Nothing read yet: the first bytes are all there is to go by.
            return true;
        }
        let end = size.min(self.buf_start);
        let n = CHECK_BYTES.min(usize::try_from(end).unwrap_or(usize::MAX));
        match self.known(end - n as u64, end) {
            Some(mine) => before(end, n).is_some_and(|theirs| theirs == mine),
            None => false,
        }
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
    /// `force` flushes what is held (the file is being released or was truncated).
    pub(crate) fn read(
        &mut self,
        shape: &Shape,
        batch: &mut Batch,
        now: Instant,
        force: bool,
    ) -> std::io::Result<Reading> {
        let observed = record::now_nanos();
        if !self.intact() {
            return Ok(Reading::Truncated);
        }
        loop {
            let flush_partial = force || now.duration_since(self.last_growth) >= FLUSH_TIMEOUT;
            self.lines(shape, batch, observed, now, flush_partial && self.at_eof(), true);
            if batch.is_full() {
                return Ok(Reading::Full);
            }
            let room = READ_CHUNK.max(shape.max_line_bytes + 4).saturating_sub(self.buf.len()).min(READ_CHUNK);
            // The bytes before the read end come with the new ones, in one pread: if the file was truncated and
            // refilled since the check above, they differ, and nothing of the next generation is taken as ours.
            let end = self.read_end();
            let n = CHECK_BYTES.min(usize::try_from(end).unwrap_or(usize::MAX));
            let known = self.known(end - n as u64, end).unwrap_or_default();
            let mut bytes = read_at(&self.file, end - known.len() as u64, known.len() + room)?;
            if !bytes.starts_with(&known) {
                return Ok(Reading::Truncated);
            }
            bytes.drain(..known.len());
            if bytes.is_empty() {
                break;
            }
            batch.read_bytes += bytes.len() as u64;
            self.buf.extend_from_slice(&bytes);
            self.last_growth = now;
            self.size = self.size.max(self.read_end());
            if self.head.len() < HEAD_BYTES && self.buf_start < HEAD_BYTES as u64 {
                let head = read_at(&self.file, 0, HEAD_BYTES).unwrap_or_default();
                if head.starts_with(&self.head) {
                    self.head = head;
                }
            }
        }
        let flush_partial = force || now.duration_since(self.last_growth) >= FLUSH_TIMEOUT;
        self.lines(shape, batch, observed, now, flush_partial, true);
        if let Some(joined) = self.multiline.as_mut().and_then(|m| m.flush(now, force)) {
            self.emit(shape, batch, &joined.text, joined.end, observed);
        }
        Ok(if batch.is_full() { Reading::Full } else { Reading::Exhausted })
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
            self.tail.extend_from_slice(&consumed[consumed.len().saturating_sub(RECENT_BYTES)..]);
            let over = self.tail.len().saturating_sub(RECENT_BYTES);
            self.tail.drain(..over);
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
