/**
 * The channels_redis layer: the shared conformance suite with Channels' group-name rule, then
 * what it does beyond the contract: core.py's keys and bytes, capacity and expiry as
 * channels_redis keeps them, and Redis going away and coming back. Django itself is in
 * `tests/interop/django_layer_test.ts`.
 */
import { assert, assertAlmostEquals, assertEquals, assertRejects } from "@std/assert";
import { decode, encode } from "@std/msgpack";
import { createClient, RESP_TYPES } from "redis";
import { Buffer } from "node:buffer";
import { layerConformance } from "./conformance.ts";
// As an app imports it: `@channels/deno/channels_redis`, an entry of the package's own.
import { ChannelsRedisLayer } from "@channels/deno/channels_redis";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../_support/redis.ts";
import { Inbox } from "./_inbox.ts";
import { assertOutageRecovered } from "./_outage.ts";
import { log } from "../../telemetry/log.ts";

log.setLevel("silent"); // overflow and outage cases log by design
const { available } = await redisAvailability();
const { available: privateServer } = await redisAvailability({ privateServer: true });
const redis = available ? await testRedisUrl() : null;
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());

const conformancePrefix = uniquePrefix("conformance");
layerConformance(
  "channels_redis layer",
  // channels_redis' capacity is per process inbox: the ordering case sends 500 events at once.
  () => ChannelsRedisLayer.open({ url: redis!.url, prefix: conformancePrefix, capacity: 1000 }),
  {
    shared: true,
    ignore: !available,
    carriesBytes: true, // msgpack, as channels_redis carries Python's bytes
    groupNames: {
      valid: ["chat_lobby", "chat-room.2", "Room.A_b-9", "g".repeat(99)],
      maxLength: 99,
      invalid: [
        ["empty", ""],
        ["100 characters", "g".repeat(100)],
        ["a space", "chat lobby"],
        ["Unicode", "chat.café"],
        ["a colon", "presence:chat"],
        ["a newline", "chat.a\nb"],
        ["a trailing newline", "chat\n"],
      ],
      validTitle: "ASCII letters, digits, hyphens, underscores, periods and 99 characters",
      invalidTitle: "empty, 100-character, Unicode, space and punctuated",
    },
  },
);

const BUFFERS = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } };

/** A layer and a plain client on a fresh prefix; both closed by `await using`. */
async function setUp(options: { capacity?: number; url?: string } = {}) {
  const prefix = uniquePrefix("cr");
  const url = options.url ?? redis!.url;
  const layer = await ChannelsRedisLayer.open({ url, prefix, capacity: options.capacity });
  const client = createClient({ url });
  client.on("error", () => {});
  await client.connect();
  return {
    prefix,
    layer,
    client,
    /** The members of a sorted set, as bytes, with their scores. */
    async entries(key: string): Promise<{ value: Buffer; score: number }[]> {
      const flat = await client.sendCommand<Buffer[]>(
        ["ZRANGE", key, "0", "-1", "WITHSCORES"],
        BUFFERS,
      );
      const pairs = [];
      for (let i = 0; i < flat.length; i += 2) {
        pairs.push({ value: flat[i], score: Number(flat[i + 1].toString()) });
      }
      return pairs;
    },
    async [Symbol.asyncDispose]() {
      await layer.close();
      await client.close();
    },
  };
}

/** A message as Django writes it: 12 random bytes, then msgpack. */
function djangoMessage(body: Record<string, unknown>): Buffer {
  return Buffer.concat([Buffer.from(crypto.getRandomValues(new Uint8Array(12))), encode(body)]);
}

Deno.test({
  name: "channels_redis layer: keys, scores and message bytes are core.py's",
  ignore: !available,
  fn: async () => {
    await using t = await setUp();
    const foreign = "specific.0123456789abcdef0123456789abcdef!feedc0de";
    const local = new Inbox(t.layer, 5000);
    assert(/^specific\.[0-9a-f]{32}![0-9a-f]{32}$/.test(local.channel), local.channel);
    await t.layer.groupAdd("chat_lobby", foreign);
    await t.layer.groupAdd("chat_lobby", local.channel);
    const group = await t.entries(`${t.prefix}:group:chat_lobby`);
    assertEquals(group.map((e) => e.value.toString()).sort(), [foreign, local.channel].sort());
    assertAlmostEquals(group[0].score, Date.now() / 1000, 5);
    assertAlmostEquals(await t.client.ttl(`${t.prefix}:group:chat_lobby`), 86400, 5);

    await t.layer.groupSend("chat_lobby", { type: "chat.message", message: "hi" });
    await t.layer.send(foreign, { type: "direct", n: 1 });
    await local.receives("chat.message");
    const inbox = `${t.prefix}specific.0123456789abcdef0123456789abcdef!`;
    const queued = await t.entries(inbox);
    assertEquals(queued.map((e) => decode(e.value.subarray(12))), [
      { type: "chat.message", message: "hi", __asgi_channel__: [foreign] },
      { type: "direct", n: 1, __asgi_channel__: foreign },
    ]);
    assert(queued[0].score < queued[1].score, "scores follow the order of the sends");
    assertAlmostEquals(queued[0].score, Date.now() / 1000, 5);
    assertAlmostEquals(await t.client.ttl(inbox), 60, 5);
    // The local member was delivered directly: nothing waits in this process's inbox.
    assertEquals(await t.client.zCard(`${t.prefix}specific.${t.layer.clientPrefix}!`), 0);
  },
});

Deno.test({
  name: "channels_redis layer: a message that cannot be delivered (nested too deep) takes no " +
    "other message popped with it along",
  ignore: !available,
  fn: async () => {
    await using t = await setUp();
    const member = new Inbox(t.layer, 5000);
    const inbox = `${t.prefix}specific.${t.layer.clientPrefix}!`;
    let deep: unknown = "bottom";
    for (let i = 0; i < 150; i++) deep = [deep];
    const now = Date.now() / 1000;
    // One write, so that the layer pops several of them at once.
    await t.client.zAdd(
      inbox,
      ["m0", "deep", "m2", "m3", "m4"].map((type, i) => ({
        score: now + i / 1000,
        value: djangoMessage({
          type,
          ...(type === "deep" && { deep }),
          __asgi_channel__: [member.channel],
        }),
      })),
    );
    await member.receives("m4");
    assertEquals(member.events.map((event) => event.type), ["m0", "m2", "m3", "m4"]);
  },
});

Deno.test({
  name: "channels_redis layer: Django's bytes arrive as a Uint8Array of their own, not a view " +
    "into what Redis answered",
  ignore: !available,
  fn: async () => {
    await using t = await setUp();
    const [x, y] = [new Inbox(t.layer, 5000), new Inbox(t.layer, 5000)];
    const inbox = `${t.prefix}specific.${t.layer.clientPrefix}!`;
    const now = Date.now() / 1000;
    // Popped together: one Redis reply holds both users' events.
    await t.client.zAdd(inbox, [
      {
        score: now,
        value: djangoMessage({ type: "note", secret: "for x only", __asgi_channel__: x.channel }),
      },
      {
        score: now + 0.001,
        value: djangoMessage({
          type: "blob",
          data: new Uint8Array([65, 66]),
          __asgi_channel__: y.channel,
        }),
      },
    ]);
    await y.receives("blob");
    const data = y.events[0].data as Uint8Array;
    assertEquals(data.constructor, Uint8Array, "bytes arrived as a Node Buffer");
    assertEquals([...data], [65, 66]);
    // Its memory is its own: through `.buffer` no other channel's event can be read.
    assertEquals(data.buffer.byteLength, 2);
    assertEquals(JSON.stringify(y.events[0]), '{"type":"blob","data":{"0":65,"1":66}}');
  },
});

Deno.test({
  name: "channels_redis layer: a message Django queued reaches every channel it names",
  ignore: !available,
  fn: async () => {
    await using t = await setUp();
    const [a, b, other] = [0, 1, 2].map(() => new Inbox(t.layer, 5000));
    const inbox = `${t.prefix}specific.${t.layer.clientPrefix}!`;
    const now = Date.now() / 1000;
    await t.client.zAdd(inbox, [
      { score: now, value: djangoMessage({ no: "type", __asgi_channel__: a.channel }) },
      { score: now + 0.001, value: Buffer.from("not msgpack at all") },
      {
        score: now + 0.002,
        value: djangoMessage({
          type: "chat.message",
          message: { text: "hi", big: 2 ** 40 },
          __asgi_channel__: [a.channel, b.channel, "specific.elsewhere!x"],
        }),
      },
      {
        score: now + 0.003,
        value: djangoMessage({ type: "marker", __asgi_channel__: other.channel }),
      },
    ]);
    await other.receives("marker");
    await a.receives("chat.message");
    await b.receives("chat.message");
    assertEquals(a.events, [{ type: "chat.message", message: { text: "hi", big: 2 ** 40 } }]);
    assertEquals(other.count("chat.message"), 0);
  },
});

Deno.test({
  name: "channels_redis layer: a full inbox refuses a send and a group send, counted as dropped",
  ignore: !available,
  fn: async () => {
    await using t = await setUp({ capacity: 2 });
    const full = "specific.nobodyreads!a";
    const alsoFull = "specific.nobodyreads!b";
    const local = new Inbox(t.layer, 5000);
    assertEquals((await t.layer.send(full, { type: "one" })).remoteProcesses, 1);
    assertEquals((await t.layer.send(full, { type: "two" })).remoteProcesses, 1);
    assertEquals(await t.layer.send(full, { type: "three" }), {
      delivered: 0,
      dropped: 1,
      remoteProcesses: 0,
    });
    for (const channel of [full, alsoFull, local.channel]) {
      await t.layer.groupAdd("busy", channel);
    }
    // Both members share the full inbox: the event is lost for both, not for the local one.
    assertEquals(await t.layer.groupSend("busy", { type: "four" }), {
      delivered: 1,
      dropped: 2,
      remoteProcesses: 0,
    });
    assertEquals(t.layer.stats().dropped, 3);
    assertEquals(await t.client.zCard(`${t.prefix}specific.nobodyreads!`), 2);
  },
});

Deno.test({
  name: "channels_redis layer: expired messages and memberships are removed before a send",
  ignore: !available,
  fn: async () => {
    await using t = await setUp({ capacity: 1 });
    const inbox = `${t.prefix}specific.gone!`;
    const old = Math.floor(Date.now() / 1000) - 61;
    await t.client.zAdd(inbox, { score: old, value: djangoMessage({ type: "stale" }) });
    // The stale message is older than the 60 s expiry: it no longer counts against capacity.
    assertEquals((await t.layer.send("specific.gone!x", { type: "fresh" })).dropped, 0);
    const groupKey = `${t.prefix}:group:room`;
    await t.client.zAdd(groupKey, { score: old - 86400, value: "specific.gone!y" });
    assertEquals((await t.layer.groupSend("room", { type: "late" })).remoteProcesses, 0);
    assertEquals(await t.client.zCard(groupKey), 0);
  },
});

Deno.test({
  name: "channels_redis layer: names outside Channels' rule throw a TypeError that says why",
  ignore: !available,
  fn: async () => {
    await using t = await setUp();
    const { channel } = new Inbox(t.layer, 5000);
    const error = await assertRejects(() => t.layer.groupAdd("chat.café", channel), TypeError);
    assertEquals(
      error.message,
      "Group name must be a valid unicode string with length < 100 containing only ASCII " +
        'alphanumerics, hyphens, underscores, or periods, not "chat.café"',
    );
    await assertRejects(() => t.layer.send("bad channel", { type: "x" }), TypeError, "Channel");
    await assertRejects(() => t.layer.groupSend("g".repeat(100), { type: "x" }), TypeError);
  },
});

Deno.test({
  name: "channels_redis layer: closing takes its channels out of their groups",
  ignore: !available,
  fn: async () => {
    const t = await setUp();
    try {
      const box = new Inbox(t.layer, 5000);
      await t.layer.groupAdd("room", box.channel);
      await t.layer.close();
      assertEquals(await t.client.zCard(`${t.prefix}:group:room`), 0);
    } finally {
      await t[Symbol.asyncDispose]();
    }
  },
});

Deno.test({
  name: "channels_redis layer: while Redis is away a send rejects; after a restart groups are back",
  ignore: !privateServer,
  // The memberships are written back to the restarted, empty Redis.
  fn: () => assertOutageRecovered((url, prefix) => ChannelsRedisLayer.open({ url, prefix })),
});

Deno.test({
  name: "channels_redis layer: this process renews its memberships, so it never falls out of a " +
    "group it stays in; one Django discarded stays out",
  ignore: !available,
  fn: async () => {
    const prefix = uniquePrefix("renew");
    // A membership older than 2 s is expired for group_send; this process renews every 0.5 s.
    const layer = await ChannelsRedisLayer.open({ url: redis!.url, prefix, groupExpiry: 2 });
    const client = createClient({ url: redis!.url });
    client.on("error", () => {});
    await client.connect();
    try {
      const stays = new Inbox(layer, 5000);
      const discarded = new Inbox(layer, 5000);
      await layer.groupAdd("presence", stays.channel);
      await layer.groupAdd("presence", discarded.channel);
      const key = `${prefix}:group:presence`;
      const joined = (await client.zScore(key, stays.channel))!;
      // Django's group_discard of one of them, from outside this process.
      await client.zRem(key, discarded.channel);
      // Until a renewal came after the join has expired: the score then moved on by over 2 s.
      const deadline = Date.now() + 10_000;
      while ((await client.zScore(key, stays.channel))! <= joined + 2) {
        assert(Date.now() < deadline, "the membership was never renewed");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const result = await layer.groupSend("presence", { type: "still.here" });
      assertEquals(result.delivered, 1, "the member that stayed was dropped as expired");
      await stays.until(() => stays.events.length === 1, "the event");
      assertEquals(await client.zScore(key, discarded.channel), null);
      assertEquals(discarded.events.length, 0, "a discarded member was renewed back in");
    } finally {
      await layer.close();
      await client.close();
    }
  },
});

Deno.test({
  name:
    "channels_redis: the server takes Django's prefix, expiry, group_expiry and capacity from its settings",
  ignore: !available,
  fn: async () => {
    const { loadConfig, openBackends } = await import("../../mod.ts");
    const prefix = uniquePrefix("myapp");
    const config = loadConfig([], {
      LAYER: "channels_redis",
      REDIS_URL: redis!.url,
      REDIS_PREFIX: uniquePrefix("ours"),
      CHANNELS_REDIS_PREFIX: prefix,
      CHANNELS_REDIS_GROUP_EXPIRY: "3600",
      CHANNELS_REDIS_EXPIRY: "30",
      CHANNELS_REDIS_CAPACITY: "7",
    });
    assertEquals(config.channelsRedis, { prefix, expiry: 30, groupExpiry: 3600, capacity: 7 });
    const backends = await openBackends(config);
    const client = createClient({ url: redis!.url });
    await client.connect();
    try {
      const channel = backends.layer.newChannel(() => true);
      await backends.layer.groupAdd("chat_lobby", channel);
      // Where Django with `"prefix": "<prefix>"` looks, kept for its group_expiry.
      const key = `${prefix}:group:chat_lobby`;
      assert(await client.zScore(key, channel) !== null, "not under Django's prefix");
      assertAlmostEquals(await client.ttl(key), 3600, 60);
      backends.layer.closeChannel(channel);
    } finally {
      await client.close();
      await backends.close();
    }
  },
});

Deno.test({
  name:
    "channels_redis: each process counts the group sends it delivers, its own and those it is sent",
  ignore: !available,
  fn: async () => {
    await using a = await setUp();
    const b = await ChannelsRedisLayer.open({ url: redis!.url, prefix: a.prefix });
    try {
      const here = new Inbox(a.layer, 5000);
      const there = new Inbox(b, 5000);
      await a.layer.groupAdd("counted", here.channel);
      await b.groupAdd("counted", there.channel);
      await a.layer.groupSend("counted", { type: "tick" });
      await a.layer.groupSend("counted", { type: "tick" });
      await there.until(() => there.count("tick") === 2, "both ticks in the other process");
      assertEquals([here.count("tick"), a.layer.stats().groupSends], [2, 2]);
      assertEquals(b.stats().groupSends, 2);
    } finally {
      await b.close();
    }
  },
});
