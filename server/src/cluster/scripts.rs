//! The Lua scripts that make every change to the cluster's shared state atomic.
//!
//! Why scripts: a join must claim its nickname *and* append its notice to the stream in
//! one step, or two nodes could both announce the same name, or a node could announce a
//! name it no longer owns. Redis runs a script with nothing interleaved, so each script
//! is one indivisible event of the cluster (the model Centrifugo's Redis engine uses for
//! its history and presence updates).
//!
//! Keys (all under one hash tag, `{chat}`, so they would share a slot on a Redis Cluster):
//! - `{chat}:stream`: the chat's stream, one entry per event, trimmed with `MAXLEN ~`;
//! - `{chat}:nicks`: hash, folded nickname -> id of the node that owns it;
//! - `{chat}:skels`: hash, lookalike skeleton -> folded nickname of its holder
//!   (NICK-LOOK-1 cluster-wide);
//! - `{chat}:users:<node>`: hash, folded nickname -> nickname as spelled, per node;
//! - `{chat}:lease:<node>`: the node's lease (expires unless renewed);
//! - `{chat}:nodes`: set of node ids that may still own users;
//! - `{chat}:node-ids`: counter; a node id is never reused, so it is also the fencing
//!   token: a node whose lease expired can never act again under that id.

/// Key prefix.
pub const PREFIX: &str = "{chat}";

/// Registers a node and snapshots the cluster at one stream position.
/// KEYS: stream, nicks, nodes, node-ids. ARGV: prefix, lease ms.
/// Returns `{node, last stream id, nick, nick, ...}` (every member, as spelled).
pub const REGISTER: &str = r"
local node = tostring(redis.call('INCR', KEYS[4]))
redis.call('SET', ARGV[1] .. ':lease:' .. node, '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[3], node)
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local id = '0-0'
if #last > 0 then id = last[1][1] end
local out = {node, id}
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local nick = redis.call('HGET', ARGV[1] .. ':users:' .. all[i + 1], all[i])
  if nick then out[#out + 1] = nick end
end
return out
";

/// One event proposed by a node for one of its users.
/// KEYS: stream, nicks, this node's users, this node's lease, skeletons.
/// ARGV: op (j, r, l, c, n notice, m), node, stream length, folded nick, nick, arg, arg, arg,
/// the nick's lookalike skeleton, the new name's skeleton (rename).
/// Returns the new entry's id when done; 0 nickname taken, -1 fenced (the lease is gone),
/// -2 not the owner, -4 the recipient of a `/msg` is gone.
pub const PROPOSE: &str = r"
if redis.call('EXISTS', KEYS[4]) == 0 then return -1 end
local op, node, len, key, nick = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local function add(...)
  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', len, '*', ...)
end
local skel = ARGV[9]
local function lookalike(s)
  local holder = redis.call('HGET', KEYS[5], s)
  return holder and holder ~= key
end
local function free_skel()
  if redis.call('HGET', KEYS[5], skel) == key then redis.call('HDEL', KEYS[5], skel) end
end
if op == 'j' then
  if lookalike(skel) then return 0 end
  if redis.call('HSETNX', KEYS[2], key, node) == 0 then return 0 end
  redis.call('HSET', KEYS[3], key, nick)
  redis.call('HSET', KEYS[5], skel, key)
  return add('t', 'j', 'a', nick, 'o', node)
end
if redis.call('HGET', KEYS[2], key) ~= node then return -2 end
if op == 'r' then
  local newkey, new = ARGV[6], ARGV[7]
  if newkey ~= key and redis.call('HEXISTS', KEYS[2], newkey) == 1 then return 0 end
  if lookalike(ARGV[10]) then return 0 end
  redis.call('HDEL', KEYS[2], key)
  redis.call('HDEL', KEYS[3], key)
  free_skel()
  redis.call('HSET', KEYS[2], newkey, node)
  redis.call('HSET', KEYS[3], newkey, new)
  redis.call('HSET', KEYS[5], ARGV[10], newkey)
  return add('t', 'r', 'a', nick, 'b', new, 'o', node)
elseif op == 'l' then
  redis.call('HDEL', KEYS[2], key)
  redis.call('HDEL', KEYS[3], key)
  free_skel()
  return add('t', 'l', 'a', nick, 'o', node)
elseif op == 'c' then
  return add('t', 'c', 'a', nick, 'x', ARGV[7], 'o', node)
elseif op == 'n' then
  return add('t', 'n', 'a', nick, 'x', ARGV[7], 'o', node)
elseif op == 'm' then
  if redis.call('HEXISTS', KEYS[2], ARGV[8]) == 0 then return -4 end
  return add('t', 'm', 'a', nick, 'b', ARGV[6], 'x', ARGV[7], 'o', node)
end
return -3
";

/// Reaps every node whose lease has expired: each of its users leaves once, in the
/// order of their folded nicknames, and its names are freed. Whichever node runs this
/// first does the work; for the others the dead node no longer exists.
/// KEYS: stream, nicks, nodes, skeletons. ARGV: prefix, stream length. Returns users
/// reaped. Their lookalike skeletons are freed by one pass over the skeletons (a node
/// dies rarely).
pub const REAP: &str = r"
local reaped = 0
local gone = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if redis.call('EXISTS', ARGV[1] .. ':lease:' .. node) == 0 then
    local users = ARGV[1] .. ':users:' .. node
    local all = redis.call('HGETALL', users)
    local keys = {}
    for i = 1, #all, 2 do keys[#keys + 1] = all[i] end
    table.sort(keys)
    for _, key in ipairs(keys) do
      if redis.call('HGET', KEYS[2], key) == node then
        redis.call('HDEL', KEYS[2], key)
        local nick = redis.call('HGET', users, key)
        redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 't', 'l', 'a', nick)
        gone[key] = true
        reaped = reaped + 1
      end
    end
    redis.call('DEL', users)
    redis.call('SREM', KEYS[3], node)
  end
end
if reaped > 0 then
  local skels = redis.call('HGETALL', KEYS[4])
  for i = 1, #skels, 2 do
    if gone[skels[i + 1]] then redis.call('HDEL', KEYS[4], skels[i]) end
  end
end
return reaped
";
