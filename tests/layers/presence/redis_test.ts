import { presenceConformance } from "./conformance.ts";
import { assertDeadProcessExpires } from "./_dead_process.ts";
import { twoCores } from "../_two_processes.ts";
import { RedisLayer } from "../../../layers/redis.ts";
import { RedisPresenceBackend } from "../../../layers/presence/redis.ts";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../../_support/redis.ts";
import { log } from "../../../server/log.ts";

log.setLevel("error");
const { available } = await redisAvailability();
const redis = available ? await testRedisUrl() : null;
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());

// Two processes: each its own layer, backend and tracker, over one Redis and one prefix.
presenceConformance("redis", async (options) => {
  const prefix = uniquePrefix("presence");
  return await twoCores(options, async () => ({
    layer: await RedisLayer.open({ url: redis!.url, prefix }),
    backend: await RedisPresenceBackend.open({ url: redis!.url, prefix }),
  }));
}, { crossProcess: true, ignore: !available });

Deno.test({
  name: "presence redis: a process that dies without a word loses its users after the TTL",
  ignore: !available,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const prefix = uniquePrefix("presence-crash");
    const dying = await RedisPresenceBackend.open({ url: redis!.url, prefix, ttlMs: 300 });
    const survivor = await RedisPresenceBackend.open({ url: redis!.url, prefix, ttlMs: 300 });
    await assertDeadProcessExpires(dying, survivor);
  },
});
