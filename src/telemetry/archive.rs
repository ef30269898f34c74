//! The archive output's metrics (`otlp_bridge_archive_*`); its items and failures also count in the exporter
//! families like any output's, and what it has not yet stored in `otlp_bridge_queue_items{backend=...}`.

use std::time::Duration;

use std::sync::Arc;

use metrics::{Counter, Histogram, Label};

use super::handles::{ByLabel, Lazy};

use super::Telemetry;
use crate::signal::SignalKind;

impl Telemetry {
    /// Describes the archive's metrics and returns `output`'s handles, registered at 0 (`reasons`: its failure
    /// labels).
    pub(crate) fn register_archive(self: &Arc<Self>, output: &str, reasons: &[&'static str]) -> ArchiveMetrics {
        self.describe_counter(
            "otlp_bridge_archive_objects_total",
            "objects the archive output stored, by output and signal".into(),
        );
        self.describe_counter(
            "otlp_bridge_archive_stored_bytes_total",
            "bytes the archive output stored (after compression), by output and signal".into(),
        );
        self.describe_counter(
            "otlp_bridge_archive_uncompressed_bytes_total",
            "bytes of stored objects before compression (what --archive-max-object-bytes counts)".into(),
        );
        self.describe_counter(
            "otlp_bridge_archive_failures_total",
            "failed requests to the object store, by output and reason: auth, denied, missing_bucket, connect, \
             server, other (each is retried until --queue-max-age)"
                .into(),
        );
        self.describe_histogram(
            "otlp_bridge_archive_upload_duration_seconds",
            "time one request to the object store took (a PUT, a multipart part or its completion)",
        );
        self.describe_histogram("otlp_bridge_archive_object_bytes", "stored (compressed) size of each object");
        let labels =
            |kind: SignalKind| vec![Label::new("output", output.to_string()), Label::new("signal", kind.name())];
        let zero = |name, kind| {
            let c = self.counter(name, labels(kind));
            c.increment(0);
            c
        };
        ArchiveMetrics {
            by_signal: SignalKind::ALL.map(|kind| SignalArchive {
                objects: zero("otlp_bridge_archive_objects_total", kind),
                stored: zero("otlp_bridge_archive_stored_bytes_total", kind),
                uncompressed: zero("otlp_bridge_archive_uncompressed_bytes_total", kind),
                object_bytes: Lazy::default(),
                labels: labels(kind),
            }),
            failures: ByLabel::new(reasons, |reason| {
                let labels = vec![Label::new("output", output.to_string()), Label::new("reason", reason)];
                let c = self.counter("otlp_bridge_archive_failures_total", labels);
                c.increment(0);
                c
            }),
            upload: Lazy::default(),
            output: output.to_string(),
            telemetry: Arc::clone(self),
        }
    }
}

struct SignalArchive {
    objects: Counter,
    stored: Counter,
    uncompressed: Counter,
    object_bytes: Lazy<Histogram>,
    labels: Vec<Label>,
}

/// Handles of one archive output's metrics, held by the output.
pub(crate) struct ArchiveMetrics {
    by_signal: [SignalArchive; SignalKind::COUNT],
    failures: ByLabel<Counter>,
    upload: Lazy<Histogram>,
    output: String,
    telemetry: Arc<Telemetry>,
}

impl std::fmt::Debug for ArchiveMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArchiveMetrics")
    }
}

impl ArchiveMetrics {
    /// An object of `kind` was stored: `stored` bytes (`uncompressed` before compression).
    pub(crate) fn stored(&self, kind: SignalKind, stored: u64, uncompressed: u64) {
        let s = &self.by_signal[kind.index()];
        s.objects.increment(1);
        s.stored.increment(stored);
        s.uncompressed.increment(uncompressed);
        s.object_bytes
            .get(|| self.telemetry.histogram("otlp_bridge_archive_object_bytes", s.labels.clone()))
            .record(stored as f64);
    }

    /// `n` requests to the store failed for `reason` (one the output named when it was built).
    pub(crate) fn failed(&self, reason: &'static str, n: u64) {
        if let Some(c) = self.failures.get(reason) {
            c.increment(n);
        }
    }

    /// One request to the store took `took`.
    pub(crate) fn request(&self, took: Duration) {
        self.upload
            .get(|| {
                let labels = vec![Label::new("output", self.output.clone())];
                self.telemetry.histogram("otlp_bridge_archive_upload_duration_seconds", labels)
            })
            .record(took.as_secs_f64());
    }
}
