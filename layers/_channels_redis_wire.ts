/**
 * The wire format of channels_redis 4's `RedisChannelLayer` (`channels_redis/core.py`), as far
 * as a Django process reads or writes it, so that both share one Redis:
 *
 * - A group is the sorted set `<prefix>:group:<group>`: members are channel names, scored by
 *   the time (seconds, a float) they were added; the set expires after `group_expiry`.
 * - A channel's queue is the sorted set `<prefix><non-local name>` (no separator): for a
 *   process-specific channel `specific.<client prefix>!<local id>` that is the process inbox
 *   `asgispecific.<client prefix>!`, shared by every channel of the process. Members are
 *   messages, scored by the time they were sent; the set expires after `expiry`, and entries
 *   older than `expiry` are removed before each send.
 * - A message is 12 random bytes (members of a sorted set must be unique) followed by the
 *   msgpack of the event with `__asgi_channel__`: the full channel name for a send, the list
 *   of the process's member channels for a group send.
 * - Names follow Channels' `BaseChannelLayer` rules: ASCII, shorter than 100 characters.
 */
import { decode, encode } from "@std/msgpack";
import { Buffer } from "node:buffer";
import type { LayerEvent } from "./layer.ts";

/** The key inside a message that names the channel(s) it is for. */
export const CHANNEL_KEY = "__asgi_channel__";

/** Length of the random prefix of every message (`serialize` in core.py). */
export const RANDOM_PREFIX_BYTES = 12;

/** Names must be shorter than this (`MAX_NAME_LENGTH` in channels/layers.py). */
const MAX_NAME_LENGTH = 100;
// Python's `\d` also matches non-ASCII digits and `$` a trailing newline: we keep to ASCII.
const GROUP_NAME = /^[a-zA-Z0-9\-_.]+$/;
const CHANNEL_NAME = /^[a-zA-Z0-9\-_.]+(![a-zA-Z0-9\-_.]*)?$/;

/** Throws a `TypeError` unless `name` is a valid Channels group name. */
export function validateChannelsGroupName(name: string): void {
  if (!isValidName(name, GROUP_NAME)) throw new TypeError(invalidName("Group", name));
}

/** Throws a `TypeError` unless `name` is a valid Channels channel name. */
export function validateChannelName(name: string): void {
  if (!isValidName(name, CHANNEL_NAME)) throw new TypeError(invalidName("Channel", name));
}

function isValidName(name: string, pattern: RegExp): boolean {
  return typeof name === "string" && name.length < MAX_NAME_LENGTH && pattern.test(name);
}

// Channels' own `invalid_name_error`, with the name quoted.
function invalidName(kind: string, name: unknown): string {
  return `${kind} name must be a valid unicode string with length < ${MAX_NAME_LENGTH} ` +
    `containing only ASCII alphanumerics, hyphens, underscores, or periods, not ` +
    JSON.stringify(name);
}

/** The sorted set of a group's channels (`_group_key`). */
export function groupKey(prefix: string, group: string): string {
  return `${prefix}:group:${group}`;
}

/** The part of a channel name up to and including `!`; the whole name if it has none. */
export function nonLocalName(channel: string): string {
  const bang = channel.indexOf("!");
  return bang < 0 ? channel : channel.slice(0, bang + 1);
}

/** The sorted set that queues a channel's messages: the prefix, then its non-local name. */
export function channelKey(prefix: string, channel: string): string {
  return prefix + nonLocalName(channel);
}

/**
 * The queues that a group send writes to, each with the channels its message names
 * (`_map_channel_keys_to_connection`): one message per process, not one per member.
 */
export function channelsByKey(prefix: string, channels: string[]): Map<string, string[]> {
  const byKey = new Map<string, string[]>();
  for (const channel of channels) {
    const key = channelKey(prefix, channel);
    const sharing = byKey.get(key);
    if (sharing) sharing.push(channel);
    else byKey.set(key, [channel]);
  }
  return byKey;
}

/** A process's client prefix: a random hex string, as `uuid.uuid4().hex` makes. */
export function newClientPrefix(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

/** A channel of the process with `clientPrefix`, shaped as core.py's `new_channel`. */
export function newChannelName(clientPrefix: string): string {
  return `specific.${clientPrefix}!${crypto.randomUUID().replaceAll("-", "")}`;
}

/**
 * A message as core.py's `serialize` makes it: 12 random bytes, then the msgpack of the event
 * with `__asgi_channel__` added last (not for a general channel, one without `!`).
 */
export function serializeMessage(event: LayerEvent, channels?: string | string[]): Buffer {
  const fields = toWire(event) as Record<string, unknown>;
  const body = encode(channels === undefined ? fields : { ...fields, [CHANNEL_KEY]: channels });
  const message = Buffer.allocUnsafe(RANDOM_PREFIX_BYTES + body.length);
  crypto.getRandomValues(message.subarray(0, RANDOM_PREFIX_BYTES));
  message.set(body, RANDOM_PREFIX_BYTES);
  return message;
}

/**
 * Reads a message as core.py's `deserialize` does: the event without `__asgi_channel__`, and
 * the channel names it is for. `null` when it is not msgpack of a map with a string `type`.
 */
export function deserializeMessage(
  message: Uint8Array,
): { event: LayerEvent; channels: string[]; groupSend: boolean } | { problem: string } {
  const payload = message.subarray(RANDOM_PREFIX_BYTES);
  if (isFernetToken(payload)) {
    return {
      problem: "encrypted by channels_redis' symmetric_encryption_keys, which this server does " +
        "not read (a Django sender with them cannot reach this server's channels)",
    };
  }
  let value: unknown;
  try {
    value = fromWire(decode(payload));
  } catch (error) {
    // Said as the decoder says it: a map keyed by bytes, say, which Python packs and JSON has not.
    return { problem: `msgpack this layer cannot read (${(error as Error).message})` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { problem: "not a msgpack map" };
  }
  const { [CHANNEL_KEY]: target, ...event } = value as Record<string, unknown>;
  if (typeof event.type !== "string") return { problem: 'an event without a string "type"' };
  const channels = (Array.isArray(target) ? target : [target]).filter((channel) =>
    typeof channel === "string"
  );
  // A group send names its channels in a list, a send to one channel names it alone (core.py).
  return { event: event as LayerEvent, channels, groupSend: Array.isArray(target) };
}

// A Fernet token (what channels_redis' `symmetric_encryption_keys` make of a message) is
// URL-safe base64 of a version byte 0x80 and a 64-bit time whose top bytes are zero for ages:
// it starts "gAAAAA". A msgpack map never does ("g" would be a fixstr's middle).
const FERNET_START = new TextEncoder().encode("gAAAAA");

function isFernetToken(payload: Uint8Array): boolean {
  return payload.length > FERNET_START.length &&
    FERNET_START.every((byte, i) => payload[i] === byte);
}

/**
 * The event as msgpack should see it: what `JSON.stringify` would keep (no `undefined`,
 * `toJSON` applied), and integers outside 32 bits as 64-bit integers, as Python packs them,
 * instead of the floats the std encoder would write.
 */
function toWire(value: unknown): unknown {
  if (typeof value === "number") {
    const wide = Number.isSafeInteger(value) && (value >= 2 ** 32 || value < -(2 ** 31));
    return wide ? BigInt(value) : value;
  }
  if (value === null || typeof value !== "object") {
    return typeof value === "function" || typeof value === "symbol" ? undefined : value;
  }
  if (value instanceof Uint8Array) return value;
  const toJSON = (value as { toJSON?: () => unknown }).toJSON;
  if (typeof toJSON === "function") return toWire(toJSON.call(value));
  if (Array.isArray(value)) return value.map((item) => toWire(item) ?? null);
  const result: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const wire = toWire(item);
    if (wire !== undefined) result[key] = wire;
  }
  return result;
}

/** 64-bit integers from Python become numbers, so every event stays JSON-serialisable. */
function fromWire(value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  // A copy of its own, a plain `Uint8Array`: decoded, bytes are a view into the whole Redis
  // reply (a Node `Buffer`), other channels' events included.
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = fromWire(value[i]);
    return value;
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) record[key] = fromWire(record[key]);
  return record;
}

/** What bounds an inbox: channels_redis' `capacity` and `expiry` (seconds). */
export interface InboxLimits {
  capacity: number;
  expiry: number;
}

/** The `EVAL` of {@linkcode SEND_SCRIPT}: one message into one queue at `now` (seconds). */
export function sendCommand(
  key: string,
  message: Buffer,
  limits: InboxLimits,
  now: number,
): (string | Buffer)[] {
  const { capacity, expiry } = limits;
  const oldest = String(Math.floor(now) - expiry); // `int(time.time()) - int(self.expiry)`
  return [
    "EVAL",
    SEND_SCRIPT,
    "1",
    key,
    message,
    String(capacity),
    String(now),
    String(expiry),
    oldest,
  ];
}

/** The `EVAL` of {@linkcode GROUP_SEND_SCRIPT}: `messages[i]` into `keys[i]`, at `now`. */
export function groupSendCommand(
  keys: string[],
  messages: Buffer[],
  limits: InboxLimits,
  now: number,
): (string | Buffer)[] {
  const { capacity, expiry } = limits;
  const oldest = String(Math.floor(now) - expiry);
  const capacities = keys.map(() => String(capacity));
  return ["EVAL", GROUP_SEND_SCRIPT, String(keys.length), ...keys, ...messages, ...capacities]
    .concat([String(now), String(expiry), oldest]);
}

/**
 * core.py's `send`, in one round trip: drop messages older than the expiry, refuse when the
 * queue holds `capacity` messages (Django raises `ChannelFull`), else add and renew the expiry.
 * KEYS: the queue. ARGV: message, capacity, now, expiry, oldest score kept. Returns 1 if added.
 */
export const SEND_SCRIPT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[5])
if redis.call('ZCOUNT', KEYS[1], '-inf', '+inf') >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1`;

/**
 * core.py's `group_send` Lua script with its expiry clean-up folded in: for each queue, drop
 * messages older than the expiry, then add its message unless it is at capacity.
 * KEYS: queues. ARGV: one message per queue, one capacity per queue, now, expiry, oldest score
 * kept. Returns one flag per queue: 1 added, 0 over capacity.
 */
export const GROUP_SEND_SCRIPT = `
local n = #KEYS
local current_time = ARGV[2 * n + 1]
local expiry = ARGV[2 * n + 2]
local oldest = ARGV[2 * n + 3]
local added = {}
for i = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, oldest)
  if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + n]) then
    redis.call('ZADD', KEYS[i], current_time, ARGV[i])
    redis.call('EXPIRE', KEYS[i], expiry)
    added[i] = 1
  else
    added[i] = 0
  end
end
return added`;
