#!/usr/bin/env bash
# The file input's cost: lines/s and CPU seconds per million lines for `plain` and `json`, against a floor of
# `cat FILE | cat > /dev/null` on the same file (reading and piping the bytes, nothing else).
#
#   cargo build --release && bench/files.sh            # LINES=1000000 by default
#
# The bridge runs in queued mode with an unreachable backend: a line counts once its record is fsynced in the queue
# (the delivery promise), so what is measured is read + split + parse + encode + queue append, with no backend's
# speed in it. Lines/s is LINES / the time until otelcol_receiver_accepted_log_records_total{transport="file"}
# reaches LINES; CPU is the process's user + system time (from /proc) at that moment. The machine may be shared:
# run it twice and compare.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BRIDGE_BIN:-target/release/otlp-bridge}
LINES=${LINES:-1000000}
work=$(mktemp -d /tmp/otlp-bridge-bench-files.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

python3 - "$work" "$LINES" <<'PY'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
with open(f"{d}/plain.log", "w") as f:
    for i in range(n):
        f.write(f"2024-05-01T12:00:00.123Z INFO line {i:08d} user=42 path=/checkout status=200 duration_ms=12\n")
with open(f"{d}/json.log", "w") as f:
    for i in range(n):
        f.write(json.dumps({"time": "2024-05-01T12:00:00.123Z", "level": "INFO", "message": f"line {i:08d}",
                            "user": 42, "path": "/checkout", "status": 200, "duration_ms": 12}) + "\n")
PY

tick=$(getconf CLK_TCK)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cpu_seconds() { awk -v t="$tick" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"; }

printf '%-6s %10s %10s %12s %14s\n' parser MiB seconds lines/s cpu_s/Mlines
for kind in plain json; do
  file="$work/$kind.log"
  mib=$(awk -v b="$(stat -c %s "$file")" 'BEGIN {printf "%.1f", b / 1048576}')
  # The floor: the bytes read and piped.
  floor=$( { /usr/bin/time -f '%e %U %S' sh -c "cat '$file' | cat > /dev/null" ; } 2>&1 | tail -1)
  read -r fe fu fs <<<"$floor"
  printf '%-6s %10s %10s %12.0f %14.2f\n' "cat" "$mib" "$fe" "$(echo "$LINES / ($fe + 0.0001)" | bc -l)" \
    "$(echo "($fu + $fs) * 1000000 / $LINES" | bc -l)"
  mkdir -p "$work/in-$kind"
  cp "$file" "$work/in-$kind/app.log"
  admin=$(free_port)
  start=$(date +%s.%N)
  "$BIN" --listen "127.0.0.1:$(free_port)" --metrics-listen "127.0.0.1:$admin" --backend http://127.0.0.1:9 \
    --queue-dir "$work/queue-$kind" --queue-max-bytes 4294967296 --memory-limit-mib 64 \
    --file-include "$work/in-$kind/*.log" --file-parser "$kind" 2>"$work/$kind.err" &
  pid=$!
  while :; do
    got=$(curl -fsS "http://127.0.0.1:$admin/metrics" 2>/dev/null |
      awk '/^otelcol_receiver_accepted_log_records_total\{.*transport="file"/ {s += $NF} END {printf "%d", s}') || got=0
    [ "${got:-0}" -ge "$LINES" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/$kind.err"; exit 1; }
    sleep 0.05
  done
  end=$(date +%s.%N)
  cpu=$(cpu_seconds "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  secs=$(echo "$end - $start" | bc -l)
  printf '%-6s %10s %10.2f %12.0f %14.2f\n' "$kind" "$mib" "$secs" "$(echo "$LINES / $secs" | bc -l)" \
    "$(echo "$cpu * 1000000 / $LINES" | bc -l)"
done
