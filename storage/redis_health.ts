/**
 * How this process's Redis connections are doing, for the metrics: whether each is up, how
 * often it was restored after an outage, and how long it has been without Redis. Every
 * connection made by `connectRedis` registers its state machine here while it is open.
 *
 * Kept apart from `redis_connection.ts` so that reading it never loads the Redis client:
 * a server on the in-process layer reads an empty list.
 */

/** What a connection's state machine tells the metrics. */
export interface RedisHealthSource {
  /** The connection's name, e.g. "layer commands" (a small fixed set). */
  readonly name: string;
  /** True while the connection is ready (a PING was answered since the last failure). */
  readonly up: boolean;
  /** When the current outage began (`performance.now()`), or `null` while up. */
  readonly lostSince: number | null;
  /** Outages it came back from. */
  readonly restoredCount: number;
  /** Milliseconds of the outages it came back from. */
  readonly downMsRestored: number;
}

/** One connection name's figures, summed over its open connections. */
export interface RedisHealth {
  /** The connection name. */
  connection: string;
  /** 1 when every connection of that name is up, else 0. */
  up: number;
  /** Outages they came back from. */
  reconnects: number;
  /** Seconds without Redis: finished outages plus the current one. */
  downSeconds: number;
}

// The one place of this module's state: the open connections' machines.
const open = new Set<RedisHealthSource>();

/** Registers an open connection; returns the function that forgets it when it closes. */
export function trackRedisConnection(source: RedisHealthSource): () => void {
  open.add(source);
  return () => void open.delete(source);
}

/** The open connections' health by name, sorted by name; empty without Redis. */
export function redisHealth(now: number = performance.now()): RedisHealth[] {
  const byName = new Map<string, RedisHealth>();
  for (const source of open) {
    let health = byName.get(source.name);
    if (health === undefined) {
      health = { connection: source.name, up: 1, reconnects: 0, downSeconds: 0 };
      byName.set(source.name, health);
    }
    if (!source.up) health.up = 0;
    health.reconnects += source.restoredCount;
    const current = source.lostSince === null ? 0 : Math.max(0, now - source.lostSince);
    health.downSeconds += (source.downMsRestored + current) / 1000;
  }
  return [...byName.values()].sort((a, b) => a.connection.localeCompare(b.connection));
}
