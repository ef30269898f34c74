//! Which files the globs name now: include globs expanded on the file system (symlinks followed), exclude globs
//! applied, each file once (by device and inode) under the first path that names it.

use std::collections::HashSet;
use std::fs::Metadata;
use std::path::{Path, PathBuf};

use glob::{MatchOptions, Pattern};

use super::identity::FileKey;

/// A file the globs name.
#[derive(Debug)]
pub(crate) struct Found {
    /// The path as the glob matched it.
    pub path: PathBuf,
    /// The path with symlinks resolved, when it differs (semantic conventions' `log.file.path_resolved`).
    pub resolved: Option<PathBuf>,
    pub key: FileKey,
    pub meta: Metadata,
}

/// The include and exclude globs of one input.
#[derive(Debug)]
pub(crate) struct Globs {
    include: Vec<String>,
    /// Excludes with a `/`, matched against the whole path.
    exclude_path: Vec<Pattern>,
    /// Excludes without a `/`, matched against the file name.
    exclude_name: Vec<Pattern>,
}

const OPTIONS: MatchOptions =
    MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: false };

impl Globs {
    /// The globs (validated by the configuration; an invalid one matches nothing).
    pub(crate) fn new(include: &[String], exclude: &[String]) -> Globs {
        let (with_slash, names): (Vec<_>, Vec<_>) = exclude.iter().partition(|g| g.contains('/'));
        let compile = |globs: Vec<&String>| globs.into_iter().filter_map(|g| Pattern::new(g).ok()).collect();
        Globs { include: include.to_vec(), exclude_path: compile(with_slash), exclude_name: compile(names) }
    }

    /// Whether an exclude glob names `path`.
    pub(crate) fn excluded(&self, path: &Path) -> bool {
        self.exclude_path.iter().any(|p| p.matches_path_with(path, OPTIONS))
            || path
                .file_name()
                .is_some_and(|name| self.exclude_name.iter().any(|p| p.matches_with(&name.to_string_lossy(), OPTIONS)))
    }

    /// The regular files the globs name now, each once.
    pub(crate) fn scan(&self) -> Vec<Found> {
        let mut seen = HashSet::new();
        let mut found = Vec::new();
        for pattern in &self.include {
            let Ok(paths) = glob::glob_with(pattern, OPTIONS) else { continue };
            // Unreadable directories are skipped (the glob goes on); a file that vanished since is simply not here.
            for path in paths.flatten() {
                if self.excluded(&path) {
                    continue;
                }
                // Follows symlinks: the file read is the target.
                let Ok(meta) = std::fs::metadata(&path) else { continue };
                if !meta.is_file() {
                    continue;
                }
                let key = FileKey::of(&meta);
                if !seen.insert(key) {
                    continue;
                }
                let resolved = std::fs::canonicalize(&path).ok().filter(|r| {
                    let absolute = if path.is_absolute() {
                        path.clone()
                    } else {
                        std::env::current_dir().unwrap_or_default().join(&path)
                    };
                    *r != absolute
                });
                found.push(Found { path, resolved, key, meta });
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_exclude_and_symlinks_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = &dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(d.join("app/sub")).unwrap();
        for f in ["app/a.log", "app/b.log", "app/old.log.gz", "app/sub/c.log", "app/skip.log"] {
            std::fs::write(d.join(f), b"x\n").unwrap();
        }
        std::os::unix::fs::symlink(d.join("app/sub/c.log"), d.join("app/link.log")).unwrap();
        std::fs::create_dir(d.join("app/dir.log")).unwrap();
        let include = [format!("{}/app/*.log*", d.display()), format!("{}/app/**/*.log", d.display())];
        let exclude = ["*.gz".to_string(), format!("{}/app/skip.log", d.display())];
        let globs = Globs::new(&include, &exclude);
        let mut names: Vec<(String, bool)> = globs
            .scan()
            .into_iter()
            .map(|f| (f.path.strip_prefix(d).unwrap().display().to_string(), f.resolved.is_some()))
            .collect();
        names.sort();
        let want = [("app/a.log", false), ("app/b.log", false), ("app/link.log", true)];
        assert_eq!(names, want.map(|(p, r)| (p.to_string(), r)), "c.log is link.log's target: one file, named once");
    }
}
