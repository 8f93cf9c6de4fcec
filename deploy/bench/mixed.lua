-- wrk script of the mixed load test (deploy/bench/mixed.sh runs it; see docs/BENCHMARKS.md).
--
-- One wrk process runs one kind of request, so that each kind gets its own latency
-- distribution; mixed.sh runs a reads process and a movements process at the same time.
--
-- Environment:
--   MIX_FILE   lines "token customer_id account_id", one per customer (mixed.sh writes it)
--   MIX_KIND   "reads": GET /v1/ledger/accounts/{account_id}
--              "moves": POST /v1/customers/{id}/deposits (two in three) or /withdrawals
--                       (one in three), each with its own Idempotency-Key
--   MIX_RATE   requests per second this process aims at (0: as fast as it can)
--   MIX_OUT    a directory: each thread writes the entry id of every acknowledged (201)
--              movement to acks-<kind>-<thread>.txt, for the exactly-once check
--   MIX_REPORT a file: done() writes the run's figures there as one JSON line
--
-- Pacing: LuaJIT's FFI reads CLOCK_MONOTONIC; each thread hands out send slots every
-- threads/MIX_RATE seconds to whichever of its connections finishes next (wrk's delay()).
-- A connection whose slot has passed sends at once, so when the server falls behind the
-- run becomes closed-loop and the achieved rate, not the aim, is what the report shows.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } mix_timespec;
int clock_gettime(int clk, mix_timespec *tp);
]]
local ts = ffi.new("mix_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_no", thread_count)
  table.insert(threads, thread)
end

function init(args)
  kind = os.getenv("MIX_KIND") or "reads"
  customers = {}
  for line in io.lines(os.getenv("MIX_FILE")) do
    local token, customer, account = line:match("^(%S+) (%S+) (%S+)$")
    if token then
      customers[#customers + 1] = { auth = "Bearer " .. token, customer = customer, account = account }
    end
  end
  local rate = tonumber(os.getenv("MIX_RATE") or "0")
  local nthreads = tonumber(os.getenv("MIX_THREADS") or "1")
  interval = (rate > 0) and (1000 * nthreads / rate) or 0
  next_slot = now_ms()
  math.randomseed(thread_no * 7919 + (kind == "moves" and 1 or 0))
  seq = 0
  ok, refused, failed = 0, 0, 0
  statuses = {}
  first_errors = {}
  if kind == "moves" then
    acks = assert(io.open(os.getenv("MIX_OUT") .. "/acks-" .. kind .. "-" .. thread_no .. ".txt", "w"))
  end
  run_id = os.getenv("MIX_RUN") or "run"
end

function delay()
  if interval == 0 then
    return 0
  end
  local now = now_ms()
  next_slot = next_slot + interval
  if next_slot < now then
    -- Behind: send now, and do not bank the missed slots as a burst.
    next_slot = now
    return 0
  end
  return next_slot - now
end

function request()
  local c = customers[math.random(#customers)]
  if kind == "reads" then
    return wrk.format("GET", "/v1/ledger/accounts/" .. c.account, { ["Authorization"] = c.auth })
  end
  seq = seq + 1
  local path = (seq % 3 == 0) and "/withdrawals" or "/deposits"
  local body = string.format('{"amount":"%d","currency":"JPY","reference":"mix %d-%d"}', 100 + seq % 900, thread_no, seq)
  return wrk.format("POST", "/v1/customers/" .. c.customer .. path, {
    ["Authorization"] = c.auth,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("mix-%s-%d-%d", run_id, thread_no, seq),
  }, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if (kind == "reads" and status == 200) or (kind == "moves" and status == 201) then
    ok = ok + 1
    if acks then
      local entry = body:match('"entry_id":"([%x%-]+)"')
      acks:write((entry or "MISSING"), "\n")
    end
  else
    failed = failed + 1
    if #first_errors < 3 then
      first_errors[#first_errors + 1] = status .. " " .. body:sub(1, 300)
    end
  end
  -- wrk gives no hook at a thread's end: flush as we go (buffered by the C library).
  if acks and (ok % 200 == 0) then
    acks:flush()
  end
end

function done(summary, latency, requests)
  local ok_total, failed_total = 0, 0
  local errors = {}
  for _, t in ipairs(threads) do
    ok_total = ok_total + (t:get("ok") or 0)
    failed_total = failed_total + (t:get("failed") or 0)
    for _, e in ipairs(t:get("first_errors") or {}) do
      errors[#errors + 1] = e
    end
  end
  local seconds = summary.duration / 1e6
  local report = string.format(
    '{"kind":"%s","requests":%d,"seconds":%.3f,"per_second":%.1f,"ok":%d,"not_ok":%d,' ..
    '"socket_errors":%d,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"p999_ms":%.3f,"max_ms":%.3f}',
    os.getenv("MIX_KIND") or "reads", summary.requests, seconds, summary.requests / seconds, ok_total,
    failed_total,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000)
  print(report)
  for _, e in ipairs(errors) do
    print("  not ok: " .. e)
  end
  local out = os.getenv("MIX_REPORT")
  if out then
    local f = assert(io.open(out, "w"))
    f:write(report, "\n")
    f:close()
  end
end
