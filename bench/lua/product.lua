-- GET /api/v1/products/{productId}, walking BENCH_DATA rows (productId[, bearer token]).
dofile(os.getenv("BENCH_LUA_DIR") .. "/lib.lua")
bench.count_codes()

local requests = {}
local i = 0

function init(args)
  for _, row in ipairs(bench.rows()) do
    local headers = {}
    if row[2] then headers["Authorization"] = "Bearer " .. row[2] end
    requests[#requests + 1] = wrk.format("GET", "/api/v1/products/" .. row[1], headers)
  end
  i = bench.start(#requests)
end

function request()
  i = i % #requests + 1
  return requests[i]
end
