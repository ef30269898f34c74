//! Schema tables for `opentelemetry.proto.metrics.v1` (see `schema.rs` for the conventions).

use super::schema::Kind::{Fixed64, Msg, PackedFixed64, PackedVarint, Str, Varint};
use super::schema::{f, gap, rep, Schema, ATTRS, RESOURCE, SCOPE, SPAN_ID, TRACE_ID};

// ---- metrics.v1 ----

/// `ExportMetricsServiceRequest`; items are data points of every metric type.
pub static METRICS: Schema = Schema {
    name: "ExportMetricsServiceRequest",
    fields: &[rep(1, "resource_metrics", Msg(&RESOURCE_METRICS)).split()],
};
static RESOURCE_METRICS: Schema = Schema {
    name: "ResourceMetrics",
    fields: &[
        f(1, "resource", Msg(&RESOURCE)),
        rep(2, "scope_metrics", Msg(&SCOPE_METRICS)).split(),
        f(3, "schema_url", Str),
    ],
};
static SCOPE_METRICS: Schema = Schema {
    name: "ScopeMetrics",
    fields: &[f(1, "scope", Msg(&SCOPE)), rep(2, "metrics", Msg(&METRIC)).split(), f(3, "schema_url", Str)],
};
static METRIC: Schema = Schema {
    name: "Metric",
    fields: &[
        f(1, "name", Str),
        f(2, "description", Str),
        f(3, "unit", Str),
        gap(4),
        f(5, "gauge", Msg(&GAUGE)).split().oneof(),
        gap(6),
        f(7, "sum", Msg(&SUM)).split().oneof(),
        gap(8),
        f(9, "histogram", Msg(&HISTOGRAM)).split().oneof(),
        f(10, "exponential_histogram", Msg(&EXP_HISTOGRAM)).split().oneof(),
        f(11, "summary", Msg(&SUMMARY)).split().oneof(),
        rep(12, "metadata", ATTRS),
    ],
};
static GAUGE: Schema = Schema { name: "Gauge", fields: &[rep(1, "data_points", Msg(&NUMBER_POINT)).item()] };
static SUM: Schema = Schema {
    name: "Sum",
    fields: &[
        rep(1, "data_points", Msg(&NUMBER_POINT)).item(),
        f(2, "aggregation_temporality", Varint),
        f(3, "is_monotonic", Varint),
    ],
};
static HISTOGRAM: Schema = Schema {
    name: "Histogram",
    fields: &[rep(1, "data_points", Msg(&HISTOGRAM_POINT)).item(), f(2, "aggregation_temporality", Varint)],
};
static EXP_HISTOGRAM: Schema = Schema {
    name: "ExponentialHistogram",
    fields: &[rep(1, "data_points", Msg(&EXP_HISTOGRAM_POINT)).item(), f(2, "aggregation_temporality", Varint)],
};
static SUMMARY: Schema = Schema { name: "Summary", fields: &[rep(1, "data_points", Msg(&SUMMARY_POINT)).item()] };
static NUMBER_POINT: Schema = Schema {
    name: "NumberDataPoint",
    fields: &[
        gap(1),
        f(2, "start_time_unix_nano", Fixed64),
        f(3, "time_unix_nano", Fixed64),
        f(4, "as_double", Fixed64),
        rep(5, "exemplars", Msg(&EXEMPLAR)),
        f(6, "as_int", Fixed64),
        rep(7, "attributes", ATTRS),
        f(8, "flags", Varint),
    ],
};
static HISTOGRAM_POINT: Schema = Schema {
    name: "HistogramDataPoint",
    fields: &[
        gap(1),
        f(2, "start_time_unix_nano", Fixed64),
        f(3, "time_unix_nano", Fixed64),
        f(4, "count", Fixed64),
        f(5, "sum", Fixed64),
        rep(6, "bucket_counts", PackedFixed64),
        rep(7, "explicit_bounds", PackedFixed64),
        rep(8, "exemplars", Msg(&EXEMPLAR)),
        rep(9, "attributes", ATTRS),
        f(10, "flags", Varint),
        f(11, "min", Fixed64),
        f(12, "max", Fixed64),
    ],
};
static EXP_HISTOGRAM_POINT: Schema = Schema {
    name: "ExponentialHistogramDataPoint",
    fields: &[
        rep(1, "attributes", ATTRS),
        f(2, "start_time_unix_nano", Fixed64),
        f(3, "time_unix_nano", Fixed64),
        f(4, "count", Fixed64),
        f(5, "sum", Fixed64),
        f(6, "scale", Varint),
        f(7, "zero_count", Fixed64),
        f(8, "positive", Msg(&BUCKETS)),
        f(9, "negative", Msg(&BUCKETS)),
        f(10, "flags", Varint),
        rep(11, "exemplars", Msg(&EXEMPLAR)),
        f(12, "min", Fixed64),
        f(13, "max", Fixed64),
        f(14, "zero_threshold", Fixed64),
    ],
};
static BUCKETS: Schema = Schema {
    name: "ExponentialHistogramDataPoint.Buckets",
    fields: &[f(1, "offset", Varint), rep(2, "bucket_counts", PackedVarint)],
};
static SUMMARY_POINT: Schema = Schema {
    name: "SummaryDataPoint",
    fields: &[
        gap(1),
        f(2, "start_time_unix_nano", Fixed64),
        f(3, "time_unix_nano", Fixed64),
        f(4, "count", Fixed64),
        f(5, "sum", Fixed64),
        rep(6, "quantile_values", Msg(&VALUE_AT_QUANTILE)),
        rep(7, "attributes", ATTRS),
        f(8, "flags", Varint),
    ],
};
static VALUE_AT_QUANTILE: Schema =
    Schema { name: "SummaryDataPoint.ValueAtQuantile", fields: &[f(1, "quantile", Fixed64), f(2, "value", Fixed64)] };
static EXEMPLAR: Schema = Schema {
    name: "Exemplar",
    fields: &[
        gap(1),
        f(2, "time_unix_nano", Fixed64),
        f(3, "as_double", Fixed64),
        f(4, "span_id", SPAN_ID),
        f(5, "trace_id", TRACE_ID),
        f(6, "as_int", Fixed64),
        rep(7, "filtered_attributes", ATTRS),
    ],
};
