/**
 * The command connection of a channels_redis layer as its parts share it: each command bounded
 * in time and failing with the (redacted) URL, and the one clock that scores messages and
 * memberships. Also how a blocking pop on any of the layer's connections asks for its reply.
 */
import { RESP_TYPES } from "redis";
import { Buffer } from "node:buffer";
import { redactUrl, type RedisClient, withTimeout } from "../storage/redis_connection.ts";
import type { Settings } from "./_channels_redis_settings.ts";

/** Seconds one `BZPOPMIN` waits (core.py's `brpop_timeout`). */
export const POP_TIMEOUT_SECONDS = 5;
/** Reply options that keep strings as bytes: messages are msgpack, not text. */
export const BUFFER_REPLIES = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } };

/** The layer's command connection, its settings, and the score clock every send shares. */
export class RedisCommands {
  /** The connection for everything but blocking pops. */
  readonly client: RedisClient;
  /** The layer's settings, defaults filled in. */
  readonly settings: Settings;
  #lastScore = 0;

  /** Wraps an open connection; `settings` bound its commands and name its keys. */
  constructor(client: RedisClient, settings: Settings) {
    this.client = client;
    this.settings = settings;
  }

  /**
   * A score for a message or membership: the time in seconds, as `time.time()` gives Django.
   * Strictly increasing, because a sorted set pops equal scores in the order of their random
   * prefix: two sends in one millisecond would otherwise arrive in either order.
   */
  now(): number {
    const now = Date.now() / 1000;
    this.#lastScore = now > this.#lastScore ? now : this.#lastScore + 1e-6;
    return this.#lastScore;
  }

  /** Runs a Redis command for a send: bounded in time, failing with the (redacted) URL. */
  async run<T>(command: Promise<T>): Promise<T> {
    try {
      return await withTimeout(command, this.settings.commandTimeoutMs, "no answer in time");
    } catch (error) {
      const shownUrl = redactUrl(this.settings.url);
      // The cause kept: an unavailable backend is a 503 to a page or a handshake, not a 500.
      throw new Error(`Redis at ${shownUrl} is unreachable: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
}
