-- POST /api/v1/users/login, walking the users of BENCH_DATA (rows: email, password).
dofile(os.getenv("BENCH_LUA_DIR") .. "/lib.lua")
bench.count_codes()

local rows = {}
local i = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  rows = bench.rows()
  i = bench.start(#rows)
end

function request()
  i = i % #rows + 1
  local row = rows[i]
  local body = string.format('{"email":"%s","password":"%s"}', row[1], row[2])
  return wrk.format("POST", "/api/v1/users/login", headers, body)
end
