import { assert, assertEquals, assertRejects } from "@std/assert";
import {
  closeRedis,
  connectRedis,
  describeRedisForm,
  redactUrl,
  redisConnectionStatus,
} from "../../storage/redis_connection.ts";
import {
  RedisConnectionMachine,
  type RedisProbe,
} from "../../storage/_redis_connection_machine.ts";
import { FakeClock } from "../layers/_fake_clock.ts";
import { log, type LogLevel } from "../../telemetry/log.ts";
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

// --- The state machine, driven through a fake client and a fake clock: no sleeps. ---

/** A client whose PINGs the test answers, and the log lines the machine wrote. */
function harness() {
  const clock = new FakeClock();
  const pings: PromiseWithResolvers<unknown>[] = [];
  let restarts = 0;
  let restored = 0;
  const probe: RedisProbe & { isReady: boolean } = {
    isReady: false,
    ping() {
      const answer = Promise.withResolvers<unknown>();
      pings.push(answer);
      return answer.promise;
    },
    restart() {
      restarts++;
      probe.isReady = false;
    },
  };
  const machine = new RedisConnectionMachine(probe, {
    name: "presence",
    target: "redis://test",
    clock,
    probeTimeoutMs: 2000,
    onRestored: () => restored++,
  });
  const lines: string[] = [];
  log.setSink((line: string, _level: LogLevel) => lines.push(line));
  return {
    clock,
    machine,
    probe,
    pings,
    lines,
    lost: () => lines.filter((line) => line.includes("lost")).length,
    restoredLines: () => lines.filter((line) => line.includes("restored")).length,
    restarts: () => restarts,
    restoredCalls: () => restored,
    [Symbol.dispose]() {
      machine.close();
      log.setSink(null);
    },
  };
}

/** Lets promise callbacks run (the machine reacts to PING answers in microtasks). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

Deno.test("redis connection: a client's 'ready' is not enough; restored only once a PING is answered", async () => {
  using h = harness();
  h.machine.connected();
  assertEquals(h.machine.state, "ready");
  h.machine.failed(new Error("Socket closed unexpectedly"));
  assertEquals([h.machine.state, h.lost()], ["lost", 1]);
  h.machine.readied();
  assertEquals(h.machine.state, "restoring");
  assertEquals(h.restoredLines(), 0, "nothing is restored before Redis has answered");
  h.pings.at(-1)!.resolve("PONG");
  await settle();
  assertEquals([h.machine.state, h.lost(), h.restoredLines()], ["ready", 1, 1]);
  assertEquals(h.restoredCalls(), 1, "subscriptions are repaired once");
});

Deno.test("redis connection: the fault run's zombie (ready, but its socket died in the handshake) is restarted, and restored only when Redis is back", async () => {
  using h = harness();
  h.machine.connected();
  // Redis is going down: the socket drops, node-redis reconnects, the new socket dies during its
  // handshake, node-redis swallows the handshake's failure and says "ready" 1 ms later.
  h.machine.failed(new Error("Socket closed unexpectedly"));
  h.machine.failed(new Error("Socket closed unexpectedly"));
  h.probe.isReady = true;
  h.machine.readied();
  h.pings.at(-1)!.reject(new Error("Socket closed unexpectedly"));
  await settle();
  assertEquals(h.machine.state, "lost");
  assertEquals(h.restarts(), 1, "the zombie is restarted: it would never report again");
  assertEquals(h.restoredLines(), 0);
  // Still down: the next PING (on the backoff) fails while the client is reconnecting.
  h.clock.advance(1000); // past the backoff, short of the PING's timeout
  assertEquals(h.pings.length, 2);
  h.pings.at(-1)!.reject(new Error("The client is closed"));
  await settle();
  assertEquals([h.machine.state, h.restarts()], ["lost", 1]);
  // Redis is back.
  h.clock.advance(1000);
  h.pings.at(-1)!.resolve("PONG");
  await settle();
  assertEquals(h.machine.state, "ready");
  assertEquals([h.lost(), h.restoredLines()], [1, 1], "one 'lost' and one 'restored' per outage");
});

Deno.test("redis connection: a PING that is never answered times out and counts as failed", async () => {
  using h = harness();
  h.machine.connected();
  h.machine.failed(new Error("gone"));
  h.probe.isReady = true;
  h.machine.readied();
  h.clock.advance(1999);
  await settle();
  assertEquals(h.machine.state, "restoring");
  h.clock.advance(1);
  await settle();
  assertEquals([h.machine.state, h.restarts(), h.restoredLines()], ["lost", 1, 0]);
});

Deno.test("redis connection: every outage logs 'lost' and 'restored' exactly once", async () => {
  using h = harness();
  h.machine.connected();
  for (let outage = 1; outage <= 3; outage++) {
    for (let i = 0; i < 5; i++) h.machine.failed(new Error("ECONNREFUSED"));
    h.clock.advance(10_000); // backoff PINGs fail while Redis is away
    for (const ping of h.pings) ping.reject(new Error("The client is offline"));
    await settle();
    h.machine.readied();
    h.machine.failed(new Error("flap during restoring")); // the PING in flight is now outdated
    h.pings.at(-1)!.resolve("PONG");
    await settle();
    assertEquals(h.machine.state, "lost", "an answer on a socket that failed since is ignored");
    h.machine.readied();
    h.pings.at(-1)!.resolve("PONG");
    await settle();
    assertEquals(h.machine.state, "ready");
    assertEquals([h.lost(), h.restoredLines()], [outage, outage]);
  }
});

Deno.test("redis connection: calls that go unanswered while a PING is out neither cancel it nor push it back", async () => {
  using h = harness();
  h.machine.connected();
  h.probe.isReady = true;
  h.machine.unanswered(new Error("no answer within 3000 ms")); // a paused Redis, first seen
  assertEquals([h.machine.state, h.lost()], ["lost", 1]);
  h.clock.advance(100); // the first PING of the backoff
  assertEquals([h.machine.state, h.pings.length], ["restoring", 1]);
  // Each page's call of the stall times out meanwhile, one after another.
  for (let i = 0; i < 5; i++) h.machine.unanswered(new Error("no answer within 3000 ms"));
  assertEquals(h.machine.state, "restoring", "the PING in flight was cancelled");
  h.pings[0].resolve("PONG"); // Redis answers again
  await settle();
  assertEquals([h.machine.state, h.restoredLines(), h.lost()], ["ready", 1, 1]);
});

Deno.test("redis connection: a PING answered with an error (BUSY from a long script) is not a dead socket: no restart, no loop", async () => {
  using h = harness();
  h.machine.connected();
  h.probe.isReady = true;
  h.machine.unanswered(new Error("no answer within 3000 ms"));
  class ErrorReply extends Error {} // node-redis's class of Redis's own error answers
  // Up to the next PING of the backoff, answered at once (short of the PING's own timeout).
  const nextPing = () => {
    const sent = h.pings.length;
    while (h.pings.length === sent) h.clock.advance(50);
    return h.pings.at(-1)!;
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    nextPing().reject(new ErrorReply("BUSY Redis is busy running a script"));
    await settle();
  }
  assertEquals([h.machine.state, h.restarts()], ["lost", 0]);
  assertEquals(h.pings.length, 3, "one PING per backoff step, not a loop");
  nextPing().resolve("PONG");
  await settle();
  assertEquals(h.machine.state, "ready");
});

Deno.test("redis connection: a closed machine ignores its client and leaves no timer behind", () => {
  using h = harness();
  h.machine.connected();
  h.machine.failed(new Error("gone"));
  assertEquals(h.clock.pending, 1);
  h.machine.close();
  assertEquals(h.clock.pending, 0);
  h.machine.readied();
  h.machine.failed(new Error("again"));
  assertEquals([h.machine.state, h.lost(), h.clock.pending], ["closed", 1, 0]);
});

// --- The same, against real sockets. ---

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
