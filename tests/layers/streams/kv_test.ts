import { streamConformance } from "./conformance.ts";
import { BroadcastLayer } from "../../../layers/broadcast.ts";
import { KvStreams, MAX_WAITING_PUBLISHES } from "../../../layers/streams/kv.ts";
import { assert, assertEquals } from "@std/assert";
import { log } from "../../../telemetry/log.ts";

log.setLevel("error");
// Two processes with one prefix and one KV file stand for two Workers of one app.
const dir = await Deno.makeTempDir({ prefix: "kv-streams-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

streamConformance("kv streams", () => {
  const kvPath = `${dir}/${crypto.randomUUID().slice(0, 8)}.kv`;
  const prefix = "app";
  return Promise.resolve({
    open: async () => {
      const layer = await BroadcastLayer.open({ kvPath, prefix: `${prefix}@${kvPath}` });
      return { layer, streams: await KvStreams.open({ kvPath, prefix, layer }) };
    },
    lose: async () => {
      const kv = await Deno.openKv(kvPath);
      for await (const entry of kv.list({ prefix: [prefix] })) await kv.delete(entry.key);
      kv.close();
    },
    [Symbol.asyncDispose]: () => Promise.resolve(),
  });
}, { shared: true });

Deno.test("kv streams: publishes called while a commit is under way share the next commits, in call order, and beyond the bound are refused", async () => {
  const kvPath = `${dir}/${crypto.randomUUID().slice(0, 8)}.kv`;
  const layer = await BroadcastLayer.open({ kvPath, prefix: `app@${kvPath}` });
  const streams = await KvStreams.open({ kvPath, prefix: "app", layer });
  try {
    const calls = MAX_WAITING_PUBLISHES + 2; // one under way, the bound waiting, one too many
    const published = Array.from(
      { length: calls },
      (_, i) => streams.publish("busy", { type: "chat.message", n: i }),
    );
    const settled = await Promise.allSettled(published);
    const refused = settled.flatMap((s, i) => s.status === "rejected" ? [i] : []);
    assertEquals(refused, [calls - 1]);
    const offsets = settled.flatMap((s) => s.status === "fulfilled" ? [s.value.offset] : []);
    assertEquals(offsets, Array.from({ length: calls - 1 }, (_, i) => i + 1));
    const commits = streams.writeSeconds.counts.reduce((a, b) => a + b, 0);
    assert(commits < calls / 32, `${calls - 1} publishes took ${commits} commits`);
    const read = await streams.latest("busy", 3);
    assertEquals(read.events.map((e) => [e.offset, e.n]), [
      [calls - 3, calls - 4],
      [calls - 2, calls - 3],
      [calls - 1, calls - 2],
    ]);
  } finally {
    await streams.close();
    await layer.close();
  }
});

Deno.test("kv streams: publishes too large for one commit together are split over several, in order", async () => {
  const kvPath = `${dir}/${crypto.randomUUID().slice(0, 8)}.kv`;
  const layer = await BroadcastLayer.open({ kvPath, prefix: `app@${kvPath}` });
  const streams = await KvStreams.open({ kvPath, prefix: "app", layer });
  try {
    // 20 x 50 KB: each fits in a KV value, all of them together not in one commit (800 KiB).
    const message = "x".repeat(50_000);
    const published = await Promise.all(
      Array.from({ length: 20 }, (_, i) => streams.publish("big", { type: "chat", message, i })),
    );
    assertEquals(published.map((p) => p.offset), Array.from({ length: 20 }, (_, i) => i + 1));
    const read = await streams.latest("big", 20);
    assertEquals(read.events.map((e) => e.i), Array.from({ length: 20 }, (_, i) => i));
  } finally {
    await streams.close();
    await layer.close();
  }
});

Deno.test("kv streams: a room only read keeps its record a day, not for good; one published to keeps it", async () => {
  // Anyone may open a room of any name: on Deno Deploy a record per name read stayed for good.
  const kvPath = `${dir}/${crypto.randomUUID().slice(0, 8)}.kv`;
  const layer = await BroadcastLayer.open({ kvPath, prefix: `app@${kvPath}` });
  const streams = await KvStreams.open({ kvPath, prefix: "app", layer });
  try {
    await streams.latest("read.only", 50);
    const first = await streams.since("read.only", { epoch: "", offset: 0 });
    await streams.publish("written", { type: "chat.message", text: "hi" });
    // A read after the publish: the record stays the publish's.
    await streams.latest("written", 50);
    // The epoch a client was given holds while the record is kept.
    assertEquals((await streams.latest("read.only", 50)).epoch, first.epoch);
  } finally {
    await streams.close();
    await layer.close();
  }
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(kvPath, { readOnly: true });
  try {
    const rows = db.prepare("SELECT k, expiration_ms FROM kv").all() as {
      k: Uint8Array;
      expiration_ms: number;
    }[];
    const text = (key: Uint8Array) => new TextDecoder().decode(key);
    const records = rows.filter((row) => text(row.k).includes("meta"));
    const readOnly = records.filter((row) => text(row.k).includes("read.only"));
    const written = records.filter((row) => text(row.k).includes("written"));
    assertEquals([readOnly.length, written.length], [1, 1]);
    const day = 24 * 60 * 60 * 1000;
    const expiresIn = readOnly[0].expiration_ms - Date.now();
    assert(expiresIn > day - 60_000 && expiresIn <= day, `expires in ${expiresIn} ms`);
    assertEquals(written[0].expiration_ms, -1, "a record a publish wrote must not expire");
  } finally {
    db.close();
  }
});
