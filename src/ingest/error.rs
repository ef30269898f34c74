//! The one error class every input maps to its own protocol once: what went wrong with accepted data, as a
//! `google.rpc.Code` (OTLP's status vocabulary on every transport), whether and when to retry, and a message a
//! client may read (never a backend's address, never a secret).
//!
//! HTTP turns it into a status, a `Retry-After` and a `google.rpc.Status` body; gRPC into a status code with
//! `google.rpc.RetryInfo`; the file input into "keep the position and try again later" or "counted and logged".

use std::time::Duration;

use tonic::Code;

use crate::json::JsonError;
use crate::limit::MemoryError;
use crate::sink::SinkError;
use crate::wire::WireError;

/// Whether a client should send the same data again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Not as it is: the data is wrong, or the bridge is.
    No,
    /// After about this long: the bridge or a backend is busy, not the data wrong.
    After(Duration),
}

/// Why the ingest step did not deliver a request's data.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IngestError {
    /// The memory limit refused the data (busy: retry; or larger than the whole limit: never).
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// Malformed OTLP/JSON.
    #[error("invalid OTLP/JSON: {0}")]
    Json(#[from] JsonError),
    /// Malformed OTLP protobuf; the message names the field.
    #[error("invalid OTLP protobuf: {0}")]
    Protobuf(#[from] WireError),
    /// The sink did not keep its promise for the data.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
}

/// The sink's refusal of accepted data, whatever delivery mode runs: a code, retryability and a message.
#[derive(Debug)]
pub struct DeliveryError {
    code: Code,
    retry: Retry,
    source: SinkError,
}

impl DeliveryError {
    /// The status code: a backend's own code, or `UNAVAILABLE` when the bridge itself is full or stopping.
    pub(crate) fn code(&self) -> Code {
        self.code
    }

    /// Whether and when to retry: retryable codes carry the backend's delay (its `RetryInfo`) or the bridge's.
    pub(crate) fn retry(&self) -> Retry {
        self.retry
    }
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // What the client hears: the sink's own message (the export error's has no backend address).
        self.source.fmt(f)
    }
}

impl std::error::Error for DeliveryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The message is the sink error's own (as `#[error(transparent)]` would), so the chain goes on below it.
        std::error::Error::source(&self.source)
    }
}

impl From<SinkError> for DeliveryError {
    fn from(source: SinkError) -> DeliveryError {
        let (code, retry) = match &source {
            // The backend's outcome; the codes the Collector's receiver answers as retryable (503/429) carry the
            // backend's delay, or the least one.
            SinkError::Export(e) => {
                let code = e.code();
                let retry = if retryable(code) {
                    Retry::After(e.retry_after().unwrap_or(crate::retry::RETRY_AFTER_MIN))
                } else {
                    Retry::No
                };
                (code, retry)
            }
            SinkError::Queue(e) => (Code::Unavailable, Retry::After(e.retry_after())),
        };
        DeliveryError { code, retry, source }
    }
}

/// The codes a client should retry, as the Collector's otlpreceiver answers them (HTTP 503 or 429): a backend's
/// `RESOURCE_EXHAUSTED` included, whose delay then travels with it.
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::OutOfRange
            | Code::Unavailable
            | Code::DataLoss
            | Code::ResourceExhausted
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::ExportError;

    fn backend(code: Code, retry_after: Option<Duration>) -> DeliveryError {
        let error = if crate::retry::is_retryable(code, true) {
            crate::export::SendError::retryable(code, "busy").after(retry_after)
        } else {
            crate::export::SendError::rejected(code, "busy")
        };
        let (backend, error, attempts) = ("http://10.0.0.7:4317".to_string(), Box::new(error), 3);
        SinkError::Export(ExportError::Backend { backend, error, retry_after, attempts }).into()
    }

    #[test]
    fn a_backends_code_and_delay_are_kept_and_its_address_is_not_shown() {
        let e = backend(Code::Unavailable, Some(Duration::from_secs(7)));
        assert_eq!((e.code(), e.retry()), (Code::Unavailable, Retry::After(Duration::from_secs(7))));
        assert!(!e.to_string().contains("10.0.0.7"), "{e}");
        let e = backend(Code::ResourceExhausted, None);
        assert_eq!(e.retry(), Retry::After(crate::retry::RETRY_AFTER_MIN));
        let e = backend(Code::InvalidArgument, Some(Duration::from_secs(7)));
        assert_eq!((e.code(), e.retry()), (Code::InvalidArgument, Retry::No));
    }

    #[test]
    fn a_full_queue_is_unavailable_with_its_own_delay() {
        let e: DeliveryError = SinkError::Queue(crate::queue::QueueError::Full { used: 1, max: 1 }).into();
        assert_eq!(e.code(), Code::Unavailable);
        assert_eq!(e.retry(), Retry::After(crate::queue::QueueError::Full { used: 1, max: 1 }.retry_after()));
    }
}
