#!/usr/bin/env bash
# Idle memory: the bridge's resident set a few seconds after it started, with nothing to do, split into anonymous
# memory (heap, stacks) and file pages (its code and read-only data, and the C library's, mapped from the page cache).
#
#   cargo build --release && bench/idle.sh                 # BRIDGE_BIN=target/release/otlp-bridge, REPS=5
#   BRIDGE_BIN=a bench/idle.sh; BRIDGE_BIN=b bench/idle.sh # compare two builds
#
# Each repetition starts the bridge on ports 0 with a closed backend port (as when it starts before its backend),
# waits for its ready line, waits SETTLE seconds more, reads /proc/PID/status and stops it. Prints every repetition
# and the medians. File pages depend on the kernel (it maps code in pieces of up to a few hundred KiB around each
# page the program touches) and on the binary's layout (link/hot-text.ld), so compare builds on one machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BRIDGE_BIN:-target/release/otlp-bridge}
REPS=${REPS:-5}
SETTLE=${SETTLE:-3}
[[ -x $BIN ]] || { echo "no binary at $BIN (cargo build --release, or set BRIDGE_BIN)" >&2; exit 1; }
work=$(mktemp -d /tmp/otlp-bridge-bench-idle.XXXXXX)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

kib() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$pid/status"; }
rows=()
for rep in $(seq 1 "$REPS"); do
  "$BIN" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --backend http://127.0.0.1:9 >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do grep -q "listening" "$work/log" && break; sleep 0.1; done
  grep -q "listening" "$work/log" || { echo "the bridge did not report ready:" >&2; cat "$work/log" >&2; exit 1; }
  sleep "$SETTLE"
  rows+=("$(kib VmRSS) $(kib RssAnon) $(kib RssFile)")
  echo "rep $rep: RSS $(kib VmRSS) KiB = anonymous $(kib RssAnon) + file $(kib RssFile)"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
median() { printf '%s\n' "${rows[@]}" | awk -v c="$1" '{print $c}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
awk -v n="$REPS" -v r="$(median 1)" -v a="$(median 2)" -v f="$(median 3)" -v b="$BIN" \
  'BEGIN {printf "median of %d: RSS %.1f MiB = anonymous %.1f + file %.1f (%s)\n", n, r/1024, a/1024, f/1024, b}'
