import { assert, assertEquals } from "@std/assert";
import { createClient } from "redis";
import { presenceConformance } from "./conformance.ts";
import { assertDeadProcessExpires } from "./_dead_process.ts";
import { twoCores } from "../_two_processes.ts";
import { RedisLayer } from "../../../layers/redis.ts";
import { createRedisPresence, RedisPresenceBackend } from "../../../layers/presence/redis.ts";
import { InMemoryLayer } from "../../../layers/in_memory.ts";
import {
  redisAvailability,
  startRedisServer,
  testRedisUrl,
  uniquePrefix,
} from "../../_support/redis.ts";
import { log } from "../../../telemetry/log.ts";
import { faketimeAvailable } from "../../_support/faketime.ts";

log.setLevel("error");
const { available } = await redisAvailability();
const redis = available ? await testRedisUrl() : null;
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());

// Two processes: each its own layer, backend and tracker, over one Redis and one prefix.
presenceConformance("redis", async (options) => {
  const prefix = uniquePrefix("presence");
  return await twoCores(options, async () => ({
    layer: await RedisLayer.open({ url: redis!.url, prefix }),
    backend: await RedisPresenceBackend.open({ url: redis!.url, prefix }),
  }));
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
    await assertDeadProcessExpires(dying, survivor);
  },
});

Deno.test({
  name: "presence redis: a refresh writes back every connection of every topic Redis lost",
  ignore: !available,
  fn: async () => {
    const prefix = uniquePrefix("presence-refresh");
    const backend = await RedisPresenceBackend.open({ url: redis!.url, prefix, ttlMs: 600 });
    try {
      const connection = (username: string, id: string, topic?: string) => ({
        username,
        connectionId: `${username}-${id}-${topic ?? "site"}`,
        meta: { tab: id },
        ...(topic === undefined ? {} : { topic }),
      });
      const tracked = [
        connection("ada", "1", "chat.a"),
        connection("ada", "2", "chat.a"),
        connection("bob", "1", "chat.a"),
        connection("ada", "1"),
        // More connections of one user in one topic than one refresh command holds.
        ...Array.from({ length: 1200 }, (_, i) => connection("crowd", String(i), "chat.big")),
      ];
      for (const entry of tracked) await backend.add(entry);
      const topics = [undefined, "chat.a", "chat.big"];
      const state = async () =>
        JSON.stringify(
          await Promise.all(topics.map(async (topic) => ({
            online: (await backend.online(topic)).sort(),
            connections: (await backend.list(topic)).map((c) => c.connectionId).sort(),
          }))),
        );
      const before = await state();
      assertEquals(JSON.parse(before)[2].connections.length, 1200);
      // Redis loses every key of this prefix (a restart without persistence, an eviction).
      const client = createClient({ url: redis!.url });
      await client.connect();
      try {
        const keys = await client.keys(`${prefix}*`);
        assert(keys.length > 0);
        await client.del(keys);
        assertEquals(JSON.parse(await state())[0].online, []);
      } finally {
        await client.close();
      }
      // The next refresh (every 200 ms here) writes them all back.
      const deadline = Date.now() + 5000;
      while (await state() !== before) {
        assert(Date.now() < deadline, "the refresh did not write every connection back");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await backend.close();
    }
  },
});

Deno.test({
  name: "presence redis: after Redis restarts empty, connections are written back on reconnect",
  ignore: !(await redisAvailability({ privateServer: true })).available,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await using server = await startRedisServer();
    // A beat every 20 s: what comes back sooner was written back on reconnect, not by a beat.
    const ttlMs = 60_000;
    const backend = await RedisPresenceBackend.open({ url: server.url, prefix: "p", ttlMs });
    try {
      await backend.add({ username: "ada", connectionId: "ada-1", meta: {}, topic: "chat.a" });
      assertEquals(await backend.online("chat.a"), ["ada"]);
      const restarted = Date.now();
      await server.restart();
      let online: string[] = [];
      while (online.length === 0 && Date.now() - restarted < ttlMs / 3) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        online = await backend.online("chat.a").catch(() => []);
      }
      assertEquals(online, ["ada"]);
      assert(Date.now() - restarted < ttlMs / 3, "written back only by the next beat");
    } finally {
      await backend.close();
    }
  },
});

// A process whose wall clock runs `skew` ahead (libfaketime): it opens presence on `prefix`,
// prints the users it sees online, tracks `username`, and exits without a word (a crash).
async function skewedProcess(prefix: string, skew: string, username: string): Promise<string[]> {
  const backend = new URL("../../../layers/presence/redis.ts", import.meta.url).href;
  const script = `
    import { RedisPresenceBackend } from ${JSON.stringify(backend)};
    const backend = await RedisPresenceBackend.open({ url: ${JSON.stringify(redis!.url)},
      prefix: ${JSON.stringify(prefix)} });
    console.log(JSON.stringify(await backend.online()));
    await backend.add({ username: ${JSON.stringify(username)}, connectionId: "c1", meta: {} });
    Deno.exit(0);
  `;
  const config = new URL("../../../deno.json", import.meta.url).pathname;
  const { stdout, stderr, success } = await new Deno.Command("faketime", {
    args: ["-f", skew, Deno.execPath(), "eval", "--config", config, script],
    env: { NO_COLOR: "1" },
  }).output();
  assert(success, new TextDecoder().decode(stderr));
  const lines = new TextDecoder().decode(stdout).trim().split("\n");
  return JSON.parse(lines.at(-1)!);
}

Deno.test({
  name: "presence redis: processes whose clocks disagree by minutes agree on who is online",
  ignore: !available || !await faketimeAvailable(),
  fn: async () => {
    const prefix = uniquePrefix("presence-skew");
    const here = await RedisPresenceBackend.open({ url: redis!.url, prefix, ttlMs: 15_000 });
    const client = createClient({ url: redis!.url });
    await client.connect();
    try {
      await here.add({ username: "ada", connectionId: "a1", meta: {} });
      // Five minutes ahead, it still sees ada, whose expiry this process wrote.
      assertEquals(await skewedProcess(prefix, "+300s", "bob"), ["ada"]);
      // Bob's connection expires by Redis's clock, not 5 minutes late: no ghost for so long.
      const [seconds] = (await client.sendCommand(["TIME"]) as string[]).map(Number);
      const expiry = Number(await client.zScore(`${prefix}:presence:user:bob`, "c1"));
      const late = expiry - seconds * 1000;
      assert(late > 0 && late <= 16_000, `bob expires ${late} ms after Redis's now`);
      // And a process five minutes behind sees both (bob until his TTL).
      assertEquals((await skewedProcess(prefix, "-300s", "eve")).sort(), ["ada", "bob"]);
    } finally {
      await client.close();
      await here.close();
    }
  },
});

Deno.test({
  name: "presence redis: a track refused while Redis is away leaves no ghost once it is back",
  ignore: !(await redisAvailability({ privateServer: true })).available,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await using server = await startRedisServer();
    const backend = await RedisPresenceBackend.open({
      url: server.url,
      prefix: "p",
      ttlMs: 60_000,
    });
    try {
      await backend.add({ username: "ada", connectionId: "ada-1", meta: {} });
      await server.stop();
      // A socket whose handshake is refused (503) for it: its consumer never untracks.
      let refused = false;
      await backend.add({ username: "carol", connectionId: "carol-1", meta: {} })
        .catch(() => refused = true);
      assert(refused, "the track was not refused while Redis was away");
      await server.restart();
      // Back, empty: the reconnect writes this process's connections back, ada's among them.
      let online: string[] = [];
      const deadline = Date.now() + 15_000;
      while (!online.includes("ada") && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        online = await backend.online().catch(() => []);
      }
      assertEquals(online.sort(), ["ada"]);
    } finally {
      await backend.close();
    }
  },
});

Deno.test({
  name: "presence redis: an untrack while a heartbeat waits on a stalled Redis is not undone by it",
  ignore: !(await redisAvailability({ privateServer: true })).available,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await using server = await startRedisServer();
    // A beat every 200 ms; each connection kept for 600 ms after its last write.
    const backend = await RedisPresenceBackend.open({ url: server.url, prefix: "p", ttlMs: 600 });
    try {
      const bob = { username: "bob", connectionId: "bob-1", meta: {} };
      await backend.add({ username: "ada", connectionId: "ada-1", meta: {} });
      await backend.add(bob);
      server.pause();
      // A beat starts meanwhile (one every 200 ms) and waits for Redis's clock.
      await new Promise((resolve) => setTimeout(resolve, 400));
      const removing = backend.remove([bob]);
      server.resume();
      await removing;
      // Asked after the beat's own write, on the same connection: bob must stay gone.
      assertEquals((await backend.online()).sort(), ["ada"]);
    } finally {
      await backend.close();
    }
  },
});

Deno.test({
  name:
    "presence redis: a refresh of a tracked connection refused while Redis is away keeps it tracked",
  ignore: !(await redisAvailability({ privateServer: true })).available,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await using server = await startRedisServer();
    const layer = new InMemoryLayer();
    // Kept 600 ms after each write: a connection no beat refreshes is gone within a second.
    const tracker = await createRedisPresence(layer, {
      url: server.url,
      prefix: "p",
      graceMs: 0,
      ttlMs: 600,
    });
    try {
      await tracker.track("ada", "ada-1", { v: 1 });
      await server.stop();
      let refused = false;
      await tracker.track("ada", "ada-1", { v: 2 }).catch(() => refused = true);
      assert(refused, "the refresh was not refused while Redis was away");
      await server.restart();
      // Back, empty: the connection, still open, is written back and kept by the heartbeat,
      // as it was before the refresh (its old meta).
      let listed: Record<string, unknown[]> = {};
      const deadline = Date.now() + 15_000;
      while (Object.keys(listed).length === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        listed = await tracker.list().catch(() => ({}));
      }
      assertEquals(listed, { ada: [{ v: 1 }] });
      // Still there after several times its expiry: kept alive, not left to expire.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      assertEquals(await tracker.list(), { ada: [{ v: 1 }] });
    } finally {
      await tracker.close();
      await layer.close();
    }
  },
});
