-- One wrk script for every HTTP cell of bench/run_all.py, configured through the environment:
--
--   BENCH_METHOD   GET | POST (default GET)
--   BENCH_HEADERS  header lines "Name: value" separated by "\n"
--   BENCH_BODY     request body
--   BENCH_POOL     file with one item per line; "{{item}}" in BENCH_HEADERS / BENCH_BODY is
--                  replaced by the thread's next item (threads take disjoint shares)
--   BENCH_ONCE     "1": each item is used once; a thread stops when its share is used up
--   BENCH_THREADS  number of wrk threads (to split the pool)
--   BENCH_SAVE     path prefix: 2xx response bodies are appended to <prefix>.<thread>
--   BENCH_DONE     path prefix: with BENCH_ONCE, a thread whose share is used up creates
--                  <prefix>.<thread>; bench/common.py then ends wrk with SIGINT (wrk's own
--                  timer would otherwise run to -d) so the rate covers the useful time only
--
-- done() prints one JSON line (prefixed "BENCH_JSON ") with the counts and the latency
-- percentiles in microseconds; bench/common.py parses it.

local method = os.getenv("BENCH_METHOD") or "GET"
local header_text = os.getenv("BENCH_HEADERS") or ""
local body_text = os.getenv("BENCH_BODY")
local pool_path = os.getenv("BENCH_POOL")
local once = os.getenv("BENCH_ONCE") == "1"
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local save_prefix = os.getenv("BENCH_SAVE")
local done_prefix = os.getenv("BENCH_DONE")

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local function render(template, item)
  if template == nil or item == nil then
    return template
  end
  -- gsub with a function: no pattern magic in the item (tokens contain "-" and "%"-free text)
  return (template:gsub("{{item}}", function() return item end))
end

local function headers_for(item)
  local h = {}
  for line in (header_text .. "\n"):gmatch("([^\n]*)\n") do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    if name then
      h[name] = render(value, item)
    end
  end
  return h
end

local fixed = nil
local items = {}
local cursor = 0
local save_file = nil
local tid = 0
local finished = false

function init(args)
  tid = wrk.thread:get("tid") or 0
  if pool_path then
    local n = 0
    for line in io.lines(pool_path) do
      if line ~= "" then
        if n % nthreads == tid then
          table.insert(items, line)
        end
        n = n + 1
      end
    end
  else
    fixed = wrk.format(method, nil, headers_for(nil), body_text)
  end
  if save_prefix then
    save_file = io.open(save_prefix .. "." .. tid, "a")
    save_file:setvbuf("line")
  end
end

function request()
  if fixed then
    return fixed
  end
  cursor = cursor + 1
  if cursor > #items then
    if once then
      if not finished then
        finished = true
        if done_prefix then
          io.open(done_prefix .. "." .. tid, "w"):close()
        end
      end
      wrk.thread:stop()
      -- wrk still sends what we return; repeat the last item (its reply is not counted
      -- as a first-seen check because the thread is stopping)
      cursor = #items
    else
      cursor = 1
    end
  end
  local item = items[cursor]
  return wrk.format(method, nil, headers_for(item), render(body_text, item))
end

if save_prefix then
  function response(status, headers, body)
    if status >= 200 and status < 300 and save_file then
      save_file:write(body, "\n")
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us": %d, "requests": %d, "bytes": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
