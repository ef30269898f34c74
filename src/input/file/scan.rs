//! Each rescan: which tracked file is where now, which are new, which were truncated (and by which copy they are
//! continued), and which are gone.
//!
//! The rules (DESIGN 8.5): a file first seen at the input's first start begins where `--file-start-at` says, any
//! later one at its beginning; a saved position is taken only when the file's bytes still match it
//! ([`Identity::continues_in`]); a new inode whose bytes continue a tracked file (copytruncate's copy) is held
//! unread until that file is truncated, then read from where the file was read to; a truncated file whose unread
//! bytes are in no copy has them counted as lost; a file the globs no longer name is read to its end, then released.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use super::discover::{Found, Globs};
use super::identity::{bytes_before, heads_agree, read_at, FileKey, Identity, CHECK_BYTES, HEAD_BYTES};
use super::positions::Saved;
use super::record::Source;
use super::tail::{Batch, Shape, Tracked};
use crate::config::StartAt;

/// How long a file no glob names any more (rotated out, deleted) is kept open after its last new byte: an
/// application that has not reopened its log yet may still write to the renamed file.
pub(crate) const RELEASE_AFTER: Duration = Duration::from_secs(5);

/// A new file whose bytes continue a tracked one: copytruncate's copy, held unread.
#[derive(Debug)]
pub(crate) struct Suspect {
    pub found: Found,
    pub file: std::fs::File,
    pub head: Vec<u8>,
    /// The tracked file it copies.
    pub of: FileKey,
    /// Where that file was read to when last seen.
    pub from: u64,
}

/// What scans know.
#[derive(Debug)]
pub(crate) struct Files {
    pub tracked: BTreeMap<FileKey, Tracked>,
    pub suspects: HashMap<FileKey, Suspect>,
    /// New files not taken yet, and since when: empty, or holding only a tracked file's first bytes (a copy being
    /// made; read from its start, it would all come twice). Taken when that changes, or after [`RELEASE_AFTER`].
    pub pending: HashMap<FileKey, Instant>,
    /// Bytes lost to truncations since the last look (for the counter).
    pub truncated_bytes: u64,
}

fn source(found: &Found) -> Source {
    Source {
        name: found.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        path: found.path.display().to_string(),
        resolved: found.resolved.as_ref().map(|r| r.display().to_string()),
    }
}

impl Files {
    pub(crate) fn new() -> Files {
        Files { tracked: BTreeMap::new(), suspects: HashMap::new(), pending: HashMap::new(), truncated_bytes: 0 }
    }

    /// The first scan of a start: saved positions taken where the bytes still match them; with none saved (the
    /// input's first start), `start_at` for every file.
    pub(crate) fn first_scan(&mut self, globs: &Globs, saved: Option<&[Saved]>, start_at: StartAt, now: Instant) {
        let found = globs.scan();
        let mut unused: Vec<&Saved> = saved.unwrap_or_default().iter().collect();
        for f in found {
            let Ok(file) = std::fs::File::open(&f.path) else { continue };
            let head = read_at(&file, 0, HEAD_BYTES).unwrap_or_default();
            let size = f.meta.len();
            let matches = |s: &Saved| s.identity.continues_in(&head, size, |o, n| bytes_before(&file, o, n));
            // The same inode first; then any saved file whose bytes this one continues (a copy, or a move).
            let pick = unused
                .iter()
                .position(|s| s.key == f.key && matches(s))
                .or_else(|| unused.iter().position(|s| s.identity.offset > 0 && matches(s)));
            let offset = match (pick, saved, start_at) {
                (Some(i), _, _) => unused.swap_remove(i).identity.offset,
                (None, None, StartAt::End) => size,
                (None, _, _) => 0,
            };
            let tracked = Tracked::new(f.key, source(&f), file, offset, offset, now);
            self.tracked.insert(f.key, tracked);
        }
        // A saved file no glob names (rotated out of them while the bridge was down) is looked for by its inode in
        // its directory and read to its end.
        for s in unused {
            if s.identity.offset == 0 {
                continue;
            }
            let path = Path::new(&s.path);
            let Some(found) = path.parent().and_then(|dir| find_inode(dir, s.key, globs)) else { continue };
            let Ok(file) = std::fs::File::open(&found.path) else { continue };
            let head = read_at(&file, 0, HEAD_BYTES).unwrap_or_default();
            if self.tracked.contains_key(&s.key)
                || !s.identity.continues_in(&head, found.meta.len(), |o, n| bytes_before(&file, o, n))
            {
                continue;
            }
            let mut tracked = Tracked::new(s.key, source(&found), file, s.identity.offset, s.identity.offset, now);
            tracked.found = false;
            tracked.gone_since = Some(now);
            self.tracked.insert(s.key, tracked);
        }
    }

    /// A rescan; records held by truncated files are flushed into `batch`.
    pub(crate) fn rescan(&mut self, globs: &Globs, shape: &Shape, batch: &mut Batch, now: Instant) {
        let mut found = globs.scan();
        for t in self.tracked.values_mut() {
            t.found = false;
        }
        let mut fresh = Vec::new();
        for f in found.drain(..) {
            if let Some(t) = self.tracked.get_mut(&f.key) {
                t.found = true;
                t.gone_since = None;
                t.source = source(&f);
            } else if let Some(s) = self.suspects.get_mut(&f.key) {
                s.found = f;
            } else {
                fresh.push(f);
            }
        }
        // Truncations first: a copy among the new files continues the truncated file.
        let keys: Vec<FileKey> = self.tracked.keys().copied().collect();
        for key in keys {
            self.check_truncation(key, globs, shape, batch, &mut fresh, now);
        }
        let mut pending = HashMap::new();
        for f in fresh {
            let Ok(file) = std::fs::File::open(&f.path) else { continue };
            let head = read_at(&file, 0, HEAD_BYTES).unwrap_or_default();
            let copying = head.is_empty()
                || self.tracked.values().any(|t| t.head.len() > head.len() && t.head.starts_with(&head));
            let since = self.pending.get(&f.key).copied().unwrap_or(now);
            if copying && now.duration_since(since) < RELEASE_AFTER {
                pending.insert(f.key, since);
                continue;
            }
            if let Some(of) = self.copied(&file, &head, f.meta.len()) {
                tracing::info!(path = %f.path.display(), of = %self.tracked[&of].source.path,
                    "file holds the same bytes as a file being read (a copytruncate copy?): held unread until that file is truncated");
                let from = self.tracked[&of].buf_start;
                self.suspects.insert(f.key, Suspect { found: f, file, head, of, from });
                continue;
            }
            tracing::info!(path = %f.path.display(), "file found: reading it from its beginning");
            self.tracked.insert(f.key, Tracked::new(f.key, source(&f), file, 0, 0, now));
        }
        self.pending = pending;
        // A held copy whose original is gone is read from where the original was read to.
        let orphaned: Vec<FileKey> =
            self.suspects.iter().filter(|(_, s)| !self.tracked.contains_key(&s.of)).map(|(k, _)| *k).collect();
        for key in orphaned {
            if let Some(s) = self.suspects.remove(&key) {
                let offset = s.from.min(s.found.meta.len());
                self.tracked.insert(key, Tracked::new(key, source(&s.found), s.file, offset, offset, now));
            }
        }
        for s in self.suspects.values_mut() {
            if let Some(t) = self.tracked.get(&s.of) {
                s.from = t.buf_start;
            }
        }
        for t in self.tracked.values_mut() {
            if !t.found && t.gone_since.is_none() {
                tracing::info!(path = %t.source.path, "file no longer named by the globs (rotated or deleted): reading it to its end");
                t.gone_since = Some(now);
            }
        }
    }

    /// Which tracked file a new file with `head` and `size` bytes copies, if any: its first bytes continue the
    /// tracked file's and the bytes before the shorter end are the same in both.
    fn copied(&self, file: &std::fs::File, head: &[u8], size: u64) -> Option<FileKey> {
        self.tracked.values().find_map(|t| {
            if !heads_agree(&t.head, head) {
                return None;
            }
            let end = size.min(t.file.metadata().ok()?.len());
            let mine = bytes_before(file, end, CHECK_BYTES)?;
            (mine == bytes_before(&t.file, end, CHECK_BYTES)?).then_some(t.key)
        })
    }

    /// Handles a truncation of tracked file `key` that a read noticed ([`super::tail::Reading::Truncated`]).
    pub(crate) fn truncated(&mut self, key: FileKey, globs: &Globs, shape: &Shape, batch: &mut Batch, now: Instant) {
        self.check_truncation(key, globs, shape, batch, &mut Vec::new(), now);
    }

    /// If tracked file `key` was truncated (or rewritten): its copy (a held suspect, a file new in this scan, or one
    /// that appeared since the glob was read) continues it from where it was read to; what no copy holds is counted
    /// as lost; the file starts over as a new generation.
    fn check_truncation(
        &mut self,
        key: FileKey,
        globs: &Globs,
        shape: &Shape,
        batch: &mut Batch,
        fresh: &mut Vec<Found>,
        now: Instant,
    ) {
        let Some(t) = self.tracked.get_mut(&key) else { return };
        if t.intact() {
            return;
        }
        let Some(t) = self.tracked.get(&key) else { return };
        let (position, seen) = (t.buf_start, t.size.max(t.read_end()));
        let fits = |file: &std::fs::File, head: &[u8]| {
            let size = file.metadata().map_or(0, |m| m.len());
            t.copied_by(head, size, |o, n| bytes_before(file, o, n))
        };
        let mut copy = None;
        for attempt in 0..2 {
            if let Some(k) = self.suspects.iter().find(|(_, s)| s.of == key && fits(&s.file, &s.head)).map(|(k, _)| *k)
            {
                copy = self.suspects.remove(&k).map(|s| (s.found, s.file));
                break;
            }
            if let Some(i) = fresh.iter().position(|f| {
                std::fs::File::open(&f.path).is_ok_and(|file| {
                    let head = read_at(&file, 0, HEAD_BYTES).unwrap_or_default();
                    fits(&file, &head)
                })
            }) {
                let f = fresh.swap_remove(i);
                if let Ok(file) = std::fs::File::open(&f.path) {
                    copy = Some((f, file));
                }
                break;
            }
            if attempt == 0 {
                let mut known: Vec<FileKey> = self.tracked.keys().chain(self.suspects.keys()).copied().collect();
                known.extend(fresh.iter().map(|f| f.key));
                let late: Vec<Found> = globs.scan().into_iter().filter(|f| !known.contains(&f.key)).collect();
                fresh.extend(late);
            }
        }
        // Other copies held for this file hold only bytes it had (they matched it when found): nothing of theirs
        // is unread. They become ordinary files at their end, read only if they grow, released when gone.
        let stale: Vec<FileKey> = self.suspects.iter().filter(|(_, s)| s.of == key).map(|(k, _)| *k).collect();
        for k in stale {
            if let Some(s) = self.suspects.remove(&k) {
                let end = s.file.metadata().map_or(0, |m| m.len());
                self.tracked.insert(k, Tracked::new(k, source(&s.found), s.file, end, end, now));
            }
        }
        let Some(t) = self.tracked.get_mut(&key) else { return };
        let generation = t.generation;
        let mut continued = None;
        let lost = match copy {
            Some((found, file)) => {
                let copy_size = file.metadata().map_or(0, |m| m.len());
                let lost = if copy_size >= position {
                    // The copy holds the unread rest: it is read from the position on.
                    let mut c = Tracked::new(found.key, source(&found), file, position, t.acked.min(position), now);
                    t.hand_over(&mut c);
                    tracing::info!(path = %t.source.path, copy = %c.source.path, position,
                        "file truncated (copytruncate): its unread lines are read from the copy");
                    continued = Some(c);
                    seen.saturating_sub(copy_size)
                } else {
                    // The copy ends before the position: lines written between the copy and the truncation were
                    // read here already; the copy has nothing unread.
                    t.read_held(shape, batch, now);
                    let c = Tracked::new(found.key, source(&found), file, copy_size, t.acked.min(copy_size), now);
                    tracing::info!(path = %t.source.path, copy = %c.source.path, position, copy_size,
                        "file truncated (copytruncate) after it was read past the copy's end: nothing to read from the copy");
                    continued = Some(c);
                    seen.saturating_sub(t.read_end())
                };
                // Lines of this generation still in the batch are positions in the copy now.
                for (k, g, end) in &mut batch.commits {
                    if *k == key && *g == generation {
                        (*k, *g, *end) = (found.key, 0, (*end).min(copy_size));
                    }
                }
                if lost > 0 {
                    tracing::warn!(path = %t.source.path, lost_bytes = lost,
                        "file truncated: bytes written after the copy was made and before the truncation are lost (counted in otlp_bridge_file_truncated_bytes_total)");
                }
                lost
            }
            None => {
                // What is held in memory still goes out; what was never read is lost.
                t.read_held(shape, batch, now);
                let lost = seen.saturating_sub(t.read_end());
                if lost > 0 {
                    tracing::warn!(path = %t.source.path, lost_bytes = lost,
                        "file truncated before it was read to its end, and no copy the globs name holds the rest: the bytes are lost (counted in otlp_bridge_file_truncated_bytes_total)");
                } else {
                    tracing::info!(path = %t.source.path, "file truncated after it was read to its end: reading it again from its start");
                }
                lost
            }
        };
        self.truncated_bytes += lost;
        t.restart(now);
        if let Some(c) = continued {
            self.tracked.insert(c.key, c);
        }
    }

    /// Notes each tracked file's size (while reading is paused): a truncation then knows how much it lost, and the
    /// lag gauge shows the backlog of an outage.
    pub(crate) fn watch_sizes(&mut self) {
        for t in self.tracked.values_mut() {
            // Only while the file still holds what was read: a truncation is handled by the next read or scan,
            // with the size seen before it.
            t.intact();
        }
    }

    /// Releases files no glob names that were read to their end, sent and acknowledged, and idle for
    /// [`RELEASE_AFTER`]; returns how many.
    pub(crate) fn release(&mut self, now: Instant) -> usize {
        let before = self.tracked.len();
        self.tracked.retain(|_, t| {
            let idle =
                t.gone_since.is_some_and(|since| now.duration_since(since.max(t.last_growth())) >= RELEASE_AFTER);
            let done = idle && !t.holds_data() && t.acked >= t.read_end() && t.size <= t.read_end();
            if done {
                tracing::info!(path = %t.source.path, "file read to its end and acknowledged: released");
            }
            !done
        });
        before - self.tracked.len()
    }

    /// The positions to save: every tracked file at its acknowledged position.
    pub(crate) fn saved(&self) -> Vec<Saved> {
        self.tracked
            .values()
            .map(|t| Saved {
                key: t.key,
                path: t.source.path.clone(),
                identity: Identity {
                    head: t.head.clone(),
                    check: bytes_before(&t.file, t.acked, CHECK_BYTES).unwrap_or_default(),
                    offset: t.acked,
                },
            })
            .collect()
    }
}

/// The file in `dir` (not descending) with `key`, if it is not excluded.
fn find_inode(dir: &Path, key: FileKey, globs: &Globs) -> Option<Found> {
    std::fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
        let meta = std::fs::metadata(entry.path()).ok()?;
        (meta.is_file() && FileKey::of(&meta) == key && !globs.excluded(&entry.path())).then(|| Found {
            path: entry.path(),
            resolved: None,
            key,
            meta,
        })
    })
}
