//! The decode error type and the path bookkeeping that feeds it.

use std::fmt;

/// Why an OTLP/JSON body was rejected, and where.
///
/// Its `Display` text is meant to go verbatim into an HTTP 400 body, for a person with curl:
/// `resourceMetrics[0].scopeMetrics[0].metrics[2].sum.dataPoints[1].timeUnixNano: invalid uint64 "-5" (line 1, column 245)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct JsonError {
    /// Field path of the failing value, e.g. `resourceSpans[0].scopeSpans[1].spans[3].traceId`;
    /// empty when the problem is with the document as a whole.
    pub path: String,
    /// 1-based line of the failure point (0 when unknown).
    pub line: usize,
    /// 1-based column of the failure point (0 when unknown).
    pub column: usize,
    /// What was wrong, without the path or position.
    pub message: String,
}

impl JsonError {
    fn render(&self) -> String {
        let mut s = String::with_capacity(self.path.len() + self.message.len() + 32);
        if !self.path.is_empty() {
            s.push_str(&self.path);
            s.push_str(": ");
        }
        s.push_str(&self.message);
        if self.line != 0 {
            use fmt::Write as _;
            let _ = write!(s, " (line {}, column {})", self.line, self.column);
        }
        s
    }

    /// Builds the public error from serde_json's error and the path collected while it bubbled up.
    pub(super) fn from_serde(err: &serde_json::Error, ctx: &mut Ctx, body: &[u8]) -> Self {
        let line = err.line();
        // serde_json reports column 0 for "before the first character of the line".
        let column = if line == 0 { 0 } else { err.column().max(1) };
        let mut message = err.to_string();
        // serde_json appends " at line L column C"; we report the position in our own words.
        let suffix = format!(" at line {line} column {}", err.column());
        if line != 0 && message.ends_with(&suffix) {
            message.truncate(message.len() - suffix.len());
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            message = "empty body: expected a JSON object".to_owned();
        } else if message == "recursion limit exceeded" {
            message = "nesting too deep (recursion limit exceeded)".to_owned();
        }
        JsonError { path: ctx.take_path(), line, column, message }
    }
}

/// One step of a field path.
#[derive(Debug, Clone, Copy)]
pub(super) enum Seg {
    Field(&'static str),
    Index(usize),
}

/// Decoder state shared by all visitors of one document.
///
/// The path is only written on failure: each level appends its own step while the error bubbles up,
/// so the success path costs nothing for it.
#[derive(Debug, Default)]
pub struct Ctx {
    rev_path: Vec<Seg>,
}

impl Ctx {
    #[inline]
    pub(super) fn push(&mut self, seg: Seg) {
        self.rev_path.push(seg);
    }

    fn take_path(&mut self) -> String {
        let mut s = String::new();
        for seg in self.rev_path.drain(..).rev() {
            match seg {
                Seg::Field(name) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(name);
                }
                Seg::Index(i) => {
                    use fmt::Write as _;
                    let _ = write!(s, "[{i}]");
                }
            }
        }
        s
    }
}

/// Quotes a client-supplied string for an error message, cut short so a huge value cannot bloat the 400 body.
pub(super) struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 64;
        if self.0.len() <= MAX {
            write!(f, "{:?}", self.0)
        } else {
            let mut end = MAX;
            while !self.0.is_char_boundary(end) {
                end -= 1;
            }
            write!(f, "{:?}... ({} bytes)", &self.0[..end], self.0.len())
        }
    }
}
