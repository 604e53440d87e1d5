/**
 * The registry the `broadcast` layer's Workers keep in their KV file (`broadcast_transport.ts`):
 * each Worker, its groups and its named channels' listeners, each entry refreshed while its
 * Worker lives and expiring 30 s after. What a killed run left is forgotten at the next start.
 */
import { retryWhileLocked } from "../storage/kv_retry.ts";

/** The kinds of the registry's entries: each Worker, its groups, its named channels' listeners. */
const REGISTRY_KINDS = ["processes", "groups", "listeners"] as const;

/**
 * Deletes every registry entry under `prefix` in `kv`; resolves with how many there were. For the
 * process that holds the KV file's server (its DATA_DIR), before its Workers start: the entries
 * of a run that was killed (SIGKILL, a crash, a Worker that failed) were never taken out, and
 * until they expired a named channel's events went to a dead Worker (its `/roll`s answered by
 * nobody), and groups' events to dead channels.
 */
export async function forgetRegistry(kv: Deno.Kv, prefix: string): Promise<number> {
  let forgotten = 0;
  let keys: Deno.KvKey[] = [];
  // In batches: a crashed run of thousands of rooms leaves thousands of entries, and one commit
  // each would hold the start for seconds.
  const deleteKeys = async () => {
    const batch = keys;
    keys = [];
    await retryWhileLocked(() => {
      const deleting = kv.atomic();
      for (const key of batch) deleting.delete(key);
      return deleting.commit();
    });
    forgotten += batch.length;
  };
  for (const kind of REGISTRY_KINDS) {
    for await (const entry of kv.list({ prefix: [prefix, kind] })) {
      keys.push(entry.key);
      if (keys.length === FORGET_BATCH) await deleteKeys();
    }
  }
  if (keys.length > 0) await deleteKeys();
  return forgotten;
}

/** Registry entries one commit deletes (Deno KV takes at most 1,000 mutations in one). */
const FORGET_BATCH = 500;
