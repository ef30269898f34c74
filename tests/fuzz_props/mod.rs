//! The properties the cargo-fuzz targets in `fuzz/` check, shared with `tests/e2e/fuzz_corpus.rs`, which replays the
//! committed corpora and regressions through the same functions under `cargo test`.
//!
//! The fuzz crate includes this file with `#[path]`, so it may only use crates both depend on. Each property takes
//! the raw fuzz input and panics (a crash, for libFuzzer) when the bridge misbehaves.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `pub` is for the fuzz crate, which includes this file as its library; under `cargo test` it is private.
#![allow(unreachable_pub)]

pub mod http;
mod items;
mod resource;

use bytes::Bytes;
use otlp_bridge::internals::MemoryBudget;
use otlp_bridge::internals::ReceiveError;
use otlp_bridge::internals::{inflate as inflate_body, ContentEncoding};
use otlp_bridge::internals::{json, wire};
use otlp_bridge::{Logs, Metrics, Profiles, Signal, Traces};
use prost::Message;

pub use items::Items;
pub use resource::resource_splice;

/// `json_traces`, `json_metrics`, `json_logs`, `json_profiles`: neither OTLP/JSON path panics, and
/// - `json::transcode` (the receiver's path, JSON straight to protobuf) accepts exactly what `json::decode` accepts,
///   rejects the rest with the same message and leaves its output buffer as it was;
/// - on success its bytes decode (prost) to the message `decode` returns, with the item count `Signal::count` gives,
///   the wire scan (used to split large requests) accepts them with that count;
/// - the fast reader `transcode` tries first gives up or agrees with serde_json's reading, byte for byte;
/// - the receiver's memory bound holds: `transcode_within` with room for the text's size gives the same bytes, or
///   `None` only when the protobuf really is about that long, and the protobuf is never longer than four times the
///   text plus 64 KiB (what the receiver reserves on its second try);
/// - the decoded message re-encodes to protobuf that prost decodes to the same bytes, and to OTLP/JSON (our
///   encoder) that decodes to the same message.
pub fn json_signal<S: Signal>(data: &[u8]) {
    const PREFIX: &[u8] = b"kept";
    let mut out = PREFIX.to_vec();
    let transcoded = json::transcode::<S::Request>(data, &mut out);
    let msg = match (json::decode::<S::Request>(data), transcoded) {
        (Ok(msg), Ok(items)) => {
            assert_eq!(items, S::count(&msg), "transcode counts other items than the decoded message holds");
            msg
        }
        (Err(d), Err(t)) => {
            assert_eq!(d.to_string(), t.to_string(), "decode and transcode refuse with different messages");
            assert!(out == PREFIX, "transcode changed its output buffer on error");
            fast_reader_agrees::<S>(data);
            return;
        }
        (Ok(_), Err(e)) => panic!("transcode refuses what decode accepts: {e}"),
        (Err(e), Ok(_)) => panic!("transcode accepts what decode refuses ({e})"),
    };
    fast_reader_agrees::<S>(data);
    let pb = msg.encode_to_vec();
    assert!(out.starts_with(PREFIX), "transcode overwrote its output buffer");
    let tc = &out[PREFIX.len()..];
    let from_tc = S::Request::decode(tc).unwrap_or_else(|e| panic!("prost refuses the transcoded protobuf: {e}"));
    assert!(from_tc.encode_to_vec() == pb, "the transcoded protobuf is another message than decode's");
    let scan = wire::scan(S::KIND.schema(), tc)
        .unwrap_or_else(|e| panic!("the wire scan refuses the transcoded protobuf of an accepted request: {e}"));
    assert_eq!(scan.items, S::count(&msg), "wire scan and decoder count different items");
    assert!(
        tc.len() <= data.len() * 4 + 64 * 1024,
        "{} bytes of OTLP/JSON transcode to {} bytes of protobuf, more than the receiver reserves",
        data.len(),
        tc.len()
    );
    let mut capped = Vec::new();
    match json::transcode_within::<S::Request>(data, &mut capped, data.len()) {
        Ok(Some(items)) => {
            assert_eq!(items, S::count(&msg));
            assert!(capped == tc, "a capped transcode that fits gives the same bytes");
        }
        Ok(None) => {
            assert!(capped.is_empty(), "an overflowing transcode leaves the buffer as it was");
            assert!(
                tc.len() + 8 > data.len(),
                "overflow reported for {} bytes under a cap of {}",
                tc.len(),
                data.len()
            );
        }
        Err(e) => panic!("a capped transcode refuses what the uncapped one accepts: {e}"),
    }

    let again = S::Request::decode(&pb[..]).unwrap_or_else(|e| panic!("prost refuses its own encoding: {e}"));
    assert!(again.encode_to_vec() == pb, "prost round trip changed the message");
    let text = json::encode(&msg);
    let back = json::decode::<S::Request>(text.as_bytes())
        .unwrap_or_else(|e| panic!("our own OTLP/JSON does not decode: {e}\n{text}"));
    assert!(back.encode_to_vec() == pb, "JSON encode -> decode changed the message:\n{text}");
}

/// The transcoder's fast reader either leaves `data` to serde_json (and its buffer as it was) or gives the answer
/// and the bytes serde_json's reading gives, uncapped and under the receiver's first cap (the text's size).
fn fast_reader_agrees<S: Signal>(data: &[u8]) {
    for cap in [usize::MAX, data.len()] {
        let mut fast_out = b"kept".to_vec();
        let Some(fast) = json::readers::fast::<S::Request>(data, &mut fast_out, cap) else {
            assert!(fast_out == b"kept", "the fast reader gave up but changed its output buffer");
            continue;
        };
        let mut serde_out = b"kept".to_vec();
        match json::readers::serde::<S::Request>(data, &mut serde_out, cap) {
            Ok(serde) => assert_eq!(fast, serde, "the fast reader and serde_json count or overflow differently"),
            Err(e) => panic!("the fast reader accepts what serde_json refuses ({e})"),
        }
        assert!(fast_out == serde_out, "the fast reader writes other protobuf than serde_json's reading");
    }
}

/// `json_traces`.
pub fn json_traces(data: &[u8]) {
    json_signal::<Traces>(data);
}

/// `json_metrics`.
pub fn json_metrics(data: &[u8]) {
    json_signal::<Metrics>(data);
}

/// `json_logs`.
pub fn json_logs(data: &[u8]) {
    json_signal::<Logs>(data);
}

/// `json_profiles`.
pub fn json_profiles(data: &[u8]) {
    json_signal::<Profiles>(data);
}

/// `wire_scan`: input = signal selector byte (`% 4`: traces, metrics, logs, profiles), `max_bytes` (u16 LE),
/// protobuf body.
///
/// The scan never panics. What it accepts, prost decodes, with the same item count and valid id lengths; what prost
/// decodes, it accepts, unless it holds groups or bad id lengths. Entries are in order, inside the body, and hold
/// every item. `split` gives chunks that each scan with the item count they claim, fit `max_bytes` unless they hold
/// a single item, and together carry the same items in the same order under the same resource, scope and metric;
/// a profiles request (self-contained: its profiles index into its own dictionary) comes back whole.
pub fn wire_scan(data: &[u8]) {
    let [selector, lo, hi, body @ ..] = data else { return };
    let max_bytes = usize::from(u16::from_le_bytes([*lo, *hi]));
    match selector % 4 {
        0 => wire_signal::<Traces>(body, max_bytes),
        1 => wire_signal::<Metrics>(body, max_bytes),
        2 => wire_signal::<Logs>(body, max_bytes),
        _ => wire_signal::<Profiles>(body, max_bytes),
    }
}

fn wire_signal<S: Signal>(body: &[u8], max_bytes: usize)
where
    S::Request: Items,
{
    let schema = S::KIND.schema();
    let body = Bytes::copy_from_slice(body);
    let decoded = S::Request::decode(&body[..]);
    let scan = match wire::scan(schema, &body) {
        Ok(scan) => scan,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            // Where the scan is stricter than prost on purpose: groups (wire types 3/4, which prost skips in unknown
            // fields but no OTLP message uses) and id lengths (checked on every occurrence; prost keeps the last).
            if decoded.is_ok() {
                let deliberate = matches!(e.kind(), wire::ErrorKind::Group(_) | wire::ErrorKind::IdLength { .. });
                assert!(deliberate, "the scan refuses a body prost decodes: {e}");
            }
            return;
        }
    };
    let msg = decoded.unwrap_or_else(|e| panic!("the scan accepts a body prost refuses: {e}"));
    assert_eq!(scan.items, S::count(&msg), "scan and prost count different items");
    assert!(msg.ids_ok(), "the scan accepts a body with ids of the wrong length");
    let mut end = 0;
    for entry in &scan.entries {
        assert!(entry.range.start >= end && entry.range.end <= body.len() && entry.range.start < entry.range.end);
        end = entry.range.end;
    }
    assert_eq!(scan.entries.iter().map(|e| e.items).sum::<u64>(), scan.items, "entries hold every item");

    let want = msg.items();
    assert_eq!(want.len() as u64, scan.items);
    let chunks = wire::split(schema, &body, &scan, max_bytes);
    if body.len() <= max_bytes || S::KIND.self_contained() {
        assert!(chunks.len() == 1 && chunks[0].body == body, "a body that fits (or must stay whole) comes back whole");
    }
    let mut got = Vec::new();
    for chunk in &chunks {
        let s = wire::scan(schema, &chunk.body).unwrap_or_else(|e| panic!("split made a chunk the scan refuses: {e}"));
        assert_eq!(s.items, chunk.items, "a chunk's item count is wrong");
        assert!(
            chunk.body.len() <= max_bytes || chunk.items <= 1 || S::KIND.self_contained(),
            "a chunk of {} bytes holds {} items (max {max_bytes})",
            chunk.body.len(),
            chunk.items
        );
        got.extend(S::Request::decode(&chunk.body[..]).expect("scanned, so prost decodes it").items());
    }
    assert!(got == want, "split lost, duplicated, reordered or re-parented items");
}

/// `inflate`: input = mode byte, limit (u24 LE, plus one), data.
///
/// Mode `% 3` picks gzip, deflate or zstd; `/ 3 % 2 == 1` compresses the data first (deflate alternating zlib and
/// raw), so the fuzzer explores valid streams too; otherwise the data is inflated as it is. Inflating never panics,
/// never returns more than the limit, never reserves more than limit + 1 + the compressed size (the budget is exactly
/// that, so trying to is a memory error, which fails this check), keeps only the output reserved, and gives back a
/// compressed body that fits exactly as it was.
pub fn inflate(data: &[u8]) {
    let [mode, a, b, c, rest @ ..] = data else { return };
    let limit = 1 + (usize::from(*a) | usize::from(*b) << 8 | usize::from(*c) << 16) % (4 << 20);
    let encoding = [ContentEncoding::Gzip, ContentEncoding::Deflate, ContentEncoding::Zstd][usize::from(mode % 3)];
    let compress = mode / 3 % 2 == 1;
    let wire = if compress { compress_with(encoding, mode / 6 % 2 == 0, rest) } else { rest.to_vec() };
    let wire_len = wire.len();
    let budget = MemoryBudget::new(limit + 1 + wire_len);
    let mut reservation = budget.reserve(wire_len).expect("the wire bytes fit the budget");
    match inflate_body(encoding, Bytes::from(wire), limit, &mut reservation) {
        Ok(out) => {
            assert!(out.len() <= limit, "inflated {} bytes past the limit {limit}", out.len());
            assert_eq!(reservation.bytes(), out.len(), "only the inflated bytes stay reserved");
            if compress {
                assert!(out == rest, "{encoding:?} round trip changed the data");
            }
        }
        Err(ReceiveError::Memory(e)) => {
            panic!("inflate reserved more than limit + 1 + wire ({limit} + 1 + {wire_len}): {e}")
        }
        Err(ReceiveError::BodyTooLarge { .. }) if compress => {
            assert!(rest.len() > limit, "{} bytes refused as over the limit {limit}", rest.len());
        }
        Err(e) => {
            assert!(!compress, "a valid {encoding:?} stream was refused: {e}");
            assert!(!e.to_string().is_empty());
        }
    }
    drop(reservation);
    assert_eq!(budget.held(), 0, "the reservation is released");
}

fn compress_with(encoding: ContentEncoding, zlib: bool, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let fast = flate2::Compression::fast();
    match encoding {
        ContentEncoding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), fast);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        ContentEncoding::Deflate if zlib => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), fast);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        ContentEncoding::Deflate => {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), fast);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        ContentEncoding::Zstd => zstd::bulk::compress(data, 1).unwrap(),
        ContentEncoding::Identity => data.to_vec(),
    }
}
