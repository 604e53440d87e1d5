/** The chat under `LAYER=channels_redis` beside the Channels tutorial's project under Daphne. */
import { assert, assertEquals } from "@std/assert";
import { ChannelsRedisLayer } from "../../layers/channels_redis.ts";
import { RedisStreams } from "../../layers/streams/redis.ts";
import { createClient } from "redis";
import { Communicator } from "../../testing.ts";
import { createTestApp } from "../_support/test_app.ts";
import { uniquePrefix } from "../_support/redis.ts";
import { TestSocket } from "../_support/socket.ts";
import {
  djangoGroupSend,
  djangoGroupSendEach,
  type DjangoLayerSettings,
  djangoReceive,
  djangoUnavailable,
  startDaphne,
} from "./_django.ts";
import { redis, redisAvailable, siteOnChannelsRedis, WAIT_MS } from "./_django_chat_support.ts";

const missingDjango = await djangoUnavailable();
if (missingDjango !== null) console.log(`Skipping the Django chat tests: ${missingDjango}`);

const ignoreDjango = missingDjango !== null || !redisAvailable;

Deno.test({
  name: "a socket here and one on Daphne in room lobby chat both ways",
  ignore: ignoreDjango,
  fn: async () => {
    await using site = await siteOnChannelsRedis();
    await using daphne = await startDaphne(site.settings);
    const here = await site.join("lobby");
    const there = await TestSocket.open(`${daphne.wsUrl}/ws/chat/lobby/`, {
      headers: { Origin: daphne.origin },
    });
    try {
      // Ours carries id, room, author, time, offset and epoch beside the message: Django's
      // consumer reads only `message` and is not broken by the rest.
      here.sendJson({ message: "from deno" });
      assertEquals(await there.nextJson(WAIT_MS), { message: "from deno" });
      assertEquals((await here.receiveJson()).message, "from deno");
      there.sendJson({ message: "from django" });
      assertEquals(await there.nextJson(WAIT_MS), { message: "from django" });
      const frame = await here.receiveJson(WAIT_MS);
      assertEquals([frame.type, frame.message, frame.room], [
        "chat.message",
        "from django",
        "lobby",
      ]);
    } finally {
      await there.close();
    }
  },
});

Deno.test({
  name: "a Django shell group_send to chat_lobby reaches this server's socket in room lobby",
  ignore: ignoreDjango,
  fn: async () => {
    await using site = await siteOnChannelsRedis();
    const here = await site.join("lobby");
    const elsewhere = await site.join("other");
    await djangoGroupSend(site.settings, "chat_lobby", { message: "from the shell" });
    const frame = await here.receiveJson(WAIT_MS);
    assertEquals([frame.message, frame.room], ["from the shell", "lobby"]);
    assert(await elsewhere.receiveNothing(200), "another room heard the lobby");
  },
});

Deno.test({
  name: "a named channel is shared with Django: its send reaches a listener here, ours its receive",
  ignore: ignoreDjango,
  fn: async () => {
    await using site = await siteOnChannelsRedis();
    const layer = site.app.services.layer;
    const name = `thumbnails.${crypto.randomUUID().slice(0, 8)}`;
    // Django's `channel_layer.send(name, …)` to a listener here.
    const taken: Record<string, unknown>[] = [];
    const arrived = Promise.withResolvers<void>();
    const unlisten = await layer.listen(name, (event) => {
      taken.push(event);
      arrived.resolve();
      return true;
    });
    await djangoGroupSend(site.settings, "chat_nobody", { message: "job", channel: name });
    await arrived.promise;
    await unlisten();
    assertEquals(taken, [{ type: "chat.message", message: "job (to one channel)" }]);
    // Our send to Django's `channel_layer.receive(name)`, as `runworker` does. Nobody listens
    // here, which the result says; the event still waits in the queue, as channels_redis' does.
    const sent = await layer.send(name, { type: "thumbnail.make", id: 7 });
    assertEquals([sent.noListener, sent.queued], [true, true]);
    assertEquals(await djangoReceive(site.settings, name, WAIT_MS), {
      type: "thumbnail.make",
      id: 7,
    });
  },
});

/**
 * One server process as `LAYER=channels_redis` makes it: the layer in Django's keys, the rooms'
 * streams in Redis under our own prefix. Two of these on one Redis are two processes.
 */
async function processOnChannelsRedis(
  settings: DjangoLayerSettings,
  streamPrefix: string,
  options: { expiry?: number; capacity?: number } = {},
) {
  const layer = await ChannelsRedisLayer.open({
    url: settings.redisUrl,
    prefix: settings.prefix,
    ...options,
  });
  const streams = await RedisStreams.open({
    url: settings.redisUrl,
    prefix: streamPrefix,
    layer,
    publishInScript: false,
  });
  const app = await createTestApp({}, { layer, streams });
  return {
    app,
    async join(path: string): Promise<Communicator> {
      const comm = new Communicator(app, path);
      assert((await comm.connect()).accepted, `joining ${path} was refused`);
      return comm;
    },
    [Symbol.asyncDispose]: () => app[Symbol.asyncDispose](),
  };
}

Deno.test({
  name: "a Django group_send to a room is kept once in its stream: every process's sockets " +
    "get it with one offset, and it is in the history and recovered",
  ignore: ignoreDjango,
  fn: async () => {
    const settings: DjangoLayerSettings = { redisUrl: redis!.url, prefix: uniquePrefix("asgi") };
    const streamPrefix = uniquePrefix("channels");
    await using one = await processOnChannelsRedis(settings, streamPrefix);
    await using two = await processOnChannelsRedis(settings, streamPrefix);
    const onOne = await one.join("/ws/chat/lobby/?stream=1");
    const onTwo = await two.join("/ws/chat/lobby/?stream=1");
    const { epoch } = await onOne.receiveJson();
    assertEquals((await onTwo.receiveJson()).epoch, epoch);
    onOne.sendJson({ message: "from deno" });
    for (const member of [onOne, onTwo]) {
      assertEquals((await member.receiveJson(WAIT_MS)).offset, 1);
    }

    // Twice the same text: two sends, so two messages, each kept once.
    await djangoGroupSend(settings, "chat_lobby", { message: "ok" });
    await djangoGroupSend(settings, "chat_lobby", { message: "ok" });
    const seen = [];
    for (const member of [onOne, onTwo]) {
      const frames = [await member.receiveJson(WAIT_MS), await member.receiveJson(WAIT_MS)];
      seen.push(frames.map(({ offset, id, message, epoch }) => ({ offset, id, message, epoch })));
      assert(await member.receiveNothing(300), "a message from Django came twice");
    }
    assertEquals(seen[0].map(({ offset, message }) => [offset, message]), [[2, "ok"], [3, "ok"]]);
    assertEquals(seen[1], seen[0], "the processes' sockets got different copies");
    assertEquals(seen[0][0].epoch, epoch);

    // In the room's history, on either process, and recovered by a client that missed them.
    const later = await two.join("/ws/chat/lobby/");
    const history = [];
    for (let i = 0; i < 3; i++) history.push((await later.receiveJson()).message);
    assertEquals(history, ["from deno", "ok", "ok"]);
    const back = await one.join(`/ws/chat/lobby/?epoch=${epoch}&since=1`);
    const recovered = await back.receiveJson();
    assertEquals([recovered.type, recovered.complete], ["recovered", true]);
    const replayed = [await back.receiveJson(), await back.receiveJson()];
    assertEquals(replayed.map((frame) => frame.id), seen[0].map((frame) => frame.id));
  },
});

Deno.test({
  name: "Django's group_sends in a row are kept in the order they were sent, on every process",
  ignore: ignoreDjango,
  fn: async () => {
    // channels_redis drops a message to a full inbox without a word, and its default capacity
    // (100) is under these 150 sends in a row: a process that falls behind on a busy machine
    // would lose some. So a capacity above them, on both sides.
    const settings: DjangoLayerSettings = {
      redisUrl: redis!.url,
      prefix: uniquePrefix("asgi"),
      capacity: 1000,
    };
    const streamPrefix = uniquePrefix("channels");
    // A long expiry: the mark that a send is kept must outlast it (a copy may wait that long).
    const options = { expiry: 300, capacity: settings.capacity };
    await using one = await processOnChannelsRedis(settings, streamPrefix, options);
    await using two = await processOnChannelsRedis(settings, streamPrefix, options);
    const members = [await one.join("/ws/chat/lobby/"), await two.join("/ws/chat/lobby/")];
    const sent = Array.from({ length: 150 }, (_, i) => `m${String(i).padStart(3, "0")}`);
    await djangoGroupSendEach(settings, "chat_lobby", sent);
    for (const member of members) {
      const frames = [];
      for (const _ of sent) frames.push(await member.receiveJson(WAIT_MS));
      assertEquals(frames.map((frame) => frame.message), sent);
      assertEquals(frames.map((frame) => frame.offset), sent.map((_, i) => i + 1));
    }
    const client = createClient({ url: settings.redisUrl });
    await client.connect();
    try {
      const marks = [];
      for await (const keys of client.scanIterator({ MATCH: `${streamPrefix}:stream-kept:*` })) {
        marks.push(...keys);
      }
      assertEquals(marks.length, sent.length);
      assert((await client.pTTL(marks[0])) > 300_000, "a late copy would be kept again");
    } finally {
      await client.close();
    }
  },
});

Deno.test({
  name: "a Django send to one socket's channel reaches that socket alone, and is not kept",
  ignore: ignoreDjango,
  fn: async () => {
    const settings: DjangoLayerSettings = { redisUrl: redis!.url, prefix: uniquePrefix("asgi") };
    await using one = await processOnChannelsRedis(settings, uniquePrefix("channels"));
    const addressee = await one.join("/ws/chat/lobby/?stream=1");
    await addressee.receiveJson(); // its position
    const [channel] = await groupMembers(settings, "chat_lobby");
    const other = await one.join("/ws/chat/lobby/?stream=1");
    await other.receiveJson();
    // What a Django consumer does with `self.channel_layer.send(channel, ...)`.
    await djangoGroupSend(settings, "chat_nobody", { message: "private", channel });
    const frame = await addressee.receiveJson(WAIT_MS);
    assertEquals([frame.message, frame.offset], ["private (to one channel)", undefined]);
    assert(await other.receiveNothing(300), "another socket got a message sent to one channel");
    other.sendJson({ message: "public" });
    assertEquals((await other.receiveJson(WAIT_MS)).offset, 1, "the private one took an offset");
    const later = await one.join("/ws/chat/lobby/");
    assertEquals((await later.receiveJson()).message, "public");
    assert(await later.receiveNothing(200), "the private message is in the room's history");
  },
});

// The channels in a channels_redis group, as Django's `group_send` reads them.
async function groupMembers(settings: DjangoLayerSettings, group: string): Promise<string[]> {
  const client = createClient({ url: settings.redisUrl });
  await client.connect();
  try {
    return await client.zRange(`${settings.prefix}:group:${group}`, 0, -1);
  } finally {
    await client.close();
  }
}

Deno.test({
  name: "a Django send to one socket after a group send to its room arrives after it",
  ignore: ignoreDjango,
  fn: async () => {
    const settings: DjangoLayerSettings = { redisUrl: redis!.url, prefix: uniquePrefix("asgi") };
    await using one = await processOnChannelsRedis(settings, uniquePrefix("channels"));
    const member = await one.join("/ws/chat/lobby/");
    const [channel] = await groupMembers(settings, "chat_lobby");
    const texts = Array.from({ length: 20 }, (_, i) => `hello${i}`);
    await djangoGroupSendEach(settings, "chat_lobby", texts, channel);
    const got = [];
    for (let i = 0; i < 2 * texts.length; i++) {
      got.push((await member.receiveJson(WAIT_MS)).message);
    }
    assertEquals(got, texts.flatMap((text) => [text, `${text} (to one channel)`]));
  },
});
