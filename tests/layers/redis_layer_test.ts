/**
 * What the Redis layer does beyond the shared contract: counts from Redis itself, the
 * documented wire format, and Redis going away and coming back.
 */
import { assertEquals } from "@std/assert";
import { createClient } from "redis";
import { RedisLayer } from "../../layers/redis.ts";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../_support/redis.ts";
import { Inbox } from "./_inbox.ts";
import { assertOutageRecovered } from "./_outage.ts";
import { log } from "../../telemetry/log.ts";

log.setLevel("silent"); // the outage test logs the outage by design
const { available } = await redisAvailability();
const { available: privateServer } = await redisAvailability({ privateServer: true });
const redis = available ? await testRedisUrl() : null;
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());

Deno.test({
  name: "redis layer: a send counts the process that owns the channel only while it listens",
  ignore: !available,
  fn: async () => {
    const prefix = uniquePrefix("owner");
    const sender = await RedisLayer.open({ url: redis!.url, prefix });
    const owner = await RedisLayer.open({ url: redis!.url, prefix });
    try {
      const inbox = new Inbox(owner, 5000);
      const reached = await sender.send(inbox.channel, { type: "direct" });
      await inbox.receives("direct");
      assertEquals(reached.remoteProcesses, 1);
      await owner.close();
      const lost = await sender.send(inbox.channel, { type: "late" });
      // Known to be gone: reported, not silent.
      assertEquals(lost, { delivered: 0, dropped: 0, remoteProcesses: 0, noListener: true });
    } finally {
      await sender.close();
      await owner.close();
    }
  },
});

Deno.test({
  name: "redis layer: an event published by any program in the documented format is delivered",
  ignore: !available,
  fn: async () => {
    const prefix = uniquePrefix("wire");
    const layer = await RedisLayer.open({ url: redis!.url, prefix });
    const publisher = createClient({ url: redis!.url });
    await publisher.connect();
    try {
      const inbox = new Inbox(layer, 5000);
      await layer.groupAdd("chat.lobby", inbox.channel);
      await publisher.publish(`${prefix}:group:chat.lobby`, "not json");
      await publisher.publish(`${prefix}:group:chat.lobby`, '{"no":"type"}');
      await publisher.publish(
        `${prefix}:group:chat.lobby`,
        '{"type":"chat.message","message":{"message":"hi","author":"bot"}}',
      );
      await inbox.receives("chat.message");
      assertEquals(inbox.events, [
        { type: "chat.message", message: { message: "hi", author: "bot" } },
      ]);
    } finally {
      await publisher.close();
      await layer.close();
    }
  },
});

Deno.test({
  name: "redis layer: while Redis is away a send rejects; once it is back, delivery resumes",
  ignore: !privateServer,
  // A group joined while Redis was away is subscribed on reconnect.
  fn: () => assertOutageRecovered((url, prefix) => RedisLayer.open({ url, prefix })),
});
