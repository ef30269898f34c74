//! The admin server: Prometheus metrics that count what happened, health, and readiness that follows the backend.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use common::*;

#[tokio::test]
async fn metrics_count_accepted_sent_and_answered() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    assert_eq!(post_pb(&bridge, "/v1/traces", &spans(1, 7)).await.status, 200);
    assert_eq!(post(&bridge.url("/v1/logs"), "application/json", example("logs.json")).await.status, 200);
    assert_eq!(post(&bridge.url("/v1/metrics"), "text/plain", "x").await.status, 415);
    let m = bridge.metrics().await;
    assert_eq!(sum_metric(&m, "otelcol_receiver_accepted_spans", &["encoding=\"protobuf\""]), 7.0);
    assert_eq!(sum_metric(&m, "otelcol_receiver_accepted_log_records", &["encoding=\"json\""]), 1.0);
    assert_eq!(sum_metric(&m, "otelcol_exporter_sent_spans", &[&format!("backend=\"{}\"", backend.url())]), 7.0);
    assert_eq!(sum_metric(&m, "otlp_bridge_http_requests_total", &["code=\"200\""]), 2.0);
    assert_eq!(sum_metric(&m, "otlp_bridge_http_requests_total", &["signal=\"metrics\"", "code=\"415\""]), 1.0);
    assert!(m.contains("otlp_bridge_http_request_duration_seconds_bucket"));
    assert!(m.contains("otlp_bridge_memory_limit_bytes"));
}

#[tokio::test]
async fn failed_exports_are_counted_as_send_failed_and_refused() {
    let backend = MockBackend::start().await;
    backend.always(Action::fail(tonic::Code::PermissionDenied, "no"));
    let bridge = Bridge::with_backend(&backend).await;
    assert_eq!(post_pb(&bridge, "/v1/traces", &spans(1, 3)).await.status, 403);
    let m = bridge.metrics().await;
    assert_eq!(sum_metric(&m, "otelcol_exporter_send_failed_spans", &[]), 3.0);
    assert_eq!(sum_metric(&m, "otelcol_receiver_refused_spans", &[]), 3.0);
}

#[tokio::test]
async fn health_is_ok_and_ready_follows_the_backend() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = otlp_bridge::Config::default()
        .with_backends(vec![otlp_bridge::config::BackendTarget::Grpc(format!("http://{addr}"))]);
    let bridge = Bridge::start(config).await;
    assert_eq!(get(&format!("http://{}/health", bridge.admin)).await.status, 200);
    let not_ready = get(&format!("http://{}/ready", bridge.admin)).await;
    assert_eq!(not_ready.status, 503);
    assert!(not_ready.text().contains(&addr.to_string()));
    let _backend = MockBackend::start_on(tokio::net::TcpListener::bind(addr).await.unwrap()).await;
    assert_eq!(get(&format!("http://{}/ready", bridge.admin)).await.status, 200);
}
