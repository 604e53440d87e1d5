import { layerConformance } from "./conformance.ts";
import { RedisLayer } from "../../layers/redis.ts";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../_support/redis.ts";
import { log } from "../../telemetry/log.ts";

log.setLevel("error"); // the overflow case logs a warning by design
const { available } = await redisAvailability();
const redis = available ? await testRedisUrl() : null;
// Stopping sends SIGTERM at once, which is all an unload handler can wait for.
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());
const prefix = uniquePrefix("conformance");
layerConformance("redis layer", () => RedisLayer.open({ url: redis!.url, prefix }), {
  shared: true,
  ignore: !available,
});
