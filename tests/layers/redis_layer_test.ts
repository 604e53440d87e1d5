/**
 * What the Redis layer does beyond the shared contract: counts from Redis itself, the
 * documented wire format, and Redis going away and coming back.
 */
import { assertEquals, assertRejects } from "@std/assert";
import { createClient } from "redis";
import { publishToGroup, RedisLayer } from "../../layers/redis.ts";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../_support/redis.ts";
import { Inbox } from "./_inbox.ts";
import { assertOutageRecovered } from "./_outage.ts";
import { log } from "../../telemetry/log.ts";
import { CapturedLog } from "../_support/captured_log.ts";

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

// 120 arrays deep: valid JSON that no layer takes (events nest at most 100 deep).
const NESTED_TOO_DEEP = `{"type":"deep","a":${"[".repeat(120)}${"]".repeat(120)}}`;

Deno.test({
  name: "redis layer: a message from outside nested too deep is ignored; what follows arrives",
  ignore: !available,
  fn: async () => {
    const prefix = uniquePrefix("deep");
    const layer = await RedisLayer.open({ url: redis!.url, prefix });
    const publisher = createClient({ url: redis!.url });
    await publisher.connect();
    using captured = new CapturedLog();
    log.setLevel("warn");
    try {
      const inbox = new Inbox(layer, 5000);
      await layer.groupAdd("room", inbox.channel);
      const group = `${prefix}:group:room`;
      await publisher.publish(group, '{"type":"before"}');
      await publisher.publish(group, NESTED_TOO_DEEP);
      await publisher.publish(group, '{"type":"after"}');
      await inbox.receives("after");
      // One subscriber connection for every group: had it been dropped, `after` was lost.
      assertEquals(inbox.events.map((event) => event.type), ["before", "after"]);
      await captured.waitFor(new RegExp(`WARN Ignored a message on ${group}: .*100 deep`));
      assertEquals(captured.lines.filter((line) => /lost|reconnect/i.test(line)), []);
      // A worker's queue: the message is taken, so it is lost, and said so.
      const worker = new Inbox(null, 5000);
      const unlisten = await layer.listen("thumbnails", worker.deliver);
      await publisher.rPush(`${prefix}:channel:{thumbnails}`, [NESTED_TOO_DEEP, '{"type":"ok"}']);
      await worker.receives("ok");
      assertEquals(worker.events.map((event) => event.type), ["ok"]);
      await captured.waitFor(/WARN Dropped a message taken from .*\{thumbnails\}: .*100 deep/);
      await unlisten();
    } finally {
      log.setLevel("silent");
      await publisher.close();
      await layer.close();
    }
  },
});

Deno.test({
  name: "redis layer: an event nested too deep is refused at `deno task send`'s publish",
  ignore: !available,
  fn: async () => {
    const prefix = uniquePrefix("deep-send");
    const event = JSON.parse(NESTED_TOO_DEEP);
    await assertRejects(
      () => publishToGroup({ url: redis!.url, prefix }, "room", event),
      TypeError,
      "100 deep",
    );
  },
});

Deno.test({
  name: "redis layer: while Redis is away a send rejects; once it is back, delivery resumes",
  ignore: !privateServer,
  // A group joined while Redis was away is subscribed on reconnect.
  fn: () => assertOutageRecovered((url, prefix) => RedisLayer.open({ url, prefix })),
});
