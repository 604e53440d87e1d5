/**
 * Presence across processes: the shared `PresenceCore` over a backend that keeps
 * connections in Redis, so a user online via process A is online for users on process B.
 *
 * Layout: each topic has a base, `<prefix>:presence` for the site topic (the keys it had
 * before topics) and `<prefix>:presence:topic:<topic>` for any other, and under it:
 * - `<base>:user:<username>` — a sorted set of that user's connection ids in the topic, scored
 *   by the time (ms) each expires unless its process refreshes it;
 * - `<base>:online` — a sorted set of usernames, scored by the latest expiry of their
 *   connections;
 * - `<base>:meta` — a hash from connection id to `{"username", "meta"}`.
 *
 * And `<prefix>:presence:topics`, a sorted set of every topic with connections, scored by its
 * latest expiry, which the sweep walks. In a key, a topic's `%` and `:` are percent-encoded
 * (`%25`, `%3A`), and usernames have no `:`, so no two keys collide.
 *
 * On a Redis Cluster the transactions and the script touch several of these keys at once, so
 * they must share a hash slot: `<prefix>:presence` becomes the hash tag `{<prefix>:presence}`
 * (e.g. `{channels:presence}:online`). One server and Sentinel keep the names above.
 *
 * Each process refreshes its own connections every `ttlMs / 3` and sweeps the expired ones of
 * processes that died without saying so (SIGKILL, power loss): their users go offline for
 * everyone within `ttlMs` plus one sweep (about 20 s with the default 15 s). After a Redis
 * restart that lost the data, this process writes its connections back as soon as it has
 * reconnected.
 */
import { RedisClock } from "./_redis_clock.ts";
import type { GroupLayer } from "../layer.ts";
import {
  type PresenceBackend,
  type PresenceOptions,
  SITE_TOPIC,
  type TrackedConnection,
} from "./contract.ts";
import { type ExpiredUsers, PresenceHeartbeat, RECONCILE_EVERY_MS } from "./_shared.ts";
import { PresenceCore } from "./core.ts";
import {
  closeRedis,
  connectRedis,
  describeRedisForm,
  isRedisCluster,
  isRedisReady,
  type RedisClient,
  type RedisForm,
  redisTarget,
} from "../../storage/redis_connection.ts";
import { log } from "../../telemetry/log.ts";
import { BoundedRedisCalls, REDIS_CALL_TIMEOUT_MS } from "../../storage/_bounded_redis_calls.ts";

/** Where the Redis presence backend connects, and how fast a dead process's users expire. */
export interface RedisPresenceOptions {
  /** The Redis URL, `redis://host:port`. */
  url?: string;
  /** A URL, Sentinel or Cluster form; wins over `url`. */
  form?: RedisForm;
  /** The first part of every key. */
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
  /** The connection, for its state and to close it. */
  #connection: RedisClient;
  /**
   * Its commands carry a time bound; those a socket's join or a page waits for go through
   * `#calls`, so a Redis that is down or paused does not hold the join (3 s at most).
   */
  #client: RedisClient;
  #calls: BoundedRedisCalls;
  #prefix: string;
  #ttlMs: number;
  /** Keeps this process's connections alive. */
  #heartbeat: PresenceHeartbeat;
  /** The time every process scores and sweeps by: Redis's (`_redis_clock.ts`). */
  #clock: RedisClock;
  #closed = false;

  private constructor(client: RedisClient, options: RedisPresenceOptions) {
    this.#connection = client;
    const shown = describeRedisForm(redisTarget(options));
    this.#calls = new BoundedRedisCalls(client, shown, REDIS_CALL_TIMEOUT_MS);
    this.#client = this.#calls.client;
    const base = `${options.prefix}:presence`;
    this.#prefix = isRedisCluster(redisTarget(options)) ? `{${base}}` : base;
    this.#ttlMs = options.ttlMs ?? 15_000;
    this.#heartbeat = new PresenceHeartbeat(this.#ttlMs, (mine) => this.#beat(mine));
    // On the node of the presence keys (a Cluster's too: the script names one of them).
    this.#clock = new RedisClock(() =>
      this.#client.eval("return redis.call('TIME')", { keys: [this.#topicsKey()], arguments: [] })
    );
  }

  /** Connects; rejects with the target in the message when Redis cannot be reached. */
  static async open(options: RedisPresenceOptions): Promise<RedisPresenceBackend> {
    let backend: RedisPresenceBackend | null = null;
    const client = await connectRedis(redisTarget(options), {
      name: "presence",
      // A Redis restarted empty lost every connection: they are written back at once, not at the
      // next beat, so that other processes do not see these users leave meanwhile.
      onReconnect: () => {
        if (backend !== null) void backend.#heartbeat.beatNow();
      },
    });
    backend = new RedisPresenceBackend(client, options);
    await backend.#clock.sync();
    return backend;
  }

  /** Records a connection. */
  async add(connection: TrackedConnection): Promise<void> {
    await this.#heartbeat.trackWhile(connection, () => this.#write([connection]));
  }

  /** Forgets connections. */
  async remove(connections: readonly TrackedConnection[]): Promise<void> {
    this.#heartbeat.untrack(connections);
    const byUser = new Map<string, { topic: string; username: string; ids: string[] }>();
    for (const { username, connectionId, topic = SITE_TOPIC } of connections) {
      const key = JSON.stringify([topic, username]);
      const entry = byUser.get(key) ?? { topic, username, ids: [] };
      entry.ids.push(connectionId);
      byUser.set(key, entry);
    }
    const now = this.#clock.now();
    await Promise.all(
      [...byUser.values()].map(({ topic, username, ids }) =>
        this.#removeOf(topic, username, ids, now)
      ),
    );
  }

  /** Which of `usernames` have a live connection in `topic`. */
  async onlineAmong(usernames: readonly string[], topic?: string): Promise<Set<string>> {
    if (usernames.length === 0) return new Set();
    const now = this.#clock.now();
    const multi = this.#client.multi();
    for (const username of usernames) multi.zCount(this.#userKey(topic, username), now, "+inf");
    const counts = await this.#calls.exec(multi) as unknown as number[];
    return new Set(usernames.filter((_, i) => Number(counts[i]) > 0));
  }

  /** Every user with a live connection in `topic`. */
  async online(topic?: string): Promise<string[]> {
    const key = this.#onlineKey(topic);
    const candidates = await this.#calls.call(
      this.#client.zRangeByScore(key, this.#clock.now(), "+inf"),
    );
    return [...await this.onlineAmong(candidates, topic)];
  }

  /** Every live connection in `topic`. */
  async list(topic: string = SITE_TOPIC): Promise<TrackedConnection[]> {
    const now = this.#clock.now();
    const connections: TrackedConnection[] = [];
    for (const username of await this.online(topic)) {
      const ids = await this.#client.zRangeByScore(this.#userKey(topic, username), now, "+inf");
      if (ids.length === 0) continue;
      const metas = await this.#client.hmGet(this.#metaKey(topic), ids);
      ids.forEach((connectionId, i) => {
        const stored = metas[i] === null ? null : JSON.parse(metas[i]!);
        connections.push({ username, connectionId, meta: stored?.meta ?? {}, topic });
      });
    }
    return connections;
  }

  /** Registers who hears of users whose connections expired. */
  watch(changed: (usernames: string[], topic: string) => void): void {
    this.#heartbeat.watch(changed);
  }

  /** Stops the heartbeat and disconnects. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#heartbeat.stop();
    await closeRedis(this.#connection);
  }

  /** Refreshes this process's connections, then sweeps those of processes that died. */
  async #beat(mine: TrackedConnection[]): Promise<ExpiredUsers> {
    if (!isRedisReady(this.#connection)) return new Map();
    await this.#clock.sync();
    // Not those untracked during the sync (a round trip, or a whole stall of Redis): their
    // removal went to Redis meanwhile, and this write would bring them back until they expire.
    await this.#write(mine.filter((connection) => this.#heartbeat.keeps(connection)));
    return await this.#sweep();
  }

  // One command per key, with every member it gets (up to `PER_COMMAND` of them): a refresh of
  // 500 chat sockets in 50 rooms is about 150 commands, where one per key and connection was
  // 2,000, and cost both processes more than their chat traffic between two refreshes.
  async #write(connections: TrackedConnection[]): Promise<void> {
    if (connections.length === 0) return;
    const expiry = this.#clock.now() + this.#ttlMs;
    const byTopic = new Map<string, { users: Map<string, string[]>; meta: [string, string][] }>();
    for (const { username, connectionId, meta, topic = SITE_TOPIC } of connections) {
      let entry = byTopic.get(topic);
      if (entry === undefined) byTopic.set(topic, entry = { users: new Map(), meta: [] });
      const ids = entry.users.get(username);
      if (ids === undefined) entry.users.set(username, [connectionId]);
      else ids.push(connectionId);
      entry.meta.push([connectionId, JSON.stringify({ username, meta })]);
    }
    const scored = (values: Iterable<string>) =>
      [...values].map((value) => ({ score: expiry, value }));
    const multi = this.#client.multi();
    for (const [topic, { users, meta }] of byTopic) {
      for (const [username, ids] of users) {
        for (const part of parts(ids)) multi.zAdd(this.#userKey(topic, username), scored(part));
      }
      for (const part of parts([...users.keys()])) {
        multi.zAdd(this.#onlineKey(topic), scored(part), { GT: true });
      }
      for (const part of parts(meta)) multi.hSet(this.#metaKey(topic), part);
    }
    for (const part of parts([...byTopic.keys()])) {
      multi.zAdd(this.#topicsKey(), scored(part), { GT: true });
    }
    await this.#calls.exec(multi);
  }

  /** Users whose every connection in a topic expired: removed here, and returned by topic. */
  async #sweep(): Promise<ExpiredUsers> {
    const now = this.#clock.now();
    const gone: ExpiredUsers = new Map();
    let count = 0;
    const topics = await this.#client.zRange(this.#topicsKey(), 0, -1);
    // Asked in one go: node-redis sends the commands of one turn together.
    const expiredByTopic = await Promise.all(
      topics.map((topic) => this.#client.zRangeByScore(this.#onlineKey(topic), "-inf", now)),
    );
    for (const [i, topic] of topics.entries()) {
      for (const username of expiredByTopic[i]) {
        if (!await this.#removeOf(topic, username, [], now)) continue;
        gone.set(topic, [...gone.get(topic) ?? [], username]);
        count++;
      }
    }
    // A topic whose every connection expired a whole TTL ago was swept by then.
    await this.#client.zRemRangeByScore(this.#topicsKey(), "-inf", now - this.#ttlMs);
    if (count > 0) {
      log.info(`Presence: ${count} user(s) of a process that stopped answering expired`);
    }
    return gone;
  }

  /** Removes `ids` of `username` (and any expired ones); true when the user went offline. */
  async #removeOf(topic: string, username: string, ids: string[], now: number): Promise<boolean> {
    const removed = await this.#calls.call(this.#client.eval(REMOVE_SCRIPT, {
      keys: [this.#userKey(topic, username), this.#onlineKey(topic), this.#metaKey(topic)],
      arguments: [username, String(now), ...ids],
    }));
    return removed === 1;
  }

  #base(topic: string = SITE_TOPIC): string {
    return topic === SITE_TOPIC ? this.#prefix : `${this.#prefix}:topic:${topicInKey(topic)}`;
  }

  #userKey(topic: string | undefined, username: string): string {
    return `${this.#base(topic)}:user:${username}`;
  }

  #onlineKey(topic?: string): string {
    return `${this.#base(topic)}:online`;
  }

  #metaKey(topic?: string): string {
    return `${this.#base(topic)}:meta`;
  }

  #topicsKey(): string {
    return `${this.#prefix}:topics`;
  }
}

/**
 * A topic as it stands in a key: with its `%` and `:` percent-encoded, so that what follows it
 * (`:user:<name>`, `:meta`) cannot be read as part of it. A chat room's name may hold `:`.
 */
function topicInKey(topic: string): string {
  return topic.replaceAll("%", "%25").replaceAll(":", "%3A");
}

/** Opens presence shared through Redis, publishing its diffs through `layer`. */
export async function createRedisPresence(
  layer: GroupLayer,
  options: PresenceOptions & RedisPresenceOptions,
): Promise<PresenceCore> {
  const backend = await RedisPresenceBackend.open(options);
  return new PresenceCore(layer, backend, { reconcileEveryMs: RECONCILE_EVERY_MS, ...options });
}

/** Members or fields per command in a refresh: a command is never unboundedly large. */
const PER_COMMAND = 1000;

function* parts<T>(items: T[]): Generator<T[]> {
  for (let at = 0; at < items.length; at += PER_COMMAND) yield items.slice(at, at + PER_COMMAND);
}
