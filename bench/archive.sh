#!/usr/bin/env bash
# The S3 archive (issue 22): CPU per span with the archive as a second output against the gRPC output alone, the
# durable queue on in both, in one run of the shared harness (outside this repository) against the same rotel sink;
# then the objects the archive wrote at the default settings (count, sizes, objects per minute).
#
#   cp target/release/otlp-bridge /tmp/otlp-bridge-bench
#   HARNESS=path/to/shared/harness BRIDGE=/tmp/otlp-bridge-bench bench/archive.sh
#
# The store is s3s-fs 0.14.1 (signature checks on), the binary .ci/run installs into ~/.cache/otlp-bridge-ci
# (S3S_FS_BIN; `cargo install s3s-fs --version 0.14.1 --features binary --locked` otherwise), started here on an
# empty root with one bucket, and reached as tests/archive does it (AWS_ENDPOINT_URL, static keys).
# Contenders, both with --queue-dir and a queue large enough for the whole run (bench/README.md says why):
#   queue     --backend http://SINK
#   archive   --backend http://SINK --backend s3://bench/RUN_DIR (every archive default: otlp_proto, zstd,
#             8 MiB objects capped by the memory share, 60 s age); each run writes under its own prefix, so its
#             objects are counted per run.
# CPU-s per M spans covers the measured window (load, then until the sink stopped receiving); what the archive
# had not stored by then is shown ("left for the archive", from otlp_bridge_queue_items at the end of the window),
# since the CPU to archive it falls outside the window.
# Then, at a steady rate (RATE requests of 100 spans a second for RATE_SECONDS, every request different, so that
# objects compress as real data does: the harness repeats one request, which zstd shrinks about 190x), the archive
# bridge alone against a blackhole rotel: objects per minute and their sizes at the defaults.
# Knobs: HARNESS (required unless REPS=0: the folder of the shared harness, which lives outside this repository),
# REPS=3 (0: the steady rate alone; then ROTEL_BIN names a rotel-agent), PAYLOADS="traces_pb traces_json",
# RATE=15, RATE_SECONDS=120 (0: skip), S3S_FS_BIN, VENV (the harness's, with opentelemetry-proto), and the
# harness's own.
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=${HARNESS:-}
BRIDGE=${BRIDGE:-target/release/otlp-bridge}
WORK=${WORK:-/tmp/otlp-bench}
S3S_FS_BIN=${S3S_FS_BIN:-$HOME/.cache/otlp-bridge-ci/bin/s3s-fs}
STORE_PORT=${STORE_PORT:-27390}
REPS=${REPS:-3}
[[ $REPS == 0 || (-n $HARNESS && -x $HARNESS/run.sh) ]] || { echo "needs the shared harness (outside this repository): set HARNESS to its folder, or REPS=0 for the steady rate alone" >&2; exit 2; }
[[ -x $BRIDGE ]] || { echo "needs \$BRIDGE, a release build of the bridge" >&2; exit 2; }
[[ -x $S3S_FS_BIN ]] || { echo "needs s3s-fs 0.14.1 at \$S3S_FS_BIN (.ci/run installs it into ~/.cache/otlp-bridge-ci)" >&2; exit 2; }
(exec 3<>/dev/tcp/127.0.0.1/$STORE_PORT) 2>/dev/null && { echo "port $STORE_PORT in use (set STORE_PORT)" >&2; exit 2; }

STORE=$(mktemp -d /tmp/otlp-bench-archive.XXXXXX)
mkdir -p "$STORE/root/bench"
"$S3S_FS_BIN" --host 127.0.0.1 --port "$STORE_PORT" --access-key bench-key --secret-key bench-secret "$STORE/root" \
  >"$STORE/s3s-fs.log" 2>&1 &
STORE_PID=$!
PIDS=("$STORE_PID")
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$STORE"; }
trap cleanup EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$STORE_PORT) 2>/dev/null && break; sleep 0.1; done
export AWS_ENDPOINT_URL=http://127.0.0.1:$STORE_PORT AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=bench-key AWS_SECRET_ACCESS_KEY=bench-secret

echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg); store: $("$S3S_FS_BIN" --version 2>&1 | head -1)"
status=0
if ((REPS > 0)); then
queue="$BRIDGE --listen {listen} --backend http://{sink} --metrics-listen {metrics} --queue-dir {dir}/q --queue-max-bytes 4294967296"
QUEUE_CMD="$queue" ARCHIVE_CMD="$queue --backend s3://bench{dir}" \
  CONTENDERS="queue archive" REPS=$REPS PAYLOADS=${PAYLOADS:-"traces_pb traces_json"} WORK=$WORK \
  "$HARNESS/run.sh" || status=$?
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 - "$WORK" "$STORE/root/bench" <<'PY'
import csv, os, re, statistics, sys
work, bucket = sys.argv[1:]
rows = [r for r in csv.DictReader(open(os.path.join(work, "results.tsv")), delimiter="\t") if r["cpu_s_per_M"] not in ("-", "")]

def metric(text, name, label=None):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if label is None or label in line:
                total += float(line.rsplit(" ", 1)[1])
    return total

print("| payload | queue CPU-s per M spans | archive CPU-s per M spans | archive / queue | per-rep ratios |")
print("|---|---|---|---|---|")
for p in dict.fromkeys(r["payload"] for r in rows):
    cpu = {c: {r["rep"]: float(r["cpu_s_per_M"]) for r in rows if r["contender"] == c and r["payload"] == p}
           for c in ("queue", "archive")}
    if not cpu["queue"] or not cpu["archive"]:
        continue
    q, a = statistics.median(cpu["queue"].values()), statistics.median(cpu["archive"].values())
    reps = ", ".join(f"{cpu['archive'][k] / cpu['queue'][k]:.2f}" for k in sorted(cpu["archive"]) if k in cpu["queue"])
    print(f"| {p} | {q:.2f} | {a:.2f} | {a / q:.2f} | {reps} |")
print()
print("Objects at the defaults, per archive run (the store's files under the run's prefix; window = load + drain):")
print()
print("| run | spans acked | window s | objects | objects per minute | stored KiB: min / median / max "
      "| uncompressed KiB per object | compression | left for the archive (items) |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    if r["contender"] != "archive":
        continue
    run = f"r{r['rep']}-archive-{r['payload']}"
    prefix = os.path.join(bucket, work.lstrip("/"), "runs", run)
    sizes = sorted(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(prefix) for f in fs)
    window = float(r["elapsed_s"]) + float(r["drain_s"])
    mpath = os.path.join(work, "runs", run, "metrics.txt")
    text = open(mpath).read() if os.path.exists(mpath) else ""
    objs = metric(text, "otlp_bridge_archive_objects_total")
    unc = metric(text, "otlp_bridge_archive_uncompressed_bytes_total")
    stored = metric(text, "otlp_bridge_archive_stored_bytes_total")
    left = metric(text, "otlp_bridge_queue_items", 'backend="s3://')
    acked = int(r["ok_requests"]) * 100
    sz = (f"{sizes[0] / 1024:.0f} / {statistics.median(sizes) / 1024:.0f} / {sizes[-1] / 1024:.0f}" if sizes else "-")
    print(f"| {run} | {acked} | {window:.1f} | {len(sizes)} | {60 * len(sizes) / window:.1f} | {sz} "
          f"| {unc / objs / 1024 if objs else 0:.0f} | {unc / stored if stored else 0:.1f}x | {left:.0f} |")
PY
fi

RATE=${RATE:-15} RATE_SECONDS=${RATE_SECONDS:-120}
VENV=${VENV:-/tmp/otlp-bench-venv}
ROTEL_BIN=${ROTEL_BIN:-$(find "$WORK" -maxdepth 3 -path '*/rotel/rotel-agent' 2>/dev/null | head -1)}
if ((RATE_SECONDS > 0)); then
  SINK=127.0.0.1:$((STORE_PORT + 1)) LISTEN=127.0.0.1:$((STORE_PORT + 3)) ADMIN=127.0.0.1:$((STORE_PORT + 4))
  "$ROTEL_BIN" start --otlp-grpc-endpoint "$SINK" --otlp-http-endpoint 127.0.0.1:$((STORE_PORT + 2)) --exporter blackhole \
    --pid-file "$STORE/sink.pid" --log-file "$STORE/sink.log" >"$STORE/sink.out" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/${SINK%:*}/${SINK#*:}") 2>/dev/null && break; sleep 0.1; done
  "$BRIDGE" --listen "$LISTEN" --metrics-listen "$ADMIN" --backend "http://$SINK" --queue-dir "$STORE/q" \
    --backend s3://bench/steady >"$STORE/bridge.log" 2>&1 &
  BRIDGE_PID=$!; PIDS+=("$BRIDGE_PID")
  for _ in $(seq 100); do curl -fsS -o /dev/null "http://$ADMIN/health" 2>/dev/null && break; sleep 0.1; done
  echo
  echo "Steady rate: $RATE requests/s of 100 distinct spans for ${RATE_SECONDS}s, archive defaults (load average $(cut -d' ' -f1-3 /proc/loadavg)):"
  echo
  "$VENV/bin/python" - "$LISTEN" "$RATE" "$RATE_SECONDS" "$ADMIN" "$STORE/root/bench/steady" <<'PY'
import http.client, os, random, statistics, sys, time
sys.path.insert(0, "bench")
from gen_payloads import make_traces
listen, rate, seconds, admin, prefix = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
bodies = [make_traces(random.Random(f"{i}-traces"), 100)[0].SerializeToString() for i in range(300)]
host, port = listen.rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port), timeout=30)
ok = sent_bytes = 0
start = time.monotonic()
for i in range(int(rate * seconds)):
    time.sleep(max(0.0, start + i / rate - time.monotonic()))
    body = bodies[i % len(bodies)]
    conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
    r = conn.getresponse(); r.read()
    ok += r.status == 200; sent_bytes += len(body)
elapsed = time.monotonic() - start
time.sleep(1)
a, b = admin.rsplit(":", 1)
m = http.client.HTTPConnection(a, int(b), timeout=5); m.request("GET", "/metrics")
text = m.getresponse().read().decode()
def metric(name):
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(name + "{"))
sizes = sorted(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(prefix) for f in fs)
objs, unc = metric("otlp_bridge_archive_objects_total"), metric("otlp_bridge_archive_uncompressed_bytes_total")
print("| OTLP MB/s | requests 200 | seconds | objects | objects per minute | stored KiB: min / median / max "
      "| uncompressed KiB per object | compression |")
print("|---|---|---|---|---|---|---|---|")
sz = f"{sizes[0] / 1024:.0f} / {statistics.median(sizes) / 1024:.0f} / {sizes[-1] / 1024:.0f}" if sizes else "-"
print(f"| {sent_bytes / elapsed / 1e6:.2f} | {ok} | {elapsed:.0f} | {len(sizes)} | {60 * len(sizes) / elapsed:.1f} | {sz} "
      f"| {unc / objs / 1024 if objs else 0:.0f} | {unc / sum(sizes) if sizes else 0:.1f}x |")
print()
print("stored KiB of each object, smallest first:", " ".join(f"{s / 1024:.0f}" for s in sizes))
PY
fi
exit $status
