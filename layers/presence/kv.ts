/**
 * Presence across the Workers of one process (`--workers N`) or the isolates of Deno Deploy:
 * the shared `PresenceCore` over a backend that keeps connections in Deno KV, the one
 * state every Worker (or isolate) sees. Diffs travel on the BroadcastChannel layer.
 *
 * One entry per connection, holding its meta and the time it expires unless its Worker refreshes it (every `ttlMs / 3`). Each Worker
 * sweeps the expired entries of Workers that died, so their users go offline for everyone.
 *
 * Keys: `[prefix, "presence", username, connectionId]` for the site topic (as before topics),
 * `[prefix, "presence-topic", topic, username, connectionId]` for any other topic.
 */
import type { GroupLayer } from "../layer.ts";
import {
  type PresenceBackend,
  type PresenceMeta,
  type PresenceOptions,
  SITE_TOPIC,
  type TrackedConnection,
} from "./contract.ts";
import { type ExpiredUsers, PresenceHeartbeat, RECONCILE_EVERY_MS } from "./_shared.ts";
import { PresenceCore } from "./core.ts";
import { openKv, retryWhileLocked } from "../../storage/kv_retry.ts";

/** Where the KV presence backend keeps its entries. */
export interface KvPresenceOptions {
  /** The KV file; omitted: Deno's default (Deno Deploy's KV). */
  kvPath?: string;
  /** The first part of every key. */
  prefix: string;
  /** A connection not refreshed for this long is gone (default 15 s). */
  ttlMs?: number;
}

interface Entry {
  meta: PresenceMeta;
  expiry: number;
}

/** A {@linkcode PresenceBackend} on Deno KV. */
export class KvPresenceBackend implements PresenceBackend {
  #kv: Deno.Kv;
  #prefix: string;
  #ttlMs: number;
  #heartbeat: PresenceHeartbeat;
  #closed = false;

  private constructor(kv: Deno.Kv, options: KvPresenceOptions) {
    this.#kv = kv;
    this.#prefix = options.prefix;
    this.#ttlMs = options.ttlMs ?? 15_000;
    this.#heartbeat = new PresenceHeartbeat(this.#ttlMs, (mine) => this.#beat(mine));
  }

  /** Opens the KV database. */
  static async open(options: KvPresenceOptions): Promise<KvPresenceBackend> {
    return new KvPresenceBackend(await openKv(options.kvPath), options);
  }

  /** Records a connection. */
  async add(connection: TrackedConnection): Promise<void> {
    await this.#heartbeat.trackWhile(connection, () => this.#write(connection));
  }

  /** Forgets connections. */
  async remove(connections: readonly TrackedConnection[]): Promise<void> {
    this.#heartbeat.untrack(connections);
    await Promise.all(
      connections.map(({ username, connectionId, topic }) =>
        retryWhileLocked(() => this.#kv.delete(this.#key(topic, username, connectionId)))
      ),
    );
  }

  /** Which of `usernames` have a live connection in `topic`. */
  async onlineAmong(usernames: readonly string[], topic?: string): Promise<Set<string>> {
    const now = Date.now();
    const online = new Set<string>();
    await Promise.all(usernames.map(async (username) => {
      for await (const entry of this.#kv.list<Entry>({ prefix: this.#key(topic, username) })) {
        if (entry.value.expiry > now) {
          online.add(username);
          return;
        }
      }
    }));
    return online;
  }

  /** Every user with a live connection in `topic`. */
  async online(topic?: string): Promise<string[]> {
    return [...new Set((await this.list(topic)).map((connection) => connection.username))];
  }

  /** Every live connection in `topic`. */
  async list(topic: string = SITE_TOPIC): Promise<TrackedConnection[]> {
    const now = Date.now();
    const connections: TrackedConnection[] = [];
    for await (const entry of this.#kv.list<Entry>({ prefix: this.#key(topic) })) {
      if (entry.value.expiry <= now) continue;
      const [username, connectionId] = entry.key.slice(-2) as string[];
      connections.push({ username, connectionId, meta: entry.value.meta, topic });
    }
    return connections;
  }

  /** Registers who hears of users whose connections expired. */
  watch(changed: (usernames: string[], topic: string) => void): void {
    this.#heartbeat.watch(changed);
  }

  /** Stops the heartbeat and closes the database. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#heartbeat.stop();
    this.#kv.close();
    return Promise.resolve();
  }

  /** Refreshes this Worker's connections, then sweeps those of Workers that died. */
  async #beat(mine: TrackedConnection[]): Promise<ExpiredUsers> {
    await Promise.all(mine.map((connection) => this.#write(connection)));
    return await this.#sweep();
  }

  async #write({ username, connectionId, meta, topic }: TrackedConnection): Promise<void> {
    const entry: Entry = { meta, expiry: Date.now() + this.#ttlMs };
    // KV's own expiry is lazy and only tidies up; `expiry` in the value is what counts.
    const key = this.#key(topic, username, connectionId);
    await retryWhileLocked(() => this.#kv.set(key, entry, { expireIn: this.#ttlMs * 4 }));
  }

  /** Deletes expired connections; returns the users who have none left, by topic. */
  async #sweep(): Promise<ExpiredUsers> {
    const now = Date.now();
    // Keyed by topic and user: a user alive in one topic may be gone from another.
    const alive = new Set<string>();
    const expired = new Map<string, Deno.KvEntry<Entry>[]>();
    const site = this.#kv.list<Entry>({ prefix: [this.#prefix, "presence"] });
    const topics = this.#kv.list<Entry>({ prefix: [this.#prefix, "presence-topic"] });
    for (const entries of [site, topics]) {
      for await (const entry of entries) {
        const id = JSON.stringify(entry.key.slice(0, -1));
        if (entry.value.expiry > now) alive.add(id);
        else expired.set(id, [...expired.get(id) ?? [], entry]);
      }
    }
    const gone: ExpiredUsers = new Map();
    for (const [id, entries] of expired) {
      let deleted = false;
      for (const entry of entries) {
        // Only one Worker wins the delete, so only one announces the user.
        const result = await retryWhileLocked(() =>
          this.#kv.atomic().check(entry).delete(entry.key).commit()
        );
        deleted ||= result.ok;
      }
      if (!deleted || alive.has(id)) continue;
      const key = entries[0].key;
      const topic = key[1] === "presence" ? SITE_TOPIC : key[2] as string;
      gone.set(topic, [...gone.get(topic) ?? [], key.at(-2) as string]);
    }
    return gone;
  }

  #key(topic: string = SITE_TOPIC, ...parts: string[]): Deno.KvKey {
    if (topic === SITE_TOPIC) return [this.#prefix, "presence", ...parts];
    return [this.#prefix, "presence-topic", topic, ...parts];
  }
}

/** Opens presence shared through Deno KV, publishing its diffs through `layer`. */
export async function createKvPresence(
  layer: GroupLayer,
  options: PresenceOptions & KvPresenceOptions,
): Promise<PresenceCore> {
  const backend = await KvPresenceBackend.open(options);
  return new PresenceCore(layer, backend, { reconcileEveryMs: RECONCILE_EVERY_MS, ...options });
}
