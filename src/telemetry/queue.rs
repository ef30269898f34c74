//! The durable queue's metrics (`otlp_bridge_queue_*`).

use std::time::Duration;

use metrics::Label;

use super::Telemetry;
use crate::signal::SignalKind;

/// Why data leaves the queue without reaching a backend.
const DROP_REASONS: [&str; 2] = ["queue_max_age", "rejected_by_backend"];
/// Why an append is refused.
const REFUSAL_REASONS: [&str; 3] = ["full", "no_space", "io_error"];

impl Telemetry {
    /// Describes the queue's metrics and registers their known label sets at 0.
    pub(crate) fn register_queue(&self, capacity: u64, backends: &[String]) {
        self.describe_gauge("otlp_bridge_queue_capacity_bytes", "disk the durable queue may use (--queue-max-bytes)");
        self.describe_gauge("otlp_bridge_queue_used_bytes", "disk the durable queue's segments use now");
        self.describe_gauge("otlp_bridge_queue_bytes", "queued bytes a backend has not yet acknowledged, by backend");
        self.describe_gauge("otlp_bridge_queue_items", "queued items a backend has not yet acknowledged, by backend");
        self.describe_gauge(
            "otlp_bridge_queue_oldest_item_age_seconds",
            "age of the oldest item a backend's reader holds undelivered (0: none)",
        );
        self.describe_histogram(
            "otlp_bridge_queue_fsync_duration_seconds",
            "time one group commit's fdatasync took (each serves every append waiting for it)",
        );
        self.describe_counter(
            "otlp_bridge_queue_replayed_records_total",
            "records found at start that some backend had not yet acknowledged".into(),
        );
        self.describe_counter(
            "otlp_bridge_queue_quarantined_records_total",
            "records in segments found corrupt at start and quarantined (not delivered)".into(),
        );
        self.describe_counter(
            "otlp_bridge_queue_refused_requests_total",
            "appends refused with 503, by reason: full (--queue-max-bytes), no_space (disk full), io_error".into(),
        );
        self.describe_counter(
            "otlp_bridge_queue_dropped_items_total",
            "queued items not delivered to a backend, by reason: queue_max_age, rejected_by_backend".into(),
        );
        self.gauge("otlp_bridge_queue_capacity_bytes", Vec::new()).set(capacity as f64);
        self.queue_used(0);
        self.counter("otlp_bridge_queue_replayed_records_total", Vec::new()).increment(0);
        self.counter("otlp_bridge_queue_quarantined_records_total", Vec::new()).increment(0);
        for reason in REFUSAL_REASONS {
            self.counter("otlp_bridge_queue_refused_requests_total", vec![Label::new("reason", reason)]).increment(0);
        }
        for backend in backends {
            self.queue_backlog(backend, 0, 0, 0.0);
            for kind in SignalKind::ALL {
                for reason in DROP_REASONS {
                    self.queue_dropped(kind, backend, reason, 0);
                    self.dropped(kind, reason, 0);
                }
            }
        }
    }

    /// Disk used by the segments.
    pub(crate) fn queue_used(&self, bytes: u64) {
        self.gauge("otlp_bridge_queue_used_bytes", Vec::new()).set(bytes as f64);
    }

    /// What `backend` has not yet acknowledged.
    pub(crate) fn queue_backlog(&self, backend: &str, bytes: u64, items: u64, oldest_age_seconds: f64) {
        let labels = || vec![Label::new("backend", backend.to_string())];
        self.gauge("otlp_bridge_queue_bytes", labels()).set(bytes as f64);
        self.gauge("otlp_bridge_queue_items", labels()).set(items as f64);
        self.gauge("otlp_bridge_queue_oldest_item_age_seconds", labels()).set(oldest_age_seconds);
    }

    /// One group commit's fdatasync.
    pub(crate) fn queue_fsync(&self, took: Duration) {
        self.histogram("otlp_bridge_queue_fsync_duration_seconds", Vec::new()).record(took.as_secs_f64());
    }

    /// Records found at start still to deliver.
    pub(crate) fn queue_replayed(&self, records: u64) {
        self.counter("otlp_bridge_queue_replayed_records_total", Vec::new()).increment(records);
    }

    /// Records quarantined at start.
    pub(crate) fn queue_quarantined(&self, records: u64) {
        self.counter("otlp_bridge_queue_quarantined_records_total", Vec::new()).increment(records);
    }

    /// An append refused.
    pub(crate) fn queue_refused(&self, reason: &'static str) {
        self.counter("otlp_bridge_queue_refused_requests_total", vec![Label::new("reason", reason)]).increment(1);
    }

    /// Queued items dropped for `backend`.
    pub(crate) fn queue_dropped(&self, kind: SignalKind, backend: &str, reason: &'static str, items: u64) {
        let labels = vec![
            Label::new("signal", kind.name()),
            Label::new("backend", backend.to_string()),
            Label::new("reason", reason),
        ];
        self.counter("otlp_bridge_queue_dropped_items_total", labels).increment(items);
    }
}
