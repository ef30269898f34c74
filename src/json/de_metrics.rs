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

use super::de_common::{Obj, Opt, Rep};
use super::de_scalar::{Bool, Enum, EnumName, Fixed64, SFixed64, SInt32, SpanId, Str, TraceId, F64, I64, U32, U64};
use super::table::message;

impl EnumName for AggregationTemporality {
    const WHAT: &'static str = "aggregation temporality";
    const PREFIX: &'static str = "AGGREGATION_TEMPORALITY_";
    fn from_name(name: &str) -> Option<i32> {
        AggregationTemporality::from_str_name(name).map(|v| v as i32)
    }
}

message! {
    ExportMetricsServiceRequest as ExportMetricsServiceRequestField, "ExportMetricsServiceRequest" {
        resource_metrics: Rep<Obj<ResourceMetrics>> = "resourceMetrics" @ 1,
    }
}

message! {
    ResourceMetrics as ResourceMetricsField, "ResourceMetrics" {
        resource: Opt<Obj<Resource>> = "resource" @ 1,
        scope_metrics: Rep<Obj<ScopeMetrics>> = "scopeMetrics" @ 2,
        schema_url: Str = "schemaUrl" @ 3,
    }
}

message! {
    ScopeMetrics as ScopeMetricsField, "ScopeMetrics" {
        scope: Opt<Obj<InstrumentationScope>> = "scope" @ 1,
        metrics: Rep<Obj<Metric>> = "metrics" @ 2,
        schema_url: Str = "schemaUrl" @ 3,
    }
}

message! {
    Metric as MetricField, "Metric" {
        name: Str = "name" @ 1,
        description: Str = "description" @ 2,
        unit: Str = "unit" @ 3,
        metadata: Rep<Obj<KeyValue>> = "metadata" @ 12,
    }
    oneof data: MetricData {
        Gauge: Obj<Gauge> = "gauge" | "gauge" @ 5,
        Sum: Obj<Sum> = "sum" | "sum" @ 7,
        Histogram: Obj<Histogram> = "histogram" | "histogram" @ 9,
        ExponentialHistogram: Obj<ExponentialHistogram> = "exponentialHistogram" | "exponential_histogram" @ 10,
        Summary: Obj<Summary> = "summary" | "summary" @ 11,
    }
}

message! {
    Gauge as GaugeField, "Gauge" {
        data_points: Rep<Obj<NumberDataPoint>> = "dataPoints" @ 1,
    }
}

message! {
    Sum as SumField, "Sum" {
        data_points: Rep<Obj<NumberDataPoint>> = "dataPoints" @ 1,
        aggregation_temporality: Enum<AggregationTemporality> = "aggregationTemporality" @ 2,
        is_monotonic: Bool = "isMonotonic" @ 3,
    }
}

message! {
    Histogram as HistogramField, "Histogram" {
        data_points: Rep<Obj<HistogramDataPoint>> = "dataPoints" @ 1,
        aggregation_temporality: Enum<AggregationTemporality> = "aggregationTemporality" @ 2,
    }
}

message! {
    ExponentialHistogram as ExponentialHistogramField, "ExponentialHistogram" {
        data_points: Rep<Obj<ExponentialHistogramDataPoint>> = "dataPoints" @ 1,
        aggregation_temporality: Enum<AggregationTemporality> = "aggregationTemporality" @ 2,
    }
}

message! {
    Summary as SummaryField, "Summary" {
        data_points: Rep<Obj<SummaryDataPoint>> = "dataPoints" @ 1,
    }
}

message! {
    NumberDataPoint as NumberDataPointField, "NumberDataPoint", items {
        attributes: Rep<Obj<KeyValue>> = "attributes" @ 7,
        start_time_unix_nano: Fixed64 = "startTimeUnixNano" @ 2,
        time_unix_nano: Fixed64 = "timeUnixNano" @ 3,
        exemplars: Rep<Obj<Exemplar>> = "exemplars" @ 5,
        flags: U32 = "flags" @ 8,
    }
    oneof value: NumberValue {
        AsDouble: F64 = "asDouble" | "as_double" @ 4,
        AsInt: SFixed64 = "asInt" | "as_int" @ 6,
    }
}

message! {
    HistogramDataPoint as HistogramDataPointField, "HistogramDataPoint", items {
        attributes: Rep<Obj<KeyValue>> = "attributes" @ 9,
        start_time_unix_nano: Fixed64 = "startTimeUnixNano" @ 2,
        time_unix_nano: Fixed64 = "timeUnixNano" @ 3,
        count: Fixed64 = "count" @ 4,
        sum: Opt<F64> = "sum" @ 5,
        bucket_counts: Rep<Fixed64> = "bucketCounts" @ 6,
        explicit_bounds: Rep<F64> = "explicitBounds" @ 7,
        exemplars: Rep<Obj<Exemplar>> = "exemplars" @ 8,
        flags: U32 = "flags" @ 10,
        min: Opt<F64> = "min" @ 11,
        max: Opt<F64> = "max" @ 12,
    }
}

message! {
    ExponentialHistogramDataPoint as ExponentialHistogramDataPointField, "ExponentialHistogramDataPoint", items {
        attributes: Rep<Obj<KeyValue>> = "attributes" @ 1,
        start_time_unix_nano: Fixed64 = "startTimeUnixNano" @ 2,
        time_unix_nano: Fixed64 = "timeUnixNano" @ 3,
        count: Fixed64 = "count" @ 4,
        sum: Opt<F64> = "sum" @ 5,
        scale: SInt32 = "scale" @ 6,
        zero_count: Fixed64 = "zeroCount" @ 7,
        positive: Opt<Obj<Buckets>> = "positive" @ 8,
        negative: Opt<Obj<Buckets>> = "negative" @ 9,
        flags: U32 = "flags" @ 10,
        exemplars: Rep<Obj<Exemplar>> = "exemplars" @ 11,
        min: Opt<F64> = "min" @ 12,
        max: Opt<F64> = "max" @ 13,
        zero_threshold: F64 = "zeroThreshold" @ 14,
    }
}

message! {
    Buckets as BucketsField, "Buckets" {
        offset: SInt32 = "offset" @ 1,
        bucket_counts: Rep<U64> = "bucketCounts" @ 2,
    }
}

message! {
    SummaryDataPoint as SummaryDataPointField, "SummaryDataPoint", items {
        attributes: Rep<Obj<KeyValue>> = "attributes" @ 7,
        start_time_unix_nano: Fixed64 = "startTimeUnixNano" @ 2,
        time_unix_nano: Fixed64 = "timeUnixNano" @ 3,
        count: Fixed64 = "count" @ 4,
        sum: F64 = "sum" @ 5,
        quantile_values: Rep<Obj<ValueAtQuantile>> = "quantileValues" @ 6,
        flags: U32 = "flags" @ 8,
    }
}

message! {
    ValueAtQuantile as ValueAtQuantileField, "ValueAtQuantile" {
        quantile: F64 = "quantile" @ 1,
        value: F64 = "value" @ 2,
    }
}

message! {
    Exemplar as ExemplarField, "Exemplar" {
        filtered_attributes: Rep<Obj<KeyValue>> = "filteredAttributes" @ 7,
        time_unix_nano: Fixed64 = "timeUnixNano" @ 2,
        span_id: SpanId = "spanId" @ 4,
        trace_id: TraceId = "traceId" @ 5,
    }
    oneof value: ExemplarValue {
        AsDouble: F64 = "asDouble" | "as_double" @ 3,
        AsInt: SFixed64 = "asInt" | "as_int" @ 6,
    }
}

message! {
    ExportMetricsServiceResponse as ExportMetricsServiceResponseField, "ExportMetricsServiceResponse" {
        partial_success: Opt<Obj<ExportMetricsPartialSuccess>> = "partialSuccess" @ 1,
    }
}

message! {
    ExportMetricsPartialSuccess as ExportMetricsPartialSuccessField, "ExportMetricsPartialSuccess" {
        rejected_data_points: I64 = "rejectedDataPoints" @ 1,
        error_message: Str = "errorMessage" @ 2,
    }
}
