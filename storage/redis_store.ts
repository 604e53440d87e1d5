/**
 * The store on Redis, for several processes or machines (chosen with `LAYER=redis`).
 *
 * Layout, under the configured prefix:
 * - `<prefix>:kv:<key>` — the value (JSON), with `PX` when it expires;
 * - `<prefix>:idx:<prefix of key>` — a sorted set per key prefix, all scores 0, so Redis
 *   orders its members (encoded keys) by bytes: `list` reads a range of it;
 * - `<prefix>:expiring` — keys that expire, scored by expiry time, so a sweep can remove them
 *   from the indexes once Redis has dropped their values.
 *
 * Writes that touch several keys are atomic (MULTI or a short Lua script). While Redis is
 * away, every call rejects at once instead of waiting, and one that Redis does not answer
 * (paused, stalled) rejects after 3 s (`_bounded_redis_calls.ts`): a page that needs the store
 * answers with an error rather than hanging.
 *
 * On a Redis Cluster the same keys carry the hash tag of the key's first part (see
 * {@linkcode StoreKeys}), so each write stays in one slot; `writeMany` then runs one MULTI per
 * first part (the contract makes each change atomic, not the batch).
 */
import type { Store, StoreChange, StoreEntry, StoreKey } from "./store.ts";
import {
  decodeKey,
  decodeValue,
  encodeKey,
  encodeValue,
  firstPart,
  StoreKeys,
} from "./_redis_codec.ts";
import {
  closeRedis,
  connectRedis,
  describeRedisForm,
  isRedisCluster,
  type RedisClient,
  type RedisForm,
  redisTarget,
} from "./redis_connection.ts";
import { log } from "../telemetry/log.ts";
import { sameStoredValue } from "./_same_value.ts";
import { BoundedRedisCalls, REDIS_CALL_TIMEOUT_MS } from "./_bounded_redis_calls.ts";

/** A MULTI being built: commands queue on it and run together at `exec`. */
type Multi = ReturnType<RedisClient["multi"]>;

/** Where a Redis store connects. */
export interface RedisStoreOptions {
  /** One Redis server, `redis://host:port`. */
  url?: string;
  /** A URL, Sentinel or Cluster form; wins over `url`. */
  form?: RedisForm;
  prefix: string;
  /**
   * How long connecting may take (default 5 s); the first connect fails a second after that at
   * most, the time its PING (proof that Redis answered) is given.
   */
  connectTimeoutMs?: number;
  /**
   * How long one call to Redis may wait for its answer (default 3 s): then the store's call
   * rejects as unavailable, so a page answers 503 rather than hang on a Redis that accepts TCP
   * but answers nothing.
   */
  commandTimeoutMs?: number;
}

// KEYS: data, expiring, indexes...; ARGV: value, member. Writes only when absent.
const CREATE_SCRIPT = `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('ZREM', KEYS[2], ARGV[2])
for i = 3, #KEYS do redis.call('ZADD', KEYS[i], 0, ARGV[2]) end
return 1`;

// KEYS: data, expiring, indexes...; ARGV: the value as read, the new value, member. Writes only
// while the value is still the text that was read (and compared).
const REPLACE_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[3])
for i = 3, #KEYS do redis.call('ZADD', KEYS[i], 0, ARGV[3]) end
return 1`;

// KEYS: data, expiring, indexes...; ARGV: member, now. Unlists a key whose value has expired.
const SWEEP_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if score and tonumber(score) > tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
for i = 3, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return 1`;

const SWEEP_EVERY_MS = 60_000;
const SWEEP_BATCH = 500;
// At most 100,000 a minute per process: a backlog beyond that (a burst) goes over a few sweeps.
const SWEEP_BATCHES_AT_MOST = 200;
const PAGE = 100;

/** A {@linkcode Store} on Redis. Open it with {@linkcode RedisStore.open}. */
export class RedisStore implements Store {
  /** The connection, to close it. */
  #connection: RedisClient;
  /** Its commands carry the bound's `timeout` option; each goes through `#calls.call`. */
  #client: RedisClient;
  #calls: BoundedRedisCalls;
  #keys: StoreKeys;
  /** Cluster: first parts known to be in the expiring-parts set already. */
  #registered = new Set<string>();
  #sweeper: ReturnType<typeof setInterval>;
  #closed = false;

  private constructor(calls: BoundedRedisCalls, connection: RedisClient, keys: StoreKeys) {
    this.#connection = connection;
    this.#calls = calls;
    this.#client = calls.client;
    this.#keys = keys;
    this.#sweeper = setInterval(() => void this.sweep().catch(() => {}), SWEEP_EVERY_MS);
  }

  /** Connects; rejects with the target in the message when Redis cannot be reached. */
  static async open(options: RedisStoreOptions): Promise<RedisStore> {
    const target = redisTarget(options);
    const client = await connectRedis(target, {
      name: "store",
      connectTimeoutMs: options.connectTimeoutMs,
    });
    const ms = options.commandTimeoutMs ?? REDIS_CALL_TIMEOUT_MS;
    const calls = new BoundedRedisCalls(client, describeRedisForm(target), ms);
    return new RedisStore(calls, client, new StoreKeys(options.prefix, isRedisCluster(target)));
  }

  async get<T>(key: StoreKey): Promise<T | null> {
    const text = await this.#calls.call(this.#client.get(this.#keys.data(encodeKey(key))));
    return text === null ? null : decodeValue<T>(text);
  }

  async set(key: StoreKey, value: unknown, options: { expireInMs?: number } = {}): Promise<void> {
    if (options.expireInMs) await this.#registerExpiring(key[0]);
    const multi = this.#client.multi();
    this.#queueSet(multi, key, value, options.expireInMs);
    await this.#calls.exec(multi);
  }

  async writeMany(changes: readonly StoreChange[]): Promise<void> {
    if (changes.length === 0) return;
    for (const change of changes) {
      if ("expireInMs" in change && change.expireInMs) await this.#registerExpiring(change.key[0]);
    }
    // One MULTI per hash slot: everything on one server, one per first part on a Cluster.
    const batches = new Map<string, StoreChange[]>();
    for (const change of changes) {
      const slot = this.#keys.cluster ? change.key[0] : "";
      batches.set(slot, [...batches.get(slot) ?? [], change]);
    }
    await Promise.all([...batches.values()].map((batch) => {
      const multi = this.#client.multi();
      for (const change of batch) {
        if ("delete" in change) this.#queueDelete(multi, change.key);
        else this.#queueSet(multi, change.key, change.value, change.expireInMs);
      }
      return this.#calls.exec(multi);
    }));
  }

  #queueSet(multi: Multi, key: StoreKey, value: unknown, expireInMs?: number): void {
    const member = encodeKey(key);
    const text = encodeValue(value);
    const expiring = this.#keys.expiring(key[0]);
    if (expireInMs) {
      multi.set(this.#keys.data(member), text, {
        expiration: { type: "PX", value: expireInMs },
      });
      multi.zAdd(expiring, { score: Date.now() + expireInMs, value: member });
    } else {
      multi.set(this.#keys.data(member), text);
      multi.zRem(expiring, member);
    }
    for (const index of this.#keys.indexes(key)) multi.zAdd(index, { score: 0, value: member });
  }

  async create(key: StoreKey, value: unknown): Promise<boolean> {
    const member = encodeKey(key);
    const created = await this.#calls.call(this.#client.eval(CREATE_SCRIPT, {
      keys: [this.#keys.data(member), this.#keys.expiring(key[0]), ...this.#keys.indexes(key)],
      arguments: [encodeValue(value), member],
    }));
    return created === 1;
  }

  async replace(key: StoreKey, expected: unknown, value: unknown): Promise<boolean> {
    const member = encodeKey(key);
    const data = this.#keys.data(member);
    const text = await this.#calls.call(this.#client.get(data));
    // Compared as values, not as texts: the same record written by another process or version
    // may have its fields in another order. The script then writes only over that very text.
    if (text === null || !sameStoredValue(decodeValue(text), expected)) return false;
    const replaced = await this.#calls.call(this.#client.eval(REPLACE_SCRIPT, {
      // One key's value, expiring set and indexes: one hash slot on a Cluster, as for `create`.
      keys: [data, this.#keys.expiring(key[0]), ...this.#keys.indexes(key)],
      arguments: [text, encodeValue(value), member],
    }));
    return replaced === 1;
  }

  async delete(key: StoreKey): Promise<void> {
    const multi = this.#client.multi();
    this.#queueDelete(multi, key);
    await this.#calls.exec(multi);
  }

  #queueDelete(multi: Multi, key: StoreKey): void {
    const member = encodeKey(key);
    multi.del(this.#keys.data(member)).zRem(this.#keys.expiring(key[0]), member);
    for (const index of this.#keys.indexes(key)) multi.zRem(index, member);
  }

  async list<T>(
    prefix: StoreKey,
    options: { limit?: number; reverse?: boolean } = {},
  ): Promise<StoreEntry<T>[]> {
    if (prefix.length === 0) throw new TypeError("Listing needs a non-empty key prefix");
    const index = this.#keys.index(prefix);
    const limit = options.limit ?? Infinity;
    const entries: StoreEntry<T>[] = [];
    const gone: string[] = [];
    for (let offset = 0; entries.length < limit; offset += PAGE) {
      const members = await this.#calls.call(
        this.#client.zRange(index, offset, offset + PAGE - 1, {
          REV: options.reverse ? true : undefined,
        }),
      );
      if (members.length === 0) break;
      const values = await this.#calls.call(
        this.#client.mGet(members.map((member) => this.#keys.data(member))),
      );
      for (let i = 0; i < members.length && entries.length < limit; i++) {
        const text = values[i];
        if (text === null) gone.push(members[i]); // expired: Redis dropped the value
        else entries.push({ key: decodeKey(members[i]), value: decodeValue<T>(text) });
      }
      if (members.length < PAGE) break;
    }
    if (gone.length > 0) void this.#unlist(gone).catch(() => {});
    return entries;
  }

  /** Removes expired keys from the indexes; runs every minute on its own. */
  async sweep(now = Date.now()): Promise<number> {
    const parts = this.#keys.cluster
      ? await this.#calls.call(this.#client.sMembers(this.#keys.expiringParts()))
      : [""]; // one expiring set, whatever the first part
    let removed = 0;
    for (const part of parts) {
      // Batch after batch while they come full, so the indexes shrink as fast as keys expire
      // (one batch a minute fell behind 8 expiries a second: sessions of a busy site). A batch
      // that unlisted nothing (its keys were written again since) ends the sweep of that part.
      for (let batch = 0; batch < SWEEP_BATCHES_AT_MOST; batch++) {
        const members = await this.#calls.call(
          this.#client.zRangeByScore(this.#keys.expiring(part), "-inf", now, {
            LIMIT: { offset: 0, count: SWEEP_BATCH },
          }),
        );
        const unlisted = await this.#unlist(members, now);
        removed += unlisted;
        if (members.length < SWEEP_BATCH || unlisted === 0) break;
      }
    }
    return removed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    closeRedis(this.#connection).catch((error) =>
      log.warn("Redis store did not close cleanly", error)
    );
  }

  async #unlist(members: string[], now = Date.now()): Promise<number> {
    let removed = 0;
    for (const member of members) {
      const key = decodeKey(member);
      removed += Number(
        await this.#calls.call(this.#client.eval(SWEEP_SCRIPT, {
          keys: [
            this.#keys.data(member),
            this.#keys.expiring(firstPart(member)),
            ...this.#keys.indexes(key),
          ],
          arguments: [member, String(now)],
        })),
      );
    }
    return removed;
  }

  /** Cluster: lists a first part's expiring set for the sweep, once per process. */
  async #registerExpiring(first: string): Promise<void> {
    if (!this.#keys.cluster || this.#registered.has(first)) return;
    await this.#calls.call(this.#client.sAdd(this.#keys.expiringParts(), first));
    this.#registered.add(first);
  }
}
