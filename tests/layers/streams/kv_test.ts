import { streamConformance } from "./conformance.ts";
import { BroadcastLayer } from "../../../layers/broadcast.ts";
import {
  KvStreams,
  MAX_REMEMBERED_GROUPS,
  MAX_WAITING_PUBLISHES,
} from "../../../layers/streams/kv.ts";
import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { PublishUnconfirmedError } from "../../../layers/streams/contract.ts";
import { log } from "../../../telemetry/log.ts";

log.setLevel("error");
// Two processes with one prefix and one KV file stand for two Workers of one app.
const dir = await Deno.makeTempDir({ prefix: "kv-streams-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

/** Streams and their layer on a KV file of their own, as one Worker has them: `await using`. */
async function openKvStreams(): Promise<{ streams: KvStreams } & AsyncDisposable> {
  const kvPath = `${dir}/${crypto.randomUUID().slice(0, 8)}.kv`;
  const layer = await BroadcastLayer.open({ kvPath, prefix: `app@${kvPath}` });
  const streams = await KvStreams.open({ kvPath, prefix: "app", layer });
  return {
    streams,
    async [Symbol.asyncDispose]() {
      await streams.close();
      await layer.close();
    },
  };
}

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
  await using kv = await openKvStreams();
  const { streams } = kv;
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
});

Deno.test("kv streams: publishes too large for one commit together are split over several, in order", async () => {
  await using kv = await openKvStreams();
  const { streams } = kv;
  // 20 x 50 KB: each fits in a KV value, all of them together not in one commit (800 KiB).
  const message = "x".repeat(50_000);
  const published = await Promise.all(
    Array.from({ length: 20 }, (_, i) => streams.publish("big", { type: "chat", message, i })),
  );
  assertEquals(published.map((p) => p.offset), Array.from({ length: 20 }, (_, i) => i + 1));
  const read = await streams.latest("big", 20);
  assertEquals(read.events.map((e) => e.i), Array.from({ length: 20 }, (_, i) => i));
});

Deno.test("kv streams: long messages with a character beyond Latin-1 (two bytes each in Deno KV) are split over commits too", async () => {
  await using kv = await openKvStreams();
  const { streams } = kv;
  // What the chat takes (10,000 characters), 64 people at once: the emoji makes Deno KV keep
  // each as two bytes a character.
  const message = "a".repeat(9_998) + "😀";
  const published = await Promise.all(
    Array.from({ length: 64 }, (_, i) => streams.publish("emoji", { type: "chat", message, i })),
  );
  assertEquals(published.map((p) => p.offset), Array.from({ length: 64 }, (_, i) => i + 1));
});

Deno.test("kv streams: an event too large for Deno KV is refused before it takes an offset, and alone", async () => {
  await using kv = await openKvStreams();
  const { streams } = kv;
  const calls = Array.from(
    { length: 21 },
    (_, i) =>
      streams.publish("mixed", {
        type: "chat",
        i,
        message: i === 10 ? "x".repeat(70_000) : "hi",
      }),
  );
  const settled = await Promise.allSettled(calls);
  const refused = settled.flatMap((s, i) => s.status === "rejected" ? [[i, s.reason]] : []);
  assertEquals(refused.length, 1);
  assertEquals(refused[0][0], 10);
  assert(refused[0][1] instanceof TypeError);
  assertMatch(String(refused[0][1].message), /too large to keep in Deno KV: 700\d\d bytes/);
  const read = await streams.latest("mixed", 50);
  assertEquals(read.events.map((e) => e.offset), Array.from({ length: 20 }, (_, i) => i + 1));
});

Deno.test("kv streams: a publish stored whose layer fails to hand it on is unconfirmed, not refused", async () => {
  const kvPath = `${dir}/${crypto.randomUUID().slice(0, 8)}.kv`;
  const layer = await BroadcastLayer.open({ kvPath, prefix: `app@${kvPath}` });
  const failing = Object.assign(Object.create(layer) as BroadcastLayer, {
    groupSend: () => Promise.reject(new Error("send failed")),
  });
  const streams = await KvStreams.open({ kvPath, prefix: "app", layer: failing });
  try {
    const error = await assertRejects(() => streams.publish("room", { type: "chat", n: 1 }));
    assert(error instanceof PublishUnconfirmedError, String(error));
    assertEquals((await streams.latest("room", 50)).events.map((e) => e.n), [1]);
  } finally {
    await streams.close();
    await layer.close();
  }
});

// Deno KV reads a list in pages of 100, each a read of its own: `pause` runs before the second.
function pausingAtSecondPage(kv: Deno.Kv, pause: { before: (() => Promise<void>) | null }) {
  return new Proxy(kv, {
    get(target, prop) {
      if (prop !== "list") {
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      }
      return (selector: Deno.KvListSelector, options?: Deno.KvListOptions) => {
        const inner = target.list(selector, options);
        const before = pause.before;
        if (before === null) return inner;
        pause.before = null;
        return (async function* () {
          for (let read = 0;; read++) {
            if (read === 100) await before();
            const { value, done } = await inner.next();
            if (done) return;
            yield value;
          }
        })();
      };
    },
  });
}

Deno.test("kv streams: a read whose pages cross another Worker's trim is incomplete, never complete with a gap", async () => {
  const kvPath = `${dir}/${crypto.randomUUID().slice(0, 8)}.kv`;
  const retention = { messages: 100, seconds: 0 };
  const layer = await BroadcastLayer.open({ kvPath, prefix: `app@${kvPath}` });
  const writer = await KvStreams.open({ kvPath, prefix: "app", layer, retention });
  const pause: { before: (() => Promise<void>) | null } = { before: null };
  const openKv = Deno.openKv;
  Object.defineProperty(Deno, "openKv", {
    value: async (path?: string) => pausingAtSecondPage(await openKv(path), pause),
    configurable: true,
  });
  const reader = await KvStreams.open({ kvPath, prefix: "app", layer, retention })
    .finally(() => Object.defineProperty(Deno, "openKv", { value: openKv, configurable: true }));
  try {
    let last = { offset: 0, epoch: "" };
    for (let i = 0; i < 300; i++) last = await writer.publish("room", { type: "m", i });
    const oldest = (await writer.latest("room", 1000)).events[0].offset;
    const position = { epoch: last.epoch, offset: oldest - 1 }; // just recoverable
    // Between the reader's two pages, the other Worker publishes 120 more, and trims.
    pause.before = async () => {
      for (let i = 0; i < 120; i++) await writer.publish("room", { type: "m", i: 300 + i });
    };
    const read = await reader.since("room", position);
    assertEquals(
      read.complete,
      false,
      `${read.events.length} events for offsets up to ${read.offset}`,
    );
    assertMatch(String(read.reason), /expired while they were read/);
  } finally {
    await reader.close();
    await writer.close();
    await layer.close();
  }
});

Deno.test("kv streams: a room only read keeps its record a day, not for good; one published to keeps it, with its events, the idle expiry from its last publish", async () => {
  // Anyone may open a room of any name: on Deno Deploy a record per name read stayed for good.
  const kvPath = `${dir}/${crypto.randomUUID().slice(0, 8)}.kv`;
  const layer = await BroadcastLayer.open({ kvPath, prefix: `app@${kvPath}` });
  const idleExpiryMs = 3 * 24 * 60 * 60 * 1000;
  const streams = await KvStreams.open({ kvPath, prefix: "app", layer, idleExpiryMs });
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
    const written = rows.filter((row) => text(row.k).includes("written"));
    assertEquals([readOnly.length, written.length], [1, 2], "one record each, and one event");
    const day = 24 * 60 * 60 * 1000;
    const expiresIn = readOnly[0].expiration_ms - Date.now();
    assert(expiresIn > day - 60_000 && expiresIn <= day, `expires in ${expiresIn} ms`);
    // Room names are free: a room written in once must not keep its record or events for good.
    for (const row of written) {
      const left = row.expiration_ms - Date.now();
      assert(left > idleExpiryMs - 60_000 && left <= idleExpiryMs, `${text(row.k)}: ${left} ms`);
    }
  } finally {
    db.close();
  }
});

Deno.test("kv streams: rooms opened without end are remembered up to the bound, and one forgotten keeps its offsets and epoch", async () => {
  // Without a parent sequencer (one process, Deno Deploy) every room name anyone opened was
  // remembered for good.
  assertEquals(MAX_REMEMBERED_GROUPS, 10_000);
  const kvPath = `${dir}/${crypto.randomUUID().slice(0, 8)}.kv`;
  const layer = await BroadcastLayer.open({ kvPath, prefix: `app@${kvPath}` });
  const streams = await KvStreams.open({ kvPath, prefix: "app", layer, rememberedGroups: 3 });
  const other = await KvStreams.open({ kvPath, prefix: "app", layer }); // another Worker
  try {
    const first = await streams.publish("kept", { type: "chat.message", n: 1 });
    assertEquals(first.offset, 1);
    for (let i = 0; i < 20; i++) {
      await streams.latest(`room${i}`, 50);
      assert(streams.remembered <= 3, `${streams.remembered} rooms remembered`);
    }
    assertEquals(streams.remembered, 3);
    // Forgotten, then another Worker publishes: the next publish reads the record again.
    assertEquals((await other.publish("kept", { type: "chat.message", n: 2 })).offset, 2);
    const third = await streams.publish("kept", { type: "chat.message", n: 3 });
    assertEquals([third.offset, third.epoch], [3, first.epoch]);
    for (let i = 20; i < 25; i++) await streams.latest(`room${i}`, 50);
    const fourth = await streams.publish("kept", { type: "chat.message", n: 4 });
    assertEquals([fourth.offset, fourth.epoch], [4, first.epoch]);
    const read = await streams.latest("kept", 10);
    assertEquals(read.events.map((e) => [e.offset, e.n]), [[1, 1], [2, 2], [3, 3], [4, 4]]);
  } finally {
    await streams.close();
    await other.close();
    await layer.close();
  }
});
