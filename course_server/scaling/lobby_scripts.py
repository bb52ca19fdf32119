"""Lesson 07: where the shared lobby lives in Redis, and the Lua scripts that change it.

Each lobby room ``R`` is one hash, ``course:lobby:R:seats``: seat → the name its member gave
(``""``: anonymous). A seat is ``process|n``, so whoever reads the hash knows which process
holds each member. ``course:lobby:rooms`` (a set) names the rooms that have seats, for
``GET /lobby/rooms``. Events go out on the channel ``course:lobby:R`` as JSON::

    {"count": N, "names": [...], "joined": seat, "left": [seat, ...]}   presence changed
    {"say": content, "from": seat}                                         a message

A process whose heartbeat (``course:procs``, kept by ``redis_presence``) has expired holds
nobody: each script first drops such seats ("reaps" them) and tells the room they left.
There is no lobby history to keep, so pub/sub alone carries the events.
"""

from __future__ import annotations

from course_server.scaling.scripts import PREFIX, PROCS

LOBBY = PREFIX + "lobby:"
ROOMS = LOBBY + "rooms"


def seats_key(room: str) -> str:
    return f"{LOBBY}{room}:seats"


def channel(room: str) -> str:
    return f"{LOBBY}{room}"


def keys(room: str) -> list[str]:
    """The KEYS of JOIN, LEAVE and SWEEP, in their order."""
    return [seats_key(room), PROCS, ROOMS]


PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Drop the seats held by processes whose heartbeat has expired; return those seats.
local function reap(seats, procs)
  local now, alive, gone = now_ms(), {}, {}
  for _, seat in ipairs(redis.call('HKEYS', seats)) do
    local process = string.match(seat, '^(.*)|')
    if alive[process] == nil then
      local expires = redis.call('ZSCORE', procs, process)
      alive[process] = expires ~= false and tonumber(expires) > now
    end
    if not alive[process] then
      redis.call('HDEL', seats, seat)
      gone[#gone + 1] = seat
    end
  end
  return gone
end

-- Publish the room's presence, with who joined or left.
local function announce(seats, channel, joined, left)
  local names, values = {}, redis.call('HVALS', seats)
  for _, name in ipairs(values) do
    if name ~= '' then names[#names + 1] = name end
  end
  table.sort(names)
  local event = {count = #values, names = names, left = left}
  if joined then event.joined = joined end
  redis.call('PUBLISH', channel, cjson.encode(event))
end

-- An emptied room is forgotten at once: memory follows the members present.
local function freed(seats, rooms, room)
  if redis.call('EXISTS', seats) == 1 then return false end
  redis.call('SREM', rooms, room)
  return true
end
"""

# KEYS seats procs rooms ARGV room channel seat name → 1 (a new seat) or 0 (a new name)
JOIN = (
    PRELUDE
    + """
local gone = reap(KEYS[1], KEYS[2])
local new = redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[1])
announce(KEYS[1], ARGV[2], new == 1 and ARGV[3] or nil, gone)
return new
"""
)

# KEYS seats procs rooms ARGV room channel seat → 1 if the seat was there
LEAVE = (
    PRELUDE
    + """
local gone = reap(KEYS[1], KEYS[2])
local removed = redis.call('HDEL', KEYS[1], ARGV[3])
if removed == 1 then gone[#gone + 1] = ARGV[3] end
if not freed(KEYS[1], KEYS[3], ARGV[1]) and #gone > 0 then
  announce(KEYS[1], ARGV[2], nil, gone)
end
return removed
"""
)

# KEYS seats procs rooms ARGV room channel process (seat name)…: reap the dead; make the
# caller's seats exactly those given (Redis may have lost some: it restarted empty, or reaped the
# caller while it stalled; and a leave may have failed to reach it).
SWEEP = (
    PRELUDE
    + """
local gone = reap(KEYS[1], KEYS[2])
local mine = {}
for i = 4, #ARGV, 2 do mine[ARGV[i]] = true end
for _, seat in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.match(seat, '^(.*)|') == ARGV[3] and not mine[seat] then
    redis.call('HDEL', KEYS[1], seat)
    gone[#gone + 1] = seat
  end
end
local added = 0
for i = 4, #ARGV, 2 do
  added = added + redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
if added > 0 then redis.call('SADD', KEYS[3], ARGV[1]) end
if not freed(KEYS[1], KEYS[3], ARGV[1]) and (added > 0 or #gone > 0) then
  announce(KEYS[1], ARGV[2], nil, gone)
end
return added
"""
)

# KEYS - ARGV channel event
SAY = """
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
"""

# KEYS rooms procs ARGV key-prefix → {room, count, …} for every room with a live seat. (The
# seats' keys are built here, not passed in: fine for one Redis, not for a Redis Cluster.)
COUNTS = (
    PRELUDE
    + """
local reply = {}
for _, room in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local seats = ARGV[1] .. room .. ':seats'
  local gone = reap(seats, KEYS[2])
  if not freed(seats, KEYS[1], room) then
    if #gone > 0 then announce(seats, ARGV[1] .. room, nil, gone) end
    reply[#reply + 1] = room
    reply[#reply + 1] = redis.call('HLEN', seats)
  end
end
return reply
"""
)
