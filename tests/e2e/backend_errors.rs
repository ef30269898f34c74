//! The backend's answer reaches the client truthfully: gRPC codes mapped to HTTP as the Collector maps them,
//! `Retry-After` from `RetryInfo`, `partial_success` passed on in the client's encoding, fan-out outcomes combined.

use std::time::Duration;

use crate::common::*;
use otlp_bridge::proto::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::Code;

#[tokio::test]
async fn backend_grpc_codes_map_to_http_statuses() {
    // A smoke of the mapping through the real chain, one retryable and one permanent code: the whole table (every
    // code, status and Retry-After) is the unit test receive::error::tests::grpc_codes_map_to_http_as_the_collector_does
    // and ::the_table_declares_status_code_retry_and_header_of_every_variant.
    let cases = [(Code::Unavailable, 503), (Code::ResourceExhausted, 429), (Code::PermissionDenied, 403)];
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
    let mut config =
        otlp_bridge::Config::default().with_backends(vec![otlp_bridge::BackendTarget::url(format!("http://{addr}"))]);
    config.retry.max_elapsed = Duration::from_millis(300);
    config.retry.initial_interval = Duration::from_millis(20);
    let bridge = Bridge::start(config).await;
    let a = post_pb(&bridge, "/v1/traces", &spans(1, 1)).await;
    assert_eq!(a.status, 503);
    assert!(a.header("retry-after").is_some());
    let message = a.status_message().1;
    assert!(!message.contains(&addr.to_string()) && !message.contains("127.0.0.1"), "no internal address: {message}");
    assert!(message.contains("Unavailable") && message.contains("retry later"), "what happened, what to do: {message}");
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

/// Each backend has its own lane (batches and export slots): with one slot each, the fast backend gets all three
/// requests while the slow one is still on the first; every client is answered once both acknowledged its data.
#[tokio::test]
async fn fan_out_a_slow_backend_holds_the_answers_but_not_the_other_backends_exports() {
    let fast = MockBackend::start().await;
    let slow = MockBackend::start().await;
    slow.script([Action::Delay(Duration::from_secs(3), Box::new(Action::Ok(None)))]);
    let mut config = config_for(&[&fast, &slow]);
    config.batch = None; // one export per request
    config.export_concurrency = 1;
    config.export_timeout = Duration::from_secs(10);
    config.retry.max_elapsed = Duration::from_secs(10);
    let bridge = Bridge::start(config).await;
    let url = bridge.url("/v1/traces");
    let clients: Vec<_> = (0..3)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move { post(&url, "application/x-protobuf", spans(10 * i, 1).encode_to_vec()).await })
        })
        .collect();
    fast.wait_calls(3).await;
    assert_eq!(slow.calls(), 1, "the slow backend is still on its first export when the fast one has had all three");
    for client in clients {
        assert_eq!(client.await.unwrap().status, 200);
    }
    assert_eq!((fast.calls(), slow.calls()), (3, 3));
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

#[tokio::test]
async fn impossible_partial_success_counts_are_clamped_to_what_was_sent() {
    for claimed in [1000, -5, i64::MAX] {
        let backend = MockBackend::start().await;
        let bridge = Bridge::with_backend(&backend).await;
        backend.script([Action::Ok(Some((claimed, "bad".into())))]);
        let a = post_pb(&bridge, "/v1/traces", &spans(1, 2)).await;
        assert_eq!(a.status, 200);
        let partial = ExportTraceServiceResponse::decode(a.body).unwrap().partial_success.unwrap();
        assert!((0..=2).contains(&partial.rejected_spans), "{claimed}: {}", partial.rejected_spans);
        assert!(partial.error_message.contains(&format!("claimed {claimed}")), "{}", partial.error_message);
        let failed = bridge.metric("otelcol_exporter_send_failed_spans_total", &[]).await;
        let sent = bridge.metric("otelcol_exporter_sent_spans_total", &[]).await;
        assert!(failed <= 2.0 && failed + sent == 2.0, "{claimed}: failed {failed}, sent {sent}");
    }
}

/// A "proxy" that answers every call (over h2c, as gRPC clients speak) with a plain HTTP `status` and a text body;
/// returns its URL and the count of calls it got.
async fn plain_http_proxy(status: u16) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&calls);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let counted = std::sync::Arc::clone(&counted);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let response = http::Response::builder()
                            .status(status)
                            .header("content-type", "text/plain")
                            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"Bad Gateway from the proxy\n")))
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    (url, calls)
}

#[tokio::test]
async fn a_proxy_answering_plain_http_errors_is_mapped_as_grpc_maps_them_and_retried_when_retryable() {
    for (proxy_status, client_status, retried) in [
        (502, 503, true),
        (503, 503, true),
        (504, 503, true),
        (429, 503, true),
        (401, 401, false),
        (403, 403, false),
        (404, 404, false),
    ] {
        let (url, calls) = plain_http_proxy(proxy_status).await;
        let mut config = otlp_bridge::Config::default().with_backends(vec![otlp_bridge::BackendTarget::url(url)]);
        config.retry.max_elapsed = Duration::from_millis(400);
        config.retry.initial_interval = Duration::from_millis(20);
        let bridge = Bridge::start(config).await;
        let a = post_pb(&bridge, "/v1/traces", &spans(1, 1)).await;
        assert_eq!(a.status, client_status, "proxy {proxy_status}: {}", a.text());
        let attempts = calls.load(std::sync::atomic::Ordering::SeqCst);
        // The bridge's start-up probe may add one call of its own.
        if retried {
            assert!(a.header("retry-after").is_some(), "proxy {proxy_status}");
            assert!(attempts >= 3, "proxy {proxy_status}: retried, {attempts} calls");
        } else {
            assert!(attempts <= 2, "proxy {proxy_status}: not retried, {attempts} calls");
        }
        let message = a.status_message().1;
        assert!(message.contains(&proxy_status.to_string()), "proxy {proxy_status}: {message}");
        assert!(!message.contains("compression flag"), "{message}");
    }
}
