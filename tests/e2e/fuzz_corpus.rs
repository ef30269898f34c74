//! Replays the fuzz corpora (`fuzz/corpus/<target>/`) and regressions (`fuzz/regressions/<target>/`) through the
//! same property checks the cargo-fuzz targets run (`tests/fuzz_props/`), so `cargo test` keeps every input that
//! once found a bug, and every seed, passing.

use std::path::{Path, PathBuf};

/// Every input of `target`, corpus first, then regressions.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in [fuzz.join("corpus").join(target), fuzz.join("regressions").join(target)] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
        paths.sort();
        out.extend(paths.into_iter().map(|p| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        }));
    }
    out
}

/// Runs `check` on every input of `target` and fails naming each input that fails.
fn replay(target: &str, check: fn(&[u8])) {
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "no corpus for {target}");
    let failed: Vec<String> = inputs
        .iter()
        .filter(|(_, data)| std::panic::catch_unwind(|| check(data)).is_err())
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{target}: {} of {} inputs fail: {failed:#?}", failed.len(), inputs.len());
}

#[test]
fn json_traces() {
    replay("json_traces", crate::fuzz_props::json_traces);
}

#[test]
fn json_metrics() {
    replay("json_metrics", crate::fuzz_props::json_metrics);
}

#[test]
fn json_logs() {
    replay("json_logs", crate::fuzz_props::json_logs);
}

#[test]
fn json_profiles() {
    replay("json_profiles", crate::fuzz_props::json_profiles);
}

#[test]
fn wire_scan() {
    replay("wire_scan", crate::fuzz_props::wire_scan);
}

#[test]
fn inflate() {
    replay("inflate", crate::fuzz_props::inflate);
}

#[test]
fn http_request() {
    replay("http_request", crate::fuzz_props::http::http_request);
}

#[test]
fn resource_splice() {
    replay("resource_splice", crate::fuzz_props::resource_splice);
}
