//! The record format of queue segments.
//!
//! ```text
//! record  = len:u32le crc:u32le body[len]            crc = CRC-32 (IEEE) of body
//! body    = version:u8(=1) signal:u8 enqueued_ms:u64le items:u64le
//!           header_count:u16le (name_len:u16le name value_len:u16le value)* payload
//! ```
//! The headers are the request's `--forward-header` values (lowercase names, in flag order); the reader partitions
//! its batches by them and sends them as each export's gRPC metadata, as direct mode does. `header_count` 0 is
//! the no-header partition. A change of layout takes a new `version`, and `decode` keeps reading version 1.
//!
//! A record is written with one `write` of its frame and made durable by the group commit's `fdatasync`. A crash
//! can leave a prefix of the last frames of the active segment: recovery recognises a frame that does not fit in
//! the file, or whose checksum fails and which ends exactly at the end of the file, as a torn tail. A bad checksum
//! anywhere else is corruption.

use bytes::Bytes;

use crate::signal::SignalKind;

/// Bytes before a record's body.
pub(super) const FRAME_HEADER: usize = 8;

/// Largest body a reader accepts; a length above it is corruption (no export request comes near it).
pub(super) const MAX_BODY: u32 = 1 << 30;

const VERSION: u8 = 1;

/// What the queue keeps of one chunk of a request: all that delivery needs later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// The signal.
    pub kind: SignalKind,
    /// Wall-clock milliseconds since the Unix epoch when the record was accepted (for `--queue-max-age`).
    pub enqueued_ms: u64,
    /// Items in `payload`.
    pub items: u64,
    /// Forwarded request headers, in order.
    pub headers: Vec<(String, String)>,
    /// One valid export request of `kind`, as protobuf.
    pub payload: Bytes,
}

/// Encodes `record` as one frame.
pub(super) fn encode(record: &Record) -> Vec<u8> {
    let header_bytes: usize = record.headers.iter().map(|(k, v)| 4 + k.len() + v.len()).sum();
    let mut out = Vec::with_capacity(FRAME_HEADER + 20 + header_bytes + record.payload.len());
    out.extend_from_slice(&[0; FRAME_HEADER]);
    out.push(VERSION);
    out.push(record.kind.index() as u8);
    out.extend_from_slice(&record.enqueued_ms.to_le_bytes());
    out.extend_from_slice(&record.items.to_le_bytes());
    // Header names and values are HTTP header material: far below 64 KiB each; longer ones are cut, never mixed up.
    let headers: Vec<_> = record.headers.iter().take(u16::MAX as usize).collect();
    out.extend_from_slice(&(headers.len() as u16).to_le_bytes());
    for (k, v) in headers {
        for s in [k, v] {
            let s = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
            out.extend_from_slice(&(s.len() as u16).to_le_bytes());
            out.extend_from_slice(s);
        }
    }
    out.extend_from_slice(&record.payload);
    let body_len = (out.len() - FRAME_HEADER) as u32;
    let crc = crc32fast::hash(&out[FRAME_HEADER..]);
    out[0..4].copy_from_slice(&body_len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

/// A frame header: the body's length and checksum.
#[derive(Debug, Clone, Copy)]
pub(super) struct FrameHeader {
    /// Body bytes.
    pub len: u32,
    /// Checksum of the body.
    pub crc: u32,
}

impl FrameHeader {
    /// Parses the first [`FRAME_HEADER`] bytes of a frame.
    pub(super) fn parse(bytes: [u8; FRAME_HEADER]) -> FrameHeader {
        let [a, b, c, d, e, f, g, h] = bytes;
        FrameHeader { len: u32::from_le_bytes([a, b, c, d]), crc: u32::from_le_bytes([e, f, g, h]) }
    }

    /// Bytes of the whole frame.
    pub(super) fn frame_len(&self) -> u64 {
        FRAME_HEADER as u64 + u64::from(self.len)
    }
}

/// Why a body is not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum DecodeError {
    /// The checksum does not match.
    #[error("checksum mismatch")]
    Checksum,
    /// The checksum matches but the body is not a record this version understands.
    #[error("malformed record: {0}")]
    Malformed(&'static str),
}

/// Decodes a body read after `header`.
pub(super) fn decode(header: FrameHeader, body: Bytes) -> Result<Record, DecodeError> {
    if crc32fast::hash(&body) != header.crc {
        return Err(DecodeError::Checksum);
    }
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Result<&[u8], DecodeError> {
        let slice = body.get(*at..*at + n).ok_or(DecodeError::Malformed("truncated body"))?;
        *at += n;
        Ok(slice)
    };
    let fixed = take(&mut at, 20)?;
    if fixed[0] != VERSION {
        return Err(DecodeError::Malformed("unknown record version"));
    }
    let kind = SignalKind::ALL.get(usize::from(fixed[1])).copied().ok_or(DecodeError::Malformed("unknown signal"))?;
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&fixed[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let (enqueued_ms, items) = (u64_at(2), u64_at(10));
    let count = u16::from_le_bytes([fixed[18], fixed[19]]);
    let mut headers = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let mut pair = [String::new(), String::new()];
        for s in &mut pair {
            let len = take(&mut at, 2)?;
            let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
            *s = String::from_utf8(take(&mut at, len)?.to_vec())
                .map_err(|_| DecodeError::Malformed("header is not UTF-8"))?;
        }
        let [k, v] = pair;
        headers.push((k, v));
    }
    let payload = body.slice(at..);
    Ok(Record { kind, enqueued_ms, items, headers, payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(n: u8) -> Record {
        Record {
            kind: SignalKind::Logs,
            enqueued_ms: 1_700_000_000_000 + u64::from(n),
            items: u64::from(n) + 1,
            headers: vec![("x-scope-orgid".into(), format!("tenant-{n}"))],
            payload: Bytes::from(vec![n; 100 + usize::from(n)]),
        }
    }

    fn split(frame: &[u8]) -> (FrameHeader, Bytes) {
        let header = FrameHeader::parse(frame[..FRAME_HEADER].try_into().unwrap());
        (header, Bytes::copy_from_slice(&frame[FRAME_HEADER..]))
    }

    #[test]
    fn a_record_round_trips_with_its_headers_and_payload() {
        for record in [sample(3), Record { headers: Vec::new(), payload: Bytes::new(), ..sample(0) }] {
            let frame = encode(&record);
            let (header, body) = split(&frame);
            assert_eq!(header.frame_len() as usize, frame.len());
            assert_eq!(decode(header, body).unwrap(), record);
        }
    }

    /// A frame as the documented layout (version 1) has it, built byte by byte rather than with `encode`.
    fn version_1_frame(signal: u8, headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
        let mut body = vec![1u8, signal];
        body.extend_from_slice(&1_700_000_000_123u64.to_le_bytes());
        body.extend_from_slice(&7u64.to_le_bytes());
        body.extend_from_slice(&(headers.len() as u16).to_le_bytes());
        for (k, v) in headers {
            for s in [k, v] {
                body.extend_from_slice(&(s.len() as u16).to_le_bytes());
                body.extend_from_slice(s.as_bytes());
            }
        }
        body.extend_from_slice(payload);
        let mut frame = (body.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        frame.extend_from_slice(&body);
        frame
    }

    #[test]
    fn records_queued_by_an_earlier_build_replay_with_or_without_forwarded_headers() {
        // What a bridge of the first queue release left on disk must replay after an upgrade: a record without
        // headers belongs to the no-header partition, one with headers to exactly its tenant's.
        let tenants = [("x-scope-orgid", "team-a"), ("x-team", "payments")];
        for (headers, signal, kind) in [(&[][..], 0u8, SignalKind::Traces), (&tenants[..], 2, SignalKind::Logs)] {
            let frame = version_1_frame(signal, headers, b"\x0a\x02\x0a\x00");
            let (header, body) = split(&frame);
            let record = decode(header, body).unwrap();
            let expected = Record {
                kind,
                enqueued_ms: 1_700_000_000_123,
                items: 7,
                headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                payload: Bytes::from_static(b"\x0a\x02\x0a\x00"),
            };
            assert_eq!(record, expected);
            assert_eq!(encode(&record), frame, "today's encoder writes the same layout");
        }
    }

    #[test]
    fn a_record_of_a_newer_version_is_malformed_not_misread() {
        let mut frame = version_1_frame(0, &[], b"");
        frame[FRAME_HEADER] = 2;
        let crc = crc32fast::hash(&frame[FRAME_HEADER..]);
        frame[4..8].copy_from_slice(&crc.to_le_bytes());
        let (header, body) = split(&frame);
        assert_eq!(decode(header, body), Err(DecodeError::Malformed("unknown record version")));
    }

    #[test]
    fn every_flipped_bit_is_caught_by_the_checksum() {
        let frame = encode(&sample(1));
        for bit in (FRAME_HEADER * 8)..(frame.len() * 8) {
            let mut bad = frame.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let (header, body) = split(&bad);
            assert_eq!(decode(header, body), Err(DecodeError::Checksum), "bit {bit}");
        }
    }
}
