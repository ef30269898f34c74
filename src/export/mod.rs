//! The export side: every backend of a signal receives every batch (fan-out), each with its own retry; the
//! batch's outcome combines theirs.

mod balance;
pub(crate) mod codec;
mod debug;
mod grpc;
mod http_status;
mod outcome;
pub(crate) mod probe;
pub(crate) mod s3;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

pub(crate) use codec::Payload;
pub(crate) use debug::DebugBackend;
pub(crate) use grpc::GrpcBackend;
pub use grpc::SetupError;
pub(crate) use outcome::{combine, ExportError, Rejections};

use crate::config::{BackendTarget, Config, RetryConfig};
use crate::retry::export_with_retry;
use crate::signal::{PartialSuccess, SignalKind};
use crate::telemetry::Telemetry;
use outcome::{failure, hint, sane_partial_success};

/// The future of one [`Export::export`] call; boxed so the trait stays object safe (the queue's readers hold
/// `dyn Export`), at one allocation per batch.
pub(crate) type ExportFuture<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<PartialSuccess, ExportError>> + Send + 'a>>;

/// Takes one batch and says what became of it; what the batch worker and the queue's readers are generic over, as
/// tower's `Buffer` worker is over a `Service`: [`Exporter`] in the bridge, a fake that records calls in their tests.
pub(crate) trait Export: Send + Sync + 'static {
    /// Exports `payload` (`items` items), retrying until `deadline` (`None`: one attempt); the outcome is final.
    fn export(&self, payload: Payload, items: u64, deadline: Option<Instant>) -> ExportFuture<'_>;
}

impl Export for Exporter {
    fn export(&self, payload: Payload, items: u64, deadline: Option<Instant>) -> ExportFuture<'_> {
        Box::pin(Exporter::export(self, payload, items, deadline))
    }
}

/// One backend.
// A bridge has a handful of these, each behind an Arc: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Backend {
    /// OTLP/gRPC.
    Grpc(GrpcBackend),
    /// Prints to stdout.
    Debug(DebugBackend),
}

impl Backend {
    /// The label of logs and metrics.
    pub(crate) fn label(&self) -> &str {
        match self {
            Backend::Grpc(g) => g.url(),
            Backend::Debug(_) => "debug",
        }
    }
}

/// Sends a signal's batches to all of its backends.
#[derive(Debug)]
pub(crate) struct Exporter {
    kind: SignalKind,
    backends: Vec<Arc<Backend>>,
    buffers: Arc<ExportBuffers>,
    retry: RetryConfig,
    attempt_timeout: Duration,
    telemetry: Arc<Telemetry>,
}

impl Exporter {
    /// An exporter for `kind` over `backends` (shared between signals: one channel per backend), whose attempts'
    /// frame copies share `buffers`.
    pub(crate) fn new(
        kind: SignalKind,
        backends: Vec<Arc<Backend>>,
        buffers: Arc<ExportBuffers>,
        config: &Config,
        telemetry: Arc<Telemetry>,
    ) -> Exporter {
        Exporter { kind, backends, buffers, retry: config.retry, attempt_timeout: config.export_timeout, telemetry }
    }

    /// Exports one batch to every backend, retrying until `deadline`, and combines the outcomes.
    pub(crate) async fn export(
        &self,
        payload: Payload,
        items: u64,
        deadline: Option<Instant>,
    ) -> Result<PartialSuccess, ExportError> {
        if let [only] = self.backends.as_slice() {
            return self.export_to(only, payload, items, deadline).await;
        }
        let outcomes =
            join_all(self.backends.iter().map(|b| self.export_to(b, payload.clone(), items, deadline))).await;
        combine(outcomes, Rejections::Overlap)
    }

    async fn export_to(
        &self,
        backend: &Backend,
        payload: Payload,
        items: u64,
        deadline: Option<Instant>,
    ) -> Result<PartialSuccess, ExportError> {
        let kind = self.kind;
        let label = backend.label();
        let started = Instant::now();
        // The address of the previous attempt of this batch: a retry goes elsewhere when it can.
        let previous = std::sync::Mutex::new(None);
        let previous = &previous;
        let result = match backend {
            Backend::Debug(debug) => debug.export(kind, &payload).map_err(|status| failure(label, status, None, 1)),
            Backend::Grpc(grpc) => export_with_retry(
                &self.retry,
                self.attempt_timeout,
                deadline,
                |timeout| {
                    self.telemetry.export_attempt(kind, label);
                    let payload = payload.clone();
                    async move {
                        // The attempt copies the batch into its gRPC frame: that copy waits for room under the cap.
                        let _copy = self.buffers.hold(payload.len()).await;
                        grpc.export_balanced(kind, payload, timeout, previous).await
                    }
                },
                |status, delay| {
                    self.telemetry.export_retry(kind, label);
                    tracing::debug!(backend = label, signal = kind.name(), code = ?status.code(), ?delay, "export failed, retrying: {}", status.message());
                },
            )
            .await
            .map_err(|f| failure(label, f.status, f.retry_after, f.attempts)),
        };
        self.telemetry.export_duration(kind, label, started.elapsed());
        let result = result.map(|partial| sane_partial_success(partial, items, label));
        match &result {
            Ok(partial) => {
                self.telemetry.exported(kind, label, items, u64::try_from(partial.rejected).unwrap_or(0));
            }
            Err(e) => {
                self.telemetry.export_failed(kind, label, items);
                tracing::warn!(
                    backend = label,
                    signal = kind.name(),
                    items,
                    "export failed: {}{}",
                    e.detail(),
                    hint(e, label, kind)
                );
            }
        }
        result
    }
}
/// A cap on the bytes that export attempts copy into their gRPC frames.
///
/// Request data is counted against `--memory-limit-mib` until answered; each attempt in flight also holds a copy of
/// its batch (the frame tonic sends), one per backend. Without a cap those copies, up to `--batch-max-bytes` times
/// the export slots times the backends, come on top of the limit; with it, they add at most a quarter of it.
#[derive(Debug)]
pub(crate) struct ExportBuffers {
    kib: tokio::sync::Semaphore,
    capacity_kib: u32,
}

impl ExportBuffers {
    /// Room for `bytes` of frame copies at once.
    pub(crate) fn new(bytes: usize) -> Arc<ExportBuffers> {
        let capacity_kib = u32::try_from(bytes / 1024).unwrap_or(u32::MAX).max(1);
        Arc::new(ExportBuffers { kib: tokio::sync::Semaphore::new(capacity_kib as usize), capacity_kib })
    }

    /// Waits for room for a copy of `bytes` (a copy larger than the whole cap waits for all of it).
    async fn hold(&self, bytes: usize) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX).clamp(1, self.capacity_kib);
        // The semaphore is never closed, so this only fails if it were; then the copy simply goes uncapped.
        self.kib.acquire_many(kib).await.ok()
    }
}
/// Creates one backend per distinct target of the configuration (signals share channels).
pub(crate) fn build_backends(
    config: &Config,
    telemetry: &Arc<Telemetry>,
) -> Result<Vec<(BackendTarget, Arc<Backend>)>, SetupError> {
    let mut built: Vec<(BackendTarget, Arc<Backend>)> = Vec::new();
    for target in config.backends.iter().flatten() {
        if built.iter().any(|(t, _)| t == target) {
            continue;
        }
        let backend = match target {
            BackendTarget::Debug => Backend::Debug(DebugBackend),
            BackendTarget::Grpc(url) => Backend::Grpc(GrpcBackend::new(url, config, Arc::clone(telemetry))?),
        };
        built.push((target.clone(), Arc::new(backend)));
    }
    Ok(built)
}
