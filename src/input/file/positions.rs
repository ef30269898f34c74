//! The positions file: where each file was read to, saved only for lines the sink acknowledged.
//!
//! One JSON file per input (`<state dir>/<input>.positions.json`), replaced atomically: written to a temporary
//! file, fsynced, renamed over the old one, and the directory fsynced, so a crash at any moment leaves either the
//! old or the new positions, never a mix or nothing.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{json, Value};

use super::identity::{FileKey, Identity};

/// A saved position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Saved {
    pub key: FileKey,
    /// The path it was last seen at (for people reading the file, and the log).
    pub path: String,
    pub identity: Identity,
}

/// The positions file of one input.
#[derive(Debug, Clone)]
pub(crate) struct Positions {
    path: PathBuf,
}

/// Why the positions could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PositionsError {
    /// The file or its directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a positions file (edited by hand, or another program's).
    #[error("{path} is not a positions file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Another process holds the input's lock: two bridges saving the same positions would each overwrite the
    /// other's, and both would read (and send) every line.
    #[error(
        "file input {name}: its positions in {} are in use by another process (the lock {} is held): two bridges \
         must not share an input's positions; give each bridge its own --file-state-dir (or inputs' state_dir), or \
         stop the other one",
        dir.display(),
        dir.join(format!("{name}.lock")).display()
    )]
    Locked {
        /// The state directory.
        dir: PathBuf,
        /// The input's name.
        name: String,
    },
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

impl Positions {
    /// The positions file of input `name` in `dir` (created if missing).
    pub(crate) fn open(dir: &Path, name: &str) -> Result<Positions, PositionsError> {
        std::fs::create_dir_all(dir).map_err(|source| PositionsError::Io { path: dir.to_path_buf(), source })?;
        Ok(Positions { path: dir.join(format!("{name}.positions.json")) })
    }

    /// Takes the input's lock (`<dir>/<name>.lock`, an exclusive `flock` held while the returned file is open):
    /// one process per positions file. The kernel drops it when the process ends, even by SIGKILL, so a crash
    /// leaves no stale lock.
    pub(crate) fn lock(&self) -> Result<std::fs::File, PositionsError> {
        let dir = self.path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let name = self.name();
        let path = dir.join(format!("{name}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| PositionsError::Io { path: path.clone(), source })?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(file),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(PositionsError::Locked { dir, name }),
            Err(e) => Err(PositionsError::Io { path, source: e.into() }),
        }
    }

    fn name(&self) -> String {
        let file = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        file.strip_suffix(".positions.json").unwrap_or(&file).to_string()
    }

    /// Where the file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The saved positions; `None` when there is no file yet (the input's first start).
    pub(crate) fn load(&self) -> Result<Option<Vec<Saved>>, PositionsError> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(PositionsError::Io { path: self.path.clone(), source }),
        };
        let corrupt = |reason: &str| PositionsError::Corrupt { path: self.path.clone(), reason: reason.to_string() };
        let value: Value = serde_json::from_slice(&text).map_err(|e| corrupt(&e.to_string()))?;
        let files = value.get("files").and_then(Value::as_array).ok_or_else(|| corrupt("no \"files\" list"))?;
        files
            .iter()
            .map(|f| {
                let num = |k: &str| f.get(k).and_then(Value::as_u64).ok_or_else(|| corrupt(&format!("no {k}")));
                let bytes = |k: &str| {
                    f.get(k)
                        .and_then(Value::as_str)
                        .and_then(|s| B64.decode(s).ok())
                        .ok_or_else(|| corrupt(&format!("no {k}")))
                };
                Ok(Saved {
                    key: FileKey { dev: num("dev")?, ino: num("ino")? },
                    path: f.get("path").and_then(Value::as_str).unwrap_or_default().to_string(),
                    identity: Identity { head: bytes("head")?, check: bytes("check")?, offset: num("offset")? },
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Replaces the saved positions with `saved` (temp -> fsync -> rename -> dir fsync). Blocking.
    pub(crate) fn save(&self, saved: &[Saved]) -> Result<(), PositionsError> {
        let files: Vec<Value> = saved
            .iter()
            .map(|s| {
                json!({
                    "path": s.path,
                    "dev": s.key.dev,
                    "ino": s.key.ino,
                    "offset": s.identity.offset,
                    "head": B64.encode(&s.identity.head),
                    "check": B64.encode(&s.identity.check),
                })
            })
            .collect();
        let text = json!({ "version": 1, "files": files }).to_string();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PositionsError::Io { path, source }
        };
        let tmp = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(text.as_bytes()).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
        Ok(())
    }

    /// Moves an unreadable positions file aside (to `.corrupt`), so that the next save does not overwrite the
    /// evidence.
    pub(crate) fn set_aside(&self) -> std::io::Result<PathBuf> {
        let aside = self.path.with_extension("json.corrupt");
        std::fs::rename(&self.path, &aside)?;
        Ok(aside)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(ino: u64, offset: u64) -> Saved {
        Saved {
            key: FileKey { dev: 7, ino },
            path: format!("/var/log/app/{ino}.log"),
            identity: Identity { head: vec![0, 1, 255], check: b"end\n".to_vec(), offset },
        }
    }

    #[test]
    fn no_file_is_a_first_start_and_saved_positions_come_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let positions = Positions::open(&dir.path().join("state"), "app").unwrap();
        assert_eq!(positions.load().unwrap(), None, "first start");
        positions.save(&[saved(1, 10), saved(2, u64::MAX)]).unwrap();
        assert_eq!(positions.load().unwrap().unwrap(), vec![saved(1, 10), saved(2, u64::MAX)]);
        positions.save(&[]).unwrap();
        assert_eq!(positions.load().unwrap().unwrap(), vec![], "an empty list is not a first start");
        let names: Vec<_> =
            std::fs::read_dir(dir.path().join("state")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("app.positions.json")], "no temporary file is left");
    }

    #[test]
    fn a_second_holder_of_the_same_positions_is_refused_naming_the_directory_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = Positions::open(dir.path(), "app").unwrap().lock().unwrap();
        let err = Positions::open(dir.path(), "app").unwrap().lock().unwrap_err();
        assert!(matches!(err, PositionsError::Locked { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&dir.path().display().to_string()) && text.contains("app.lock"), "{text}");
        Positions::open(dir.path(), "web").unwrap().lock().expect("another input's positions are its own");
        drop(first);
        Positions::open(dir.path(), "app").unwrap().lock().expect("free again once the holder is gone");
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it_and_can_be_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let positions = Positions::open(dir.path(), "app").unwrap();
        std::fs::write(positions.path(), b"{\"files\": [{\"dev\": 1}]}").unwrap();
        let err = positions.load().unwrap_err().to_string();
        assert!(err.contains("app.positions.json") && err.contains("no ino"), "{err}");
        let aside = positions.set_aside().unwrap();
        assert!(aside.exists());
        assert_eq!(positions.load().unwrap(), None);
    }
}
