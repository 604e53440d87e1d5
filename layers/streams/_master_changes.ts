/**
 * The master changes a Redis stream remembers (`_redis_stream_scripts.ts` keeps them, `redis.ts`
 * reads them): each change gives the stream a new epoch, and remembers the epoch it left and the
 * offset the stream had then (its base: everything up to it was on the new master). A client
 * whose position is in a remembered epoch goes on in the current one when every change since
 * kept its offset; otherwise it may have seen writes a failover lost, and is told.
 *
 * In the record (a hash): `changes` holds them oldest first, as "epoch base" pairs separated by
 * spaces (an epoch is base-36, never a space); `previous` and `base` repeat the last one: all
 * a record an older version wrote has, and all a process of an older version reads and writes.
 * `changes` counts only while it ends with that pair: a process of an older version that made
 * the last change left `changes` ending in an older one, and the chain is then that change alone
 * (a change in between may be missing, and its base with it).
 */
import type { StreamPosition } from "./contract.ts";

/**
 * How many master changes a stream remembers; the oldest is dropped past it. A client is away
 * across several only when the changes come fast (a failover then a failback, as a rolling
 * upgrade of Redis does: two; a reshard that moves the slot and one back, a flapping master),
 * and its position must still be retained for it to recover at all (1,000 messages or 10
 * minutes by default). Eight covers that with room, and costs each read about 150 bytes of the
 * record; a client across more is told `complete: false`, which is safe.
 */
export const REMEMBERED_MASTER_CHANGES = 8;

/** One master change: the epoch it left, and the stream's offset then. */
export interface MasterChange {
  /** The epoch the stream had before the change. */
  epoch: string;
  /** The stream's last offset then: the new master had everything up to it. */
  base: number;
}

/**
 * Lua for both scripts: `remembered(meta)`, the chain of the record read by `HMGET` (`meta[6]`
 * `previous`, `meta[7]` `base`, `meta[8]` `changes`) as the `changes` string, '' for none.
 */
export const REMEMBERED_LUA = `
local function remembered(meta)
  if not meta[6] or not meta[7] then return '' end
  local last = meta[6] .. ' ' .. meta[7]
  local chain = meta[8]
  if chain == last or (chain and string.sub(chain, -#last - 1) == ' ' .. last) then
    return chain
  end
  return last
end
`;

/**
 * Lua for the publish alone (Sentinels and Clusters are sent each script's text on every call):
 * `afterChange(meta, left)`, `remembered(meta)` with one more change (leaving epoch `left` at
 * the record's offset `meta[2]`), the oldest dropped past the bound.
 */
export const AFTER_CHANGE_LUA = `
local function afterChange(meta, left)
  local words = {}
  for word in string.gmatch(remembered(meta) .. ' ' .. left .. ' ' .. meta[2], '%S+') do
    words[#words + 1] = word
  end
  return table.concat(words, ' ', math.max(1, #words - ${2 * REMEMBERED_MASTER_CHANGES} + 1))
end
`;

/** The chain as the read script answers it (`remembered`): oldest first. */
export function parseMasterChanges(text: string): MasterChange[] {
  const words = text.split(" ").filter((word) => word !== "");
  const changes: MasterChange[] = [];
  for (let i = 0; i + 1 < words.length; i += 2) {
    changes.push({ epoch: words[i], base: Number(words[i + 1]) });
  }
  return changes;
}

/**
 * Whether `position`, in an epoch a remembered change left, goes on in the current epoch: only
 * when its offset is at or before the base of that change and of every change since (a later
 * failover may have lost more than an earlier one kept).
 */
export function goesOnAcross(position: StreamPosition, changes: MasterChange[]): boolean {
  const at = changes.findIndex((change) => change.epoch === position.epoch);
  return at !== -1 && changes.slice(at).every((change) => position.offset <= change.base);
}
