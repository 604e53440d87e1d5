import { createClient } from "redis";
import { streamConformance } from "./conformance.ts";
import { RedisLayer } from "../../../layers/redis.ts";
import { RedisStreams } from "../../../layers/streams/redis.ts";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../../_support/redis.ts";

const { available } = await redisAvailability();
const redis = available ? await testRedisUrl() : null;
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());

streamConformance("redis streams", () => {
  const prefix = uniquePrefix("streams");
  const url = redis!.url;
  return Promise.resolve({
    open: async () => {
      const layer = await RedisLayer.open({ url, prefix });
      return {
        layer,
        streams: await RedisStreams.open({ url, prefix, layer, publishInScript: true }),
      };
    },
    // What a Redis restarted empty has lost: the keys, and the loaded scripts.
    lose: async () => {
      const client = createClient({ url });
      await client.connect();
      for await (const keys of client.scanIterator({ MATCH: `${prefix}:*` })) {
        if (keys.length > 0) await client.del(keys);
      }
      await client.scriptFlush();
      await client.close();
    },
    [Symbol.asyncDispose]: () => Promise.resolve(),
  });
}, { shared: true, ignore: !available });
