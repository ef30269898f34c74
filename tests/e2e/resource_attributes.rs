//! `--resource-attribute` (upsert) and `--resource-attribute-if-missing` (insert) through the real receiver to a real
//! gRPC backend: protobuf keeps every byte outside the `Resource` attributes (unknown fields included), JSON gets the
//! same attributes through the transcoder, and a request without a resource gets one.

use crate::common::*;
use otlp_bridge::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_bridge::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_bridge::proto::common::v1::{any_value::Value, AnyValue, KeyValue};
use otlp_bridge::{AttributeMode, Config, ResourceAttribute};
use prost::Message;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(Value::StringValue(value.into())) }),
        key_strindex: 0,
    }
}

fn attribute(key: &str, value: &str, mode: AttributeMode) -> ResourceAttribute {
    ResourceAttribute { key: key.into(), value: value.into(), mode }
}

/// A bridge that upserts `deployment.environment=production` and inserts `k8s.pod.name=pod-1` and
/// `service.name=fallback`.
fn stamping(backend: &MockBackend) -> Config {
    let mut config = config_for(&[backend]);
    config.resource_attributes = vec![
        attribute("deployment.environment", "production", AttributeMode::Upsert),
        attribute("k8s.pod.name", "pod-1", AttributeMode::Insert),
        attribute("service.name", "fallback", AttributeMode::Insert),
    ];
    config
}

/// A length-delimited record.
fn rec(num: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    prost::encoding::encode_key(num, prost::encoding::WireType::LengthDelimited, &mut b);
    prost::encoding::encode_varint(payload.len() as u64, &mut b);
    b.extend_from_slice(payload);
    b
}

#[tokio::test]
async fn protobuf_keeps_every_byte_but_the_resource_attributes() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::start(stamping(&backend)).await;

    // One envelope written by a newer encoder: unknown fields at the top level, in the envelope and inside
    // Resource; an existing `deployment.environment` (replaced) and `service.name` (kept).
    let scopes: Vec<u8> = {
        let spans = spans(1, 3).encode_to_vec();
        let mut env = Vec::new();
        // The scope_spans records of the helper's only envelope, as they are.
        let envelope = ExportTraceServiceRequest::decode(&spans[..]).unwrap().resource_spans.remove(0);
        for ss in &envelope.scope_spans {
            env.extend(rec(2, &ss.encode_to_vec()));
        }
        env
    };
    let unknown_top = rec(99, b"future top-level field");
    let unknown_env = [0xa0, 0x06, 0x2a]; // field 100, varint 42
    let unknown_res = rec(50, b"future resource field");
    let dropped = [0x10, 0x02]; // dropped_attributes_count = 2
    let resource = [
        rec(1, &kv("service.name", "checkout").encode_to_vec()),
        rec(1, &kv("deployment.environment", "dev").encode_to_vec()),
        unknown_res.clone(),
        dropped.to_vec(),
    ]
    .concat();
    let envelope = [unknown_env.to_vec(), rec(1, &resource), scopes.clone(), rec(3, b"https://schema")].concat();
    let body = [unknown_top.clone(), rec(1, &envelope)].concat();

    let a = post(&bridge.url("/v1/traces"), "application/x-protobuf", body).await;
    assert_eq!(a.status, 200, "{}", a.text());

    // What the backend must get: the same records, the resource without the replaced attribute and with the two
    // that apply appended (`service.name` is present, so not inserted).
    let stamped = [
        rec(1, &kv("service.name", "checkout").encode_to_vec()),
        unknown_res,
        dropped.to_vec(),
        rec(1, &kv("deployment.environment", "production").encode_to_vec()),
        rec(1, &kv("k8s.pod.name", "pod-1").encode_to_vec()),
    ]
    .concat();
    let envelope = [unknown_env.to_vec(), rec(1, &stamped), scopes, rec(3, b"https://schema")].concat();
    let want = [unknown_top, rec(1, &envelope)].concat();
    let got: Vec<Vec<u8>> = backend.acked().iter().map(|r| r.raw.to_vec()).collect();
    assert!(got == vec![want], "the backend got other bytes than the stamped request");
    assert_eq!(bridge.metric("otelcol_receiver_accepted_spans_total", &[]).await, 3.0);
    bridge.shutdown().await;
}

#[tokio::test]
async fn json_requests_get_the_same_attributes_and_a_missing_resource_is_created() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::start(stamping(&backend)).await;
    let json = r#"{"resourceLogs":[
        {"resource":{"attributes":[{"key":"deployment.environment","value":{"stringValue":"dev"}},
                                   {"key":"k8s.pod.name","value":{"stringValue":"from-the-app"}}],
                     "droppedAttributesCount":1},
         "scopeLogs":[{"logRecords":[{"body":{"stringValue":"one"}}]}]},
        {"scopeLogs":[{"logRecords":[{"body":{"stringValue":"two"}},{"body":{"stringValue":"three"}}]}]}]}"#;
    let a = post(&bridge.url("/v1/logs"), "application/json", json).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let got: Vec<ExportLogsServiceRequest> =
        backend.acked().iter().map(|r| ExportLogsServiceRequest::decode(r.raw.clone()).unwrap()).collect();
    assert_eq!(got.len(), 1, "one request, one export");
    let resources: Vec<_> = got[0].resource_logs.iter().map(|r| r.resource.clone().unwrap()).collect();
    assert_eq!(
        resources[0].attributes,
        vec![
            kv("k8s.pod.name", "from-the-app"),
            kv("deployment.environment", "production"),
            kv("service.name", "fallback")
        ]
    );
    assert_eq!(resources[0].dropped_attributes_count, 1);
    assert_eq!(
        resources[1].attributes,
        vec![kv("deployment.environment", "production"), kv("k8s.pod.name", "pod-1"), kv("service.name", "fallback")]
    );
    let records = got[0].resource_logs.iter().flat_map(|r| &r.scope_logs).flat_map(|s| &s.log_records).count();
    assert_eq!(records, 3, "every record delivered");
    assert_eq!(bridge.metric("otelcol_receiver_accepted_log_records_total", &["json"]).await, 3.0);
    bridge.shutdown().await;
}

#[tokio::test]
async fn the_binary_refuses_a_malformed_variable_naming_it() {
    let out = std::process::Command::new(process::bridge_binary())
        .env_clear()
        .env("OTLP_BRIDGE_RESOURCE_ATTRIBUTES", "deployment.environment=prod,oops")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"oops\"") && stderr.contains("OTLP_BRIDGE_RESOURCE_ATTRIBUTES"), "{stderr}");
}
