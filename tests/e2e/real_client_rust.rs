//! A real client nobody here wrote: the Rust `opentelemetry-otlp` exporter, over OTLP/HTTP protobuf and JSON,
//! through the bridge; the backend must hold exactly the spans the SDK created.

use std::collections::HashSet;

use crate::common::*;
use opentelemetry::trace::{Span, Tracer, TracerProvider};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;

/// Exports `n` spans with the SDK's batch processor and returns their span ids.
fn export_with_sdk(endpoint: String, protocol: Protocol, n: usize) -> Vec<Vec<u8>> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(endpoint)
        .build()
        .unwrap();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).build();
    let tracer = provider.tracer("real-client-test");
    let mut ids = Vec::new();
    for i in 0..n {
        let mut span = tracer.start(format!("operation {i}"));
        span.set_attribute(opentelemetry::KeyValue::new("i", i as i64));
        span.set_attribute(opentelemetry::KeyValue::new("route", "/api/{id}"));
        ids.push(span.span_context().span_id().to_bytes().to_vec());
        span.end();
    }
    provider.force_flush().unwrap();
    provider.shutdown().unwrap();
    ids
}

async fn exports_exactly_the_sdk_spans(protocol: Protocol) {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let endpoint = bridge.url("/v1/traces");
    // The SDK's batch processor and blocking HTTP client run on their own threads.
    let sent = tokio::task::spawn_blocking(move || export_with_sdk(endpoint, protocol, 300)).await.unwrap();
    let got = backend.span_ids();
    assert_eq!(got.len(), sent.len(), "no span lost or duplicated");
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), sent.into_iter().collect::<HashSet<_>>());
    let names: HashSet<String> = backend
        .traces()
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.name.clone())
        .collect();
    assert!(names.contains("operation 299"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_otlp_exporter_over_http_protobuf_delivers_every_span() {
    exports_exactly_the_sdk_spans(Protocol::HttpBinary).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_otlp_exporter_over_http_json_delivers_every_span() {
    exports_exactly_the_sdk_spans(Protocol::HttpJson).await;
}
