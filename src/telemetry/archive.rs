//! The archive output's metrics (`otlp_bridge_archive_*`); its items and failures also count in the exporter
//! families like any output's, and what it has not yet stored in `otlp_bridge_queue_items{backend=...}`.

use std::time::Duration;

use metrics::Label;

use super::Telemetry;
use crate::signal::SignalKind;

impl Telemetry {
    /// Describes the archive's metrics and registers `output`'s label sets at 0 (`reasons`: its failure labels).
    pub(crate) fn register_archive(&self, output: &str, reasons: &[&'static str]) {
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
        for kind in SignalKind::ALL {
            self.archive_stored(output, kind, 0, 0, None);
        }
        for reason in reasons {
            self.archive_failed(output, reason, 0);
        }
    }

    /// An object of `kind` was stored: `stored` bytes (`uncompressed` before compression); `None` only registers.
    pub(crate) fn archive_stored(
        &self,
        output: &str,
        kind: SignalKind,
        stored: u64,
        uncompressed: u64,
        object: Option<()>,
    ) {
        let labels = || vec![Label::new("output", output.to_string()), Label::new("signal", kind.name())];
        let objects = u64::from(object.is_some());
        self.counter("otlp_bridge_archive_objects_total", labels()).increment(objects);
        self.counter("otlp_bridge_archive_stored_bytes_total", labels()).increment(stored);
        self.counter("otlp_bridge_archive_uncompressed_bytes_total", labels()).increment(uncompressed);
        if object.is_some() {
            self.histogram("otlp_bridge_archive_object_bytes", labels()).record(stored as f64);
        }
    }

    /// `n` requests to the store failed for `reason`.
    pub(crate) fn archive_failed(&self, output: &str, reason: &'static str, n: u64) {
        let labels = vec![Label::new("output", output.to_string()), Label::new("reason", reason)];
        self.counter("otlp_bridge_archive_failures_total", labels).increment(n);
    }

    /// One request to the store took `took`.
    pub(crate) fn archive_request(&self, output: &str, took: Duration) {
        self.histogram("otlp_bridge_archive_upload_duration_seconds", vec![Label::new("output", output.to_string())])
            .record(took.as_secs_f64());
    }
}
