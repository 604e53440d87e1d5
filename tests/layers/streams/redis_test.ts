import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { createClient } from "redis";
import { streamConformance } from "./conformance.ts";
import { RedisLayer } from "../../../layers/redis.ts";
import { RedisStreams } from "../../../layers/streams/redis.ts";
import { PublishUnconfirmedError } from "../../../layers/streams/contract.ts";
import { isBackendUnavailable } from "../../../storage/unavailable.ts";
import { Communicator, createTestServices, testUpgrade } from "../../../testing.ts";
import { createSite } from "../../../routes/mod.ts";
import { CapturedLog } from "../../_support/captured_log.ts";
import {
  redisAvailability,
  startRedisServer,
  testRedisUrl,
  uniquePrefix,
} from "../../_support/redis.ts";

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
  }, { shared: true, pagesReads: true, ignore: !available });
}

redisStreamsSuite("redis streams");
redisStreamsSuite("redis streams with a linger", 5);

Deno.test({
  name: "a publish stored though its answer was lost reaches this process's members once Redis " +
    "answers again",
  ignore: !available,
  fn: async () => {
    await using world = await streamsOnPrivateRedis("settled", { timeoutMs: 100 });
    const { server, layer, streams } = world;
    const heard: unknown[] = [];
    const arrived = Promise.withResolvers<void>();
    const member = layer.newChannel((event) => {
      heard.push(event.n);
      if (event.n === 1) arrived.resolve();
      return true;
    });
    await layer.groupAdd("lobby", member);
    const observer = createClient({ url: server.url });
    await observer.connect();
    const pid = Number(/process_id:(\d+)/.exec(await observer.info("server"))![1]);
    try {
      await streams.publish("lobby", { type: "t", n: 0 });
      Deno.kill(pid, "SIGSTOP");
      try {
        await assertRejects(
          () => streams.publish("lobby", { type: "t", n: 1 }),
          PublishUnconfirmedError,
        );
      } finally {
        Deno.kill(pid, "SIGCONT");
      }
      // No other publish comes to reveal it: the stream is looked at once Redis is back.
      await arrived.promise;
      assertEquals(heard, [0, 1]);
    } finally {
      await observer.close();
    }
  },
});

Deno.test({
  name: "a publish whose script reached Redis only after the first look for it is still sent on",
  ignore: !available,
  fn: async () => {
    // A link that stalls one way: the publish's script waits in the network while the
    // connection is given up and made again, so the first look for it, on the new connection,
    // comes before it is stored.
    const server = await startRedisServer();
    await using proxy = startStallingProxy(server.port);
    const prefix = uniquePrefix("late");
    const layer = await RedisLayer.open({ url: server.url, prefix });
    const streams = await RedisStreams.open({
      url: `redis://127.0.0.1:${proxy.port}`,
      prefix,
      layer,
      publishInScript: true,
      timeoutMs: 100,
    });
    const observer = createClient({ url: server.url });
    await observer.connect();
    // Every script Redis has run: each publish and each look at the stream is one.
    const scriptsRun = async () => {
      const stats = await observer.info("commandstats");
      return Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0);
    };
    try {
      const arrived = Promise.withResolvers<void>();
      const member = layer.newChannel((event) => {
        if (event.n === 1) arrived.resolve();
        return true;
      });
      await layer.groupAdd("lobby", member);
      await streams.publish("lobby", { type: "t", n: 0 });
      proxy.stall();
      const before = await scriptsRun();
      await assertRejects(
        () => streams.publish("lobby", { type: "t", n: 1 }),
        PublishUnconfirmedError,
      );
      // The first look, over the new connection, finds nothing yet.
      while (await scriptsRun() === before) await new Promise((r) => setTimeout(r, 20));
      assertEquals(await observer.xLen(`${prefix}:stream:lobby`), 1);
      proxy.release(); // the script arrives, late, and is stored
      const late = setTimeout(() => arrived.reject(new Error("never sent on")), 10_000);
      try {
        await arrived.promise;
      } finally {
        clearTimeout(late);
      }
      assertEquals(await observer.xLen(`${prefix}:stream:lobby`), 2);
    } finally {
      proxy.release();
      await observer.close();
      await streams.close();
      await layer.close();
      await server.stop();
    }
  },
});

/**
 * A TCP proxy whose `stall()` holds what the clients of the connections open then send (not
 * what they are sent), even after such a client closed, until `release()`.
 */
function startStallingProxy(targetPort: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<{ stalled: boolean }>();
  const conns = new Set<Deno.Conn>();
  let released = Promise.withResolvers<void>();
  const closeQuietly = (conn: Deno.Conn) => {
    try {
      conn.close();
    } catch {
      // closed already
    }
  };
  const serve = async (client: Deno.Conn) => {
    const upstream = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
    conns.add(client).add(upstream);
    const link = { stalled: false };
    open.add(link);
    upstream.readable.pipeTo(client.writable, { preventCancel: true }).catch(() => {});
    try {
      for await (const chunk of client.readable) {
        if (link.stalled) await released.promise;
        let written = 0;
        while (written < chunk.length) written += await upstream.write(chunk.subarray(written));
      }
    } catch {
      // the client went: what it sent before is written all the same
    }
    open.delete(link);
    closeQuietly(upstream);
    closeQuietly(client);
  };
  const accepting = (async () => {
    for await (const conn of listener) serve(conn).catch(() => {});
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    stall() {
      for (const link of open) link.stalled = true;
    },
    release() {
      for (const link of open) link.stalled = false;
      released.resolve();
      released = Promise.withResolvers<void>();
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of conns) closeQuietly(conn);
      await accepting;
    },
  };
}

Deno.test({
  name: "a publish Redis may have run, though its answer was late, rejects as unconfirmed",
  ignore: !available,
  fn: async () => {
    await using world = await streamsOnPrivateRedis("unconfirmed", { timeoutMs: 100 });
    const { server, prefix, streams } = world;
    const observer = createClient({ url: server.url });
    await observer.connect();
    const pid = Number(/process_id:(\d+)/.exec(await observer.info("server"))![1]);
    let frozen = false;
    const wake = () => {
      if (frozen) Deno.kill(pid, "SIGCONT");
      frozen = false;
    };
    try {
      // Once at ease, so that Redis knows the script (a first call would be answered NOSCRIPT).
      await streams.publish("lobby", { type: "t", n: 0 });
      // Redis frozen (SIGSTOP) for longer than the 100 ms timeout: the publish is written, and
      // Redis runs it when it wakes (it reads what a client wrote before it went).
      Deno.kill(pid, "SIGSTOP");
      frozen = true;
      const error = await assertRejects(
        () => streams.publish("lobby", { type: "t", n: 1 }),
        PublishUnconfirmedError,
      );
      assertMatch(error.message, /no answer in time/);
      wake();
      // It is stored after all: hence "unconfirmed", not "failed". Asked until it is (up to 5 s).
      const deadline = performance.now() + 5000;
      let entries = 0;
      while (entries < 2 && performance.now() < deadline) {
        entries = await observer.xLen(`${prefix}:stream:lobby`);
      }
      assertEquals(entries, 2);
    } finally {
      wake();
      await observer.close();
    }
  },
});

Deno.test({
  name: "after Redis restarts empty, publishes go on with no NOSCRIPT answer to retry",
  ignore: !available,
  fn: async () => {
    await using world = await streamsOnPrivateRedis("reloaded");
    const { server, streams } = world;
    await streams.publish("lobby", { type: "t", n: 1 });
    await server.restart();
    // Publishes fail at once while the connection is made again; then one goes through.
    const deadline = Date.now() + 15_000;
    let published = null;
    while (published === null) {
      assert(Date.now() < deadline, "no publish went through after the restart");
      published = await streams.publish("lobby", { type: "t", n: 2 }).catch(() => null);
      if (published === null) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // A NOSCRIPT answer would have been retried with EVAL, behind whatever was written after
    // it: one sender's unawaited publishes could then be stored out of order.
    const observer = createClient({ url: server.url });
    await observer.connect();
    const errors = await observer.info("errorstats");
    const commands = await observer.info("commandstats");
    await observer.close();
    assertEquals(/errorstat_NOSCRIPT/.test(errors), false, errors);
    assertEquals(/cmdstat_eval:/.test(commands), false, commands);
  },
});

/** A private redis-server with a layer and its streams; `await using` closes all three. */
async function streamsOnPrivateRedis(name: string, options: { timeoutMs?: number } = {}) {
  const server = await startRedisServer();
  const prefix = uniquePrefix(name);
  const layer = await RedisLayer.open({ url: server.url, prefix });
  const streams = await RedisStreams.open({
    url: server.url,
    prefix,
    layer,
    publishInScript: true,
    ...options,
  });
  return {
    server,
    prefix,
    layer,
    streams,
    async [Symbol.asyncDispose]() {
      await streams.close();
      await layer.close();
      await server.stop();
    },
  };
}

Deno.test({
  name: "a read while Redis is away fails as a backend away (a 503 to a handshake), not as a bug",
  ignore: !available,
  fn: async () => {
    using _log = new CapturedLog();
    await using world = await streamsOnPrivateRedis("away");
    const { server, streams, layer } = world;
    await streams.publish("room", { type: "t", n: 1 });
    await server.stop();
    const error = await assertRejects(() => streams.latest("room", 10));
    assert(isBackendUnavailable(error), `not told apart: ${error}`);
    // A chat socket's handshake reads the room's history: it is refused with 503, counted so.
    await using services = await createTestServices({}, { layer, streams });
    const app = createSite(services, { upgrade: testUpgrade });
    const comm = new Communicator(app, "/ws/chat/room/");
    const refused = await assertRejects(() => comm.connect());
    assertMatch(String(refused), /refused with 503/);
    const metrics = services.metrics.render();
    assertMatch(
      metrics,
      /channels_handshakes_refused_total\{route="\/ws\/chat\/:room\/",reason="unavailable"\} 1/,
    );
    await app.close();
    await server.restart();
  },
});

Deno.test({
  name:
    "a publish stored in Redis whose send to the group then fails is not confirmed, never not sent",
  ignore: !available,
  fn: async () => {
    const prefix = uniquePrefix("unsent-after-store");
    const layer = await RedisLayer.open({ url: redis!.url, prefix });
    // The layer's own send failing after the stream script stored the event, as channels_redis's
    // does when a Redis ACL refuses its EVAL or its connection is lost between the two.
    const failing = new Proxy(layer, {
      get(target, key) {
        if (key === "groupSend") return () => Promise.reject(new Error("NOPERM eval"));
        const value = Reflect.get(target, key);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const streams = await RedisStreams.open({
      url: redis!.url,
      prefix,
      layer: failing,
      publishInScript: false,
    });
    try {
      const error = await assertRejects(
        () => streams.publish("chat.acl", { type: "chat.message", message: "hi" }),
        PublishUnconfirmedError,
        'Stored as offset 1 of "chat.acl"',
      );
      assertMatch(String((error.cause as Error).message), /NOPERM/);
      // Stored: a reader recovers it, so sending it again would store it twice.
      const read = await streams.latest("chat.acl", 50);
      assertEquals(read.events.map((event) => [event.offset, event.message]), [[1, "hi"]]);
    } finally {
      await streams.close();
      await layer.close();
    }
  },
});
