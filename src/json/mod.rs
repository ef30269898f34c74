//! OTLP/JSON codec: requests are transcoded straight to protobuf bytes; prost types are only encoded from.
//!
//! The receiver's path is [`transcode_within`]: OTLP/JSON in, the protobuf encoding of the same message out, in one
//! pass with no message tree (a streaming deserializer driven by hand-written visitors: no `serde_json::Value`, no
//! `flatten`), so nothing of the request goes through a prost type. Two readers drive the same visitors: `reader`,
//! tuned for OTLP's usual bodies, reads first; on anything it does not take (every error, and rare forms) it gives
//! up and serde_json reads the body again, so errors and rare cases are serde_json's. What the fast reader
//! takes, it reads as serde_json would (the differential properties check both, byte for byte).
//! `decode` builds the prost messages from the same tables and visitors; the binary never does, so it exists only
//! under `cfg(test)` or the `json-tree` feature (tests, benchmarks and fuzz targets, which compare the two). The
//! transcoder's independent oracle is elsewhere: `tests/oracle.rs` checks it against prost-reflect's proto3 JSON
//! mapping. Both paths follow the OTLP spec, and accept what the OpenTelemetry Collector accepts beyond it, but
//! never drop data silently:
//!
//! - keys in lowerCamelCase and their snake_case (proto field name) aliases; unknown keys are skipped;
//!   a known field given twice is an error;
//! - `traceId` / `spanId` / `parentSpanId`: case-insensitive hex of exactly 32 / 16 characters;
//!   `""` or `null` = absent;
//! - 64- and 32-bit integers: JSON numbers or decimal strings. A number written with a fraction or
//!   exponent (`1e3`, `5.0`) is accepted only when it is an exact integer of magnitude at most 2^53, since
//!   beyond that the parsed f64 may no longer be the value the client wrote;
//! - doubles: numbers, numeric strings, `"NaN"`, `"Infinity"`, `"-Infinity"`;
//! - bytes: base64, standard or URL-safe alphabet, padded or not;
//! - enums: any int32 (unknown values are kept) or the proto value name (`"SPAN_KIND_SERVER"`);
//!   numeric strings (`"2"`) are accepted too;
//! - `null` anywhere = the default value (absent for optional messages and `optional double`);
//!   `null` elements of arrays become default elements;
//! - oneofs: a `null` member counts as absent; a second non-null member is an error;
//! - only a JSON object at the top level, and nothing after it; nesting is bounded by serde_json's
//!   recursion limit (128), so hostile depth is an error, never a stack overflow.
//!
//! Errors name the field path and the line/column: see [`JsonError`].
//!
//! The schema tables (`table.rs`'s `message!`: field names, JSON rules, field numbers and wire forms), generated
//! once by `src/codegen` from `proto/` into `src/generated/`, drive both, and the encoder too. An id field's error names its
//! kind and length (`invalid profile id "...": expected 32 hex characters`), from the generator's `IDS` overlay (src/codegen).
//!
//! Encoding (answers' bodies and the debug backend, from prost types) writes spec-conformant OTLP/JSON on one line: lowerCamelCase keys, lowercase hex ids,
//! 64-bit integers as decimal strings, enums as integers, standard padded base64, non-finite doubles as
//! strings, default values omitted except set oneof members.

mod de_common;
mod de_scalar;
#[cfg(any(test, feature = "json-tree"))]
mod de_tree;
mod encode;
mod error;
mod reader;
mod schema;
mod table;
mod tc_kinds;
mod tc_msg;
mod tc_out;
#[cfg(test)]
mod tests;

pub use error::JsonError;

/// A top-level OTLP message with an OTLP/JSON form: each signal's `Export*ServiceRequest` and
/// `Export*ServiceResponse` (implemented in the generated `schema.rs`). Sealed: the work is done by crate-internal
/// traits.
pub trait JsonMessage: Sized + de_common::Msg + encode::Encode {}

/// Decodes an OTLP/JSON body (UTF-8 JSON object, nothing but whitespace after it) into the prost message.
///
/// Accepts and rejects exactly what [`transcode`] does, with the same [`JsonError`], and returns the message the
/// transcoder's bytes decode to (the fuzz targets and `cargo test` check both claims).
#[cfg(any(test, feature = "json-tree"))]
pub fn decode<T: JsonMessage>(body: &[u8]) -> Result<T, JsonError> {
    let mut ctx = error::Ctx::default();
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = de_tree::decode_top::<T, _>(&mut de, &mut ctx).and_then(|msg| {
        de.end()?;
        Ok(msg)
    });
    result.map_err(|e| JsonError::from_serde(&e, &mut ctx, body))
}

/// OTLP/JSON straight to the protobuf encoding of the same message; returns the item count (spans, metric
/// data points as the Collector counts them, log records).
///
/// One pass, no message tree: the protobuf bytes are appended to `out` while the JSON is read. Fields are written
/// in the order the JSON gives them, which protobuf permits; defaults are omitted as prost omits them. On error,
/// `out` is left as it was, and the [`JsonError`] names the field path and the position.
///
/// `out` gets `body.len()` bytes of spare capacity up front. The protobuf form is usually under half the
/// size of the JSON, but is not bounded by it (`"bucketCounts":[1,2]` grows: fixed64 takes 8 bytes each).
pub fn transcode<T: JsonMessage>(body: &[u8], out: &mut Vec<u8>) -> Result<u64, JsonError> {
    // Without a cap the output cannot overflow, so there is always a count.
    transcode_within::<T>(body, out, usize::MAX).map(|items| items.unwrap_or_default())
}

/// [`transcode`], but `Ok(None)` (and `out` as it was) as soon as the output would pass `max_out` bytes, so that
/// what the caller reserved for it bounds the memory used: protobuf may be up to four times longer than its JSON
/// text when it holds long packed arrays of small numbers.
pub fn transcode_within<T: JsonMessage>(
    body: &[u8],
    out: &mut Vec<u8>,
    max_out: usize,
) -> Result<Option<u64>, JsonError> {
    // JSON text is UTF-8 (RFC 8259): checked once for the whole body (SIMD), so neither reader checks each string
    // again. A body that is not UTF-8 goes serde_json's checking way, so its error (position, wording) is the one it
    // always was.
    let Ok(text) = simdutf8::basic::from_utf8(body) else {
        return transcode_serde::<T, _>(serde_json::Deserializer::from_slice(body), body, out, max_out);
    };
    // The fast reader takes the usual bodies; what it gives up on (errors, rare forms), serde_json reads again from
    // the start, with the same visitors: the answer is the same either way (see `reader`).
    if let Some(done) = transcode_fast::<T>(text, out, max_out) {
        return Ok(done);
    }
    transcode_serde::<T, _>(serde_json::Deserializer::from_str(text), body, out, max_out)
}

/// The fast reader's transcoding: `None` (and `out` as it was) when it gives up, else what [`transcode_within`]
/// returns.
fn transcode_fast<T: JsonMessage>(text: &str, out: &mut Vec<u8>, max_out: usize) -> Option<Option<u64>> {
    let mut tc = tc_out::Tc::new(out, text.len(), max_out);
    let mut reader = reader::Reader::new(text);
    match tc_msg::transcode_top::<T, _>(&mut reader, &mut tc).and_then(|()| reader.end()) {
        Ok(()) => Some(tc.finish()),
        Err(reader::Bail) => {
            tc.out.abort();
            None
        }
    }
}

/// serde_json's transcoding, which names the error and its position.
fn transcode_serde<'de, T: JsonMessage, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    body: &[u8],
    out: &mut Vec<u8>,
    max_out: usize,
) -> Result<Option<u64>, JsonError> {
    let mut tc = tc_out::Tc::new(out, body.len(), max_out);
    match tc_msg::transcode_top::<T, _>(&mut de, &mut tc).and_then(|()| de.end()) {
        Ok(()) => Ok(tc.finish()),
        Err(e) => {
            let err = JsonError::from_serde(&e, &mut tc.ctx, body);
            tc.out.abort();
            Err(err)
        }
    }
}

/// The two readers one at a time, for the differential tests and benchmarks: `fast` = the fast reader alone
/// (`None` when it gives up), `serde` = serde_json alone (what the receiver falls back to).
#[cfg(any(test, feature = "json-tree"))]
pub mod readers {
    use super::{JsonError, JsonMessage};

    /// The fast reader alone: `None` when it leaves the body to serde_json, else [`transcode_within`](super::transcode_within)'s answer.
    pub fn fast<T: JsonMessage>(body: &[u8], out: &mut Vec<u8>, max_out: usize) -> Option<Option<u64>> {
        let text = std::str::from_utf8(body).ok()?;
        super::transcode_fast::<T>(text, out, max_out)
    }

    /// serde_json alone, as the receiver reads a body the fast reader gives up on.
    pub fn serde<T: JsonMessage>(body: &[u8], out: &mut Vec<u8>, max_out: usize) -> Result<Option<u64>, JsonError> {
        match std::str::from_utf8(body) {
            Ok(text) => super::transcode_serde::<T, _>(serde_json::Deserializer::from_str(text), body, out, max_out),
            Err(_) => super::transcode_serde::<T, _>(serde_json::Deserializer::from_slice(body), body, out, max_out),
        }
    }
}

/// The top-level keys of message `T`, each lowerCamelCase with its snake_case alias, from the generated tables: what
/// the receiver's hints name when a request's keys belong to another signal.
pub(crate) fn keys<T: JsonMessage>() -> &'static [(&'static str, &'static str)] {
    <T as de_common::Msg>::KEYS
}

/// Encodes a message as compact, one-line OTLP/JSON.
pub fn encode<T: JsonMessage>(msg: &T) -> String {
    let mut out = String::new();
    encode_into(msg, &mut out);
    out
}

/// Appends the OTLP/JSON form of `msg` to `out`, so a caller can reuse one buffer.
pub fn encode_into<T: JsonMessage>(msg: &T, out: &mut String) {
    msg.encode(out);
}
