#!/usr/bin/env bash
# Real clients nobody here wrote, through the real bridge binary, into a real gRPC backend.
#
#   python : opentelemetry-sdk + opentelemetry-exporter-otlp-proto-http (OTLP/HTTP protobuf):
#            300 spans (plain + gzip), 60 log records, 2 metric exports
#   node   : @opentelemetry/sdk-trace-base + @opentelemetry/exporter-trace-otlp-http (OTLP/HTTP JSON):
#            300 spans (plain + gzip)
#   backend: grpcio serving opentelemetry-proto's generated trace/metrics/logs services (backend.py)
#
# Passes when the backend received exactly what each client's exporter was handed (same ids, same
# content, nothing missing, nothing twice), every export reported success to its app, the SDKs logged
# no warning, and the bridge exits 0 on SIGTERM. Last line: "N passed, M failed".
#
# Needs: python3 (3.9+, with venv), node + npm, cargo (unless BRIDGE_BIN is given), coreutils timeout.
# Env:
#   BRIDGE_BIN    bridge binary to test (default: ${CARGO_TARGET_DIR:-<repo>/target}/release/otlp-bridge,
#                 built with `cargo build --release --bin otlp-bridge` first; a no-op when up to date)
#   CLIENTS_VENV  virtualenv to use/create (default: /tmp/otlp-bridge-clients-venv-<hash of requirements>)
#   PYTHON        interpreter for the venv (default: python3.11, else python3)
#   KEEP_WORK=1   keep the work directory (logs, backend record, client records) even on success
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
T0=$SECONDS
log() { printf '[clients %3ds] %s\n' "$((SECONDS - T0))" "$*"; }

# Hermetic: the SDKs and the bridge read OTEL_* / OTLP_BRIDGE_* variables; none of the caller's apply here.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(OTEL_|OTLP_BRIDGE_)' || true)
# Local traffic never goes through a proxy (the registries still may).
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

WORK="$(mktemp -d /tmp/otlp-bridge-clients.XXXXXX)"
PIDS=()
OK=0
cleanup() {
  local pid n
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for n in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  # Nothing is printed here: the verdict line stays the last line.
  if [ "$OK" = 1 ] && [ "${KEEP_WORK:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show() { # show FILE [LINES]: the tail of a log, indented
  [ -s "$1" ] || return 0
  echo "----- $(basename "$1") (last ${2:-40} lines) -----"
  tail -n "${2:-40}" "$1" | sed 's/^/  /'
}
setup_failed() {
  log "SETUP FAILED: $*"
  for f in "$WORK"/*.log; do [ -e "$f" ] && show "$f"; done
  echo "work directory kept: $WORK"
  echo "0 passed, 1 failed"
  exit 1
}

# ---------------------------------------------------------------- Python venv (pinned)
PY="${PYTHON:-$(command -v python3.11 || command -v python3 || true)}"
[ -n "$PY" ] || setup_failed "no python3 on PATH"
KEY="$({ "$PY" --version 2>&1; cat "$HERE/requirements.txt"; } | sha256sum | cut -c1-12)"
VENV="${CLIENTS_VENV:-/tmp/otlp-bridge-clients-venv-$KEY}"
exec 9>"$VENV.lock"
flock -w 900 9 || setup_failed "another run holds $VENV.lock"
if [ ! -f "$VENV/.installed-$KEY" ]; then
  log "creating $VENV ($("$PY" --version 2>&1)) and installing requirements.txt"
  rm -rf "$VENV"
  timeout 120 "$PY" -m venv "$VENV" >"$WORK/venv.log" 2>&1 || setup_failed "python -m venv failed (Debian: apt-get install python3-venv)"
  timeout 900 "$VENV/bin/pip" install --disable-pip-version-check --no-input -q -r "$HERE/requirements.txt" \
    >>"$WORK/venv.log" 2>&1 || setup_failed "pip install -r requirements.txt failed"
  touch "$VENV/.installed-$KEY"
else
  log "using $VENV"
fi
flock -u 9
VPY="$VENV/bin/python"
H=("$VPY" "$HERE/harness.py")

# ---------------------------------------------------------------- Node packages (lockfile)
log "npm ci"
(cd "$HERE" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) >"$WORK/npm.log" 2>&1 \
  || setup_failed "npm ci failed"

# ---------------------------------------------------------------- the bridge
if [ -n "${BRIDGE_BIN:-}" ]; then
  [ -x "$BRIDGE_BIN" ] || setup_failed "BRIDGE_BIN=$BRIDGE_BIN is not executable"
else
  BRIDGE_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/otlp-bridge"
  log "cargo build --release --bin otlp-bridge (a no-op when up to date; minutes from scratch)"
  (cd "$ROOT" && timeout 3000 cargo build --release --bin otlp-bridge) >"$WORK/cargo.log" 2>&1 \
    || setup_failed "cargo build failed"
fi
log "bridge: $BRIDGE_BIN ($("$BRIDGE_BIN" --version 2>&1 | head -n 1 || true))"

# ---------------------------------------------------------------- backend + bridge
"$VPY" "$HERE/backend.py" --record "$WORK/backend.jsonl" --port-file "$WORK/backend.port" \
  >"$WORK/backend.log" 2>&1 &
BACKEND_PID=$!
PIDS+=("$BACKEND_PID")
"${H[@]}" wait-file "$WORK/backend.port" 30 "$BACKEND_PID" || setup_failed "the backend did not start"
BACKEND_PORT="$(cat "$WORK/backend.port")"

BRIDGE_PID=""
for attempt in 1 2 3; do # free ports are picked, then bound by the bridge: retry if someone took one between
  read -r HTTP_PORT ADMIN_PORT < <("${H[@]}" free-ports 2)
  NO_COLOR=1 RUST_LOG="${RUST_LOG:-info}" "$BRIDGE_BIN" --listen "127.0.0.1:$HTTP_PORT" --metrics-listen "127.0.0.1:$ADMIN_PORT" \
    --backend "http://127.0.0.1:$BACKEND_PORT" >"$WORK/bridge.log" 2>&1 &
  BRIDGE_PID=$!
  PIDS+=("$BRIDGE_PID")
  if "${H[@]}" wait-http "http://127.0.0.1:$ADMIN_PORT/ready" 30 "$BRIDGE_PID"; then break; fi
  kill -0 "$BRIDGE_PID" 2>/dev/null && setup_failed "the bridge did not become ready within 30s"
  log "the bridge exited at start (attempt $attempt); retrying on other ports"
  BRIDGE_PID=""
done
[ -n "$BRIDGE_PID" ] || setup_failed "the bridge would not start"
ENDPOINT="http://127.0.0.1:$HTTP_PORT"
log "backend on 127.0.0.1:$BACKEND_PORT, bridge on $ENDPOINT (admin 127.0.0.1:$ADMIN_PORT)"

# ---------------------------------------------------------------- the clients
run_client() { # run_client NAME CMD...: bounded; its exit code lands in RC_<NAME>
  local name="$1" rc=0
  shift
  log "client $name: $*"
  timeout 180 "$@" >"$WORK/$name.log" 2>&1 || rc=$?
  [ "$rc" = 124 ] && echo "killed after 180s" >>"$WORK/$name.log"
  sed 's/^/  | /' "$WORK/$name.log" | tail -n 20
  printf -v "RC_$name" '%s' "$rc"
}
run_client python "$VPY" "$HERE/python_client.py" --endpoint "$ENDPOINT" --out "$WORK/python.json"
run_client node node "$HERE/node_client.js" --endpoint "$ENDPOINT" --out "$WORK/node.json"

# ---------------------------------------------------------------- shutdown (late duplicates land before the verdict)
curl_metrics() { "$VPY" -c 'import sys,urllib.request as u;sys.stdout.write(u.build_opener(u.ProxyHandler({})).open(sys.argv[1],timeout=5).read().decode())' "$1"; }
curl_metrics "http://127.0.0.1:$ADMIN_PORT/metrics" >"$WORK/bridge-metrics.txt" 2>&1 || true
log "SIGTERM to the bridge"
kill -TERM "$BRIDGE_PID" 2>/dev/null || true
BRIDGE_RC=""
for n in $(seq 300); do kill -0 "$BRIDGE_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$BRIDGE_PID" 2>/dev/null; then
  SHUTDOWN="bridge:0:still running 30s after SIGTERM"
else
  wait "$BRIDGE_PID" && BRIDGE_RC=0 || BRIDGE_RC=$?
  if [ "$BRIDGE_RC" = 0 ]; then SHUTDOWN="bridge:1:exited 0 on SIGTERM"; else SHUTDOWN="bridge:0:exited $BRIDGE_RC on SIGTERM"; fi
fi
kill -TERM "$BACKEND_PID" 2>/dev/null || true
for n in $(seq 100); do kill -0 "$BACKEND_PID" 2>/dev/null || break; sleep 0.1; done

# ---------------------------------------------------------------- verdict
rc=0
"${H[@]}" verify --record "$WORK/backend.jsonl" \
  --client "python:$WORK/python.json:$RC_python" \
  --client "node:$WORK/node.json:$RC_node" \
  --extra "$SHUTDOWN" >"$WORK/verdict.txt" 2>&1 || rc=$?
if [ "$rc" != 0 ]; then
  for f in python.log node.log bridge.log backend.log; do show "$WORK/$f" 60; done
  grep -E '^otelcol_|^otlp_bridge_' "$WORK/bridge-metrics.txt" 2>/dev/null | head -40 | sed 's/^/  metrics: /' || true
  echo "work directory kept: $WORK"
else
  OK=1
  [ "${KEEP_WORK:-0}" = 1 ] && echo "work directory kept: $WORK"
fi
log "done in $((SECONDS - T0))s"
cat "$WORK/verdict.txt"
if ! tail -n 1 "$WORK/verdict.txt" | grep -qE '^[0-9]+ passed, [0-9]+ failed$'; then
  echo "0 passed, 1 failed" # the checker itself broke: its output is above
  exit 1
fi
exit "$rc"
