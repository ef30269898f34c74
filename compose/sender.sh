#!/bin/sh
# An "HTTP-only app": every INTERVAL seconds, POST one OTLP/JSON trace (a server span and a child client span) with
# fresh random ids and the current time to the bridge. Needs only POSIX sh, od, tr, date and curl
# (the curlimages/curl image has them). Prints one line per request: the HTTP status and the trace id.
set -u

# ENDPOINT wins; else the standard SDK variable (base URL, signal path appended), as an instrumented app would do.
ENDPOINT="${ENDPOINT:-${OTEL_EXPORTER_OTLP_ENDPOINT:-http://bridge:4318}/v1/traces}"
INTERVAL="${INTERVAL:-2}"
SERVICE="${OTEL_SERVICE_NAME:-compose-sender}"

# N random bytes as lowercase hex (2N characters).
hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

while :; do
  trace_id=$(hex 16)
  root_id=$(hex 8)
  child_id=$(hex 8)
  now=$(date +%s)
  # Nanosecond timestamps as decimal strings (OTLP/JSON 64-bit ints): second precision is enough here.
  start="${now}000000000"
  child_start="${now}050000000"
  child_end="${now}200000000"
  end="${now}250000000"

  status=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 \
    -X POST "$ENDPOINT" \
    -H 'Content-Type: application/json' \
    --data-binary @- <<JSON
{"resourceSpans":[{
  "resource":{"attributes":[
    {"key":"service.name","value":{"stringValue":"${SERVICE}"}},
    {"key":"deployment.environment","value":{"stringValue":"demo"}}]},
  "scopeSpans":[{
    "scope":{"name":"sender.sh","version":"1.0.0"},
    "spans":[
      {"traceId":"${trace_id}","spanId":"${root_id}","name":"GET /checkout","kind":2,
       "startTimeUnixNano":"${start}","endTimeUnixNano":"${end}",
       "attributes":[{"key":"http.request.method","value":{"stringValue":"GET"}},
                     {"key":"http.response.status_code","value":{"intValue":"200"}}],
       "status":{"code":1}},
      {"traceId":"${trace_id}","spanId":"${child_id}","parentSpanId":"${root_id}","name":"SELECT orders","kind":3,
       "startTimeUnixNano":"${child_start}","endTimeUnixNano":"${child_end}",
       "attributes":[{"key":"db.system.name","value":{"stringValue":"postgresql"}}]}
    ]}]}]}
JSON
  ) || status="curl-error"
  echo "$(date -u +%H:%M:%SZ) POST ${ENDPOINT} -> ${status} trace_id=${trace_id}"
  sleep "$INTERVAL"
done
