//! The export side: every output of a signal receives every batch (fan-out), each with its own retry; the batch's
//! outcome combines theirs. Outputs plug in through [`Output`] (see [`output`]); the kinds are listed in [`KINDS`].

mod balance;
mod debug;
mod grpc;
mod outcome;
mod output;
mod payload;
pub(crate) mod s3;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

pub(crate) use outcome::{combine, ExportError, Rejections};
pub(crate) use output::Code;
pub(crate) use output::{
    kind_for, AbortFuture, BatchLimits, Build, Output, OutputKind, OutputSettings, ProbeError, Unit,
};
pub use output::{Disposition, Problem, ProblemKind, SendError, SetupError};
pub(crate) use payload::Payload;

use crate::config::{BackendTarget, Config, RetryConfig};
use crate::retry::export_with_retry;
use crate::signal::{PartialSuccess, SignalKind};
use crate::telemetry::{OutputMetrics, Telemetry};
use outcome::{hint, sane_partial_success};

/// Every kind of output. Adding one: its own file (or folder) under `src/export/`, its `mod` line above, and one
/// entry here. The first kind that claims a URL takes it.
pub(crate) static KINDS: &[&OutputKind] = &[&grpc::KIND, &debug::KIND, &s3::KIND];

/// The future of one [`Export::export`] call; boxed so the trait stays object safe (the queue's readers hold
/// `dyn Export`), at one allocation per batch.
pub(crate) type ExportFuture<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<PartialSuccess, ExportError>> + Send + 'a>>;

/// Takes one batch and says what became of it; what the batch worker and the queue's readers are generic over, as
/// tower's `Buffer` worker is over a `Service`: [`Exporter`] in the bridge, a fake that records calls in their tests.
pub(crate) trait Export: Send + Sync + 'static {
    /// Exports `payload` (`items` items), retrying until `deadline` (`None`: one attempt); the outcome is final.
    fn export(&self, payload: Payload, items: u64, deadline: Option<Instant>) -> ExportFuture<'_>;

    /// A batch taken in pieces ([`Unit`]) for data with `metadata`, the oldest of it queued at `arrived_ms`, if
    /// the output has units (`None` by default).
    fn open_unit(
        &self,
        _metadata: &Arc<Vec<(String, String)>>,
        _arrived_ms: Option<u64>,
    ) -> Option<Box<dyn ExportUnit>> {
        None
    }
}

/// A [`Unit`] with the retry and the exporter metrics of [`Export`]: each call's outcome is final.
pub(crate) trait ExportUnit: Send {
    /// Adds the `seq`-th piece (`items` items), retrying until `deadline`.
    fn add(&mut self, seq: u64, payload: Payload, items: u64, deadline: Option<Instant>) -> ExportFuture<'_>;
    /// Completes the unit (`items`: every item added, for the metrics), retrying until `deadline`.
    fn complete(&mut self, items: u64, deadline: Option<Instant>) -> ExportFuture<'_>;
    /// Gives it up (nothing added is delivered).
    fn abort(self: Box<Self>) -> AbortFuture;
}

impl<E: Export + ?Sized> Export for Arc<E> {
    fn export(&self, payload: Payload, items: u64, deadline: Option<Instant>) -> ExportFuture<'_> {
        E::export(self, payload, items, deadline)
    }

    fn open_unit(&self, metadata: &Arc<Vec<(String, String)>>, arrived_ms: Option<u64>) -> Option<Box<dyn ExportUnit>> {
        E::open_unit(self, metadata, arrived_ms)
    }
}

impl Export for Exporter {
    fn export(&self, payload: Payload, items: u64, deadline: Option<Instant>) -> ExportFuture<'_> {
        Box::pin(Exporter::export(self, payload, items, deadline))
    }

    fn open_unit(&self, metadata: &Arc<Vec<(String, String)>>, arrived_ms: Option<u64>) -> Option<Box<dyn ExportUnit>> {
        // Units are one output's: a queue reader's exporter has exactly one.
        let [(output, metrics)] = self.outputs.as_slice() else { return None };
        let unit = output.open_unit(self.kind, metadata, arrived_ms)?;
        Some(Box::new(OutputUnit {
            unit: tokio::sync::Mutex::new(unit),
            output: Arc::clone(output),
            metrics: Arc::clone(metrics),
            retry: self.retry,
            attempt_timeout: output.delivery().attempt_timeout.unwrap_or(self.attempt_timeout),
            kind: self.kind,
        }))
    }
}

/// Sends a signal's batches to all of its outputs.
#[derive(Debug)]
pub(crate) struct Exporter {
    kind: SignalKind,
    /// Each output with its metric handles for this signal.
    outputs: Vec<(Arc<dyn Output>, Arc<OutputMetrics>)>,
    retry: RetryConfig,
    attempt_timeout: Duration,
}

impl Exporter {
    /// An exporter for `kind` over `outputs` (shared between signals: one channel per gRPC output).
    pub(crate) fn new(
        kind: SignalKind,
        outputs: Vec<Arc<dyn Output>>,
        config: &Config,
        telemetry: Arc<Telemetry>,
    ) -> Exporter {
        let outputs = outputs
            .into_iter()
            .map(|o| {
                let metrics = Arc::new(OutputMetrics::new(&telemetry, kind, o.label()));
                (o, metrics)
            })
            .collect();
        Exporter { kind, outputs, retry: config.retry, attempt_timeout: config.export_timeout }
    }

    /// Exports one batch to every output, retrying until `deadline`, and combines the outcomes.
    pub(crate) async fn export(
        &self,
        payload: Payload,
        items: u64,
        deadline: Option<Instant>,
    ) -> Result<PartialSuccess, ExportError> {
        if let [(only, metrics)] = self.outputs.as_slice() {
            return self.export_to(only.as_ref(), metrics, &payload, items, deadline).await;
        }
        let outcomes =
            join_all(self.outputs.iter().map(|(o, m)| self.export_to(o.as_ref(), m, &payload, items, deadline))).await;
        combine(outcomes, Rejections::Overlap)
    }

    async fn export_to(
        &self,
        output: &dyn Output,
        metrics: &OutputMetrics,
        payload: &Payload,
        items: u64,
        deadline: Option<Instant>,
    ) -> Result<PartialSuccess, ExportError> {
        let kind = self.kind;
        let started = Instant::now();
        let attempt_timeout = output.delivery().attempt_timeout.unwrap_or(self.attempt_timeout);
        // What the output keeps between the attempts of this batch (the gRPC output: the address that failed).
        let memo = tokio::sync::Mutex::new(None);
        let memo = &memo;
        let result = retrying(&self.retry, attempt_timeout, kind, output, metrics, deadline, |timeout| async move {
            let mut memo = memo.lock().await;
            output.send(output::Attempt { kind, payload, items, timeout }, &mut memo).await
        })
        .await;
        metrics.duration(started.elapsed());
        let result = result.map(|partial| sane_partial_success(partial, items, output.label()));
        counted(kind, output.label(), metrics, items, &result);
        result
    }
}

/// Runs `attempt` with the retry of [`export_with_retry`] until `deadline`, counting attempts and retries.
async fn retrying<F, Fut>(
    retry: &RetryConfig,
    attempt_timeout: Duration,
    kind: SignalKind,
    output: &dyn Output,
    metrics: &OutputMetrics,
    deadline: Option<Instant>,
    mut attempt: F,
) -> Result<PartialSuccess, ExportError>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<PartialSuccess, SendError>>,
{
    let label = output.label();
    export_with_retry(
        retry,
        attempt_timeout,
        deadline,
        |timeout| {
            metrics.attempt();
            attempt(timeout)
        },
        |error, delay| {
            metrics.retry();
            tracing::debug!(backend = label, signal = kind.name(), code = ?error.code, ?delay, "export failed, retrying: {}", error.full_message());
        },
    )
    .await
    .map_err(|f| ExportError::Backend {
        backend: label.to_string(),
        error: Box::new(f.error),
        retry_after: f.retry_after,
        attempts: f.attempts,
    })
}

/// Counts a final outcome of `items` items in the exporter families, and logs a failure.
fn counted(
    kind: SignalKind,
    label: &str,
    metrics: &OutputMetrics,
    items: u64,
    result: &Result<PartialSuccess, ExportError>,
) {
    match result {
        Ok(partial) => {
            metrics.exported(items, u64::try_from(partial.rejected).unwrap_or(0));
        }
        Err(e) => {
            metrics.failed(items);
            tracing::warn!(backend = label, signal = kind.name(), items, "export failed: {}{}", e.detail(), hint(e));
        }
    }
}

/// An output's [`Unit`] with the exporter's retry and metrics: attempts and retries count as for batches; the
/// items count as sent when the unit completes. A unit that fails for good is given up and its data read again from
/// the queue, so its items are not counted as failed (they are counted when they go again); the failure is logged.
struct OutputUnit {
    unit: tokio::sync::Mutex<Box<dyn Unit>>,
    output: Arc<dyn Output>,
    metrics: Arc<OutputMetrics>,
    retry: RetryConfig,
    attempt_timeout: Duration,
    kind: SignalKind,
}

impl ExportUnit for OutputUnit {
    fn add(&mut self, seq: u64, payload: Payload, items: u64, deadline: Option<Instant>) -> ExportFuture<'_> {
        Box::pin(async move {
            let (unit, payload, output) = (&self.unit, &payload, self.output.as_ref());
            let started = Instant::now();
            let result = retrying(
                &self.retry,
                self.attempt_timeout,
                self.kind,
                output,
                &self.metrics,
                deadline,
                |timeout| async move { unit.lock().await.add(seq, payload, items, timeout).await },
            )
            .await;
            self.metrics.duration(started.elapsed());
            let result = result.map(|partial| sane_partial_success(partial, items, output.label()));
            if let Err(e) = &result {
                given_up(self.kind, output.label(), e);
            }
            result
        })
    }

    fn complete(&mut self, items: u64, deadline: Option<Instant>) -> ExportFuture<'_> {
        Box::pin(async move {
            let (unit, output) = (&self.unit, self.output.as_ref());
            let started = Instant::now();
            let result = retrying(
                &self.retry,
                self.attempt_timeout,
                self.kind,
                output,
                &self.metrics,
                deadline,
                |timeout| async move { unit.lock().await.complete(timeout).await },
            )
            .await;
            self.metrics.duration(started.elapsed());
            let result = result.map(|partial| sane_partial_success(partial, items, output.label()));
            match &result {
                Ok(_) => counted(self.kind, output.label(), &self.metrics, items, &result),
                Err(e) => given_up(self.kind, output.label(), e),
            }
            result
        })
    }

    fn abort(self: Box<Self>) -> AbortFuture {
        self.unit.into_inner().abort()
    }
}

/// Logs a unit that failed for good: its data goes again from the queue, so nothing is counted as failed.
fn given_up(kind: SignalKind, label: &str, e: &ExportError) {
    tracing::warn!(
        backend = label,
        signal = kind.name(),
        "export failed: {}{}; the unit is given up and its data read again from the queue",
        e.detail(),
        hint(e)
    );
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
    pub(crate) async fn hold(&self, bytes: usize) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX).clamp(1, self.capacity_kib);
        // The semaphore is never closed, so this only fails if it were; then the copy simply goes uncapped.
        self.kib.acquire_many(kib).await.ok()
    }
}
/// Every output with the target it was built from.
pub(crate) type Outputs = Vec<(BackendTarget, Arc<dyn Output>)>;

/// Creates one output per distinct target of the configuration (signals share them, and so their channels).
pub(crate) fn build_outputs(
    config: &Config,
    telemetry: &Arc<Telemetry>,
    copies: &Arc<ExportBuffers>,
    budget: &Arc<crate::limit::MemoryBudget>,
) -> Result<Outputs, SetupError> {
    let build = Build { config, telemetry, copies, budget };
    let mut built: Outputs = Vec::new();
    for target in config.backends.iter().flatten() {
        if built.iter().any(|(t, _)| t == target) {
            continue;
        }
        let kind = kind_for(target.endpoint()).ok_or_else(|| SetupError::UnknownKind(target.endpoint().to_string()))?;
        built.push((target.clone(), (kind.build)(target, &build)?));
    }
    Ok(built)
}

/// Asks every output whether it could take data now (each with `kind_of` its target, all at once).
pub(crate) async fn probe_all(
    outputs: &[(Arc<dyn Output>, SignalKind)],
    timeout: Duration,
) -> Vec<(&str, Result<String, ProbeError>)> {
    let probes = outputs.iter().map(|(output, kind)| async move {
        let outcome = output
            .probe(*kind, timeout)
            .await
            .map_err(|problem| ProbeError { output: output.label().to_string(), problem });
        (output.label(), outcome)
    });
    join_all(probes).await
}

#[cfg(test)]
mod tests;
