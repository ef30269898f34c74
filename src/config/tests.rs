use super::*;

pub(super) fn config(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut argv = vec!["otlp-bridge"];
    argv.extend_from_slice(args);
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_cli_and_env(Cli::without_env(argv).expect("flags parse"), &env)
}

/// Run again as a child process with `OTLP_BRIDGE_*` variables set (setting them in this process would race
/// with other tests): the defaults and this module's `config` helper must not see them.
#[test]
fn defaults_and_tests_never_read_the_process_environment() {
    const CHILD: &str = "OTLP_BRIDGE_TEST_CHILD_ENV";
    if std::env::var_os(CHILD).is_some() {
        for c in [Config::default(), config(&[], &[]).unwrap()] {
            assert_eq!((c.listen.to_string(), c.memory_limit_bytes), ("127.0.0.1:4318".into(), 20 << 20));
        }
        return;
    }
    let name = "config::tests::defaults_and_tests_never_read_the_process_environment";
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1"])
        .env(CHILD, "1")
        .env("OTLP_BRIDGE_LISTEN", "127.0.0.1:1")
        .env("OTLP_BRIDGE_MEMORY_LIMIT_MIB", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("1 passed"), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn defaults_match_the_fixed_contract() {
    let c = config(&[], &[]).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:4318");
    assert_eq!(c.metrics_listen.to_string(), "127.0.0.1:8888");
    assert_eq!(c.max_body_bytes, 67_108_864);
    assert_eq!(c.backends[0], vec![BackendTarget::url("http://localhost:4317")]);
    assert!(c.cors_allowed_origins.is_empty());
    assert_eq!(c.memory_limit_bytes, 20 << 20);
}

#[test]
fn repeated_backend_flags_fan_out_and_win_over_otel_endpoint() {
    let c = config(
        &["--backend", "http://a:4317", "--backend", "debug"],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4317")],
    )
    .unwrap();
    assert_eq!(c.backends[2], vec![BackendTarget::url("http://a:4317"), BackendTarget::url("debug")]);
}

#[test]
fn otel_endpoints_apply_per_signal_when_no_backend_flag_is_given() {
    let c = config(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://all:4317/"),
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://logs:4317"),
        ],
    )
    .unwrap();
    assert_eq!(c.backends[SignalKind::Traces.index()], vec![BackendTarget::url("https://all:4317")]);
    assert_eq!(c.backends[SignalKind::Logs.index()], vec![BackendTarget::url("http://logs:4317")]);
}

#[test]
fn backend_urls_are_validated() {
    assert!(config(&["--backend", "localhost:4317"], &[]).is_err());
    assert!(config(&["--backend", "ftp://x:1"], &[]).is_err());
    assert!(config(&["--backend", "http://x:4317/v1/traces"], &[]).is_err());
}

#[test]
fn credentials_in_backend_urls_are_refused_without_being_repeated() {
    for url in ["http://user:s3cret@collector:4317", "https://s3cret@collector:4317"] {
        let e = config(&["--backend", url], &[]).unwrap_err().to_string();
        assert!(!e.contains("s3cret"), "{e}");
        assert!(e.contains("--backend-header") && e.contains("****@collector:4317"), "{e}");
    }
}

#[test]
fn headers_merge_env_then_flags_with_percent_decoding() {
    let c = config(
        &["--backend-header", "X-Tenant=flag"],
        &[("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=env,authorization=Bearer%20abc")],
    )
    .unwrap();
    assert_eq!(
        c.backend_headers,
        vec![("authorization".to_string(), "Bearer abc".to_string()), ("x-tenant".to_string(), "flag".to_string())]
    );
    assert!(config(&["--backend-header", "novalue"], &[]).is_err());
}

#[test]
fn otel_timeout_and_compression_are_honoured() {
    let c = config(&[], &[("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"), ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")]).unwrap();
    assert_eq!(c.export_timeout, Duration::from_millis(2500));
    assert!(c.backend_gzip);
    assert!(config(&[], &[("OTEL_EXPORTER_OTLP_COMPRESSION", "lz4")]).is_err());
}

#[test]
fn receiver_tls_flags_come_from_flags_or_env_and_go_together() {
    let c = config(&[], &[]).unwrap();
    assert!(c.server_tls.is_none());
    let c = config(&["--tls-cert", "/c.pem", "--tls-key", "/k.pem", "--tls-client-ca", "/ca.pem"], &[]).unwrap();
    let tls = c.server_tls.unwrap();
    assert_eq!((tls.cert, tls.key), (PathBuf::from("/c.pem"), PathBuf::from("/k.pem")));
    assert_eq!(tls.client_ca, Some(PathBuf::from("/ca.pem")));
    assert!(Cli::without_env(["otlp-bridge", "--tls-cert", "/c.pem"]).is_err(), "a certificate needs its key");
    assert!(Cli::without_env(["otlp-bridge", "--tls-client-ca", "/ca.pem"]).is_err());
}

#[test]
fn the_resolve_interval_has_a_default_and_a_floor() {
    let c = config(&[], &[]).unwrap();
    assert_eq!(c.backend_resolve_interval, Duration::from_secs(5));
    assert_eq!(c.max_connection_age, Some(Duration::from_secs(300)));
    assert_eq!(config(&["--max-connection-age", "0s"], &[]).unwrap().max_connection_age, None);
    assert!(config(&["--backend-resolve-interval", "1ms"], &[]).is_err());
}

#[test]
fn forward_headers_are_lowercased_deduplicated_and_validated() {
    let c = config(&["--forward-header", "X-Scope-OrgID", "--forward-header", "x-scope-orgid,X-Team"], &[]).unwrap();
    assert_eq!(
        c.forward_headers,
        vec![http::HeaderName::from_static("x-scope-orgid"), http::HeaderName::from_static("x-team")]
    );
    assert!(config(&["--forward-header", "content-type"], &[]).is_err());
    assert!(config(&["--forward-header", "grpc-timeout"], &[]).is_err());
    assert!(config(&["--forward-header", "bad header"], &[]).is_err());
}

#[test]
fn batching_can_be_disabled() {
    assert!(config(&["--disable-batching"], &[]).unwrap().batch.is_none());
    let b = config(&["--batch-timeout", "50ms", "--batch-max-items", "10"], &[]).unwrap().batch.unwrap();
    assert_eq!((b.max_items, b.timeout), (10, Duration::from_millis(50)));
}

#[test]
fn the_grpc_receiver_is_off_by_default_and_refuses_a_backend_that_is_itself() {
    assert_eq!(config(&[], &[]).unwrap().grpc_listen, None);
    let on = config(&["--grpc-listen", "0.0.0.0:4317", "--backend", "http://192.0.2.1:4317"], &[]).unwrap();
    assert_eq!(on.grpc_listen.map(|a| a.to_string()), Some("0.0.0.0:4317".into()));
    // The default backend is localhost:4317: turning the receiver on there without a backend would loop.
    for listen in ["0.0.0.0:4317", "127.0.0.1:4317"] {
        let Err(e) = config(&["--grpc-listen", listen], &[]) else { panic!("{listen}: accepted a loop") };
        let message = e.to_string();
        assert!(message.contains("own --grpc-listen address") && message.contains("export to itself"), "{message}");
    }
}
