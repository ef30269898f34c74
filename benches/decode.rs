//! Decode throughput per signal, in MB/s of request body, on the payload shapes of the shared benchmark
//! (`bench/gen_payloads.py`: 100 spans / log records / metric data points per request).
//!
//! - `json_transcode/<signal>`: OTLP/JSON straight to protobuf bytes, what the bridge does with a JSON request;
//! - `json_transcode_serde/<signal>`: the same with serde_json as the reader, which the receiver falls back to
//!   for bodies the fast reader leaves (errors, rare forms): the ratio to `json_transcode` is the fast reader's gain;
//! - `json_decode_encode/<signal>`: OTLP/JSON -> prost types -> protobuf bytes, for comparison;
//! - `protobuf_scan/<signal>`: the wire scan that validates and counts a protobuf request the bridge forwards as is;
//! - `protobuf_prost/<signal>`: a full prost decode of the same body, for comparison (the bridge does not do it);
//! - `resource_stamp/<signal>`: `--resource-attribute*` with three keys (one upsert of a key the payload has, two
//!   inserts of keys it lacks) on the scanned protobuf body, the step the receiver adds after the scan (with no
//!   attributes configured it skips the step: nothing to measure).
//!
//! `cargo bench --bench decode` (add `-- --quick` for a short run). By default the payloads are built here, mirroring
//! the generator; `OTLP_BENCH_PAYLOADS=DIR` uses the generator's own files instead (`gen_payloads.py DIR`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use otlp_bridge::internals::wire::ResourceStamp;
use otlp_bridge::internals::{json, wire};
use otlp_bridge::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_bridge::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_bridge::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_bridge::proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use otlp_bridge::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlp_bridge::proto::metrics::v1::{
    metric, number_data_point, Exemplar, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use otlp_bridge::proto::resource::v1::Resource;
use otlp_bridge::proto::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status};
use otlp_bridge::{AttributeMode, Logs, Metrics, ResourceAttribute, Signal, Traces};
use prost::Message;

const ITEMS: usize = 100;
const BASE_NS: u64 = 1_700_000_000_000_000_000;
const ROUTES: [&str; 7] = [
    "/api/v1/users/{id}",
    "/api/v1/orders",
    "/api/v1/cart/items",
    "/healthz",
    "/api/v2/search",
    "/api/v1/payments/{id}/capture",
    "/static/app.js",
];
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const HOSTS: [&str; 4] = ["users-db.internal", "orders-svc.internal", "redis-cache-0", "payments.example.com"];
const EVENT_NAMES: [&str; 5] = ["cache.miss", "retry", "db.query.start", "db.query.end", "exception"];

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.to_string(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn s(v: impl Into<String>) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn resource() -> Option<Resource> {
    let attrs = [
        ("service.name", "checkout-service"),
        ("service.version", "2.14.3"),
        ("service.namespace", "shop"),
        ("deployment.environment", "production"),
        ("host.name", "ip-10-0-12-34.ec2.internal"),
        ("telemetry.sdk.name", "opentelemetry"),
        ("telemetry.sdk.language", "rust"),
        ("telemetry.sdk.version", "0.27.1"),
    ];
    Some(Resource { attributes: attrs.iter().map(|(k, v)| kv(k, s(*v))).collect(), ..Default::default() })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "opentelemetry-instrumentation-http".into(),
        version: "0.51.0".into(),
        ..Default::default()
    })
}

fn bytes(rng: &mut fastrand::Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.u8(..)).collect()
}

fn traces(rng: &mut fastrand::Rng) -> ExportTraceServiceRequest {
    let mut spans = Vec::new();
    let mut t = BASE_NS;
    for _ in 0..ITEMS / 10 {
        let trace_id = bytes(rng, 16);
        let mut ids: Vec<Vec<u8>> = Vec::new();
        for si in 0..10 {
            let span_id = bytes(rng, 8);
            let parent = if ids.is_empty() { Vec::new() } else { ids[rng.usize(..ids.len())].clone() };
            ids.push(span_id.clone());
            let start = t + rng.u64(0..50_000_000);
            let dur = rng.u64(100_000..250_000_000);
            let route = ROUTES[rng.usize(..ROUTES.len())];
            let method = METHODS[rng.usize(..METHODS.len())];
            let status_code = [200, 200, 200, 201, 204, 404, 500][rng.usize(..7)];
            let kind = match si {
                0 => span::SpanKind::Server,
                _ if rng.bool() => span::SpanKind::Internal,
                _ => span::SpanKind::Client,
            };
            let events = (0..rng.u64(0..4))
                .map(|ei| {
                    let name = EVENT_NAMES[rng.usize(..EVENT_NAMES.len())];
                    span::Event {
                        time_unix_nano: start + (ei + 1) * dur / 5,
                        name: name.to_string(),
                        attributes: vec![
                            kv("event.sequence", any_value::Value::IntValue(ei as i64)),
                            kv("peer.host", s(HOSTS[rng.usize(..HOSTS.len())])),
                            kv("message", s(format!("{name} on attempt {}", ei + 1))),
                        ],
                        ..Default::default()
                    }
                })
                .collect();
            let status = if status_code >= 500 {
                Status { code: status::StatusCode::Error as i32, message: "upstream returned 500".into() }
            } else {
                Status { code: status::StatusCode::Ok as i32, message: String::new() }
            };
            spans.push(Span {
                trace_id: trace_id.clone(),
                span_id,
                parent_span_id: parent,
                name: format!("{method} {route}"),
                kind: kind as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: start + dur,
                attributes: vec![
                    kv("http.request.method", s(method)),
                    kv("http.route", s(route)),
                    kv("http.response.status_code", any_value::Value::IntValue(status_code)),
                    kv("url.scheme", s("https")),
                    kv("url.path", s(route.replace("{id}", &rng.u32(1..1_000_000).to_string()))),
                    kv("server.address", s("shop.example.com")),
                    kv("server.port", any_value::Value::IntValue(443)),
                    kv("network.peer.address", s(format!("10.0.{}.{}", rng.u8(..), rng.u8(..)))),
                    kv("user_agent.original", s("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36")),
                    kv("app.request.size_kib", any_value::Value::DoubleValue(0.1 + rng.f64() * 511.9)),
                    kv("app.cache.hit", any_value::Value::BoolValue(rng.f64() < 0.7)),
                ],
                events,
                status: Some(status),
                ..Default::default()
            });
        }
        t += 300_000_000;
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans { scope: scope(), spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn logs(rng: &mut fastrand::Rng) -> ExportLogsServiceRequest {
    let severities = [(9, "INFO"), (13, "WARN"), (17, "ERROR"), (5, "DEBUG")];
    let log_records = (0..ITEMS as u64)
        .map(|i| {
            let (number, text) = severities[rng.usize(..severities.len())];
            let route = ROUTES[rng.usize(..ROUTES.len())];
            let ts = BASE_NS + i * 1_000_000;
            let body = format!(
                "{} {route} completed in {} ms for user {}",
                METHODS[rng.usize(..METHODS.len())],
                rng.u32(1..900),
                rng.u32(..1_000_000)
            );
            LogRecord {
                time_unix_nano: ts,
                observed_time_unix_nano: ts + 1000,
                severity_number: number,
                severity_text: text.into(),
                body: Some(AnyValue { value: Some(s(body)) }),
                attributes: vec![
                    kv("http.route", s(route)),
                    kv("code.function", s("handle_request")),
                    kv("code.lineno", any_value::Value::IntValue(rng.i64(1..2000))),
                    kv("thread.id", any_value::Value::IntValue(rng.i64(0..64))),
                    kv("user.id", s(rng.u32(..1_000_000).to_string())),
                ],
                trace_id: bytes(rng, 16),
                span_id: bytes(rng, 8),
                flags: 1,
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs { scope: scope(), log_records, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn metrics(rng: &mut fastrand::Rng) -> ExportMetricsServiceRequest {
    let (start, ts) = (BASE_NS, BASE_NS + 60_000_000_000);
    let metrics = (0..ITEMS / 10)
        .map(|mi| {
            let kind = ["gauge", "sum", "histogram"][mi % 3];
            let attrs = |pi: usize| {
                vec![
                    kv("http.route", s(ROUTES[pi % ROUTES.len()])),
                    kv("http.request.method", s(METHODS[pi % 4])),
                    kv("instance", s(format!("pod-{pi}"))),
                ]
            };
            let data = match kind {
                "gauge" => metric::Data::Gauge(Gauge {
                    data_points: (0..10)
                        .map(|pi| NumberDataPoint {
                            attributes: attrs(pi),
                            time_unix_nano: ts,
                            value: Some(number_data_point::Value::AsDouble(rng.f64() * 100.0)),
                            ..Default::default()
                        })
                        .collect(),
                }),
                "sum" => metric::Data::Sum(Sum {
                    data_points: (0..10)
                        .map(|pi| NumberDataPoint {
                            attributes: attrs(pi),
                            start_time_unix_nano: start,
                            time_unix_nano: ts,
                            value: Some(number_data_point::Value::AsInt(rng.i64(0..1_000_000_000))),
                            ..Default::default()
                        })
                        .collect(),
                    aggregation_temporality: 2,
                    is_monotonic: true,
                }),
                _ => metric::Data::Histogram(Histogram {
                    data_points: (0..10)
                        .map(|pi| {
                            let bounds = vec![5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];
                            let counts: Vec<u64> = (0..9).map(|_| rng.u64(0..100)).collect();
                            let sum =
                                counts.iter().zip(bounds.iter().chain([2000.0].iter())).map(|(&c, b)| c as f64 * b);
                            HistogramDataPoint {
                                attributes: attrs(pi),
                                start_time_unix_nano: start,
                                time_unix_nano: ts,
                                count: counts.iter().sum(),
                                sum: Some(sum.sum()),
                                bucket_counts: counts,
                                explicit_bounds: bounds,
                                exemplars: vec![Exemplar {
                                    time_unix_nano: ts,
                                    value: Some(otlp_bridge::proto::metrics::v1::exemplar::Value::AsDouble(42.0)),
                                    trace_id: bytes(rng, 16),
                                    span_id: bytes(rng, 8),
                                    ..Default::default()
                                }],
                                min: Some(1.0),
                                max: Some(1999.0),
                                ..Default::default()
                            }
                        })
                        .collect(),
                    aggregation_temporality: 1,
                }),
            };
            Metric {
                name: format!("app.{kind}.metric_{mi}"),
                description: format!("synthetic {kind}"),
                unit: "ms".into(),
                data: Some(data),
                ..Default::default()
            }
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics { scope: scope(), metrics, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// (OTLP/JSON, protobuf) bodies of one signal: the generator's files if `OTLP_BENCH_PAYLOADS` is set, else built here.
fn payload<S: Signal>(build: fn(&mut fastrand::Rng) -> S::Request) -> (Vec<u8>, Vec<u8>) {
    if let Some(dir) = std::env::var_os("OTLP_BENCH_PAYLOADS") {
        let dir = std::path::PathBuf::from(dir);
        let read = |ext: &str| std::fs::read(dir.join(format!("{}.{ext}", S::KIND.name()))).unwrap();
        return (read("json"), read("pb"));
    }
    let request = build(&mut fastrand::Rng::with_seed(42));
    (json::encode(&request).into_bytes(), request.encode_to_vec())
}

fn bench_signal<S: Signal>(c: &mut Criterion, build: fn(&mut fastrand::Rng) -> S::Request) {
    let name = S::KIND.name();
    let (json_body, pb) = payload::<S>(build);
    let items = S::count(&json::decode::<S::Request>(&json_body).unwrap());
    assert_eq!(wire::scan(S::KIND.schema(), &pb).unwrap().items, items, "{name}: JSON and protobuf payloads differ");
    eprintln!("{name}: {items} items, OTLP/JSON {} bytes, protobuf {} bytes", json_body.len(), pb.len());

    let mut group = c.benchmark_group("json_transcode");
    group.throughput(Throughput::BytesDecimal(json_body.len() as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            // A fresh buffer per request, as the receiver does.
            let mut out = Vec::new();
            json::transcode::<S::Request>(black_box(&json_body), &mut out).unwrap();
            black_box(out)
        })
    });
    group.finish();

    // The receiver's path above takes the fast reader; serde_json is what it falls back to (and what it used alone
    // before): the ratio of the two is the fast reader's gain.
    let mut group = c.benchmark_group("json_transcode_serde");
    group.throughput(Throughput::BytesDecimal(json_body.len() as u64));
    group.bench_function(name, |b| {
        let mut out = Vec::with_capacity(json_body.len());
        b.iter(|| {
            out.clear();
            json::readers::serde::<S::Request>(black_box(&json_body), &mut out, usize::MAX).unwrap();
        })
    });
    group.finish();

    let mut group = c.benchmark_group("json_decode_encode");
    group.throughput(Throughput::BytesDecimal(json_body.len() as u64));
    group.bench_function(name, |b| {
        b.iter(|| black_box(json::decode::<S::Request>(black_box(&json_body)).unwrap().encode_to_vec()))
    });
    group.finish();

    let mut group = c.benchmark_group("protobuf_scan");
    group.throughput(Throughput::BytesDecimal(pb.len() as u64));
    group.bench_function(name, |b| b.iter(|| black_box(wire::scan(S::KIND.schema(), black_box(&pb)).unwrap())));
    group.finish();

    let mut group = c.benchmark_group("resource_stamp");
    group.throughput(Throughput::BytesDecimal(pb.len() as u64));
    let attribute = |key: &str, value: &str, mode| ResourceAttribute { key: key.into(), value: value.into(), mode };
    let stamp = ResourceStamp::new(&[
        attribute("service.name", "checkout", AttributeMode::Upsert),
        attribute("k8s.pod.name", "checkout-7d9f8b6c5d-x2x7q", AttributeMode::Insert),
        attribute("k8s.namespace.name", "shop", AttributeMode::Insert),
    ])
    .unwrap();
    let body = bytes::Bytes::from(pb.clone());
    let scan = wire::scan(S::KIND.schema(), &body).unwrap();
    group.bench_function(name, |b| {
        b.iter(|| black_box(stamp.apply(S::KIND.schema(), black_box(&body), Some(black_box(&scan)))))
    });
    group.finish();

    let mut group = c.benchmark_group("protobuf_prost");
    group.throughput(Throughput::BytesDecimal(pb.len() as u64));
    group.bench_function(name, |b| b.iter(|| black_box(S::Request::decode(black_box(&pb[..])).unwrap())));
    group.finish();
}

fn decode(c: &mut Criterion) {
    bench_signal::<Traces>(c, traces);
    bench_signal::<Metrics>(c, metrics);
    bench_signal::<Logs>(c, logs);
}

// criterion_group! generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, decode);
}
use group::benches;
criterion_main!(benches);
