/**
 * The conformance suites of everything on Redis (the layer, presence across two processes,
 * the store), run through one Sentinel or Cluster form, each on a fresh prefix.
 */
import { layerConformance } from "./conformance.ts";
import { presenceConformance } from "./presence/conformance.ts";
import { twoCores } from "./_two_processes.ts";
import { storeContract } from "../storage/store_contract.ts";
import { RedisLayer } from "../../layers/redis.ts";
import { RedisPresenceBackend } from "../../layers/presence/redis.ts";
import { RedisStore } from "../../storage/redis_store.ts";
import type { RedisForm } from "../../storage/redis_connection.ts";
import { uniquePrefix } from "../_support/redis.ts";

/**
 * Registers the three suites, named `redis layer <where>`, `redis <where>` and
 * `redis store <where>`, with prefixes starting `<prefix>-`; `form` is `undefined` when
 * `ignore` is set.
 */
export function redisFormSuites(
  where: string,
  form: RedisForm | undefined,
  options: { prefix: string; ignore: boolean },
): void {
  const { ignore } = options;
  const layerPrefix = uniquePrefix(`${options.prefix}-layer`);
  layerConformance(`redis layer ${where}`, () => RedisLayer.open({ form, prefix: layerPrefix }), {
    shared: true,
    ignore,
  });

  presenceConformance(`redis ${where}`, async (presenceOptions) => {
    const prefix = uniquePrefix(`${options.prefix}-presence`);
    return await twoCores(presenceOptions, async () => ({
      layer: await RedisLayer.open({ form, prefix }),
      backend: await RedisPresenceBackend.open({ form, prefix }),
    }));
  }, { crossProcess: true, ignore });

  const storePrefix = uniquePrefix(`${options.prefix}-store`);
  storeContract(`redis store ${where}`, () => RedisStore.open({ form, prefix: storePrefix }), {
    shared: true,
    ignore,
  });
}
