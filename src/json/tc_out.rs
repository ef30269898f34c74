//! The protobuf writer behind [`transcode`](super::transcode): appends wire bytes in one forward pass.
//!
//! A nested message's length is only known once its content is written. Each one gets a 1-byte length
//! placeholder, patched in place when the message closes if the length fits in 1 byte (< 128, most
//! messages: key-values, attribute values, ids, events). Longer ones (spans, scopes, resources) are
//! noted, and [`Out::finish`] widens all their placeholders in one backward pass over the buffer, so each
//! byte moves at most once however deep it sits, instead of once per enclosing long message.

use super::error::Ctx;

/// Wire type of varint fields.
pub const VARINT: u32 = 0;
/// Wire type of 8-byte fields (fixed64, sfixed64, double).
pub const I64: u32 = 1;
/// Wire type of length-delimited fields (strings, bytes, messages, packed arrays).
pub const LEN: u32 = 2;
/// Wire type of 4-byte fields (fixed32).
pub const I32: u32 = 5;

/// The transcoder's state: the output, the error path, the item count.
pub struct Tc<'o> {
    pub out: Out<'o>,
    pub ctx: Ctx,
    pub items: u64,
}

impl<'o> Tc<'o> {
    pub fn new(buf: &'o mut Vec<u8>, body_len: usize, max_out: usize) -> Self {
        Tc { out: Out::new(buf, body_len, max_out), ctx: Ctx::default(), items: 0 }
    }

    /// After a whole body was read: the item count with the output completed, or `None` with the output removed
    /// when it would have passed `max_out`.
    pub fn finish(self) -> Option<u64> {
        if self.out.overflowed() {
            self.out.abort();
            None
        } else {
            self.out.finish();
            Some(self.items)
        }
    }
}

/// Protobuf output appended to a caller's buffer.
pub struct Out<'o> {
    buf: &'o mut Vec<u8>,
    /// Length of `buf` before this transcoding started.
    base: usize,
    /// `(placeholder offset, content length)` of each closed message of 128 bytes or more.
    long: Vec<(usize, usize)>,
    /// Bytes that widening the `long` placeholders will add.
    extra: usize,
    /// Most bytes the fixed-width writes may grow the output to (see [`Out::overflowed`]).
    max_out: usize,
    /// Set when a fixed-width write was skipped because the output reached `max_out`.
    overflowed: bool,
}

/// An open length-delimited field.
#[must_use]
pub struct Open {
    /// Offset of the 1-byte length placeholder.
    at: usize,
    /// `Out::extra` when the field was opened.
    extra: usize,
}

impl<'o> Out<'o> {
    fn new(buf: &'o mut Vec<u8>, body_len: usize, max_out: usize) -> Self {
        let base = buf.len();
        // Protobuf is smaller than the OTLP/JSON it comes from, in practice by a third or more.
        buf.reserve(body_len.min(max_out));
        Out { buf, base, long: Vec::new(), extra: 0, max_out, overflowed: false }
    }

    /// Whether the output would have passed `max_out`. Only fixed-width values (fixed64, double, fixed32) can make
    /// protobuf larger than its JSON text (`0,` in `bucketCounts` is 2 characters and 8 bytes), so only those
    /// writes are checked: past the cap they are skipped and the caller throws the output away.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    #[inline]
    fn room_for(&mut self, n: usize) -> bool {
        if self.buf.len() - self.base + n > self.max_out {
            self.overflowed = true;
        }
        !self.overflowed
    }

    /// Bytes written so far (placeholders counted as 1 byte).
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// The raw buffer, to append a field's content (base64 decoding).
    #[inline]
    pub fn buf(&mut self) -> &mut Vec<u8> {
        self.buf
    }

    #[inline]
    pub fn key(&mut self, num: u32, wire: u32) {
        self.varint(u64::from(num << 3 | wire));
    }

    #[inline]
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    #[inline]
    pub fn fixed64(&mut self, v: u64) {
        if self.room_for(8) {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    #[inline]
    pub fn fixed32(&mut self, v: u32) {
        if self.room_for(4) {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A string or bytes field whose content is at hand.
    #[inline]
    pub fn bytes(&mut self, num: u32, v: &[u8]) {
        self.key(num, LEN);
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    /// Starts length-delimited field `num`; its content follows, then [`close`](Self::close).
    #[inline]
    pub fn open(&mut self, num: u32) -> Open {
        self.key(num, LEN);
        let at = self.buf.len();
        self.buf.push(0);
        Open { at, extra: self.extra }
    }

    /// Whether nothing was written since `open`.
    #[inline]
    pub fn is_empty_since(&self, open: &Open) -> bool {
        self.buf.len() == open.at + 1
    }

    #[inline]
    pub fn close(&mut self, open: Open) {
        let len = self.buf.len() - (open.at + 1) + (self.extra - open.extra);
        if len < 0x80 {
            if let Some(b) = self.buf.get_mut(open.at) {
                *b = len as u8;
            }
        } else {
            self.long.push((open.at, len));
            self.extra += varint_len(len) - 1;
        }
    }

    /// Drops an open field with no long message inside, and everything written since `start`, the
    /// length before its key.
    #[inline]
    pub fn cancel(&mut self, start: usize, _open: Open) {
        self.buf.truncate(start);
    }

    /// Leaves the caller's buffer as it was before (on error).
    pub fn abort(self) {
        self.buf.truncate(self.base);
    }

    /// Widens the placeholders of long messages: one backward pass, moving each byte at most once.
    pub fn finish(mut self) {
        if self.long.is_empty() {
            return;
        }
        // Closed inner-first; the pass needs them by position.
        self.long.sort_unstable_by_key(|&(at, _)| at);
        let mut src_end = self.buf.len();
        let mut dst_end = src_end + self.extra;
        self.buf.resize(dst_end, 0);
        let mut tmp = [0u8; 10];
        for &(at, len) in self.long.iter().rev() {
            let content = at + 1..src_end;
            dst_end -= content.len();
            self.buf.copy_within(content, dst_end);
            let n = encode_varint(len as u64, &mut tmp);
            dst_end -= n;
            self.buf[dst_end..dst_end + n].copy_from_slice(&tmp[..n]);
            src_end = at;
        }
        debug_assert_eq!(src_end, dst_end);
    }
}

#[inline]
fn varint_len(v: usize) -> usize {
    // 1 byte per 7 bits, at least 1.
    ((usize::BITS - (v | 1).leading_zeros()) as usize).div_ceil(7)
}

fn encode_varint(mut v: u64, out: &mut [u8; 10]) -> usize {
    let mut i = 0;
    for slot in out.iter_mut() {
        if v < 0x80 {
            *slot = v as u8;
            i += 1;
            break;
        }
        *slot = v as u8 | 0x80;
        v >>= 7;
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_len_matches_encoding() {
        let mut tmp = [0u8; 10];
        for v in [0usize, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, usize::MAX] {
            assert_eq!(varint_len(v), encode_varint(v as u64, &mut tmp), "{v}");
        }
    }

    #[test]
    fn long_placeholders_widen_at_every_depth() {
        let mut buf = vec![0xAA];
        let mut out = Out::new(&mut buf, 0, usize::MAX);
        let outer = out.open(1);
        let inner = out.open(2);
        out.buf().extend(std::iter::repeat_n(7u8, 200));
        out.close(inner);
        let small = out.open(3);
        out.buf().push(9);
        out.close(small);
        out.close(outer);
        out.finish();
        let mut want = vec![0xAA, 0x0A, 206, 1, 0x12, 200, 1];
        want.extend(std::iter::repeat_n(7u8, 200));
        want.extend([0x1A, 1, 9]);
        assert_eq!(buf, want);
    }
}
