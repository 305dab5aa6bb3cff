-- Move the lease of reservations this process still holds (its shares, gateway.counters.shares)
-- to ARGV[1], with their concurrency slots; a reservation already settled or swept is left alone.
-- KEYS: leases, then one lease key per rid. ARGV: until, the lease key's ttl, then the rids.
local renewed = 0
for i = 2, #KEYS do
  local rid = ARGV[i + 1]
  local lease = redis.call('GET', KEYS[i])
  if lease and redis.call('ZSCORE', KEYS[1], rid) then
    redis.call('ZADD', KEYS[1], ARGV[1], rid)
    redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2]))
    for _, s in ipairs(cjson.decode(lease).slots) do redis.call('ZADD', s, 'XX', ARGV[1], rid) end
    renewed = renewed + 1
  end
end
return renewed
