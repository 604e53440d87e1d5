/** The lean Redis connection's linger: commands called close together share a write. */
import { assert, assertEquals, assertRejects } from "@std/assert";
import type { RespReply } from "../../layers/_resp_codec.ts";
import { RespConnection, UNHELD_AFTER_TIMED_HOLD } from "../../layers/_resp_connection.ts";
import { startRedisServer } from "../_support/redis.ts";
import { log } from "../../telemetry/log.ts";
import { test } from "./_resp_connection_support.ts";

log.setLevel("error");

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
