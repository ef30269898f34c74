//! What an output is handed: one batch of one signal, as protobuf parts that concatenate to one valid
//! `Export*ServiceRequest`, with the forwarded header values its data came with.

use std::sync::Arc;

use bytes::Bytes;

/// A request body in parts; the concatenation of the parts is one valid `Export*ServiceRequest` (protobuf defines
/// the concatenation of two messages as their merge, so batching is appending).
#[derive(Debug, Clone, Default)]
pub(crate) struct Payload {
    /// The parts, in order: one client request (or one chunk of a split request) each.
    pub parts: Vec<Bytes>,
    /// The `--forward-header` values its data came with (lowercase names); an output passes them on in its own way
    /// (gRPC metadata, object metadata) and never mixes two values in one batch.
    pub metadata: Arc<Vec<(String, String)>>,
    /// When its oldest data arrived (wall-clock ms since the Unix epoch) if known: queued data keeps its enqueue
    /// time, which the archive's keys are partitioned by (not by when an upload finally succeeded).
    pub arrived_ms: Option<u64>,
}

impl Payload {
    /// Total length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }
}
