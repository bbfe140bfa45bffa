-- wrk script for scripts/bench: POSTs one MCP `tools/call` JSON-RPC request, as a
-- streamable-HTTP client does, with the bearer token from BENCH_TOKEN (if set) and the
-- tool name from BENCH_TOOL (default "hello").
--
-- At the end it prints one machine-readable line, read by scripts/bench:
--   BENCH requests=N duration_us=N rps=X p50_us=N p90_us=N p99_us=N max_us=N
--         connect=N read=N write=N status=N timeout=N

local token = os.getenv("BENCH_TOKEN")
local tool = os.getenv("BENCH_TOOL") or "hello"

wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"'
  .. tool .. '","arguments":{"text":"hello"}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.2f p50_us=%d p90_us=%d p99_us=%d max_us=%d"
      .. " connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
