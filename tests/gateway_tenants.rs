//! `--forward-header`: each export carries exactly one tenant's header and only that tenant's data, however the
//! tenants' requests interleave; requests without the header never share an export with tenant requests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use prost::Message;

/// Span ids tell the sender apart: tenant A from 1_000_000, B from 2_000_000, no header from 3_000_000.
fn owner(span_id: &[u8]) -> &'static str {
    match u64::from_be_bytes(span_id.try_into().unwrap()) / 1_000_000 {
        1 => "A",
        2 => "B",
        3 => "",
        other => panic!("span of nobody: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_export_carries_one_tenant_and_only_its_spans() {
    let backend = MockBackend::start().await;
    // A slow backend: requests pile up behind the exports in flight and are batched together.
    backend.always(Action::Delay(Duration::from_millis(30), Box::new(Action::Ok(None))));
    let mut config = config_for(&[&backend]);
    config.forward_headers = vec![http::HeaderName::from_static("x-scope-orgid")];
    config.export_concurrency = 2;
    let bridge = Bridge::start(config).await;

    const PER_CLIENT: u64 = 5;
    let mut clients = Vec::new();
    for i in 0..50u64 {
        // Interleaved: A, B, A, B, ... and every fifth client sends no header at all.
        let (tenant, base) = match i % 5 {
            4 => (None, 3_000_000),
            n if n % 2 == 0 => (Some("A"), 1_000_000),
            _ => (Some("B"), 2_000_000),
        };
        let url = bridge.url("/v1/traces");
        clients.push(tokio::spawn(async move {
            for r in 0..PER_CLIENT {
                let body = spans(base + i * 100 + r * 10, 3).encode_to_vec();
                let mut headers = vec![("content-type", "application/x-protobuf")];
                if let Some(t) = tenant {
                    // Header names match whatever their case.
                    headers.push((if i % 3 == 0 { "X-Scope-OrgID" } else { "x-scope-orgid" }, t));
                }
                let a = request("POST", &url, &headers, body).await;
                assert_eq!(a.status, 200, "{}", a.text());
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }

    let calls = backend.acked();
    let mut spans_of: HashMap<&str, usize> = HashMap::new();
    let mut batched = 0;
    for call in &calls {
        let tenants: Vec<&str> = call.metadata.get_all("x-scope-orgid").iter().map(|v| v.to_str().unwrap()).collect();
        assert!(tenants.len() <= 1, "one call carried several tenant values: {tenants:?}");
        let tenant = tenants.first().copied().unwrap_or("");
        let request =
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(call.raw.clone())
                .unwrap();
        let ids: Vec<Vec<u8>> = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| s.span_id.clone())
            .collect();
        for id in &ids {
            assert_eq!(owner(id), tenant, "a span of tenant {:?} went out with metadata {tenant:?}", owner(id));
        }
        if request.resource_spans.len() > 1 {
            batched += 1;
        }
        *spans_of.entry(tenant).or_default() += ids.len();
    }
    // 20 clients of A, 20 of B, 10 without the header; every span delivered, in its own tenant's calls.
    assert_eq!(spans_of.get("A"), Some(&(20 * PER_CLIENT as usize * 3)));
    assert_eq!(spans_of.get("B"), Some(&(20 * PER_CLIENT as usize * 3)));
    assert_eq!(spans_of.get(""), Some(&(10 * PER_CLIENT as usize * 3)));
    assert!(batched > 0, "no call batched several requests: the test proved nothing about merging");
    assert!(calls.len() < 50 * PER_CLIENT as usize);
}

#[tokio::test]
async fn a_forwarded_header_that_cannot_be_metadata_is_a_clear_400() {
    let backend = MockBackend::start().await;
    let mut config = config_for(&[&backend]);
    config.forward_headers = vec![http::HeaderName::from_static("x-scope-orgid")];
    let bridge = Bridge::start(config).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::post(bridge.url("/v1/traces"))
        .header("content-type", "application/json")
        .header("x-scope-orgid", http::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap())
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
        .unwrap();
    let response = client.request(req).await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(backend.calls(), 0);
}
