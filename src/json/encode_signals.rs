//! OTLP/JSON encoding of the three signals' requests and responses.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::exemplar::Value as ExemplarValue;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::metric::Data as MetricData;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::encode::{write_f64, write_i64_quoted, Encode, Obj};

/// Implements [`Encode`] as a plain list of `Obj` calls: `method("jsonName", field)`.
macro_rules! encode {
    ($ty:ty { $( $method:ident ( $key:literal, $field:ident ) ),* $(,)? }) => {
        impl Encode for $ty {
            fn encode(&self, out: &mut String) {
                let mut o = Obj::new(out);
                $( o.$method($key, encode!(@arg $method, self.$field)); )*
                o.end();
            }
        }
    };
    // Copy types by value, the rest by reference.
    (@arg u64, $e:expr) => { $e };
    (@arg i64, $e:expr) => { $e };
    (@arg u32, $e:expr) => { $e };
    (@arg i32, $e:expr) => { $e };
    (@arg f64, $e:expr) => { $e };
    (@arg bool, $e:expr) => { $e };
    (@arg opt_f64, $e:expr) => { $e };
    (@arg $m:ident, $e:expr) => { &$e };
}

// ---- trace ----
encode!(ExportTraceServiceRequest { msgs("resourceSpans", resource_spans) });
encode!(ResourceSpans {
    opt_msg("resource", resource),
    msgs("scopeSpans", scope_spans),
    str("schemaUrl", schema_url),
});
encode!(ScopeSpans {
    opt_msg("scope", scope),
    msgs("spans", spans),
    str("schemaUrl", schema_url),
});
encode!(Span {
    id("traceId", trace_id),
    id("spanId", span_id),
    str("traceState", trace_state),
    id("parentSpanId", parent_span_id),
    u32("flags", flags),
    str("name", name),
    i32("kind", kind),
    u64("startTimeUnixNano", start_time_unix_nano),
    u64("endTimeUnixNano", end_time_unix_nano),
    msgs("attributes", attributes),
    u32("droppedAttributesCount", dropped_attributes_count),
    msgs("events", events),
    u32("droppedEventsCount", dropped_events_count),
    msgs("links", links),
    u32("droppedLinksCount", dropped_links_count),
    opt_msg("status", status),
});
encode!(Event {
    u64("timeUnixNano", time_unix_nano),
    str("name", name),
    msgs("attributes", attributes),
    u32("droppedAttributesCount", dropped_attributes_count),
});
encode!(Link {
    id("traceId", trace_id),
    id("spanId", span_id),
    str("traceState", trace_state),
    msgs("attributes", attributes),
    u32("droppedAttributesCount", dropped_attributes_count),
    u32("flags", flags),
});
encode!(Status { str("message", message), i32("code", code) });
encode!(ExportTraceServiceResponse { opt_msg("partialSuccess", partial_success) });
encode!(ExportTracePartialSuccess {
    i64("rejectedSpans", rejected_spans),
    str("errorMessage", error_message),
});

// ---- metrics ----
encode!(ExportMetricsServiceRequest { msgs("resourceMetrics", resource_metrics) });
encode!(ResourceMetrics {
    opt_msg("resource", resource),
    msgs("scopeMetrics", scope_metrics),
    str("schemaUrl", schema_url),
});
encode!(ScopeMetrics {
    opt_msg("scope", scope),
    msgs("metrics", metrics),
    str("schemaUrl", schema_url),
});

impl Encode for Metric {
    fn encode(&self, out: &mut String) {
        let mut o = Obj::new(out);
        o.str("name", &self.name);
        o.str("description", &self.description);
        o.str("unit", &self.unit);
        match &self.data {
            None => {}
            Some(MetricData::Gauge(v)) => o.msg("gauge", v),
            Some(MetricData::Sum(v)) => o.msg("sum", v),
            Some(MetricData::Histogram(v)) => o.msg("histogram", v),
            Some(MetricData::ExponentialHistogram(v)) => o.msg("exponentialHistogram", v),
            Some(MetricData::Summary(v)) => o.msg("summary", v),
        }
        o.msgs("metadata", &self.metadata);
        o.end();
    }
}

encode!(Gauge { msgs("dataPoints", data_points) });
encode!(Sum {
    msgs("dataPoints", data_points),
    i32("aggregationTemporality", aggregation_temporality),
    bool("isMonotonic", is_monotonic),
});
encode!(Histogram {
    msgs("dataPoints", data_points),
    i32("aggregationTemporality", aggregation_temporality),
});
encode!(ExponentialHistogram {
    msgs("dataPoints", data_points),
    i32("aggregationTemporality", aggregation_temporality),
});
encode!(Summary { msgs("dataPoints", data_points) });

impl Encode for NumberDataPoint {
    fn encode(&self, out: &mut String) {
        let mut o = Obj::new(out);
        o.msgs("attributes", &self.attributes);
        o.u64("startTimeUnixNano", self.start_time_unix_nano);
        o.u64("timeUnixNano", self.time_unix_nano);
        // A set oneof member is written even when zero, so that "set to 0" survives the round trip.
        match self.value {
            None => {}
            Some(NumberValue::AsDouble(v)) => write_f64(o.key("asDouble"), v),
            Some(NumberValue::AsInt(v)) => write_i64_quoted(o.key("asInt"), v),
        }
        o.msgs("exemplars", &self.exemplars);
        o.u32("flags", self.flags);
        o.end();
    }
}

encode!(HistogramDataPoint {
    msgs("attributes", attributes),
    u64("startTimeUnixNano", start_time_unix_nano),
    u64("timeUnixNano", time_unix_nano),
    u64("count", count),
    opt_f64("sum", sum),
    u64s("bucketCounts", bucket_counts),
    f64s("explicitBounds", explicit_bounds),
    msgs("exemplars", exemplars),
    u32("flags", flags),
    opt_f64("min", min),
    opt_f64("max", max),
});
encode!(ExponentialHistogramDataPoint {
    msgs("attributes", attributes),
    u64("startTimeUnixNano", start_time_unix_nano),
    u64("timeUnixNano", time_unix_nano),
    u64("count", count),
    opt_f64("sum", sum),
    i32("scale", scale),
    u64("zeroCount", zero_count),
    opt_msg("positive", positive),
    opt_msg("negative", negative),
    u32("flags", flags),
    msgs("exemplars", exemplars),
    opt_f64("min", min),
    opt_f64("max", max),
    f64("zeroThreshold", zero_threshold),
});
encode!(Buckets {
    i32("offset", offset),
    u64s("bucketCounts", bucket_counts),
});
encode!(SummaryDataPoint {
    msgs("attributes", attributes),
    u64("startTimeUnixNano", start_time_unix_nano),
    u64("timeUnixNano", time_unix_nano),
    u64("count", count),
    f64("sum", sum),
    msgs("quantileValues", quantile_values),
    u32("flags", flags),
});
encode!(ValueAtQuantile {
    f64("quantile", quantile),
    f64("value", value),
});

impl Encode for Exemplar {
    fn encode(&self, out: &mut String) {
        let mut o = Obj::new(out);
        o.msgs("filteredAttributes", &self.filtered_attributes);
        o.u64("timeUnixNano", self.time_unix_nano);
        match self.value {
            None => {}
            Some(ExemplarValue::AsDouble(v)) => write_f64(o.key("asDouble"), v),
            Some(ExemplarValue::AsInt(v)) => write_i64_quoted(o.key("asInt"), v),
        }
        o.id("spanId", &self.span_id);
        o.id("traceId", &self.trace_id);
        o.end();
    }
}

encode!(ExportMetricsServiceResponse { opt_msg("partialSuccess", partial_success) });
encode!(ExportMetricsPartialSuccess {
    i64("rejectedDataPoints", rejected_data_points),
    str("errorMessage", error_message),
});

// ---- logs ----
encode!(ExportLogsServiceRequest { msgs("resourceLogs", resource_logs) });
encode!(ResourceLogs {
    opt_msg("resource", resource),
    msgs("scopeLogs", scope_logs),
    str("schemaUrl", schema_url),
});
encode!(ScopeLogs {
    opt_msg("scope", scope),
    msgs("logRecords", log_records),
    str("schemaUrl", schema_url),
});
encode!(LogRecord {
    u64("timeUnixNano", time_unix_nano),
    u64("observedTimeUnixNano", observed_time_unix_nano),
    i32("severityNumber", severity_number),
    str("severityText", severity_text),
    opt_msg("body", body),
    msgs("attributes", attributes),
    u32("droppedAttributesCount", dropped_attributes_count),
    u32("flags", flags),
    id("traceId", trace_id),
    id("spanId", span_id),
    str("eventName", event_name),
});
encode!(ExportLogsServiceResponse { opt_msg("partialSuccess", partial_success) });
encode!(ExportLogsPartialSuccess {
    i64("rejectedLogRecords", rejected_log_records),
    str("errorMessage", error_message),
});
