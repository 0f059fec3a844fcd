"""The key layout of Redis history and presence, and the Lua scripts that change them atomically.

Keys (`on` is `OUTRIGGER_NOTIFICATIONS_KEY_PREFIX`; the braces are a literal Redis Cluster hash
tag, so every key of a deployment lives in one slot: one hub is one slot):

    {on}:last              str   the last history id given, in any channel ("<ms>-<seq>")
    {on}:epoch             str   the first id given by this data set: a position before it is
                                 from a Redis that lost its data (restarted without persistence)
    {on}:forgotten         str   the last id of the channels `trim()` forgot (their every message
                                 aged out, so their stream and marks were deleted): a position
                                 before it may have lost messages in any channel
    {on}:channels          set   the channels that hold history (streams that are not empty)
    {on}:dropped           hash  channel -> the highest id trimmed from its stream
    {on}:s:<channel>       stream  fields e (event), d (data, JSON text), k (key, when given),
                                 each entry added with its history id
    {on}:k:<channel>|<key> str   the id `key` got in `channel`, PX the de-duplication window
                                 (`|` appears in no channel name, so no two pairs share a key)
    {on}:presence:<replica> hash subscription -> open connections, PEXPIRE the report's TTL
    {on}:replicas          set   replicas that reported; one whose hash expired is removed
                                 when counts are summed
    {on}:fanout            pub/sub channel: one message per publish, every message it stored

Why the marks (`dropped`, `forgotten`, `epoch`) rather than XINFO's `max-deleted-entry-id`:
Redis 7 raises that only on XDEL, not when XADD MAXLEN or XTRIM trims. So the scripts trim
exactly and note what they dropped: publish trims a channel back to `max_length` once it holds
`max_length + slack` messages, reading the id of the last entry it drops (amortized, one entry
copied per publish); `trim()` finds the newest entry older than the age cutoff, then XTRIM
MINID exactly, so "none older than max_age" holds as the port says.

Every key a script touches is passed in KEYS, except the presence hashes `COUNTS` reads by the
names in `{on}:replicas`: they share the hash tag, so on a cluster they live on the same node.

Time comes from Redis (`TIME`), so the clocks of the replicas never matter. Numbers are
formatted with `%.0f`: Lua would print large ones in exponent notation.
"""

from __future__ import annotations

PRELUDE = r"""
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function int(n) return string.format('%.0f', n) end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)%-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function below(a, b)
  local a_ms, a_seq = parse(a)
  local b_ms, b_seq = parse(b)
  return a_ms < b_ms or (a_ms == b_ms and a_seq < b_seq)
end
"""

PUBLISH = r"""
-- KEYS: last, epoch, registry, dropped, then per channel its stream (and its dedupe key when
--   the draft has a key)
-- ARGV: max_length, slack, dedupe_ms, fanout, event, data, key ('' for none), channels...
-- Returns per channel: id, 1 when it was a duplicate (0 otherwise).
local max_length, slack, dedupe_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local event, data, key = ARGV[5], ARGV[6], ARGV[7]
local per = key == '' and 1 or 2
local last = redis.call('GET', KEYS[1])
local ms, seq
if last then ms, seq = parse(last) else ms, seq = -1, 0 end
local now = now_ms()
local function candidate()
  if now > ms then return now, 0 end
  return ms, seq + 1
end
local out, stored, first = {}, {}, nil
for i = 8, #ARGV do
  local channel = ARGV[i]
  local stream = KEYS[5 + (i - 8) * per]
  local c_ms, c_seq = candidate()
  local id = int(c_ms) .. '-' .. int(c_seq)
  local seen = false
  if per == 2 then
    seen = redis.call('SET', KEYS[6 + (i - 8) * 2], id, 'NX', 'PX', dedupe_ms, 'GET')
  end
  if seen then
    out[#out + 1] = seen
    out[#out + 1] = 1
  else
    ms, seq = c_ms, c_seq
    first = first or id
    if per == 2 then
      redis.call('XADD', stream, id, 'e', event, 'd', data, 'k', key)
    else
      redis.call('XADD', stream, id, 'e', event, 'd', data)
    end
    redis.call('SADD', KEYS[3], channel)
    local length = redis.call('XLEN', stream)
    if length > max_length + slack then
      local cut = redis.call('XRANGE', stream, '-', '+', 'COUNT', length - max_length)
      redis.call('XTRIM', stream, 'MAXLEN', max_length)
      redis.call('HSET', KEYS[4], channel, cut[#cut][1])
    end
    stored[#stored + 1] = id .. ' ' .. channel
    out[#out + 1] = id
    out[#out + 1] = 0
  end
end
if first then
  redis.call('SET', KEYS[1], int(ms) .. '-' .. int(seq))
  if not last then redis.call('SET', KEYS[2], first) end
  redis.call('PUBLISH', ARGV[4], event .. '\n' .. key .. '\n' .. table.concat(stored, ' ')
    .. '\n' .. data)
end
return out
"""

LOST = r"""
-- KEYS: epoch, forgotten, registry, dropped, last, then each channel's stream
-- ARGV: the channels
-- Returns: epoch, forgotten, then per channel the highest id it dropped ('' for none each).
-- A channel still registered whose stream is gone (evicted, deleted by hand) dropped
-- everything up to the last id given.
local out = {redis.call('GET', KEYS[1]) or '', redis.call('GET', KEYS[2]) or ''}
local last = redis.call('GET', KEYS[5]) or ''
for i, channel in ipairs(ARGV) do
  local mark = redis.call('HGET', KEYS[4], channel)
  if not mark and redis.call('EXISTS', KEYS[5 + i]) == 0
      and redis.call('SISMEMBER', KEYS[3], channel) == 1 then
    mark = last
  end
  out[#out + 1] = mark or ''
end
return out
"""

TRIM = r"""
-- KEYS: forgotten, registry, dropped, last, then each channel's stream
-- ARGV: max_age_ms, the channels
-- Drops the entries older than now - max_age_ms; forgets a channel left empty (or whose stream
-- is gone), raising `forgotten` to its last id. Returns how many channels it forgot.
local cutoff = now_ms() - tonumber(ARGV[1])
local cutoff_id = int(cutoff) .. '-0'
local forgotten = redis.call('GET', KEYS[1])
local function forget(channel, stream, id)
  redis.call('DEL', stream)
  redis.call('SREM', KEYS[2], channel)
  redis.call('HDEL', KEYS[3], channel)
  if id and (not forgotten or below(forgotten, id)) then
    forgotten = id
    redis.call('SET', KEYS[1], id)
  end
end
local forgot = 0
for i = 2, #ARGV do
  local channel, stream = ARGV[i], KEYS[3 + i]
  if redis.call('SISMEMBER', KEYS[2], channel) == 0 then
    -- another replica's trim forgot it since the scan listed it
  elseif redis.call('EXISTS', stream) == 0 then
    forget(channel, stream, redis.call('GET', KEYS[4]))
    forgot = forgot + 1
  elseif cutoff > 0 then
    local old = redis.call('XREVRANGE', stream, '(' .. cutoff_id, '-', 'COUNT', 1)
    if #old > 0 then
      redis.call('XTRIM', stream, 'MINID', cutoff_id)
      if redis.call('XLEN', stream) == 0 then
        forget(channel, stream, old[1][1])
        forgot = forgot + 1
      else
        redis.call('HSET', KEYS[3], channel, old[1][1])
      end
    end
  end
end
return forgot
"""

COUNTS = r"""
-- KEYS: replicas; ARGV: the prefix of a replica's hash key
-- Returns subscription, summed count, ... over the replicas whose report has not expired.
local summed, order = {}, {}
for _, replica in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local fields = redis.call('HGETALL', ARGV[1] .. replica)
  if #fields == 0 then
    redis.call('SREM', KEYS[1], replica)
  end
  for i = 1, #fields, 2 do
    local subscription = fields[i]
    if not summed[subscription] then
      summed[subscription] = 0
      order[#order + 1] = subscription
    end
    summed[subscription] = summed[subscription] + tonumber(fields[i + 1])
  end
end
local out = {}
for _, subscription in ipairs(order) do
  out[#out + 1] = subscription
  out[#out + 1] = int(summed[subscription])
end
return out
"""
