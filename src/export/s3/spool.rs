//! An open object's compressed bytes, kept in a file instead of memory until they leave as a part or as the whole
//! object: S3 takes parts of at least 5 MiB, so without it every open object would hold up to 5 MiB of compressed
//! bytes for as long as it is open (minutes), whatever the memory limit. With it an open object holds its
//! compressor only; the bytes come into memory for the length of one upload (under the archive's copies cap).
//!
//! The file is unnamed (`O_TMPFILE` in the queue directory, else created and unlinked at once): it disappears with
//! the process, so a crash leaves nothing to clean up (the queue, not the spool, is what a restart reads again).
//! It is written and read at explicit offsets, never fsynced: it holds nothing the queue does not.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

/// One object's compressed bytes not yet uploaded: `len` bytes from offset 0.
#[derive(Debug)]
pub(crate) struct Spool {
    file: File,
    len: u64,
}

impl Spool {
    /// An empty spool in `dir`.
    pub(crate) fn new(dir: &Path) -> io::Result<Spool> {
        Ok(Spool { file: unnamed_file(dir)?, len: 0 })
    }

    /// Bytes held.
    pub(crate) fn len(&self) -> usize {
        usize::try_from(self.len).unwrap_or(usize::MAX)
    }

    /// Appends `bytes`. A failed write leaves the spool's length as it was, but not necessarily its bytes past it:
    /// the caller gives the object up.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file.write_all_at(bytes, self.len)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Every byte held.
    pub(crate) fn read_all(&self) -> io::Result<Bytes> {
        let mut buf = vec![0; self.len()];
        self.file.read_exact_at(&mut buf, 0)?;
        Ok(Bytes::from(buf))
    }

    /// Forgets every byte (they were uploaded); the file's blocks go back to the filesystem.
    pub(crate) fn clear(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.len = 0;
        Ok(())
    }
}

/// A file in `dir` that has no name: `O_TMPFILE` where the filesystem has it, else a fresh name unlinked at once.
fn unnamed_file(dir: &Path) -> io::Result<File> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
        // Filesystems without O_TMPFILE answer EOPNOTSUPP, kernels that ignore the flag EISDIR, others EINVAL:
        // whatever the reason, a named file is tried next, and its error is the one that counts.
        if let Ok(fd) = rustix::fs::open(dir, flags, Mode::RUSR | Mode::WUSR) {
            return Ok(File::from(fd));
        }
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = dir.join(format!(".archive-spool-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    let file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&name)?;
    std::fs::remove_file(&name)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spool_holds_what_was_appended_until_cleared_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(dir.path()).unwrap();
        spool.append(b"hello ").unwrap();
        spool.append(b"").unwrap();
        spool.append(b"world").unwrap();
        assert_eq!(spool.len(), 11);
        assert_eq!(spool.read_all().unwrap().as_ref(), b"hello world");
        spool.clear().unwrap();
        spool.append(b"again").unwrap();
        assert_eq!(spool.read_all().unwrap().as_ref(), b"again");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the spool has no name in the directory");
    }

    #[test]
    fn a_spool_in_a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Spool::new(&dir.path().join("missing")).is_err());
    }
}
