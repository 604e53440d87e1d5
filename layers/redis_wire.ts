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
 *   key before delivery. Keys starting with `__` are reserved. That key comes first (a
 *   stream's publish script puts it there too), so the publisher skips its copy unparsed.
 * - Events for one channel are published on `<prefix>:process:<process id>`, the process
 *   being the part of the channel name before `!`, as `{"channel": "<name>", "event": {…}}`.
 * - A named channel (a worker's queue, e.g. `dice`) is the list `<prefix>:channel:{<name>}`
 *   of JSON events, pushed with `RPUSH` and taken with `BLPOP`; its listeners are the sorted
 *   set `<prefix>:listeners:{<name>}` (process ids scored by when their entry expires, in ms
 *   of the Redis server's clock). The braces keep both in one Cluster hash slot. From outside:
 *
 * ```sh
 * redis-cli RPUSH 'channels:channel:{dice}' \
 *   '{"type":"chat.command","room":"lobby","group":"chat.lobby","command":"roll","args":"2d6"}'
 * ```
 */
import { eventJson } from "./event_json.ts";
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

/** The list that queues a named channel's events. */
export function namedChannelKey(prefix: string, name: string): string {
  return `${prefix}:channel:{${name}}`;
}

/** The sorted set of a named channel's listening processes. */
export function listenersKey(prefix: string, name: string): string {
  return `${prefix}:listeners:{${name}}`;
}

/** Parses an event taken from a named channel's list; `null` when malformed. */
export function decodeNamedMessage(text: string): LayerEvent | null {
  const value = parseObject(text);
  return typeof value?.type === "string" ? value as LayerEvent : null;
}

/** The process that created a channel (the part of its name before `!`); made in LocalGroups. */
export { channelProcess } from "./local_groups.ts";

/**
 * The start of a group message a Redis script builds around an event's JSON (`{` and the
 * event's keys follow): `{` alone, or with the origin key first. First, so that a process can
 * tell its own messages by their opening without parsing them.
 */
export function groupMessageOpening(origin?: string): string {
  return origin === undefined ? "{" : `{"${ORIGIN_KEY}":${JSON.stringify(origin)},`;
}

/** Serialises a group event, marking the process that publishes it (first, as scripts do). */
export function encodeGroupMessage(event: LayerEvent, origin?: string): string {
  // The layer made the event's JSON at its sender (`checkedEventJson`): reused, not made again.
  if (origin === undefined) return eventJson(event);
  let sent = event;
  if (ORIGIN_KEY in event) {
    // It would come after ours and win when parsed: an event's own origin is not sent.
    const { [ORIGIN_KEY]: _own, ...rest } = event;
    sent = rest as LayerEvent;
  }
  return groupMessageOpening(origin) + (sent === event ? eventJson(event) : JSON.stringify(sent))
    .slice(1);
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
