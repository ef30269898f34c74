//! The backend's answer reaches the client truthfully: gRPC codes mapped to HTTP as the Collector maps them,
//! `Retry-After` from `RetryInfo`, `partial_success` passed on in the client's encoding, fan-out outcomes combined.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::time::Duration;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::Code;

#[tokio::test]
async fn backend_grpc_codes_map_to_http_statuses() {
    let cases = [
        (Code::Cancelled, 503),
        (Code::DeadlineExceeded, 503),
        (Code::Aborted, 503),
        (Code::OutOfRange, 503),
        (Code::Unavailable, 503),
        (Code::DataLoss, 503),
        (Code::ResourceExhausted, 429),
        (Code::InvalidArgument, 400),
        (Code::Unauthenticated, 401),
        (Code::PermissionDenied, 403),
        (Code::Unimplemented, 404),
        (Code::Internal, 500),
        (Code::Unknown, 500),
        (Code::FailedPrecondition, 500),
    ];
    let backend = MockBackend::start().await;
    let mut config = config_for(&[&backend]);
    config.retry.max_elapsed = Duration::ZERO; // one attempt: the mapping, not the retry, is under test
    let bridge = Bridge::start(config).await;
    for (code, http) in cases {
        backend.script([Action::fail(code, "scripted failure")]);
        let a = post_pb(&bridge, "/v1/traces", &spans(1, 1)).await;
        assert_eq!(a.status, http, "{code:?}: {}", a.status_message().1);
        let (body_code, message) = a.status_message();
        assert_eq!(body_code, code as i32, "the body carries the backend's code");
        assert!(message.contains("scripted failure"), "{message}");
        if http == 429 || http == 503 {
            assert!(a.header("retry-after").is_some(), "{code:?} is retryable: Retry-After");
        } else {
            assert!(a.header("retry-after").is_none(), "{code:?}");
        }
    }
}

#[tokio::test]
async fn retry_info_becomes_retry_after() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    backend.script([Action::fail_with_retry_info(Code::Unavailable, Duration::from_secs(17))]);
    let a = post(&bridge.url("/v1/traces"), "application/json", example("trace.json")).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.header("retry-after"), Some("17"));
}

#[tokio::test]
async fn partial_success_is_passed_on_in_protobuf() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    backend.script([Action::Ok(Some((2, "two spans had no name".into())))]);
    let a = post_pb(&bridge, "/v1/traces", &spans(1, 5)).await;
    assert_eq!(a.status, 200);
    let partial = ExportTraceServiceResponse::decode(a.body).unwrap().partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 2);
    assert_eq!(partial.error_message, "two spans had no name");
}

#[tokio::test]
async fn partial_success_is_passed_on_in_json() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    backend.script([Action::Ok(Some((1, "dropped one".into())))]);
    let a = post(&bridge.url("/v1/logs"), "application/json", example("logs.json")).await;
    assert_eq!(a.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(v["partialSuccess"]["rejectedLogRecords"], "1");
    assert_eq!(v["partialSuccess"]["errorMessage"], "dropped one");
}

#[tokio::test]
async fn an_unreachable_backend_is_503_with_retry_after() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let mut config = otlp_bridge::Config::default()
        .with_backends(vec![otlp_bridge::config::BackendTarget::Grpc(format!("http://{addr}"))]);
    config.retry.max_elapsed = Duration::from_millis(300);
    config.retry.initial_interval = Duration::from_millis(20);
    let bridge = Bridge::start(config).await;
    let a = post_pb(&bridge, "/v1/traces", &spans(1, 1)).await;
    assert_eq!(a.status, 503);
    assert!(a.header("retry-after").is_some());
    assert!(a.status_message().1.contains(&addr.to_string()), "names the backend: {}", a.status_message().1);
}

#[tokio::test]
async fn fan_out_answers_an_error_when_any_backend_fails() {
    let good = MockBackend::start().await;
    let bad = MockBackend::start().await;
    bad.always(Action::fail(Code::PermissionDenied, "no"));
    let bridge = Bridge::start(config_for(&[&good, &bad])).await;
    let a = post_pb(&bridge, "/v1/traces", &spans(1, 3)).await;
    assert_eq!(a.status, 403);
    assert_eq!(good.traces(), vec![spans(1, 3)], "the healthy backend still got the data");
}

#[tokio::test]
async fn fan_out_prefers_the_retryable_failure_so_the_client_retries() {
    let permanent = MockBackend::start().await;
    let transient = MockBackend::start().await;
    permanent.always(Action::fail(Code::InvalidArgument, "bad"));
    transient.always(Action::fail(Code::Unavailable, "later"));
    let mut config = config_for(&[&permanent, &transient]);
    config.retry.max_elapsed = Duration::ZERO;
    let bridge = Bridge::start(config).await;
    let a = post_pb(&bridge, "/v1/traces", &spans(1, 1)).await;
    assert_eq!(a.status, 503);
}
