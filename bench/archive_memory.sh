#!/usr/bin/env bash
# The S3 archive's memory with objects far larger than the reader's share (issue 22: "memory stays within the budget
# whatever the object size"): the bridge with the archive as its only output, --memory-limit-mib 20 (the default),
# --archive-max-object-bytes 256 MiB and a 10 min age, so every object stays open for the whole run and goes up in
# 5 MiB parts (the count of requests to the store shows them); three signals at once (three open objects), distinct requests from bench/gen_payloads.py posted as
# fast as three connections go for SECONDS. Sampled every 0.2 s: the bridge's RSS and otlp_bridge_memory_held_bytes;
# at the end its peak RSS (VmHWM). Each build in BUILDS runs with each compression in COMPRESSIONS, in one run, each
# on a fresh s3s-fs root and queue.
#
#   BUILDS="before=/tmp/bridge-before after=target/ci/otlp-bridge" bench/archive_memory.sh
#
# Knobs: BUILDS (label=binary ...; default: after=target/release/otlp-bridge), COMPRESSIONS="none zstd",
# SECONDS_EACH=45, S3S_FS_BIN (.ci/run's, in ~/.cache/otlp-bridge-ci), VENV (a venv with opentelemetry-proto: the
# bench harness's /tmp/otlp-bench-venv by default), PORT=27490 (uses PORT..PORT+2).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILDS=${BUILDS:-after=target/release/otlp-bridge}
COMPRESSIONS=${COMPRESSIONS:-"none zstd"}
SECONDS_EACH=${SECONDS_EACH:-45}
S3S_FS_BIN=${S3S_FS_BIN:-$HOME/.cache/otlp-bridge-ci/bin/s3s-fs}
VENV=${VENV:-/tmp/otlp-bench-venv}
PORT=${PORT:-27490}
[[ -x $S3S_FS_BIN ]] || { echo "needs s3s-fs 0.14.1 at \$S3S_FS_BIN (.ci/run installs it)" >&2; exit 2; }
[[ -x $VENV/bin/python ]] || { echo "needs \$VENV, a venv with opentelemetry-proto" >&2; exit 2; }

WORK=$(mktemp -d /tmp/otlp-bench-archive-memory.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

echo "# $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg); --memory-limit-mib 20, objects of 256 MiB"
echo
echo "| build | compression | OTLP MB posted | requests 200 / other | peak RSS MiB (VmHWM) | RSS MiB, median of samples | memory held MiB, max | requests to the store |"
echo "|---|---|---|---|---|---|---|---|"
for build in $BUILDS; do
  label=${build%%=*} bin=${build#*=}
  [[ -x $bin ]] || { echo "no binary at $bin" >&2; exit 2; }
  for compression in $COMPRESSIONS; do
    run="$WORK/$label-$compression"
    mkdir -p "$run/root/mem"
    "$S3S_FS_BIN" --host 127.0.0.1 --port "$PORT" --access-key mem-key --secret-key mem-secret "$run/root" \
      >"$run/s3s-fs.log" 2>&1 &
    store=$!; PIDS+=("$store")
    wait_port "$PORT"
    AWS_ENDPOINT_URL=http://127.0.0.1:$PORT AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=mem-key \
      AWS_SECRET_ACCESS_KEY=mem-secret "$bin" --listen "127.0.0.1:$((PORT + 1))" \
      --metrics-listen "127.0.0.1:$((PORT + 2))" --queue-dir "$run/q" --backend s3://mem/run \
      --memory-limit-mib 20 --archive-max-object-bytes 268435456 --archive-max-object-age 10m \
      --archive-compression "$compression" >"$run/bridge.log" 2>&1 &
    bridge=$!; PIDS+=("$bridge")
    wait_port "$((PORT + 2))"
    row=$("$VENV/bin/python" - "$PORT" "$bridge" "$SECONDS_EACH" "$run/root/mem" <<'PY'
import http.client, os, random, statistics, sys, threading, time
sys.path.insert(0, "bench")
from gen_payloads import make_logs, make_metrics, make_traces
port, pid, seconds, bucket = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
makers = {"traces": lambda r: make_traces(r, 100), "logs": lambda r: make_logs(r, 100), "metrics": lambda r: make_metrics(r, 100)}
bodies = {s: [m(random.Random(f"{s}-{i}"))[0].SerializeToString() for i in range(150)] for s, m in makers.items()}
posted = [0]; ok = [0]; other = [0]; lock = threading.Lock(); end = time.monotonic() + seconds

def post(signal):
    conn = http.client.HTTPConnection("127.0.0.1", port + 1, timeout=30)
    i = 0
    while time.monotonic() < end:
        body = bodies[signal][i % len(bodies[signal])]; i += 1
        conn.request("POST", f"/v1/{signal}", body, {"Content-Type": "application/x-protobuf"})
        r = conn.getresponse(); r.read()
        with lock:
            if r.status == 200:
                ok[0] += 1; posted[0] += len(body)
            else:
                other[0] += 1
        if r.status != 200:
            time.sleep(0.05)

def status(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0

def metric(name):
    m = http.client.HTTPConnection("127.0.0.1", port + 2, timeout=5); m.request("GET", "/metrics")
    lines = m.getresponse().read().decode().splitlines()
    return sum(float(l.rsplit(" ", 1)[1]) for l in lines if l.startswith(name + " ") or l.startswith(name + "{"))

def held():
    return metric("otlp_bridge_memory_held_bytes") / 2**20

threads = [threading.Thread(target=post, args=(s,)) for s in makers]
for t in threads: t.start()
rss, helds = [], []
while any(t.is_alive() for t in threads):
    rss.append(status("VmRSS")); helds.append(held()); time.sleep(0.2)
time.sleep(1)
requests = metric("otlp_bridge_archive_upload_duration_seconds_count")
print(f"{posted[0] / 1e6:.0f} | {ok[0]} / {other[0]} | {status('VmHWM'):.1f} | {statistics.median(rss):.1f} | "
      f"{max(helds):.1f} | {requests:.0f} |")
PY
)
    echo "| $label | $compression | $row"
    kill "$bridge" "$store" 2>/dev/null || true
    wait "$bridge" "$store" 2>/dev/null || true
  done
done
