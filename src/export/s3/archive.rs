//! The archive: each batch its queue reader hands over becomes one object (the reader batches for this output by
//! `--archive-max-object-bytes` and `--archive-max-object-age`), written by an [`ObjectWriter`]: encoded and
//! compressed as it comes, one PUT, or a multipart upload whose parts leave as the compressed bytes pass 5 MiB, so
//! the compressed copy in memory never exceeds one part whatever the object's size. A batch within the reader's
//! memory share comes whole ([`Archive::store_batch`]); a larger one comes in pieces of a unit (the output's
//! `open_unit`), each freed once added, and the object is complete when the unit is.
//!
//! One call is one attempt; the bridge's retry loop repeats it (with backoff, until `--queue-max-age`) and the
//! queue's cursor for this output moves only after the object is stored. A retry writes the same key again (the key
//! is kept across the attempts of a batch), so a PUT that succeeded but whose answer was lost is overwritten with the
//! same bytes instead of duplicated; a crash before the cursor moved writes the batch again under a new key
//! (at least once).

use std::collections::VecDeque;
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
    /// The store no longer has the object's multipart upload: the object must be written again from its start.
    #[error("{what}: the store no longer has this object's multipart upload: {detail}")]
    UploadLost {
        /// Which request.
        what: &'static str,
        /// The client's error with its causes.
        detail: String,
    },
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
        let mut writer = ObjectWriter::new(self, kind, key.to_string(), metadata)?;
        let result = async {
            let refused = writer.add(self, 0, parts).await?;
            if refused > 0 {
                // A whole batch is refused, as before units: the retry loop never repeats it.
                return Err(ArchiveError::Encode(writer.refusal.take().unwrap_or_default()));
            }
            writer.complete(self).await
        }
        .await;
        if result.is_err() {
            writer.abort(self).await;
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
        let part = self.request_on_upload("uploading a part", upload).await?;
        parts.push(part);
        Ok(())
    }

    /// Runs one request to the store, timing it and counting its failure by reason.
    async fn request<T>(
        &self,
        what: &'static str,
        request: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> Result<T, ArchiveError> {
        self.timed(request).await.map_err(|e| self.failed(what, &e, false))
    }

    /// [`Archive::request`] on a multipart upload that exists: a 404 means the store no longer has the upload
    /// (restarted without it, or a lifecycle rule aborted it), which no retry of this request mends.
    async fn request_on_upload<T>(
        &self,
        what: &'static str,
        request: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> Result<T, ArchiveError> {
        self.timed(request).await.map_err(|e| self.failed(what, &e, true))
    }

    /// Runs one request to the store and times it.
    async fn timed<T>(
        &self,
        request: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> object_store::Result<T> {
        let started = Instant::now();
        let result = request.await;
        self.metrics.request(started.elapsed());
        result
    }

    /// A failed request to the store, counted by reason; `on_upload`: a 404 means the upload was lost.
    fn failed(&self, what: &'static str, e: &object_store::Error, on_upload: bool) -> ArchiveError {
        let detail = error_chain(e);
        let lost = on_upload && (matches!(e, object_store::Error::NotFound { .. }) || detail.contains("NoSuchUpload"));
        let failure = if lost { Failure::Other } else { Failure::of(e) };
        self.metrics.failed(failure.as_str(), 1);
        if lost {
            ArchiveError::UploadLost { what, detail }
        } else {
            ArchiveError::Store { what, failure, detail }
        }
    }
}

/// One object in the making, written piece by piece: each piece is encoded and compressed into the object's
/// stream as it comes, and every 5 MiB of compressed bytes leaves as a multipart part, so memory holds at most one
/// part (plus the compressor) whatever the object's size; an object that stays under one part is one PUT at the end.
///
/// Every method is one attempt and may be repeated after a failure (or after being cancelled by a timeout): a
/// repeated [`ObjectWriter::add`] of the same piece only uploads what is still waiting, a repeated
/// [`ObjectWriter::complete`] writes the same key again.
pub(crate) struct ObjectWriter {
    kind: SignalKind,
    key: String,
    path: Path,
    attributes: Attributes,
    /// `None` once the stream is finished.
    encoder: Option<ObjectEncoder>,
    /// Pieces encoded so far.
    added: u64,
    /// Requests of the last piece that did not decode (left out), and why.
    refused: u64,
    pub(super) refusal: Option<String>,
    /// Parts cut and not yet uploaded, in order.
    ready: VecDeque<Bytes>,
    /// The whole object, when it is one PUT.
    single: Option<Bytes>,
    multipart: Option<(MultipartId, Vec<object_store::multipart::PartId>)>,
    /// Bytes uploaded in parts.
    stored: u64,
    uncompressed: u64,
    /// A request with data was written: an object that is not empty.
    written: bool,
}

impl ObjectWriter {
    /// An empty object of `kind` at `key` with `metadata` as its user metadata.
    pub(crate) fn new(
        archive: &Archive,
        kind: SignalKind,
        key: String,
        metadata: &[(String, String)],
    ) -> Result<ObjectWriter, ArchiveError> {
        let encoder = ObjectEncoder::new(kind, archive.format.format, archive.format.compression)
            .map_err(|e| ArchiveError::Encode(e.to_string()))?;
        Ok(ObjectWriter {
            kind,
            path: Path::from(key.as_str()),
            key,
            attributes: archive.attributes(metadata),
            encoder: Some(encoder),
            added: 0,
            refused: 0,
            refusal: None,
            ready: VecDeque::new(),
            single: None,
            multipart: None,
            stored: 0,
            uncompressed: 0,
            written: false,
        })
    }

    /// The object's key.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// One attempt to add the `seq`-th piece (`parts`: whole requests). Returns how many of its requests did not
    /// decode and were left out (JSON only; the reason is in `refusal`).
    pub(crate) async fn add(&mut self, archive: &Archive, seq: u64, parts: &[Bytes]) -> Result<u64, ArchiveError> {
        if seq >= self.added {
            let Some(encoder) = self.encoder.as_mut() else {
                return Err(ArchiveError::Encode("a piece came after the object was completed".into()));
            };
            self.refused = 0;
            for part in parts.iter().filter(|p| !p.is_empty()) {
                match encoder.append(part) {
                    Ok(_) => self.written = true,
                    Err(e @ super::encode::EncodeError::Decode { .. }) => {
                        self.refused += 1;
                        self.refusal = Some(e.to_string());
                    }
                    Err(e) => return Err(ArchiveError::Encode(e.to_string())),
                }
                if encoder.buffered() >= PART_BYTES {
                    self.ready.push_back(Bytes::from(encoder.take()));
                }
            }
            self.added = seq + 1;
        }
        self.upload_ready(archive).await?;
        Ok(self.refused)
    }

    async fn upload_ready(&mut self, archive: &Archive) -> Result<(), ArchiveError> {
        while let Some(part) = self.ready.front() {
            let len = part.len() as u64;
            archive.upload_part(&self.path, &self.attributes, &mut self.multipart, part.clone()).await?;
            self.ready.pop_front();
            self.stored += len;
        }
        Ok(())
    }

    /// One attempt to complete the object. `Ok(None)`: nothing was written, so there is no object.
    pub(crate) async fn complete(&mut self, archive: &Archive) -> Result<Option<Stored>, ArchiveError> {
        if let Some(encoder) = self.encoder.take() {
            self.uncompressed = encoder.uncompressed();
            let tail = Bytes::from(encoder.finish().map_err(|e| ArchiveError::Encode(e.to_string()))?);
            if self.multipart.is_none() && self.ready.is_empty() {
                self.single = Some(tail);
            } else {
                self.ready.push_back(tail);
            }
        }
        if !self.written {
            return Ok(None);
        }
        let bytes = if let Some(single) = &self.single {
            let opts = PutOptions { attributes: self.attributes.clone(), ..Default::default() };
            let put = archive.store.put_opts(&self.path, PutPayload::from(single.clone()), opts);
            archive.request("storing an object", put).await?;
            single.len() as u64
        } else {
            self.upload_ready(archive).await?;
            if let Some((id, parts)) = &self.multipart {
                let complete = archive.store.complete_multipart(&self.path, id, parts.clone());
                archive.request_on_upload("completing a multipart upload", complete).await?;
            }
            self.stored
        };
        archive.metrics.stored(self.kind, bytes, self.uncompressed);
        Ok(Some(Stored { key: self.key.clone(), bytes, uncompressed: self.uncompressed }))
    }

    /// Gives the object up: aborts its multipart upload, if any (best effort, bounded: the store would otherwise
    /// keep the parts, and bill them, until a lifecycle rule removes them).
    pub(crate) async fn abort(self, archive: &Archive) {
        if let Some((id, _)) = &self.multipart {
            let _ = tokio::time::timeout(Duration::from_secs(5), archive.store.abort_multipart(&self.path, id)).await;
        }
    }
}
