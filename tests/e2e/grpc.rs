//! The OTLP/gRPC input (`--grpc-listen`) against real tonic clients and the recording backend: every service,
//! every compression, the limits, auth, forwarded metadata, honest answers under a stalled backend, a ping flood.

use std::time::Duration;

use crate::common::{self, Action, Bridge, MockBackend, RawCodec};
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use otlp_bridge::{Config, SignalKind};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use tonic::Code;

const TRACES: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const METRICS: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
const LOGS: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
const PROFILES: &str = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export";

/// A bridge with the gRPC input on (on port 0), sending to `backend`.
async fn bridge(backend: &MockBackend, edit: impl FnOnce(&mut Config)) -> Bridge {
    let mut config = common::config_for(&[backend]);
    config.grpc_listen = Some("127.0.0.1:0".parse().unwrap());
    edit(&mut config);
    Bridge::start(config).await
}

async fn channel(bridge: &Bridge) -> Channel {
    let addr = bridge.grpc.expect("the gRPC input is on");
    Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap()
}

/// One unary call of `path` with `body` as the message, as sent (no re-encoding), optionally compressed.
async fn call(
    channel: &Channel,
    path: &'static str,
    body: impl Into<Bytes>,
    compression: Option<CompressionEncoding>,
    metadata: &[(&'static str, &str)],
) -> Result<Bytes, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    if let Some(c) = compression {
        grpc = grpc.send_compressed(c);
    }
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(body.into());
    for (k, v) in metadata {
        request.metadata_mut().insert(*k, v.parse().unwrap());
    }
    let path = http::uri::PathAndQuery::from_static(path);
    grpc.unary(request, path, RawCodec).await.map(tonic::Response::into_inner)
}

/// The official OTLP/JSON logs example as protobuf.
fn logs_example() -> Vec<u8> {
    use otlp_bridge::proto::collector::logs::v1::ExportLogsServiceRequest;
    let logs: ExportLogsServiceRequest = otlp_bridge::internals::json::decode(&common::example("logs.json")).unwrap();
    logs.encode_to_vec()
}

/// The official OTLP/JSON metrics example as protobuf.
fn metrics_example() -> Vec<u8> {
    use otlp_bridge::proto::collector::metrics::v1::ExportMetricsServiceRequest;
    let metrics: ExportMetricsServiceRequest =
        otlp_bridge::internals::json::decode(&common::example("metrics.json")).unwrap();
    metrics.encode_to_vec()
}

fn body_of(kind: SignalKind) -> Vec<u8> {
    match kind {
        SignalKind::Traces => common::spans(1, 5).encode_to_vec(),
        SignalKind::Metrics => metrics_example(),
        SignalKind::Logs => logs_example(),
        SignalKind::Profiles => {
            use opentelemetry_proto::tonic::collector::profiles::v1development::ExportProfilesServiceRequest;
            use opentelemetry_proto::tonic::profiles::v1development::{
                Profile, ResourceProfiles, Sample, ScopeProfiles,
            };
            let profile =
                Profile { samples: vec![Sample { values: vec![1], ..Default::default() }], ..Default::default() };
            let scope = ScopeProfiles { profiles: vec![profile], ..Default::default() };
            let resource = ResourceProfiles { scope_profiles: vec![scope], ..Default::default() };
            ExportProfilesServiceRequest { resource_profiles: vec![resource], ..Default::default() }.encode_to_vec()
        }
    }
}

#[tokio::test]
async fn every_service_and_compression_delivers_the_clients_bytes_unchanged() {
    let backend = MockBackend::start().await;
    let bridge = bridge(&backend, |_| {}).await;
    let channel = channel(&bridge).await;
    let mut sent = Vec::new();
    for (kind, path) in [
        (SignalKind::Traces, TRACES),
        (SignalKind::Metrics, METRICS),
        (SignalKind::Logs, LOGS),
        (SignalKind::Profiles, PROFILES),
    ] {
        for compression in [None, Some(CompressionEncoding::Gzip), Some(CompressionEncoding::Zstd)] {
            let body = body_of(kind);
            let answer = call(&channel, path, body.clone(), compression, &[]).await;
            let answer = answer.unwrap_or_else(|s| panic!("{kind:?} {compression:?}: {s:?}"));
            // The four responses share one layout: field 1, partial_success, absent when nothing was rejected.
            let response = ExportTraceServiceResponse::decode(answer).unwrap();
            assert_eq!(response.partial_success, None, "{kind:?} {compression:?}");
            sent.push((kind, body));
        }
    }
    // OK was answered only once the backend had acknowledged, so everything is there already.
    let acked = backend.acked();
    assert_eq!(acked.len(), sent.len());
    for (kind, body) in &sent {
        assert!(acked.iter().any(|r| r.kind == *kind && r.raw == body[..]), "{kind:?}: the client's bytes, unchanged");
    }
    let spans =
        bridge.metric("otelcol_receiver_accepted_spans_total", &["transport=\"grpc\"", "encoding=\"protobuf\""]).await;
    assert_eq!(spans, 15.0);
    assert_eq!(bridge.metric("otlp_bridge_grpc_requests_total", &["signal=\"logs\"", "code=\"OK\""]).await, 3.0);
    assert_eq!(
        bridge.metric("otelcol_receiver_accepted_spans_total", &["transport=\"http\""]).await,
        0.0,
        "counted under its own transport"
    );
    bridge.shutdown().await;
}

#[tokio::test]
async fn the_generated_client_gets_the_backends_partial_success() {
    let backend = MockBackend::start().await;
    backend.script([Action::Ok(Some((2, "two spans had no name".into())))]);
    let bridge = bridge(&backend, |_| {}).await;
    let mut client = TraceServiceClient::new(channel(&bridge).await);
    // The generated client's own request type, from the suite's span builder's bytes.
    let request = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(
        common::spans(1, 5).encode_to_vec().as_slice(),
    )
    .unwrap();
    let response = client.export(request).await.unwrap().into_inner();
    let partial = response.partial_success.expect("passed on");
    assert_eq!((partial.rejected_spans, partial.error_message.as_str()), (2, "two spans had no name"));
    bridge.shutdown().await;
}

#[tokio::test]
async fn a_grpc_call_on_the_http_port_is_told_the_grpc_address() {
    let backend = MockBackend::start().await;
    let bridge = bridge(&backend, |_| {}).await;
    let grpc = bridge.grpc.expect("the gRPC input is on");
    // The exporter pointed at the OTLP/HTTP port instead.
    let wrong = Channel::from_shared(format!("http://{}", bridge.addr)).unwrap().connect().await.unwrap();
    let status = call(&wrong, TRACES, common::spans(1, 1).encode_to_vec(), None, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    let message = status.message();
    assert!(message.starts_with("this port speaks OTLP/HTTP (POST /v1/traces"), "{message}");
    assert!(message.contains(&format!("serves OTLP/gRPC at {grpc} (--grpc-listen)")), "{message}");
    assert!(!message.contains("off by default"), "{message}");
    assert_eq!(backend.calls(), 0);
    // And the address it names is the one that takes the call.
    call(&channel(&bridge).await, TRACES, common::spans(1, 1).encode_to_vec(), None, &[]).await.unwrap();
    assert_eq!(backend.calls(), 1);
    bridge.shutdown().await;
}

#[tokio::test]
async fn size_limits_hold_on_the_wire_and_after_decompression_without_retry_info() {
    let backend = MockBackend::start().await;
    let bridge = bridge(&backend, |c| c.max_body_bytes = 4096).await;
    let channel = channel(&bridge).await;
    let big = common::spans(1, 200).encode_to_vec();
    assert!(big.len() > 4096);
    let status = call(&channel, TRACES, big.clone(), None, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("--max-body-bytes"), "{status:?}");
    assert!(status.metadata().get("google.rpc.retryinfo-bin").is_none(), "not retried by OTLP clients");
    // Compressed it fits on the wire; decompressed it does not.
    let status = call(&channel, TRACES, big, Some(CompressionEncoding::Gzip), &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("after decompression"), "{status:?}");
    assert_eq!(backend.calls(), 0);
    // The connection is still good for a message that fits.
    call(&channel, TRACES, common::spans(1, 2).encode_to_vec(), None, &[]).await.unwrap();
    bridge.shutdown().await;
}

#[tokio::test]
async fn malformed_protobuf_is_invalid_argument_naming_the_field() {
    let backend = MockBackend::start().await;
    let bridge = bridge(&backend, |_| {}).await;
    let channel = channel(&bridge).await;
    // resource_spans (field 1) declares 5 bytes and has 1.
    let status = call(&channel, TRACES, vec![0x0a, 0x05, 0x00], None, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("resource_spans"), "{status:?}");
    let status = call(&channel, "/opentelemetry.proto.collector.trace.v1.TraceService/Other", vec![], None, &[]).await;
    assert_eq!(status.unwrap_err().code(), Code::Unimplemented);
    assert_eq!(backend.calls(), 0);
    bridge.shutdown().await;
}

#[tokio::test]
async fn bearer_tokens_come_from_metadata_and_are_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "s3cret-token\n").unwrap();
    let backend = MockBackend::start().await;
    let bridge = bridge(&backend, |c| c.auth_token_file = Some(tokens.clone())).await;
    let channel = channel(&bridge).await;
    let body = common::spans(1, 1).encode_to_vec();
    let status = call(&channel, TRACES, body.clone(), None, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let wrong = [("authorization", "Bearer guessed-token")];
    let status = call(&channel, TRACES, body.clone(), None, &wrong).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(!status.message().contains("guessed-token"), "{status:?}");
    call(&channel, TRACES, body, None, &[("authorization", "Bearer s3cret-token")]).await.unwrap();
    assert_eq!(backend.acked().len(), 1);
    assert_eq!(bridge.metric("otlp_bridge_auth_refused_requests_total", &["reason=\"missing\""]).await, 1.0);
    bridge.shutdown().await;
}

#[tokio::test]
async fn forwarded_headers_are_read_from_metadata_and_never_mixed() {
    let backend = MockBackend::start().await;
    let bridge = bridge(&backend, |c| c.forward_headers = vec![http::HeaderName::from_static("x-scope-orgid")]).await;
    let channel = channel(&bridge).await;
    for tenant in ["team-a", "team-b"] {
        call(&channel, LOGS, logs_example(), None, &[("x-scope-orgid", tenant)]).await.unwrap();
    }
    let tenants: Vec<String> =
        backend.acked().iter().map(|r| r.metadata["x-scope-orgid"].to_str().unwrap().to_string()).collect();
    assert_eq!(tenants.len(), 2);
    assert!(tenants.contains(&"team-a".to_string()) && tenants.contains(&"team-b".to_string()), "{tenants:?}");
    bridge.shutdown().await;
}

#[tokio::test]
async fn a_backends_refusal_keeps_its_code_and_delay_and_hides_its_address() {
    let backend = MockBackend::start().await;
    let bridge = bridge(&backend, |c| c.retry.max_elapsed = Duration::ZERO).await;
    let channel = channel(&bridge).await;
    let body = common::spans(1, 1).encode_to_vec();
    backend.always(Action::fail(Code::InvalidArgument, "span name is required"));
    let status = call(&channel, TRACES, body.clone(), None, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("span name is required"), "{status:?}");
    assert!(!status.message().contains(&backend.addr.to_string()), "{status:?}");
    backend.always(Action::fail_with_retry_info(Code::Unavailable, Duration::from_secs(7)));
    let status = call(&channel, TRACES, body, None, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_retry_info(&status, Duration::from_secs(7));
    bridge.shutdown().await;
}

/// RetryInfo with `delay` in both places: the status details and `google.rpc.retryinfo-bin`.
fn assert_retry_info(status: &tonic::Status, delay: Duration) {
    use tonic_types::StatusExt;
    let info = status.get_details_retry_info().expect("RetryInfo in grpc-status-details-bin");
    assert_eq!(info.retry_delay, Some(delay));
    let raw = status.metadata().get_bin("google.rpc.retryinfo-bin").expect("google.rpc.retryinfo-bin");
    let raw = raw.to_bytes().unwrap();
    let info = tonic_types::pb::RetryInfo::decode(raw).unwrap();
    assert_eq!(info.retry_delay.map(|d| d.seconds), Some(delay.as_secs() as i64));
}

#[tokio::test]
async fn a_stalled_backend_fills_memory_and_calls_are_refused_unavailable_never_ok() {
    let backend = MockBackend::start().await;
    backend.always(Action::Hang);
    let bridge = bridge(&backend, |c| {
        c.memory_limit_bytes = 256 << 10;
        c.export_timeout = Duration::from_secs(30);
        c.retry.max_elapsed = Duration::from_secs(60);
    })
    .await;
    let channel = channel(&bridge).await;
    let body = common::padded_spans(1, 60, 1024).encode_to_vec();
    assert!(body.len() > 60 << 10, "{}", body.len());
    let mut calls = Vec::new();
    for _ in 0..16 {
        let channel = channel.clone();
        let body = body.clone();
        calls.push(tokio::spawn(async move {
            let deadline = [("grpc-timeout", "20S")];
            tokio::time::timeout(Duration::from_secs(5), call(&channel, TRACES, body, None, &deadline)).await
        }));
    }
    let mut refused = 0;
    for c in calls {
        match c.await.unwrap() {
            Err(_) => {} // still waiting for the stalled backend: not OK, which is right
            Ok(Ok(_)) => panic!("OK while the backend never acknowledged"),
            Ok(Err(status)) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert_retry_info(&status, Duration::from_secs(1));
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "the memory limit refused some calls");
    let held = bridge.metric("otlp_bridge_memory_held_bytes", &[]).await;
    assert!(held <= (256 << 10) as f64, "memory stays bounded: {held}");
    assert!(bridge.metric("otlp_bridge_memory_refused_requests_total", &[]).await >= refused as f64);
    drop(bridge);
}

#[tokio::test]
async fn a_ping_flood_is_refused_with_goaway_enhance_your_calm() {
    let backend = MockBackend::start().await;
    let bridge = bridge(&backend, |_| {}).await;
    let tcp = tokio::net::TcpStream::connect(bridge.grpc.unwrap()).await.unwrap();
    let (_client, connection) = h2::client::handshake(tcp).await.unwrap();
    let mut connection = connection;
    let mut pings = connection.ping_pong().unwrap();
    let driven = tokio::spawn(connection);
    let mut answered = 0;
    for _ in 0..20 {
        match tokio::time::timeout(Duration::from_secs(10), pings.ping(h2::Ping::opaque())).await.unwrap() {
            Ok(_) => answered += 1,
            Err(_) => break,
        }
    }
    assert!(answered < 20, "the flood was cut short after {answered} pings");
    let ended = tokio::time::timeout(Duration::from_secs(10), driven).await.unwrap().unwrap();
    let error = ended.expect_err("the connection ended");
    assert_eq!(error.reason(), Some(h2::Reason::ENHANCE_YOUR_CALM), "{error:?}");
    bridge.shutdown().await;
}

#[tokio::test]
async fn mtls_uses_the_same_files_as_http_and_a_client_without_a_certificate_gets_nothing_through() {
    use common::tls::{Ca, TempDir};
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let dir = TempDir::new("grpc-mtls");
    let ca = Ca::new();
    let server = ca.leaf(&["localhost"]);
    let client_leaf = ca.leaf(&["client"]);
    let files = otlp_bridge::ServerTlsFiles {
        cert: dir.write("cert.pem", &server.cert),
        key: dir.write("key.pem", &server.key),
        client_ca: Some(dir.write("ca.pem", &ca.pem)),
    };
    let backend = MockBackend::start().await;
    let bridge = bridge(&backend, |c| c.server_tls = Some(files)).await;
    let url = format!("https://localhost:{}", bridge.grpc.unwrap().port());
    let tls = |identity: Option<Identity>| {
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca.pem)).domain_name("localhost");
        match identity {
            Some(id) => tls.identity(id),
            None => tls,
        }
    };
    let with_cert = Channel::from_shared(url.clone())
        .unwrap()
        .tls_config(tls(Some(Identity::from_pem(&client_leaf.cert, &client_leaf.key))))
        .unwrap()
        .connect()
        .await
        .unwrap();
    call(&with_cert, TRACES, common::spans(1, 3).encode_to_vec(), None, &[]).await.unwrap();
    assert_eq!(backend.acked().len(), 1);
    let without = Channel::from_shared(url).unwrap().tls_config(tls(None)).unwrap().connect().await;
    if let Ok(channel) = without {
        let refused = call(&channel, TRACES, common::spans(4, 3).encode_to_vec(), None, &[]).await;
        assert!(refused.is_err(), "no client certificate, no call");
    }
    assert_eq!(backend.acked().len(), 1, "nothing from the client without a certificate");
    bridge.shutdown().await;
}

#[tokio::test]
async fn a_connection_that_never_starts_a_call_is_closed_and_counted() {
    let backend = MockBackend::start().await;
    let bridge = bridge(&backend, |c| c.read_timeout = Duration::from_secs(1)).await;
    let mut silent = tokio::net::TcpStream::connect(bridge.grpc.unwrap()).await.unwrap();
    let mut buf = [0u8; 16];
    // Eventually, within a generous bound, the bridge closes it (EOF or reset).
    let read = tokio::time::timeout(Duration::from_secs(30), tokio::io::AsyncReadExt::read(&mut silent, &mut buf));
    assert!(matches!(read.await, Ok(Ok(0) | Err(_))), "the silent connection was closed");
    let timed_out = bridge.metric("otlp_bridge_connections_timed_out_total", &["listener=\"grpc\""]).await;
    assert_eq!(timed_out, 1.0);
    bridge.shutdown().await;
}

#[tokio::test]
async fn resource_attributes_are_stamped_on_grpc_data_too() {
    use otlp_bridge::{AttributeMode, ResourceAttribute};
    let backend = MockBackend::start().await;
    let bridge = bridge(&backend, |c| {
        c.resource_attributes = vec![ResourceAttribute {
            key: "deployment.environment".into(),
            value: "production".into(),
            mode: AttributeMode::Upsert,
        }]
    })
    .await;
    let channel = channel(&bridge).await;
    call(&channel, TRACES, common::spans(1, 3).encode_to_vec(), None, &[]).await.unwrap();
    let received = backend.traces();
    let attributes = &received[0].resource_spans[0].resource.as_ref().unwrap().attributes;
    let stamped = attributes.iter().find(|kv| kv.key == "deployment.environment").expect("stamped");
    assert!(format!("{:?}", stamped.value).contains("production"), "{stamped:?}");
    assert!(attributes.iter().any(|kv| kv.key == "service.name"), "the client's own attributes stay");
    bridge.shutdown().await;
}
