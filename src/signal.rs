//! The three OTLP signals behind one trait, so the receive path is written once.
//!
//! Everything after decoding works on protobuf bytes plus an item count and a [`SignalKind`]; only decoding and
//! building the response need the prost types, through [`Signal`].

use opentelemetry_proto::tonic::collector::{
    logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse},
    metrics::v1::{ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse},
    trace::v1::{ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse},
};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;

use crate::json::JsonMessage;

/// Which signal a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalKind {
    /// Spans.
    Traces,
    /// Metric data points.
    Metrics,
    /// Log records.
    Logs,
}

impl SignalKind {
    /// All signals, in index order.
    pub const ALL: [SignalKind; 3] = [SignalKind::Traces, SignalKind::Metrics, SignalKind::Logs];

    /// Position in per-signal arrays.
    pub const fn index(self) -> usize {
        match self {
            SignalKind::Traces => 0,
            SignalKind::Metrics => 1,
            SignalKind::Logs => 2,
        }
    }

    /// `traces`, `metrics`, `logs`: the `signal` label of metrics and logs.
    pub const fn name(self) -> &'static str {
        match self {
            SignalKind::Traces => "traces",
            SignalKind::Metrics => "metrics",
            SignalKind::Logs => "logs",
        }
    }

    /// The OTLP/HTTP path.
    pub const fn http_path(self) -> &'static str {
        match self {
            SignalKind::Traces => "/v1/traces",
            SignalKind::Metrics => "/v1/metrics",
            SignalKind::Logs => "/v1/logs",
        }
    }

    /// The signal a request path names, if any.
    pub fn from_http_path(path: &str) -> Option<SignalKind> {
        SignalKind::ALL.into_iter().find(|k| k.http_path() == path)
    }

    /// The gRPC method the exporter calls.
    pub const fn grpc_path(self) -> &'static str {
        match self {
            SignalKind::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            SignalKind::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            SignalKind::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        }
    }

    /// What an item is, as in the Collector's metric names (`otelcol_receiver_accepted_spans`, ...).
    pub const fn item_name(self) -> &'static str {
        match self {
            SignalKind::Traces => "spans",
            SignalKind::Metrics => "metric_points",
            SignalKind::Logs => "log_records",
        }
    }

    /// The protobuf layout the wire scanner validates against.
    pub fn schema(self) -> &'static crate::wire::Schema {
        match self {
            SignalKind::Traces => &crate::wire::TRACES,
            SignalKind::Metrics => &crate::wire::METRICS,
            SignalKind::Logs => &crate::wire::LOGS,
        }
    }
}

/// Items a backend (or the bridge) rejected out of an accepted request, as OTLP's `partial_success`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialSuccess {
    /// Rejected items; 0 with a message is a warning.
    pub rejected: i64,
    /// Why, for a person.
    pub message: String,
}

impl PartialSuccess {
    /// Whether there is anything to report (an all-default partial success means full success).
    pub fn is_empty(&self) -> bool {
        self.rejected == 0 && self.message.is_empty()
    }
}

/// One OTLP signal: its prost request/response types and how to count items.
pub trait Signal: Send + Sync + 'static {
    /// `Export*ServiceRequest`.
    type Request: prost::Message + JsonMessage + Default + Send + 'static;
    /// `Export*ServiceResponse`.
    type Response: prost::Message + JsonMessage + Default + Send + 'static;
    /// Which signal this is.
    const KIND: SignalKind;
    /// Items in a decoded request (spans, metric data points, log records). The hot path counts while it scans or
    /// transcodes; this independent count from the message tree is the oracle the tests and fuzz targets check
    /// those against.
    fn count(request: &Self::Request) -> u64;
    /// The response to send for `partial`.
    fn response(partial: Option<PartialSuccess>) -> Self::Response;
}

/// Spans.
pub struct Traces;
/// Metric data points.
pub struct Metrics;
/// Log records.
pub struct Logs;

impl Signal for Traces {
    type Request = ExportTraceServiceRequest;
    type Response = ExportTraceServiceResponse;
    const KIND: SignalKind = SignalKind::Traces;

    fn count(request: &Self::Request) -> u64 {
        let spans = request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len());
        spans.sum::<usize>() as u64
    }

    fn response(partial: Option<PartialSuccess>) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: partial
                .map(|p| ExportTracePartialSuccess { rejected_spans: p.rejected, error_message: p.message }),
        }
    }
}

impl Signal for Metrics {
    type Request = ExportMetricsServiceRequest;
    type Response = ExportMetricsServiceResponse;
    const KIND: SignalKind = SignalKind::Metrics;

    fn count(request: &Self::Request) -> u64 {
        let metrics = request.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics);
        metrics
            .map(|m| match &m.data {
                Some(Data::Gauge(g)) => g.data_points.len(),
                Some(Data::Sum(s)) => s.data_points.len(),
                Some(Data::Histogram(h)) => h.data_points.len(),
                Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
                Some(Data::Summary(s)) => s.data_points.len(),
                None => 0,
            })
            .sum::<usize>() as u64
    }

    fn response(partial: Option<PartialSuccess>) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: partial
                .map(|p| ExportMetricsPartialSuccess { rejected_data_points: p.rejected, error_message: p.message }),
        }
    }
}

impl Signal for Logs {
    type Request = ExportLogsServiceRequest;
    type Response = ExportLogsServiceResponse;
    const KIND: SignalKind = SignalKind::Logs;

    fn count(request: &Self::Request) -> u64 {
        let records = request.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len());
        records.sum::<usize>() as u64
    }

    fn response(partial: Option<PartialSuccess>) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: partial
                .map(|p| ExportLogsPartialSuccess { rejected_log_records: p.rejected, error_message: p.message }),
        }
    }
}
