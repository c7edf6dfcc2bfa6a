-- A fixed request: BENCH_METHOD (GET), BENCH_BODY (form body, for POST) and
-- BENCH_AUTH (whole Authorization header value) from the environment.
-- Non-2xx/3xx answers are counted by wrk itself (status_errors).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
bad = 0
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
wrk.headers["Accept"] = "application/json"
