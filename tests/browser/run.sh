#!/usr/bin/env bash
# A real browser through the real bridge binary into a real gRPC backend.
#
#   browser : Debian's headless Chromium, driven by playwright-core (driver.js), fresh profile, closed-network flags
#   pages   : the OpenTelemetry JS tracer provider + OTLP/HTTP trace exporters (JSON and protobuf), bundled with
#             esbuild from pinned npm packages, in three lines: 2.0 (SDK 2.0.0, exporters 0.200.0), the latest
#             2.x (2.12, 0.223) and the current release (3.1, 0.301); page.js is the same in each
#   paths   : 2.0 exports with navigator.sendBeacon when no headers are configured and with XMLHttpRequest when
#             they are; 2.12 and 3.x always export with fetch (keepalive). Each case asserts the path it took.
#   origins : pages are served from http://127.0.0.1:A (listed in --cors-allowed-origins) and from
#             http://127.0.0.3:D (not listed); the bridge listens on http://127.0.0.2:B, another origin
#   backend : tests/clients/backend.py (grpcio, opentelemetry-proto), recording every span it receives
# Each case makes two traces (6 spans, 2 exports). An allowed case passes when exactly the spans the page made
# reach the backend (same ids and names, none missing, none twice) and the browser saw every POST answered 200;
# a denied case passes when its page tried and nothing of it reached the backend. 24 cases in all; the bridge must
# also exit 0 on SIGTERM. Last line: "N passed, M failed". About 20 s once Chromium, node_modules and the venv exist.
#
# Needs: python3 (3.9+, with venv), node + npm, cargo (unless BRIDGE_BIN is given); installs Debian's chromium and
# chromium-driver with apt-get when /usr/bin/chromium is missing (as root, or through sudo).
# Env:
#   BRIDGE_BIN    bridge binary to test (default: ${CARGO_TARGET_DIR:-<repo>/target}/release/otlp-bridge,
#                 built with `cargo build --release --bin otlp-bridge` first; a no-op when up to date)
#   CLIENTS_VENV  virtualenv for the backend (default: the one tests/clients/run.sh uses, created when missing)
#   PYTHON        interpreter for the venv (default: python3.11, else python3)
#   KEEP_WORK=1   keep the work directory (logs, backend record, sent.json) even on success
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CLIENTS="$ROOT/tests/clients"
SUITE=browser
# shellcheck source=../script.sh
. "$ROOT/tests/script.sh"

# ---------------------------------------------------------------- Chromium (Debian's, never a downloaded one)
if [ ! -x /usr/bin/chromium ]; then
  SUDO=()
  [ "$(id -u)" = 0 ] || SUDO=(sudo -n)
  log "apt-get install chromium chromium-driver"
  { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y --no-install-recommends \
      chromium chromium-driver \
    || { "${SUDO[@]}" timeout 300 apt-get update \
      && "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y --no-install-recommends \
        chromium chromium-driver; }; } >"$WORK/apt.log" 2>&1 || setup_failed "apt-get install chromium failed"
fi
log "$(/usr/bin/chromium --version 2>/dev/null || echo 'chromium: version unknown')"

# ---------------------------------------------------------------- Python venv for the backend (shared with tests/clients)
python_venv

# ---------------------------------------------------------------- Node packages (lockfile; npm workspaces, one per line)
NPM_KEY="$({ node --version; cat "$HERE/package-lock.json"; } | sha256sum | cut -c1-12)"
exec 8>"/tmp/otlp-bridge-browser-npm.lock"
flock -w 900 8 || setup_failed "another run holds /tmp/otlp-bridge-browser-npm.lock"
if [ ! -f "$HERE/node_modules/.installed-$NPM_KEY" ]; then
  log "npm ci (package-lock.json)"
  (cd "$HERE" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) >"$WORK/npm.log" 2>&1 \
    || setup_failed "npm ci failed"
  touch "$HERE/node_modules/.installed-$NPM_KEY"
else
  log "node_modules up to date with package-lock.json"
fi
flock -u 8

# ---------------------------------------------------------------- the bridge
bridge_bin

"$VPY" "$CLIENTS/backend.py" --record "$WORK/backend.jsonl" --port-file "$WORK/backend.port" >"$WORK/backend.log" 2>&1 &
BACKEND_PID=$!
PIDS+=("$BACKEND_PID")
"${H[@]}" wait-file "$WORK/backend.port" 30 "$BACKEND_PID" || setup_failed "the backend did not start"
BACKEND_PORT="$(cat "$WORK/backend.port")"

BRIDGE_PID=""
for attempt in 1 2 3; do # ports are picked, then bound: retry if one was taken in between
  read -r PAGE_PORT DENIED_PORT HTTP_PORT ADMIN_PORT < <("${H[@]}" free-ports 4)
  ALLOWED_ORIGIN="http://127.0.0.1:$PAGE_PORT"
  NO_COLOR=1 RUST_LOG="${RUST_LOG:-info}" "$BRIDGE_BIN" --listen "127.0.0.2:$HTTP_PORT" \
    --metrics-listen "127.0.0.2:$ADMIN_PORT" --backend "http://127.0.0.1:$BACKEND_PORT" \
    --cors-allowed-origins "$ALLOWED_ORIGIN" >"$WORK/bridge.log" 2>&1 &
  BRIDGE_PID=$!
  PIDS+=("$BRIDGE_PID")
  if "${H[@]}" wait-http "http://127.0.0.2:$ADMIN_PORT/ready" 30 "$BRIDGE_PID"; then break; fi
  kill -0 "$BRIDGE_PID" 2>/dev/null && setup_failed "the bridge did not become ready within 30s"
  log "the bridge exited at start (attempt $attempt); retrying on other ports"
  BRIDGE_PID=""
done
[ -n "$BRIDGE_PID" ] || setup_failed "the bridge would not start"
log "bridge on http://127.0.0.2:$HTTP_PORT, --cors-allowed-origins $ALLOWED_ORIGIN; denied origin http://127.0.0.3:$DENIED_PORT"

# ---------------------------------------------------------------- the browser cases
rc=0
timeout 300 node "$HERE/driver.js" --bridge "http://127.0.0.2:$HTTP_PORT" --allowed-origin "$ALLOWED_ORIGIN" \
  --denied-origin "http://127.0.0.3:$DENIED_PORT" --profile "$WORK/chromium-profile" --out "$WORK/sent.json" \
  >"$WORK/driver.log" 2>&1 || rc=$?
sed 's/^/  | /' "$WORK/driver.log" | tail -n 40
[ "$rc" = 0 ] || setup_failed "driver.js failed (exit $rc)"

# Stop the bridge before the verdict, so that a late duplicate still lands in the record.
kill -TERM "$BRIDGE_PID" 2>/dev/null || true
for _ in $(seq 300); do kill -0 "$BRIDGE_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$BRIDGE_PID" 2>/dev/null; then
  EXTRA="bridge:0:still running 30s after SIGTERM"
else
  rc=0
  wait "$BRIDGE_PID" || rc=$?
  if [ "$rc" = 0 ]; then EXTRA="bridge:1:exited 0 on SIGTERM"; else EXTRA="bridge:0:exited $rc on SIGTERM (see bridge.log)"; fi
fi
kill -TERM "$BACKEND_PID" 2>/dev/null || true
for _ in $(seq 100); do kill -0 "$BACKEND_PID" 2>/dev/null || break; sleep 0.1; done

# ---------------------------------------------------------------- verdict
rc=0
node "$HERE/verify.js" --sent "$WORK/sent.json" --record "$WORK/backend.jsonl" --extra "$EXTRA" \
  >"$WORK/verdict.txt" 2>&1 || rc=$?
if ! tail -n 1 "$WORK/verdict.txt" | grep -qE '^[0-9]+ passed, [0-9]+ failed$'; then
  cat "$WORK/verdict.txt"
  echo "work directory kept: $WORK"
  echo "0 passed, 1 failed" # the checker itself broke: its output is above
  exit 1
fi
if [ "$rc" != 0 ]; then
  show "$WORK/bridge.log" 30
  show "$WORK/backend.log" 10
  echo "work directory kept: $WORK"
else
  OK=1
  [ "${KEEP_WORK:-0}" = 1 ] && echo "work directory kept: $WORK"
fi
log "done in $((SECONDS - T0))s"
cat "$WORK/verdict.txt"
exit "$rc"
