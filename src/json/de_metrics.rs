//! OTLP/JSON decoding of the metrics signal.
//!
//! The oneofs here (`Metric.data`, the data point and exemplar `value`) are where a flatten-based decoder
//! silently drops data; each is decoded field by field, so an error deep inside always surfaces.

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::exemplar::Value as ExemplarValue;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::metric::Data as MetricData;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::de_common::{message, Obj, Opt, Rep};
use super::de_scalar::{Bool, Enum, EnumName, SpanId, Str, TraceId, F64, I32, I64, U32, U64};

impl EnumName for AggregationTemporality {
    const WHAT: &'static str = "aggregation temporality";
    const PREFIX: &'static str = "AGGREGATION_TEMPORALITY_";
    fn from_name(name: &str) -> Option<i32> {
        AggregationTemporality::from_str_name(name).map(|v| v as i32)
    }
}

message! {
    ExportMetricsServiceRequest as ExportMetricsServiceRequestField, "ExportMetricsServiceRequest" {
        resource_metrics: Rep<Obj<ResourceMetrics>> = "resourceMetrics",
    }
}

message! {
    ResourceMetrics as ResourceMetricsField, "ResourceMetrics" {
        resource: Opt<Obj<Resource>> = "resource",
        scope_metrics: Rep<Obj<ScopeMetrics>> = "scopeMetrics",
        schema_url: Str = "schemaUrl",
    }
}

message! {
    ScopeMetrics as ScopeMetricsField, "ScopeMetrics" {
        scope: Opt<Obj<InstrumentationScope>> = "scope",
        metrics: Rep<Obj<Metric>> = "metrics",
        schema_url: Str = "schemaUrl",
    }
}

message! {
    Metric as MetricField, "Metric" {
        name: Str = "name",
        description: Str = "description",
        unit: Str = "unit",
        metadata: Rep<Obj<KeyValue>> = "metadata",
    }
    oneof data: MetricData {
        Gauge: Obj<Gauge> = "gauge" | "gauge",
        Sum: Obj<Sum> = "sum" | "sum",
        Histogram: Obj<Histogram> = "histogram" | "histogram",
        ExponentialHistogram: Obj<ExponentialHistogram> = "exponentialHistogram" | "exponential_histogram",
        Summary: Obj<Summary> = "summary" | "summary",
    }
}

message! {
    Gauge as GaugeField, "Gauge" {
        data_points: Rep<Obj<NumberDataPoint>> = "dataPoints",
    }
}

message! {
    Sum as SumField, "Sum" {
        data_points: Rep<Obj<NumberDataPoint>> = "dataPoints",
        aggregation_temporality: Enum<AggregationTemporality> = "aggregationTemporality",
        is_monotonic: Bool = "isMonotonic",
    }
}

message! {
    Histogram as HistogramField, "Histogram" {
        data_points: Rep<Obj<HistogramDataPoint>> = "dataPoints",
        aggregation_temporality: Enum<AggregationTemporality> = "aggregationTemporality",
    }
}

message! {
    ExponentialHistogram as ExponentialHistogramField, "ExponentialHistogram" {
        data_points: Rep<Obj<ExponentialHistogramDataPoint>> = "dataPoints",
        aggregation_temporality: Enum<AggregationTemporality> = "aggregationTemporality",
    }
}

message! {
    Summary as SummaryField, "Summary" {
        data_points: Rep<Obj<SummaryDataPoint>> = "dataPoints",
    }
}

message! {
    NumberDataPoint as NumberDataPointField, "NumberDataPoint" {
        attributes: Rep<Obj<KeyValue>> = "attributes",
        start_time_unix_nano: U64 = "startTimeUnixNano",
        time_unix_nano: U64 = "timeUnixNano",
        exemplars: Rep<Obj<Exemplar>> = "exemplars",
        flags: U32 = "flags",
    }
    oneof value: NumberValue {
        AsDouble: F64 = "asDouble" | "as_double",
        AsInt: I64 = "asInt" | "as_int",
    }
}

message! {
    HistogramDataPoint as HistogramDataPointField, "HistogramDataPoint" {
        attributes: Rep<Obj<KeyValue>> = "attributes",
        start_time_unix_nano: U64 = "startTimeUnixNano",
        time_unix_nano: U64 = "timeUnixNano",
        count: U64 = "count",
        sum: Opt<F64> = "sum",
        bucket_counts: Rep<U64> = "bucketCounts",
        explicit_bounds: Rep<F64> = "explicitBounds",
        exemplars: Rep<Obj<Exemplar>> = "exemplars",
        flags: U32 = "flags",
        min: Opt<F64> = "min",
        max: Opt<F64> = "max",
    }
}

message! {
    ExponentialHistogramDataPoint as ExponentialHistogramDataPointField, "ExponentialHistogramDataPoint" {
        attributes: Rep<Obj<KeyValue>> = "attributes",
        start_time_unix_nano: U64 = "startTimeUnixNano",
        time_unix_nano: U64 = "timeUnixNano",
        count: U64 = "count",
        sum: Opt<F64> = "sum",
        scale: I32 = "scale",
        zero_count: U64 = "zeroCount",
        positive: Opt<Obj<Buckets>> = "positive",
        negative: Opt<Obj<Buckets>> = "negative",
        flags: U32 = "flags",
        exemplars: Rep<Obj<Exemplar>> = "exemplars",
        min: Opt<F64> = "min",
        max: Opt<F64> = "max",
        zero_threshold: F64 = "zeroThreshold",
    }
}

message! {
    Buckets as BucketsField, "Buckets" {
        offset: I32 = "offset",
        bucket_counts: Rep<U64> = "bucketCounts",
    }
}

message! {
    SummaryDataPoint as SummaryDataPointField, "SummaryDataPoint" {
        attributes: Rep<Obj<KeyValue>> = "attributes",
        start_time_unix_nano: U64 = "startTimeUnixNano",
        time_unix_nano: U64 = "timeUnixNano",
        count: U64 = "count",
        sum: F64 = "sum",
        quantile_values: Rep<Obj<ValueAtQuantile>> = "quantileValues",
        flags: U32 = "flags",
    }
}

message! {
    ValueAtQuantile as ValueAtQuantileField, "ValueAtQuantile" {
        quantile: F64 = "quantile",
        value: F64 = "value",
    }
}

message! {
    Exemplar as ExemplarField, "Exemplar" {
        filtered_attributes: Rep<Obj<KeyValue>> = "filteredAttributes",
        time_unix_nano: U64 = "timeUnixNano",
        span_id: SpanId = "spanId",
        trace_id: TraceId = "traceId",
    }
    oneof value: ExemplarValue {
        AsDouble: F64 = "asDouble" | "as_double",
        AsInt: I64 = "asInt" | "as_int",
    }
}

message! {
    ExportMetricsServiceResponse as ExportMetricsServiceResponseField, "ExportMetricsServiceResponse" {
        partial_success: Opt<Obj<ExportMetricsPartialSuccess>> = "partialSuccess",
    }
}

message! {
    ExportMetricsPartialSuccess as ExportMetricsPartialSuccessField, "ExportMetricsPartialSuccess" {
        rejected_data_points: I64 = "rejectedDataPoints",
        error_message: Str = "errorMessage",
    }
}
