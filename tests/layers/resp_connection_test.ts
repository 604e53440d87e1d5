/**
 * The lean Redis connection of the streams' hot path: its wire format (RESP2, in
 * `_resp_codec.ts`), and how it behaves against a real redis-server: order, authentication,
 * outages, answers that never come, the linger.
 */
import { assert, assertEquals, assertInstanceOf, assertMatch, assertRejects } from "@std/assert";
import { encodeCommand, parse, type RespReply } from "../../layers/_resp_codec.ts";
import {
  MAX_WAITING,
  RespConnection,
  UNHELD_AFTER_TIMED_HOLD,
} from "../../layers/_resp_connection.ts";
import { UnansweredError } from "../../layers/_resp_errors.ts";
import { redisHealth } from "../../storage/redis_health.ts";
import { redisAvailability, startRedisServer } from "../_support/redis.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";

log.setLevel("error");
const { available } = await redisAvailability({ privateServer: true });
const encoder = new TextEncoder();

/** Every reply in `text`, parsed one after the other. */
function parseAll(text: string): (RespReply | Error)[] {
  const bytes = encoder.encode(text);
  const replies = [];
  let at = 0;
  for (
    let parsed = parse(bytes, at, bytes.length);
    parsed;
    parsed = parse(bytes, at, bytes.length)
  ) {
    replies.push(parsed.value);
    at = parsed.next;
  }
  assertEquals(at, bytes.length, "every byte read");
  return replies;
}

Deno.test("resp: a command is an array of bulk strings, lengths in UTF-8 bytes", () => {
  assertEquals(encodeCommand(["PING"]), "*1\r\n$4\r\nPING\r\n");
  assertEquals(
    encodeCommand(["SET", "k", "héllo 関"]),
    "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nhéllo 関\r\n",
  );
  assertEquals(encodeCommand(["ECHO", ""]), "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n");
});

Deno.test("resp: every reply type is read, nested arrays and UTF-8 included", () => {
  const replies = parseAll(
    "+OK\r\n:42\r\n:-7\r\n$10\r\nhéllo 関\r\n$-1\r\n*-1\r\n*0\r\n" +
      "*3\r\n:1\r\n$5\r\nepoch\r\n*2\r\n$2\r\n\r\n\r\n+x\r\n",
  );
  assertEquals(replies, ["OK", 42, -7, "héllo 関", null, null, [], [1, "epoch", ["\r\n", "x"]]]);
  const [error] = parseAll("-NOSCRIPT No matching script\r\n");
  assertInstanceOf(error, Error);
  assertEquals((error as Error).message, "NOSCRIPT No matching script");
});

Deno.test("resp: a reply cut anywhere waits for the rest instead of being misread", () => {
  const text = "*3\r\n:123\r\n$6\r\nab\r\ncd\r\n*1\r\n+OK\r\n";
  const bytes = encoder.encode(text);
  for (let cut = 0; cut < bytes.length; cut++) {
    assertEquals(parse(bytes, 0, cut), undefined, `cut at ${cut}`);
  }
  assertEquals(parse(bytes, 0, bytes.length)?.value, [123, "ab\r\ncd", ["OK"]]);
});

Deno.test("resp: bytes that are no RESP2 reply are an error, not a guess", () => {
  const bytes = encoder.encode("HTTP/1.1 400 Bad Request\r\n");
  let thrown: unknown = null;
  try {
    parse(bytes, 0, bytes.length);
  } catch (error) {
    thrown = error;
  }
  assertInstanceOf(thrown, Error);
});

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `resp connection: ${name}`, ignore: !available, fn });

test("answers come back in the order of the commands, many in one turn", async () => {
  await using redis = await startRedisServer();
  const connection = await RespConnection.open(redis.url, { name: "test" });
  try {
    const calls = Array.from({ length: 2000 }, () => connection.call(["INCR", "n"]));
    assertEquals(await Promise.all(calls), Array.from({ length: 2000 }, (_, i) => i + 1));
    assertEquals(await connection.call(["SET", "word", "héllo 関"]), "OK");
    assertEquals(await connection.call(["GET", "word"]), "héllo 関");
    const big = "x".repeat(300_000); // larger than one read
    await connection.call(["SET", "big", big]);
    assertEquals(await connection.call(["GET", "big"]), big);
    await assertRejects(() => connection.call(["NOSUCHCOMMAND"]), Error, "unknown command");
    assertEquals(
      await connection.call(["PING"]),
      "PONG",
      "an error answer leaves the rest in step",
    );
  } finally {
    await connection.close();
  }
});

test("the URL's user, password and database are used; a wrong password fails the open", async () => {
  await using redis = await startRedisServer();
  const admin = await RespConnection.open(redis.url, { name: "test" });
  try {
    await admin.call(["ACL", "SETUSER", "alice", "on", ">s3cret", "~*", "&*", "+@all"]);
    await admin.call(["SELECT", "3"]);
    await admin.call(["SET", "where", "db 3"]);
    await admin.call(["CONFIG", "SET", "requirepass", "top secret"]);
  } finally {
    await admin.close();
  }
  const port = redis.port;
  const alice = await RespConnection.open(`redis://alice:s3cret@127.0.0.1:${port}/3`, {
    name: "test",
  });
  assertEquals(await alice.call(["GET", "where"]), "db 3");
  assertEquals(await alice.call(["ACL", "WHOAMI"]), "alice");
  await alice.close();
  const byPassword = await RespConnection.open(`redis://:top%20secret@127.0.0.1:${port}`, {
    name: "test",
  });
  assertEquals(await byPassword.call(["ACL", "WHOAMI"]), "default");
  await byPassword.close();
  using captured = new CapturedLog();
  log.setLevel("warn");
  const error = await assertRejects(
    () =>
      RespConnection.open(`redis://alice:wrong@127.0.0.1:${port}/3`, {
        name: "test",
        setup: [["SCRIPT", "LOAD", "return 1"]],
      }),
    Error,
    `Cannot connect to Redis at redis://alice:***@127.0.0.1:${port}/3`,
  );
  assert(!error.message.includes("wrong"), "the password is not shown");
  assertMatch(error.message, /WRONGPASS/);
  // The commands pipelined behind the AUTH were refused for its sake: not warned of as well.
  log.setLevel("error");
  assertEquals(captured.lines.filter((line) => line.includes("refused at connect")), []);
});

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

test("its setup commands are said on every connect, before any other", async () => {
  await using redis = await startRedisServer();
  const script = "return 'loaded'";
  const restored = Promise.withResolvers<void>();
  const connection = await RespConnection.open(redis.url, {
    name: "resp-setup",
    setup: [["SCRIPT", "LOAD", script]],
    onRestored: restored.resolve,
  });
  try {
    const sha = String(await connection.call(["SCRIPT", "LOAD", script]));
    assertEquals(await connection.call(["EVALSHA", sha, "0"]), "loaded");
    // Restarted empty, Redis has lost its scripts: the reconnect loads them again first.
    await redis.restart();
    await restored.promise;
    assertEquals(await connection.call(["EVALSHA", sha, "0"]), "loaded");
  } finally {
    await connection.close();
  }
});

test("a setup command Redis refuses is logged, and the connection works without it", async () => {
  await using redis = await startRedisServer();
  const admin = await RespConnection.open(redis.url, { name: "admin" });
  try {
    await admin.call([
      "ACL",
      "SETUSER",
      "limited",
      "on",
      ">secret",
      "~*",
      "&*",
      "+@all",
      "-script",
    ]);
  } finally {
    await admin.close();
  }
  const url = `redis://limited:secret@127.0.0.1:${redis.port}`;
  const connection = await RespConnection.open(url, {
    name: "resp-refused-setup",
    setup: [["SCRIPT", "LOAD", "return 1"]],
  });
  try {
    assertEquals(await connection.call(["EVAL", "return 'ran'", "0"]), "ran");
  } finally {
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

/** How many reads redis-server has made so far, asked on `observer` (that ask is one read). */
async function serverReads(observer: RespConnection): Promise<number> {
  const info = String(await observer.call(["INFO", "stats"]));
  return Number(/total_reads_processed:(\d+)/.exec(info)![1]);
}

// Four commands 30 ms apart (the spacing is the load, not a wait for an event): how many reads
// Redis needed for them, and their answers.
async function spacedCommands(
  url: string,
  observer: RespConnection,
  lingerMs: number,
): Promise<{ reads: number; answers: RespReply[] }> {
  const connection = await RespConnection.open(url, { name: "spaced", lingerMs });
  try {
    const before = await serverReads(observer);
    const calls: Promise<RespReply>[] = [];
    for (let i = 0; i < 4; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 30));
      calls.push(connection.call(["INCR", `spaced:${lingerMs}`]));
    }
    const answers = await Promise.all(calls);
    return { reads: await serverReads(observer) - before - 1, answers };
  } finally {
    await connection.close();
  }
}

test("with a linger, commands called close together share one write", async () => {
  await using redis = await startRedisServer();
  const observer = await RespConnection.open(redis.url, { name: "observer" });
  try {
    const plain = await spacedCommands(redis.url, observer, 0);
    assertEquals(plain.answers, [1, 2, 3, 4]);
    assert(plain.reads >= 3, `without a linger each command is its own write (${plain.reads})`);
    const lingering = await spacedCommands(redis.url, observer, 1000);
    assertEquals(lingering.answers, [1, 2, 3, 4], "answers in order, each to its command");
    // The first may go alone (after a quiet spell); the three after it wait for each other.
    assert(lingering.reads <= 2, `with a linger, ${lingering.reads} writes for 4 commands`);
  } finally {
    await observer.close();
  }
});

test("with a linger, the command that comes once it is over takes the held ones along", async () => {
  await using redis = await startRedisServer();
  const observer = await RespConnection.open(redis.url, { name: "observer" });
  const lingerMs = 1000;
  const connection = await RespConnection.open(redis.url, { name: "along", lingerMs });
  try {
    const before = await serverReads(observer);
    const calls: Promise<RespReply>[] = [];
    const calledAt: number[] = [];
    // Four commands 400 ms apart (the spacing is the load): each under load, the last called
    // more than a linger after the first. A timer of the linger's length would write the
    // first three alone and hold the last for a linger more: two writes.
    for (let i = 0; i < 4; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 400));
      calledAt.push(performance.now());
      calls.push(connection.call(["INCR", "along"]));
    }
    const last = await calls[3];
    const lastWaited = performance.now() - calledAt[3];
    assertEquals(await Promise.all(calls), [1, 2, 3, 4]);
    assertEquals(last, 4);
    assertEquals(await serverReads(observer) - before - 1, 1, "one write for the four commands");
    assert(
      lastWaited < lingerMs / 2,
      `the last command waited ${lastWaited.toFixed(0)} ms: it was held again`,
    );
  } finally {
    await connection.close();
    await observer.close();
  }
});

test("with a linger, a command after a quiet spell is written at once", async () => {
  await using redis = await startRedisServer();
  const lingerMs = 2000;
  const connection = await RespConnection.open(redis.url, { name: "quiet", lingerMs });
  // The same PING without a linger, in the same run: what answering takes on this machine now.
  const plain = await RespConnection.open(redis.url, { name: "plain" });
  try {
    await new Promise((resolve) => setTimeout(resolve, lingerMs + 100)); // the quiet spell
    const timed = async (on: RespConnection) => {
      const started = performance.now();
      assertEquals(await on.call(["PING"]), "PONG");
      return performance.now() - started;
    };
    const [took, baseline] = [await timed(connection), await timed(plain)];
    assert(
      took - baseline < lingerMs / 2,
      `answered after ${took.toFixed(0)} ms (${baseline.toFixed(0)} without a linger): held`,
    );
  } finally {
    await connection.close();
    await plain.close();
  }
});

// How long each of 12 commands waited, each called as soon as the one before it was answered
// (an INCR of `key`, so the answers say they came in order).
async function awaitingCaller(connection: RespConnection, key: string): Promise<number[]> {
  const waits: number[] = [];
  for (let i = 1; i <= 12; i++) {
    const started = performance.now();
    assertEquals(await connection.call(["INCR", key]), i);
    waits.push(performance.now() - started);
  }
  return waits;
}

test("with a linger, a caller that awaits each answer is held once, not for every command", async () => {
  await using redis = await startRedisServer();
  const lingerMs = 200;
  const connection = await RespConnection.open(redis.url, { name: "awaiting", lingerMs });
  try {
    // All its commands are under load, so a linger that held every one would make each wait
    // for its timer (twice the linger).
    const waits = await awaitingCaller(connection, "awaiting");
    const held = waits.filter((wait) => wait >= lingerMs);
    assert(held.length <= 1, `${held.length} of 12 commands were held: ${waits.map(Math.round)}`);
  } finally {
    await connection.close();
  }
});

test("with a linger, callers that each await their answers are held now and then, not each time", async () => {
  await using redis = await startRedisServer();
  const lingerMs = 200;
  const connection = await RespConnection.open(redis.url, { name: "callers", lingerMs });
  try {
    // Whichever of the two is held, the other's next command joins the hold, and no command
    // comes to take them along.
    const both = [awaitingCaller(connection, "first"), awaitingCaller(connection, "second")];
    const waits = (await Promise.all(both)).flat();
    const held = waits.filter((wait) => wait >= lingerMs);
    assert(held.length <= 2, `${held.length} of 24 commands were held: ${waits.map(Math.round)}`);
  } finally {
    await connection.close();
  }
});

test("with a linger, commands share writes again after a hold its timer ended", async () => {
  await using redis = await startRedisServer();
  const observer = await RespConnection.open(redis.url, { name: "observer" });
  const lingerMs = 100;
  const connection = await RespConnection.open(redis.url, { name: "again", lingerMs });
  try {
    // A caller that awaits each answer: one hold that pairs nothing, then the commands that go
    // unheld after it.
    for (let i = 0; i <= UNHELD_AFTER_TIMED_HOLD; i++) await connection.call(["INCR", "again"]);
    const before = await serverReads(observer);
    // Then a load: four commands 20 ms apart (the spacing is the load), not awaited.
    const calls: Promise<RespReply>[] = [];
    for (let i = 0; i < 4; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 20));
      calls.push(connection.call(["INCR", "again"]));
    }
    const answers = await Promise.all(calls);
    const first = UNHELD_AFTER_TIMED_HOLD + 2;
    assertEquals(answers, [first, first + 1, first + 2, first + 3]);
    const reads = await serverReads(observer) - before - 1;
    assert(reads <= 2, `${reads} writes for 4 commands: the linger did not hold them again`);
  } finally {
    await connection.close();
    await observer.close();
  }
});

test("a close writes the commands a linger holds and waits for their answers", async () => {
  await using redis = await startRedisServer();
  const observer = await RespConnection.open(redis.url, { name: "observer" });
  const connection = await RespConnection.open(redis.url, { name: "held", lingerMs: 5000 });
  try {
    // Right after the open's own PING: under load, so this one is held (for up to 10 s).
    const held = connection.call(["INCR", "held"]);
    await connection.close();
    assertEquals(
      await held,
      1,
      "answered before the close was done: a graceful stop loses nothing",
    );
    assertEquals(await observer.call(["GET", "held"]), "1");
    await assertRejects(() => connection.call(["PING"]), Error, "closed");
  } finally {
    await observer.close();
  }
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
