-- Refill a Test that Redis lost, unless another worker already did (its meta key exists).
-- KEYS: the durable hashes in bandit.state.keys.DURABLE order.
-- ARGV: per hash, its number of fields, then (field, value) pairs.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local pos = 1
for k = 1, #KEYS do
  local count = tonumber(ARGV[pos])
  pos = pos + 1
  for i = 0, count - 1 do
    redis.call('HSET', KEYS[k], ARGV[pos + 2 * i], ARGV[pos + 2 * i + 1])
  end
  pos = pos + 2 * count
end
return 1
