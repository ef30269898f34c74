#!/usr/bin/env python3
"""Regenerate the seed corpora in fuzz/corpus/ from real payloads.

Usage: python3 fuzz/seeds.py   (from the repo root; needs the PyPI packages opentelemetry-proto and protobuf:
python3 -m venv /tmp/v && /tmp/v/bin/pip install opentelemetry-proto protobuf)

Sources: the official OTLP/JSON examples (tests/data/otlp-examples), the benchmark's payload generator
(bench/gen_payloads.py, 5 items per request so seeds stay small) and a few hand-written edge cases
the Collector accepts. Each target's input layout is described in tests/fuzz_props/.
"""
import base64
import gzip
import json
import os
import subprocess
import sys
import tempfile
import zlib

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.profiles.v1development import profiles_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
SIGNALS = {  # name: (request type, wire selector, http path index)
    "traces": (trace_service_pb2.ExportTraceServiceRequest, 0, 0),
    "metrics": (metrics_service_pb2.ExportMetricsServiceRequest, 1, 1),
    "logs": (logs_service_pb2.ExportLogsServiceRequest, 2, 2),
    "profiles": (profiles_service_pb2.ExportProfilesServiceRequest, 3, 5),
}
HEX_ID_KEYS = {"traceId", "spanId", "parentSpanId", "profileId"}

# No official example and no benchmark generator for profiles: a small CPU profile of two samples, written here.
PROFILE_JSON = (
    b'{"resourceProfiles":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},'
    b'"scopeProfiles":[{"scope":{"name":"ebpf-profiler","version":"0.1"},"profiles":[{"sampleType":{"typeStrindex":1,'
    b'"unitStrindex":2},"samples":[{"stackIndex":1,"values":["3"],"timestampsUnixNano":["1700000000000000001"],'
    b'"linkIndex":1},{"stackIndex":2,"values":[5],"attributeIndices":[1]}],"timeUnixNano":"1700000000000000000",'
    b'"durationNano":"10000000000","periodType":{"typeStrindex":3,"unitStrindex":4},"period":"10000000",'
    b'"profileId":"5b8efff798038103d269b633813fc60c","droppedAttributesCount":0}]}]}],"dictionary":{'
    b'"mappingTable":[{},{"memoryStart":"4194304","memoryLimit":"8388608","fileOffset":"0","filenameStrindex":5}],'
    b'"locationTable":[{},{"mappingIndex":1,"address":"4198400","lines":[{"functionIndex":1,"line":"42",'
    b'"column":"7"}]},{"mappingIndex":1,"address":"4198656","lines":[{"functionIndex":2,"line":"9"}]}],'
    b'"functionTable":[{},{"nameStrindex":6,"systemNameStrindex":6,"filenameStrindex":7,"startLine":"40"},'
    b'{"nameStrindex":8,"filenameStrindex":7}],"linkTable":[{},{"traceId":"5b8efff798038103d269b633813fc60c",'
    b'"spanId":"eee19b7ec3c1b174"}],"stringTable":["","cpu","nanoseconds","cpu","nanoseconds","/usr/bin/app",'
    b'"main","main.go","work","thread.name"],"attributeTable":[{},{"keyStrindex":9,"value":{"stringValue":"worker-1"}}],'
    b'"stackTable":[{},{"locationIndices":[1]},{"locationIndices":[2,1]}]}}'
)

EDGE_JSON = {
    "traces": [
        b'{}',
        b'{"resourceSpans":[]}',
        b'{"resource_spans":[{"scope_spans":[{"spans":[{"trace_id":"5B8EFFF798038103D269B633813FC60C",'
        b'"span_id":"EEE19B7EC3C1B174","name":null,"kind":"SPAN_KIND_SERVER","start_time_unix_nano":1544712660000000000,'
        b'"status":{"code":"STATUS_CODE_ERROR"},"droppedAttributesCount":"3"}]}]}]}',
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"","spanId":null,"attributes":[{"key":"d","value":'
        b'{"doubleValue":"NaN"}},{"key":"i","value":{"doubleValue":"-Infinity"}},{"key":"b","value":{"bytesValue":'
        b'"-_8"}},{"key":"n","value":{"intValue":"-9223372036854775808"}},{"key":"a","value":{"arrayValue":{"values":'
        b'[{"kvlistValue":{"values":[{"key":"x","value":{"arrayValue":{}}}]}},{}]}}},{"key":"e"}]}]}]}]}',
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"links":[{"traceId":"5b8efff798038103d269b633813fc60c",'
        b'"spanId":"eee19b7ec3c1b174","flags":256}],"events":[{"timeUnixNano":"1","name":"e"}],"flags":1.0e2}]}]}]}',
    ],
    "metrics": [
        b'{}',
        b'{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"g","gauge":{"dataPoints":[{"asDouble":"NaN"},'
        b'{"asInt":"7"},{"asDouble":"Infinity"}]}},{"name":"s","sum":{"aggregationTemporality":'
        b'"AGGREGATION_TEMPORALITY_CUMULATIVE","isMonotonic":true,"dataPoints":[{"asInt":8}]}}]}]}]}',
        b'{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"h","histogram":{"dataPoints":[{"count":"3",'
        b'"sum":"NaN","min":null,"max":2,"bucketCounts":["1",2],"explicitBounds":[1.5],"exemplars":[{"asDouble":1,'
        b'"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}},{"name":"e",'
        b'"exponentialHistogram":{"dataPoints":[{"scale":-3,"zeroCount":"1","positive":{"offset":-2,"bucketCounts":'
        b'[1]},"negative":{}}]}},{"name":"q","summary":{"dataPoints":[{"quantileValues":[{"quantile":0.5,"value":'
        b'"NaN"}]}]}}]}]}]}',
    ],
    "profiles": [
        b'{}',
        b'{"dictionary":{"stringTable":[""]}}',
        b'{"resource_profiles":[{"scope_profiles":[{"profiles":[{"profile_id":"5B8EFFF798038103D269B633813FC60C",'
        b'"samples":[{"values":["-1",null],"timestamps_unix_nano":[1]},null],"period":"-7","original_payload_format":'
        b'"pprof","original_payload":"-_8","attribute_indices":[0]}]}]}],"dictionary":{"link_table":[{"trace_id":"",'
        b'"span_id":null}],"attribute_table":[{"key_strindex":1,"value":{"doubleValue":"NaN"},"unit_strindex":1}]}}',
    ],
    "logs": [
        b'{}',
        b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"SEVERITY_NUMBER_INFO","body":{"kvlistValue":'
        b'{"values":[{"key":"k","value":{"arrayValue":{"values":[{"stringValue":"\\u00e9\\ud83d\\ude00"}]}}}]}},'
        b'"flags":"1","traceId":"5b8efff798038103d269b633813fc60c","eventName":"ev","observedTimeUnixNano":1}]}]}]}',
    ],
}


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def json_to_pb(signal, text):
    """OTLP/JSON (hex ids) -> protobuf bytes, through protobuf's JSON mapping (base64 ids)."""

    def unhex(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in HEX_ID_KEYS and isinstance(v, str):
                    node[k] = base64.b64encode(bytes.fromhex(v)).decode()
                else:
                    unhex(v)
        elif isinstance(node, list):
            for v in node:
                unhex(v)
        return node

    msg = SIGNALS[signal][0]()
    json_format.ParseDict(unhex(json.loads(text)), msg, ignore_unknown_fields=True)
    return msg.SerializeToString(deterministic=True)


def nested_traces(levels):
    """A span attribute whose value nests `levels` array values: protobuf depth 4 + 2 * levels."""
    value = common_pb2.AnyValue(string_value="leaf")
    for _ in range(levels):
        value = common_pb2.AnyValue(array_value=common_pb2.ArrayValue(values=[value]))
    req = trace_service_pb2.ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add(name="deep")
    span.attributes.add(key="k", value=value)
    return req.SerializeToString()


# resource_splice's spec byte: two bits per key (service.name, k8s.pod.name, deployment.environment, a):
# 1 upsert, 2 insert, 3 upsert of a long value.
RESOURCE_SPECS = {"upsert-service": 0b01, "insert-three": 0b10101000, "mixed-long": 0b11100110}


def record(num, payload):
    """A length-delimited protobuf record (field `num`), for wire shapes no encoder library writes."""
    key, n, out = (num << 3) | 2, len(payload), bytearray()
    for v in (key, n):
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)
    return bytes(out) + payload


def resource_edges():
    """Envelopes as other encoders may write them: no resource, resource in two occurrences, unknown fields at each
    level, an existing key repeated."""
    def kv(k, v):
        return record(1, record(1, k) + record(2, record(1, v)))
    span = record(1, bytes(16)) + record(2, bytes(8))  # trace_id, span_id
    scope = record(2, record(2, span))  # scope_spans { spans }
    log = record(2, record(2, record(5, record(1, b"x"))))  # scope_logs { log_records { body } }
    unknown = record(77, b"future") + bytes([0xA0, 0x06, 0x2A])  # field 77 bytes, field 100 varint
    return {
        "traces-no-resource": (0, 0b01, record(1, scope)),
        "traces-two-resources": (0, 0b11100101, record(1, record(1, kv(b"service.name", b"a")) + scope
                                                       + record(1, kv(b"service.name", b"b") + bytes([0x10, 3])))),
        "traces-unknown-everywhere": (0, 0b10011010, unknown + record(1, unknown + record(1, kv(b"a", b"1") + unknown)
                                                                       + scope) + unknown),
        "logs-duplicate-keys": (2, 0b01000001, record(1, record(1, kv(b"a", b"1") + kv(b"service.name", b"s")
                                                                 + kv(b"a", b"2")) + log)),
        "logs-empty-resource": (2, 0b10, record(1, record(1, b"") + log)),
    }


def main():
    payloads = {}  # (signal, source) -> (json bytes, pb bytes)
    examples = os.path.join(SHARED, "data", "otlp-examples")
    for signal, files in (("traces", ["trace.json"]), ("metrics", ["metrics.json"]),
                          ("logs", ["logs.json", "events.json"])):
        for fname in files:
            with open(os.path.join(examples, fname), "rb") as f:
                text = f.read()
            payloads[(signal, "example-" + fname.split(".")[0])] = (text, json_to_pb(signal, text))
    payloads[("profiles", "cpu")] = (PROFILE_JSON, json_to_pb("profiles", PROFILE_JSON))
    with tempfile.TemporaryDirectory() as tmp:
        gen = os.path.join(ROOT, "bench", "gen_payloads.py")
        subprocess.run([sys.executable, gen, tmp, "--spans", "5"], check=True, stdout=subprocess.DEVNULL)
        for signal in ("traces", "metrics", "logs"):
            with open(os.path.join(tmp, signal + ".json"), "rb") as f:
                text = f.read()
            with open(os.path.join(tmp, signal + ".pb"), "rb") as f:
                pb = f.read()
            payloads[(signal, "bench5")] = (text, pb)

    for (signal, source), (text, pb) in payloads.items():
        write("json_" + signal, source + ".json", text)
        sel = SIGNALS[signal][1]
        write("wire_scan", f"{signal}-{source}-whole.bin", bytes([sel]) + (65535).to_bytes(2, "little") + pb)
        write("wire_scan", f"{signal}-{source}-split.bin", bytes([sel]) + (300).to_bytes(2, "little") + pb)
    for signal, cases in EDGE_JSON.items():
        for i, text in enumerate(cases):
            write("json_" + signal, f"edge-{i}.json", text)
            try:  # protobuf's own JSON parser accepts only some of the Collector's leniencies
                pb = json_to_pb(signal, text)
            except (json_format.ParseError, ValueError):
                continue
            write("wire_scan", f"{signal}-edge-{i}.bin", bytes([SIGNALS[signal][1]]) + (64).to_bytes(2, "little") + pb)
    for signal, source in (("traces", "example-trace"), ("metrics", "example-metrics"), ("logs", "example-logs"),
                           ("logs", "bench5"), ("profiles", "cpu")):
        for name, spec in RESOURCE_SPECS.items():
            write("resource_splice", f"{signal}-{source}-{name}.bin", bytes([SIGNALS[signal][1], spec]) + payloads[(signal, source)][1])
    for name, (sel, spec, body) in resource_edges().items():
        write("resource_splice", f"edge-{name}.bin", bytes([sel, spec]) + body)
    # prost's recursion limit is 100: depth 4 + 2 * 48 = 100 is the deepest body it accepts.
    for levels in (47, 48, 49):
        write("wire_scan", f"traces-nested-{levels}.bin", bytes([0, 0, 1]) + nested_traces(levels))

    pb = payloads[("traces", "bench5")][1]
    limit = (1 << 20).to_bytes(3, "little")
    small = (1000).to_bytes(3, "little")
    write("inflate", "gzip.bin", bytes([0]) + limit + gzip.compress(pb))
    write("inflate", "zlib.bin", bytes([1]) + limit + zlib.compress(pb))
    raw = zlib.compressobj(wbits=-15)
    write("inflate", "deflate-raw.bin", bytes([1]) + limit + raw.compress(pb) + raw.flush())
    write("inflate", "gzip-multi-member.bin", bytes([0]) + limit + gzip.compress(pb[:100]) + gzip.compress(pb[100:]))
    write("inflate", "gzip-over-limit.bin", bytes([0]) + small + gzip.compress(pb))
    write("inflate", "gzip-bomb.bin", bytes([0]) + limit + gzip.compress(bytes(4 << 20)))
    for mode, name in ((3, "gzip"), (4, "zlib"), (10, "deflate-raw"), (5, "zstd")):
        write("inflate", f"compress-{name}.bin", bytes([mode]) + limit + pb)
    write("inflate", "compress-zstd-over-limit.bin", bytes([5]) + small + pb)

    ct = {"pb": 0, "json": 1}
    for signal, (_, _, path) in SIGNALS.items():
        text, pb = payloads[(signal, "cpu" if signal == "profiles" else "bench5")]
        for fmt, body in (("pb", pb), ("json", text)):
            head = [0, path, ct[fmt]]
            write("http_request", f"{signal}-{fmt}.bin", bytes(head + [0, 0, 0]) + body)
            write("http_request", f"{signal}-{fmt}-gzip.bin", bytes(head + [2, 1, 0]) + body)
            write("http_request", f"{signal}-{fmt}-zstd-chunked.bin", bytes(head + [4, 1 | 2, 200]) + body)
        write("http_request", f"{signal}-deflate-cors.bin", bytes([0, path, 0, 3, 1 | 4, 0]) + pb)
    text = payloads[("traces", "example-trace")][0]
    write("http_request", "traces-example-expect.bin", bytes([0, 0, 1, 0, 16, 0]) + text)
    write("http_request", "preflight.bin", bytes([12, 0, 1, 0, 4 | 128, 0]))
    write("http_request", "preflight-bad-origin.bin", bytes([12, 1, 1, 0, 8 | 128, 0]))
    write("http_request", "get-405.bin", bytes([8, 2, 1, 0, 0, 0]))
    write("http_request", "head.bin", bytes([13, 0, 1, 0, 0, 0]))
    write("http_request", "path-404.bin", bytes([0, 7, 1, 0, 0, 0]) + b"{}")
    write("http_request", "type-415.bin", bytes([0, 0, 8, 0, 0, 0]) + b"{}")
    write("http_request", "encoding-415.bin", bytes([0, 0, 1, 11, 0, 0]) + b"{}")
    write("http_request", "raw-type.bin", bytes([0, 0, 0, 0, 64, 0, 20]) + b"application/json\xff\x01x" + b"{}")
    write("http_request", "no-length.bin", bytes([0, 1, 1, 0, 32, 0]))
    write("http_request", "bad-json.bin", bytes([0, 2, 1, 0, 0, 0]) + b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"flags":"x"}]}]}]}')
    write("http_request", "bad-gzip.bin", bytes([0, 0, 0, 2, 0, 0]) + b"not gzip")
    write("http_request", "bad-pb.bin", bytes([0, 0, 0, 0, 0, 0]) + bytes([0x0a, 0x05, 0x12, 0x07]))
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(CORPUS) for f in fs)
    print(f"corpus: {total} bytes in {CORPUS}")


if __name__ == "__main__":
    main()
