//! Parsers: a decoded line (or multiline record) becomes a log record's body, time, severity, ids and attributes.
//!
//! `plain` keeps the text as the body. `json` reads one object per line with the field names structured-logging
//! libraries use (Python's json formatters, pino, zap, logrus, serilog, Bunyan); `regex` reads named groups. A line
//! that does not parse keeps its whole text as the body and is counted by the caller ([`Parsed::failed`]); a field
//! that cannot be read (a time in no known form, an id that is not hex) stays an attribute and counts the same way:
//! nothing a line held is ever dropped.

use crate::proto::common::v1::{any_value, AnyValue, ArrayValue, KeyValue, KeyValueList};
use crate::proto::logs::v1::LogRecord;
use chrono::{DateTime, NaiveDateTime};
use regex::Regex;

/// How a line becomes a record.
#[derive(Debug, Clone)]
pub(crate) enum LineParser {
    /// The line is the body.
    Plain,
    /// One JSON object per line.
    Json,
    /// Named groups `timestamp`, `severity`, `body`; other named groups become attributes.
    Regex(Regex),
}

/// What parsing did to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// The line, or one of its fields, did not parse: counted in `otlp_bridge_file_parse_failures_total`.
    pub failed: bool,
}

/// Fills `record`'s body, time, severity, ids and attributes from `line`.
pub(crate) fn parse(parser: &LineParser, time_format: Option<&str>, line: &str, record: &mut LogRecord) -> Parsed {
    match parser {
        LineParser::Plain => {
            record.body = Some(string(line));
            Parsed { failed: false }
        }
        LineParser::Json => parse_json(time_format, line, record),
        LineParser::Regex(re) => parse_regex(re, time_format, line, record),
    }
}

const BODY_KEYS: [&str; 3] = ["message", "msg", "body"];
const TIME_KEYS: [&str; 4] = ["time", "timestamp", "ts", "@timestamp"];
const LEVEL_KEYS: [&str; 3] = ["level", "severity", "lvl"];

fn parse_json(time_format: Option<&str>, line: &str, record: &mut LogRecord) -> Parsed {
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_str::<serde_json::Value>(line) else {
        record.body = Some(string(line));
        return Parsed { failed: true };
    };
    let mut failed = false;
    // The first key of each list that is present is the field; another alias stays an attribute.
    let first = |fields: &serde_json::Map<String, serde_json::Value>, keys: &[&'static str]| {
        keys.iter().copied().find(|k| fields.contains_key(*k))
    };
    record.body = Some(match first(&fields, &BODY_KEYS).and_then(|k| fields.remove(k)) {
        Some(value) => json_value(value),
        None => string(line),
    });
    if let Some(key) = first(&fields, &TIME_KEYS) {
        match fields.get(key).and_then(|v| json_time(v, time_format)) {
            Some(nanos) => {
                record.time_unix_nano = nanos;
                fields.remove(key);
            }
            None => failed = true,
        }
    }
    if let Some(key) = first(&fields, &LEVEL_KEYS) {
        if let Some((text, number)) = fields.get(key).and_then(json_severity) {
            record.severity_text = text;
            record.severity_number = number;
            fields.remove(key);
        }
    }
    for (key, len) in [("trace_id", 16), ("span_id", 8)] {
        let Some(value) = fields.get(key) else { continue };
        match value.as_str().and_then(|s| hex_id(s, len)) {
            Some(id) => {
                if key == "trace_id" {
                    record.trace_id = id;
                } else {
                    record.span_id = id;
                }
                fields.remove(key);
            }
            None => failed = true,
        }
    }
    record.attributes.extend(fields.into_iter().map(|(k, v)| key_value(&k, json_value(v))));
    Parsed { failed }
}

fn parse_regex(re: &Regex, time_format: Option<&str>, line: &str, record: &mut LogRecord) -> Parsed {
    let Some(captures) = re.captures(line) else {
        record.body = Some(string(line));
        return Parsed { failed: true };
    };
    let mut failed = false;
    let mut body = None;
    for name in re.capture_names().flatten() {
        let Some(m) = captures.name(name) else { continue };
        let text = m.as_str();
        match name {
            "body" => body = Some(text),
            "timestamp" => match parse_time(text, time_format) {
                Some(nanos) => record.time_unix_nano = nanos,
                None => {
                    failed = true;
                    record.attributes.push(key_value(name, string(text)));
                }
            },
            "severity" => {
                record.severity_text = text.to_string();
                record.severity_number = severity_number(text);
            }
            _ => record.attributes.push(key_value(name, string(text))),
        }
    }
    record.body = Some(string(body.unwrap_or(line)));
    Parsed { failed }
}

/// OTLP's severity number for a level name: TRACE 1, DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21, with the
/// aliases of common logging libraries (syslog, log4j/logback, java.util.logging, Python, .NET, Go) and OTLP's own
/// short names with a digit (`INFO2` is 10); case-insensitive; 0 (unspecified) for anything else.
pub(crate) fn severity_number(text: &str) -> i32 {
    let lower = text.trim().to_ascii_lowercase();
    let (name, step) = match lower.as_bytes().last() {
        Some(d @ b'1'..=b'4') if lower.len() > 1 => (&lower[..lower.len() - 1], i32::from(d - b'1')),
        _ => (lower.as_str(), 0),
    };
    let base = match name {
        "trace" | "trc" | "finest" | "finer" | "verbose" | "vrb" => 1,
        "debug" | "dbg" | "fine" | "config" => 5,
        "info" | "inf" | "information" | "informational" | "notice" => 9,
        "warn" | "warning" | "wrn" => 13,
        "error" | "err" | "severe" => 17,
        "fatal" | "ftl" | "critical" | "crit" | "panic" | "emerg" | "emergency" | "alert" => 21,
        _ => return 0,
    };
    // `notice` sits between info and warning (syslog), as OTLP's INFO2.
    base + step + i32::from(name == "notice")
}

/// Severity from a JSON level: a name, or pino/Bunyan's numbers (10 trace .. 60 fatal).
fn json_severity(value: &serde_json::Value) -> Option<(String, i32)> {
    match value {
        serde_json::Value::String(s) => Some((s.clone(), severity_number(s))),
        serde_json::Value::Number(n) => {
            let number = match n.as_u64()? {
                10 => 1,
                20 => 5,
                30 => 9,
                40 => 13,
                50 => 17,
                60 => 21,
                _ => 0,
            };
            Some((n.to_string(), number))
        }
        _ => None,
    }
}

fn json_time(value: &serde_json::Value, time_format: Option<&str>) -> Option<u64> {
    match value {
        serde_json::Value::String(s) => parse_time(s, time_format),
        serde_json::Value::Number(n) => parse_time(&n.to_string(), None),
        _ => None,
    }
}

/// Nanoseconds since the epoch of a timestamp: RFC 3339; epoch by its integer digits (10 seconds, 13
/// milliseconds, 16 microseconds, 19 nanoseconds; seconds may carry a fraction); then `format` (strftime; a layout
/// without a UTC offset is read as UTC). `None` when it is none of these or before 1970.
pub(crate) fn parse_time(text: &str, format: Option<&str>) -> Option<u64> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return t.timestamp_nanos_opt().and_then(|n| u64::try_from(n).ok());
    }
    if let Some(nanos) = parse_epoch(text) {
        return Some(nanos);
    }
    let format = format?;
    let nanos = match DateTime::parse_from_str(text, format) {
        Ok(t) => t.timestamp_nanos_opt(),
        Err(_) => NaiveDateTime::parse_from_str(text, format).ok()?.and_utc().timestamp_nanos_opt(),
    };
    nanos.and_then(|n| u64::try_from(n).ok())
}

fn parse_epoch(text: &str) -> Option<u64> {
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = int.parse().ok()?;
    let scale: u64 = match int.len() {
        10 => 1_000_000_000,
        13 => 1_000_000,
        16 => 1_000,
        19 => 1,
        _ => return None,
    };
    let mut nanos = value.checked_mul(scale)?;
    if let Some(frac) = frac {
        // A fraction only makes sense below the nanosecond: of seconds, milliseconds or microseconds.
        if frac.is_empty() || scale == 1 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits = &frac[..frac.len().min(9)];
        let fraction: u64 = digits.parse().ok()?;
        let sub = fraction.checked_mul(scale)? / 10u64.pow(u32::try_from(digits.len()).ok()?);
        nanos = nanos.checked_add(sub)?;
    }
    Some(nanos)
}

fn hex_id(text: &str, bytes: usize) -> Option<Vec<u8>> {
    if text.len() != bytes * 2 {
        return None;
    }
    (0..bytes).map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

pub(crate) fn string(text: &str) -> AnyValue {
    AnyValue { value: Some(any_value::Value::StringValue(text.to_string())) }
}

pub(crate) fn key_value(key: &str, value: AnyValue) -> KeyValue {
    KeyValue { key: key.to_string(), value: Some(value), ..KeyValue::default() }
}

/// A JSON value as an OTLP value: objects as kvlists, arrays as arrays, integers as ints (others as doubles),
/// null as an empty value.
fn json_value(value: serde_json::Value) -> AnyValue {
    use any_value::Value;
    let value = match value {
        serde_json::Value::Null => None,
        serde_json::Value::Bool(b) => Some(Value::BoolValue(b)),
        serde_json::Value::Number(n) => Some(match n.as_i64() {
            Some(i) => Value::IntValue(i),
            None => Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        }),
        serde_json::Value::String(s) => Some(Value::StringValue(s)),
        serde_json::Value::Array(items) => {
            Some(Value::ArrayValue(ArrayValue { values: items.into_iter().map(json_value).collect() }))
        }
        serde_json::Value::Object(fields) => Some(Value::KvlistValue(KeyValueList {
            values: fields.into_iter().map(|(k, v)| key_value(&k, json_value(v))).collect(),
        })),
    };
    AnyValue { value }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
