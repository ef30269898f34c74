//! Reading the log for a reader: records in order across segments, never past what the writer has made durable.

use super::segment::{self, Next, Pos, SegmentReader};
use super::{Record, Shared};

/// Reads records from `read` (up to `committed`) until about `max_bytes` are read or the durable log ends.
pub(super) fn read_chunk(
    shared: &Shared,
    reader: &mut Option<SegmentReader>,
    read: &mut Pos,
    committed: Pos,
    max_bytes: usize,
) -> std::io::Result<Vec<(Pos, Record)>> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    loop {
        if reader.as_ref().is_none_or(|r| r.id != read.segment) {
            let Some(id) = shared.first_segment_from(read.segment) else { return Ok(out) };
            if id > committed.segment {
                return Ok(out);
            }
            if id != read.segment {
                *read = Pos { segment: id, offset: 0 };
            }
            let path = shared.segments_dir.join(segment::file_name(id));
            *reader = Some(SegmentReader::open(id, &path, read.offset)?);
        }
        let Some(r) = reader.as_mut() else { return Ok(out) };
        let closed = r.id < committed.segment;
        let limit = if closed {
            std::fs::metadata(shared.segments_dir.join(segment::file_name(r.id)))?.len()
        } else {
            committed.offset
        };
        while bytes < max_bytes {
            match r.next(limit)? {
                Next::Record(record, len) => {
                    bytes += len as usize;
                    out.push((*read, record));
                    read.offset += len;
                }
                other => {
                    if !closed {
                        return Ok(out);
                    }
                    if !matches!(other, Next::End) {
                        tracing::warn!(segment = r.id, "queue: unreadable tail of a closed segment skipped: {other:?}");
                    }
                    let next = shared.segment_after(r.id).unwrap_or(committed.segment);
                    *read = Pos { segment: next, offset: 0 };
                    *reader = None;
                    break;
                }
            }
        }
        if bytes >= max_bytes {
            return Ok(out);
        }
    }
}
