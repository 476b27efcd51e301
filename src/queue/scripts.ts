/**
 * The Lua scripts of src/queue/store.ts. Each runs atomically in Redis, in one round trip.
 *
 * COMMIT  KEYS: core, members, agents (current rollout), groups set, notices stream,
 *               agents of the previous rollout, channel.
 *         ARGV: expected version, new version, core JSON, group, new-rollout flag (0/1),
 *               TTL of the previous rollout's agents, TTL of the current ones (0: none),
 *               #member sets, #member deletes, #agent sets, #notices, then the data in that
 *               order, then the message to publish. Returns {1, version} or {0, stored version}.
 *         HSET/HDEL go in chunks of 500 (Lua's unpack has a stack limit).
 *         Sets the core version (`cv`) to the new version too.
 * MEMBERS KEYS: core, members, channel.
 *         ARGV: expected core version, #members n, then n triples (uid, expected stored JSON or
 *               '' for absent, new JSON or '' to delete), then the message's text before and
 *               after its version. Writes only if (1) the last write was made by this code,
 *               i.e. `version` == max(`cv`, `mv`): a replica on older code commits in full
 *               without setting `cv`, so after its write `cv` no longer tells whether the
 *               core changed; (2) the core version is still the expected one; (3) every named
 *               member is stored as expected. Bumps `version`, sets `mv` to it (not `cv`) and
 *               publishes. Returns {1, version, cv, 0} or {0, stored version, stored cv,
 *               full}: full = 1 when (1) failed (the caller must commit in full).
 * LOAD    KEYS: core, members. Returns {version, core, members (flat), agents (flat), cv} or
 *         nil (cv: the version itself when the last write did not record it, see MEMBERS).
 * REMOVE  KEYS: core, members, groups set, channel. ARGV: TTL, group, message.
 */
/** Approximate number of notices kept in the stream. */
export const NOTICES_MAX_LEN = 100_000;

export const COMMIT_LUA = `
local v = redis.call('HGET', KEYS[1], 'version') or '0'
if v ~= ARGV[1] then return {0, tonumber(v)} end
local i = 12
local function chunks(n, per, fn)
  local done = 0
  while done < n do
    local m = math.min(500, n - done)
    local args = {}
    for _ = 1, m * per do args[#args + 1] = ARGV[i]; i = i + 1 end
    fn(args)
    done = done + m
  end
end
if ARGV[5] == '1' then
  redis.call('DEL', KEYS[3])
  if KEYS[6] ~= KEYS[3] then redis.call('EXPIRE', KEYS[6], ARGV[6]) end
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'cv', ARGV[2], 'state', ARGV[3], 'agentsKey', KEYS[3])
redis.call('SADD', KEYS[4], ARGV[4])
chunks(tonumber(ARGV[8]), 2, function(a) redis.call('HSET', KEYS[2], unpack(a)) end)
chunks(tonumber(ARGV[9]), 1, function(a) redis.call('HDEL', KEYS[2], unpack(a)) end)
chunks(tonumber(ARGV[10]), 2, function(a) redis.call('HSET', KEYS[3], unpack(a)) end)
if ARGV[7] ~= '0' then redis.call('EXPIRE', KEYS[3], ARGV[7]) end
for _ = 1, tonumber(ARGV[11]) do
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ${NOTICES_MAX_LEN}, '*', 'group', ARGV[4], 'notice', ARGV[i])
  i = i + 1
end
redis.call('PUBLISH', KEYS[7], ARGV[i])
return {1, tonumber(ARGV[2])}
`;

export const MEMBERS_LUA = `
local cur = redis.call('HMGET', KEYS[1], 'version', 'cv', 'mv')
if not cur[1] then return {0, 0, 0, 0} end
local v = tonumber(cur[1])
local cv = tonumber(cur[2] or '0')
if math.max(cv, tonumber(cur[3] or '0')) ~= v then return {0, v, cv, 1} end
if cur[2] ~= ARGV[1] then return {0, v, cv, 0} end
local n = tonumber(ARGV[2])
local sets, dels = {}, {}
for base = 0, n - 1, 500 do
  local m = math.min(500, n - base)
  local fields = {}
  for j = 1, m do fields[j] = ARGV[3 + (base + j - 1) * 3] end
  local got = redis.call('HMGET', KEYS[2], unpack(fields))
  for j = 1, m do
    local at = 3 + (base + j - 1) * 3
    if (got[j] or '') ~= ARGV[at + 1] then return {0, v, cv, 0} end
    if ARGV[at + 2] == '' then dels[#dels + 1] = ARGV[at]
    else sets[#sets + 1] = ARGV[at]; sets[#sets + 1] = ARGV[at + 2] end
  end
end
for i = 1, #sets, 1000 do
  redis.call('HSET', KEYS[2], unpack(sets, i, math.min(i + 999, #sets)))
end
for i = 1, #dels, 500 do
  redis.call('HDEL', KEYS[2], unpack(dels, i, math.min(i + 499, #dels)))
end
v = v + 1
redis.call('HSET', KEYS[1], 'version', v, 'mv', v)
redis.call('PUBLISH', KEYS[3], ARGV[3 + n * 3] .. v .. ARGV[4 + n * 3])
return {1, v, cv, 0}
`;

export const LOAD_LUA = `
local core = redis.call('HMGET', KEYS[1], 'version', 'state', 'agentsKey', 'cv', 'mv')
if not core[1] then return false end
local agents = {}
if core[3] and core[3] ~= '' then agents = redis.call('HGETALL', core[3]) end
local cv = core[4] or core[1]
if math.max(tonumber(cv), tonumber(core[5] or '0')) ~= tonumber(core[1]) then cv = core[1] end
return {core[1], core[2], redis.call('HGETALL', KEYS[2]), agents, cv}
`;

export const REMOVE_LUA = `
local key = redis.call('HGET', KEYS[1], 'agentsKey')
if key and key ~= '' then redis.call('EXPIRE', key, ARGV[1]) end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[2])
redis.call('PUBLISH', KEYS[4], ARGV[3])
return 1
`;
