/**
 * The one place that reads which layer the configuration names (`LAYER`) and opens what
 * follows from it: the group layer, the presence tracker that reaches as far as the layer,
 * and the store.
 *
 * - `memory` (default): one process; nothing leaves it. State in a Deno KV file.
 * - `broadcast`: BroadcastChannel between the Workers of one process (`--workers N`) or the
 *   isolates of Deno Deploy, with Deno KV for membership, presence and state.
 * - `redis`: Redis between processes and machines (`REDIS_URL`, `REDIS_PREFIX`); state goes to
 *   the same Redis, because a Deno KV file is local to one machine. The Redis may be one server,
 *   a master behind Sentinels or a Cluster (`config.redisForm`); every opener gets that form.
 * - `channels_redis`: as `redis`, but groups in channels_redis 4's format (prefix `asgi`), so
 *   a Django Channels project on the same Redis shares them.
 *
 * @example
 * ```ts
 * import { createServices, loadConfig, openBackends } from "@channels/deno";
 *
 * const config = loadConfig(Deno.args, Deno.env.toObject());
 * const backends = await openBackends(config);
 * const services = createServices(config, backends);
 * // ... serve an app over `services`, then:
 * await backends.close();
 * ```
 */
import {
  type Config,
  DEFAULT_REDIS_LINGER_MS,
  historyIdleMs,
  redisLingerIgnoredBecause,
} from "./config.ts";
import type { GroupLayer, LayerEvent, SendResult } from "../layers/layer.ts";
import type { PresenceTracker } from "../layers/presence/contract.ts";
import type { Store } from "../storage/store.ts";
import type {
  GroupStreams,
  PublishOptions,
  StreamPublished,
  StreamRetention,
} from "../layers/streams/contract.ts";
import type { BroadcastLayer } from "../layers/broadcast.ts";
import type { ChannelsRedisLayerOptions } from "../layers/channels_redis.ts";
import { MemoryStreams } from "../layers/streams/memory.ts";
import { InMemoryLayer } from "../layers/in_memory.ts";
import { createLocalPresence } from "../layers/presence/memory.ts";
import { DenoKvStore } from "../storage/deno_kv_store.ts";
import { kvPath } from "../storage/kv_path.ts";
import { lockDataDir } from "../storage/data_dir_lock.ts";
import { log } from "../telemetry/log.ts";

/** The opened layer, presence tracker and store of one server. */
export interface Backends {
  /** The group layer the configuration names. */
  readonly layer: GroupLayer;
  /** Who is online, shared as far as the layer reaches. */
  readonly presence: PresenceTracker;
  /** Durable state: users, sessions, login throttle. */
  readonly store: Store;
  /** Retained group streams (chat rooms' offsets and recovery), shared as far as the layer. */
  readonly streams: GroupStreams;
  /** Stops streams and presence, then closes the layer and the store; safe to call twice. */
  close(): Promise<void>;
}

/** What a Worker of `--workers N` is given besides its configuration. */
export interface BackendsOptions {
  /**
   * With the `broadcast` layer: the port of the parent's stream sequencer, which then gives
   * the offsets (without it, the Workers agree on them in Deno KV, as Deploy's isolates do).
   */
  streamsPort?: MessagePort;
  /**
   * With the `memory` layer, and `broadcast` without a parent's sequencer (`streamsPort`), the
   * backends hold `DATA_DIR` for this process, and refuse to open
   * on a directory another server holds (see `storage/data_dir_lock.ts`). `false` for a tool
   * that runs beside the server on its data (`createsuperuser`, `token`). Default `true`.
   */
  holdDataDir?: boolean;
}

/** Opens the backends the configuration names; rejects with a clear message when it cannot. */
export async function openBackends(
  config: Config,
  options: BackendsOptions = {},
): Promise<Backends> {
  const opened: { close(): unknown }[] = [];
  const open = async <T extends { close(): unknown }>(opening: Promise<T>): Promise<T> => {
    const value = await opening;
    opened.push(value);
    return value;
  };
  try {
    const parts = await openParts(config, options, open);
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

async function openParts(
  config: Config,
  options: BackendsOptions,
  open: Opener,
): Promise<Omit<Backends, "close">> {
  const graceMs = config.presenceGraceMs;
  const retention = config.historyWindow;
  const lingerMs = config.redisLingerMs;
  // What the Redis streams are told beyond where Redis is (`REDIS_MASTER_CHECK=off`: warned).
  const idleExpiryMs = historyIdleMs(config);
  const redisStreams = { retention, idleExpiryMs, lingerMs, checksMaster: config.redisMasterCheck };
  const lingerIgnored = lingerIgnoredBecause(config);
  if (lingerIgnored !== null) {
    log.warn(`REDIS_LINGER_MS=${lingerMs} has no effect: ${lingerIgnored}`);
  }
  switch (config.layer) {
    case "memory": {
      const path = await kvPath(config.dataDir);
      // Not on Deno Deploy (no path), whose KV is the deployment's.
      if (path !== undefined && options.holdDataDir !== false) {
        await open(lockDataDir(config.dataDir));
      }
      const store = await open(DenoKvStore.open(path));
      const layer = await open(Promise.resolve(new InMemoryLayer()));
      const presence = await open(Promise.resolve(createLocalPresence(layer, { graceMs })));
      const memoryBudget = config.historyMemoryMb * 1024 * 1024;
      const streams = await open(
        Promise.resolve(new MemoryStreams(layer, store, { retention, memoryBudget, idleExpiryMs })),
      );
      return { store, layer, presence, streams };
    }
    case "broadcast": {
      // The Workers of one app open the same KV file: that file names the app.
      const path = await kvPath(config.dataDir);
      // The Workers of `--workers` are given their parent's sequencer, and the parent holds
      // DATA_DIR. Without a parent, off Deploy, this process is the server on it: a `--workers`
      // server, or another process, on the same file would give the same offsets again.
      if (
        path !== undefined && options.streamsPort === undefined && options.holdDataDir !== false
      ) {
        await open(lockDataDir(config.dataDir));
      }
      const store = await open(DenoKvStore.open(path));
      // Loaded on demand: the default single process never pays for them.
      const { BroadcastLayer } = await import("../layers/broadcast.ts");
      const { createKvPresence } = await import("../layers/presence/kv.ts");
      const prefix = config.redisPrefix;
      const layer = await open(
        BroadcastLayer.open({ kvPath: path, prefix: broadcastPrefix(prefix, path) }),
      );
      const presence = await open(createKvPresence(layer, { graceMs, kvPath: path, prefix }));
      const streams = await open(openBroadcastStreams(options.streamsPort, layer, {
        kvPath: path,
        prefix,
        retention,
        idleExpiryMs,
      }));
      return { store, layer, presence, streams };
    }
    case "redis": {
      const { RedisStore } = await import("../storage/redis_store.ts");
      const { RedisLayer } = await import("../layers/redis.ts");
      const { createRedisPresence } = await import("../layers/presence/redis.ts");
      const redis = { url: config.redisUrl, form: config.redisForm, prefix: config.redisPrefix };
      const store = await open(RedisStore.open(redis));
      const layer = await open(RedisLayer.open(redis));
      const presence = await open(createRedisPresence(layer, { graceMs, ...redis }));
      const { RedisStreams } = await import("../layers/streams/redis.ts");
      const streams = await open(
        RedisStreams.open({ ...redis, layer, publishInScript: true, ...redisStreams }),
      );
      return { store, layer, presence, streams };
    }
    case "channels_redis": {
      // Groups in channels_redis' own keys (prefix "asgi"), shared with Django Channels.
      const { RedisStore } = await import("../storage/redis_store.ts");
      const { ChannelsRedisLayer } = await import("../layers/channels_redis.ts");
      const { createRedisPresence } = await import("../layers/presence/redis.ts");
      const redis = { url: config.redisUrl, form: config.redisForm, prefix: config.redisPrefix };
      const store = await open(RedisStore.open(redis));
      const layer = await open(ChannelsRedisLayer.open(channelsRedisOptions(config)));
      const presence = await open(createRedisPresence(layer, { graceMs, ...redis }));
      // Offsets and history in Redis under our prefix; events go through channels_redis.
      const { RedisStreams } = await import("../layers/streams/redis.ts");
      const streams = await open(
        RedisStreams.open({ ...redis, layer, publishInScript: false, ...redisStreams }),
      );
      return { store, layer, presence, streams };
    }
  }
}

// A Worker with a port has the parent's sequencer; without one (Deploy), the KV commits.
async function openBroadcastStreams(
  sequencer: MessagePort | undefined,
  layer: BroadcastLayer,
  options: {
    kvPath: string | undefined;
    prefix: string;
    retention: StreamRetention;
    idleExpiryMs: number;
  },
): Promise<GroupStreams> {
  if (sequencer !== undefined) {
    const { SequencedStreams } = await import("../layers/streams/sequenced.ts");
    return new SequencedStreams(sequencer, layer);
  }
  const { KvStreams } = await import("../layers/streams/kv.ts");
  return await KvStreams.open({ ...options, layer });
}

// A linger set where it does nothing is said once at start rather than left to be believed.
// The default says nothing: it was not asked for.
function lingerIgnoredBecause(config: Config): string | null {
  if (config.redisLingerMs === 0 || config.redisLingerMs === DEFAULT_REDIS_LINGER_MS) return null;
  return redisLingerIgnoredBecause(config);
}

// Every part is closed, even after one failed (the streams, whose last write failed, before
// the store): the first failure is then reported.
async function closeInReverse(opened: { close(): unknown }[]): Promise<void> {
  let failure: { error: unknown } | null = null;
  for (const part of [...opened].reverse()) {
    try {
      await part.close();
    } catch (error) {
      failure ??= { error };
    }
  }
  if (failure !== null) throw failure.error;
}

/**
 * Whether the layer the configuration names reaches other OS processes (Redis): only then can
 * `deno task worker` run background workers in a process of their own. The in-process layers
 * (`memory`, and `broadcast` between the Workers of one process) run them in the server.
 */
export function layerCrossesProcesses(config: Pick<Config, "layer">): boolean {
  return config.layer === "redis" || config.layer === "channels_redis";
}

/**
 * Whether the layer the configuration names shares groups with Django Channels
 * (`channels_redis`), as an opened layer's `channelsCompatible` says: for tools that name
 * groups without opening one (`deno task send`).
 */
export function isChannelsCompatible(config: Pick<Config, "layer">): boolean {
  return config.layer === "channels_redis";
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
 * layer lives inside the server, which must then be asked to send it (its send endpoint,
 * `sendRoutes`: `POST /_send/`).
 */
export async function publishFromOutside(
  config: Config,
  group: string,
  event: LayerEvent,
): Promise<number | null> {
  if (config.layer === "channels_redis") return await groupSendFromOutside(config, group, event);
  if (config.layer !== "redis") return null;
  const { publishToGroup } = await import("../layers/redis.ts");
  const redis = { url: config.redisUrl, form: config.redisForm, prefix: config.redisPrefix };
  return await publishToGroup(redis, group, event);
}

/**
 * Sends `event` to one channel (a named channel, e.g. a worker's `dice`, or a connection's)
 * from outside any server, when the layer is one other processes can reach (Redis): resolves
 * with the counted result (`noListener` when nobody listens). Resolves `null` when the layer
 * lives inside the server, which must then be asked to send it (its send endpoint,
 * `sendRoutes`: `POST /_send/`).
 */
export async function channelSendFromOutside(
  config: Config,
  channel: string,
  event: LayerEvent,
): Promise<SendResult | null> {
  let layer: GroupLayer;
  if (config.layer === "redis") {
    const { RedisLayer } = await import("../layers/redis.ts");
    layer = await RedisLayer.open({
      url: config.redisUrl,
      form: config.redisForm,
      prefix: config.redisPrefix,
    });
  } else if (config.layer === "channels_redis") {
    const { ChannelsRedisLayer } = await import("../layers/channels_redis.ts");
    layer = await ChannelsRedisLayer.open(channelsRedisOptions(config));
  } else {
    return null;
  }
  try {
    return await layer.send(channel, event);
  } finally {
    await layer.close();
  }
}

/**
 * Appends `event` to `group`'s stream and publishes it from outside any server, when the
 * streams live where other processes reach them (Redis): resolves with the offset it got.
 * Resolves `null` when they live inside the server, which must then be asked (its send
 * endpoint, `sendRoutes`: `POST /_send/`).
 */
export async function appendFromOutside(
  config: Config,
  group: string,
  event: LayerEvent,
  options?: PublishOptions,
): Promise<StreamPublished | null> {
  if (config.layer !== "redis" && config.layer !== "channels_redis") return null;
  const { RedisStreams } = await import("../layers/streams/redis.ts");
  // The form too: behind Sentinels or in a Cluster, `redisUrl` names no server of theirs.
  const redis = {
    url: config.redisUrl,
    form: config.redisForm,
    prefix: config.redisPrefix,
    checksMaster: config.redisMasterCheck,
    idleExpiryMs: historyIdleMs(config),
  };
  if (config.layer === "redis") {
    const streams = await RedisStreams.open({ ...redis, publishInScript: true });
    try {
      return await streams.publish(group, event, options);
    } finally {
      await streams.close();
    }
  }
  const { ChannelsRedisLayer } = await import("../layers/channels_redis.ts");
  const layer = await ChannelsRedisLayer.open(channelsRedisOptions(config));
  try {
    const streams = await RedisStreams.open({ ...redis, layer, publishInScript: false });
    try {
      return await streams.publish(group, event, options);
    } finally {
      await streams.close();
    }
  } finally {
    await layer.close();
  }
}

/** A group send through a short-lived channels_redis layer: the inboxes it reached. */
async function groupSendFromOutside(
  config: Config,
  group: string,
  event: LayerEvent,
): Promise<number> {
  const { ChannelsRedisLayer } = await import("../layers/channels_redis.ts");
  const layer = await ChannelsRedisLayer.open(channelsRedisOptions(config));
  try {
    return (await layer.groupSend(group, event)).remoteProcesses;
  } finally {
    await layer.close();
  }
}

// The layer as Django's `CHANNEL_LAYERS` has it: what both sides must agree on.
function channelsRedisOptions(config: Config): ChannelsRedisLayerOptions {
  return { url: config.redisUrl, ...config.channelsRedis };
}

/**
 * The prefix of the `broadcast` layer's channels and registry: the app's (`REDIS_PREFIX`) and
 * its KV file, which names the app, so two apps' Workers never hear each other.
 */
export function broadcastPrefix(prefix: string, kvPath: string | undefined): string {
  return `${prefix}@${kvPath}`;
}
