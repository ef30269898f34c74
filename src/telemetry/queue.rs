//! The durable queue's metrics (`otlp_bridge_queue_*`).

use std::time::Duration;

use metrics::{Gauge, Label};

use super::QueueDrops;
use super::Telemetry;

/// Why data leaves the queue without reaching a backend.
pub(super) const DROP_REASONS: [&str; 2] = ["queue_max_age", "rejected_by_backend"];
/// Why an append is refused.
pub(super) const REFUSAL_REASONS: [&str; 3] = ["full", "no_space", "io_error"];

/// The queue's gauges, set when `/metrics` is scraped: the disk it uses, and each backend's backlog.
pub(crate) struct QueueMetrics {
    used: Gauge,
    backlog: Vec<[Gauge; 3]>,
}

impl QueueMetrics {
    /// Disk used by the segments.
    pub(crate) fn used(&self, bytes: u64) {
        self.used.set(bytes as f64);
    }

    /// What backend number `index` has not yet acknowledged.
    pub(crate) fn backlog(&self, index: usize, bytes: u64, items: u64, oldest_age_seconds: f64) {
        if let Some([b, i, age]) = self.backlog.get(index) {
            b.set(bytes as f64);
            i.set(items as f64);
            age.set(oldest_age_seconds);
        }
    }
}

impl Telemetry {
    /// Describes the queue's metrics, registers their known label sets at 0 and returns its gauges' handles
    /// (`backends` in reader order).
    pub(crate) fn register_queue(&self, capacity: u64, backends: &[String]) -> QueueMetrics {
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
        self.counter("otlp_bridge_queue_replayed_records_total", Vec::new()).increment(0);
        self.counter("otlp_bridge_queue_quarantined_records_total", Vec::new()).increment(0);
        for reason in REFUSAL_REASONS {
            self.queue_refused(reason, 0);
        }
        let metrics = QueueMetrics {
            used: self.gauge("otlp_bridge_queue_used_bytes", Vec::new()),
            backlog: backends
                .iter()
                .map(|backend| {
                    let labels = || vec![Label::new("backend", backend.to_string())];
                    [
                        self.gauge("otlp_bridge_queue_bytes", labels()),
                        self.gauge("otlp_bridge_queue_items", labels()),
                        self.gauge("otlp_bridge_queue_oldest_item_age_seconds", labels()),
                    ]
                })
                .collect(),
        };
        metrics.used(0);
        for (index, backend) in backends.iter().enumerate() {
            metrics.backlog(index, 0, 0, 0.0);
            // The drop families at 0, as the reader's handles will be.
            QueueDrops::new(self, backend);
        }
        metrics
    }

    /// One group commit's fdatasync.
    pub(crate) fn queue_fsync(&self, took: Duration) {
        self.held
            .queue_fsync
            .get(|| self.histogram("otlp_bridge_queue_fsync_duration_seconds", Vec::new()))
            .record(took.as_secs_f64());
    }

    /// Records found at start still to deliver.
    pub(crate) fn queue_replayed(&self, records: u64) {
        self.counter("otlp_bridge_queue_replayed_records_total", Vec::new()).increment(records);
    }

    /// Records quarantined at start.
    pub(crate) fn queue_quarantined(&self, records: u64) {
        self.counter("otlp_bridge_queue_quarantined_records_total", Vec::new()).increment(records);
    }

    /// `n` appends refused, for `reason` (full, no_space, io_error).
    pub(crate) fn queue_refused(&self, reason: &'static str, n: u64) {
        self.held.queue_refused.add(&self.recorder, reason, n);
    }
}
