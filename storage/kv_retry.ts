/**
 * Deno KV keeps a local database in SQLite. When two Workers or processes share the file,
 * a write can meet the other's lock and fail at once with "database is locked" instead of
 * waiting. Such a write did not happen, so it is safe to try again after a short pause.
 */

/** How long one operation may keep meeting a held lock before its error is let through. */
const GIVE_UP_AFTER_MS = 5_000;
const FIRST_PAUSE_MS = 2;
const LONGEST_PAUSE_MS = 200;

/** Runs `operation`, trying again with growing pauses while SQLite reports a held lock. */
export async function retryWhileLocked<T>(operation: () => Promise<T>): Promise<T> {
  const started = performance.now();
  for (let pause = FIRST_PAUSE_MS;; pause = Math.min(pause * 2, LONGEST_PAUSE_MS)) {
    try {
      return await operation();
    } catch (error) {
      if (!isLockedError(error) || performance.now() - started > GIVE_UP_AFTER_MS) throw error;
      // Jitter, so that two writers that collided do not collide again at the same moment.
      await new Promise((resolve) => setTimeout(resolve, pause * (0.5 + Math.random())));
    }
  }
}

/**
 * `Deno.openKv`, tried again while the file is locked: opening sets up the database (its
 * journal mode, its tables), and Workers or processes starting together meet each other there.
 */
export function openKv(path?: string): Promise<Deno.Kv> {
  // Without the flag Deno has no `openKv` at all: say which flag, not "not a function".
  if (typeof Deno.openKv !== "function") {
    return Promise.reject(new Error(KV_FLAG_MISSING));
  }
  return retryWhileLocked(() => Deno.openKv(path));
}

/** The error when Deno runs without Deno KV. */
export const KV_FLAG_MISSING = "Deno KV is not enabled: run Deno with --unstable-kv " +
  '(`deno run --unstable-kv …`, `deno test --unstable-kv …`), or add "unstable": ["kv"] to ' +
  "deno.json";

/** Whether `error` is SQLite's busy/locked failure as Deno KV reports it. */
export function isLockedError(error: unknown): boolean {
  return error instanceof Error && /database (table )?is locked|SQLITE_BUSY/i.test(error.message);
}
