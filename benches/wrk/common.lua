-- Shared by every bench script: collects threads and prints one machine-readable line
--   BENCHJSON {...}
-- with exact latency percentiles (microseconds) and error counts. A script may define
-- bench_setup(thread, index) and count unexpected answers in a per-thread global `bad`.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  if bench_setup then bench_setup(thread, #threads) end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("bad") or 0) end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"status_errors":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"bad":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout, bad,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
