//! Where accepted data goes: the one hand-off between the receiver and the delivery modes.
//!
//! The receiver validates, decodes and splits a request, then hands it to a [`Sink`] and answers with what the sink
//! says. A sink answers only when its promise holds: [`Direct`] when every backend acknowledged the data, the
//! durable queue when the data is fsynced on local disk. The receiver does not know which mode runs.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::batch::Pipeline;
use crate::export::ExportError;
use crate::limit::Reservation;
use crate::queue::{Appender, QueueError};
use crate::signal::{PartialSuccess, SignalKind};

/// One client request's accepted data.
pub(crate) struct Submission {
    /// The signal of the request.
    pub kind: SignalKind,
    /// Valid export requests of `kind` (the request, or its split chunks), each with its item count.
    pub chunks: Vec<(Bytes, u64)>,
    /// Request headers to forward as gRPC metadata, in order (empty unless `--forward-header` names some).
    pub headers: Vec<(String, String)>,
    /// The request's bytes counted against the memory limit, held until the sink has answered.
    pub reservation: Reservation,
}

/// Why a sink could not take a request's data.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SinkError {
    /// Direct mode: a backend did not acknowledge the data.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// Queued mode: the queue did not store the data.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// The answer of a sink.
pub(crate) type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<PartialSuccess, SinkError>> + Send + 'a>>;

/// Takes accepted data and answers when its delivery promise holds.
pub(crate) trait Sink: Send + Sync + 'static {
    /// Takes `submission`; success means the mode's promise holds for all of its chunks.
    fn submit(&self, submission: Submission) -> SinkFuture<'_>;
}

/// Direct mode: data is batched and exported at once; the answer is the backends' acknowledgement.
pub(crate) struct Direct {
    /// Per-signal pipelines, by [`SignalKind::index`].
    pub pipelines: [Pipeline; SignalKind::COUNT],
}

impl Sink for Direct {
    fn submit(&self, submission: Submission) -> SinkFuture<'_> {
        let pipeline = &self.pipelines[submission.kind.index()];
        Box::pin(
            async move { Ok(pipeline.submit(submission.chunks, submission.headers, submission.reservation).await?) },
        )
    }
}

/// Queued mode: data is appended to the durable queue; the answer comes once it is fsynced. The queue's readers
/// deliver it to the backends later.
pub(crate) struct Queued {
    /// The queue's append side.
    pub appender: Appender,
}

impl Sink for Queued {
    fn submit(&self, submission: Submission) -> SinkFuture<'_> {
        Box::pin(async move {
            let Submission { kind, chunks, headers, reservation } = submission;
            self.appender.append(kind, chunks, &headers).await?;
            // The bytes are on disk now; the readers account for what they read back.
            drop(reservation);
            Ok(PartialSuccess::default())
        })
    }
}
