-- GET /api/v1/users/{userId} with that user's bearer token, walking the users of
-- BENCH_DATA (rows: userId, accessToken). Requests are built once per row in init.
dofile(os.getenv("BENCH_LUA_DIR") .. "/lib.lua")
bench.count_codes()

local requests = {}
local i = 0

function init(args)
  for _, row in ipairs(bench.rows()) do
    local headers = { ["Authorization"] = "Bearer " .. row[2] }
    requests[#requests + 1] = wrk.format("GET", "/api/v1/users/" .. row[1], headers)
  end
  i = bench.start(#requests)
end

function request()
  i = i % #requests + 1
  return requests[i]
end
