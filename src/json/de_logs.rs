//! OTLP/JSON decoding of the logs signal.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::de_common::{Obj, Opt, Rep};
use super::de_scalar::{Enum, EnumName, Fixed32, Fixed64, SpanId, Str, TraceId, I64, U32};
use super::table::message;

impl EnumName for SeverityNumber {
    const WHAT: &'static str = "severity number";
    const PREFIX: &'static str = "SEVERITY_NUMBER_";
    fn from_name(name: &str) -> Option<i32> {
        SeverityNumber::from_str_name(name).map(|v| v as i32)
    }
}

message! {
    ExportLogsServiceRequest as ExportLogsServiceRequestField, "ExportLogsServiceRequest" {
        resource_logs: Rep<Obj<ResourceLogs>> = "resourceLogs" @ 1,
    }
}

message! {
    ResourceLogs as ResourceLogsField, "ResourceLogs" {
        resource: Opt<Obj<Resource>> = "resource" @ 1,
        scope_logs: Rep<Obj<ScopeLogs>> = "scopeLogs" @ 2,
        schema_url: Str = "schemaUrl" @ 3,
    }
}

message! {
    ScopeLogs as ScopeLogsField, "ScopeLogs" {
        scope: Opt<Obj<InstrumentationScope>> = "scope" @ 1,
        log_records: Rep<Obj<LogRecord>> = "logRecords" @ 2,
        schema_url: Str = "schemaUrl" @ 3,
    }
}

message! {
    LogRecord as LogRecordField, "LogRecord", items {
        time_unix_nano: Fixed64 = "timeUnixNano" @ 1,
        observed_time_unix_nano: Fixed64 = "observedTimeUnixNano" @ 11,
        severity_number: Enum<SeverityNumber> = "severityNumber" @ 2,
        severity_text: Str = "severityText" @ 3,
        body: Opt<Obj<AnyValue>> = "body" @ 5,
        attributes: Rep<Obj<KeyValue>> = "attributes" @ 6,
        dropped_attributes_count: U32 = "droppedAttributesCount" @ 7,
        flags: Fixed32 = "flags" @ 8,
        trace_id: TraceId = "traceId" @ 9,
        span_id: SpanId = "spanId" @ 10,
        event_name: Str = "eventName" @ 12,
    }
}

message! {
    ExportLogsServiceResponse as ExportLogsServiceResponseField, "ExportLogsServiceResponse" {
        partial_success: Opt<Obj<ExportLogsPartialSuccess>> = "partialSuccess" @ 1,
    }
}

message! {
    ExportLogsPartialSuccess as ExportLogsPartialSuccessField, "ExportLogsPartialSuccess" {
        rejected_log_records: I64 = "rejectedLogRecords" @ 1,
        error_message: Str = "errorMessage" @ 2,
    }
}
