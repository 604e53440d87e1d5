/**
 * Where the Deno KV file of a configuration lives. Which store a deployment uses is decided
 * with the layer, in `server/backends.ts`.
 */
import { join } from "./platform_path.ts";
import { log } from "../telemetry/log.ts";

/**
 * The Deno KV file kept in `dataDir` (the configuration's `DATA_DIR`), the directory created,
 * and the file readable and writable by this user only (see `ownerOnly`); `undefined` on Deno
 * Deploy, where `Deno.openKv()` without a path opens the deployment's KV.
 */
export async function kvPath(dataDir: string): Promise<string | undefined> {
  if (Deno.env.get("DENO_DEPLOYMENT_ID")) return undefined;
  try {
    // Its own user's only when made here: it holds password hashes and the token secret. One
    // that exists already keeps the mode its owner gave it.
    await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    // Deno's message names the directory only ("File exists (os error 17): mkdir ..."): say
    // which setting it came from, and what it must be.
    throw new Error(
      `DATA_DIR ${dataDir} cannot be used as a directory: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const path = join(dataDir, "channels.kv");
  if (Deno.build.os !== "windows") await ownerOnly(path);
  return path;
}

// The file holds password hashes and the token secret: its user's alone, whatever the
// directory's mode (one made by a Docker volume or systemd is often 0755) and the umask. Made
// empty here when missing (SQLite takes an empty file for a new database, and gives its journal
// files the database's mode); one of an earlier run that others may read is made owner-only.
async function ownerOnly(path: string): Promise<void> {
  try {
    await Deno.writeFile(path, new Uint8Array(), { createNew: true, mode: 0o600 });
    return;
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) return; // the open says what is wrong
  }
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      const mode = (await Deno.stat(file)).mode;
      if (mode === null || (mode & 0o077) === 0) continue;
      await Deno.chmod(file, mode & 0o700);
      log.info(`${file} was readable by other users: made readable by its owner only`);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue;
      log.warn(`${file} could not be made readable by its owner only`, error);
    }
  }
}
