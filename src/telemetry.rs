//! The bridge's own metrics (Prometheus text) and the admin server: `GET /metrics`, `/health`, `/ready`.
//!
//! Names follow the Collector's (`otelcol_receiver_accepted_spans`, `otelcol_exporter_sent_spans`, ...) so existing
//! dashboards carry over; what the Collector has no name for is `otlp_bridge_*`. Each bridge owns its recorder
//! (no global), so tests can run many bridges in one process and read each one's figures.

use std::future::Future;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use metrics::{Key, Label, Level, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::batch::FlushReason;
use crate::signal::SignalKind;

const METADATA: Metadata<'static> = Metadata::new("otlp_bridge", Level::INFO, None);

fn per_signal(prefix: &'static str, kind: SignalKind) -> &'static str {
    // Spelled out so every name is a static string (no allocation per event).
    match (prefix, kind) {
        ("accepted", SignalKind::Traces) => "otelcol_receiver_accepted_spans",
        ("accepted", SignalKind::Metrics) => "otelcol_receiver_accepted_metric_points",
        ("accepted", SignalKind::Logs) => "otelcol_receiver_accepted_log_records",
        ("refused", SignalKind::Traces) => "otelcol_receiver_refused_spans",
        ("refused", SignalKind::Metrics) => "otelcol_receiver_refused_metric_points",
        ("refused", SignalKind::Logs) => "otelcol_receiver_refused_log_records",
        ("sent", SignalKind::Traces) => "otelcol_exporter_sent_spans",
        ("sent", SignalKind::Metrics) => "otelcol_exporter_sent_metric_points",
        ("sent", SignalKind::Logs) => "otelcol_exporter_sent_log_records",
        (_, SignalKind::Traces) => "otelcol_exporter_send_failed_spans",
        (_, SignalKind::Metrics) => "otelcol_exporter_send_failed_metric_points",
        (_, SignalKind::Logs) => "otelcol_exporter_send_failed_log_records",
    }
}

/// Metrics of one bridge.
pub struct Telemetry {
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
    pub fn new() -> Arc<Telemetry> {
        let seconds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let items = [1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 4000.0, 8192.0, 16384.0];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()), &seconds)
            .and_then(|b| {
                b.set_buckets_for_metric(metrics_exporter_prometheus::Matcher::Suffix("_items".into()), &items)
            })
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        let t = Telemetry { recorder, handle };
        for kind in SignalKind::ALL {
            let item = kind.item_name();
            t.describe_counter(per_signal("accepted", kind), format!("{item} accepted by the HTTP receiver"));
            t.describe_counter(per_signal("refused", kind), format!("{item} decoded but not delivered (client told)"));
            t.describe_counter(per_signal("sent", kind), format!("{item} a backend acknowledged"));
            t.describe_counter(per_signal("send_failed", kind), format!("{item} a backend did not acknowledge"));
        }
        t.describe_counter(
            "otlp_bridge_http_requests_total",
            "HTTP requests answered, by signal and status code".into(),
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
            "connections closed at once by the connection cap".into(),
        );
        Arc::new(t)
    }

    fn describe_counter(&self, name: &'static str, help: String) {
        self.recorder.describe_counter(name.into(), None, SharedString::from(help));
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

    /// Items decoded from a request.
    pub fn accepted(&self, kind: SignalKind, encoding: &'static str, items: u64) {
        let labels =
            vec![Label::new("transport", "http"), Label::new("signal", kind.name()), Label::new("encoding", encoding)];
        self.counter(per_signal("accepted", kind), labels).increment(items);
    }

    /// Items decoded but not delivered; the client got an error.
    pub fn refused(&self, kind: SignalKind, items: u64) {
        let labels = vec![Label::new("transport", "http"), Label::new("signal", kind.name())];
        self.counter(per_signal("refused", kind), labels).increment(items);
    }

    /// Items lost without the client being told (it had gone, or a backend rejected them in a partial success).
    pub fn dropped(&self, kind: SignalKind, reason: &'static str, items: u64) {
        let labels = vec![Label::new("signal", kind.name()), Label::new("reason", reason)];
        self.counter("otlp_bridge_dropped_items_total", labels).increment(items);
    }

    /// One answered HTTP request.
    pub fn request(&self, kind: Option<SignalKind>, status: StatusCode, elapsed: Duration) {
        let signal = kind.map_or("none", SignalKind::name);
        let code = SharedString::from(status.as_str().to_string());
        self.counter("otlp_bridge_http_requests_total", vec![Label::new("signal", signal), Label::new("code", code)])
            .increment(1);
        self.histogram("otlp_bridge_http_request_duration_seconds", vec![Label::new("signal", signal)])
            .record(elapsed.as_secs_f64());
    }

    /// A backend acknowledged `items`, of which it rejected `rejected`.
    pub fn exported(&self, kind: SignalKind, backend: &str, items: u64, rejected: u64) {
        let labels = vec![Label::new("signal", kind.name()), Label::new("backend", backend.to_string())];
        self.counter(per_signal("sent", kind), labels).increment(items.saturating_sub(rejected));
        if rejected > 0 {
            let labels = vec![Label::new("signal", kind.name()), Label::new("backend", backend.to_string())];
            self.counter(per_signal("send_failed", kind), labels).increment(rejected);
        }
    }

    /// A backend did not take `items`.
    pub fn export_failed(&self, kind: SignalKind, backend: &str, items: u64) {
        let labels = vec![Label::new("signal", kind.name()), Label::new("backend", backend.to_string())];
        self.counter(per_signal("send_failed", kind), labels).increment(items);
    }

    /// One gRPC attempt.
    pub fn export_attempt(&self, kind: SignalKind, backend: &str) {
        let labels = vec![Label::new("signal", kind.name()), Label::new("backend", backend.to_string())];
        self.counter("otlp_bridge_export_attempts_total", labels).increment(1);
    }

    /// How long one export to one backend took, retries included.
    pub fn export_duration(&self, kind: SignalKind, backend: &str, elapsed: Duration) {
        let labels = vec![Label::new("signal", kind.name()), Label::new("backend", backend.to_string())];
        self.histogram("otlp_bridge_export_duration_seconds", labels).record(elapsed.as_secs_f64());
    }

    /// One retry after a failed attempt.
    pub fn export_retry(&self, kind: SignalKind, backend: &str) {
        let labels = vec![Label::new("signal", kind.name()), Label::new("backend", backend.to_string())];
        self.counter("otlp_bridge_export_retries_total", labels).increment(1);
    }

    /// A batch left the batcher.
    pub fn batch_flushed(&self, kind: SignalKind, reason: FlushReason, items: u64, bytes: usize) {
        let signal = Label::new("signal", kind.name());
        self.counter("otlp_bridge_batch_flushes_total", vec![signal.clone(), Label::new("reason", reason.as_str())])
            .increment(1);
        self.histogram("otlp_bridge_batch_size_items", vec![signal.clone()]).record(items as f64);
        self.histogram("otlp_bridge_batch_size_bytes", vec![signal]).record(bytes as f64);
    }

    /// Items waiting in a signal's batcher (the Collector's queue size).
    pub fn queue_size(&self, kind: SignalKind, items: u64) {
        self.gauge("otelcol_exporter_queue_size", vec![Label::new("signal", kind.name())]).set(items as f64);
    }

    /// A request the memory limit refused.
    pub fn memory_refused(&self) {
        self.counter("otlp_bridge_memory_refused_requests_total", Vec::new()).increment(1);
    }

    /// Bytes held against the memory limit, and the limit.
    pub fn memory(&self, held: usize, limit: usize) {
        self.gauge("otlp_bridge_memory_held_bytes", Vec::new()).set(held as f64);
        self.gauge("otlp_bridge_memory_limit_bytes", Vec::new()).set(limit as f64);
    }

    /// Open client connections.
    pub fn connections(&self, open: usize) {
        self.gauge("otlp_bridge_connections_open", Vec::new()).set(open as f64);
    }

    /// A connection the cap closed at once.
    pub fn connection_refused(&self) {
        self.counter("otlp_bridge_connections_refused_total", Vec::new()).increment(1);
    }

    /// A connection closed because it sent no request within the header timeout.
    pub fn connection_timed_out(&self) {
        self.counter("otlp_bridge_connections_timed_out_total", Vec::new()).increment(1);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// What `/ready` checks.
pub trait Readiness: Send + Sync + 'static {
    /// Whether the bridge can deliver: listening, and every backend reachable.
    fn ready(&self) -> impl Future<Output = Result<(), String>> + Send;
}

/// Answers one admin request.
pub async fn admin<R: Readiness>(
    telemetry: &Telemetry,
    before_render: impl Fn(),
    readiness: &R,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
        r
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n".into());
    }
    match req.uri().path() {
        "/metrics" => {
            before_render();
            let mut r = text(StatusCode::OK, telemetry.render());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        "/health" | "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/ready" | "/readyz" => match readiness.ready().await {
            Ok(()) => text(StatusCode::OK, "ready\n".into()),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
        },
        _ => text(StatusCode::NOT_FOUND, "admin paths: /metrics /health /ready\n".into()),
    }
}
