//! OTLP/JSON codec for the `opentelemetry-proto` prost types.
//!
//! Decoding goes in one pass from bytes to the prost messages (serde_json's streaming deserializer driven by
//! hand-written visitors: no `serde_json::Value`, no `flatten`, no second parse). It follows the OTLP spec,
//! and accepts what the OpenTelemetry Collector accepts beyond it, but never drops data silently:
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
//! Encoding writes spec-conformant OTLP/JSON on one line: lowerCamelCase keys, lowercase hex ids,
//! 64-bit integers as decimal strings, enums as integers, standard padded base64, non-finite doubles as
//! strings, default values omitted except set oneof members.

mod de_common;
mod de_logs;
mod de_metrics;
mod de_scalar;
mod de_trace;
mod encode;
mod encode_signals;
mod error;
#[cfg(test)]
mod tests;

pub use error::JsonError;

use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};

/// A top-level OTLP message with an OTLP/JSON form: the three `Export*ServiceRequest` types and
/// the three `Export*ServiceResponse` types. Sealed: the work is done by crate-internal traits.
pub trait JsonMessage: Sized + de_common::Msg + encode::Encode {}

impl JsonMessage for ExportTraceServiceRequest {}
impl JsonMessage for ExportMetricsServiceRequest {}
impl JsonMessage for ExportLogsServiceRequest {}
impl JsonMessage for ExportTraceServiceResponse {}
impl JsonMessage for ExportMetricsServiceResponse {}
impl JsonMessage for ExportLogsServiceResponse {}

/// Decodes an OTLP/JSON body (UTF-8 JSON object, nothing but whitespace after it).
pub fn decode<T: JsonMessage>(body: &[u8]) -> Result<T, JsonError> {
    let mut ctx = error::Ctx::default();
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = de_common::decode_top::<T, _>(&mut de, &mut ctx).and_then(|msg| {
        de.end()?;
        Ok(msg)
    });
    result.map_err(|e| JsonError::from_serde(&e, &mut ctx, body))
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
