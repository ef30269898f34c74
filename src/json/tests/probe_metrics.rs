//! Probe rows about metrics (every data kind, NaN, malformed values deep inside) and logs.

use crate::proto::common::v1::any_value::Value;
use crate::proto::metrics::v1::exemplar::Value as ExemplarValue;
use crate::proto::metrics::v1::metric::Data;
use crate::proto::metrics::v1::number_data_point::Value as NumberValue;

use super::*;

fn gauge_points(points: &str) -> Vec<Option<NumberValue>> {
    match metric(&format!(r#""gauge":{{"dataPoints":[{points}]}}"#)).data {
        Some(Data::Gauge(g)) => g.data_points.into_iter().map(|p| p.value).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn gauge_values_as_int_strings_ints_and_doubles() {
    let v = gauge_points(r#"{"asInt":"7"},{"asInt":8},{"asDouble":1.5},{"asDouble":0},{}"#);
    assert_eq!(
        v,
        vec![
            Some(NumberValue::AsInt(7)),
            Some(NumberValue::AsInt(8)),
            Some(NumberValue::AsDouble(1.5)),
            Some(NumberValue::AsDouble(0.0)),
            None
        ]
    );
}

#[test]
fn nan_doubles_in_metrics_are_kept_not_dropped() {
    let v = gauge_points(r#"{"asDouble":"NaN"}"#);
    assert!(matches!(v[0], Some(NumberValue::AsDouble(d)) if d.is_nan()));
    let m = metric(r#""histogram":{"dataPoints":[{"sum":"NaN","min":"NaN","max":"Infinity"}]}"#);
    let Some(Data::Histogram(h)) = m.data else { panic!() };
    let p = &h.data_points[0];
    assert!(p.sum.unwrap().is_nan() && p.min.unwrap().is_nan());
    assert_eq!(p.max, Some(f64::INFINITY));
}

#[test]
fn sum_with_temporality_as_number_or_name() {
    for t in ["2", r#""AGGREGATION_TEMPORALITY_CUMULATIVE""#] {
        let m = metric(&format!(
            r#""sum":{{"aggregationTemporality":{t},"isMonotonic":true,"dataPoints":[{{"asInt":"3","timeUnixNano":"9"}}]}}"#
        ));
        let Some(Data::Sum(s)) = m.data else { panic!("sum dropped for {t}") };
        assert_eq!((s.aggregation_temporality, s.is_monotonic), (2, true));
        assert_eq!(s.data_points[0].value, Some(NumberValue::AsInt(3)));
        assert_eq!(s.data_points[0].time_unix_nano, 9);
    }
}

#[test]
fn histogram_with_string_and_number_counts_bounds_min_max() {
    let m = metric(
        r#""histogram":{"aggregationTemporality":1,"dataPoints":[{"count":"3","sum":2.5,"bucketCounts":["1",2,null],"explicitBounds":[1,"2.5"],"min":0,"max":2,"flags":1}]}"#,
    );
    let Some(Data::Histogram(h)) = m.data else { panic!() };
    let p = &h.data_points[0];
    assert_eq!((p.count, p.sum, p.min, p.max, p.flags), (3, Some(2.5), Some(0.0), Some(2.0), 1));
    assert_eq!(p.bucket_counts, vec![1, 2, 0]);
    assert_eq!(p.explicit_bounds, vec![1.0, 2.5]);
    let m = metric(r#""histogram":{"dataPoints":[{"count":"1"}]}"#);
    let Some(Data::Histogram(h)) = m.data else { panic!() };
    assert_eq!((h.data_points[0].sum, h.data_points[0].min), (None, None));
}

#[test]
fn exponential_histogram_with_negative_offset_and_scale() {
    let m = metric(
        r#""exponentialHistogram":{"aggregationTemporality":2,"dataPoints":[{"count":"5","scale":-3,"zeroCount":"1","zeroThreshold":0.5,
        "positive":{"offset":-2,"bucketCounts":["1","3"]},"negative":{"offset":"4","bucketCounts":[1]},"min":-1,"max":9}]}"#,
    );
    let Some(Data::ExponentialHistogram(e)) = m.data else { panic!() };
    let p = &e.data_points[0];
    assert_eq!((p.count, p.scale, p.zero_count, p.zero_threshold), (5, -3, 1, 0.5));
    let pos = p.positive.as_ref().unwrap();
    assert_eq!((pos.offset, pos.bucket_counts.clone()), (-2, vec![1, 3]));
    assert_eq!(p.negative.as_ref().unwrap().offset, 4);
    assert_eq!((p.min, p.max), (Some(-1.0), Some(9.0)));
}

#[test]
fn summary_with_nan_quantile_value() {
    let m = metric(
        r#""summary":{"dataPoints":[{"count":"2","sum":3,"quantileValues":[{"quantile":0.5,"value":"NaN"},{"quantile":1,"value":2}]}]}"#,
    );
    let Some(Data::Summary(s)) = m.data else { panic!() };
    let q = &s.data_points[0].quantile_values;
    assert!(q[0].value.is_nan());
    assert_eq!((q[0].quantile, q[1].value), (0.5, 2.0));
}

#[test]
fn exemplars_with_hex_ids_and_values() {
    let m = metric(
        r#""gauge":{"dataPoints":[{"asInt":"1","exemplars":[{"asInt":"4","traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174","timeUnixNano":"7","filteredAttributes":[{"key":"a","value":{"boolValue":true}}]},{"asDouble":"-Infinity"}]}]}"#,
    );
    let Some(Data::Gauge(g)) = m.data else { panic!() };
    let ex = &g.data_points[0].exemplars;
    assert_eq!(ex[0].value, Some(ExemplarValue::AsInt(4)));
    assert_eq!(ex[0].trace_id, hex("5b8efff798038103d269b633813fc60c"));
    assert_eq!((ex[0].span_id.len(), ex[0].time_unix_nano), (8, 7));
    assert_eq!(ex[0].filtered_attributes[0].key, "a");
    assert_eq!(ex[1].value, Some(ExemplarValue::AsDouble(f64::NEG_INFINITY)));
}

#[test]
fn malformed_values_deep_in_metrics_are_errors_not_silent_drops() {
    let g = |p: &str| format!(r#""gauge":{{"dataPoints":[{{"asInt":"1"}},{p}]}}"#);
    let pt = format!("{METRIC_PATH}.gauge.dataPoints[1]");
    assert_err(&metric_err(&g(r#"{"asInt":"abc"}"#)), &format!("{pt}.asInt"), r#"invalid int64 "abc""#);
    assert_err(&metric_err(&g(r#"{"asInt":9223372036854775808}"#)), &format!("{pt}.asInt"), "out of range");
    assert_err(&metric_err(&g(r#"{"timeUnixNano":"abc"}"#)), &format!("{pt}.timeUnixNano"), r#"invalid uint64 "abc""#);
    let e = metric_err(&g(r#"{"exemplars":[{},{"traceId":"zz"}]}"#));
    assert_err(&e, &format!("{pt}.exemplars[1].traceId"), "expected 32 hex characters, got 2");
    let e = metric_err(&g(r#"{"asDouble":"x"}"#));
    assert_err(&e, &format!("{pt}.asDouble"), r#"invalid double "x""#);
    let e = metric_err(r#""histogram":{"dataPoints":[{"bucketCounts":["1","-2"]}]}"#);
    assert_err(&e, &format!("{METRIC_PATH}.histogram.dataPoints[0].bucketCounts[1]"), "invalid uint64");
}

#[test]
fn error_text_names_path_value_and_position() {
    let json = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{},{},{"sum":{"dataPoints":[{},{"timeUnixNano":"-5"}]}}]}]}]}"#;
    let e = err::<ExportMetricsServiceRequest>(json);
    let col = json.find("\"-5\"").unwrap() + 4;
    assert_eq!(
        e.to_string(),
        format!("resourceMetrics[0].scopeMetrics[0].metrics[2].sum.dataPoints[1].timeUnixNano: invalid uint64 \"-5\" (line 1, column {col})")
    );
}

#[test]
fn two_metric_data_kinds_are_rejected() {
    let e = metric_err(r#""gauge":{},"sum":{}"#);
    assert_err(&e, &format!("{METRIC_PATH}.sum"), "Metric has both gauge and sum");
    let e = metric_err(r#""gauge":{"dataPoints":[{"asInt":"1","asDouble":2}]}"#);
    assert_err(
        &e,
        &format!("{METRIC_PATH}.gauge.dataPoints[0].asDouble"),
        "NumberDataPoint has both asInt and asDouble",
    );
    let e = metric_err(r#""gauge":{"dataPoints":[{"exemplars":[{"asDouble":1,"as_int":2}]}]}"#);
    assert_err(&e, &format!("{METRIC_PATH}.gauge.dataPoints[0].exemplars[0].asInt"), "Exemplar has both");
}

#[test]
fn metric_metadata_and_null_data_member() {
    let m = metric(r#""gauge":null,"sum":{"dataPoints":[]},"metadata":[{"key":"k","value":{"stringValue":"v"}}]"#);
    assert!(matches!(m.data, Some(Data::Sum(_))));
    assert_eq!(m.metadata[0].key, "k");
}

#[test]
fn log_records_with_bodies_ids_flags_and_event_name() {
    let l = log(
        r#""body":{"stringValue":"hello"},"flags":1,"observedTimeUnixNano":1544712660300000000,"eventName":"e",
        "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","severityText":"Info","droppedAttributesCount":2"#,
    );
    assert_eq!(l.body.unwrap().value, Some(Value::StringValue("hello".into())));
    assert_eq!((l.flags, l.observed_time_unix_nano), (1, 1_544_712_660_300_000_000));
    assert_eq!((l.event_name.as_str(), l.severity_text.as_str(), l.dropped_attributes_count), ("e", "Info", 2));
    assert_eq!(l.trace_id, hex("5b8efff798038103d269b633813fc60c"));
    assert_eq!(l.span_id, hex("eee19b7ec3c1b174"));
    let l = log(
        r#""body":{"kvlistValue":{"values":[{"key":"a","value":{"arrayValue":{"values":[{"intValue":1},{"doubleValue":2}]}}}]}}"#,
    );
    let Some(Value::KvlistValue(kv)) = l.body.unwrap().value else { panic!() };
    let Some(Value::ArrayValue(a)) = &kv.values[0].value.as_ref().unwrap().value else { panic!() };
    assert_eq!(a.values[1].value, Some(Value::DoubleValue(2.0)));
    assert!(log(r#""body":null"#).body.is_none());
}
