//! An object's bytes, written as requests arrive: the format (protobuf or JSON lines) through the compressor into a
//! buffer that the uploader drains part by part, so an object of any size never sits in memory whole.
//!
//! `otlp_proto`: the requests' protobuf bytes concatenated, which protobuf defines as the merge of the messages, so
//! the decompressed object is one valid `Export<Signal>ServiceRequest` holding every item (profiles objects hold
//! one request each: their items index into their request's own dictionary). `otlp_json`: one OTLP/JSON request per
//! line, as the OpenTelemetry Collector's file exporter writes them (hex ids, enums as integers, 64-bit integers as
//! strings: the project's encoder, the debug backend's).
//!
//! One compression stream per object (a single zstd frame with a checksum, or a single gzip member), because some
//! readers stop after the first frame or member; zstd runs at level 1 with a 128 KiB window, so an open object's
//! compressor costs about 1.4 MiB of memory whatever its size ([`compressor_bytes`], reserved from the memory budget
//! while the object is open). The compressed bytes leave after every request ([`ObjectEncoder::drain`]), into the
//! object's spool file.

use std::io::Write;

use flate2::write::GzEncoder;
use prost::Message;

use super::key::{ArchiveCompression, ArchiveFormat};
use crate::signal::{Logs, Metrics, Profiles, Signal, SignalKind, Traces};

/// zstd level: 1, zstd's fastest regular level. Measured on 8 MiB of generated traces (random ids, repeated
/// names and attributes) against zstd's default level 3: objects 6% larger (3.96x against 4.18x at the same
/// window), 20% less CPU, and a context of 953 KiB against 1,657 (every open object holds one, against the memory
/// limit). Storage is the archive's smallest cost; requests and memory are not.
const ZSTD_LEVEL: i32 = 1;
/// log2 of the zstd window: 128 KiB bounds the compressor's memory (1,849 KiB at 1 MiB); larger windows gain little
/// on OTLP's short repetitive records (1% on the same traces at 1 MiB).
const ZSTD_WINDOW_LOG: u32 = 17;

/// What an open object's encoder holds at most, beside the request being written (and its JSON line): the zstd
/// context at [`ZSTD_LEVEL`] and [`ZSTD_WINDOW_LOG`] (its size is checked in the tests) with the stream's output
/// buffer; deflate's state (a 32 KiB window, its hash chains and Huffman tables: about 300 KiB in miniz_oxide);
/// and for every format, the compressed output of one request before it is drained (its capacity kept up to
/// [`OUTPUT_KEPT`]).
pub(crate) fn compressor_bytes(compression: ArchiveCompression) -> usize {
    OUTPUT_KEPT
        + match compression {
            ArchiveCompression::Zstd => ZSTD_CONTEXT_BYTES,
            ArchiveCompression::Gzip => 384 << 10,
            ArchiveCompression::None => 0,
        }
}

/// The zstd context with its stream's output buffer, at our level and window (the context measured 953 KiB, the
/// buffer 128 KiB).
const ZSTD_CONTEXT_BYTES: usize = 1152 << 10;

/// Capacity the output buffer keeps between requests: a huge request must not keep its output's capacity for the
/// object's lifetime.
const OUTPUT_KEPT: usize = 256 << 10;

/// Why a request could not be written into an object.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EncodeError {
    /// The queued bytes do not decode (only JSON needs to decode them; the queue checks records' CRCs, so this is a
    /// bug or a record written by another version).
    #[error("a queued {signal} request does not decode as protobuf: {source}")]
    Decode {
        /// Which signal.
        signal: &'static str,
        /// Why.
        source: prost::DecodeError,
    },
    /// The compressor failed (out of memory in the zstd context).
    #[error("compressing the object failed: {0}")]
    Compress(#[from] std::io::Error),
}

enum Compressor {
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    Gzip(GzEncoder<Vec<u8>>),
    None(Vec<u8>),
}

impl Compressor {
    fn new(compression: ArchiveCompression) -> std::io::Result<Compressor> {
        Ok(match compression {
            ArchiveCompression::Zstd => {
                let mut z = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL)?;
                z.include_checksum(true)?;
                z.window_log(ZSTD_WINDOW_LOG)?;
                Compressor::Zstd(z)
            }
            ArchiveCompression::Gzip => Compressor::Gzip(GzEncoder::new(Vec::new(), flate2::Compression::default())),
            ArchiveCompression::None => Compressor::None(Vec::new()),
        })
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Compressor::Zstd(z) => z.write_all(bytes),
            Compressor::Gzip(g) => g.write_all(bytes),
            Compressor::None(v) => {
                v.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    fn output(&mut self) -> &mut Vec<u8> {
        match self {
            Compressor::Zstd(z) => z.get_mut(),
            Compressor::Gzip(g) => g.get_mut(),
            Compressor::None(v) => v,
        }
    }

    fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            Compressor::Zstd(z) => z.finish(),
            Compressor::Gzip(g) => g.finish(),
            Compressor::None(v) => Ok(v),
        }
    }
}

/// One object's bytes in the making; see the module docs.
pub(crate) struct ObjectEncoder {
    kind: SignalKind,
    format: ArchiveFormat,
    compressor: Compressor,
    uncompressed: u64,
    line: String,
}

impl std::fmt::Debug for ObjectEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectEncoder").field("kind", &self.kind).field("uncompressed", &self.uncompressed).finish()
    }
}

impl ObjectEncoder {
    /// An empty object of `kind`.
    pub(crate) fn new(
        kind: SignalKind,
        format: ArchiveFormat,
        compression: ArchiveCompression,
    ) -> Result<ObjectEncoder, EncodeError> {
        Ok(ObjectEncoder {
            kind,
            format,
            compressor: Compressor::new(compression)?,
            uncompressed: 0,
            line: String::new(),
        })
    }

    /// Writes one request (its protobuf bytes); returns its items when the format decoded it (JSON), `None` when
    /// its bytes went in as they are (protobuf).
    pub(crate) fn append(&mut self, request: &[u8]) -> Result<Option<u64>, EncodeError> {
        let (added, items) = match self.format {
            ArchiveFormat::OtlpProto => {
                self.compressor.write_all(request)?;
                (request.len(), None)
            }
            ArchiveFormat::OtlpJson => {
                self.line.clear();
                let items = match self.kind {
                    SignalKind::Traces => json_line::<Traces>(request, &mut self.line),
                    SignalKind::Metrics => json_line::<Metrics>(request, &mut self.line),
                    SignalKind::Logs => json_line::<Logs>(request, &mut self.line),
                    SignalKind::Profiles => json_line::<Profiles>(request, &mut self.line),
                }
                .map_err(|source| EncodeError::Decode { signal: self.kind.name(), source })?;
                self.compressor.write_all(self.line.as_bytes())?;
                let added = self.line.len();
                // A huge line must not keep its capacity for the object's lifetime.
                if self.line.capacity() > 1 << 20 {
                    self.line = String::new();
                }
                (added, Some(items))
            }
        };
        self.uncompressed += added as u64;
        Ok(items)
    }

    /// Uncompressed bytes written so far (what `--archive-max-object-bytes` counts).
    pub(crate) fn uncompressed(&self) -> u64 {
        self.uncompressed
    }

    /// Hands the compressed bytes ready so far to `sink` (the object's spool), then forgets them.
    pub(crate) fn drain(&mut self, sink: impl FnOnce(&[u8]) -> std::io::Result<()>) -> std::io::Result<()> {
        let output = self.compressor.output();
        let result = sink(output);
        output.clear();
        if output.capacity() > OUTPUT_KEPT {
            *output = Vec::new();
        }
        result
    }

    /// Ends the compression stream; returns the rest of the object.
    pub(crate) fn finish(self) -> Result<Vec<u8>, EncodeError> {
        Ok(self.compressor.finish()?)
    }
}

/// Writes `bytes` as one JSON line; returns its items.
fn json_line<S: Signal>(bytes: &[u8], out: &mut String) -> Result<u64, prost::DecodeError> {
    let request = S::Request::decode(bytes)?;
    crate::json::encode_into(&request, out);
    out.push('\n');
    Ok(S::count(&request))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
    use crate::proto::common::v1::InstrumentationScope;
    use crate::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;

    fn request(names: &[&str]) -> Vec<u8> {
        let spans = names
            .iter()
            .map(|n| Span {
                trace_id: vec![0xab; 16],
                span_id: vec![1; 8],
                name: (*n).into(),
                start_time_unix_nano: u64::MAX - 1,
                kind: 2,
                ..Default::default()
            })
            .collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope { name: "s".into(), ..Default::default() }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    // The tests' own objects, of known size: no cap needed.
    #[allow(clippy::disallowed_methods)]
    fn decompress(compression: ArchiveCompression, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match compression {
            ArchiveCompression::Zstd => {
                zstd::stream::read::Decoder::new(bytes).unwrap().read_to_end(&mut out).unwrap();
            }
            ArchiveCompression::Gzip => {
                flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
            }
            ArchiveCompression::None => out = bytes.to_vec(),
        }
        out
    }

    /// Writes requests while draining parts, as the uploader does; returns the whole object.
    fn object(format: ArchiveFormat, compression: ArchiveCompression, requests: &[Vec<u8>]) -> (Vec<u8>, u64) {
        let mut e = ObjectEncoder::new(SignalKind::Traces, format, compression).unwrap();
        let mut all = Vec::new();
        for r in requests {
            e.append(r).unwrap();
            e.drain(|b| {
                all.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        }
        let uncompressed = e.uncompressed();
        all.extend(e.finish().unwrap());
        (all, uncompressed)
    }

    #[test]
    fn a_proto_object_is_one_request_holding_every_span_in_order() {
        let requests = [request(&["a", "b"]), request(&["c"]), request(&["d", "e", "f"])];
        for compression in [ArchiveCompression::Zstd, ArchiveCompression::Gzip, ArchiveCompression::None] {
            let (bytes, uncompressed) = object(ArchiveFormat::OtlpProto, compression, &requests);
            let plain = decompress(compression, &bytes);
            assert_eq!(uncompressed, plain.len() as u64);
            assert_eq!(plain, requests.concat());
            let merged = ExportTraceServiceRequest::decode(plain.as_slice()).unwrap();
            let names: Vec<_> = merged
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .map(|s| s.name.as_str())
                .collect();
            assert_eq!(names, ["a", "b", "c", "d", "e", "f"]);
        }
    }

    #[test]
    fn a_json_object_is_one_otlp_json_request_per_line_in_the_file_exporter_format() {
        let requests = [request(&["a"]), request(&["b", "c"])];
        let (bytes, uncompressed) = object(ArchiveFormat::OtlpJson, ArchiveCompression::Gzip, &requests);
        let plain = String::from_utf8(decompress(ArchiveCompression::Gzip, &bytes)).unwrap();
        assert_eq!(uncompressed, plain.len() as u64);
        let lines: Vec<&str> = plain.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(plain.ends_with('\n'));
        // Hex ids, enums as integers, 64-bit integers as strings.
        assert!(lines[0].contains(r#""traceId":"abababababababababababababababab""#), "{}", lines[0]);
        assert!(lines[0].contains(r#""kind":2"#), "{}", lines[0]);
        assert!(lines[0].contains(r#""startTimeUnixNano":"18446744073709551614""#), "{}", lines[0]);
        for (line, req) in lines.iter().zip(&requests) {
            let back: ExportTraceServiceRequest = crate::json::decode(line.as_bytes()).unwrap();
            assert_eq!(back, ExportTraceServiceRequest::decode(req.as_slice()).unwrap());
        }
    }

    #[test]
    fn a_large_object_is_drained_in_parts_and_compresses() {
        let mut e = ObjectEncoder::new(SignalKind::Traces, ArchiveFormat::OtlpProto, ArchiveCompression::Zstd).unwrap();
        let mut parts = 0;
        let mut all = Vec::new();
        let mut expected = 0;
        while e.uncompressed() < 8 << 20 {
            // Names with random digits: compressible like real spans, not to nothing.
            let names: Vec<String> = (0..50).map(|_| format!("span-{}", fastrand::u32(..))).collect();
            let r = request(&names.iter().map(String::as_str).collect::<Vec<_>>());
            expected += r.len();
            e.append(&r).unwrap();
            e.drain(|b| {
                parts += usize::from(!b.is_empty());
                all.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        }
        all.extend(e.finish().unwrap());
        assert!(parts > 1, "the compressor hands out output while the object grows");
        assert!(all.len() < (8 << 20) / 2, "{}", all.len());
        assert_eq!(decompress(ArchiveCompression::Zstd, &all).len(), expected);
    }

    /// The zstd context of an open object, after a few MiB went through it, fits what an object reserves.
    #[test]
    fn the_zstd_context_fits_what_an_open_object_reserves() {
        use zstd::zstd_safe::{CCtx, CParameter, InBuffer, OutBuffer};
        let mut cctx = CCtx::create();
        cctx.set_parameter(CParameter::CompressionLevel(ZSTD_LEVEL)).unwrap();
        cctx.set_parameter(CParameter::WindowLog(ZSTD_WINDOW_LOG)).unwrap();
        cctx.set_parameter(CParameter::ChecksumFlag(true)).unwrap();
        let input: Vec<u8> = (0..4 << 20).map(|_| fastrand::u8(..16)).collect();
        let mut out = vec![0u8; 1 << 20];
        for chunk in input.chunks(64 << 10) {
            let mut src = InBuffer::around(chunk);
            while src.pos() < chunk.len() {
                let mut dst = OutBuffer::around(&mut out[..]);
                cctx.compress_stream(&mut dst, &mut src).unwrap();
            }
        }
        let size = cctx.sizeof();
        assert!(size > 512 << 10, "{size}");
        assert!(size + CCtx::out_size() <= ZSTD_CONTEXT_BYTES, "{size}");
    }

    #[test]
    fn bytes_that_do_not_decode_are_an_error_for_json_only() {
        let garbage = [0xff, 0xff, 0xff];
        let mut e = ObjectEncoder::new(SignalKind::Logs, ArchiveFormat::OtlpJson, ArchiveCompression::None).unwrap();
        assert!(matches!(e.append(&garbage), Err(EncodeError::Decode { signal: "logs", .. })));
        assert_eq!(e.uncompressed(), 0);
    }
}
