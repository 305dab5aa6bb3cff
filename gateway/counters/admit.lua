-- One admission, atomically: gateway.counters.logic.decide, line for line, then the
-- reservation. Money in pico-USD, stored with HINCRBY (exact 64-bit); compared as Lua
-- numbers, exact below 2^53 pico-USD (9007 USD) and within 1e-10 USD above.
-- KEYS: seeded, leases, lease, then nb budget hashes, then BUCKETS keys per rate line
--       (oldest first), then ns slot sets.
-- ARGV: now, rid, lease_until, input_pusd, out_pusd, max_out, min_out, input_tokens,
--       out_factor, nb, nr, ns, bucket_s, nbuckets, lease_ttl, count (requests this ask
--       counts: 1, or a process's share), then nb x (limit, ttl),
--       nr x (is_requests, limit), ns x limit.
local function int(x) return string.format('%.0f', x) end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'unseeded'} end
local now = tonumber(ARGV[1])
local input_pusd, out_pusd = tonumber(ARGV[4]), tonumber(ARGV[5])
local max_out, min_out = tonumber(ARGV[6]), tonumber(ARGV[7])
local input_tokens, out_factor = tonumber(ARGV[8]), tonumber(ARGV[9])
local nb, nr, ns = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local bucket_s, nbuckets, lease_ttl = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
local count = tonumber(ARGV[16])
local a = 17
local k = 4
local cur = math.floor(now / bucket_s)

local spent, reserved, limits, ttls, bkeys = {}, {}, {}, {}, {}
for i = 1, nb do
  bkeys[i] = KEYS[k]; k = k + 1
  local v = redis.call('HMGET', bkeys[i], 'spent', 'reserved')
  spent[i] = tonumber(v[1]) or 0
  reserved[i] = tonumber(v[2]) or 0
  limits[i] = tonumber(ARGV[a]); ttls[i] = tonumber(ARGV[a + 1]); a = a + 2
end

local granted = max_out
if nb > 0 then
  local tightest, room = 1, nil
  for i = 1, nb do
    local left = limits[i] - spent[i] - reserved[i]
    if room == nil or left < room then room = left; tightest = i end
  end
  if input_pusd + out_pusd * max_out > room then
    if out_pusd > 0 and room >= input_pusd then
      granted = math.min(max_out, math.floor((room - input_pusd) / out_pusd))
    else
      granted = -1
    end
    if granted < min_out or granted < 0 then
      local out = {'budget', tostring(tightest - 1)}
      for i = 1, nb do out[#out + 1] = int(spent[i]); out[#out + 1] = int(reserved[i]) end
      return out
    end
  end
end
local cost = input_pusd + out_pusd * granted
local tokens = input_tokens + granted * out_factor

local function drop_time(j) return (cur + 1 + j) * bucket_s - now end
local windows, rkeys, rkinds = {}, {}, {}
for i = 1, nr do
  local is_requests, limit = tonumber(ARGV[a]) == 1, tonumber(ARGV[a + 1]); a = a + 2
  local counts, keys, used = {}, {}, 0
  for j = 0, nbuckets - 1 do
    keys[j] = KEYS[k]; k = k + 1
    counts[j] = tonumber(redis.call('GET', keys[j])) or 0
    used = used + counts[j]
  end
  local amount = tokens
  if is_requests then amount = count end
  if amount > limit then return {'too_large', tostring(i - 1)} end
  if used + amount > limit then
    local wait = drop_time(nbuckets - 1)
    for j = 0, nbuckets - 1 do
      used = used - counts[j]
      if used + amount <= limit then wait = drop_time(j); break end
    end
    local kind = 'tokens'
    if is_requests then kind = 'requests' end
    return {kind, tostring(i - 1), tostring(wait)}
  end
  windows[i] = counts; rkeys[i] = keys; rkinds[i] = amount
end

local skeys = {}
for i = 1, ns do
  skeys[i] = KEYS[k]; k = k + 1
  local limit = tonumber(ARGV[a]); a = a + 1
  redis.call('ZREMRANGEBYSCORE', skeys[i], '-inf', now)
  if redis.call('ZCARD', skeys[i]) >= limit then return {'parallel', tostring(i - 1), '1'} end
end

-- Everything fits: reserve.
local rid, lease_until = ARGV[2], tonumber(ARGV[3])
local out = {'ok', int(granted), int(cost), int(tokens)}
for i = 1, nb do
  redis.call('HINCRBY', bkeys[i], 'reserved', int(cost))
  if ttls[i] > 0 then redis.call('EXPIRE', bkeys[i], ttls[i]) end
  out[#out + 1] = int(spent[i]); out[#out + 1] = int(reserved[i] + cost)
end
for i = 1, nr do
  local counts, keys = windows[i], rkeys[i]
  local last = nbuckets - 1
  redis.call('INCRBY', keys[last], int(rkinds[i]))
  redis.call('EXPIRE', keys[last], math.ceil(bucket_s * (nbuckets + 1)))
  counts[last] = counts[last] + rkinds[i]
  local used, reset = 0, 0
  for j = 0, last do used = used + counts[j] end
  for j = last, 0, -1 do if counts[j] > 0 then reset = drop_time(j); break end end
  out[#out + 1] = int(used); out[#out + 1] = tostring(reset)
end
for i = 1, ns do redis.call('ZADD', skeys[i], lease_until, rid) end
local slot_keys = {}
for i = 1, ns do slot_keys[i] = skeys[i] end
redis.call('SET', KEYS[3], cjson.encode({cost = int(cost), budgets = bkeys, slots = slot_keys}), 'EX', lease_ttl)
redis.call('ZADD', KEYS[2], lease_until, rid)
return out
