//! The archive: each batch its queue reader hands over becomes one object (the reader batches for this output by
//! `--archive-max-object-bytes` and `--archive-max-object-age`, within its memory share), encoded and compressed
//! as it is uploaded: one PUT, or a multipart upload whose parts leave as the compressed bytes pass 5 MiB, so the
//! compressed copy in memory never exceeds one part whatever the object's size.
//!
//! One call is one attempt; the bridge's retry loop repeats it (with backoff, until `--queue-max-age`) and the
//! queue's cursor for this output moves only after it succeeded. A retry writes the same key again (the key is
//! kept across the attempts of a batch), so a PUT that succeeded but whose answer was lost is overwritten with the
//! same bytes instead of duplicated; a crash before the cursor moved writes the batch again under a new key
//! (at least once).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{Attribute, Attributes, MultipartId, PutMultipartOptions, PutOptions, PutPayload};
use tokio::time::Instant;

use super::client::{error_chain, Failure};
use super::encode::ObjectEncoder;
use super::key::{ArchiveCompression, ArchiveFormat, Location, Namer};
use crate::signal::SignalKind;
use crate::telemetry::{ArchiveMetrics, Telemetry};

/// What the archive writes through: `object_store`'s S3 client in the bridge, its in-memory store in unit tests.
pub(crate) trait Store: object_store::ObjectStore + object_store::multipart::MultipartStore {}
impl<T: object_store::ObjectStore + object_store::multipart::MultipartStore> Store for T {}

/// S3's smallest part (but the last): parts are cut at this many compressed bytes.
pub(crate) const PART_BYTES: usize = 5 * 1024 * 1024;

/// What an object holds and how it is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObjectFormat {
    /// `otlp_proto` or `otlp_json`.
    pub format: ArchiveFormat,
    /// zstd, gzip or none.
    pub compression: ArchiveCompression,
}

/// Why an attempt did not store its object.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ArchiveError {
    /// The store refused or failed a request.
    #[error("{what}: {detail}")]
    Store {
        /// Which request.
        what: &'static str,
        /// What it means.
        failure: Failure,
        /// The client's error with its causes.
        detail: String,
    },
    /// The batch cannot be written in the configured format (a record that does not decode: never on a retry).
    #[error("{0}")]
    Encode(String),
}

/// A stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    /// Its key.
    pub key: String,
    /// Bytes in the store.
    pub bytes: u64,
    /// Bytes before compression.
    pub uncompressed: u64,
}

/// The archive output's writer; see the module docs.
pub(crate) struct Archive {
    /// The bucket and prefix.
    pub location: Location,
    store: Arc<dyn Store>,
    namer: Namer,
    format: ObjectFormat,
    metrics: ArchiveMetrics,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive").field("location", &self.location).field("format", &self.format).finish()
    }
}

impl Archive {
    /// An archive at `location` through `store`; `label` names it in metrics.
    pub(crate) fn new(
        location: Location,
        store: Arc<dyn Store>,
        namer: Namer,
        format: ObjectFormat,
        label: String,
        telemetry: Arc<Telemetry>,
    ) -> Archive {
        let reasons: Vec<&'static str> = Failure::ALL.iter().map(|f| f.as_str()).collect();
        let metrics = telemetry.register_archive(&label, &reasons);
        Archive { location, store, namer, format, metrics }
    }

    /// The store (for `--check` and readiness).
    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The key of a new object of `kind` whose oldest data arrived at `arrival`.
    pub(crate) fn next_key(&self, kind: SignalKind, arrival: SystemTime) -> String {
        self.namer.next_key(&self.location, kind, arrival, self.format.format, self.format.compression)
    }

    /// One attempt to store `parts` (whole requests of `kind`, concatenating to one request; `metadata`: the
    /// forwarded headers they came with) as the object `key`. `Ok(None)`: nothing to store (empty requests only).
    pub(crate) async fn store_batch(
        &self,
        kind: SignalKind,
        key: &str,
        parts: &[Bytes],
        metadata: &[(String, String)],
    ) -> Result<Option<Stored>, ArchiveError> {
        if parts.iter().all(Bytes::is_empty) {
            // No empty objects: a batch of empty requests is acknowledged without one.
            return Ok(None);
        }
        let encode = |e: super::encode::EncodeError| ArchiveError::Encode(e.to_string());
        let mut encoder = ObjectEncoder::new(kind, self.format.format, self.format.compression).map_err(encode)?;
        let path = Path::from(key);
        let attributes = self.attributes(metadata);
        let mut multipart: Option<(MultipartId, Vec<object_store::multipart::PartId>)> = None;
        let mut stored = 0u64;
        let result = async {
            for part in parts {
                encoder.append(part).map_err(encode)?;
                if encoder.buffered() >= PART_BYTES {
                    let data = Bytes::from(encoder.take());
                    stored += data.len() as u64;
                    self.upload_part(&path, &attributes, &mut multipart, data).await?;
                }
            }
            let uncompressed = encoder.uncompressed();
            let tail = Bytes::from(encoder.finish().map_err(encode)?);
            stored += tail.len() as u64;
            match &mut multipart {
                None => {
                    let opts = PutOptions { attributes: attributes.clone(), ..Default::default() };
                    self.request("storing an object", self.store.put_opts(&path, PutPayload::from(tail), opts)).await?;
                }
                Some(_) => {
                    self.upload_part(&path, &attributes, &mut multipart, tail).await?;
                    if let Some((id, parts)) = &multipart {
                        let complete = self.store.complete_multipart(&path, id, parts.clone());
                        self.request("completing a multipart upload", complete).await?;
                    }
                }
            }
            Ok(Some(Stored { key: key.to_string(), bytes: stored, uncompressed }))
        }
        .await;
        match &result {
            Ok(Some(s)) => self.metrics.stored(kind, s.bytes, s.uncompressed),
            Ok(None) => {}
            Err(_) => {
                if let Some((id, _)) = &multipart {
                    // Best effort: the store would otherwise keep the parts (and bill them) until a lifecycle rule.
                    let _ = tokio::time::timeout(Duration::from_secs(5), self.store.abort_multipart(&path, id)).await;
                }
            }
        }
        result
    }

    fn attributes(&self, metadata: &[(String, String)]) -> Attributes {
        let mut attributes = Attributes::new();
        let content_type = match (self.format.compression, self.format.format) {
            (ArchiveCompression::Zstd, _) => "application/zstd",
            (ArchiveCompression::Gzip, _) => "application/gzip",
            (ArchiveCompression::None, ArchiveFormat::OtlpProto) => "application/x-protobuf",
            (ArchiveCompression::None, ArchiveFormat::OtlpJson) => "application/jsonl",
        };
        attributes.insert(Attribute::ContentType, content_type.into());
        for (name, value) in metadata {
            // Stored as `x-amz-meta-<header>`: the tenant stays beside the data it came with.
            attributes.insert(Attribute::Metadata(name.clone().into()), value.clone().into());
        }
        attributes
    }

    async fn upload_part(
        &self,
        path: &Path,
        attributes: &Attributes,
        multipart: &mut Option<(MultipartId, Vec<object_store::multipart::PartId>)>,
        data: Bytes,
    ) -> Result<(), ArchiveError> {
        if multipart.is_none() {
            let opts = PutMultipartOptions { attributes: attributes.clone(), ..Default::default() };
            let id = self.request("starting a multipart upload", self.store.create_multipart_opts(path, opts)).await?;
            *multipart = Some((id, Vec::new()));
        }
        let Some((id, parts)) = multipart else { return Ok(()) };
        let upload = self.store.put_part(path, id, parts.len(), PutPayload::from(data));
        let part = self.request("uploading a part", upload).await?;
        parts.push(part);
        Ok(())
    }

    /// Runs one request to the store, timing it and counting its failure by reason.
    async fn request<T>(
        &self,
        what: &'static str,
        request: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> Result<T, ArchiveError> {
        let started = Instant::now();
        let result = request.await;
        self.metrics.request(started.elapsed());
        result.map_err(|e| {
            let failure = Failure::of(&e);
            self.metrics.failed(failure.as_str(), 1);
            ArchiveError::Store { what, failure, detail: error_chain(&e) }
        })
    }
}
