import type { Store, StoreChange, StoreEntry, StoreKey } from "./store.ts";

// Deno KV takes at most 800 KiB in one atomic operation; chat history values stay under 48 KiB.
const CHANGES_PER_COMMIT = 12;

/**
 * The default store: Deno KV in a file under the data directory. One machine only: another
 * process may open the same file, but KV's `watch` and queues do not cross processes.
 */
export class DenoKvStore implements Store {
  #kv: Deno.Kv;
  #closed = false;

  private constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** Opens (creating) the KV file at `path`; `":memory:"` keeps it in memory; none: Deploy's. */
  static async open(path?: string): Promise<DenoKvStore> {
    return new DenoKvStore(await Deno.openKv(path));
  }

  async get<T>(key: StoreKey): Promise<T | null> {
    return (await this.#kv.get<T>(key)).value;
  }

  async set(key: StoreKey, value: unknown, options: { expireInMs?: number } = {}): Promise<void> {
    await this.#kv.set(key, value, options.expireInMs ? { expireIn: options.expireInMs } : {});
  }

  async create(key: StoreKey, value: unknown): Promise<boolean> {
    const result = await this.#kv.atomic().check({ key, versionstamp: null }).set(key, value)
      .commit();
    return result.ok;
  }

  async delete(key: StoreKey): Promise<void> {
    await this.#kv.delete(key);
  }

  async writeMany(changes: readonly StoreChange[]): Promise<void> {
    for (let at = 0; at < changes.length; at += CHANGES_PER_COMMIT) {
      const atomic = this.#kv.atomic();
      for (const change of changes.slice(at, at + CHANGES_PER_COMMIT)) {
        if ("delete" in change) atomic.delete(change.key);
        else atomic.set(change.key, change.value);
      }
      const result = await atomic.commit();
      if (!result.ok) throw new Error("Deno KV refused a batch of writes");
    }
  }

  async list<T>(
    prefix: StoreKey,
    options: { limit?: number; reverse?: boolean } = {},
  ): Promise<StoreEntry<T>[]> {
    const entries: StoreEntry<T>[] = [];
    for await (const entry of this.#kv.list<T>({ prefix }, options)) {
      // KV's expiry is lazy: an expired entry may still be listed for a while.
      entries.push({ key: entry.key as string[], value: entry.value });
    }
    return entries;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#kv.close();
  }
}
