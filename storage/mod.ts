/**
 * Opens the store for the configuration.
 *
 * Where durable state (users, sessions, chat history) lives follows from the layer, because
 * the layer says how far the deployment reaches:
 * - `LAYER=redis` means several processes, possibly on several machines. A Deno KV file is
 *   local to one machine, so the state goes to the same Redis the layer uses: one place that
 *   every process sees, under the same `REDIS_PREFIX`.
 * - Otherwise (`memory`, `broadcast`) everything runs on one machine (or on Deno Deploy), and
 *   Deno KV needs no service: a file under the data directory, shared by every Worker of the
 *   process that opens it; on Deploy, Deploy's own global KV.
 */
import type { Config } from "../server/config.ts";
import type { Store } from "./store.ts";
import { DenoKvStore } from "./deno_kv_store.ts";
import { join } from "@std/path";

/** Opens the store for the configuration (see the module comment for the choice). */
export async function openStore(config: Config): Promise<Store> {
  if (config.layer === "redis") {
    // Loaded on demand: the default single process never pays for node-redis.
    const { RedisStore } = await import("./redis_store.ts");
    return await RedisStore.open({ url: config.redisUrl, prefix: config.redisPrefix });
  }
  return await DenoKvStore.open(await kvPath(config));
}

/**
 * The Deno KV file of this configuration, its directory created; `undefined` on Deno Deploy,
 * where `Deno.openKv()` without a path opens the deployment's KV.
 */
export async function kvPath(config: Config): Promise<string | undefined> {
  if (Deno.env.get("DENO_DEPLOYMENT_ID")) return undefined;
  await Deno.mkdir(config.dataDir, { recursive: true });
  return join(config.dataDir, "channels.kv");
}
