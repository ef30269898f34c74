//! The S3 archive output (`--backend s3://BUCKET/PREFIX`): every item the queue holds, written to S3-compatible
//! object storage as objects per signal and hour, from its own queue cursor, which passes data only once the
//! object holding it is stored.
//!
//! ```text
//! queue reader (this output's cursor; batches by signal x forwarded headers, up to the object size or age)
//!   -> one batch = one object: encode (otlp_proto | otlp_json) -> compress (zstd | gzip | none)
//!   -> PUT, or multipart parts as it grows -> stored: the cursor passes the batch (else: retried with backoff)
//! ```
//! `key` (location, layout, names), `encode` (an object's bytes), `archive` (one batch -> one object: PUT or
//! multipart), `client` (the S3 client, its settings and what its errors mean).

// The writer side becomes an output when the output seam (issue 19) lands: until then its own tests and the replay
// tests (which read what it writes) are its only callers.
#[allow(dead_code)]
mod archive;
mod client;
#[allow(dead_code)]
mod encode;
mod key;

pub use client::StoreSettings;
pub(crate) use client::{build as build_store, error_chain, Failure};
#[cfg(test)]
pub(crate) use encode::ObjectEncoder;
pub(crate) use key::{hour_floor, Location};
pub use key::{ArchiveCompression, ArchiveFormat};

#[cfg(test)]
mod tests;
