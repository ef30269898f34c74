//! `--config FILE` end to end: named gRPC outputs with their own headers and CA files from one file, routed by
//! signal; the file under the flags and the environment; errors naming the key, the file and the line (exit 2);
//! `--check` printing one line per setting and per output with secrets masked.

use crate::common::process::{BridgeProcess, Ports};
use crate::common::tls::TempDir;
use crate::common::*;
use prost::Message;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tonic::transport::{Identity, ServerTlsConfig};

/// A CA of its own and a `localhost` server certificate it signed: (CA PEM, server TLS config).
fn pki() -> (String, ServerTlsConfig) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, &ca).unwrap();
    (ca.pem(), ServerTlsConfig::new().identity(Identity::from_pem(cert.pem(), key.serialize_pem())))
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[tokio::test]
async fn two_tls_outputs_with_their_own_headers_and_cas_from_one_file_routed_by_signal() {
    let dir = TempDir::new("config-two-outputs");
    let (ca_a, tls_a) = pki();
    let (ca_b, tls_b) = pki();
    let a = MockBackend::start_tls(tls_a).await;
    let b = MockBackend::start_tls(tls_b).await;
    let yaml = format!(
        "# each output trusts only its own CA: swapping them fails the handshake\n\
         outputs:\n  \
           tempo:\n    \
             url: https://localhost:{}\n    \
             ca_file: {}\n    \
             headers: {{x-scope-orgid: team-a}}\n    \
             signals: [traces]\n  \
           loki:\n    \
             url: https://localhost:{}\n    \
             ca_file: {}\n    \
             headers:\n      \
               authorization: \"Bearer ${{env:LOKI_TOKEN}}\"\n    \
             signals: [traces, logs]\n",
        a.addr.port(),
        dir.write("a.pem", &ca_a).display(),
        b.addr.port(),
        dir.write("b.pem", &ca_b).display(),
    );
    let config = dir.write("bridge.yaml", yaml);
    let bridge =
        BridgeProcess::start_with(&["--config", config.to_str().unwrap()], &[("LOKI_TOKEN", "l0ki")], Ports::Free)
            .await;
    let traces = post(&bridge.url("/v1/traces"), "application/x-protobuf", spans(1, 2).encode_to_vec()).await;
    assert_eq!(traces.status, 200, "{}", traces.text());
    let logs = post(&bridge.url("/v1/logs"), "application/json", example("logs.json")).await;
    assert_eq!(logs.status, 200, "{}", logs.text());

    assert_eq!(a.traces(), vec![spans(1, 2)]);
    assert!(a.logs().is_empty(), "tempo takes traces only");
    assert_eq!(b.traces(), vec![spans(1, 2)]);
    assert_eq!(b.logs().len(), 1);
    let header = |backend: &MockBackend, name: &str| -> Vec<String> {
        backend
            .received()
            .iter()
            .map(|r| r.metadata.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default())
            .collect()
    };
    assert_eq!(header(&a, "x-scope-orgid"), ["team-a"]);
    assert_eq!(header(&a, "authorization"), [""], "tempo's headers are its own");
    assert_eq!(header(&b, "authorization"), ["Bearer l0ki", "Bearer l0ki"]);
    // The exporter families are labelled with the outputs' names.
    let sent = bridge.metric("otelcol_exporter_sent_spans_total", &["backend=\"tempo\""]).await;
    assert_eq!(sent, 2.0);
}

#[tokio::test]
async fn check_prints_one_line_per_setting_with_its_source_and_masks_secrets() {
    let dir = TempDir::new("config-check");
    let yaml = "memory_limit_mib: 33\nmax_body_bytes: 1000000\nbackend_header: [\"x-api-key=k3y\"]\n\
                outputs:\n  out: {url: debug, signals: [logs]}\n  \
                grpc: {url: \"http://127.0.0.1:9\", headers: {authorization: \"Bearer ${env:T}\"}}\n";
    let config = dir.write("bridge.yaml", yaml);
    let out = run_binary(
        &[
            "--check",
            "--config",
            config.to_str().unwrap(),
            "--max-body-bytes",
            "2000000",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        &[("OTLP_BRIDGE_MEMORY_LIMIT_MIB", "44"), ("T", "s3cret")],
    )
    .await;
    let out = text(&out);
    let line =
        |key: &str| out.lines().find(|l| l.trim_start().starts_with(&format!("{key}:"))).unwrap_or("").to_string();
    assert!(line("memory_limit_mib").ends_with("44 (environment)"), "env over file: {out}");
    assert!(line("max_body_bytes").ends_with("2000000 (flag)"), "flag over file: {out}");
    assert!(line("backend_header").ends_with("x-api-key=**** (file)"), "{out}");
    assert!(line("read_timeout").ends_with("30s (default)"), "{out}");
    assert!(!out.contains("s3cret") && !out.contains("k3y"), "secrets masked: {out}");
    assert!(out.contains("  out (logs): prints each request"), "{out}");
    assert!(
        out.contains(
            "  grpc (traces, metrics, logs, profiles): OTLP/gRPC http://127.0.0.1:9, headers \"authorization\"=****"
        ),
        "{out}"
    );
    assert!(out.contains("FAIL  grpc (traces, metrics, logs, profiles): refused the connection"), "{out}");
    assert!(out.contains("ok    out (logs)"), "{out}");
}

#[tokio::test]
async fn errors_in_the_file_name_the_key_the_file_and_the_line_and_exit_2() {
    let dir = TempDir::new("config-errors");
    let config = dir.write(
        "bridge.yaml",
        "listen: 127.0.0.1:4318\noutputs:\n  a: {url: debug}\n  b:\n    url: http://b:4317\n    compresion: gzip\n",
    );
    let path = config.to_str().unwrap();
    let out = run_binary(&["--config", path], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{path}, line 6: outputs.b.compresion: unknown key")), "{err}");

    let config = dir.write("env.yaml", "outputs:\n  a:\n    url: ${env:NOT_SET_ANYWHERE}\n");
    let out = run_binary(&["--config", config.to_str().unwrap()], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOT_SET_ANYWHERE is not set"), "{}", text(&out));

    let out = run_binary(&[], &[("OTLP_BRIDGE_CONFIG", "/nonexistent/bridge.yaml")]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/bridge.yaml"), "{}", text(&out));
}
