/**
 * Where a group's stream lies in Redis. Keys: `<prefix>:stream:<group>` (the stream; each
 * entry `t` = Redis time in ms, `e` = the event's JSON) and `<prefix>:stream-meta:<group>` (a
 * hash: `epoch`, `offset`, and `first`, `firstTime`: the oldest retained entry's offset and
 * time, read from the stream when missing; `master`, and the master changes it remembers in
 * `previous`, `base` and `changes`, see `_master_changes.ts`). A Redis that lost them (restarted
 * empty, evicted) gives the group a new epoch at its next publish or read.
 *
 * On a Cluster both keys carry the group's layer channel as their hash tag,
 * `{<prefix>:group:<group>}:stream` and `…:stream-meta`, so they live in the channel's slot and
 * the script publishes with `SPUBLISH` (sharded pub/sub, as the layer subscribes there).
 */
import { groupChannel } from "../redis_wire.ts";

/** The group's two keys, meta first: on a Cluster in the slot of its layer channel. */
export function streamKeys(prefix: string, cluster: boolean, group: string): [string, string] {
  if (!cluster) return [`${prefix}:stream-meta:${group}`, `${prefix}:stream:${group}`];
  const tag = `{${groupChannel(prefix, group)}}`;
  return [`${tag}:stream-meta`, `${tag}:stream`];
}

/** The key that says a foreign event (`id`) is kept, in the group's slot on a Cluster. */
export function keptEventKey(prefix: string, cluster: boolean, group: string, id: string): string {
  if (!cluster) return `${prefix}:stream-kept:${group}:${id}`;
  return `{${groupChannel(prefix, group)}}:kept:${id}`;
}
