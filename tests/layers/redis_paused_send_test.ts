/**
 * A group send on the Redis layer while Redis is paused (TCP open, no answers): written and
 * unanswered, it is "not confirmed" (Redis publishes it once it answers), its own process's
 * members get it as the others will, and the connection is found lost: one line, and the sends
 * after it are refused at once rather than each waiting out the 3 s bound.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { RedisLayer } from "../../layers/redis.ts";
import { PublishUnconfirmedError } from "../../layers/streams/contract.ts";
import { isBackendUnavailable } from "../../storage/unavailable.ts";
import { redisAvailability, startRedisServer, uniquePrefix } from "../_support/redis.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { Inbox } from "./_inbox.ts";

const { available } = await redisAvailability({ privateServer: true });

Deno.test({
  name:
    "a group send to a paused Redis is not confirmed, reaches every member once Redis answers, and the sends after it fail at once",
  ignore: !available,
  fn: async () => {
    using captured = new CapturedLog();
    await using redis = await startRedisServer();
    const prefix = uniquePrefix("paused-send");
    const sender = await RedisLayer.open({ url: redis.url, prefix });
    const other = await RedisLayer.open({ url: redis.url, prefix });
    try {
      const here = new Inbox(sender, 10_000);
      const there = new Inbox(other, 10_000);
      await sender.groupAdd("room", here.channel);
      await other.groupAdd("room", there.channel);
      redis.pause();
      await assertRejects(
        () => sender.groupSend("room", { type: "maybe" }),
        PublishUnconfirmedError,
        "no answer in time",
      );
      await here.receives("maybe"); // as the other process will, once Redis answers
      await captured.waitFor(/Redis connection \(layer commands\) to \S+ lost/);
      const start = performance.now();
      const refused = await sender.groupSend("room", { type: "after" }).catch((e) => e);
      assert(isBackendUnavailable(refused), String(refused));
      assert(!(refused instanceof PublishUnconfirmedError), "never written: not sent");
      const ms = performance.now() - start;
      assert(ms < 500, `the next send waited ${Math.round(ms)} ms`);
      redis.resume();
      await there.receives("maybe");
      await captured.waitFor(/Redis connection \(layer commands\) to \S+ restored/, 15_000);
      await sender.groupSend("room", { type: "back" });
      await there.receives("back");
      await here.receives("back");
      assertEquals(here.count("maybe") + there.count("maybe"), 2, "delivered once to each");
      assertEquals(here.count("after") + there.count("after"), 0, "a refused send arrived");
    } finally {
      redis.resume();
      await sender.close();
      await other.close();
    }
  },
});
