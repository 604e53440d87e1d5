import { assertEquals } from "@std/assert";
import { presenceConformance } from "./conformance.ts";
import { twoProcesses } from "../_two_processes.ts";
import { RedisLayer } from "../../../layers/redis.ts";
import { RedisPresenceBackend } from "../../../layers/presence/redis.ts";
import { PresenceCore } from "../../../layers/presence/core.ts";
import { RECONCILE_EVERY_MS } from "../../../layers/presence/_shared.ts";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../../_support/redis.ts";
import { log } from "../../../server/log.ts";

log.setLevel("error");
const { available } = await redisAvailability();
const redis = available ? await testRedisUrl() : null;
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());

// Two processes: each its own layer, backend and tracker, over one Redis and one prefix.
presenceConformance("redis", async (options) => {
  const prefix = uniquePrefix("presence");
  const open = async () => {
    const layer = await RedisLayer.open({ url: redis!.url, prefix });
    const backend = await RedisPresenceBackend.open({ url: redis!.url, prefix });
    return {
      layer,
      tracker: new PresenceCore(layer, backend, {
        ...options,
        reconcileEveryMs: RECONCILE_EVERY_MS,
      }),
    };
  };
  return await twoProcesses(open);
}, { crossProcess: true, ignore: !available });

Deno.test({
  name: "presence redis: a process that dies without a word loses its users after the TTL",
  ignore: !available,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const prefix = uniquePrefix("presence-crash");
    const dying = await RedisPresenceBackend.open({ url: redis!.url, prefix, ttlMs: 300 });
    const survivor = await RedisPresenceBackend.open({ url: redis!.url, prefix, ttlMs: 300 });
    const changed = Promise.withResolvers<string[]>();
    const changedInRoom = Promise.withResolvers<string[]>();
    survivor.watch((users, topic) => {
      if (topic === "site") changed.resolve(users);
      else if (topic === "chat.lobby") changedInRoom.resolve(users);
    });
    await dying.add({ username: "ghost", connectionId: "c1", meta: {} });
    await dying.add({ username: "ghost", connectionId: "c3", meta: {}, topic: "chat.lobby" });
    await survivor.add({ username: "alive", connectionId: "c4", meta: {}, topic: "chat.lobby" });
    await survivor.add({ username: "alive", connectionId: "c2", meta: {} });
    assertEquals((await survivor.online()).sort(), ["alive", "ghost"]);
    await dying.close(); // stops its heartbeat without removing anything, like a SIGKILL
    assertEquals(await changed.promise, ["ghost"]);
    assertEquals(await changedInRoom.promise, ["ghost"], "the room's ghost expires too");
    assertEquals(await survivor.online(), ["alive"]);
    assertEquals(await survivor.online("chat.lobby"), ["alive"]);
    await survivor.close();
  },
});
