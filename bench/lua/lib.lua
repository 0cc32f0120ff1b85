-- Shared by every wrk script of the bench: per-thread ids, the rows of BENCH_DATA,
-- counting answers that are not 2xx by status code (wrk itself only counts status >= 400),
-- and a one-line JSON summary that bench/wrk.py parses (line prefix "BENCH_JSON ").
bench = {}

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

-- Tab-separated rows of the file named by BENCH_DATA, as arrays of strings.
function bench.rows()
  local path = os.getenv("BENCH_DATA")
  local rows = {}
  if path == nil or path == "" then
    return rows
  end
  for line in io.lines(path) do
    local fields = {}
    for field in line:gmatch("[^\t]+") do
      fields[#fields + 1] = field
    end
    rows[#rows + 1] = fields
  end
  return rows
end

-- Where this thread starts in the rows, so threads walk different users. wrk runs each
-- thread's init() before the next thread exists, so the count comes from BENCH_THREADS.
function bench.start(count)
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1") or 1
  if count == 0 or id == nil then
    return 0
  end
  return math.floor(id * count / nthreads) % count
end

non2xx = 0
codes = {}
counting = false

-- Scenario scripts call this at top level. A response() hook makes wrk hand every answer
-- to Lua, which costs about a third of wrk's throughput at hello-app rates on two cores,
-- so the ceiling script does without it and relies on wrk's own count of status >= 400.
function bench.count_codes()
  counting = true
  function response(status, headers, body)
    if status < 200 or status > 299 then
      non2xx = non2xx + 1
      local key = tostring(status)
      codes[key] = (codes[key] or 0) + 1
    end
  end
end

function done(summary, latency, requests)
  local bad = 0
  local merged = {}
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    for code, n in pairs(t:get("codes") or {}) do
      merged[code] = (merged[code] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(merged) do
    parts[#parts + 1] = string.format('"%s":%d', code, n)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"counted":%s,"non2xx":%d,"codes":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout,
    tostring(counting), bad, table.concat(parts, ",")))
end
