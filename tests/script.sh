# Shared set-up of the script suites (tests/clients/run.sh, tests/browser/run.sh), sourced, never run:
# a hermetic environment, a work directory kept only on failure, every started process stopped on exit, the
# pinned Python venv both suites' backend and clients use, and the bridge binary under test.
#
# The caller sets SUITE (log prefix and work-directory name) and ROOT (the repository) before sourcing it, then
# appends the PIDs it starts to PIDS and sets OK=1 once its verdict passed.

T0=$SECONDS
log() { printf '[%s %3ds] %s\n' "$SUITE" "$((SECONDS - T0))" "$*"; }

# Hermetic: the SDKs and the bridge read OTEL_* / OTLP_BRIDGE_* variables; none of the caller's apply here.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(OTEL_|OTLP_BRIDGE_)' || true)
# Local traffic never goes through a proxy (the registries still may); 127.0.0.1 spelled out for Python, which
# ignores CIDR ranges in NO_PROXY.
export NO_PROXY="127.0.0.0/8,127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.0/8,127.0.0.1,localhost${no_proxy:+,$no_proxy}"

WORK="$(mktemp -d "/tmp/otlp-bridge-$SUITE.XXXXXX")"
PIDS=()
OK=0
# shellcheck disable=SC2317 # reached through the EXIT trap
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
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

# The venv of tests/clients/requirements.txt, keyed by interpreter and requirements, built once under a lock
# (both suites may run at once). Sets VPY (its python) and H (the harness.py command).
python_venv() {
  local clients="$ROOT/tests/clients" py key
  py="${PYTHON:-$(command -v python3.11 || command -v python3 || true)}"
  [ -n "$py" ] || setup_failed "no python3 on PATH"
  key="$({ "$py" --version 2>&1; cat "$clients/requirements.txt"; } | sha256sum | cut -c1-12)"
  VENV="${CLIENTS_VENV:-/tmp/otlp-bridge-clients-venv-$key}"
  exec 9>"$VENV.lock"
  flock -w 900 9 || setup_failed "another run holds $VENV.lock"
  if [ ! -f "$VENV/.installed-$key" ]; then
    log "creating $VENV ($("$py" --version 2>&1)) and installing tests/clients/requirements.txt"
    rm -rf "$VENV"
    timeout 120 "$py" -m venv "$VENV" >"$WORK/venv.log" 2>&1 \
      || setup_failed "python -m venv failed (Debian: apt-get install python3-venv)"
    timeout 900 "$VENV/bin/pip" install --disable-pip-version-check --no-input -q -r "$clients/requirements.txt" \
      >>"$WORK/venv.log" 2>&1 || setup_failed "pip install -r tests/clients/requirements.txt failed"
    touch "$VENV/.installed-$key"
  else
    log "using $VENV"
  fi
  flock -u 9
  VPY="$VENV/bin/python"
  H=("$VPY" "$clients/harness.py")
}

# BRIDGE_BIN as given, else the release build (a no-op when up to date).
bridge_bin() {
  if [ -n "${BRIDGE_BIN:-}" ]; then
    [ -x "$BRIDGE_BIN" ] || setup_failed "BRIDGE_BIN=$BRIDGE_BIN is not executable"
  else
    BRIDGE_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/otlp-bridge"
    log "cargo build --release --bin otlp-bridge (a no-op when up to date; minutes from scratch)"
    (cd "$ROOT" && timeout 3000 cargo build --release --bin otlp-bridge) >"$WORK/cargo.log" 2>&1 \
      || setup_failed "cargo build failed"
  fi
  log "bridge: $BRIDGE_BIN ($("$BRIDGE_BIN" --version 2>&1 | head -n 1 || true))"
}
