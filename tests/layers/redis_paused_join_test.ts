/**
 * A join on the Redis layer while Redis is paused (TCP open, no answers): it goes on locally
 * after the 3 s bound instead of waiting out the pause, and the group is heard once Redis is back.
 */
import { assert } from "@std/assert";
import { RedisLayer } from "../../layers/redis.ts";
import { withTimeout } from "../../storage/with_timeout.ts";
import { redisAvailability, startRedisServer, uniquePrefix } from "../_support/redis.ts";
import { Inbox } from "./_inbox.ts";
import { log } from "../../telemetry/log.ts";

log.setLevel("silent"); // the paused subscribe is logged by design
const { available } = await redisAvailability({ privateServer: true });

Deno.test({
  name: "a join while Redis is paused completes within 3 s, and hears the group once Redis is back",
  ignore: !available,
  fn: async () => {
    await using redis = await startRedisServer();
    const prefix = uniquePrefix("paused-join");
    const sender = await RedisLayer.open({ url: redis.url, prefix });
    const receiver = await RedisLayer.open({ url: redis.url, prefix });
    try {
      const inbox = new Inbox(receiver, 10_000);
      redis.pause();
      const start = performance.now();
      await withTimeout(receiver.groupAdd("room", inbox.channel), 6000, "the join still waits");
      const ms = performance.now() - start;
      assert(ms < 4500, `the join took ${Math.round(ms)} ms`);
      redis.resume();
      // The subscribe written during the pause is answered now: the group is heard.
      await sender.groupSend("room", { type: "back" });
      await inbox.receives("back");
    } finally {
      redis.resume();
      await sender.close();
      await receiver.close();
    }
  },
});
