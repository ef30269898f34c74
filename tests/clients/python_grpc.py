#!/usr/bin/env python3
"""Issue 20's real-client cases: the official Python SDK's OTLP/gRPC exporter
(opentelemetry-exporter-otlp-proto-grpc) through the bridge's --grpc-listen into backend.py (grpcio).

  steady   a healthy backend: 300 spans (plain and gzip) and 60 log records arrive exactly (every id once, none
           missing), every export reports success to the app; with --node, the npm gRPC exporter
           (@opentelemetry/exporter-trace-otlp-grpc, node_grpc_client.js) likewise: 300 spans exactly
  retry    the backend refuses each service's first 2 exports (UNAVAILABLE) and the bridge does not retry
           (--retry-max-elapsed 0s): the bridge answers UNAVAILABLE with google.rpc.RetryInfo, the SDK retries on
           its own, and the spans still arrive exactly once, after the backend is "back"

Passes when both hold and the bridge exits 0 on SIGTERM. The last line of output is the summary.

  python_grpc.py --bridge BIN --work DIR [--node NODE]
"""
import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

HERE = os.path.dirname(os.path.abspath(__file__))


def get(url, timeout=2):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def wait(pred, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"timed out after {seconds}s waiting for {what}")


def free_ports(n):
    import socket
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def records(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


class Counting(OTLPSpanExporter):
    """The SDK's exporter; counts what it answered the processor."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.exports = 0
        self.failed = 0

    def export(self, spans):
        result = super().export(spans)
        self.exports += 1
        if result != SpanExportResult.SUCCESS:
            self.failed += 1
        return result


def round_(name, bridge_bin, work, backend_args, bridge_args, node=None):
    os.makedirs(work, exist_ok=True)
    record = os.path.join(work, "backend.jsonl")
    port_file = os.path.join(work, "backend.port")
    backend = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "backend.py"), "--record", record, "--port-file", port_file] + backend_args,
        stdout=open(os.path.join(work, "backend.log"), "w"), stderr=subprocess.STDOUT)
    wait(lambda: os.path.exists(port_file) and os.path.getsize(port_file) > 0, 30, "the backend to listen")
    backend_port = int(open(port_file).read().strip())
    http_port, grpc_port, admin_port = free_ports(3)
    bridge = subprocess.Popen(
        [bridge_bin, "--listen", f"127.0.0.1:{http_port}", "--grpc-listen", f"127.0.0.1:{grpc_port}",
         "--metrics-listen", f"127.0.0.1:{admin_port}", "--backend", f"http://127.0.0.1:{backend_port}"] + bridge_args,
        stdout=open(os.path.join(work, "bridge.log"), "w"), stderr=subprocess.STDOUT,
        env={**os.environ, "RUST_LOG": "info", "NO_COLOR": "1"})
    wait(lambda: get(f"http://127.0.0.1:{admin_port}/ready")[0] == 200, 30, "the bridge to be ready")

    service = f"otlp-bridge-suite-python-grpc-{name}"
    resource = Resource.create({"service.name": service})
    endpoint = f"127.0.0.1:{grpc_port}"
    sent, exporters = [], []
    for compression in (Compression.NoCompression, Compression.Gzip):
        provider = TracerProvider(resource=resource)
        exporter = Counting(endpoint=endpoint, insecure=True, compression=compression)
        exporters.append(exporter)
        provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=50))
        tracer = provider.get_tracer("suite.python.grpc")
        for i in range(150):
            with tracer.start_as_current_span(f"grpc-span-{compression.name}-{i}") as span:
                sent.append(f"{span.get_span_context().span_id:016x}")
        provider.force_flush(60_000)
        provider.shutdown()

    node_ok, node_note = True, ""
    if name == "steady" and node:
        node_out = os.path.join(work, "node.json")
        rc = subprocess.run([node, os.path.join(HERE, "node_grpc_client.js"), "--endpoint", f"http://{endpoint}",
                             "--service", f"{service}-node", "--out", node_out], cwd=HERE, timeout=180,
                            stdout=open(os.path.join(work, "node.log"), "w"), stderr=subprocess.STDOUT).returncode
        node_sent = json.load(open(node_out))["sent"] if os.path.exists(node_out) else []
        node_got = [s["span_id"] for r in records(record) if r.get("signal") == "traces" for s in r.get("spans", [])
                    if s["service"] == f"{service}-node"]
        node_ok = rc == 0 and len(node_sent) == 300 and sorted(node_got) == sorted(node_sent)
        node_note = (f"; node exporter {'PASS' if node_ok else 'FAIL'}: {len(node_sent)} spans sent, "
                     f"{len(set(node_got))} received ({len(node_got) - len(set(node_got))} duplicates), exit {rc}")

    logs_sent = []
    if name == "steady":
        log_provider = LoggerProvider(resource=resource)
        log_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True)))
        logger = logging.getLogger("suite.python.grpc")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(LoggingHandler(logger_provider=log_provider))
        for i in range(60):
            body = f"grpc log record {i}"
            logger.info(body)
            logs_sent.append(body)
        log_provider.shutdown()

    got = [s["span_id"] for r in records(record) if r.get("signal") == "traces" for s in r.get("spans", [])
           if s["service"] == service]
    logs_got = [l["body"] for r in records(record) if r.get("signal") == "logs" for l in r.get("logs", [])
                if l["service"] == service]
    refusals = sum(1 for r in records(record) if r.get("refused"))
    _, metrics = get(f"http://127.0.0.1:{admin_port}/metrics", timeout=5)
    unavailable = sum(float(l.rsplit(" ", 1)[1]) for l in metrics.splitlines()
                      if l.startswith("otlp_bridge_grpc_requests_total") and 'code="UNAVAILABLE"' in l)
    bridge.send_signal(signal.SIGTERM)
    try:
        bridge_rc = bridge.wait(30)
    except subprocess.TimeoutExpired:
        bridge.kill()
        bridge_rc = "still running 30 s after SIGTERM"
    backend.send_signal(signal.SIGTERM)
    backend.wait(10)

    failed = sum(e.failed for e in exporters)
    exact = sorted(got) == sorted(sent) and sorted(logs_got) == sorted(logs_sent)
    retried = name != "retry" or (refusals > 0 and unavailable > 0)
    ok = exact and failed == 0 and bridge_rc == 0 and retried and node_ok
    print(f"python grpc {name}: {'PASS' if ok else 'FAIL'}: {len(sent)} spans sent, {len(set(got))} received "
          f"({len(got) - len(set(got))} duplicates, {len(set(sent) - set(got))} missing), {len(logs_sent)} log records "
          f"sent, {len(logs_got)} received; {sum(e.exports for e in exporters)} span exports, {failed} failed; "
          f"backend refused {refusals}, bridge answered UNAVAILABLE {unavailable:.0f} times; bridge exit {bridge_rc}"
          f"{node_note}",
          flush=True)
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bridge", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--node", help="node binary: also run the npm gRPC exporter (node_grpc_client.js) in the steady round")
    args = ap.parse_args()
    steady = round_("steady", args.bridge, os.path.join(args.work, "steady"), [], [], node=args.node)
    retry = round_("retry", args.bridge, os.path.join(args.work, "retry"),
                   ["--fail-first", "2", "--fail-code", "UNAVAILABLE"], ["--retry-max-elapsed", "0s"])
    ok = steady and retry
    print(f"python grpc exporter: {'PASS' if ok else 'FAIL'}: steady {'ok' if steady else 'failed'}, "
          f"retry on UNAVAILABLE+RetryInfo {'ok' if retry else 'failed'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
