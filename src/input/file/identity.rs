//! Which file is which: device + inode, and the bytes themselves.
//!
//! An inode alone is not an identity: a deleted file's inode is reused by the next file created (vector#23076), and
//! copytruncate keeps the inode while replacing the content. Content alone is not either: two generations of a log
//! can begin with the same first kilobyte (contrib#43693). So a position is trusted for a file only when the file's
//! first bytes begin with the [`head`](Identity::head) recorded with it **and** the bytes just before the position
//! are the [`check`](Identity::check) bytes recorded with it. The same two tests recognise a copytruncate copy (a
//! new inode whose bytes continue a known file's) so that it is read from the known position, never from its start.

use std::fs::{File, Metadata};
use std::os::unix::fs::{FileExt, MetadataExt};

/// Bytes of a file's start kept as its fingerprint.
pub(crate) const HEAD_BYTES: usize = 1024;
/// Bytes before a position kept to check it.
pub(crate) const CHECK_BYTES: usize = 64;

/// Device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct FileKey {
    pub dev: u64,
    pub ino: u64,
}

impl FileKey {
    pub(crate) fn of(meta: &Metadata) -> FileKey {
        FileKey { dev: meta.dev(), ino: meta.ino() }
    }
}

/// What is known of a file's bytes at a position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The file's first bytes (up to [`HEAD_BYTES`]) when last seen.
    pub head: Vec<u8>,
    /// The bytes just before `offset` (up to [`CHECK_BYTES`]).
    pub check: Vec<u8>,
    /// The position.
    pub offset: u64,
}

impl Identity {
    /// Whether a file with `head`, `size` bytes and `before(offset, n)` (its `n` bytes before `offset`) is this
    /// file at this position (or a copy of it that reaches the position).
    pub(crate) fn continues_in(
        &self,
        head: &[u8],
        size: u64,
        before: impl FnOnce(u64, usize) -> Option<Vec<u8>>,
    ) -> bool {
        if self.offset == 0 {
            return true;
        }
        heads_continue(&self.head, head)
            && size >= self.offset
            && before(self.offset, self.check.len()).is_some_and(|b| b == self.check)
    }
}

/// Whether a file beginning with `found` begins with the `known` first bytes (never for an empty `known`: an empty
/// file has no fingerprint).
pub(crate) fn heads_continue(known: &[u8], found: &[u8]) -> bool {
    !known.is_empty() && found.starts_with(known)
}

/// Whether two first-bytes fingerprints agree as far as both go (neither empty): a copy shorter than the kilobyte
/// kept has fewer first bytes than the file it copies, whose fingerprint was refreshed as it grew.
pub(crate) fn heads_agree(known: &[u8], found: &[u8]) -> bool {
    let n = known.len().min(found.len());
    n > 0 && known[..n] == found[..n]
}

/// Up to `n` bytes of `file` from `offset` (fewer at its end).
pub(crate) fn read_at(file: &File, offset: u64, n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0; n];
    let mut filled = 0;
    while filled < n {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// The `n` bytes before `offset` (all of them, or `None`).
pub(crate) fn bytes_before(file: &File, offset: u64, n: usize) -> Option<Vec<u8>> {
    let n = n.min(usize::try_from(offset).unwrap_or(usize::MAX));
    read_at(file, offset - n as u64, n).ok().filter(|b| b.len() == n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(content: &[u8], offset: u64) -> Identity {
        let o = offset as usize;
        Identity {
            head: content[..content.len().min(HEAD_BYTES)].to_vec(),
            check: content[o.saturating_sub(CHECK_BYTES)..o].to_vec(),
            offset,
        }
    }

    fn judge(id: &Identity, content: &[u8]) -> bool {
        let head = &content[..content.len().min(HEAD_BYTES)];
        id.continues_in(head, content.len() as u64, |offset, n| {
            let o = offset as usize;
            content.get(o - n..o).map(<[u8]>::to_vec)
        })
    }

    #[test]
    fn the_same_file_grown_keeps_its_position() {
        let id = at(b"line 1\nline 2\n", 7);
        assert!(judge(&id, b"line 1\nline 2\nline 3\n"));
    }

    #[test]
    fn inode_reuse_with_other_content_is_a_new_file() {
        let id = at(b"line 1\nline 2\n", 14);
        assert!(!judge(&id, b"other 1\nother 2\nother 3\n"), "different first bytes");
    }

    #[test]
    fn a_file_truncated_below_the_position_is_not_trusted() {
        let id = at(b"line 1\nline 2\n", 14);
        assert!(!judge(&id, b"line 1\n"));
    }

    #[test]
    fn a_new_generation_with_the_same_first_bytes_is_told_apart_by_the_bytes_before_the_position() {
        // Two copytruncate generations of an OTLP-JSON file share their first kilobyte (contrib#43693).
        let header = vec![b'{'; HEAD_BYTES + 10];
        let old = [header.clone(), b"\"gen\":1}\n".to_vec()].concat();
        let new = [header, b"\"gen\":2}\n{\"more\":true}\n".to_vec()].concat();
        let id = at(&old, old.len() as u64);
        assert!(!judge(&id, &new), "same head, other bytes before the position");
        assert!(judge(&id, &[old.clone(), b"appended\n".to_vec()].concat()), "the old one, grown, still matches");
    }

    #[test]
    fn a_copy_with_a_new_inode_continues_the_file_it_copies() {
        let id = at(b"a\nb\nc\n", 4);
        assert!(judge(&id, b"a\nb\nc\nd\n"), "the copy holds the known bytes and what followed");
        assert!(!judge(&id, b"a\nX\nc\n"), "a copy must match before the position too");
    }

    #[test]
    fn position_zero_needs_no_evidence_and_an_empty_head_matches_nothing() {
        assert!(judge(&Identity::default(), b"anything"));
        assert!(!heads_continue(b"", b"anything"));
        assert!(heads_continue(b"abc", b"abcdef"));
        assert!(!heads_continue(b"abcdef", b"abc"), "a shorter file is not a continuation");
        assert!(heads_agree(b"abcdef", b"abc") && heads_agree(b"abc", b"abcdef"), "a shorter copy agrees");
        assert!(!heads_agree(b"abcdef", b"abX") && !heads_agree(b"", b"abc"));
    }

    #[test]
    fn bytes_are_read_back_from_a_real_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(bytes_before(&file, 4, 3).unwrap(), b"123");
        assert_eq!(bytes_before(&file, 2, 64).unwrap(), b"01", "fewer bytes exist before the position");
        assert_eq!(bytes_before(&file, 20, 3), None, "past the end");
        assert_eq!(read_at(&file, 8, 100).unwrap(), b"89");
    }
}
