//! Reader cursors: where each backend's delivery has got to, persisted so a restart resumes there.
//!
//! A cursor file is `magic:8 segment:u64le offset:u64le crc:u32le`. It is replaced by write-temp -> fsync ->
//! rename -> fsync(dir), so a crash leaves the old cursor or the new one, never a mix. When the disk is full and
//! the temporary file cannot be written, the cursor is overwritten in place (its blocks exist already): a torn
//! overwrite fails the checksum and the reader starts from the oldest segment, which duplicates but loses nothing.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::segment::Pos;

const MAGIC: &[u8; 8] = b"OTLPQCUR";
const LEN: usize = 28;

/// The cursor file of the backend labelled `label` in `dir`: readable, and distinct for distinct labels.
pub(super) fn path(dir: &Path, label: &str) -> PathBuf {
    let readable: String = label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).take(64).collect();
    // FNV-1a, so two labels that read the same once sanitised still get their own files.
    let hash = label.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    dir.join(format!("{readable}-{hash:016x}.cursor"))
}

fn encode(pos: Pos) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[..8].copy_from_slice(MAGIC);
    out[8..16].copy_from_slice(&pos.segment.to_le_bytes());
    out[16..24].copy_from_slice(&pos.offset.to_le_bytes());
    let crc = crc32fast::hash(&out[..24]);
    out[24..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Why a cursor could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(super) enum LoadError {
    /// No cursor file: a backend new to this queue (or its file was lost).
    #[error("no cursor file")]
    Missing,
    /// The file exists but is not a valid cursor.
    #[error("invalid cursor file")]
    Invalid,
    /// The file could not be read.
    #[error(transparent)]
    Io(io::Error),
}

/// Reads the cursor at `path`.
pub(super) fn load(path: &Path) -> Result<Pos, LoadError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(LoadError::Missing),
        Err(e) => return Err(LoadError::Io(e)),
    };
    let mut bytes = Vec::with_capacity(LEN);
    #[allow(clippy::disallowed_methods)] // capped by take()
    Read::by_ref(&mut file).take(LEN as u64 + 1).read_to_end(&mut bytes).map_err(LoadError::Io)?;
    if bytes.len() != LEN || &bytes[..8] != MAGIC || crc32fast::hash(&bytes[..24]).to_le_bytes() != bytes[24..] {
        return Err(LoadError::Invalid);
    }
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[i..i + 8]);
        u64::from_le_bytes(b)
    };
    Ok(Pos { segment: u64_at(8), offset: u64_at(16) })
}

/// Makes `pos` the durable cursor at `path`; when this returns Ok, a crash cannot bring back an older cursor.
pub(super) fn store(path: &Path, pos: Pos) -> io::Result<()> {
    let bytes = encode(pos);
    let temp = path.with_extension("cursor.tmp");
    let replaced = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(&bytes)?;
        file.sync_data()?;
        std::fs::rename(&temp, path)?;
        sync_dir(path)
    })();
    match replaced {
        Ok(()) => Ok(()),
        Err(e) if path.exists() => {
            let _ = std::fs::remove_file(&temp);
            tracing::debug!("cursor {}: replacing failed ({e}); overwriting in place", path.display());
            let mut file = OpenOptions::new().write(true).open(path)?;
            file.write_all(&bytes)?;
            file.sync_data()
        }
        Err(e) => Err(e),
    }
}

/// Makes the directory entries of `path`'s directory durable (after a create, rename or delete).
pub(super) fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_cursor_loads_back_and_replaces_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(dir.path(), "http://backend:4317");
        assert!(matches!(load(&path), Err(LoadError::Missing)));
        store(&path, Pos { segment: 3, offset: 99 }).unwrap();
        store(&path, Pos { segment: 4, offset: 7 }).unwrap();
        assert_eq!(load(&path).unwrap(), Pos { segment: 4, offset: 7 });
        assert!(!path.with_extension("cursor.tmp").exists());
    }

    #[test]
    fn a_damaged_cursor_is_invalid_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(dir.path(), "debug");
        store(&path, Pos { segment: 1, offset: 2 }).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[17] ^= 4;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(load(&path), Err(LoadError::Invalid)));
        std::fs::write(&path, &bytes[..10]).unwrap();
        assert!(matches!(load(&path), Err(LoadError::Invalid)));
    }

    #[test]
    fn labels_that_sanitise_alike_get_their_own_files() {
        let dir = Path::new("/q");
        assert_ne!(path(dir, "http://a:1"), path(dir, "http://a_1"));
    }
}
