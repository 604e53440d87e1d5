/** In-process streams' bounds (rooms kept, memory budget) and delivery through other layers. */
import { assert, assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import { InMemoryLayer } from "../../../layers/in_memory.ts";
import type { GroupLayer } from "../../../layers/layer.ts";
import { MemoryStreams } from "../../../layers/streams/memory.ts";
import { PublishUnconfirmedError, type StreamPublished } from "../../../layers/streams/contract.ts";
import { openStore } from "./_memory_support.ts";

Deno.test("in-process streams: rooms opened and never used are kept in memory up to a bound", async () => {
  using store = await openStore();
  const layer = new InMemoryLayer();
  const streams = new MemoryStreams(layer, store, { unusedGroups: 2 });
  const epochs = new Map<string, string>();
  for (const room of ["room.a", "room.b", "room.c"]) {
    epochs.set(room, (await streams.latest(room, 50)).epoch);
  }
  await streams.latest("room.b", 50); // read again: "room.a" is now the least recently read
  await streams.latest("room.d", 50); // over the bound of 2
  // The recently read one is kept; the least recently read ones are forgotten (never written,
  // so read again each is a new group).
  assertEquals((await streams.latest("room.b", 50)).epoch, epochs.get("room.b"));
  assertNotEquals((await streams.latest("room.a", 50)).epoch, epochs.get("room.a"));
  await streams.close();
});

Deno.test("in-process streams: rooms written in and gone quiet are let go beyond a bound, and read again as they were", async () => {
  using store = await openStore();
  const layer = new InMemoryLayer();
  const streams = new MemoryStreams(layer, store, { keptGroups: 2 });
  const first = new Map<string, StreamPublished>();
  for (const room of ["room.a", "room.b", "room.c"]) {
    first.set(room, await streams.publish(room, { type: "t", text: room.repeat(10) }));
  }
  const held = streams.retainedCharacters;
  await streams.publish("room.c", { type: "t", n: 2 }); // room.a is now the least recently used
  await streams.flush(); // the round's end lets go what is beyond the bound
  assert(streams.retainedCharacters < held, "room.a's window is still held");
  // Read again from the store: the same epoch and events, and its offsets go on.
  const read = await streams.latest("room.a", 50);
  assertEquals([read.epoch, read.offset], [first.get("room.a")!.epoch, 1]);
  assertEquals(read.events.map((event) => event.text), ["room.a".repeat(10)]);
  const next = await streams.publish("room.a", { type: "t", n: 2 });
  assertEquals([next.epoch, next.offset], [first.get("room.a")!.epoch, 2]);
  // A room still unwritten is never let go: its events would be lost.
  await streams.publish("room.b", { type: "t", n: 2 });
  assertEquals((await streams.latest("room.b", 50)).offset, 2);
  await streams.close();
  const again = new MemoryStreams(layer, store);
  for (const [room, offset] of [["room.a", 2], ["room.b", 2], ["room.c", 2]] as const) {
    const after = await again.latest(room, 50);
    assertEquals([after.epoch, after.offset], [first.get(room)!.epoch, offset], room);
  }
  await again.close();
});

Deno.test("in-process streams: a room read back after it was let go keeps its epoch through a failing store", async () => {
  using store = await openStore();
  const layer = new InMemoryLayer();
  const streams = new MemoryStreams(layer, store, { keptGroups: 1 });
  for (let n = 1; n <= 5; n++) await streams.publish("room.a", { type: "t", n });
  const { epoch } = await streams.latest("room.a", 0);
  await streams.publish("room.b", { type: "t", n: 1 });
  await streams.flush(); // room.a let go
  // One read and one write of the store fail as room.a is read back.
  const [list, set] = [store.list.bind(store), store.set.bind(store)];
  let failures = 2;
  store.list =
    ((...args: Parameters<typeof list>) =>
      failures-- > 1 ? Promise.reject(new Error("busy")) : list(...args)) as typeof list;
  store.set =
    ((...args: Parameters<typeof set>) =>
      failures-- > 0 ? Promise.reject(new Error("busy")) : set(...args)) as typeof set;
  const read = await streams.since("room.a", { epoch, offset: 3 }); // a client of this run
  assertEquals([read.epoch, read.complete, read.events.map((event) => event.n)], [epoch, true, [
    4,
    5,
  ]]);
  assertEquals((await streams.publish("room.a", { type: "t", n: 6 })).offset, 6);
  await streams.close();
});

/**
 * A layer of the contract written by someone else, over `InMemoryLayer`'s groups; its
 * `groupSend` delivers a turn later, and `groupSendNow`, when it has one, at once.
 */
function delegatingLayer(inner: InMemoryLayer, sendNow: boolean): GroupLayer {
  const layer: GroupLayer = {
    newChannel: (deliver) => inner.newChannel(deliver),
    closeChannel: (channel) => inner.closeChannel(channel),
    send: (channel, event) => inner.send(channel, event),
    listen: (name, deliver) => inner.listen(name, deliver),
    groupAdd: (group, channel) => inner.groupAdd(group, channel),
    groupDiscard: (group, channel) => inner.groupDiscard(group, channel),
    // As a layer with remote members would: delivered after `groupSend` returns.
    groupSend: async (group, event) => {
      await Promise.resolve();
      return inner.groupSend(group, event);
    },
    stats: () => inner.stats(),
    close: () => inner.close(),
  };
  if (sendNow) layer.groupSendNow = (group, event) => inner.groupSendNow(group, event);
  return layer;
}

for (const sendNow of [true, false]) {
  Deno.test(`in-process streams on any layer ${sendNow ? "with" : "without"} groupSendNow: members get each event once, in offset order`, async () => {
    using store = await openStore();
    const inner = new InMemoryLayer();
    const layer = delegatingLayer(inner, sendNow);
    const streams = new MemoryStreams(layer, store);
    const got: number[] = [];
    await layer.groupAdd(
      "room.any",
      layer.newChannel((event) => got.push(event.offset as number) > 0),
    );
    await streams.latest("room.any", 0); // loaded: publishes no longer wait for the store
    const published = [];
    for (let n = 1; n <= 3; n++) published.push(streams.publish("room.any", { type: "t", n }));
    // The synchronous path delivers before `publish` returns; the other once its promise settles.
    assertEquals(got.length, sendNow ? 3 : 0);
    const results = await Promise.all(published);
    assertEquals(results.map((result) => result.delivered), [1, 1, 1]);
    assertEquals(got, [1, 2, 3]);
    await streams.close();
    await layer.close();
  });
}

Deno.test("in-process streams: bad input is refused with a TypeError before it takes an offset", async () => {
  using store = await openStore();
  const streams = new MemoryStreams(new InMemoryLayer(), store);
  await assertRejects(() => streams.publish("", { type: "t" }), TypeError);
  await assertRejects(() => streams.publish("room", { n: 1 } as never), TypeError);
  assertEquals((await streams.publish("room", { type: "t" })).offset, 1);
  assertEquals((await streams.latest("room", 10)).events.length, 1);
  await streams.close();
});

Deno.test("in-process streams: past the memory budget the largest rooms lose their oldest first", async () => {
  using store = await openStore();
  const layer = new InMemoryLayer();
  const budget = 200_000; // characters of JSON
  const streams = new MemoryStreams(layer, store, { memoryBudget: budget });
  const line = "x".repeat(1000);
  try {
    // A small room first, then one room after another flooded with long messages.
    for (let n = 1; n <= 5; n++) await streams.publish("room.small", { type: "t", n });
    for (let room = 0; room < 10; room++) {
      for (let n = 0; n < 50; n++) await streams.publish(`room.big${room}`, { type: "t", line });
      assert(streams.retainedCharacters <= budget, `${streams.retainedCharacters} > ${budget}`);
    }
    // About 500,000 characters were published into a budget of 200,000: the small room kept
    // all it had, the big ones their newest, and a client behind the oldest kept is told.
    assertEquals(
      (await streams.since("room.small", await position(streams, "room.small", 0)))
        .events.length,
      5,
    );
    const last = await streams.latest("room.big9", 1_000);
    assert(last.events.length >= 10 && last.events.length < 50, `${last.events.length} kept`);
    assertEquals(last.events.at(-1)!.offset, 50, "the newest is kept");
    const behind = await streams.since("room.big0", await position(streams, "room.big0", 0));
    assertEquals(behind.complete, false);
  } finally {
    await streams.close();
  }
});

async function position(streams: MemoryStreams, group: string, offset: number) {
  return { epoch: (await streams.latest(group, 0)).epoch, offset };
}

Deno.test("in-process streams: a publish stored but not handed on by its layer is unconfirmed, not refused", async () => {
  using store = await openStore();
  const layer = new InMemoryLayer();
  // A layer of one's own whose broker is away: no `groupSendNow`, and `groupSend` fails.
  const failing = Object.assign(Object.create(layer) as GroupLayer, {
    groupSendNow: undefined,
    groupSend: () => Promise.reject(new Error("Broker away")),
  });
  const streams = new MemoryStreams(failing, store);
  const error = await assertRejects(
    () => streams.publish("room.a", { type: "note", n: 1 }),
    PublishUnconfirmedError,
    "Stored as offset 1",
  );
  assertEquals((error.cause as Error).message, "Broker away");
  // Stored: a client told "not sent" would send it again, and every reader would see it twice.
  const read = await streams.latest("room.a", 10);
  assertEquals(read.events.map((event) => event.n), [1]);
  await streams.close();
  await layer.close();
});
