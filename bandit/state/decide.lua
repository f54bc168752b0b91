-- Store a decision and its context, count it, and answer the rolled-out variant instead when
-- a rollout is in force, so that a rollout holds from the very next request on every worker.
-- A request id that already names a decision gets that decision back (retries are idempotent).
-- KEYS: meta, stats, vocab, feature analysis, the stored context, the prediction trail bucket,
--       learn (read only: its reward count tells the worker whether its snapshot is behind).
-- ARGV: variant, decision kind, now, context TTL, trail TTL, max features, context JSON,
--       the number of context keys, the context keys, then the feature names.
-- Answers {variant, rolled out?, replayed?, features ignored, rewards counted}, or {-1, ...}
-- for a missing Test.
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0, 0, 0, false} end
local learned = redis.call('HGET', KEYS[7], 'u')
local rollout = redis.call('HGET', KEYS[1], 'rollout')
local stored = redis.call('GET', KEYS[5])
if stored then
  local v = string.sub(stored, 1, string.find(stored, '|', 1, true) - 1)
  return {tonumber(v), (rollout == v) and 1 or 0, 1, 0, learned}
end
local v = ARGV[1]
local kind = ARGV[2]
if rollout then v = rollout; kind = 'rollout' end
redis.call('SET', KEYS[5], v .. '|' .. ARGV[7], 'EX', ARGV[4])
redis.call('HINCRBY', KEYS[2], 'n', 1)
redis.call('HINCRBY', KEYS[2], 'p:' .. v, 1)
redis.call('HINCRBY', KEYS[2], kind, 1)
redis.call('HSET', KEYS[2], 'lp', ARGV[3])
redis.call('HINCRBY', KEYS[6], v, 1)
local n_keys = tonumber(ARGV[8])
for i = 1, n_keys do redis.call('HSET', KEYS[6], v .. '|' .. ARGV[8 + i], 1) end
redis.call('EXPIRE', KEYS[6], ARGV[5])
local max_features = tonumber(ARGV[6])
local overflow = 0
for i = 9 + n_keys, #ARGV do
  local index = redis.call('HGET', KEYS[3], ARGV[i])
  if not index then
    local size = redis.call('HLEN', KEYS[3])
    if size < max_features then
      index = size + 1
      redis.call('HSET', KEYS[3], ARGV[i], index)
    else
      redis.call('HINCRBY', KEYS[2], 'overflow', 1)
      overflow = overflow + 1
    end
  end
  if index then redis.call('HINCRBY', KEYS[4], 'p:' .. v .. ':' .. index, 1) end
end
return {tonumber(v), rollout and 1 or 0, 0, overflow, learned}
