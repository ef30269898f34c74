//! The ingest step: what every input does with a request's data once its transport has it, in one place.
//!
//! ```text
//! input (HTTP, gRPC, files)   its transport: head, route, auth, body, inflate, its answers
//!   admit       Ingest::admit(declared)             -> Reservation     memory, before a byte is buffered
//!   decode      Ingest::decode(kind, format, ..)    -> Decoded         wire scan (protobuf) or transcode (JSON)
//!   attributes  resource_attributes(kind, ..)       -> Decoded         --resource-attribute*, on the wire
//!   split       decode::split(decoded, max)         -> chunks          at whole resource/scope/item entries
//!   count       otelcol_receiver_accepted_*{transport, signal, encoding}
//!   submit      Sink::submit(Submission)            -> PartialSuccess  direct: backends acked; queued: fsynced
//!               (refused: otelcol_receiver_refused_*{transport, signal})
//! ```
//!
//! Every failure is an [`IngestError`]; the sink's refusal is one [`DeliveryError`] (code, retry, message) whatever
//! delivery mode runs, and each input maps it to its protocol once. An input that already holds protobuf bytes
//! (the file input builds `ExportLogsServiceRequest` bytes) calls [`Ingest::admit`], then [`Ingest::ingest`], and
//! learns the outcome when the delivery promise holds or fails.

mod decode;
mod error;

use std::sync::Arc;

use bytes::Bytes;

pub(crate) use decode::Decoded;
pub(crate) use error::{DeliveryError, IngestError, Retry};

use crate::limit::{MemoryBudget, MemoryError, Reservation};
use crate::signal::{Logs, Metrics, PartialSuccess, Profiles, SignalKind, Traces};
use crate::sink::{Sink, Submission};
use crate::telemetry::{InputMetrics, Telemetry};

/// The input a request came through: the `transport` label of the `otelcol_receiver_*` metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// OTLP/HTTP (`--listen`).
    Http,
    /// OTLP/gRPC (`--grpc-listen`).
    Grpc,
    /// Tailed log files.
    File,
}

impl Transport {
    /// Every transport, in declaration order (the index of each one's metrics).
    const ALL: [Transport; 3] = [Transport::Http, Transport::Grpc, Transport::File];

    /// The label value, as the Collector spells it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Grpc => "grpc",
            Transport::File => "file",
        }
    }
}

/// The encoding of a request's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Binary protobuf: scanned and forwarded byte for byte.
    Protobuf,
    /// OTLP/JSON: transcoded to protobuf once.
    Json,
}

impl Format {
    /// Every format, in declaration order (the index of each one's `encoding` counter).
    const ALL: [Format; 2] = [Format::Protobuf, Format::Json];

    /// The `encoding` label of the receiver metrics.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Format::Protobuf => "protobuf",
            Format::Json => "json",
        }
    }
}

/// The transport-neutral steps, shared by every input.
pub(crate) struct Ingest {
    /// Where accepted data goes (direct or queued delivery).
    sink: Arc<dyn Sink>,
    /// The memory budget every input's data is held against.
    budget: Arc<MemoryBudget>,
    /// Metrics.
    telemetry: Arc<Telemetry>,
    /// The receiver counters of each input, by [`Transport`].
    inputs: [InputMetrics; 3],
    /// Largest export; bigger requests are split.
    max_export_bytes: usize,
    /// `--resource-attribute*`; `None`: bodies pass as they came.
    resource: Option<crate::wire::ResourceStamp>,
}

impl Ingest {
    /// The steps over `sink`, holding data against `budget`, splitting at `max_export_bytes`.
    pub(crate) fn new(
        sink: Arc<dyn Sink>,
        budget: Arc<MemoryBudget>,
        telemetry: Arc<Telemetry>,
        max_export_bytes: usize,
    ) -> Ingest {
        let inputs = Transport::ALL.map(|t| InputMetrics::new(&telemetry, t.label(), Format::ALL.map(Format::label)));
        Ingest { sink, budget, telemetry, inputs, max_export_bytes, resource: None }
    }

    /// Sets `attributes` on every resource of every request from every input (none: requests are not touched).
    pub(crate) fn with_resource_attributes(mut self, attributes: &[crate::config::ResourceAttribute]) -> Ingest {
        self.resource = crate::wire::ResourceStamp::new(attributes);
        self
    }

    /// The admit step: a request of `declared` bytes (0 when unknown) is refused at once when they do not fit in
    /// what is free now (`Exhausted`: retry later) or in the whole limit (`TooLarge`: never); it reserves up to
    /// [`crate::limit::UPFRONT_RESERVATION`] of them, and the reservation then grows with what the input buffers.
    /// A refusal is counted (`otlp_bridge_memory_refused_requests_total`) by the caller that answers it.
    pub(crate) fn admit(&self, declared: usize) -> Result<Reservation, MemoryError> {
        self.budget.admit(declared)
    }

    /// The memory budget, for tests that fill it.
    #[cfg(test)]
    pub(crate) fn budget(&self) -> &Arc<MemoryBudget> {
        &self.budget
    }

    /// Counts a memory refusal: one per refused request, whichever step (admission, reading, decoding) refused it.
    pub(crate) fn memory_refused(&self) {
        self.telemetry.memory_refused(1);
    }

    /// The decode step, then the resource attributes: `plain` (uncompressed) as valid protobuf of `kind`. CPU work
    /// only (no await), so an input may run it on the blocking pool; the reservation follows what is held.
    pub(crate) fn decode(
        &self,
        kind: SignalKind,
        format: Format,
        plain: Bytes,
        reservation: &mut Reservation,
    ) -> Result<Decoded, IngestError> {
        let decoded = match kind {
            SignalKind::Traces => decode::decode::<Traces>(format, plain, reservation)?,
            SignalKind::Metrics => decode::decode::<Metrics>(format, plain, reservation)?,
            SignalKind::Logs => decode::decode::<Logs>(format, plain, reservation)?,
            SignalKind::Profiles => decode::decode::<Profiles>(format, plain, reservation)?,
        };
        self.resource_attributes(kind, decoded, reservation)
    }

    /// The resource attributes (`--resource-attribute*`): every resource of the validated protobuf `decoded` gets
    /// them, on the wire (only the `Resource` messages are rewritten, see [`crate::wire::ResourceStamp`]); the scan
    /// is moved to the new bytes and the reservation covers both bodies while the new one is written. Nothing
    /// configured, or an empty request (answered without being forwarded): the bytes pass as they came.
    fn resource_attributes(
        &self,
        kind: SignalKind,
        decoded: Decoded,
        reservation: &mut Reservation,
    ) -> Result<Decoded, IngestError> {
        match &self.resource {
            Some(stamp) if decoded.items > 0 => decode::stamp(kind, stamp, decoded, reservation),
            _ => Ok(decoded),
        }
    }

    /// The split, count and submit steps for data `decode` returned: answers when the delivery promise holds
    /// (direct: every backend acknowledged; queued: fsynced) with what the backends rejected, or with why not.
    /// `headers` are the `--forward-header` values the data carries to the backends. An empty request succeeds
    /// without reaching the sink.
    pub(crate) async fn submit(
        &self,
        transport: Transport,
        kind: SignalKind,
        decoded: Decoded,
        headers: Vec<(String, String)>,
        reservation: Reservation,
    ) -> Result<PartialSuccess, IngestError> {
        let items = decoded.items;
        if items == 0 {
            return Ok(PartialSuccess::default());
        }
        let metrics = &self.inputs[transport as usize];
        metrics.accepted(kind, decoded.format as usize, items);
        let chunks = match decode::split(kind, decoded, self.max_export_bytes) {
            Ok(chunks) => chunks,
            Err(e) => {
                metrics.refused(kind, items);
                return Err(e);
            }
        };
        let submission = Submission { kind, chunks, headers, reservation };
        self.sink.submit(submission).await.map_err(|e| {
            metrics.refused(kind, items);
            IngestError::Delivery(e.into())
        })
    }

    /// Decode and submit in one call, for an input that has the whole request in hand (the file input, small gRPC
    /// messages): the steps of [`Ingest::decode`] and [`Ingest::submit`].
    pub(crate) async fn ingest(
        &self,
        transport: Transport,
        kind: SignalKind,
        format: Format,
        plain: Bytes,
        headers: Vec<(String, String)>,
        mut reservation: Reservation,
    ) -> Result<PartialSuccess, IngestError> {
        let decoded = self.decode(kind, format, plain, &mut reservation)?;
        self.submit(transport, kind, decoded, headers, reservation).await
    }
}

#[cfg(test)]
mod tests;
