//! The bridge's own metrics (Prometheus text) and the admin server: `GET /metrics`, `/health`, `/ready`.
//!
//! Names follow the Collector's as it exposes them to Prometheus (`otelcol_receiver_accepted_spans_total`,
//! `otelcol_exporter_sent_spans_total`, ...) so existing dashboards carry over; what the Collector has no name for is
//! `otlp_bridge_*`. The exposition passes `promtool check metrics`: every family has HELP, counters end in `_total`,
//! every histogram has buckets (no summaries: a gateway's replicas must aggregate), and the label sets known at start
//! are registered at 0 so `rate()` and alerts see data before the first event. Each bridge owns its recorder
//! (no global), so tests can run many bridges in one process and read each one's figures.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use metrics::{Key, Label, Level, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

mod admin;
mod archive;
mod balance;
mod file;
mod process;
mod queue;

pub(crate) use admin::{admin, Readiness};
pub(crate) use file::FileMetrics;

use crate::signal::SignalKind;

const METADATA: Metadata<'static> = Metadata::new("otlp_bridge", Level::INFO, None);

/// The `listener` label of the connection metrics: `otlp` (the receiver) or `admin` (the admin server).
fn listener_label(listener: &'static str) -> Vec<Label> {
    vec![Label::new("listener", listener)]
}

fn per_signal(prefix: &'static str, kind: SignalKind) -> &'static str {
    // Spelled out so every name is a static string (no allocation per event).
    match (prefix, kind) {
        ("accepted", SignalKind::Traces) => "otelcol_receiver_accepted_spans_total",
        ("accepted", SignalKind::Metrics) => "otelcol_receiver_accepted_metric_points_total",
        ("accepted", SignalKind::Logs) => "otelcol_receiver_accepted_log_records_total",
        ("accepted", SignalKind::Profiles) => "otelcol_receiver_accepted_profiles_total",
        ("refused", SignalKind::Traces) => "otelcol_receiver_refused_spans_total",
        ("refused", SignalKind::Metrics) => "otelcol_receiver_refused_metric_points_total",
        ("refused", SignalKind::Logs) => "otelcol_receiver_refused_log_records_total",
        ("refused", SignalKind::Profiles) => "otelcol_receiver_refused_profiles_total",
        ("sent", SignalKind::Traces) => "otelcol_exporter_sent_spans_total",
        ("sent", SignalKind::Metrics) => "otelcol_exporter_sent_metric_points_total",
        ("sent", SignalKind::Logs) => "otelcol_exporter_sent_log_records_total",
        ("sent", SignalKind::Profiles) => "otelcol_exporter_sent_profiles_total",
        (_, SignalKind::Traces) => "otelcol_exporter_send_failed_spans_total",
        (_, SignalKind::Metrics) => "otelcol_exporter_send_failed_metric_points_total",
        (_, SignalKind::Logs) => "otelcol_exporter_send_failed_log_records_total",
        (_, SignalKind::Profiles) => "otelcol_exporter_send_failed_profiles_total",
    }
}

/// Metrics of one bridge.
pub(crate) struct Telemetry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Telemetry")
    }
}

impl Telemetry {
    /// A fresh registry with every metric described.
    pub(crate) fn new() -> Arc<Telemetry> {
        let seconds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let items = [1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 4000.0, 8192.0, 16384.0];
        let bytes = [1024.0, 4096.0, 16384.0, 65536.0, 262_144.0, 1_048_576.0, 2_097_152.0, 4_194_304.0, 16_777_216.0];
        use metrics_exporter_prometheus::Matcher::Suffix;
        // Default buckets for every histogram, so none is ever rendered as a summary (which replicas cannot add up).
        let recorder = PrometheusBuilder::new()
            .set_buckets(&seconds)
            .and_then(|b| b.set_buckets_for_metric(Suffix("_items".into()), &items))
            .and_then(|b| b.set_buckets_for_metric(Suffix("_bytes".into()), &bytes))
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        let t = Telemetry { recorder, handle };
        for kind in SignalKind::ALL {
            let item = kind.item_name();
            t.describe_counter(per_signal("accepted", kind), format!("{item} accepted, by input (transport)"));
            t.describe_counter(per_signal("refused", kind), format!("{item} decoded but not delivered (client told)"));
            t.describe_counter(per_signal("sent", kind), format!("{item} a backend acknowledged"));
            t.describe_counter(per_signal("send_failed", kind), format!("{item} a backend did not acknowledge"));
        }
        t.describe_counter(
            "otlp_bridge_http_requests_total",
            "HTTP requests answered, by signal and status code".into(),
        );
        t.describe_counter(
            "otlp_bridge_grpc_requests_total",
            "OTLP/gRPC calls answered, by signal and gRPC status code".into(),
        );
        t.describe_counter(
            "otlp_bridge_dropped_items_total",
            "items lost without the client being told, by reason".into(),
        );
        t.describe_counter("otlp_bridge_export_attempts_total", "gRPC export attempts".into());
        t.describe_counter("otlp_bridge_export_retries_total", "gRPC export attempts that were retried".into());
        t.describe_counter(
            "otlp_bridge_batch_flushes_total",
            "batches sent, by reason: size, timeout, idle, shutdown".into(),
        );
        t.describe_counter("otlp_bridge_memory_refused_requests_total", "requests refused by the memory limit".into());
        t.describe_counter(
            "otlp_bridge_connections_refused_total",
            "connections closed at once by the connection cap, by listener (otlp, admin)".into(),
        );
        t.describe_counter(
            "otlp_bridge_connections_timed_out_total",
            "connections closed because they sent no request within the header timeout, by listener (otlp, admin)"
                .into(),
        );
        t.describe_gauge("otelcol_exporter_queue_size", "items waiting in a signal's batcher");
        t.describe_gauge("otlp_bridge_memory_held_bytes", "bytes of request data held against --memory-limit-mib");
        t.describe_gauge("otlp_bridge_memory_limit_bytes", "the memory limit (--memory-limit-mib) in bytes");
        t.describe_gauge("otlp_bridge_connections_open", "open client connections on the OTLP/HTTP port");
        t.describe_gauge("otlp_bridge_build_info", "always 1; the version of this bridge is its label");
        t.describe_histogram(
            "otlp_bridge_http_request_duration_seconds",
            "time from request to answer on the OTLP/HTTP port, by signal",
        );
        t.describe_histogram(
            "otlp_bridge_grpc_request_duration_seconds",
            "time from call to status on the OTLP/gRPC port, by signal",
        );
        t.describe_histogram(
            "otlp_bridge_export_duration_seconds",
            "time one export to one backend took, retries included",
        );
        t.describe_histogram("otlp_bridge_batch_size_items", "items in each export batch");
        t.describe_histogram("otlp_bridge_batch_size_bytes", "protobuf bytes in each export batch");
        t.gauge("otlp_bridge_build_info", vec![Label::new("version", env!("CARGO_PKG_VERSION"))]).set(1.0);
        t.describe_counter(
            "otlp_bridge_tls_handshake_failures_total",
            "TLS connections closed before a request: failed or timed-out handshakes, refused client certificates"
                .into(),
        );
        t.describe_counter(
            "otlp_bridge_tls_reloads_total",
            "changed TLS files seen: ok (in service for new connections) or rejected (old ones kept, reason logged)"
                .into(),
        );
        t.describe_counter(
            "otlp_bridge_auth_refused_requests_total",
            "requests answered 401 by --auth-token-file, by reason: missing, not_bearer, malformed, unknown_token"
                .into(),
        );
        t.describe_balancing();
        t.describe_counter(
            "otlp_bridge_partition_refused_requests_total",
            "request chunks answered 503 because too many --forward-header partitions had open batches".into(),
        );
        Arc::new(t)
    }

    fn describe_counter(&self, name: &'static str, help: String) {
        self.recorder.describe_counter(name.into(), None, SharedString::from(help));
    }

    fn describe_gauge(&self, name: &'static str, help: &'static str) {
        self.recorder.describe_gauge(name.into(), None, SharedString::from(help));
    }

    fn describe_histogram(&self, name: &'static str, help: &'static str) {
        self.recorder.describe_histogram(name.into(), None, SharedString::from(help));
    }

    /// Registers at 0 every label set known at start (signals x encodings, each signal's backends, flush reasons),
    /// so a counter exists before its first event: `rate()` and alerts then see 0, not "no data".
    pub(crate) fn register_known(&self, backends: &[Vec<String>; SignalKind::COUNT]) {
        for kind in SignalKind::ALL {
            for encoding in ["json", "protobuf"] {
                self.accepted(kind, "http", encoding, 0);
            }
            self.refused(kind, "http", 0);
            self.dropped(kind, "export_failed_client_gone", 0);
            let signal = kind.name();
            self.counter(
                "otlp_bridge_http_requests_total",
                vec![Label::new("signal", signal), Label::new("code", "200")],
            )
            .increment(0);
            for backend in &backends[kind.index()] {
                let labels = || vec![Label::new("signal", signal), Label::new("backend", backend.clone())];
                for name in [per_signal("sent", kind), per_signal("send_failed", kind)] {
                    self.counter(name, labels()).increment(0);
                }
                self.counter("otlp_bridge_export_attempts_total", labels()).increment(0);
                self.counter("otlp_bridge_export_retries_total", labels()).increment(0);
            }
            self.queue_size(kind, 0);
        }
        self.counter("otlp_bridge_memory_refused_requests_total", Vec::new()).increment(0);
        for listener in ["otlp", "admin"] {
            self.counter("otlp_bridge_connections_refused_total", listener_label(listener)).increment(0);
            self.counter("otlp_bridge_connections_timed_out_total", listener_label(listener)).increment(0);
        }
        self.connections(0);
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> metrics::Counter {
        self.recorder.register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    fn gauge(&self, name: &'static str, labels: Vec<Label>) -> metrics::Gauge {
        self.recorder.register_gauge(&Key::from_parts(name, labels), &METADATA)
    }

    fn histogram(&self, name: &'static str, labels: Vec<Label>) -> metrics::Histogram {
        self.recorder.register_histogram(&Key::from_parts(name, labels), &METADATA)
    }

    /// Items decoded from a request that came through `transport` (`http`, `grpc`, `file`).
    pub(crate) fn accepted(&self, kind: SignalKind, transport: &'static str, encoding: &'static str, items: u64) {
        let labels = vec![
            Label::new("transport", transport),
            Label::new("signal", kind.name()),
            Label::new("encoding", encoding),
        ];
        self.counter(per_signal("accepted", kind), labels).increment(items);
    }

    /// Items decoded but not delivered; the client got an error.
    pub(crate) fn refused(&self, kind: SignalKind, transport: &'static str, items: u64) {
        let labels = vec![Label::new("transport", transport), Label::new("signal", kind.name())];
        self.counter(per_signal("refused", kind), labels).increment(items);
    }

    /// Registers at 0 the receiver counters of an input other than HTTP (which `register_known` covers), and for
    /// gRPC its request counters, so that an input that is on shows 0 before its first request.
    pub(crate) fn register_input(&self, transport: &'static str, encodings: &[&'static str]) {
        for kind in SignalKind::ALL {
            for &encoding in encodings {
                self.accepted(kind, transport, encoding, 0);
            }
            self.refused(kind, transport, 0);
            if transport == "grpc" {
                self.counter("otlp_bridge_connections_refused_total", listener_label("grpc")).increment(0);
                self.counter("otlp_bridge_connections_timed_out_total", listener_label("grpc")).increment(0);
                self.counter(
                    "otlp_bridge_grpc_requests_total",
                    vec![Label::new("signal", kind.name()), Label::new("code", "OK")],
                )
                .increment(0);
            }
        }
    }

    /// One answered gRPC call: its signal (`none` for an unknown method) and status code name (`OK`,
    /// `UNAVAILABLE`, ...), and the time from its headers to its status.
    pub(crate) fn grpc_request(&self, kind: Option<SignalKind>, code: &'static str, elapsed: Duration) {
        let signal = kind.map_or("none", SignalKind::name);
        self.counter("otlp_bridge_grpc_requests_total", vec![Label::new("signal", signal), Label::new("code", code)])
            .increment(1);
        self.histogram("otlp_bridge_grpc_request_duration_seconds", vec![Label::new("signal", signal)])
            .record(elapsed.as_secs_f64());
    }

    /// Items lost without the client being told (it had gone, or a backend rejected them in a partial success).
    pub(crate) fn dropped(&self, kind: SignalKind, reason: &'static str, items: u64) {
        let labels = vec![Label::new("signal", kind.name()), Label::new("reason", reason)];
        self.counter("otlp_bridge_dropped_items_total", labels).increment(items);
    }

    /// One answered HTTP request.
    pub(crate) fn request(&self, kind: Option<SignalKind>, status: StatusCode, elapsed: Duration) {
        let signal = kind.map_or("none", SignalKind::name);
        let code = SharedString::from(status.as_str().to_string());
        self.counter("otlp_bridge_http_requests_total", vec![Label::new("signal", signal), Label::new("code", code)])
            .increment(1);
        self.histogram("otlp_bridge_http_request_duration_seconds", vec![Label::new("signal", signal)])
            .record(elapsed.as_secs_f64());
    }

    /// A backend acknowledged `items`, of which it rejected `rejected`.
    pub(crate) fn exported(&self, kind: SignalKind, backend: &str, items: u64, rejected: u64) {
        let labels = vec![Label::new("signal", kind.name()), Label::new("backend", backend.to_string())];
        self.counter(per_signal("sent", kind), labels).increment(items.saturating_sub(rejected));
        if rejected > 0 {
            let labels = vec![Label::new("signal", kind.name()), Label::new("backend", backend.to_string())];
            self.counter(per_signal("send_failed", kind), labels).increment(rejected);
        }
    }

    /// A backend did not take `items`.
    pub(crate) fn export_failed(&self, kind: SignalKind, backend: &str, items: u64) {
        let labels = vec![Label::new("signal", kind.name()), Label::new("backend", backend.to_string())];
        self.counter(per_signal("send_failed", kind), labels).increment(items);
    }

    /// One gRPC attempt.
    pub(crate) fn export_attempt(&self, kind: SignalKind, backend: &str) {
        let labels = vec![Label::new("signal", kind.name()), Label::new("backend", backend.to_string())];
        self.counter("otlp_bridge_export_attempts_total", labels).increment(1);
    }

    /// How long one export to one backend took, retries included.
    pub(crate) fn export_duration(&self, kind: SignalKind, backend: &str, elapsed: Duration) {
        let labels = vec![Label::new("signal", kind.name()), Label::new("backend", backend.to_string())];
        self.histogram("otlp_bridge_export_duration_seconds", labels).record(elapsed.as_secs_f64());
    }

    /// One retry after a failed attempt.
    pub(crate) fn export_retry(&self, kind: SignalKind, backend: &str) {
        let labels = vec![Label::new("signal", kind.name()), Label::new("backend", backend.to_string())];
        self.counter("otlp_bridge_export_retries_total", labels).increment(1);
    }

    /// Registers at 0 the flush counters of every signal for each of `reasons` (the batcher's, which this module
    /// does not know: modules below it own their vocabulary).
    pub(crate) fn register_flush_reasons(&self, reasons: &[&'static str]) {
        for kind in SignalKind::ALL {
            for &reason in reasons {
                self.counter(
                    "otlp_bridge_batch_flushes_total",
                    vec![Label::new("signal", kind.name()), Label::new("reason", reason)],
                )
                .increment(0);
            }
        }
    }

    /// A batch left the batcher, for `reason` (a label [`Telemetry::register_flush_reasons`] was given).
    pub(crate) fn batch_flushed(&self, kind: SignalKind, reason: &'static str, items: u64, bytes: usize) {
        let signal = Label::new("signal", kind.name());
        self.counter("otlp_bridge_batch_flushes_total", vec![signal.clone(), Label::new("reason", reason)])
            .increment(1);
        self.histogram("otlp_bridge_batch_size_items", vec![signal.clone()]).record(items as f64);
        self.histogram("otlp_bridge_batch_size_bytes", vec![signal]).record(bytes as f64);
    }

    /// Items waiting in a signal's batcher (the Collector's queue size).
    pub(crate) fn queue_size(&self, kind: SignalKind, items: u64) {
        self.gauge("otelcol_exporter_queue_size", vec![Label::new("signal", kind.name())]).set(items as f64);
    }

    /// A request the memory limit refused.
    pub(crate) fn memory_refused(&self) {
        self.counter("otlp_bridge_memory_refused_requests_total", Vec::new()).increment(1);
    }

    /// Bytes held against the memory limit, and the limit.
    pub(crate) fn memory(&self, held: usize, limit: usize) {
        self.gauge("otlp_bridge_memory_held_bytes", Vec::new()).set(held as f64);
        self.gauge("otlp_bridge_memory_limit_bytes", Vec::new()).set(limit as f64);
    }

    /// Open client connections.
    pub(crate) fn connections(&self, open: usize) {
        self.gauge("otlp_bridge_connections_open", Vec::new()).set(open as f64);
    }

    /// A connection the cap closed at once.
    pub(crate) fn connection_refused(&self, listener: &'static str) {
        self.counter("otlp_bridge_connections_refused_total", listener_label(listener)).increment(1);
    }

    /// A connection closed because it sent no request within the header timeout.
    pub(crate) fn connection_timed_out(&self, listener: &'static str) {
        self.counter("otlp_bridge_connections_timed_out_total", listener_label(listener)).increment(1);
    }

    /// `n` TLS connections that failed before their first request (handshake refused, e.g. no client certificate).
    pub(crate) fn tls_handshake_failed(&self, n: u64) {
        self.counter("otlp_bridge_tls_handshake_failures_total", Vec::new()).increment(n);
    }

    /// A changed set of TLS files: `ok` (now in service) or `rejected` (the old set stays).
    pub(crate) fn tls_reload(&self, outcome: &'static str, n: u64) {
        self.counter("otlp_bridge_tls_reloads_total", vec![Label::new("outcome", outcome)]).increment(n);
    }

    /// `n` requests refused for want of an accepted bearer token, by reason.
    pub(crate) fn auth_refused(&self, reason: &'static str, n: u64) {
        self.counter("otlp_bridge_auth_refused_requests_total", vec![Label::new("reason", reason)]).increment(n);
    }

    /// A request refused because the batcher's bound on open forwarded-header partitions was reached.
    pub(crate) fn partition_refused(&self, kind: SignalKind) {
        self.counter("otlp_bridge_partition_refused_requests_total", vec![Label::new("signal", kind.name())])
            .increment(1);
    }

    /// Prometheus text exposition, this process's `process_*` metrics included.
    pub(crate) fn render(&self) -> String {
        let mut text = self.handle.render();
        process::render(&mut text);
        text
    }
}
