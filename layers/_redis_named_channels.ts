/**
 * The Redis layer's named channels (`channel_send`, `listenNamed`): a send pushes onto the
 * name's list in one round trip when somebody listens, and each name listened to here is read
 * on a connection of its own (`_redis_queues.ts` has the registry and the reading loop).
 */
import type { LayerEvent } from "./layer.ts";
import type { NamedSent, TransportInbox } from "./_transport.ts";
import { COUNT_LISTENERS_LUA, ListenerRegistry, QueueReader } from "./_redis_queues.ts";
import {
  connectRedis,
  describeRedisForm,
  isSingleRedisServer,
  type RedisClient,
  type RedisForm,
  reportUnanswered,
  withTimeout,
} from "../storage/redis_connection.ts";
import { NoAnswerInTimeError } from "../storage/with_timeout.ts";
import { decodeNamedMessage, listenersKey, namedChannelKey } from "./redis_wire.ts";
import { log } from "../telemetry/log.ts";
import { unansweredSendError } from "./_unanswered_send.ts";

/** Where the named channels live, and how long a command may take. */
export interface NamedChannelsOptions {
  /** A URL or a Sentinel or Cluster form. */
  target: string | RedisForm;
  prefix: string;
  publishTimeoutMs: number;
  connectTimeoutMs: number;
}

/** Events a named channel's list may hold before sends to it are dropped. */
const NAMED_QUEUE_CAPACITY = 1000;
/** Seconds an unread named channel's list is kept after its last send. */
const NAMED_QUEUE_EXPIRY_SECONDS = 60;

/**
 * A send to a named channel, in one round trip: nobody listening (-1), the list full (0),
 * else pushed (1). KEYS: the registry, the list. ARGV: the event, capacity, expiry (s).
 */
const SEND_NAMED_SCRIPT = `${COUNT_LISTENERS_LUA}
if listeners == 0 then return -1 end
if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[2]) then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
return 1`;

/** Seconds one `BLPOP` waits before it is issued again. */
const POP_TIMEOUT_SECONDS = 5;

// A command bounded in time, failing with the (redacted) target in its message.
async function boundedCommand<T>(
  commands: RedisClient,
  options: NamedChannelsOptions,
  command: Promise<T>,
): Promise<T> {
  try {
    return await withTimeout(command, options.publishTimeoutMs, "no answer in time");
  } catch (error) {
    if (error instanceof NoAnswerInTimeError) reportUnanswered(commands, error);
    const shown = describeRedisForm(options.target);
    // The cause kept: an unavailable backend is a 503 to a page or a handshake, not a 500.
    throw new Error(`Redis at ${shown} is unreachable: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Sends `event` to the named channel `name`: queued, full, or nobody listens. */
export async function sendToNamedChannel(
  commands: RedisClient,
  options: NamedChannelsOptions,
  name: string,
  event: LayerEvent,
): Promise<NamedSent> {
  const prefix = options.prefix;
  let pushed;
  try {
    pushed = await boundedCommand(
      commands,
      options,
      commands.eval(SEND_NAMED_SCRIPT, {
        keys: [listenersKey(prefix, name), namedChannelKey(prefix, name)],
        arguments: [
          JSON.stringify(event),
          String(NAMED_QUEUE_CAPACITY),
          String(NAMED_QUEUE_EXPIRY_SECONDS),
        ],
      }),
    );
  } catch (error) {
    throw unansweredSendError(error, name);
  }
  if (pushed === -1) return "no-listener";
  return pushed === 1 ? "queued" : "full";
}

/** The names this process listens to: registered, and each read on a connection of its own. */
export class NamedListeners {
  #commands: RedisClient;
  #options: NamedChannelsOptions;
  #inbox: TransportInbox;
  #registry: ListenerRegistry;
  #readers = new Map<string, QueueReader<string>>();

  constructor(commands: RedisClient, options: NamedChannelsOptions, inbox: TransportInbox) {
    this.#commands = commands;
    this.#options = options;
    this.#inbox = inbox;
    this.#registry = new ListenerRegistry(
      commands,
      inbox.processId,
      (name) => listenersKey(options.prefix, name),
    );
  }

  /** Starts reading `name`'s list, then registers this process as its listener. */
  async listen(name: string): Promise<void> {
    const options = this.#options;
    const key = namedChannelKey(options.prefix, name);
    const reader = await QueueReader.start({
      name: key,
      // Sentinels and a Cluster hand commands to a pool or to whichever node owns the key, so
      // `CLIENT UNBLOCK` cannot name the pop's connection there: that connection is destroyed.
      unblockWith: isSingleRedisServer(options.target) ? this.#commands : undefined,
      connect: () =>
        connectRedis(options.target, {
          name: `channel ${name}`,
          connectTimeoutMs: options.connectTimeoutMs,
        }),
      pop: async (client) => {
        const popped = await client.blPop(key, POP_TIMEOUT_SECONDS);
        return popped === null ? null : popped.element;
      },
      // Back-pressure: popped only once a listener here has room (see `ListenOptions.ready`).
      ready: () => this.#inbox.namedReady(name),
      take: (message) => {
        const event = decodeNamedMessage(message);
        if (event === null) {
          log.warn(`Ignored a message on ${key}: not a JSON object with a "type"`);
        } else void this.#inbox.namedEvent(name, event);
      },
    });
    this.#readers.set(name, reader);
    try {
      await boundedCommand(this.#commands, options, this.#registry.add(name));
    } catch (error) {
      this.#readers.delete(name);
      await reader.stop();
      throw error;
    }
  }

  /** Stops listening to `name`: out of the registry first, then its reader stopped. */
  async unlisten(name: string): Promise<void> {
    const reader = this.#readers.get(name);
    this.#readers.delete(name);
    // Out of the registry first: a sender that still sees us would queue for nobody.
    await this.#registry.remove(name);
    await reader?.stop();
  }

  /** Stops every listener and the registry's heartbeat. */
  async close(): Promise<void> {
    this.#registry.stop();
    const names = [...this.#readers.keys()];
    await Promise.all(names.map((name) => this.unlisten(name)));
  }
}
