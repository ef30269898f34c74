//! HTTPS on the receiver: h2 and HTTP/1.1 by ALPN, certificates rotated without a restart (symlink swaps as the
//! kubelet does them, a bad pair refused while the old one stays), mutual TLS refused at the handshake, plain HTTP
//! on the TLS port told to use https://.

use std::time::Duration;

use crate::common::tls::{https, swap_symlink, Ca, ClientTls, Leaf, TempDir};
use crate::common::*;
use otlp_bridge::ServerTlsFiles;
use prost::Message;

const PB: (&str, &str) = ("content-type", "application/x-protobuf");

/// A bridge serving TLS from `files`, forwarding to a fresh backend.
async fn tls_bridge(files: ServerTlsFiles) -> (Bridge, MockBackend) {
    let backend = MockBackend::start().await;
    let mut config = config_for(&[&backend]);
    config.server_tls = Some(files);
    (Bridge::start(config).await, backend)
}

fn files(dir: &TempDir, leaf: &Leaf, client_ca: Option<&str>) -> ServerTlsFiles {
    ServerTlsFiles {
        cert: dir.write("tls.crt", &leaf.cert),
        key: dir.write("tls.key", &leaf.key),
        client_ca: client_ca.map(|pem| dir.write("ca.crt", pem)),
    }
}

#[tokio::test]
async fn https_serves_http1_and_h2_chosen_by_alpn() {
    let (ca, dir) = (Ca::new(), TempDir::new("tls-alpn"));
    let (bridge, backend) = tls_bridge(files(&dir, &ca.leaf(&["localhost"]), None)).await;

    let h1 = https(
        bridge.addr,
        &ClientTls::new(&ca.pem, &[b"http/1.1"], None),
        "/v1/traces",
        &[PB],
        spans(1, 2).encode_to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(h1.answer.status, 200, "{}", h1.answer.text());
    assert_eq!((h1.alpn.as_deref(), h1.version), (Some(&b"http/1.1"[..]), http::Version::HTTP_11));

    let h2 = https(
        bridge.addr,
        &ClientTls::new(&ca.pem, &[b"h2", b"http/1.1"], None),
        "/v1/traces",
        &[PB],
        spans(3, 2).encode_to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(h2.answer.status, 200, "{}", h2.answer.text());
    assert_eq!((h2.alpn.as_deref(), h2.version), (Some(&b"h2"[..]), http::Version::HTTP_2));

    // A client that offers no ALPN at all still gets HTTP/1.1.
    let none =
        https(bridge.addr, &ClientTls::new(&ca.pem, &[], None), "/v1/traces", &[PB], spans(5, 1).encode_to_vec())
            .await
            .unwrap();
    assert_eq!(none.answer.status, 200);
    assert_eq!(backend.traces(), vec![spans(1, 2), spans(3, 2), spans(5, 1)]);

    // Plain HTTP on the TLS port is told, in plain HTTP, to use https:// (and nothing is forwarded).
    use http_body_util::{BodyExt, Limited};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let plain = http::Request::post(bridge.url("/v1/traces"))
        .header(PB.0, PB.1)
        .body(spans(9, 1).encode_to_vec().into())
        .unwrap();
    let answer = client.request(plain).await.expect("plain HTTP on the TLS port gets an answer");
    assert_eq!(answer.status(), 400);
    #[allow(clippy::disallowed_methods)] // bounded by Limited
    let text = Limited::new(answer.into_body(), 4096).collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("use https://"), "{text}");
    assert_eq!(backend.calls(), 3);
    assert!(bridge.metric("otlp_bridge_tls_handshake_failures_total", &[]).await >= 1.0);
}

/// New connections until one presents `want` (or 20 s pass): rotation takes effect within seconds, not at once.
async fn wait_for_cert(bridge: &Bridge, ca: &Ca, want: &Leaf) {
    let client = ClientTls::new(&ca.pem, &[b"h2"], None);
    eventually("the new certificate served", Duration::from_secs(20), || async {
        let got = https(bridge.addr, &client, "/v1/traces", &[PB], spans(1, 1).encode_to_vec()).await.unwrap();
        assert_eq!(got.answer.status, 200, "{}", got.answer.text());
        if got.server_cert == want.der() {
            Ok(())
        } else {
            Err("the old certificate")
        }
    })
    .await
}

#[tokio::test]
async fn certificates_rotate_by_symlink_swap_without_restart_and_a_bad_pair_keeps_the_old_one() {
    // The layout of a mounted Kubernetes Secret: tls.crt -> ..data/tls.crt, ..data -> a timestamped directory.
    let (ca, dir) = (Ca::new(), TempDir::new("tls-rotate"));
    let (first, second) = (ca.leaf(&["localhost"]), ca.leaf(&["localhost"]));
    for (version, leaf) in [("v1", &first), ("v2", &second)] {
        dir.write(&format!("{version}/tls.crt"), &leaf.cert);
        dir.write(&format!("{version}/tls.key"), &leaf.key);
    }
    std::os::unix::fs::symlink(dir.path("v1"), dir.path("..data")).unwrap();
    for name in ["tls.crt", "tls.key"] {
        std::os::unix::fs::symlink(dir.path(&format!("..data/{name}")), dir.path(name)).unwrap();
    }
    let files = ServerTlsFiles { cert: dir.path("tls.crt"), key: dir.path("tls.key"), client_ca: None };
    let (bridge, _backend) = tls_bridge(files).await;
    wait_for_cert(&bridge, &ca, &first).await;

    // New connections get the new certificate within seconds of the swap.
    let client = ClientTls::new(&ca.pem, &[b"h2"], None);
    swap_symlink(&dir.path("v2"), &dir.path("..data"));
    wait_for_cert(&bridge, &ca, &second).await;
    assert_eq!(bridge.metric("otlp_bridge_tls_reloads_total", &["outcome=\"ok\""]).await, 1.0);

    // A new certificate whose key does not match (the key of the second one): refused, the second one stays.
    let third = ca.leaf(&["localhost"]);
    dir.write("v3/tls.crt", &third.cert);
    dir.write("v3/tls.key", &second.key);
    swap_symlink(&dir.path("v3"), &dir.path("..data"));
    let rejected = ["outcome=\"rejected\""];
    let what = "the mismatched pair looked at";
    wait_metric_at(bridge.admin, "otlp_bridge_tls_reloads_total", &rejected, what, Duration::from_secs(20), |v| {
        v >= 1.0
    })
    .await;
    let got = https(bridge.addr, &client, "/v1/traces", &[PB], spans(1, 1).encode_to_vec()).await.unwrap();
    assert_eq!(got.answer.status, 200);
    assert_eq!(got.server_cert, second.der(), "a rejected pair must leave the old certificate in service");

    // Once the matching key arrives (a half-finished update completed), the new pair is taken.
    dir.write("v3/tls.key", &third.key);
    wait_for_cert(&bridge, &ca, &third).await;
}

#[tokio::test]
async fn a_bad_certificate_at_start_is_a_clear_error() {
    let (ca, dir) = (Ca::new(), TempDir::new("tls-bad"));
    let (a, b) = (ca.leaf(&["localhost"]), ca.leaf(&["localhost"]));
    let mut config = config_for(&[]);
    config.server_tls =
        Some(ServerTlsFiles { cert: dir.write("a.crt", &a.cert), key: dir.write("b.key", &b.key), client_ca: None });
    let listeners = otlp_bridge::Listeners {
        http: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        admin: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        grpc: None,
    };
    let e = otlp_bridge::run(config, listeners, std::future::pending()).await.unwrap_err().to_string();
    assert!(e.contains("a.crt") && e.contains("b.key") && e.contains("pair"), "{e}");
}

#[tokio::test]
async fn mutual_tls_admits_certificates_of_the_client_ca_and_refuses_others_at_the_handshake() {
    let (ca, other_ca, dir) = (Ca::new(), Ca::new(), TempDir::new("tls-mtls"));
    let (bridge, backend) = tls_bridge(files(&dir, &ca.leaf(&["localhost"]), Some(&ca.pem))).await;

    let trusted = ca.leaf(&["app-a"]);
    let ok = https(
        bridge.addr,
        &ClientTls::new(&ca.pem, &[b"h2"], Some(&trusted)),
        "/v1/traces",
        &[PB],
        spans(1, 1).encode_to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(ok.answer.status, 200, "{}", ok.answer.text());

    // No certificate, or one from another CA: the handshake fails and no HTTP answer is ever given.
    let stranger = other_ca.leaf(&["app-b"]);
    for client in [ClientTls::new(&ca.pem, &[b"h2"], None), ClientTls::new(&ca.pem, &[b"http/1.1"], Some(&stranger))] {
        let refused = https(bridge.addr, &client, "/v1/traces", &[PB], spans(2, 1).encode_to_vec()).await;
        assert!(refused.is_err(), "answered {:?}", refused.map(|r| r.answer.status).ok());
    }
    assert_eq!(backend.traces(), vec![spans(1, 1)]);
    assert!(bridge.metric("otlp_bridge_tls_handshake_failures_total", &[]).await >= 2.0);
}
