//! The properties of the fuzz targets live in the main crate's `tests/fuzz_props/`, so that `cargo test` replays the
//! corpora through exactly the same checks (`tests/e2e/fuzz_corpus.rs`).

#[path = "../../tests/fuzz_props/mod.rs"]
mod props;

pub use props::*;
