import { assertEquals } from "@std/assert";
import { join } from "@std/path";
import { InMemoryLayer } from "../../../layers/in_memory.ts";
import { importKvStreams } from "../../../layers/streams/import_kv_streams.ts";
import { KvStreams } from "../../../layers/streams/kv.ts";
import { SequencedStreams } from "../../../layers/streams/sequenced.ts";
import { StreamSequencer } from "../../../layers/streams/sequencer.ts";
import { DenoKvStore } from "../../../storage/deno_kv_store.ts";

Deno.test("streams the Workers kept in KV before the sequencer are moved once, with their epoch, offsets and messages", async () => {
  const dir = await Deno.makeTempDir({ prefix: "import-kv-streams-" });
  const path = join(dir, "channels.kv");
  try {
    // What `--workers` wrote before: every message committed by a Worker.
    const layer = new InMemoryLayer();
    const old = await KvStreams.open({ kvPath: path, prefix: "app", layer });
    let epoch = "";
    for (let n = 1; n <= 30; n++) {
      epoch = (await old.publish("chat.lobby", { type: "chat.message", message: `m${n}` })).epoch;
    }
    await old.publish("chat.other", { type: "chat.message", message: "x" });
    await old.close();

    const store = await DenoKvStore.open(path);
    try {
      assertEquals(await importKvStreams(store, "app"), 2);
      assertEquals(await importKvStreams(store, "app"), 0); // once: the old keys are gone
      assertEquals((await store.list(["app"])).length, 0);
      const sequencer = new StreamSequencer(store);
      const worker = new SequencedStreams(sequencer.connect(), {
        deliverPublished: (group, event) => layer.groupSendNow(group, event),
      });
      const read = await worker.since("chat.lobby", { epoch, offset: 20 });
      assertEquals([read.complete, read.epoch, read.offset], [true, epoch, 30]);
      assertEquals(
        read.events.map((event) => event.message),
        [21, 22, 23, 24, 25, 26, 27, 28, 29, 30].map((n) => `m${n}`),
      );
      assertEquals(read.events.map((event) => event.offset), [
        21,
        22,
        23,
        24,
        25,
        26,
        27,
        28,
        29,
        30,
      ]);
      const next = await worker.publish("chat.lobby", { type: "chat.message", message: "after" });
      assertEquals([next.epoch, next.offset], [epoch, 31]);
      await worker.close();
      await sequencer.close();
    } finally {
      store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
