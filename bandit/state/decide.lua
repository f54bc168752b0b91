-- Store a decision and its context, count it, and answer the rolled-out variant instead when
-- a rollout is in force, so that a rollout holds from the very next request on every worker.
-- A request id that already names a decision gets that decision back (retries are idempotent).
-- The stored decision is what its reward needs, so that a reward takes one round trip:
-- "variant|index:value,...|context keys as JSON" (the features by their vocabulary index).
-- A Test with a reward window (meta's `rw`) also puts the decision among those that wait for
-- their reward (bandit.windows), and keeps it for the window beside the context TTL.
-- A Test with sticky assignment (meta's `st`, seconds) serves a unit (a visitor, an account)
-- the variant it was assigned, unless that variant is retired (meta's `ret`, ",1,5,"): then
-- the unit is assigned anew. A rollout still wins, and assigns nobody; a variant assigned but
-- not eligible for this decision is not served, and the unit keeps its assignment. The units
-- assigned are bounded per Test: past the bound, the assignment that expires first goes.
-- A ranked decision (fetch_ranked_variants) stores its ranking instead of one variant:
-- "~<ids, best first>;<ids rewarded>|..."; the variant counted as decided is its first, which
-- a sticky assignment or a rollout puts there. It waits for no reward window.
-- A decision is stored with the propensity of its variant and how it was chosen: 1 by the
-- holdout, 0 by the bandit, g by a global rollout, whose propensity is 1 (after a newline at
-- the end, see bandit.state.keys); a unit's assignment keeps those it was assigned with. Each
-- new decision also goes into the Test's log stream (bandit.state.log), unless the log is off
-- (a backlog of 0).
-- KEYS: meta, stats, vocab, feature analysis, the stored context, the prediction trail bucket,
--       learn (read only: its reward count tells the worker whether its snapshot is behind),
--       the decisions waiting for their reward, the unit's assignment, the units assigned, the
--       log stream.
-- ARGV: the propensity of the variant the worker chose, 1 if it is a holdout decision (else
--       0), the most entries the log stream keeps (0: no log), the context as JSON, the
--       learning settings as JSON, the version of the Test's variants the worker chose among
--       (see below), the unit id
--       ('' for none), the eligible variants (",0,2,", '' for all), the most units assigned,
--       the ranking ("2,0,1", '' for a decision of one variant), variant, decision kind, now, context TTL, trail TTL, max features, the number of
--       context keys, the context keys, then (feature name, value) pairs.
-- Answers {variant, rolled out?, replayed?, features ignored, rewards counted, ranking or
-- false, propensity (false: not stored), how it was chosen ('1', '0' or 'g')}, {-1, ...}
-- for a missing Test, or {-3, ...}, having written nothing, when the Test's variants changed
-- since the worker read them (meta's `dv`): the worker reads them again and decides anew.
local propensity = table.remove(ARGV, 1)
local holdout = table.remove(ARGV, 1)
local backlog = tonumber(table.remove(ARGV, 1))
local context_json = table.remove(ARGV, 1)
local learning = table.remove(ARGV, 1)
local definition = table.remove(ARGV, 1)
local unit = table.remove(ARGV, 1)
local eligible = table.remove(ARGV, 1)
local most_units = tonumber(table.remove(ARGV, 1))
local ranking = table.remove(ARGV, 1)
-- A ranking with `first` moved to its front ("2,0,1", "1" -> "1,2,0").
local function to_front(list, first)
  local ordered = {first}
  for item in string.gmatch(list, '[^,]+') do
    if item ~= first then ordered[#ordered + 1] = item end
  end
  return table.concat(ordered, ',')
end
-- What follows the newline of a stored decision or an assignment: {propensity, holdout}.
local function chosen_with(stored)
  local newline = string.find(stored, '\n', 1, true)
  if not newline then return stored, false, '0' end
  local p, h = string.match(string.sub(stored, newline + 1), '^(%S+) (%S+)$')
  return string.sub(stored, 1, newline - 1), p or false, h or '0'
end
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0, 0, 0, false, false, false, '0'} end
local meta = redis.call('HMGET', KEYS[1], 'rollout', 'rw', 'dv', 'st', 'ret')
local rollout, window, sticky = meta[1], meta[2], meta[4]
if (meta[3] or '0') ~= definition then return {-3, 0, 0, 0, false, false, false, '0'} end
local learned = redis.call('HGET', KEYS[7], 'u')
local stored = redis.call('GET', KEYS[5])
if stored then
  local stored_p, stored_h
  stored, stored_p, stored_h = chosen_with(stored)
  local head = string.sub(stored, 1, string.find(stored, '|', 1, true) - 1)
  local ranked = false
  if string.sub(head, 1, 1) == '~' then
    ranked = string.sub(head, 2, string.find(head, ';', 1, true) - 1)
    head = string.match(ranked, '^[^,]+')
  end
  return {tonumber(head), (rollout == head) and 1 or 0, 1, 0, learned, ranked, stored_p, stored_h}
end
local v = ARGV[1]
local kind = ARGV[2]
if sticky and unit ~= '' then
  local held, held_p, held_h = redis.call('GET', KEYS[9]), false, '0'
  if held then held, held_p, held_h = chosen_with(held) end
  local in_service = held and not string.find(meta[5] or '', ',' .. held .. ',', 1, true)
  if in_service then
    if eligible == '' or string.find(eligible, ',' .. held .. ',', 1, true) then
      v = held
      kind = 'sticky'
      -- Assigned before propensities were stored: the unit gets it for certain now.
      propensity, holdout = held_p or '1', held_h
    end
  elseif not rollout then
    local clock = redis.call('TIME')
    local now = tonumber(clock[1]) + tonumber(clock[2]) / 1e6
    redis.call('SET', KEYS[9], v .. '\n' .. propensity .. ' ' .. holdout, 'EX', sticky)
    redis.call('ZADD', KEYS[10], string.format('%.6f', now + tonumber(sticky)), unit)
    if redis.call('ZCARD', KEYS[10]) > most_units then
      redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', string.format('%.6f', now))
      local unit_key_prefix = string.sub(KEYS[9], 1, #KEYS[9] - #unit)
      while redis.call('ZCARD', KEYS[10]) > most_units do
        local oldest = redis.call('ZPOPMIN', KEYS[10])
        redis.call('DEL', unit_key_prefix .. oldest[1])
      end
    end
  end
end
if rollout then v = rollout; kind = 'rollout'; propensity, holdout = '1', 'g' end
if ranking ~= '' then ranking = to_front(ranking, v) end
redis.call('HINCRBY', KEYS[2], 'n', 1)
redis.call('HINCRBY', KEYS[2], 'p:' .. v, 1)
redis.call('HINCRBY', KEYS[2], kind, 1)
redis.call('HSET', KEYS[2], 'lp', ARGV[3])
-- A trail bucket is born with a variant's first decision in it: its expiry is set then.
local first_in_bucket = redis.call('HINCRBY', KEYS[6], v, 1) == 1
local n_keys = tonumber(ARGV[7])
local context_keys, markers = {}, {}
for i = 1, n_keys do
  context_keys[i] = ARGV[7 + i]
  markers[2 * i - 1] = v .. '|' .. ARGV[7 + i]
  markers[2 * i] = 1
end
if n_keys > 0 then redis.call('HSET', KEYS[6], unpack(markers)) end
if first_in_bucket then redis.call('EXPIRE', KEYS[6], ARGV[5]) end
local max_features = tonumber(ARGV[6])
local overflow = 0
local features = {}
local names = {}
for i = 8 + n_keys, #ARGV, 2 do names[#names + 1] = ARGV[i] end
local indexes = #names > 0 and redis.call('HMGET', KEYS[3], unpack(names)) or {}
for f = 1, #names do
  local index = indexes[f]
  if not index then
    local size = redis.call('HLEN', KEYS[3])
    if size < max_features then
      index = size + 1
      redis.call('HSET', KEYS[3], names[f], index)
    else
      redis.call('HINCRBY', KEYS[2], 'overflow', 1)
      overflow = overflow + 1
    end
  end
  if index then
    redis.call('HINCRBY', KEYS[4], 'p:' .. v .. ':' .. index, 1)
    features[#features + 1] = index .. ':' .. ARGV[8 + n_keys + 2 * f - 1]
  end
end
local stored_keys = n_keys > 0 and cjson.encode(context_keys) or ''
local ttl = tonumber(ARGV[4])
-- The request id is what the context key holds after the Test's tag and ':c:' (meta's key is
-- the tag and ':meta').
local request_id = string.sub(KEYS[5], #KEYS[1] - 1)
if window and ranking == '' then
  local clock = redis.call('TIME')
  local closes = tonumber(clock[1]) + tonumber(clock[2]) / 1e6 + tonumber(window)
  redis.call('ZADD', KEYS[8], string.format('%.6f', closes), v .. '|' .. request_id)
  ttl = ttl + tonumber(window)
end
local decided = ranking ~= '' and ('~' .. ranking .. ';') or v
redis.call('SET', KEYS[5], decided .. '|' .. table.concat(features, ',') .. '|' .. stored_keys ..
  '\n' .. propensity .. ' ' .. holdout, 'EX', ttl)
if backlog > 0 then
  redis.call('XADD', KEYS[11], 'MAXLEN', '~', backlog, '*', 'k', 'd', 'r', request_id, 'v', v,
    'p', propensity, 'h', holdout, 'g', rollout and '1' or '0', 'c', context_json, 'l', learning,
    'rk', ranking)
end
return {tonumber(v), rollout and 1 or 0, 0, overflow, learned, ranking ~= '' and ranking,
  propensity, holdout}
