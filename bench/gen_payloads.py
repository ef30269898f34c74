#!/usr/bin/env python3
"""Write deterministic OTLP payloads (protobuf and OTLP/JSON) for the benchmark.

A copy of the shared benchmark harness's generator (it lives outside this repository), kept here so that
fuzz/seeds.py and benches/ need nothing beside the clone; keep the two in step when the harness changes.

Usage: gen_payloads.py OUT_DIR [--spans 100] [--seed 42]

Writes into OUT_DIR:
  traces.pb / traces.json    ExportTraceServiceRequest, N spans (10 traces x N/10 spans)
  logs.pb   / logs.json      ExportLogsServiceRequest, N log records
  metrics.pb / metrics.json  ExportMetricsServiceRequest, N data points (gauge, sum, histogram)
  manifest.tsv               name<TAB>path<TAB>content-type<TAB>items<TAB>bytes

Needs the PyPI packages opentelemetry-proto and protobuf.
OTLP/JSON follows the spec: lowerCamelCase keys, trace/span ids as hex strings,
enums as integers, 64-bit integers as decimal strings.
"""
import argparse
import base64
import json
import os
import random

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

BASE_NS = 1_700_000_000_000_000_000  # fixed epoch so output is byte-identical run to run
HEX_ID_KEYS = {"traceId", "spanId", "parentSpanId"}

ROUTES = ["/api/v1/users/{id}", "/api/v1/orders", "/api/v1/cart/items", "/healthz",
          "/api/v2/search", "/api/v1/payments/{id}/capture", "/static/app.js"]
METHODS = ["GET", "POST", "PUT", "DELETE"]
HOSTS = ["users-db.internal", "orders-svc.internal", "redis-cache-0", "payments.example.com"]
EVENT_NAMES = ["cache.miss", "retry", "db.query.start", "db.query.end", "exception"]


def kv(key, value):
    """One KeyValue with the AnyValue variant picked from the Python type."""
    av = common_pb2.AnyValue()
    if isinstance(value, bool):
        av.bool_value = value
    elif isinstance(value, int):
        av.int_value = value
    elif isinstance(value, float):
        av.double_value = value
    else:
        av.string_value = value
    return common_pb2.KeyValue(key=key, value=av)


def resource():
    return resource_pb2.Resource(attributes=[
        kv("service.name", "checkout-service"),
        kv("service.version", "2.14.3"),
        kv("service.namespace", "shop"),
        kv("deployment.environment", "production"),
        kv("host.name", "ip-10-0-12-34.ec2.internal"),
        kv("telemetry.sdk.name", "opentelemetry"),
        kv("telemetry.sdk.language", "rust"),
        kv("telemetry.sdk.version", "0.27.1"),
    ])


def scope():
    return common_pb2.InstrumentationScope(name="opentelemetry-instrumentation-http", version="0.51.0")


def rand_bytes(rng, n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def make_traces(rng, n_spans):
    spans = []
    n_traces = max(1, n_spans // 10)
    per_trace = n_spans // n_traces
    t = BASE_NS
    for ti in range(n_traces):
        trace_id = rand_bytes(rng, 16)
        ids = []
        count = per_trace + (n_spans - per_trace * n_traces if ti == n_traces - 1 else 0)
        for si in range(count):
            span_id = rand_bytes(rng, 8)
            parent = ids[rng.randrange(len(ids))] if ids else b""
            ids.append(span_id)
            start = t + rng.randrange(0, 50_000_000)
            dur = rng.randrange(100_000, 250_000_000)
            route = rng.choice(ROUTES)
            method = rng.choice(METHODS)
            status_code = rng.choice([200, 200, 200, 201, 204, 404, 500])
            span = trace_pb2.Span(
                trace_id=trace_id, span_id=span_id, parent_span_id=parent,
                name=f"{method} {route}",
                kind=trace_pb2.Span.SPAN_KIND_SERVER if si == 0 else rng.choice(
                    [trace_pb2.Span.SPAN_KIND_INTERNAL, trace_pb2.Span.SPAN_KIND_CLIENT]),
                start_time_unix_nano=start, end_time_unix_nano=start + dur,
                attributes=[
                    kv("http.request.method", method),
                    kv("http.route", route),
                    kv("http.response.status_code", status_code),
                    kv("url.scheme", "https"),
                    kv("url.path", route.replace("{id}", str(rng.randrange(1, 10**6)))),
                    kv("server.address", "shop.example.com"),
                    kv("server.port", 443),
                    kv("network.peer.address", f"10.0.{rng.randrange(256)}.{rng.randrange(256)}"),
                    kv("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"),
                    kv("app.request.size_kib", round(rng.uniform(0.1, 512.0), 3)),
                    kv("app.cache.hit", rng.random() < 0.7),
                ],
            )
            for ei in range(rng.randrange(0, 4)):
                name = rng.choice(EVENT_NAMES)
                span.events.append(trace_pb2.Span.Event(
                    time_unix_nano=start + (ei + 1) * dur // 5, name=name,
                    attributes=[kv("event.sequence", ei), kv("peer.host", rng.choice(HOSTS)),
                                kv("message", f"{name} on attempt {ei + 1}")]))
            if status_code >= 500:
                span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
                span.status.message = "upstream returned 500"
            else:
                span.status.code = trace_pb2.Status.STATUS_CODE_OK
            spans.append(span)
        t += 300_000_000
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add(resource=resource())
    rs.scope_spans.add(scope=scope(), spans=spans)
    return req, len(spans)


def make_logs(rng, n):
    req = logs_service_pb2.ExportLogsServiceRequest()
    rl = req.resource_logs.add(resource=resource())
    sl = rl.scope_logs.add(scope=scope())
    sevs = [(logs_pb2.SEVERITY_NUMBER_INFO, "INFO"), (logs_pb2.SEVERITY_NUMBER_WARN, "WARN"),
            (logs_pb2.SEVERITY_NUMBER_ERROR, "ERROR"), (logs_pb2.SEVERITY_NUMBER_DEBUG, "DEBUG")]
    for i in range(n):
        num, text = rng.choice(sevs)
        route = rng.choice(ROUTES)
        ts = BASE_NS + i * 1_000_000
        sl.log_records.add(
            time_unix_nano=ts, observed_time_unix_nano=ts + 1000,
            severity_number=num, severity_text=text,
            body=common_pb2.AnyValue(string_value=(
                f"{rng.choice(METHODS)} {route} completed in {rng.randrange(1, 900)} ms "
                f"for user {rng.randrange(10**6)}")),
            attributes=[kv("http.route", route), kv("code.function", "handle_request"),
                        kv("code.lineno", rng.randrange(1, 2000)), kv("thread.id", rng.randrange(64)),
                        kv("user.id", str(rng.randrange(10**6)))],
            trace_id=rand_bytes(rng, 16), span_id=rand_bytes(rng, 8), flags=1)
    return req, n


def make_metrics(rng, n_points):
    req = metrics_service_pb2.ExportMetricsServiceRequest()
    rm = req.resource_metrics.add(resource=resource())
    sm = rm.scope_metrics.add(scope=scope())
    per_metric = 10
    points = 0
    kinds = ["gauge", "sum", "histogram"]
    mi = 0
    while points < n_points:
        kind = kinds[mi % 3]
        m = sm.metrics.add(name=f"app.{kind}.metric_{mi}", description=f"synthetic {kind}", unit="ms")
        k = min(per_metric, n_points - points)
        for pi in range(k):
            attrs = [kv("http.route", ROUTES[pi % len(ROUTES)]), kv("http.request.method", METHODS[pi % 4]),
                     kv("instance", f"pod-{pi}")]
            start, ts = BASE_NS, BASE_NS + 60_000_000_000
            if kind == "gauge":
                m.gauge.data_points.add(attributes=attrs, time_unix_nano=ts, as_double=rng.uniform(0, 100))
            elif kind == "sum":
                m.sum.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
                m.sum.is_monotonic = True
                m.sum.data_points.add(attributes=attrs, start_time_unix_nano=start, time_unix_nano=ts,
                                      as_int=rng.randrange(10**9))
            else:
                m.histogram.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
                bounds = [5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0]
                counts = [rng.randrange(100) for _ in range(len(bounds) + 1)]
                dp = m.histogram.data_points.add(
                    attributes=attrs, start_time_unix_nano=start, time_unix_nano=ts,
                    count=sum(counts), sum=float(sum(c * b for c, b in zip(counts, bounds + [2000.0]))),
                    bucket_counts=counts, explicit_bounds=bounds, min=1.0, max=1999.0)
                dp.exemplars.add(time_unix_nano=ts, as_double=42.0,
                                 trace_id=rand_bytes(rng, 16), span_id=rand_bytes(rng, 8))
        points += k
        mi += 1
    return req, points


def hexify(node):
    """protobuf's JSON mapping writes bytes as base64; OTLP/JSON wants hex for trace/span ids."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in HEX_ID_KEYS and isinstance(v, str):
                node[k] = base64.b64decode(v).hex()
            else:
                hexify(v)
    elif isinstance(node, list):
        for v in node:
            hexify(v)
    return node


def to_otlp_json(msg):
    d = json_format.MessageToDict(msg, use_integers_for_enums=True)  # camelCase, int64 as str
    return json.dumps(hexify(d), separators=(",", ":")).encode()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--spans", type=int, default=100, help="spans / log records / data points per request")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    rows = []
    for name, maker, signal in (("traces", make_traces, "traces"), ("logs", make_logs, "logs"),
                                ("metrics", make_metrics, "metrics")):
        rng = random.Random(f"{a.seed}-{name}")
        msg, items = maker(rng, a.spans)
        for ext, ctype, data in (("pb", "application/x-protobuf", msg.SerializeToString(deterministic=True)),
                                 ("json", "application/json", to_otlp_json(msg))):
            fname = f"{name}.{ext}"
            with open(os.path.join(a.out_dir, fname), "wb") as f:
                f.write(data)
            rows.append((f"{name}_{ext}", fname, f"/v1/{signal}", ctype, items, len(data)))
    with open(os.path.join(a.out_dir, "manifest.tsv"), "w") as f:
        f.write("name\tfile\tpath\tcontent_type\titems\tbytes\n")
        for r in rows:
            f.write("\t".join(map(str, r)) + "\n")
    for r in rows:
        print(f"{r[0]:14s} {r[4]:4d} items {r[5]:7d} bytes -> {os.path.join(a.out_dir, r[1])}")


if __name__ == "__main__":
    main()
