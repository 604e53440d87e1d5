/**
 * Opens the group layer the configuration names (`LAYER`):
 *
 * - `memory` (default): one process; nothing leaves it.
 * - `broadcast`: BroadcastChannel between the Workers of one process (`--workers N`) or the
 *   isolates of Deno Deploy, with Deno KV as the membership registry.
 * - `redis`: Redis pub/sub between processes and machines (`REDIS_URL`, `REDIS_PREFIX`).
 */
import type { Config } from "../server/config.ts";
import type { GroupLayer } from "./layer.ts";
import { InMemoryLayer } from "./in_memory.ts";
import { kvPath } from "../storage/mod.ts";
import type { PresenceTracker } from "./presence.ts";

/** Opens the layer the configuration names; rejects with a clear message when it cannot. */
export async function openLayer(config: Config): Promise<GroupLayer> {
  switch (config.layer) {
    case "memory":
      return new InMemoryLayer();
    case "redis": {
      // Loaded on demand: the default single process never pays for node-redis.
      const { RedisLayer } = await import("./redis.ts");
      return await RedisLayer.open({ url: config.redisUrl, prefix: config.redisPrefix });
    }
    case "broadcast": {
      // The Workers of one app open the same KV file: that file names the app.
      const path = await kvPath(config);
      const { BroadcastLayer } = await import("./broadcast.ts");
      return await BroadcastLayer.open({ kvPath: path, prefix: `${config.redisPrefix}@${path}` });
    }
  }
}

/**
 * Opens the presence tracker that reaches as far as the layer: shared through Redis with
 * `LAYER=redis`, through Deno KV with `broadcast` (the Workers of one process, or Deploy's
 * isolates); `undefined` for `memory`, where the app's in-process tracker is right.
 */
export async function openPresence(
  config: Config,
  layer: GroupLayer,
): Promise<PresenceTracker | undefined> {
  const options = { graceMs: config.presenceGraceMs };
  switch (config.layer) {
    case "memory":
      return undefined;
    case "redis": {
      const { createRedisPresence } = await import("./presence_redis.ts");
      return await createRedisPresence(layer, {
        ...options,
        url: config.redisUrl,
        prefix: config.redisPrefix,
      });
    }
    case "broadcast": {
      const path = await kvPath(config);
      const { createKvPresence } = await import("./presence_kv.ts");
      return await createKvPresence(layer, {
        ...options,
        kvPath: path,
        prefix: config.redisPrefix,
      });
    }
  }
}
