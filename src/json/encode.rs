//! OTLP/JSON encoding: lowerCamelCase keys, hex ids, 64-bit ints as strings, enums as integers,
//! defaults omitted (set oneof members are always written).

use std::fmt::Write as _;

use base64::Engine as _;

/// A message that writes itself as one JSON object.
pub trait Encode {
    fn encode(&self, out: &mut String);
}

/// Writes a JSON string literal, escaping what JSON requires (quote, backslash, control characters).
pub fn write_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        // Escaped bytes are ASCII, so these slice bounds are char boundaries.
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Writes a u64 in decimal without going through `fmt` machinery (hot for timestamps).
pub fn write_u64(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        out.push(b as char);
    }
}

/// int32, sint32 and enums: plain JSON numbers.
pub fn write_i32(out: &mut String, v: i32) {
    write_i64(out, v.into());
}

pub fn write_bool(out: &mut String, v: bool) {
    out.push_str(if v { "true" } else { "false" });
}

/// `bytes` that are not ids: standard padded base64.
pub fn write_base64(out: &mut String, v: &[u8]) {
    out.push('"');
    base64::engine::general_purpose::STANDARD.encode_string(v, out);
    out.push('"');
}

fn write_i64(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    write_u64(out, v.unsigned_abs());
}

/// 64-bit integers are JSON strings in OTLP/JSON (JavaScript numbers cannot hold them).
pub fn write_u64_quoted(out: &mut String, v: u64) {
    out.push('"');
    write_u64(out, v);
    out.push('"');
}

pub fn write_i64_quoted(out: &mut String, v: i64) {
    out.push('"');
    write_i64(out, v);
    out.push('"');
}

/// Doubles are numbers, except the non-finite ones, which proto3 JSON spells as strings.
pub fn write_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "\"Infinity\"" } else { "\"-Infinity\"" });
    } else {
        let a = v.abs();
        // Rust's float formatting is shortest-round-trip; exponent form keeps huge/tiny values short.
        if a == 0.0 || (1e-6..1e17).contains(&a) {
            let _ = write!(out, "{v}");
        } else {
            let _ = write!(out, "{v:e}");
        }
    }
}

fn write_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2 + 2);
    out.push('"');
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out.push('"');
}

/// Writes one JSON object's members, handling commas and the omission of default values.
pub struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    pub fn new(out: &'a mut String) -> Self {
        out.push('{');
        Obj { out, first: true }
    }

    /// Writes `"key":` and returns the buffer for the value: for members that are always written.
    pub fn key(&mut self, key: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
        self.out
    }

    pub fn str(&mut self, key: &str, v: &str) {
        if !v.is_empty() {
            write_str(self.key(key), v);
        }
    }
    pub fn bool(&mut self, key: &str, v: bool) {
        if v {
            self.key(key).push_str("true");
        }
    }
    pub fn u64(&mut self, key: &str, v: u64) {
        if v != 0 {
            write_u64_quoted(self.key(key), v);
        }
    }
    pub fn i64(&mut self, key: &str, v: i64) {
        if v != 0 {
            write_i64_quoted(self.key(key), v);
        }
    }
    pub fn u32(&mut self, key: &str, v: u32) {
        if v != 0 {
            write_u64(self.key(key), v.into());
        }
    }
    /// int32, sint32 and enums (enums are written as integers, as the spec requires).
    pub fn i32(&mut self, key: &str, v: i32) {
        if v != 0 {
            write_i64(self.key(key), v.into());
        }
    }
    pub fn f64(&mut self, key: &str, v: f64) {
        // NaN != 0.0, so NaN is written; -0.0 == 0.0 is omitted, as prost omits it on the wire.
        if v != 0.0 {
            write_f64(self.key(key), v);
        }
    }
    pub fn opt_f64(&mut self, key: &str, v: Option<f64>) {
        if let Some(v) = v {
            write_f64(self.key(key), v);
        }
    }
    /// Trace and span ids: lowercase hex.
    pub fn id(&mut self, key: &str, v: &[u8]) {
        if !v.is_empty() {
            write_hex(self.key(key), v);
        }
    }
    pub fn msg<M: Encode>(&mut self, key: &str, v: &M) {
        v.encode(self.key(key));
    }
    pub fn opt_msg<M: Encode>(&mut self, key: &str, v: &Option<M>) {
        if let Some(v) = v {
            v.encode(self.key(key));
        }
    }
    pub fn msgs<M: Encode>(&mut self, key: &str, v: &[M]) {
        self.list(key, v, |out, m| m.encode(out));
    }
    pub fn u64s(&mut self, key: &str, v: &[u64]) {
        self.list(key, v, |out, &x| write_u64_quoted(out, x));
    }
    pub fn f64s(&mut self, key: &str, v: &[f64]) {
        self.list(key, v, |out, &x| write_f64(out, x));
    }
    pub fn i64s(&mut self, key: &str, v: &[i64]) {
        self.list(key, v, |out, &x| write_i64_quoted(out, x));
    }
    pub fn i32s(&mut self, key: &str, v: &[i32]) {
        self.list(key, v, |out, &x| write_i32(out, x));
    }
    /// `bytes` that are not ids: base64.
    pub fn bytes(&mut self, key: &str, v: &[u8]) {
        if !v.is_empty() {
            write_base64(self.key(key), v);
        }
    }
    pub fn strs(&mut self, key: &str, v: &[String]) {
        self.list(key, v, |out, s| write_str(out, s));
    }
    fn list<T>(&mut self, key: &str, v: &[T], mut each: impl FnMut(&mut String, &T)) {
        if v.is_empty() {
            return;
        }
        let out = self.key(key);
        out.push('[');
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            each(out, x);
        }
        out.push(']');
    }

    pub fn end(self) {
        self.out.push('}');
    }
}
