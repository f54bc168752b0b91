-- wrk script for Scout's serving benchmark (and its baseline, which answers the same paths).
-- Arguments after `--`: mode (decide | reward | mixed | spread), Test id (for spread: a file of
-- Test ids, one per line, each decision for one of them at random), share of decisions that get a
-- reward in the mixed flow (0..1), the most requests each wrk thread may send, and optionally a
-- pace: the mean pause in ms a connection takes before each request (random, exponential), so
-- that the connections together offer a fixed rate instead of as many requests as answered.
-- Contexts have four keys, drawn from a small fixed population like real traffic.

local devices = { "mobile", "desktop", "tablet" }
local countries = { "de", "fr", "us", "uk", "es", "it" }
local plans = { "free", "pro" }

local mode, test_id, share, limit, pace
local spread_ids = nil
local sent, served = 0, 0
local pending = {}
local headers = { ["Content-Type"] = "application/json" }

math.randomseed(os.time())

function setup(thread)
  thread:set("thread_tag", string.format("%d%06d", os.time() % 100000, math.random(1, 999999)))
end

function init(args)
  mode = args[1]
  test_id = args[2]
  share = tonumber(args[3])
  limit = tonumber(args[4])
  pace = tonumber(args[5] or "0")
  math.randomseed(tonumber(thread_tag))
  if mode == "spread" then
    spread_ids = {}
    for line in io.lines(test_id) do
      if line ~= "" then table.insert(spread_ids, line) end
    end
  end
end

local function context(n)
  return string.format(
    '{"device":"%s","country":"%s","plan":"%s","visits":%d}',
    devices[n % 3 + 1], countries[n % 6 + 1], plans[n % 2 + 1], n % 17
  )
end

local function decide()
  local test = test_id
  if spread_ids then test = spread_ids[math.random(1, #spread_ids)] end
  local body = string.format(
    '{"cb_model_id":"%s","request_id":"%s-%d","context":%s}',
    test, thread_tag, sent, context(sent)
  )
  return wrk.format("POST", "/api/fetch_recommended_variant", headers, body)
end

local function reward(request_id, variant, inline)
  local entry
  if inline then
    entry = string.format(
      '{"request_id":"%s","variant_id":%d,"reward":%d,"context":%s}',
      request_id, variant, math.random(0, 1), context(sent)
    )
  else
    entry = string.format(
      '{"request_id":"%s","variant_id":%d,"reward":%d}', request_id, variant, math.random(0, 1)
    )
  end
  local body = '{"updates":[' .. entry .. ']}'
  return wrk.format("POST", "/api/update_model/" .. test_id, headers, body)
end

function request()
  sent = sent + 1
  if sent > limit then
    wrk.thread:stop()
  end
  if mode == "reward" then
    return reward(string.format("%s-r%d", thread_tag, sent), sent % 3, true)
  end
  if mode == "mixed" and #pending > 0 then
    local next_reward = table.remove(pending)
    return reward(next_reward[1], next_reward[2], false)
  end
  return decide()
end

if true then
  function response(status, _, body)
    if mode ~= "mixed" or status ~= 200 then
      return
    end
    local request_id = string.match(body, '"request_id":"([^"]+)"')
    local variant = string.match(body, '"variant_id":(%d+)')
    if request_id and variant and string.find(body, "variant_label", 1, true) then
      if math.random() < share then
        table.insert(pending, { request_id, tonumber(variant) })
      end
    end
  end
end

function delay()
  if pace > 0 then
    return -math.log(1 - math.random()) * pace
  end
  return 0
end

function done(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean
  ))
end
