/**
 * A Redis stream publish reaches the publishing process's own members when its script answers,
 * not through Redis pub/sub: the copy Redis sends back is skipped without being parsed, and
 * everything that must still come through pub/sub (other processes, publishers from outside)
 * does.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { createClient } from "redis";
import { publishToGroup, RedisLayer } from "../../../layers/redis.ts";
import { RedisStreams } from "../../../layers/streams/redis.ts";
import { groupChannel } from "../../../layers/redis_wire.ts";
import { withTimeout } from "../../../storage/redis_connection.ts";
import type { StreamEvent } from "../../../layers/streams/contract.ts";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../../_support/redis.ts";
import { Inbox } from "../_inbox.ts";
import { log } from "../../../telemetry/log.ts";

log.setLevel("error");
const { available } = await redisAvailability();
const redis = available ? await testRedisUrl() : null;
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());

/** One process: its Redis layer and its streams, closed by `await using`. */
async function openProcess(prefix: string, layered = true) {
  const url = redis!.url;
  const layer = await RedisLayer.open({ url, prefix });
  const streams = await RedisStreams.open({
    url,
    prefix,
    layer: layered ? layer : undefined,
    publishInScript: true,
  });
  return {
    layer,
    streams,
    [Symbol.asyncDispose]: async () => {
      await streams.close();
      await layer.close();
    },
  };
}

/** A member of `group` on `layer`. */
async function member(layer: RedisLayer, group: string): Promise<Inbox> {
  const inbox = new Inbox(layer, 3000);
  await layer.groupAdd(group, inbox.channel);
  return inbox;
}

/** Counts `JSON.parse` calls on texts that mention `marker`, while `fn` runs. */
async function parsesOf(marker: string, fn: () => Promise<void>): Promise<number> {
  const parse = JSON.parse;
  let count = 0;
  JSON.parse = (text: string, reviver?: Parameters<typeof parse>[1]) => {
    if (typeof text === "string" && text.includes(marker)) count++;
    return parse(text, reviver);
  };
  try {
    await fn();
  } finally {
    JSON.parse = parse;
  }
  return count;
}

/**
 * Resolves once `process` has read every message Redis sent it so far (the echoes included): Redis
 * delivers one subscriber connection's messages in the order it ran their PUBLISHes, so a message
 * published now on another group, once received there, came after all of them.
 */
async function echoesRead(process: { layer: RedisLayer }, prefix: string): Promise<void> {
  const group = `flush.${crypto.randomUUID().slice(0, 8)}`;
  const inbox = await member(process.layer, group);
  await publishToGroup({ url: redis!.url, prefix }, group, { type: "flush" });
  await inbox.until(() => inbox.events.length === 1, "the flush message");
}

/** Processes A and B on one new prefix, and a new group name: most tests start here. */
async function twoProcesses() {
  const prefix = uniquePrefix("local");
  const a = await openProcess(prefix);
  const b = await openProcess(prefix);
  return {
    prefix,
    a,
    b,
    group: `room.${crypto.randomUUID().slice(0, 8)}`,
    [Symbol.asyncDispose]: async () => {
      await b[Symbol.asyncDispose]();
      await a[Symbol.asyncDispose]();
    },
  };
}

/** One process on a new prefix, with a member of a new group: tests of one process start here. */
async function oneProcess() {
  const prefix = uniquePrefix("local");
  const opened = await openProcess(prefix);
  const group = `room.${crypto.randomUUID().slice(0, 8)}`;
  return { ...opened, prefix, group, inbox: await member(opened.layer, group) };
}

/** Runs `fn` with a plain client of the test Redis, closed afterwards. */
async function withClient(
  fn: (client: ReturnType<typeof createClient>) => Promise<unknown>,
): Promise<void> {
  const client = createClient({ url: redis!.url });
  await client.connect();
  try {
    await fn(client);
  } finally {
    await client.close();
  }
}

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `redis streams, local delivery: ${name}`, ignore: !available, fn });

test("the publisher's members have the event when publish resolves, once, unparsed", async () => {
  await using world = await twoProcesses();
  const { prefix, a, b, group } = world;
  const here = await member(a.layer, group);
  const there = await member(b.layer, group);
  const parses = await parsesOf(group, async () => {
    for (let n = 1; n <= 20; n++) {
      const published = await a.streams.publish(group, { type: "t", n, group });
      // Delivered before the promise resolved: not through the subscriber connection.
      assertEquals(here.events.length, n);
      assertEquals((here.events.at(-1) as StreamEvent).offset, published.offset);
      assertEquals([published.delivered, published.remoteProcesses], [1, 1]);
    }
    await there.until(() => there.events.length === 20, "20 events in the other process");
    await echoesRead(a, prefix);
  });
  assertEquals(here.numbers("t"), Array.from({ length: 20 }, (_, i) => i + 1));
  assertEquals(there.numbers("t"), Array.from({ length: 20 }, (_, i) => i + 1));
  // Only the other process parsed what came over pub/sub: one parse per event.
  assertEquals(parses, 20);
});

test("a burst of publishes in one turn reaches local members in offset order", async () => {
  const prefix = uniquePrefix("local");
  await using a = await openProcess(prefix);
  const group = `room.${crypto.randomUUID().slice(0, 8)}`;
  const inboxes = [await member(a.layer, group), await member(a.layer, group)];
  const sends = Array.from({ length: 100 }, (_, n) => a.streams.publish(group, { type: "t", n }));
  const offsets = (await Promise.all(sends)).map((p) => p.offset);
  await echoesRead(a, prefix);
  for (const inbox of inboxes) {
    assertEquals((inbox.events as StreamEvent[]).map((e) => e.offset), offsets);
    assertEquals(inbox.numbers("t"), Array.from({ length: 100 }, (_, n) => n));
  }
  assertEquals(offsets, Array.from({ length: 100 }, (_, i) => i + 1));
});

test("events of another process and from outside still reach local members", async () => {
  await using world = await twoProcesses();
  const { prefix, a, b, group } = world;
  // A publisher with no layer, as `appendFromOutside` opens it: its events are not marked.
  await using outside = await openProcess(prefix, false);
  const inbox = await member(a.layer, group);
  await b.streams.publish(group, { type: "t", n: 1 });
  await outside.streams.publish(group, { type: "t", n: 2 });
  await publishToGroup({ url: redis!.url, prefix }, group, { type: "t", n: 3 });
  await a.streams.publish(group, { type: "t", n: 4 });
  await inbox.until(() => inbox.events.length >= 4, "4 events");
  await echoesRead(a, prefix);
  assertEquals([...inbox.numbers("t")].sort(), [1, 2, 3, 4]);
});

test("a script that fails delivers nothing locally and rejects", async () => {
  await using a = await oneProcess();
  const { prefix, group, inbox } = a;
  await withClient(async (client) => {
    await client.set(`${prefix}:stream-meta:${group}`, "not a hash"); // HMGET fails: WRONGTYPE
    await assertRejects(() => a.streams.publish(group, { type: "t" }), Error, "WRONGTYPE");
  });
  await echoesRead(a, prefix);
  assertEquals(inbox.events, []);
});

test("a node that has lost the script (EVAL) still delivers locally once", async () => {
  await using a = await oneProcess();
  const { prefix, group, inbox } = a;
  await withClient((client) => client.scriptFlush());
  const sends = Array.from({ length: 5 }, (_, n) => a.streams.publish(group, { type: "t", n }));
  await Promise.all(sends);
  await echoesRead(a, prefix);
  assertEquals(inbox.numbers("t"), [0, 1, 2, 3, 4]);
});

test("a publisher without members here builds and delivers nothing", async () => {
  await using world = await twoProcesses();
  const { a, b, group } = world;
  const there = await member(b.layer, group);
  const sendsBefore = a.layer.stats().groupSends;
  const published = await a.streams.publish(group, { type: "t", n: 1 });
  assertEquals([published.delivered, published.dropped, published.remoteProcesses], [0, 0, 1]);
  assertEquals(a.layer.stats().groupSends, sendsBefore);
  await there.until(() => there.events.length === 1, "the event in the other process");
  assert((there.events[0] as StreamEvent).offset === published.offset);
});

test("a plain group send's copy coming back is skipped unparsed too", async () => {
  await using world = await twoProcesses();
  const { prefix, a, b, group } = world;
  const here = await member(a.layer, group);
  const there = await member(b.layer, group);
  const parses = await parsesOf(group, async () => {
    for (let n = 1; n <= 10; n++) await a.layer.groupSend(group, { type: "t", n, group });
    await there.until(() => there.events.length === 10, "10 events in the other process");
    await echoesRead(a, prefix);
  });
  assertEquals(here.numbers("t"), Array.from({ length: 10 }, (_, i) => i + 1));
  assertEquals(parses, 10); // the other process's, one per event
});

/** How many `PUBLISH` commands Redis has run since its stats were last reset, scripts' too. */
async function publishesRun(client: ReturnType<typeof createClient>): Promise<number> {
  const stats = await client.info("commandstats");
  return Number(/^cmdstat_publish:calls=(\d+)/m.exec(stats)?.[1] ?? 0);
}

/** A plain subscriber of `group`'s layer channel, as any program may be; `heard` resolves. */
async function outsideListener(prefix: string, group: string) {
  const client = createClient({ url: redis!.url });
  await client.connect();
  let heard!: (message: string) => void;
  const first = new Promise<string>((resolve) => heard = resolve);
  await client.subscribe(groupChannel(prefix, group), (message) => heard(message));
  return {
    /** The first message it heard; rejects when none came within 3 s. */
    first: () => withTimeout(first, 3000, "the outside listener heard nothing"),
    [Symbol.asyncDispose]: () => client.close(),
  };
}

test("a group no other process hears is not published: its members get it from the reply", async () => {
  await using a = await oneProcess();
  const { prefix, group, inbox } = a;
  await withClient(async (client) => {
    const before = await publishesRun(client);
    for (let n = 1; n <= 10; n++) {
      const published = await a.streams.publish(group, { type: "t", n });
      assertEquals([published.delivered, published.remoteProcesses], [1, 0]);
    }
    assertEquals(await publishesRun(client), before);
    // Someone else starts listening to the group's channel: from then on it is published.
    await using listener = await outsideListener(prefix, group);
    const published = await a.streams.publish(group, { type: "t", n: 11 });
    assertEquals(published.remoteProcesses, 1);
    assertEquals(await publishesRun(client), before + 1);
    assertEquals(JSON.parse(await listener.first()).n, 11);
  });
  assertEquals(inbox.numbers("t"), Array.from({ length: 11 }, (_, i) => i + 1));
});

test("a process whose subscriber connection was cut, unknown to it yet, still publishes", async () => {
  await using a = await oneProcess();
  const { prefix, group } = a;
  await using listener = await outsideListener(prefix, group);
  await withClient(async (client) => {
    // A's subscriber holds its own channel and the group's; the listener only the group's.
    const subscribers = (await client.clientList({ TYPE: "PUBSUB" })).filter((c) => c.sub === 2);
    assertEquals(subscribers.length, 1);
    await client.sendCommand(["CLIENT", "KILL", "ID", String(subscribers[0].id)]);
  });
  // Redis now counts one subscriber of the group, the listener: A must not take it for itself.
  await a.streams.publish(group, { type: "t", n: 1 });
  assertEquals(JSON.parse(await listener.first()).n, 1);
});
