/**
 * Where the Deno KV file of a configuration lives. Which store a deployment uses is decided
 * with the layer, in `server/backends.ts`.
 */
import { join } from "./platform_path.ts";

/**
 * The Deno KV file kept in `dataDir` (the configuration's `DATA_DIR`), the directory created;
 * `undefined` on Deno Deploy, where `Deno.openKv()` without a path opens the deployment's KV.
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
  return join(dataDir, "channels.kv");
}
