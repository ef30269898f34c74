//! OTLP/JSON decoding of the trace signal.

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::de_common::{message, Obj, Opt, Rep};
use super::de_scalar::{Enum, EnumName, SpanId, Str, TraceId, I64, U32, U64};

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
        resource_spans: Rep<Obj<ResourceSpans>> = "resourceSpans",
    }
}

message! {
    ResourceSpans as ResourceSpansField, "ResourceSpans" {
        resource: Opt<Obj<Resource>> = "resource",
        scope_spans: Rep<Obj<ScopeSpans>> = "scopeSpans",
        schema_url: Str = "schemaUrl",
    }
}

message! {
    ScopeSpans as ScopeSpansField, "ScopeSpans" {
        scope: Opt<Obj<InstrumentationScope>> = "scope",
        spans: Rep<Obj<Span>> = "spans",
        schema_url: Str = "schemaUrl",
    }
}

message! {
    Span as SpanField, "Span" {
        trace_id: TraceId = "traceId",
        span_id: SpanId = "spanId",
        trace_state: Str = "traceState",
        parent_span_id: SpanId = "parentSpanId",
        flags: U32 = "flags",
        name: Str = "name",
        kind: Enum<SpanKind> = "kind",
        start_time_unix_nano: U64 = "startTimeUnixNano",
        end_time_unix_nano: U64 = "endTimeUnixNano",
        attributes: Rep<Obj<KeyValue>> = "attributes",
        dropped_attributes_count: U32 = "droppedAttributesCount",
        events: Rep<Obj<Event>> = "events",
        dropped_events_count: U32 = "droppedEventsCount",
        links: Rep<Obj<Link>> = "links",
        dropped_links_count: U32 = "droppedLinksCount",
        status: Opt<Obj<Status>> = "status",
    }
}

message! {
    Event as EventField, "Event" {
        time_unix_nano: U64 = "timeUnixNano",
        name: Str = "name",
        attributes: Rep<Obj<KeyValue>> = "attributes",
        dropped_attributes_count: U32 = "droppedAttributesCount",
    }
}

message! {
    Link as LinkField, "Link" {
        trace_id: TraceId = "traceId",
        span_id: SpanId = "spanId",
        trace_state: Str = "traceState",
        attributes: Rep<Obj<KeyValue>> = "attributes",
        dropped_attributes_count: U32 = "droppedAttributesCount",
        flags: U32 = "flags",
    }
}

message! {
    Status as StatusField, "Status" {
        message: Str = "message",
        code: Enum<StatusCode> = "code",
    }
}

message! {
    ExportTraceServiceResponse as ExportTraceServiceResponseField, "ExportTraceServiceResponse" {
        partial_success: Opt<Obj<ExportTracePartialSuccess>> = "partialSuccess",
    }
}

message! {
    ExportTracePartialSuccess as ExportTracePartialSuccessField, "ExportTracePartialSuccess" {
        rejected_spans: I64 = "rejectedSpans",
        error_message: Str = "errorMessage",
    }
}
