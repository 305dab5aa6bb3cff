-- One settlement, atomically: the reservation (if still held) is released and the
-- actual cost added to every budget; the token window is corrected by the difference
-- between the actual tokens and those counted at admission.
-- KEYS: seeded, leases, lease, then nb budget hashes, then 2 keys per token rate line
--       (the admission's bucket, the current bucket), then ns slot sets.
-- ARGV: rid, actual_pusd, token_delta, nb, nr, ns, bucket ttl, then nb x ttl, then keep
--       (pico-USD of the reservation that stays held under this rid: a share shrinking).
if redis.call('EXISTS', KEYS[1]) == 0 then return {'unseeded'} end
local rid = ARGV[1]
local actual, delta = ARGV[2], tonumber(ARGV[3])
local nb, nr, ns = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local bucket_ttl = math.ceil(tonumber(ARGV[7]))
local keep = ARGV[8 + nb]
local lease = redis.call('GET', KEYS[3])
local cost = '0'
if lease then
  local data = cjson.decode(lease)
  cost = data.cost
  if keep ~= '0' then
    cost = string.format('%.0f', tonumber(cost) - tonumber(keep))  -- released: the rest stays
    data.cost = keep
    redis.call('SET', KEYS[3], cjson.encode(data), 'KEEPTTL')
  else
    redis.call('DEL', KEYS[3])
    redis.call('ZREM', KEYS[2], rid)
  end
end
local k = 4
local out = {'late'}
if lease then out[1] = 'released' end
for i = 1, nb do
  local key = KEYS[k]; k = k + 1
  local reserved = redis.call('HGET', key, 'reserved') or '0'
  if lease and cost ~= '0' then reserved = redis.call('HINCRBY', key, 'reserved', '-' .. cost) end
  out[#out + 1] = tostring(redis.call('HINCRBY', key, 'spent', actual))
  out[#out + 1] = tostring(reserved)
  local ttl = tonumber(ARGV[7 + i])
  if ttl > 0 then redis.call('EXPIRE', key, ttl) end
end
for i = 1, nr do
  local admitted, current = KEYS[k], KEYS[k + 1]; k = k + 2
  if delta ~= 0 then
    if redis.call('EXISTS', admitted) == 1 then
      redis.call('INCRBY', admitted, string.format('%.0f', delta))
    elseif delta > 0 then
      redis.call('INCRBY', current, string.format('%.0f', delta))
      redis.call('EXPIRE', current, bucket_ttl)
    end
  end
end
for i = 1, ns do redis.call('ZREM', KEYS[k], rid); k = k + 1 end
return out
