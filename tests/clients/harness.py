#!/usr/bin/env python3
"""Helpers for run.sh: free ports, bounded waits, and the verdict.

  harness.py free-ports N                 print N free 127.0.0.1 ports
  harness.py wait-file PATH SECONDS [PID] wait until PATH exists and is non-empty (give up if PID exits)
  harness.py wait-http URL SECONDS [PID]  wait until GET URL answers 200 (give up if PID exits)
  harness.py verify --client ROUND:MODE:RECORD:NAME:SENT_JSON:EXIT_CODE [...] [--extra NAME:1|0:WHY ...]
                                          compare what each client sent with what the backend recorded
"""
import argparse
import collections
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request

# What each client is written to send; a client that sent less is a failure too.
EXPECTED = {
    "python": {"spans": 300, "logs": 60, "metric_points": 20},
    "node": {"spans": 300, "logs": 0, "metric_points": 0},
}
SPAN_FIELDS = ("parent_span_id", "name", "kind", "scope", "attributes")


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    print(" ".join(map(str, ports)))


def _alive(pid):
    if not pid:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by run.sh) counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def wait_file(path, seconds, pid=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            print(f"process {pid} exited while waiting for {path}", file=sys.stderr)
            return 1
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return 0
        time.sleep(0.1)
    print(f"timed out after {seconds}s waiting for {path}", file=sys.stderr)
    return 1


def wait_http(url, seconds, pid=None):
    deadline = time.monotonic() + seconds
    last = None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if not _alive(pid):
            print(f"process {pid} exited while waiting for {url} (last: {last})", file=sys.stderr)
            return 1
        try:
            with opener.open(url, timeout=2) as r:
                if r.status == 200:
                    return 0
                last = f"HTTP {r.status}"
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}: {e.read()[:200]!r}"
        except OSError as e:
            last = repr(e)
        time.sleep(0.2)
    print(f"timed out after {seconds}s waiting for {url} (last: {last})", file=sys.stderr)
    return 1


def _norm(v):
    """JSON-compare values: ints and floats that are equal compare equal, lists stay lists."""
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in sorted(v.items())}
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)) and float(v).is_integer():
        return float(v)
    return v


def _short(items, n=5):
    items = list(items)
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(map(str, items[:n])) + more


def load_record(path):
    """The backend's data lines, and its scripted refusals (backend.py --fail-first) apart."""
    lines, refusals = [], []
    if not os.path.exists(path):
        return lines, refusals
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if line:
                try:
                    rec = json.loads(line)
                    (refusals if "refused" in rec else lines).append(rec)
                except json.JSONDecodeError as e:
                    raise SystemExit(f"backend record line {n} is not JSON: {e}")
    return lines, refusals


# A retried export shows in the SDK's own log; in the "client-retry" round these are expected, nothing else is.
RETRY_NOTICE = ("Transient error", "Scheduling export retry")


def check_client(name, sent_path, rc, record, mode="strict", refusals=()):
    problems, facts = [], []
    exp = EXPECTED[name]
    if rc != 0:
        problems.append(f"client exited {rc}")
    try:
        with open(sent_path, encoding="utf-8") as f:
            sent = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        return [f"no usable client record {sent_path}: {e}"], facts
    service = sent["service"]

    failed = [e for e in sent["exports"] if not e["ok"]]
    if failed:
        problems.append(f"{len(failed)} of {len(sent['exports'])} exports reported failure to the app: {_short(failed, 3)}")
    not_flushed = [k for k, v in sent["flushed"].items() if not v]
    if not_flushed:
        problems.append(f"force_flush did not complete for {not_flushed}")
    if mode != "strict":
        refused = [r for r in refusals if service in r.get("services", "").split(",")]
        if not refused:
            problems.append("the backend refused none of this client's exports: the round tested nothing")
        facts.append(f"backend refused {len(refused)} export(s) with {refused[0]['refused'] if refused else '-'}")
    complaints = sent.get("sdk_complaints") or []
    if mode == "client-retry":
        retries = [c for c in complaints if any(r in c for r in RETRY_NOTICE)]
        complaints = [c for c in complaints if c not in retries]
        if not retries:
            problems.append("the client never retried: the scripted refusals did not reach it")
        facts.append(f"client retried {len(retries)}x")
    if complaints:
        problems.append(f"the SDK complained {len(complaints)}x: {_short(complaints, 3)}")

    # --- spans: exactly the same (trace_id, span_id) multiset, and the same content
    mine = [r for r in record if r["signal"] == "traces"]
    got = [s for r in mine for s in r["spans"] if s["service"] == service]
    key = lambda s: (s["trace_id"], s["span_id"])  # noqa: E731
    sent_spans = {key(s): s for s in sent["spans"]}
    if len(sent_spans) != len(sent["spans"]):
        problems.append("the client handed the exporter duplicate span ids (client bug)")
    if len(sent_spans) != exp["spans"]:
        problems.append(f"client exported {len(sent_spans)} spans, expected {exp['spans']}")
    counts = collections.Counter(key(s) for s in got)
    missing = sorted(set(sent_spans) - set(counts))
    extra = sorted(set(counts) - set(sent_spans))
    dups = sorted(k for k, c in counts.items() if c > 1)
    if missing:
        problems.append(f"{len(missing)} spans never reached the backend: {_short(missing)}")
    if extra:
        problems.append(f"{len(extra)} spans at the backend the client never sent: {_short(extra)}")
    if dups:
        problems.append(f"{len(dups)} spans reached the backend more than once: {_short(dups)}")
    changed = []
    for s in got:
        want = sent_spans.get(key(s))
        if want is None:
            continue
        diff = [f for f in SPAN_FIELDS if _norm(s.get(f)) != _norm(want.get(f))]
        if diff:
            changed.append((key(s), {f: (want.get(f), s.get(f)) for f in diff}))
    if changed:
        problems.append(f"{len(changed)} spans arrived altered (sent, received): {_short(changed, 2)}")
    facts.append(f"{len(counts)}/{len(sent_spans)} spans in {sum(1 for r in mine if any(s['service'] == service for s in r['spans']))} backend requests")

    # --- logs: the same bodies, once each, with their trace context
    if exp["logs"] or sent["logs"]:
        got_logs = [l for r in record if r["signal"] == "logs" for l in r["logs"] if l["service"] == service]
        sent_logs = {l["body"]: l for l in sent["logs"]}
        if len(sent_logs) != exp["logs"]:
            problems.append(f"client exported {len(sent_logs)} log records, expected {exp['logs']}")
        lc = collections.Counter(l["body"] for l in got_logs)
        lmissing = sorted(set(sent_logs) - set(lc))
        lextra = sorted(set(lc) - set(sent_logs))
        ldups = sorted(b for b, c in lc.items() if c > 1)
        for what, xs in (("never reached the backend", lmissing), ("were never sent", lextra), ("arrived more than once", ldups)):
            if xs:
                problems.append(f"{len(xs)} log records {what}: {_short(xs, 3)}")
        lchanged = [
            (l["body"], {f: (sent_logs[l["body"]][f], l[f]) for f in ("trace_id", "span_id", "severity_number") if l[f] != sent_logs[l["body"]][f]})
            for l in got_logs
            if l["body"] in sent_logs
        ]
        lchanged = [c for c in lchanged if c[1]]
        if lchanged:
            problems.append(f"{len(lchanged)} log records arrived altered (sent, received): {_short(lchanged, 2)}")
        facts.append(f"{len(lc)}/{len(sent_logs)} log records")

    # --- metrics: one backend request per successful client export, each holding exactly the expected points
    if exp["metric_points"] or sent["expected_points"]:
        ok_exports = sum(1 for e in sent["exports"] if e["signal"] == "metrics" and e["ok"])
        reqs = [
            [p for p in r["points"] if p["service"] == service]
            for r in record
            if r["signal"] == "metrics"
        ]
        reqs = [r for r in reqs if r]
        if ok_exports == 0:
            problems.append("the client made no successful metric export")
        if len(reqs) != ok_exports:
            problems.append(f"{ok_exports} metric exports succeeded at the client but the backend got {len(reqs)} requests")
        want = sorted(json.dumps(_norm({k: p[k] for k in ("metric", "attributes", "value")}), sort_keys=True) for p in sent["expected_points"])
        if len(want) != exp["metric_points"]:
            problems.append(f"client expected {len(want)} metric points, suite expects {exp['metric_points']}")
        for i, r in enumerate(reqs):
            have = sorted(json.dumps(_norm({k: p[k] for k in ("metric", "attributes", "value")}), sort_keys=True) for p in r)
            if have != want:
                lost = sorted(set(want) - set(have))
                odd = sorted(set(have) - set(want))
                problems.append(f"metric request {i + 1}: {len(have)} points; missing {_short(lost, 2)}; unexpected {_short(odd, 2)}")
        facts.append(f"{len(reqs)}/{ok_exports} metric exports of {len(want)} points")

    facts.append(f"{len(sent['exports'])} client exports, all acknowledged" if not failed else f"{len(sent['exports'])} client exports")
    facts.append(f"client took {sent.get('seconds')}s")
    return problems, facts


def verify(args):
    passed = failed = 0
    for spec in args.client:
        rnd, mode, record_path, name, path, rc = spec.split(":", 5)
        record, refusals = load_record(record_path)
        problems, facts = check_client(name, path, int(rc), record, mode, refusals)
        label = rnd + " " + {"python": "python (opentelemetry-exporter-otlp-proto-http, protobuf)",
                             "node": "node (@opentelemetry/exporter-trace-otlp-http, JSON)"}[name]
        if problems:
            failed += 1
            print(f"FAIL {label}: {'; '.join(facts)}")
            for p in problems:
                print(f"     - {p}")
        else:
            passed += 1
            print(f"PASS {label}: {'; '.join(facts)}")
    for extra in args.extra or []:
        name, ok, why = extra.split(":", 2)
        if ok == "1":
            passed += 1
            print(f"PASS {name}: {why}")
        else:
            failed += 1
            print(f"FAIL {name}: {why}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("free-ports")
    p.add_argument("n", type=int)
    p = sub.add_parser("wait-file")
    p.add_argument("path")
    p.add_argument("seconds", type=float)
    p.add_argument("pid", type=int, nargs="?")
    p = sub.add_parser("wait-http")
    p.add_argument("url")
    p.add_argument("seconds", type=float)
    p.add_argument("pid", type=int, nargs="?")
    p = sub.add_parser("verify")
    p.add_argument("--client", action="append", default=[],
                   help="ROUND:MODE:BACKEND_RECORD:NAME:SENT_JSON:EXIT_CODE; MODE: strict (no refusal, no SDK warning), "
                        "bridge-retry (the backend refused, the app saw nothing), client-retry (the app retried)")
    p.add_argument("--extra", action="append", help="NAME:1|0:WHY, a further check run.sh made")
    a = ap.parse_args()
    if a.cmd == "free-ports":
        free_ports(a.n)
        return 0
    if a.cmd == "wait-file":
        return wait_file(a.path, a.seconds, a.pid)
    if a.cmd == "wait-http":
        return wait_http(a.url, a.seconds, a.pid)
    return verify(a)


if __name__ == "__main__":
    sys.exit(main())
