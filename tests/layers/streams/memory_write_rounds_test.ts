/** In-process streams' write rounds: their delay, failures, partial writes and the clean mark. */
import { assert, assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import { InMemoryLayer } from "../../../layers/in_memory.ts";
import { MemoryStreams } from "../../../layers/streams/memory.ts";
import { PartlyWrittenError } from "../../../storage/store.ts";
import type { Store } from "../../../storage/store.ts";
import { CapturedLog } from "../../_support/captured_log.ts";
import { openStore } from "./_memory_support.ts";

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
