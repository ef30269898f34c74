//! The error a scan reports: what is wrong, where (field path and byte offset), worded for a
//! person reading a 400 response.

use std::fmt;

/// Why a body was rejected. The field path and byte offset are on [`WireError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The body ends inside a varint.
    TruncatedVarint,
    /// A varint longer than 10 bytes or above `u64::MAX`.
    OverlongVarint,
    /// A field key above `u32::MAX`.
    InvalidKey(u64),
    /// Field number 0.
    FieldNumberZero,
    /// Wire type 6 or 7.
    InvalidWireType(u8),
    /// Wire type 3 or 4 (groups), which no OTLP message uses.
    Group(u8),
    /// A known field arrived with another wire type than its declaration needs.
    WrongWireType {
        /// The wire type in the body.
        got: u8,
        /// The wire type the field is declared with.
        expected: u8,
    },
    /// A fixed-size value (4 or 8 bytes) is cut off.
    TruncatedFixed {
        /// Bytes the value needs.
        need: usize,
        /// Bytes left in the enclosing message.
        left: usize,
    },
    /// A length prefix points past the end of the enclosing message (or of the body).
    LengthPastEnd {
        /// The declared length.
        len: u64,
        /// Bytes left after the length prefix.
        left: usize,
        /// Whether the enclosing message is the whole body.
        top: bool,
    },
    /// A string field holds invalid UTF-8 (the error offset is the first bad byte).
    InvalidUtf8,
    /// A trace id or span id with a length other than 0 or the expected one.
    IdLength {
        /// Length found.
        len: usize,
        /// Length an id of this kind must have.
        expected: usize,
    },
    /// A packed repeated fixed64/double whose length is not a multiple of 8.
    PackedLength(usize),
    /// Messages nested deeper than prost (and thus this scan) allows.
    TooDeep(u32),
}

/// One step of the path to the offending field, e.g. `spans[7]` or `name (field 5)`.
#[derive(Debug, Clone)]
pub(super) struct Seg {
    /// Field name; empty for a field this build does not know.
    pub(super) name: &'static str,
    pub(super) num: u32,
    pub(super) index: Option<usize>,
    /// Not an embedded message: the field number is shown to help with hand-written bodies.
    pub(super) leaf: bool,
}

/// A body the scan rejected. `Display` gives the full, human-readable explanation, e.g.
/// `resource_spans[0].scope_spans[1].spans[7].name (field 5): invalid UTF-8 at byte offset 1234`.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.0)]
pub struct WireError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    offset: usize,
    /// Innermost segment first (segments are pushed while the error unwinds).
    path: Vec<Seg>,
}

impl WireError {
    #[cold]
    pub(super) fn new(kind: ErrorKind, offset: usize) -> Self {
        WireError(Box::new(Inner { kind, offset, path: Vec::new() }))
    }

    #[cold]
    pub(super) fn push(mut self, seg: Seg) -> Self {
        self.0.path.push(seg);
        self
    }

    /// What is wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }
}

/// Formats the segments (innermost first) outermost first, joined by dots.
fn format_path(path: &[Seg]) -> String {
    let mut s = String::new();
    // A depth bomb has a 100-step path; keep the message readable.
    const KEEP: usize = 6;
    let n = path.len();
    for (i, seg) in path.iter().rev().enumerate() {
        if n > 2 * KEEP && i >= KEEP && i < n - KEEP {
            if i == KEEP {
                s.push_str(&format!(".(… {} more …)", n - 2 * KEEP));
            }
            continue;
        }
        if i > 0 {
            s.push('.');
        }
        if seg.name.is_empty() {
            s.push_str(&format!("<unknown field {}>", seg.num));
        } else {
            s.push_str(seg.name);
        }
        if let Some(ix) = seg.index {
            s.push_str(&format!("[{ix}]"));
        }
        if i + 1 == n && seg.leaf && !seg.name.is_empty() {
            s.push_str(&format!(" (field {})", seg.num));
        }
    }
    s
}

fn wire_type_name(wt: u8) -> &'static str {
    match wt {
        0 => "varint",
        1 => "64-bit",
        2 => "length-delimited",
        3 => "start group",
        4 => "end group",
        5 => "32-bit",
        _ => "invalid",
    }
}

impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        let path = format_path(&self.path);
        if !path.is_empty() {
            write!(f, "{path}: ")?;
        }
        match &self.kind {
            ErrorKind::TruncatedVarint => write!(f, "truncated varint at byte offset {at}"),
            ErrorKind::OverlongVarint => write!(f, "invalid varint (too long) at byte offset {at}"),
            ErrorKind::InvalidKey(k) => write!(f, "invalid field key {k} at byte offset {at}"),
            ErrorKind::FieldNumberZero => write!(f, "field number 0 at byte offset {at}"),
            ErrorKind::InvalidWireType(wt) => {
                write!(f, "invalid wire type {wt} at byte offset {at}")
            }
            ErrorKind::Group(wt) => write!(
                f,
                "wire type {wt} ({}) is not supported (groups are not used by OTLP) at byte offset {at}",
                wire_type_name(*wt)
            ),
            ErrorKind::WrongWireType { got, expected } => write!(
                f,
                "wrong wire type {got} ({}), expected {expected} ({}) at byte offset {at}",
                wire_type_name(*got),
                wire_type_name(*expected)
            ),
            ErrorKind::TruncatedFixed { need, left } => {
                write!(f, "value needs {need} bytes but only {left} are left (offset {at})")
            }
            ErrorKind::LengthPastEnd { len, left, top } => write!(
                f,
                "length {len} runs past the end of the {} (offset {at}, {left} bytes left)",
                if *top { "body" } else { "enclosing message" }
            ),
            ErrorKind::InvalidUtf8 => write!(f, "invalid UTF-8 at byte offset {at}"),
            ErrorKind::IdLength { len, expected } => {
                write!(f, "invalid length for ID: {len} bytes, expected {expected} or empty (offset {at})")
            }
            ErrorKind::PackedLength(len) => {
                write!(f, "packed 64-bit values: length {len} is not a multiple of 8 (offset {at})")
            }
            ErrorKind::TooDeep(limit) => write!(f, "messages nested deeper than {limit} levels at byte offset {at}"),
        }
    }
}
