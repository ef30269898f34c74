#!/usr/bin/env bash
# The S3 archive output and `otlp-bridge replay`, end to end: the release bridge, s3s-fs (an S3 server that checks
# SigV4 signatures), a grpcio OTLP backend, objects decoded with opentelemetry-proto and read with DuckDB.
# The rounds are described in suite.py. Last line: "N passed, M failed".
#
# Needs: python3 (3.9+, with venv), cargo (unless BRIDGE_BIN is given), and s3s-fs:
#   S3S_FS_BIN  the s3s-fs binary (.ci/run installs the pinned 0.14.1: cargo install s3s-fs --version 0.14.1
#               --features binary --locked). Missing: the suite FAILS; it never passes without the server.
# Env:
#   BRIDGE_BIN      bridge binary to test (default: the release build, built first)
#   OUTAGE_SECONDS  how long the store / the backend / both are down (default 60)
#   CRASH_ROUNDS    SIGKILLs under load (default 10)
#   ONLY            comma-separated rounds to run (default all)
#   KEEP_WORK=1     keep the work directory even on success
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SUITE=archive
# shellcheck source=../script.sh
. "$ROOT/tests/script.sh"

[ -n "${S3S_FS_BIN:-}" ] && [ -x "$S3S_FS_BIN" ] \
  || setup_failed "S3S_FS_BIN is not set to an s3s-fs binary (.ci/run installs it; see this script's header)"

# The client suite's venv recipe, with this suite's requirements (its pins plus zstandard and DuckDB).
py="${PYTHON:-$(command -v python3.11 || command -v python3 || true)}"
[ -n "$py" ] || setup_failed "no python3 on PATH"
key="$({ "$py" --version 2>&1; cat "$HERE/requirements.txt" "$ROOT/tests/clients/requirements.txt"; } | sha256sum | cut -c1-12)"
VENV="${ARCHIVE_VENV:-/tmp/otlp-bridge-archive-venv-$key}"
exec 9>"$VENV.lock"
flock -w 900 9 || setup_failed "another run holds $VENV.lock"
if [ ! -f "$VENV/.installed-$key" ]; then
  log "creating $VENV and installing tests/archive/requirements.txt"
  rm -rf "$VENV"
  timeout 120 "$py" -m venv "$VENV" >"$WORK/venv.log" 2>&1 || setup_failed "python -m venv failed"
  (cd "$HERE" && timeout 900 "$VENV/bin/pip" install --disable-pip-version-check --no-input -q -r requirements.txt) \
    >>"$WORK/venv.log" 2>&1 || setup_failed "pip install -r tests/archive/requirements.txt failed"
  touch "$VENV/.installed-$key"
fi
flock -u 9

bridge_bin
log "s3s-fs: $S3S_FS_BIN ($("$S3S_FS_BIN" --version 2>&1 | head -n 1 || true))"
set +e
OUTAGE_SECONDS="${OUTAGE_SECONDS:-60}" CRASH_ROUNDS="${CRASH_ROUNDS:-10}" \
  "$VENV/bin/python" "$HERE/suite.py" --bridge "$BRIDGE_BIN" --s3s-fs "$S3S_FS_BIN" --work "$WORK" \
  ${ONLY:+--only "$ONLY"} | tee "$WORK/verdict.txt"
status=${PIPESTATUS[0]}
set -e
if [ "$status" = 0 ]; then OK=1; else
  for f in "$WORK"/*/*.log; do [ -e "$f" ] && show "$f" 20; done
  echo "work directory kept: $WORK"
  # The verdict stays the last line.
  tail -n 1 "$WORK/verdict.txt"
fi
exit "$status"
