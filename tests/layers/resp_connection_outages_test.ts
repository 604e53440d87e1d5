/** The lean Redis connection against redis-server: outages, answers that never come, closes. */
import { assert, assertEquals, assertInstanceOf, assertRejects } from "@std/assert";
import { MAX_WAITING, RespConnection } from "../../layers/_resp_connection.ts";
import { UnansweredError } from "../../layers/_resp_errors.ts";
import { redisHealth } from "../../storage/redis_health.ts";
import { startRedisServer } from "../_support/redis.ts";
import { log } from "../../telemetry/log.ts";
import { test } from "./_resp_connection_support.ts";

log.setLevel("error");

test("a Redis that is not there fails the open, naming it", async () => {
  await using redis = await startRedisServer();
  await redis.stop();
  await assertRejects(
    () => RespConnection.open(redis.url, { name: "test", connectTimeoutMs: 1000 }),
    Error,
    `Cannot connect to Redis at ${redis.url}`,
  );
});

test("while Redis is away commands reject at once; it comes back by itself", async () => {
  await using redis = await startRedisServer();
  const restored = Promise.withResolvers<void>();
  const connection = await RespConnection.open(redis.url, {
    name: "resp-outage",
    onRestored: restored.resolve,
  });
  try {
    assertEquals(await connection.call(["PING"]), "PONG");
    // Answered by no one; its rejection is awaited from now on (else it is unhandled).
    const waiting = assertRejects(
      () => connection.call(["BLPOP", "nothing", "0"]),
      Error,
      "connection lost",
    );
    await redis.stop();
    await waiting;
    await assertRejects(() => connection.call(["PING"]), Error, "connection lost");
    assertEquals(connection.up, false);
    assertEquals(health("resp-outage")?.up, 0);
    await redis.restart();
    await restored.promise;
    assertEquals(await connection.call(["PING"]), "PONG");
    assertEquals(connection.restoredCount, 1);
    assertEquals(health("resp-outage")?.reconnects, 1);
  } finally {
    await connection.close();
  }
  assertEquals(health("resp-outage"), undefined, "a closed connection leaves the metrics");
});

test("a Redis that takes connections but answers nothing gets no command until its PING is answered", async () => {
  await using redis = await startRedisServer();
  const restored = Promise.withResolvers<void>();
  const connection = await RespConnection.open(redis.url, {
    name: "resp-paused",
    replyTimeoutMs: 300,
    onRestored: restored.resolve,
  });
  try {
    assertEquals(await connection.call(["SET", "n", "0"]), "OK");
    redis.pause(); // the kernel still accepts each reconnect; Redis answers no PING
    // Written before the pause was known: it may run once Redis is back, as the error says.
    await assertRejects(() => connection.call(["INCR", "n"]), Error, "no answer in time");
    // Meanwhile the connection is made again and again, and each one's PING goes unanswered.
    // A command called then is refused at once: it would run when Redis is back, long after
    // its caller was told it may not have, and after the commands called later.
    const errors = new Set<string>();
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      await connection.call(["INCR", "n"]).then(
        () => errors.add("answered"),
        (error: Error) => errors.add(error.message),
      );
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assertEquals([...errors], ["connection lost; reconnecting"]);
    assertEquals(connection.up, false, "up before Redis answered its PING");
    redis.resume();
    await restored.promise;
    const n = Number(await connection.call(["GET", "n"]));
    assert(n <= 1, `${n} increments ran, though only the first may have been written`);
  } finally {
    redis.resume();
    await connection.close();
  }
});

test("a command with no answer in time rejects, and the connection is made again", async () => {
  await using redis = await startRedisServer();
  const restored = Promise.withResolvers<void>();
  const connection = await RespConnection.open(redis.url, {
    name: "test",
    replyTimeoutMs: 400,
    onRestored: restored.resolve,
  });
  try {
    const started = Date.now();
    await assertRejects(
      () => connection.call(["BLPOP", "nothing", "0"]),
      Error,
      "no answer in time",
    );
    const took = Date.now() - started;
    assert(took >= 400, `rejected after ${took} ms, not before the timeout`);
    await restored.promise;
    assertEquals(await connection.call(["PING"]), "PONG", "a new connection answers");
  } finally {
    await connection.close();
  }
});

test(`at most ${MAX_WAITING} commands wait; more reject at once, the rest are answered`, async () => {
  await using redis = await startRedisServer();
  const connection = await RespConnection.open(redis.url, { name: "test" });
  try {
    const calls = Array.from({ length: MAX_WAITING }, () => connection.call(["PING"]));
    await assertRejects(() => connection.call(["PING"]), Error, `more than ${MAX_WAITING}`);
    const answers = await Promise.all(calls);
    assertEquals(answers.length, MAX_WAITING);
    assert(answers.every((answer) => answer === "PONG"));
    assertEquals(await connection.call(["PING"]), "PONG", "room again once answered");
  } finally {
    await connection.close();
  }
  await assertRejects(() => connection.call(["PING"]), Error, "closed");
});

function health(name: string) {
  return redisHealth().find((entry) => entry.connection === name);
}

test("closed while Redis is away, it stops trying and leaves nothing open", async () => {
  await using redis = await startRedisServer();
  const connection = await RespConnection.open(redis.url, { name: "test" });
  const cut = assertRejects(() => connection.call(["BLPOP", "nothing", "0"]), Error, "lost");
  await redis.stop();
  await cut; // lost: it now reconnects on a timer, and fails while Redis is away
  await connection.close();
  assertEquals(connection.up, false);
  await redis.restart();
  // The test's sanitizers fail it if a retry timer, a socket or a read were left behind.
  await assertRejects(() => connection.call(["PING"]), Error, "closed");
});

test("a command written but not answered in time says Redis may have run it", async () => {
  await using redis = await startRedisServer();
  const observer = await RespConnection.open(redis.url, { name: "observer" });
  const connection = await RespConnection.open(redis.url, { name: "late", replyTimeoutMs: 100 });
  try {
    // Redis busy in a script for longer than the reply timeout: the INCR after it is written
    // and waits its turn; the connection gives up on both.
    const busy = connection.call([
      "EVAL",
      "local i = 0 while i < 4e7 do i = i + 1 end return i",
      "0",
    ]);
    const written = connection.call(["INCR", "late"]);
    await assertRejects(() => busy, UnansweredError);
    await assertRejects(() => written, UnansweredError, "no answer in time");
    // A command called now, with the connection down, never leaves: a plain refusal.
    const refused = await assertRejects(() => connection.call(["PING"]));
    assert(!(refused instanceof UnansweredError), "a command that never left is unanswered");
    // And Redis did run the written one: this is why it is not reported as refused.
    assertEquals(await observer.call(["GET", "late"]), "1");
  } finally {
    await connection.close();
    await observer.close();
  }
});

test("a close ends the connection: Redis sees the client go", async () => {
  await using redis = await startRedisServer();
  const observer = await RespConnection.open(redis.url, { name: "observer" });
  const clients = async () =>
    Number(/connected_clients:(\d+)/.exec(String(await observer.call(["INFO", "clients"])))![1]);
  try {
    const connection = await RespConnection.open(redis.url, { name: "leaving" });
    assertEquals(await clients(), 2);
    await connection.close();
    // Redis learns of a closed socket on its next turn: asked until it has, for up to 2 s.
    const deadline = performance.now() + 2000;
    while (await clients() !== 1 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assertEquals(await clients(), 1, "the closed connection is still open at Redis");
  } finally {
    await observer.close();
  }
});

test("a close waits for no answer from a Redis that is gone", async () => {
  await using redis = await startRedisServer();
  const replyTimeoutMs = 30_000;
  const connection = await RespConnection.open(redis.url, {
    name: "gone",
    lingerMs: 5000,
    replyTimeoutMs,
  });
  // Its outcome taken at once: it may fail while Redis stops, before anything awaits it.
  const held = connection.call(["INCR", "gone"]).then(() => "answered", (error: Error) => error);
  await redis.stop();
  // The held command goes to a socket Redis closed, or rejects as the connection is lost:
  // either way the close learns it at once, not after the reply timeout.
  const started = performance.now();
  await connection.close();
  const took = performance.now() - started;
  assertInstanceOf(await held, Error, "a gone Redis answered");
  assert(took < replyTimeoutMs / 2, `the close waited ${took.toFixed(0)} ms for a gone Redis`);
});

Deno.test({
  name: "resp connection: reconnects that fail in their setup keep one backoff and leave no socket",
  fn: async () => {
    // A Redis that answers the first connection, drops it, then accepts and never answers
    // (frozen, or a proxy whose Redis is gone): every reconnect fails in its setup.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const closedByClient: Promise<void>[] = [];
    let open = 0;
    let mostOpen = 0;
    let droppedAt = 0;
    const seventh = Promise.withResolvers<number>();
    const drop = Promise.withResolvers<void>();
    const serving = (async () => {
      for await (const conn of listener) {
        const first = closedByClient.length === 0;
        open++;
        mostOpen = Math.max(mostOpen, open);
        closedByClient.push(serveOne(conn, first ? drop.promise : null).finally(() => open--));
        if (closedByClient.length === 7) seventh.resolve(performance.now());
      }
    })();
    const connection = await RespConnection.open(`redis://127.0.0.1:${port}`, {
      name: "resp-frozen",
      connectTimeoutMs: 1000,
      replyTimeoutMs: 100,
    });
    droppedAt = performance.now();
    drop.resolve();
    try {
      // Six reconnects: one backoff waits at least 0.1 + 0.2 + 0.4 + 0.8 + 1.6 + 3.2 s between
      // them; loops that fork at each failed setup come sooner and sooner.
      const elapsed = (await seventh.promise) - droppedAt;
      assert(elapsed >= 6200, `six reconnects in ${Math.round(elapsed)} ms: more than one loop`);
      assertEquals(mostOpen, 1, "a failed setup left its socket open");
    } finally {
      await connection.close();
      await Promise.all(closedByClient);
      listener.close();
      await serving.catch(() => {});
    }
    assertEquals(open, 0, "the connection's close left sockets open");
  },
});

/** With `drop`: answers PONG once, then drops when told. Without: reads, never answers. */
async function serveOne(conn: Deno.Conn, drop: Promise<void> | null): Promise<void> {
  const buffer = new Uint8Array(1024);
  try {
    while ((await conn.read(buffer)) !== null) {
      if (drop === null) continue;
      await conn.write(new TextEncoder().encode("+PONG\r\n"));
      await drop;
      break;
    }
  } catch {
    // reset by the client
  }
  try {
    conn.close();
  } catch {
    // closed already
  }
}
