//! Metric handles held by the component whose events they count: created once per (signal, input), (signal,
//! output), signal or backend when the component is built, so an event is one atomic operation on a handle. No
//! label vector is built and the registry is not searched per event.
//!
//! A label set the bridge registered at 0 before (so that dashboards see 0, not "no data") is still registered at
//! 0 when its handle is made; one that appeared only with its first event still does ([`Lazy`]), so the exposition
//! is what it was.

use std::sync::{Arc, OnceLock};

use metrics::{Counter, Gauge, Histogram, Label};

use super::{per_signal, Telemetry};
use crate::signal::SignalKind;

/// A handle registered with its first use, then held.
pub(crate) struct Lazy<H> {
    cell: OnceLock<H>,
}

impl<H> Default for Lazy<H> {
    fn default() -> Self {
        Lazy { cell: OnceLock::new() }
    }
}

impl<H> Lazy<H> {
    /// The handle; `register` runs once, on the first call.
    pub(crate) fn get(&self, register: impl FnOnce() -> H) -> &H {
        self.cell.get_or_init(register)
    }
}

/// Handles of one family with one label taking a value from a list known when it is made (flush reasons, drop
/// reasons): an event finds its value among a few static strings.
pub(crate) struct ByLabel<H> {
    values: Vec<(&'static str, H)>,
}

impl<H> ByLabel<H> {
    pub(super) fn new(values: &[&'static str], mut make: impl FnMut(&'static str) -> H) -> ByLabel<H> {
        ByLabel { values: values.iter().map(|&v| (v, make(v))).collect() }
    }

    /// The handle of `value`; `None` for a value the list did not name (a bug the caller logs or ignores).
    pub(crate) fn get(&self, value: &str) -> Option<&H> {
        self.values.iter().find(|(v, _)| std::ptr::eq(*v, value) || *v == value).map(|(_, h)| h)
    }
}

/// The receiver families of one input (`transport`): `otelcol_receiver_{accepted,refused}_*` by signal.
pub(crate) struct InputMetrics {
    telemetry: Arc<Telemetry>,
    transport: &'static str,
    encodings: [&'static str; 2],
    accepted: [[Lazy<Counter>; 2]; SignalKind::COUNT],
    refused: [Lazy<Counter>; SignalKind::COUNT],
}

impl InputMetrics {
    /// The handles of input `transport`, whose data comes in `encodings` (indices of [`InputMetrics::accepted`]).
    pub(crate) fn new(telemetry: &Arc<Telemetry>, transport: &'static str, encodings: [&'static str; 2]) -> Self {
        InputMetrics {
            telemetry: Arc::clone(telemetry),
            transport,
            encodings,
            accepted: Default::default(),
            refused: Default::default(),
        }
    }

    /// `items` of `kind` decoded from a request in encoding number `encoding`.
    pub(crate) fn accepted(&self, kind: SignalKind, encoding: usize, items: u64) {
        let Some(slot) = self.accepted[kind.index()].get(encoding) else { return };
        let encoding = self.encodings[encoding];
        slot.get(|| {
            let labels = vec![
                Label::new("transport", self.transport),
                Label::new("signal", kind.name()),
                Label::new("encoding", encoding),
            ];
            self.telemetry.counter(per_signal("accepted", kind), labels)
        })
        .increment(items);
    }

    /// `items` of `kind` decoded but not delivered; the client got an error.
    pub(crate) fn refused(&self, kind: SignalKind, items: u64) {
        self.refused[kind.index()]
            .get(|| {
                let labels = vec![Label::new("transport", self.transport), Label::new("signal", kind.name())];
                self.telemetry.counter(per_signal("refused", kind), labels)
            })
            .increment(items);
    }
}

/// The exporter families of one (signal, output), registered at 0.
pub(crate) struct OutputMetrics {
    sent: Counter,
    send_failed: Counter,
    attempts: Counter,
    retries: Counter,
    duration: Lazy<Histogram>,
    labels: Vec<Label>,
    telemetry: Arc<Telemetry>,
}

impl OutputMetrics {
    /// The handles of `output` for `kind`.
    pub(crate) fn new(telemetry: &Arc<Telemetry>, kind: SignalKind, output: &str) -> OutputMetrics {
        let labels = || vec![Label::new("signal", kind.name()), Label::new("backend", output.to_string())];
        let zero = |name| {
            let c = telemetry.counter(name, labels());
            c.increment(0);
            c
        };
        OutputMetrics {
            sent: zero(per_signal("sent", kind)),
            send_failed: zero(per_signal("send_failed", kind)),
            attempts: zero("otlp_bridge_export_attempts_total"),
            retries: zero("otlp_bridge_export_retries_total"),
            duration: Lazy::default(),
            labels: labels(),
            telemetry: Arc::clone(telemetry),
        }
    }

    /// The output acknowledged `items`, of which it rejected `rejected`.
    pub(crate) fn exported(&self, items: u64, rejected: u64) {
        self.sent.increment(items.saturating_sub(rejected));
        if rejected > 0 {
            self.send_failed.increment(rejected);
        }
    }

    /// The output did not take `items`.
    pub(crate) fn failed(&self, items: u64) {
        self.send_failed.increment(items);
    }

    /// One attempt.
    pub(crate) fn attempt(&self) {
        self.attempts.increment(1);
    }

    /// One retry after a failed attempt.
    pub(crate) fn retry(&self) {
        self.retries.increment(1);
    }

    /// How long one export took, retries included.
    pub(crate) fn duration(&self, elapsed: std::time::Duration) {
        self.duration
            .get(|| self.telemetry.histogram("otlp_bridge_export_duration_seconds", self.labels.clone()))
            .record(elapsed.as_secs_f64());
    }
}

/// The batching families of one signal, shared by direct mode's worker and the queue's readers (a dashboard reads
/// one family whichever mode runs).
pub(crate) struct BatchMetrics {
    flushes: ByLabel<Counter>,
    items: Lazy<Histogram>,
    bytes: Lazy<Histogram>,
    waiting: Gauge,
    partition_refused: Lazy<Counter>,
    client_gone: Counter,
    kind: SignalKind,
    telemetry: Arc<Telemetry>,
}

impl BatchMetrics {
    /// The handles of `kind`; `reasons` are the batcher's flush reasons, registered at 0.
    pub(crate) fn new(telemetry: &Arc<Telemetry>, kind: SignalKind, reasons: &[&'static str]) -> BatchMetrics {
        let signal = || Label::new("signal", kind.name());
        let flushes = ByLabel::new(reasons, |reason| {
            let c = telemetry.counter("otlp_bridge_batch_flushes_total", vec![signal(), Label::new("reason", reason)]);
            c.increment(0);
            c
        });
        BatchMetrics {
            flushes,
            items: Lazy::default(),
            bytes: Lazy::default(),
            waiting: telemetry.gauge("otelcol_exporter_queue_size", vec![signal()]),
            partition_refused: Lazy::default(),
            client_gone: telemetry.dropped_counter(kind, "export_failed_client_gone"),
            kind,
            telemetry: Arc::clone(telemetry),
        }
    }

    /// A batch left the batcher, for `reason`.
    pub(crate) fn flushed(&self, reason: &'static str, items: u64, bytes: usize) {
        if let Some(c) = self.flushes.get(reason) {
            c.increment(1);
        }
        let signal = || vec![Label::new("signal", self.kind.name())];
        self.items.get(|| self.telemetry.histogram("otlp_bridge_batch_size_items", signal())).record(items as f64);
        self.bytes.get(|| self.telemetry.histogram("otlp_bridge_batch_size_bytes", signal())).record(bytes as f64);
    }

    /// Items waiting in one lane's batches went from `before` to `now` (the Collector's queue size: the sum over
    /// the signal's lanes).
    pub(crate) fn waiting(&self, before: u64, now: u64) {
        if now >= before {
            self.waiting.increment((now - before) as f64);
        } else {
            self.waiting.decrement((before - now) as f64);
        }
    }

    /// A request chunk refused because too many forwarded-header partitions had open batches.
    pub(crate) fn partition_refused(&self) {
        self.partition_refused
            .get(|| {
                let labels = vec![Label::new("signal", self.kind.name())];
                self.telemetry.counter("otlp_bridge_partition_refused_requests_total", labels)
            })
            .increment(1);
    }

    /// Items whose export failed after their client had gone: nobody else will know.
    pub(crate) fn client_gone(&self, items: u64) {
        self.client_gone.increment(items);
    }
}

/// What one queue reader (one backend) drops, by signal and reason, in both drop families; registered at 0.
pub(crate) struct QueueDrops {
    by_signal: [ByLabel<(Counter, Counter)>; SignalKind::COUNT],
}

impl QueueDrops {
    /// The handles of `backend`'s reader.
    pub(crate) fn new(telemetry: &Telemetry, backend: &str) -> QueueDrops {
        let by_signal = SignalKind::ALL.map(|kind| {
            ByLabel::new(&super::queue::DROP_REASONS, |reason| {
                let labels = vec![
                    Label::new("signal", kind.name()),
                    Label::new("backend", backend.to_string()),
                    Label::new("reason", reason),
                ];
                let queue = telemetry.counter("otlp_bridge_queue_dropped_items_total", labels);
                queue.increment(0);
                (queue, telemetry.dropped_counter(kind, reason))
            })
        });
        QueueDrops { by_signal }
    }

    /// `items` of `kind` dropped for `reason` (one of the queue's drop reasons).
    pub(crate) fn dropped(&self, kind: SignalKind, reason: &'static str, items: u64) {
        if let Some((queue, all)) = self.by_signal[kind.index()].get(reason) {
            queue.increment(items);
            all.increment(items);
        }
    }
}

/// The address-balancing families of one backend.
pub(crate) struct BalancerMetrics {
    telemetry: Arc<Telemetry>,
    backend: String,
    addresses: Gauge,
}

/// The export counters of one address of a backend, held with the address.
pub(crate) struct AddressMetrics {
    ok: Counter,
    failed: Counter,
}

impl BalancerMetrics {
    /// The handles of `backend`, its address count at 0.
    pub(crate) fn new(telemetry: &Arc<Telemetry>, backend: &str) -> BalancerMetrics {
        let addresses =
            telemetry.gauge("otlp_bridge_backend_addresses", vec![Label::new("backend", backend.to_string())]);
        addresses.set(0.0);
        BalancerMetrics { telemetry: Arc::clone(telemetry), backend: backend.to_string(), addresses }
    }

    /// The number of addresses the backend has now.
    pub(crate) fn addresses(&self, known: usize) {
        self.addresses.set(known as f64);
    }

    /// The handles of a new address (`ip:port`), registered at 0.
    pub(crate) fn address(&self, address: &str) -> AddressMetrics {
        let counter = |outcome| {
            let labels = vec![
                Label::new("backend", self.backend.clone()),
                Label::new("address", address.to_string()),
                Label::new("outcome", outcome),
            ];
            let c = self.telemetry.counter("otlp_bridge_backend_address_exports_total", labels);
            c.increment(0);
            c
        };
        AddressMetrics { ok: counter("ok"), failed: counter("failed") }
    }
}

impl AddressMetrics {
    /// One export attempt on this address.
    pub(crate) fn export(&self, ok: bool) {
        if ok { &self.ok } else { &self.failed }.increment(1);
    }
}

impl std::fmt::Debug for AddressMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AddressMetrics")
    }
}

impl std::fmt::Debug for OutputMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutputMetrics")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;

    fn lines(telemetry: &Telemetry, prefix: &str) -> Vec<String> {
        telemetry.render().lines().filter(|l| l.starts_with(prefix)).map(str::to_string).collect()
    }

    #[test]
    fn a_held_handle_counts_into_the_series_registered_at_start() {
        let telemetry = Telemetry::new();
        telemetry.register_known(&Default::default());
        let ok = http::StatusCode::OK;
        telemetry.request(Some(SignalKind::Traces), ok, Duration::from_millis(1));
        telemetry.request(Some(SignalKind::Traces), ok, Duration::from_millis(1));
        assert_eq!(
            lines(&telemetry, "otlp_bridge_http_requests_total{signal=\"traces\""),
            ["otlp_bridge_http_requests_total{signal=\"traces\",code=\"200\"} 2"]
        );
    }

    #[test]
    fn a_label_set_not_registered_at_start_appears_with_its_first_event_only() {
        let telemetry = Telemetry::new();
        let inputs = InputMetrics::new(&telemetry, "grpc", ["protobuf", "json"]);
        assert!(lines(&telemetry, "otelcol_receiver_refused_spans_total").is_empty());
        inputs.refused(SignalKind::Traces, 3);
        inputs.accepted(SignalKind::Traces, 0, 5);
        assert_eq!(
            lines(&telemetry, "otelcol_receiver_refused_spans_total"),
            ["otelcol_receiver_refused_spans_total{transport=\"grpc\",signal=\"traces\"} 3"]
        );
        assert_eq!(
            lines(&telemetry, "otelcol_receiver_accepted_spans_total"),
            ["otelcol_receiver_accepted_spans_total{transport=\"grpc\",signal=\"traces\",encoding=\"protobuf\"} 5"]
        );
    }

    #[test]
    fn a_gauge_registered_once_is_read_at_each_scrape() {
        let telemetry = Telemetry::new();
        let held = Arc::new(AtomicU64::new(7));
        let read = Arc::clone(&held);
        telemetry.gauge_on_scrape("otlp_bridge_memory_held_bytes", move || read.load(Ordering::Relaxed) as f64);
        assert_eq!(lines(&telemetry, "otlp_bridge_memory_held_bytes "), ["otlp_bridge_memory_held_bytes 7"]);
        held.store(42, Ordering::Relaxed);
        assert_eq!(lines(&telemetry, "otlp_bridge_memory_held_bytes "), ["otlp_bridge_memory_held_bytes 42"]);
    }

    #[test]
    fn each_lane_adds_its_waiting_items_to_the_signal_gauge() {
        let telemetry = Telemetry::new();
        let metrics = BatchMetrics::new(&telemetry, SignalKind::Logs, &["size"]);
        metrics.waiting(0, 5);
        metrics.waiting(0, 3);
        metrics.waiting(5, 1);
        assert_eq!(
            lines(&telemetry, "otelcol_exporter_queue_size{signal=\"logs\"}"),
            ["otelcol_exporter_queue_size{signal=\"logs\"} 4"]
        );
    }

    #[test]
    fn a_queue_drop_counts_in_both_drop_families_once() {
        let telemetry = Telemetry::new();
        let drops = QueueDrops::new(&telemetry, "b0");
        drops.dropped(SignalKind::Metrics, "queue_max_age", 4);
        let text = telemetry.render();
        let value = |family: &str| {
            text.lines()
                .filter(|l| l.starts_with(family) && l.contains("signal=\"metrics\"") && l.contains("queue_max_age"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        };
        assert_eq!(value("otlp_bridge_queue_dropped_items_total{"), 4.0);
        assert_eq!(value("otlp_bridge_dropped_items_total{"), 4.0);
    }
}
