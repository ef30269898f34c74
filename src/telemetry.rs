//! The bridge's own metrics (Prometheus text) and the admin server: `GET /metrics`, `/health`, `/ready`.
//!
//! Names follow the Collector's as it exposes them to Prometheus (`otelcol_receiver_accepted_spans_total`,
//! `otelcol_exporter_sent_spans_total`, ...) so existing dashboards carry over; what the Collector has no name for is
//! `otlp_bridge_*`. The exposition passes `promtool check metrics`: every family has HELP, counters end in `_total`,
//! every histogram has buckets (no summaries: a gateway's replicas must aggregate), and the label sets known at start
//! are registered at 0 so `rate()` and alerts see data before the first event. Each bridge owns its recorder
//! (no global), so tests can run many bridges in one process and read each one's figures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use metrics::{Key, Label, Level, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

mod admin;
mod archive;
mod balance;
mod file;
mod handles;
mod process;
mod queue;

pub(crate) use admin::{admin, Readiness};
pub(crate) use archive::ArchiveMetrics;
pub(crate) use file::FileMetrics;
pub(crate) use handles::{AddressMetrics, BalancerMetrics, BatchMetrics, InputMetrics, OutputMetrics, QueueDrops};
pub(crate) use queue::QueueMetrics;

use crate::signal::SignalKind;

const METADATA: Metadata<'static> = Metadata::new("otlp_bridge", Level::INFO, None);

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

/// Signals and `none` (a request whose path named no signal): the rows of the per-request tables.
const SIGNAL_ROWS: usize = SignalKind::COUNT + 1;
/// HTTP status codes with a held handle: 100 to 599 (any other is looked up, which never happens).
const STATUS_CODES: std::ops::Range<u16> = 100..600;
/// gRPC status codes by number (0..=16), then `HTTP_415` (not a gRPC client).
pub(crate) const GRPC_CODES: usize = 18;

/// The `listener` values of the connection metrics, the `outcome` values of TLS reloads, the `reason` values of
/// the token check and of queue refusals: each family's vocabulary, so an event finds its held handle.
const LISTENERS: &[&str] = &["otlp", "admin", "grpc"];
const TLS_OUTCOMES: &[&str] = &["ok", "rejected"];
const AUTH_REASONS: &[&str] = &["missing", "not_bearer", "malformed", "unknown_token"];

/// A gauge read when `/metrics` is scraped: its owner registers how to read it once.
type Collector = Box<dyn Fn() + Send + Sync>;

/// One counter family with one label from a known vocabulary; each value's handle is made with its first event.
struct Family {
    name: &'static str,
    label: &'static str,
    values: &'static [&'static str],
    slots: Box<[handles::Lazy<metrics::Counter>]>,
}

impl Family {
    fn new(name: &'static str, label: &'static str, values: &'static [&'static str]) -> Family {
        Family { name, label, values, slots: values.iter().map(|_| handles::Lazy::default()).collect() }
    }

    fn add(&self, recorder: &PrometheusRecorder, value: &'static str, n: u64) {
        let register = || {
            let key = Key::from_parts(self.name, vec![Label::new(self.label, value)]);
            recorder.register_counter(&key, &METADATA)
        };
        match self.values.iter().position(|v| *v == value) {
            Some(i) => self.slots[i].get(register).increment(n),
            None => register().increment(n),
        }
    }
}

/// Handles of the process-wide families (no label but the signal and a status, a listener or a reason).
struct Held {
    http_requests: Box<[handles::Lazy<metrics::Counter>]>,
    http_duration: [handles::Lazy<metrics::Histogram>; SIGNAL_ROWS],
    grpc_requests: Box<[handles::Lazy<metrics::Counter>]>,
    grpc_duration: [handles::Lazy<metrics::Histogram>; SIGNAL_ROWS],
    memory_refused: handles::Lazy<metrics::Counter>,
    tls_handshake_failures: handles::Lazy<metrics::Counter>,
    connections_refused: Family,
    connections_timed_out: Family,
    tls_reloads: Family,
    auth_refused: Family,
    queue_refused: Family,
    queue_fsync: handles::Lazy<metrics::Histogram>,
}

/// Metrics of one bridge.
pub(crate) struct Telemetry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    held: Held,
    collectors: Mutex<Vec<Collector>>,
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
        let per_signal_table = |columns: usize| (0..SIGNAL_ROWS * columns).map(|_| handles::Lazy::default()).collect();
        let held = Held {
            http_requests: per_signal_table(STATUS_CODES.len()),
            http_duration: Default::default(),
            grpc_requests: per_signal_table(GRPC_CODES),
            grpc_duration: Default::default(),
            memory_refused: handles::Lazy::default(),
            tls_handshake_failures: handles::Lazy::default(),
            connections_refused: Family::new("otlp_bridge_connections_refused_total", "listener", LISTENERS),
            connections_timed_out: Family::new("otlp_bridge_connections_timed_out_total", "listener", LISTENERS),
            tls_reloads: Family::new("otlp_bridge_tls_reloads_total", "outcome", TLS_OUTCOMES),
            auth_refused: Family::new("otlp_bridge_auth_refused_requests_total", "reason", AUTH_REASONS),
            queue_refused: Family::new("otlp_bridge_queue_refused_requests_total", "reason", &queue::REFUSAL_REASONS),
            queue_fsync: handles::Lazy::default(),
        };
        let t = Telemetry { recorder, handle, held, collectors: Mutex::new(Vec::new()) };
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
            self.register_receiver(kind, "http", &["json", "protobuf"]);
            let _ = self.dropped_counter(kind, "export_failed_client_gone");
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
            self.gauge("otelcol_exporter_queue_size", vec![Label::new("signal", signal)]).set(0.0);
        }
        self.held.memory_refused.get(|| self.counter("otlp_bridge_memory_refused_requests_total", Vec::new()));
        self.memory_refused(0);
        for listener in ["otlp", "admin"] {
            self.connection_refused(listener, 0);
            self.connection_timed_out(listener, 0);
        }
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

    /// `otlp_bridge_dropped_items_total` for `kind` and `reason`, registered at 0.
    fn dropped_counter(&self, kind: SignalKind, reason: &'static str) -> metrics::Counter {
        let c = self.counter(
            "otlp_bridge_dropped_items_total",
            vec![Label::new("signal", kind.name()), Label::new("reason", reason)],
        );
        c.increment(0);
        c
    }

    /// Registers at 0 the receiver counters of `kind` for `transport` in `encodings`.
    fn register_receiver(&self, kind: SignalKind, transport: &'static str, encodings: &[&'static str]) {
        for &encoding in encodings {
            let labels = vec![
                Label::new("transport", transport),
                Label::new("signal", kind.name()),
                Label::new("encoding", encoding),
            ];
            self.counter(per_signal("accepted", kind), labels).increment(0);
        }
        let labels = vec![Label::new("transport", transport), Label::new("signal", kind.name())];
        self.counter(per_signal("refused", kind), labels).increment(0);
    }

    /// Registers at 0 the receiver counters of an input other than HTTP (which `register_known` covers), and for
    /// gRPC its request counters, so that an input that is on shows 0 before its first request.
    pub(crate) fn register_input(&self, transport: &'static str, encodings: &[&'static str]) {
        for kind in SignalKind::ALL {
            self.register_receiver(kind, transport, encodings);
            if transport == "grpc" {
                self.connection_refused("grpc", 0);
                self.connection_timed_out("grpc", 0);
                self.counter(
                    "otlp_bridge_grpc_requests_total",
                    vec![Label::new("signal", kind.name()), Label::new("code", "OK")],
                )
                .increment(0);
            }
        }
    }

    /// One answered gRPC call: its signal (`None` for an unknown method), its status code (`code`: the number of
    /// a gRPC code, or [`GRPC_CODES`] - 1 for `HTTP_415`) and name, and the time from its headers to its status.
    pub(crate) fn grpc_request(&self, kind: Option<SignalKind>, code: usize, name: &'static str, elapsed: Duration) {
        let row = kind.map_or(SignalKind::COUNT, SignalKind::index);
        let signal = kind.map_or("none", SignalKind::name);
        let register = || {
            self.counter(
                "otlp_bridge_grpc_requests_total",
                vec![Label::new("signal", signal), Label::new("code", name)],
            )
        };
        match self.held.grpc_requests.get(row * GRPC_CODES + code) {
            Some(slot) if code < GRPC_CODES => slot.get(register).increment(1),
            _ => register().increment(1),
        }
        self.held.grpc_duration[row]
            .get(|| self.histogram("otlp_bridge_grpc_request_duration_seconds", vec![Label::new("signal", signal)]))
            .record(elapsed.as_secs_f64());
    }

    /// One answered HTTP request.
    pub(crate) fn request(&self, kind: Option<SignalKind>, status: StatusCode, elapsed: Duration) {
        let row = kind.map_or(SignalKind::COUNT, SignalKind::index);
        let signal = kind.map_or("none", SignalKind::name);
        let register = || {
            let code = SharedString::from(status.as_str().to_string());
            self.counter(
                "otlp_bridge_http_requests_total",
                vec![Label::new("signal", signal), Label::new("code", code)],
            )
        };
        let code = status.as_u16();
        if STATUS_CODES.contains(&code) {
            let column = usize::from(code - STATUS_CODES.start);
            self.held.http_requests[row * STATUS_CODES.len() + column].get(register).increment(1);
        } else {
            register().increment(1);
        }
        self.held.http_duration[row]
            .get(|| self.histogram("otlp_bridge_http_request_duration_seconds", vec![Label::new("signal", signal)]))
            .record(elapsed.as_secs_f64());
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

    /// `n` requests the memory limit refused.
    pub(crate) fn memory_refused(&self, n: u64) {
        self.held
            .memory_refused
            .get(|| self.counter("otlp_bridge_memory_refused_requests_total", Vec::new()))
            .increment(n);
    }

    /// Registers an unlabelled gauge that is read with `read` each time `/metrics` is scraped.
    pub(crate) fn gauge_on_scrape(&self, name: &'static str, read: impl Fn() -> f64 + Send + Sync + 'static) {
        let gauge = self.gauge(name, Vec::new());
        gauge.set(read());
        self.on_scrape(move || gauge.set(read()));
    }

    /// Runs `collect` (which sets gauges it holds) before each `/metrics` rendering. `collect` must not hold an
    /// `Arc` of what holds this `Telemetry` (a cycle): hold a `Weak` instead.
    pub(crate) fn on_scrape(&self, collect: impl Fn() + Send + Sync + 'static) {
        if let Ok(mut collectors) = self.collectors.lock() {
            collectors.push(Box::new(collect));
        }
    }

    /// `n` connections the cap closed at once on `listener`.
    pub(crate) fn connection_refused(&self, listener: &'static str, n: u64) {
        self.held.connections_refused.add(&self.recorder, listener, n);
    }

    /// `n` connections closed because they sent no request within the header timeout.
    pub(crate) fn connection_timed_out(&self, listener: &'static str, n: u64) {
        self.held.connections_timed_out.add(&self.recorder, listener, n);
    }

    /// `n` TLS connections that failed before their first request (handshake refused, e.g. no client certificate).
    pub(crate) fn tls_handshake_failed(&self, n: u64) {
        self.held
            .tls_handshake_failures
            .get(|| self.counter("otlp_bridge_tls_handshake_failures_total", Vec::new()))
            .increment(n);
    }

    /// A changed set of TLS files: `ok` (now in service) or `rejected` (the old set stays).
    pub(crate) fn tls_reload(&self, outcome: &'static str, n: u64) {
        self.held.tls_reloads.add(&self.recorder, outcome, n);
    }

    /// `n` requests refused for want of an accepted bearer token, by reason.
    pub(crate) fn auth_refused(&self, reason: &'static str, n: u64) {
        self.held.auth_refused.add(&self.recorder, reason, n);
    }

    /// Prometheus text exposition, this process's `process_*` metrics included.
    pub(crate) fn render(&self) -> String {
        if let Ok(collectors) = self.collectors.lock() {
            for collect in collectors.iter() {
                collect();
            }
        }
        let mut text = self.handle.render();
        process::render(&mut text);
        text
    }
}
