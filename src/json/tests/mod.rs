//! Tests of the OTLP/JSON codec. `probe*` turns every row of `shared/research/otlp-json-probe.md` into a case.
//!
//! Every body a test decodes goes through [`dec`], which also transcodes it and checks that both agree.

mod encoding;
mod examples;
mod fast_reader;
mod oracle;
mod probe_metrics;
mod probe_trace;
mod prop;
mod robustness;
mod transcoding;

use crate::proto::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use crate::proto::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use crate::proto::collector::profiles::v1development::{ExportProfilesServiceRequest, ExportProfilesServiceResponse};
use crate::proto::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use crate::proto::common::v1::any_value::Value;
use crate::proto::logs::v1::LogRecord;
use crate::proto::metrics::v1::{metric::Data, Metric};
use crate::proto::trace::v1::Span;
use prost::Message;

use super::{decode, readers, transcode, JsonError, JsonMessage};

/// The eight top-level messages, with what the decode/transcode parity check needs.
trait Both: JsonMessage + Message + Default + std::fmt::Debug {
    /// Items as the receiver counts them (spans, metric data points, log records, profiles).
    fn items(&self) -> u64;
}

// Counted here from the message tree, by hand, apart from the generated `items` flags the transcoder counts with
// (json sits below signal, so these tests do not borrow `Signal::count`, which counts the same way).
impl Both for ExportTraceServiceRequest {
    fn items(&self) -> u64 {
        self.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len() as u64).sum()
    }
}
impl Both for ExportMetricsServiceRequest {
    fn items(&self) -> u64 {
        let metrics = self.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics);
        let points = metrics.map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        });
        points.sum::<usize>() as u64
    }
}
impl Both for ExportLogsServiceRequest {
    fn items(&self) -> u64 {
        self.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len() as u64).sum()
    }
}
impl Both for ExportProfilesServiceRequest {
    fn items(&self) -> u64 {
        self.resource_profiles.iter().flat_map(|r| &r.scope_profiles).map(|s| s.profiles.len() as u64).sum()
    }
}
impl Both for ExportTraceServiceResponse {
    fn items(&self) -> u64 {
        0
    }
}
impl Both for ExportMetricsServiceResponse {
    fn items(&self) -> u64 {
        0
    }
}
impl Both for ExportLogsServiceResponse {
    fn items(&self) -> u64 {
        0
    }
}
impl Both for ExportProfilesServiceResponse {
    fn items(&self) -> u64 {
        0
    }
}

fn shown(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    if s.len() > 600 {
        format!("{}... ({} bytes)", s.chars().take(600).collect::<String>(), body.len())
    } else {
        s.into_owned()
    }
}

/// Runs `body` through both [`decode`] and [`transcode`] and checks that they agree: both accept, the
/// protobuf bytes decode (prost) to the decoded message and the item counts match; or both reject with
/// the same error (path, message, line and column). Returns what `decode` returned.
///
/// Every case of these tests goes through here, so each one checks the transcoder as well.
#[track_caller]
fn dec<T: Both>(body: &[u8]) -> Result<T, JsonError> {
    let decoded = decode::<T>(body);
    // A prefix that must survive: transcode appends, and leaves the buffer as it was on error.
    let mut out = vec![0xEE];
    let transcoded = transcode::<T>(body, &mut out);
    match (&decoded, transcoded) {
        (Ok(msg), Ok(items)) => {
            assert_eq!(out[0], 0xEE, "prefix overwritten");
            let back = T::decode(&out[1..])
                .unwrap_or_else(|e| panic!("transcode wrote bad protobuf ({e}) for {}", shown(body)));
            // Compared as prost encodings: field order normalised, doubles compared bit for bit (NaN too).
            assert!(
                back.encode_to_vec() == msg.encode_to_vec(),
                "transcode differs from decode for {}:\n  decode:    {msg:?}\n  transcode: {back:?}",
                shown(body)
            );
            assert_eq!(items, msg.items(), "item count for {}", shown(body));
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, &b, "different errors for {}", shown(body));
            assert_eq!(out, [0xEE], "buffer not restored after an error");
        }
        (a, b) => panic!("decode and transcode disagree on {}:\n  decode:    {a:?}\n  transcode: {b:?}", shown(body)),
    }
    fast_reader_agrees::<T>(body);
    decoded
}

/// The transcoder's fast reader either gives up on `body` (leaving the buffer as it was) or writes exactly the
/// bytes and count serde_json's reading writes: what `transcode` answers never depends on which reader read.
#[track_caller]
fn fast_reader_agrees<T: Both>(body: &[u8]) {
    let mut fast_out = vec![0xEE];
    match readers::fast::<T>(body, &mut fast_out, usize::MAX) {
        None => assert_eq!(fast_out, [0xEE], "the fast reader gave up but left output for {}", shown(body)),
        Some(fast) => {
            let mut serde_out = vec![0xEE];
            let serde = readers::serde::<T>(body, &mut serde_out, usize::MAX);
            assert_eq!(serde, Ok(fast), "the fast reader and serde_json answer differently for {}", shown(body));
            assert!(
                fast_out == serde_out,
                "the fast reader wrote other bytes than serde_json's reading for {}",
                shown(body)
            );
        }
    }
}

#[track_caller]
fn ok<T: Both>(json: &str) -> T {
    match dec::<T>(json.as_bytes()) {
        Ok(v) => v,
        Err(e) => panic!("expected {json} to decode, got error: {e}"),
    }
}

#[track_caller]
fn err<T: Both>(json: &str) -> JsonError {
    match dec::<T>(json.as_bytes()) {
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
