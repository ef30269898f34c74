//! Reading one archive object back, as a stream: decompress, then cut it into requests at top-level entries
//! (`resource_spans`, `resource_metrics`, `resource_logs`), each request at most `max_request_bytes` (a single
//! entry larger than that is a request of its own), optionally keeping only one trace's spans and log records.
//!
//! Runs on a blocking thread over a `Read` fed by the download: memory is the decompressor's window, one entry,
//! and the request being filled, whatever the object's size. A profiles object is one request (profiles index into
//! their request's dictionary), so it is passed on whole.

use std::io::{BufRead, BufReader, Read};

use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::export::s3::{ArchiveCompression, ArchiveFormat};
use crate::signal::{Logs, Metrics, Profiles, SignalKind, Traces};

/// One request read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// Protobuf `Export<Signal>ServiceRequest` bytes.
    pub bytes: Vec<u8>,
    /// Items in it.
    pub items: u64,
}

/// Why an object could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// Decompression or the download failed.
    #[error("reading: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not what the key says.
    #[error("not a valid {signal} archive object: {detail}")]
    Invalid {
        /// Which signal.
        signal: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The consumer went away (the replay stopped).
    #[error("stopped")]
    Stopped,
}

/// What to keep.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Filter {
    /// Only the spans and log records of this trace.
    pub trace_id: Option<[u8; 16]>,
}

/// Reads the object in `input` (of `kind`, stored as the key says) and hands each request to `emit`, which returns
/// false to stop. Returns the uncompressed bytes read.
pub(crate) fn read_object(
    input: impl Read,
    kind: SignalKind,
    format: ArchiveFormat,
    compression: ArchiveCompression,
    max_request_bytes: usize,
    filter: Filter,
    emit: &mut dyn FnMut(Request) -> bool,
) -> Result<u64, ReadError> {
    let input: Box<dyn Read> = match compression {
        // Concatenated frames and members are read through, as zstd and gzip define them.
        ArchiveCompression::Zstd => Box::new(zstd::stream::read::Decoder::new(input)?),
        ArchiveCompression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        ArchiveCompression::None => Box::new(input),
    };
    let mut counted = Counted { inner: input, bytes: 0 };
    let mut chunker = Chunker { kind, max: max_request_bytes, filter, open: Vec::new(), items: 0 };
    match format {
        ArchiveFormat::OtlpProto => {
            let mut reader = BufReader::with_capacity(64 * 1024, &mut counted);
            while let Some(entry) = next_entry(&mut reader, kind)? {
                if !chunker.push(entry, emit)? {
                    return Err(ReadError::Stopped);
                }
            }
        }
        ArchiveFormat::OtlpJson => {
            let mut reader = BufReader::with_capacity(64 * 1024, &mut counted);
            let mut line = Vec::new();
            let mut protobuf = Vec::new();
            loop {
                line.clear();
                if reader.read_until(b'\n', &mut line)? == 0 {
                    break;
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                protobuf.clear();
                transcode(kind, &line, &mut protobuf)?;
                let mut at = &protobuf[..];
                while let Some(entry) = next_entry(&mut at, kind)? {
                    if !chunker.push(entry, emit)? {
                        return Err(ReadError::Stopped);
                    }
                }
                // Each line is one request: for profiles, the unit that must stay whole.
                if kind.self_contained() && !chunker.flush(emit)? {
                    return Err(ReadError::Stopped);
                }
            }
        }
    }
    if !chunker.flush(emit)? {
        return Err(ReadError::Stopped);
    }
    Ok(counted.bytes)
}

struct Counted<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

fn transcode(kind: SignalKind, line: &[u8], out: &mut Vec<u8>) -> Result<(), ReadError> {
    use crate::json::transcode as t;
    let result = match kind {
        SignalKind::Traces => t::<<Traces as crate::signal::Signal>::Request>(line, out),
        SignalKind::Metrics => t::<<Metrics as crate::signal::Signal>::Request>(line, out),
        SignalKind::Logs => t::<<Logs as crate::signal::Signal>::Request>(line, out),
        SignalKind::Profiles => t::<<Profiles as crate::signal::Signal>::Request>(line, out),
    };
    result.map(|_| ()).map_err(|e| ReadError::Invalid { signal: kind.name(), detail: e.to_string() })
}

/// Reads one top-level field (key, and its value) as raw bytes; `None` at a clean end.
fn next_entry(reader: &mut impl Read, kind: SignalKind) -> Result<Option<Vec<u8>>, ReadError> {
    let invalid = |detail: &str| ReadError::Invalid { signal: kind.name(), detail: detail.to_string() };
    let mut entry = Vec::new();
    let Some(key) = read_varint(reader, &mut entry, true)? else { return Ok(None) };
    let len = match key & 7 {
        0 => {
            read_varint(reader, &mut entry, false)?;
            0
        }
        1 => 8,
        5 => 4,
        2 => read_varint(reader, &mut entry, false)?.unwrap_or(0),
        _ => return Err(invalid("a top-level field with a group or invalid wire type")),
    };
    // A length beyond what the bridge ever accepts is corruption, not a reason to allocate it.
    if len > 1 << 31 {
        return Err(invalid("a top-level field longer than 2 GiB"));
    }
    let start = entry.len();
    entry.resize(start + len as usize, 0);
    reader.read_exact(&mut entry[start..]).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => invalid("the object ends inside a field (truncated?)"),
        _ => ReadError::Io(e),
    })?;
    Ok(Some(entry))
}

/// Reads a varint, appending its bytes to `raw`; `None` when the input ends before its first byte and `eof_ok`.
fn read_varint(reader: &mut impl Read, raw: &mut Vec<u8>, eof_ok: bool) -> Result<Option<u64>, ReadError> {
    let mut value = 0u64;
    for i in 0..10 {
        let mut b = [0u8; 1];
        // `read`, not `read_exact`: a clean end is Ok(0), while a decompressor that ends inside its frame reports
        // an error of its own (which may also be UnexpectedEof) and must not pass for one.
        let n = loop {
            match reader.read(&mut b) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if n == 0 {
            if i == 0 && eof_ok {
                return Ok(None);
            }
            let truncated = "the object ends inside a field (truncated?)";
            return Err(ReadError::Io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, truncated)));
        }
        raw.push(b[0]);
        value |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] < 0x80 {
            return Ok(Some(value));
        }
    }
    Err(ReadError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, "overlong varint")))
}

/// Packs entries into requests.
struct Chunker {
    kind: SignalKind,
    max: usize,
    filter: Filter,
    open: Vec<u8>,
    items: u64,
}

impl Chunker {
    fn push(&mut self, entry: Vec<u8>, emit: &mut dyn FnMut(Request) -> bool) -> Result<bool, ReadError> {
        let entry = match self.filter.trace_id {
            Some(id) => match keep_trace(self.kind, &entry, &id)? {
                Some(kept) => kept,
                None => return Ok(true),
            },
            None => entry,
        };
        let items = crate::wire::scan(self.kind.schema(), &entry)
            .map_err(|e| ReadError::Invalid { signal: self.kind.name(), detail: e.to_string() })?
            .items;
        let full = !self.kind.self_contained() && !self.open.is_empty() && self.open.len() + entry.len() > self.max;
        if full && !self.flush(emit)? {
            return Ok(false);
        }
        self.open.extend_from_slice(&entry);
        self.items += items;
        Ok(true)
    }

    fn flush(&mut self, emit: &mut dyn FnMut(Request) -> bool) -> Result<bool, ReadError> {
        if self.open.is_empty() {
            return Ok(true);
        }
        let request = Request { bytes: std::mem::take(&mut self.open), items: std::mem::take(&mut self.items) };
        Ok(emit(request))
    }
}

/// The entry with only `id`'s spans or log records (scopes and resources left empty are dropped); `None` when
/// nothing in it matches. Metrics and profiles carry no items of a trace.
fn keep_trace(kind: SignalKind, entry: &[u8], id: &[u8; 16]) -> Result<Option<Vec<u8>>, ReadError> {
    let invalid = |e: prost::DecodeError| ReadError::Invalid { signal: kind.name(), detail: e.to_string() };
    match kind {
        SignalKind::Traces => {
            let mut request = ExportTraceServiceRequest::decode(entry).map_err(invalid)?;
            for resource in &mut request.resource_spans {
                for scope in &mut resource.scope_spans {
                    scope.spans.retain(|s| s.trace_id == id);
                }
                resource.scope_spans.retain(|s| !s.spans.is_empty());
            }
            request.resource_spans.retain(|r| !r.scope_spans.is_empty());
            Ok((!request.resource_spans.is_empty()).then(|| request.encode_to_vec()))
        }
        SignalKind::Logs => {
            let mut request = ExportLogsServiceRequest::decode(entry).map_err(invalid)?;
            for resource in &mut request.resource_logs {
                for scope in &mut resource.scope_logs {
                    scope.log_records.retain(|r| r.trace_id == id);
                }
                resource.scope_logs.retain(|s| !s.log_records.is_empty());
            }
            request.resource_logs.retain(|r| !r.scope_logs.is_empty());
            Ok((!request.resource_logs.is_empty()).then(|| request.encode_to_vec()))
        }
        SignalKind::Metrics | SignalKind::Profiles => Ok(None),
    }
}

#[cfg(test)]
mod tests;
