/**
 * One server per `DATA_DIR`: a process that keeps its streams in memory and writes them to the
 * directory's Deno KV file (one process, or the parent of `--workers`) holds a lock on
 * `channels.lock` beside it. A second server on the same directory would keep the same rooms
 * under other epochs, give the same offsets again, and overwrite the first one's history.
 */
import { join } from "./platform_path.ts";

/** The lock's file in `dataDir`. */
export const LOCK_FILE = "channels.lock";

/** A held lock (`DATA_DIR`'s), let go on `close` (and by the system when the process ends). */
export interface DataDirLock {
  close(): void;
}

/**
 * Holds `dataDir` for this process, or throws an `Error` that names the process holding it (as
 * it wrote its pid into the file). The lock is the system's (`flock`): a server that crashed
 * holds nothing.
 */
export function lockDataDir(dataDir: string): Promise<DataDirLock> {
  return holdLockFile(join(dataDir, LOCK_FILE), (holder) =>
    new Error(
      `DATA_DIR ${dataDir} is in use by another server${holder}: two servers on one DATA_DIR ` +
        "would give the same offsets twice and overwrite each other's history. Give each " +
        "its own DATA_DIR, or run them on one Redis (LAYER=redis), or as --workers; a tool " +
        "beside a running server opens the backends with openBackends(config, " +
        "{ holdDataDir: false })",
    ));
}

/**
 * Holds the lock file at `path` (made if need be) for this process, writing its pid into it;
 * when another process holds it, throws what `inUse` makes of that process (" (pid 123)", or
 * "" when it wrote none).
 */
export async function holdLockFile(
  path: string,
  inUse: (holder: string) => Error,
): Promise<DataDirLock> {
  const file = await Deno.open(path, { read: true, write: true, create: true }).catch((error) => {
    throw unwritable(path, error);
  });
  try {
    if (!await file.tryLock(true)) {
      let holder = await holderOf(path);
      // The holder writes its pid right after it took the lock: read once more if not yet.
      if (holder === "") {
        holder = await new Promise((wait) => setTimeout(wait, 50)).then(() => holderOf(path));
      }
      throw inUse(/^\d+$/.test(holder) ? ` (pid ${holder})` : "");
    }
    try {
      await file.truncate(0);
      await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
    } catch (error) {
      throw unwritable(path, error);
    }
  } catch (error) {
    file.close();
    throw error;
  }
  return { close: () => file.close() };
}

async function holderOf(path: string): Promise<string> {
  return (await Deno.readTextFile(path).catch(() => "")).trim();
}

// The lock's file is the first thing a start writes: a full or read-only disk shows here.
function unwritable(path: string, error: unknown): Error {
  return new Error(
    `The lock file ${path} cannot be written: ${(error as Error).message} (is its disk full ` +
      "or read-only, or the directory another user's?)",
    { cause: error },
  );
}
