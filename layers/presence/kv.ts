/**
 * Presence across the Workers of one process (`--workers N`) or the isolates of Deno Deploy:
 * the shared `PresenceCore` over a backend that keeps connections in Deno KV, the one
 * state every Worker (or isolate) sees. Diffs travel on the BroadcastChannel layer.
 *
 * One entry per connection, `[prefix, "presence", username, connectionId]`, holding its meta
 * and the time it expires unless its Worker refreshes it (every `ttlMs / 3`). Each Worker
 * sweeps the expired entries of Workers that died, so their users go offline for everyone.
 */
import type { GroupLayer } from "../layer.ts";
import type {
  PresenceBackend,
  PresenceMeta,
  PresenceOptions,
  TrackedConnection,
} from "./contract.ts";
import { PresenceHeartbeat, SharedPresence } from "./_shared.ts";
import { openKv, retryWhileLocked } from "../../storage/kv_retry.ts";

/** Where the KV presence backend keeps its entries. */
export interface KvPresenceOptions {
  /** The KV file; omitted: Deno's default (Deno Deploy's KV). */
  kvPath?: string;
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

  async add(connection: TrackedConnection): Promise<void> {
    this.#heartbeat.track(connection);
    await this.#write(connection);
  }

  async remove(connections: readonly TrackedConnection[]): Promise<void> {
    this.#heartbeat.untrack(connections);
    await Promise.all(
      connections.map(({ username, connectionId }) =>
        retryWhileLocked(() => this.#kv.delete(this.#key(username, connectionId)))
      ),
    );
  }

  async onlineAmong(usernames: readonly string[]): Promise<Set<string>> {
    const now = Date.now();
    const online = new Set<string>();
    await Promise.all(usernames.map(async (username) => {
      for await (const entry of this.#kv.list<Entry>({ prefix: this.#key(username) })) {
        if (entry.value.expiry > now) {
          online.add(username);
          return;
        }
      }
    }));
    return online;
  }

  async online(): Promise<string[]> {
    return [...new Set((await this.list()).map((connection) => connection.username))];
  }

  async list(): Promise<TrackedConnection[]> {
    const now = Date.now();
    const connections: TrackedConnection[] = [];
    for await (const entry of this.#kv.list<Entry>({ prefix: this.#key() })) {
      if (entry.value.expiry <= now) continue;
      const [username, connectionId] = entry.key.slice(-2) as string[];
      connections.push({ username, connectionId, meta: entry.value.meta });
    }
    return connections;
  }

  watch(changed: (usernames: string[]) => void): void {
    this.#heartbeat.watch(changed);
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#heartbeat.stop();
    this.#kv.close();
    return Promise.resolve();
  }

  /** Refreshes this Worker's connections, then sweeps those of Workers that died. */
  async #beat(mine: TrackedConnection[]): Promise<string[]> {
    await Promise.all(mine.map((connection) => this.#write(connection)));
    return await this.#sweep();
  }

  async #write({ username, connectionId, meta }: TrackedConnection): Promise<void> {
    const entry: Entry = { meta, expiry: Date.now() + this.#ttlMs };
    // KV's own expiry is lazy and only tidies up; `expiry` in the value is what counts.
    const key = this.#key(username, connectionId);
    await retryWhileLocked(() => this.#kv.set(key, entry, { expireIn: this.#ttlMs * 4 }));
  }

  /** Deletes expired connections; returns the users who have none left. */
  async #sweep(): Promise<string[]> {
    const now = Date.now();
    const alive = new Set<string>();
    const expired = new Map<string, Deno.KvEntry<Entry>[]>();
    for await (const entry of this.#kv.list<Entry>({ prefix: this.#key() })) {
      const username = entry.key.at(-2) as string;
      if (entry.value.expiry > now) alive.add(username);
      else expired.set(username, [...expired.get(username) ?? [], entry]);
    }
    const gone: string[] = [];
    for (const [username, entries] of expired) {
      let deleted = false;
      for (const entry of entries) {
        // Only one Worker wins the delete, so only one announces the user.
        const result = await retryWhileLocked(() =>
          this.#kv.atomic().check(entry).delete(entry.key).commit()
        );
        deleted ||= result.ok;
      }
      if (deleted && !alive.has(username)) gone.push(username);
    }
    return gone;
  }

  #key(...parts: string[]): Deno.KvKey {
    return [this.#prefix, "presence", ...parts];
  }
}

/** Opens presence shared through Deno KV, publishing its diffs through `layer`. */
export async function createKvPresence(
  layer: GroupLayer,
  options: PresenceOptions & KvPresenceOptions,
): Promise<SharedPresence> {
  return new SharedPresence(layer, await KvPresenceBackend.open(options), options);
}
