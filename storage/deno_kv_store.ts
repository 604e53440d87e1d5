import {
  PartlyWrittenError,
  type Store,
  type StoreChange,
  type StoreEntry,
  type StoreKey,
} from "./store.ts";
import { openKv, retryWhileLocked } from "./kv_retry.ts";
import { sameStoredValue } from "./_same_value.ts";

// Deno KV's limit on mutations in one atomic operation. It also limits their total size (800
// KiB of values, 80 KiB of keys): a commit over those is split in halves until it fits.
const MAX_CHANGES_PER_COMMIT = 1000;

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
  /**
   * Opens the Deno KV file at `path` (the deployment's KV without one). A file that cannot be
   * opened is named in the error, with what to look at: SQLite's own messages name neither.
   */
  static async open(path?: string): Promise<DenoKvStore> {
    let kv: Deno.Kv | null = null;
    try {
      kv = await openKv(path);
      // SQLite opens a file it may read but not write read-only, and says nothing: every
      // write would then fail while the server ran. One write now tells.
      if (path !== undefined && path !== ":memory:") await checkWritable(kv);
      return new DenoKvStore(kv);
    } catch (error) {
      kv?.close();
      // Not the file's fault: no path to name.
      if (path === undefined || path === ":memory:" || kv === null && isKvMissing()) throw error;
      throw new Error(`Deno KV file ${path}: ${unopenedBecause(error)}`, { cause: error });
    }
  }

  async get<T>(key: StoreKey): Promise<T | null> {
    return (await retryWhileLocked(() => this.#kv.get<T>(key))).value;
  }

  async set(key: StoreKey, value: unknown, options: { expireInMs?: number } = {}): Promise<void> {
    const expiry = options.expireInMs ? { expireIn: options.expireInMs } : {};
    await retryWhileLocked(() => this.#kv.set(key, value, expiry));
  }

  async create(key: StoreKey, value: unknown): Promise<boolean> {
    // A retried commit is checked again, so a lost race still answers false.
    const result = await retryWhileLocked(() =>
      this.#kv.atomic().check({ key, versionstamp: null }).set(key, value).commit()
    );
    return result.ok;
  }

  async replace(key: StoreKey, expected: unknown, value: unknown): Promise<boolean> {
    // KV checks versions, not values: the value is compared here, and the write is checked
    // against the version compared, so a write since (of any value) answers false.
    const entry = await retryWhileLocked(() => this.#kv.get(key));
    if (entry.versionstamp === null || !sameStoredValue(entry.value, expected)) return false;
    const result = await retryWhileLocked(() =>
      this.#kv.atomic().check(entry).set(key, value).commit()
    );
    return result.ok;
  }

  async delete(key: StoreKey): Promise<void> {
    await retryWhileLocked(() => this.#kv.delete(key));
  }

  async writeMany(changes: readonly StoreChange[]): Promise<void> {
    // As few commits as fit: each commit costs SQLite a transaction and its WAL pages, so one
    // commit of a hundred changes costs far less than nine of twelve.
    let at = 0;
    let most = MAX_CHANGES_PER_COMMIT;
    while (at < changes.length) {
      const count = Math.min(most, changes.length - at);
      try {
        await this.#commit(changes.slice(at, at + count));
        at += count;
      } catch (error) {
        // Refused before anything was written: halve, and keep the smaller size for the rest.
        if (count === 1 || !isOverLimit(error)) {
          throw at === 0 ? error : new PartlyWrittenError(at, error);
        }
        most = Math.ceil(count / 2);
      }
    }
  }

  async #commit(changes: readonly StoreChange[]): Promise<void> {
    const result = await retryWhileLocked(() => {
      const atomic = this.#kv.atomic();
      for (const change of changes) {
        if ("delete" in change) atomic.delete(change.key);
        else {
          const expiring = change.expireInMs ? { expireIn: change.expireInMs } : undefined;
          atomic.set(change.key, change.value, expiring);
        }
      }
      return atomic.commit();
    });
    if (!result.ok) throw new Error("Deno KV refused a batch of writes");
  }

  async list<T>(
    prefix: StoreKey,
    options: { limit?: number; reverse?: boolean } = {},
  ): Promise<StoreEntry<T>[]> {
    return await retryWhileLocked(async () => {
      const entries: StoreEntry<T>[] = [];
      for await (const entry of this.#kv.list<T>({ prefix }, options)) {
        // KV's expiry is lazy: an expired entry may still be listed for a while.
        entries.push({ key: entry.key as string[], value: entry.value });
      }
      return entries;
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#kv.close();
  }
}

function isKvMissing(): boolean {
  return typeof Deno.openKv !== "function";
}

// A key no other code uses, written and removed at each open.
const WRITE_CHECK_KEY = ["_write_check"];

async function checkWritable(kv: Deno.Kv): Promise<void> {
  await retryWhileLocked(() => kv.set(WRITE_CHECK_KEY, true));
  await retryWhileLocked(() => kv.delete(WRITE_CHECK_KEY));
}

/** Deno KV's answer to an atomic operation over its size or count limits. */
function isOverLimit(error: unknown): boolean {
  return error instanceof TypeError && /too large|too many/i.test(error.message);
}

// SQLite's message for a file it could not open, and what to look at for it.
function unopenedBecause(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const hint = /disk I\/O error|disk is full/i.test(message)
    ? "is its disk full, or read-only?"
    : /unable to open/i.test(message)
    ? "may this process create and write files in DATA_DIR?"
    : /read-?only/i.test(message)
    ? "may this process write it? Look at its owner and mode"
    : /not a database|malformed/i.test(message)
    ? "it is damaged: move it away, and a new empty one is made at the next start"
    : null;
  return hint === null ? message : `${message} (${hint})`;
}
