//! Cutting a validated request body into smaller valid request bodies.
//!
//! A request body is a concatenation of top-level records, so any run of consecutive records is
//! itself a request: the common case is a zero-copy `Bytes::slice` of whole resource entries.
//! Only an entry larger than the limit on its own is rebuilt, recursively, along the schema's
//! `split` fields (resource -> scope entries -> items; for metrics scope -> metric -> data
//! points), re-emitting every other field of the parent (resource, scope, schema_url, metric
//! name, aggregation temporality, unknown fields...) in each piece.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use super::scan::{for_each_field, read_key, read_varint};
use super::schema::{Kind, Schema};
use super::{Chunk, Scan};

/// A run of top-level (or, inside `split_record`, child) records with its item count.
enum Unit {
    /// Bytes of the input body, copied only if a chunk has to be assembled.
    Range(Range<usize>, u64),
    /// A record rebuilt from pieces of an oversized one.
    Built(Bytes, u64),
}

impl Unit {
    fn len(&self) -> usize {
        match self {
            Unit::Range(r, _) => r.len(),
            Unit::Built(b, _) => b.len(),
        }
    }
    fn items(&self) -> u64 {
        match self {
            Unit::Range(_, n) | Unit::Built(_, n) => *n,
        }
    }
    fn bytes<'a>(&'a self, body: &'a [u8]) -> &'a [u8] {
        match self {
            Unit::Range(r, _) => &body[r.clone()],
            Unit::Built(b, _) => b,
        }
    }
}

pub(super) fn varint_len(v: u64) -> usize {
    // 7 payload bits per byte; at least one byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

pub(super) fn put_varint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// See [`super::split`].
pub(super) fn split_body(schema: &'static Schema, body: &Bytes, scan: &Scan, max: usize) -> Vec<Chunk> {
    let whole = || vec![Chunk { body: body.clone(), items: scan.items }];
    if body.len() <= max || !consistent(scan, body.len()) {
        return whole();
    }
    // A request whose entries are not split along (profiles: they index a request-wide dictionary) goes whole.
    let Some(Kind::Msg(entry_schema)) = schema.field(1).filter(|f| f.split).map(|f| f.kind) else {
        return whole();
    };
    let mut units = Vec::with_capacity(scan.entries.len());
    let mut prev = 0;
    for e in &scan.entries {
        if e.range.start > prev {
            // Unknown top-level fields: forwarded once, in whichever chunk they land.
            units.push(Unit::Range(prev..e.range.start, 0));
        }
        if e.range.len() > max {
            split_record(body, e.range.clone(), entry_schema, max, &mut units);
        } else {
            units.push(Unit::Range(e.range.clone(), e.items));
        }
        prev = e.range.end;
    }
    if prev < body.len() {
        units.push(Unit::Range(prev..body.len(), 0));
    }
    pack(body, units, max)
}

/// Entries must be in order, non-overlapping and inside the body; anything else means the
/// caller passed a `Scan` of another body, and slicing by it could panic.
fn consistent(scan: &Scan, len: usize) -> bool {
    let mut prev = 0;
    scan.entries.iter().all(|e| {
        let ok = e.range.start >= prev && e.range.start <= e.range.end && e.range.end <= len;
        prev = e.range.end;
        ok
    })
}

/// Greedily groups consecutive units into chunks of at most `max` bytes (a unit that is larger
/// on its own gets a chunk to itself).
fn pack(body: &Bytes, units: Vec<Unit>, max: usize) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut group: Vec<Unit> = Vec::new();
    let mut size = 0;
    for u in units {
        if !group.is_empty() && size + u.len() > max {
            chunks.push(assemble(body, std::mem::take(&mut group)));
            size = 0;
        }
        size += u.len();
        group.push(u);
    }
    if !group.is_empty() {
        chunks.push(assemble(body, group));
    }
    chunks
}

fn assemble(body: &Bytes, group: Vec<Unit>) -> Chunk {
    let items = group.iter().map(Unit::items).sum();
    // Contiguous input ranges need no copy.
    let mut span: Option<Range<usize>> = None;
    for u in &group {
        span = match (span, u) {
            (None, Unit::Range(r, _)) => Some(r.clone()),
            (Some(s), Unit::Range(r, _)) if s.end == r.start => Some(s.start..r.end),
            _ => None,
        };
        if span.is_none() {
            break;
        }
    }
    if let Some(s) = span {
        return Chunk { body: body.slice(s), items };
    }
    if let [Unit::Built(b, _)] = group.as_slice() {
        return Chunk { body: b.clone(), items };
    }
    let mut out = BytesMut::with_capacity(group.iter().map(Unit::len).sum());
    for u in &group {
        out.put_slice(u.bytes(body));
    }
    Chunk { body: out.freeze(), items }
}

/// A `split` field occurrence inside a record being split.
struct Child {
    /// Key, length and payload, in the body.
    record: Range<usize>,
    /// Payload only, in the body.
    payload: Range<usize>,
    schema: &'static Schema,
    num: u32,
    item: bool,
    oneof: bool,
}

/// Splits the length-delimited record at `rec` (key, length, payload of a `schema` message)
/// into records of the same field that are each at most `max` bytes where the structure allows,
/// appending them to `out`.
fn split_record(body: &Bytes, rec: Range<usize>, schema: &'static Schema, max: usize, out: &mut Vec<Unit>) {
    let raw = &body[rec.clone()];
    let mut pos = 0;
    let num = match (read_key(raw, &mut pos), read_varint(raw, &mut pos)) {
        (Ok((num, _)), Ok(len)) if len == (raw.len() - pos) as u64 => num,
        _ => {
            out.push(Unit::Range(rec, 0));
            return;
        }
    };
    let payload_at = rec.start + pos;
    let payload = &raw[pos..];
    let mut header: Vec<u8> = Vec::new();
    let mut children: Vec<Child> = Vec::new();
    for_each_field(payload, |n, r, p| match schema.field(n).map(|f| (f, f.kind)) {
        Some((f, Kind::Msg(schema))) if f.split => {
            let (record, payload) =
                (payload_at + r.start..payload_at + r.end, payload_at + p.start..payload_at + p.end);
            children.push(Child { record, payload, schema, num: n, item: f.item, oneof: f.oneof });
        }
        _ => header.extend_from_slice(&payload[r]),
    });
    // A message may carry several variants of one oneof (a metric with a `summary` and then a `gauge`): a decode
    // keeps only the last variant (merging its consecutive occurrences) and drops the earlier ones. Pieces keep only
    // what a decode keeps, so that a piece never brings a dropped variant back (and the metric's points are cut
    // like any other metric's); the dropped ones are data no receiver sees.
    if let Some(live) = children.iter().rev().find(|c| c.oneof).map(|c| c.num) {
        if let Some(last_dead) = children.iter().rposition(|c| c.oneof && c.num != live) {
            let mut index = 0;
            children.retain(|c| {
                index += 1;
                !(c.oneof && index - 1 <= last_dead)
            });
        }
    }
    if children.is_empty() {
        // Nothing to cut along.
        let items = count(schema, payload);
        out.push(Unit::Range(rec, items));
        return;
    }
    let key = (u64::from(num) << 3) | 2;
    let key_len = varint_len(key);
    let h = header.len();
    let piece_size = |c: usize| key_len + varint_len((h + c) as u64) + h + c;
    let child_max = max.saturating_sub(key_len + h + varint_len(max as u64));

    let mut child_units = Vec::with_capacity(children.len());
    for c in children {
        if piece_size(c.record.len()) > max && c.schema.fields.iter().any(|f| f.split) {
            split_record(body, c.record, c.schema, child_max, &mut child_units);
        } else {
            // An item holds no items, so only containers need a count.
            let items = if c.item { 1 } else { count(c.schema, &body[c.payload]) };
            child_units.push(Unit::Range(c.record, items));
        }
    }

    let mut group: Vec<Unit> = Vec::new();
    let mut c = 0;
    let flush = |group: &mut Vec<Unit>, c: usize, out: &mut Vec<Unit>| {
        let mut buf = BytesMut::with_capacity(piece_size(c));
        put_varint(&mut buf, key);
        put_varint(&mut buf, (h + c) as u64);
        buf.put_slice(&header);
        let mut items = 0;
        for u in group.drain(..) {
            buf.put_slice(u.bytes(body));
            items += u.items();
        }
        out.push(Unit::Built(buf.freeze(), items));
    };
    for u in child_units {
        if !group.is_empty() && piece_size(c + u.len()) > max {
            flush(&mut group, c, out);
            c = 0;
        }
        c += u.len();
        group.push(u);
    }
    if !group.is_empty() {
        flush(&mut group, c, out);
    }
}

/// Items in an already validated message payload: walks only the fields that lead to items
/// (skipping attributes and the items' own contents), keeping prost's oneof rule.
fn count(schema: &'static Schema, payload: &[u8]) -> u64 {
    let (mut items, mut oneof_num, mut oneof_items) = (0, 0, 0);
    for_each_field(payload, |n, _, p| {
        let Some(f) = schema.field(n) else { return };
        let inner = match f.kind {
            Kind::Msg(cs) if f.split && !f.item => count(cs, &payload[p]),
            _ => 0,
        };
        let n_items = inner + u64::from(f.item);
        if f.oneof {
            if n != oneof_num {
                (oneof_num, oneof_items) = (n, 0);
            }
            oneof_items += n_items;
        } else {
            items += n_items;
        }
    });
    items + oneof_items
}
