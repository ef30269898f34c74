//! Data arrives intact: every signal, both encodings, every compression; protobuf bytes forwarded as they came.

use crate::common::*;
use otlp_bridge::proto::collector::{
    logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest,
};
use prost::Message;

fn compress(encoding: &str, data: &[u8]) -> Vec<u8> {
    match encoding {
        "identity" => data.to_vec(),
        "gzip" => gzip(data),
        "zstd" => zstd::bulk::compress(data, 3).unwrap(),
        "deflate" => {
            use std::io::Write;
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        _ => unreachable!(),
    }
}

/// The official examples, decoded by our JSON decoder: the expected messages.
fn expected() -> (ExportTraceServiceRequest, ExportMetricsServiceRequest, ExportLogsServiceRequest) {
    (
        otlp_bridge::internals::json::decode(&example("trace.json")).unwrap(),
        otlp_bridge::internals::json::decode(&example("metrics.json")).unwrap(),
        otlp_bridge::internals::json::decode(&example("logs.json")).unwrap(),
    )
}

#[tokio::test]
async fn every_signal_in_every_encoding_and_compression_arrives_intact() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let (traces, metrics, logs) = expected();
    assert_eq!(traces.resource_spans[0].scope_spans[0].spans.len(), 1, "the example decodes");
    let mut sent = 0;
    for encoding in ["identity", "gzip", "zstd", "deflate"] {
        for format in ["json", "protobuf"] {
            for (path, json, pb) in [
                ("/v1/traces", example("trace.json"), traces.encode_to_vec()),
                ("/v1/metrics", example("metrics.json"), metrics.encode_to_vec()),
                ("/v1/logs", example("logs.json"), logs.encode_to_vec()),
            ] {
                let (ct, body) =
                    if format == "json" { ("application/json", json) } else { ("application/x-protobuf", pb) };
                let a = request(
                    "POST",
                    &bridge.url(path),
                    &[("content-type", ct), ("content-encoding", encoding)],
                    compress(encoding, &body),
                )
                .await;
                assert_eq!(a.status, 200, "{path} {format} {encoding}: {}", a.text());
                sent += 1;
            }
        }
    }
    backend.wait_calls(sent).await;
    assert_eq!(backend.traces(), vec![traces; 8]);
    assert_eq!(backend.metrics(), vec![metrics; 8]);
    assert_eq!(backend.logs(), vec![logs; 8]);
}

#[tokio::test]
async fn protobuf_bodies_are_forwarded_byte_for_byte_with_unknown_fields() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let mut body = spans(1, 2).encode_to_vec();
    // A field from a future OTLP version: top-level field 99 (length-delimited) and, inside the first
    // ResourceSpans, field 77 (varint). prost would drop both on a decode/encode round trip.
    body.extend_from_slice(&[0x9a, 0x06, 0x03, b'n', b'e', b'w']);
    let inner = ExportTraceServiceRequest::decode(&body[..]).unwrap().resource_spans[0].encode_to_vec();
    let mut with_inner = inner.clone();
    with_inner.extend_from_slice(&[0xe8, 0x04, 0x2a]);
    let mut full = vec![0x0a];
    prost::encoding::encode_varint(with_inner.len() as u64, &mut full);
    full.extend_from_slice(&with_inner);
    full.extend_from_slice(&[0x9a, 0x06, 0x03, b'n', b'e', b'w']);
    let a = post(&bridge.url("/v1/traces"), "application/x-protobuf", full.clone()).await;
    assert_eq!(a.status, 200, "{}", a.text());
    backend.wait_calls(1).await;
    assert_eq!(backend.received()[0].raw.as_ref(), &full[..], "the backend got the client's exact bytes");
}

#[tokio::test]
async fn backend_headers_are_sent_as_grpc_metadata() {
    let backend = MockBackend::start().await;
    let mut config = config_for(&[&backend]);
    config.backend_headers = vec![("x-tenant".into(), "acme".into()), ("authorization".into(), "Bearer t".into())];
    let bridge = Bridge::start(config).await;
    assert_eq!(post_pb(&bridge, "/v1/traces", &spans(1, 1)).await.status, 200);
    let got = &backend.received()[0].metadata;
    assert_eq!(got["x-tenant"], "acme");
    assert_eq!(got["authorization"], "Bearer t");
}

#[tokio::test]
async fn gzip_compression_to_the_backend_delivers_the_same_data() {
    let backend = MockBackend::start().await;
    let mut config = config_for(&[&backend]);
    config.backend_gzip = true;
    let bridge = Bridge::start(config).await;
    assert_eq!(post_pb(&bridge, "/v1/traces", &spans(1, 50)).await.status, 200);
    assert_eq!(backend.received()[0].metadata["grpc-encoding"], "gzip");
    assert_eq!(backend.traces(), vec![spans(1, 50)]);
}

#[tokio::test]
async fn fan_out_delivers_every_item_to_every_backend() {
    let a = MockBackend::start().await;
    let b = MockBackend::start().await;
    let bridge = Bridge::start(config_for(&[&a, &b])).await;
    assert_eq!(post_pb(&bridge, "/v1/traces", &spans(1, 10)).await.status, 200);
    assert_eq!(a.traces(), vec![spans(1, 10)]);
    assert_eq!(b.traces(), vec![spans(1, 10)]);
}

#[tokio::test]
async fn requests_larger_than_an_export_are_split_and_all_parts_arrive() {
    let backend = MockBackend::start().await;
    let mut config = config_for(&[&backend]);
    config.batch_max_bytes = 4096;
    if let Some(b) = config.batch.as_mut() {
        b.max_bytes = 4096;
    }
    let bridge = Bridge::start(config).await;
    let a = post_pb(&bridge, "/v1/traces", &spans(1, 500)).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let got = backend.received();
    assert!(got.len() > 5, "split into {} exports", got.len());
    assert!(got.iter().all(|r| r.raw.len() <= 4096));
    assert_eq!(backend.span_ids(), (1..501u64).map(|i| i.to_be_bytes().to_vec()).collect::<Vec<_>>());
}

mod roundtrip {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]
        /// Random spans survive OTLP/JSON encode -> bridge -> backend unchanged.
        #[test]
        fn random_spans_survive_json_through_the_bridge(
            names in proptest::collection::vec("\\PC{0,20}", 1..20),
            times in proptest::collection::vec(any::<u64>(), 1..20),
            kind in 0i32..6,
            attr in any::<i64>(),
            double in any::<f64>(),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                use otlp_bridge::proto::common::v1::{any_value::Value, AnyValue, KeyValue};
                let mut request = spans(1, names.len() as u64);
                for (i, span) in request.resource_spans[0].scope_spans[0].spans.iter_mut().enumerate() {
                    span.name = names[i].clone();
                    span.start_time_unix_nano = times[i % times.len()];
                    span.kind = kind;
                    span.attributes.push(KeyValue { key: "i".into(), value: Some(AnyValue { value: Some(Value::IntValue(attr)) }), ..Default::default() });
                    span.attributes.push(KeyValue { key: "d".into(), value: Some(AnyValue { value: Some(Value::DoubleValue(double)) }), ..Default::default() });
                }
                let backend = MockBackend::start().await;
                let bridge = Bridge::with_backend(&backend).await;
                let json = otlp_bridge::internals::json::encode(&request);
                let a = post(&bridge.url("/v1/traces"), "application/json", json).await;
                assert_eq!(a.status, 200, "{}", a.text());
                let got = backend.traces();
                // NaN != NaN: compare the protobuf encodings, which are bit-exact.
                assert_eq!(got.len(), 1);
                assert!(got[0].encode_to_vec() == request.encode_to_vec(), "sent {request:?}\ngot {:?}", got[0]);
            });
        }
    }
}
