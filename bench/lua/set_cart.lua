-- POST /api/v1/carts/items as signed-in users (rows: bearer token, product id, variant id),
-- each row's quantity cycling 1..3 so successive requests change the line.
dofile(os.getenv("BENCH_LUA_DIR") .. "/lib.lua")
bench.count_codes()

local rows = {}
local i = 0
local n = 0

function init(args)
  rows = bench.rows()
  i = bench.start(#rows)
end

function request()
  i = i % #rows + 1
  n = n + 1
  local row = rows[i]
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. row[1] }
  local body = string.format('{"productId":"%s","variantId":"%s","quantity":%d}', row[2], row[3], n % 3 + 1)
  return wrk.format("POST", "/api/v1/carts/items", headers, body)
end
