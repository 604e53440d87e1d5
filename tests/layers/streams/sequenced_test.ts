import { assertEquals, assertRejects } from "@std/assert";
import { streamConformance, type StreamWorld } from "./conformance.ts";
import { InMemoryLayer } from "../../../layers/in_memory.ts";
import { MAX_WAITING_REQUESTS, SequencedStreams } from "../../../layers/streams/sequenced.ts";
import { StreamSequencer } from "../../../layers/streams/sequencer.ts";
import { DenoKvStore } from "../../../storage/deno_kv_store.ts";
import type { Store } from "../../../storage/store.ts";

/** A "Worker": its own in-process layer, its streams served by `sequencer`. */
function worker(sequencer: StreamSequencer): { layer: InMemoryLayer; streams: SequencedStreams } {
  const layer = new InMemoryLayer();
  const local = { deliverPublished: layer.groupSendNow.bind(layer) };
  return { layer, streams: new SequencedStreams(sequencer.connect(), local) };
}

// The parent's sequencer and its store; `lose()` starts a new one on an empty store, as a
// removed KV file would.
async function sequencedWorld(): Promise<StreamWorld> {
  const opened: { store: Store; sequencer: StreamSequencer }[] = [];
  const fresh = async () => {
    const store = await DenoKvStore.open(":memory:");
    opened.push({ store, sequencer: new StreamSequencer(store) });
  };
  await fresh();
  return {
    open: () => Promise.resolve(worker(opened.at(-1)!.sequencer)),
    lose: fresh,
    [Symbol.asyncDispose]: async () => {
      for (const { store, sequencer } of opened) {
        await sequencer.close();
        store.close();
      }
    },
  };
}

streamConformance("streams of Workers through the parent's sequencer", sequencedWorld, {
  shared: true,
  orderedAcrossPublishers: true,
  refusesLargeReads: true,
  pagesReads: true,
});

Deno.test("sequenced streams: a publish answers with its Worker's own delivery and the other Workers, timed for the metrics", async () => {
  await using world = await sequencedWorld();
  const a = await world.open(), b = await world.open();
  for (const process of [a, b]) {
    await process.layer.groupAdd(
      "room",
      process.layer.newChannel(() => true),
    );
  }
  const published = await a.streams.publish("room", { type: "chat", text: "hi" });
  assertEquals(published, {
    delivered: 1,
    dropped: 0,
    remoteProcesses: 1,
    offset: 1,
    epoch: published.epoch,
  });
  assertEquals(a.streams.writeSeconds?.count, 1);
  await a.streams.close();
  await b.streams.close();
});

Deno.test("sequenced streams: bad input is refused with a TypeError, before it takes an offset", async () => {
  await using world = await sequencedWorld();
  const a = await world.open();
  await assertRejects(() => a.streams.publish("", { type: "t" }), TypeError);
  await assertRejects(() => a.streams.publish("room", { n: 1 } as never), TypeError);
  await assertRejects(() => a.streams.since("room", { epoch: "e", offset: -1 }), TypeError);
  // Not bad by the layer's rules, but it cannot cross to the parent: refused, nothing waits.
  await assertRejects(() => a.streams.publish("room", { type: "t", f: () => {} }), DOMException);
  assertEquals((await a.streams.publish("room", { type: "t" })).offset, 1);
  await a.streams.close();
});

Deno.test("sequenced streams: what the Workers published survives the sequencer's close, with its epoch", async () => {
  const store = await DenoKvStore.open(":memory:");
  try {
    const first = new StreamSequencer(store);
    const a = worker(first), b = worker(first);
    for (let n = 1; n <= 3; n++) await a.streams.publish("room", { type: "t", n });
    const last = await b.streams.publish("room", { type: "t", n: 4 });
    await a.streams.close();
    await b.streams.close();
    await first.close();
    const again = worker(new StreamSequencer(store));
    const read = await again.streams.since("room", { epoch: last.epoch, offset: 0 });
    assertEquals([read.complete, read.epoch, read.offset], [true, last.epoch, 4]);
    assertEquals(read.events.map((event) => event.n), [1, 2, 3, 4]);
    await again.streams.close();
  } finally {
    store.close();
  }
});

Deno.test("sequenced streams: a closed Worker's streams refuse new requests, after answering the ones under way", async () => {
  await using world = await sequencedWorld();
  const a = await world.open();
  const underWay = a.streams.publish("room", { type: "t" });
  const closed = a.streams.close();
  await assertRejects(() => a.streams.publish("room", { type: "t" }), Error, "closed");
  assertEquals((await underWay).offset, 1);
  await closed;
});

Deno.test("sequenced streams: at most MAX_WAITING_REQUESTS wait for the sequencer; the next is refused at once", async () => {
  await using world = await sequencedWorld();
  const a = await world.open();
  const waiting = Array.from(
    { length: MAX_WAITING_REQUESTS },
    (_, n) => a.streams.publish("room", { type: "t", n }),
  );
  await assertRejects(() => a.streams.publish("room", { type: "t" }), Error, "wait");
  const offsets = (await Promise.all(waiting)).map((published) => published.offset);
  assertEquals(offsets, Array.from({ length: MAX_WAITING_REQUESTS }, (_, i) => i + 1));
  assertEquals((await a.streams.publish("room", { type: "t" })).offset, MAX_WAITING_REQUESTS + 1);
  await a.streams.close();
});
