#!/usr/bin/env python3
"""Issue 11's real-client case: the official Python SDK through the bridge in queued mode loses nothing while
the backend is down for 60 s.

The app is what the issue measured: opentelemetry-sdk with the default BatchSpanProcessor (queue 2048, batches of
512, 5 s delay) and the default OTLP/HTTP protobuf exporter, producing 500 spans/s. The bridge runs with
--queue-dir; the backend is backend.py (grpcio, records every export before acknowledging it).

  5 s   backend up
  60 s  backend killed (SIGKILL), the app keeps producing
  5 s   a new backend on the same port, the app keeps producing
  then  the app flushes and shuts down; we wait for the backend to hold every span

Produced = every span the app ended (counted by a span processor beside the batch one, so spans the SDK dropped
from its own full queue count as lost). Passes when every produced span reached a backend, no export failed, and
the bridge exits 0 on SIGTERM. The last line of output is the summary.

  python_outage.py --bridge BIN --work DIR [--outage SECONDS] [--direct]
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

HERE = os.path.dirname(os.path.abspath(__file__))
SERVICE = "otlp-bridge-suite-python-outage"
RATE = 500  # spans per second


class Produced(SpanProcessor):
    """Every span the app ended, by id."""

    def __init__(self):
        self.ids = set()
        self._lock = threading.Lock()

    def on_end(self, span):
        with self._lock:
            self.ids.add(f"{span.context.span_id:016x}")


class CountingExporter(OTLPSpanExporter):
    """The default exporter; only counts what it answered the processor."""

    failed = 0
    exports = 0

    def export(self, spans):
        result = super().export(spans)
        CountingExporter.exports += 1
        if result != SpanExportResult.SUCCESS:
            CountingExporter.failed += 1
        return result


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


def start_backend(work, name, port=0):
    port_file = os.path.join(work, f"{name}.port")
    log = open(os.path.join(work, f"{name}.log"), "w")
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "backend.py"), "--record", os.path.join(work, f"{name}.jsonl"),
         "--port", str(port), "--port-file", port_file],
        stdout=log, stderr=subprocess.STDOUT,
    )
    wait(lambda: os.path.exists(port_file) and os.path.getsize(port_file) > 0, 30, f"{name} to listen")
    with open(port_file) as f:
        return proc, int(f.read().strip())


def received(work):
    ids = []
    for name in ("backend", "backend-again"):
        path = os.path.join(work, f"{name}.jsonl")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                if rec.get("signal") == "traces":
                    ids.extend(s["span_id"] for s in rec.get("spans", []) if s["service"] == SERVICE)
    return ids


def free_ports(n):
    import socket
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bridge", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--outage", type=float, default=60)
    ap.add_argument("--direct", action="store_true", help="the control: no --queue-dir (direct mode loses spans)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    work = args.work

    backend, backend_port = start_backend(work, "backend")
    http_port, admin_port = free_ports(2)
    bridge_log = open(os.path.join(work, "bridge.log"), "w")
    bridge = subprocess.Popen(
        [args.bridge, "--listen", f"127.0.0.1:{http_port}", "--metrics-listen", f"127.0.0.1:{admin_port}",
         "--backend", f"http://127.0.0.1:{backend_port}"]
        + ([] if args.direct else ["--queue-dir", os.path.join(work, "queue")]),
        stdout=bridge_log, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "info", "NO_COLOR": "1"},
    )
    wait(lambda: get(f"http://127.0.0.1:{admin_port}/ready")[0] == 200, 30, "the bridge to be ready")

    produced = Produced()
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(produced)
    # Defaults throughout, as an application has them.
    provider.add_span_processor(BatchSpanProcessor(CountingExporter(endpoint=f"http://127.0.0.1:{http_port}/v1/traces")))
    tracer = provider.get_tracer("suite.python.outage")

    began = time.monotonic()
    phases = [(5, None), (args.outage, "kill"), (5, "restart")]
    backend_again = None
    made = 0
    for seconds, action in phases:
        if action == "kill":
            backend.send_signal(signal.SIGKILL)
            backend.wait()
            print(f"[{time.monotonic() - began:5.1f}s] backend killed after {made} spans", flush=True)
        elif action == "restart":
            backend_again, _ = start_backend(work, "backend-again", backend_port)
            print(f"[{time.monotonic() - began:5.1f}s] backend back on port {backend_port} after {made} spans", flush=True)
        phase_end = time.monotonic() + seconds
        while time.monotonic() < phase_end:
            # One span every 2 ms, paced against the clock so a slow moment is caught up.
            with tracer.start_as_current_span(f"outage-span-{made}", attributes={"suite.seq": made}):
                pass
            made += 1
            ahead = began + made / RATE - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    flushed = provider.force_flush(60_000)
    provider.shutdown()
    produced_at = time.monotonic()

    wanted = produced.ids
    try:
        wait(lambda: wanted.issubset(set(received(work))), 60, "the backend to hold every produced span")
    except SystemExit as e:
        print(e, flush=True)
    got = received(work)
    unique = set(got)
    missing = wanted - unique
    caught_up = time.monotonic() - produced_at

    _, metrics = get(f"http://127.0.0.1:{admin_port}/metrics", timeout=5)
    dropped = sum(float(l.rsplit(" ", 1)[1]) for l in metrics.splitlines()
                  if l.startswith("otlp_bridge_dropped_items_total"))
    bridge.send_signal(signal.SIGTERM)
    try:
        bridge_rc = bridge.wait(30)
    except subprocess.TimeoutExpired:
        bridge.kill()
        bridge_rc = "still running 30 s after SIGTERM"
    for proc in (backend, backend_again):
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)

    ok = not missing and CountingExporter.failed == 0 and flushed and bridge_rc == 0 and len(wanted) == made
    print(
        f"python SDK, backend down {args.outage:.0f}s, {'direct' if args.direct else 'queued'} bridge: {'PASS' if ok else 'FAIL'}: "
        f"{made} spans produced, {len(unique)} received, {len(missing)} lost, {len(got) - len(unique)} duplicates; "
        f"{CountingExporter.exports} exports, {CountingExporter.failed} failed; flushed={flushed}; "
        f"bridge dropped {dropped:.0f}, exit {bridge_rc}; all received {caught_up:.1f}s after the app's flush",
        flush=True,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
