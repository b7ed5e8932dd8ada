-- GCRA over every limit of one request, all-or-nothing, in one round trip.
-- (Arithmetic mirrors authsvc/ratelimit/types.py; keep the two in step.)
--
-- KEYS[i]        counter i; all keys share the {scope} hash tag, so one slot on Cluster.
-- ARGV[1]        now in whole microseconds, or '' to read the server clock (TIME). Reading
--                TIME here, not on the app servers, means instances with skewed clocks
--                still share one notion of "now".
-- ARGV[2]        cost (>= 0; 0 peeks and writes nothing).
-- ARGV[3]        minimum key TTL in ms (0 in production; large when the caller injects a
--                clock, because then Redis' own expiry clock is not the limiter's clock).
-- ARGV[2+2i]     T of counter i (emission interval, µs, integer >= 1).
-- ARGV[3+2i]     tau of counter i (tolerance = T * burst, µs).
--
-- Returns {allowed (1|0), now, base_1, ..., base_n}: base_i = max(TAT_i, now) as seen
-- before this request's increment. The caller derives remaining/reset/retry from these.

local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local cost = tonumber(ARGV[2])
local min_ttl = tonumber(ARGV[3])

local n = #KEYS
local result = {0, now}
local new_tats = {}
-- A key listed twice must see its own earlier increment, exactly as the in-process limiter.
local pending = {}
local allowed = 1

for i = 1, n do
  local key = KEYS[i]
  local interval = tonumber(ARGV[2 + 2 * i])
  local tau = tonumber(ARGV[3 + 2 * i])
  local tat = pending[key] or tonumber(redis.call('GET', key)) or now
  local base = math.max(tat, now)
  local new_tat = base + interval * cost
  if new_tat - now > tau then
    allowed = 0
  end
  pending[key] = new_tat
  new_tats[i] = new_tat
  result[2 + i] = base
end

result[1] = allowed
if allowed == 1 and cost > 0 then
  for i = 1, n do
    -- The key may vanish once TAT has passed: an absent counter and one whose TAT is in
    -- the past decide identically, so expiry is pure garbage collection.
    local ttl = math.max(math.ceil((new_tats[i] - now) / 1000), min_ttl)
    redis.call('SET', KEYS[i], string.format('%d', new_tats[i]), 'PX', ttl)
  end
end
return result
