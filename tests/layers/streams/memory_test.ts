import { assert, assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import { streamConformance, type StreamWorld } from "./conformance.ts";
import { InMemoryLayer } from "../../../layers/in_memory.ts";
import type { GroupLayer } from "../../../layers/layer.ts";
import { MemoryStreams } from "../../../layers/streams/memory.ts";
import {
  EMPTY_STREAM_KEPT_MS,
  PublishUnconfirmedError,
  type StreamPublished,
} from "../../../layers/streams/contract.ts";
import { chunkKey, CLEAN_MARK_KEPT_MS, recordKey } from "../../../layers/streams/_store_layout.ts";
import { DenoKvStore } from "../../../storage/deno_kv_store.ts";
import { PartlyWrittenError } from "../../../storage/store.ts";
import type { Store } from "../../../storage/store.ts";
import { CapturedLog } from "../../_support/captured_log.ts";

/** An in-memory store that `using` closes. */
async function openStore(): Promise<Store & Disposable> {
  const store = await DenoKvStore.open(":memory:");
  return Object.assign(store, { [Symbol.dispose]: () => store.close() });
}

async function memoryWorld(): Promise<StreamWorld> {
  const stores: Store[] = [await DenoKvStore.open(":memory:")];
  return {
    open: () => {
      const layer = new InMemoryLayer();
      return Promise.resolve({ layer, streams: new MemoryStreams(layer, stores.at(-1)!) });
    },
    lose: async () => void stores.push(await DenoKvStore.open(":memory:")),
    [Symbol.asyncDispose]: () => Promise.resolve(stores.forEach((store) => store.close())),
  };
}

streamConformance("in-process streams", memoryWorld, {
  orderedAcrossPublishers: true,
  refusesLargeReads: true,
  pagesReads: true,
});

// A run that publishes n = 1, 2, 3 to "room.a" and stops gracefully; resolves with its epoch.
async function gracefulRunOfThree(layer: InMemoryLayer, store: Store): Promise<string> {
  const run = new MemoryStreams(layer, store);
  for (let n = 1; n <= 3; n++) await run.publish("room.a", { type: "t", n });
  const { epoch } = await run.latest("room.a", 0);
  await run.close();
  return epoch;
}

Deno.test("in-process streams: a graceful restart keeps the epoch, offsets and events", async () => {
  using store = await openStore();
  const layer = new InMemoryLayer();
  const epoch = await gracefulRunOfThree(layer, store);
  const next = new MemoryStreams(layer, store);
  const read = await next.since("room.a", { epoch, offset: 1 });
  assertEquals([read.complete, read.events.map((e) => e.n)], [true, [2, 3]]);
  assertEquals((await next.publish("room.a", { type: "t" })).offset, 4);
  await next.close();
});

Deno.test("in-process streams: a group read but never published to keeps its epoch after a graceful restart", async () => {
  using store = await openStore();
  const layer = new InMemoryLayer();
  const run = new MemoryStreams(layer, store);
  const { epoch } = await run.latest("room.empty", 50); // a page opened it; nobody wrote
  await run.close();
  const next = new MemoryStreams(layer, store);
  // The page comes back after the deploy: it missed nothing, and is told so.
  const read = await next.since("room.empty", { epoch, offset: 0 });
  assertEquals([read.complete, read.epoch], [true, epoch]);
  assertEquals((await next.publish("room.empty", { type: "t" })).epoch, epoch);
  await next.close();
  // Used now: the record no longer expires, and a third run keeps the event.
  const third = new MemoryStreams(layer, store);
  assertEquals((await third.since("room.empty", { epoch, offset: 0 })).events.length, 1);
  await third.close();
});

Deno.test("in-process streams: an unused group's expiring record is written again at each graceful stop", async () => {
  using store = await openStore();
  const layer = new InMemoryLayer();
  // What each run's graceful stop wrote to last (and how long it lasts).
  const recordingWrites = (run: MemoryStreams, writes: [string, number | undefined][]) => {
    const writeMany = store.writeMany.bind(store);
    store.writeMany = (changes) => {
      for (const change of changes) {
        if ("value" in change) writes.push([change.key.join("/"), change.expireInMs]);
      }
      return writeMany(changes);
    };
    return run;
  };
  for (let run = 1; run <= 2; run++) {
    const writes: [string, number | undefined][] = [];
    const streams = recordingWrites(new MemoryStreams(layer, store), writes);
    await streams.latest("room.empty", 50); // opened, never used; the second run claims it
    await streams.close();
    // Else a record claimed a day before a long run's stop would expire, and the epoch with it.
    assertEquals(
      writes.filter(([key]) => key === "stream_meta/room.empty"),
      [["stream_meta/room.empty", EMPTY_STREAM_KEPT_MS]],
      `run ${run}`,
    );
  }
});

// Stores a chunk of `group` as a run would: events `from`..`to` of `epoch`.
async function storeChunk(store: Store, group: string, epoch: string, from: number, to: number) {
  const events = [];
  for (let offset = from; offset <= to; offset++) {
    events.push([Date.now(), { type: "t", n: offset, offset, epoch }]);
  }
  await store.set(chunkKey(group, to), new TextEncoder().encode(JSON.stringify(events)));
}

// What a crash in the middle of a write round (several commits) can leave: an expired chunk
// beside a newer one, or a record ahead of its chunks. Offsets must never be given twice, and
// nothing published after must be lost across a graceful restart.
for (
  const [left, chunks, recordOffset, kept] of [
    ["an expired chunk beside a newer one", [[1, 3], [8, 10]], 10, [8, 9, 10]],
    ["a record ahead of its chunks", [[1, 3]], 10, []],
  ] as const
) {
  Deno.test(`in-process streams: a gap a crash left in the store (${left}) is left out, and loses nothing after`, async () => {
    using store = await openStore();
    for (const [from, to] of chunks) await storeChunk(store, "room.a", "old", from, to);
    await store.set(recordKey("room.a"), { epoch: "old", offset: recordOffset, run: "crashed" });
    const layer = new InMemoryLayer();
    using _log = new CapturedLog();
    const run = new MemoryStreams(layer, store, { writeDelayMs: 60_000 });
    const { epoch, events } = await run.latest("room.a", 50);
    assertEquals(events.map((event) => event.offset), [...kept]);
    for (let n = 1; n <= 10; n++) {
      assertEquals((await run.publish("room.a", { type: "t", n })).offset, recordOffset + n);
      if (n === 3) await run.flush();
    }
    await run.close();
    const next = new MemoryStreams(layer, store);
    const read = await next.since("room.a", { epoch, offset: recordOffset });
    assertEquals([read.epoch, read.complete], [epoch, true]);
    assertEquals(read.events.map((event) => event.n), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assertEquals((await next.latest("room.a", 50)).events.map((event) => event.offset), [
      ...kept,
      ...Array.from({ length: 10 }, (_, i) => recordOffset + 1 + i),
    ]);
    assertEquals((await next.publish("room.a", { type: "t" })).offset, recordOffset + 11);
    await next.close();
    // What was left out is gone from the store too.
    const stored = await store.list(["stream", "room.a"]);
    assert(
      stored.every((entry) => Number(entry.key[2]) > 3),
      "a chunk before the gap is still stored",
    );
  });
}

Deno.test("in-process streams: a graceful stop's mark expires, so deploys leave no key for good", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/streams.sqlite3`;
  try {
    const store = await DenoKvStore.open(path);
    const epoch = await gracefulRunOfThree(new InMemoryLayer(), store);
    const next = new MemoryStreams(new InMemoryLayer(), store);
    assertEquals((await next.latest("room.a", 0)).epoch, epoch, "the mark keeps the epoch");
    await next.close();
    store.close();
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(path, { readOnly: true });
    const rows = db.prepare("SELECT k, expiration_ms FROM kv").all() as {
      k: Uint8Array;
      expiration_ms: number;
    }[];
    db.close();
    const marks = rows.filter((row) => new TextDecoder().decode(row.k).includes("stream_runs"));
    assertEquals(marks.length, 2, "one mark per run that wrote");
    for (const mark of marks) {
      const expiresIn = mark.expiration_ms - Date.now();
      assert(
        expiresIn > CLEAN_MARK_KEPT_MS - 60_000 && expiresIn <= CLEAN_MARK_KEPT_MS,
        `expires in ${expiresIn} ms`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

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

Deno.test("in-process streams: a room whose store could not be read takes a new epoch that a restart never mixes with the old events", async () => {
  using store = await openStore();
  const layer = new InMemoryLayer();
  const first = new MemoryStreams(layer, store);
  for (let n = 1; n <= 10; n++) await first.publish("room.a", { type: "t", n: `old ${n}` });
  await first.close();
  // Every read of the room fails as the next run opens it, then the store works again.
  const list = store.list.bind(store);
  let failures = 3;
  store.list =
    ((...args: Parameters<typeof list>) =>
      failures-- > 0 ? Promise.reject(new Error("busy")) : list(...args)) as typeof list;
  using _log = new CapturedLog();
  const second = new MemoryStreams(layer, store);
  for (let n = 1; n <= 3; n++) await second.publish("room.a", { type: "t", n: `new ${n}` });
  const { epoch, offset } = await second.latest("room.a", 0);
  assertEquals(offset, 3);
  await second.close();
  const third = new MemoryStreams(layer, store);
  // A client of the second run, up to date, has missed nothing; the room's history is its own.
  const read = await third.since("room.a", { epoch, offset: 3 });
  assertEquals([read.epoch, read.complete, read.events], [epoch, true, []]);
  const latest = await third.latest("room.a", 50);
  assertEquals(latest.events.map((event) => `${event.offset}: ${event.n}`), [
    "1: new 1",
    "2: new 2",
    "3: new 3",
  ]);
  assertEquals((await third.publish("room.a", { type: "t" })).offset, 4);
  await third.close();
});

Deno.test("in-process streams: a group's own retention is kept after a restart, whatever comes first", async () => {
  using store = await openStore();
  const layer = new InMemoryLayer();
  const streamsDefault = { retention: { messages: 5, seconds: 0 } };
  const own = { retention: { messages: 20, seconds: 0 } };
  const run = new MemoryStreams(layer, store, streamsDefault);
  for (let n = 1; n <= 15; n++) await run.publish("room.a", { type: "t", n }, own);
  const { epoch } = await run.latest("room.a", 0);
  await run.close();
  // A read first: the window must not shrink to the streams' default as it loads.
  const next = new MemoryStreams(layer, store, streamsDefault);
  const read = await next.since("room.a", { epoch, offset: 0 });
  assertEquals([read.complete, read.events.length], [true, 15]);
  assertEquals((await next.latest("room.a", 50)).events.length, 15);
  await next.close();
});

Deno.test("in-process streams: after a crash the epoch changes and the events stay", async () => {
  using store = await openStore();
  const layer = new InMemoryLayer();
  const crashed = new MemoryStreams(layer, store, { writeDelayMs: 0 });
  for (let n = 1; n <= 3; n++) await crashed.publish("room.a", { type: "t", n });
  await crashed.flush(); // written, but never closed: as a process that was killed
  const { epoch } = await crashed.latest("room.a", 0);
  const next = new MemoryStreams(layer, store);
  const read = await next.since("room.a", { epoch, offset: 3 });
  assertEquals(read.complete, false);
  assertNotEquals(read.epoch, epoch);
  const kept = await next.latest("room.a", 50);
  assertEquals(kept.events.map((e) => e.n), [1, 2, 3]);
  // They are the new epoch's events now: a client that takes its position from them is not
  // told again and again that the epoch changed.
  assertEquals(kept.events.map((e) => e.epoch), [read.epoch, read.epoch, read.epoch]);
  const from = await next.since("room.a", { epoch: read.epoch, offset: 2 });
  assertEquals([from.complete, from.events.map((e) => [e.n, e.epoch])], [true, [[3, read.epoch]]]);
  assertEquals((await next.publish("room.a", { type: "t" })).offset, 4);
  await next.close();
  // And so they stay once written.
  const third = new MemoryStreams(layer, store);
  const again = await third.latest("room.a", 50);
  assertEquals(again.events.every((e) => e.epoch === again.epoch), true);
  await third.close();
});

Deno.test("in-process streams: a run that crashes before it ever wrote still changes the epoch", async () => {
  using store = await openStore();
  const layer = new InMemoryLayer();
  const epoch = await gracefulRunOfThree(layer, store);
  // The next run gives offset 4 to a message, then dies before its first write.
  const crashed = new MemoryStreams(layer, store, { writeDelayMs: 60_000 });
  const lost = await crashed.publish("room.a", { type: "t", n: 4 });
  assertEquals([lost.epoch, lost.offset], [epoch, 4]);
  // A client that saw offset 4 must not be told that another message 4 is the one it saw.
  const next = new MemoryStreams(layer, store);
  const read = await next.since("room.a", { epoch, offset: 4 });
  assertEquals(read.complete, false);
  assertNotEquals(read.epoch, epoch);
  await next.close();
  await crashed.close();
});

Deno.test("in-process streams: offsets written in later rounds survive a restart, and so does an emptied stream's", async () => {
  using store = await openStore();
  const layer = new InMemoryLayer();
  // Round after round: the record is written once, the later offsets only in the chunks.
  const first = new MemoryStreams(layer, store, { writeDelayMs: 60_000 });
  for (let round = 0; round < 3; round++) {
    for (let n = 1; n <= 5; n++) await first.publish("room.a", { type: "t", n });
    await first.flush();
  }
  const { epoch } = await first.latest("room.a", 0);
  await first.close();
  const next = new MemoryStreams(layer, store, { retention: { messages: 0, seconds: 0 } });
  assertEquals(await next.latest("room.a", 0).then((r) => [r.epoch, r.offset]), [epoch, 15]);
  // Nothing is kept now: every chunk goes, and the record alone keeps the offset.
  await next.publish("room.a", { type: "t" });
  await next.close();
  assertEquals((await store.list(["stream", "room.a"])).length, 0);
  const last = new MemoryStreams(layer, store);
  assertEquals(await last.latest("room.a", 0).then((r) => [r.epoch, r.offset]), [epoch, 16]);
  assertEquals((await last.publish("room.a", { type: "t" })).offset, 17);
  await last.close();
});

Deno.test("in-process streams: events are written within the write delay", async () => {
  using store = await openStore();
  const streams = new MemoryStreams(new InMemoryLayer(), store, { writeDelayMs: 10 });
  await streams.publish("room.a", { type: "t" });
  const deadline = Date.now() + 5000;
  while ((await store.get(["stream_meta", "room.a"])) === null && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assertEquals((await store.get<{ offset: number }>(["stream_meta", "room.a"]))?.offset, 1);
  await streams.close();
});

Deno.test("in-process streams: kept events read back whole (Unicode, larger than a block, trimmed across blocks, after a restart)", async () => {
  using store = await openStore();
  const layer = new InMemoryLayer();
  const retention = { messages: 300, seconds: 0 };
  const first = new MemoryStreams(layer, store, { retention });
  const texts = Array.from(
    { length: 1000 },
    (_, n) => `${n} é 😀 ${"x".repeat(n % 7 === 0 ? 500 : 5)}`,
  );
  texts[500] = "€".repeat(70_000); // over 64 KiB of UTF-8 on its own
  for (const text of texts) await first.publish("room.u", { type: "t", text, nested: { text } });
  const kept = texts.slice(-300);
  const latest = await first.latest("room.u", 1000);
  assertEquals(latest.events.map((e) => e.text), kept);
  assertEquals(latest.events.map((e) => (e.nested as { text: string }).text), kept);
  assertEquals(latest.events.map((e) => e.offset), kept.map((_, i) => 701 + i));
  const since = await first.since("room.u", { epoch: latest.epoch, offset: 998 });
  assertEquals([since.complete, since.events.map((e) => e.text)], [true, texts.slice(998)]);
  await first.close();
  const next = new MemoryStreams(layer, store, { retention });
  const reread = await next.latest("room.u", 1000);
  assertEquals([reread.epoch, reread.events.map((e) => e.text)], [latest.epoch, kept]);
  await next.close();
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

/** `store`, whose writes fail while `failing.now` is true. */
function failingWrites(store: Store, failing: { now: boolean }): Store {
  const writeMany = store.writeMany.bind(store);
  store.writeMany = (changes) =>
    failing.now ? Promise.reject(new Error("database or disk is full")) : writeMany(changes);
  return store;
}

Deno.test("in-process streams: a stop whose last write failed says so, and the next run takes a new epoch rather than offsets given before", async () => {
  using store = await openStore();
  const failing = { now: true };
  const layer = new InMemoryLayer();
  const run = new MemoryStreams(layer, failingWrites(store, failing), { writeDelayMs: 60_000 });
  for (let n = 1; n <= 3; n++) await run.publish("room.a", { type: "t", n });
  const { epoch } = await run.latest("room.a", 0);
  await assertRejects(() => run.close(), Error, "1 stream(s) could not be written");
  failing.now = false;
  const next = new MemoryStreams(layer, store);
  const read = await next.since("room.a", { epoch, offset: 3 });
  // Not "complete" in the old epoch, whose offsets 1 to 3 would be given again.
  assertEquals(read.complete, false);
  assertNotEquals((await next.publish("room.a", { type: "t" })).epoch, epoch);
  await next.close();
});

// A room written once, then `failedRounds` write rounds that fail while it goes on (keeping 2
// messages): the sizes of the writes of the round that works again, and what the streams told.
async function roundsAfterAnOutage(failedRounds: number) {
  using store = await openStore();
  const failing = { now: false };
  const writes: number[] = [];
  const writeMany = store.writeMany.bind(store);
  store.writeMany = (changes) => {
    if (!failing.now) writes.push(changes.length);
    return writeMany(changes);
  };
  using captured = new CapturedLog();
  const streams = new MemoryStreams(new InMemoryLayer(), failingWrites(store, failing), {
    writeDelayMs: 60_000,
  });
  const retention = { messages: 2, seconds: 0 };
  const publish = (n: number) => streams.publish("room.a", { type: "t", n }, { retention });
  for (let n = 1; n <= 3; n++) await publish(n);
  await streams.flush(); // a chunk and the record
  failing.now = true;
  await publish(4);
  for (let round = 0; round < failedRounds; round++) await assertRejects(() => streams.flush());
  for (let n = 5; n <= 20; n++) await publish(n); // what was planned before is gone from memory
  failing.now = false;
  writes.length = 0;
  await streams.flush();
  await streams.close();
  return { writes, failures: streams.writeFailures, lines: captured.lines };
}

Deno.test("in-process streams: rounds that fail add nothing they keep, and are counted and said once", async () => {
  const once = await roundsAfterAnOutage(1);
  const often = await roundsAfterAnOutage(50);
  // The same round once writes work: no copy of a planned chunk per failed round, nor a delete
  // of each copy (keys that were never written).
  assertEquals(often.writes, once.writes);
  assertEquals([once.failures, often.failures], [1, 50]);
  for (const { lines } of [once, often]) {
    assertEquals(lines.filter((line) => line.includes("not written")).length, 1);
    assert(lines.some((line) => line.includes("written again")));
  }
});

Deno.test("in-process streams: a round written only in part leaves no chunk behind that a restart would read twice", async () => {
  using store = await openStore();
  const layer = new InMemoryLayer();
  let partly: number | null = null;
  const writeMany = store.writeMany.bind(store);
  // A round of several commits whose later ones fail (a disk that fills up meanwhile).
  store.writeMany = async (changes) => {
    if (partly === null) return writeMany(changes);
    await writeMany(changes.slice(0, partly));
    throw new PartlyWrittenError(partly, new Error("database or disk is full"));
  };
  const run = new MemoryStreams(layer, store, { writeDelayMs: 60_000 });
  for (const room of ["room.a", "room.b"]) {
    for (let n = 1; n <= 3; n++) await run.publish(room, { type: "t", n });
  }
  await run.flush();
  const { epoch } = await run.latest("room.a", 0);
  for (const room of ["room.a", "room.b"]) await run.publish(room, { type: "t", n: 4 });
  partly = 1; // room.a's new chunk is written; room.b's is not
  await assertRejects(() => run.flush());
  partly = null;
  await run.publish("room.a", { type: "t", n: 5 }); // the next chunk of room.a ends elsewhere
  await run.close();
  const next = new MemoryStreams(layer, store);
  const read = await next.since("room.a", { epoch, offset: 3 });
  assertEquals([read.complete, read.events.map((e) => e.n)], [true, [4, 5]]);
  await next.close();
});

Deno.test("in-process streams: a flush resolves when its round was written, though more came meanwhile", async () => {
  using store = await openStore();
  const writeMany = store.writeMany.bind(store);
  const { promise: release, resolve } = Promise.withResolvers<void>();
  const { promise: writing, resolve: started } = Promise.withResolvers<void>();
  store.writeMany = async (changes) => {
    started();
    await release;
    return writeMany(changes);
  };
  const streams = new MemoryStreams(new InMemoryLayer(), store, { writeDelayMs: 60_000 });
  await streams.publish("room.a", { type: "t", n: 1 });
  const flushed = streams.flush();
  await writing;
  await streams.publish("room.a", { type: "t", n: 2 }); // the next round's
  resolve();
  await flushed; // nothing failed
  assertEquals(streams.writeFailures, 0);
  await streams.close();
});

Deno.test("in-process streams: a flush with nothing to write leaves the next rounds to write", async () => {
  using store = await openStore();
  const writeMany = store.writeMany.bind(store);
  let wrote = Promise.withResolvers<void>();
  store.writeMany = async (changes) => {
    await writeMany(changes);
    wrote.resolve();
  };
  const streams = new MemoryStreams(new InMemoryLayer(), store, { writeDelayMs: 10 });
  await streams.publish("room.a", { type: "t", n: 1 });
  await wrote.promise;
  await streams.flush(); // nothing is left: its round writes nothing
  wrote = Promise.withResolvers<void>();
  await streams.publish("room.a", { type: "t", n: 2 });
  // Written by the round its publish scheduled (none came after such a flush; bounded wait).
  let timer: ReturnType<typeof setTimeout> | undefined;
  const never = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("no round wrote the publish")), 5000);
  });
  await Promise.race([wrote.promise, never]).finally(() => clearTimeout(timer));
  const { epoch } = await streams.latest("room.a", 0);
  await streams.close();
  const next = new MemoryStreams(new InMemoryLayer(), store);
  const read = await next.since("room.a", { epoch, offset: 0 });
  assertEquals([read.complete, read.events.map((e) => e.n)], [true, [1, 2]]);
  await next.close();
});

Deno.test("in-process streams: a stop whose clean mark cannot be written says so", async () => {
  using store = await openStore();
  const run = new MemoryStreams(new InMemoryLayer(), store);
  await run.publish("room.a", { type: "t", n: 1 });
  await run.flush(); // everything is written; then the disk fills
  store.set = () => Promise.reject(new Error("database or disk is full"));
  await assertRejects(() => run.close(), Error, "the clean shutdown was not recorded");
});

Deno.test("in-process streams: a room published to while a round writes another is written by the next round", async () => {
  using store = await openStore();
  const writeMany = store.writeMany.bind(store);
  const rounds: string[][] = [];
  let release = Promise.withResolvers<void>();
  let next = Promise.withResolvers<void>();
  store.writeMany = async (changes) => {
    rounds.push([...new Set(changes.map((change) => change.key[1]))].sort());
    next.resolve();
    await release.promise;
    return writeMany(changes);
  };
  const streams = new MemoryStreams(new InMemoryLayer(), store, { writeDelayMs: 10 });
  await streams.publish("room.a", { type: "t" });
  await next.promise; // room.a's round writes
  next = Promise.withResolvers<void>();
  await streams.publish("room.b", { type: "t" });
  release.resolve();
  await next.promise; // a round came for room.b, with no publish after it
  assertEquals(rounds.at(-1)!.includes("room.b"), true, JSON.stringify(rounds));
  release = Promise.withResolvers<void>();
  release.resolve();
  await streams.close();
});

Deno.test("in-process streams: a stop that opened no stream succeeds though its clean mark cannot be written", async () => {
  using store = await openStore();
  const run = new MemoryStreams(new InMemoryLayer(), store);
  store.set = () => Promise.reject(new Error("database or disk is full"));
  await run.close(); // no record names this run: nothing reads the mark
});

Deno.test("in-process streams: a stop whose only room was read, on a full disk, succeeds: no record names the run", async () => {
  using store = await openStore();
  store.set = () => Promise.reject(new Error("database or disk is full"));
  store.writeMany = () => Promise.reject(new Error("database or disk is full"));
  const run = new MemoryStreams(new InMemoryLayer(), store);
  await run.latest("room.a", 50); // a socket entered an empty room
  await run.close();
});

Deno.test("in-process streams: a close leaves no write round behind, after a publish to another room during a round", async () => {
  using store = await openStore();
  const writeMany = store.writeMany.bind(store);
  const release = Promise.withResolvers<void>();
  const writing = Promise.withResolvers<void>();
  store.writeMany = async (changes) => {
    writing.resolve();
    await release.promise;
    return writeMany(changes);
  };
  // The rounds' timers (a minute each) that are still pending.
  const pending = new Set<ReturnType<typeof setTimeout>>();
  const { setTimeout: set, clearTimeout: clear } = globalThis;
  globalThis.setTimeout = ((callback: () => void, ms?: number) => {
    const id = set(() => (pending.delete(id), callback()), ms);
    if (ms === 60_000) pending.add(id);
    return id;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((id?: ReturnType<typeof setTimeout>) => {
    if (id !== undefined) pending.delete(id);
    clear(id);
  }) as typeof clearTimeout;
  try {
    const streams = new MemoryStreams(new InMemoryLayer(), store, { writeDelayMs: 60_000 });
    await streams.publish("room.a", { type: "t" });
    const flushing = streams.flush();
    await writing.promise; // room.a's round writes
    await streams.publish("room.b", { type: "t" }); // asks for the next round
    const closing = streams.close(); // while room.a's round is still under way
    release.resolve();
    await Promise.all([flushing, closing]);
    assertEquals(pending.size, 0, "a round is still due after the close");
  } finally {
    pending.forEach(clear);
    Object.assign(globalThis, { setTimeout: set, clearTimeout: clear });
  }
});

Deno.test("in-process streams: unused rooms' records written in part name the run, so a failed clean mark fails the stop", async () => {
  using store = await openStore();
  const run = new MemoryStreams(new InMemoryLayer(), store);
  for (const room of ["room.a", "room.b"]) await run.latest(room, 50); // opened, never used
  const writeMany = store.writeMany.bind(store);
  store.writeMany = async (changes) => {
    await writeMany(changes.slice(0, 1)); // the first record, then the disk is full
    throw new PartlyWrittenError(1, new Error("database or disk is full"));
  };
  store.set = () => Promise.reject(new Error("database or disk is full"));
  await assertRejects(() => run.close(), Error, "the clean shutdown was not recorded");
});

Deno.test("in-process streams: a run that wrote nothing leaves no clean mark, so idle restarts add no key for good", async () => {
  using store = await openStore();
  for (let restart = 0; restart < 3; restart++) {
    await new MemoryStreams(new InMemoryLayer(), store).close();
  }
  assertEquals(await store.list(["stream_runs"]), []);
  // A run that wrote leaves its mark: the next run reads it through the record.
  const writing = new MemoryStreams(new InMemoryLayer(), store);
  await writing.publish("room.a", { type: "chat.message", text: "hi" });
  await writing.close();
  assertEquals((await store.list(["stream_runs"])).length, 1);
});

Deno.test("in-process streams: a publish made while a round writes is written writeDelayMs after it, not after that round", async () => {
  using store = await openStore();
  const delayMs = 1000;
  const calls: { at: number; changes: number }[] = [];
  const called: (() => void)[] = [];
  let release = () => {};
  const firstHeld = new Promise<void>((resolve) => release = resolve);
  const writeMany = store.writeMany.bind(store);
  store.writeMany = async (changes) => {
    calls.push({ at: performance.now(), changes: changes.length });
    called.shift()?.();
    if (calls.length === 1) await firstHeld; // a slow round, as under load
    return writeMany(changes);
  };
  const nextCall = () => new Promise<void>((resolve) => called.push(resolve));
  const layer = new InMemoryLayer();
  const streams = new MemoryStreams(layer, store, { writeDelayMs: delayMs });
  const firstRound = nextCall();
  await streams.publish("room.a", { type: "t", n: 1 });
  await firstRound;
  await streams.publish("room.b", { type: "t", n: 2 }); // while the first round writes
  // The first round takes longer than the delay: the second is due as soon as it ends.
  await new Promise((resolve) => setTimeout(resolve, delayMs * 1.1));
  const secondRound = nextCall();
  const released = performance.now();
  release();
  await secondRound;
  const waited = calls[1].at - released;
  assert(waited < delayMs / 2, `the second round started ${waited.toFixed(0)} ms after the first`);
  await streams.close();
  await layer.close();
});

Deno.test("in-process streams: a room whose chunks cannot be listed is not said to be written again until it is", async () => {
  using store = await openStore();
  const layer = new InMemoryLayer();
  const first = new MemoryStreams(layer, store);
  await first.publish("room.a", { type: "t", n: 1 });
  await first.close();
  // Every listing fails (a damaged page, say) until `mended`.
  const list = store.list.bind(store);
  let mended = false;
  store.list =
    ((...args: Parameters<typeof list>) =>
      mended ? list(...args) : Promise.reject(new Error("malformed"))) as typeof list;
  using captured = new CapturedLog();
  const second = new MemoryStreams(layer, store, { writeDelayMs: 10 });
  await second.publish("room.a", { type: "t", n: 2 });
  for (let round = 0; round < 3; round++) await second.flush().catch(() => {});
  const said = (text: string) => captured.lines.filter((line) => line.includes(text)).length;
  assertEquals(said("its stored chunks cannot be listed"), 1, captured.lines.join("\n"));
  assertEquals(said("written again"), 0, captured.lines.join("\n"));
  mended = true;
  await second.flush();
  assertEquals(said("written again"), 1, captured.lines.join("\n"));
  await second.close();
});
