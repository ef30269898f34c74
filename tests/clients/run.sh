#!/usr/bin/env bash
# Real clients nobody here wrote, through the real bridge binary, into a real gRPC backend.
#
#   python : opentelemetry-sdk + opentelemetry-exporter-otlp-proto-http (OTLP/HTTP protobuf):
#            300 spans (plain + gzip), 60 log records (deflate), 2 metric exports
#   node   : @opentelemetry/sdk-trace-base + @opentelemetry/exporter-trace-otlp-http (OTLP/HTTP JSON):
#            300 spans (plain + gzip)
#   python-grpc: opentelemetry-exporter-otlp-proto-grpc into --grpc-listen: 300 spans (plain + gzip) and 60 log
#            records exactly; then the SDK's own retry on UNAVAILABLE + RetryInfo (python_grpc.py); and the npm
#            @opentelemetry/exporter-trace-otlp-grpc: 300 spans exactly (node_grpc_client.js)
#   backend: grpcio serving opentelemetry-proto's generated trace/metrics/logs services (backend.py)
#
# Three rounds, each with a fresh backend and bridge and both clients:
#   steady       healthy backend
#   bridge-retry the backend refuses each client's first 2 exports (UNAVAILABLE); the bridge retries
#   client-retry same refusals, bridge started with --retry-max-elapsed 0s: the SDKs get 503 + Retry-After
#                and retry by themselves
# A client passes a round when the backend received exactly what its exporter was handed (same ids,
# same content, nothing missing, nothing twice), every export reported success to the app, and its SDK
# logged nothing but (client-retry only) its retries. The bridge must also exit 0 on SIGTERM after each
# round. Last line: "N passed, M failed". Takes ~10 s once the venv, node_modules and the binary exist.
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
SUITE=clients
# shellcheck source=../script.sh
. "$ROOT/tests/script.sh"

# ---------------------------------------------------------------- Python venv (pinned)
python_venv

# ---------------------------------------------------------------- Node packages (lockfile)
log "npm ci"
(cd "$HERE" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) >"$WORK/npm.log" 2>&1 \
  || setup_failed "npm ci failed"

# ---------------------------------------------------------------- the bridge
bridge_bin

# ---------------------------------------------------------------- one round: backend + bridge + both clients
CHECKS=()
EXTRAS=()
run_client() { # run_client DIR NAME CMD...: bounded; prints the client's summary; echoes nothing else
  local dir="$1" name="$2" rc=0
  shift 2
  timeout 180 "$@" >"$dir/$name.log" 2>&1 || rc=$?
  [ "$rc" = 124 ] && echo "killed after 180s" >>"$dir/$name.log"
  sed 's/^/  | /' "$dir/$name.log" | tail -n 20
  return "$rc"
}
run_round() { # run_round ROUND MODE "BACKEND ARGS" "BRIDGE ARGS"
  local round="$1" mode="$2" backend_args="$3" bridge_args="$4"
  local dir="$WORK/$round" backend_pid bridge_pid="" backend_port http_port admin_port attempt rc
  mkdir -p "$dir"
  log "round $round: backend ${backend_args:-(healthy)}; bridge ${bridge_args:-(default flags)}"
  # shellcheck disable=SC2086 # the args are word lists on purpose
  "$VPY" "$HERE/backend.py" --record "$dir/backend.jsonl" --port-file "$dir/backend.port" $backend_args \
    >"$dir/backend.log" 2>&1 &
  backend_pid=$!
  PIDS+=("$backend_pid")
  "${H[@]}" wait-file "$dir/backend.port" 30 "$backend_pid" || setup_failed "$round: the backend did not start"
  backend_port="$(cat "$dir/backend.port")"
  for attempt in 1 2 3; do # ports are picked, then bound by the bridge: retry if one was taken in between
    read -r http_port admin_port < <("${H[@]}" free-ports 2)
    # shellcheck disable=SC2086
    NO_COLOR=1 RUST_LOG="${RUST_LOG:-info}" "$BRIDGE_BIN" --listen "127.0.0.1:$http_port" \
      --metrics-listen "127.0.0.1:$admin_port" --backend "http://127.0.0.1:$backend_port" $bridge_args \
      >"$dir/bridge.log" 2>&1 &
    bridge_pid=$!
    PIDS+=("$bridge_pid")
    if "${H[@]}" wait-http "http://127.0.0.1:$admin_port/ready" 30 "$bridge_pid"; then break; fi
    kill -0 "$bridge_pid" 2>/dev/null && setup_failed "$round: the bridge did not become ready within 30s"
    log "the bridge exited at start (attempt $attempt); retrying on other ports"
    bridge_pid=""
  done
  [ -n "$bridge_pid" ] || setup_failed "$round: the bridge would not start"
  local endpoint="http://127.0.0.1:$http_port"

  rc=0
  run_client "$dir" python "$VPY" "$HERE/python_client.py" --endpoint "$endpoint" --out "$dir/python.json" || rc=$?
  CHECKS+=(--client "$round:$mode:$dir/backend.jsonl:python:$dir/python.json:$rc")
  rc=0
  run_client "$dir" node node "$HERE/node_client.js" --endpoint "$endpoint" --out "$dir/node.json" || rc=$?
  CHECKS+=(--client "$round:$mode:$dir/backend.jsonl:node:$dir/node.json:$rc")

  # Stop the bridge before the verdict, so that a late duplicate still lands in the record.
  "$VPY" -c 'import sys,urllib.request as u;sys.stdout.write(u.build_opener(u.ProxyHandler({})).open(sys.argv[1],timeout=5).read().decode())' \
    "http://127.0.0.1:$admin_port/metrics" >"$dir/bridge-metrics.txt" 2>&1 || true
  kill -TERM "$bridge_pid" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$bridge_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$bridge_pid" 2>/dev/null; then
    EXTRAS+=(--extra "$round bridge:0:still running 30s after SIGTERM")
  else
    rc=0
    wait "$bridge_pid" || rc=$?
    if [ "$rc" = 0 ]; then EXTRAS+=(--extra "$round bridge:1:exited 0 on SIGTERM")
    else EXTRAS+=(--extra "$round bridge:0:exited $rc on SIGTERM (see $round/bridge.log)"); fi
  fi
  kill -TERM "$backend_pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$backend_pid" 2>/dev/null || break; sleep 0.1; done
}

# steady: a healthy backend. Exactly what was sent arrives, and no SDK says a word.
run_round steady strict "" ""
# bridge-retry: the backend refuses each client's first 2 exports (UNAVAILABLE); the bridge retries them
# itself, so the app sees plain success, and each item still arrives exactly once.
run_round bridge-retry bridge-retry "--fail-first 2 --fail-code UNAVAILABLE" ""
# client-retry: same refusals, but the bridge does not retry (--retry-max-elapsed 0s): the app gets
# 503 + Retry-After, its SDK retries on its own, and each item still arrives exactly once.
run_round client-retry client-retry "--fail-first 2 --fail-code UNAVAILABLE" "--retry-max-elapsed 0s"
# issue 11: the Python SDK (defaults) through the queued bridge, backend down 60 s: nothing lost (~80 s).
rc=0; run_client "$WORK" python-outage "$VPY" "$HERE/python_outage.py" --bridge "$BRIDGE_BIN" --work "$WORK/outage" || rc=$?; EXTRAS+=(--extra "python-outage:$((rc == 0)):$(tail -n 1 "$WORK/python-outage.log")")

# issue 20: the Python SDK's OTLP/gRPC exporter into --grpc-listen: exact delivery (plain, gzip, logs), and its own
# retry on UNAVAILABLE + RetryInfo delivering once the backend is back (python_grpc.py).
rc=0; run_client "$WORK" python-grpc "$VPY" "$HERE/python_grpc.py" --bridge "$BRIDGE_BIN" --work "$WORK/grpc" --node node || rc=$?; EXTRAS+=(--extra "python-grpc:$((rc == 0)):$(tail -n 1 "$WORK/python-grpc.log")")

# gateway: the Python SDK by its OTEL_EXPORTER_OTLP_* variables through TLS, a token and X-Scope-OrgID (gateway_python.py)
if "$VPY" "$HERE/gateway_python.py" run --bridge "$BRIDGE_BIN" --backend-script "$HERE/backend.py" --work "$WORK/gateway" >"$WORK/gateway.log" 2>&1; then EXTRAS+=(--extra "gateway python:1:$(tail -n 1 "$WORK/gateway.log")"); else sed 's/^/  | /' "$WORK/gateway.log"; EXTRAS+=(--extra "gateway python:0:$(tail -n 1 "$WORK/gateway.log")"); fi

# ---------------------------------------------------------------- verdict
rc=0
"${H[@]}" verify "${CHECKS[@]}" "${EXTRAS[@]}" >"$WORK/verdict.txt" 2>&1 || rc=$?
if [ "$rc" != 0 ]; then
  for d in "$WORK"/*/; do
    for f in python.log node.log bridge.log backend.log; do show "$d$f" 40; done
  done
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
