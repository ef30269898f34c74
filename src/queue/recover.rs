//! Start-up recovery of the queue directory: what survived the previous run, and what each backend has still to get.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::Path;

use super::segment::{self, Pos};
use super::{cursor, io_at, now_ms, OpenError, QueueBackend};
use crate::telemetry::Telemetry;

/// What start-up found on disk.
pub(super) struct Recovered {
    /// Size of each readable segment, by id.
    pub(super) segments: BTreeMap<u64, u64>,
    /// The highest segment id seen, quarantined ones included.
    pub(super) last_id: u64,
    /// Each backend's stored cursor, in the order of the backends; `None`: none (or unreadable), deliver from the oldest.
    pub(super) cursors: Vec<Option<Pos>>,
    /// Items each backend has still to receive.
    pub(super) backlog: Vec<u64>,
}

/// Replays the segments: cuts torn tails, quarantines corrupt segments, loads the cursors and counts each backend's
/// backlog.
pub(super) fn recover(
    segments_dir: &Path,
    cursors_dir: &Path,
    quarantine_dir: &Path,
    backends: &[QueueBackend],
    telemetry: &Telemetry,
) -> Result<Recovered, OpenError> {
    let cursors: Vec<Option<Pos>> = backends
        .iter()
        .map(|b| match cursor::load(&cursor::path(cursors_dir, &b.label)) {
            Ok(pos) => Some(pos),
            Err(cursor::LoadError::Missing) => None,
            Err(e) => {
                tracing::warn!(backend = %b.label, "queue: {e}; delivering to it from the oldest queued data");
                None
            }
        })
        .collect();
    let mut backlog = vec![0u64; backends.len()];
    let mut segments = BTreeMap::new();
    let (mut replayed, mut replayed_items) = (0u64, 0u64);
    let mut last_id = 0;
    for (id, path) in segment::list(segments_dir).map_err(io_at(segments_dir))? {
        last_id = id;
        let (scanned, records) = segment::scan(id, &path, |pos, record| {
            let mut wanted = false;
            for (i, b) in backends.iter().enumerate() {
                if b.signals[record.kind.index()] && cursors[i].is_none_or(|c| pos >= c) {
                    backlog[i] += record.items;
                    wanted = true;
                }
            }
            if wanted {
                replayed += 1;
                replayed_items += record.items;
            }
        })
        .map_err(io_at(&path))?;
        match scanned {
            segment::Scanned::Clean => {}
            segment::Scanned::TornTail { valid_len } => {
                tracing::warn!(segment = id, valid_len, "queue: torn tail (an append cut by a crash) truncated");
                let file = OpenOptions::new().write(true).open(&path).map_err(io_at(&path))?;
                file.set_len(valid_len).and_then(|()| file.sync_all()).map_err(io_at(&path))?;
            }
            segment::Scanned::Corrupt { why } => {
                let to = quarantine_dir.join(format!("{}.{}", segment::file_name(id), now_ms()));
                std::fs::rename(&path, &to).map_err(io_at(&path))?;
                let _ = cursor::sync_dir(&path).and_then(|()| cursor::sync_dir(&to));
                telemetry.queue_quarantined(records + 1);
                tracing::error!(
                    segment = id,
                    records_readable = records,
                    "queue: corrupt segment quarantined to {} ({why}); its records are not delivered",
                    to.display()
                );
                continue;
            }
        }
        let len = std::fs::metadata(&path).map_err(io_at(&path))?.len();
        segments.insert(id, len);
    }
    telemetry.queue_replayed(replayed);
    if replayed > 0 {
        tracing::info!(records = replayed, items = replayed_items, "queue: data from an earlier run to deliver");
    }
    Ok(Recovered { segments, last_id, cursors, backlog })
}
