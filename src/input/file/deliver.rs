//! Hands a batch to the sink and learns its fate: the memory budget admits the bytes, the sink answers when its
//! promise holds (direct: every backend acknowledged; queued: fsynced). A refusal is retried with backoff, the
//! batch kept in hand, so reading pauses while the sink cannot take more: nothing is dropped, nothing re-read.
//!
//! The steps every input shares (memory, validation, resource attributes, split, counting) are the ingest step's.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::ingest::{Format, Ingest, IngestError, Retry, Transport};
use crate::signal::{PartialSuccess, SignalKind};
use crate::telemetry::FileMetrics;

/// First wait after a refusal, doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between two attempts: a backend back up is noticed within seconds.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The fate of one batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    /// The sink's promise holds for it (items a backend rejected for good are counted and logged): its lines
    /// count as read.
    Done,
    /// The input was stopped before the sink took it: its lines will be read again at the next start.
    Stopped,
}

/// Where an input's batches go: the transport-neutral ingest step (admit, validate, resource attributes, split,
/// count with `transport="file"`, submit).
pub(crate) struct Deliver {
    pub ingest: Arc<Ingest>,
    pub metrics: FileMetrics,
    pub input: String,
}

impl Deliver {
    async fn attempt(&self, payload: Bytes, items: u64) -> Result<PartialSuccess, IngestError> {
        let _ = items;
        let reservation = self.ingest.admit(payload.len())?;
        self.ingest.ingest(Transport::File, SignalKind::Logs, Format::Protobuf, payload, Vec::new(), reservation).await
    }

    /// Delivers `payload` (`items` records), retrying until the sink takes it or `stop` is set; once stopped, an
    /// attempt in flight gets `drain` to finish.
    pub(crate) async fn deliver(
        &self,
        payload: Bytes,
        items: u64,
        stop: &mut watch::Receiver<bool>,
        drain: Duration,
    ) -> Fate {
        let mut backoff = FIRST_BACKOFF;
        let mut refused = 0u32;
        loop {
            let attempt = self.attempt(payload.clone(), items);
            tokio::pin!(attempt);
            let outcome = if *stop.borrow() {
                match tokio::time::timeout(drain, &mut attempt).await {
                    Ok(outcome) => outcome,
                    Err(_) => return Fate::Stopped,
                }
            } else {
                tokio::select! {
                    outcome = &mut attempt => outcome,
                    _ = stop.changed() => match tokio::time::timeout(drain, &mut attempt).await {
                        Ok(outcome) => outcome,
                        Err(_) => return Fate::Stopped,
                    },
                }
            };
            match outcome {
                Ok(partial) => {
                    if refused > 0 {
                        tracing::info!(input = %self.input, attempts = refused + 1, "file input resumed: the sink took the lines it had refused");
                    }
                    self.metrics.read_records.increment(items);
                    if partial.rejected > 0 {
                        let rejected = u64::try_from(partial.rejected).unwrap_or(0);
                        self.metrics.rejected.increment(rejected);
                        tracing::warn!(input = %self.input, rejected, message = %partial.message,
                            "a backend rejected log records read from files for good (partial success); they are counted as dropped");
                    }
                    return Fate::Done;
                }
                // Data a backend refuses for good (or that does not validate, which would be this input's bug) will
                // be refused again: counted, logged and passed over, as OTLP tells clients to do.
                Err(e) if permanent(&e) => {
                    self.metrics.rejected.increment(items);
                    tracing::error!(input = %self.input, items, "log records read from files were refused for good: {e}");
                    return Fate::Done;
                }
                Err(refusal) => {
                    if refused == 0 {
                        tracing::warn!(input = %self.input, "file input paused: the sink refused lines ({refusal}); retrying with backoff, nothing is dropped");
                    }
                    refused = refused.saturating_add(1);
                    if *stop.borrow() {
                        return Fate::Stopped;
                    }
                    let mut wait = backoff.mul_f64(0.5 + fastrand::f64() / 2.0);
                    if let IngestError::Delivery(e) = &refusal {
                        if let Retry::After(delay) = e.retry() {
                            wait = wait.max(delay.min(MAX_BACKOFF));
                        }
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => return Fate::Stopped,
                    }
                }
            }
        }
    }
}

/// Whether retrying cannot help: a backend's non-retryable refusal, or data that does not validate.
fn permanent(e: &IngestError) -> bool {
    match e {
        IngestError::Delivery(d) => matches!(d.retry(), Retry::No),
        IngestError::Json(_) | IngestError::Protobuf(_) => true,
        IngestError::Memory(m) => matches!(m, crate::limit::MemoryError::TooLarge { .. }),
    }
}
