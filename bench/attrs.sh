#!/usr/bin/env bash
# Resource attributes (issue 20): the bridge with three attributes configured against the same binary with none, in
# one run of the shared harness (outside this repository), on its OTLP/HTTP input, against the same rotel sink.
#
#   cp target/release/otlp-bridge /tmp/otlp-bridge-bench
#   HARNESS=path/to/shared/harness BRIDGE=/tmp/otlp-bridge-bench bench/attrs.sh
#
# The three keys: service.name upserted (every payload has it: its record is dropped and the new one appended) and
# two inserted that the payloads lack (k8s.pod.name, k8s.namespace.name), as the k8s sidecar configures them. The
# target is at most 1.15x the CPU per span of the bridge without attributes. Prints the harness's table, then the
# ratio attrs / bridge per payload; raw rows in $WORK/results.tsv. Knobs: HARNESS (required: the shared harness's
# folder, outside this repository), REPS=3, PAYLOADS="traces_pb traces_json", and the harness's own (DURATION, RETRIES, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=${HARNESS:-}
BRIDGE=${BRIDGE:-target/release/otlp-bridge}
WORK=${WORK:-/tmp/otlp-bench}
[[ -n $HARNESS && -x $HARNESS/run.sh ]] || { echo "needs the shared harness (outside this repository): set HARNESS to its folder" >&2; exit 2; }
[[ -x $BRIDGE ]] || { echo "needs \$BRIDGE, a release build of the bridge" >&2; exit 2; }
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
cmd="$BRIDGE --listen {listen} --backend http://{sink} --metrics-listen {metrics}"
status=0
BRIDGE_CMD="$cmd" \
ATTRS_CMD="$cmd --resource-attribute service.name=checkout --resource-attribute-if-missing k8s.pod.name=checkout-7d4b9c5f6-x2x1z --resource-attribute-if-missing k8s.namespace.name=shop" \
  CONTENDERS="rotel bridge attrs" REPS=${REPS:-3} PAYLOADS=${PAYLOADS:-"traces_pb traces_json"} WORK=$WORK \
  "$HARNESS/run.sh" || status=$?
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| payload | bridge CPU-s per M spans | attrs CPU-s per M spans | attrs / bridge (target <= 1.15) | per-rep ratios |"
echo "|---|---|---|---|---|"
python3 - "$WORK/results.tsv" <<'PY'
import csv, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1]), delimiter="\t") if r["cpu_s_per_M"] not in ("-", "")]
for p in dict.fromkeys(r["payload"] for r in rows):
    cpu = {c: {r["rep"]: float(r["cpu_s_per_M"]) for r in rows if r["contender"] == c and r["payload"] == p}
           for c in ("bridge", "attrs")}
    if not cpu["bridge"] or not cpu["attrs"]:
        continue
    b, a = statistics.median(cpu["bridge"].values()), statistics.median(cpu["attrs"].values())
    reps = ", ".join(f"{cpu['attrs'][k] / cpu['bridge'][k]:.2f}" for k in sorted(cpu["attrs"]) if k in cpu["bridge"])
    print(f"| {p} | {b:.2f} | {a:.2f} | {a / b:.2f} | {reps} |")
PY
exit $status
