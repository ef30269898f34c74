//! The transcoder's fast reader: a JSON reader over the UTF-8-checked body, tuned for what OTLP/JSON requests hold
//! (short strings without escapes, hex ids, decimal timestamps, no whitespace), driving the same visitors as
//! serde_json does (`tc_msg`, `tc_kinds`, `de_scalar`), so field names, JSON rules and protobuf writes are theirs.
//!
//! Its contract is narrow: for a body it reads to the end, the visitors get exactly the calls serde_json's
//! `Deserializer::from_str` would give them (`visit_str` with the same unescaped text, `visit_u64` / `visit_i64` /
//! `visit_f64` as serde_json classifies numbers, `visit_unit` for `null`, ...), so the protobuf bytes and the item
//! count are the same. On anything else it gives up with [`Bail`]: any syntax error, any value a visitor refuses (a bad
//! id, a duplicate key: the visitors' errors are `Bail` here), and what it does not read itself (integers beyond
//! 64 bits, long floats, lone surrogates in `\u` escapes, nesting deeper than [`MAX_DEPTH`]). The caller then throws
//! the output away and reads the body again with serde_json, so every error message, position and rare case is the
//! one it always was: a bail costs time, never a different answer. The differential properties
//! (`tests/fast_reader.rs`, and the fuzz targets through `tests/fuzz_props/`) check that both readers agree.
//!
//! Why it is faster than serde_json, which it replaces only on this path: a string's end is found 8 bytes at a
//! time, and a string without escapes is handed over as a slice of the body; no per-token `Result<Option<u8>>`
//! peeking; errors carry no message or position (the visitors' `custom` errors are never formatted).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Deepest nesting of arrays and objects read here; deeper bodies go to serde_json (whose limit is 127 levels).
const MAX_DEPTH: u32 = 100;

/// The reader gave up: serde_json reads the body instead. Carries nothing, so that the visitors' errors, which
/// serde_json would have turned into messages, cost nothing here.
#[derive(Debug)]
pub(super) struct Bail;

impl fmt::Display for Bail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to serde_json")
    }
}

impl std::error::Error for Bail {}

impl de::Error for Bail {
    #[inline]
    fn custom<T: fmt::Display>(_: T) -> Self {
        Bail
    }
}

/// The reader: a position in the body, the nesting depth, and a buffer for strings with escapes.
pub(super) struct Reader<'a> {
    text: &'a str,
    at: usize,
    depth: u32,
    /// Unescaped text of the last string that had an escape (rare: those are not slices of the body).
    scratch: String,
}

/// A string's text: a slice of the body, or the unescaped copy in the scratch buffer.
enum Text<'a, 's> {
    Body(&'a str),
    Scratch(&'s str),
}

/// A JSON number as serde_json hands it to a visitor.
enum Number {
    U64(u64),
    I64(i64),
    F64(f64),
}

/// Bytes that end a string's plain run: `"`, `\` and the control characters JSON forbids in strings.
#[inline(always)]
fn special(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// Index of the first byte at or after `i` that is [`special`], or `b.len()`.
///
/// Eight bytes at a time (SWAR: no `unsafe` SIMD here): for each of the three tests, a byte's high bit is set in
/// `found` when the test holds for it. A borrow can also set the bit of a byte above one that holds (never below),
/// so the lowest bit set is exact, and that is the only one used. Then byte by byte for the tail.
#[inline]
fn plain_run_end(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    while let Some(chunk) = b.get(i..).and_then(|rest| rest.first_chunk::<8>()) {
        let v = u64::from_le_bytes(*chunk);
        let quote = v ^ (ONES * u64::from(b'"'));
        let backslash = v ^ (ONES * u64::from(b'\\'));
        let found = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (v.wrapping_sub(ONES * 0x20) & !v))
            & HIGH;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if special(c) {
            return i;
        }
        i += 1;
    }
    i
}

/// The value of four hex digits at `i` (a `\u` escape), either case.
fn hex4(b: &[u8], i: usize) -> Result<u32, Bail> {
    let digits = b.get(i..i + 4).ok_or(Bail)?;
    digits.iter().try_fold(0u32, |n, &c| Ok(n << 4 | char::from(c).to_digit(16).ok_or(Bail)?))
}

impl<'a> Reader<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Reader { text, at: 0, depth: 0, scratch: String::new() }
    }

    #[inline(always)]
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next byte that is not JSON whitespace, not consumed; `None` at the end of the body.
    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        let b = self.bytes();
        while let Some(&c) = b.get(self.at) {
            if !matches!(c, b' ' | b'\n' | b'\t' | b'\r') {
                return Some(c);
            }
            self.at += 1;
        }
        None
    }

    #[inline(always)]
    fn next_token(&mut self) -> Result<u8, Bail> {
        self.peek().ok_or(Bail)
    }

    /// Nothing but whitespace left (serde_json's `Deserializer::end`).
    pub(super) fn end(&mut self) -> Result<(), Bail> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(Bail),
        }
    }

    /// Consumes `word` (`null`, `true`, `false`) at the current position.
    #[inline]
    fn literal(&mut self, word: &[u8]) -> Result<(), Bail> {
        if self.bytes().get(self.at..).is_some_and(|rest| rest.starts_with(word)) {
            self.at += word.len();
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// Consumes the opening byte of an array or object, one level deeper.
    #[inline]
    fn enter(&mut self) -> Result<(), Bail> {
        if self.depth >= MAX_DEPTH {
            return Err(Bail);
        }
        self.depth += 1;
        self.at += 1;
        Ok(())
    }

    /// Consumes the closing byte `close` of the array or object the visitor has read to its end.
    #[inline]
    fn leave(&mut self, close: u8) -> Result<(), Bail> {
        if self.next_token()? != close {
            return Err(Bail);
        }
        self.at += 1;
        self.depth -= 1;
        Ok(())
    }

    /// The string whose opening quote is at the current position.
    #[inline]
    fn string(&mut self) -> Result<Text<'a, '_>, Bail> {
        let start = self.at + 1;
        let end = plain_run_end(self.bytes(), start);
        match self.bytes().get(end) {
            Some(b'"') => {
                self.at = end + 1;
                // `start` follows and `end` is an ASCII quote, so both are char boundaries.
                self.text.get(start..end).map(Text::Body).ok_or(Bail)
            }
            Some(b'\\') => self.unescape(start, end).map(Text::Scratch),
            // A control character or the end of the body: serde_json's error.
            _ => Err(Bail),
        }
    }

    /// A string with escapes: its text from `start`, the first backslash at `end`, unescaped into the scratch
    /// buffer as serde_json does (`\uD83D\uDE00` pairs become one char; a lone surrogate is left to serde_json).
    #[cold]
    fn unescape(&mut self, start: usize, mut end: usize) -> Result<&str, Bail> {
        let (b, text) = (self.bytes(), self.text);
        self.scratch.clear();
        let mut from = start;
        loop {
            // The run before the backslash ends at ASCII bytes, so both bounds are char boundaries.
            self.scratch.push_str(text.get(from..end).ok_or(Bail)?);
            let mut next = end + 2;
            let c = match b.get(end + 1).ok_or(Bail)? {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let n = hex4(b, next)?;
                    next += 4;
                    if (0xD800..0xDC00).contains(&n) {
                        if b.get(next..next + 2) != Some(&b"\\u"[..]) {
                            return Err(Bail);
                        }
                        let low = hex4(b, next + 2)?;
                        if !(0xDC00..0xE000).contains(&low) {
                            return Err(Bail);
                        }
                        next += 6;
                        char::from_u32(0x1_0000 + ((n - 0xD800) << 10) + (low - 0xDC00)).ok_or(Bail)?
                    } else {
                        // A lone trailing surrogate is no char: serde_json's error.
                        char::from_u32(n).ok_or(Bail)?
                    }
                }
                _ => return Err(Bail),
            };
            self.scratch.push(c);
            from = next;
            end = plain_run_end(b, from);
            match b.get(end) {
                Some(b'"') => {
                    self.scratch.push_str(text.get(from..end).ok_or(Bail)?);
                    self.at = end + 1;
                    return Ok(&self.scratch);
                }
                Some(b'\\') => {}
                _ => return Err(Bail),
            }
        }
    }

    /// The number at the current position, classified as serde_json classifies it: an integer literal is a u64 if
    /// it is not negative, an i64 if it is (`-0` and values below `i64::MIN` become f64 there, so here too), and
    /// anything with a fraction or exponent is an f64. Integers beyond u64 go to serde_json.
    #[inline]
    fn number(&mut self) -> Result<Number, Bail> {
        let b = self.bytes();
        let start = self.at;
        let mut i = start;
        let negative = b.get(i) == Some(&b'-');
        if negative {
            i += 1;
        }
        let mut significand = match b.get(i) {
            Some(b'0') => {
                i += 1;
                // Only one leading zero.
                if b.get(i).is_some_and(u8::is_ascii_digit) {
                    return Err(Bail);
                }
                0
            }
            Some(&c @ b'1'..=b'9') => {
                i += 1;
                u64::from(c - b'0')
            }
            _ => return Err(Bail),
        };
        while let Some(&c @ b'0'..=b'9') = b.get(i) {
            significand = significand.checked_mul(10).and_then(|v| v.checked_add(u64::from(c - b'0'))).ok_or(Bail)?;
            i += 1;
        }
        if let Some(b'.' | b'e' | b'E') = b.get(i) {
            return self.float(start, i);
        }
        self.at = i;
        Ok(if !negative {
            Number::U64(significand)
        } else {
            // serde_json's own rule (`parse_number`): `-0` and magnitudes past i64 are floats.
            let n = (significand as i64).wrapping_neg();
            if n >= 0 {
                Number::F64(-(significand as f64))
            } else {
                Number::I64(n)
            }
        })
    }

    /// The fraction and exponent of a number whose integer part ends at `i`: the JSON grammar checked, the value
    /// parsed by the standard library, correctly rounded as serde_json's `float_roundtrip` parser is. Long
    /// literals and long exponents (where serde_json's overflow rules apply) go to serde_json.
    #[cold]
    fn float(&mut self, start: usize, mut i: usize) -> Result<Number, Bail> {
        let b = self.bytes();
        let digits = |i: &mut usize| {
            let from = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - from
        };
        if b.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                return Err(Bail);
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            if !(1..=3).contains(&digits(&mut i)) {
                return Err(Bail);
            }
        }
        if i - start > 40 {
            return Err(Bail);
        }
        let v: f64 = self.text.get(start..i).ok_or(Bail)?.parse().map_err(|_| Bail)?;
        // Out of range is serde_json's error.
        if !v.is_finite() {
            return Err(Bail);
        }
        self.at = i;
        Ok(Number::F64(v))
    }

    /// Skips one value of any kind, checking its syntax (an unknown key's value).
    fn skip_value(&mut self) -> Result<(), Bail> {
        match self.next_token()? {
            b'"' => self.string().map(drop),
            b'{' => self.skip_members(b'}', |r| {
                if r.next_token()? != b'"' {
                    return Err(Bail);
                }
                r.string()?;
                if r.next_token()? != b':' {
                    return Err(Bail);
                }
                r.at += 1;
                r.skip_value()
            }),
            b'[' => self.skip_members(b']', Self::skip_value),
            b'n' => self.literal(b"null"),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            _ => Err(Bail),
        }
    }

    /// Skips the members of the object or array just opened, up to its `close`, checking the commas between them.
    fn skip_members(&mut self, close: u8, mut member: impl FnMut(&mut Self) -> Result<(), Bail>) -> Result<(), Bail> {
        self.enter()?;
        if self.next_token()? != close {
            loop {
                member(self)?;
                match self.next_token()? {
                    b',' => self.at += 1,
                    b if b == close => break,
                    _ => return Err(Bail),
                }
            }
        }
        self.leave(close)
    }

    /// An object whose `{` is the next token, given to `visitor`.
    #[inline]
    fn object<V: Visitor<'a>>(&mut self, visitor: V) -> Result<V::Value, Bail> {
        self.enter()?;
        let value = visitor.visit_map(Fields { r: self, first: true })?;
        self.leave(b'}')?;
        Ok(value)
    }
}

/// The deserializer methods the visitors never call: a call would mean a visitor this reader was not checked
/// against, so it gives up rather than guess what serde_json would do.
macro_rules! bail {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, $(_: $arg,)* _: V) -> Result<V::Value, Bail> {
                Err(Bail)
            }
        )*
    };
}

impl<'de> Deserializer<'de> for &mut Reader<'de> {
    type Error = Bail;

    #[inline]
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
        match self.next_token()? {
            b'"' => match self.string()? {
                Text::Body(s) => visitor.visit_borrowed_str(s),
                Text::Scratch(s) => visitor.visit_str(s),
            },
            b'{' => self.object(visitor),
            b'[' => {
                self.enter()?;
                let value = visitor.visit_seq(Elements { r: self, first: true })?;
                self.leave(b']')?;
                Ok(value)
            }
            b'-' | b'0'..=b'9' => match self.number()? {
                Number::U64(n) => visitor.visit_u64(n),
                Number::I64(n) => visitor.visit_i64(n),
                Number::F64(x) => visitor.visit_f64(x),
            },
            b'n' => {
                self.literal(b"null")?;
                visitor.visit_unit()
            }
            b't' => {
                self.literal(b"true")?;
                visitor.visit_bool(true)
            }
            b'f' => {
                self.literal(b"false")?;
                visitor.visit_bool(false)
            }
            _ => Err(Bail),
        }
    }

    /// serde_json's: `null` is `None`, anything else (even the end of the body) is read as `Some`.
    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    /// An object and nothing else (the top level).
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
        match self.next_token()? {
            b'{' => self.object(visitor),
            _ => Err(Bail),
        }
    }

    #[inline]
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
        self.skip_value()?;
        visitor.visit_unit()
    }

    bail! {
        deserialize_bool(), deserialize_i8(), deserialize_i16(), deserialize_i32(), deserialize_i64(),
        deserialize_u8(), deserialize_u16(), deserialize_u32(), deserialize_u64(), deserialize_f32(),
        deserialize_f64(), deserialize_char(), deserialize_str(), deserialize_string(), deserialize_bytes(),
        deserialize_byte_buf(), deserialize_unit(), deserialize_unit_struct(&'static str),
        deserialize_newtype_struct(&'static str), deserialize_seq(), deserialize_tuple(usize),
        deserialize_tuple_struct(&'static str, usize),
        deserialize_struct(&'static str, &'static [&'static str]),
        deserialize_enum(&'static str, &'static [&'static str]), deserialize_identifier(),
    }
}

/// An object's members (serde_json's `MapAccess`: the same comma, colon and key rules).
struct Fields<'r, 'de> {
    r: &'r mut Reader<'de>,
    first: bool,
}

impl<'de> MapAccess<'de> for Fields<'_, 'de> {
    type Error = Bail;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Bail> {
        let mut c = self.r.next_token()?;
        if c == b'}' {
            return Ok(None);
        }
        if !std::mem::take(&mut self.first) {
            if c != b',' {
                return Err(Bail);
            }
            self.r.at += 1;
            c = self.r.next_token()?;
        }
        // Keys are strings; a `}` after a comma is a trailing comma.
        if c != b'"' {
            return Err(Bail);
        }
        seed.deserialize(Key(&mut *self.r)).map(Some)
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Bail> {
        if self.r.next_token()? != b':' {
            return Err(Bail);
        }
        self.r.at += 1;
        seed.deserialize(&mut *self.r)
    }
}

/// An array's elements (serde_json's `SeqAccess`).
struct Elements<'r, 'de> {
    r: &'r mut Reader<'de>,
    first: bool,
}

impl<'de> SeqAccess<'de> for Elements<'_, 'de> {
    type Error = Bail;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Bail> {
        let c = self.r.next_token()?;
        if c == b']' {
            return Ok(None);
        }
        if !std::mem::take(&mut self.first) {
            if c != b',' {
                return Err(Bail);
            }
            self.r.at += 1;
            // A `]` after a comma is a trailing comma.
            if self.r.next_token()? == b']' {
                return Err(Bail);
            }
        }
        seed.deserialize(&mut *self.r).map(Some)
    }
}

/// A member's key, whose opening quote is the next byte: a string, whatever the visitor asks for.
struct Key<'r, 'de>(&'r mut Reader<'de>);

impl<'de> Deserializer<'de> for Key<'_, 'de> {
    type Error = Bail;

    #[inline]
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
        match self.0.string()? {
            Text::Body(s) => visitor.visit_borrowed_str(s),
            Text::Scratch(s) => visitor.visit_str(s),
        }
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
        self.deserialize_identifier(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Bail> {
        Err(Bail)
    }
    fn deserialize_map<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Bail> {
        Err(Bail)
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Bail> {
        Err(Bail)
    }

    bail! {
        deserialize_bool(), deserialize_i8(), deserialize_i16(), deserialize_i32(), deserialize_i64(),
        deserialize_u8(), deserialize_u16(), deserialize_u32(), deserialize_u64(), deserialize_f32(),
        deserialize_f64(), deserialize_char(), deserialize_str(), deserialize_string(), deserialize_bytes(),
        deserialize_byte_buf(), deserialize_unit(), deserialize_unit_struct(&'static str),
        deserialize_newtype_struct(&'static str), deserialize_seq(), deserialize_tuple(usize),
        deserialize_tuple_struct(&'static str, usize),
        deserialize_struct(&'static str, &'static [&'static str]),
        deserialize_enum(&'static str, &'static [&'static str]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_run_ends_at_a_quote_a_backslash_or_a_control_character_in_any_lane() {
        for len in 0..40 {
            for (stop, what) in [(b'"', "quote"), (b'\\', "backslash"), (0x1F, "control"), (0, "nul")] {
                let mut b = vec![b'a'; len];
                b.push(stop);
                b.extend_from_slice(b"tail\"");
                for from in 0..=len {
                    assert_eq!(plain_run_end(&b, from), len, "{what} after {len} bytes, from {from}");
                }
            }
            let plain = vec![b'x'; len];
            assert_eq!(plain_run_end(&plain, 0), len, "no stop in {len} bytes");
        }
        // Every byte value in every lane, after and before every other: only the special ones stop the run.
        for x in 0..=255u8 {
            for y in [0u8, 0x1F, 0x20, b'!', b'"', b'#', b'[', b'\\', b']', 0x7F, 0x80, 0xFF] {
                for lane in 0..9 {
                    let mut b = vec![y; 17];
                    b[lane] = x;
                    let want = if special(y) {
                        0
                    } else if special(x) {
                        lane
                    } else {
                        17
                    };
                    let want = if special(y) && lane == 0 && !special(x) { 1 } else { want };
                    assert_eq!(plain_run_end(&b, 0), want, "{x:#x} in lane {lane} among {y:#x}");
                }
            }
        }
        // Bytes of multi-byte UTF-8 are all >= 0x80: never a stop.
        let text = "é😀ü\"".repeat(5);
        assert_eq!(plain_run_end(text.as_bytes(), 0), "é😀ü".len());
    }

    #[test]
    fn numbers_are_classified_as_serde_json_classifies_them() {
        let cases: &[(&str, &str)] = &[
            ("0", "u0"),
            ("7", "u7"),
            ("18446744073709551615", "u18446744073709551615"),
            ("-1", "i-1"),
            ("-9223372036854775808", "i-9223372036854775808"),
            ("-0", "f-0"),
            ("-9223372036854775809", "f-9223372036854776000"),
            ("1.5", "f1.5"),
            ("1e3", "f1000"),
            ("-2.5E-3", "f-0.0025"),
            ("-0.0", "f-0"),
        ];
        for (text, want) in cases {
            let mut r = Reader::new(text);
            let got = match r.number() {
                Ok(Number::U64(n)) => format!("u{n}"),
                Ok(Number::I64(n)) => format!("i{n}"),
                Ok(Number::F64(x)) => format!("f{x}"),
                Err(Bail) => "bail".to_owned(),
            };
            assert_eq!(&got, want, "{text}");
            assert_eq!(r.at, text.len(), "{text} read to its end");
        }
        for bad in ["01", "-", "-a", "1.", "1.e3", "1e", "1e+", ".5", "18446744073709551616", "1e1000", "1e9999"] {
            assert!(Reader::new(bad).number().is_err(), "{bad} is left to serde_json");
        }
    }

    #[test]
    fn escapes_unescape_as_serde_json_unescapes_them() {
        let cases = [
            r#""plain""#,
            r#""a\"b\\c\/d\be\ff\ng\rh\ti""#,
            r#""\u00e9\u20AC\uD83D\uDE00 x""#,
            r#""\u0000""#,
            r#""é\n😀""#,
        ];
        for json in cases {
            let want: String = serde_json::from_str(json).unwrap();
            let mut r = Reader::new(json);
            let got = match r.string().unwrap() {
                Text::Body(s) | Text::Scratch(s) => s.to_owned(),
            };
            assert_eq!(got, want, "{json}");
            assert_eq!(r.at, json.len());
        }
        for bad in
            [r#""\ud800""#, r#""\udc00""#, r#""\ud800\u0041""#, r#""\x""#, r#""\u12""#, "\"a\u{1}b\"", r#""open"#]
        {
            assert!(Reader::new(bad).string().is_err(), "{bad} is left to serde_json");
        }
    }
}
