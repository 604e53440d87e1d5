/**
 * Redis connections for the layer and the store: a bounded first connect that fails with the
 * URL in its message, then reconnection with capped exponential backoff, logged once per
 * outage instead of once per attempt.
 */
import { createClient } from "redis";
import { log } from "../server/log.ts";

/** A connected node-redis client. */
export type RedisClient = ReturnType<typeof createClient>;

/** How a connection behaves. */
export interface RedisConnectOptions {
  /** Names the connection in log lines, e.g. "layer commands". */
  name: string;
  /**
   * Queue commands while disconnected and send them on reconnect (the subscriber wants
   * this: its subscriptions survive). Without it a command fails at once while Redis is away.
   */
  offlineQueue?: boolean;
  /** How long the first connect may take before it fails (default 5 s). */
  connectTimeoutMs?: number;
  /** Called each time the connection is ready again after an outage. */
  onReconnect?: () => void;
}

const MAX_BACKOFF_MS = 5000;

/** Removes a password from a Redis URL before it is logged. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return url;
  }
}

/**
 * Connects to `url`. Rejects with an error naming the URL when Redis cannot be reached within
 * the connect timeout; after the first success, reconnects on its own forever.
 */
export async function connectRedis(
  url: string,
  options: RedisConnectOptions,
): Promise<RedisClient> {
  const shownUrl = redactUrl(url);
  const timeout = options.connectTimeoutMs ?? 5000;
  let verified = false;
  let down = false;
  const client = createClient({
    url,
    disableOfflineQueue: !options.offlineQueue,
    socket: {
      connectTimeout: timeout,
      reconnectStrategy: (retries: number, cause: Error) => {
        if (!verified) {
          return new Error(`Cannot connect to Redis at ${shownUrl}: ${describe(cause)}`);
        }
        const backoff = Math.min(100 * 2 ** Math.min(retries, 10), MAX_BACKOFF_MS);
        return backoff + Math.floor(Math.random() * 100);
      },
    },
  });
  client.on("error", (error: Error) => {
    if (!verified || down) return; // the first connect reports its own failure; one line per outage
    down = true;
    log.warn(
      `Redis connection (${options.name}) to ${shownUrl} lost; reconnecting: ${describe(error)}`,
    );
  });
  client.on("ready", () => {
    if (!verified || !down) return;
    down = false;
    log.info(`Redis connection (${options.name}) to ${shownUrl} restored`);
    options.onReconnect?.();
  });
  try {
    // A PING proves it is Redis that answered (a proxy or another service also accepts TCP).
    const connected = client.connect().then(() => client.ping());
    await withTimeout(connected, timeout + 1000, "no answer in time");
  } catch (error) {
    destroyQuietly(client);
    const message = (error as Error).message;
    throw new Error(
      message.includes(shownUrl) ? message : `Cannot connect to Redis at ${shownUrl}: ${message}`,
    );
  }
  verified = true;
  return client;
}

/** Closes a client after its pending commands, waiting at most `ms` for them. */
export async function closeRedis(client: RedisClient, ms = 1000): Promise<void> {
  if (!client.isOpen) return;
  if (!client.isReady) {
    destroyQuietly(client); // nothing can be flushed; stop the reconnect loop now
    return;
  }
  await withTimeout(client.close(), ms, "Redis did not close in time").catch(() => {});
}

/** Rejects with `message` when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timedOut]).finally(() => clearTimeout(timer));
}

function destroyQuietly(client: RedisClient): void {
  try {
    client.destroy();
  } catch {
    // already closed
  }
}

function describe(error: unknown): string {
  const message = (error as Error)?.message;
  if (message) return message;
  // node's AggregateError (IPv4 and IPv6 both refused) has no message of its own
  const inner = (error as { errors?: Error[] })?.errors?.[0]?.message;
  return inner ?? String(error);
}
