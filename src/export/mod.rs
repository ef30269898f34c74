//! The export side: every backend of a signal receives every batch (fan-out), each with its own retry; the
//! batch's outcome combines theirs.

mod balance;
pub mod codec;
mod debug;
mod grpc;
pub mod probe;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tonic::Code;

pub use codec::Payload;
pub use debug::DebugBackend;
pub use grpc::{GrpcBackend, SetupError};

use crate::config::{BackendTarget, Config, RetryConfig};
use crate::retry::{export_with_retry, is_retryable};
use crate::signal::{PartialSuccess, SignalKind};
use crate::telemetry::Telemetry;

/// Why data did not reach a backend.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExportError {
    /// The backend answered with a gRPC error (or could not be reached, or did not answer in time).
    #[error("backend {backend} did not accept the data after {attempts} attempt(s): {code:?}: {message}")]
    Backend {
        /// The backend's URL.
        backend: String,
        /// The last gRPC status code.
        code: Code,
        /// The last status message.
        message: String,
        /// When to retry, for retryable failures (from `RetryInfo` or the backoff).
        retry_after: Option<Duration>,
        /// Attempts made.
        attempts: u32,
    },
    /// The bridge stopped before the data could be exported.
    #[error("the bridge is shutting down; the data was not exported, retry against another instance")]
    ShuttingDown,
}

impl ExportError {
    /// The gRPC code that decides the HTTP status.
    pub fn code(&self) -> Code {
        match self {
            ExportError::Backend { code, .. } => *code,
            ExportError::ShuttingDown => Code::Unavailable,
        }
    }

    /// The `Retry-After` hint.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ExportError::Backend { retry_after, .. } => *retry_after,
            ExportError::ShuttingDown => Some(Duration::from_secs(1)),
        }
    }

    /// Whether a client retry may succeed.
    pub fn is_retryable(&self) -> bool {
        is_retryable(self.code(), self.retry_after().is_some())
    }
}

/// How the rejection counts of combined outcomes add up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejections {
    /// The outcomes are of the same items (fan-out to backends): the largest count.
    Overlap,
    /// The outcomes are of different items (the chunks of a split request): the sum.
    Disjoint,
}

/// Combines the outcomes of several exports that together answer one request.
///
/// All succeeded: the rejection counts combined as `rejections` says, and every distinct message. Any failed: a
/// retryable failure wins over a permanent one, so that no backend loses data for want of a client retry; among
/// retryable ones, the longest `Retry-After`.
pub fn combine(
    results: impl IntoIterator<Item = Result<PartialSuccess, ExportError>>,
    rejections: Rejections,
) -> Result<PartialSuccess, ExportError> {
    let mut merged = PartialSuccess::default();
    let mut failure: Option<ExportError> = None;
    for result in results {
        match result {
            Ok(p) => {
                merged.rejected = match rejections {
                    Rejections::Overlap => merged.rejected.max(p.rejected),
                    Rejections::Disjoint => merged.rejected.saturating_add(p.rejected),
                };
                if !p.message.is_empty() && !merged.message.contains(&p.message) {
                    if !merged.message.is_empty() {
                        merged.message.push_str("; ");
                    }
                    merged.message.push_str(&p.message);
                }
            }
            Err(e) => {
                let replace = match &failure {
                    None => true,
                    Some(f) => match (e.is_retryable(), f.is_retryable()) {
                        (true, false) => true,
                        (true, true) => e.retry_after() > f.retry_after(),
                        _ => false,
                    },
                };
                if replace {
                    failure = Some(e);
                }
            }
        }
    }
    failure.map_or(Ok(merged), Err)
}

/// One backend.
// A bridge has a handful of these, each behind an Arc: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Backend {
    /// OTLP/gRPC.
    Grpc(GrpcBackend),
    /// Prints to stdout.
    Debug(DebugBackend),
}

impl Backend {
    /// The label of logs and metrics.
    pub fn label(&self) -> &str {
        match self {
            Backend::Grpc(g) => g.url(),
            Backend::Debug(_) => "debug",
        }
    }
}

/// Sends a signal's batches to all of its backends.
#[derive(Debug)]
pub struct Exporter {
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
    pub fn new(
        kind: SignalKind,
        backends: Vec<Arc<Backend>>,
        buffers: Arc<ExportBuffers>,
        config: &Config,
        telemetry: Arc<Telemetry>,
    ) -> Exporter {
        Exporter { kind, backends, buffers, retry: config.retry, attempt_timeout: config.export_timeout, telemetry }
    }

    /// Exports one batch to every backend, retrying until `deadline`, and combines the outcomes.
    pub async fn export(
        &self,
        payload: Payload,
        items: u64,
        deadline: Option<tokio::time::Instant>,
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
        deadline: Option<tokio::time::Instant>,
    ) -> Result<PartialSuccess, ExportError> {
        let kind = self.kind;
        let label = backend.label();
        let started = std::time::Instant::now();
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
        match &result {
            Ok(partial) => {
                self.telemetry.exported(kind, label, items, partial.rejected.max(0) as u64);
            }
            Err(e) => {
                self.telemetry.export_failed(kind, label, items);
                tracing::warn!(
                    backend = label,
                    signal = kind.name(),
                    items,
                    "export failed: {e}{}",
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
pub struct ExportBuffers {
    kib: tokio::sync::Semaphore,
    capacity_kib: u32,
}

impl ExportBuffers {
    /// Room for `bytes` of frame copies at once.
    pub fn new(bytes: usize) -> Arc<ExportBuffers> {
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

/// For the log: what a transport-level failure says about the backend and how to fix it (nothing for a gRPC status
/// the backend chose to send, which speaks for itself).
fn hint(e: &ExportError, url: &str, kind: SignalKind) -> String {
    match e {
        ExportError::Backend { code, message, .. } => {
            let problem = probe::diagnose(&tonic::Status::new(*code, message.clone()), url, kind);
            if problem.starts_with("answered ") && !problem.starts_with("answered HTTP") {
                String::new()
            } else {
                format!(" (the backend at {url} {problem})")
            }
        }
        ExportError::ShuttingDown => String::new(),
    }
}

fn failure(backend: &str, status: tonic::Status, retry_after: Option<Duration>, attempts: u32) -> ExportError {
    ExportError::Backend {
        backend: backend.to_string(),
        code: status.code(),
        message: status.message().to_string(),
        retry_after,
        attempts,
    }
}

/// Creates one backend per distinct target of the configuration (signals share channels).
pub fn build_backends(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn backend_error(code: Code, retry_after: Option<u64>) -> ExportError {
        ExportError::Backend {
            backend: "b".into(),
            code,
            message: format!("{code:?}"),
            retry_after: retry_after.map(Duration::from_secs),
            attempts: 1,
        }
    }

    #[test]
    fn combining_successes_keeps_the_largest_rejection_and_all_messages() {
        let outcomes = || {
            [
                Ok(PartialSuccess { rejected: 2, message: "a".into() }),
                Ok(PartialSuccess::default()),
                Ok(PartialSuccess { rejected: 1, message: "b".into() }),
            ]
        };
        let fan_out = combine(outcomes(), Rejections::Overlap).unwrap();
        assert_eq!(fan_out, PartialSuccess { rejected: 2, message: "a; b".into() });
        let chunks = combine(outcomes(), Rejections::Disjoint).unwrap();
        assert_eq!(chunks, PartialSuccess { rejected: 3, message: "a; b".into() });
    }

    #[test]
    fn a_retryable_failure_wins_so_no_backend_loses_data() {
        let e = combine(
            [
                Ok(PartialSuccess::default()),
                Err(backend_error(Code::InvalidArgument, None)),
                Err(backend_error(Code::Unavailable, Some(2))),
                Err(backend_error(Code::Unavailable, Some(5))),
            ],
            Rejections::Overlap,
        )
        .unwrap_err();
        assert_eq!((e.code(), e.retry_after()), (Code::Unavailable, Some(Duration::from_secs(5))));
    }
}
