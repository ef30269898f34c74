//! The export side: every backend of a signal receives every batch (fan-out), each with its own retry; the
//! batch's outcome combines theirs.

mod balance;
pub mod codec;
mod debug;
mod grpc;
mod http_status;
pub mod probe;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;
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
    ///
    /// Its `Display` is what the client hears: what happened and what to do, without the backend's address (an
    /// internal host name is nobody's business outside); [`ExportError::detail`] is the log's version.
    #[error("{}", client_message(*code, message, backend, *attempts))]
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
    /// Data of more distinct `--forward-header` values than the bridge keeps open batches for.
    #[error("too many distinct --forward-header values have data waiting to be batched (at most {limit} per signal); retry shortly")]
    TooManyPartitions {
        /// The bound.
        limit: usize,
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
            ExportError::ShuttingDown | ExportError::TooManyPartitions { .. } => Code::Unavailable,
        }
    }

    /// The full story for the log: the backend's URL (never with credentials: the configuration refuses them) and
    /// its own message.
    pub fn detail(&self) -> String {
        match self {
            ExportError::Backend { backend, code, message, attempts, .. } => {
                format!("backend {backend} did not accept the data after {attempts} attempt(s): {code:?}: {message}")
            }
            other => other.to_string(),
        }
    }

    /// The `Retry-After` hint.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ExportError::Backend { retry_after, .. } => *retry_after,
            ExportError::ShuttingDown | ExportError::TooManyPartitions { .. } => Some(crate::retry::RETRY_AFTER_MIN),
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

/// The future of one [`Export::export`] call; boxed so the trait stays object safe (the queue's readers hold
/// `dyn Export`), at one allocation per batch.
pub type ExportFuture<'a> = std::pin::Pin<Box<dyn Future<Output = Result<PartialSuccess, ExportError>> + Send + 'a>>;

/// Takes one batch and says what became of it; what the batch worker and the queue's readers are generic over, as
/// tower's `Buffer` worker is over a `Service`: [`Exporter`] in the bridge, a fake that records calls in their tests.
pub trait Export: Send + Sync + 'static {
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

/// The client's version of a backend failure: the code, the message with every address of the backend taken out,
/// and what to do about it.
fn client_message(code: Code, message: &str, backend: &str, attempts: u32) -> String {
    let what_to_do = if is_retryable(code, true) {
        "the data was not delivered; retry later"
    } else {
        "the data was not delivered; the bridge's log has the detail"
    };
    format!(
        "the backend did not accept the data after {attempts} attempt(s): {code:?}: {}; {what_to_do}",
        redact_addresses(message, backend)
    )
}

/// `message` without the backend's URL, its host name, and any IPv4 address (with its port) or bracketed IPv6
/// address that a transport error may name.
fn redact_addresses(message: &str, backend: &str) -> String {
    let mut text = message.replace(backend, "the backend");
    let host = backend.split("://").nth(1).unwrap_or(backend);
    let host_only = host.rsplit_once(':').map_or(host, |(h, _)| h);
    for name in [host, host_only] {
        if !name.is_empty() {
            text = text.replace(name, "the backend");
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        // "10.1.2.3:4317:" ends a sentence part: the trailing punctuation is not part of the address.
        let core = token.trim_end_matches([':', '.']);
        let is_v4 = core.matches('.').count() == 3
            && core.split(['.', ':']).all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        let is_v6 = core.starts_with('[') && core.contains(']') && core.matches(':').count() >= 2;
        if is_v4 || is_v6 {
            let rest = token[core.len()..].to_string();
            out.push_str("(address)");
            out.push_str(&rest);
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']') {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

/// A backend's `partial_success` after a sanity check: the rejected count is clamped to `0..=sent`, so that neither
/// the client nor the metrics hear of more rejected items than the batch held; a clamp is said in the message.
fn sane_partial_success(mut partial: PartialSuccess, sent: u64, backend: &str) -> PartialSuccess {
    let most = i64::try_from(sent).unwrap_or(i64::MAX);
    let claimed = partial.rejected;
    if !(0..=most).contains(&claimed) {
        partial.rejected = claimed.clamp(0, most);
        tracing::warn!(backend, claimed, sent, "the backend's partial_success claims an impossible rejected count");
        let note = format!(
            "the backend claimed {claimed} rejected items of the {sent} it was sent; counted as {}",
            partial.rejected
        );
        partial.message = if partial.message.is_empty() { note } else { format!("{} ({note})", partial.message) };
    }
    partial
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
        ExportError::ShuttingDown | ExportError::TooManyPartitions { .. } => String::new(),
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
    fn client_messages_name_no_backend_address() {
        let m = client_message(
            Code::Unavailable,
            "backend http://otel-gw.internal:4317 is not reachable: tcp connect error: 10.1.2.3:4317: refused",
            "http://otel-gw.internal:4317",
            3,
        );
        assert!(!m.contains("otel-gw") && !m.contains("10.1.2.3") && !m.contains("4317"), "{m}");
        assert!(m.contains("Unavailable") && m.contains("retry later") && m.contains("3 attempt(s)"), "{m}");
        let m = redact_addresses("connect to [::1]:4317 failed at 12:30", "http://localhost:4317");
        assert_eq!(m, "connect to (address) failed at 12:30");
    }

    #[test]
    fn impossible_rejected_counts_are_clamped_to_what_was_sent_and_said_so() {
        for (claimed, counted) in [(1000, 2), (-5, 0), (i64::MAX, 2), (i64::MIN, 0)] {
            let p = sane_partial_success(PartialSuccess { rejected: claimed, message: "m".into() }, 2, "b");
            assert_eq!(p.rejected, counted, "{claimed}");
            assert!(p.message.starts_with("m (") && p.message.contains(&claimed.to_string()), "{}", p.message);
        }
        let honest = PartialSuccess { rejected: 1, message: "one bad span".into() };
        assert_eq!(sane_partial_success(honest.clone(), 2, "b"), honest, "a plausible count is kept as it is");
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
