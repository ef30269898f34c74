#!/usr/bin/env bash
# The OTLP/gRPC input (issue 20): the bridge's --grpc-listen against its own OTLP/HTTP input and against rotel's
# gRPC receiver, alternated in one run, each between a load tool and the same sink (rotel with its blackhole
# exporter, logging every message it receives, as in the shared harness), with a delivery check.
#
#   $HARNESS/run.sh      # once: the shared harness (outside this repository) installs wrk, makes the payloads and
#                        # downloads the pinned rotel into $WORK
#   cp target/release/otlp-bridge /tmp/otlp-bridge-bench
#   BRIDGE=/tmp/otlp-bridge-bench bench/grpc.sh
#
# Contenders (CONTENDERS, alternated within each repetition; a fresh process per run):
#   rotel-grpc    rotel 0.0.1a15 receiving OTLP/gRPC (the harness's rotel command: its defaults, batching, gzip
#                 export), fed by h2load
#   bridge-grpc   the bridge's --grpc-listen port, fed by h2load
#   bridge-h2     the bridge's OTLP/HTTP port over h2c, fed by h2load: the same load tool and HTTP/2 as the gRPC
#                 rows, so bridge-grpc / bridge-h2 is the input's own cost, not the load tool's
#   bridge-http   the bridge's OTLP/HTTP port over HTTP/1.1, fed by wrk: the shared harness's setup
# The bridge runs one command in every row (--grpc-listen on), its defaults otherwise (direct mode: OK only once
# the sink acknowledged).
#
# Load: 16 connections, one request in flight on each (wrk -c16; h2load -c16 -m1), 100-item protobuf requests
# from bench/gen_payloads.py (the harness's payloads). h2load sends a fixed body: the payload framed once for gRPC
# (1 byte "not compressed", 4 bytes length) with content-type application/grpc and te: trailers. ghz is not
# installable here; h2load (nghttp2-client) is the harness's own tool for feeding the sink over gRPC, is event
# driven C like wrk (a few % of a core), and the bridge and rotel forward or decode the bytes whatever their
# origin, so a fixed body loses nothing. What it cannot do: read grpc-status (a gRPC error is HTTP 200 with
# trailers), so "acked" counts HTTP 2xx, and every refusal would show up as items missing at the sink (LOST): the
# delivery check (sink received >= acked x items) stays sound. The bridge's own answers by code are read from
# otlp_bridge_grpc_requests_total and shown ("non-OK").
#
# Columns: req/s = acked / load seconds; spans/s = items the sink received / (load + drain); CPU-s per M spans =
# the contender's utime+stime (process tree, /proc) over the measured window including drain / acked items;
# peak RSS = VmHWM; load tool CPU % of one core; other CPU % = machine busy time (/proc/stat) not used by the
# contender, the sink or the load tool, in % of one core. Medians over REPS; ratios to rotel-grpc in this run.
# Knobs: BRIDGE WORK ROTEL_BIN DURATION=10 WARMUP=2 CONNS=16 REPS=3 PAYLOADS="traces_pb logs_pb metrics_pb"
# CONTENDERS BASE_PORT=27400 DRAIN_MAX=60.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/otlp-bench}
BRIDGE=${BRIDGE:-target/release/otlp-bridge}
DURATION=${DURATION:-10} WARMUP=${WARMUP:-2} CONNS=${CONNS:-16} REPS=${REPS:-3}
PAYLOADS=${PAYLOADS:-"traces_pb logs_pb metrics_pb"}
CONTENDERS=${CONTENDERS:-"rotel-grpc bridge-grpc bridge-h2 bridge-http"}
BASE_PORT=${BASE_PORT:-27400} DRAIN_MAX=${DRAIN_MAX:-60}
ROTEL_BIN=${ROTEL_BIN:-$(find "$WORK" -maxdepth 3 -path '*/rotel/rotel-agent' 2>/dev/null | head -1)}
PAY=$WORK/payloads
[[ -x $BRIDGE && -x ${ROTEL_BIN:-} && -s $PAY/manifest.tsv ]] ||
  { echo "needs \$BRIDGE, and rotel and the payloads in $WORK from the shared harness's run.sh (run it once)" >&2; exit 2; }
for tool in wrk h2load curl python3; do command -v $tool >/dev/null || { echo "needs $tool (h2load: apt-get install nghttp2-client)" >&2; exit 2; }; done

SINK=127.0.0.1:$BASE_PORT SINK_HTTP=127.0.0.1:$((BASE_PORT + 1)) LISTEN=127.0.0.1:$((BASE_PORT + 2))
GRPC=127.0.0.1:$((BASE_PORT + 3)) ADMIN=127.0.0.1:$((BASE_PORT + 4)) SPARE=127.0.0.1:$((BASE_PORT + 5))
HZ=$(getconf CLK_TCK)
T=$(mktemp -d /tmp/otlp-bench-grpc.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
log() { printf '[grpc %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
port_open() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
wait_port() { for _ in $(seq 200); do port_open "$1" && return 0; kill -0 "$2" 2>/dev/null || return 1; sleep 0.1; done; return 1; }
for p in $SINK $SINK_HTTP $LISTEN $GRPC $ADMIN $SPARE; do port_open "$p" && { echo "port $p in use (set BASE_PORT)" >&2; exit 2; }; done
manifest() { awk -F'\t' -v n="$1" -v c="$2" '$1 == n { print $c }' "$PAY/manifest.tsv"; }

# Process trees by parent pid (the contender may be a wrapper's child).
tree() {
  local root=$1 f s rest; declare -A parent=()
  for f in /proc/[0-9]*/stat; do read -r s 2>/dev/null <"$f" || continue; rest=${s##*) }; rest=${rest#* }; parent[${f//[!0-9]/}]=${rest%% *}; done
  local -a found=("$root") frontier=("$root") next; local p q
  while ((${#frontier[@]})); do
    next=(); for p in "${!parent[@]}"; do for q in "${frontier[@]}"; do [[ ${parent[$p]} == "$q" ]] && next+=("$p"); done; done
    found+=("${next[@]}"); frontier=("${next[@]}")
  done
  echo "${found[@]}"
}
ticks() { local sum=0 p s; local -a f; for p in $(tree "$1"); do read -r s 2>/dev/null <"/proc/$p/stat" || continue; read -r -a f <<<"${s##*) }"; sum=$((sum + f[11] + f[12] + f[13] + f[14])); done; echo $sum; }
hwm_kib() { local sum=0 p v; for p in $(tree "$1"); do v=$(awk '/^VmHWM:/{print $2}' "/proc/$p/status" 2>/dev/null || true); sum=$((sum + ${v:-0})); done; echo $sum; }
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
stop() { local p; for p in $(tree "$1"); do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done; kill -KILL "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# gRPC-framed copies of the protobuf payloads.
python3 - "$PAY" "$T" <<'EOF'
import os, struct, sys
src, dst = sys.argv[1:]
for f in os.listdir(src):
    if f.endswith(".pb"):
        b = open(os.path.join(src, f), "rb").read()
        open(os.path.join(dst, f[:-3] + ".grpc"), "wb").write(b"\0" + struct.pack(">I", len(b)) + b)
EOF

# The sink, as the harness starts it: every message it receives is logged with its item count.
SINK_LOG=$T/sink.log
"$ROTEL_BIN" start --otlp-grpc-endpoint $SINK --otlp-http-endpoint $SINK_HTTP --exporter blackhole --disable-batching \
  --log-format json --debug-log traces --debug-log logs --debug-log metrics --pid-file "$T/sink.pid" \
  --log-file "$T/sink-rotel.log" >>"$SINK_LOG" 2>&1 &
SINK_PID=$!; PIDS+=("$SINK_PID")
wait_port $SINK $SINK_PID || { tail "$SINK_LOG" >&2; exit 1; }
sink_items() { tail -c +$(($1 + 1)) "$SINK_LOG" | { grep -o '"\(spans\|logs\|metrics\)":[0-9]*' || true; } | awk -F: '{ s += $2 } END { print s + 0 }'; }
drain() { # drain OFFSET WANT: until the sink has WANT items (or nothing new for 5 s), DRAIN_S after the load's end
  local off=$1 want=$2 t0 last n tl t; t0=$(date +%s%N) last=$(sink_items "$off") tl=$t0
  while :; do
    sleep 0.2; n=$(sink_items "$off") t=$(date +%s%N)
    ((n != last)) && { last=$n; tl=$t; }
    ((want > 0 && n >= want && t - tl >= 500000000)) && break
    ((t - tl >= 5000000000 || t - t0 >= DRAIN_MAX * 1000000000)) && break
  done
  GOT=$last DRAIN_S=$(awk -v a="$tl" -v b="$t0" 'BEGIN { printf "%.2f", (a - b) / 1e9 }')
}
grpc_codes() { curl -s -m 2 "http://$ADMIN/metrics" | awk '/^otlp_bridge_grpc_requests_total\{/ { split($0, a, "code=\""); split(a[2], c, "\""); n[c[1]] += $NF }
  END { for (k in n) printf "%s=%d ", k, n[k] }'; }

# load SECS OUT TOOL URL FILE CTYPE: the load tool's output in OUT, its CPU seconds in OUT.times
load() {
  local secs=$1 out=$2 tool=$3 url=$4 file=$5 ctype=$6
  if [[ $tool == h2load ]]; then
    (h2load -t1 -c"$CONNS" -m1 -D "$secs" -d "$file" -H "content-type: $ctype" -H 'te: trailers' "$url" >"$out" 2>&1 || true; times >"$out.times")
  else
    (BENCH_BODY=$file BENCH_CTYPE=$ctype wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 30s -s bench/post.lua "$url" >"$out" 2>&1 || true; times >"$out.times")
  fi
}
parse() { # -> "acked elapsed_s"
  if [[ $1 == h2load ]]; then
    awk '/^requests:/ { gsub(/,/, ""); ok = $8 } /^status codes:/ { gsub(/,/, ""); two = $3 } /^finished in/ { sub(/s,$/, "", $3); e = $3 }
         END { if (e != "") print (two != "" ? two : ok), e }' "$2"
  else
    awk '/^WRKSTAT/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } printf "%d %.3f\n", v["requests"] - v["status"], v["duration_us"] / 1e6 }' "$2"
  fi
}
secs_of_times() { tail -1 "$1" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub(/s/, "", a[2]); t += a[1] * 60 + a[2] } print t }'; }

BRIDGE_ARGS=(--listen "$LISTEN" --grpc-listen "$GRPC" --backend "http://$SINK" --metrics-listen "$ADMIN")
ROWS=$T/rows
run_one() { # run_one REP CONTENDER PAYLOAD
  local rep=$1 name=$2 payload=$3 dir=$T/run
  rm -rf "$dir" && mkdir -p "$dir"
  local file path ctype items svc
  file=$PAY/$(manifest "$payload" 2) path=$(manifest "$payload" 3) items=$(manifest "$payload" 5)
  case $path in /v1/traces) svc=trace.v1.TraceService ;; /v1/logs) svc=logs.v1.LogsService ;; *) svc=metrics.v1.MetricsService ;; esac
  local grpc_url="http://$GRPC/opentelemetry.proto.collector.$svc/Export" grpc_file
  grpc_file=$T/$(basename "${file%.pb}").grpc
  local tool url port
  case $name in
    rotel-grpc)
      "$ROTEL_BIN" start --otlp-grpc-endpoint $GRPC --otlp-http-endpoint $SPARE --exporter otlp --otlp-exporter-endpoint "http://$SINK" \
        --pid-file "$dir/rotel.pid" --log-file "$dir/rotel.log" >"$dir/out.log" 2>&1 &
      tool=h2load url=$grpc_url file=$grpc_file ctype=application/grpc port=$GRPC ;;
    bridge-grpc) "$BRIDGE" "${BRIDGE_ARGS[@]}" >"$dir/out.log" 2>&1 &
      tool=h2load url=$grpc_url file=$grpc_file ctype=application/grpc port=$GRPC ;;
    bridge-h2) "$BRIDGE" "${BRIDGE_ARGS[@]}" >"$dir/out.log" 2>&1 &
      tool=h2load url=http://$LISTEN$path ctype=application/x-protobuf port=$LISTEN ;;
    bridge-http) "$BRIDGE" "${BRIDGE_ARGS[@]}" >"$dir/out.log" 2>&1 &
      tool=wrk url=http://$LISTEN$path ctype=application/x-protobuf port=$LISTEN ;;
    *) echo "unknown contender $name" >&2; exit 2 ;;
  esac
  local pid=$!; PIDS+=("$pid")
  wait_port "$port" "$pid" || { tail -5 "$dir/out.log" >&2; echo "$name did not start" >&2; exit 1; }
  # Smoke: one request must be answered and delivered before the load.
  local off; off=$(stat -c %s "$SINK_LOG")
  load 1 "$dir/smoke.out" "$tool" "$url" "$file" "$ctype"
  drain "$off" 1
  ((GOT > 0)) || { cat "$dir/smoke.out" >&2; echo "$name: smoke request not delivered" >&2; exit 1; }
  load "$WARMUP" "$dir/warmup.out" "$tool" "$url" "$file" "$ctype"
  drain "$(stat -c %s "$SINK_LOG")" 0
  local codes0="" codes1=""; [[ $name == bridge-* ]] && codes0=$(grpc_codes)
  local c0 b0 s0 t0; c0=$(ticks $pid) b0=$(busy) s0=$(ticks $SINK_PID) off=$(stat -c %s "$SINK_LOG") t0=$(date +%s%N)
  load "$DURATION" "$dir/load.out" "$tool" "$url" "$file" "$ctype"
  local acked el; read -r acked el <<<"$(parse $tool "$dir/load.out")"
  [[ -n ${el:-} ]] || { tail -5 "$dir/load.out" >&2; echo "$name: no load result" >&2; exit 1; }
  drain "$off" $((acked * items))
  local c1 b1 s1 t1 hwm lg; c1=$(ticks $pid) b1=$(busy) s1=$(ticks $SINK_PID) t1=$(date +%s%N) hwm=$(hwm_kib $pid)
  lg=$(secs_of_times "$dir/load.out.times")
  [[ $name == bridge-* ]] && codes1=$(grpc_codes)
  stop $pid
  # non-OK gRPC answers the bridge counted during the window (its own metric; h2load cannot see grpc-status)
  local nonok; nonok=$(python3 -c 'import sys
def p(s): return dict(kv.split("=") for kv in s.split())
a, b = p(sys.argv[1]), p(sys.argv[2])
print(sum(int(v) - int(a.get(k, 0)) for k, v in b.items() if k != "OK") if b else "-")' "$codes0" "$codes1")
  awk -v rep="$rep" -v name="$name" -v pl="$payload" -v tool="$tool" -v acked="$acked" -v el="$el" -v items="$items" \
      -v got="$GOT" -v drain="$DRAIN_S" -v c=$((c1 - c0)) -v s=$((s1 - s0)) -v busy=$((b1 - b0)) -v hz="$HZ" -v hwm="$hwm" \
      -v lg="$lg" -v nonok="$nonok" -v span_ns=$((t1 - t0)) 'BEGIN {
    n = acked * items; wall = el + drain
    other = (busy - c - s) / hz - lg; if (other < 0) other = 0; other_pct = 100 * other / (span_ns / 1e9)
    v = (n == 0) ? "NO_DATA" : (got < n) ? "LOST" : "ok"
    printf "%s\t%s\t%s\t%s\t%.1f\t%.0f\t%.3f\t%.1f\t%.1f\t%.1f\t%.2f\t%s\t%s\n", rep, name, pl, tool, acked / el, got / wall,
      n ? (c / hz) * 1e6 / n : 0, hwm / 1024, 100 * lg / el, other_pct, n ? 100 * got / n : 0, nonok, v }' >>"$ROWS"
  log "$(tail -1 "$ROWS" | tr '\t' ' ')"
}

log "contenders: $CONTENDERS; payloads: $PAYLOADS; $REPS x ${DURATION}s, $CONNS connections; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$ROWS"
for rep in $(seq "$REPS"); do
  for payload in $PAYLOADS; do
    for name in $CONTENDERS; do run_one "$rep" "$name" "$payload"; done
  done
done
echo "# $(date -u +%FT%TZ) $(nproc) cores; load average before $LOAD0, after $(cut -d' ' -f1-3 /proc/loadavg); rotel: $("$ROTEL_BIN" --version 2>&1); $(h2load --version | head -1); wrk $(dpkg-query -W -f='${Version}' wrk 2>/dev/null || true)"
echo "# $REPS reps x ${DURATION}s, $CONNS connections x 1 request in flight, 100-item protobuf requests; medians; 'x rotel-grpc' = ratio to rotel-grpc's median in this run"
python3 - "$ROWS" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
groups = {}
for r in rows:
    groups.setdefault((r[1], r[2]), []).append(r)
def med(rs, i):
    return statistics.median(float(r[i]) for r in rs)
print("| contender | payload | load tool | req/s (acked) | spans/s (delivered) | CPU-s per M spans | peak RSS MiB "
      "| load tool CPU % | other CPU % (max) | non-OK (bridge) | delivery check | spans/s x rotel-grpc | CPU x rotel-grpc |")
print("|" + "---|" * 13)
for (c, p), rs in groups.items():
    base = groups.get(("rotel-grpc", p))
    verdicts = sorted({r[12] for r in rs})
    check = ("ok" if verdicts == ["ok"] else ",".join(verdicts)) + f" ({med(rs, 10):.1f}%)"
    nonok = "-" if rs[0][11] == "-" else str(sum(int(r[11]) for r in rs))
    sr = f"{med(rs, 5) / med(base, 5):.2f}" if base and c != "rotel-grpc" else "-"
    cr = f"{med(rs, 6) / med(base, 6):.2f}" if base and c != "rotel-grpc" else "-"
    print(f"| {c} | {p} | {rs[0][3]} | {med(rs, 4):.0f} | {med(rs, 5):.0f} | {med(rs, 6):.2f} | {med(rs, 7):.1f} "
          f"| {med(rs, 8):.0f} | {max(float(r[9]) for r in rs):.0f} | {nonok} | {check} | {sr} | {cr} |")
print()
print("spread over reps (min-max CPU-s per M spans): " + "; ".join(
    f"{c}/{p} {min(float(r[6]) for r in rs):.2f}-{max(float(r[6]) for r in rs):.2f}" for (c, p), rs in groups.items()))
for p in sorted({p for _, p in groups}):
    g, h = groups.get(("bridge-grpc", p)), groups.get(("bridge-h2", p))
    if g and h:
        print(f"bridge-grpc / bridge-h2 CPU per span ({p}): {med(g, 6) / med(h, 6):.2f}")
PY
if grep -qP '\t(LOST|NO_DATA)$' "$ROWS"; then echo "some runs failed the delivery check" >&2; exit 2; fi
