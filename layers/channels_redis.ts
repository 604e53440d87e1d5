/**
 * The group layer in channels_redis 4's `RedisChannelLayer` format (`LAYER=channels_redis`):
 * a Django Channels project and this server share groups on one Redis. A Django
 * `group_send` reaches this server's members, a `groupSend` here reaches Django consumers,
 * and either side can `send` to the other's channels. The keys and bytes are in
 * `_channels_redis_wire.ts`.
 *
 * - Channels are `specific.<client prefix>!<id>`, as Django names its own; every channel of
 *   this process shares the inbox `<prefix>specific.<client prefix>!`, which one receive loop
 *   pops with `BZPOPMIN` on a connection of its own and routes by `__asgi_channel__`.
 * - Groups live in Redis only (core.py's sorted sets), so the members of Django processes and
 *   of this one are one list: a group send reads it, delivers to this process's members
 *   directly, and pushes one message to each other process's inbox.
 * - channels_redis' semantics and defaults: an inbox holding `capacity` (100) messages
 *   refuses more (Django raises `ChannelFull`; here the event is dropped for those members
 *   and counted in `dropped`), messages expire after `expiry` (60 s), memberships after
 *   `groupExpiry` (86400 s). Group names follow Channels' rules (ASCII, under 100 characters).
 * - When Redis goes away, sends reject, joins still work locally; on reconnect this process's
 *   memberships are written back (Redis may have restarted empty).
 * - Named channels are core.py's general channels: the sorted set `<prefix><name>` (e.g.
 *   `asgithumbnails`), msgpack behind the random prefix without `__asgi_channel__`, taken with
 *   `BZPOPMIN` on a connection per name. So Django's `send("thumbnails", …)` reaches a listener
 *   here, and a send here reaches Django's `runworker thumbnails`. Listeners here also enter
 *   `<prefix>:listeners:<name>` (a key Django never reads): a send that finds nobody there
 *   says `noListener`, but is still queued as core.py queues it (for `expiry` seconds), since
 *   a Django worker does not register.
 */
import { RESP_TYPES } from "redis";
import { Buffer } from "node:buffer";
import type { Deliver, GroupLayer, LayerEvent, LayerStats, SendResult, Unlisten } from "./layer.ts";
import { isNamedChannel, validateEvent, validateNamedChannel } from "./layer.ts";
import { ListenerRegistry, QueueReader } from "./_redis_queues.ts";
import { LocalGroups, safeDeliver } from "./local_groups.ts";
import { checkedEventJson, freezeEvent } from "./event_json.ts";
import {
  closeRedis,
  connectRedis,
  redactUrl,
  type RedisClient,
  withTimeout,
} from "../storage/redis_connection.ts";
import {
  channelKey,
  channelsByKey,
  deserializeMessage,
  groupKey,
  groupSendCommand,
  newChannelName,
  newClientPrefix,
  sendCommand,
  serializeMessage,
  validateChannelName,
  validateChannelsGroupName,
} from "./_channels_redis_wire.ts";
import { log } from "../telemetry/log.ts";

/** How a {@linkcode ChannelsRedisLayer} connects; the defaults are channels_redis' own. */
export interface ChannelsRedisLayerOptions {
  /** The Redis URL Django's `CHANNEL_LAYERS` names in `hosts` (one host, no sharding). */
  url: string;
  /** Prefix of every key, channels_redis' `prefix` (default `"asgi"`). */
  prefix?: string;
  /** Seconds a message may wait in an inbox (default 60). */
  expiry?: number;
  /** Seconds a group membership lasts (default 86400). */
  groupExpiry?: number;
  /** Messages an inbox may hold before sends to it are dropped (default 100). */
  capacity?: number;
  /** The first connect fails after this long (default 5 s). */
  connectTimeoutMs?: number;
  /** A command not answered within this time rejects (default 3 s). */
  commandTimeoutMs?: number;
}

type Settings = Required<Omit<ChannelsRedisLayerOptions, "url">> & { url: string };

/** Seconds one `BZPOPMIN` waits (core.py's `brpop_timeout`). */
const POP_TIMEOUT_SECONDS = 5;
/** Messages taken at once when the inbox already holds some. */
const DRAIN_BATCH = 100;
const BUFFER_REPLIES = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } };

/**
 * A {@linkcode GroupLayer} that Django Channels processes share through channels_redis.
 *
 * @example
 * ```ts
 * const layer = await ChannelsRedisLayer.open({ url: "redis://127.0.0.1:6379" });
 * const channel = layer.newChannel((event) => { console.log(event); return true; });
 * await layer.groupAdd("chat_lobby", channel); // the group of Django's tutorial room "lobby"
 * await layer.groupSend("chat_lobby", { type: "chat.message", message: "hi" });
 * ```
 */
export class ChannelsRedisLayer implements GroupLayer {
  /** This process's part of its channel names (`client_prefix` in core.py). */
  readonly clientPrefix: string = newClientPrefix();
  /** Groups follow Channels' rules and are shared with Django: apps use its conventions. */
  readonly channelsCompatible = true;
  #commands: RedisClient;
  #receiver: RedisClient;
  #settings: Settings;
  #localPrefix: string;
  #receivers = new Map<string, Deliver>();
  /** This process's memberships both ways, written back to Redis on reconnect. */
  #members = new Map<string, Set<string>>();
  #groupsOf = new Map<string, Set<string>>();
  /** Discards Redis did not hear (it was away), retried on reconnect. */
  #unsentDiscards = new Map<string, Set<string>>();
  #delivered = 0;
  #dropped = 0;
  #lastScore = 0;
  #closed = false;
  #closing: Promise<void> | null = null;
  #receiving: Promise<void>;
  /** Named channels' listeners here, and the readers of their queues. */
  #named = new LocalGroups();
  #readers = new Map<string, Promise<QueueReader<Buffer>>>();
  #registry: ListenerRegistry;

  private constructor(commands: RedisClient, receiver: RedisClient, settings: Settings) {
    this.#commands = commands;
    this.#receiver = receiver;
    this.#settings = settings;
    this.#registry = new ListenerRegistry(
      commands,
      this.clientPrefix,
      (name) => `${settings.prefix}:listeners:${name}`,
    );
    this.#localPrefix = `specific.${this.clientPrefix}!`;
    this.#receiving = this.#receiveLoop();
  }

  /** Connects both connections; rejects with the URL in the message when Redis is away. */
  static async open(options: ChannelsRedisLayerOptions): Promise<ChannelsRedisLayer> {
    const settings = withDefaults(options);
    const ref: { layer?: ChannelsRedisLayer } = {};
    const connect = { connectTimeoutMs: settings.connectTimeoutMs };
    const commands = await connectRedis(settings.url, {
      ...connect,
      name: "channels_redis commands",
      onReconnect: () => {
        if (ref.layer) ref.layer.#rejoin();
      },
    });
    try {
      // BZPOPMIN blocks its connection: it gets one of its own. Queued while Redis is away.
      const receiver = await connectRedis(settings.url, {
        ...connect,
        name: "channels_redis receiver",
        offlineQueue: true,
      });
      return ref.layer = new ChannelsRedisLayer(commands, receiver, settings);
    } catch (error) {
      await closeRedis(commands);
      throw error;
    }
  }

  newChannel(deliver: Deliver): string {
    const channel = newChannelName(this.clientPrefix);
    this.#receivers.set(channel, deliver);
    return channel;
  }

  async closeChannel(channel: string): Promise<void> {
    this.#receivers.delete(channel);
    const groups = [...this.#groupsOf.get(channel) ?? []];
    await Promise.all(groups.map((group) => this.#leave(group, channel)));
  }

  async send(channel: string, event: LayerEvent): Promise<SendResult> {
    validateEvent(event);
    checkedEventJson(event); // as every layer: an event with no JSON text is refused here
    validateChannelName(channel);
    this.#checkOpen();
    if (isNamedChannel(channel)) return await this.#sendNamed(channel, event);
    if (channel.startsWith(this.#localPrefix)) return this.#deliverHere([channel], event);
    // Only process-specific channels carry their name: Django's workers read general ones.
    const message = serializeMessage(event, channel.includes("!") ? channel : undefined);
    const key = channelKey(this.#settings.prefix, channel);
    const added = await this.#command(
      this.#commands.sendCommand<number>(sendCommand(key, message, this.#settings, this.#now())),
    );
    if (added === 1) return { delivered: 0, dropped: 0, remoteProcesses: 1 };
    this.#countDrops(1, event, channel);
    return { delivered: 0, dropped: 1, remoteProcesses: 0 };
  }

  async listen(name: string, deliver: Deliver): Promise<Unlisten> {
    validateNamedChannel(name);
    this.#checkOpen();
    if (this.#named.listen(name, deliver)) {
      const starting = this.#startReading(name);
      this.#readers.set(name, starting);
      try {
        await starting;
        await this.#command(this.#registry.add(name));
      } catch (error) {
        this.#named.unlisten(name, deliver);
        this.#readers.delete(name);
        await starting.then((reader) => reader.stop(), () => {});
        throw error;
      }
    } else {
      await this.#readers.get(name);
    }
    let listening = true;
    return async () => {
      if (!listening) return;
      listening = false;
      if (this.#named.unlisten(name, deliver)) await this.#stopReading(name);
    };
  }

  async groupAdd(group: string, channel: string): Promise<void> {
    validateChannelsGroupName(group);
    validateChannelName(channel);
    this.#checkOpen();
    if (channel.startsWith(this.#localPrefix)) {
      if (!this.#receivers.has(channel)) return; // closed: it would never receive
      addTo(this.#members, group, channel);
      addTo(this.#groupsOf, channel, group);
    }
    removeFrom(this.#unsentDiscards, group, channel);
    await this.#zadd(group, [channel]);
  }

  async groupDiscard(group: string, channel: string): Promise<void> {
    validateChannelsGroupName(group);
    validateChannelName(channel);
    await this.#leave(group, channel);
  }

  async groupSend(group: string, event: LayerEvent): Promise<SendResult> {
    validateChannelsGroupName(group);
    validateEvent(event);
    checkedEventJson(event);
    this.#checkOpen();
    // Issued before any await, so sends keep their order on the connection.
    const channels = await this.#groupChannels(group);
    const here = channels.filter((channel) => channel.startsWith(this.#localPrefix));
    const pushing = this.#pushToInboxes(group, channels, event);
    const local = this.#deliverHere(here, event);
    const remote = await pushing;
    return {
      delivered: local.delivered,
      dropped: local.dropped + remote.dropped,
      remoteProcesses: remote.reached,
    };
  }

  stats(): LayerStats {
    const named = this.#named.stats();
    return {
      delivered: this.#delivered + named.delivered,
      dropped: this.#dropped + named.dropped,
      groups: this.#members.size,
      channels: this.#receivers.size,
    };
  }

  close(): Promise<void> {
    return this.#closing ??= this.#shutdown();
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    this.#registry.stop();
    await Promise.all([...this.#readers.keys()].map((name) => this.#stopReading(name)));
    // A closing process leaves its groups, or Django would keep queueing for it until expiry.
    if (this.#commands.isReady) {
      const leaving = [...this.#members].flatMap(([group, channels]) =>
        [...channels].map((channel) =>
          this.#commands.zRem(groupKey(this.#settings.prefix, group), channel)
        )
      );
      await withTimeout(Promise.all(leaving), 1000, "timeout").catch(() => {});
    }
    try {
      this.#receiver.destroy(); // rejects the pending BZPOPMIN, which ends the loop
    } catch {
      // already closed
    }
    await this.#receiving;
    await closeRedis(this.#commands);
  }

  /**
   * core.py's `send` to a general channel: queued whether or not anybody listens (a Django
   * worker does not register), but reported as `noListener` when no listener is registered.
   */
  async #sendNamed(name: string, event: LayerEvent): Promise<SendResult> {
    validateNamedChannel(name);
    const key = channelKey(this.#settings.prefix, name);
    const message = serializeMessage(event);
    const [listeners, added] = await this.#command(Promise.all([
      this.#registry.count(name),
      this.#commands.sendCommand<number>(sendCommand(key, message, this.#settings, this.#now())),
    ]));
    if (added !== 1) {
      this.#countDrops(1, event, `channel ${name} (queue full)`);
      return { delivered: 0, dropped: 1, remoteProcesses: 0 };
    }
    if (listeners > 0) return { delivered: 0, dropped: 0, remoteProcesses: 1 };
    log.warn(
      `Nobody listens on channel "${name}" here: the "${event.type}" event waits ` +
        `${this.#settings.expiry} s in ${key} for a Django worker`,
    );
    return { delivered: 0, dropped: 0, remoteProcesses: 0, noListener: true };
  }

  /** Reads a named channel's queue (`BZPOPMIN <prefix><name>`) on a connection of its own. */
  #startReading(name: string): Promise<QueueReader<Buffer>> {
    const key = channelKey(this.#settings.prefix, name);
    return QueueReader.start<Buffer>({
      name: key,
      unblockWith: this.#commands,
      connect: () =>
        connectRedis(this.#settings.url, {
          name: `channels_redis channel ${name}`,
          connectTimeoutMs: this.#settings.connectTimeoutMs,
        }),
      pop: async (client) => {
        const reply = await client.sendCommand<Buffer[] | null>(
          ["BZPOPMIN", key, String(POP_TIMEOUT_SECONDS)],
          BUFFER_REPLIES,
        );
        return reply === null ? null : reply[1];
      },
      take: (message) => {
        const decoded = deserializeMessage(message);
        if (decoded === null) {
          log.warn(`Ignored a message in ${key}: not msgpack with a string "type"`);
        } else if (this.#named.deliverToNamed(name, decoded.event) === null) {
          log.warn(`A "${decoded.event.type}" event for "${name}" arrived after its listener left`);
        }
      },
    });
  }

  async #stopReading(name: string): Promise<void> {
    const reader = this.#readers.get(name);
    this.#readers.delete(name);
    await this.#registry.remove(name);
    await reader?.then((started) => started.stop(), () => {});
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error("Layer is closed");
  }

  /**
   * A score for a message or membership: the time in seconds, as `time.time()` gives Django.
   * Strictly increasing, because a sorted set pops equal scores in the order of their random
   * prefix: two sends in one millisecond would otherwise arrive in either order.
   */
  #now(): number {
    const now = Date.now() / 1000;
    this.#lastScore = now > this.#lastScore ? now : this.#lastScore + 1e-6;
    return this.#lastScore;
  }

  /** Runs a Redis command for a send: bounded in time, failing with the (redacted) URL. */
  async #command<T>(command: Promise<T>): Promise<T> {
    try {
      return await withTimeout(command, this.#settings.commandTimeoutMs, "no answer in time");
    } catch (error) {
      const shownUrl = redactUrl(this.#settings.url);
      throw new Error(`Redis at ${shownUrl} is unreachable: ${(error as Error).message}`);
    }
  }

  /** The group's channels after dropping expired memberships, as `group_send` reads them. */
  async #groupChannels(group: string): Promise<string[]> {
    const key = groupKey(this.#settings.prefix, group);
    const oldest = Math.floor(Date.now() / 1000) - this.#settings.groupExpiry;
    const [, channels] = await this.#command(Promise.all([
      this.#commands.zRemRangeByScore(key, 0, oldest),
      this.#commands.zRange(key, 0, -1),
    ]));
    return channels;
  }

  /**
   * One message per other inbox, naming that process's members (`__asgi_channel__` is a list
   * in a group send), unless the inbox is at capacity: then its members lose the event.
   */
  async #pushToInboxes(
    group: string,
    channels: string[],
    event: LayerEvent,
  ): Promise<{ reached: number; dropped: number }> {
    const elsewhere = channels.filter((channel) => !channel.startsWith(this.#localPrefix));
    const byKey = channelsByKey(this.#settings.prefix, elsewhere);
    if (byKey.size === 0) return { reached: 0, dropped: 0 };
    const keys = [...byKey.keys()];
    const messages = keys.map((key) => serializeMessage(event, byKey.get(key)!));
    const command = groupSendCommand(keys, messages, this.#settings, this.#now());
    const added = await this.#command(this.#commands.sendCommand<number[]>(command));
    let reached = 0;
    let dropped = 0;
    keys.forEach((key, i) => added[i] === 1 ? reached++ : dropped += byKey.get(key)!.length);
    if (dropped > 0) this.#countDrops(dropped, event, `group ${group} (inbox full)`);
    return { reached, dropped };
  }

  /** Delivers to this process's channels; unknown (closed) channels are skipped silently. */
  #deliverHere(channels: string[], event: LayerEvent): SendResult {
    freezeEvent(event); // receivers share it: frozen, its JSON is made once (event_json.ts)
    let delivered = 0;
    let dropped = 0;
    for (const channel of channels) {
      const deliver = this.#receivers.get(channel);
      if (deliver === undefined) continue;
      if (safeDeliver(deliver, event)) delivered++;
      else dropped++;
    }
    this.#delivered += delivered;
    if (dropped > 0) this.#countDrops(dropped, event, channels.join(", "));
    return { delivered, dropped, remoteProcesses: 0 };
  }

  #countDrops(dropped: number, event: LayerEvent, target: string): void {
    this.#dropped += dropped;
    log.warn(`Layer dropped ${dropped} "${event.type}" event(s) to ${target}: over capacity`);
  }

  /** Adds memberships with the time as score (`group_add`); repaired on reconnect if away. */
  async #zadd(group: string, channels: string[]): Promise<void> {
    if (!this.#commands.isReady) return; // written back by #rejoin once Redis is back
    const key = groupKey(this.#settings.prefix, group);
    const score = this.#now();
    try {
      await this.#command(Promise.all([
        this.#commands.zAdd(key, channels.map((value) => ({ score, value }))),
        this.#commands.expire(key, this.#settings.groupExpiry),
      ]));
    } catch (error) {
      log.warn(`Could not add to group ${group}; retrying on reconnect`, error);
    }
  }

  /** Leaves a group here and in Redis (`group_discard`); retried on reconnect if away. */
  async #leave(group: string, channel: string): Promise<void> {
    removeFrom(this.#members, group, channel);
    removeFrom(this.#groupsOf, channel, group);
    try {
      if (!this.#commands.isReady) throw new Error("Redis is away");
      await this.#command(this.#commands.zRem(groupKey(this.#settings.prefix, group), channel));
    } catch {
      if (!this.#closed) addTo(this.#unsentDiscards, group, channel);
    }
  }

  /** After a reconnect: writes this process's memberships back, sends missed discards. */
  #rejoin(): void {
    const discards = [...this.#unsentDiscards];
    this.#unsentDiscards.clear();
    for (const [group, channels] of discards) {
      for (const channel of channels) void this.#leave(group, channel);
    }
    for (const [group, channels] of this.#members) void this.#zadd(group, [...channels]);
    log.info(`channels_redis layer rejoined ${this.#members.size} group(s)`);
  }

  /** Pops this process's inbox until closed: one message at a time when idle, else batches. */
  async #receiveLoop(): Promise<void> {
    let idle = false;
    while (!this.#closed) {
      try {
        const messages = await this.#pop(idle);
        for (const message of messages) this.#receive(message);
        // Drain while a batch came back full; otherwise block until the next message.
        idle = idle ? messages.length === 0 : messages.length < DRAIN_BATCH;
      } catch (error) {
        if (this.#closed) return;
        log.debug(`channels_redis receive failed; retrying: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** `BZPOPMIN` (one message, blocking) when idle, else `ZPOPMIN` of a batch. */
  async #pop(idle: boolean): Promise<Buffer[]> {
    const inbox = channelKey(this.#settings.prefix, this.#localPrefix);
    if (idle) {
      // [key, member, score], or null when the wait timed out.
      const reply = await this.#receiver.sendCommand<Buffer[] | null>(
        ["BZPOPMIN", inbox, String(POP_TIMEOUT_SECONDS)],
        BUFFER_REPLIES,
      );
      return reply === null ? [] : [reply[1]];
    }
    // [member, score, member, score, ...], lowest scores first.
    const reply = await this.#receiver.sendCommand<Buffer[]>(
      ["ZPOPMIN", inbox, String(DRAIN_BATCH)],
      BUFFER_REPLIES,
    );
    return reply.filter((_, i) => i % 2 === 0);
  }

  /** Routes one message by `__asgi_channel__` to the channels of this process it names. */
  #receive(message: Uint8Array): void {
    const decoded = deserializeMessage(message);
    if (decoded === null) {
      log.warn(`Ignored a message in this process's inbox: not msgpack with a string "type"`);
      return;
    }
    const here = decoded.channels.filter((channel) => channel.startsWith(this.#localPrefix));
    this.#deliverHere(here, decoded.event);
  }
}

function withDefaults(options: ChannelsRedisLayerOptions): Settings {
  const settings: Settings = {
    url: options.url,
    prefix: options.prefix ?? "asgi",
    expiry: options.expiry ?? 60,
    groupExpiry: options.groupExpiry ?? 86400,
    capacity: options.capacity ?? 100,
    connectTimeoutMs: options.connectTimeoutMs ?? 5000,
    commandTimeoutMs: options.commandTimeoutMs ?? 3000,
  };
  for (const name of ["expiry", "groupExpiry", "capacity"] as const) {
    if (!Number.isInteger(settings[name]) || settings[name] < 1) {
      throw new TypeError(`${name} must be a whole number of at least 1, got ${settings[name]}`);
    }
  }
  return settings;
}

function addTo(map: Map<string, Set<string>>, key: string, value: string): void {
  const values = map.get(key);
  if (values) values.add(value);
  else map.set(key, new Set([value]));
}

function removeFrom(map: Map<string, Set<string>>, key: string, value: string): void {
  const values = map.get(key);
  if (values?.delete(value) && values.size === 0) map.delete(key);
}
