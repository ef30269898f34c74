//! The S3 archive output (`--backend s3://BUCKET/PREFIX`): every item the queue holds, written to S3-compatible
//! object storage as objects per signal and hour, from its own queue cursor, which passes data only once the
//! object holding it is stored.
//!
//! ```text
//! queue reader (this output's cursor; batches by signal x forwarded headers, up to the object size or age;
//!   an object larger than its memory share in pieces of a unit, each freed once written)
//!   -> one batch = one object: encode (otlp_proto | otlp_json) -> compress (zstd | gzip | none) -> spool file
//!   -> PUT, or multipart parts as it grows -> stored: the cursor passes the batch (else: retried with backoff;
//!      a unit failing for good is aborted and its data read again)
//! ```
//! `key` (location, layout, names), `encode` (an object's bytes), `spool` (its compressed bytes until they go up),
//! `archive` (one batch -> one object: PUT or multipart, and what it holds in memory), `client` (the S3 client, its
//! settings and what its errors mean).

mod archive;
mod client;
mod encode;
mod key;
mod output;
mod spool;

pub use client::StoreSettings;
pub(crate) use client::{build as build_store, error_chain, Failure};
#[cfg(test)]
pub(crate) use encode::ObjectEncoder;
pub(crate) use key::{hour_floor, Location};
pub use key::{ArchiveCompression, ArchiveFormat};
pub(crate) use output::KIND;

#[cfg(test)]
mod tests;
