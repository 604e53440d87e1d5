import { createClient } from "redis";
import { streamConformance } from "./conformance.ts";
import { RedisLayer } from "../../../layers/redis.ts";
import { RedisStreams } from "../../../layers/streams/redis.ts";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../../_support/redis.ts";

const { available } = await redisAvailability();
const redis = available ? await testRedisUrl() : null;
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());

// `lingerMs`: the scripts wait to share round trips (`REDIS_LINGER_MS`); every guarantee holds.
function redisStreamsSuite(name: string, lingerMs?: number): void {
  streamConformance(name, () => {
    const prefix = uniquePrefix("streams");
    const url = redis!.url;
    return Promise.resolve({
      open: async () => {
        const layer = await RedisLayer.open({ url, prefix });
        const streams = await RedisStreams.open({
          url,
          prefix,
          layer,
          publishInScript: true,
          lingerMs,
        });
        return { layer, streams };
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
}

redisStreamsSuite("redis streams");
redisStreamsSuite("redis streams with a linger", 5);
