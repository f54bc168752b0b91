-- Count a batch of rewards atomically, in one round trip: an entry that names a request id
-- teaches the variant and the features its decision stored (see decide.lua), or its own inline
-- context when it says so or when the decision is gone; a request id already rewarded is a
-- duplicate.
-- The same script closes reward windows (bandit.windows): an entry that closes one counts its
-- decision once with the Test's default reward (meta's `dr`), unless its reward came first.
-- Whichever of the two runs first takes the decision out of the due set; the other finds it
-- gone. A reward whose window has closed (by the clock of Redis, the same for every host) is
-- late and not counted: the default counts instead.
-- A reward counted for a stored decision that the log holds (or the default that closed its
-- window) also goes into the Test's log stream (bandit.state.log), unless the log is off.
-- KEYS: meta, learn, vocab, feature analysis, the reward trail bucket, the decisions waiting
--       for their reward, the log stream, the stored decisions of the entries that name one,
--       and stats last.
-- ARGV: the version of the Test's variants the worker resolved the entries with ('' when
--       closing windows: entries name no variant then), now, context TTL, trail TTL, max features, the decay of recent rewards (0: the Test
--       keeps none, see bandit.policy.ON_CHANGE), the most entries the log stream keeps (0:
--       no log), the number of entries, then per entry:
--       'r' for a reward or 'c' to close the window of its decision (its reward is unused),
--       its stored decision's position among KEYS (0 for none), the variant it names ('' for
--       none), reward, 1 to use the stored context (else its own), 1 if it carries a context,
--       the number of its features, (name, value) pairs, the number of its context keys, the
--       context keys.
-- Answers a (status, variant) pair per entry and the features ignored, or {-1}. Statuses:
-- 1 counted, 2 duplicate, 3 another variant was served (the variant answered is that one),
-- 4 counted with its own context (the decision was gone), 5 the decision is gone and the entry
-- carries no context, 6 the decision is gone and the entry names no variant, 7 late (the
-- decision's reward window closed before it came), 8 the window closed and the default reward
-- counted, 9 nothing to close (the reward came first, or the window is not closed yet), 10 the
-- decision is a ranking and the entry names no variant, 11 the variant named is not in the
-- ranking. A ranked decision (decide.lua) counts one reward per variant of its ranking.
-- {-3}, having written nothing: the Test's variants changed since the worker read them
-- (meta's `dv`); the worker reads them again and resolves the entries anew. {-4}, having
-- written nothing: the Test waits for its scheduled start (meta's `ns`) and learns nothing.
local definition = table.remove(ARGV, 1)
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
if definition ~= '' then
  local meta = redis.call('HMGET', KEYS[1], 'dv', 'ns')
  if (meta[1] or '0') ~= definition then return {-3} end
  if meta[2] then return {-4} end
end
local now, ttl, trail_ttl = ARGV[1], ARGV[2], ARGV[3]
local max_features = tonumber(ARGV[4])
local decay = tonumber(ARGV[5])
local backlog = tonumber(ARGV[6])
local due_key = KEYS[6]
-- A stored decision's request id is what its key holds after the Test's tag and ':c:'.
local request_at = #KEYS[1] - 1
-- The clock of Redis, read once and only when a window is looked at.
local clock
local function now_in_redis()
  if not clock then
    local t = redis.call('TIME')
    clock = tonumber(t[1]) + tonumber(t[2]) / 1e6
  end
  return clock
end
local default_reward
-- Sums (HINCRBYFLOAT) and counts (HINCRBY) per hash, added up over the batch; trail markers.
local learn, stats_acc, analysis, trail = {}, {}, {}, {}
local learn_n, analysis_n, trail_n, markers = {}, {}, {}, {}
-- Per variant, its context-free rewards in the order counted, for its recent sums.
local recent, recent_order = {}, {}
local function add(tbl, field, delta) tbl[field] = (tbl[field] or 0) + delta end
local function admit(name)
  local index = redis.call('HGET', KEYS[3], name)
  if index then return index end
  local size = redis.call('HLEN', KEYS[3])
  if size >= max_features then add(stats_acc, 'overflow', 1); return nil end
  redis.call('HSET', KEYS[3], name, size + 1)
  return tostring(size + 1)
end
-- A stored decision: its variant, and its features ({index, value} pairs) and context keys;
-- no features once its reward (or, third answer true, the default) was counted.
-- A ranked decision answers its ranking as a fifth value: {ranking, rewarded, rest}. The sixth
-- is what follows its newline (its propensity, see decide.lua), which a rewrite keeps.
local function parse(stored)
  local tail = ''
  local newline = string.find(stored, '\n', 1, true)
  if newline then
    tail = string.sub(stored, newline)
    stored = string.sub(stored, 1, newline - 1)
  end
  local bar = string.find(stored, '|', 1, true)
  local v, rest = string.sub(stored, 1, bar - 1), string.sub(stored, bar + 1)
  local ranked = false
  if string.sub(v, 1, 1) == '~' then
    local semicolon = string.find(v, ';', 1, true)
    ranked = {string.sub(v, 2, semicolon - 1), string.sub(v, semicolon + 1), rest}
  end
  if rest == 'r' then return v, nil, nil, false, false, tail end
  if rest == 'd' then return v, nil, nil, true, false, tail end
  local features, context_keys = {}, {}
  -- A decision stored by an earlier Scout kept its context as a JSON object: its reward
  -- counts without the context's features.
  if rest == '' or string.sub(rest, 1, 1) == '{' then
    return v, features, context_keys, false, ranked, tail
  end
  local second = string.find(rest, '|', 1, true)
  for index, value in string.gmatch(string.sub(rest, 1, second - 1), '(%d+):([^,]+)') do
    features[#features + 1] = {index, tonumber(value)}
  end
  local encoded = string.sub(rest, second + 1)
  if encoded ~= '' then context_keys = cjson.decode(encoded) end
  return v, features, context_keys, false, ranked, tail
end
local function listed(list, item) return string.find(',' .. list .. ',', ',' .. item .. ',', 1, true) end
local results = {}
local applied = 0
local pos = 8
for entry = 1, tonumber(ARGV[7]) do
  local closing = ARGV[pos] == 'c'
  local key_index = tonumber(ARGV[pos + 1])
  local v = ARGV[pos + 2]
  local y = tonumber(ARGV[pos + 3])
  local use_stored = ARGV[pos + 4] == '1'
  local inline = ARGV[pos + 5] == '1'
  local n_features = tonumber(ARGV[pos + 6])
  local features_at = pos + 7
  local n_keys = tonumber(ARGV[features_at + 2 * n_features])
  local keys_at = features_at + 2 * n_features + 1
  pos = keys_at + n_keys
  local status = 1
  local features, context_keys -- nil: the entry's own
  local tail -- what follows the newline of its stored decision (see parse)
  local logged = true -- a ranked decision's log keeps the reward of its first variant
  if closing then
    local key = KEYS[7 + key_index]
    local member = v .. '|' .. string.sub(key, request_at)
    local closes = redis.call('ZSCORE', due_key, member)
    if not closes or tonumber(closes) > now_in_redis() then
      status = 9
    else
      redis.call('ZREM', due_key, member)
      if not default_reward then
        default_reward = tonumber(redis.call('HGET', KEYS[1], 'dr') or '0')
      end
      y = default_reward
      local stored = redis.call('GET', key)
      local stored_features, stored_keys
      if stored then
        local _served, _defaulted, _ranked
        _served, stored_features, stored_keys, _defaulted, _ranked, tail = parse(stored)
      end
      if stored and not stored_features then
        status = 9 -- counted already (its reward took it out of the due set: not reached)
      else
        status = 8
        -- A decision that expired (evicted) teaches its variant without its context.
        features, context_keys = stored_features or {}, stored_keys or {}
        if stored then
          redis.call('SET', key, v .. '|d' .. (tail or ''), 'KEEPTTL')
        else
          redis.call('SET', key, v .. '|d', 'EX', ttl)
        end
        add(stats_acc, 'd:' .. v, 1)
      end
    end
  elseif key_index > 0 then
    local key = KEYS[7 + key_index]
    local stored = redis.call('GET', key)
    local served, stored_features, stored_keys, defaulted, ranked
    if stored then
      served, stored_features, stored_keys, defaulted, ranked, tail = parse(stored)
    end
    if ranked then
      local ranking, rewarded, rest = ranked[1], ranked[2], ranked[3]
      logged = v == string.match(ranking, '^[^,]+')
      if v == '' then
        status = 10
      elseif not listed(ranking, v) then
        status = 11
      elseif listed(rewarded, v) then
        status = 2
      else
        rewarded = rewarded == '' and v or (rewarded .. ',' .. v)
        redis.call('SET', key, '~' .. ranking .. ';' .. rewarded .. '|' .. rest .. tail, 'KEEPTTL')
        if use_stored then features, context_keys = stored_features, stored_keys end
      end
    elseif stored then
      if v ~= '' and v ~= served then
        status = 3
      elseif defaulted then
        status = 7
      elseif not stored_features then
        status = 2
      else
        local member = served .. '|' .. string.sub(key, request_at)
        local closes = redis.call('ZSCORE', due_key, member)
        if closes and tonumber(closes) <= now_in_redis() then
          status = 7 -- the window closes it with the default
        else
          if closes then redis.call('ZREM', due_key, member) end
          redis.call('SET', key, served .. '|r' .. tail, 'KEEPTTL')
          if use_stored then features, context_keys = stored_features, stored_keys end
        end
      end
      v = served
    elseif not inline then
      status = 5
    elseif v == '' then
      status = 6
    else
      status = 4
      redis.call('SET', key, v .. '|r', 'EX', ttl)
    end
  end
  -- How its decision was chosen (decide.lua); none for a decision gone or stored before the
  -- log was on, whose reward the log has no decision for.
  local arm = string.match(tail or '', ' (%S+)$')
  if backlog > 0 and arm and logged and (status == 1 or status == 8) then
    redis.call('XADD', KEYS[7], 'MAXLEN', '~', backlog, '*', 'k', 'r',
      'r', string.sub(KEYS[7 + key_index], request_at), 'v', v,
      'y', string.format('%.17g', y), 'd', status == 8 and '1' or '0', 'h', arm)
  end
  if status == 1 or status == 4 or status == 8 then
    if not features then
      features, context_keys = {}, {}
      for f = 0, n_features - 1 do
        local index = admit(ARGV[features_at + 2 * f])
        if index then
          features[#features + 1] = {index, tonumber(ARGV[features_at + 2 * f + 1])}
        end
      end
      for k = 0, n_keys - 1 do context_keys[k + 1] = ARGV[keys_at + k] end
    end
    applied = applied + 1
    add(learn_n, 'u', 1)
    add(learn_n, 'u:' .. v, 1)
    add(learn, 's:' .. v, y)
    add(learn, 'q:' .. v, y * y)
    if y ~= 0 and y ~= 1 then add(learn_n, 'nb', 1) end
    if decay > 0 and #features == 0 then
      if not recent[v] then recent[v] = {}; recent_order[#recent_order + 1] = v end
      recent[v][#recent[v] + 1] = y
    end
    add(trail_n, v, 1)
    add(trail, 's:' .. v, y)
    for _, name in ipairs(context_keys) do markers[v .. '|' .. name] = 1 end
    for a = 1, #features do
      local ia, xa = features[a][1], features[a][2]
      local at = v .. ':' .. ia
      if xa == 1 then
        -- Every category, and a number at 1: its count and reward sum stand for its sums
        -- (x, x * reward, x * x) and for its feature analysis counters, two writes for five.
        add(learn_n, 'n:' .. at, 1)
        add(learn, 'y:' .. at, y)
      else
        add(learn, 'c:' .. at, xa)
        add(learn, 'b:' .. at, xa * y)
        add(learn, 'A:' .. at .. ':' .. ia, xa * xa)
        add(analysis_n, 'u:' .. at, 1)
        add(analysis, 's:' .. at, y)
      end
      for b = 1, #features do
        local ib = features[b][1]
        if tonumber(ia) < tonumber(ib) then
          add(learn, 'A:' .. at .. ':' .. ib, xa * features[b][2])
        end
      end
    end
  end
  results[#results + 1] = status
  results[#results + 1] = tonumber(v) or -1
  -- What became of each reward sent, for the Test's data health (bandit.health).
  if not closing then add(stats_acc, 'o:' .. status, 1) end
end
-- A sum that did not move is not written: a reward of 0 adds nothing to its sums, a feature
-- at 0 nothing to its products (a field that is not there reads as 0).
-- Answers whether a count was born (its field is new), so a trail bucket's expiry is set when
-- the bucket is, not with every reward.
local function flush(key, sums, counts)
  local born = false
  for field, delta in pairs(counts) do
    if redis.call('HINCRBY', key, field, delta) == delta then born = true end
  end
  for field, delta in pairs(sums) do
    if delta ~= 0 then
      redis.call('HINCRBYFLOAT', key, field, string.format('%.17g', delta))
    end
  end
  return born
end
flush(KEYS[2], learn, learn_n)
-- Recent sums: each reward weighs decay ** (the variant's rewards counted after it). Written
-- here, in the script that counts, so that they are exact whichever worker counts.
for _, v in ipairs(recent_order) do
  local old = redis.call('HMGET', KEYS[2], 'ru:' .. v, 'rs:' .. v, 'rq:' .. v, 'rw:' .. v)
  local w, sy, sq, ww = tonumber(old[1]) or 0, tonumber(old[2]) or 0, tonumber(old[3]) or 0,
    tonumber(old[4]) or 0
  for _, y in ipairs(recent[v]) do
    w, sy, sq, ww = decay * w + 1, decay * sy + y, decay * sq + y * y, decay * decay * ww + 1
  end
  redis.call('HSET', KEYS[2], 'ru:' .. v, string.format('%.17g', w),
    'rs:' .. v, string.format('%.17g', sy), 'rq:' .. v, string.format('%.17g', sq),
    'rw:' .. v, string.format('%.17g', ww))
end
flush(KEYS[4], analysis, analysis_n)
local trail_born = flush(KEYS[5], trail, trail_n)
local marked = {}
for field in pairs(markers) do
  marked[#marked + 1] = field
  marked[#marked + 1] = 1
end
if #marked > 0 then redis.call('HSET', KEYS[5], unpack(marked)) end
if applied > 0 then redis.call('HSET', KEYS[2], 'lu', now) end
if trail_born then redis.call('EXPIRE', KEYS[5], trail_ttl) end
for field, delta in pairs(stats_acc) do redis.call('HINCRBY', KEYS[#KEYS], field, delta) end
results[#results + 1] = stats_acc['overflow'] or 0
return results
