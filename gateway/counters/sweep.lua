-- Release the reservations whose lease ran out (their process died before settling):
-- at most ARGV[2] of them per run. KEYS: leases. ARGV: now, limit, key prefix.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, rid in ipairs(ids) do
  local key = ARGV[3] .. 'l:' .. rid
  local lease = redis.call('GET', key)
  if lease then
    local data = cjson.decode(lease)
    if data.cost ~= '0' then  -- Redis refuses '-0' as an integer
      for _, b in ipairs(data.budgets) do redis.call('HINCRBY', b, 'reserved', '-' .. data.cost) end
    end
    for _, s in ipairs(data.slots) do redis.call('ZREM', s, rid) end
    redis.call('DEL', key)
  end
  redis.call('ZREM', KEYS[1], rid)
end
return #ids
