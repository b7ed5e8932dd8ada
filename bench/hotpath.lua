-- wrk script of bench/hotpath.py, configured through the environment:
--   HP_METHOD   GET | POST
--   HP_HEADERS  "Name: value" lines separated by "\n"
--   HP_BODY     request body; "{{t}}" is replaced by the thread's next pool item
--   HP_POOL     file, one item per line; threads take disjoint slices, each item used once
--               (a thread stops when its slice is used up, so no item is ever repeated)
--   HP_THREADS  wrk threads (to split the pool)
-- done() prints "HP_JSON {...}" with counts and latency percentiles (microseconds).

local method = os.getenv("HP_METHOD") or "GET"
local header_text = os.getenv("HP_HEADERS") or ""
local body = os.getenv("HP_BODY")
local pool_path = os.getenv("HP_POOL")
local nthreads = tonumber(os.getenv("HP_THREADS") or "1")
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end

local headers = {}
local items = {}
local cursor = 0
local fixed = nil

function init(args)
  for line in (header_text .. "\n"):gmatch("([^\n]*)\n") do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    if name then headers[name] = value end
  end
  if pool_path then
    local tid = tonumber(wrk.thread:get("tid")) or 0
    local n = 0
    for line in io.lines(pool_path) do
      if n % nthreads == tid then table.insert(items, line) end
      n = n + 1
    end
  else
    fixed = wrk.format(method, nil, headers, body)
  end
end

function request()
  if fixed then return fixed end
  cursor = cursor + 1
  if cursor > #items then
    wrk.thread:stop()
    cursor = #items
  end
  local item = items[cursor]
  local b = body and body:gsub("{{t}}", function() return item end)
  return wrk.format(method, nil, headers, b)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'HP_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,' ..
    '"p50":%d,"p99":%d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
