/**
 * A group send on the Redis layer while Redis is paused (TCP open, no answers): written and
 * unanswered, it is "not confirmed" (Redis publishes it once it answers), its own process's
 * members get it as the others will, and the connection is found lost (one line) and restored.
 * A join made meanwhile does not cost the other members what Redis publishes as it answers.
 */
import { assertEquals, assertRejects } from "@std/assert";
import { RedisLayer } from "../../layers/redis.ts";
import { PublishUnconfirmedError } from "../../layers/streams/contract.ts";
import { redisAvailability, startRedisServer, uniquePrefix } from "../_support/redis.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { Inbox } from "./_inbox.ts";
import { startTcpProxy } from "../_support/tcp_proxy.ts";

const { available } = await redisAvailability({ privateServer: true });

/** Two processes' layers on one prefix, `other` through `otherUrl`; closed at the scope's end. */
async function twoProcesses(url: string, name: string, otherUrl = url) {
  const prefix = uniquePrefix(name);
  const sender = await RedisLayer.open({ url, prefix });
  const other = await RedisLayer.open({ url: otherUrl, prefix });
  return {
    sender,
    other,
    async [Symbol.asyncDispose]() {
      await sender.close();
      await other.close();
    },
  };
}

Deno.test({
  name:
    "a group send to a paused Redis is not confirmed, and reaches every member once when Redis answers",
  ignore: !available,
  fn: async () => {
    using captured = new CapturedLog();
    await using redis = await startRedisServer();
    await using layers = await twoProcesses(redis.url, "paused-send");
    const { sender, other } = layers;
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
      redis.resume();
      await there.receives("maybe");
      await captured.waitFor(/Redis connection \(layer commands\) to \S+ restored/, 15_000);
      await sender.groupSend("room", { type: "back" });
      await there.receives("back");
      await here.receives("back");
      assertEquals(here.count("maybe") + there.count("maybe"), 2, "delivered once to each");
    } finally {
      redis.resume(); // before the layers close: a paused Redis would hold their goodbyes
    }
  },
});

Deno.test({
  name:
    "a join during a long pause does not restart the subscriber: what Redis publishes as it answers reaches the members",
  ignore: !available,
  fn: async () => {
    using captured = new CapturedLog();
    await using redis = await startRedisServer();
    await using layers = await twoProcesses(redis.url, "paused-join-publish");
    const { sender, other } = layers;
    try {
      const there = new Inbox(other, 20_000);
      await other.groupAdd("room", there.channel);
      redis.pause();
      await assertRejects(() => sender.groupSend("room", { type: "m1" }), PublishUnconfirmedError);
      // A join on the other process goes unanswered too, and the pause goes on for longer than
      // a PING's timeout after it (the length of the pause, not a wait for an event).
      await other.groupAdd("room2", there.channel);
      await captured.waitFor(/Subscribe to \S+ got no answer/);
      await new Promise((resolve) => setTimeout(resolve, 3000));
      redis.resume();
      await there.receives("m1");
      assertEquals(there.count("m1"), 1);
    } finally {
      redis.resume(); // before the layers close: a paused Redis would hold their goodbyes
    }
  },
});

Deno.test({
  name:
    "after a stalled subscribe was dropped with its connection, a join waits for Redis again: a send right after it reaches the new member",
  ignore: !available,
  fn: async () => {
    using captured = new CapturedLog();
    await using redis = await startRedisServer();
    await using proxy = startTcpProxy(redis.port);
    const proxied = `redis://127.0.0.1:${proxy.port}`;
    await using layers = await twoProcesses(redis.url, "stall-dropped", proxied);
    const { sender, other } = layers;
    const there = new Inbox(other, 10_000);
    proxy.hold(); // the network stalls: the SUBSCRIBE is written, never answered
    await other.groupAdd("stalled", there.channel);
    await captured.waitFor(/Subscribe to \S+ got no answer/);
    proxy.cut(); // then the connection drops: the pending SUBSCRIBE fails, unanswered
    proxy.restore();
    await captured.waitFor(/Redis connection \(layer subscriber\) to \S+ restored/, 20_000);
    for (let i = 0; i < 5; i++) {
      await other.groupAdd(`g${i}`, there.channel);
      // Redis counts the subscribers a publish reached: the join's is among them.
      const sent = await sender.groupSend(`g${i}`, { type: "hello", n: i });
      assertEquals(sent.remoteProcesses, 1, `join g${i} resolved before Redis had it`);
    }
  },
});
