/** The chat under `LAYER=channels_redis`: rooms as Channels' groups, its event shape, the dice. */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { type LogLevel, runChannelWorkers } from "../../mod.ts";
import { log } from "../../telemetry/log.ts";
import { siteWorkers } from "../../routes/workers.ts";
import { redisAvailable, siteOnChannelsRedis, WAIT_MS } from "./_django_chat_support.ts";

const UPGRADE = {
  upgrade: "websocket",
  connection: "Upgrade",
  "sec-websocket-version": "13",
  "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
};

Deno.test({
  name: "under channels_redis a room Channels cannot name is refused with the reason, " +
    "at the socket and on the room's page",
  ignore: !redisAvailable,
  fn: async () => {
    await using site = await siteOnChannelsRedis();
    const lines: string[] = [];
    log.setLevel("info");
    log.setSink((line: string, _level: LogLevel) => lines.push(line));
    try {
      // 86 characters: `chat_<room>` fits Channels' limit, its presence group does not.
      for (const room of ["café", "two%20words", "r".repeat(95), "r".repeat(86)]) {
        const url = `http://127.0.0.1/ws/chat/${room}/`;
        const response = await site.app.handle(new Request(url, { headers: UPGRADE }));
        assertEquals(response.status, 403, room);
        assertMatch(await response.text(), /cannot be shared with Django Channels/);
        const page = await site.app.handle(new Request(`http://127.0.0.1/chat/${room}/`));
        assertEquals(page.status, 404);
        assertMatch(await page.text(), /cannot be shared with Django Channels/);
      }
    } finally {
      log.setSink(null);
      log.setLevel("silent");
    }
    const rejects = lines.filter((line) => line.includes("REJECT /ws/chat/"));
    assertEquals(rejects.length, 4, lines.join("\n"));
    assert(rejects.every((line) => line.includes("cannot be shared with Django Channels")));
    // A room Channels can name is accepted, in the tutorial's group, up to 85 characters.
    for (const room of ["room-1.b_C", "r".repeat(85)]) {
      const member = await site.join(room);
      member.sendJson({ message: "hi" });
      assertEquals((await member.receiveJson()).message, "hi");
    }
  },
});

Deno.test({
  name: "under channels_redis the chat's messages go to chat_<room> as Channels' event shape",
  ignore: !redisAvailable,
  fn: async () => {
    await using site = await siteOnChannelsRedis();
    const events: Record<string, unknown>[] = [];
    const channel = site.app.services.layer.newChannel((event) => events.push(event) > 0);
    await site.app.services.layer.groupAdd("chat_lobby", channel);
    const member = await site.join("lobby");
    member.sendJson({ message: "shaped like Channels" });
    await member.receiveJson();
    assertEquals(events.length, 1);
    const [event] = events;
    assertEquals([event.type, event.message, event.room], [
      "chat.message",
      "shaped like Channels",
      "lobby",
    ]);
    // `chat_message`, the handler-name form, is a chat message too.
    await site.app.services.layer.groupSend("chat_lobby", {
      type: "chat_message",
      message: "underscored",
    });
    assertEquals((await member.receiveJson()).message, "underscored");
  },
});

Deno.test({
  name: "under channels_redis /roll is answered to the room through the dice worker",
  ignore: !redisAvailable,
  fn: async () => {
    await using site = await siteOnChannelsRedis();
    const workers = await runChannelWorkers(
      siteWorkers(site.app.services.config),
      site.app.services,
    );
    try {
      const member = await site.join("lobby");
      member.sendJson({ message: "/roll 2d6" });
      const answer = await member.receiveJson(WAIT_MS);
      assertEquals([answer.author, answer.room], ["Dice", "lobby"]);
    } finally {
      await workers.close();
    }
  },
});

Deno.test({
  name: "under channels_redis a /roll with no worker running is said to wait for one, and does",
  ignore: !redisAvailable,
  fn: async () => {
    await using site = await siteOnChannelsRedis();
    const member = await site.join("lobby");
    // The command is queued as channels_redis queues it: a worker that starts in time takes it,
    // so the sender must not be told it failed (a retry would roll twice).
    member.sendJson({ message: "/roll 2d6", ref: "early" });
    assertEquals(await member.receiveJson(WAIT_MS), {
      type: "error",
      error: "No dice worker is running now: the command waits for one",
      message: "No dice worker is running now: the command waits for one",
      ref: "early",
      unconfirmed: true, // so the client shows it may yet run, and does not send it again
    });
    const workers = await runChannelWorkers(
      siteWorkers(site.app.services.config),
      site.app.services,
    );
    try {
      const answer = await member.receiveJson(WAIT_MS);
      assertEquals(answer.author, "Dice");
      assert(await member.receiveNothing(200), "the queued roll was answered twice");
    } finally {
      await workers.close();
    }
  },
});
