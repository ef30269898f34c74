//! Wake-ups when a watched directory changes (Linux inotify), so that bytes are read moments after they are
//! written instead of at the next poll.
//!
//! Why it matters beyond latency: logrotate's `copytruncate` copies a file, fsyncs the copy, then truncates the
//! file; lines appended in between are in no file afterwards. Polling every [`super::POLL_INTERVAL`] rarely looks
//! inside that window (tens of milliseconds on a busy disk); a reader woken by the write itself reads those lines
//! before the truncation, so they are sent instead of lost. The events are only a hint: what was written is
//! found by reading, as without them, and without inotify (another system, or its limits reached) the input polls.

use std::path::Path;

/// The input's wake-up source.
pub(crate) struct Wake {
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl Wake {
    /// A wake-up source; one that never fires when inotify is not available (logged once, at debug: polling is
    /// the design's baseline, not a fault).
    pub(crate) fn new() -> Wake {
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::inotify;
            // `AsyncFd::new` is deprecated for `register`, which is `unsafe` (this crate forbids unsafe code) only
            // to have the caller promise the descriptor stays open and the same while registered: an `OwnedFd`
            // moved into the `AsyncFd` is exactly that, so the safe constructor is sound here.
            #[allow(deprecated)]
            let register = tokio::io::unix::AsyncFd::new;
            let fd = inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC)
                .map_err(std::io::Error::from)
                .and_then(register);
            match fd {
                Ok(fd) => Wake { fd: Some(fd) },
                Err(e) => {
                    tracing::debug!("file changes are polled (inotify is not available: {e})");
                    Wake { fd: None }
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        Wake {}
    }

    /// Watches `dir` for writes to, and files created or moved into, it (again for a directory already watched:
    /// the kernel keeps one watch per directory). A directory that cannot be watched is polled.
    pub(crate) fn watch(&self, dir: &Path) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            use rustix::fs::inotify::{add_watch, WatchFlags};
            let flags = WatchFlags::MODIFY | WatchFlags::CREATE | WatchFlags::MOVED_TO;
            if let Err(e) = add_watch(fd.get_ref(), dir, flags) {
                tracing::debug!(dir = %dir.display(), "directory polled, not watched: {e}");
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = dir;
    }

    /// Resolves when a watched directory changed since the last call (at once if it did meanwhile); never without
    /// inotify.
    pub(crate) async fn changed(&self) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            let mut events = [0u8; 4096];
            loop {
                let Ok(mut guard) = fd.readable().await else { break };
                // Readiness is cleared only when the read finds nothing, so an event arriving meanwhile still wakes.
                match guard.try_io(|fd| rustix::io::read(fd.get_ref(), &mut events).map_err(std::io::Error::from)) {
                    Ok(Ok(_)) => return,
                    Ok(Err(e)) => {
                        tracing::debug!("file changes are polled from now on (reading inotify events failed: {e})");
                        break;
                    }
                    Err(_would_block) => continue,
                }
            }
        }
        std::future::pending::<()>().await;
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_write_in_a_watched_directory_wakes_and_an_unwatched_one_does_not() {
        let watched = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let wake = Wake::new();
        wake.watch(watched.path());
        std::fs::write(other.path().join("b.log"), "elsewhere\n").unwrap();
        let early = tokio::time::timeout(Duration::from_millis(200), wake.changed()).await;
        assert!(early.is_err(), "a directory not watched does not wake");
        std::fs::write(watched.path().join("a.log"), "line\n").unwrap();
        tokio::time::timeout(Duration::from_secs(10), wake.changed()).await.expect("the write wakes");
    }
}
