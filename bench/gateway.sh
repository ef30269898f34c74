#!/usr/bin/env bash
# The gateway's costs: the same bridge binary, plain HTTP vs HTTPS vs HTTPS + bearer token (+ a forwarded tenant
# header), alternated in one run against the same sink, so the ratios compare like with like on a noisy machine.
#
#   $HARNESS/run.sh      # once: the shared benchmark harness (outside this repository) installs wrk, makes the
#                        # payloads and downloads the pinned rotel into $WORK
#   BRIDGE=/tmp/otlp-bridge-bench bench/gateway.sh
#
# Each variant: a fresh bridge, 2 s warm-up, DURATION s of `wrk -t1 -c CONNS` keep-alive POSTs of the traces_pb
# payload (100 spans; wrk does TLS without verifying, and keeps its connections, so handshakes are not what is
# measured: the per-request cost of encryption and of the token check is). CPU-s per M spans = the bridge's
# utime+stime (/proc/PID/stat) over the spans acknowledged. Medians of REPS. Sink: rotel with its blackhole exporter.
set -euo pipefail
WORK=${WORK:-/tmp/otlp-bench}
BRIDGE=${BRIDGE:-target/release/otlp-bridge}
DURATION=${DURATION:-10} CONNS=${CONNS:-16} REPS=${REPS:-3} PAYLOAD=${PAYLOAD:-traces_pb}
ROTEL_BIN=${ROTEL_BIN:-$(find "$WORK" -maxdepth 3 -path '*/rotel/rotel-agent' 2>/dev/null | head -1)}
POST_LUA=${POST_LUA:-$(dirname "$0")/post.lua}
[[ -x $BRIDGE && -x ${ROTEL_BIN:-} && -s $WORK/payloads/manifest.tsv && -s $POST_LUA ]] ||
  { echo "needs \$BRIDGE, and rotel, payloads and post.lua in $WORK from the shared harness's run.sh (run it once)" >&2; exit 2; }
for tool in wrk openssl curl; do command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 2; }; done

T=$(mktemp -d /tmp/otlp-bench-gateway.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
# manifest.tsv: name, file, path, content type, items, bytes
body=$WORK/payloads/$(awk -F'\t' -v n="$PAYLOAD" '$1 == n { print $2 }' "$WORK/payloads/manifest.tsv")
ctype=$(awk -F'\t' -v n="$PAYLOAD" '$1 == n { print $4 }' "$WORK/payloads/manifest.tsv")
items=$(awk -F'\t' -v n="$PAYLOAD" '$1 == n { print $5 }' "$WORK/payloads/manifest.tsv")
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$T/tls.key" -out "$T/tls.crt" 2>/dev/null
openssl rand -hex 32 >"$T/tokens"
TOKEN=$(cat "$T/tokens")

SINK=127.0.0.1:27301 LISTEN=127.0.0.1:27302 ADMIN=127.0.0.1:27303
"$ROTEL_BIN" start --otlp-grpc-endpoint $SINK --otlp-http-endpoint 127.0.0.1:27304 --exporter blackhole \
  --pid-file "$T/sink.pid" --log-file "$T/sink.log" >"$T/sink.out" 2>&1 &
PIDS+=($!)
wait_http() { for _ in $(seq 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/27301) 2>/dev/null && break; sleep 0.1; done

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
run() { # run NAME SCHEME HEADER BRIDGE-ARGS...
  local name=$1 scheme=$2 header=$3; shift 3
  "$BRIDGE" --listen $LISTEN --metrics-listen $ADMIN --backend "http://$SINK" "$@" >"$T/bridge.log" 2>&1 &
  local pid=$!
  wait_http "http://$ADMIN/health" || { tail "$T/bridge.log" >&2; exit 1; }
  local hargs=(-H "Content-Type: $ctype")
  [[ -n $header ]] && hargs+=(-H "$header" -H "X-Scope-OrgID: team-a")
  BENCH_BODY=$body BENCH_CTYPE=$ctype wrk -t1 -c"$CONNS" -d2s -s "$POST_LUA" "${hargs[@]}" "$scheme://$LISTEN/v1/traces" >/dev/null
  local t0; t0=$(ticks $pid)
  BENCH_BODY=$body BENCH_CTYPE=$ctype wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$POST_LUA" "${hargs[@]}" \
    "$scheme://$LISTEN/v1/traces" >"$T/wrk.out"
  local t1; t1=$(ticks $pid)
  kill $pid; wait $pid 2>/dev/null || true
  local stat; stat=$(grep WRKSTAT "$T/wrk.out")
  local n non2xx p99; n=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$stat"); non2xx=$(sed 's/.* status=\([0-9]*\).*/\1/' <<<"$stat")
  p99=$(sed 's/.*p99_us=\([0-9]*\).*/\1/' <<<"$stat")
  awk -v name="$name" -v n="$n" -v bad="$non2xx" -v d="$DURATION" -v items="$items" -v ticks=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v p99="$p99" \
    'BEGIN { ok = n - bad; printf "%s\t%.0f\t%.2f\t%.2f\t%d\n", name, ok / d, (ticks / hz) / (ok * items / 1e6), p99 / 1000, bad }'
}
: >"$T/rows"
for rep in $(seq "$REPS"); do
  run plain http "" >>"$T/rows"
  run tls https "" --tls-cert "$T/tls.crt" --tls-key "$T/tls.key" >>"$T/rows"
  run tls+token+tenant https "Authorization: Bearer $TOKEN" --tls-cert "$T/tls.crt" --tls-key "$T/tls.key" \
    --auth-token-file "$T/tokens" --forward-header X-Scope-OrgID >>"$T/rows"
  echo "rep $rep done" >&2
done
echo "# $(date -u +%FT%TZ) $(nproc) cores; $REPS reps x ${DURATION}s, $CONNS connections, $PAYLOAD ($items spans); medians"
echo "| variant | req/s (2xx) | CPU-s per M spans | p99 ms | non-2xx | CPU x plain |"
echo "|---|---|---|---|---|---|"
python3 - "$T/rows" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, rps, cpu, p99, bad = line.split("\t")
    rows.setdefault(name, []).append((float(rps), float(cpu), float(p99), int(bad)))
med = {k: [statistics.median(c) for c in zip(*v)] for k, v in rows.items()}
for k in ["plain", "tls", "tls+token+tenant"]:
    rps, cpu, p99, bad = med[k]
    print(f"| {k} | {rps:.0f} | {cpu:.2f} | {p99:.1f} | {bad:.0f} | {cpu / med['plain'][1]:.2f} |")
PY
