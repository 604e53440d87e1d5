/**
 * Room names are free, so what the in-process streams write to their store (Deno KV) expires
 * the idle expiry (`HISTORY_IDLE_DAYS`) after it is written: a room left that long leaves
 * nothing behind. A busy room's record, written once per run otherwise, is written again
 * often enough that it never expires before the chunks it speaks for.
 */
import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { chunkKey } from "../../../layers/streams/_store_layout.ts";
import { InMemoryLayer } from "../../../layers/in_memory.ts";
import { MemoryStreams } from "../../../layers/streams/memory.ts";
import { DenoKvStore } from "../../../storage/deno_kv_store.ts";
import type { StoreChange } from "../../../storage/store.ts";

const DAY = 24 * 60 * 60 * 1000;

/** A store in memory that records each value it is given, with its expiry. */
async function recordingStore() {
  const store = await DenoKvStore.open(":memory:");
  const writes: string[] = [];
  const note = (change: StoreChange) => {
    if (!("value" in change)) return;
    const kind = change.key[0] === "stream" ? "chunk" : String(change.key[0]);
    writes.push(`${kind} ${change.key[1]}, ${(change.expireInMs ?? 0) / DAY} days`);
  };
  const writeMany = store.writeMany.bind(store);
  store.writeMany = (changes) => (changes.forEach(note), writeMany(changes));
  const set = store.set.bind(store);
  store.set = (
    key,
    value,
    options = {},
  ) => (note({ key, value, ...options }), set(key, value, options));
  /** What was written since the last call. */
  const taken = () => writes.splice(0);
  return { store, taken, [Symbol.dispose]: () => store.close() };
}

/** Runs `fn` with `Date.now()` `ms` ahead of the real clock. */
async function later<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const realNow = Date.now;
  Date.now = () => realNow() + ms;
  try {
    return await fn();
  } finally {
    Date.now = realNow;
  }
}

Deno.test("in-process streams: what a round writes expires the idle expiry after it, and a busy room's record is written again before it could expire first", async () => {
  using recording = await recordingStore();
  const layer = new InMemoryLayer();
  const options = { idleExpiryMs: 8 * DAY, writeDelayMs: 60_000 };
  const streams = new MemoryStreams(layer, recording.store, options);
  await streams.publish("room.a", { type: "t" });
  await streams.flush();
  assertEquals(recording.taken(), ["chunk room.a, 8 days", "stream_meta room.a, 8 days"]);
  // The record is written once per run: the newest chunk's key holds the offset.
  await streams.publish("room.a", { type: "t" });
  await streams.flush();
  assertEquals(recording.taken(), ["chunk room.a, 8 days"]);
  // A day on (an eighth of the expiry, at most a day), the record goes with the chunk again:
  // else it would expire before the chunks, a day's messages too early.
  await later(DAY, async () => {
    await streams.publish("room.a", { type: "t" });
    await streams.flush();
  });
  assertEquals(recording.taken(), ["chunk room.a, 8 days", "stream_meta room.a, 8 days"]);
  await streams.close();
  recording.taken(); // the graceful stop's mark
  // The next run claims the record before it gives an offset, keeping the life it has left: it
  // was last written a day on, for 8 days, so 9 days from now.
  const next = new MemoryStreams(layer, recording.store, options);
  const read = await next.latest("room.a", 50);
  assertEquals(read.events.map((event) => event.offset), [1, 2, 3]);
  const [claim, ...more] = recording.taken();
  assertEquals(more, []);
  const days = Number(/stream_meta room\.a, ([\d.]+) days/.exec(claim)?.[1]);
  assert(days > 8.999 && days <= 9, claim);
  await next.close();
});

Deno.test("in-process streams: a room only read at each restart still expires: a read is no use of it", async () => {
  using recording = await recordingStore();
  const options = { idleExpiryMs: 30 * DAY };
  const open = () => new MemoryStreams(new InMemoryLayer(), recording.store, options);
  const first = open();
  const { epoch } = await first.publish("room.a", { type: "t" });
  await first.close();
  // Day 20: a restart, and a page reads the room; nobody writes in it.
  await later(20 * DAY, async () => {
    const next = open();
    assertEquals((await next.since("room.a", { epoch, offset: 0 })).events.length, 1);
    await next.close();
  });
  // Day 30: its message expires, as written; day 45, it is read again.
  await recording.store.delete(chunkKey("room.a", 1));
  await later(45 * DAY, async () => {
    const last = open();
    const read = await last.since("room.a", { epoch, offset: 0 });
    // Its record went with its message, whatever the reads in between: a new epoch.
    assertEquals(read.complete, false);
    assertNotEquals(read.epoch, epoch);
    await last.close();
  });
});

Deno.test("in-process streams: a record past its expiry that the store still shows, without the chunks written after it, is taken for none: no offset is given twice", async () => {
  using recording = await recordingStore();
  const options = { idleExpiryMs: 8 * DAY, writeDelayMs: 60_000 };
  const first = new MemoryStreams(new InMemoryLayer(), recording.store, options);
  let epoch = "";
  for (let n = 1; n <= 3; n++) epoch = (await first.publish("room.a", { type: "t", n })).epoch;
  await first.flush(); // a chunk up to 3, and the record (offset 3)
  for (let n = 4; n <= 5; n++) await first.publish("room.a", { type: "t", n });
  await first.flush(); // a chunk up to 5 only: the record still says 3
  await first.close();
  // Eight days on, everything has expired, and Deno KV deletes it when it likes, in any order:
  // here the newest chunk first, the record still shown.
  await recording.store.delete(chunkKey("room.a", 5));
  await later(8 * DAY, async () => {
    const next = new MemoryStreams(new InMemoryLayer(), recording.store, options);
    const published = await next.publish("room.a", { type: "t", n: 6 });
    // The record's offset 3 would give 4 again, under the epoch a client saw 4 and 5 in.
    assertNotEquals(published.epoch, epoch);
    const read = await next.since("room.a", { epoch, offset: 5 });
    assertEquals(read.complete, false);
    await next.close();
  });
});

Deno.test("in-process streams: a room only read still keeps its record a day, whatever the idle expiry", async () => {
  using recording = await recordingStore();
  const layer = new InMemoryLayer();
  const streams = new MemoryStreams(layer, recording.store, { idleExpiryMs: 8 * DAY });
  await streams.latest("room.empty", 50);
  await streams.close();
  assertEquals(recording.taken().filter((write) => write.includes("room.empty")), [
    "stream_meta room.empty, 1 days",
  ]);
});

Deno.test("in-process streams: an idle expiry Deno KV cannot keep is refused", async () => {
  using recording = await recordingStore();
  for (const idleExpiryMs of [0, -1, 1.5, 11 * 365 * DAY]) {
    assertThrows(
      () => new MemoryStreams(new InMemoryLayer(), recording.store, { idleExpiryMs }),
      RangeError,
    );
  }
});
