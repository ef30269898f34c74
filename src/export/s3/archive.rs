//! The archive: each batch its queue reader hands over becomes one object (the reader batches for this output by
//! `--archive-max-object-bytes` and `--archive-max-object-age`), written by an [`ObjectWriter`]: encoded and
//! compressed as it comes into a spool file, one PUT, or a multipart upload whose parts leave as the compressed bytes
//! pass 5 MiB.
//!
//! Memory, whatever the object's size: an open object holds its compressor, reserved from the memory budget (about
//! 1.4 MiB with zstd, 0.6 with gzip, 0.25 without compression: [`compressor_bytes`]); its compressed bytes wait on disk
//! in the queue directory ([`Spool`]) and come into memory only while they go up, under this archive's copies cap (a
//! quarter of the memory limit; a part larger than the cap waits for all of it, as gRPC frames do). At most
//! `--export-concurrency` objects are open in pieces at once, plus one per batch in flight. A batch within the reader's
//! memory share comes whole ([`Archive::store_batch`]); a larger one comes in pieces of a unit (the output's
//! `open_unit`), each freed once added, and the object is complete when the unit is.
//!
//! One call is one attempt; the bridge's retry loop repeats it (with backoff, until `--queue-max-age`) and the
//! queue's cursor for this output moves only after the object is stored. A retry writes the same key again (the key
//! is kept across the attempts of a batch), so a PUT that succeeded but whose answer was lost is overwritten with the
//! same bytes instead of duplicated; a crash before the cursor moved writes the batch again under a new key
//! (at least once).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{Attribute, Attributes, MultipartId, PutMultipartOptions, PutOptions, PutPayload};
use tokio::time::Instant;

use super::client::{error_chain, Failure};
use super::encode::{compressor_bytes, ObjectEncoder};
use super::key::{ArchiveCompression, ArchiveFormat, Location, Namer};
use super::spool::Spool;
use crate::export::ExportBuffers;
use crate::limit::{MemoryBudget, Reservation};
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
    /// The object's spool file failed (the queue directory's disk): the object is written again from its start.
    #[error("{what}: {detail}")]
    Spool {
        /// Which step.
        what: &'static str,
        /// The I/O error.
        detail: String,
    },
    /// The store no longer has the object's multipart upload: the object must be written again from its start.
    #[error("{what}: the store no longer has this object's multipart upload: {detail}")]
    UploadLost {
        /// Which request.
        what: &'static str,
        /// The client's error with its causes.
        detail: String,
    },
}

/// The requests of a batch or a piece that did not decode and were left out of its object (JSON objects only: a
/// protobuf object takes the queued bytes as they are), and what the others held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Refused {
    /// Requests left out.
    pub requests: u64,
    /// Items of the requests written (they decoded, so they are known).
    pub kept_items: u64,
    /// Why the last one was left out.
    pub why: String,
}

impl Refused {
    /// The items left out of a batch or piece of `items` items: all but those written, once any request was left
    /// out (the items of a request that does not decode cannot be counted), else none.
    pub(crate) fn rejected(&self, items: u64) -> u64 {
        if self.requests == 0 {
            0
        } else {
            items.saturating_sub(self.kept_items)
        }
    }
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

/// Where an archive's open objects keep what they hold (see [`ObjectWriter`]).
#[derive(Debug, Clone)]
pub(crate) struct ObjectMemory {
    /// The memory limit: an open object's compressor is reserved from it.
    pub budget: Arc<MemoryBudget>,
    /// The cap on bytes read back from spool files to go up (this archive's own: a slow store never holds another
    /// output's copies back).
    pub uploads: Arc<ExportBuffers>,
    /// Where spool files go (the queue directory).
    pub spool_dir: PathBuf,
}

/// The archive output's writer; see the module docs.
pub(crate) struct Archive {
    /// The bucket and prefix.
    pub location: Location,
    store: Arc<dyn Store>,
    namer: Namer,
    format: ObjectFormat,
    memory: ObjectMemory,
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
        memory: ObjectMemory,
        label: String,
        telemetry: Arc<Telemetry>,
    ) -> Archive {
        let reasons: Vec<&'static str> = Failure::ALL.iter().map(|f| f.as_str()).collect();
        let metrics = telemetry.register_archive(&label, &reasons);
        Archive { location, store, namer, format, memory, metrics }
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
    /// forwarded headers they came with) as the object `key`, with what was left out. No object (`None`) when there
    /// is nothing to store: empty requests only, or none that decoded.
    pub(crate) async fn store_batch(
        &self,
        kind: SignalKind,
        key: &str,
        parts: &[Bytes],
        metadata: &[(String, String)],
    ) -> Result<(Option<Stored>, Refused), ArchiveError> {
        if parts.iter().all(Bytes::is_empty) {
            // No empty objects: a batch of empty requests is acknowledged without one.
            return Ok((None, Refused::default()));
        }
        let mut writer = ObjectWriter::new(self, kind, key.to_string(), metadata);
        let result = async {
            // What decodes is archived; what does not is left out and counted (never retried: it cannot change).
            let refused = writer.add(self, 0, parts).await?;
            Ok((writer.complete(self).await?, refused))
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

    /// Everything `spool` holds, read into memory to go up, with the room it takes under this archive's copies cap
    /// (held until the permit is dropped, after the upload).
    async fn read_spool(
        &self,
        spool: &Spool,
    ) -> Result<(Bytes, Option<tokio::sync::SemaphorePermit<'_>>), ArchiveError> {
        let permit = self.memory.uploads.hold(spool.len()).await;
        let data = spool.read_all().map_err(|e| spool_error("reading the spool file", &e))?;
        Ok((data, permit))
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
        let failure = if lost { Failure::UploadLost } else { Failure::of(e) };
        self.metrics.failed(failure.as_str(), 1);
        if lost {
            ArchiveError::UploadLost { what, detail }
        } else {
            ArchiveError::Store { what, failure, detail }
        }
    }
}

/// One object in the making, written piece by piece: each request is encoded and compressed into the object's
/// spool file as it comes, and every 5 MiB of compressed bytes leaves as a multipart part before the next request is
/// written; an object that stays under one part is one PUT at the end. In memory it holds its compressor (reserved
/// from the memory budget from its first request to its end) and, for the length of an upload, the bytes going up
/// (under the archive's copies cap), whatever its size.
///
/// Every method is one attempt and may be repeated after a failure (or after being cancelled by a timeout): a
/// repeated [`ObjectWriter::add`] of the same piece goes on from the first request not yet written and uploads what
/// is still waiting, a repeated [`ObjectWriter::complete`] writes the same key again.
pub(crate) struct ObjectWriter {
    kind: SignalKind,
    key: String,
    path: Path,
    attributes: Attributes,
    /// Created with the first request; `None` again once the stream is finished.
    open: Option<Open>,
    /// The compressed bytes not yet uploaded.
    spool: Option<Spool>,
    /// The stream is finished: the spool holds the rest of the object.
    finished: bool,
    /// The spool holds a whole part, to upload before anything more is written.
    cut: bool,
    /// Pieces written so far, and how far the next one is: its number and the requests of it written.
    added: u64,
    piece: Option<(u64, usize)>,
    /// What the last piece left out.
    refused: Refused,
    multipart: Option<(MultipartId, Vec<object_store::multipart::PartId>)>,
    /// Bytes uploaded in parts.
    stored: u64,
    uncompressed: u64,
    /// A request with data was written: an object that is not empty.
    written: bool,
    /// The spool or the compression stream failed part-way: the object cannot be finished, only given up.
    broken: Option<ArchiveError>,
}

/// An open object's compressor and the memory reserved for it.
struct Open {
    encoder: ObjectEncoder,
    _memory: Reservation,
}

impl ObjectWriter {
    /// An empty object of `kind` at `key` with `metadata` as its user metadata; it holds nothing until its first
    /// request.
    pub(crate) fn new(archive: &Archive, kind: SignalKind, key: String, metadata: &[(String, String)]) -> ObjectWriter {
        ObjectWriter {
            kind,
            path: Path::from(key.as_str()),
            key,
            attributes: archive.attributes(metadata),
            open: None,
            spool: None,
            finished: false,
            cut: false,
            added: 0,
            piece: None,
            refused: Refused::default(),
            multipart: None,
            stored: 0,
            uncompressed: 0,
            written: false,
            broken: None,
        }
    }

    /// Keeps `e` as the answer to every later attempt: the object's bytes are no longer whole.
    fn broke(&mut self, e: ArchiveError) -> ArchiveError {
        self.open = None;
        self.broken = Some(e.clone());
        e
    }

    /// The object's key.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// The compressor and the spool, made at the first request: the compressor's memory is reserved from the budget
    /// first, waiting while the budget is full (request data drains on its own: clients' after the queue's fsync,
    /// readers' once delivered, and every open object's compressor once it completes, which needs no more of it).
    async fn open(&mut self, archive: &Archive) -> Result<(), ArchiveError> {
        if self.open.is_some() || self.finished {
            return Ok(());
        }
        let memory = &archive.memory;
        let need = compressor_bytes(archive.format.compression).min(memory.budget.limit());
        let mut waited = false;
        let reservation = loop {
            match memory.budget.reserve(need) {
                Ok(r) => break r,
                Err(_) => {
                    if !waited {
                        tracing::debug!(key = %self.key, need, "archive: an object waits for memory to open");
                        waited = true;
                    }
                    tokio::time::sleep(MEMORY_POLL).await;
                }
            }
        };
        if self.spool.is_none() {
            let spool = Spool::new(&memory.spool_dir).map_err(|e| spool_error("creating the spool file", &e))?;
            self.spool = Some(spool);
        }
        let encoder = ObjectEncoder::new(self.kind, archive.format.format, archive.format.compression)
            .map_err(|e| ArchiveError::Encode(e.to_string()))?;
        self.open = Some(Open { encoder, _memory: reservation });
        Ok(())
    }

    /// One attempt to add the `seq`-th piece (`parts`: whole requests). Returns what of it did not decode and was
    /// left out (JSON only).
    pub(crate) async fn add(&mut self, archive: &Archive, seq: u64, parts: &[Bytes]) -> Result<Refused, ArchiveError> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        self.upload_cut(archive).await?;
        if seq < self.added {
            // Written before (the answer was lost): nothing more to do.
            return Ok(self.refused.clone());
        }
        if self.finished {
            return Err(ArchiveError::Encode("a piece came after the object was completed".into()));
        }
        if parts.iter().all(Bytes::is_empty) {
            self.added = seq + 1;
            self.refused = Refused::default();
            return Ok(Refused::default());
        }
        self.open(archive).await?;
        let mut next = match self.piece {
            Some((s, next)) if s == seq => next,
            _ => {
                self.refused = Refused::default();
                0
            }
        };
        while let Some(part) = parts.get(next) {
            let (Some(open), Some(spool)) = (self.open.as_mut(), self.spool.as_mut()) else { break };
            if !part.is_empty() {
                match open.encoder.append(part) {
                    Ok(items) => {
                        self.written = true;
                        self.refused.kept_items += items.unwrap_or(0);
                    }
                    Err(e @ super::encode::EncodeError::Decode { .. }) => {
                        self.refused.requests += 1;
                        self.refused.why = e.to_string();
                    }
                    Err(e) => return Err(self.broke(ArchiveError::Encode(e.to_string()))),
                }
                if let Err(e) = open.encoder.drain(|b| spool.append(b)) {
                    return Err(self.broke(spool_error("writing the spool file", &e)));
                }
            }
            next += 1;
            self.piece = Some((seq, next));
            if spool.len() >= PART_BYTES {
                self.cut = true;
                self.upload_cut(archive).await?;
            }
        }
        self.added = seq + 1;
        self.piece = None;
        Ok(self.refused.clone())
    }

    /// Uploads the part the spool holds, if it holds a whole one.
    async fn upload_cut(&mut self, archive: &Archive) -> Result<(), ArchiveError> {
        if !self.cut {
            return Ok(());
        }
        let Some(spool) = self.spool.as_mut() else { return Ok(()) };
        let len = spool.len();
        let (data, _copy) = archive.read_spool(spool).await?;
        archive.upload_part(&self.path, &self.attributes, &mut self.multipart, data).await?;
        if let Err(e) = spool.clear() {
            // The part is up: sending the same bytes again would put them in the object twice.
            return Err(self.broke(spool_error("clearing the spool file", &e)));
        }
        self.cut = false;
        self.stored += len as u64;
        Ok(())
    }

    /// One attempt to complete the object. `Ok(None)`: nothing was written, so there is no object.
    pub(crate) async fn complete(&mut self, archive: &Archive) -> Result<Option<Stored>, ArchiveError> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        if !self.written {
            self.finished = true;
            self.open = None;
            return Ok(None);
        }
        self.upload_cut(archive).await?;
        if let Some(Open { encoder, _memory }) = self.open.take() {
            self.uncompressed = encoder.uncompressed();
            let tail = match encoder.finish() {
                Ok(tail) => tail,
                Err(e) => return Err(self.broke(ArchiveError::Encode(e.to_string()))),
            };
            let appended = self.spool.as_mut().map(|spool| spool.append(&tail));
            if let Some(Err(e)) = appended {
                return Err(self.broke(spool_error("writing the spool file", &e)));
            }
            self.finished = true;
            // The compressor's memory goes back to the budget here, before the last upload.
        }
        let Some(spool) = self.spool.as_mut() else {
            // Written, so opened, so spooled: unreachable, but never an acknowledgement of nothing.
            return Err(self.broke(ArchiveError::Encode("the object's spool is gone".into())));
        };
        let bytes = if self.multipart.is_none() {
            let len = spool.len();
            let (data, _copy) = archive.read_spool(spool).await?;
            let opts = PutOptions { attributes: self.attributes.clone(), ..Default::default() };
            let put = archive.store.put_opts(&self.path, PutPayload::from(data), opts);
            archive.request("storing an object", put).await?;
            len as u64
        } else {
            if spool.len() > 0 {
                // The last part may be smaller than 5 MiB.
                self.cut = true;
                self.upload_cut(archive).await?;
            }
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

/// How often an object waiting for memory to open looks again.
const MEMORY_POLL: Duration = Duration::from_millis(20);

fn spool_error(what: &'static str, e: &std::io::Error) -> ArchiveError {
    ArchiveError::Spool { what, detail: e.to_string() }
}
