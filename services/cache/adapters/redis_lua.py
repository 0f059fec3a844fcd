"""The key layout of the Redis cache store and the Lua scripts that change it atomically.

Keys (`oc` is `OUTRIGGER_CACHE_KEY_PREFIX`; the braces are literal Redis Cluster hash tags, so
all of a namespace's keys share one slot, and a lock's two keys share another):

    oc:{ns}:k:<key>     hash  v (value bytes), ct (content type), ver (version), tags ("\\n"-
                              joined), cr (created, ms since the epoch), swr (stale window ms);
                              PEXPIRE = ttl + swr: the entry is fresh while PTTL > swr, then
                              stale until it expires, so there is no second copy to keep
    oc:{ns}:t:<tag>     zset  the keys carrying the tag, scored by when each entry expires (ms);
                              every tagged write first drops members already expired, and the
                              set expires with its last member (PEXPIREAT the top score), so it
                              only ever holds live entries plus those expired since its last
                              write; invalidation deletes it
    oc:{ns}:l:<key>     str   fill lease "<granted µs>:<token>", PX lease_ms; any write,
                              delete or invalidation of the key deletes it
    oc:{ns}:i:<tag>     str   when the tag was last invalidated (µs), PX 60 s (the longest
                              lease): a fill whose lease is older than this mark is refused
    oc:namespaces       set   namespaces that held a tagged entry or a lease (for invalidating
                              a tag everywhere); namespaces are few, so it is never trimmed
    oc:lock:{resource}  str   the holder's token, PX ttl_ms
    oc:fence:{resource} hash  issued (last fence), released (fence of the last clean release);
                              no expiry: forgetting it could hand out a lower fence again

Time comes from Redis (`TIME`), so clocks of service replicas never matter. Numbers above 10^14
are formatted with `%.0f`, as Lua would otherwise print them in exponent notation.
"""

from __future__ import annotations

PRELUDE = r"""
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function int(n) return string.format('%.0f', n) end
local function split(s)
  local out = {}
  for part in string.gmatch(s or '', '[^\n]+') do out[#out + 1] = part end
  return out
end
local function read(k)
  local h = redis.call('HMGET', k, 'v', 'ct', 'ver', 'tags', 'cr', 'swr')
  if not h[1] then return false end
  h[7] = redis.call('PTTL', k)
  return h
end
local function fresh_version(k)
  local h = redis.call('HMGET', k, 'ver', 'swr')
  if h[1] and redis.call('PTTL', k) > tonumber(h[2]) then return h[1] end
  return false
end
local function drop(p, key)
  redis.call('DEL', p .. 'l:' .. key)
  local k = p .. 'k:' .. key
  local tags = redis.call('HGET', k, 'tags')
  if not tags then return 0 end
  for _, tag in ipairs(split(tags)) do redis.call('ZREM', p .. 't:' .. tag, key) end
  return redis.call('DEL', k)
end
local function store(p, key, value, ct, ver, tags, ttl, swr, now)
  drop(p, key)
  local k = p .. 'k:' .. key
  local life = tonumber(ttl) + tonumber(swr)
  redis.call('HSET', k, 'v', value, 'ct', ct, 'ver', ver, 'tags', tags, 'cr', int(now), 'swr', swr)
  redis.call('PEXPIRE', k, life)
  for _, tag in ipairs(split(tags)) do
    local index = p .. 't:' .. tag
    redis.call('ZREMRANGEBYSCORE', index, '-inf', int(now))
    redis.call('ZADD', index, int(now + life), key)
    redis.call('PEXPIREAT', index, redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')[2])
  end
end
"""

READ = r"""
local rows = {}
for i, k in ipairs(KEYS) do rows[i] = read(k) or 0 end
return rows
"""

# KEYS entry, lease, namespaces
# ARGV prefix, ns, key, value, ct, ver, tags, ttl, swr, cond ('' | match | absent), expected
PUT = r"""
if ARGV[10] ~= '' then
  local current = fresh_version(KEYS[1])
  if (ARGV[10] == 'match' and current ~= ARGV[11]) or (ARGV[10] == 'absent' and current) then
    return {'precondition', current or ''}
  end
end
local now = math.floor(now_us() / 1000)
store(ARGV[1], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], now)
if ARGV[7] ~= '' then redis.call('SADD', KEYS[3], ARGV[2]) end
return {'ok', int(now)}
"""

# KEYS entries…, namespaces; ARGV prefix, ns, then per write: key, value, ct, ver, tags, ttl, swr
MSET = r"""
local now, tagged = math.floor(now_us() / 1000), false
for i = 3, #ARGV, 7 do
  store(ARGV[1], ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5], ARGV[i+6], now)
  tagged = tagged or ARGV[i+4] ~= ''
end
if tagged then redis.call('SADD', KEYS[#KEYS], ARGV[2]) end
return int(now)
"""

# KEYS entry, lease; ARGV prefix, key, expected version ('' = unconditional)
DELETE = r"""
if ARGV[3] ~= '' then
  local current = fresh_version(KEYS[1])
  if current ~= ARGV[3] then return {'precondition', current or ''} end
end
return {'ok', drop(ARGV[1], ARGV[2])}
"""

# KEYS the entries; ARGV prefix, their keys
DROP_KEYS = r"""
local removed = 0
for i = 2, #ARGV do removed = removed + drop(ARGV[1], ARGV[i]) end
return removed
"""

# KEYS the tags' index sets; ARGV prefix, mark ttl ms, tags…
INVALIDATE_TAGS = r"""
local now_u = now_us()
local now, removed = math.floor(now_u / 1000), 0
for i = 3, #ARGV do
  local index = ARGV[1] .. 't:' .. ARGV[i]
  for _, key in ipairs(redis.call('ZRANGEBYSCORE', index, '(' .. int(now), '+inf')) do
    removed = removed + drop(ARGV[1], key)
  end
  redis.call('DEL', index)
  redis.call('SET', ARGV[1] .. 'i:' .. ARGV[i], int(now_u), 'PX', ARGV[2])
end
return removed
"""

# KEYS entry, lease, namespaces; ARGV token, lease ms, ns
LEASE = r"""
local row = read(KEYS[1])
if row and row[7] > tonumber(row[6]) then return {'hit', row} end
if redis.call('SET', KEYS[2], int(now_us()) .. ':' .. ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('SADD', KEYS[3], ARGV[3])
  return {'lease', row or 0}
end
return {'wait', row or 0, redis.call('PTTL', KEYS[2])}
"""

# KEYS entry, lease, namespaces; ARGV prefix, ns, key, value, ct, ver, tags, ttl, swr, token
FILL = r"""
local held = redis.call('GET', KEYS[2])
local sep = held and string.find(held, ':', 1, true)
if not sep or string.sub(held, sep + 1) ~= ARGV[10] then return {'nolease'} end
local granted = tonumber(string.sub(held, 1, sep - 1))
for _, tag in ipairs(split(ARGV[7])) do
  local mark = redis.call('GET', ARGV[1] .. 'i:' .. tag)
  if mark and tonumber(mark) >= granted then
    redis.call('DEL', KEYS[2])
    return {'invalidated', tag}
  end
end
local now = math.floor(now_us() / 1000)
store(ARGV[1], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], now)
if ARGV[7] ~= '' then redis.call('SADD', KEYS[3], ARGV[2]) end
return {'ok', int(now)}
"""

# KEYS lock, fences; ARGV token, ttl ms
ACQUIRE = r"""
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {'held', redis.call('PTTL', KEYS[1])}
end
local f = redis.call('HMGET', KEYS[2], 'issued', 'released')
local fence = math.max((tonumber(f[1]) or 0) + 1, now_us())
redis.call('HSET', KEYS[2], 'issued', int(fence))
return {'ok', int(fence), (f[1] and f[1] ~= f[2]) and 1 or 0}
"""

# KEYS lock, fences; ARGV token, ttl ms
RENEW = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('HGET', KEYS[2], 'issued')
"""

# KEYS lock, fences; ARGV token
RELEASE = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'released', redis.call('HGET', KEYS[2], 'issued'))
return 1
"""
