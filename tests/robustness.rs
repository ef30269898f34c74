//! Bad input never crashes or hangs the bridge: each case gets its status code and the bridge keeps serving.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::time::Duration;

use common::*;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn still_serving(bridge: &Bridge) {
    assert_eq!(post_pb(bridge, "/v1/traces", &spans(1, 1)).await.status, 200, "the bridge keeps serving");
}

#[tokio::test]
async fn every_truncation_of_a_protobuf_body_is_answered_without_a_crash() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let body = spans(1, 3).encode_to_vec();
    let mut rejected = 0;
    for cut in (1..body.len()).step_by(7) {
        let a = post(&bridge.url("/v1/traces"), "application/x-protobuf", body[..cut].to_vec()).await;
        assert!(a.status == 400 || a.status == 200, "cut {cut}: {}", a.status);
        if a.status == 400 {
            rejected += 1;
            assert!(!a.status_message().1.is_empty());
        }
    }
    assert!(rejected > 0);
    still_serving(&bridge).await;
}

#[tokio::test]
async fn invalid_utf8_in_a_protobuf_string_is_400_naming_the_field() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let mut request = spans(1, 1);
    request.resource_spans[0].scope_spans[0].spans[0].name = "\u{e9}t\u{e9}".into();
    let mut body = request.encode_to_vec();
    let at = body.windows(2).position(|w| w == [0xc3, 0xa9]).unwrap();
    body[at] = 0xff;
    let a = post(&bridge.url("/v1/traces"), "application/x-protobuf", body).await;
    assert_eq!(a.status, 400);
    assert!(a.status_message().1.contains("UTF-8"), "{}", a.status_message().1);
    assert!(a.status_message().1.contains("name"), "{}", a.status_message().1);
    still_serving(&bridge).await;
}

#[tokio::test]
async fn json_nested_100k_deep_is_400() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let depth = 100_000;
    let mut body = String::from(r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":"#);
    for _ in 0..depth {
        body.push_str(r#"{"arrayValue":{"values":["#);
    }
    for _ in 0..depth {
        body.push_str("]}}");
    }
    body.push_str("}]}}]}");
    let a = post(&bridge.url("/v1/traces"), "application/json", body).await;
    assert_eq!(a.status, 400);
    still_serving(&bridge).await;
}

#[tokio::test]
async fn invalid_utf8_in_json_is_400() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let mut body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"X"}]}]}]}"#.to_vec();
    let at = body.iter().position(|b| *b == b'X').unwrap();
    body[at] = 0xfe;
    let a = post(&bridge.url("/v1/traces"), "application/json", body).await;
    assert_eq!(a.status, 400);
    still_serving(&bridge).await;
}

#[tokio::test]
async fn a_body_that_never_ends_is_cut_with_408() {
    let backend = MockBackend::start().await;
    let mut config = config_for(&[&backend]);
    config.read_timeout = Duration::from_millis(500);
    let bridge = Bridge::start(config).await;
    let mut stream = tokio::net::TcpStream::connect(bridge.addr).await.unwrap();
    stream
        .write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"resou")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "answered, not hung");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    still_serving(&bridge).await;
}

#[tokio::test]
async fn a_client_that_disconnects_mid_body_releases_its_memory() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    for _ in 0..20 {
        let mut stream = tokio::net::TcpStream::connect(bridge.addr).await.unwrap();
        stream
            .write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\nabc")
            .await
            .unwrap();
        drop(stream);
    }
    still_serving(&bridge).await;
    held_bytes_back_to_zero(bridge.admin).await;
}

#[tokio::test]
async fn a_zstd_bomb_is_413() {
    let backend = MockBackend::start().await;
    let mut config = config_for(&[&backend]);
    config.max_body_bytes = 1 << 20;
    let bridge = Bridge::start(config).await;
    let bomb = zstd::bulk::compress(&vec![b' '; 64 << 20], 19).unwrap();
    let a = request(
        "POST",
        &bridge.url("/v1/logs"),
        &[("content-type", "application/json"), ("content-encoding", "zstd")],
        bomb,
    )
    .await;
    assert_eq!(a.status, 413);
    still_serving(&bridge).await;
}
