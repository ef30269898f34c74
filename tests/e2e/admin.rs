//! The admin server: Prometheus metrics that count what happened, health, and readiness that follows the backend.

use crate::common::*;

#[tokio::test]
async fn metrics_count_accepted_sent_and_answered() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    assert_eq!(post_pb(&bridge, "/v1/traces", &spans(1, 7)).await.status, 200);
    assert_eq!(post(&bridge.url("/v1/logs"), "application/json", example("logs.json")).await.status, 200);
    assert_eq!(post(&bridge.url("/v1/metrics"), "text/plain", "x").await.status, 415);
    let m = bridge.metrics().await;
    assert_eq!(sum_metric(&m, "otelcol_receiver_accepted_spans_total", &["encoding=\"protobuf\""]), 7.0);
    assert_eq!(sum_metric(&m, "otelcol_receiver_accepted_log_records_total", &["encoding=\"json\""]), 1.0);
    assert_eq!(sum_metric(&m, "otelcol_exporter_sent_spans_total", &[&format!("backend=\"{}\"", backend.url())]), 7.0);
    assert_eq!(sum_metric(&m, "otlp_bridge_http_requests_total", &["code=\"200\""]), 2.0);
    assert_eq!(sum_metric(&m, "otlp_bridge_http_requests_total", &["signal=\"metrics\"", "code=\"415\""]), 1.0);
    assert!(m.contains("otlp_bridge_http_request_duration_seconds_bucket"));
    assert!(m.contains("otlp_bridge_memory_limit_bytes"));
}

#[tokio::test]
async fn failed_exports_are_counted_as_send_failed_and_refused() {
    let backend = MockBackend::start().await;
    backend.always(Action::fail(tonic::Code::PermissionDenied, "no"));
    let bridge = Bridge::with_backend(&backend).await;
    assert_eq!(post_pb(&bridge, "/v1/traces", &spans(1, 3)).await.status, 403);
    let m = bridge.metrics().await;
    assert_eq!(sum_metric(&m, "otelcol_exporter_send_failed_spans_total", &[]), 3.0);
    assert_eq!(sum_metric(&m, "otelcol_receiver_refused_spans_total", &[]), 3.0);
}

#[tokio::test]
async fn health_is_ok_and_ready_follows_the_backend() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config =
        otlp_bridge::Config::default().with_backends(vec![otlp_bridge::BackendTarget::url(format!("http://{addr}"))]);
    let bridge = Bridge::start(config).await;
    assert_eq!(get(&format!("http://{}/health", bridge.admin)).await.status, 200);
    let not_ready = get(&format!("http://{}/ready", bridge.admin)).await;
    assert_eq!(not_ready.status, 503);
    assert!(not_ready.text().contains(&addr.to_string()));
    let _backend = MockBackend::start_on(tokio::net::TcpListener::bind(addr).await.unwrap()).await;
    assert_eq!(get(&format!("http://{}/ready", bridge.admin)).await.status, 200);
}

/// What `promtool check metrics` asks (CI runs promtool itself; this keeps `cargo test` honest without it): HELP and
/// TYPE on every family, `_total` on counters, no summaries, and every known label set present at 0 before the
/// first request, so `rate()` and alerts see 0 rather than "no data".
#[tokio::test]
async fn metrics_are_prometheus_clean_and_start_at_zero_for_every_known_label_set() {
    let backend = MockBackend::start().await;
    let bridge = Bridge::with_backend(&backend).await;
    let m = bridge.metrics().await;
    let types: Vec<(&str, &str)> = m.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split_once(' ')).collect();
    assert!(types.len() > 20, "{m}");
    for (name, kind) in &types {
        assert!(m.contains(&format!("# HELP {name} ")), "{name} has no HELP");
        assert_ne!(*kind, "summary", "{name} is a summary: replicas cannot aggregate it");
        if *kind == "counter" {
            assert!(name.ends_with("_total"), "counter {name} does not end in _total");
        }
    }
    let b = format!("backend=\"{}\"", backend.url());
    for signal in ["spans", "metric_points", "log_records"] {
        for encoding in ["json", "protobuf"] {
            let accepted = format!("otelcol_receiver_accepted_{signal}_total");
            assert!(
                m.lines().any(|l| l.starts_with(&accepted) && l.contains(encoding) && l.ends_with(" 0")),
                "{accepted}"
            );
        }
        for family in ["otelcol_receiver_refused", "otelcol_exporter_sent", "otelcol_exporter_send_failed"] {
            let name = format!("{family}_{signal}_total");
            assert!(m.lines().any(|l| l.starts_with(&name) && l.ends_with(" 0")), "{name} not at 0");
        }
        let sent = format!("otelcol_exporter_send_failed_{signal}_total{{");
        assert!(m.lines().any(|l| l.starts_with(&sent) && l.contains(&b)), "{sent} has no {b}");
    }
    for name in
        ["process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds", "process_start_time_seconds"]
    {
        assert!(sum_metric(&m, name, &[]) > 0.0, "{name}");
    }
    let version = format!("otlp_bridge_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    assert!(m.lines().any(|l| l == version), "{version}");
}
