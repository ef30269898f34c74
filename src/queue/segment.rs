//! Segment files: naming, sequential reading, and the recovery scan.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::record::{self, DecodeError, FrameHeader, Record, FRAME_HEADER, MAX_BODY};

/// A place in the log: a segment and a byte offset in it (always at a record boundary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Pos {
    /// Segment id (segments are numbered in the order they were created).
    pub segment: u64,
    /// Byte offset of a record's frame in the segment.
    pub offset: u64,
}

/// The file name of segment `id`: zero-padded so names sort like ids.
pub(super) fn file_name(id: u64) -> String {
    format!("{id:020}.seg")
}

/// The id of a segment file name, if it is one.
pub(super) fn parse_name(name: &str) -> Option<u64> {
    name.strip_suffix(".seg").filter(|s| s.len() == 20).and_then(|s| s.parse().ok())
}

/// The segments in `dir`, by id.
pub(super) fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(id) = entry.file_name().to_str().and_then(parse_name) {
            found.push((id, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// What reading the next frame found.
#[derive(Debug)]
pub(super) enum Next {
    /// A record and its frame's length.
    Record(Record, u64),
    /// No more bytes before the limit.
    End,
    /// A frame that does not fit before the limit, or a bad checksum on the frame that ends exactly at the limit:
    /// what a crash during an append leaves.
    Torn,
    /// A bad frame with more data after it.
    Corrupt(String),
}

/// Reads the frames of one segment in order.
#[derive(Debug)]
pub(super) struct SegmentReader {
    /// The segment's id.
    pub id: u64,
    file: BufReader<File>,
    offset: u64,
}

impl SegmentReader {
    /// Opens segment `path` at `offset` (a record boundary).
    pub(super) fn open(id: u64, path: &Path, offset: u64) -> io::Result<SegmentReader> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(SegmentReader { id, file: BufReader::with_capacity(64 * 1024, file), offset })
    }

    /// The offset of the next frame.
    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads the frame at the current offset, if it ends before `limit` (the file's length, or the committed end
    /// of the active segment).
    pub(super) fn next(&mut self, limit: u64) -> io::Result<Next> {
        if self.offset >= limit {
            return Ok(Next::End);
        }
        if self.offset + FRAME_HEADER as u64 > limit {
            return Ok(Next::Torn);
        }
        let mut header = [0u8; FRAME_HEADER];
        self.file.read_exact(&mut header)?;
        let header = FrameHeader::parse(header);
        let end = self.offset + header.frame_len();
        if header.len > MAX_BODY {
            // A length no append writes: garbage, not a record cut short.
            return Ok(if end >= limit { Next::Torn } else { Next::Corrupt("impossible record length".into()) });
        }
        if end > limit {
            self.file.seek_relative(-(FRAME_HEADER as i64))?;
            return Ok(Next::Torn);
        }
        let mut body = vec![0u8; header.len as usize];
        self.file.read_exact(&mut body)?;
        match record::decode(header, Bytes::from(body)) {
            Ok(record) => {
                self.offset = end;
                Ok(Next::Record(record, header.frame_len()))
            }
            Err(DecodeError::Checksum) if end == limit => Ok(Next::Torn),
            Err(e) => Ok(Next::Corrupt(format!("record at offset {}: {e}", self.offset))),
        }
    }
}

/// What the recovery scan of one segment found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Scanned {
    /// Every byte is a valid record.
    Clean,
    /// Valid records up to `valid_len`, then a torn tail.
    TornTail {
        /// Length of the valid prefix.
        valid_len: u64,
    },
    /// A corrupt record.
    Corrupt {
        /// What is wrong, and where.
        why: String,
    },
}

/// Reads every record of segment `path` (streaming: one record in memory at a time), calling `each` with its
/// position and the record.
pub(super) fn scan(id: u64, path: &Path, mut each: impl FnMut(Pos, &Record)) -> io::Result<(Scanned, u64)> {
    let len = std::fs::metadata(path)?.len();
    let mut reader = SegmentReader::open(id, path, 0)?;
    let mut records = 0u64;
    loop {
        let at = Pos { segment: id, offset: reader.offset() };
        match reader.next(len)? {
            Next::Record(record, _) => {
                records += 1;
                each(at, &record);
            }
            Next::End => return Ok((Scanned::Clean, records)),
            Next::Torn => return Ok((Scanned::TornTail { valid_len: at.offset }, records)),
            Next::Corrupt(why) => return Ok((Scanned::Corrupt { why }, records)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::record::encode;
    use crate::signal::SignalKind;
    use std::io::Write;

    fn record(n: u8) -> Record {
        Record {
            kind: SignalKind::Traces,
            enqueued_ms: u64::from(n),
            items: 1,
            headers: Vec::new(),
            payload: Bytes::from(vec![n; 50]),
        }
    }

    fn segment(dir: &Path, records: u8) -> (PathBuf, Vec<u64>) {
        let path = dir.join(file_name(7));
        let mut file = File::create(&path).unwrap();
        let mut ends = Vec::new();
        let mut at = 0u64;
        for n in 0..records {
            let frame = encode(&record(n));
            at += frame.len() as u64;
            file.write_all(&frame).unwrap();
            ends.push(at);
        }
        (path, ends)
    }

    fn scan_all(path: &Path) -> (Scanned, u64) {
        scan(7, path, |_, _| {}).unwrap()
    }

    #[test]
    fn names_sort_like_ids() {
        assert_eq!(parse_name(&file_name(42)), Some(42));
        assert!(file_name(9) < file_name(10));
        assert_eq!(parse_name("00000000000000000042.seg.corrupt"), None);
    }

    #[test]
    fn a_clean_segment_scans_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = segment(dir.path(), 5);
        let mut seen = Vec::new();
        let (scanned, n) = scan(7, &path, |pos, r| seen.push((pos.offset, r.enqueued_ms))).unwrap();
        assert_eq!((scanned, n), (Scanned::Clean, 5));
        assert_eq!(seen.iter().map(|s| s.1).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_segment_cut_anywhere_in_its_last_record_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (path, ends) = segment(dir.path(), 3);
        let full = std::fs::read(&path).unwrap();
        for cut in (ends[1] + 1)..ends[2] {
            std::fs::write(&path, &full[..cut as usize]).unwrap();
            assert_eq!(scan_all(&path), (Scanned::TornTail { valid_len: ends[1] }, 2), "cut at {cut}");
        }
    }

    #[test]
    fn garbage_in_the_last_record_is_a_torn_tail_and_in_an_earlier_one_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (path, ends) = segment(dir.path(), 3);
        let full = std::fs::read(&path).unwrap();
        let mut last = full.clone();
        last[ends[2] as usize - 3] ^= 0x40;
        std::fs::write(&path, &last).unwrap();
        assert_eq!(scan_all(&path), (Scanned::TornTail { valid_len: ends[1] }, 2));
        let mut middle = full;
        middle[ends[0] as usize + 20] ^= 0x01;
        std::fs::write(&path, &middle).unwrap();
        assert!(matches!(scan_all(&path), (Scanned::Corrupt { .. }, 1)));
    }

    #[test]
    fn reading_stops_at_the_committed_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (path, ends) = segment(dir.path(), 3);
        let mut reader = SegmentReader::open(7, &path, 0).unwrap();
        assert!(matches!(reader.next(ends[1]).unwrap(), Next::Record(_, _)));
        assert!(matches!(reader.next(ends[1]).unwrap(), Next::Record(_, _)));
        assert!(matches!(reader.next(ends[1]).unwrap(), Next::End));
        assert!(matches!(reader.next(ends[2]).unwrap(), Next::Record(r, _) if r.enqueued_ms == 2));
    }
}
