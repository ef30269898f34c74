-- A copy of the shared benchmark harness's wrk script (the harness lives outside this repository).
-- wrk script: POST the file $BENCH_BODY with Content-Type $BENCH_CTYPE on every request,
-- and print one machine-readable WRKSTAT line at the end (latencies in microseconds).
local f = assert(io.open(assert(os.getenv("BENCH_BODY"), "BENCH_BODY unset"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = assert(os.getenv("BENCH_CTYPE"), "BENCH_CTYPE unset")

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKSTAT requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
