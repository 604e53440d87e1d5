/**
 * Messages in this process's channels_redis inbox that it cannot read (a Django sender with
 * `symmetric_encryption_keys`): ignored, said once a minute with how many, and the rest delivered.
 */
import { assertEquals, assertMatch } from "@std/assert";
import { encode } from "@std/msgpack";
import { createClient } from "redis";
import { Buffer } from "node:buffer";
import { ChannelsRedisLayer } from "@channels/deno/channels_redis";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../_support/redis.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { Inbox } from "./_inbox.ts";
import { log } from "../../telemetry/log.ts";

const { available } = await redisAvailability();

// 12 random bytes, then what follows them.
function inboxMessage(body: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(crypto.getRandomValues(new Uint8Array(12))), body]);
}

Deno.test({
  name: "channels_redis layer: encrypted messages in the inbox are ignored in one line a minute, " +
    "saying why, and the next readable one is delivered",
  ignore: !available,
  fn: async () => {
    await using redis = await testRedisUrl();
    const prefix = uniquePrefix("cr");
    const layer = await ChannelsRedisLayer.open({ url: redis.url, prefix });
    const client = createClient({ url: redis.url });
    await client.connect();
    log.setLevel("warn");
    using captured = new CapturedLog();
    try {
      const member = new Inbox(layer, 5000);
      const inbox = `${prefix}specific.${layer.clientPrefix}!`;
      const now = Date.now() / 1000;
      // What Fernet makes of a message: "gAAAAA" and base64 (a real one is checked against
      // channels_redis in tests/interop/channels_redis_wire_test.ts).
      const encrypted = new TextEncoder().encode(`gAAAAABn${"x".repeat(120)}==`);
      await client.zAdd(inbox, [
        ...Array.from({ length: 30 }, (_, i) => ({
          score: now + i / 1000,
          value: inboxMessage(encrypted),
        })),
        {
          score: now + 1,
          value: inboxMessage(encode({ type: "after", __asgi_channel__: member.channel })),
        },
      ]);
      await member.receives("after");
      const ignored = captured.lines.filter((line) => line.includes("Ignored"));
      assertEquals(ignored.length, 1, ignored.join("\n"));
      assertMatch(ignored[0], /encrypted by channels_redis' symmetric_encryption_keys/);
    } finally {
      log.setLevel("silent");
      await layer.close();
      await client.close();
    }
  },
});
