/** In-process streams across restarts: the shared conformance suite, graceful stops, crashes, gaps. */
import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { streamConformance, type StreamWorld } from "./conformance.ts";
import { InMemoryLayer } from "../../../layers/in_memory.ts";
import { MemoryStreams } from "../../../layers/streams/memory.ts";
import { EMPTY_STREAM_KEPT_MS } from "../../../layers/streams/contract.ts";
import { chunkKey, CLEAN_MARK_KEPT_MS, recordKey } from "../../../layers/streams/_store_layout.ts";
import { DenoKvStore } from "../../../storage/deno_kv_store.ts";
import type { Store } from "../../../storage/store.ts";
import { CapturedLog } from "../../_support/captured_log.ts";
import { openStore } from "./_memory_support.ts";

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
