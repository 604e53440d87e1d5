/**
 * Named channels on Redis, for both Redis layers: who listens on a name (a registry with
 * expiry, refreshed by a heartbeat, so "nobody listens" is known), and the loop that takes a
 * name's queue on a connection of its own (a blocking pop holds its connection).
 *
 * - The registry of a name is a sorted set: members are process ids, scored by the Redis
 *   server's time (ms) at which the entry expires. A process that dies stops refreshing, and
 *   its entry stops counting after the expiry. The server's clock, not each process's, so
 *   machines with skewed clocks agree.
 * - A reader pops one message at a time with a timeout, on its own connection; when Redis is
 *   away it retries with a capped backoff. Stopping unblocks its pending pop with
 *   `CLIENT UNBLOCK` from another connection and waits for it to come back, so no pop is left
 *   in Redis that would take an event sent after the listener stopped. (Closing the socket is
 *   not enough: Redis may serve a write to the blocked pop before it sees the socket close.)
 *   A message popped just as the reader stops is lost (at most once, as the layer allows).
 */
import { closeRedis, type RedisClient, withTimeout } from "../storage/redis_connection.ts";
import { log } from "../telemetry/log.ts";
import { describeError } from "../storage/_redis_connection_machine.ts";

/** How long a listener's registry entry lives without a heartbeat (default 15 s). */
export const LISTENER_EXPIRY_MS = 15_000;

/**
 * Refreshes (or adds) one process's entry with the server's time plus the expiry.
 * KEYS: the registry. ARGV: process id, expiry in ms.
 */
const REGISTER_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1`;

/**
 * Counts the live entries after dropping expired ones: the Lua prelude of a send that must
 * know whether anybody listens. Leaves the count in `listeners`. KEYS[1]: the registry.
 */
export const COUNT_LISTENERS_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local listeners = redis.call('ZCARD', KEYS[1])`;

/** Only counts: `COUNT_LISTENERS_LUA` alone. KEYS[1]: the registry. */
const COUNT_SCRIPT = `${COUNT_LISTENERS_LUA}
return listeners`;

/** This process's entries in the listener registries, kept alive by a heartbeat. */
export class ListenerRegistry {
  #client: RedisClient;
  #processId: string;
  #keyOf: (name: string) => string;
  #expiryMs: number;
  #names = new Set<string>();
  #heartbeat: ReturnType<typeof setInterval> | undefined;

  /** Registers under `processId` on `client`; `keyOf` names a channel's registry key. */
  constructor(
    client: RedisClient,
    processId: string,
    keyOf: (name: string) => string,
    expiryMs: number = LISTENER_EXPIRY_MS,
  ) {
    this.#client = client;
    this.#processId = processId;
    this.#keyOf = keyOf;
    this.#expiryMs = expiryMs;
  }

  /** Adds this process as a listener of `name`; rejects when Redis does not answer. */
  async add(name: string): Promise<void> {
    this.#names.add(name);
    // Three refreshes per expiry: one lost heartbeat does not make a live listener vanish.
    this.#heartbeat ??= setInterval(() => void this.#refresh(), Math.floor(this.#expiryMs / 3));
    await this.#register(name);
  }

  /** Removes this process as a listener of `name` (best effort: it expires anyway). */
  async remove(name: string): Promise<void> {
    this.#names.delete(name);
    if (this.#names.size === 0) this.stop();
    await withTimeout(this.#client.zRem(this.#keyOf(name), this.#processId), 1000, "timeout")
      .catch(() => {});
  }

  /** How many processes listen on `name`, by the registry. */
  async count(name: string): Promise<number> {
    const keys = [this.#keyOf(name)];
    return Number(await this.#client.eval(COUNT_SCRIPT, { keys, arguments: [] }));
  }

  /** Stops the heartbeat; the entries expire on their own. */
  stop(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  async #register(name: string): Promise<void> {
    await this.#client.eval(REGISTER_SCRIPT, {
      keys: [this.#keyOf(name)],
      arguments: [this.#processId, String(this.#expiryMs)],
    });
  }

  async #refresh(): Promise<void> {
    for (const name of this.#names) {
      await this.#register(name).catch((error) =>
        log.debug(`Listener entry for "${name}" not refreshed: ${(error as Error).message}`)
      );
    }
  }
}

/** How a {@linkcode QueueReader} reaches its queue. */
export interface QueueReaderOptions<T> {
  /** Opens the reader's own connection. */
  connect(): Promise<RedisClient>;
  /** One blocking pop on `client`: a message, or `null` when the wait timed out. */
  pop(client: RedisClient): Promise<T | null>;
  /** Handles one message taken from the queue. */
  take(message: T): void;
  /**
   * Resolves once the taker has room for another message (default: always): the next pop
   * waits for it, so what the taker has no room for stays in the queue, where the queue's own
   * capacity refuses more to the senders, and another reader may take it.
   */
  ready?(): Promise<void>;
  /** Names the queue in log lines. */
  name: string;
  /**
   * Another connection to the same server, to unblock the pending pop when stopping
   * (`CLIENT UNBLOCK`); without it (a Cluster) the reader's connection is just destroyed.
   */
  unblockWith?: RedisClient;
}

const MAX_BACKOFF_MS = 2000;

/** Takes a queue's messages one at a time, on a connection of its own, until stopped. */
export class QueueReader<T> {
  #client: RedisClient;
  #options: QueueReaderOptions<T>;
  #clientId: string | null;
  #stopped = false;
  #finished = false;
  #loop: Promise<void>;
  /** Resolves when stopped: a reader waiting for its taker's room stops waiting. */
  #stopping: Promise<void>;
  #stoppingNow!: () => void;

  private constructor(
    client: RedisClient,
    clientId: string | null,
    options: QueueReaderOptions<T>,
  ) {
    this.#client = client;
    this.#clientId = clientId;
    this.#options = options;
    this.#stopping = new Promise((resolve) => this.#stoppingNow = resolve);
    this.#loop = this.#run().finally(() => this.#finished = true);
  }

  /** Connects, then reads until {@linkcode QueueReader.stop}. */
  static async start<T>(options: QueueReaderOptions<T>): Promise<QueueReader<T>> {
    const client = await options.connect();
    let clientId: string | null = null;
    if (options.unblockWith !== undefined) {
      try {
        clientId = String(await client.sendCommand(["CLIENT", "ID"]));
      } catch (error) {
        await closeRedis(client);
        throw error;
      }
    }
    return new QueueReader(client, clientId, options);
  }

  /** Stops reading and closes the connection; a message being popped right now is lost. */
  async stop(): Promise<void> {
    if (this.#stopped) return await this.#loop;
    this.#stopped = true;
    this.#stoppingNow();
    await this.#unblock();
    // Destroyed, not closed: a graceful close lets the pending pop run on in Redis, where it
    // would take (and lose) an event sent after this listener stopped.
    try {
      const destroyed = this.#client.destroy() as unknown;
      if (destroyed instanceof Promise) destroyed.catch(() => {});
    } catch {
      // closed already
    }
    await closeRedis(this.#client); // stops its reconnection machine; the socket is gone
    await this.#loop;
  }

  /** Unblocks the pending pop until the loop has ended (at most 2 s). */
  async #unblock(): Promise<void> {
    const control = this.#options.unblockWith;
    if (control === undefined || this.#clientId === null) return;
    const deadline = performance.now() + 2000;
    while (!this.#finished && performance.now() < deadline) {
      // Again until it ends: a pop sent just after an UNBLOCK would otherwise block anew.
      await control.sendCommand(["CLIENT", "UNBLOCK", this.#clientId]).catch(() => {});
      await Promise.race([this.#loop, new Promise((resolve) => setTimeout(resolve, 20))]);
    }
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      if (this.#options.ready !== undefined) {
        await Promise.race([this.#options.ready().catch(() => {}), this.#stopping]);
        if (this.#stopped) return;
      }
      let message: T | null;
      try {
        message = await this.#options.pop(this.#client);
        failures = 0;
      } catch (error) {
        if (this.#stopped) return;
        if (failures++ === 0) {
          log.debug(`Reading ${this.#options.name} failed; retrying: ${(error as Error).message}`);
        }
        const backoff = Math.min(100 * 2 ** Math.min(failures, 5), MAX_BACKOFF_MS);
        await new Promise((resolve) => setTimeout(resolve, backoff));
        continue;
      }
      if (message === null || this.#stopped) continue;
      try {
        this.#options.take(message);
      } catch (error) {
        // Taken off the queue, so lost: said so, not taken for a read that failed and retried.
        log.warn(`Dropped a message taken from ${this.#options.name}: ${describeError(error)}`);
      }
    }
  }
}
