/**
 * Groups shared with Django Channels: the Channels tutorial's project
 * (`tests/fixtures/django_chat/`, channels_redis' core layer) served by Daphne, and a
 * {@linkcode ChannelsRedisLayer} on the same Redis. Skipped with a reason when python3 with
 * Django, Channels, channels_redis and Daphne, or Redis, is missing; a failure under `CI=true`.
 */
import { assertEquals } from "@std/assert";
import { createClient } from "redis";
import { ChannelsRedisLayer } from "../../layers/channels_redis.ts";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../_support/redis.ts";
import { TestSocket } from "../_support/socket.ts";
import { Inbox } from "../layers/_inbox.ts";
import {
  djangoGroupSend,
  type DjangoLayerSettings,
  djangoUnavailable,
  startDaphne,
} from "./_django.ts";

const WAIT_MS = 15_000;
const missingDjango = await djangoUnavailable();
const { available: redisAvailable } = await redisAvailability();
if (missingDjango !== null) console.log(`Skipping the Django interop tests: ${missingDjango}`);
const ignore = missingDjango !== null || !redisAvailable;
const redis = ignore ? null : await testRedisUrl();
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());

/** Both sides on one Redis and one fresh prefix; `await using` closes everything. */
async function bothSides() {
  const settings: DjangoLayerSettings = { redisUrl: redis!.url, prefix: uniquePrefix("asgi") };
  const daphne = await startDaphne(settings);
  const layer = await ChannelsRedisLayer.open({ url: settings.redisUrl, prefix: settings.prefix });
  const sockets: TestSocket[] = [];
  return {
    settings,
    layer,
    /** A WebSocket to the tutorial's room page on Daphne, open once Django joined the group. */
    async room(name: string): Promise<TestSocket> {
      const socket = await TestSocket.open(`${daphne.wsUrl}/ws/chat/${name}/`, {
        headers: { Origin: daphne.origin },
      });
      sockets.push(socket);
      return socket;
    },
    async [Symbol.asyncDispose]() {
      for (const socket of sockets) await socket.close();
      await layer.close();
      await daphne[Symbol.asyncDispose]();
    },
  };
}

Deno.test({
  name: "a Django group_send reaches this server's members of the group, and a send its channel",
  ignore,
  fn: async () => {
    await using sides = await bothSides();
    const member = new Inbox(sides.layer, WAIT_MS);
    await sides.layer.groupAdd("chat_lobby", member.channel);
    await djangoGroupSend(sides.settings, "chat_lobby", {
      message: "from django",
      channel: member.channel,
    });
    await member.until(() => member.events.length === 2, "the group event and the direct one");
    assertEquals(member.events, [
      { type: "chat.message", message: "from django" },
      { type: "chat.message", message: "from django (to one channel)" },
    ]);
  },
});

Deno.test({
  name: "a groupSend here reaches a WebSocket client of the Django tutorial's room",
  ignore,
  fn: async () => {
    await using sides = await bothSides();
    const client = await sides.room("lobby");
    const result = await sides.layer.groupSend("chat_lobby", {
      type: "chat.message",
      message: "from deno",
    });
    assertEquals(result.remoteProcesses, 1, "Daphne's process inbox was not reached");
    assertEquals(await client.nextJson(WAIT_MS), { message: "from deno" });
  },
});

Deno.test({
  name: "a send here to a Django consumer's channel reaches that consumer",
  ignore,
  fn: async () => {
    await using sides = await bothSides();
    const client = await sides.room("lobby");
    // The consumer's channel name is where Django put it: in its group's sorted set.
    const redisClient = createClient({ url: sides.settings.redisUrl });
    await redisClient.connect();
    const channels = await redisClient.zRange(`${sides.settings.prefix}:group:chat_lobby`, 0, -1);
    await redisClient.close();
    assertEquals(channels.length, 1);
    await sides.layer.send(channels[0], { type: "chat.message", message: "just for you" });
    assertEquals(await client.nextJson(WAIT_MS), { message: "just for you" });
  },
});

Deno.test({
  name: "a message typed into the Django room reaches this server's members of its group",
  ignore,
  fn: async () => {
    await using sides = await bothSides();
    const member = new Inbox(sides.layer, WAIT_MS);
    await sides.layer.groupAdd("chat_lobby", member.channel);
    const client = await sides.room("lobby");
    client.sendJson({ message: "typed in django" });
    await member.receives("chat.message");
    assertEquals(member.events, [{ type: "chat.message", message: "typed in django" }]);
    // The tutorial echoes it to the room, the sender's socket included.
    assertEquals(await client.nextJson(WAIT_MS), { message: "typed in django" });
  },
});

Deno.test({
  name: "a member of a different group hears nothing, on either side",
  ignore,
  fn: async () => {
    await using sides = await bothSides();
    const [elsewhere, witness] = [new Inbox(sides.layer, WAIT_MS), new Inbox(sides.layer, WAIT_MS)];
    await sides.layer.groupAdd("chat_other", elsewhere.channel);
    await sides.layer.groupAdd("chat_lobby", witness.channel);
    const client = await sides.room("lobby");
    // Django to this server: only the lobby's member hears the lobby.
    await djangoGroupSend(sides.settings, "chat_lobby", { message: "lobby only" });
    await witness.receives("chat.message");
    // This server to Django: the room's socket gets the lobby's marker, never the other room's.
    await sides.layer.groupSend("chat_other", { type: "chat.message", message: "other room" });
    await sides.layer.groupSend("chat_lobby", { type: "chat.message", message: "marker" });
    await witness.until(() => witness.events.length === 2, "the lobby's marker");
    assertEquals(await client.nextJson(WAIT_MS), { message: "lobby only" });
    assertEquals(await client.nextJson(WAIT_MS), { message: "marker" });
    assertEquals(elsewhere.events, [{ type: "chat.message", message: "other room" }]);
  },
});
