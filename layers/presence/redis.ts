/**
 * Presence across processes: the shared `PresenceCore` over a backend that keeps
 * connections in Redis, so a user online via process A is online for users on process B.
 *
 * Layout under `<prefix>:presence:`:
 * - `user:<username>` — a sorted set of that user's connection ids, scored by the time (ms)
 *   each expires unless its process refreshes it;
 * - `online` — a sorted set of usernames, scored by the latest expiry of their connections;
 * - `meta` — a hash from connection id to `{"username", "meta"}`.
 *
 * Each process refreshes its own connections every `ttlMs / 3` and sweeps the expired ones of
 * processes that died without saying so (SIGKILL, power loss): their users go offline for
 * everyone within `ttlMs` plus one sweep (about 20 s with the default 15 s). After a Redis
 * restart that lost the data, the next refresh writes this process's connections back.
 */
import type { GroupLayer } from "../layer.ts";
import type { PresenceBackend, PresenceOptions, TrackedConnection } from "./contract.ts";
import { PresenceHeartbeat, SharedPresence } from "./_shared.ts";
import { closeRedis, connectRedis, type RedisClient } from "../redis_connection.ts";
import { log } from "../../server/log.ts";

/** Where the Redis presence backend connects, and how fast a dead process's users expire. */
export interface RedisPresenceOptions {
  url: string;
  prefix: string;
  /** A connection not refreshed for this long is gone (default 15 s). */
  ttlMs?: number;
}

// KEYS: user set, online set, meta hash. ARGV: username, now, connection ids...
// Removes connections; the user leaves `online` when none of theirs is left alive.
const REMOVE_SCRIPT = `
for i = 3, #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('HDEL', KEYS[3], ARGV[i])
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
for _, id in ipairs(expired) do redis.call('HDEL', KEYS[3], id) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
  return redis.call('ZREM', KEYS[2], ARGV[1])
end
return 0`;

/** A {@linkcode PresenceBackend} on Redis, shared by every process with the same prefix. */
export class RedisPresenceBackend implements PresenceBackend {
  #client: RedisClient;
  #prefix: string;
  #ttlMs: number;
  /** Keeps this process's connections alive. */
  #heartbeat: PresenceHeartbeat;
  #closed = false;

  private constructor(client: RedisClient, options: RedisPresenceOptions) {
    this.#client = client;
    this.#prefix = `${options.prefix}:presence`;
    this.#ttlMs = options.ttlMs ?? 15_000;
    this.#heartbeat = new PresenceHeartbeat(this.#ttlMs, (mine) => this.#beat(mine));
  }

  /** Connects; rejects with the URL in the message when Redis cannot be reached. */
  static async open(options: RedisPresenceOptions): Promise<RedisPresenceBackend> {
    const client = await connectRedis(options.url, { name: "presence" });
    return new RedisPresenceBackend(client, options);
  }

  async add(connection: TrackedConnection): Promise<void> {
    this.#heartbeat.track(connection);
    await this.#write([connection]);
  }

  async remove(connections: readonly TrackedConnection[]): Promise<void> {
    this.#heartbeat.untrack(connections);
    const byUser = new Map<string, string[]>();
    for (const { username, connectionId } of connections) {
      byUser.set(username, [...byUser.get(username) ?? [], connectionId]);
    }
    const now = Date.now();
    await Promise.all([...byUser].map(([username, ids]) => this.#removeOf(username, ids, now)));
  }

  async onlineAmong(usernames: readonly string[]): Promise<Set<string>> {
    if (usernames.length === 0) return new Set();
    const now = Date.now();
    const multi = this.#client.multi();
    for (const username of usernames) multi.zCount(this.#userKey(username), now, "+inf");
    const counts = await multi.exec() as unknown as number[];
    return new Set(usernames.filter((_, i) => Number(counts[i]) > 0));
  }

  async online(): Promise<string[]> {
    const candidates = await this.#client.zRangeByScore(this.#onlineKey(), Date.now(), "+inf");
    return [...await this.onlineAmong(candidates)];
  }

  async list(): Promise<TrackedConnection[]> {
    const now = Date.now();
    const connections: TrackedConnection[] = [];
    for (const username of await this.online()) {
      const ids = await this.#client.zRangeByScore(this.#userKey(username), now, "+inf");
      if (ids.length === 0) continue;
      const metas = await this.#client.hmGet(this.#metaKey(), ids);
      ids.forEach((connectionId, i) => {
        const stored = metas[i] === null ? null : JSON.parse(metas[i]!);
        connections.push({ username, connectionId, meta: stored?.meta ?? {} });
      });
    }
    return connections;
  }

  watch(changed: (usernames: string[]) => void): void {
    this.#heartbeat.watch(changed);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#heartbeat.stop();
    await closeRedis(this.#client);
  }

  /** Refreshes this process's connections, then sweeps those of processes that died. */
  async #beat(mine: TrackedConnection[]): Promise<string[]> {
    if (!this.#client.isReady) return [];
    await this.#write(mine);
    return await this.#sweep();
  }

  async #write(connections: TrackedConnection[]): Promise<void> {
    if (connections.length === 0) return;
    const expiry = Date.now() + this.#ttlMs;
    const multi = this.#client.multi();
    for (const { username, connectionId, meta } of connections) {
      multi.zAdd(this.#userKey(username), { score: expiry, value: connectionId });
      multi.zAdd(this.#onlineKey(), { score: expiry, value: username }, { GT: true });
      multi.hSet(this.#metaKey(), connectionId, JSON.stringify({ username, meta }));
    }
    await multi.exec();
  }

  /** Users whose every connection expired: removed here, and returned to be announced. */
  async #sweep(): Promise<string[]> {
    const now = Date.now();
    const expired = await this.#client.zRangeByScore(this.#onlineKey(), "-inf", now);
    const gone: string[] = [];
    for (const username of expired) {
      if (await this.#removeOf(username, [], now)) gone.push(username);
    }
    if (gone.length > 0) {
      log.info(`Presence: ${gone.length} user(s) of a process that stopped answering expired`);
    }
    return gone;
  }

  /** Removes `ids` of `username` (and any expired ones); true when the user went offline. */
  async #removeOf(username: string, ids: string[], now: number): Promise<boolean> {
    const removed = await this.#client.eval(REMOVE_SCRIPT, {
      keys: [this.#userKey(username), this.#onlineKey(), this.#metaKey()],
      arguments: [username, String(now), ...ids],
    });
    return removed === 1;
  }

  #userKey(username: string): string {
    return `${this.#prefix}:user:${username}`;
  }

  #onlineKey(): string {
    return `${this.#prefix}:online`;
  }

  #metaKey(): string {
    return `${this.#prefix}:meta`;
  }
}

/** Opens presence shared through Redis, publishing its diffs through `layer`. */
export async function createRedisPresence(
  layer: GroupLayer,
  options: PresenceOptions & RedisPresenceOptions,
): Promise<SharedPresence> {
  const backend = await RedisPresenceBackend.open(options);
  return new SharedPresence(layer, backend, options);
}
