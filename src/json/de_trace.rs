//! OTLP/JSON decoding of the trace signal.

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::de_common::{Obj, Opt, Rep};
use super::de_scalar::{Enum, EnumName, Fixed32, Fixed64, SpanId, Str, TraceId, I64, U32};
use super::table::message;

impl EnumName for SpanKind {
    const WHAT: &'static str = "span kind";
    const PREFIX: &'static str = "SPAN_KIND_";
    fn from_name(name: &str) -> Option<i32> {
        SpanKind::from_str_name(name).map(|v| v as i32)
    }
}

impl EnumName for StatusCode {
    const WHAT: &'static str = "status code";
    const PREFIX: &'static str = "STATUS_CODE_";
    fn from_name(name: &str) -> Option<i32> {
        StatusCode::from_str_name(name).map(|v| v as i32)
    }
}

message! {
    ExportTraceServiceRequest as ExportTraceServiceRequestField, "ExportTraceServiceRequest" {
        resource_spans: Rep<Obj<ResourceSpans>> = "resourceSpans" @ 1,
    }
}

message! {
    ResourceSpans as ResourceSpansField, "ResourceSpans" {
        resource: Opt<Obj<Resource>> = "resource" @ 1,
        scope_spans: Rep<Obj<ScopeSpans>> = "scopeSpans" @ 2,
        schema_url: Str = "schemaUrl" @ 3,
    }
}

message! {
    ScopeSpans as ScopeSpansField, "ScopeSpans" {
        scope: Opt<Obj<InstrumentationScope>> = "scope" @ 1,
        spans: Rep<Obj<Span>> = "spans" @ 2,
        schema_url: Str = "schemaUrl" @ 3,
    }
}

message! {
    Span as SpanField, "Span", items {
        trace_id: TraceId = "traceId" @ 1,
        span_id: SpanId = "spanId" @ 2,
        trace_state: Str = "traceState" @ 3,
        parent_span_id: SpanId = "parentSpanId" @ 4,
        flags: Fixed32 = "flags" @ 16,
        name: Str = "name" @ 5,
        kind: Enum<SpanKind> = "kind" @ 6,
        start_time_unix_nano: Fixed64 = "startTimeUnixNano" @ 7,
        end_time_unix_nano: Fixed64 = "endTimeUnixNano" @ 8,
        attributes: Rep<Obj<KeyValue>> = "attributes" @ 9,
        dropped_attributes_count: U32 = "droppedAttributesCount" @ 10,
        events: Rep<Obj<Event>> = "events" @ 11,
        dropped_events_count: U32 = "droppedEventsCount" @ 12,
        links: Rep<Obj<Link>> = "links" @ 13,
        dropped_links_count: U32 = "droppedLinksCount" @ 14,
        status: Opt<Obj<Status>> = "status" @ 15,
    }
}

message! {
    Event as EventField, "Event" {
        time_unix_nano: Fixed64 = "timeUnixNano" @ 1,
        name: Str = "name" @ 2,
        attributes: Rep<Obj<KeyValue>> = "attributes" @ 3,
        dropped_attributes_count: U32 = "droppedAttributesCount" @ 4,
    }
}

message! {
    Link as LinkField, "Link" {
        trace_id: TraceId = "traceId" @ 1,
        span_id: SpanId = "spanId" @ 2,
        trace_state: Str = "traceState" @ 3,
        attributes: Rep<Obj<KeyValue>> = "attributes" @ 4,
        dropped_attributes_count: U32 = "droppedAttributesCount" @ 5,
        flags: Fixed32 = "flags" @ 6,
    }
}

message! {
    Status as StatusField, "Status" {
        message: Str = "message" @ 2,
        code: Enum<StatusCode> = "code" @ 3,
    }
}

message! {
    ExportTraceServiceResponse as ExportTraceServiceResponseField, "ExportTraceServiceResponse" {
        partial_success: Opt<Obj<ExportTracePartialSuccess>> = "partialSuccess" @ 1,
    }
}

message! {
    ExportTracePartialSuccess as ExportTracePartialSuccessField, "ExportTracePartialSuccess" {
        rejected_spans: I64 = "rejectedSpans" @ 1,
        error_message: Str = "errorMessage" @ 2,
    }
}
