//! Reading a request body under the wire limit, and inflating it under the same limit.
//!
//! Every byte of the body passes through here, and nothing else in the crate reads or inflates bodies
//! (`clippy.toml` bans the unbounded helpers), so a 1 KiB gzip bomb can never allocate more than the limit.

use std::io::Read;

use bytes::{Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;

use super::respond::ReceiveError;
use crate::limit::Reservation;

/// A `Content-Encoding` the receiver can inflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    /// No compression.
    Identity,
    /// gzip (RFC 1952), also multi-member.
    Gzip,
    /// HTTP `deflate`: zlib (RFC 1950), or raw deflate as some clients send it.
    Deflate,
    /// zstd (RFC 8878).
    Zstd,
}

impl ContentEncoding {
    /// Parses a `Content-Encoding` header value (absent = identity).
    pub fn parse(value: Option<&str>) -> Result<ContentEncoding, ReceiveError> {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(ContentEncoding::Identity);
        };
        match value.to_ascii_lowercase().as_str() {
            "identity" => Ok(ContentEncoding::Identity),
            "gzip" | "x-gzip" => Ok(ContentEncoding::Gzip),
            "deflate" => Ok(ContentEncoding::Deflate),
            "zstd" => Ok(ContentEncoding::Zstd),
            _ => Err(ReceiveError::UnsupportedEncoding(value.to_string())),
        }
    }
}

/// Reads the whole body, failing with 413 as soon as it passes `limit` bytes. Bodies without a declared length
/// grow `reservation` as they arrive, so the memory limit holds for chunked uploads too.
pub async fn read_limited<B>(
    mut body: B,
    declared: Option<usize>,
    limit: usize,
    reservation: &mut Reservation,
) -> Result<Bytes, ReceiveError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    if let Some(len) = declared.filter(|&len| len > limit) {
        return Err(ReceiveError::BodyTooLarge { limit, inflated: false, seen: Some(len) });
    }
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ReceiveError::BodyRead(e.to_string()))?;
        let Ok(data) = frame.into_data() else { continue };
        total = total.saturating_add(data.len());
        if total > limit {
            return Err(ReceiveError::BodyTooLarge { limit, inflated: false, seen: None });
        }
        if total > reservation.bytes() {
            reservation.resize(total.max(declared.unwrap_or(0)))?;
        }
        // The common single-frame body is kept as it came: no copy at all.
        match first.take() {
            None if buf.is_empty() => first = Some(data),
            None => buf.extend_from_slice(&data),
            Some(earlier) => {
                buf.reserve(declared.unwrap_or(0).max(earlier.len() + data.len()));
                buf.extend_from_slice(&earlier);
                buf.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

/// Reads and throws away what is left of a body (up to `limit` bytes, within `timeout`) before an early answer.
///
/// An HTTP/1.1 server that answers without reading the body must close the connection, and a client still
/// writing its body then sees a broken pipe instead of the answer (a 503 with `Retry-After` it could act on).
/// Nothing is kept, so this costs no memory; bodies declared larger than `limit` are not waited for.
pub async fn discard<B>(mut body: B, declared: Option<usize>, limit: usize, timeout: std::time::Duration)
where
    B: Body<Data = Bytes> + Unpin,
{
    if declared.is_some_and(|len| len > limit) {
        return;
    }
    let drain = async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen = seen.saturating_add(frame.data_ref().map_or(0, Bytes::len));
            if seen > limit {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(timeout, drain).await;
}

/// Inflates `wire` under `limit` inflated bytes, growing `reservation` to hold the output beside the input.
pub fn inflate(
    encoding: ContentEncoding,
    wire: Bytes,
    limit: usize,
    reservation: &mut Reservation,
) -> Result<Bytes, ReceiveError> {
    let wire_len = wire.len();
    let out = match encoding {
        ContentEncoding::Identity => return Ok(wire),
        ContentEncoding::Gzip => {
            read_capped(flate2::read::MultiGzDecoder::new(&wire[..]), wire_len, limit, reservation)
        }
        ContentEncoding::Deflate if looks_like_zlib(&wire) => {
            read_capped(flate2::read::ZlibDecoder::new(&wire[..]), wire_len, limit, reservation)
        }
        ContentEncoding::Deflate => {
            read_capped(flate2::read::DeflateDecoder::new(&wire[..]), wire_len, limit, reservation)
        }
        ContentEncoding::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(&wire[..])
                .map_err(|e| ReceiveError::Decompress { encoding: "zstd", detail: e.to_string() })?;
            // A frame may ask for a window of up to 2 GiB; 16 MiB covers every standard level (19 uses 8 MiB)
            // and keeps a hostile frame from allocating more than that.
            decoder
                .window_log_max(24)
                .map_err(|e| ReceiveError::Decompress { encoding: "zstd", detail: e.to_string() })?;
            read_capped(decoder, wire_len, limit, reservation)
        }
    };
    let name = match encoding {
        ContentEncoding::Gzip => "gzip",
        ContentEncoding::Deflate => "deflate",
        _ => "zstd",
    };
    let out = out.map_err(|e| match e {
        CappedError::Io(detail) => ReceiveError::Decompress { encoding: name, detail },
        CappedError::Receive(e) => e,
    })?;
    drop(wire);
    // The compressed input is gone; only the inflated bytes stay reserved.
    reservation.resize(out.len())?;
    Ok(out)
}

enum CappedError {
    Io(String),
    Receive(ReceiveError),
}

fn read_capped(
    mut reader: impl Read,
    wire_len: usize,
    limit: usize,
    reservation: &mut Reservation,
) -> Result<Bytes, CappedError> {
    const STEP: usize = 256 * 1024;
    // A first guess of 4x the wire size, at least one step, never more than the limit allows.
    let mut out: Vec<u8> = Vec::with_capacity(wire_len.saturating_mul(4).max(STEP).min(limit.saturating_add(1)));
    loop {
        if out.len() == out.capacity() {
            // Double (amortised copies), but never past the limit + 1 byte that proves a body too large.
            let target = (out.capacity() * 2).max(out.len() + STEP).min(limit.saturating_add(1)).max(out.len() + 1);
            out.reserve_exact(target - out.len());
        }
        reservation.resize(wire_len + out.capacity()).map_err(|e| CappedError::Receive(e.into()))?;
        let start = out.len();
        // Zero only the window this read may fill, not the whole spare capacity.
        out.resize(start + (out.capacity() - start).min(STEP), 0);
        let n = loop {
            match reader.read(&mut out[start..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CappedError::Io(e.to_string())),
                Ok(n) => break n,
            }
        };
        out.truncate(start + n);
        if out.len() > limit {
            return Err(CappedError::Receive(ReceiveError::BodyTooLarge { limit, inflated: true, seen: None }));
        }
        if n == 0 {
            return Ok(Bytes::from(out));
        }
    }
}

fn looks_like_zlib(data: &[u8]) -> bool {
    // RFC 1950: CM = 8 (deflate) and the header is a multiple of 31.
    matches!(data, [cmf, flg, ..] if cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::MemoryBudget;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_encoding_inflates_to_the_original() {
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let budget = MemoryBudget::new(1 << 30);
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&data).unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&data).unwrap();
        for (enc, wire) in [
            (ContentEncoding::Gzip, gzip(&data)),
            (ContentEncoding::Deflate, zlib.finish().unwrap()),
            (ContentEncoding::Deflate, raw.finish().unwrap()),
            (ContentEncoding::Zstd, zstd::bulk::compress(&data, 3).unwrap()),
            (ContentEncoding::Identity, data.clone()),
        ] {
            let mut r = budget.reserve(0).unwrap();
            let out = inflate(enc, Bytes::from(wire), 10 << 20, &mut r).unwrap();
            assert_eq!(&out[..], &data[..], "{enc:?}");
            if enc != ContentEncoding::Identity {
                assert_eq!(r.bytes(), out.len(), "only the inflated bytes stay reserved");
            }
        }
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_inflated_limit() {
        let bomb = gzip(&vec![0u8; 50 << 20]);
        assert!(bomb.len() < 100 * 1024);
        let budget = MemoryBudget::new(1 << 30);
        let mut r = budget.reserve(0).unwrap();
        let err = inflate(ContentEncoding::Gzip, Bytes::from(bomb), 1 << 20, &mut r).unwrap_err();
        assert!(matches!(err, ReceiveError::BodyTooLarge { inflated: true, .. }), "{err:?}");
        assert!(r.bytes() < 3 << 20, "never held much more than the limit: {}", r.bytes());
    }

    #[test]
    fn a_zstd_bomb_stops_at_the_inflated_limit() {
        let bomb = zstd::bulk::compress(&vec![7u8; 64 << 20], 3).unwrap();
        let budget = MemoryBudget::new(1 << 30);
        let mut r = budget.reserve(0).unwrap();
        let err = inflate(ContentEncoding::Zstd, Bytes::from(bomb), 1 << 20, &mut r).unwrap_err();
        assert!(matches!(err, ReceiveError::BodyTooLarge { inflated: true, .. }), "{err:?}");
    }

    #[test]
    fn inflating_past_the_memory_budget_is_a_memory_error_not_a_crash() {
        let budget = MemoryBudget::new(2 << 20);
        let mut r = budget.reserve(0).unwrap();
        let err = inflate(ContentEncoding::Gzip, Bytes::from(gzip(&vec![1u8; 8 << 20])), 64 << 20, &mut r).unwrap_err();
        assert!(matches!(err, ReceiveError::Memory(_)), "{err:?}");
    }

    #[test]
    fn a_limit_smaller_than_the_read_step_still_inflates_and_caps() {
        let budget = MemoryBudget::new(1 << 30);
        let mut r = budget.reserve(0).unwrap();
        let small = inflate(ContentEncoding::Gzip, Bytes::from(gzip(b"hello")), 5000, &mut r).unwrap();
        assert_eq!(&small[..], b"hello");
        let err = inflate(ContentEncoding::Gzip, Bytes::from(gzip(&[1u8; 6000])), 5000, &mut r).unwrap_err();
        assert!(matches!(err, ReceiveError::BodyTooLarge { inflated: true, .. }), "{err:?}");
    }

    #[test]
    fn corrupt_compressed_data_is_a_clear_error() {
        let budget = MemoryBudget::new(1 << 30);
        let mut r = budget.reserve(0).unwrap();
        let err = inflate(ContentEncoding::Gzip, Bytes::from_static(b"not gzip at all"), 1 << 20, &mut r).unwrap_err();
        assert!(err.to_string().contains("gzip"), "{err}");
        let err = inflate(ContentEncoding::Zstd, Bytes::from_static(b"nope"), 1 << 20, &mut r).unwrap_err();
        assert!(err.to_string().contains("zstd"), "{err}");
    }

    #[test]
    fn unknown_encodings_are_refused() {
        assert!(matches!(ContentEncoding::parse(Some("br")), Err(ReceiveError::UnsupportedEncoding(_))));
        assert_eq!(ContentEncoding::parse(Some("GZIP")).unwrap(), ContentEncoding::Gzip);
        assert_eq!(ContentEncoding::parse(None).unwrap(), ContentEncoding::Identity);
    }

    #[tokio::test]
    async fn reading_stops_at_the_wire_limit() {
        let budget = MemoryBudget::new(1 << 30);
        let mut r = budget.reserve(0).unwrap();
        let body = http_body_util::Full::new(Bytes::from(vec![0u8; 2000]));
        let err = read_limited(body, None, 1000, &mut r).await.unwrap_err();
        assert!(matches!(err, ReceiveError::BodyTooLarge { inflated: false, .. }));
        let body = http_body_util::Full::new(Bytes::from(vec![0u8; 10]));
        let err = read_limited(body, Some(5000), 1000, &mut r).await.unwrap_err();
        assert!(matches!(err, ReceiveError::BodyTooLarge { seen: Some(5000), .. }), "declared length is checked first");
    }
}
