-- Forget what a variant learned before a detected change (bandit.policy.ON_CHANGE): from now
-- on its evidence is its recent rewards alone. The all-time sums stay as they are (they are
-- what the Test counted); what the model stops using is kept beside them, so that the model's
-- evidence is the all-time sum less the forgotten one.
-- KEYS: learn.
-- ARGV: now, then per variant: its id and the number of changes already detected for it as
--       the caller saw them (a change another worker acted on first is not acted on again).
-- Answers the number of variants that forgot.
local forgot = 0
for i = 2, #ARGV, 2 do
  local v, seen = ARGV[i], ARGV[i + 1]
  if (redis.call('HGET', KEYS[1], 'k:' .. v) or '0') == seen then
    local now = redis.call('HMGET', KEYS[1], 'u:' .. v, 's:' .. v, 'q:' .. v,
      'ru:' .. v, 'rs:' .. v, 'rq:' .. v)
    local fields = {}
    local names = {'fu:', 'fs:', 'fq:'}
    for k = 1, 3 do
      local kept = (tonumber(now[k]) or 0) - (tonumber(now[k + 3]) or 0)
      fields[#fields + 1] = names[k] .. v
      fields[#fields + 1] = string.format('%.17g', math.max(kept, 0))
    end
    redis.call('HSET', KEYS[1], unpack(fields))
    redis.call('HINCRBY', KEYS[1], 'k:' .. v, 1)
    redis.call('HSET', KEYS[1], 'lk', ARGV[1])
    forgot = forgot + 1
  end
end
return forgot
