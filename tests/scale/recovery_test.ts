/**
 * Recovery across real server processes: a client that saw offset n and comes back, to
 * another process, another Worker, or the same server after a graceful restart, gets exactly
 * what it missed, in order, with `complete: true`; when what it missed is gone, it is told.
 */
import { assert, assertEquals, assertNotEquals } from "@std/assert";
import {
  redisAvailability,
  startRedisServer,
  testRedisUrl,
  uniquePrefix,
} from "../_support/redis.ts";
import { TestSocket } from "../_support/socket.ts";
import { onWorker, rawNextMatching, rawSendAll, WAIT } from "./_clients.ts";
import { appendFromOutside, loadConfig } from "../../mod.ts";
import { type ServerProcess, startServerProcess } from "./_process.ts";

type Frame = Record<string, unknown>;
/** Where a client was: the epoch and the last offset it saw. */
type Position = { epoch: string; offset: number };
const { available } = await redisAvailability();
const { available: privateRedis } = await redisAvailability({ privateServer: true });
const redis = available ? await testRedisUrl() : null;
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());

// Senders send 80 in a row: above the default rate limit, which is not what is tested here.
const FAST = { RATE_LIMIT: "10000", RATE_BURST: "10000" };
const ROOM = "/ws/chat/lobby/";
const linux = Deno.build.os === "linux";

/** A client that asked for positions, with the offset it saw last and its epoch. */
async function positioned(server: ServerProcess): Promise<Position> {
  const sender = await TestSocket.open(server.wsUrl(ROOM));
  await sendAll(sender, 5, "before");
  await sender.close();
  const client = await TestSocket.open(server.wsUrl(`${ROOM}?stream=1`));
  const first = await client.nextJson(WAIT);
  assertEquals([first.type, first.complete, first.fresh], ["recovered", true, true]);
  // It shows the history; the last frame it saw is the room's latest offset.
  let last: Frame = first;
  for (let n = 0; n < (first.offset as number) && n < 50; n++) last = await client.nextJson(WAIT);
  assertEquals(last.offset, first.offset);
  await client.close();
  return { epoch: first.epoch as string, offset: first.offset as number };
}

/** Sends `count` messages and waits until the room has them all (its own copies came back). */
async function sendAll(socket: TestSocket, count: number, label: string): Promise<void> {
  for (let n = 1; n <= count; n++) socket.sendJson({ message: `${label} ${n}` });
  await socket.nextMatching((f) => f.message === `${label} ${count}`, WAIT);
}

/** The verdict frame and the chat frames after it, until `count` of them came. */
async function recovered(socket: TestSocket, count: number): Promise<[Frame, Frame[]]> {
  const verdict = await socket.nextJson(WAIT);
  const frames: Frame[] = [];
  while (frames.length < count) frames.push(await socket.nextJson(WAIT));
  return [verdict, frames];
}

function expectedMessages(): string[] {
  return [
    ...Array.from({ length: 80 }, (_, i) => `on A ${i + 1}`),
    ...Array.from({ length: 10 }, (_, i) => `on B ${i + 1}`),
  ];
}

/** The room, for a client coming back after seeing `seen`. */
function backFrom(seen: Position): string {
  return `${ROOM}?epoch=${seen.epoch}&since=${seen.offset}`;
}

/**
 * Asserts the client back from `seen` gets the 90 messages sent since ("on A" 1-80, then
 * "on B" 1-10) after a complete verdict; the frames, for more checks.
 */
async function assertGetsTheNinety(back: TestSocket, seen: Position): Promise<Frame[]> {
  const [verdict, frames] = await recovered(back, 90);
  assertEquals(verdict, {
    type: "recovered",
    complete: true,
    epoch: seen.epoch,
    offset: seen.offset + 90,
  });
  assertEquals(frames.map((f) => f.message), expectedMessages());
  return frames;
}

/** A server's settings on the shared Redis, on a prefix of their own. */
function onSharedRedis(extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...FAST,
    LAYER: "redis",
    REDIS_URL: redis!.url,
    REDIS_PREFIX: uniquePrefix("rec"),
    ...extra,
  };
}

Deno.test({
  name: "a client back on another process gets the 90 messages it missed, in order, complete",
  ignore: !available,
  fn: async () => {
    const env = onSharedRedis();
    await using a = await startServerProcess(env);
    await using b = await startServerProcess(env);
    const seen = await positioned(a);
    const [onA, onB] = [await TestSocket.open(a.wsUrl(ROOM)), await TestSocket.open(b.wsUrl(ROOM))];
    await sendAll(onA, 80, "on A");
    await sendAll(onB, 10, "on B");
    const back = await TestSocket.open(b.wsUrl(backFrom(seen)));
    const frames = await assertGetsTheNinety(back, seen);
    assertEquals(
      frames.map((f) => f.offset),
      Array.from({ length: 90 }, (_, i) => seen.offset + i + 1),
    );
    onA.sendJson({ message: "live" });
    const live = await back.nextJson(WAIT);
    assertEquals([live.message, live.offset, live.recovered], [
      "live",
      seen.offset + 91,
      undefined,
    ]);
    // What `deno task send` does with Redis: straight into the stream, then to every process.
    const sent = await appendFromOutside(loadConfig([], env), "chat.lobby", {
      type: "chat.message",
      id: "outside-1",
      room: "lobby",
      message: "from outside",
      author: "ci",
      time: new Date().toISOString(),
    });
    assertEquals([sent?.offset, sent?.epoch], [seen.offset + 92, seen.epoch]);
    const outside = await back.nextJson(WAIT);
    assertEquals([outside.message, outside.offset], ["from outside", seen.offset + 92]);
    for (const socket of [onA, onB, back]) await socket.close();
  },
});

Deno.test({
  name: "a client that missed more than the window gets complete false and the last 50",
  ignore: !available,
  fn: async () => {
    const env = onSharedRedis({ HISTORY_WINDOW_MESSAGES: "50", HISTORY_WINDOW_SECONDS: "0" });
    await using a = await startServerProcess(env);
    await using b = await startServerProcess(env);
    const seen = await positioned(a);
    const onA = await TestSocket.open(a.wsUrl(ROOM));
    await sendAll(onA, 120, "on A");
    const back = await TestSocket.open(b.wsUrl(backFrom(seen)));
    const [verdict, frames] = await recovered(back, 50);
    assertEquals([verdict.type, verdict.complete, verdict.offset], [
      "recovered",
      false,
      seen.offset + 120,
    ]);
    assertEquals(
      frames.map((f) => f.message),
      Array.from({ length: 50 }, (_, i) => `on A ${i + 71}`),
    );
    assert(frames.every((f) => f.history === true));
    await onA.close();
    await back.close();
  },
});

Deno.test({
  name: "a client whose epoch is gone (Redis restarted empty) gets complete false",
  ignore: !privateRedis,
  fn: async () => {
    await using server = await startRedisServer();
    const env = { ...FAST, LAYER: "redis", REDIS_URL: server.url, REDIS_PREFIX: "rec" };
    await using a = await startServerProcess(env);
    const seen = await positioned(a);
    await server.restart();
    // The server's connections come back on their own; until then a handshake (the room's
    // stream cannot be read) or a message is refused.
    const sender = await openOnceServed(a.wsUrl(ROOM));
    let stored = false;
    for (let attempt = 0; attempt < 100 && !stored; attempt++) {
      sender.sendJson({ message: `after ${attempt}`, ref: attempt, ack: true });
      const answer = await sender.nextMatching((f) => f.ref === attempt, WAIT);
      stored = answer.type === "ack";
      if (!stored) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert(stored, "no message was stored after Redis came back");
    const back = await TestSocket.open(a.wsUrl(backFrom(seen)));
    const verdict = await back.nextJson(WAIT);
    assertEquals([verdict.type, verdict.complete, verdict.offset], ["recovered", false, 1]);
    assertNotEquals(verdict.epoch, seen.epoch);
    assertEquals((await back.nextJson(WAIT)).history, true);
    for (const socket of [sender, back]) await socket.close();
  },
});

Deno.test({
  name: "a live socket through a Redis that restarted empty is told, and misses nothing after",
  ignore: !privateRedis,
  fn: async () => {
    await using server = await startRedisServer();
    const env = { ...FAST, LAYER: "redis", REDIS_URL: server.url, REDIS_PREFIX: "live" };
    await using a = await startServerProcess(env);
    await using b = await startServerProcess(env);
    const live = await TestSocket.open(a.wsUrl(`${ROOM}?stream=1`));
    const fresh = await live.nextJson(WAIT);
    const before = await TestSocket.open(b.wsUrl(ROOM));
    await sendAll(before, 3, "before");
    await live.nextMatching((f) => f.message === "before 3", WAIT);
    await server.restart();
    // Both processes publish the new epoch's first messages: they may cross on their way.
    const senders = [await openOnceServed(a.wsUrl(ROOM)), await openOnceServed(b.wsUrl(ROOM))];
    await Promise.all(senders.map((sender, n) => storeOne(sender, `first on ${"AB"[n]}`)));
    for (const sender of senders) await sendAll(sender, 5, `then on ${senders.indexOf(sender)}`);
    const { offset: latest } = await ackOf(senders[0], "last", 99);

    const verdict = await live.nextMatching((f) => f.type === "recovered", WAIT);
    assertEquals(verdict.complete, false);
    assertNotEquals(verdict.epoch, fresh.epoch);
    const offsets: number[] = [];
    while (offsets.at(-1) !== latest) {
      const frame = await live.nextJson(WAIT);
      assertEquals(frame.epoch, verdict.epoch);
      offsets.push(frame.offset as number);
    }
    // Every message of the new epoch, once each and in order, from its first.
    assertEquals(offsets, Array.from({ length: latest as number }, (_, i) => i + 1));
    for (const socket of [live, before, ...senders]) await socket.close();
  },
});

/** Sends `message` with an ack until one is stored (Redis is coming back meanwhile). */
async function storeOne(sender: TestSocket, message: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const answer = await ackOf(sender, `${message} (${attempt})`, attempt);
    if (answer.type === "ack") return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`"${message}" was never stored after Redis came back`);
}

/** The answer to `message` sent with an ack and `ref`: an ack or an error. */
function ackOf(sender: TestSocket, message: string, ref: number): Promise<Frame> {
  sender.sendJson({ message, ref, ack: true });
  return sender.nextMatching((f) => f.ref === ref, WAIT);
}

Deno.test("a client back after a graceful restart gets the 90 messages it missed, complete", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "recovery-restart-" });
  try {
    const env = { ...FAST, DATA_DIR: dataDir };
    let seen: Position;
    {
      await using first = await startServerProcess(env);
      seen = await positioned(first);
      const sender = await TestSocket.open(first.wsUrl(ROOM));
      await sendAll(sender, 80, "on A");
      await sendAll(sender, 10, "on B");
      await sender.close();
      first.signal("SIGTERM");
      assertEquals((await first.status).code, 0);
    }
    await using again = await startServerProcess(env);
    const back = await TestSocket.open(again.wsUrl(backFrom(seen)));
    await assertGetsTheNinety(back, seen);
    await back.close();
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test({
  name: "with --workers 2 a client back on the other Worker gets the 90 messages it missed",
  ignore: !linux, // reusePort spreads connections only on Linux
  fn: async () => {
    await using server = await startServerProcess(FAST, ["--workers", "2"]);
    const { socket: client, worker: first } = await onWorker(
      server,
      `${ROOM}?stream=1`,
      () => true,
    );
    const position = await rawNextMatching(client, (f) => f.type === "recovered");
    client.close();
    const { socket: onFirst } = await onWorker(server, ROOM, (w) => w === first);
    const { socket: onOther } = await onWorker(server, ROOM, (w) => w !== first);
    await rawSendAll(onFirst, 80, "on A");
    await rawSendAll(onOther, 10, "on B");
    const { socket: back } = await onWorker(
      server,
      `${ROOM}?epoch=${position.epoch}&since=${position.offset}`,
      (w) => w !== first,
    );
    const verdict = await rawNextMatching(back, () => true);
    assertEquals(verdict, { type: "recovered", complete: true, epoch: position.epoch, offset: 90 });
    const frames = [];
    while (frames.length < 90) frames.push(await rawNextMatching(back, () => true));
    assertEquals(frames.map((f) => f.message), expectedMessages());
    assertEquals(frames.map((f) => f.offset), Array.from({ length: 90 }, (_, i) => i + 1));
    for (const socket of [onFirst, onOther, back]) socket.close();
  },
});

/** Opens a socket, trying again while the server refuses it (Redis still coming back). */
async function openOnceServed(url: string): Promise<TestSocket> {
  for (let attempt = 1;; attempt++) {
    try {
      return await TestSocket.open(url);
    } catch (error) {
      if (attempt >= 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

Deno.test({
  name: "with --workers 2 a client back after a graceful restart gets the 90 messages it missed",
  ignore: !linux, // reusePort spreads connections only on Linux
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "recovery-workers-restart-" });
    try {
      const env = { ...FAST, DATA_DIR: dataDir };
      let position: Record<string, unknown>;
      {
        await using first = await startServerProcess(env, ["--workers", "2"]);
        const { socket: client, worker } = await onWorker(first, `${ROOM}?stream=1`, () => true);
        position = await rawNextMatching(client, (f) => f.type === "recovered");
        client.close();
        const { socket: onFirst } = await onWorker(first, ROOM, (w) => w === worker);
        const { socket: onOther } = await onWorker(first, ROOM, (w) => w !== worker);
        await rawSendAll(onFirst, 80, "on A");
        await rawSendAll(onOther, 10, "on B");
        // The last message is answered, not yet written: the shutdown writes it.
        first.signal("SIGTERM");
        assertEquals((await first.status).code, 0);
      }
      await using again = await startServerProcess(env, ["--workers", "2"]);
      const { socket: back } = await onWorker(
        again,
        `${ROOM}?epoch=${position.epoch}&since=${position.offset}`,
        () => true,
      );
      const verdict = await rawNextMatching(back, () => true);
      assertEquals(verdict, {
        type: "recovered",
        complete: true,
        epoch: position.epoch,
        offset: 90,
      });
      const frames = [];
      while (frames.length < 90) frames.push(await rawNextMatching(back, () => true));
      assertEquals(frames.map((f) => f.message), expectedMessages());
      assertEquals(frames.map((f) => f.offset), Array.from({ length: 90 }, (_, i) => i + 1));
      back.close();
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
