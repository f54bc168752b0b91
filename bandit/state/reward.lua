-- Count a batch of rewards atomically; a request id already rewarded is a duplicate.
-- KEYS: meta, learn, vocab, feature analysis, the reward trail bucket, the stored contexts of
--       the entries that name one, and stats last.
-- ARGV: now, context TTL, trail TTL, max features, the number of entries, then per entry:
--       its stored context's position among KEYS (0 for none), variant, reward, the number of
--       features, (name, value) pairs, the number of context keys, the context keys.
-- Answers a status per entry (1 counted, 2 duplicate) and the features ignored, or {-1}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local now, ttl, trail_ttl = ARGV[1], ARGV[2], ARGV[3]
local max_features = tonumber(ARGV[4])
local learn, stats_acc, analysis, trail = {}, {}, {}, {}
local function add(tbl, field, delta) tbl[field] = (tbl[field] or 0) + delta end
local function admit(name)
  local index = redis.call('HGET', KEYS[3], name)
  if index then return index end
  local size = redis.call('HLEN', KEYS[3])
  if size >= max_features then add(stats_acc, 'overflow', 1); return nil end
  redis.call('HSET', KEYS[3], name, size + 1)
  return tostring(size + 1)
end
local results = {}
local applied = 0
local pos = 6
for entry = 1, tonumber(ARGV[5]) do
  local key_index = tonumber(ARGV[pos])
  local v = ARGV[pos + 1]
  local y = tonumber(ARGV[pos + 2])
  local n_features = tonumber(ARGV[pos + 3])
  local features_at = pos + 4
  local n_keys = tonumber(ARGV[features_at + 2 * n_features])
  local keys_at = features_at + 2 * n_features + 1
  pos = keys_at + n_keys
  local status = 1
  if key_index > 0 then
    local key = KEYS[5 + key_index]
    local stored = redis.call('GET', key)
    if stored and string.sub(stored, string.find(stored, '|', 1, true) + 1) == 'r' then
      status = 2
    elseif stored then
      redis.call('SET', key, v .. '|r', 'KEEPTTL')
    else
      redis.call('SET', key, v .. '|r', 'EX', ttl)
    end
  end
  if status == 1 then
    applied = applied + 1
    add(learn, 'u', 1)
    add(learn, 'u:' .. v, 1)
    add(learn, 's:' .. v, y)
    add(learn, 'q:' .. v, y * y)
    if y ~= 0 and y ~= 1 then add(learn, 'nb', 1) end
    add(trail, v, 1)
    add(trail, 's:' .. v, y)
    for k = 0, n_keys - 1 do trail[v .. '|' .. ARGV[keys_at + k]] = 1 end
    local index, value = {}, {}
    for f = 0, n_features - 1 do
      local i = admit(ARGV[features_at + 2 * f])
      if i then
        table.insert(index, tonumber(i))
        table.insert(value, tonumber(ARGV[features_at + 2 * f + 1]))
      end
    end
    for a = 1, #index do
      local ia, xa = index[a], value[a]
      add(learn, 'c:' .. v .. ':' .. ia, xa)
      add(learn, 'b:' .. v .. ':' .. ia, xa * y)
      add(analysis, 'u:' .. v .. ':' .. ia, 1)
      add(analysis, 's:' .. v .. ':' .. ia, y)
      for b = 1, #index do
        local ib = index[b]
        if ia <= ib then add(learn, 'A:' .. v .. ':' .. ia .. ':' .. ib, xa * value[b]) end
      end
    end
  end
  results[entry] = status
end
local function flush(key, tbl)
  for field, delta in pairs(tbl) do
    if delta == 1 and field:find('|', 1, true) then
      redis.call('HSET', key, field, 1)
    else
      redis.call('HINCRBYFLOAT', key, field, string.format('%.17g', delta))
    end
  end
end
flush(KEYS[2], learn)
flush(KEYS[4], analysis)
flush(KEYS[5], trail)
if applied > 0 then
  redis.call('HSET', KEYS[2], 'lu', now)
  redis.call('EXPIRE', KEYS[5], trail_ttl)
end
for field, delta in pairs(stats_acc) do redis.call('HINCRBY', KEYS[#KEYS], field, delta) end
results[#results + 1] = stats_acc['overflow'] or 0
return results
