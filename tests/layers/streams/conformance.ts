/**
 * The stream conformance suite: written once, run unchanged against every
 * {@linkcode GroupStreams} implementation. Each point of the contract in
 * `layers/streams/contract.ts` is a case here.
 *
 * ```ts
 * streamConformance("redis streams", () => redisWorld(url), { shared: true });
 * ```
 *
 * - A world's `open()` stands for one process: its layer and its streams, over the world's
 *   shared state. The suite closes every process it opened.
 * - `shared: true` says two processes share the streams (Redis, the Workers' KV): concurrency
 *   and delivery are then checked across them. Without it (in-process streams), the same
 *   cases run with two publishers in one process.
 * - `lose()` destroys the shared state as a Redis restarted empty or a removed KV file would.
 * - `orderedAcrossPublishers`: members receive two publishers' events in offset order too.
 */
import { assert, assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import type { GroupLayer } from "../../../layers/layer.ts";
import {
  type GroupStreams,
  SINCE_TOO_LARGE,
  type StreamEvent,
} from "../../../layers/streams/contract.ts";
import { Inbox } from "../_inbox.ts";

/** One process of a world: the layer its members are on, and its streams. */
export interface StreamProcess {
  layer: GroupLayer;
  streams: GroupStreams;
}

/** The shared state every process of a case works on. */
export interface StreamWorld extends AsyncDisposable {
  /** Opens a process over the world's state. */
  open(): Promise<StreamProcess>;
  /** Destroys the state, as a Redis restarted empty would. */
  lose(): Promise<void>;
}

/** Options of {@linkcode streamConformance}. */
export interface StreamConformanceOptions {
  /** Two processes share the streams. */
  shared?: boolean;
  /** Members receive the events of two publishers in offset order. */
  orderedAcrossPublishers?: boolean;
  /** `since` with `maxBytes` refuses, unread, what comes to more (a hint others may ignore). */
  refusesLargeReads?: boolean;
  /** `since` with `pageBytes` answers with the first events only (a hint others may ignore). */
  pagesReads?: boolean;
  ignore?: boolean;
  timeoutMs?: number;
}

interface Case {
  world: StreamWorld;
  /** The publishing process and, with `shared`, another one; else the same one. */
  a: StreamProcess;
  b: StreamProcess;
  group: string;
  inbox(process: StreamProcess): Promise<Inbox>;
}

const SHORT = { messages: 5, seconds: 0 };

/** Registers the conformance cases for the streams `makeWorld` opens. */
export function streamConformance(
  name: string,
  makeWorld: () => Promise<StreamWorld>,
  options: StreamConformanceOptions = {},
): void {
  const timeoutMs = options.timeoutMs ?? 5000;
  const test = (title: string, fn: (c: Case) => Promise<void>) =>
    Deno.test({
      name: `${name}: ${title}`,
      ignore: options.ignore,
      fn: async () => {
        await using world = await makeWorld();
        const opened: StreamProcess[] = [];
        const open = async () => {
          const process = await world.open();
          opened.push(process);
          return process;
        };
        const a = await open();
        const b = options.shared ? await open() : a;
        const group = `room.${crypto.randomUUID().slice(0, 8)}`;
        try {
          await fn({
            world,
            a,
            b,
            group,
            inbox: async (process) => {
              const inbox = new Inbox(process.layer, timeoutMs);
              await process.layer.groupAdd(group, inbox.channel);
              return inbox;
            },
          });
        } finally {
          for (const process of opened.reverse()) {
            await process.streams.close();
            await process.layer.close();
          }
        }
      },
    });

  test("offsets start at 1 and increase by 1 per publish, in one epoch", async ({ a, group }) => {
    const published = [];
    for (let n = 1; n <= 5; n++) published.push(await a.streams.publish(group, { type: "t", n }));
    assertEquals(published.map((p) => p.offset), [1, 2, 3, 4, 5]);
    assertEquals(new Set(published.map((p) => p.epoch)).size, 1);
  });

  test("bad names, events and retentions are refused before an offset is taken", async (c) => {
    const streams = c.a.streams;
    for (const bad of ["", "a\nb", "g".repeat(300)]) {
      await assertRejects(() => streams.latest(bad, 1), TypeError, undefined, JSON.stringify(bad));
      await assertRejects(() => streams.since(bad, { epoch: "e", offset: 0 }), TypeError);
      await assertRejects(() => streams.publish(bad, { type: "t" }), TypeError);
    }
    const retentions = [{ messages: -1, seconds: 0 }, { messages: NaN, seconds: 0 }, {
      messages: 10,
      seconds: -3,
    }];
    for (const retention of retentions) {
      await assertRejects(
        () => streams.publish(c.group, { type: "t" }, { retention }),
        TypeError,
        "retention",
      );
    }
    // What the stream's JSON would give back as something else, in history and recovery.
    const notData = [
      { type: "t", data: new Uint8Array([1]) },
      { type: "t", at: new Date(0) },
      { type: "t", count: NaN },
      { type: "t", scores: [1, Infinity] },
      { type: "t", list: [undefined] },
    ];
    for (const event of notData) {
      await assertRejects(() => streams.publish(c.group, event), TypeError);
    }
    assertEquals((await streams.publish(c.group, { type: "t" })).offset, 1);
  });

  test("a group read before its first publish keeps that epoch", async ({ a, b, group }) => {
    const empty = await b.streams.latest(group, 50);
    assertEquals([empty.offset, empty.events, empty.complete], [0, [], true]);
    const published = await a.streams.publish(group, { type: "t" });
    assertEquals(published.epoch, empty.epoch);
    assertEquals((await b.streams.since(group, { epoch: empty.epoch, offset: 0 })).complete, true);
  });

  test("publishes from two processes at once get every offset exactly once", async (c) => {
    const sends = [];
    for (let n = 0; n < 40; n++) {
      sends.push(c.a.streams.publish(c.group, { type: "t", n, from: "a" }));
      sends.push(c.b.streams.publish(c.group, { type: "t", n, from: "b" }));
    }
    const offsets = (await Promise.all(sends)).map((p) => p.offset).sort((x, y) => x - y);
    assertEquals(offsets, Array.from({ length: 80 }, (_, i) => i + 1));
    const read = await c.a.streams.since(c.group, {
      epoch: (await c.a.streams.latest(c.group, 0)).epoch,
      offset: 0,
    });
    assertEquals(read.events.map((e) => e.offset), offsets);
  });

  test("members receive each event with its offset and epoch, in offset order", async (c) => {
    const inbox = await c.inbox(c.b);
    const published = [];
    for (let n = 1; n <= 10; n++) {
      published.push(await c.a.streams.publish(c.group, { type: "t", n }));
    }
    await inbox.until(() => inbox.events.length === 10, "10 events");
    const events = inbox.events as StreamEvent[];
    assertEquals(events.map((e) => e.offset), published.map((p) => p.offset));
    assertEquals(events.map((e) => e.n), Array.from({ length: 10 }, (_, i) => i + 1));
    assertEquals(events[0].epoch, published[0].epoch);
  });

  test(
    "members receive two publishers' events, each once" +
      (options.orderedAcrossPublishers ? ", in offset order" : ""),
    async (c) => {
      const inbox = await c.inbox(c.a);
      const sends = [];
      for (let n = 0; n < 30; n++) {
        sends.push(c.a.streams.publish(c.group, { type: "t", n }));
        sends.push(c.b.streams.publish(c.group, { type: "t", n }));
      }
      await Promise.all(sends);
      await inbox.until(() => inbox.events.length === 60, "60 events");
      const offsets = (inbox.events as StreamEvent[]).map((e) => e.offset);
      const sorted = [...offsets].sort((x, y) => x - y);
      assertEquals(sorted, Array.from({ length: 60 }, (_, i) => i + 1));
      if (options.orderedAcrossPublishers) assertEquals(offsets, sorted);
    },
  );

  test("an event with no JSON text is refused with a rejection and takes no offset", async (c) => {
    // The first publish of a group may wait for its load: refused there too, not thrown.
    const bad = () => c.a.streams.publish(c.group, { type: "t", n: 1n as unknown as number });
    await assertRejects(bad, TypeError);
    const first = await c.a.streams.publish(c.group, { type: "t", n: 1 });
    let returned: Promise<unknown> | undefined;
    try {
      returned = bad();
    } catch (error) {
      throw new Error(`publish threw instead of rejecting: ${error}`);
    }
    await assertRejects(() => returned!, TypeError);
    const second = await c.a.streams.publish(c.group, { type: "t", n: 2 });
    assertEquals([first.offset, second.offset], [1, 2]);
  });

  test("an event's own offset and epoch keys are replaced by the stream's", async (c) => {
    await c.a.streams.publish(c.group, { type: "t", offset: 99, epoch: "forged" });
    const [event] = (await c.b.streams.latest(c.group, 1)).events;
    assertEquals(event.offset, 1);
    assertNotEquals(event.epoch, "forged");
  });

  test("since returns what came after a position, in order, complete", async (c) => {
    for (let n = 1; n <= 8; n++) await c.a.streams.publish(c.group, { type: "t", n });
    const { epoch } = await c.b.streams.latest(c.group, 0);
    const read = await c.b.streams.since(c.group, { epoch, offset: 5 });
    assertEquals([read.complete, read.offset, read.epoch], [true, 8, epoch]);
    assertEquals(read.events.map((e) => [e.offset, e.n]), [[6, 6], [7, 7], [8, 8]]);
    const upToDate = await c.b.streams.since(c.group, { epoch, offset: 8 });
    assertEquals([upToDate.complete, upToDate.events], [true, []]);
  });

  test("since an unknown epoch or a future offset is not complete", async (c) => {
    for (let n = 1; n <= 3; n++) await c.a.streams.publish(c.group, { type: "t", n });
    const { epoch } = await c.b.streams.latest(c.group, 0);
    const other = await c.b.streams.since(c.group, { epoch: "elsewhere", offset: 1 });
    assertEquals([other.complete, other.epoch, other.offset], [false, epoch, 3]);
    assert(other.reason);
    const ahead = await c.b.streams.since(c.group, { epoch, offset: 4 });
    assertEquals(ahead.complete, false);
  });

  test("since with maxBytes gives all of what was missed, or none of it when that is more", async (c) => {
    const text = "x".repeat(1000);
    for (let n = 1; n <= 10; n++) await c.a.streams.publish(c.group, { type: "t", n, text });
    const { epoch } = await c.b.streams.latest(c.group, 0);
    const all = await c.b.streams.since(c.group, { epoch, offset: 0 }, { maxBytes: 100_000 });
    assertEquals([all.complete, all.events.length], [true, 10]);
    // 10 events of more than 1,000 bytes each: more than 5,000.
    const over = await c.b.streams.since(c.group, { epoch, offset: 0 }, { maxBytes: 5000 });
    if (over.complete) {
      assert(!options.refusesLargeReads, "a read of more than maxBytes was not refused");
      assertEquals(over.events.length, 10);
    } else {
      assertEquals([over.reason, over.epoch, over.offset, over.events], [
        SINCE_TOO_LARGE,
        epoch,
        10,
        [],
      ]);
    }
    const last = await c.b.streams.since(c.group, { epoch, offset: 9 }, { maxBytes: 5000 });
    assertEquals([last.complete, last.events.map((e) => e.n)], [true, [10]]);
  });

  test("since with pageBytes answers a page, or everything, and reading on from it gets the rest", async (c) => {
    const text = "p".repeat(1000);
    for (let n = 1; n <= 10; n++) await c.a.streams.publish(c.group, { type: "t", n, text });
    const { epoch } = await c.b.streams.latest(c.group, 1);
    const got: unknown[] = [];
    let reads = 0;
    for (let offset = 0; offset < 10; reads++) {
      const read = await c.b.streams.since(c.group, { epoch, offset }, { pageBytes: 3500 });
      assertEquals([read.complete, read.epoch, read.offset], [true, epoch, 10]);
      assert(read.events.length > 0, "a page with no event");
      got.push(...read.events.map((e) => e.n));
      offset = read.events.at(-1)!.offset;
    }
    assertEquals(got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    // About 1,050 characters an event: three a page, where a stream pages reads.
    assertEquals(reads, options.pagesReads ? 4 : 1);
    // An event longer than a page comes alone.
    const alone = await c.b.streams.since(c.group, { epoch, offset: 4 }, { pageBytes: 10 });
    assertEquals(alone.events.map((e) => e.n), options.pagesReads ? [5] : [5, 6, 7, 8, 9, 10]);
  });

  test("latest returns the last events, oldest first", async (c) => {
    for (let n = 1; n <= 7; n++) await c.a.streams.publish(c.group, { type: "t", n });
    const read = await c.b.streams.latest(c.group, 3);
    assertEquals([read.complete, read.offset], [true, 7]);
    assertEquals(read.events.map((e) => e.offset), [5, 6, 7]);
    assertEquals((await c.b.streams.latest(c.group, 50)).events.length, 7);
  });

  test("beyond the message window, since is complete only from the window on", async (c) => {
    for (let n = 1; n <= 64; n++) {
      await c.a.streams.publish(c.group, { type: "t", n }, { retention: SHORT });
    }
    const { epoch } = await c.b.streams.latest(c.group, 0);
    const kept = await c.b.streams.since(c.group, { epoch, offset: 59 });
    assertEquals([kept.complete, kept.events.map((e) => e.offset)], [true, [60, 61, 62, 63, 64]]);
    const missed = await c.b.streams.since(c.group, { epoch, offset: 0 });
    assertEquals([missed.complete, missed.events, missed.offset], [false, [], 64]);
  });

  test("the age window keeps more than the message window", async (c) => {
    const retention = { messages: 3, seconds: 600 };
    for (let n = 1; n <= 40; n++) {
      await c.a.streams.publish(c.group, { type: "t", n }, { retention });
    }
    const { epoch } = await c.b.streams.latest(c.group, 0);
    const read = await c.b.streams.since(c.group, { epoch, offset: 0 });
    assertEquals([read.complete, read.events.length], [true, 40]);
  });

  test("a publish without a retention keeps the streams' default, not an earlier one's", async (c) => {
    for (let n = 1; n <= 30; n++) {
      await c.a.streams.publish(c.group, { type: "t", n }, {
        retention: { messages: 10, seconds: 0 },
      });
    }
    for (let n = 31; n <= 60; n++) await c.a.streams.publish(c.group, { type: "t", n });
    // The default keeps all 30 later ones and the 10 the earlier retention kept (a stream that
    // trims lazily may keep more before them).
    const read = await c.b.streams.latest(c.group, 100);
    assertEquals(
      read.events.slice(-40).map((e) => e.n),
      Array.from({ length: 40 }, (_, i) => i + 21),
    );
  });

  test("latest with a count that is not a whole number of 0 or more is refused", async (c) => {
    for (const count of [NaN, 1.5, -1, Infinity]) {
      await assertRejects(() => c.a.streams.latest(c.group, count), TypeError, "count");
    }
  });

  test("publishes called just before a close are stored, and their promises resolve", async (c) => {
    await c.a.streams.publish(c.group, { type: "t", n: 0 });
    // Called in a row, as under load (a Redis linger holds them), and not awaited: a graceful
    // close answers them first.
    const pending = [1, 2, 3].map((n) => c.a.streams.publish(c.group, { type: "t", n }));
    await c.a.streams.close();
    assertEquals((await Promise.all(pending)).map((p) => p.offset), [2, 3, 4]);
    const reader = c.a === c.b ? await c.world.open() : c.b;
    try {
      const read = await reader.streams.latest(c.group, 10);
      assertEquals(read.events.map((event) => event.n), [0, 1, 2, 3]);
    } finally {
      if (reader !== c.b) {
        await reader.streams.close();
        await reader.layer.close();
      }
    }
  });

  test("when the state is lost the epoch changes and offsets start again", async (c) => {
    for (let n = 1; n <= 3; n++) await c.a.streams.publish(c.group, { type: "t", n });
    const before = await c.a.streams.latest(c.group, 0);
    for (const process of new Set([c.a, c.b])) await process.streams.close();
    await c.world.lose();
    const after = await c.world.open();
    try {
      const published = await after.streams.publish(c.group, { type: "t" });
      assertNotEquals(published.epoch, before.epoch);
      assertEquals(published.offset, 1);
      const read = await after.streams.since(c.group, { epoch: before.epoch, offset: 3 });
      assertEquals([read.complete, read.epoch, read.offset], [false, published.epoch, 1]);
    } finally {
      await after.streams.close();
      await after.layer.close();
    }
  });
}
