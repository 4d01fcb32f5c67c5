-- wrk script for the tile benchmarks (scripts/bench_tiles.py, scripts/bench_workers.py).
--
--   wrk -t1 -c16 -d10s -s scripts/wrk_tiles.lua http://127.0.0.1:PORT -- PATHS_FILE API_KEY
--
-- PATHS_FILE holds one request path a line (the benchmark's tile list, in its order); every
-- connection takes the next path of the list, round and round, so the run asks for the same
-- tiles as the Python client, only for a fixed time instead of a fixed count. wrk is C and
-- needs a small part of a core, so what the run measures is the server, not the client.
--
-- Answers are checked, not only counted: a fast wrong answer is no result. Each response is
-- sorted into 200 with a body / 204 (an empty tile, valid) / 200 with an empty body / any
-- other status; done() prints one JSON line (prefixed "WRK_RESULT ") that the benchmark parses.

local paths = {}
local requests = {}
local next_index = 1
ok, empty, nocontent, bad = 0, 0, 0, 0  -- globals: done() reads them through thread:get

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "r"), "cannot open the paths file")
  for line in file:lines() do
    if #line > 0 then
      table.insert(paths, line)
    end
  end
  file:close()
  assert(#paths > 0, "the paths file is empty")
  local headers = { ["Accept-Encoding"] = "gzip" }
  if args[2] and #args[2] > 0 then
    headers["X-API-Key"] = args[2]
  end
  -- Built once: request() is called for every request and must cost next to nothing.
  for i, path in ipairs(paths) do
    requests[i] = wrk.format("GET", path, headers)
  end
end

function request()
  local req = requests[next_index]
  next_index = next_index % #requests + 1
  return req
end

function response(status, headers, body)
  if status == 200 then
    if body ~= nil and #body > 0 then
      ok = ok + 1
    else
      empty = empty + 1
    end
  elseif status == 204 then
    nocontent = nocontent + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local totals = { ok = 0, empty = 0, nocontent = 0, bad = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + (thread:get(name) or 0)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "ok": %d, "empty": %d, "nocontent": %d,'
      .. ' "bad_status": %d, "socket_errors": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, totals.ok, totals.empty, totals.nocontent, totals.bad,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50.0), latency:percentile(99.0)
  ))
end
