/**
 * The Lua scripts of the Redis streams (`redis.ts`): a publish and a read, each one `EVALSHA`
 * on the group's keys, KEYS[1] its record (a hash) and KEYS[2] its stream; a publish that keeps
 * a foreign event once adds KEYS[3]. Their arguments are the ones `RedisStreams` passes, in
 * order: 1 an epoch for a group that has none, 2 the event's JSON without its opening brace,
 * 3 the channel to publish on (or none), 4 and 5 the retention in messages and milliseconds,
 * 6 the `MAXLEN ~` cap, 7 `PUBLISH` or `SPUBLISH`, 8 the opening of what is published,
 * 9 this process's witness channel, 10 "1" to check the master, 11 how long the group's keys
 * outlive this publish (ms, the idle expiry), 12 how long a kept foreign event is remembered
 * (ms); a read's are 1 the epoch, then "since", an offset, a count and a
 * page in bytes (0 or none: no page), or "latest" and a count.
 */

import { EMPTY_STREAM_KEPT_MS } from "./contract.ts";
import { AFTER_CHANGE_LUA, REMEMBERED_LUA } from "./_master_changes.ts";

// The record of a group read but never published to expires (`EMPTY_STREAM_KEPT_MS` from its
// last read); each publish gives the record and the stream the idle expiry (ARGV[11]) again, so
// a room left for that long leaves nothing, and its next publish or read takes a new epoch. It
// never shortens a longer life another process gave them (`deno task send` run without the
// servers' HISTORY_IDLE_DAYS); a key without one (written before 0.16) gets it.

// Both scripts start here: one HMGET reads the group's record (`meta`: epoch, offset, the
// oldest retained entry's offset and time, the master and the master changes it remembers); a
// group without one (new, or lost by Redis) gets the epoch ARGV[1] and an empty stream, and
// no master or change: no earlier epoch's reader may go on in it, its events are gone.
const ENSURE_EPOCH = REMEMBERED_LUA + `
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'offset', 'first', 'firstTime', 'master',
  'previous', 'base', 'changes')
local epoch = meta[1]
if not epoch then
  epoch = ARGV[1]
  meta = {epoch, '0', false, false, false, false, false, false}
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
  redis.call('HDEL', KEYS[1], 'master', 'previous', 'base', 'changes')
end
`;

// A foreign event (`keepForeign`: KEYS[3] says it is kept, for ARGV[12] ms, how long its copies
// may keep coming) is kept once: a copy that finds it kept gets the kept event back, and nothing
// else runs.
const KEPT_ALREADY = `
if KEYS[3] then
  local kept = redis.call('GET', KEYS[3])
  if kept then return {-1, kept} end
end
`;

// A publish first checks that the stream was last written on this master: after a failover,
// what the old master took in its last moments is lost, and the new master would give those
// offsets again; so would a Redis restarted from a snapshot older than its last writes. The
// master's replication id changes when a replica is promoted (or a master restarts, whatever
// it loaded), so a record written under another id takes a new epoch
// (ARGV[1]); offsets and events stay. The record keeps the epoch it left and the offset it had
// then, with those of the last changes before (`_master_changes.ts`): a reader of such an epoch
// at or before that offset, and every later change's, saw only what this master has, and goes
// on with no loss; one past it may have seen what was lost, and is told.
// The publish's answer ends with a `signal` only on the rare path (none: nothing more to
// read): 'new-epoch' when this publish gave the stream a new epoch after a master change, so
// that it is logged once per change; 'no-info' when the user may not run INFO (an ACL without
// @dangerous, set after `RedisStreams.open` checked): the publish goes on without the check,
// and the process says so.
const ENSURE_MASTER = `
local info = ARGV[10] == '1' and redis.pcall('INFO', 'replication')
local signal
if type(info) == 'string' then
  local master = string.match(info, 'master_replid:(%x+)')
  if meta[5] ~= master then
    if meta[5] then
      redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'master', master, 'previous', epoch,
        'base', meta[2], 'changes', afterChange(meta, epoch))
      epoch = ARGV[1]
      signal = 'new-epoch'
    else
      redis.call('HSET', KEYS[1], 'master', master)
    end
  end
elseif info then
  signal = 'no-info'
end
`;

/**
 * Whether this connection's user may run `INFO replication` from a script, as the publish
 * does: '' when it may, else Redis's refusal.
 */
export const INFO_ALLOWED = `local info = redis.pcall('INFO', 'replication')
if type(info) == 'table' then return info.err or 'refused' end
return ''
`;

// Retention drops the oldest entries, so the record keeps the oldest one's offset and time
// (`first`, `firstTime`): a publish that may drop nothing reads no entry, and one that drops
// an entry reads the next. No entry older than `first` is left (MAXLEN and XDEL only remove
// the oldest), so when `first` is stale (the MAXLEN cap trimmed past it, or a script of an
// older version dropped it) its XDEL is a no-op and the read after it finds the real oldest.
// A record without `first` (written by an older script, or once the stream was emptied)
// reads it from the stream once.
export const PUBLISH = KEPT_ALREADY + ENSURE_EPOCH + AFTER_CHANGE_LUA + ENSURE_MASTER +
  `local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local json = '{"offset":' .. offset .. ',"epoch":"' .. epoch .. '",' .. ARGV[2]
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '0-' .. offset, 't', now, 'e', json)
for i = 1, 2 do
  -- The first publish replaces the day a read gave the record (EMPTY_STREAM_KEPT_MS), longer
  -- or not.
  if offset == 1 or redis.call('PTTL', KEYS[i]) < tonumber(ARGV[11]) then
    redis.call('PEXPIRE', KEYS[i], ARGV[11])
  end
end
local first, firstTime = tonumber(meta[3]), tonumber(meta[4])
if not first and offset == 1 then
  first, firstTime = offset, now
elseif not first then
  local entry = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
  first, firstTime = tonumber(string.sub(entry[1], 3)), tonumber(entry[2][2])
end
local changed = first ~= tonumber(meta[3])
local keepFrom = offset - tonumber(ARGV[4]) + 1
local oldest = now - tonumber(ARGV[5])
for _ = 1, 2 do
  if first >= keepFrom or firstTime > oldest then break end
  redis.call('XDEL', KEYS[2], '0-' .. first)
  local entry = redis.call('XRANGE', KEYS[2], '(0-' .. first, '+', 'COUNT', 1)[1]
  changed = true
  if not entry then
    first = nil
    break
  end
  first, firstTime = tonumber(string.sub(entry[1], 3)), tonumber(entry[2][2])
end
if changed and first then
  redis.call('HSET', KEYS[1], 'first', first, 'firstTime', firstTime)
elseif changed then
  redis.call('HDEL', KEYS[1], 'first', 'firstTime')
end
if KEYS[3] then
  redis.call('SET', KEYS[3], json, 'PX', ARGV[12])
  return {offset, json, signal}
end
local receivers = 0
if ARGV[3] ~= '' then
  local others = 1
  if ARGV[9] ~= '' then
    local counts = redis.call('PUBSUB', 'NUMSUB', ARGV[3], ARGV[9])
    if counts[4] > 0 then
      receivers = counts[2]
      others = receivers - 1
    end
  end
  if others > 0 then
    receivers = redis.call(ARGV[7], ARGV[3], ARGV[8] .. string.sub(json, 2))
  end
end
return {offset, epoch, receivers, signal}
`;

export const READ = ENSURE_EPOCH + `local offset = tonumber(meta[2])
if offset == 0 then redis.call('PEXPIRE', KEYS[1], ${EMPTY_STREAM_KEPT_MS}) end
local entries = {}
if ARGV[3] == '0' and ARGV[2] == 'latest' then
  entries = {}
elseif ARGV[2] == 'latest' then
  entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[3])
else
  -- With a page (ARGV[5], bytes of JSON): the entries up to it, and at least one, read 64 at a
  -- time, so that a reader far behind is not handed its whole backlog at each page.
  local page = tonumber(ARGV[5]) or 0
  local after, left, size, full = ARGV[3], tonumber(ARGV[4]), 0, false
  while left > 0 and not full do
    local count = left
    if page > 0 and count > 64 then count = 64 end
    local batch = redis.call('XRANGE', KEYS[2], '(0-' .. after, '+', 'COUNT', count)
    for _, entry in ipairs(batch) do
      local length = #entry[2][4]
      if page > 0 and #entries > 0 and size + length > page then
        full = true
        break
      end
      entries[#entries + 1] = entry
      size = size + length
    end
    if #batch < count then break end
    left = left - #batch
    after = string.sub(batch[#batch][1], 3)
  end
end
local out = {epoch, offset, remembered(meta)}
for _, entry in ipairs(entries) do out[#out + 1] = entry[2][4] end
return out
`;
