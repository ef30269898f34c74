//! The four OTLP signals behind one trait, so the receive path is written once: a signal is one row of each table
//! here plus its entry in the `SIGNALS` overlay of src/codegen.
//!
//! Everything after decoding works on protobuf bytes plus an item count and a [`SignalKind`]; only decoding and
//! building the response need the prost types, through [`Signal`].

use crate::proto::collector::{
    logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse},
    metrics::v1::{ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse},
    profiles::v1development::{
        ExportProfilesPartialSuccess, ExportProfilesServiceRequest, ExportProfilesServiceResponse,
    },
    trace::v1::{ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse},
};
use crate::proto::metrics::v1::metric::Data;

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
    /// Profiles (OTLP `v1development`).
    Profiles,
}

impl SignalKind {
    /// All signals, in index order.
    pub const ALL: [SignalKind; SignalKind::COUNT] =
        [SignalKind::Traces, SignalKind::Metrics, SignalKind::Logs, SignalKind::Profiles];
    /// How many signals there are: the length of per-signal arrays.
    pub const COUNT: usize = 4;

    /// Position in per-signal arrays.
    pub const fn index(self) -> usize {
        match self {
            SignalKind::Traces => 0,
            SignalKind::Metrics => 1,
            SignalKind::Logs => 2,
            SignalKind::Profiles => 3,
        }
    }

    /// `traces`, `metrics`, `logs`: the `signal` label of metrics and logs.
    pub const fn name(self) -> &'static str {
        match self {
            SignalKind::Traces => "traces",
            SignalKind::Metrics => "metrics",
            SignalKind::Logs => "logs",
            SignalKind::Profiles => "profiles",
        }
    }

    /// The OTLP/HTTP path.
    pub const fn http_path(self) -> &'static str {
        match self {
            SignalKind::Traces => "/v1/traces",
            SignalKind::Metrics => "/v1/metrics",
            SignalKind::Logs => "/v1/logs",
            SignalKind::Profiles => "/v1development/profiles",
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
            SignalKind::Profiles => "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
        }
    }

    /// What an item is, as in the Collector's metric names (`otelcol_receiver_accepted_spans`, ...).
    pub const fn item_name(self) -> &'static str {
        match self {
            SignalKind::Traces => "spans",
            SignalKind::Metrics => "metric_points",
            SignalKind::Logs => "log_records",
            SignalKind::Profiles => "profiles",
        }
    }

    /// The protobuf layout the wire scanner validates against.
    pub fn schema(self) -> &'static crate::wire::Schema {
        match self {
            SignalKind::Traces => &crate::wire::TRACES,
            SignalKind::Metrics => &crate::wire::METRICS,
            SignalKind::Logs => &crate::wire::LOGS,
            SignalKind::Profiles => &crate::wire::PROFILES,
        }
    }

    /// Whether one request's data must reach the backend as one export, never cut up nor merged with others':
    /// profiles index into their request's own `dictionary`, which merging would renumber and cutting would lose.
    pub const fn self_contained(self) -> bool {
        matches!(self, SignalKind::Profiles)
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
/// Profiles.
pub struct Profiles;

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

impl Signal for Profiles {
    type Request = ExportProfilesServiceRequest;
    type Response = ExportProfilesServiceResponse;
    const KIND: SignalKind = SignalKind::Profiles;

    fn count(request: &Self::Request) -> u64 {
        let profiles = request.resource_profiles.iter().flat_map(|r| &r.scope_profiles).map(|s| s.profiles.len());
        profiles.sum::<usize>() as u64
    }

    fn response(partial: Option<PartialSuccess>) -> Self::Response {
        ExportProfilesServiceResponse {
            partial_success: partial
                .map(|p| ExportProfilesPartialSuccess { rejected_profiles: p.rejected, error_message: p.message }),
        }
    }
}
