/**
 * Named channels of a channels_redis layer, which are core.py's general channels: the sorted
 * set `<prefix><name>` (e.g. `asgithumbnails`), msgpack behind the random prefix without
 * `__asgi_channel__`, taken with `BZPOPMIN` on a connection per name. So Django's
 * `send("thumbnails", …)` reaches a listener here, and a send here reaches Django's
 * `runworker thumbnails`. Listeners here also enter `<prefix>:listeners:<name>` (a key Django
 * never reads): a send that finds nobody there says `noListener`, but is still queued as
 * core.py queues it (for `expiry` seconds), since a Django worker does not register.
 */
import type { Buffer } from "node:buffer";
import type {
  Deliver,
  LayerEvent,
  LayerStats,
  ListenOptions,
  SendResult,
  Unlisten,
} from "./layer.ts";
import { validateNamedChannel } from "./layer.ts";
import { ListenerRegistry, QueueReader } from "./_redis_queues.ts";
import { LocalGroups } from "./local_groups.ts";
import { connectRedis, type RedisClient } from "../storage/redis_connection.ts";
import {
  channelKey,
  deserializeMessage,
  sendCommand,
  serializeMessage,
} from "./_channels_redis_wire.ts";
import {
  BUFFER_REPLIES,
  POP_TIMEOUT_SECONDS,
  type RedisCommands,
} from "./_channels_redis_commands.ts";
import type { Settings } from "./_channels_redis_settings.ts";
import { log } from "../telemetry/log.ts";
import { unansweredSendError } from "./_unanswered_send.ts";

/** Counts events a send dropped, in the layer's own `dropped`, and says so in the log. */
export type CountDrops = (dropped: number, event: LayerEvent, target: string) => void;

/** This process's listeners of named channels, the readers of their queues, and sends to them. */
export class NamedChannels {
  #redis: RedisCommands;
  #commands: RedisClient;
  #settings: Settings;
  #countDrops: CountDrops;
  /** Named channels' listeners here, and the readers of their queues. */
  #named = new LocalGroups({}, true); // a Django worker's queue may carry bytes
  #readers = new Map<string, Promise<QueueReader<Buffer>>>();
  #registry: ListenerRegistry;

  /** Registers listeners as `clientPrefix`; drops of a send go to `countDrops`. */
  constructor(redis: RedisCommands, clientPrefix: string, countDrops: CountDrops) {
    this.#redis = redis;
    this.#commands = redis.client;
    this.#settings = redis.settings;
    this.#countDrops = countDrops;
    this.#registry = new ListenerRegistry(
      redis.client,
      clientPrefix,
      (name) => `${redis.settings.prefix}:listeners:${name}`,
    );
  }

  /** Adds a listener of a (validated) name; the first one here starts reading its queue. */
  async listen(name: string, deliver: Deliver, options: ListenOptions = {}): Promise<Unlisten> {
    if (this.#named.listen(name, deliver, options.ready?.bind(options))) {
      const starting = this.#startReading(name);
      this.#readers.set(name, starting);
      try {
        await starting;
        await this.#redis.run(this.#registry.add(name));
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

  /**
   * core.py's `send` to a general channel: queued whether or not anybody listens (a Django
   * worker does not register), but reported as `noListener` when no listener is registered.
   */
  async send(name: string, event: LayerEvent): Promise<SendResult> {
    validateNamedChannel(name);
    const key = channelKey(this.#settings.prefix, name);
    const message = serializeMessage(event);
    let listeners, added;
    try {
      [listeners, added] = await this.#redis.run(Promise.all([
        this.#registry.count(name),
        this.#commands.sendCommand<number>(
          sendCommand(key, message, this.#settings, this.#redis.now()),
        ),
      ]));
    } catch (error) {
      throw unansweredSendError(error, name);
    }
    if (added !== 1) {
      this.#countDrops(1, event, `channel ${name} (queue full)`);
      return { delivered: 0, dropped: 1, remoteProcesses: 0 };
    }
    if (listeners > 0) return { delivered: 0, dropped: 0, remoteProcesses: 1 };
    log.warn(
      `Nobody listens on channel "${name}" here: the "${event.type}" event waits ` +
        `${this.#settings.expiry} s in ${key} for a Django worker`,
    );
    return { delivered: 0, dropped: 0, remoteProcesses: 0, noListener: true, queued: true };
  }

  /** What the listeners here took and refused. */
  stats(): LayerStats {
    return this.#named.stats();
  }

  /** Stops the heartbeat and every reader, leaving the registries. */
  async stop(): Promise<void> {
    this.#registry.stop();
    await Promise.all([...this.#readers.keys()].map((name) => this.#stopReading(name)));
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
      // Back-pressure: popped only once a listener here has room (see `ListenOptions.ready`).
      ready: () => this.#named.namedReady(name),
      take: (message) => {
        const decoded = deserializeMessage(message);
        if ("problem" in decoded) {
          log.warn(`Ignored a message in ${key}: ${decoded.problem}`);
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
}
