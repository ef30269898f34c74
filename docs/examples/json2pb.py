#!/usr/bin/env python3
"""Convert an OTLP/JSON traces, metrics or logs request to protobuf, for curl examples.

    python3 -m venv /tmp/otlp && /tmp/otlp/bin/pip install opentelemetry-proto protobuf
    /tmp/otlp/bin/python docs/examples/json2pb.py docs/examples/trace.json docs/examples/trace.pb

OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping expects base64 for bytes fields, so ids are
converted first. The request type is picked from the top-level key.
"""
import base64
import json
import sys

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

TYPES = {
    "resourceSpans": trace_service_pb2.ExportTraceServiceRequest,
    "resourceMetrics": metrics_service_pb2.ExportMetricsServiceRequest,
    "resourceLogs": logs_service_pb2.ExportLogsServiceRequest,
}
HEX_IDS = {"traceId", "spanId", "parentSpanId"}


def hex_to_base64(node):
    if isinstance(node, dict):
        return {k: base64.b64encode(bytes.fromhex(v)).decode() if k in HEX_IDS and isinstance(v, str)
                else hex_to_base64(v) for k, v in node.items()}
    if isinstance(node, list):
        return [hex_to_base64(v) for v in node]
    return node


def main(src, dst):
    with open(src, encoding="utf-8") as f:
        doc = json.load(f)
    kind = next(k for k in TYPES if k in doc)
    msg = json_format.ParseDict(hex_to_base64(doc), TYPES[kind]())
    with open(dst, "wb") as f:
        f.write(msg.SerializeToString())


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
