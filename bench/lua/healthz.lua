-- The shop's cheapest route: GET /healthz through the whole middleware stack (request id,
-- access log, metrics, body limit, FastAPI routing) and no I/O. The framework floor.
dofile(os.getenv("BENCH_LUA_DIR") .. "/lib.lua")
bench.count_codes()

wrk.method = "GET"
wrk.path = "/healthz"
