//! Bearer tokens (`--auth-token-file`): accepted, refused with a Status body in the request's encoding and
//! `WWW-Authenticate: Bearer`, checked before the body is read, rotated without a restart, never echoed or logged;
//! CORS preflights and the admin port need none.

use std::path::Path;
use std::time::Duration;

use crate::common::process::{BridgeProcess, Ports};
use crate::common::tls::TempDir;
use crate::common::*;
use prost::Message;

const JSON: &str = "application/json";
const PB: &str = "application/x-protobuf";
const UNAUTHENTICATED: i32 = 16;

fn json_spans() -> &'static str {
    r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"s","kind":1,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#
}

async fn auth_bridge(tokens: &Path) -> (Bridge, MockBackend) {
    let backend = MockBackend::start().await;
    let mut config = config_for(&[&backend]);
    config.auth_token_file = Some(tokens.to_path_buf());
    config.cors_allowed_origins = vec!["https://app.example.com".into()];
    config.memory_limit_bytes = 1 << 20;
    (Bridge::start(config).await, backend)
}

async fn post_with(
    bridge: &Bridge,
    content_type: &str,
    authorization: Option<&str>,
    body: impl Into<bytes::Bytes>,
) -> Answer {
    let mut headers = vec![("content-type", content_type)];
    if let Some(a) = authorization {
        headers.push(("authorization", a));
    }
    request("POST", &bridge.url("/v1/traces"), &headers, body).await
}

fn assert_unauthorized(a: &Answer, content_type: &str, mentions: &str) {
    assert_eq!(a.status, 401, "{}", a.text());
    assert_eq!(a.header("www-authenticate"), Some("Bearer"));
    assert_eq!(a.header("content-type"), Some(content_type));
    let (code, message) = a.status_message();
    assert_eq!(code, UNAUTHENTICATED);
    assert!(message.contains(mentions), "{message}");
}

#[tokio::test]
async fn accepted_tokens_pass_and_others_get_401_with_a_status_body_in_the_request_encoding() {
    let dir = TempDir::new("auth-basic");
    let tokens = dir.write("tokens", "# team a\ntok-a-1111\n\n  tok-b-2222  \n#tok-c-3333\n");
    let (bridge, backend) = auth_bridge(&tokens).await;

    assert_unauthorized(&post_with(&bridge, JSON, None, json_spans()).await, JSON, "Authorization: Bearer");
    assert_unauthorized(&post_with(&bridge, PB, None, spans(1, 1).encode_to_vec()).await, PB, "Authorization: Bearer");
    assert_unauthorized(&post_with(&bridge, JSON, Some("Bearer tok-c-3333"), json_spans()).await, JSON, "not accepted");
    assert_unauthorized(
        &post_with(&bridge, PB, Some("Bearer nope"), spans(1, 1).encode_to_vec()).await,
        PB,
        "not accepted",
    );
    assert_unauthorized(
        &post_with(&bridge, JSON, Some("Basic dG9rLWEtMTExMQ=="), json_spans()).await,
        JSON,
        "Bearer scheme",
    );
    assert_eq!(backend.calls(), 0, "nothing refused reaches the backend");

    // The scheme is case-insensitive; whitespace around a token in the file is not part of it.
    assert_eq!(post_with(&bridge, PB, Some("Bearer tok-a-1111"), spans(1, 2).encode_to_vec()).await.status, 200);
    assert_eq!(post_with(&bridge, JSON, Some("bearer tok-b-2222"), json_spans()).await.status, 200);
    assert_eq!(post_with(&bridge, PB, Some("BEARER tok-b-2222"), spans(3, 1).encode_to_vec()).await.status, 200);
    assert_eq!(backend.calls(), 3);

    let metrics = bridge.metrics().await;
    let refused = |reason: &str| {
        sum_metric(&metrics, "otlp_bridge_auth_refused_requests_total", &[&format!("reason=\"{reason}\"")])
    };
    assert_eq!(
        (refused("missing"), refused("unknown_token"), refused("not_bearer"), refused("malformed")),
        (2.0, 2.0, 1.0, 0.0)
    );
    // The admin port needs no token.
    assert_eq!(get(&format!("http://{}/metrics", bridge.admin)).await.status, 200);
}

#[tokio::test]
async fn the_token_is_checked_before_the_body_is_read_or_memory_reserved() {
    let dir = TempDir::new("auth-early");
    let (bridge, _backend) = auth_bridge(&dir.write("tokens", "tok\n")).await;
    // Twice the memory limit: with a token this would be 413; without one, the 401 comes first.
    let big = vec![0u8; 2 << 20];
    assert_unauthorized(&post_with(&bridge, PB, None, big.clone()).await, PB, "Bearer");
    assert_eq!(post_with(&bridge, PB, Some("Bearer tok"), big).await.status, 413);
}

#[tokio::test]
async fn a_rotated_token_file_applies_without_restart() {
    let dir = TempDir::new("auth-rotate");
    let tokens = dir.write("tokens", "old-token\n");
    let (bridge, _backend) = auth_bridge(&tokens).await;
    assert_eq!(post_with(&bridge, PB, Some("Bearer old-token"), spans(1, 1).encode_to_vec()).await.status, 200);

    // Replaced atomically, as a Secret volume or `mv` does it.
    let next = dir.write("tokens.new", "# rotated\nnew-token\n");
    std::fs::rename(next, &tokens).unwrap();
    eventually("the new token accepted", Duration::from_secs(20), || async {
        let a = post_with(&bridge, PB, Some("Bearer new-token"), spans(2, 1).encode_to_vec()).await;
        if a.status == 200 {
            Ok(())
        } else {
            Err(a.text())
        }
    })
    .await;
    assert_eq!(post_with(&bridge, PB, Some("Bearer old-token"), spans(3, 1).encode_to_vec()).await.status, 401);
}

#[tokio::test]
async fn cors_preflights_need_no_token_and_refusals_are_readable_by_the_browser() {
    let dir = TempDir::new("auth-cors");
    let (bridge, _backend) = auth_bridge(&dir.write("tokens", "tok\n")).await;
    let origin = ("origin", "https://app.example.com");
    let preflight = request(
        "OPTIONS",
        &bridge.url("/v1/traces"),
        &[
            origin,
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "authorization,content-type"),
        ],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(preflight.status, 200);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("https://app.example.com"));
    let refused = request("POST", &bridge.url("/v1/traces"), &[origin, ("content-type", JSON)], json_spans()).await;
    assert_unauthorized(&refused, JSON, "Bearer");
    assert_eq!(refused.header("access-control-allow-origin"), Some("https://app.example.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presented_token_never_appears_in_answers_or_logs() {
    let backend = MockBackend::start().await;
    let dir = TempDir::new("auth-logs");
    let tokens = dir.write("tokens", "the-good-token-9f8e7d\n");
    let tokens = tokens.to_string_lossy().into_owned();
    let env = [("OTLP_BRIDGE_AUTH_TOKEN_FILE", tokens.as_str()), ("RUST_LOG", "debug")];
    let mut bridge = BridgeProcess::start_with(&["--backend", &backend.url()], &env, Ports::Free).await;
    let url = bridge.url("/v1/traces");
    let wrong = [
        "Bearer wrong-token-a1b2c3",
        "Basic d3Jvbmctd2l0aC1iYXNpYw==",
        "bearer the-good-token-9f8e7",
        "Token wrong-token-x9y8",
    ];
    for (i, authorization) in wrong.iter().enumerate() {
        let content_type = if i % 2 == 0 { JSON } else { PB };
        let body = if i % 2 == 0 { json_spans().as_bytes().to_vec() } else { spans(1, 1).encode_to_vec() };
        let a = request("POST", &url, &[("content-type", content_type), ("authorization", authorization)], body).await;
        assert_eq!(a.status, 401);
        let secret = authorization.split(' ').nth(1).unwrap();
        let answer = format!("{:?} {}", a.headers, String::from_utf8_lossy(&a.body));
        assert!(!answer.contains(secret), "the answer echoes the token: {answer}");
    }
    let good = request(
        "POST",
        &url,
        &[("content-type", PB), ("authorization", "Bearer the-good-token-9f8e7d")],
        spans(1, 1).encode_to_vec(),
    )
    .await;
    assert_eq!(good.status, 200);

    bridge.terminate(Duration::from_secs(20)).await;
    let logs = bridge.log();
    assert!(logs.contains("request refused"), "debug logs record the refusals:\n{logs}");
    for secret in ["wrong-token-a1b2c3", "d3Jvbmctd2l0aC1iYXNpYw", "the-good-token-9f8e7", "wrong-token-x9y8"] {
        assert!(!logs.contains(secret), "the logs contain a presented token ({secret}):\n{logs}");
    }
}
