/**
 * The Redis wire format of the group layer: channel and key names, and the JSON messages on
 * them. It is public so any program can publish to a group, e.g.
 *
 * ```sh
 * redis-cli PUBLISH 'channels:group:chat.lobby' \
 *   '{"type":"chat.message","message":{"message":"hi","author":"bot"}}'
 * ```
 *
 * On a Redis Cluster the servers listen with sharded pub/sub: use `SPUBLISH` instead.
 *
 * - Group events are published on `<prefix>:group:<group>`. The message is the event itself,
 *   a JSON object with a string `type`. A server adds `"__origin": "<process id>"` so that it
 *   can skip its own messages (it has already delivered them locally); receivers remove that
 *   key before delivery. Keys starting with `__` are reserved.
 * - Events for one channel are published on `<prefix>:process:<process id>`, the process
 *   being the part of the channel name before `!`, as `{"channel": "<name>", "event": {…}}`.
 */
import type { LayerEvent } from "./layer.ts";

/** The reserved key that names the process that published a group event. */
const ORIGIN_KEY = "__origin";

/** The Redis pub/sub channel of a group. */
export function groupChannel(prefix: string, group: string): string {
  return `${prefix}:group:${group}`;
}

/** The Redis pub/sub channel of one process, for events to its channels. */
export function processChannel(prefix: string, processId: string): string {
  return `${prefix}:process:${processId}`;
}

/** The process that created a channel (the part of its name before `!`); made in LocalGroups. */
export { channelProcess } from "./local_groups.ts";

/** Serialises a group event, marking the process that publishes it. */
export function encodeGroupMessage(event: LayerEvent, origin?: string): string {
  return JSON.stringify(origin === undefined ? event : { ...event, [ORIGIN_KEY]: origin });
}

/** Parses a group message; `null` when it is not a JSON object with a string `type`. */
export function decodeGroupMessage(
  text: string,
): { event: LayerEvent; origin: string | null } | null {
  const value = parseObject(text);
  if (value === null || typeof value.type !== "string") return null;
  const origin = typeof value[ORIGIN_KEY] === "string" ? value[ORIGIN_KEY] as string : null;
  delete value[ORIGIN_KEY];
  return { event: value as LayerEvent, origin };
}

/** Serialises an event for one channel. */
export function encodeChannelMessage(channel: string, event: LayerEvent): string {
  return JSON.stringify({ channel, event });
}

/** Parses a channel message; `null` when malformed. */
export function decodeChannelMessage(text: string): { channel: string; event: LayerEvent } | null {
  const value = parseObject(text);
  const event = value?.event as Record<string, unknown> | undefined;
  if (typeof value?.channel !== "string" || typeof event?.type !== "string") return null;
  return { channel: value.channel, event: event as LayerEvent };
}

function parseObject(text: string): Record<string, unknown> | null {
  try {
    const value = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}
