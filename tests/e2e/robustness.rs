//! Bad input never crashes or hangs the bridge: each case gets its status code and the bridge keeps serving.
//!
//! In process: what is checked here is the answer (the library's decision). Attacks whose point is a bound the
//! process keeps (resident memory under bombs, deep JSON, huge bodies; slow clients cut by the timeouts; clients
//! that vanish mid-body) are tested once, against the binary, in `adversarial`.

use crate::common::*;
use otlp_bridge::proto::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

async fn still_serving(bridge: &Bridge) {
    assert_eq!(post_pb(bridge, "/v1/traces", &spans(1, 1)).await.status, 200, "the bridge keeps serving");
}

#[tokio::test]
async fn every_truncation_of_a_protobuf_body_is_answered_without_a_crash() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let body = spans(1, 3).encode_to_vec();
    let mut rejected = 0;
    for cut in (1..body.len()).step_by(7) {
        let a = post(&bridge.url("/v1/traces"), "application/x-protobuf", body[..cut].to_vec()).await;
        assert!(a.status == 400 || a.status == 200, "cut {cut}: {}", a.status);
        if a.status == 400 {
            rejected += 1;
            assert!(!a.status_message().1.is_empty());
        }
    }
    assert!(rejected > 0);
    still_serving(&bridge).await;
}

#[tokio::test]
async fn invalid_utf8_in_any_string_field_is_400_in_protobuf_and_json() {
    use otlp_bridge::proto::collector::logs::v1::ExportLogsServiceRequest;
    use otlp_bridge::proto::collector::metrics::v1::ExportMetricsServiceRequest;
    use otlp_bridge::proto::common::v1::{any_value::Value, AnyValue, ArrayValue, KeyValue, KeyValueList};
    use otlp_bridge::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use otlp_bridge::proto::metrics::v1::{metric, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics};
    use otlp_bridge::proto::trace::v1::span::Event;

    const MARK: &str = "\u{1}BAD\u{1}";
    // An overlong NUL, a lone continuation byte and a byte that never occurs in UTF-8.
    const BAD: [u8; 5] = [0xc0, 0x80, 0x80, 0xff, 0x41];
    let string = |s: &str| Some(AnyValue { value: Some(Value::StringValue(s.into())) });
    let kv = |k: &str, v: &str| KeyValue { key: k.into(), value: string(v), ..Default::default() };

    let trace = |edit: &dyn Fn(&mut ExportTraceServiceRequest)| {
        let mut r = spans(1, 1);
        edit(&mut r);
        ("/v1/traces", patched(&r, MARK, &BAD))
    };
    let log = |edit: &dyn Fn(&mut LogRecord)| {
        let mut record = LogRecord { body: string("fine"), ..Default::default() };
        edit(&mut record);
        let r = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs { log_records: vec![record], ..Default::default() }],
                ..Default::default()
            }],
        };
        ("/v1/logs", patched(&r, MARK, &BAD))
    };
    let metric = |name: &str, unit: &str, attribute: &str| {
        let point = NumberDataPoint { attributes: vec![kv("k", attribute)], ..Default::default() };
        let r = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: name.into(),
                        unit: unit.into(),
                        data: Some(metric::Data::Gauge(Gauge { data_points: vec![point] })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        ("/v1/metrics", patched(&r, MARK, &BAD))
    };
    let cases: Vec<(&str, (&str, Vec<u8>))> = vec![
        ("span name", trace(&|r| r.resource_spans[0].scope_spans[0].spans[0].name = MARK.into())),
        ("span attribute key", trace(&|r| r.resource_spans[0].scope_spans[0].spans[0].attributes[0].key = MARK.into())),
        ("span attribute value", trace(&|r| r.resource_spans[0].scope_spans[0].spans[0].attributes[0] = kv("k", MARK))),
        (
            "resource attribute",
            trace(&|r| r.resource_spans[0].resource.as_mut().unwrap().attributes[0] = kv("k", MARK)),
        ),
        ("scope name", trace(&|r| r.resource_spans[0].scope_spans[0].scope.as_mut().unwrap().name = MARK.into())),
        ("schema url", trace(&|r| r.resource_spans[0].schema_url = MARK.into())),
        (
            "event name",
            trace(&|r| {
                r.resource_spans[0].scope_spans[0].spans[0]
                    .events
                    .push(Event { name: MARK.into(), ..Default::default() })
            }),
        ),
        ("trace state", trace(&|r| r.resource_spans[0].scope_spans[0].spans[0].trace_state = MARK.into())),
        (
            "array element",
            trace(&|r| {
                let array = ArrayValue { values: vec![string(MARK).unwrap()] };
                r.resource_spans[0].scope_spans[0].spans[0].attributes[0].value =
                    Some(AnyValue { value: Some(Value::ArrayValue(array)) });
            }),
        ),
        (
            "kvlist key",
            trace(&|r| {
                let list = KeyValueList { values: vec![kv(MARK, "v")] };
                r.resource_spans[0].scope_spans[0].spans[0].attributes[0].value =
                    Some(AnyValue { value: Some(Value::KvlistValue(list)) });
            }),
        ),
        ("log body", log(&|l| l.body = string(MARK))),
        ("log attribute", log(&|l| l.attributes.push(kv("k", MARK)))),
        ("log severity text", log(&|l| l.severity_text = MARK.into())),
        ("metric name", metric(MARK, "1", "v")),
        ("metric unit", metric("m", MARK, "v")),
        ("data point attribute", metric("m", "1", MARK)),
    ];
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    for (what, (path, body)) in &cases {
        let a = post(&bridge.url(path), "application/x-protobuf", body.clone()).await;
        assert_eq!(a.status, 400, "{what}: {}", a.text());
        let message = a.status_message().1;
        assert!(message.contains("UTF-8"), "{what}: {message}");
        assert!(message.contains("(field "), "{what}: the message names the field: {message}");
        println!("robustness [invalid UTF-8 in the {what}]: {message}");
    }
    // And in OTLP/JSON, where the bytes sit inside a JSON string.
    let mut json = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"XXXXX"}]}]}]}"#.to_vec();
    let at = json.windows(5).position(|w| w == b"XXXXX").unwrap();
    json[at..at + 5].copy_from_slice(&BAD);
    let a = post(&bridge.url("/v1/traces"), "application/json", json).await;
    assert_eq!(a.status, 400, "json: {}", a.text());
    let refused = bridge.metric("otlp_bridge_http_requests_total", &["code=\"400\""]).await;
    assert_eq!(refused, cases.len() as f64 + 1.0, "every refusal counted");
    assert_eq!(backend.calls(), 0, "nothing invalid was forwarded");
    still_serving(&bridge).await;
}

/// `request` encoded, with the single occurrence of `marker` replaced by `bytes` of the same length.
fn patched(request: &impl Message, marker: &str, bytes: &[u8]) -> Vec<u8> {
    assert_eq!(marker.len(), bytes.len());
    let mut body = request.encode_to_vec();
    let at: Vec<usize> =
        body.windows(marker.len()).enumerate().filter(|(_, w)| *w == marker.as_bytes()).map(|(i, _)| i).collect();
    assert_eq!(at.len(), 1, "{marker} occurs once");
    body[at[0]..at[0] + bytes.len()].copy_from_slice(bytes);
    body
}
