//! Invalid UTF-8 in every string field of every signal: rejected with the exact path.

use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::common::v1::{
    any_value::Value, AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use crate::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use crate::proto::metrics::v1::{
    metric::Data, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use crate::proto::resource::v1::Resource;
use crate::proto::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

use super::super::{scan, ErrorKind};
use super::SIGS;

fn sv(s: &str) -> Option<AnyValue> {
    Some(AnyValue { value: Some(Value::StringValue(s.into())) })
}

fn kv(k: &str, v: Option<AnyValue>) -> KeyValue {
    KeyValue { key: k.into(), value: v, key_strindex: 0 }
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("#01#", sv("#02#"))],
        dropped_attributes_count: 0,
        entity_refs: vec![EntityRef {
            schema_url: "#03#".into(),
            r#type: "#04#".into(),
            id_keys: vec!["a".into(), "#05#".into()],
            description_keys: vec!["#06#".into()],
        }],
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "#08#".into(),
        version: "#09#".into(),
        attributes: vec![kv("#10#", None)],
        dropped_attributes_count: 0,
    })
}

/// Markers inside every signal's resource entry, with the path below `resource_*[0]`.
const COMMON: [(&str, &str); 7] = [
    ("#01#", ".resource.attributes[0].key (field 1)"),
    ("#02#", ".resource.attributes[0].value.string_value (field 1)"),
    ("#03#", ".resource.entity_refs[0].schema_url (field 1)"),
    ("#04#", ".resource.entity_refs[0].type (field 2)"),
    ("#05#", ".resource.entity_refs[0].id_keys[1] (field 3)"),
    ("#06#", ".resource.entity_refs[0].description_keys[0] (field 4)"),
    ("#07#", ".schema_url (field 3)"),
];

/// Replaces the first byte of `marker` in `body` with 0xFF and checks that scan and prost both
/// reject it, the scan with the field's path and the exact offset.
fn check_utf8(sig: usize, body: &[u8], marker: &str, path: &str) {
    let at = body.windows(marker.len()).position(|w| w == marker.as_bytes()).unwrap();
    let mut bad = body.to_vec();
    bad[at] = 0xff;
    let err = scan(SIGS[sig].schema, &bad).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidUtf8, "{marker}");
    assert_eq!(err.to_string(), format!("{path}: invalid UTF-8 at byte offset {at}"));
    assert!((SIGS[sig].flat)(&bad).is_err(), "prost accepted invalid UTF-8 at {path}");
}

#[test]
fn invalid_utf8_in_every_trace_string_field_is_rejected_with_its_path() {
    let nested = AnyValue {
        value: Some(Value::ArrayValue(ArrayValue { values: vec![AnyValue::default(), sv("#15#").unwrap()] })),
    };
    let kvlist = AnyValue { value: Some(Value::KvlistValue(KeyValueList { values: vec![kv("#16#", sv("x"))] })) };
    let sp = Span {
        trace_state: "#12#".into(),
        name: "#13#".into(),
        attributes: vec![kv("#14#", None), kv("a", Some(nested)), kv("b", Some(kvlist))],
        events: vec![span::Event { name: "#17#".into(), attributes: vec![kv("#18#", None)], ..Default::default() }],
        links: vec![span::Link {
            trace_state: "#19#".into(),
            attributes: vec![kv("#20#", None)],
            ..Default::default()
        }],
        status: Some(Status { message: "#21#".into(), code: 1 }),
        ..Default::default()
    };
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            schema_url: "#07#".into(),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans: vec![Span::default(), sp],
                schema_url: "#11#".into(),
            }],
        }],
    };
    let body = req.encode_to_vec();
    let s = "resource_spans[0].scope_spans[0]";
    let sp = format!("{s}.spans[1]");
    let mut cases: Vec<(&str, String)> = COMMON.iter().map(|(m, p)| (*m, format!("resource_spans[0]{p}"))).collect();
    cases.extend([
        ("#08#", format!("{s}.scope.name (field 1)")),
        ("#09#", format!("{s}.scope.version (field 2)")),
        ("#10#", format!("{s}.scope.attributes[0].key (field 1)")),
        ("#11#", format!("{s}.schema_url (field 3)")),
        ("#12#", format!("{sp}.trace_state (field 3)")),
        ("#13#", format!("{sp}.name (field 5)")),
        ("#14#", format!("{sp}.attributes[0].key (field 1)")),
        ("#15#", format!("{sp}.attributes[1].value.array_value.values[1].string_value (field 1)")),
        ("#16#", format!("{sp}.attributes[2].value.kvlist_value.values[0].key (field 1)")),
        ("#17#", format!("{sp}.events[0].name (field 2)")),
        ("#18#", format!("{sp}.events[0].attributes[0].key (field 1)")),
        ("#19#", format!("{sp}.links[0].trace_state (field 3)")),
        ("#20#", format!("{sp}.links[0].attributes[0].key (field 1)")),
        ("#21#", format!("{sp}.status.message (field 2)")),
    ]);
    for (m, p) in &cases {
        check_utf8(0, &body, m, p);
    }
}

#[test]
fn invalid_utf8_in_every_metric_string_field_is_rejected_with_its_path() {
    let attrs = |m: &str| vec![kv(m, None)];
    let np = |m: &str| NumberDataPoint { attributes: attrs(m), ..Default::default() };
    let ex = Exemplar { filtered_attributes: attrs("#30#"), ..Default::default() };
    let metric = |data| Metric {
        name: "#22#".into(),
        description: "#23#".into(),
        unit: "#24#".into(),
        metadata: attrs("#25#"),
        data: Some(data),
    };
    let metrics = vec![
        metric(Data::Gauge(Gauge { data_points: vec![NumberDataPoint { exemplars: vec![ex], ..np("#26#") }] })),
        Metric {
            data: Some(Data::Sum(Sum { data_points: vec![np("a"), np("#27#")], ..Default::default() })),
            ..Default::default()
        },
        Metric {
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint { attributes: attrs("#28#"), ..Default::default() }],
                ..Default::default()
            })),
            ..Default::default()
        },
        Metric {
            data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint { attributes: attrs("#29#"), ..Default::default() }],
                ..Default::default()
            })),
            ..Default::default()
        },
        Metric {
            data: Some(Data::Summary(Summary {
                data_points: vec![SummaryDataPoint { attributes: attrs("#31#"), ..Default::default() }],
            })),
            ..Default::default()
        },
    ];
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            schema_url: "#07#".into(),
            scope_metrics: vec![ScopeMetrics { scope: scope(), metrics, schema_url: String::new() }],
        }],
    };
    let body = req.encode_to_vec();
    let m = "resource_metrics[0].scope_metrics[0].metrics";
    let mut cases: Vec<(&str, String)> =
        COMMON.iter().map(|(mk, p)| (*mk, format!("resource_metrics[0]{p}"))).collect();
    cases.extend([
        ("#08#", "resource_metrics[0].scope_metrics[0].scope.name (field 1)".to_string()),
        ("#22#", format!("{m}[0].name (field 1)")),
        ("#23#", format!("{m}[0].description (field 2)")),
        ("#24#", format!("{m}[0].unit (field 3)")),
        ("#25#", format!("{m}[0].metadata[0].key (field 1)")),
        ("#26#", format!("{m}[0].gauge.data_points[0].attributes[0].key (field 1)")),
        ("#30#", format!("{m}[0].gauge.data_points[0].exemplars[0].filtered_attributes[0].key (field 1)")),
        ("#27#", format!("{m}[1].sum.data_points[1].attributes[0].key (field 1)")),
        ("#28#", format!("{m}[2].histogram.data_points[0].attributes[0].key (field 1)")),
        ("#29#", format!("{m}[3].exponential_histogram.data_points[0].attributes[0].key (field 1)")),
        ("#31#", format!("{m}[4].summary.data_points[0].attributes[0].key (field 1)")),
    ]);
    for (mk, p) in &cases {
        check_utf8(1, &body, mk, p);
    }
}

#[test]
fn invalid_utf8_in_every_log_string_field_is_rejected_with_its_path() {
    let lr = LogRecord {
        severity_text: "#40#".into(),
        body: sv("#41#"),
        attributes: vec![kv("#42#", None)],
        event_name: "#43#".into(),
        ..Default::default()
    };
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            schema_url: "#07#".into(),
            scope_logs: vec![ScopeLogs { scope: scope(), log_records: vec![lr], schema_url: "#44#".into() }],
        }],
    };
    let body = req.encode_to_vec();
    let l = "resource_logs[0].scope_logs[0]";
    let mut cases: Vec<(&str, String)> = COMMON.iter().map(|(mk, p)| (*mk, format!("resource_logs[0]{p}"))).collect();
    cases.extend([
        ("#40#", format!("{l}.log_records[0].severity_text (field 3)")),
        ("#41#", format!("{l}.log_records[0].body.string_value (field 1)")),
        ("#42#", format!("{l}.log_records[0].attributes[0].key (field 1)")),
        ("#43#", format!("{l}.log_records[0].event_name (field 12)")),
        ("#44#", format!("{l}.schema_url (field 3)")),
        ("#10#", format!("{l}.scope.attributes[0].key (field 1)")),
    ]);
    for (mk, p) in &cases {
        check_utf8(2, &body, mk, p);
    }
}
