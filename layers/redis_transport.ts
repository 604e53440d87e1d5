/**
 * The Redis side of the Redis layer: pub/sub for events, with `PUBLISH`'s count of subscribers
 * as the count of processes reached, and what to repair when a connection comes back. The
 * shared part of the layer is `_process_layer.ts`; the wire format is `redis_wire.ts`.
 *
 * On a Cluster it uses sharded pub/sub (`SSUBSCRIBE`/`SPUBLISH`): a channel lives on the one
 * shard that owns its hash slot, instead of every message crossing the cluster bus to every
 * node, and `SPUBLISH` counts the subscribers of the whole cluster (a plain `PUBLISH` on a
 * cluster counts only those of the node it was sent to). Through Sentinels, publishing goes to
 * the master and node-redis moves the subscriptions to the new master after a failover.
 * Named channels are `_redis_named_channels.ts`.
 */
import type { LayerEvent } from "./layer.ts";
import type { NamedSent, Published, Transport, TransportInbox } from "./_transport.ts";
import {
  type NamedChannelsOptions,
  NamedListeners,
  sendToNamedChannel,
} from "./_redis_named_channels.ts";
import {
  closeRedis,
  connectRedis,
  describeRedisForm,
  isRedisCluster,
  isRedisReady,
  onShardedChannelMoved,
  type RedisClient,
  reportUnanswered,
  withTimeout,
} from "../storage/redis_connection.ts";
import { NoAnswerInTimeError } from "../storage/with_timeout.ts";
import { PublishUnconfirmedError } from "./streams/contract.ts";
import {
  decodeChannelMessage,
  decodeGroupMessage,
  encodeChannelMessage,
  encodeGroupMessage,
  groupChannel,
  groupMessageOpening,
  processChannel,
} from "./redis_wire.ts";
import { log } from "../telemetry/log.ts";
import { describeError } from "../storage/_redis_connection_machine.ts";

/** Everything {@linkcode RedisTransport} needs, defaults filled in: its named channels' too. */
export type RedisTransportOptions = NamedChannelsOptions;

/** A {@linkcode Transport} on two Redis connections: one for commands, one subscribed. */
export class RedisTransport implements Transport {
  #commands: RedisClient;
  #subscriber: RedisClient;
  /** A subscribe went unanswered and is still waiting: the joins after it do not wait too. */
  #subscribesStalled = false;
  #options: RedisTransportOptions;
  #inbox: TransportInbox | null = null;
  /** Sharded pub/sub (a Cluster) or plain. */
  #sharded: boolean;
  /**
   * Groups with local members, hence subscribed here: `true` once Redis has confirmed the latest
   * subscribe, else the number of that subscribe call, still waiting (see `#subscribeGroup`).
   */
  #subscribed = new Map<string, number | true>();
  #calls = 0;
  /** This process's own channel, subscribed on the same connection as every group. */
  #ownChannel = "";
  /** Named channels with local listeners: registered, and read on connections of their own. */
  #named: NamedListeners | null = null;
  /** How this process's stream publishes open (`groupMessageOpening`); set by `listen`. */
  #ownOpening: string | null = null;
  #onGroupMessage = (message: string, channel: string): void =>
    this.#receiveGroup(message, channel);
  #onOwnChannel = (message: string): void => this.#receiveChannel(message);

  private constructor(
    commands: RedisClient,
    subscriber: RedisClient,
    options: RedisTransportOptions,
  ) {
    this.#commands = commands;
    this.#subscriber = subscriber;
    this.#options = options;
    this.#sharded = isRedisCluster(options.target);
  }

  /** Connects both connections; rejects with the target in the message when Redis is away. */
  static async open(options: RedisTransportOptions): Promise<RedisTransport> {
    // Filled in below: the reconnect hook needs the transport, the transport the clients.
    const ref: { transport?: RedisTransport } = {};
    const connect = { connectTimeoutMs: options.connectTimeoutMs };
    // Its PUBLISH written before a lost master may have run: sent again, it would deliver twice.
    const commands = await connectRedis(options.target, {
      ...connect,
      name: "layer commands",
      resendAfterLostMaster: false,
    });
    try {
      const subscriber = await connectRedis(options.target, {
        ...connect,
        name: "layer subscriber",
        offlineQueue: true,
        onReconnect: () => {
          if (ref.transport) ref.transport.#resubscribe();
        },
      });
      return ref.transport = new RedisTransport(commands, subscriber, options);
    } catch (error) {
      await closeRedis(commands);
      throw error;
    }
  }

  async listen(inbox: TransportInbox): Promise<void> {
    this.#inbox = inbox;
    this.#ownOpening = groupMessageOpening(inbox.processId);
    const prefix = this.#options.prefix;
    const ownChannel = processChannel(prefix, inbox.processId);
    this.#named = new NamedListeners(this.#commands, this.#options, inbox);
    await this.#listenOn(ownChannel, this.#onOwnChannel);
    this.#ownChannel = ownChannel;
  }

  /**
   * What lets Redis tell that this process hears `group` on its subscriber connection now: the
   * name of this process's own channel, subscribed on that same connection, while Redis has
   * confirmed the group's subscription and nothing has unsubscribed it since; else `""`.
   *
   * Redis drops every subscription of a connection at once when the connection goes, and
   * node-redis subscribes them all again in one `SUBSCRIBE`, so while this process's own
   * channel has a subscriber, so has the group, on this process's connection. A stream's
   * script counts the group's other subscribers with it and skips a `PUBLISH` that only this
   * process would hear (see `streams/redis.ts`). Not on a Cluster: the two channels may live
   * on different shards there.
   */
  subscriptionWitness(group: string): string {
    return !this.#sharded && this.#subscribed.get(group) === true ? this.#ownChannel : "";
  }

  subscribe(group: string): Promise<void> {
    const channel = groupChannel(this.#options.prefix, group);
    const subscribing = this.#subscribeGroup(group, channel);
    if (!isRedisReady(this.#subscriber)) {
      // Queued until Redis is back; waiting would hang the join for the whole outage.
      subscribing.catch(() => {}); // #resubscribe repairs it on reconnect
      return Promise.resolve();
    }
    if (this.#subscribesStalled) {
      // An earlier subscribe is still unanswered (Redis paused): this one would wait as long.
      // It is written all the same, and Redis confirms it when it answers.
      subscribing.catch(() => {});
      return Promise.resolve();
    }
    // Bounded: a Redis that accepts TCP but answers nothing (paused) would hold the join for the
    // whole pause. The join goes on locally; the subscribe stays written, and Redis confirms it
    // once it answers (until then the group has no `subscriptionWitness`).
    return withTimeout(subscribing, this.#options.publishTimeoutMs, "no answer in time").catch(
      (error) => {
        if (!(error instanceof NoAnswerInTimeError)) {
          return log.warn(`Could not subscribe to ${channel}; retrying on reconnect`, error);
        }
        // The subscriber is not reported lost: its restart would drop every subscription just
        // as Redis, answering again, publishes what it was written meanwhile.
        this.#subscribesStalled = true;
        // Answered or failed (its socket dropped): either way no longer stalled.
        const settled = () => this.#subscribesStalled = false;
        subscribing.then(settled, settled);
        log.warn(
          `Subscribe to ${channel} got no answer in ${this.#options.publishTimeoutMs} ms; ` +
            "joins go on locally, and are subscribed once Redis answers",
        );
      },
    );
  }

  unsubscribe(group: string): void {
    this.#subscribed.delete(group); // an answer to an earlier subscribe confirms nothing now
    const channel = groupChannel(this.#options.prefix, group);
    const unsubscribing = this.#sharded
      ? this.#subscriber.sUnsubscribe(channel, this.#onGroupMessage)
      : this.#subscriber.unsubscribe(channel, this.#onGroupMessage);
    unsubscribing.catch(() => {
      // Lost with the connection: node-redis resubscribes only what it still listens to.
    });
  }

  async publishToGroup(group: string, event: LayerEvent, origin: string): Promise<Published> {
    const channel = groupChannel(this.#options.prefix, group);
    const receivers = await this.#publish(channel, encodeGroupMessage(event, origin));
    // Our own subscription is among the receivers Redis counted when we have members here.
    const subscribedHere = this.#subscribed.has(group) ? 1 : 0;
    return { remoteProcesses: Math.max(0, receivers - subscribedHere) };
  }

  sendToProcess(processId: string, channel: string, event: LayerEvent): Promise<number> {
    return this.#publish(
      processChannel(this.#options.prefix, processId),
      encodeChannelMessage(channel, event),
    );
  }

  async listenNamed(name: string): Promise<void> {
    await this.#named!.listen(name); // `listen` comes first
  }

  async unlistenNamed(name: string): Promise<void> {
    await this.#named?.unlisten(name);
  }

  sendToNamed(name: string, event: LayerEvent): Promise<NamedSent> {
    return sendToNamedChannel(this.#commands, this.#options, name, event);
  }

  async close(): Promise<void> {
    await this.#named?.close();
    await Promise.all([closeRedis(this.#commands), closeRedis(this.#subscriber)]);
  }

  async #publish(channel: string, payload: string): Promise<number> {
    try {
      const publishing = this.#sharded
        ? this.#commands.sPublish(channel, payload)
        : this.#commands.publish(channel, payload);
      return await withTimeout(
        publishing,
        this.#options.publishTimeoutMs,
        "no answer in time",
      );
    } catch (error) {
      const shown = describeRedisForm(this.#options.target);
      // The cause kept: an unavailable backend is a 503 to a page or a handshake, not a 500.
      const message = `Redis at ${shown} is unreachable: ${(error as Error).message}`;
      const unreachable = new Error(message, { cause: error });
      // Written and unanswered: Redis may publish it when it answers again, so "not sent"
      // would have its sender send it twice. (One dropped with its socket, when the machine
      // restarted one that answered no PING, is "not sent": most such were never written.)
      if (!(error instanceof NoAnswerInTimeError)) throw unreachable;
      reportUnanswered(this.#commands, error);
      throw new PublishUnconfirmedError(
        `Published to ${channel}, but Redis at ${shown} gave no answer in time: it may still be delivered`,
        { cause: unreachable },
      );
    }
  }

  // Confirmed once Redis answers, unless another subscribe or an unsubscribe of the group
  // was made since: the answer is then about a state that no longer holds.
  #subscribeGroup(group: string, channel: string): Promise<void> {
    const call = ++this.#calls;
    this.#subscribed.set(group, call);
    return this.#listenOn(channel, this.#onGroupMessage).then(() => {
      if (this.#subscribed.get(group) === call) this.#subscribed.set(group, true);
    });
  }

  #listenOn(channel: string, listener: (message: string, channel: string) => void): Promise<void> {
    if (!this.#sharded) return this.#subscriber.subscribe(channel, listener).then(() => {});
    return this.#subscriber.sSubscribe(channel, listener).then(() =>
      // A slot that moves takes the subscription with it: see `_cluster_slots.ts`.
      onShardedChannelMoved(
        this.#subscriber,
        channel,
        (moved) => this.#channelMoved(moved),
        (error) => log.warn(`Could not follow the move of ${channel}'s slot`, error),
      )
    );
  }

  // A group's sharded channel was dropped as its slot moved: subscribed again on its new node,
  // and its members told that what was published meanwhile may not have reached them.
  #channelMoved(channel: string): void {
    const group = channel.slice(groupChannel(this.#options.prefix, "").length);
    if (
      !channel.startsWith(groupChannel(this.#options.prefix, "")) || !this.#subscribed.has(group)
    ) {
      if (channel === this.#ownChannel) {
        this.#listenOn(channel, this.#onOwnChannel).catch((error) =>
          log.warn(`Could not subscribe again to ${channel} after its slot moved`, error)
        );
      }
      return;
    }
    this.#subscribeGroup(group, channel).then(
      () => this.#inbox?.groupGap(group),
      (error) => log.warn(`Could not subscribe again to ${channel} after its slot moved`, error),
    );
  }

  /**
   * After a reconnect: subscribe every group that has local members (no-op if present), then
   * tell its members what was published meanwhile did not reach them (the layer's `layer.gap`).
   */
  #resubscribe(): void {
    // On a Cluster, a failover's new slot map drops the dead node's subscriptions, this
    // process's own channel among them (a dead node sends no SUNSUBSCRIBE to say so).
    if (this.#sharded && this.#ownChannel !== "") {
      this.#listenOn(this.#ownChannel, this.#onOwnChannel).catch((error) =>
        log.warn(`Could not resubscribe to ${this.#ownChannel}`, error)
      );
    }
    for (const group of this.#subscribed.keys()) {
      const channel = groupChannel(this.#options.prefix, group);
      this.#subscribeGroup(group, channel).then(
        () => this.#inbox?.groupGap(group),
        (error) => log.warn(`Could not resubscribe to ${channel}`, error),
      );
    }
    log.info(`Redis layer resubscribed ${this.#subscribed.size} group(s)`);
  }

  #receiveGroup(message: string, channel: string): void {
    // Published here (a group send, a stream's script), so delivered here already: unparsed.
    if (this.#ownOpening !== null && message.startsWith(this.#ownOpening)) return;
    const decoded = decodeGroupMessage(message);
    if (decoded === null) {
      log.warn(`Ignored a message on ${channel}: not a JSON object with a string "type"`);
      return;
    }
    const group = channel.slice(groupChannel(this.#options.prefix, "").length);
    try {
      this.#inbox?.groupEvent(group, decoded.event, decoded.origin);
    } catch (error) {
      // Refused before any member got it (nested too deep, say). Thrown here, it would reach
      // the Redis client's listener, which drops the subscriber connection and what follows.
      warnRefusedMessage(channel, error);
    }
  }

  #receiveChannel(message: string): void {
    const decoded = decodeChannelMessage(message);
    if (decoded === null) {
      log.warn(`Ignored a malformed message on this process's channel`);
      return;
    }
    try {
      this.#inbox?.channelEvent(decoded.channel, decoded.event);
    } catch (error) {
      warnRefusedMessage(this.#ownChannel, error);
    }
  }
}

/** One line for a message from Redis that the layer refused: which channel, and why. */
function warnRefusedMessage(channel: string, error: unknown): void {
  log.warn(`Ignored a message on ${channel}: ${describeError(error)}`);
}
