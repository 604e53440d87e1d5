/**
 * The chat's delivery protocol, in process: every frame's offset, `?stream=1`, recovery with
 * `?epoch=&since=`, refs on answers and acks (see the README's delivery protocol).
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { Communicator } from "../../testing.ts";
import { createTestApp, type TestApp } from "../_support/test_app.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";
import { chatConsumer } from "../../consumers/chat.ts";
import { DenoKvStore } from "../../storage/deno_kv_store.ts";
import { BroadcastLayer } from "../../layers/broadcast.ts";
import { KvStreams } from "../../layers/streams/kv.ts";
import {
  type GroupStreams,
  InMemoryLayer,
  type LayerEvent,
  MemoryStreams,
  PublishUnconfirmedError,
  type StreamEvent,
} from "../../mod.ts";

type Frame = Record<string, unknown>;
const GENEROUS = { rateLimit: { perSecond: 100_000, burst: 100_000 } };

async function join(app: TestApp, room: string, query = ""): Promise<Communicator> {
  const comm = new Communicator(app, `/ws/chat/${encodeURIComponent(room)}/${query}`);
  const { accepted, status } = await comm.connect();
  assert(accepted, `joining "${room}" was refused with ${status}`);
  return comm;
}

/** Sends `count` messages from `sender` and waits for its own copies: returns them. */
async function chat(sender: Communicator, count: number, label = "m"): Promise<Frame[]> {
  for (let n = 1; n <= count; n++) sender.sendJson({ message: `${label}${n}` });
  const frames = [];
  for (let n = 1; n <= count; n++) frames.push(await sender.receiveJson());
  return frames;
}

Deno.test("every chat frame carries an offset that grows by 1, for every client", async () => {
  await using app = await createTestApp(GENEROUS);
  const plain = await join(app, "lobby");
  const frames = await chat(plain, 5);
  assertEquals(frames.map((f) => f.offset), [1, 2, 3, 4, 5]);
  const late = await join(app, "lobby");
  const history = [];
  for (let n = 0; n < 5; n++) history.push(await late.receiveJson());
  assertEquals(history.map((f) => [f.offset, f.history]), [1, 2, 3, 4, 5].map((n) => [n, true]));
});

Deno.test("?stream=1 gets the room's position first, then the history, then live", async () => {
  await using app = await createTestApp(GENEROUS);
  const empty = await join(app, "lobby", "?stream=1");
  const first = await empty.receiveJson();
  assertEquals([first.type, first.complete, first.fresh, first.offset], [
    "recovered",
    true,
    true,
    0,
  ]);
  assertEquals(typeof first.epoch, "string");
  await chat(empty, 3);
  const fresh = await join(app, "lobby", "?stream=1");
  const position = await fresh.receiveJson();
  assertEquals([position.type, position.offset, position.epoch], ["recovered", 3, first.epoch]);
  for (let n = 1; n <= 3; n++) assertEquals((await fresh.receiveJson()).offset, n);
  empty.sendJson({ message: "live" });
  const live = await fresh.receiveJson();
  assertEquals([live.message, live.offset, live.history], ["live", 4, undefined]);
});

Deno.test("a client that reconnects with its position gets exactly what it missed, in order", async () => {
  await using app = await createTestApp(GENEROUS);
  const sender = await join(app, "lobby");
  const reader = await join(app, "lobby", "?stream=1");
  const { epoch } = await reader.receiveJson();
  await chat(sender, 3, "seen");
  for (let n = 1; n <= 3; n++) await reader.receiveJson();
  await reader.disconnect();
  await chat(sender, 90, "missed");
  const back = await join(app, "lobby", `?epoch=${epoch}&since=3`);
  assertEquals(await back.receiveJson(), { type: "recovered", complete: true, epoch, offset: 93 });
  const replayed = [];
  for (let n = 0; n < 90; n++) replayed.push(await back.receiveJson());
  assertEquals(
    replayed.map((f) => f.message),
    Array.from({ length: 90 }, (_, i) => `missed${i + 1}`),
  );
  assertEquals(replayed.map((f) => f.offset), Array.from({ length: 90 }, (_, i) => i + 4));
  assert(replayed.every((f) => f.recovered === true && f.history === undefined));
  sender.sendJson({ message: "live" });
  assertEquals(await back.receiveJson().then((f) => [f.message, f.offset]), ["live", 94]);
  assert(await back.receiveNothing(50), "a message came twice");
});

Deno.test("a client that missed the whole default window (1,000) gets all of it, uncut", async () => {
  await using app = await createTestApp(GENEROUS);
  const sender = await join(app, "lobby", "?stream=1");
  const { epoch } = await sender.receiveJson();
  await chat(sender, 1000, "a message of the length people type in a chat room, #");
  const back = await join(app, "lobby", `?epoch=${epoch}&since=0`);
  assertEquals(await back.receiveJson(), {
    type: "recovered",
    complete: true,
    epoch,
    offset: 1000,
  });
  const offsets = [];
  for (let n = 0; n < 1000; n++) offsets.push((await back.receiveJson()).offset);
  assertEquals(offsets, Array.from({ length: 1000 }, (_, i) => i + 1));
  assertEquals(back.droppedBeforeOpen, 0);
});

// Deno KV's streams (`LAYER=broadcast` without a parent) read the replay before its size is
// known: the follower's own count of its bytes is what refuses it.
async function kvStreams(): Promise<
  { layer: BroadcastLayer; streams: KvStreams } & AsyncDisposable
> {
  const dir = await Deno.makeTempDir();
  const kvPath = `${dir}/streams.kv`;
  const layer = await BroadcastLayer.open({ kvPath, prefix: `app@${kvPath}` });
  const streams = await KvStreams.open({ kvPath, prefix: "app", layer });
  return {
    layer,
    streams,
    async [Symbol.asyncDispose]() {
      await streams.close();
      await layer.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

for (const kind of ["in-process", "Deno KV"]) {
  Deno.test(`a replay larger than the socket can hold is complete false, then the last 50 (${kind} streams)`, async () => {
    await using kv = kind === "Deno KV" ? await kvStreams() : null;
    // 4 x 8 KiB before the socket opens: about 110 chat frames, so 300 cannot be replayed whole.
    await using app = await createTestApp(
      { ...GENEROUS, maxBufferedBytes: 8 * 1024 },
      kv === null ? {} : { layer: kv.layer, streams: kv.streams },
    );
    await replayTooLarge(app);
  });
}

async function replayTooLarge(app: TestApp): Promise<void> {
  const sender = await join(app, "lobby", "?stream=1");
  const { epoch } = await sender.receiveJson();
  await chat(sender, 300);
  const back = await join(app, "lobby", `?epoch=${epoch}&since=0`);
  const verdict = await back.receiveJson();
  assertEquals([verdict.type, verdict.complete, verdict.offset], ["recovered", false, 300]);
  assertMatch(String(verdict.reason), /missed 300 messages, more than one reconnect replays/);
  const history = [];
  for (let n = 0; n < 50; n++) history.push(await back.receiveJson());
  assertEquals(history.map((f) => f.offset), Array.from({ length: 50 }, (_, i) => i + 251));
  assert(history.every((f) => f.history === true));
  assertEquals(back.droppedBeforeOpen, 0);
}

Deno.test("messages sent while a client recovers reach it once each, with no gap", async () => {
  await using app = await createTestApp(GENEROUS);
  const sender = await join(app, "lobby");
  const reader = await join(app, "lobby", "?stream=1");
  const { epoch } = await reader.receiveJson();
  await reader.disconnect();
  await chat(sender, 20);
  // The room goes on while the client comes back: its join and its read interleave with them.
  for (let n = 21; n <= 60; n++) sender.sendJson({ message: `m${n}` });
  const back = await join(app, "lobby", `?epoch=${epoch}&since=0`);
  assertEquals((await back.receiveJson()).complete, true);
  const offsets: unknown[] = [];
  while (offsets.at(-1) !== 60) offsets.push((await back.receiveJson()).offset);
  assertEquals(offsets, Array.from({ length: 60 }, (_, i) => i + 1));
  assert(await back.receiveNothing(50));
});

Deno.test("a client that missed more than the window gets complete false and the last 50", async () => {
  await using app = await createTestApp({
    ...GENEROUS,
    historyWindow: { messages: 50, seconds: 0 },
  });
  const sender = await join(app, "lobby", "?stream=1");
  const { epoch } = await sender.receiveJson();
  await chat(sender, 120);
  const back = await join(app, "lobby", `?epoch=${epoch}&since=10`);
  const verdict = await back.receiveJson();
  assertEquals([verdict.type, verdict.complete, verdict.epoch, verdict.offset], [
    "recovered",
    false,
    epoch,
    120,
  ]);
  assertMatch(String(verdict.reason), /expired/);
  const history = [];
  for (let n = 0; n < 50; n++) history.push(await back.receiveJson());
  assertEquals(history.map((f) => f.offset), Array.from({ length: 50 }, (_, i) => i + 71));
  assert(history.every((f) => f.history === true));
});

Deno.test("a client whose epoch is gone, or whose position is not one, gets complete false", async () => {
  await using app = await createTestApp(GENEROUS);
  const sender = await join(app, "lobby");
  await chat(sender, 3);
  const { epoch } = await app.services.streams.latest("chat.lobby", 0);
  // The reason names the cause: a client with a malformed query must not be told of an epoch.
  const cases: [string, RegExp][] = [
    ["?epoch=gone&since=2", /epoch/],
    [`?epoch=${epoch}&since=abc`, /malformed/],
    [`?epoch=${epoch}&since=-1`, /malformed/],
    // Number() reads these as 1 or 2; a position is written in decimal digits only.
    [`?epoch=${epoch}&since=0x2`, /malformed/],
    [`?epoch=${epoch}&since=%2B2`, /malformed/],
    [`?epoch=${epoch}&since=2.0`, /malformed/],
    [`?epoch=${epoch}&since=%202`, /malformed/],
    [`?epoch=${epoch}&since=1e0`, /malformed/],
    ["?epoch=&since=2", /malformed/],
    ["?since=2", /malformed/],
    ["?epoch=x", /malformed/],
  ];
  for (const [query, reason] of cases) {
    const back = await join(app, "lobby", query);
    const verdict = await back.receiveJson();
    assertEquals([verdict.type, verdict.complete, verdict.offset], ["recovered", false, 3], query);
    assertMatch(String(verdict.reason), reason, query);
    for (let n = 1; n <= 3; n++) assertEquals((await back.receiveJson()).history, true);
    await back.disconnect();
  }
  const ahead = await join(app, "lobby", `?epoch=${epoch}&since=7`);
  assertEquals((await ahead.receiveJson()).complete, false);
});

Deno.test("a ref comes back on every error answering its frame", async () => {
  await using app = await createTestApp(GENEROUS);
  const comm = await join(app, "lobby");
  const cases: [unknown, RegExp][] = [
    [{ ref: "r1" }, /like \{"message"/],
    [{ message: 5, ref: "r2" }, /like \{"message"/],
    [{ message: "  ", ref: "r3" }, /empty/],
    [{ message: "x".repeat(10_001), ref: 4 }, /too long/],
    // An ack asked for in a way none is sent for: told, not left waiting.
    [{ message: "hi", ref: "r5", ack: "true" }, /"ack" must be true or false/],
    [{ message: "hi", ref: "r6", ack: 1 }, /"ack" must be true or false/],
    [{ message: "hi", ref: "r7", ack: null }, /"ack" must be true or false/],
  ];
  for (const [frame, error] of cases) {
    comm.sendJson(frame);
    const answer = await comm.receiveJson();
    assertEquals([answer.type, answer.ref], ["error", (frame as Frame).ref]);
    assertMatch(String(answer.error), error);
  }
  comm.sendJson({ message: "hi", ref: { not: "a ref" } });
  const bad = await comm.receiveJson();
  assertEquals([bad.type, bad.ref], ["error", undefined]);
  assertMatch(String(bad.error), /"ref" must be/);
  comm.sendJson({ message: "hi", ack: true });
  const noRef = await comm.receiveJson();
  assertEquals([noRef.type, noRef.ref], ["error", undefined]);
  assertMatch(String(noRef.error), /needs a "ref"/);
  // Counted in characters, as a message is: 64 emoji fit, 65 do not.
  for (const [ref, fits] of [["😀".repeat(64), true], ["😀".repeat(65), false]] as const) {
    comm.sendJson({ message: "x".repeat(10_001), ref });
    const answer = await comm.receiveJson();
    assertEquals(answer.ref, fits ? ref : undefined, `${[...ref].length} emoji`);
  }
  assertEquals(comm.closeCode, null);
});

Deno.test("with ack, a stored message is acknowledged with its ref, offset and epoch", async () => {
  await using app = await createTestApp(GENEROUS);
  const comm = await join(app, "lobby", "?stream=1");
  const { epoch } = await comm.receiveJson();
  comm.sendJson({ message: "hi", ref: "r17", ack: true });
  comm.sendJson({ message: "no ack asked", ref: "r18" });
  const frames = [];
  for (let n = 0; n < 3; n++) frames.push(await comm.receiveJson());
  const ack = frames.find((f) => f.type === "ack");
  assertEquals(ack, { type: "ack", ref: "r17", offset: 1, epoch });
  const messages = frames.filter((f) => f.type === "chat.message").map((
    f,
  ) => [f.message, f.offset]);
  assertEquals(messages, [["hi", 1], ["no ack asked", 2]]);
  assert(await comm.receiveNothing(50), "a message without ack was acknowledged");
});

const ROOM_ROUTE = "/ws/chat/:room/";

// The answer to one chat message with an ack asked, from a chat whose publishes fail with
// `error` (reads go to the app's own streams).
async function answerWhenPublishFails(error: Error): Promise<Record<string, unknown>> {
  await using app = await createTestApp(GENEROUS);
  const failing: GroupStreams = {
    publish: () => Promise.reject(error),
    since: (group, position) => app.services.streams.since(group, position),
    latest: (group, count) => app.services.streams.latest(group, count),
    close: () => Promise.resolve(),
  };
  const target = { consumer: chatConsumer(failing), services: app.services, route: ROOM_ROUTE };
  const comm = new Communicator(target, "/ws/chat/lobby/");
  assert((await comm.connect()).accepted);
  comm.sendJson({ message: "hi", ref: "r1", ack: true });
  const answer = await comm.receiveJson();
  await comm.disconnect();
  return answer;
}

Deno.test("a message that cannot be stored gets an error with its ref, not an ack", async () => {
  const answer = await answerWhenPublishFails(new Error("Redis is away"));
  assertEquals([answer.type, answer.ref, answer.unconfirmed], ["error", "r1", undefined]);
  assertMatch(String(answer.error), /not sent/);
});

Deno.test("a message whose storage lost its answer is said to be unconfirmed, not refused", async () => {
  const answer = await answerWhenPublishFails(new PublishUnconfirmedError("no answer in time"));
  assertEquals([answer.type, answer.ref, answer.unconfirmed], ["error", "r1", true]);
  assertMatch(String(answer.error), /not confirmed/);
});

Deno.test("an outage of the streams is logged once, not once per message, and its end with a count", async () => {
  using captured = new CapturedLog();
  await using app = await createTestApp(GENEROUS);
  log.setLevel("info");
  let away = true;
  const flaky: GroupStreams = {
    publish: (group, event, options) =>
      away
        ? Promise.reject(new Error("Redis is away"))
        : app.services.streams.publish(group, event, options),
    since: (group, position) => app.services.streams.since(group, position),
    latest: (group, count) => app.services.streams.latest(group, count),
    close: () => Promise.resolve(),
  };
  const target = { consumer: chatConsumer(flaky), services: app.services, route: ROOM_ROUTE };
  const senders = [
    new Communicator(target, "/ws/chat/a/"),
    new Communicator(target, "/ws/chat/b/"),
  ];
  for (const sender of senders) assert((await sender.connect()).accepted);
  for (let n = 0; n < 5; n++) {
    for (const sender of senders) {
      sender.sendJson({ message: `m${n}` });
      assertMatch(String((await sender.receiveJson()).error), /not sent/, "each sender is told");
    }
  }
  const warned = captured.lines.filter((line) => line.includes("not being stored"));
  assertEquals(warned.length, 1, captured.lines.join("\n"));
  away = false;
  senders[0].sendJson({ message: "back" });
  assertEquals((await senders[0].receiveJson()).message, "back");
  await captured.waitFor(
    /Chat messages are stored again \(10 not sent or not confirmed meanwhile\)/,
  );
  for (const sender of senders) await sender.disconnect();
});

Deno.test("a message sent through /_send/ gets an offset and is recovered", async () => {
  await using app = await createTestApp({ ...GENEROUS, sendToken: "t0ken" });
  const reader = await join(app, "lobby", "?stream=1");
  const { epoch } = await reader.receiveJson();
  await reader.disconnect();
  const response = await app.handle(
    new Request("http://localhost/_send/", {
      method: "POST",
      headers: { authorization: "Bearer t0ken" },
      body: JSON.stringify({ group: "chat.lobby", event: { type: "chat.message", message: "hi" } }),
    }),
    { remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 } } as Deno.ServeHandlerInfo,
  );
  const answer = await response.json();
  assertEquals([response.status, answer.offset, answer.epoch], [200, 1, epoch]);
  const back = await join(app, "lobby", `?epoch=${epoch}&since=0`);
  assertEquals((await back.receiveJson()).complete, true);
  const frame = await back.receiveJson();
  assertEquals([frame.message, frame.author, frame.offset, frame.recovered], [
    "hi",
    "Server",
    1,
    true,
  ]);
});

Deno.test("an author from outside over 150 characters is cut between characters, not inside one", async () => {
  await using app = await createTestApp({ ...GENEROUS, sendToken: "t0ken" });
  const reader = await join(app, "lobby");
  const response = await app.handle(
    new Request("http://localhost/_send/", {
      method: "POST",
      headers: { authorization: "Bearer t0ken" },
      body: JSON.stringify({
        group: "chat.lobby",
        event: { type: "chat.message", message: "hi", author: "a".repeat(149) + "😀😀" },
      }),
    }),
    { remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 } } as Deno.ServeHandlerInfo,
  );
  assertEquals(response.status, 200);
  const author = String((await reader.receiveJson()).author);
  assertEquals([author, author.isWellFormed()], ["a".repeat(149) + "😀", true]);
});

Deno.test("a Django-style chat_message with its author at the top level is stored and framed as chat.message", async () => {
  await using app = await createTestApp({ ...GENEROUS, sendToken: "t0ken" });
  const reader = await join(app, "lobby", "?stream=1");
  const { epoch } = await reader.receiveJson();
  const send = async (event: Record<string, unknown>) => {
    const response = await app.handle(
      new Request("http://localhost/_send/", {
        method: "POST",
        headers: { authorization: "Bearer t0ken" },
        body: JSON.stringify({ group: "chat.lobby", event }),
      }),
      { remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 } } as Deno.ServeHandlerInfo,
    );
    return [response.status, await response.json()];
  };
  const [status, answer] = await send({ type: "chat_message", message: "hi", author: "alice" });
  assertEquals([status, answer.offset, answer.epoch], [200, 1, epoch]);
  const live = await reader.receiveJson();
  assertEquals([live.type, live.message, live.author, live.offset], [
    "chat.message",
    "hi",
    "alice",
    1,
  ]);
  // Complete but typed Channels' way: still framed as this server's type.
  const complete = {
    message: "yo",
    author: "bob",
    id: "x1",
    room: "lobby",
    time: "2026-01-01T00:00:00Z",
  };
  await app.services.layer.groupSend("chat.lobby", { type: "chat_message", ...complete });
  assertEquals((await reader.receiveJson()).type, "chat.message");
  const [tooLong, refusal] = await send({ type: "chat_message", message: "x".repeat(10_001) });
  assertEquals(tooLong, 400);
  assertMatch(refusal.error, /10001 characters, over the limit of 10000/);
  await reader.disconnect();
});

// A Django page sends its empty input too: refused from every other sender, it must not show
// as an empty bubble without an offset, gone on the next reload.
Deno.test("a blank chat message from outside the streams shows nothing, and says why in the log", async () => {
  using captured = new CapturedLog();
  await using app = await createTestApp(GENEROUS);
  log.setLevel("warn");
  const reader = await join(app, "lobby", "?stream=1");
  await reader.receiveJson(); // its position
  for (const blank of ["", "   "]) {
    await app.services.layer.groupSend("chat.lobby", { type: "chat_message", message: blank });
  }
  await app.services.layer.groupSend("chat.lobby", { type: "chat_message", message: "after" });
  assertEquals((await reader.receiveJson()).message, "after");
  await captured.waitFor(/Ignored a "chat_message" event to "lobby": its text is empty/);
  await reader.disconnect();
});

Deno.test("events that arrive out of offset order reach the client once each, in order", async () => {
  await using app = await createTestApp(GENEROUS);
  // The stream publishes on a layer nobody listens to; the test then delivers its events on
  // the app's layer in reverse, as two Workers' publishes can cross on their way.
  const aside = new InMemoryLayer();
  const streams = new MemoryStreams(aside, app.store);
  const consumer = chatConsumer(streams);
  const target = { consumer, services: app.services, route: "/ws/chat/:room/" };
  const comm = new Communicator(target, "/ws/chat/lobby/?stream=1");
  assert((await comm.connect()).accepted);
  assertEquals((await comm.receiveJson()).offset, 0);
  for (const text of ["one", "two", "three"]) {
    await streams.publish("chat.lobby", { type: "chat.message", message: text });
  }
  const { events } = await streams.latest("chat.lobby", 3);
  for (const event of [...events].reverse()) await app.layer.groupSend("chat.lobby", event);
  const frames = [];
  for (let n = 0; n < 3; n++) frames.push(await comm.receiveJson());
  assertEquals(frames.map((f) => [f.offset, f.message]), [[1, "one"], [2, "two"], [3, "three"]]);
  assert(await comm.receiveNothing(50), "an offset came twice");
  await comm.disconnect();
  await streams.close();
});

Deno.test("a rate-limit notice carries the ref of the frame it refused", async () => {
  await using app = await createTestApp({ rateLimit: { perSecond: 1, burst: 1 } });
  const comm = new Communicator(app, "/ws/chat/lobby/");
  await comm.connect();
  comm.sendJson({ message: "first", ref: "a" });
  comm.sendJson({ message: "second", ref: "b" });
  let refusal: Record<string, unknown> | undefined;
  while (refusal === undefined) {
    const frame = await comm.receiveJson();
    if (frame.type === "error") refusal = frame;
  }
  assertEquals(refusal.ref, "b");
  assert(/Rate limit/.test(String(refusal.error)));
  await comm.disconnect();
});

/** Streams whose state can be lost, as Redis that restarted empty loses it. */
class LosableStreams implements GroupStreams {
  #layer: InMemoryLayer;
  #stores: DenoKvStore[] = [];
  current!: GroupStreams;

  private constructor(layer: InMemoryLayer) {
    this.#layer = layer;
  }

  static async open(layer: InMemoryLayer): Promise<LosableStreams> {
    const streams = new LosableStreams(layer);
    await streams.lose();
    return streams;
  }

  /** Drops every stream: the next publish or read starts a new epoch at offset 1. */
  async lose(): Promise<void> {
    const store = await DenoKvStore.open(":memory:");
    this.#stores.push(store);
    this.current = new MemoryStreams(this.#layer, store);
  }

  publish(...args: Parameters<GroupStreams["publish"]>) {
    return this.current.publish(...args);
  }
  since(...args: Parameters<GroupStreams["since"]>) {
    return this.current.since(...args);
  }
  latest(...args: Parameters<GroupStreams["latest"]>) {
    return this.current.latest(...args);
  }
  async close(): Promise<void> {
    await this.current.close();
    for (const store of this.#stores) store.close();
  }
}

Deno.test("when the room's history is lost, live sockets are told and see the new epoch once each, in order", async () => {
  await using app = await createTestApp(GENEROUS);
  // As in the test above, the test delivers the stream's events itself, here after the room's
  // history was lost, and the new epoch's first two crossed on their way.
  const aside = new InMemoryLayer();
  const streams = await LosableStreams.open(aside);
  const consumer = chatConsumer(streams);
  const target = { consumer, services: app.services, route: "/ws/chat/:room/" };
  const streaming = new Communicator(target, "/ws/chat/lobby/?stream=1");
  const tutorial = new Communicator(target, "/ws/chat/lobby/");
  assert((await streaming.connect()).accepted);
  assert((await tutorial.connect()).accepted);
  const fresh = await streaming.receiveJson();
  for (const text of ["old1", "old2", "old3"]) {
    await streams.publish("chat.lobby", { type: "chat.message", message: text });
    await app.layer.groupSend("chat.lobby", await last(streams));
  }
  for (const comm of [streaming, tutorial]) {
    const frames = [];
    for (let n = 0; n < 3; n++) frames.push(await comm.receiveJson());
    assertEquals(frames.map((f) => f.message), ["old1", "old2", "old3"]);
  }

  await streams.lose();
  for (const text of ["new1", "new2"]) {
    await streams.publish("chat.lobby", { type: "chat.message", message: text });
  }
  const { events, epoch } = await streams.latest("chat.lobby", 2);
  assert(epoch !== fresh.epoch);
  for (const event of [...events].reverse()) await app.layer.groupSend("chat.lobby", event);

  const verdict = await streaming.receiveJson();
  assertEquals([verdict.type, verdict.complete, verdict.epoch], ["recovered", false, epoch]);
  for (const comm of [streaming, tutorial]) {
    const frames = [];
    for (let n = 0; n < 2; n++) frames.push(await comm.receiveJson());
    assertEquals(frames.map((f) => [f.message, f.offset, f.epoch]), [
      ["new1", 1, epoch],
      ["new2", 2, epoch],
    ]);
    assert(await comm.receiveNothing(50), "an offset came twice");
  }
  await streams.publish("chat.lobby", { type: "chat.message", message: "new3" });
  await app.layer.groupSend("chat.lobby", await last(streams));
  for (const comm of [streaming, tutorial]) {
    assertEquals((await comm.receiveJson()).message, "new3");
    await comm.disconnect();
  }
  await streams.close();
});

async function last(streams: GroupStreams): Promise<StreamEvent> {
  const { events } = await streams.latest("chat.lobby", 1);
  return events[0];
}

Deno.test("a reconnect that cannot recover costs what a first visit costs, however much the room holds", async () => {
  await using app = await createTestApp(GENEROUS);
  const sender = await join(app, "lobby", "?stream=1");
  const { epoch } = await sender.receiveJson();
  // 2,000 messages of 10,000 characters: 20 MB the room keeps for recovery.
  for (let round = 0; round < 20; round++) await chat(sender, 100, "x".repeat(9_990));
  const joinTime = async (query: string) => {
    const start = performance.now();
    const comm = await join(app, "lobby", query);
    const took = performance.now() - start;
    assertEquals((await comm.receiveJson()).type, "recovered");
    await comm.disconnect();
    return took;
  };
  await joinTime("?stream=1"); // the first join pays for what is loaded on first use
  const fresh = await joinTime("?stream=1"); // the last 50 as history
  // Neither can be served, and both were told so only after reading all 2,000.
  const staleEpoch = await joinTime("?epoch=gone&since=0");
  const tooMuch = await joinTime(`?epoch=${epoch}&since=0`);
  for (const took of [staleEpoch, tooMuch]) {
    assert(took < Math.max(fresh, 5) * 5, `${took} ms against ${fresh} ms for a first visit`);
  }
});

Deno.test("a Django message one process could not keep and another kept is shown with one id", async () => {
  await using app = await createTestApp(GENEROUS);
  // The shared stream, as Redis is: what is kept in it reaches no socket by itself.
  const store = await DenoKvStore.open(":memory:");
  const shared = new MemoryStreams(new InMemoryLayer(), store, { writeDelayMs: 0 });
  // As channels_redis' copies: one identity per send, the same in every process.
  const identities = new WeakMap<object, string>();
  let sends = 0;
  const foreignIdOf = (received: LayerEvent) => {
    if (!identities.has(received)) identities.set(received, `1765000000.${++sends}:h`);
    return identities.get(received);
  };
  const processStreams = (keeps: boolean): GroupStreams => ({
    // A publish reaches every process's sockets, with its offset (the Redis PUBLISH).
    publish: async (group, event, options) => {
      const published = await shared.publish(group, event, options);
      const { offset, epoch } = published;
      await app.services.layer.groupSend(group, { ...event, offset, epoch });
      return published;
    },
    since: (group, position, options) => shared.since(group, position, options),
    latest: (group, count) => shared.latest(group, count),
    close: () => Promise.resolve(),
    foreignIdOf,
    keepForeign: async (group, _received, kept) => {
      if (!keeps) throw new Error("this process's Redis connection is cut");
      const published = await shared.publish(group, kept);
      return { ...kept, offset: published.offset, epoch: published.epoch } as StreamEvent;
    },
  });
  const socketOn = (keeps: boolean) =>
    new Communicator(
      { consumer: chatConsumer(processStreams(keeps)), services: app.services, route: ROOM_ROUTE },
      "/ws/chat/lobby/?stream=1",
    );
  const [onA, onB] = [socketOn(false), socketOn(true)];
  for (const comm of [onA, onB]) {
    assert((await comm.connect()).accepted);
    assertEquals((await comm.receiveJson()).type, "recovered");
  }
  // Django's group_send reaches both processes' sockets; only B keeps it.
  await app.services.layer.groupSend("chat.lobby", {
    type: "chat_message",
    message: "from django",
  });
  const loose = await onA.receiveJson();
  const kept = await onB.receiveJson();
  assertEquals([loose.message, loose.offset], ["from django", undefined]);
  assertEquals([kept.message, kept.offset], ["from django", 1]);
  assertEquals(kept.id, loose.id, "the kept copy and the one sent as it came differ");
  // The next message makes A read the gap: the kept copy comes too, under the same id.
  onB.sendJson({ message: "next" });
  const again = await onA.receiveJson();
  assertEquals([again.message, again.offset, again.id], ["from django", 1, loose.id]);
  assertEquals((await onA.receiveJson()).message, "next");
  for (const comm of [onA, onB]) await comm.disconnect();
  await shared.close();
  store.close();
});
