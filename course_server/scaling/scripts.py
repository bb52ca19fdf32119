"""Lesson 07: where a shared room lives in Redis, and the Lua scripts that change it.

Each room ``R`` is a handful of keys (``course:room:R:…``)::

    seq     string   the last id handed out in R (ids are 1, 2, 3, … per room, for every process)
    log     stream   the last COURSE_HISTORY_SIZE events, entry id ``0-N`` for event N, field ``e``
    users   zset     who is in R: member = username, score = the id of its join (so: join order)
    owners  hash     username → the process that holds its WebSocket
    sent    hash     (username, client_msg_id) → id: resends are acked, not repeated
    sentq   list     the same keys, oldest first, so ``sent`` stays bounded

and the channel ``course:room:R`` carries each event as it happens (pub/sub). Every process also
has ``course:procs`` (zset: process → when its heartbeat expires, in Redis' own clock) and
``course:proc:P:rooms`` (hash: room → how many of its users P holds there).

Why scripts: Redis runs a script whole, with no other command in between. "Take the next id, keep
the event in the log, publish it" is one step, so every process sees the events in id order, and
no two processes can hand out the same id or both let the same username in.
"""

from __future__ import annotations

import dataclasses

PREFIX = "course:"
PROCS = PREFIX + "procs"


@dataclasses.dataclass(frozen=True)
class RoomKeys:
    """The keys and the channel of one room (see the module docstring)."""

    room: str
    seq: str
    log: str
    users: str
    owners: str
    sent: str
    sentq: str
    channel: str

    @classmethod
    def of(cls, room: str) -> RoomKeys:
        base = f"{PREFIX}room:{room}"
        parts = ("seq", "log", "users", "owners", "sent", "sentq")
        seq, log, users, owners, sent, sentq = (f"{base}:{part}" for part in parts)
        return cls(room, seq, log, users, owners, sent, sentq, channel=base)


def proc_rooms(process: str) -> str:
    """The key of ``process``'s rooms hash."""
    return f"{PREFIX}proc:{process}:rooms"


# Shared by every script below (Redis 6.2 has no function libraries: the text is prepended).
PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Is this process's heartbeat still running?
local function alive(process, now)
  local expires = redis.call('ZSCORE', KEYS[5], process)
  return expires ~= false and tonumber(expires) > now
end

-- Give the event the room's next id (never below `floor`, the highest id the calling process
-- has seen: so ids keep increasing even after Redis lost its data), keep it, publish it.
local function record(body, history, channel, floor)
  local id = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(floor)) + 1
  redis.call('SET', KEYS[1], id)
  local event = '{"id":' .. id .. ',' .. string.sub(body, 2)
  redis.call('XADD', KEYS[2], 'MAXLEN', history, '0-' .. id, 'e', event)
  redis.call('PUBLISH', channel, event)
  return id, event
end

-- `username` leaves: its leave event, and an emptied room is freed (its id counter stays a while,
-- so ids there never go back).
local function drop(username, body, history, channel, floor, idle)
  redis.call('HDEL', KEYS[4], username)
  redis.call('ZREM', KEYS[3], username)
  local id = record(body, history, channel, floor)
  if redis.call('ZCARD', KEYS[3]) == 0 then
    redis.call('DEL', KEYS[2], KEYS[7], KEYS[8])
    redis.call('EXPIRE', KEYS[1], idle)
  end
  return id
end
"""

# KEYS seq log users owners procs proc_rooms sent sentq
# ARGV room username process join_body leave_body history channel floor idle mode
#   mode: "" (history), an id N (resume after N) or "rejoin" (re-register a connected user).
# → {0} taken; {2} still ours (rejoin); {1, id, complete, oldest, event…, join_event}
JOIN = (
    PRELUDE
    + """
local room, username, process = ARGV[1], ARGV[2], ARGV[3]
local history, channel, floor, idle, mode = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local now = now_ms()
local owner = redis.call('HGET', KEYS[4], username)
if owner == process and mode == 'rejoin' then return {2} end
if owner then
  if owner ~= process and alive(owner, now) then return {0} end
  -- Its process died without a goodbye: that user leaves now, before the newcomer joins.
  drop(username, ARGV[5], history, channel, floor, idle)
end
local last = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(floor))
local held = {}
if mode ~= 'rejoin' then held = redis.call('XRANGE', KEYS[2], '-', '+') end
local complete, oldest, first = 1, -1, 1
if #held > 0 then oldest = tonumber(string.sub(held[1][1], 3)) end
if mode ~= '' and mode ~= 'rejoin' then
  local after = tonumber(mode)
  if after > last then
    complete = 0  -- an id this room never gave out (Redis lost its data?): send all we hold
  else
    if after < last - #held then complete = 0 end
    first = math.max(1, #held - (last - after) + 1)
  end
end
local id, event = record(ARGV[4], history, channel, floor)
redis.call('ZADD', KEYS[3], id, username)
redis.call('HSET', KEYS[4], username, process)
redis.call('HINCRBY', KEYS[6], room, 1)
local reply = {1, id, complete, oldest}
for i = first, #held do reply[#reply + 1] = held[i][2][2] end
reply[#reply + 1] = event
return reply
"""
)

# KEYS seq log users owners procs proc_rooms sent sentq
# ARGV room username process leave_body history channel floor idle join_id ("" = any)
# → the leave event's id, or 0 if that membership is gone already (left, reaped, taken over)
LEAVE = (
    PRELUDE
    + """
if redis.call('HGET', KEYS[4], ARGV[2]) ~= ARGV[3] then return 0 end
local joined = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[2]))
if ARGV[9] ~= '' and joined ~= tonumber(ARGV[9]) then return 0 end
if redis.call('HINCRBY', KEYS[6], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[6], ARGV[1]) end
return drop(ARGV[2], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
"""
)

# KEYS seq log users owners procs proc_rooms sent sentq
# ARGV body history channel floor sent_key sent_limit username process
# → {1, id} recorded; {0, id} a resend of the message that got `id`; {-1} not this process's user
POST = (
    PRELUDE
    + """
if redis.call('HGET', KEYS[4], ARGV[7]) ~= ARGV[8] then return {-1} end
local key = ARGV[5]
if key ~= '' then
  local prior = redis.call('HGET', KEYS[7], key)
  if prior then return {0, tonumber(prior)} end
end
local id = record(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if key ~= '' then
  redis.call('HSET', KEYS[7], key, id)
  if redis.call('RPUSH', KEYS[8], key) > tonumber(ARGV[6]) then
    redis.call('HDEL', KEYS[7], redis.call('LPOP', KEYS[8]))
  end
end
return {1, id}
"""
)

# KEYS seq log users owners procs → the users whose process is alive, in join order
ROSTER = (
    PRELUDE
    + """
local now = now_ms()
local live = {}
for _, username in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  local owner = redis.call('HGET', KEYS[4], username)
  if owner and alive(owner, now) then live[#live + 1] = username end
end
return live
"""
)

# KEYS procs ARGV process ttl_ms
# → {1 if the process was not registered (new, reaped, or Redis lost its data), expired…}
HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local reply = {added}
for _, process in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  reply[#reply + 1] = process
end
return reply
"""

# KEYS procs proc_rooms ARGV process → 1 if forgotten (it is expired and holds nobody)
FORGET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
if expires and tonumber(expires) > now then return 0 end
if redis.call('HLEN', KEYS[2]) > 0 then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"""

# KEYS procs proc_rooms ARGV process: a clean exit. Forgotten now if it holds nobody; otherwise
# its heartbeat is expired at once, so another process reaps what it could not say goodbye for.
RETIRE = """
if redis.call('HLEN', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
redis.call('ZADD', KEYS[1], 0, ARGV[1])
return 0
"""


def room_keys(keys: RoomKeys, process: str) -> list[str]:
    """The KEYS of JOIN, LEAVE, POST and ROSTER, in their order."""
    return [
        keys.seq,
        keys.log,
        keys.users,
        keys.owners,
        PROCS,
        proc_rooms(process),
        keys.sent,
        keys.sentq,
    ]


# Many commands, one script call ----------------------------------------------------------------
#
# At a high rate, one script call per command costs the sender's process a packed command and a
# parsed reply each, and every process one pub/sub message per event to parse. ``BATCH`` runs a
# batch of JOIN, LEAVE and POST calls (``Scripts.batch``) as one script: each the very text above,
# in order, so ids and order are what the same calls one by one would give. Its events are
# published once per room at the end, one event per line (JSON never holds a raw newline), so a
# receiving process reads one pub/sub message per room and batch.

_PUBLISH = "redis.call('PUBLISH', channel, event)"
assert PRELUDE.count(_PUBLISH) == 1, "BATCH collects the PRELUDE's one PUBLISH"
_BATCHED_PRELUDE = PRELUDE.replace(_PUBLISH, "publish(channel, event)")


def _command(name: str, script: str) -> str:
    """``script`` as a Lua function of its own KEYS and ARGV (the PRELUDE's helpers use them)."""
    return (
        f"local function {name}(KEYS, ARGV)\n{_BATCHED_PRELUDE}{script.removeprefix(PRELUDE)}end\n"
    )


# KEYS the calls' KEYS, each distinct list once (the calls on one room share theirs)
# ARGV n, then for each call: its script's name, where its KEYS start, how many, how many ARGV,
#      those ARGV
# → one reply per call: its script's, or an error reply for that call alone
BATCH = (
    """
local channels, events = {}, {}
local function publish(channel, event)
  local queued = events[channel]
  if not queued then
    queued = {}
    events[channel] = queued
    channels[#channels + 1] = channel
  end
  queued[#queued + 1] = event
end
"""
    + _command("JOIN", JOIN)
    + _command("LEAVE", LEAVE)
    + _command("POST", POST)
    + """
local run = {JOIN = JOIN, LEAVE = LEAVE, POST = POST}
local replies, arg = {}, 2
for i = 1, tonumber(ARGV[1]) do
  local name, key = ARGV[arg], tonumber(ARGV[arg + 1])
  local nkeys, nargs = tonumber(ARGV[arg + 2]), tonumber(ARGV[arg + 3])
  local keys = {unpack(KEYS, key, key + nkeys - 1)}
  local args = {unpack(ARGV, arg + 4, arg + 3 + nargs)}
  arg = arg + 4 + nargs
  local ok, reply = pcall(run[name], keys, args)
  if ok then
    replies[i] = reply
  elseif type(reply) == 'table' and reply.err then
    replies[i] = reply  -- what redis.call raised
  else
    replies[i] = redis.error_reply(tostring(reply))
  end
end
for _, channel in ipairs(channels) do
  redis.call('PUBLISH', channel, table.concat(events[channel], '\\n'))
end
return replies
"""
)
