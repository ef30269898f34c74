//! Validating, counting and splitting OTLP protobuf request bodies without decoding them.
//!
//! The bridge forwards the client's bytes unchanged so that fields unknown to this build survive
//! (a protobuf request is forwarded byte for byte; only JSON is transcoded). Before forwarding it must reject what the backend would reject and count the
//! items (spans, metric data points, log records). A prost decode does both but costs about as
//! much CPU as the whole forwarding path, so [`scan`] walks the wire format instead, guided by a
//! static [`Schema`], accepting only what prost would accept (plus the Collector's id-length
//! rule). [`split`] then cuts a body into smaller valid bodies along whole entries, and [`ResourceStamp`] rewrites
//! only the `Resource` messages of a body to set configured attributes.
//!
//! ```ignore
//! let scan = wire::scan(&wire::TRACES, &body)?;          // 400 with `err.to_string()` on Err
//! for chunk in wire::split(&wire::TRACES, &body, &scan, 4 << 20) { /* forward chunk.body */ }
//! ```

mod error;
mod resource;
mod scan;
mod schema;
mod split;
#[cfg(test)]
mod tests;

use std::ops::Range;

use bytes::Bytes;

pub use error::{ErrorKind, WireError};
pub use resource::{ResourceStamp, Stamped};
pub use schema::{Schema, LOGS, METRICS, PROFILES, TRACES};

/// The result of a successful [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Items in the whole body: spans, metric data points (all types) or log records.
    pub items: u64,
    /// The top-level field-1 records (`resource_spans` / `resource_metrics` / `resource_logs`)
    /// in body order. Unknown top-level fields are valid but not listed here; they are the bytes
    /// between (or around) the entries' ranges.
    pub entries: Vec<Entry>,
}

/// One top-level resource entry of a scanned body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Byte range of the whole record (key, length and payload) in the body; any run of
    /// entries concatenated is itself a valid request body.
    pub range: Range<usize>,
    /// Items inside this entry.
    pub items: u64,
}

/// One request body produced by [`split`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// A valid request body of the same type. A slice of the input (no copy) when the chunk is a
    /// run of whole entries, which is the case unless a single entry exceeded the limit.
    pub body: Bytes,
    /// Items in `body`.
    pub items: u64,
}

/// Validates a request body of the given type and counts its items, in one pass and without
/// decoding. Accepts only bodies prost would decode, and additionally rejects trace ids not
/// 0 or 16 bytes long and span ids not 0 or 8 bytes long, as the Collector does. Unknown fields
/// (future OTLP versions) are accepted anywhere, as long as they are well-formed.
///
/// The error's `Display` names the field path and byte offset, for a 400 response body.
pub fn scan(schema: &'static Schema, body: &[u8]) -> Result<Scan, WireError> {
    scan::scan_request(schema, body)
}

/// Splits a body that [`scan`] accepted (`scan` must be its result) into valid request bodies,
/// each at most `max_bytes` long when possible; items keep their order, each item is in exactly
/// one chunk, and concatenating the chunks' items gives the body's.
///
/// Whole resource entries are grouped in order (zero-copy slices). An entry larger than
/// `max_bytes` on its own is split by scope entries, each piece re-emitting the entry's other
/// fields (resource, schema_url, unknown ones); a scope entry still too big is split by its items
/// (re-emitting scope and schema_url) — for metrics by metric and then by data point,
/// re-emitting the metric's name, description, unit, metadata and aggregation fields.
/// A single item larger than `max_bytes` gets a chunk of its own.
///
/// A body no longer than `max_bytes` comes back whole as one chunk (even if empty). Unknown
/// top-level fields are forwarded exactly once, in the chunk nearest their position; such a
/// chunk may hold 0 items. If `scan` does not fit `body`, the body is returned whole.
pub fn split(schema: &'static Schema, body: &Bytes, scan: &Scan, max_bytes: usize) -> Vec<Chunk> {
    split::split_body(schema, body, scan, max_bytes)
}
