//! The appender: one thread owns the active segment and commits appends in groups.
//!
//! Group commit: the thread takes every append waiting in its channel, writes their frames, then makes them
//! durable with one `fdatasync` and answers them all. While it syncs, new appends queue up and form the next
//! group, so one sync serves as many requests as arrive during one sync, and acks stay fast under load.
//!
//! Failure rules: an append is answered Ok only after the sync that covers it succeeded. A failed write is cut off
//! again (`set_len` to the length before it), so a full disk never leaves a partial frame in the middle of the log.
//! After a failed sync the state of the written pages is unknown (fsyncgate): the appends are refused and the
//! segment is cut back to its last synced length, or, if that fails, closed and a new one begun (its unsynced tail
//! may then be read, which can duplicate but never lose). Full (or out of space): the segment is closed so that the
//! readers can free it once they pass it; the active segment is never deleted.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
#[allow(clippy::disallowed_types)] // see `finish`
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::cursor::sync_dir;
use super::record::{encode, Record};
use super::segment::{file_name, Pos};
use super::{QueueError, Shared};

/// One request's records, appended all or none.
pub(super) struct Append {
    pub(super) records: Vec<Record>,
    pub(super) reply: oneshot::Sender<Result<(), QueueError>>,
}

pub(super) struct Writer {
    pub(super) shared: Arc<Shared>,
    pub(super) segment_bytes: u64,
    pub(super) id: u64,
    pub(super) file: File,
    /// Bytes of the active segment known durable.
    pub(super) synced: u64,
}

impl Writer {
    /// Creates segment `id` (durably: its directory entry is synced too).
    pub(super) fn create(shared: &Shared, id: u64) -> io::Result<File> {
        let path: PathBuf = shared.segments_dir.join(file_name(id));
        let file = OpenOptions::new().create_new(true).append(true).open(&path)?;
        sync_dir(&path)?;
        shared.segment_created(id);
        Ok(file)
    }

    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Append>) {
        while let Some(first) = rx.blocking_recv() {
            let mut group = vec![first];
            while let Ok(more) = rx.try_recv() {
                group.push(more);
            }
            self.commit(group);
        }
        tracing::debug!("queue writer: no more appends");
    }

    fn commit(&mut self, group: Vec<Append>) {
        let mut written: Vec<Append> = Vec::with_capacity(group.len());
        let mut len = self.synced;
        for append in group {
            let frames: Vec<Vec<u8>> = append.records.iter().map(encode).collect();
            let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
            if let Err(e) = self.shared.admit(bytes + (len - self.synced)) {
                self.finish(&mut written, len);
                self.close_segment();
                len = self.synced;
                let _ = append.reply.send(Err(e));
                continue;
            }
            if len > 0 && len + bytes > self.segment_bytes {
                self.finish(&mut written, len);
                self.roll();
                len = self.synced;
            }
            match frames.iter().try_for_each(|f| self.file.write_all(f)) {
                Ok(()) => {
                    len += bytes;
                    written.push(append);
                }
                Err(e) => {
                    // Cut the partial frames off again, so the log stays a sequence of whole records.
                    if let Err(cut) = self.file.set_len(len) {
                        tracing::error!("queue: cannot cut a failed append off segment {}: {cut}", self.id);
                    }
                    self.shared.telemetry.queue_refused(if is_no_space(&e) { "no_space" } else { "io_error" }, 1);
                    tracing::warn!("queue: append failed, answering 503: {e}");
                    self.finish(&mut written, len);
                    self.close_segment();
                    len = self.synced;
                    let _ = append.reply.send(Err(QueueError::Io(e.to_string())));
                }
            }
        }
        self.finish(&mut written, len);
    }

    /// Makes the appends written so far (the active segment up to `len`) durable with one sync, then answers them.
    // The writer is an OS thread of its own, outside the runtime, timing the disk's real fsync: tokio's clock (paused
    // in tests) is the wrong one here.
    #[allow(clippy::disallowed_types)]
    fn finish(&mut self, written: &mut Vec<Append>, len: u64) {
        if written.is_empty() {
            return;
        }
        let started = Instant::now();
        let synced = self.file.sync_data();
        self.shared.telemetry.queue_fsync(started.elapsed());
        match synced {
            Ok(()) => {
                self.shared.grown(self.id, len - self.synced);
                self.synced = len;
                for append in written.iter() {
                    for record in &append.records {
                        self.shared.appended(record);
                    }
                }
                self.shared.publish(Pos { segment: self.id, offset: len });
                for append in written.drain(..) {
                    let _ = append.reply.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!("queue: fdatasync of segment {} failed, answering 503: {e}", self.id);
                self.shared.telemetry.queue_refused("io_error", 1);
                let cut_back = self.file.set_len(self.synced).and_then(|()| self.file.sync_data());
                if cut_back.is_err() {
                    // Unknown tail: never append after it; readers may see it (duplicates, not losses).
                    self.shared.grown(self.id, len - self.synced);
                    self.synced = len;
                    self.roll();
                }
                for append in written.drain(..) {
                    let _ = append.reply.send(Err(QueueError::Io(e.to_string())));
                }
            }
        }
    }

    /// When the queue is full or the disk is, a segment with data is closed, so that it can be deleted as soon
    /// as every reader has passed it.
    fn close_segment(&mut self) {
        if self.synced > 0 {
            self.roll();
        }
    }

    /// Begins the next segment; the current one ends at its synced length.
    fn roll(&mut self) {
        match Writer::create(&self.shared, self.id + 1) {
            Ok(file) => {
                self.file = file;
                self.id += 1;
                self.synced = 0;
                self.shared.publish(Pos { segment: self.id, offset: 0 });
            }
            Err(e) => tracing::warn!("queue: cannot begin segment {}: {e}; appending to {}", self.id + 1, self.id),
        }
    }
}

fn is_no_space(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}
