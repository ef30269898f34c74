//! The OTLP/HTTP rules of the OTLP specification (and the Collector's receiver where it is silent): routes, methods, content types, encodings, limits, response format.

use crate::common::*;
use otlp_bridge::proto::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

#[tokio::test]
async fn unknown_paths_are_404_with_a_status_body() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let a = post(&bridge.url("/v1/spans"), "application/json", "{}").await;
    assert_eq!(a.status, 404);
    let (code, message) = a.status_message();
    assert_eq!(code, tonic::Code::NotFound as i32);
    assert!(
        message.ends_with("accepts POST /v1/traces, /v1/metrics, /v1/logs and /v1development/profiles"),
        "{message}"
    );
    assert_eq!(post(&bridge.url("/v1/traces/"), "application/json", "{}").await.status, 404);
}

#[tokio::test]
async fn other_methods_are_405_with_allow() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let a = request(method, &bridge.url("/v1/logs"), &[], "").await;
        assert_eq!(a.status, 405, "{method}");
        assert!(a.header("allow").unwrap().contains("POST"));
    }
}

#[tokio::test]
async fn unsupported_content_types_are_415_before_the_body_is_read() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    for ct in ["text/plain", "application/xml", "application/grpc-web"] {
        let a = post(&bridge.url("/v1/traces"), ct, "{}").await;
        assert_eq!(a.status, 415, "{ct}");
        // The message shows the header to add, as curl takes it.
        let message = a.status_message().1;
        assert!(message.contains("-H 'Content-Type: application/x-protobuf'"), "{message}");
        assert!(message.contains("-H 'Content-Type: application/json'"), "{message}");
    }
    let a = request("POST", &bridge.url("/v1/traces"), &[], "{}").await;
    assert_eq!(a.status, 415, "missing Content-Type");
    assert_eq!(backend.calls(), 0);
}

#[tokio::test]
async fn unsupported_content_encodings_are_415() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let a = request(
        "POST",
        &bridge.url("/v1/traces"),
        &[("content-type", "application/json"), ("content-encoding", "br")],
        "{}",
    )
    .await;
    assert_eq!(a.status, 415);
    assert!(a.status_message().1.contains("br"));
}

#[tokio::test]
async fn content_type_parameters_are_tolerated_and_the_response_mirrors_the_media_type() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let a = post(&bridge.url("/v1/traces"), "application/json; charset=utf-8", example("trace.json")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.text(), "{}");
    let a = post_pb(&bridge, "/v1/traces", &spans(1, 3)).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(ExportTraceServiceResponse::decode(a.body).unwrap(), ExportTraceServiceResponse::default());
}

#[tokio::test]
async fn empty_requests_succeed_without_a_backend_call() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    for (path, body) in [("/v1/traces", "{}"), ("/v1/metrics", "{\"resourceMetrics\":[]}"), ("/v1/logs", "{}")] {
        let a = post(&bridge.url(path), "application/json", body).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text());
    }
    let a = post(&bridge.url("/v1/logs"), "application/x-protobuf", Vec::new()).await;
    assert_eq!(a.status, 200);
    assert_eq!(backend.calls(), 0);
}

#[tokio::test]
async fn errors_come_as_google_rpc_status_in_the_request_encoding() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let a = post(&bridge.url("/v1/traces"), "application/x-protobuf", vec![0x0a, 0xff]).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.header("content-type"), Some("application/x-protobuf"));
    let (code, message) = a.status_message();
    assert_eq!(code, tonic::Code::InvalidArgument as i32);
    assert!(!message.is_empty());

    let a = post(
        &bridge.url("/v1/traces"),
        "application/json",
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"spanId\":\"xyz\"}]}]}]}",
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let (_, message) = a.status_message();
    assert!(message.contains("resourceSpans[0].scopeSpans[0].spans[0].spanId"), "the field path: {message}");
    assert!(message.contains("column"), "the position: {message}");
}

#[tokio::test]
async fn bodies_over_the_wire_limit_are_413() {
    let backend = MockBackend::start().await;
    let mut config = config_for(&[&backend]);
    config.max_body_bytes = 10_000;
    let bridge = Bridge::start(config).await;
    let a = post(&bridge.url("/v1/traces"), "application/x-protobuf", vec![0u8; 10_001]).await;
    assert_eq!(a.status, 413);
    assert!(a.status_message().1.contains("10000"));
    let ok = post_pb(&bridge, "/v1/traces", &spans(1, 2)).await;
    assert_eq!(ok.status, 200, "the bridge keeps serving");
}

#[tokio::test]
async fn a_gzip_bomb_is_413_on_the_inflated_limit() {
    let backend = MockBackend::start().await;
    let mut config = config_for(&[&backend]);
    config.max_body_bytes = 1 << 20;
    let bridge = Bridge::start(config).await;
    let bomb = gzip(&vec![b' '; 64 << 20]);
    assert!(bomb.len() < 200_000);
    let a = request(
        "POST",
        &bridge.url("/v1/traces"),
        &[("content-type", "application/json"), ("content-encoding", "gzip")],
        bomb,
    )
    .await;
    assert_eq!(a.status, 413);
    assert!(a.status_message().1.contains("decompression"), "{}", a.text());
}

#[tokio::test]
async fn corrupt_gzip_is_400() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let a = request(
        "POST",
        &bridge.url("/v1/traces"),
        &[("content-type", "application/json"), ("content-encoding", "gzip")],
        "not gzip",
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(a.status_message().1.contains("gzip"));
}

#[tokio::test]
async fn cors_echoes_allowed_origins_with_credentials_and_refuses_others() {
    let backend = MockBackend::start().await;
    let mut config = config_for(&[&backend]);
    config.cors_allowed_origins = vec!["https://*.example.com".into(), "http://localhost:3000".into()];
    let bridge = Bridge::start(config).await;
    let preflight = |origin: &'static str| {
        let url = bridge.url("/v1/traces");
        async move {
            request(
                "OPTIONS",
                &url,
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "content-type"),
                ],
                "",
            )
            .await
        }
    };
    let a = preflight("https://app.example.com").await;
    assert!(a.status < 300, "{}", a.status);
    assert_eq!(a.header("access-control-allow-origin"), Some("https://app.example.com"));
    assert!(a.header("access-control-allow-methods").unwrap().contains("POST"));
    // Beacons are sent with credentials: without this header Chromium drops the POST after the preflight.
    assert_eq!(a.header("access-control-allow-credentials"), Some("true"));
    let a = preflight("https://evil.net").await;
    assert!(a.header("access-control-allow-origin").is_none());

    let a = request(
        "POST",
        &bridge.url("/v1/traces"),
        &[("origin", "http://localhost:3000"), ("content-type", "application/json")],
        example("trace.json"),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("access-control-allow-origin"), Some("http://localhost:3000"));
    assert_eq!(a.header("access-control-allow-credentials"), Some("true"));
}

#[tokio::test]
async fn cors_wildcard_is_answered_as_a_wildcard_and_never_with_credentials() {
    let backend = MockBackend::start().await;
    let mut config = config_for(&[&backend]);
    config.cors_allowed_origins = vec!["*".into()];
    let bridge = Bridge::start(config).await;
    let headers = [("origin", "https://anything.example"), ("access-control-request-method", "POST")];
    let a = request("OPTIONS", &bridge.url("/v1/traces"), &headers, "").await;
    assert!(a.status < 300, "{}", a.status);
    assert_eq!(a.header("access-control-allow-origin"), Some("*"));
    assert!(a.header("access-control-allow-credentials").is_none());
    let headers = [("origin", "https://anything.example"), ("content-type", "application/json")];
    let a = request("POST", &bridge.url("/v1/traces"), &headers, example("trace.json")).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("access-control-allow-origin"), Some("*"));
    assert!(a.header("access-control-allow-credentials").is_none());
}

#[tokio::test]
async fn without_cors_configuration_no_cors_headers_are_sent() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let a = request(
        "POST",
        &bridge.url("/v1/traces"),
        &[("origin", "https://app.example.com"), ("content-type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!(a.status, 200);
    assert!(a.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn h2c_with_prior_knowledge_is_served_on_the_same_port() {
    use http_body_util::{BodyExt, Full};
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<bytes::Bytes>>();
    let request = http::Request::post(bridge.url("/v1/traces"))
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(example("trace.json"))))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    #[allow(clippy::disallowed_methods)] // a two-byte body
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"{}");
    assert_eq!(backend.traces().len(), 1);
}

type Compress = fn(&[u8]) -> Vec<u8>;

/// Every framed compression a client may send, with the `Content-Encoding` that names it.
fn compressed_encodings() -> [(&'static str, Compress); 3] {
    [("deflate", zlib), ("gzip", gzip), ("zstd", |d: &[u8]| zstd::bulk::compress(d, 3).unwrap())]
}

fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn every_member_of_a_compressed_body_is_forwarded() {
    // Two protobuf requests concatenated are one valid request holding both: each half in its own member/frame.
    let (first, second) = (spans(1, 3).encode_to_vec(), spans(4, 2).encode_to_vec());
    let encodings = compressed_encodings();
    for (encoding, compress) in encodings {
        let backend = MockBackend::start().await;
        let bridge = Bridge::with_backend(&backend).await;
        let mut body = compress(&first);
        body.extend(compress(&second));
        let headers = [("content-type", "application/x-protobuf"), ("content-encoding", encoding)];
        let a = request("POST", &bridge.url("/v1/traces"), &headers, body).await;
        assert_eq!(a.status, 200, "{encoding}: {}", a.text());
        let mut ids = backend.span_ids();
        ids.sort();
        let expected: Vec<Vec<u8>> = (1..=5u64).map(|i| i.to_be_bytes().to_vec()).collect();
        assert_eq!(ids, expected, "{encoding}: all five spans of both members reach the backend");
    }
}

#[tokio::test]
async fn bytes_after_the_compressed_data_are_a_400_and_nothing_is_forwarded() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let payload = spans(1, 3).encode_to_vec();
    let encodings = compressed_encodings();
    for (encoding, compress) in encodings {
        for content_type in ["application/x-protobuf", "application/json"] {
            let mut body = compress(&payload);
            body.extend_from_slice(b"trailing garbage");
            let headers = [("content-type", content_type), ("content-encoding", encoding)];
            let a = request("POST", &bridge.url("/v1/traces"), &headers, body).await;
            assert_eq!(a.status, 400, "{encoding} {content_type}: {}", a.text());
            let message = a.status_message().1;
            assert!(message.contains(encoding) || message.contains("zlib"), "{encoding}: {message}");
        }
    }
    let mut body = zlib(&payload);
    body.extend_from_slice(b"trailing garbage");
    let a = request(
        "POST",
        &bridge.url("/v1/traces"),
        &[("content-type", "application/x-protobuf"), ("content-encoding", "deflate")],
        body,
    )
    .await;
    assert!(a.status_message().1.contains("16 trailing byte(s)"), "{}", a.status_message().1);
    assert_eq!(backend.calls(), 0, "nothing of a refused body reaches the backend");
}
