#!/usr/bin/env python3
"""A real OTLP/gRPC backend for the client suite.

Serves the three OTLP collector services (traces, metrics, logs) with grpcio and
the generated `*_pb2_grpc` stubs of the PyPI `opentelemetry-proto` package, on
127.0.0.1 (port 0 by default: the kernel picks one).

Every Export request is appended as one JSON line to --record *before* the RPC
is acknowledged, so once the bridge has answered its HTTP client, what the
backend received is already on disk. The chosen port is printed on stdout
("PORT <n>") and written to --port-file (atomically) when given.

Record lines:
  {"signal": "traces",  "seq": n, "metadata": {...}, "spans": [{service, trace_id, span_id, parent_span_id, name}]}
  {"signal": "logs",    "seq": n, "metadata": {...}, "logs":  [{service, body, trace_id, span_id}]}
  {"signal": "metrics", "seq": n, "metadata": {...}, "points": [{service, metric, attributes, value}]}
  {"signal": ..., "seq": n, "refused": "UNAVAILABLE", "services": "..."}   (a scripted refusal, --fail-first)
"""
import argparse
import json
import os
import signal
import sys
import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


def _any_value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind)


def _attrs(kvs):
    return {kv.key: _any_value(kv.value) for kv in kvs}


def _service(resource):
    return _attrs(resource.attributes).get("service.name")


class Recorder:
    def __init__(self, path, fail_first=0, fail_code="UNAVAILABLE"):
        self._lock = threading.Lock()
        self._seq = 0
        self._f = open(path, "a", encoding="utf-8")
        self._fail_first = fail_first
        self._refused = {}
        self._fail_code = getattr(grpc.StatusCode, fail_code)

    def maybe_fail(self, signal_name, context, services):
        """Scripted failure: for each service.name, the first --fail-first Export calls carrying it
        are refused with --fail-code (and recorded as refused, without their data)."""
        with self._lock:
            key = ",".join(sorted(set(map(str, services))))
            if self._refused.get(key, 0) >= self._fail_first:
                return
            self._refused[key] = self._refused.get(key, 0) + 1
            self._seq += 1
            line = {"signal": signal_name, "seq": self._seq, "refused": self._fail_code.name, "services": key}
            self._f.write(json.dumps(line) + "\n")
            self._f.flush()
        context.abort(self._fail_code, "scripted failure (backend.py --fail-first)")

    def write(self, signal_name, context, key, items):
        md = {k: v for k, v in context.invocation_metadata() if not k.endswith("-bin")}
        with self._lock:
            self._seq += 1
            line = {"signal": signal_name, "seq": self._seq, "metadata": md, key: items}
            self._f.write(json.dumps(line, sort_keys=True) + "\n")
            self._f.flush()

    def close(self):
        with self._lock:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()


class Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, rec):
        self.rec = rec

    def Export(self, request, context):
        self.rec.maybe_fail("traces", context, [_service(rs.resource) for rs in request.resource_spans])
        spans = []
        for rs in request.resource_spans:
            svc = _service(rs.resource)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    spans.append({
                        "service": svc,
                        "scope": ss.scope.name,
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(),
                        "name": s.name,
                        "kind": s.kind,
                        "attributes": _attrs(s.attributes),
                    })
        self.rec.write("traces", context, "spans", spans)
        return trace_service_pb2.ExportTraceServiceResponse()


class Logs(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, rec):
        self.rec = rec

    def Export(self, request, context):
        self.rec.maybe_fail("logs", context, [_service(rl.resource) for rl in request.resource_logs])
        logs = []
        for rl in request.resource_logs:
            svc = _service(rl.resource)
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    logs.append({
                        "service": svc,
                        "body": _any_value(r.body),
                        "severity_number": r.severity_number,
                        "trace_id": r.trace_id.hex(),
                        "span_id": r.span_id.hex(),
                        "attributes": _attrs(r.attributes),
                    })
        self.rec.write("logs", context, "logs", logs)
        return logs_service_pb2.ExportLogsServiceResponse()


class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, rec):
        self.rec = rec

    def Export(self, request, context):
        self.rec.maybe_fail("metrics", context, [_service(rm.resource) for rm in request.resource_metrics])
        points = []
        for rm in request.resource_metrics:
            svc = _service(rm.resource)
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    data = getattr(m, kind) if kind else None
                    for p in getattr(data, "data_points", []):
                        if kind in ("sum", "gauge"):
                            value = getattr(p, p.WhichOneof("value")) if p.WhichOneof("value") else None
                        elif kind == "histogram":
                            value = {"count": p.count, "sum": p.sum}
                        else:
                            value = {"count": getattr(p, "count", None)}
                        points.append({
                            "service": svc,
                            "metric": m.name,
                            "type": kind,
                            "attributes": _attrs(p.attributes),
                            "value": value,
                        })
        self.rec.write("metrics", context, "points", points)
        return metrics_service_pb2.ExportMetricsServiceResponse()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--record", required=True, help="JSONL file every request is appended to")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="write the bound port here once serving")
    ap.add_argument("--fail-first", type=int, default=0, help="per service.name, refuse the first N Export calls")
    ap.add_argument("--fail-code", default="UNAVAILABLE", help="gRPC status code name for --fail-first")
    args = ap.parse_args()

    rec = Recorder(args.record, args.fail_first, args.fail_code)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(rec), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(rec), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(rec), server)
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    if port == 0:
        sys.exit(f"backend: cannot bind 127.0.0.1:{args.port}")
    server.start()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"PORT {port}", flush=True)

    stop.wait()
    server.stop(grace=2).wait(5)
    rec.close()


if __name__ == "__main__":
    main()
