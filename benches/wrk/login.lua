-- POST /login with a correct password, as many browsers at once as wrk has connections.
-- BENCH_POOL: file of "<Cookie header>\t<form body>" lines prepared by GET /login (each has
-- its own browser cookie and the csrf token that goes with it, plus username and password).
-- Success is a 303; anything else counts as bad.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
bad = 0
local path = os.getenv("BENCH_PATH") or "/login"

function bench_setup(thread, index)
  local pool = {}
  for line in io.lines(os.getenv("BENCH_POOL")) do
    if line ~= "" then table.insert(pool, line) end
  end
  thread:set("pool", pool)
  thread:set("offset", index)
end

local n = 0
function request()
  n = n + 1
  local line = pool[((n + offset * 7) % #pool) + 1]
  local cookie, body = line:match("^([^\t]*)\t(.*)$")
  return wrk.format("POST", path, {
    ["Cookie"] = cookie,
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Accept"] = "text/html",
  }, body)
end

function response(status, hdrs, body)
  if status ~= 303 then bad = bad + 1 end
end
