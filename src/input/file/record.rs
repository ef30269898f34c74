//! Log records and the export request that carries them.
//!
//! Records are built as opentelemetry-proto's prost types and encoded once per batch: a file line has no protobuf
//! to pass through (unlike the receivers), prost is already in the tree, and its encoder is as fast as a hand-rolled
//! one for messages built field by field, without a second encoder to keep right.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::common::v1::InstrumentationScope;
use crate::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use bytes::Bytes;
use prost::Message;

use super::parse::{key_value, parse, string, LineParser};

/// The scope of every record the file input makes.
pub(crate) const SCOPE_NAME: &str = "otlp-bridge/file";

/// Where a line came from.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// `log.file.name`.
    pub name: String,
    /// `log.file.path`: the path as the glob matched it.
    pub path: String,
    /// `log.file.path_resolved`, when it differs.
    pub resolved: Option<String>,
}

/// The parser settings of one input.
#[derive(Debug, Clone)]
pub(crate) struct Parsing {
    pub parser: LineParser,
    pub time_format: Option<String>,
}

/// Nanoseconds since the epoch, now.
pub(crate) fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The record of `text` read from `source` at `observed` (nanoseconds); the flag says whether parsing failed.
pub(crate) fn build(parsing: &Parsing, source: &Source, text: &str, observed: u64) -> (LogRecord, bool) {
    let mut record = LogRecord { observed_time_unix_nano: observed, ..LogRecord::default() };
    record.attributes.push(key_value("log.file.name", string(&source.name)));
    record.attributes.push(key_value("log.file.path", string(&source.path)));
    if let Some(resolved) = &source.resolved {
        record.attributes.push(key_value("log.file.path_resolved", string(resolved)));
    }
    let parsed = parse(&parsing.parser, parsing.time_format.as_deref(), text, &mut record);
    (record, parsed.failed)
}

/// One export request holding `records` (in the order given: file order within each file).
pub(crate) fn encode(records: Vec<LogRecord>) -> Bytes {
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: None,
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: SCOPE_NAME.into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..InstrumentationScope::default()
                }),
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    Bytes::from(request.encode_to_vec())
}

/// Bytes a record adds to the request.
pub(crate) fn size(record: &LogRecord) -> usize {
    let len = record.encoded_len();
    // The field tag and the length prefix.
    len + 1 + prost::length_delimiter_len(len)
}
