//! Reading a request body under the wire limit, and inflating it under the same limit.
//!
//! Every byte of the body passes through here, and nothing else in the crate reads or inflates bodies
//! (`clippy.toml` bans the unbounded helpers), so a 1 KiB gzip bomb can never allocate more than the limit.

use std::io::Read;

use bytes::{Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;

use super::ReceiveError;
use crate::limit::{Reservation, UPFRONT_RESERVATION};

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

/// Reads the whole body, failing with 413 as soon as it passes `limit` bytes, and with 408 when no byte arrives for
/// `idle`. The reservation follows the bytes that arrived (never the declared length), so a client holds about what
/// it has sent, and only for as long as it keeps sending.
pub(crate) async fn read_limited<B>(
    mut body: B,
    declared: Option<usize>,
    limit: usize,
    idle: std::time::Duration,
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
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(ReceiveError::BodyStalled(idle)),
            Ok(None) => break,
            Ok(Some(frame)) => frame.map_err(|e| ReceiveError::BodyRead(e.to_string()))?,
        };
        let Ok(data) = frame.into_data() else { continue };
        total = total.saturating_add(data.len());
        if total > limit {
            return Err(ReceiveError::BodyTooLarge { limit, inflated: false, seen: None });
        }
        // The common single-frame body is kept as it came: no copy at all.
        let earlier = match first.take() {
            None if buf.is_empty() => {
                if let Err(e) = reservation.resize(reservation.bytes().max(total)) {
                    return Err(refuse_mid_body(body, declared, limit, e).await);
                }
                first = Some(data);
                continue;
            }
            earlier => earlier,
        };
        let needed = buf.len() + earlier.as_ref().map_or(0, Bytes::len) + data.len();
        // Reserve what has arrived (rounded up to a read buffer), not what was declared: a client that declares a
        // large body and stops holds only what it sent.
        if let Err(e) = reservation.resize(reservation.bytes().max(needed.next_multiple_of(UPFRONT_RESERVATION))) {
            return Err(refuse_mid_body(body, declared, limit, e).await);
        }
        if needed > buf.capacity() {
            // One allocation for a body of known length: its pages cost memory only once the body fills them.
            buf.reserve(declared.unwrap_or(0).max(needed.max(buf.capacity().saturating_mul(2))) - buf.len());
        }
        if let Some(earlier) = earlier {
            buf.extend_from_slice(&earlier);
        }
        buf.extend_from_slice(&data);
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

/// The memory limit refused a body part way: the rest is read and dropped first, so that a client still sending
/// hears the 503 (and its `Retry-After`) instead of a broken pipe.
async fn refuse_mid_body<B>(
    body: B,
    declared: Option<usize>,
    limit: usize,
    e: crate::limit::MemoryError,
) -> ReceiveError
where
    B: Body<Data = Bytes> + Unpin,
{
    discard(body, declared, limit, REFUSAL_DISCARD_TIMEOUT).await;
    e.into()
}

/// Longest a refused body is drained before its answer is sent anyway.
const REFUSAL_DISCARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads and throws away what is left of a body (up to `limit` bytes, within `timeout`) before an early answer.
///
/// An HTTP/1.1 server that answers without reading the body must close the connection, and a client still
/// writing its body then sees a broken pipe instead of the answer (a 503 with `Retry-After` it could act on).
/// Nothing is kept, so this costs no memory; bodies declared larger than `limit` are not waited for.
pub(crate) async fn discard<B>(mut body: B, declared: Option<usize>, limit: usize, timeout: std::time::Duration)
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
///
/// A body is all of its bytes: every gzip member, zlib stream and zstd frame is inflated, and anything after the
/// last one that is not another member (or anything at all after a raw deflate stream, which has no framing to
/// tell) is a 400 naming the trailing bytes. A stream cut short is a 400 too, never a shorter body.
pub fn inflate(
    encoding: ContentEncoding,
    wire: Bytes,
    limit: usize,
    reservation: &mut Reservation,
) -> Result<Bytes, ReceiveError> {
    let wire_len = wire.len();
    let name = match encoding {
        ContentEncoding::Identity => return Ok(wire),
        ContentEncoding::Gzip => "gzip",
        ContentEncoding::Deflate => "deflate",
        ContentEncoding::Zstd => "zstd",
    };
    let mut out = Output::new(wire_len, limit);
    let inflated = match encoding {
        ContentEncoding::Zstd => inflate_zstd(&wire, &mut out, reservation),
        _ => inflate_members(Member::of(encoding, &wire), &wire, &mut out, reservation),
    };
    inflated.map_err(|e| match e {
        CappedError::Io(detail) => ReceiveError::Decompress { encoding: name, detail },
        CappedError::Receive(e) => e,
    })?;
    drop(wire);
    let out = Bytes::from(out.buf);
    // The compressed input is gone; only the inflated bytes stay reserved.
    reservation.resize(out.len())?;
    Ok(out)
}

/// The framing of one deflate-based member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    /// RFC 1952: header, deflate, CRC and length; members may follow each other.
    Gzip,
    /// RFC 1950: header, deflate, Adler-32; HTTP `deflate` proper.
    Zlib,
    /// Bare RFC 1951, as some clients send for `deflate`: nothing marks where another stream would begin.
    Raw,
}

impl Member {
    fn of(encoding: ContentEncoding, wire: &[u8]) -> Member {
        match encoding {
            ContentEncoding::Gzip => Member::Gzip,
            _ if looks_like_zlib(wire) => Member::Zlib,
            _ => Member::Raw,
        }
    }

    /// Whether `rest` starts another member of this framing.
    fn starts(self, rest: &[u8]) -> bool {
        match self {
            Member::Gzip => rest.starts_with(&[0x1f, 0x8b]),
            Member::Zlib => looks_like_zlib(rest),
            Member::Raw => false,
        }
    }
}

fn inflate_members(
    kind: Member,
    wire: &[u8],
    out: &mut Output,
    reservation: &mut Reservation,
) -> Result<(), CappedError> {
    let mut rest = wire;
    loop {
        // The bufread decoders take from `rest` exactly the bytes of one member, so what is left after it is known.
        rest = match kind {
            Member::Gzip => {
                let mut decoder = flate2::bufread::GzDecoder::new(rest);
                out.read_all(&mut decoder, wire.len(), reservation)?;
                decoder.into_inner()
            }
            Member::Zlib => {
                let mut decoder = flate2::bufread::ZlibDecoder::new(rest);
                out.read_all(&mut decoder, wire.len(), reservation)?;
                decoder.into_inner()
            }
            Member::Raw => {
                let mut decoder = flate2::bufread::DeflateDecoder::new(rest);
                out.read_all(&mut decoder, wire.len(), reservation)?;
                decoder.into_inner()
            }
        };
        if rest.is_empty() {
            return Ok(());
        }
        if !kind.starts(rest) {
            let what = match kind {
                Member::Gzip => "another gzip member",
                Member::Zlib => "another zlib stream",
                Member::Raw => "part of the raw deflate stream",
            };
            return Err(CappedError::Io(format!(
                "{} trailing byte(s) after the end of the compressed data at offset {} are not {what}; the body \
                 must be compressed data only",
                rest.len(),
                wire.len() - rest.len()
            )));
        }
    }
}

fn inflate_zstd(wire: &[u8], out: &mut Output, reservation: &mut Reservation) -> Result<(), CappedError> {
    // zstd's reader decodes every frame in turn (skippable frames included) and fails on bytes that are not one,
    // and on a frame cut short.
    let mut decoder = zstd::stream::read::Decoder::with_buffer(wire).map_err(|e| CappedError::Io(e.to_string()))?;
    // A frame may ask for a window of up to 2 GiB; 16 MiB covers every standard level (19 uses 8 MiB) and keeps a
    // hostile frame from allocating more than that.
    decoder.window_log_max(24).map_err(|e| CappedError::Io(e.to_string()))?;
    out.read_all(&mut decoder, wire.len(), reservation)
}

enum CappedError {
    Io(String),
    Receive(ReceiveError),
}

/// Inflated bytes, never more than `limit` (+1 byte that proves a body too large), counted in the reservation
/// beside the wire bytes as the buffer grows.
struct Output {
    buf: Vec<u8>,
    limit: usize,
}

impl Output {
    fn new(wire_len: usize, limit: usize) -> Output {
        const FIRST_GUESS: usize = 256 * 1024;
        // A first guess of 4x the wire size, at least one step, never more than the limit allows.
        let capacity = wire_len.saturating_mul(4).max(FIRST_GUESS).min(limit.saturating_add(1));
        Output { buf: Vec::with_capacity(capacity), limit }
    }

    /// Appends everything `reader` yields until its end.
    fn read_all(
        &mut self,
        mut reader: impl Read,
        wire_len: usize,
        reservation: &mut Reservation,
    ) -> Result<(), CappedError> {
        const STEP: usize = 256 * 1024;
        let (out, limit) = (&mut self.buf, self.limit);
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
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        out.truncate(start);
                        return Err(CappedError::Io("the compressed data ends before its stream does".into()));
                    }
                    Err(e) => {
                        out.truncate(start);
                        return Err(CappedError::Io(e.to_string()));
                    }
                    Ok(n) => break n,
                }
            };
            out.truncate(start + n);
            if out.len() > limit {
                return Err(CappedError::Receive(ReceiveError::BodyTooLarge { limit, inflated: true, seen: None }));
            }
            if n == 0 {
                return Ok(());
            }
        }
    }
}

fn looks_like_zlib(data: &[u8]) -> bool {
    // RFC 1950: CM = 8 (deflate) and the header is a multiple of 31.
    matches!(data, [cmf, flg, ..] if cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0)
}

#[cfg(test)]
mod tests;
