/** The chat's delivery protocol: offsets, `?stream=1`, recovery, history that was lost. */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { Communicator } from "../../testing.ts";
import { createTestApp, type TestApp } from "../_support/test_app.ts";
import { chatConsumer } from "../../consumers/chat.ts";
import { DenoKvStore } from "../../storage/deno_kv_store.ts";
import { BroadcastLayer } from "../../layers/broadcast.ts";
import { KvStreams } from "../../layers/streams/kv.ts";
import { type GroupStreams, InMemoryLayer, MemoryStreams, type StreamEvent } from "../../mod.ts";
import { type Frame, GENEROUS, join } from "./_chat_delivery_support.ts";

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
