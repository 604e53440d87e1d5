/**
 * Where the Deno KV file of a configuration lives. Which store a deployment uses is decided
 * with the layer, in `server/backends.ts`.
 */
import type { Config } from "../server/config.ts";
import { join } from "@std/path";

/**
 * The Deno KV file of this configuration, its directory created; `undefined` on Deno Deploy,
 * where `Deno.openKv()` without a path opens the deployment's KV.
 */
export async function kvPath(config: Config): Promise<string | undefined> {
  if (Deno.env.get("DENO_DEPLOYMENT_ID")) return undefined;
  await Deno.mkdir(config.dataDir, { recursive: true });
  return join(config.dataDir, "channels.kv");
}
