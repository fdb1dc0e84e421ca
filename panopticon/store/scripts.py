"""The Lua scripts of the store's fencing: claiming buckets and dropping retired families.

The write script lives with its wire form in `panopticon.store.writescript`.
"""

# KEYS[1] = owners hash of the slot. ARGV = shard index, generation, bucket ids...
# A bucket is claimed when unowned, owned at an older generation, or already ours.
CLAIM_SCRIPT = """
local shard = ARGV[1]
local gen = tonumber(ARGV[2])
local mine = shard .. ':' .. ARGV[2]
local claimed, refused = {}, {}
for i = 3, #ARGV do
  local b = ARGV[i]
  local cur = redis.call('HGET', KEYS[1], b)
  local ok = not cur
  if cur then
    local s, g = string.match(cur, '^(%d+):(%d+)$')
    g = tonumber(g)
    ok = (g == nil) or (g < gen) or (g == gen and s == shard)
  end
  if ok then
    redis.call('HSET', KEYS[1], b, mine)
    claimed[#claimed + 1] = b
  else
    refused[#refused + 1] = b
  end
end
return {claimed, refused}
"""

# KEYS[1] = the retired hash. ARGV = family, the time it was retired as read.
# Removes the family only if it is still retired since that time: registered again
# meanwhile (gone from the hash) or retired again (a newer time), it stays as it is.
DROP_RETIRED_SCRIPT = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""
