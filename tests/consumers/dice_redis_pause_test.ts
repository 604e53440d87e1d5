/**
 * `/roll` on the Redis layer while Redis is paused (a failover's stall): the queueing of the
 * command is written and goes unanswered, so its sender is told it is not confirmed, not "not
 * sent", and the roll that Redis then runs reaches the room once. Told "not sent", a user would
 * roll again, and roll twice.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { Communicator } from "../../testing.ts";
import { runChannelWorkers } from "../../mod.ts";
import { RedisLayer } from "../../layers/redis.ts";
import { COMMAND_NOT_CONFIRMED } from "../../consumers/chat.ts";
import { siteWorkers } from "../../routes/workers.ts";
import { createTestApp } from "../_support/test_app.ts";
import { redisAvailability, startRedisServer, uniquePrefix } from "../_support/redis.ts";

const { available } = await redisAvailability({ privateServer: true });

Deno.test({
  name:
    "a /roll whose queueing Redis did not answer is 'not confirmed' to its sender, then rolls once",
  ignore: !available,
  fn: async () => {
    await using redis = await startRedisServer();
    const layer = await RedisLayer.open({ url: redis.url, prefix: uniquePrefix("dice-pause") });
    await using app = await createTestApp({}, { layer });
    const workers = await runChannelWorkers(siteWorkers(app.services.config), app.services);
    try {
      const roller = new Communicator(app, "/ws/chat/lobby/");
      assert((await roller.connect()).accepted);
      redis.pause();
      roller.sendJson({ message: "/roll 2d6", ref: "r1" });
      const told = await roller.receiveJson(8000);
      redis.resume();
      assertEquals([told.type, told.ref, told.unconfirmed], ["error", "r1", true]);
      assertEquals(told.error, COMMAND_NOT_CONFIRMED);
      const roll = await roller.receiveJson(8000);
      assertEquals(roll.author, "Dice");
      assertMatch(String(roll.message), /^Anonymous rolled 2d6: /);
      assert(await roller.receiveNothing(300), "the roll came twice");
      await roller.disconnect();
    } finally {
      redis.resume();
      await workers.close();
    }
  },
});
