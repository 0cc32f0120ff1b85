-- POST /api/v1/inventory/reserve of one unit of the hot variant, a new order each request
-- (rows: bearer token, product id, variant id).
dofile(os.getenv("BENCH_LUA_DIR") .. "/lib.lua")
bench.count_codes()

local row = nil
local headers = {}
local prefix = ""
local n = 0

function init(args)
  row = bench.rows()[1]
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. row[1] }
  math.randomseed(os.time() + (id or 0) * 7919)
  prefix = string.format("bench_%x_%x_%d", os.time(), math.random(1, 2147483647), id or 0)
end

function request()
  n = n + 1
  local body = string.format(
    '{"orderId":"%s_%d","items":[{"productId":"%s","variantId":"%s","quantity":1}]}', prefix, n, row[2], row[3]
  )
  return wrk.format("POST", "/api/v1/inventory/reserve", headers, body)
end
