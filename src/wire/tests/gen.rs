//! proptest strategies for random, valid OTLP requests built from the prost types.

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
use proptest::option::of;
use proptest::prelude::*;

fn s() -> impl Strategy<Value = String> {
    ".{0,8}"
}

fn id(n: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![Just(Vec::new()), vec(any::<u8>(), n)]
}

pub fn any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        s().prop_map(Value::StringValue),
        any::<bool>().prop_map(Value::BoolValue),
        any::<i64>().prop_map(Value::IntValue),
        any::<f64>().prop_map(Value::DoubleValue),
        vec(any::<u8>(), 0..8).prop_map(Value::BytesValue),
        any::<i32>().prop_map(Value::StringValueStrindex),
    ];
    let value = leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            vec(of(inner.clone()), 0..3).prop_map(|v| Value::ArrayValue(ArrayValue {
                values: v.into_iter().map(|value| AnyValue { value }).collect(),
            })),
            vec((s(), of(inner)), 0..3).prop_map(|v| Value::KvlistValue(KeyValueList {
                values: v
                    .into_iter()
                    .map(|(key, value)| KeyValue { key, value: Some(AnyValue { value }), key_strindex: 0 })
                    .collect(),
            })),
        ]
    });
    of(value).prop_map(|value| AnyValue { value })
}

pub fn attrs() -> impl Strategy<Value = Vec<KeyValue>> {
    vec((s(), of(any_value()), any::<i32>()), 0..4)
        .prop_map(|v| v.into_iter().map(|(key, value, key_strindex)| KeyValue { key, value, key_strindex }).collect())
}

fn resource() -> impl Strategy<Value = Option<Resource>> {
    let entity = (s(), s(), vec(s(), 0..3), vec(s(), 0..2)).prop_map(|(a, b, c, d)| EntityRef {
        schema_url: a,
        r#type: b,
        id_keys: c,
        description_keys: d,
    });
    of((attrs(), any::<u32>(), vec(entity, 0..2)).prop_map(|(attributes, d, entity_refs)| Resource {
        attributes,
        dropped_attributes_count: d,
        entity_refs,
    }))
}

fn scope() -> impl Strategy<Value = Option<InstrumentationScope>> {
    of((s(), s(), attrs(), any::<u32>()).prop_map(|(name, version, attributes, d)| InstrumentationScope {
        name,
        version,
        attributes,
        dropped_attributes_count: d,
    }))
}

fn span() -> impl Strategy<Value = Span> {
    let event = (any::<u64>(), s(), attrs(), any::<u32>()).prop_map(|(t, name, attributes, d)| span::Event {
        time_unix_nano: t,
        name,
        attributes,
        dropped_attributes_count: d,
    });
    let link = (id(16), id(8), s(), attrs(), any::<u32>(), any::<u32>()).prop_map(
        |(trace_id, span_id, trace_state, attributes, d, flags)| span::Link {
            trace_id,
            span_id,
            trace_state,
            attributes,
            dropped_attributes_count: d,
            flags,
        },
    );
    let status = of((s(), any::<i32>()).prop_map(|(message, code)| Status { message, code }));
    let ids = (id(16), id(8), s(), id(8), any::<u32>(), s(), any::<i32>());
    let rest = (any::<(u64, u64)>(), attrs(), any::<(u32, u32, u32)>());
    let lists = (vec(event, 0..2), vec(link, 0..2), status);
    (ids, rest, lists).prop_map(|((tid, sid, ts, pid, flags, name, kind), r, l)| Span {
        trace_id: tid,
        span_id: sid,
        trace_state: ts,
        parent_span_id: pid,
        flags,
        name,
        kind,
        start_time_unix_nano: r.0 .0,
        end_time_unix_nano: r.0 .1,
        attributes: r.1,
        dropped_attributes_count: r.2 .0,
        events: l.0,
        dropped_events_count: r.2 .1,
        links: l.1,
        dropped_links_count: r.2 .2,
        status: l.2,
    })
}

pub fn traces() -> impl Strategy<Value = ExportTraceServiceRequest> {
    let ss = (scope(), vec(span(), 0..5), s()).prop_map(|(scope, spans, schema_url)| ScopeSpans {
        scope,
        spans,
        schema_url,
    });
    let rs = (resource(), vec(ss, 0..3), s()).prop_map(|(resource, scope_spans, schema_url)| ResourceSpans {
        resource,
        scope_spans,
        schema_url,
    });
    vec(rs, 0..4).prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

fn exemplars() -> impl Strategy<Value = Vec<Exemplar>> {
    let value = of(prop_oneof![
        any::<f64>().prop_map(exemplar::Value::AsDouble),
        any::<i64>().prop_map(exemplar::Value::AsInt),
    ]);
    let e = (attrs(), any::<u64>(), id(8), id(16), value).prop_map(|(fa, t, sid, tid, value)| Exemplar {
        filtered_attributes: fa,
        time_unix_nano: t,
        span_id: sid,
        trace_id: tid,
        value,
    });
    vec(e, 0..2)
}

fn number_points() -> impl Strategy<Value = Vec<NumberDataPoint>> {
    let value = of(prop_oneof![
        any::<f64>().prop_map(number_data_point::Value::AsDouble),
        any::<i64>().prop_map(number_data_point::Value::AsInt),
    ]);
    let p = (attrs(), any::<(u64, u64, u32)>(), exemplars(), value).prop_map(|(a, t, e, value)| NumberDataPoint {
        attributes: a,
        start_time_unix_nano: t.0,
        time_unix_nano: t.1,
        exemplars: e,
        flags: t.2,
        value,
    });
    vec(p, 0..4)
}

fn histogram_points() -> impl Strategy<Value = Vec<HistogramDataPoint>> {
    let nums = any::<(u64, u64, u64, Option<f64>, u32, Option<f64>, Option<f64>)>();
    let p =
        (attrs(), nums, vec(any::<u64>(), 0..4), vec(any::<f64>(), 0..4), exemplars()).prop_map(|(a, n, bc, eb, e)| {
            HistogramDataPoint {
                attributes: a,
                start_time_unix_nano: n.0,
                time_unix_nano: n.1,
                count: n.2,
                sum: n.3,
                bucket_counts: bc,
                explicit_bounds: eb,
                exemplars: e,
                flags: n.4,
                min: n.5,
                max: n.6,
            }
        });
    vec(p, 0..3)
}

fn exp_points() -> impl Strategy<Value = Vec<ExponentialHistogramDataPoint>> {
    let buckets =
        of((any::<i32>(), vec(any::<u64>(), 0..4))
            .prop_map(|(offset, bucket_counts)| Buckets { offset, bucket_counts }));
    let nums = any::<(u64, u64, u64, Option<f64>, i32, u64)>();
    let more = any::<(u32, Option<f64>, Option<f64>, f64)>();
    let p =
        (attrs(), nums, more, buckets.clone(), buckets, exemplars()).prop_map(|(a, n, m, positive, negative, e)| {
            ExponentialHistogramDataPoint {
                attributes: a,
                start_time_unix_nano: n.0,
                time_unix_nano: n.1,
                count: n.2,
                sum: n.3,
                scale: n.4,
                zero_count: n.5,
                positive,
                negative,
                flags: m.0,
                exemplars: e,
                min: m.1,
                max: m.2,
                zero_threshold: m.3,
            }
        });
    vec(p, 0..3)
}

fn summary_points() -> impl Strategy<Value = Vec<SummaryDataPoint>> {
    let q = any::<(f64, f64)>().prop_map(|(quantile, value)| ValueAtQuantile { quantile, value });
    let p = (attrs(), any::<(u64, u64, u64, f64, u32)>(), vec(q, 0..3)).prop_map(|(a, n, qv)| SummaryDataPoint {
        attributes: a,
        start_time_unix_nano: n.0,
        time_unix_nano: n.1,
        count: n.2,
        sum: n.3,
        quantile_values: qv,
        flags: n.4,
    });
    vec(p, 0..3)
}

fn metric() -> impl Strategy<Value = Metric> {
    let data = of(prop_oneof![
        number_points().prop_map(|data_points| Data::Gauge(Gauge { data_points })),
        (number_points(), any::<i32>(), any::<bool>()).prop_map(|(data_points, t, m)| {
            Data::Sum(Sum { data_points, aggregation_temporality: t, is_monotonic: m })
        }),
        (histogram_points(), any::<i32>())
            .prop_map(|(data_points, t)| { Data::Histogram(Histogram { data_points, aggregation_temporality: t }) }),
        (exp_points(), any::<i32>()).prop_map(|(data_points, t)| {
            Data::ExponentialHistogram(ExponentialHistogram { data_points, aggregation_temporality: t })
        }),
        summary_points().prop_map(|data_points| Data::Summary(Summary { data_points })),
    ]);
    (s(), s(), s(), attrs(), data).prop_map(|(name, description, unit, metadata, data)| Metric {
        name,
        description,
        unit,
        metadata,
        data,
    })
}

pub fn metrics() -> impl Strategy<Value = ExportMetricsServiceRequest> {
    let sm = (scope(), vec(metric(), 0..4), s()).prop_map(|(scope, metrics, schema_url)| ScopeMetrics {
        scope,
        metrics,
        schema_url,
    });
    let rm = (resource(), vec(sm, 0..3), s()).prop_map(|(resource, scope_metrics, schema_url)| ResourceMetrics {
        resource,
        scope_metrics,
        schema_url,
    });
    vec(rm, 0..3).prop_map(|resource_metrics| ExportMetricsServiceRequest { resource_metrics })
}

fn log_record() -> impl Strategy<Value = LogRecord> {
    let a = (any::<(u64, u64, i32, u32, u32)>(), s(), of(any_value()), attrs());
    (a, id(16), id(8), s()).prop_map(|((n, text, body, attributes), tid, sid, ev)| LogRecord {
        time_unix_nano: n.0,
        observed_time_unix_nano: n.1,
        severity_number: n.2,
        severity_text: text,
        body,
        attributes,
        dropped_attributes_count: n.3,
        flags: n.4,
        trace_id: tid,
        span_id: sid,
        event_name: ev,
    })
}

pub fn logs() -> impl Strategy<Value = ExportLogsServiceRequest> {
    let sl = (scope(), vec(log_record(), 0..5), s()).prop_map(|(scope, log_records, schema_url)| ScopeLogs {
        scope,
        log_records,
        schema_url,
    });
    let rl = (resource(), vec(sl, 0..3), s()).prop_map(|(resource, scope_logs, schema_url)| ResourceLogs {
        resource,
        scope_logs,
        schema_url,
    });
    vec(rl, 0..4).prop_map(|resource_logs| ExportLogsServiceRequest { resource_logs })
}
