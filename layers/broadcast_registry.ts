/**
 * The registry the `broadcast` layer's Workers keep in their KV file (`broadcast_transport.ts`):
 * each Worker, its groups and its named channels' listeners, each entry refreshed while its
 * Worker lives and expiring 30 s after. What a killed run left is forgotten at the next start.
 */
import type { Store } from "../storage/store.ts";

/** The kinds of the registry's entries: each Worker, its groups, its named channels' listeners. */
const REGISTRY_KINDS = ["processes", "groups", "listeners"] as const;

/**
 * Deletes every registry entry under `prefix` in the KV file `store` holds; resolves with how
 * many there were. For the process that holds the KV file's server (its DATA_DIR), before its
 * Workers start: the entries of a run that was killed (SIGKILL, a crash, a Worker that failed)
 * were never taken out, and until they expired a named channel's events went to a dead Worker
 * (its `/roll`s answered by nobody), and groups' events to dead channels. Through the store's
 * own handle on the file, in as few commits as fit (a crashed run of thousands of rooms leaves
 * thousands of entries, and one commit each would hold the start for seconds).
 */
export async function forgetRegistry(store: Store, prefix: string): Promise<number> {
  let forgotten = 0;
  for (const kind of REGISTRY_KINDS) {
    const entries = await store.list([prefix, kind]);
    await store.writeMany(entries.map(({ key }) => ({ key, delete: true as const })));
    forgotten += entries.length;
  }
  return forgotten;
}
