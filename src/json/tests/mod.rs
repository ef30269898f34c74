//! Tests of the OTLP/JSON codec. `probe*` turns every row of `shared/research/otlp-json-probe.md` into a case.

mod encoding;
mod examples;
mod probe_metrics;
mod probe_trace;
mod prop;
mod robustness;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::{decode, JsonError, JsonMessage};

#[track_caller]
fn ok<T: JsonMessage>(json: &str) -> T {
    match decode::<T>(json.as_bytes()) {
        Ok(v) => v,
        Err(e) => panic!("expected {json} to decode, got error: {e}"),
    }
}

#[track_caller]
fn err<T: JsonMessage + std::fmt::Debug>(json: &str) -> JsonError {
    match decode::<T>(json.as_bytes()) {
        Ok(v) => panic!("expected {json} to be rejected, got {v:?}"),
        Err(e) => e,
    }
}

/// Asserts the error's path and that its message contains `needle`.
#[track_caller]
fn assert_err(e: &JsonError, path: &str, needle: &str) {
    assert_eq!(e.path, path, "wrong path in: {e}");
    assert!(e.message.contains(needle), "message {:?} lacks {needle:?} (full: {e})", e.message);
    assert!(e.line > 0 && e.column > 0, "no position in: {e}");
}

const SPAN_PATH: &str = "resourceSpans[0].scopeSpans[0].spans[0]";

fn span_json(fields: &str) -> String {
    format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{{fields}}}]}}]}}]}}"#)
}

#[track_caller]
fn span(fields: &str) -> Span {
    let mut req: ExportTraceServiceRequest = ok(&span_json(fields));
    req.resource_spans.remove(0).scope_spans.remove(0).spans.remove(0)
}

#[track_caller]
fn span_err(fields: &str) -> JsonError {
    err::<ExportTraceServiceRequest>(&span_json(fields))
}

/// The value of the single attribute `{"key":"k","value":<value>}` of a span.
#[track_caller]
fn attr(value: &str) -> Option<Value> {
    let s = span(&format!(r#""attributes":[{{"key":"k","value":{value}}}]"#));
    s.attributes[0].value.as_ref().and_then(|v| v.value.clone())
}

#[track_caller]
fn attr_err(value: &str) -> JsonError {
    span_err(&format!(r#""attributes":[{{"key":"k","value":{value}}}]"#))
}

const METRIC_PATH: &str = "resourceMetrics[0].scopeMetrics[0].metrics[0]";

fn metric_json(fields: &str) -> String {
    format!(r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"m",{fields}}}]}}]}}]}}"#)
}

#[track_caller]
fn metric(fields: &str) -> Metric {
    let mut req: ExportMetricsServiceRequest = ok(&metric_json(fields));
    req.resource_metrics.remove(0).scope_metrics.remove(0).metrics.remove(0)
}

#[track_caller]
fn metric_err(fields: &str) -> JsonError {
    err::<ExportMetricsServiceRequest>(&metric_json(fields))
}

const LOG_PATH: &str = "resourceLogs[0].scopeLogs[0].logRecords[0]";

fn log_json(fields: &str) -> String {
    format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{{fields}}}]}}]}}]}}"#)
}

#[track_caller]
fn log(fields: &str) -> LogRecord {
    let mut req: ExportLogsServiceRequest = ok(&log_json(fields));
    req.resource_logs.remove(0).scope_logs.remove(0).log_records.remove(0)
}

#[track_caller]
fn log_err(fields: &str) -> JsonError {
    err::<ExportLogsServiceRequest>(&log_json(fields))
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}
