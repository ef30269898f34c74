//! The single-pass validator and item counter.
//!
//! It walks the protobuf wire format guided by a [`Schema`], checking what prost's decode would
//! check (tags, wire types, varints, lengths, UTF-8, nesting depth) plus the Collector's id-length
//! rule, without building any value. The only allocation on success is the entries `Vec`; the
//! field path of an error is assembled while the error unwinds.

use super::error::{ErrorKind, Seg, WireError};
use super::schema::{is_key_value, Field, Kind, Schema};
use super::{Entry, Scan};

/// prost's recursion limit: a message may sit at most this many levels below the request, and
/// a message at exactly this depth may not contain embedded or unknown fields.
pub(super) const MAX_DEPTH: u32 = 100;

/// A varint that does not parse; a small type so results stay in registers on the hot path.
#[derive(Debug, Clone, Copy)]
pub(super) enum VarintError {
    Truncated,
    Overlong,
}

impl From<VarintError> for ErrorKind {
    #[cold]
    fn from(e: VarintError) -> Self {
        match e {
            VarintError::Truncated => ErrorKind::TruncatedVarint,
            VarintError::Overlong => ErrorKind::OverlongVarint,
        }
    }
}

/// Reads a varint at `*pos`, prost-compatible: at most 10 bytes, the 10th at most 1.
#[inline(always)]
pub(super) fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, VarintError> {
    // Tags and most lengths and small integers are one byte.
    match buf.get(*pos) {
        Some(&b) if b < 0x80 => {
            *pos += 1;
            Ok(u64::from(b))
        }
        _ => read_varint_slow(buf, pos),
    }
}

#[inline(never)]
fn read_varint_slow(buf: &[u8], pos: &mut usize) -> Result<u64, VarintError> {
    let mut p = *pos;
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let b = *buf.get(p).ok_or(VarintError::Truncated)?;
        p += 1;
        if shift == 63 && b > 1 {
            return Err(VarintError::Overlong);
        }
        value |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            *pos = p;
            return Ok(value);
        }
        shift += 7;
        if shift > 63 {
            return Err(VarintError::Overlong);
        }
    }
}

/// Reads a field key; returns (field number, wire type). Rejects what prost rejects
/// (key > u32::MAX, wire types 6/7, field 0) and also groups.
#[inline(always)]
pub(super) fn read_key(buf: &[u8], pos: &mut usize) -> Result<(u32, u8), ErrorKind> {
    let key = read_varint(buf, pos)?;
    if key > u64::from(u32::MAX) {
        return Err(ErrorKind::InvalidKey(key));
    }
    let wt = (key & 7) as u8;
    let num = (key >> 3) as u32;
    match wt {
        6 | 7 => Err(ErrorKind::InvalidWireType(wt)),
        _ if num == 0 => Err(ErrorKind::FieldNumberZero),
        3 | 4 => Err(ErrorKind::Group(wt)),
        _ => Ok((num, wt)),
    }
}

/// Reads a length prefix and returns the payload range, which must fit in `buf`.
#[inline]
fn read_len(buf: &[u8], pos: &mut usize, base: usize, top: bool) -> Result<(usize, usize), WireError> {
    let at = *pos;
    let len = read_varint(buf, pos).map_err(|k| WireError::new(k.into(), base + at))?;
    let left = buf.len() - *pos;
    if len > left as u64 {
        return Err(WireError::new(ErrorKind::LengthPastEnd { len, left, top }, base + *pos));
    }
    let start = *pos;
    *pos += len as usize;
    Ok((start, *pos))
}

#[inline]
fn skip_fixed(buf: &[u8], pos: &mut usize, need: usize, base: usize) -> Result<(), WireError> {
    let left = buf.len() - *pos;
    if left < need {
        return Err(WireError::new(ErrorKind::TruncatedFixed { need, left }, base + *pos));
    }
    *pos += need;
    Ok(())
}

/// Scans a whole request body; see [`super::scan`].
pub(super) fn scan_request(schema: &'static Schema, body: &[u8]) -> Result<Scan, WireError> {
    let mut entries = Vec::new();
    let mut items = 0u64;
    let mut pos = 0;
    while pos < body.len() {
        let start = pos;
        let (num, wt) = read_key(body, &mut pos).map_err(|k| WireError::new(k, start))?;
        let field = schema.field(num);
        let n = scan_value(field, wt, body, &mut pos, 0, 0, true).map_err(|e| e.push(seg(field, num, body, start)))?;
        if num == 1 && field.is_some() {
            entries.push(Entry { range: start..pos, items: n });
        }
        items += n;
    }
    Ok(Scan { items, entries })
}

/// Scans the fields of one message (`buf` is its payload, at `base` in the body, nested
/// `depth` levels below the request) and returns the number of items inside.
pub(super) fn scan_message(schema: &'static Schema, buf: &[u8], base: usize, depth: u32) -> Result<u64, WireError> {
    let mut items = 0u64;
    // Items under a oneof member count only if that variant is the one that survives a decode.
    let mut oneof_num = 0u32;
    let mut oneof_items = 0u64;
    let mut pos = 0;
    while pos < buf.len() {
        let start = pos;
        let (num, wt) = read_key(buf, &mut pos).map_err(|k| WireError::new(k, base + start))?;
        let field = schema.field(num);
        let n = scan_value(field, wt, buf, &mut pos, base, depth, false)
            .map_err(|e| e.push(seg(field, num, buf, start)))?;
        match field {
            Some(f) if f.oneof => {
                if num != oneof_num {
                    oneof_num = num;
                    oneof_items = 0;
                }
                oneof_items += n;
            }
            _ => items += n,
        }
    }
    Ok(items + oneof_items)
}

/// Checks one field value whose key has been read; `*pos` moves past the value. Inlined into the message loop, so
/// that the only call per field is the one into an embedded message.
#[inline(always)]
fn scan_value(
    field: Option<&'static Field>,
    wt: u8,
    buf: &[u8],
    pos: &mut usize,
    base: usize,
    depth: u32,
    top: bool,
) -> Result<u64, WireError> {
    let Some(field) = field else {
        // prost's skip_field refuses to skip anything once the recursion budget is spent.
        if depth >= MAX_DEPTH {
            return Err(WireError::new(ErrorKind::TooDeep(MAX_DEPTH), base + *pos));
        }
        return skip_unknown(wt, buf, pos, base, top);
    };
    let kind = field.kind;
    match (kind, wt) {
        (Kind::Varint | Kind::PackedVarint, 0) => {
            let at = *pos;
            read_varint(buf, pos).map_err(|k| WireError::new(k.into(), base + at))?;
        }
        (Kind::Fixed64 | Kind::PackedFixed64, 1) => skip_fixed(buf, pos, 8, base)?,
        (Kind::Fixed32, 5) => skip_fixed(buf, pos, 4, base)?,
        (Kind::Str | Kind::Bytes | Kind::Id(_) | Kind::Msg(_) | Kind::PackedVarint | Kind::PackedFixed64, 2) => {
            let (s, e) = read_len(buf, pos, base, top)?;
            let payload = &buf[s..e];
            match kind {
                // is_ascii is a cheap inlined word-at-a-time check; most OTLP strings are ASCII.
                Kind::Str if !is_ascii(payload) => {
                    if let Err(err) = std::str::from_utf8(payload) {
                        let at = base + s + err.valid_up_to();
                        return Err(WireError::new(ErrorKind::InvalidUtf8, at));
                    }
                }
                Kind::Id(want) if !payload.is_empty() && payload.len() != want => {
                    let k = ErrorKind::IdLength { len: payload.len(), expected: want };
                    return Err(WireError::new(k, base + s));
                }
                Kind::Msg(schema) => {
                    // The `KeyValue` sits at `depth + 1` and holds an `AnyValue`: the generic walk accepts that
                    // only while `depth + 1` is below the limit, so only then may the common shape skip it.
                    if depth + 1 < MAX_DEPTH && is_key_value(schema) && key_value_is_plain(payload) {
                        return Ok(u64::from(field.item));
                    }
                    if depth >= MAX_DEPTH {
                        return Err(WireError::new(ErrorKind::TooDeep(MAX_DEPTH), base + s));
                    }
                    let n = scan_message(schema, payload, base + s, depth + 1)?;
                    return Ok(n + u64::from(field.item));
                }
                Kind::PackedFixed64 if !payload.len().is_multiple_of(8) => {
                    let k = ErrorKind::PackedLength(payload.len());
                    return Err(WireError::new(k, base + s));
                }
                Kind::PackedVarint => {
                    let mut p = 0;
                    while p < payload.len() {
                        let at = p;
                        read_varint(payload, &mut p).map_err(|k| WireError::new(k.into(), base + s + at))?;
                    }
                }
                _ => {}
            }
        }
        _ => {
            let k = ErrorKind::WrongWireType { got: wt, expected: kind.wire_type() };
            return Err(WireError::new(k, base + *pos));
        }
    }
    Ok(0)
}

/// Whether a `KeyValue` payload has the shape nearly every attribute has, and is valid: `key` (field 1, ASCII) then
/// `value` (field 2: an `AnyValue` that is empty or holds one ASCII `string_value`, `bool_value`, `int_value` or
/// `double_value`), every length below 128. Such a payload is exactly what the generic walk accepts with no item in
/// it, in a fraction of its branches. `false` says nothing about validity: the generic walk then decides, and names
/// any error.
#[inline]
fn key_value_is_plain(kv: &[u8]) -> bool {
    let [0x0A, key_len, rest @ ..] = kv else { return false };
    let Some((key, rest)) = rest.split_at_checked(usize::from(*key_len)) else { return false };
    let [0x12, value_len, value @ ..] = rest else { return false };
    // A length byte of 0x80 or more starts a longer varint; those shapes go the generic way.
    if *key_len >= 0x80 || *value_len >= 0x80 || value.len() != usize::from(*value_len) || !is_ascii(key) {
        return false;
    }
    match value {
        [] => true,
        // string_value: one-byte length covering the rest.
        [0x0A, len, s @ ..] => *len < 0x80 && s.len() == usize::from(*len) && is_ascii(s),
        // bool_value, int_value: one valid varint covering the rest.
        [0x10 | 0x18, v @ ..] => {
            let mut pos = 0;
            read_varint(v, &mut pos).is_ok() && pos == v.len()
        }
        // double_value
        [0x21, f @ ..] => f.len() == 8,
        _ => false,
    }
}

/// `<[u8]>::is_ascii`, with the short strings most OTLP strings are (attribute keys and values, names) checked in one
/// or two word loads instead of the general routine's alignment prologue.
#[inline(always)]
fn is_ascii(s: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    match (s.first_chunk::<8>(), s.last_chunk::<8>()) {
        // 8 to 16 bytes: the first and the last eight (they overlap below 16) cover every byte.
        (Some(head), Some(tail)) if s.len() <= 16 => {
            (u64::from_ne_bytes(*head) | u64::from_ne_bytes(*tail)) & HIGH == 0
        }
        (Some(_), _) => s.is_ascii(),
        _ => s.iter().fold(0u8, |acc, b| acc | b) < 0x80,
    }
}

/// Skips a field this build does not know: it is valid as long as its framing is.
fn skip_unknown(wt: u8, buf: &[u8], pos: &mut usize, base: usize, top: bool) -> Result<u64, WireError> {
    match wt {
        0 => {
            let at = *pos;
            read_varint(buf, pos).map_err(|k| WireError::new(k.into(), base + at))?;
        }
        1 => skip_fixed(buf, pos, 8, base)?,
        5 => skip_fixed(buf, pos, 4, base)?,
        _ => {
            read_len(buf, pos, base, top)?;
        }
    }
    Ok(0)
}

/// Builds the path segment for the field whose key starts at `start` in `msg`.
#[cold]
fn seg(field: Option<&'static Field>, num: u32, msg: &[u8], start: usize) -> Seg {
    match field {
        Some(f) => Seg {
            name: f.name,
            num,
            index: if f.repeated { occurrence_index(msg, start, num) } else { None },
            leaf: !matches!(f.kind, Kind::Msg(_)),
        },
        None => Seg { name: "", num, index: None, leaf: true },
    }
}

/// How many earlier fields of `msg` (before byte `end`) have number `num`. Only runs on the
/// error path, so the happy path keeps no per-field counters. The bytes before `end` were
/// already validated; `None` if they somehow do not parse.
fn occurrence_index(msg: &[u8], end: usize, num: u32) -> Option<usize> {
    let mut count = 0;
    let mut pos = 0;
    while pos < end {
        let (n, wt) = read_key(msg, &mut pos).ok()?;
        if n == num {
            count += 1;
        }
        match wt {
            0 => {
                read_varint(msg, &mut pos).ok()?;
            }
            1 => pos += 8,
            5 => pos += 4,
            _ => {
                let len = read_varint(msg, &mut pos).ok()?;
                pos = pos.checked_add(usize::try_from(len).ok()?)?;
            }
        }
    }
    Some(count)
}

/// Walks the top-level fields of a message payload that has already been validated, calling
/// `f(field number, whole record range, payload range)` for each; used by `split` and the resource splice.
/// Payload range is empty for non-length-delimited fields. Stops quietly at anything malformed and then returns
/// false (true: every byte of `msg` was walked).
pub(super) fn for_each_field(
    msg: &[u8],
    mut f: impl FnMut(u32, std::ops::Range<usize>, std::ops::Range<usize>),
) -> bool {
    let mut pos = 0;
    while pos < msg.len() {
        let start = pos;
        let Ok((num, wt)) = read_key(msg, &mut pos) else {
            return false;
        };
        let payload = match wt {
            0 => {
                if read_varint(msg, &mut pos).is_err() {
                    return false;
                }
                pos..pos
            }
            1 | 5 => {
                pos += if wt == 1 { 8 } else { 4 };
                pos..pos
            }
            _ => match read_len(msg, &mut pos, 0, false) {
                Ok((s, e)) => s..e,
                Err(_) => return false,
            },
        };
        if pos > msg.len() {
            return false;
        }
        f(num, start..pos, payload);
    }
    true
}
