//! OTLP/JSON decoding of the logs signal.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::de_common::{message, Obj, Opt, Rep};
use super::de_scalar::{Enum, EnumName, SpanId, Str, TraceId, I64, U32, U64};

impl EnumName for SeverityNumber {
    const WHAT: &'static str = "severity number";
    const PREFIX: &'static str = "SEVERITY_NUMBER_";
    fn from_name(name: &str) -> Option<i32> {
        SeverityNumber::from_str_name(name).map(|v| v as i32)
    }
}

message! {
    ExportLogsServiceRequest as ExportLogsServiceRequestField, "ExportLogsServiceRequest" {
        resource_logs: Rep<Obj<ResourceLogs>> = "resourceLogs",
    }
}

message! {
    ResourceLogs as ResourceLogsField, "ResourceLogs" {
        resource: Opt<Obj<Resource>> = "resource",
        scope_logs: Rep<Obj<ScopeLogs>> = "scopeLogs",
        schema_url: Str = "schemaUrl",
    }
}

message! {
    ScopeLogs as ScopeLogsField, "ScopeLogs" {
        scope: Opt<Obj<InstrumentationScope>> = "scope",
        log_records: Rep<Obj<LogRecord>> = "logRecords",
        schema_url: Str = "schemaUrl",
    }
}

message! {
    LogRecord as LogRecordField, "LogRecord" {
        time_unix_nano: U64 = "timeUnixNano",
        observed_time_unix_nano: U64 = "observedTimeUnixNano",
        severity_number: Enum<SeverityNumber> = "severityNumber",
        severity_text: Str = "severityText",
        body: Opt<Obj<AnyValue>> = "body",
        attributes: Rep<Obj<KeyValue>> = "attributes",
        dropped_attributes_count: U32 = "droppedAttributesCount",
        flags: U32 = "flags",
        trace_id: TraceId = "traceId",
        span_id: SpanId = "spanId",
        event_name: Str = "eventName",
    }
}

message! {
    ExportLogsServiceResponse as ExportLogsServiceResponseField, "ExportLogsServiceResponse" {
        partial_success: Opt<Obj<ExportLogsPartialSuccess>> = "partialSuccess",
    }
}

message! {
    ExportLogsPartialSuccess as ExportLogsPartialSuccessField, "ExportLogsPartialSuccess" {
        rejected_log_records: I64 = "rejectedLogRecords",
        error_message: Str = "errorMessage",
    }
}
