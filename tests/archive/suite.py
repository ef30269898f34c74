#!/usr/bin/env python3
"""End-to-end suite of the S3 archive output (`--backend s3://BUCKET/PREFIX`) and `otlp-bridge replay`.

Everything real: the release bridge binary, s3s-fs (an S3 server that checks SigV4 signatures), a grpcio OTLP
backend (tests/clients/backend.py), OTLP/HTTP protobuf requests built with the `opentelemetry-proto` package.
Objects are read from the store's own directory (s3s-fs keeps each object as a file) and decoded with
`opentelemetry-proto`, independently of the bridge's code; DuckDB reads the JSON-lines objects.

Rounds (each prints PASS/FAIL and its figures; the last line is "N passed, M failed"; the outages, the large and
the lost-upload rounds run at once, each on its own store, backend and bridge):
  formats       three signals x (otlp_proto+zstd, otlp_json+gzip, otlp_proto+none, otlp_json+zstd): every item
                archived exactly as sent (multiset of resource+scope+item bytes), key layout, metadata per tenant,
                the live backend got everything too; DuckDB reads the JSON lines
  outage-store  the store down for OUTAGE_SECONDS under load: nothing lost in the archive, the backend unaffected
  outage-live   the gRPC backend down as long: nothing lost there, the archive unaffected
  outage-both   both down at once
  crash         CRASH_ROUNDS x SIGKILL under load, restart on the same --queue-dir: every item answered 200 is
                archived at least once (duplicates reported)
  large         objects of 8 MiB through a reader whose memory share is 2 MiB (--memory-limit-mib 4): written in
                pieces as multipart uploads; every item archived exactly as sent, an object larger than the share
  large-crash   the same, with SIGKILL while an object is open (parts uploaded, not completed): every item answered
                200 is archived at least once after the restart (duplicates reported)
  lost-upload   the store loses open multipart uploads while the bridge writes objects of 8 MiB through a 2 MiB
                share (uncompressed, a part every 5 MiB): one aborted by another client with a signed
                AbortMultipartUpload (as a lifecycle rule does), then, after the bridge's minute of whole batches, one
                lost by a store restart without its multipart state. Every span answered 200 archived at least once
                (duplicates reported), the live backend got all, each loss logged, counted in
                otlp_bridge_archive_failures_total and given up exactly once (no loop), objects complete after it,
                no upload left open. s3s-fs 0.14.1 answers a request on an upload it does not have with 403
                AccessDenied where S3 answers 404 NoSuchUpload: UploadAnswers, in front of it, rewrites that answer
                only (see its docstring)
  shutdown      SIGTERM with objects open (one of them written in pieces): every item answered 200 is in the
                store when the process has exited, and no multipart upload is left open
  credentials   a wrong secret: --check exits 1 naming the auth problem; the bridge still answers 200 (queued),
                counts auth failures; restarted with the right secret, everything is archived
  check         --check against a missing bucket and an unreachable endpoint names each problem
  replay        the archive replayed into a recording backend reproduces it exactly; --trace-id returns just that
                trace's spans and log records; --backend debug prints OTLP/JSON lines; nothing matched exits 0

Usage: suite.py --bridge BIN --s3s-fs BIN --work DIR [--only ROUND,...]
"""
import argparse
import base64
import collections
import glob
import gzip
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import zstandard
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BACKEND_PY = os.path.join(ROOT, "tests", "clients", "backend.py")
AK, SK = "archive-test-key", "archive-test-secret"
BUCKET = "telemetry"
REQUEST = {"traces": ExportTraceServiceRequest, "metrics": ExportMetricsServiceRequest, "logs": ExportLogsServiceRequest}
PATH = {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}
SIGNALS = ("traces", "metrics", "logs")


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what, every=0.1):
    """Polls `pred` until it returns a truthy value; fails with `what` (and the last value) past `timeout`."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(every)
    raise Fail(f"{what} (not within {timeout}s; last: {last!r})")


PROCS = []


def stop_all():
    for proc in PROCS:
        proc.kill(signal.SIGKILL)


class Proc:
    def __init__(self, name, cmd, work, env=None):
        PROCS.append(self)
        self.name, self.cmd = name, cmd
        self.log_path = os.path.join(work, f"{name}.log")
        self.out_path = os.path.join(work, f"{name}.out")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OTLP_BRIDGE_", "OTEL_"))}
        full_env.update(env or {})
        self.env = full_env
        self.p = None
        self.start()

    def start(self):
        with open(self.log_path, "ab") as err, open(self.out_path, "ab") as out:
            self.p = subprocess.Popen(self.cmd, stdout=out, stderr=err, env=self.env, start_new_session=True)

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Store:
    """s3s-fs with signature checks on; the bucket is a directory under its root."""

    def __init__(self, bin_path, work, name="store"):
        self.root = os.path.join(work, name)
        os.makedirs(os.path.join(self.root, BUCKET), exist_ok=True)
        # A port free a moment ago may be taken by the time s3s-fs binds it (rounds run at once, and every outgoing
        # connection takes an ephemeral port): then s3s-fs exits at once, and it starts again on another.
        for _ in range(5):
            self.port = free_port()
            cmd = [bin_path, "--host", "127.0.0.1", "--port", str(self.port), "--access-key", AK, "--secret-key", SK,
                   self.root]
            self.proc = Proc(name, cmd, work)
            if self.started():
                return
        raise Fail(f"s3s-fs did not start: {self.proc.log()[-1000:]}")

    def started(self):
        """Whether this s3s-fs listens (not another process on its port); False once it exited."""
        deadline = time.time() + 30
        while time.time() < deadline and self.proc.alive():
            if port_open(self.port):
                time.sleep(0.2)
                return self.proc.alive()
            time.sleep(0.05)
        return False

    def wait(self):
        wait_until(lambda: port_open(self.port), 30, "s3s-fs listening")

    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.kill(signal.SIGKILL)

    def restart(self):
        self.proc.start()
        self.wait()

    def metadata(self, prefix):
        """(key, metadata) of the objects under `prefix`: s3s-fs keeps them in files named by base64 of the key."""
        out = []
        for path in glob.glob(os.path.join(self.root, ".bucket-*.object-*.metadata.json")):
            encoded = os.path.basename(path).split(".object-", 1)[1].rsplit(".metadata.json", 1)[0]
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            if key.startswith(prefix):
                with open(path) as f:
                    out.append((key, json.load(f)))
        return out

    def objects(self, prefix):
        """Keys (relative to the bucket) and paths of the stored objects under `prefix`."""
        base = os.path.join(self.root, BUCKET)
        out = []
        for path in glob.glob(os.path.join(base, prefix, "**", "*"), recursive=True):
            if os.path.isfile(path):
                out.append((os.path.relpath(path, base), path))
        return sorted(out)


def sigv4(method, endpoint, path, query, body=b""):
    """Headers of a SigV4-signed request to the store (path-style, region us-east-1), as any S3 client signs it."""
    import hashlib
    import hmac
    from urllib.parse import quote, urlparse
    host = urlparse(endpoint).netloc
    now = time.gmtime()
    amz_date, day = time.strftime("%Y%m%dT%H%M%SZ", now), time.strftime("%Y%m%d", now)
    payload = hashlib.sha256(body).hexdigest()
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items()))
    headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, quote(path, safe="/-_.~"), canonical_query,
                           "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, payload])
    scope = f"{day}/us-east-1/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + SK).encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={AK}/{scope}, SignedHeaders={signed}, "
                                f"Signature={signature}")
    url = f"{endpoint}{quote(path, safe='/-_.~')}" + (f"?{canonical_query}" if query else "")
    return url, headers


def open_uploads(store):
    """(upload id, key) of the multipart uploads the store has open: s3s-fs keeps each as `.upload-ID.json` (who
    opened it) beside `.bucket-B.object-K.upload-ID.metadata.json` (its attributes) and `.upload_id-ID.part-N`."""
    out = []
    for path in glob.glob(os.path.join(store.root, ".upload-*.json")):
        upload = os.path.basename(path)[len(".upload-"):-len(".json")]
        key = None
        for meta in glob.glob(os.path.join(store.root, f".bucket-*.object-*.upload-{upload}.metadata.json")):
            encoded = os.path.basename(meta).split(".object-", 1)[1].split(".upload-", 1)[0]
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        out.append((upload, key))
    return out


def parts_stored(store, upload):
    return len(glob.glob(os.path.join(store.root, f".upload_id-{upload}.part-*")))


class UploadAnswers:
    """Passes every request to s3s-fs and its answer back, byte for byte (the bridge's signatures are checked by
    s3s-fs), except one: s3s-fs 0.14.1 answers a request on an upload it does not have (UploadPart,
    CompleteMultipartUpload, AbortMultipartUpload) with 403 AccessDenied (s3.rs: `verify_upload_id`), where S3,
    MinIO, Ceph and R2 answer 404 NoSuchUpload. Such an answer, for an upload id the store's root no longer holds,
    becomes S3's 404 NoSuchUpload; `rewritten` counts them. The loss itself is the store's own state."""

    def __init__(self, store):
        import http.client
        import http.server
        from urllib.parse import parse_qs, urlsplit
        self.store, self.rewritten = store, 0
        answers = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        chunk = self.rfile.read(size + 2)[:size]
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return out
                        out += chunk
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def forward(self):
                data = self.body()
                conn = http.client.HTTPConnection("127.0.0.1", answers.store.port, timeout=120)
                try:
                    conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for k, v in self.headers.items():
                        if k.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive"):
                            conn.putheader(k, v)
                    if data or self.command in ("PUT", "POST"):
                        conn.putheader("Content-Length", str(len(data)))
                    conn.endheaders(data or None)
                    r = conn.getresponse()
                    status, reason, headers, payload = r.status, r.reason, r.getheaders(), r.read()
                except OSError:
                    # The store is down: the bridge sees a connection it cannot use, as without this shim.
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                finally:
                    conn.close()
                upload = (parse_qs(urlsplit(self.path).query).get("uploadId") or [None])[0]
                if (status == 403 and b"AccessDenied" in payload and upload
                        and not os.path.exists(os.path.join(answers.store.root, f".upload-{upload}.json"))):
                    answers.rewritten += 1
                    status, reason = 404, "Not Found"
                    payload = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchUpload</Code>"
                               "<Message>The specified upload does not exist. The upload ID may be invalid, or the "
                               "upload may have been aborted or completed.</Message>"
                               f"<UploadId>{upload}</UploadId></Error>").encode()
                    headers = [("Content-Type", "application/xml")]
                self.send_response(status, reason)
                for k, v in headers:
                    if k.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive"):
                        self.send_header(k, v)
                if self.command == "HEAD":
                    length = dict((k.lower(), v) for k, v in headers).get("content-length", "0")
                    self.send_header("Content-Length", length)
                    self.end_headers()
                else:
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Backend:
    def __init__(self, vpy, work, name="backend", port=None):
        self.record = os.path.join(work, f"{name}.jsonl")
        self.port = port or free_port()
        self.proc = Proc(name, [vpy, BACKEND_PY, "--record", self.record, "--port", str(self.port)], work)
        wait_until(lambda: port_open(self.port), 30, "backend listening")

    def stop(self):
        self.proc.kill(signal.SIGTERM)

    def restart(self):
        self.proc.start()
        wait_until(lambda: port_open(self.port), 30, "backend listening again")

    def received(self):
        """Fingerprints the backend recorded (the same as `fingerprints` computes from requests)."""
        got = collections.Counter()
        if not os.path.exists(self.record):
            return got
        with open(self.record) as f:
            for line in f:
                r = json.loads(line)
                for s in r.get("spans", []):
                    got[("traces", s["trace_id"], s["span_id"], s["name"])] += 1
                for l in r.get("logs", []):
                    got[("logs", l["body"], l["trace_id"])] += 1
                for p in r.get("points", []):
                    got[("metrics", p["metric"], json.dumps(p["attributes"], sort_keys=True))] += 1
        return got


class Bridge:
    def __init__(self, bin_path, work, queue_dir, backends, store, extra=(), env=None, name="bridge", age="1s"):
        self.bin, self.work, self.name = bin_path, work, name
        self.http, self.admin = free_port(), free_port()
        args = [bin_path, "--listen", f"127.0.0.1:{self.http}", "--metrics-listen", f"127.0.0.1:{self.admin}",
                "--queue-dir", queue_dir, "--archive-max-object-age", age, "--retry-max-interval", "500ms"]
        for b in backends:
            args += ["--backend", b]
        args += list(extra)
        self.args = args
        self.env = {"AWS_ENDPOINT_URL": store.endpoint(), "AWS_ACCESS_KEY_ID": AK, "AWS_SECRET_ACCESS_KEY": SK,
                    "AWS_REGION": "us-east-1", "RUST_LOG": "info"}
        self.env.update(env or {})
        self.proc = Proc(name, args, work, self.env)
        try:
            self.wait_ready()
        except Fail:
            # As for the store: a port taken between free_port() and the bridge's bind. Once more, on others.
            if "Address already in use" not in self.proc.log() and "address in use" not in self.proc.log().lower():
                raise
            self.http, self.admin = free_port(), free_port()
            args[2], args[4] = f"127.0.0.1:{self.http}", f"127.0.0.1:{self.admin}"
            self.args = args
            self.proc = Proc(name, args, work, self.env)
            self.wait_ready()

    def wait_ready(self):
        def healthy():
            if not self.proc.alive():
                raise Fail(f"{self.name} exited: {self.proc.log()[-2000:]}")
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/health", timeout=1).status == 200
            except OSError:
                return False
        wait_until(healthy, 60, f"{self.name} healthy")

    def restart(self):
        self.proc.start()
        self.wait_ready()

    def metric(self, name, **labels):
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/metrics", timeout=2).read().decode()
        except OSError:
            return None
        total = None
        for line in text.splitlines():
            if not line.startswith(name) or line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            if head != name and not head.startswith(name + "{"):
                continue
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total = (total or 0) + float(value)
        return total

    def drained(self, outputs):
        return all(self.metric("otlp_bridge_queue_items", backend=o) == 0 for o in outputs)


def post(port, signal_name, body, timeout=10):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{PATH[signal_name]}", data=body, method="POST",
                                 headers={"Content-Type": "application/x-protobuf"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


_seq = [0]


def make(signal_name, n, tenant="t0", trace_id=None):
    """A request of `n` unique items; returns its bytes."""
    _seq[0] += 1
    seq = _seq[0]
    res = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=f"svc-{tenant}"))])
    scope = InstrumentationScope(name="archive-suite", version="1")
    if signal_name == "traces":
        spans = []
        for i in range(n):
            tid = trace_id or random.randbytes(16)
            spans.append(Span(trace_id=tid, span_id=random.randbytes(8), name=f"span-{seq}-{i}", kind=2,
                              start_time_unix_nano=1_700_000_000_000_000_000 + i,
                              end_time_unix_nano=1_700_000_000_000_000_500 + i,
                              attributes=[KeyValue(key="i", value=AnyValue(int_value=i))]))
        msg = ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=res, scope_spans=[
            ScopeSpans(scope=scope, spans=spans)])])
    elif signal_name == "logs":
        recs = [LogRecord(time_unix_nano=1_700_000_000_000_000_000 + i, severity_number=9,
                          body=AnyValue(string_value=f"log-{seq}-{i}"), trace_id=trace_id or b"")
                for i in range(n)]
        msg = ExportLogsServiceRequest(resource_logs=[ResourceLogs(resource=res, scope_logs=[
            ScopeLogs(scope=scope, log_records=recs)])])
    else:
        points = [NumberDataPoint(time_unix_nano=1_700_000_000_000_000_000 + i, as_double=i * 1.5,
                                  attributes=[KeyValue(key="point", value=AnyValue(string_value=f"p-{seq}-{i}"))])
                  for i in range(n)]
        metric = Metric(name=f"metric-{seq}", unit="1", gauge=Gauge(data_points=points))
        msg = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(resource=res, scope_metrics=[
            ScopeMetrics(scope=scope, metrics=[metric])])])
    return msg.SerializeToString()


def exact_items(signal_name, msg):
    """Multiset of (resource, scope, item) as deterministic bytes: what "archived exactly as sent" compares."""
    out = collections.Counter()
    det = lambda m: m.SerializeToString(deterministic=True)
    if signal_name == "traces":
        for rs in msg.resource_spans:
            for ss in rs.scope_spans:
                for s in ss.spans:
                    out[(det(rs.resource), det(ss.scope), det(s))] += 1
    elif signal_name == "logs":
        for rl in msg.resource_logs:
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    out[(det(rl.resource), det(sl.scope), det(r))] += 1
    else:
        for rm in msg.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    for p in m.gauge.data_points:
                        shell = Metric(name=m.name, unit=m.unit, description=m.description)
                        out[(det(rm.resource), det(sm.scope), det(shell), det(p))] += 1
    return out


def fingerprints(signal_name, msg):
    """The coarser identity backend.py records: to compare what the live backend received."""
    out = collections.Counter()
    for item in exact_items(signal_name, msg):
        if signal_name == "traces":
            s = Span.FromString(item[2])
            out[("traces", s.trace_id.hex(), s.span_id.hex(), s.name)] += 1
        elif signal_name == "logs":
            r = LogRecord.FromString(item[2])
            out[("logs", r.body.string_value, r.trace_id.hex())] += 1
        else:
            p = NumberDataPoint.FromString(item[3])
            attrs = {kv.key: kv.value.string_value for kv in p.attributes}
            out[("metrics", Metric.FromString(item[2]).name, json.dumps(attrs, sort_keys=True))] += 1
    return out


ID_KEYS = {"traceId", "spanId", "parentSpanId"}


def otlp_json_to_proto_json(node):
    """OTLP/JSON writes ids as hex; protobuf's JSON mapping (json_format) expects base64."""
    if isinstance(node, dict):
        return {k: (base64.b64encode(bytes.fromhex(v)).decode() if k in ID_KEYS and isinstance(v, str)
                    else otlp_json_to_proto_json(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [otlp_json_to_proto_json(v) for v in node]
    return node


def decompress(path):
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".zst"):
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    if path.endswith(".gz"):
        return gzip.decompress(data)
    return data


def archived(store, prefix, signal_name):
    """(multiset of exact items, objects) of `signal_name` under `prefix`, decoded independently of the bridge."""
    items = collections.Counter()
    objects = store.objects(f"{prefix}/{signal_name}")
    for key, path in objects:
        plain = decompress(path)
        check(len(plain) > 0, f"empty object {key}")
        if ".binpb" in key:
            # One valid request per object: the requests concatenated.
            items += exact_items(signal_name, REQUEST[signal_name].FromString(plain))
        else:
            check(plain.endswith(b"\n"), f"{key}: JSON lines end with a newline")
            for line in plain.decode().splitlines():
                msg = json_format.ParseDict(otlp_json_to_proto_json(json.loads(line)), REQUEST[signal_name]())
                items += exact_items(signal_name, msg)
    return items, objects


def key_layout_ok(key, prefix, signal_name, ext):
    import re
    pattern = (rf"^{re.escape(prefix)}/{signal_name}/dt=\d{{4}}-\d\d-\d\d/hour=\d\d/"
               rf"\d{{8}}T\d{{6}}Z-[0-9a-f]{{16}}-\d{{6}}\.{re.escape(ext)}$")
    return re.match(pattern, key) is not None


class Load:
    """Posts requests of every signal in a loop; remembers what was answered 200 (and what was not)."""

    def __init__(self, port_fn, n=20, pause=0.005):
        self.port_fn, self.n, self.pause = port_fn, n, pause
        self.ok = {s: collections.Counter() for s in SIGNALS}
        self.exact = {s: collections.Counter() for s in SIGNALS}
        self.answers = collections.Counter()
        self.stop_flag = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        i = 0
        while not self.stop_flag.is_set():
            s = SIGNALS[i % 3]
            i += 1
            body = make(s, self.n)
            status = post(self.port_fn(), s, body, timeout=5)
            self.answers[status] += 1
            if status == 200:
                msg = REQUEST[s].FromString(body)
                self.ok[s] += fingerprints(s, msg)
                self.exact[s] += exact_items(s, msg)
            time.sleep(self.pause)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.t.join(30)


class Suite:
    def __init__(self, args):
        self.args = args
        self.results = []
        self.vpy = sys.executable

    def work(self, name):
        d = os.path.join(self.args.work, name)
        os.makedirs(d, exist_ok=True)
        return d

    def run(self, name, fn):
        if self.args.only and name not in self.args.only:
            return
        t0 = time.time()
        try:
            figures = fn(self.work(name)) or ""
            self.results.append((name, True))
            print(f"PASS {name} ({time.time() - t0:.1f}s) {figures}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported with its round
            self.results.append((name, False))
            print(f"FAIL {name} ({time.time() - t0:.1f}s): {type(e).__name__}: {e}", flush=True)

    def run_together(self, rounds):
        """Runs independent rounds at once (each has its own store, backend, bridge and ports): the outages are
        mostly waiting, so the suite's wall time stays that of the longest round, not their sum."""
        threads = [threading.Thread(target=self.run, args=(name, fn)) for name, fn in rounds]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    # ------------------------------------------------------------------ rounds
    def formats(self, work):
        store = Store(self.args.s3s_fs, work)
        backend = Backend(self.vpy, work)
        figures = []
        for i, (fmt, comp, ext) in enumerate([("otlp_proto", "zstd", "binpb.zst"), ("otlp_json", "gzip", "jsonl.gz"),
                                              ("otlp_proto", "none", "binpb"), ("otlp_json", "zstd", "jsonl.zst")]):
            prefix = f"fmt{i}/otlp"
            out = f"s3://{BUCKET}/{prefix}"
            bridge = Bridge(self.args.bridge, work, os.path.join(work, f"q{i}"),
                            [f"http://127.0.0.1:{backend.port}", out], store,
                            ["--archive-format", fmt, "--archive-compression", comp,
                             "--forward-header", "x-scope-orgid"], name=f"bridge-{fmt}-{comp}")
            sent = {s: collections.Counter() for s in SIGNALS}
            for tenant in ("a", "b"):
                for s in SIGNALS:
                    for n in (1, 7, 50):
                        body = make(s, n, tenant=tenant)
                        req = urllib.request.Request(f"http://127.0.0.1:{bridge.http}{PATH[s]}", data=body,
                                                     headers={"Content-Type": "application/x-protobuf",
                                                              "X-Scope-OrgID": f"tenant-{tenant}"})
                        check(urllib.request.urlopen(req, timeout=10).status == 200, "posted")
                        sent[s] += exact_items(s, REQUEST[s].FromString(body))
            wait_until(lambda: bridge.drained([out]), 60, f"{out} drained")
            for s in SIGNALS:
                got, objects = archived(store, prefix, s)
                check(got == sent[s], f"{fmt}/{comp} {s}: archived {sum(got.values())} items, sent "
                      f"{sum(sent[s].values())}; missing {sum((sent[s] - got).values())}, extra "
                      f"{sum((got - sent[s]).values())}")
                for key, _ in objects:
                    check(key_layout_ok(key, prefix, s, ext), f"key layout: {key}")
                # Tenants never share an object, and each object names its tenant in its metadata.
                tenants = set()
                for key, meta in store.metadata(f"{prefix}/{s}/"):
                    user = meta.get("user_metadata") or {}
                    tenants.add(json.dumps(user, sort_keys=True))
                check(len(tenants) == 2 and all("x-scope-orgid" in t for t in tenants),
                      f"{s}: object metadata by tenant: {tenants}")
            if fmt == "otlp_json":
                figures.append(self.duckdb(store, prefix, comp, sent))
            figures.append(f"{fmt}+{comp}: {len(store.objects(prefix))} objects")
            example = store.objects(prefix + "/traces")[0][0]
            bridge.proc.kill(signal.SIGTERM)
        live = backend.received()
        want = collections.Counter()
        # The live backend got every item of every round (once per round's bridge).
        check(sum(live.values()) >= 4 * 2 * 3 * 58, f"live backend received {sum(live.values())} items")
        return "; ".join(figures) + f"; example key {example}"

    def duckdb(self, store, prefix, comp, sent):
        import duckdb
        paths = [p for k, p in store.objects(prefix + "/logs")]
        codec = {"gzip": "gzip", "zstd": "zstd"}[comp]
        con = duckdb.connect()
        rows = con.execute(
            "SELECT count(*) FROM read_json(?, format = 'newline_delimited', compression = ?) AS j, "
            "unnest(j.resourceLogs) AS t(rl), unnest(rl.scopeLogs) AS u(sl), unnest(sl.logRecords) AS v(r)",
            [paths, codec]).fetchone()[0]
        check(rows == sum(sent["logs"].values()), f"DuckDB counted {rows} log records")
        return f"DuckDB read {rows} log records from {len(paths)} {comp} JSON-lines objects"

    def outage(self, work, which):
        store = Store(self.args.s3s_fs, work)
        backend = Backend(self.vpy, work)
        out = f"s3://{BUCKET}/outage"
        live = f"http://127.0.0.1:{backend.port}"
        bridge = Bridge(self.args.bridge, work, os.path.join(work, "q"), [live, out], store)
        seconds = self.args.outage_seconds
        with Load(lambda: bridge.http) as load:
            time.sleep(1)
            if which in ("store", "both"):
                store.stop()
            if which in ("live", "both"):
                backend.stop()
            time.sleep(seconds)
            if which in ("store", "both"):
                check(bridge.metric("otlp_bridge_archive_failures_total", reason="connect") > 0,
                      "connection failures counted while the store is down")
                store.restart()
            if which in ("live", "both"):
                backend.restart()
            time.sleep(1)
        check(set(load.answers) == {200}, f"clients were answered {dict(load.answers)}")
        wait_until(lambda: bridge.drained([out, live]), 120, "both outputs drained")
        lost = {}
        for s in SIGNALS:
            got, _ = archived(store, "outage", s)
            missing = load.exact[s] - got
            lost[s] = sum(missing.values())
        live_missing = sum(((sum(load.ok.values(), collections.Counter())) - backend.received()).values())
        check(all(v == 0 for v in lost.values()) and live_missing == 0,
              f"lost in the archive {lost}, at the backend {live_missing}")
        dup = sum((sum((archived(store, "outage", s)[0] for s in SIGNALS), collections.Counter())
                   - sum(load.exact.values(), collections.Counter())).values())
        return (f"{which} down {seconds}s: {sum(sum(c.values()) for c in load.exact.values())} items answered 200, "
                f"0 lost in archive and backend, {dup} archived twice")

    def crash(self, work):
        store = Store(self.args.s3s_fs, work)
        backend = Backend(self.vpy, work)
        out = f"s3://{BUCKET}/crash"
        live = f"http://127.0.0.1:{backend.port}"
        bridge = Bridge(self.args.bridge, work, os.path.join(work, "q"), [live, out], store)
        with Load(lambda: bridge.http, pause=0.002) as load:
            for _ in range(self.args.crash_rounds):
                time.sleep(random.uniform(0.5, 2.0))
                bridge.proc.kill(signal.SIGKILL)
                bridge.restart()
            time.sleep(1)
        wait_until(lambda: bridge.drained([out, live]), 120, "drained after the crashes")
        total = sum(load.exact.values(), collections.Counter())
        got = sum((archived(store, "crash", s)[0] for s in SIGNALS), collections.Counter())
        missing = total - got
        check(not missing, f"{sum(missing.values())} items answered 200 are not archived")
        dup = sum(max(0, got[k] - 1) for k in total)
        return (f"{self.args.crash_rounds} SIGKILLs: {sum(total.values())} items answered 200 "
                f"({dict(load.answers)}), all archived, {dup} archived twice "
                f"({100.0 * dup / max(1, sum(total.values())):.1f}%)")

    LARGE = ["--memory-limit-mib", "4", "--archive-max-object-bytes", str(8 << 20)]
    SHARE = 2 << 20  # half of --memory-limit-mib, one output

    def post_traces(self, bridge, mib, sent):
        """Posts about `mib` MiB of distinct spans (requests of 400 spans); adds what was answered 200 to `sent`. A
        503 (the memory limit full: at 4 MiB an open object's compressor takes a third of it) is retried after a
        pause, as OTLP clients do; the round's data still has to arrive whole."""
        posted = 0
        while posted < mib << 20:
            body = make("traces", 400)
            deadline = time.time() + 60
            while (status := post(bridge.http, "traces", body, timeout=30)) == 503 and time.time() < deadline:
                time.sleep(0.2)
            check(status == 200, f"posted: {status}")
            sent.update(exact_items("traces", ExportTraceServiceRequest.FromString(body)))
            posted += len(body)
        return posted

    def object_sizes(self, store, prefix):
        return [len(decompress(path)) for _, path in store.objects(prefix)]

    def large(self, work):
        store = Store(self.args.s3s_fs, work)
        out = f"s3://{BUCKET}/large"
        bridge = Bridge(self.args.bridge, work, os.path.join(work, "q"), [out], store, self.LARGE, age="20s")
        sent = collections.Counter()
        posted = self.post_traces(bridge, 12, sent)
        wait_until(lambda: bridge.drained([out]), 120, f"{out} drained")
        got, objects = archived(store, "large", "traces")
        check(got == sent, f"archived {sum(got.values())} spans, sent {sum(sent.values())}; missing "
              f"{sum((sent - got).values())}, extra {sum((got - sent).values())}")
        sizes = self.object_sizes(store, "large")
        check(max(sizes) > 2 * self.SHARE, f"an object larger than the reader's share: {sizes}")
        check(max(sizes) <= 8 << 20, f"no object past --archive-max-object-bytes: {sizes}")
        parts = bridge.metric("otlp_bridge_archive_upload_duration_seconds_count") or 0
        bridge.proc.kill(signal.SIGTERM)
        return (f"{posted / 2**20:.1f} MiB of spans, {sum(sent.values())} spans archived exactly as sent in "
                f"{len(objects)} objects of {', '.join(f'{n / 2**20:.1f}' for n in sizes)} MiB (share 2 MiB), "
                f"{parts:.0f} store requests")

    def large_crash(self, work):
        store = Store(self.args.s3s_fs, work)
        out = f"s3://{BUCKET}/lcrash"
        extra = self.LARGE + ["--archive-compression", "none"]
        bridge = Bridge(self.args.bridge, work, os.path.join(work, "q"), [out], store, extra, age="60s")
        sent = collections.Counter()
        self.post_traces(bridge, 6, sent)
        # Mid-object: parts uploaded (uncompressed, a part leaves every 5 MiB), no object complete.
        wait_until(lambda: (bridge.metric("otlp_bridge_archive_upload_duration_seconds_count") or 0) >= 2, 60,
                   "a part uploaded")
        check(not store.objects("lcrash"), "no object completed before the kill")
        bridge.proc.kill(signal.SIGKILL)
        bridge.restart()
        self.post_traces(bridge, 3, sent)
        bridge.proc.kill(signal.SIGTERM)
        # What was not in a completed object stays queued: a bridge with a short age archives the rest.
        bridge = Bridge(self.args.bridge, work, os.path.join(work, "q"), [out], store, extra, name="bridge-again")
        wait_until(lambda: bridge.drained([out]), 120, f"{out} drained")
        got, objects = archived(store, "lcrash", "traces")
        missing = sent - got
        check(not missing, f"{sum(missing.values())} spans answered 200 are not archived")
        dup = sum((got - sent).values())
        bridge.proc.kill(signal.SIGTERM)
        return (f"SIGKILL with an object open: {sum(sent.values())} spans answered 200, all archived in "
                f"{len(objects)} objects, {dup} archived twice")

    UNITS_PAUSE = 60  # src/queue/deliver.rs UNITS_PAUSE: whole batches, no units, this long after a unit failed

    def lost_upload(self, work):
        """The store loses open multipart uploads while the bridge writes objects larger than its memory share:
        once aborted by another client (as a lifecycle rule's AbortIncompleteMultipartUpload does), once by a
        restart of the store without its multipart state; after each the bridge gives the object up and writes
        its data again, and between them (after the units pause) opens multipart uploads again."""
        store = Store(self.args.s3s_fs, work)
        answers = UploadAnswers(store)
        backend = Backend(self.vpy, work)
        out = f"s3://{BUCKET}/lost"
        live = f"http://127.0.0.1:{backend.port}"
        # Uncompressed, a part leaves every 5 MiB of an 8 MiB object: an upload is open with a part stored after 6
        # MiB, and the next request on it (the second part, or the completion) comes with the next 2 MiB.
        extra = self.LARGE + ["--archive-compression", "none"]
        bridge = Bridge(self.args.bridge, work, os.path.join(work, "q"), [live, out], answers, extra, age="10s")
        sent, fps = collections.Counter(), collections.Counter()

        def post_mib(mib):
            posted = 0
            while posted < mib << 20:
                body = make("traces", 400)
                check(post(bridge.http, "traces", body, timeout=30) == 200, "posted")
                msg = ExportTraceServiceRequest.FromString(body)
                sent.update(exact_items("traces", msg))
                fps.update(fingerprints("traces", msg))
                posted += len(body)

        def open_with_a_part():
            return [u for u in open_uploads(store) if parts_stored(store, u[0]) >= 1]

        def given_up():
            return bridge.proc.log().count("the unit is given up and its data read again")

        def lose(how):
            """Loses the open upload(s) `how`; returns when the bridge gave the object up."""
            post_mib(6)
            uploads = wait_until(open_with_a_part, 60, "a multipart upload open with a part stored")
            before = given_up()
            if how == "abort":
                for upload, key in uploads:
                    url, headers = sigv4("DELETE", store.endpoint(), f"/{BUCKET}/{key}", {"uploadId": upload})
                    req = urllib.request.Request(url, method="DELETE", headers=headers)
                    with urllib.request.urlopen(req, timeout=10) as r:
                        check(r.status == 204, f"AbortMultipartUpload answered {r.status}")
            else:
                store.stop()
                for path in glob.glob(os.path.join(store.root, ".upload*")) + glob.glob(
                        os.path.join(store.root, ".bucket-*.upload-*.metadata.json")):
                    os.remove(path)
                store.restart()
            check(not open_uploads(store), f"the store lost its uploads ({how})")
            post_mib(3)
            wait_until(lambda: given_up() > before, 60, f"the object given up after the store lost its upload ({how})")
            return time.time()

        lost_at = lose("abort")
        objects_then = bridge.metric("otlp_bridge_archive_objects_total") or 0
        # Units are paused for a minute after the loss: wait it out, then the next large object must be written
        # in pieces again (a multipart upload opens), and the store loses that one by restarting without it.
        time.sleep(max(0.0, lost_at + self.UNITS_PAUSE + 1 - time.time()))
        lose("restart")
        wait_until(lambda: bridge.drained([out, live]), 120, "both outputs drained after the losses")
        got, objects = archived(store, "lost", "traces")
        missing = sent - got
        check(not missing, f"{sum(missing.values())} of {sum(sent.values())} spans answered 200 are not archived")
        dup = sum((got - sent).values())
        live_missing = sum((fps - backend.received()).values())
        check(live_missing == 0, f"the live backend is missing {live_missing} spans")
        check(given_up() == 2, f"each lost upload gives its object up once, not in a loop: {given_up()} given up")
        lost_lines = bridge.proc.log().count("the store no longer has this object's multipart upload")
        check(lost_lines >= 2, f"the log names each lost upload: {lost_lines} lines")
        failures = {}
        for line in urllib.request.urlopen(f"http://127.0.0.1:{bridge.admin}/metrics", timeout=2).read().decode() \
                .splitlines():
            if line.startswith("otlp_bridge_archive_failures_total{") and not line.endswith(" 0"):
                reason = line.split('reason="', 1)[1].split('"', 1)[0]
                failures[reason] = failures.get(reason, 0) + int(float(line.rsplit(" ", 1)[1]))
        check(failures.get("upload_lost", 0) >= 2,
              f"the lost uploads counted in otlp_bridge_archive_failures_total: {failures}")
        # Given up is not lost: the items go again from the queue, and count as sent then, never as failed.
        failed = bridge.metric("otelcol_exporter_send_failed_spans_total", backend=out) or 0
        check(failed == 0, f"{failed:.0f} spans counted as failed by the archive, whose given-up objects lose nothing")
        objects_now = bridge.metric("otlp_bridge_archive_objects_total") or 0
        check(objects_now > objects_then, "objects completed after the first loss")
        check(not open_uploads(store), f"no multipart upload left open on the store: {open_uploads(store)}")
        bridge.proc.kill(signal.SIGTERM)
        answers.close()
        return (f"{sum(sent.values())} spans answered 200, all archived in {len(objects)} objects, {dup} archived twice "
                f"({100.0 * dup / max(1, sum(sent.values())):.1f}%), the live backend got all; 2 uploads lost (abort, "
                f"restart), {answers.rewritten} requests answered NoSuchUpload, given up 2x, failures {failures}, "
                f"{objects_now - objects_then:.0f} objects after the first loss")

    def shutdown(self, work):
        """SIGTERM with objects open (their age is a minute): the bridge completes them before it exits, so every
        item answered 200 is in the store once the process is gone, and no multipart upload is left open."""
        store = Store(self.args.s3s_fs, work)
        out = f"s3://{BUCKET}/shutdown"
        # Uncompressed, so that 7 MiB of spans in an object of 8 open a multipart upload (a part every 5 MiB).
        extra = self.LARGE + ["--archive-compression", "none"]
        bridge = Bridge(self.args.bridge, work, os.path.join(work, "q"), [out], store, extra, age="60s")
        sent = {s: collections.Counter() for s in SIGNALS}
        for s in SIGNALS:
            for _ in range(20):
                body = make(s, 50)
                check(post(bridge.http, s, body) == 200, f"{s} posted")
                sent[s].update(exact_items(s, REQUEST[s].FromString(body)))
        traces = collections.Counter()
        self.post_traces(bridge, 7, traces)  # an object larger than the share: written in pieces, still open
        sent["traces"].update(traces)
        wait_until(lambda: open_uploads(store), 60, "an object open in pieces (a multipart upload)")
        check(not store.objects("shutdown"), "no object complete before the stop (their age is a minute)")
        started = time.time()
        bridge.proc.kill(signal.SIGTERM)
        took = time.time() - started
        check(bridge.proc.p.returncode == 0, f"exit status {bridge.proc.p.returncode}")
        objects = 0
        for s in SIGNALS:
            got, objs = archived(store, "shutdown", s)
            objects += len(objs)
            check(got == sent[s], f"{s}: {sum(got.values())} archived at the stop, {sum(sent[s].values())} sent")
        check(not open_uploads(store), f"no multipart upload left open: {open_uploads(store)}")
        return (f"{sum(sum(c.values()) for c in sent.values())} items answered 200, all in {objects} objects once the "
                f"bridge exited ({took:.1f} s after SIGTERM); no upload left open")

    def credentials(self, work):
        store = Store(self.args.s3s_fs, work)
        out = f"s3://{BUCKET}/creds"
        q = os.path.join(work, "q")
        env = {"AWS_ENDPOINT_URL": store.endpoint(), "AWS_ACCESS_KEY_ID": AK, "AWS_SECRET_ACCESS_KEY": "wrong",
               "AWS_REGION": "us-east-1"}
        chk = subprocess.run([self.args.bridge, "--check", "--queue-dir", q, "--backend", out], env=env,
                             capture_output=True, text=True, timeout=60)
        check(chk.returncode == 1, f"--check with a wrong secret exits 1, got {chk.returncode}")
        check("authentication failed" in chk.stdout and "AWS_SECRET_ACCESS_KEY" in chk.stdout,
              f"--check names the auth problem and its fix: {chk.stdout[-800:]}")
        bridge = Bridge(self.args.bridge, work, q, [out], store, env={"AWS_SECRET_ACCESS_KEY": "wrong"})
        sent = {s: collections.Counter() for s in SIGNALS}
        for s in SIGNALS:
            body = make(s, 10)
            check(post(bridge.http, s, body) == 200, "accepted while the credentials are wrong")
            sent[s] += exact_items(s, REQUEST[s].FromString(body))
        wait_until(lambda: (bridge.metric("otlp_bridge_archive_failures_total", reason="auth") or 0) > 0, 30,
                   "auth failures counted")
        failed = bridge.metric("otlp_bridge_archive_failures_total", reason="auth")
        check(not store.objects("creds"), "nothing written with wrong credentials")
        bridge.proc.kill(signal.SIGTERM)
        bridge = Bridge(self.args.bridge, work, q, [out], store, name="bridge-fixed")
        wait_until(lambda: bridge.drained([out]), 60, "archived once the secret is fixed")
        for s in SIGNALS:
            got, _ = archived(store, "creds", s)
            check(got == sent[s], f"{s}: after the fix {sum(got.values())} of {sum(sent[s].values())} archived")
        return f"--check exit 1 naming auth; {failed:.0f} auth failures counted; all 30 items archived after the fix"

    def check_problems(self, work):
        store = Store(self.args.s3s_fs, work)
        env = {"AWS_ENDPOINT_URL": store.endpoint(), "AWS_ACCESS_KEY_ID": AK, "AWS_SECRET_ACCESS_KEY": SK}
        q = os.path.join(work, "q")
        run = lambda url, e: subprocess.run([self.args.bridge, "--check", "--queue-dir", q, "--backend", url],
                                           env=e, capture_output=True, text=True, timeout=60)
        r = run("s3://no-such-bucket/p", env)
        check(r.returncode == 1 and "does not exist" in r.stdout and "create it" in r.stdout,
              f"missing bucket: {r.returncode} {r.stdout[-600:]}")
        r = run(f"s3://{BUCKET}/p", dict(env, AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}"))
        check(r.returncode == 1 and "AWS_ENDPOINT_URL" in r.stdout, f"unreachable: {r.returncode} {r.stdout[-600:]}")
        r = run(f"s3://{BUCKET}/p", env)
        check(r.returncode == 0, f"a good store: {r.returncode} {r.stdout[-600:]}")
        check(not store.objects(""), "--check writes nothing")
        r = subprocess.run([self.args.bridge, "--backend", f"s3://{BUCKET}/p"], env=env, capture_output=True,
                           text=True, timeout=60)
        check(r.returncode == 2 and "--queue-dir" in r.stderr, f"without --queue-dir: {r.returncode} {r.stderr}")
        return "missing bucket, unreachable endpoint, no --queue-dir: each named; a good store: exit 0"

    def replay(self, work):
        store = Store(self.args.s3s_fs, work)
        out = f"s3://{BUCKET}/replay"
        bridge = Bridge(self.args.bridge, work, os.path.join(work, "q"), [out], store,
                        ["--archive-format", "otlp_json", "--archive-compression", "zstd"])
        trace = random.randbytes(16)
        for s in SIGNALS:
            for n in (3, 40):
                check(post(bridge.http, s, make(s, n)) == 200, "posted")
        check(post(bridge.http, "traces", make("traces", 5, trace_id=trace)) == 200, "posted the trace")
        check(post(bridge.http, "logs", make("logs", 4, trace_id=trace)) == 200, "posted the trace's logs")
        wait_until(lambda: bridge.drained([out]), 60, "archived")
        archive = {s: archived(store, "replay", s)[0] for s in SIGNALS}
        rec = Backend(self.vpy, work, name="recording")
        env = {"AWS_ENDPOINT_URL": store.endpoint(), "AWS_ACCESS_KEY_ID": AK, "AWS_SECRET_ACCESS_KEY": SK}
        start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
        end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
        base = [self.args.bridge, "replay", "--from", out, "--start", start, "--end", end]
        r = subprocess.run(base + ["--backend", f"http://127.0.0.1:{rec.port}"], env=env, capture_output=True,
                           text=True, timeout=120)
        check(r.returncode == 0, f"replay exit {r.returncode}: {r.stderr[-800:]}")
        summary = r.stderr.strip().splitlines()[-1]
        want = sum((collections.Counter({fp: c for it, c in archive[s].items()
                                         for fp in [next(iter(fingerprints(s, self.rebuild(s, it))))]})
                    for s in SIGNALS), collections.Counter())
        got = rec.received()
        check(got == want, f"replayed {sum(got.values())} items, the archive holds {sum(want.values())}")
        r = subprocess.run(base + ["--trace-id", trace.hex()], env=env, capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, f"--trace-id exit {r.returncode}: {r.stderr[-500:]}")
        spans, logs = 0, 0
        for line in r.stdout.splitlines():
            msg = json.loads(line)
            for rs in msg.get("resourceSpans", []):
                for ss in rs["scopeSpans"]:
                    for sp in ss["spans"]:
                        check(sp["traceId"] == trace.hex(), "only that trace's spans")
                        spans += 1
            for rl in msg.get("resourceLogs", []):
                for sl in rl["scopeLogs"]:
                    for lr in sl["logRecords"]:
                        check(lr["traceId"] == trace.hex(), "only that trace's log records")
                        logs += 1
        check((spans, logs) == (5, 4), f"--trace-id returned {spans} spans and {logs} log records")
        r = subprocess.run([self.args.bridge, "replay", "--from", out, "--start", "2001-01-01T00:00:00Z", "--end",
                            "2001-01-01T02:00:00Z"], env=env, capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and "nothing matched" in r.stderr, f"nothing matched: {r.returncode} {r.stderr}")
        return f"recording backend got exactly the archive ({sum(want.values())} items); {summary}"

    @staticmethod
    def rebuild(signal_name, item):
        """A one-item request from an `exact_items` key (to reuse `fingerprints`)."""
        if signal_name == "traces":
            res, scope, span = item
            return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
                resource=Resource.FromString(res),
                scope_spans=[ScopeSpans(scope=InstrumentationScope.FromString(scope), spans=[Span.FromString(span)])])])
        if signal_name == "logs":
            res, scope, rec = item
            return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
                resource=Resource.FromString(res),
                scope_logs=[ScopeLogs(scope=InstrumentationScope.FromString(scope),
                                      log_records=[LogRecord.FromString(rec)])])])
        res, scope, shell, point = item
        metric = Metric.FromString(shell)
        metric.gauge.data_points.append(NumberDataPoint.FromString(point))
        return ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
            resource=Resource.FromString(res), scope_metrics=[ScopeMetrics(
                scope=InstrumentationScope.FromString(scope), metrics=[metric])])])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bridge", required=True)
    ap.add_argument("--s3s-fs", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--only", type=lambda s: set(s.split(",")), default=None)
    ap.add_argument("--outage-seconds", type=float, default=float(os.environ.get("OUTAGE_SECONDS", "20")))
    ap.add_argument("--crash-rounds", type=int, default=int(os.environ.get("CRASH_ROUNDS", "10")))
    args = ap.parse_args()
    for path in (args.bridge, args.s3s_fs):
        if not os.access(path, os.X_OK):
            sys.exit(f"not executable: {path}")
    suite = Suite(args)
    import atexit
    atexit.register(stop_all)
    suite.run("formats", suite.formats)
    suite.run_together([
        ("outage-store", lambda w: suite.outage(w, "store")),
        ("outage-live", lambda w: suite.outage(w, "live")),
        ("outage-both", lambda w: suite.outage(w, "both")),
        ("large", suite.large),
        ("large-crash", suite.large_crash),
        ("lost-upload", suite.lost_upload),
        ("shutdown", suite.shutdown),
    ])
    suite.run("crash", suite.crash)
    suite.run("credentials", suite.credentials)
    suite.run("check", suite.check_problems)
    suite.run("replay", suite.replay)
    passed = sum(1 for _, ok in suite.results if ok)
    failed = len(suite.results) - passed
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(0 if failed == 0 and passed > 0 else 1)


if __name__ == "__main__":
    main()
