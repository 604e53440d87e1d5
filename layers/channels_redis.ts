/**
 * The group layer in channels_redis 4's `RedisChannelLayer` format (`LAYER=channels_redis`):
 * a Django Channels project and this server share groups on one Redis. A Django
 * `group_send` reaches this server's members, a `groupSend` here reaches Django consumers,
 * and either side can `send` to the other's channels. This file is the layer itself (sends,
 * group sends, delivery here) and puts its parts together; the keys and bytes are in
 * `_channels_redis_wire.ts`.
 *
 * - Channels are `specific.<client prefix>!<id>`, as Django names its own; every channel of
 *   this process shares the inbox `<prefix>specific.<client prefix>!`, which one receive loop
 *   pops (`_channels_redis_inbox.ts`).
 * - Groups live in Redis only (core.py's sorted sets), so the members of Django processes and
 *   of this one are one list: a group send reads it, delivers to this process's members
 *   directly, and pushes one message to each other process's inbox. This process's own
 *   memberships are kept too (`_channels_redis_memberships.ts`).
 * - channels_redis' semantics and defaults (`_channels_redis_settings.ts`): an inbox holding
 *   `capacity` (100) messages refuses more (Django raises `ChannelFull`; here the event is
 *   dropped for those members and counted in `dropped`), messages expire after `expiry`
 *   (60 s), memberships after `groupExpiry` (86400 s). Group names follow Channels' rules
 *   (ASCII, under 100 characters).
 * - When Redis goes away, sends reject, joins still work locally; on reconnect this process's
 *   memberships are written back (Redis may have restarted empty).
 * - Named channels are core.py's general channels (`_channels_redis_named.ts`): Django's
 *   `send("thumbnails", …)` reaches a listener here, and a send here reaches Django's
 *   `runworker thumbnails`.
 *
 * @module
 */
import type {
  Deliver,
  GroupLayer,
  LayerEvent,
  LayerStats,
  ListenOptions,
  SendResult,
  Unlisten,
} from "./layer.ts";
import { isNamedChannel, validateEvent, validateNamedChannel } from "./layer.ts";
import { safeDeliver, warnDropped } from "./local_groups.ts";
import { QuietWarning } from "../telemetry/quiet_warning.ts";
import { checkedEventJson, freezeEvent } from "./event_json.ts";
import { closeRedis, connectRedis, type RedisClient } from "../storage/redis_connection.ts";
import {
  channelKey,
  channelsByKey,
  groupKey,
  groupSendCommand,
  newChannelName,
  newClientPrefix,
  sendCommand,
  serializeMessage,
  validateChannelName,
  validateChannelsGroupName,
} from "./_channels_redis_wire.ts";
import {
  type ChannelsRedisLayerOptions,
  type Settings,
  withDefaults,
} from "./_channels_redis_settings.ts";
import { RedisCommands } from "./_channels_redis_commands.ts";
import { GroupMemberships } from "./_channels_redis_memberships.ts";
import { NamedChannels } from "./_channels_redis_named.ts";
import { receiveInbox } from "./_channels_redis_inbox.ts";

export type { ChannelsRedisLayerOptions } from "./_channels_redis_settings.ts";

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
  #redis: RedisCommands;
  #commands: RedisClient;
  #receiver: RedisClient;
  #settings: Settings;
  #localPrefix: string;
  #receivers = new Map<string, Deliver>();
  /** What came through the inbox, with its send's id (see `sendIdOf`); let go with the event. */
  #sendIds = new WeakMap<LayerEvent, string>();
  #memberships: GroupMemberships;
  #delivered = 0;
  /** Group events delivered here, sent here or come through the inbox, once per event. */
  #groupSends = 0;
  #dropped = 0;
  #dropWarning = new QuietWarning();
  #closed = false;
  #closing: Promise<void> | null = null;
  #receiving: Promise<void>;
  #named: NamedChannels;

  private constructor(commands: RedisClient, receiver: RedisClient, settings: Settings) {
    this.#redis = new RedisCommands(commands, settings);
    this.#commands = commands;
    this.#receiver = receiver;
    this.#settings = settings;
    this.#memberships = new GroupMemberships(this.#redis, () => this.#closed);
    this.#named = new NamedChannels(
      this.#redis,
      this.clientPrefix,
      (dropped, event, target) => this.#countDrops(dropped, event, target),
    );
    this.#localPrefix = `specific.${this.clientPrefix}!`;
    this.#receiving = receiveInbox({
      receiver,
      key: channelKey(settings.prefix, this.#localPrefix),
      localPrefix: this.#localPrefix,
      isClosed: () => this.#closed,
      deliverHere: (channels, event, groupSendScore) => {
        if (groupSendScore !== null) {
          this.#sendIds.set(event, groupSendScore);
          this.#groupSends++;
        }
        this.#deliverHere(channels, event);
      },
    });
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
        if (ref.layer) ref.layer.#memberships.rejoin();
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

  /**
   * The id every copy of one group send shares, for an event a `group_send` put in this
   * process's inbox: the score channels_redis queued it under, the sender's clock, which
   * `group_send` reads once for all the inboxes it reaches (on one Redis). `undefined` for any
   * other event, a send to one channel among them (it is that consumer's alone).
   */
  sendIdOf(event: LayerEvent): { id: string; copiesWithinMs: number } | undefined {
    const id = this.#sendIds.get(event);
    // A copy waits in an inbox for `expiry` at most: after that channels_redis drops it.
    return id === undefined ? undefined : { id, copiesWithinMs: this.#settings.expiry * 1000 };
  }

  newChannel(deliver: Deliver): string {
    const channel = newChannelName(this.clientPrefix);
    this.#receivers.set(channel, deliver);
    return channel;
  }

  async closeChannel(channel: string): Promise<void> {
    this.#receivers.delete(channel);
    const groups = this.#memberships.groupsOf(channel);
    await Promise.all(groups.map((group) => this.#memberships.leave(group, channel)));
  }

  async send(channel: string, event: LayerEvent): Promise<SendResult> {
    validateEvent(event);
    // As every layer: an event with no JSON text is refused here. Bytes are carried, as
    // channels_redis carries Python's `bytes` (msgpack).
    checkedEventJson(event, true);
    validateChannelName(channel);
    this.#checkOpen();
    if (isNamedChannel(channel)) return await this.#named.send(channel, event);
    if (channel.startsWith(this.#localPrefix)) return this.#deliverHere([channel], event);
    // Only process-specific channels carry their name: Django's workers read general ones.
    const message = serializeMessage(event, channel.includes("!") ? channel : undefined);
    const key = channelKey(this.#settings.prefix, channel);
    const added = await this.#redis.run(
      this.#commands.sendCommand<number>(
        sendCommand(key, message, this.#settings, this.#redis.now()),
      ),
    );
    if (added === 1) return { delivered: 0, dropped: 0, remoteProcesses: 1 };
    this.#countDrops(1, event, channel);
    return { delivered: 0, dropped: 1, remoteProcesses: 0 };
  }

  async listen(name: string, deliver: Deliver, options?: ListenOptions): Promise<Unlisten> {
    validateNamedChannel(name);
    this.#checkOpen();
    return await this.#named.listen(name, deliver, options);
  }

  async groupAdd(group: string, channel: string): Promise<void> {
    validateChannelsGroupName(group);
    validateChannelName(channel);
    this.#checkOpen();
    const local = channel.startsWith(this.#localPrefix);
    if (local && !this.#receivers.has(channel)) return; // closed: it would never receive
    await this.#memberships.add(group, channel, local);
  }

  async groupDiscard(group: string, channel: string): Promise<void> {
    validateChannelsGroupName(group);
    validateChannelName(channel);
    await this.#memberships.leave(group, channel);
  }

  async groupSend(group: string, event: LayerEvent): Promise<SendResult> {
    validateChannelsGroupName(group);
    validateEvent(event);
    checkedEventJson(event, true);
    this.#checkOpen();
    // Issued before any await, so sends keep their order on the connection.
    const channels = await this.#groupChannels(group);
    const here = channels.filter((channel) => channel.startsWith(this.#localPrefix));
    // Counted where it was delivered: a sender without a member here delivered nothing.
    if (here.length > 0) this.#groupSends++;
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
      groups: this.#memberships.groupCount,
      channels: this.#receivers.size,
      groupSends: this.#groupSends,
    };
  }

  close(): Promise<void> {
    return this.#closing ??= this.#shutdown();
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    await this.#named.stop();
    await this.#memberships.leaveAll();
    try {
      this.#receiver.destroy(); // rejects the pending BZPOPMIN, which ends the loop
    } catch {
      // already closed
    }
    await this.#receiving;
    await closeRedis(this.#commands);
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error("Layer is closed");
  }

  /** The group's channels after dropping expired memberships, as `group_send` reads them. */
  async #groupChannels(group: string): Promise<string[]> {
    const key = groupKey(this.#settings.prefix, group);
    const oldest = Math.floor(Date.now() / 1000) - this.#settings.groupExpiry;
    const [, channels] = await this.#redis.run(Promise.all([
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
    const command = groupSendCommand(keys, messages, this.#settings, this.#redis.now());
    const added = await this.#redis.run(this.#commands.sendCommand<number[]>(command));
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
    warnDropped(this.#dropWarning, dropped, event.type, target);
  }
}
