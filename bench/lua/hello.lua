-- The HTTP ceiling: GET / on the bare ASGI app. A static request (no request()
-- function) keeps wrk's own cost per request as low as it goes.
dofile(os.getenv("BENCH_LUA_DIR") .. "/lib.lua")

wrk.method = "GET"
wrk.path = "/"
