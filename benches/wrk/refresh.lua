-- refresh_token grant under rotation: every answer's new refresh_token goes back into this
-- thread's queue and a later request spends it, so each token is used exactly once.
-- BENCH_TOKENS: file with one refresh token per line (at least as many as connections);
-- BENCH_THREADS: wrk -t; BENCH_AUTH: "Basic ..." client authentication; BENCH_PATH: token path.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
bad = 0
local path = os.getenv("BENCH_PATH") or "/token"
local headers = {
  ["Authorization"] = os.getenv("BENCH_AUTH"),
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Accept"] = "application/json",
}

function bench_setup(thread, index)
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local mine, i = {}, 0
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    if line ~= "" then
      if i % nthreads == index - 1 then table.insert(mine, line) end
      i = i + 1
    end
  end
  thread:set("tokens", mine)
end

local head, tail, last = 1, 0, nil
function init(args)
  queue = {}
  for _, t in ipairs(tokens or {}) do tail = tail + 1; queue[tail] = t end
end

-- The load generator shares the two cores with the server, so its own work per request is
-- kept small: the request text is a fixed head plus the token (no wrk.format per request), and
-- the token is found by a plain substring search (a Lua pattern scans the whole body slowly).
local head_text
function request()
  local tok
  if head <= tail then
    tok = queue[head]; queue[head] = nil; head = head + 1
  else
    tok = last or "none" -- queue ran dry after failures: this request will fail
  end
  last = tok
  if not head_text then
    local h = {}
    for k, v in pairs(headers) do h[#h + 1] = k .. ": " .. v end
    h[#h + 1] = "Host: " .. (wrk.headers["Host"] or wrk.host)
    head_text = "POST " .. path .. " HTTP/1.1\r\n" .. table.concat(h, "\r\n") .. "\r\nContent-Length: "
  end
  local body = "grant_type=refresh_token&refresh_token=" .. tok
  return head_text .. #body .. "\r\n\r\n" .. body
end

local key = '"refresh_token":"'
function response(status, hdrs, body)
  local rt
  if status == 200 then
    local _, e = body:find(key, 1, true)
    if e then
      local q = body:find('"', e + 1, true)
      if q then rt = body:sub(e + 1, q - 1) end
    else -- JSON written with spaces
      rt = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    end
  end
  if rt then
    tail = tail + 1; queue[tail] = rt
  else
    bad = bad + 1
  end
end
