//! proptest strategies for random, valid OTLP requests built from the prost types: the one generator behind the
//! property tests of the wire scan (`wire::tests`) and of the JSON codec (`json::tests`).
//!
//! Valid means what a client may send: any string (control characters and astral planes included), ids of the
//! right length or empty, enums and strindex references outside the known range, NaN and infinities. Doubles are
//! finite with up to 15 significant digits, or one of the special values, not arbitrary bit patterns: serde_json's
//! float parser can be 1 ulp off for 17-digit values, a parser precision limit the JSON round trip must not trip on;
//! the wire scan reads doubles as opaque fixed64 words, so it loses nothing by that.

use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::common::v1::{
    any_value::Value, AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use crate::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use crate::proto::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint,
};
use crate::proto::resource::v1::Resource;
use crate::proto::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use proptest::collection::vec;
use proptest::option::of as opt;
use proptest::prelude::*;

fn s() -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..8).prop_map(|v| v.into_iter().collect())
}

/// Finite doubles with up to 15 significant digits, plus the special values.
///
/// Not arbitrary bit patterns: serde_json's default float parser (without its `float_roundtrip` feature)
/// can be 1 ulp off for 17-digit values, which is a parser precision limit, not a codec bug.
fn f() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => (-999_999_999_999_999i64..=999_999_999_999_999, -20i32..=20)
            .prop_map(|(m, e)| format!("{m}e{e}").parse::<f64>().unwrap_or(0.0)),
        1 => prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(0.0), Just(-0.0)],
    ]
}

fn id(n: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![Just(Vec::new()), vec(any::<u8>(), n)]
}

pub(crate) fn any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        Just(None),
        s().prop_map(|v| Some(Value::StringValue(v))),
        any::<bool>().prop_map(|v| Some(Value::BoolValue(v))),
        any::<i64>().prop_map(|v| Some(Value::IntValue(v))),
        f().prop_map(|v| Some(Value::DoubleValue(v))),
        vec(any::<u8>(), 0..8).prop_map(|v| Some(Value::BytesValue(v))),
        any::<i32>().prop_map(|v| Some(Value::StringValueStrindex(v))),
    ]
    .prop_map(|value| AnyValue { value });
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3)
                .prop_map(|values| AnyValue { value: Some(Value::ArrayValue(ArrayValue { values })) }),
            vec((s(), proptest::option::of(inner), any::<i32>()), 0..3).prop_map(|kvs| AnyValue {
                value: Some(Value::KvlistValue(KeyValueList {
                    values: kvs
                        .into_iter()
                        .map(|(key, value, key_strindex)| KeyValue { key, value, key_strindex })
                        .collect()
                }))
            }),
        ]
    })
}

pub(crate) fn attrs() -> impl Strategy<Value = Vec<KeyValue>> {
    vec(
        (s(), proptest::option::of(any_value()), prop_oneof![Just(0), any::<i32>()])
            .prop_map(|(key, value, key_strindex)| KeyValue { key, value, key_strindex }),
        0..3,
    )
}

fn resource() -> impl Strategy<Value = Option<Resource>> {
    let entity =
        (s(), s(), vec(s(), 0..2), vec(s(), 0..2)).prop_map(|(schema_url, r#type, id_keys, description_keys)| {
            EntityRef { schema_url, r#type, id_keys, description_keys }
        });
    proptest::option::of((attrs(), any::<u32>(), vec(entity, 0..2)).prop_map(
        |(attributes, dropped_attributes_count, entity_refs)| Resource {
            attributes,
            dropped_attributes_count,
            entity_refs,
        },
    ))
}

fn scope() -> impl Strategy<Value = Option<InstrumentationScope>> {
    proptest::option::of((s(), s(), attrs(), any::<u32>()).prop_map(
        |(name, version, attributes, dropped_attributes_count)| InstrumentationScope {
            name,
            version,
            attributes,
            dropped_attributes_count,
        },
    ))
}

fn span_strategy() -> impl Strategy<Value = Span> {
    let event = (any::<u64>(), s(), attrs(), any::<u32>()).prop_map(|(time_unix_nano, name, attributes, d)| {
        span::Event { time_unix_nano, name, attributes, dropped_attributes_count: d }
    });
    let link = (id(16), id(8), s(), attrs(), any::<u32>(), any::<u32>()).prop_map(
        |(trace_id, span_id, trace_state, attributes, dropped_attributes_count, flags)| span::Link {
            trace_id,
            span_id,
            trace_state,
            attributes,
            dropped_attributes_count,
            flags,
        },
    );
    let status = proptest::option::of((s(), -1i32..4).prop_map(|(message, code)| Status { message, code }));
    (
        (id(16), id(8), s(), id(8), any::<u32>(), s(), any::<i32>(), any::<u64>(), any::<u64>()),
        (attrs(), any::<u32>(), vec(event, 0..2), any::<u32>(), vec(link, 0..2), any::<u32>(), status),
    )
        .prop_map(|((trace_id, span_id, trace_state, parent_span_id, flags, name, kind, start, end), rest)| {
            let (
                attributes,
                dropped_attributes_count,
                events,
                dropped_events_count,
                links,
                dropped_links_count,
                status,
            ) = rest;
            Span {
                trace_id,
                span_id,
                trace_state,
                parent_span_id,
                flags,
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                attributes,
                dropped_attributes_count,
                events,
                dropped_events_count,
                links,
                dropped_links_count,
                status,
            }
        })
}

fn exemplars() -> impl Strategy<Value = Vec<Exemplar>> {
    let value = prop_oneof![
        Just(None),
        f().prop_map(|v| Some(exemplar::Value::AsDouble(v))),
        any::<i64>().prop_map(|v| Some(exemplar::Value::AsInt(v))),
    ];
    vec(
        (attrs(), any::<u64>(), id(8), id(16), value).prop_map(
            |(filtered_attributes, time_unix_nano, span_id, trace_id, value)| Exemplar {
                filtered_attributes,
                time_unix_nano,
                span_id,
                trace_id,
                value,
            },
        ),
        0..2,
    )
}

fn number_points() -> impl Strategy<Value = Vec<NumberDataPoint>> {
    let value = prop_oneof![
        Just(None),
        f().prop_map(|v| Some(number_data_point::Value::AsDouble(v))),
        any::<i64>().prop_map(|v| Some(number_data_point::Value::AsInt(v))),
    ];
    vec(
        (attrs(), any::<u64>(), any::<u64>(), exemplars(), any::<u32>(), value).prop_map(
            |(attributes, start_time_unix_nano, time_unix_nano, exemplars, flags, value)| NumberDataPoint {
                attributes,
                start_time_unix_nano,
                time_unix_nano,
                exemplars,
                flags,
                value,
            },
        ),
        0..3,
    )
}

fn histogram_points() -> impl Strategy<Value = Vec<HistogramDataPoint>> {
    vec(
        (
            (attrs(), any::<u64>(), any::<u64>(), any::<u64>(), opt(f())),
            (vec(any::<u64>(), 0..4), vec(f(), 0..3), exemplars(), any::<u32>(), opt(f()), opt(f())),
        )
            .prop_map(
                |(
                    (attributes, start, time, count, sum),
                    (bucket_counts, explicit_bounds, exemplars, flags, min, max),
                )| {
                    HistogramDataPoint {
                        attributes,
                        start_time_unix_nano: start,
                        time_unix_nano: time,
                        count,
                        sum,
                        bucket_counts,
                        explicit_bounds,
                        exemplars,
                        flags,
                        min,
                        max,
                    }
                },
            ),
        0..2,
    )
}

fn exp_histogram_points() -> impl Strategy<Value = Vec<ExponentialHistogramDataPoint>> {
    let buckets = || {
        opt((any::<i32>(), vec(any::<u64>(), 0..3))
            .prop_map(|(offset, bucket_counts)| Buckets { offset, bucket_counts }))
    };
    vec(
        (
            (attrs(), any::<u64>(), any::<u64>(), any::<u64>(), opt(f()), any::<i32>(), any::<u64>()),
            (buckets(), buckets(), any::<u32>(), exemplars(), opt(f()), opt(f()), f()),
        )
            .prop_map(|((attributes, start, time, count, sum, scale, zero_count), rest)| {
                let (positive, negative, flags, exemplars, min, max, zero_threshold) = rest;
                ExponentialHistogramDataPoint {
                    attributes,
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count,
                    sum,
                    scale,
                    zero_count,
                    positive,
                    negative,
                    flags,
                    exemplars,
                    min,
                    max,
                    zero_threshold,
                }
            }),
        0..2,
    )
}

fn summary_points() -> impl Strategy<Value = Vec<SummaryDataPoint>> {
    let q = (f(), f()).prop_map(|(quantile, value)| ValueAtQuantile { quantile, value });
    vec(
        (attrs(), any::<u64>(), any::<u64>(), any::<u64>(), f(), vec(q, 0..3), any::<u32>()).prop_map(
            |(attributes, start, time, count, sum, quantile_values, flags)| SummaryDataPoint {
                attributes,
                start_time_unix_nano: start,
                time_unix_nano: time,
                count,
                sum,
                quantile_values,
                flags,
            },
        ),
        0..2,
    )
}

fn metric_strategy() -> impl Strategy<Value = Metric> {
    let data = prop_oneof![
        Just(None),
        number_points().prop_map(|data_points| Some(Data::Gauge(Gauge { data_points }))),
        (number_points(), any::<i32>(), any::<bool>()).prop_map(
            |(data_points, aggregation_temporality, is_monotonic)| {
                Some(Data::Sum(Sum { data_points, aggregation_temporality, is_monotonic }))
            }
        ),
        (histogram_points(), 0i32..3).prop_map(|(data_points, aggregation_temporality)| {
            Some(Data::Histogram(Histogram { data_points, aggregation_temporality }))
        }),
        (exp_histogram_points(), 0i32..3).prop_map(|(data_points, aggregation_temporality)| {
            Some(Data::ExponentialHistogram(ExponentialHistogram { data_points, aggregation_temporality }))
        }),
        summary_points().prop_map(|data_points| Some(Data::Summary(Summary { data_points }))),
    ];
    (s(), s(), s(), attrs(), data).prop_map(|(name, description, unit, metadata, data)| Metric {
        name,
        description,
        unit,
        metadata,
        data,
    })
}

fn log_strategy() -> impl Strategy<Value = LogRecord> {
    (
        (any::<u64>(), any::<u64>(), any::<i32>(), s(), proptest::option::of(any_value()), attrs()),
        (any::<u32>(), any::<u32>(), id(16), id(8), s()),
    )
        .prop_map(|((time, observed, severity_number, severity_text, body, attributes), rest)| {
            let (dropped_attributes_count, flags, trace_id, span_id, event_name) = rest;
            LogRecord {
                time_unix_nano: time,
                observed_time_unix_nano: observed,
                severity_number,
                severity_text,
                body,
                attributes,
                dropped_attributes_count,
                flags,
                trace_id,
                span_id,
                event_name,
            }
        })
}

pub(crate) fn traces() -> impl Strategy<Value = ExportTraceServiceRequest> {
    let ss = (scope(), vec(span_strategy(), 0..3), s()).prop_map(|(scope, spans, schema_url)| ScopeSpans {
        scope,
        spans,
        schema_url,
    });
    let rs = (resource(), vec(ss, 0..3), s()).prop_map(|(resource, scope_spans, schema_url)| ResourceSpans {
        resource,
        scope_spans,
        schema_url,
    });
    vec(rs, 0..3).prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

pub(crate) fn metrics() -> impl Strategy<Value = ExportMetricsServiceRequest> {
    let sm = (scope(), vec(metric_strategy(), 0..4), s()).prop_map(|(scope, metrics, schema_url)| ScopeMetrics {
        scope,
        metrics,
        schema_url,
    });
    let rm = (resource(), vec(sm, 0..2), s()).prop_map(|(resource, scope_metrics, schema_url)| ResourceMetrics {
        resource,
        scope_metrics,
        schema_url,
    });
    vec(rm, 0..3).prop_map(|resource_metrics| ExportMetricsServiceRequest { resource_metrics })
}

pub(crate) fn logs() -> impl Strategy<Value = ExportLogsServiceRequest> {
    let sl = (scope(), vec(log_strategy(), 0..3), s()).prop_map(|(scope, log_records, schema_url)| ScopeLogs {
        scope,
        log_records,
        schema_url,
    });
    let rl = (resource(), vec(sl, 0..3), s()).prop_map(|(resource, scope_logs, schema_url)| ResourceLogs {
        resource,
        scope_logs,
        schema_url,
    });
    vec(rl, 0..3).prop_map(|resource_logs| ExportLogsServiceRequest { resource_logs })
}
