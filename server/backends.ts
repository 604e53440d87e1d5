/**
 * The one place that reads which layer the configuration names (`LAYER`) and opens what
 * follows from it: the group layer, the presence tracker that reaches as far as the layer,
 * and the store.
 *
 * - `memory` (default): one process; nothing leaves it. State in a Deno KV file.
 * - `broadcast`: BroadcastChannel between the Workers of one process (`--workers N`) or the
 *   isolates of Deno Deploy, with Deno KV for membership, presence and state.
 * - `redis`: Redis between processes and machines (`REDIS_URL`, `REDIS_PREFIX`); state goes to
 *   the same Redis, because a Deno KV file is local to one machine.
 * - `channels_redis`: as `redis`, but groups in channels_redis 4's format (prefix `asgi`), so
 *   a Django Channels project on the same Redis shares them.
 *
 * @example
 * ```ts
 * const backends = await openBackends(loadConfig(Deno.args, Deno.env.toObject()));
 * const services = createServices(config, backends);
 * // ... serve an app over `services`, then:
 * await backends.close();
 * ```
 */
import type { Config } from "./config.ts";
import type { GroupLayer, LayerEvent } from "../layers/layer.ts";
import type { PresenceTracker } from "../layers/presence/contract.ts";
import type { Store } from "../storage/store.ts";
import { InMemoryLayer } from "../layers/in_memory.ts";
import { createLocalPresence } from "../layers/presence/memory.ts";
import { DenoKvStore } from "../storage/deno_kv_store.ts";
import { kvPath } from "../storage/kv_path.ts";

/** The opened layer, presence tracker and store of one server. */
export interface Backends {
  /** The group layer the configuration names. */
  readonly layer: GroupLayer;
  /** Who is online, shared as far as the layer reaches. */
  readonly presence: PresenceTracker;
  /** Durable state: users, sessions, login throttle, chat history. */
  readonly store: Store;
  /** Stops presence, then closes the layer and the store; safe to call twice. */
  close(): Promise<void>;
}

/** Opens the backends the configuration names; rejects with a clear message when it cannot. */
export async function openBackends(config: Config): Promise<Backends> {
  const opened: { close(): unknown }[] = [];
  const open = async <T extends { close(): unknown }>(opening: Promise<T>): Promise<T> => {
    const value = await opening;
    opened.push(value);
    return value;
  };
  try {
    const parts = await openParts(config, open);
    let closing: Promise<void> | null = null;
    return {
      ...parts,
      close: () => closing ??= closeInReverse(opened),
    };
  } catch (error) {
    await closeInReverse(opened);
    throw error;
  }
}

type Opener = <T extends { close(): unknown }>(opening: Promise<T>) => Promise<T>;

async function openParts(config: Config, open: Opener): Promise<Omit<Backends, "close">> {
  const graceMs = config.presenceGraceMs;
  switch (config.layer) {
    case "memory": {
      const store = await open(DenoKvStore.open(await kvPath(config)));
      const layer = await open(Promise.resolve(new InMemoryLayer()));
      const presence = await open(Promise.resolve(createLocalPresence(layer, { graceMs })));
      return { store, layer, presence };
    }
    case "broadcast": {
      // The Workers of one app open the same KV file: that file names the app.
      const path = await kvPath(config);
      const store = await open(DenoKvStore.open(path));
      // Loaded on demand: the default single process never pays for them.
      const { BroadcastLayer } = await import("../layers/broadcast.ts");
      const { createKvPresence } = await import("../layers/presence/kv.ts");
      const prefix = config.redisPrefix;
      const layer = await open(BroadcastLayer.open({ kvPath: path, prefix: `${prefix}@${path}` }));
      const presence = await open(createKvPresence(layer, { graceMs, kvPath: path, prefix }));
      return { store, layer, presence };
    }
    case "redis": {
      const { RedisStore } = await import("../storage/redis_store.ts");
      const { RedisLayer } = await import("../layers/redis.ts");
      const { createRedisPresence } = await import("../layers/presence/redis.ts");
      const redis = { url: config.redisUrl, prefix: config.redisPrefix };
      const store = await open(RedisStore.open(redis));
      const layer = await open(RedisLayer.open(redis));
      const presence = await open(createRedisPresence(layer, { graceMs, ...redis }));
      return { store, layer, presence };
    }
    case "channels_redis": {
      // Groups in channels_redis' own keys (prefix "asgi"), shared with Django Channels.
      const { RedisStore } = await import("../storage/redis_store.ts");
      const { ChannelsRedisLayer } = await import("../layers/channels_redis.ts");
      const { createRedisPresence } = await import("../layers/presence/redis.ts");
      const redis = { url: config.redisUrl, prefix: config.redisPrefix };
      const store = await open(RedisStore.open(redis));
      const layer = await open(ChannelsRedisLayer.open({ url: config.redisUrl }));
      const presence = await open(createRedisPresence(layer, { graceMs, ...redis }));
      return { store, layer, presence };
    }
  }
}

async function closeInReverse(opened: { close(): unknown }[]): Promise<void> {
  for (const part of [...opened].reverse()) await part.close();
}

/**
 * The configuration each of `--workers N` runs: a layer that crosses Workers (`memory`
 * becomes `broadcast`; `redis` stays) on one fixed `port`.
 */
export function workerConfig(config: Config, port: number): Config {
  const layer = config.layer === "memory" ? "broadcast" : config.layer;
  return { ...config, port, layer };
}

/**
 * Publishes `event` to `group` from outside any server, when the layer is one other processes
 * can reach (Redis): resolves with how many processes were subscribed. Resolves `null` when the
 * layer lives inside the server, which must then be asked to send it (`POST /_send/`).
 */
export async function publishFromOutside(
  config: Config,
  group: string,
  event: LayerEvent,
): Promise<number | null> {
  if (config.layer === "channels_redis") return await groupSendFromOutside(config, group, event);
  if (config.layer !== "redis") return null;
  const { publishToGroup } = await import("../layers/redis.ts");
  return await publishToGroup({ url: config.redisUrl, prefix: config.redisPrefix }, group, event);
}

/** A group send through a short-lived channels_redis layer: the inboxes it reached. */
async function groupSendFromOutside(
  config: Config,
  group: string,
  event: LayerEvent,
): Promise<number> {
  const { ChannelsRedisLayer } = await import("../layers/channels_redis.ts");
  const layer = await ChannelsRedisLayer.open({ url: config.redisUrl });
  try {
    return (await layer.groupSend(group, event)).remoteProcesses;
  } finally {
    await layer.close();
  }
}
