/**
 * The store's Redis calls, bounded in time: a page that needs the store is answered (503, or
 * served as anonymous) within the bound, not after a Redis that accepts TCP but answers nothing
 * (a paused or stalled machine) comes back.
 *
 * Two holes of node-redis are closed here:
 * - A command written to a Redis that does not answer waits for its reply for ever: its
 *   `timeout` command option covers only the wait to be written. So each call also races the
 *   bound ({@linkcode withTimeout}); the option still matters, as it takes a command that timed
 *   out before it was written off the write queue, so a Redis that comes back never runs it.
 * - A MULTI ignores both `disableOfflineQueue` and the `timeout` option: while the connection
 *   is down it waits in the write queue for the next reconnect attempt (up to 5 s apart, the
 *   backoff), and runs late if that succeeds. So a MULTI is refused at once while the
 *   connection is not ready, as a single command is.
 *
 * Whatever gave up, the caller gets an error `isBackendUnavailable` knows (`unavailable.ts`).
 */
import { ClientOfflineError, TimeoutError } from "redis";
import { NoAnswerInTimeError, withTimeout } from "./with_timeout.ts";
import { isRedisReady, type RedisClient, reportUnanswered } from "./redis_connection.ts";

/**
 * How long one call of the store or of presence may wait for Redis (the store's default of
 * `RedisStoreOptions.commandTimeoutMs`).
 * The bound of the layer's publishes, too: a healthy Redis answers in milliseconds even when
 * busy, and a page waiting longer is one its visitor gives up on anyway.
 */
export const REDIS_CALL_TIMEOUT_MS = 3000;

/** A MULTI as the store builds it; only its `exec` is called here. */
interface Exec {
  exec(): Promise<unknown>;
}

/** Runs the store's calls on `client`, each bounded by `ms`. */
export class BoundedRedisCalls {
  /** The client to call commands on: each carries the `timeout` option. */
  readonly client: RedisClient;
  /** The client connectRedis made, which its connection state is kept for. */
  #connection: RedisClient;
  #ms: number;
  #shown: string;

  /** `shown` names the Redis in error messages (no password). */
  constructor(connection: RedisClient, shown: string, ms: number) {
    this.#connection = connection;
    this.#shown = shown;
    this.#ms = ms;
    this.client = connection.withCommandOptions({ timeout: ms }) as unknown as RedisClient;
  }

  /** One round trip to Redis, rejected as unavailable when it is not answered within the bound. */
  async call<T>(pending: Promise<T>): Promise<T> {
    try {
      return await withTimeout(pending, this.#ms, this.#noAnswer());
    } catch (error) {
      const unanswered = error instanceof TimeoutError
        ? new NoAnswerInTimeError(this.#noAnswer(), { cause: error })
        : error;
      if (unanswered instanceof NoAnswerInTimeError) {
        reportUnanswered(this.#connection, unanswered);
      }
      throw unanswered;
    }
  }

  /** Runs a MULTI, refused at once while the connection is down (see the module doc). */
  exec(multi: Exec): Promise<unknown> {
    if (!isRedisReady(this.#connection)) {
      return Promise.reject(
        new Error(`Redis at ${this.#shown} is unreachable now; reconnecting`, {
          cause: new ClientOfflineError(),
        }),
      );
    }
    return this.call(multi.exec());
  }

  #noAnswer(): string {
    return `Redis at ${this.#shown} gave no answer within ${this.#ms} ms`;
  }
}
