/**
 * The Redis publish script drops what the retention no longer keeps without reading the
 * stream's oldest entries on every publish: the group's hash keeps the oldest entry's offset
 * and time. These cases check that the trim still happens, by count and by age, and that a
 * hash that is missing those fields or is stale (an older script, the MAXLEN cap) heals.
 */
import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { createClient } from "redis";
import { RedisStreams } from "../../../layers/streams/redis.ts";
import { DEFAULT_IDLE_EXPIRY_MS, EMPTY_STREAM_KEPT_MS } from "../../../layers/streams/contract.ts";
import type { StreamRetention } from "../../../layers/streams/contract.ts";
import {
  redisAvailability,
  startRedisServer,
  testRedisUrl,
  uniquePrefix,
} from "../../_support/redis.ts";

const { available } = await redisAvailability();
const redis = available ? await testRedisUrl() : null;
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());

const KEEP_ALL = { messages: 1000, seconds: 0 };

/** Streams with no layer (the script publishes), a raw client, and one group's keys. */
async function openWorld(options: { idleExpiryMs?: number; url?: string } = {}) {
  const url = options.url ?? redis!.url;
  const prefix = uniquePrefix("retention");
  const group = `room.${crypto.randomUUID().slice(0, 8)}`;
  const streams = await RedisStreams.open({ url, prefix, publishInScript: true, ...options });
  const client = createClient({ url });
  await client.connect();
  const meta = `${prefix}:stream-meta:${group}`;
  const stream = `${prefix}:stream:${group}`;
  return {
    streams,
    group,
    publish: async (count: number, retention: StreamRetention) => {
      for (let n = 0; n < count; n++) await streams.publish(group, { type: "t" }, { retention });
    },
    length: () => client.xLen(stream),
    first: async () => Number(await client.hGet(meta, "first")),
    retained: async () =>
      (await streams.latest(group, 100_000)).events.map((event) => event.offset),
    client,
    meta,
    stream,
    [Symbol.asyncDispose]: async () => {
      await streams.close();
      await client.close();
    },
  };
}

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `redis streams, retention: ${name}`, ignore: !available, fn });

test("over many publishes the stream keeps only the message window", async () => {
  await using world = await openWorld();
  await world.publish(50, { messages: 5, seconds: 0 });
  assertEquals(await world.length(), 5);
  assertEquals(await world.retained(), [46, 47, 48, 49, 50]);
  assertEquals(await world.first(), 46);
  const { epoch } = await world.streams.latest(world.group, 0);
  const old = await world.streams.since(world.group, { epoch, offset: 10 });
  assertEquals([old.complete, old.events], [false, []]);
  const kept = await world.streams.since(world.group, { epoch, offset: 45 });
  assertEquals([kept.complete, kept.events.length], [true, 5]);
});

test("what the age window kept goes once its publishes no longer keep it", async () => {
  await using world = await openWorld();
  await world.publish(20, { messages: 2, seconds: 600 });
  assertEquals(await world.length(), 20);
  assertEquals(await world.first(), 1);
  // Two dropped per publish, one added: the 20 kept by age are down to the message window in 18.
  await world.publish(18, { messages: 2, seconds: 0 });
  assertEquals(await world.retained(), [37, 38]);
  assertEquals(await world.first(), 37);
});

test("a hash written by the previous script (no first) keeps being trimmed", async () => {
  await using world = await openWorld();
  await world.publish(20, KEEP_ALL);
  await world.client.hDel(world.meta, ["first", "firstTime"]);
  await world.publish(15, { messages: 5, seconds: 0 });
  assertEquals(await world.retained(), [31, 32, 33, 34, 35]);
  assertEquals(await world.first(), 31);
  const { epoch } = await world.streams.latest(world.group, 0);
  assertEquals((await world.streams.since(world.group, { epoch, offset: 0 })).complete, false);
});

test("a first trimmed away by the MAXLEN cap heals at the next drop", async () => {
  await using world = await openWorld();
  await world.publish(20, KEEP_ALL);
  // What the cap does: the oldest entries go, the hash still names entry 1.
  await world.client.xTrim(world.stream, "MAXLEN", 3);
  assertEquals(await world.first(), 1);
  await world.publish(2, { messages: 2, seconds: 0 });
  assertEquals(await world.retained(), [21, 22]);
  assertEquals(await world.first(), 21);
});

test("a stream the retention empties starts again at its next publish", async () => {
  await using world = await openWorld();
  const none = { messages: 0, seconds: 0 };
  await world.publish(3, none);
  assertEquals(await world.length(), 0);
  assert(!(await world.client.hExists(world.meta, "first")));
  await world.publish(1, KEEP_ALL);
  await world.publish(1, { messages: 1, seconds: 0 });
  assertEquals(await world.retained(), [5]);
  assertEquals(await world.first(), 5);
  const read = await world.streams.latest(world.group, 10);
  assertEquals(read.offset, 5);
});

test("a group read but never published to leaves a record that expires, kept once it is used", async () => {
  await using world = await openWorld();
  const { epoch } = await world.streams.latest(world.group, 50);
  const ttl = await world.client.pTTL(world.meta);
  // A room named once and never used must not stay in Redis for good; a day is left to
  // recover in, and each read gives it that again.
  assert(ttl > 0 && ttl <= EMPTY_STREAM_KEPT_MS, `the record's TTL is ${ttl} ms`);
  assertEquals((await world.streams.since(world.group, { epoch, offset: 0 })).complete, true);
  await world.publish(1, KEEP_ALL);
  // Used now: it lasts the idle expiry from its last publish (30 days), no longer a day.
  const used = await world.client.pTTL(world.meta);
  assert(used > DEFAULT_IDLE_EXPIRY_MS - 60_000, `a used stream's record expires in ${used} ms`);
  assertEquals((await world.streams.latest(world.group, 1)).epoch, epoch);
});

test("each publish gives the record and the stream the idle expiry again, and nothing more", async () => {
  const idleExpiryMs = 60 * 60 * 1000;
  await using world = await openWorld({ idleExpiryMs });
  const ttls = () => Promise.all([world.client.pTTL(world.meta), world.client.pTTL(world.stream)]);
  const within = (ttls: number[]) =>
    ttls.every((ttl) => ttl > idleExpiryMs - 60_000 && ttl <= idleExpiryMs);
  await world.publish(2, KEEP_ALL);
  assert(within(await ttls()), `after a publish: ${await ttls()}`);
  // As if half of it had passed: the next publish starts it again, for both keys.
  await world.client.pExpire(world.meta, idleExpiryMs / 2);
  await world.client.pExpire(world.stream, idleExpiryMs / 2);
  await world.streams.latest(world.group, 50); // a read is no use of the room
  assert((await ttls()).every((ttl) => ttl <= idleExpiryMs / 2), `after a read: ${await ttls()}`);
  await world.publish(1, KEEP_ALL);
  assert(within(await ttls()), `after the next publish: ${await ttls()}`);
});

test("a publish never shortens the life another process gave a room, and gives one to keys that had none", async () => {
  const hour = 60 * 60 * 1000;
  await using servers = await openWorld({ idleExpiryMs: 2 * hour });
  // A sender from outside (`deno task send`) that was not given the servers' setting.
  const sender = await RedisStreams.open({
    url: redis!.url,
    prefix: servers.meta.slice(0, servers.meta.indexOf(":stream-meta:")),
    publishInScript: true,
    idleExpiryMs: hour,
  });
  try {
    const ttls = () =>
      Promise.all([servers.client.pTTL(servers.meta), servers.client.pTTL(servers.stream)]);
    await servers.publish(1, KEEP_ALL);
    await sender.publish(servers.group, { type: "t" });
    assert((await ttls()).every((ttl) => ttl > 2 * hour - 60_000), `${await ttls()}`);
    // Keys an older version wrote, without an expiry: the next publish, whoever makes it, gives one.
    await servers.client.persist(servers.meta);
    await servers.client.persist(servers.stream);
    await sender.publish(servers.group, { type: "t" });
    assert((await ttls()).every((ttl) => ttl > hour - 60_000 && ttl <= hour), `${await ttls()}`);
  } finally {
    await sender.close();
  }
});

test("a room read before its first publish takes the idle expiry then, shorter than the read's day or not", async () => {
  const hour = 60 * 60 * 1000;
  await using world = await openWorld({ idleExpiryMs: hour });
  await world.streams.latest(world.group, 50); // a page opened it: its record is kept a day
  assert(await world.client.pTTL(world.meta) > hour, "a read keeps an unused room's record a day");
  await world.publish(1, KEEP_ALL);
  for (const key of [world.meta, world.stream]) {
    const ttl = await world.client.pTTL(key);
    assert(ttl > hour - 60_000 && ttl <= hour, `${key}: ${ttl} ms`);
  }
});

const privateRedis = await redisAvailability({ privateServer: true });

Deno.test({
  name:
    "redis streams, retention: a room left for its idle expiry leaves nothing in Redis, and its next reader is told what it missed is gone",
  ignore: !privateRedis.available,
}, async () => {
  // A Redis of its own, told to say when it expires a key.
  await using server = await startRedisServer();
  await using world = await openWorld({ idleExpiryMs: 200, url: server.url });
  await world.client.configSet("notify-keyspace-events", "Ex");
  const listener = world.client.duplicate();
  await listener.connect();
  const gone = new Set<string>();
  const bothGone = Promise.withResolvers<void>();
  await listener.subscribe("__keyevent@0__:expired", (key) => {
    gone.add(key);
    if (gone.has(world.meta) && gone.has(world.stream)) bothGone.resolve();
  });
  await world.publish(3, KEEP_ALL);
  const { epoch, offset } = await world.streams.latest(world.group, 0);
  assertEquals(offset, 3);
  // Bounded, so that a room that never expires fails here rather than hang the run.
  const deadline = AbortSignal.timeout(10_000);
  await Promise.race([
    bothGone.promise,
    new Promise((_, reject) =>
      deadline.addEventListener("abort", () => reject(new Error("the keys never expired")))
    ),
  ]);
  await listener.close();
  const read = await world.streams.since(world.group, { epoch, offset: 2 });
  assertEquals([read.complete, read.events.length], [false, 0]);
  assertNotEquals(read.epoch, epoch);
  const published = await world.streams.publish(world.group, { type: "t" });
  assertEquals([published.offset, published.epoch], [1, read.epoch]);
});
