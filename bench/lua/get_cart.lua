-- GET /api/v1/carts as signed-in users (rows: bearer token). Requests are built once in init.
dofile(os.getenv("BENCH_LUA_DIR") .. "/lib.lua")
bench.count_codes()

local requests = {}
local i = 0

function init(args)
  for _, row in ipairs(bench.rows()) do
    requests[#requests + 1] = wrk.format("GET", "/api/v1/carts", { ["Authorization"] = "Bearer " .. row[1] })
  end
  i = bench.start(#requests)
end

function request()
  i = i % #requests + 1
  return requests[i]
end
