//! The file input's metrics (`otlp_bridge_file*`), each labelled with the input's name (the receiver families with
//! `transport="file"` are counted by the ingest step).

use metrics::Label;

use super::Telemetry;
use crate::signal::SignalKind;

/// Handles of one file input's metrics, created once when the input starts (no registry lookup per event).
#[derive(Clone)]
pub(crate) struct FileMetrics {
    pub rejected: metrics::Counter,
    pub read_bytes: metrics::Counter,
    pub read_records: metrics::Counter,
    pub parse_failures: metrics::Counter,
    pub truncated_bytes: metrics::Counter,
    pub long_lines: metrics::Counter,
    pub watched: metrics::Gauge,
    pub lag_bytes: metrics::Gauge,
}

impl Telemetry {
    /// Describes the file input's metrics and registers the handles of input `input` (every counter at 0).
    pub(crate) fn file_input(&self, input: &str) -> FileMetrics {
        self.describe_counter("otlp_bridge_file_read_bytes_total", "bytes read from log files, by input".into());
        self.describe_counter(
            "otlp_bridge_file_read_records_total",
            "log records made from log files' lines, by input (sent once the sink takes them)".into(),
        );
        self.describe_counter(
            "otlp_bridge_file_parse_failures_total",
            "lines (or fields of lines) the input's parser could not read; delivered with their text, by input".into(),
        );
        self.describe_counter(
            "otlp_bridge_file_truncated_bytes_total",
            "bytes a truncated file (copytruncate) lost before they were read, with no copy that held them, by input"
                .into(),
        );
        self.describe_counter(
            "otlp_bridge_file_long_lines_total",
            "lines longer than --file-max-line-bytes, delivered in pieces, by input".into(),
        );
        self.describe_gauge("otlp_bridge_files_watched", "files an input is reading or waiting on");
        self.describe_gauge(
            "otlp_bridge_file_lag_bytes",
            "bytes of an input's files not yet acknowledged by the sink (sum over its files' ends minus positions)",
        );
        let labels = || vec![Label::new("input", input.to_string())];
        let kind = SignalKind::Logs;
        let metrics = FileMetrics {
            rejected: self.counter(
                "otlp_bridge_dropped_items_total",
                vec![Label::new("signal", kind.name()), Label::new("reason", "rejected_by_backend")],
            ),
            read_bytes: self.counter("otlp_bridge_file_read_bytes_total", labels()),
            read_records: self.counter("otlp_bridge_file_read_records_total", labels()),
            parse_failures: self.counter("otlp_bridge_file_parse_failures_total", labels()),
            truncated_bytes: self.counter("otlp_bridge_file_truncated_bytes_total", labels()),
            long_lines: self.counter("otlp_bridge_file_long_lines_total", labels()),
            watched: self.gauge("otlp_bridge_files_watched", labels()),
            lag_bytes: self.gauge("otlp_bridge_file_lag_bytes", labels()),
        };
        for counter in [
            &metrics.rejected,
            &metrics.read_bytes,
            &metrics.read_records,
            &metrics.parse_failures,
            &metrics.truncated_bytes,
            &metrics.long_lines,
        ] {
            counter.increment(0);
        }
        metrics.watched.set(0.0);
        metrics.lag_bytes.set(0.0);
        metrics
    }
}
