//! Bytes -> lines: the line ending in the file's encoding, the longest line, and decoding to text.
//!
//! A line ends at `\n` (in UTF-16, the code unit 0x000A); a `\r` before it is dropped, so CRLF files read the same.
//! A line longer than the maximum is cut into pieces of at most that many bytes, each on a character boundary of the
//! encoding, so every byte is delivered (in order) and no character is split. Decoding never fails: bytes that are
//! not valid in the encoding become U+FFFD, and the rest of the line is kept.

pub(crate) use crate::config::FileEncoding as Encoding;

impl Encoding {
    /// Bytes per code unit: lines start and end on multiples of it.
    pub(crate) fn unit(self) -> usize {
        match self {
            Encoding::Utf16Le | Encoding::Utf16Be => 2,
            Encoding::Utf8 | Encoding::Latin1 => 1,
        }
    }

    /// Where the first line ending in `buf` ends (the index after it), if there is one. `buf` starts on a line
    /// boundary, which is a code unit boundary.
    pub(crate) fn line_end(self, buf: &[u8]) -> Option<usize> {
        match self {
            Encoding::Utf8 | Encoding::Latin1 => memchr::memchr(b'\n', buf).map(|i| i + 1),
            Encoding::Utf16Le => {
                memchr::memchr_iter(b'\n', buf).find(|&i| i % 2 == 0 && buf.get(i + 1) == Some(&0)).map(|i| i + 2)
            }
            Encoding::Utf16Be => {
                memchr::memchr_iter(b'\n', buf).find(|&i| i % 2 == 1 && buf[i - 1] == 0).map(|i| i + 1)
            }
        }
    }

    /// The longest prefix of `buf` of at most `max` bytes that ends on a character boundary (at least one code
    /// unit, so a piece always makes progress).
    pub(crate) fn cut(self, buf: &[u8], max: usize) -> usize {
        let unit = self.unit();
        let mut end = max.min(buf.len()) / unit * unit;
        match self {
            Encoding::Utf8 => {
                // Back up over at most 3 continuation bytes to the start of the character that does not fit.
                let mut back = end;
                while back > 0 && end - back < 4 && buf.get(back).is_some_and(|b| b & 0xC0 == 0x80) {
                    back -= 1;
                }
                if back > 0 && back < end {
                    end = back;
                }
            }
            Encoding::Utf16Le | Encoding::Utf16Be => {
                // Never end between the two halves of a surrogate pair.
                if end >= 2 && end < buf.len() {
                    let last = if self == Encoding::Utf16Le {
                        u16::from_le_bytes([buf[end - 2], buf[end - 1]])
                    } else {
                        u16::from_be_bytes([buf[end - 2], buf[end - 1]])
                    };
                    if (0xD800..0xDC00).contains(&last) && end > 2 {
                        end -= 2;
                    }
                }
            }
            Encoding::Latin1 => {}
        }
        end.max(unit.min(buf.len()))
    }

    /// The text of a line's bytes (its ending removed already): lossy, never failing.
    pub(crate) fn decode(self, bytes: &[u8], at_file_start: bool) -> String {
        let mut text = match self {
            Encoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Encoding::Latin1 => bytes.iter().map(|&b| char::from(b)).collect(),
            Encoding::Utf16Le | Encoding::Utf16Be => {
                let units = bytes.chunks(2).map(|pair| match (pair, self) {
                    ([a, b], Encoding::Utf16Le) => u16::from_le_bytes([*a, *b]),
                    ([a, b], _) => u16::from_be_bytes([*a, *b]),
                    // An odd last byte (a file cut mid-character) is invalid.
                    _ => 0xDC00,
                });
                char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
            }
        };
        if at_file_start && text.starts_with('\u{FEFF}') {
            text.drain(..'\u{FEFF}'.len_utf8());
        }
        text
    }

    /// The content of a line without its ending (`\n`, and a `\r` before it), as bytes of this encoding.
    pub(crate) fn strip_ending(self, line: &[u8]) -> &[u8] {
        let unit = self.unit();
        let nl: &[u8] = match self {
            Encoding::Utf8 | Encoding::Latin1 => b"\n",
            Encoding::Utf16Le => b"\n\0",
            Encoding::Utf16Be => b"\0\n",
        };
        let cr: &[u8] = match self {
            Encoding::Utf8 | Encoding::Latin1 => b"\r",
            Encoding::Utf16Le => b"\r\0",
            Encoding::Utf16Be => b"\0\r",
        };
        match line.strip_suffix(nl) {
            Some(content) if content.len() >= unit => content.strip_suffix(cr).unwrap_or(content),
            Some(content) => content,
            None => line,
        }
    }
}

/// One line (or piece of a long line) found in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    /// Bytes it takes from the buffer, line ending included.
    pub len: usize,
    /// Whether it ends with a line ending (false: a piece of a long line, or an unterminated last line).
    pub complete: bool,
}

/// The next line of `buf` (which starts on a line boundary), or a piece of at most `max` bytes when the line is
/// longer, or (when `flush`) whatever is left; `None` when `buf` holds only the start of a line that may still grow.
pub(crate) fn next_line(encoding: Encoding, buf: &[u8], max: usize, flush: bool) -> Option<Found> {
    if buf.is_empty() {
        return None;
    }
    let window = &buf[..buf.len().min(max.saturating_add(2 * encoding.unit()))];
    match encoding.line_end(window) {
        // The ending does not count against the maximum.
        Some(end) if encoding.strip_ending(&buf[..end]).len() <= max => Some(Found { len: end, complete: true }),
        _ if buf.len() > max => Some(Found { len: encoding.cut(buf, max), complete: false }),
        _ if flush => Some(Found { len: buf.len(), complete: false }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    fn utf16be(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_be_bytes).collect()
    }

    fn lines(encoding: Encoding, mut buf: &[u8], max: usize) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        let mut first = true;
        while let Some(found) = next_line(encoding, buf, max, true) {
            let text = encoding.decode(encoding.strip_ending(&buf[..found.len]), first);
            out.push((text, found.complete));
            buf = &buf[found.len..];
            first = false;
        }
        out
    }

    #[test]
    fn utf8_lines_drop_crlf_and_a_bom_and_keep_an_unterminated_tail_until_flushed() {
        let buf = b"\xEF\xBB\xBFone\r\ntwo\n\nthree";
        assert_eq!(next_line(Encoding::Utf8, b"three", 100, false), None, "a line may still grow");
        let got = lines(Encoding::Utf8, buf, 100);
        let want = [("one", true), ("two", true), ("", true), ("three", false)];
        assert_eq!(got, want.map(|(s, c)| (s.to_string(), c)));
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters_and_the_line_is_kept() {
        let got = lines(Encoding::Utf8, b"ok \xFF\xFE end\n", 100);
        assert_eq!(got, vec![("ok \u{FFFD}\u{FFFD} end".to_string(), true)]);
    }

    #[test]
    fn utf16_both_byte_orders_find_the_newline_unit_not_a_newline_byte() {
        // U+0A0A has the newline byte in both halves: only the whole unit 0x000A ends a line.
        let text = "\u{FEFF}a\u{0A0A}b\r\nsecond 😀\n";
        for (encoding, bytes) in [(Encoding::Utf16Le, utf16le(text)), (Encoding::Utf16Be, utf16be(text))] {
            let got = lines(encoding, &bytes, 1000);
            assert_eq!(got, vec![("a\u{0A0A}b".to_string(), true), ("second 😀".to_string(), true)], "{encoding:?}");
        }
    }

    #[test]
    fn latin1_maps_every_byte_to_its_code_point() {
        assert_eq!(lines(Encoding::Latin1, b"caf\xE9 \x80\n", 100), vec![("café \u{80}".to_string(), true)]);
    }

    #[test]
    fn long_lines_are_cut_on_character_boundaries_and_every_byte_is_kept() {
        // 'é' is two bytes: a cut at 5 would split the third one.
        let got = lines(Encoding::Utf8, "ééééé\nx\n".as_bytes(), 5);
        assert_eq!(
            got,
            vec![("éé".into(), false), ("éé".into(), false), ("é".into(), true), ("x".into(), true)],
            "4 + 4 + 2 bytes, no replacement character"
        );
        let got = lines(Encoding::Utf16Le, &utf16le("😀😀x\n"), 6);
        assert_eq!(got, vec![("😀".into(), false), ("😀x".into(), true)], "a surrogate pair is never split");
        // A line exactly at the maximum is whole; its ending does not count.
        assert_eq!(lines(Encoding::Utf8, b"abcde\r\n", 5), vec![("abcde".to_string(), true)]);
    }
}
