//! The decode and split steps: a body becomes valid protobuf and its item count, then exports of at most the
//! export size. JSON is transcoded straight to protobuf (no message tree); protobuf is scanned and kept as it came.

use bytes::Bytes;

use super::{Format, IngestError};
use crate::limit::{MemoryError, Reservation};
use crate::signal::{Signal, SignalKind};

/// A request as it will be forwarded: valid protobuf and its item count.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// The protobuf request, as it will be forwarded (or split).
    pub(crate) payload: Bytes,
    /// The items it holds (spans, data points, log records, samples).
    pub(crate) items: u64,
    /// What the client sent: the `encoding` label of the receiver metrics.
    pub(crate) format: Format,
    /// The wire scan of `payload`, when decoding made one (protobuf bodies) and nothing changed the bytes since:
    /// the split reuses it.
    pub(crate) scan: Option<crate::wire::Scan>,
}

/// The decode step: `plain` (inflated) as protobuf of signal `S`; the reservation follows what is held.
pub(super) fn decode<S: Signal>(
    format: Format,
    plain: Bytes,
    reservation: &mut Reservation,
) -> Result<Decoded, IngestError> {
    match format {
        Format::Protobuf => {
            let scan = crate::wire::scan(S::KIND.schema(), &plain)?;
            Ok(Decoded { items: scan.items, payload: plain, format, scan: Some(scan) })
        }
        Format::Json => {
            // Straight from JSON text to protobuf, no message tree: the output lives beside the text for a moment.
            // It is usually about half the text, so the text's size is reserved for it; long packed arrays of small
            // numbers (`bucketCounts`) can make it up to four times longer, and then it is done again with room
            // for that, so what is reserved always bounds what is held.
            let text = plain.len();
            reservation.resize(text.saturating_mul(2))?;
            let mut protobuf = Vec::new();
            let items = match crate::json::transcode_within::<S::Request>(&plain, &mut protobuf, text)? {
                Some(items) => items,
                None => {
                    let room = text.saturating_mul(4).saturating_add(64 * 1024);
                    reservation.resize(text.saturating_add(room))?;
                    crate::json::transcode_within::<S::Request>(&plain, &mut protobuf, room)?.ok_or(
                        MemoryError::TooLarge { needed: text.saturating_add(room), limit: reservation.bytes() },
                    )?
                }
            };
            drop(plain);
            // Held until the backend answers: keep only what it uses, not the text-sized capacity.
            protobuf.shrink_to_fit();
            let payload = Bytes::from(protobuf);
            reservation.resize(payload.len())?;
            Ok(Decoded { payload, items, format, scan: None })
        }
    }
}

/// The resource-attributes step: every resource of the validated request gets the configured attributes, on the
/// wire (only the `Resource` messages are rewritten; the items are not decoded). The item count does not change;
/// the reservation covers both bodies while the new one is written, then the new one.
pub(super) fn stamp(
    kind: SignalKind,
    stamp: &crate::wire::ResourceStamp,
    decoded: Decoded,
    reservation: &mut Reservation,
) -> Result<Decoded, IngestError> {
    let schema = kind.schema();
    let Decoded { payload, items, format, scan } = decoded;
    let capacity = stamp.max_len(schema, &payload, scan.as_ref());
    reservation.resize(payload.len().saturating_add(capacity))?;
    let stamped = stamp.apply(schema, &payload, scan.as_ref());
    drop(payload);
    // The new body's buffer was allocated at `capacity` (a bound a little over its length).
    reservation.resize(capacity)?;
    Ok(Decoded { payload: stamped.body, items, format, scan: stamped.scan })
}

/// Splits a request larger than one export into valid requests at whole resource/scope/item entries.
pub(super) fn split(kind: SignalKind, decoded: Decoded, max_bytes: usize) -> Result<Vec<(Bytes, u64)>, IngestError> {
    if decoded.payload.len() <= max_bytes {
        return Ok(vec![(decoded.payload, decoded.items)]);
    }
    let scan = match decoded.scan {
        Some(scan) => scan,
        None => crate::wire::scan(kind.schema(), &decoded.payload)?,
    };
    let chunks = crate::wire::split(kind.schema(), &decoded.payload, &scan, max_bytes);
    Ok(chunks.into_iter().map(|c| (c.body, c.items)).collect())
}
