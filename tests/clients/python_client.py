#!/usr/bin/env python3
"""The official Python SDK, exporting through the bridge with OTLP/HTTP protobuf.

Uses opentelemetry-sdk + opentelemetry-exporter-otlp-proto-http exactly as an
application would (providers, batch processors, the `logging` bridge, a
periodic metric reader). Each exporter is wrapped only to *observe* what it was
handed and what it returned, so the checker can compare with what the backend
received. Writes everything to --out as JSON.

  traces : 200 spans uncompressed + 100 spans gzip (20 + 10 traces of 10 spans)
  logs   : 60 records through logging.Handler, each inside a span (trace context), deflate
  metrics: a counter and a histogram over 10 attribute sets
"""
import argparse
import json
import logging
import sys
import time

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

SERVICE = "otlp-bridge-suite-python"


class Observed:
    """What the exporters were handed and answered, plus any retry/error log lines."""

    def __init__(self):
        self.spans, self.logs, self.exports, self.sdk_complaints = [], [], [], []

    def export(self, signal, items, ok, took):
        self.exports.append({"signal": signal, "items": items, "ok": ok, "seconds": round(took, 3)})


OBS = Observed()


class ComplaintCatcher(logging.Handler):
    """The SDK logs 'Transient error ... retrying' / 'Failed to export' on any non-2xx answer."""

    def emit(self, record):
        if record.name.startswith("opentelemetry") and record.levelno >= logging.WARNING:
            OBS.sdk_complaints.append(f"{record.levelname} {record.name}: {record.getMessage()}")


def _attr(v):
    return list(v) if isinstance(v, tuple) else v


class RecordingSpanExporter(OTLPSpanExporter):
    def export(self, spans):
        t = time.monotonic()
        result = super().export(spans)
        ok = result == SpanExportResult.SUCCESS
        OBS.export("traces", len(spans), ok, time.monotonic() - t)
        for s in spans:
            OBS.spans.append({
                "service": s.resource.attributes.get("service.name"),
                "scope": s.instrumentation_scope.name,
                "trace_id": f"{s.context.trace_id:032x}",
                "span_id": f"{s.context.span_id:016x}",
                "parent_span_id": f"{s.parent.span_id:016x}" if s.parent else "",
                "name": s.name,
                "kind": s.kind.value + 1,  # SDK enum is 0-based; OTLP's SPAN_KIND_INTERNAL is 1
                "attributes": {k: _attr(v) for k, v in s.attributes.items()},
                "ok": ok,
            })
        return result


class RecordingLogExporter(OTLPLogExporter):
    def export(self, batch):
        t = time.monotonic()
        result = super().export(batch)
        ok = result == LogRecordExportResult.SUCCESS
        OBS.export("logs", len(batch), ok, time.monotonic() - t)
        for r in batch:
            lr = r.log_record
            OBS.logs.append({
                "service": r.resource.attributes.get("service.name"),
                "body": lr.body,
                "severity_number": lr.severity_number.value if lr.severity_number else 0,
                "trace_id": f"{lr.trace_id:032x}" if lr.trace_id else "",
                "span_id": f"{lr.span_id:016x}" if lr.span_id else "",
                "ok": ok,
            })
        return result


class RecordingMetricExporter(OTLPMetricExporter):
    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        t = time.monotonic()
        points = sum(
            len(m.data.data_points)
            for rm in metrics_data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        )
        result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        OBS.export("metrics", points, result == MetricExportResult.SUCCESS, time.monotonic() - t)
        return result


def export_traces(base, resource, phase, traces, compression):
    exporter = RecordingSpanExporter(endpoint=f"{base}/v1/traces", timeout=15, compression=compression)
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=4096, max_export_batch_size=64, schedule_delay_millis=200)
    )
    tracer = provider.get_tracer("suite.python.traces", "1.0.0")
    seq = 0
    for t in range(traces):
        with tracer.start_as_current_span(f"{phase}-root-{t}", attributes={"suite.phase": phase, "suite.seq": seq}):
            seq += 1
            for c in range(9):
                with tracer.start_as_current_span(
                    f"{phase}-child-{t}-{c}",
                    attributes={
                        "suite.phase": phase,
                        "suite.seq": seq,
                        "suite.ratio": c / 8,
                        "suite.even": c % 2 == 0,
                        "suite.tags": ("a", f"t{t}", "ünïcødé ✓"),
                    },
                ):
                    seq += 1
    flushed = provider.force_flush(30_000)
    provider.shutdown()
    return flushed


def export_logs(base, resource, count):
    exporter = RecordingLogExporter(endpoint=f"{base}/v1/logs", timeout=15, compression=Compression.Deflate)
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(BatchLogRecordProcessor(exporter, max_export_batch_size=25, schedule_delay_millis=200))
    app_log = logging.getLogger("suite.python.app")
    app_log.propagate = False
    app_log.setLevel(logging.INFO)
    app_log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=lp))
    # The log records carry the trace context of the span they are emitted in.
    tp = TracerProvider(resource=resource)  # no processor: these spans are context only, never exported
    tracer = tp.get_tracer("suite.python.logs")
    for i in range(count):
        with tracer.start_as_current_span(f"log-ctx-{i}"):
            app_log.warning("python log %d: ünïcødé ✓", i)
    flushed = lp.force_flush(30_000)
    lp.shutdown()
    return flushed


def export_metrics(base, resource):
    exporter = RecordingMetricExporter(endpoint=f"{base}/v1/metrics", timeout=15)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    mp = MeterProvider(resource=resource, metric_readers=[reader])
    meter = mp.get_meter("suite.python.metrics")
    counter = meter.create_counter("suite.requests")
    hist = meter.create_histogram("suite.latency", unit="ms")
    expected = []
    for i in range(10):
        route = f"/r{i}"
        counter.add(i + 1, {"route": route})
        counter.add(i + 1, {"route": route})
        for k in range(5):
            hist.record(float(10 * i + k), {"route": route})
        expected.append({"metric": "suite.requests", "attributes": {"route": route}, "value": 2 * (i + 1)})
        expected.append({
            "metric": "suite.latency",
            "attributes": {"route": route},
            "value": {"count": 5, "sum": float(sum(10 * i + k for k in range(5)))},
        })
    flushed = mp.force_flush(30_000)
    mp.shutdown(30_000)  # exports once more (cumulative): the checker counts exports, not points
    return flushed, expected


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True, help="bridge base URL, e.g. http://127.0.0.1:4318")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    base = args.endpoint.rstrip("/")

    logging.getLogger().addHandler(ComplaintCatcher())
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    resource = Resource.create({"service.name": SERVICE, "suite.client": "python"})

    started = time.monotonic()
    flushed = {
        "traces_plain": export_traces(base, resource, "plain", 20, Compression.NoCompression),
        "traces_gzip": export_traces(base, resource, "gzip", 10, Compression.Gzip),
        "logs": export_logs(base, resource, 60),
    }
    flushed["metrics"], expected_points = export_metrics(base, resource)
    out = {
        "client": "python",
        "service": SERVICE,
        "flushed": flushed,
        "spans": OBS.spans,
        "logs": OBS.logs,
        "expected_points": expected_points,
        "exports": OBS.exports,
        "sdk_complaints": OBS.sdk_complaints,
        "seconds": round(time.monotonic() - started, 3),
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
    failed = [e for e in OBS.exports if not e["ok"]]
    print(
        f"python client: {len(OBS.spans)} spans, {len(OBS.logs)} logs, "
        f"{sum(1 for e in OBS.exports if e['signal'] == 'metrics')} metric exports; "
        f"{len(failed)} failed exports; {len(OBS.sdk_complaints)} SDK warnings"
    )
    return 0 if not failed and all(flushed.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
