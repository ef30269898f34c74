//! The official OTLP/JSON examples (opentelemetry-proto `examples/`), vendored in
//! `tests/data/otlp-examples` (v1.10.0, see its README).

use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::common::v1::any_value::Value;
use crate::proto::common::v1::KeyValue;
use crate::proto::metrics::v1::metric::Data;
use crate::proto::metrics::v1::number_data_point::Value as NumberValue;

use super::super::encode;
use super::*;

/// The example's text. The files are in the repository, so a missing one fails the test instead of skipping it.
fn example(name: &str) -> String {
    let path = format!("{}/tests/data/otlp-examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("official example {path}: {e}"))
}

fn value(kv: &KeyValue) -> Option<&Value> {
    kv.value.as_ref().and_then(|v| v.value.as_ref())
}

const T0: u64 = 1_544_712_660_300_000_000;

#[test]
fn trace_example_decodes_with_ids_kind_times_and_attributes() {
    let json = example("trace.json");
    let req: ExportTraceServiceRequest = ok(&json);
    let rs = &req.resource_spans[0];
    let res_attr = &rs.resource.as_ref().unwrap().attributes[0];
    assert_eq!(res_attr.key, "service.name");
    assert_eq!(value(res_attr), Some(&Value::StringValue("my.service".into())));
    let scope = rs.scope_spans[0].scope.as_ref().unwrap();
    assert_eq!((scope.name.as_str(), scope.version.as_str()), ("my.library", "1.0.0"));
    assert_eq!(scope.attributes[0].key, "my.scope.attribute");
    let s = &rs.scope_spans[0].spans[0];
    assert_eq!(s.trace_id, hex("5b8efff798038103d269b633813fc60c"));
    assert_eq!(s.span_id, hex("eee19b7ec3c1b174"));
    assert_eq!(s.parent_span_id, hex("eee19b7ec3c1b173"));
    assert_eq!(s.name, "I'm a server span");
    assert_eq!((s.start_time_unix_nano, s.end_time_unix_nano), (1_544_712_660_000_000_000, 1_544_712_661_000_000_000));
    assert_eq!(s.kind, 2);
    assert_eq!(value(&s.attributes[0]), Some(&Value::StringValue("some value".into())));
    assert_eq!(dec::<ExportTraceServiceRequest>(encode(&req).as_bytes()).unwrap(), req);
}

#[test]
fn metrics_example_decodes_all_four_metric_kinds() {
    let json = example("metrics.json");
    let req: ExportMetricsServiceRequest = ok(&json);
    let m = &req.resource_metrics[0].scope_metrics[0].metrics;
    assert_eq!(m.len(), 4);
    assert_eq!(
        (m[0].name.as_str(), m[0].unit.as_str(), m[0].description.as_str()),
        ("my.counter", "1", "I am a Counter")
    );
    let Some(Data::Sum(sum)) = &m[0].data else { panic!("{:?}", m[0].data) };
    assert_eq!((sum.aggregation_temporality, sum.is_monotonic), (1, true));
    let p = &sum.data_points[0];
    assert_eq!((p.value, p.start_time_unix_nano, p.time_unix_nano), (Some(NumberValue::AsDouble(5.0)), T0, T0));
    assert_eq!(p.attributes[0].key, "my.counter.attr");
    let Some(Data::Gauge(g)) = &m[1].data else { panic!() };
    assert_eq!(g.data_points[0].value, Some(NumberValue::AsDouble(10.0)));
    let Some(Data::Histogram(h)) = &m[2].data else { panic!() };
    let p = &h.data_points[0];
    assert_eq!((h.aggregation_temporality, p.count, p.sum, p.min, p.max), (1, 2, Some(2.0), Some(0.0), Some(2.0)));
    assert_eq!((p.bucket_counts.clone(), p.explicit_bounds.clone()), (vec![1, 1], vec![1.0]));
    let Some(Data::ExponentialHistogram(e)) = &m[3].data else { panic!() };
    let p = &e.data_points[0];
    assert_eq!((p.count, p.sum, p.scale, p.zero_count, p.zero_threshold), (3, Some(10.0), 0, 1, 0.0));
    let pos = p.positive.as_ref().unwrap();
    assert_eq!((pos.offset, pos.bucket_counts.clone()), (1, vec![0, 2]));
    assert_eq!((p.min, p.max), (Some(0.0), Some(5.0)));
    assert_eq!(dec::<ExportMetricsServiceRequest>(encode(&req).as_bytes()).unwrap(), req);
}

#[test]
fn logs_example_decodes_all_six_attribute_types() {
    let json = example("logs.json");
    let req: ExportLogsServiceRequest = ok(&json);
    let l = &req.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!((l.time_unix_nano, l.observed_time_unix_nano), (T0, T0));
    assert_eq!((l.severity_number, l.severity_text.as_str()), (10, "Information"));
    assert_eq!(l.trace_id, hex("5b8efff798038103d269b633813fc60c"));
    assert_eq!(l.span_id, hex("eee19b7ec3c1b174"));
    assert_eq!(l.body.as_ref().unwrap().value, Some(Value::StringValue("Example log record".into())));
    let a = &l.attributes;
    assert_eq!(a.len(), 6);
    assert_eq!(value(&a[0]), Some(&Value::StringValue("some string".into())));
    assert_eq!(value(&a[1]), Some(&Value::BoolValue(true)));
    assert_eq!(value(&a[2]), Some(&Value::IntValue(10)));
    assert_eq!(value(&a[3]), Some(&Value::DoubleValue(637.704)));
    let Some(Value::ArrayValue(arr)) = value(&a[4]) else { panic!() };
    assert_eq!(arr.values[1].value, Some(Value::StringValue("values".into())));
    let Some(Value::KvlistValue(kv)) = value(&a[5]) else { panic!() };
    assert_eq!(kv.values[0].key, "some.map.key");
    assert_eq!(dec::<ExportLogsServiceRequest>(encode(&req).as_bytes()).unwrap(), req);
}

#[test]
fn events_example_decodes_event_name_and_kvlist_body() {
    let json = example("events.json");
    let req: ExportLogsServiceRequest = ok(&json);
    let l = &req.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!((l.event_name.as_str(), l.severity_number), ("browser.page_view", 9));
    assert_eq!(value(&l.attributes[0]), Some(&Value::StringValue("some event attribute".into())));
    let Some(Value::KvlistValue(kv)) = &l.body.as_ref().unwrap().value else { panic!() };
    let keys: Vec<_> = kv.values.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys, ["type", "url", "referrer", "title"]);
    assert_eq!(value(&kv.values[0]), Some(&Value::IntValue(0)));
    assert!(l.trace_id.is_empty());
}
