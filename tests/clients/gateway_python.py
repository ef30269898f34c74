#!/usr/bin/env python3
"""The gateway case of the real-client suite: the official Python SDK configured only through the standard
environment variables, through the bridge as a TLS + token + tenant gateway, into the recording backend.

  gateway_python.py run --bridge BIN --backend-script backend.py --work DIR
  gateway_python.py client --out FILE      (one application; run by `run` with the OTEL_* environment)

`run` generates a throwaway CA and a server certificate for 127.0.0.1 with the openssl CLI and a token file in a
temporary directory (removed afterwards), starts backend.py and the bridge with
    --tls-cert --tls-key --auth-token-file --forward-header X-Scope-OrgID
(and --export-concurrency 1, so that concurrent requests queue up and are batched together), and runs five
applications at once, each configured only by environment:
    a1, a2   OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20<token>,X-Scope-OrgID=team-a
    b1, b2   same token, X-Scope-OrgID=team-b
    intruder a token the bridge does not know
all with OTEL_EXPORTER_OTLP_ENDPOINT=https://127.0.0.1:<port> and OTEL_EXPORTER_OTLP_CERTIFICATE=<ca.pem>.
Each sends 200 spans and 40 log records.

Passes when: a1, a2, b1 and b2 had every export acknowledged and the backend received exactly their spans and log
records (same ids, once each); every backend call carried exactly one x-scope-orgid, and only data of that
tenant's applications (one call may merge a1 and a2, never a1 and b1), and no authorization header; the intruder's exports all failed, none of its data reached the
backend, the bridge counted its 401s, and its token appears nowhere in the bridge's log; the bridge exited 0 on
SIGTERM. Prints one PASS/FAIL line per check; the last line is a one-line summary.
"""
import argparse
import collections
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

SPANS, LOGS = 200, 40
APPS = ("a1", "a2", "b1", "b2")


# ---------------------------------------------------------------- the application

def client(out):
    import logging

    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

    sent = {"spans": [], "logs": [], "exports": []}

    class Spans(OTLPSpanExporter):
        def export(self, spans):
            ok = super().export(spans) == SpanExportResult.SUCCESS
            sent["exports"].append({"signal": "traces", "items": len(spans), "ok": ok})
            sent["spans"] += [f"{s.context.span_id:016x}" for s in spans]
            return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    class Logs(OTLPLogExporter):
        def export(self, batch):
            ok = super().export(batch) == LogRecordExportResult.SUCCESS
            sent["exports"].append({"signal": "logs", "items": len(batch), "ok": ok})
            sent["logs"] += [r.log_record.body for r in batch]
            return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE

    # Endpoint, headers and CA come from OTEL_EXPORTER_OTLP_* only, as in a deployed application.
    resource = Resource.create()  # service.name from OTEL_SERVICE_NAME
    service = resource.attributes["service.name"]
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(BatchSpanProcessor(Spans(), max_export_batch_size=50, schedule_delay_millis=100))
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(BatchLogRecordProcessor(Logs(), max_export_batch_size=10, schedule_delay_millis=100))
    app_log = logging.getLogger("gateway.app")
    app_log.propagate = False
    app_log.setLevel(logging.INFO)
    app_log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=lp))
    tracer = tp.get_tracer("gateway.client")
    for i in range(SPANS):
        with tracer.start_as_current_span(f"{service}-{i}"):
            if i % (SPANS // LOGS) == 0:
                app_log.warning("%s log %d", service, i)
    flushed = tp.force_flush(30_000) and lp.force_flush(30_000)
    tp.shutdown()
    lp.shutdown()
    sent["flushed"] = flushed
    with open(out, "w", encoding="utf-8") as f:
        json.dump(sent, f)


# ---------------------------------------------------------------- the orchestration

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(predicate, seconds, what, proc=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what}: the process exited with {proc.returncode}")
        if predicate():
            return
        time.sleep(0.1)
    raise SystemExit(f"{what}: not within {seconds}s")


def http_get(url):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as r:
            return r.status, r.read().decode()
    except OSError:
        return None, ""


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(d):
    """A CA and a server certificate for 127.0.0.1 signed by it, P-256, valid one day."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-subj", "/CN=otlp-bridge test CA", "-keyout", "ca.key", "-out", "ca.pem",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "server.key", "-out", "server.csr", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-extfile", "server.ext", "-out", "server.pem", cwd=d)
    return os.path.join(d, "ca.pem"), os.path.join(d, "server.pem"), os.path.join(d, "server.key")


def load_record(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def run(args):
    work = args.work
    os.makedirs(work, exist_ok=True)
    secrets_dir = tempfile.mkdtemp(prefix="otlp-bridge-gateway-")
    procs = []
    results = []  # (ok, name, why)

    def check(ok, name, why):
        results.append((bool(ok), name, why))

    try:
        if shutil.which("openssl") is None:
            raise SystemExit("the openssl CLI is missing (Debian: apt-get install openssl)")
        ca, cert, key = make_certificates(secrets_dir)
        token, wrong = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        tokens = os.path.join(secrets_dir, "tokens")
        with open(tokens, "w") as f:
            f.write(f"# gateway test\n{token}\n")

        record, port_file = os.path.join(work, "backend.jsonl"), os.path.join(work, "backend.port")
        backend = subprocess.Popen([sys.executable, args.backend_script, "--record", record, "--port-file", port_file],
                                   stdout=open(os.path.join(work, "backend.log"), "w"), stderr=subprocess.STDOUT)
        procs.append(backend)
        wait(lambda: os.path.exists(port_file) and os.path.getsize(port_file) > 0, 30, "backend start", backend)
        backend_port = int(open(port_file).read().split()[0])

        http_port, admin_port = free_port(), free_port()
        bridge_log = os.path.join(work, "bridge.log")
        bridge = subprocess.Popen(
            [args.bridge, "--listen", f"127.0.0.1:{http_port}", "--metrics-listen", f"127.0.0.1:{admin_port}",
             "--backend", f"http://127.0.0.1:{backend_port}", "--tls-cert", cert, "--tls-key", key,
             "--auth-token-file", tokens, "--forward-header", "X-Scope-OrgID", "--export-concurrency", "1"],
            stdout=open(bridge_log, "w"), stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1", "RUST_LOG": os.environ.get("RUST_LOG", "info")})
        procs.append(bridge)
        admin = f"http://127.0.0.1:{admin_port}"
        wait(lambda: http_get(f"{admin}/ready")[0] == 200, 30, "bridge ready", bridge)

        apps = {"a1": (token, "team-a"), "a2": (token, "team-a"), "b1": (token, "team-b"), "b2": (token, "team-b"),
                "intruder": (wrong, "team-a")}
        running = {}
        for name, (tok, tenant) in apps.items():
            # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override the CA the SDK sets on its session
            # (psf/requests#3829), so OTEL_EXPORTER_OTLP_CERTIFICATE would be ignored where they are set.
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith("OTEL_") and k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
            env.update({
                "OTEL_SERVICE_NAME": f"gateway-{name}",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"https://127.0.0.1:{http_port}",
                "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer%20{tok},X-Scope-OrgID={tenant}",
                "OTEL_EXPORTER_OTLP_CERTIFICATE": ca,
                "OTEL_BLRP_EXPORT_TIMEOUT": "15000",
            })
            out = os.path.join(work, f"{name}.json")
            log = open(os.path.join(work, f"{name}.log"), "w")
            running[name] = (subprocess.Popen([sys.executable, __file__, "client", "--out", out], env=env,
                                              stdout=log, stderr=subprocess.STDOUT), out)
        sent = {}
        for name, (proc, out) in running.items():
            try:
                rc = proc.wait(180)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = "killed after 180s"
            check(rc == 0, f"gateway {name} app", f"exited {rc}")
            sent[name] = json.load(open(out)) if os.path.exists(out) else {"spans": [], "logs": [], "exports": []}

        _, metrics = http_get(f"{admin}/metrics")
        bridge.send_signal(signal.SIGTERM)
        try:
            rc = bridge.wait(30)
        except subprocess.TimeoutExpired:
            rc = "still running 30s after SIGTERM"
        check(rc == 0, "gateway bridge", f"exited {rc} on SIGTERM")
        backend.send_signal(signal.SIGTERM)
        backend.wait(10)

        # Empty exports are the bridge's readiness probes, not application data.
        calls = [r for r in load_record(record) if "refused" not in r and (r.get("spans") or r.get("logs"))]
        by_service = collections.defaultdict(lambda: {"spans": collections.Counter(), "logs": collections.Counter()})
        mixed, wrong_tenant, leaked_auth, merged = [], [], 0, 0
        for call in calls:
            md = call.get("metadata", {})
            leaked_auth += "authorization" in md
            items = [(s["service"], "spans", s["span_id"]) for s in call.get("spans", [])]
            items += [(l["service"], "logs", l["body"]) for l in call.get("logs", [])]
            tenants = {apps.get(svc.removeprefix("gateway-"), (None, None))[1] for svc, _, _ in items}
            if len(tenants) > 1:
                mixed.append(call["seq"])
            merged += len({svc for svc, _, _ in items}) > 1
            for svc, kind, ident in items:
                by_service[svc][kind][ident] += 1
                want = apps.get(svc.removeprefix("gateway-"), (None, None))[1]
                if md.get("x-scope-orgid") != want:
                    wrong_tenant.append((call["seq"], svc, md.get("x-scope-orgid")))
        check(calls and not mixed, "gateway tenants apart",
              f"{len(calls)} backend calls, each one tenant's data ({merged} merged two applications of one tenant)"
              if not mixed else f"calls {mixed[:5]} mixed tenants")
        check(calls and not wrong_tenant, "gateway tenant metadata",
              "every call carried exactly its tenant's x-scope-orgid" if not wrong_tenant else f"wrong x-scope-orgid: {wrong_tenant[:3]}")
        check(leaked_auth == 0, "gateway token not forwarded", f"{leaked_auth} backend calls carried an authorization header")

        for name in APPS:
            s, got = sent[name], by_service[f"gateway-{name}"]
            failed = [e for e in s["exports"] if not e["ok"]]
            problems = []
            if failed or not s.get("flushed"):
                problems.append(f"{len(failed)} of {len(s['exports'])} exports failed at the app (flushed: {s.get('flushed')})")
            for kind, count in (("spans", SPANS), ("logs", LOGS)):
                want = collections.Counter(s[kind])
                if len(want) != count:
                    problems.append(f"the app exported {len(want)} {kind}, expected {count}")
                if got[kind] != want:
                    missing, extra = want - got[kind], got[kind] - want
                    problems.append(f"{kind}: {sum(missing.values())} missing, {sum(extra.values())} extra or twice")
            check(not problems, f"gateway {name} exactly delivered",
                  "; ".join(problems) or f"{SPANS} spans and {LOGS} log records, each once, over HTTPS with a token "
                                          f"({len(s['exports'])} exports acknowledged)")

        intruder = sent["intruder"]
        refused = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                      if line.startswith("otlp_bridge_auth_refused_requests_total{") and 'reason="unknown_token"' in line)
        leaked = sum(sum(c.values()) for c in by_service["gateway-intruder"].values())
        with open(bridge_log, encoding="utf-8", errors="replace") as f:
            logged = f.read()
        ok = intruder["exports"] and not any(e["ok"] for e in intruder["exports"]) and leaked == 0 and refused >= 1
        check(ok and wrong not in logged and token not in logged, "gateway unknown token refused",
              f"{len(intruder['exports'])} exports refused, {leaked} items reached the backend, {refused:.0f} 401s "
              f"counted as unknown_token, tokens in the bridge log: {wrong in logged or token in logged}")
    except (SystemExit, subprocess.CalledProcessError, OSError) as e:
        check(False, "gateway setup", str(e))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(secrets_dir, ignore_errors=True)

    for ok, name, why in results:
        print(f"{'PASS' if ok else 'FAIL'} {name}: {why}")
    bad = [f"{name}: {why}" for ok, name, why in results if not ok]
    print(f"FAILED {len(bad)} of {len(results)} gateway checks; first: {bad[0]}" if bad
          else f"all {len(results)} gateway checks passed (TLS, token, X-Scope-OrgID through the Python SDK)")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    p.add_argument("--bridge", required=True)
    p.add_argument("--backend-script", required=True)
    p.add_argument("--work", required=True)
    p = sub.add_parser("client")
    p.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.cmd == "client":
        client(a.out)
        return 0
    return run(a)


if __name__ == "__main__":
    sys.exit(main())
