//! `--forward-header`: each export carries exactly one tenant's header and only that tenant's data, however the
//! tenants' requests interleave; requests without the header never share an export with tenant requests.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use crate::common::*;
use otlp_bridge::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_bridge::Config;
use otlp_bridge::QueueConfig;
use prost::Message;
use tonic::Code;

/// Span ids tell the sender apart: `tenant number * 1_000_000 + ...`; 1 is tenant "A", 2 is "B", 3 sends no header,
/// and 10 and above are tenant "t<number>".
fn owner(span_id: u64) -> String {
    match span_id / 1_000_000 {
        1 => "A".into(),
        2 => "B".into(),
        3 => String::new(),
        n if n >= 10 => format!("t{n}"),
        other => panic!("span of nobody: {other}"),
    }
}

/// Checks every call the backend received, acknowledged or not: at most one tenant value in its metadata, and only
/// that tenant's spans in its body. Returns the span ids of the acknowledged calls by tenant ("" for no header),
/// and how many acknowledged calls merged several requests.
fn check_tenants(backend: &MockBackend) -> (HashMap<String, Vec<u64>>, usize) {
    let mut delivered: HashMap<String, Vec<u64>> = HashMap::new();
    let mut batched = 0;
    for call in backend.received() {
        let tenants: Vec<&str> = call.metadata.get_all("x-scope-orgid").iter().map(|v| v.to_str().unwrap()).collect();
        assert!(tenants.len() <= 1, "one call carried several tenant values: {tenants:?}");
        let tenant = tenants.first().copied().unwrap_or("");
        let request = ExportTraceServiceRequest::decode(call.raw.clone()).unwrap();
        let ids: Vec<u64> = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| u64::from_be_bytes(s.span_id.as_slice().try_into().unwrap()))
            .collect();
        assert!(!ids.is_empty(), "an export without spans");
        for id in &ids {
            assert_eq!(owner(*id), tenant, "a span of tenant {:?} went out with metadata {tenant:?}", owner(*id));
        }
        if call.acked {
            if request.resource_spans.len() > 1 {
                batched += 1;
            }
            delivered.entry(tenant.to_string()).or_default().extend(ids);
        }
    }
    (delivered, batched)
}

/// Distinct span ids delivered, by tenant.
fn distinct(delivered: &HashMap<String, Vec<u64>>) -> HashMap<String, usize> {
    delivered.iter().map(|(t, ids)| (t.clone(), ids.iter().collect::<HashSet<_>>().len())).collect()
}

/// Posts from `clients` concurrent clients, `per_client` requests of `n` (at most 100) spans each, interleaved:
/// tenant A, B, A, B, ... and every fifth client without the header, in mixed letter case. Every request must be
/// answered 200. Expects, by tenant, `per_client * n` times 2/5, 2/5 and 1/5 of `clients`.
async fn post_interleaved(bridge: &Bridge, clients: u64, per_client: u64, n: u64) -> HashMap<String, usize> {
    let mut tasks = Vec::new();
    let mut expected: HashMap<String, usize> = HashMap::new();
    for i in 0..clients {
        let (tenant, base) = match i % 5 {
            4 => (None, 3_000_000),
            k if k % 2 == 0 => (Some("A"), 1_000_000),
            _ => (Some("B"), 2_000_000),
        };
        *expected.entry(tenant.unwrap_or("").to_string()).or_default() += (per_client * n) as usize;
        let url = bridge.url("/v1/traces");
        tasks.push(tokio::spawn(async move {
            for r in 0..per_client {
                let body = spans(base + i * 1000 + r * 100, n).encode_to_vec();
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
    for t in tasks {
        t.await.unwrap();
    }
    expected
}

/// Polls until the backend has acknowledged `expected` distinct spans of each tenant, checking every call.
async fn wait_delivered(backend: &MockBackend, expected: &HashMap<String, usize>) -> usize {
    eventually(&format!("delivered {expected:?}"), Duration::from_secs(30), || async {
        let (delivered, batched) = check_tenants(backend);
        let seen = distinct(&delivered);
        if &seen == expected {
            Ok(batched)
        } else {
            Err(seen)
        }
    })
    .await
}

fn tenant_config(backend: &MockBackend) -> Config {
    let mut config = config_for(&[backend]);
    config.forward_headers = vec![http::HeaderName::from_static("x-scope-orgid")];
    config
}

fn queued(backend: &MockBackend, dir: &Path) -> Config {
    let mut config = tenant_config(backend);
    config.queue =
        Some(QueueConfig { dir: dir.to_path_buf(), max_bytes: 64 << 20, max_age: Duration::from_secs(3600) });
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_export_carries_one_tenant_and_only_its_spans() {
    let backend = MockBackend::start().await;
    // A slow backend: requests pile up behind the exports in flight and are batched together.
    backend.always(Action::Delay(Duration::from_millis(30), Box::new(Action::Ok(None))));
    let mut config = tenant_config(&backend);
    config.export_concurrency = 2;
    let bridge = Bridge::start(config).await;

    // 20 clients of A, 20 of B, 10 without the header, 5 requests of 3 spans each.
    let expected = post_interleaved(&bridge, 50, 5, 3).await;
    let (delivered, batched) = check_tenants(&backend);
    // Direct mode answered 200 after the backend acknowledged: everything is there, exactly once.
    let spans_of: HashMap<String, usize> = delivered.iter().map(|(t, ids)| (t.clone(), ids.len())).collect();
    assert_eq!(spans_of, expected);
    assert_eq!(expected.get("A"), Some(&300));
    assert!(batched > 0, "no call batched several requests: the test proved nothing about merging");
    assert!(backend.acked().len() < 250);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_exports_after_an_outage_carry_one_tenant_each_and_only_its_spans() {
    let dir = tempfile::tempdir().unwrap();
    let backend = MockBackend::start().await;
    backend.always(Action::fail(Code::Unavailable, "down"));
    let bridge = Bridge::start(queued(&backend, dir.path())).await;

    let expected = post_interleaved(&bridge, 50, 5, 3).await;
    assert!(backend.acked().is_empty(), "nothing delivered while the backend is down");
    backend.always(Action::Ok(None));
    let batched = wait_delivered(&backend, &expected).await;
    // The backlog is read back in large chunks: each tenant's records merge, and never with another's.
    assert!(batched > 0, "no call batched several records: the test proved nothing about merging");
    assert!(backend.acked().len() < 250);
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_bridge_replays_queued_records_with_their_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let backend = MockBackend::start().await;
    backend.always(Action::fail(Code::Unavailable, "down"));
    let bridge = Bridge::start(queued(&backend, dir.path())).await;
    let expected = post_interleaved(&bridge, 50, 2, 3).await;
    bridge.shutdown().await;
    assert!(backend.acked().is_empty());

    // The headers come back from disk, not from the process that received the requests.
    backend.always(Action::Ok(None));
    let bridge = Bridge::start(queued(&backend, dir.path())).await;
    wait_delivered(&backend, &expected).await;
    assert!(bridge.metric("otlp_bridge_queue_replayed_records_total", &[]).await >= 100.0);
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_many_tenants_beyond_the_readers_memory_share_is_delivered() {
    // 100 tenants whose batches never fill (2 records each), a backlog of about 2 MB, and a reader that may hold
    // 512 KiB: it must send what it holds rather than wait for a batch to fill.
    let dir = tempfile::tempdir().unwrap();
    let backend = MockBackend::start().await;
    backend.always(Action::fail(Code::Unavailable, "down"));
    let mut config = queued(&backend, dir.path());
    config.memory_limit_bytes = 1 << 20;
    let bridge = Bridge::start(config).await;
    let mut expected = HashMap::new();
    for r in 0..2u64 {
        for tenant in 10..110u64 {
            let body = spans(tenant * 1_000_000 + r * 100, 100).encode_to_vec();
            let name = format!("t{tenant}");
            let headers = [("content-type", "application/x-protobuf"), ("x-scope-orgid", name.as_str())];
            let a = request("POST", &bridge.url("/v1/traces"), &headers, body).await;
            assert_eq!(a.status, 200, "{}", a.text());
            *expected.entry(name).or_insert(0) += 100;
        }
    }
    backend.always(Action::Ok(None));
    wait_delivered(&backend, &expected).await;
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_past_the_partition_bound_gets_503_with_retry_after_and_gets_in_on_retry() {
    let backend = MockBackend::start().await;
    // The first export hangs for a while: meanwhile nothing else can go out (one export at a time) and the
    // requests that arrive wait in open batches, one per tenant.
    backend.script([Action::Delay(Duration::from_secs(5), Box::new(Action::Ok(None)))]);
    let mut config = tenant_config(&backend);
    config.export_concurrency = 1;
    config.max_partitions = 2;
    config.export_timeout = Duration::from_secs(10);
    config.retry.max_elapsed = Duration::from_secs(20);
    let bridge = Bridge::start(config).await;
    let post = |tenant: &'static str, first: u64| {
        let url = bridge.url("/v1/traces");
        async move {
            let body = spans(first, 2).encode_to_vec();
            let headers = [("content-type", "application/x-protobuf"), ("x-scope-orgid", tenant)];
            request("POST", &url, &headers, body).await
        }
    };
    let a = tokio::spawn(post("A", 1_000_000));
    backend.wait_calls(1).await;
    let (b, c) = (tokio::spawn(post("B", 2_000_000)), tokio::spawn(post("t10", 10_000_000)));
    wait_metric_at(
        bridge.admin,
        "otelcol_exporter_queue_size",
        &["traces"],
        "B and t10 waiting in open batches",
        Duration::from_secs(20),
        |v| v >= 4.0,
    )
    .await;

    // A third waiting tenant is refused, never merged into B's or t10's batch; the answer says when to retry.
    let refused = post("t11", 11_000_000).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(refused.text().contains("too many distinct --forward-header values"), "{}", refused.text());
    assert_eq!(bridge.metric("otlp_bridge_partition_refused_requests_total", &["traces"]).await, 1.0);
    // A tenant whose batch is open still gets in.
    let b2 = tokio::spawn(post("B", 2_000_100));

    for answer in [a, b, c, b2] {
        let answer = answer.await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    // Once the batches have gone out, the client's retry is accepted.
    let retried = post("t11", 11_000_000).await;
    assert_eq!(retried.status, 200, "{}", retried.text());
    let (delivered, _) = check_tenants(&backend);
    let expected: HashMap<String, usize> =
        [("A", 2), ("B", 4), ("t10", 2), ("t11", 2)].into_iter().map(|(t, n)| (t.to_string(), n)).collect();
    assert_eq!(distinct(&delivered), expected);
    assert_eq!(delivered.values().map(Vec::len).sum::<usize>(), 10, "every span once");
    bridge.shutdown().await;
}

#[tokio::test]
async fn a_forwarded_header_that_cannot_be_metadata_is_a_clear_400() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::start(tenant_config(&backend)).await;
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
