//! What an operator or a newcomer meets first: `--check`, start-up lines, JSON logs, configuration errors that
//! name what the user typed, and backends on the wrong port or protocol named as such (with the fix).

use crate::common::process::{free_addr, BridgeProcess, Ports};
use crate::common::*;
use otlp_bridge::BackendTarget;

const HTTP1_HINT: &str = "answered in HTTP/1.1, not HTTP/2: it is not a gRPC server";
const NOT_TLS_HINT: &str = "does not speak TLS, but the URL says https://: use http:// for a plaintext port";
const REFUSED_HINT: &str = "refused the connection: nothing listens there";

fn free_port() -> u16 {
    free_addr().port()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `--check` with this bridge's ports out of the way, so only the backend decides.
async fn check(backends: &[&str], extra: &[&str]) -> (i32, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    let admin = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["--check", "--listen", &listen, "--metrics-listen", &admin];
    for b in backends {
        args.extend(["--backend", b]);
    }
    args.extend_from_slice(extra);
    let out = run_binary(&args, &[]).await;
    (out.status.code().unwrap(), text(&out.stdout) + &text(&out.stderr))
}

#[tokio::test]
async fn check_passes_against_a_live_backend_and_masks_secrets() {
    let backend = MockBackend::start().await;
    let url = backend.url();
    let (code, out) = check(&[&url], &["--backend-header", "authorization=Bearer s3cret"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("ok    {url} (traces, metrics, logs, profiles): answered an empty OTLP/gRPC export")),
        "{out}"
    );
    assert!(out.contains("ok: every backend answered"), "{out}");
    assert!(out.contains("\"authorization\"") && !out.contains("s3cret"), "header value masked: {out}");
    assert!(backend.probes() >= 1 && backend.calls() == 0, "a probe, not data");
}

#[tokio::test]
async fn check_fails_on_a_dead_port_and_says_nothing_listens() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let (code, out) = check(&[&dead, "debug"], &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("FAIL  {dead} (traces, metrics, logs, profiles): {REFUSED_HINT}")), "{out}");
    assert!(out.contains("ok    debug"), "{out}");
    assert!(out.contains("FAIL: 1 of 2 backend(s) did not answer"), "{out}");
}

#[tokio::test]
async fn check_names_an_http1_server_as_such() {
    let addr = http1_server().await;
    let (code, out) = check(&[&format!("http://{addr}")], &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(HTTP1_HINT), "{out}");
}

#[tokio::test]
async fn check_names_another_bridges_otlp_http_port_as_an_otlp_http_port() {
    let backend = MockBackend::start().await;
    let other = Bridge::with_backend(&backend).await;
    let (code, out) = check(&[&format!("http://{}", other.addr)], &[]).await;
    assert_eq!(code, 1, "{out}");
    // The other bridge answers gRPC calls with where gRPC goes; the check words it as the port mix-up it is.
    let said = "answered that it speaks OTLP/HTTP, not OTLP/gRPC: is it an OTLP/HTTP port? OTLP/gRPC is usually 4317";
    assert!(out.contains(said), "{out}");
}

#[tokio::test]
async fn check_names_https_to_a_plaintext_port() {
    let backend = MockBackend::start().await;
    let (code, out) = check(&[&format!("https://{}", backend.addr)], &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(NOT_TLS_HINT), "{out}");
}

#[tokio::test]
async fn a_backend_on_the_bridges_own_port_is_refused_at_start_naming_the_variable_that_set_it() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let own = format!("http://localhost:{port}");
    let out = run_binary(&["--listen", &listen], &[("OTEL_EXPORTER_OTLP_ENDPOINT", &own)]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "backend {own} is this bridge's own --listen address ({listen}): it would export to itself"
        )),
        "{err}"
    );
    assert!(err.contains("It came from OTEL_EXPORTER_OTLP_ENDPOINT"), "{err}");
    let (code, out) = check(&["debug"], &["--backend", &format!("http://127.0.0.1:{port}"), "--listen", &listen]).await;
    assert_eq!(code, 2, "{out}");
}

#[tokio::test]
async fn environment_errors_name_the_variable_print_no_backtrace_and_exit_2() {
    let out = run_binary(&[], &[("OTLP_BRIDGE_MEMORY_LIMIT_MIB", "abc"), ("RUST_BACKTRACE", "1")]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "invalid value 'abc' for OTLP_BRIDGE_MEMORY_LIMIT_MIB (the environment variable of --memory-limit-mib)"
        ),
        "{err}"
    );
    assert!(!err.contains("backtrace") && !err.contains("Stack"), "{err}");
    // Typed as a flag, the flag is named.
    let out = run_binary(&["--memory-limit-mib", "abc"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("for '--memory-limit-mib <MEMORY_LIMIT_MIB>'"));
    // A configuration error found after parsing: one line, no backtrace.
    let out = run_binary(&[], &[("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"), ("RUST_BACKTRACE", "1")]).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "otlp-bridge: invalid configuration: OTEL_EXPORTER_OTLP_TIMEOUT=\"soon\" is not milliseconds\n"
    );
}

#[tokio::test]
async fn help_lists_the_boolean_words_and_the_new_flags() {
    let out = run_binary(&["--help"], &[]).await;
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(help.contains("true/false, 1/0, yes/no, on/off"), "{help}");
    for flag in ["--log-format", "--check", "OTLP_BRIDGE_LOG_FORMAT", "HOST:PORT"] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_and_start_up_tells_addresses_mode_and_backend_answers() {
    let backend = MockBackend::start().await;
    let (http, admin) = (free_port(), free_port());
    let dead = format!("http://127.0.0.1:{}", free_port());
    let listen = format!("localhost:{http}");
    let admin_addr = format!("127.0.0.1:{admin}");
    let url = backend.url();
    let ports = Ports::Given { addr: ([127, 0, 0, 1], http).into(), admin: ([127, 0, 0, 1], admin).into() };
    let args = [
        "--log-format",
        "json",
        "--listen",
        &listen,
        "--metrics-listen",
        &admin_addr,
        "--backend",
        &url,
        "--backend",
        &dead,
    ];
    let bridge = BridgeProcess::start_with(&args, &[], ports).await;
    // Every line from the start: the start-up check of both backends, then the start-up line.
    let lines = bridge.until("otlp-bridge listening").await;
    let objects: Vec<serde_json::Value> =
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    for o in &objects {
        for key in ["timestamp", "level", "message", "target"] {
            assert!(o.get(key).is_some(), "{key} missing in {o}");
        }
    }
    // A backend is down, so /ready answers 503: the line does not say "ready".
    let ready = objects.iter().find(|o| o["message"].as_str().unwrap().starts_with("otlp-bridge listening")).unwrap();
    assert_eq!(
        ready["message"], "otlp-bridge listening; backend not reachable yet (/ready answers 503 until it is)",
        "{ready}"
    );
    assert_eq!(ready["level"], "WARN");
    assert_eq!(ready["unreachable"], format!("[{dead:?}]"), "{ready}");
    assert!(!objects.iter().any(|o| o["message"] == "otlp-bridge ready"), "{objects:?}");
    assert_eq!(ready["listen"], format!("127.0.0.1:{http}"), "localhost resolved to IPv4 loopback: {ready}");
    assert_eq!(ready["admin"], admin_addr);
    assert!(ready["mode"].as_str().unwrap().starts_with("direct"), "{ready}");
    let failed = objects.iter().find(|o| o["message"].as_str().unwrap().starts_with("backend check failed")).unwrap();
    assert_eq!(failed["level"], "WARN");
    assert_eq!(failed["backend"], dead.as_str());
    assert!(failed["message"].as_str().unwrap().contains(REFUSED_HINT), "{failed}");
    let said = failed["message"].as_str().unwrap().matches("tcp connect error").count();
    assert!(said <= 1, "the cause is said once: {failed}");
    // Both backends' outcomes are logged together, in the order given: the live one answered first.
    let answered = objects.iter().find(|o| o["message"].as_str().unwrap().starts_with("backend answered")).unwrap();
    assert_eq!(answered["backend"], url.as_str());
}

#[tokio::test]
async fn ready_checks_that_the_backend_speaks_grpc_not_only_tcp() {
    let addr = http1_server().await;
    let config = otlp_bridge::Config::default().with_backends(vec![BackendTarget::url(format!("http://{addr}"))]);
    let bridge = Bridge::start(config).await;
    let ready = get(&format!("http://{}/ready", bridge.admin)).await;
    assert_eq!(ready.status, 503);
    assert!(ready.text().contains(&format!("the backend at http://{addr} {HTTP1_HINT}")), "{}", ready.text());

    let plain = MockBackend::start().await;
    let config =
        otlp_bridge::Config::default().with_backends(vec![BackendTarget::url(format!("https://{}", plain.addr))]);
    let bridge = Bridge::start(config).await;
    let ready = get(&format!("http://{}/ready", bridge.admin)).await;
    assert_eq!(ready.status, 503);
    assert!(ready.text().contains(NOT_TLS_HINT), "{}", ready.text());
}

#[tokio::test]
async fn check_names_http_to_a_tls_port() {
    let backend = MockBackend::start_tls(tls_server_config()).await;
    let (code, out) = check(&[&backend.url()], &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("speaks TLS, but the URL says http://: use https:// for a TLS port"), "{out}");
}

fn tls_server_config() -> tonic::transport::ServerTlsConfig {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, &ca).unwrap();
    tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(cert.pem(), key.serialize_pem()))
}

#[tokio::test]
async fn metrics_json_posted_to_v1_traces_is_answered_with_a_warning_naming_v1_metrics() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let a = post(&bridge.url("/v1/traces"), "application/json", example("metrics.json")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let body: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    let message = body["partialSuccess"]["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "no spans in this request: its top-level key(s) \"resourceMetrics\" are not part of a traces request"
        ),
        "{body}"
    );
    assert!(message.ends_with("\"resourceMetrics\" is the top-level key of metrics: did you mean /v1/metrics?"));
    assert_eq!(body["partialSuccess"].get("rejectedSpans"), None, "0 rejected (a warning): {body}");
    assert_eq!(backend.calls(), 0);
    // A truly empty request stays a plain success.
    assert_eq!(post(&bridge.url("/v1/traces"), "application/json", "{}").await.text(), "{}");
}

const DATA_BINARY_HINT: &str = "with curl, send the file with --data-binary @FILE: -d strips newlines and carriage \
                                returns, which corrupts protobuf and compressed bodies";

/// What `curl -d @file` sends: the file without its CR and LF bytes.
fn as_curl_d_sends(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().copied().filter(|b| *b != b'\n' && *b != b'\r').collect()
}

#[tokio::test]
async fn protobuf_or_gzip_mangled_by_curl_d_is_told_to_use_data_binary() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let url = bridge.url("/v1/traces");
    // trace.pb starts with field 1 (0x0a = '\n'): curl -d drops exactly the bytes protobuf framing needs.
    let pb = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples/trace.pb")).unwrap();
    assert!(pb.contains(&b'\n'));
    let mangled = as_curl_d_sends(&pb);
    let curl = [("content-type", "application/x-protobuf"), ("user-agent", "curl/8.5.0")];
    let a = request("POST", &url, &curl, mangled.clone()).await;
    assert_eq!(a.status, 400);
    let (_, message) = a.status_message();
    assert!(message.starts_with("invalid OTLP protobuf: "), "{message}");
    assert!(message.ends_with(DATA_BINARY_HINT), "{message}");
    // Not curl: the plain error.
    let other = [("content-type", "application/x-protobuf"), ("user-agent", "python-requests/2.32")];
    let (_, message) = request("POST", &url, &other, mangled).await.status_message();
    assert!(!message.contains("--data-binary"), "{message}");
    // gzip, any content type.
    let gz = as_curl_d_sends(&gzip(&example("trace.json")));
    let headers = [("content-type", "application/json"), ("content-encoding", "gzip"), ("user-agent", "curl/8.5.0")];
    let a = request("POST", &url, &headers, gz).await;
    assert_eq!(a.status, 400);
    let (_, message) = a.status_message();
    assert!(message.starts_with("the body is not valid gzip data"), "{message}");
    assert!(message.ends_with(DATA_BINARY_HINT), "{message}");
    assert_eq!(backend.calls(), 0);
}

#[tokio::test]
async fn a_grpc_exporter_on_the_http_port_hears_where_grpc_goes_and_it_is_logged_once() {
    // A real generated gRPC client (opentelemetry-proto's), so its request is its own type: the same bytes.
    use opentelemetry_proto::tonic::collector::trace::v1::{
        trace_service_client::TraceServiceClient, ExportTraceServiceRequest as ClientRequest,
    };
    use prost::Message as _;
    let backend = MockBackend::start().await;
    let bridge = BridgeProcess::start(&["--backend", &backend.url()]).await;
    // Every backend answered: now the start-up line says ready.
    let ready = bridge.until("otlp-bridge ready").await;
    assert!(ready.last().unwrap().contains(&format!("listen={}", bridge.addr)), "{ready:?}");
    let mut client = TraceServiceClient::connect(format!("http://{}", bridge.addr)).await.unwrap();
    for _ in 0..3 {
        let request = ClientRequest::decode(spans(1, 1).encode_to_vec().as_slice()).unwrap();
        let status = client.export(request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");
        let message = status.message();
        assert!(message.starts_with("this port speaks OTLP/HTTP (POST /v1/traces"), "{message}");
        assert!(message.contains("--grpc-listen 0.0.0.0:4317"), "{message}");
    }
    let lines = bridge.until("a gRPC client called the OTLP/HTTP port").await;
    assert!(lines.last().unwrap().contains("WARN"), "{lines:?}");
    // Logged once however often the exporter retries.
    let log = bridge.log();
    assert_eq!(log.matches("a gRPC client called the OTLP/HTTP port").count(), 1, "{log}");
    assert_eq!(backend.calls(), 0, "no data reached the backend");
}

#[tokio::test]
async fn a_body_whose_headers_misname_it_is_told_which_header_to_change() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let url = bridge.url("/v1/traces");
    let curl = |ct: &'static str| [("content-type", ct), ("user-agent", "curl/8.5.0")];
    // A JSON file posted as protobuf with --data-binary, as the walk-through did: not told about --data-binary.
    let a = request("POST", &url, &curl("application/x-protobuf"), example("trace.json")).await;
    assert_eq!(a.status, 400);
    let (_, message) = a.status_message();
    assert!(message.starts_with("invalid OTLP protobuf: "), "{message}");
    assert!(
        message.ends_with("the body looks like JSON, not protobuf: send it with -H 'Content-Type: application/json'"),
        "{message}"
    );
    assert!(!message.contains("--data-binary"), "{message}");
    // Protobuf posted as JSON.
    let pb = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples/trace.pb")).unwrap();
    let (_, message) = request("POST", &url, &curl("application/json"), pb.clone()).await.status_message();
    assert!(message.starts_with("invalid OTLP/JSON: "), "{message}");
    assert!(message.ends_with("send it with -H 'Content-Type: application/x-protobuf'"), "{message}");
    // gzip without Content-Encoding, as either type.
    for ct in ["application/json", "application/x-protobuf"] {
        let (_, message) = request("POST", &url, &curl(ct), gzip(&pb)).await.status_message();
        assert!(message.contains("gzip magic bytes (1f 8b): add -H 'Content-Encoding: gzip'"), "{ct}: {message}");
    }
    // Content-Encoding: gzip on a body that is not compressed.
    let headers = [("content-type", "application/json"), ("content-encoding", "gzip")];
    let (_, message) = request("POST", &url, &headers, example("trace.json")).await.status_message();
    assert!(message.starts_with("the body is not valid gzip data"), "{message}");
    assert!(message.ends_with("it looks like JSON): drop the Content-Encoding header, or compress it"), "{message}");
    assert_eq!(backend.calls(), 0);
}

#[tokio::test]
async fn a_port_in_use_is_said_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let admin = format!("127.0.0.1:{}", free_port());
    let out = run_binary(&["--listen", &listen, "--metrics-listen", &admin, "--backend", "debug"], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("Address already in use").count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("cannot listen on {listen} (--listen)")), "{stderr}");
}

#[test]
fn readme_commands_run_the_binary_where_the_documented_build_puts_it() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(readme.contains("cargo build --release"), "the README builds with cargo build --release");
    let (mut in_code, mut runs) = (false, 0);
    for line in readme.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        // The command word of a shell line, after any VAR=value assignments.
        let Some(command) = line.split_whitespace().find(|word| !word.contains('=')) else { continue };
        if !in_code || line.trim_start().starts_with('#') || !command.ends_with("otlp-bridge") {
            continue;
        }
        // A bare `otlp-bridge` is not on a newcomer's PATH after `cargo build --release`.
        assert_eq!(command, "./target/release/otlp-bridge", "README: {line}");
        runs += 1;
    }
    assert!(runs >= 3, "the README runs the binary in its walk-through ({runs} commands found)");
}
