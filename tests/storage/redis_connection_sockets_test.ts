/** The Redis connection over real sockets: connect failures, redacted URLs, outages. */
import { assert, assertEquals, assertRejects } from "@std/assert";
import {
  closeRedis,
  connectRedis,
  describeRedisForm,
  redactUrl,
  redisConnectionStatus,
} from "../../storage/redis_connection.ts";
import { redisAvailability, startRedisServer } from "../_support/redis.ts";
import { CapturedLog } from "../_support/captured_log.ts";

Deno.test("connecting to a closed port fails at once, naming the URL", async () => {
  const port = closedPort();
  await assertRejects(
    () => connectRedis(`redis://127.0.0.1:${port}`, { name: "test", connectTimeoutMs: 1000 }),
    Error,
    `Cannot connect to Redis at redis://127.0.0.1:${port}`,
  );
});

Deno.test("connecting to a server that never answers fails in bounded time, not a hang", async () => {
  // Accepts the connection and then says nothing, as a firewall or a wrong service might.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) accepted.push(conn);
  })();
  try {
    await assertRejects(
      () => connectRedis(`redis://127.0.0.1:${port}`, { name: "test", connectTimeoutMs: 300 }),
      Error,
      `Cannot connect to Redis at redis://127.0.0.1:${port}`,
    );
  } finally {
    listener.close();
    for (const conn of accepted) conn.close();
    await accepting.catch(() => {});
  }
});

Deno.test("a server that accepts and closes at once is named once in the error, not twice", async () => {
  // Takes the connection and closes it, as a port another service half-owns might.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepting = (async () => {
    for await (const conn of listener) conn.close();
  })();
  try {
    const error = await assertRejects(
      () => connectRedis(`redis://127.0.0.1:${port}`, { name: "test", connectTimeoutMs: 1000 }),
      Error,
    );
    const prefix = `Cannot connect to Redis at redis://127.0.0.1:${port}: `;
    assert(error.message.startsWith(prefix), error.message);
    assertEquals(error.message.split("Cannot connect to Redis").length - 1, 1, error.message);
  } finally {
    listener.close();
    await accepting.catch(() => {});
  }
});

Deno.test("a password in a Redis URL is never shown", () => {
  assertEquals(
    redactUrl("redis://user:secret@db.example:6379/0"),
    "redis://user:***@db.example:6379/0",
  );
  assertEquals(redactUrl("redis://db.example:6379"), "redis://db.example:6379");
  // Passwords a URL cannot hold as they are: hidden up to the last "@" all the same.
  assertEquals(redactUrl("redis://:ab/cd@db.example:6379/0"), "redis://:***@db.example:6379/0");
  assertEquals(redactUrl("redis://:p@ss#w0rd@db.example/0"), "redis://:***@db.example/0");
  // A query may carry a password too.
  assertEquals(
    redactUrl("redis://db.example:6379/0?password=secret"),
    "redis://db.example:6379/0?***",
  );
  assertEquals(
    redactUrl("redis://u:pw@db.example:6379/0?password=secret"),
    "redis://u:***@db.example:6379/0?***",
  );
  // An "@" in the query: the part before it is no user name, and neither part is shown.
  assertEquals(redactUrl("redis://db.example:6379/0?password=se@cret"), "redis://***");
  assertEquals(redactUrl("redis://secret@db.example"), "redis://***@db.example");
  assertEquals(
    describeRedisForm({
      kind: "sentinel",
      masterName: "mymaster",
      sentinels: [{ host: "s1", port: 26379 }],
      password: "secret",
    }),
    "sentinel mymaster@s1:26379",
  );
});

const { available } = await redisAvailability({ privateServer: true });

Deno.test({
  name:
    "redis connection: a Redis going down under load, then back, logs one 'lost' and one 'restored', and commands work again",
  ignore: !available,
  fn: async () => {
    await using server = await startRedisServer();
    using captured = new CapturedLog();
    const { lines } = captured;
    const client = await connectRedis(server.url, { name: "presence", connectTimeoutMs: 1000 });
    const restored = captured.waitFor(/\(presence\).*restored/, 20_000);
    let stop = false;
    let ok = 0;
    let failed = 0;
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        try {
          await client.set(`load:${i % 50}`, String(i));
          ok++;
        } catch {
          failed++;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
    })();
    try {
      while (ok < 200) await new Promise((resolve) => setTimeout(resolve, 10));
      await server.stop();
      const okBefore = ok;
      await server.restart();
      await restored;
      assertEquals(redisConnectionStatus(client).state, "ready");
      assertEquals(await client.ping(), "PONG");
      while (ok < okBefore + 50) await new Promise((resolve) => setTimeout(resolve, 10));
      assert(failed > 0, "commands failed while Redis was away");
      assertEquals(count(lines, "lost"), 1);
      assertEquals(count(lines, "restored"), 1);
    } finally {
      stop = true;
      await load;
      await closeRedis(client);
    }
  },
});

Deno.test({
  name:
    "redis connection: a server that drops every handshake (Redis going down) never counts as restored; the real Redis behind it does",
  ignore: !available,
  fn: async () => {
    await using server = await startRedisServer();
    using captured = new CapturedLog();
    const { lines } = captured;
    const client = await connectRedis(server.url, { name: "presence", connectTimeoutMs: 1000 });
    const lost = captured.waitFor(/\(presence\).*lost/, 20_000);
    const restored = captured.waitFor(/\(presence\).*restored/, 20_000);
    try {
      await server.stop();
      // On the same port, a listener that accepts and closes once the handshake arrives: the
      // socket node-redis would declare ready although it is dead.
      const dying = dropEveryHandshake(server.port);
      await lost;
      await dying.handshakesDropped(3);
      assertEquals(count(lines, "restored"), 0, "a dying Redis is not a restored connection");
      await dying.close();
      await server.restart();
      await restored;
      assertEquals(await client.ping(), "PONG");
      assertEquals([count(lines, "lost"), count(lines, "restored")], [1, 1]);
    } finally {
      await closeRedis(client);
    }
  },
});

function count(lines: string[], word: string): number {
  return lines.filter((line) => line.includes("(presence)") && line.includes(word)).length;
}

function dropEveryHandshake(port: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  let dropped = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const open = new Set<Deno.Conn>();
  const accepting = (async () => {
    for await (const conn of listener) {
      open.add(conn);
      conn.read(new Uint8Array(1024)).catch(() => null).then(() => {
        open.delete(conn);
        try {
          conn.close();
        } catch {
          // closed already
        }
        dropped++;
        for (const waiter of waiters) if (dropped >= waiter.n) waiter.resolve();
      });
    }
  })();
  return {
    /** Waits for `n` dropped handshakes; a client that stopped reconnecting fails it. */
    handshakesDropped(n: number): Promise<void> {
      if (dropped >= n) return Promise.resolve();
      const reached = new Promise<void>((resolve) => waiters.push({ n, resolve }));
      return withDeadline(
        reached,
        15_000,
        "the client stopped reconnecting: it believes a dead socket is ready",
      );
    },
    async close(): Promise<void> {
      listener.close();
      for (const conn of open) conn.close();
      await accepting.catch(() => {});
    },
  };
}

function withDeadline<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
