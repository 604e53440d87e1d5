/** The chat's delivery protocol for messages from outside: /_send/, Django-style events. */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { Communicator } from "../../testing.ts";
import { createTestApp } from "../_support/test_app.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";
import { chatConsumer } from "../../consumers/chat.ts";
import { DenoKvStore } from "../../storage/deno_kv_store.ts";
import {
  type GroupStreams,
  InMemoryLayer,
  type LayerEvent,
  MemoryStreams,
  type StreamEvent,
} from "../../mod.ts";
import { GENEROUS, join, ROOM_ROUTE } from "./_chat_delivery_support.ts";

Deno.test("a message sent through /_send/ gets an offset and is recovered", async () => {
  await using app = await createTestApp({ ...GENEROUS, sendToken: "t0ken" });
  const reader = await join(app, "lobby", "?stream=1");
  const { epoch } = await reader.receiveJson();
  await reader.disconnect();
  const response = await app.handle(
    new Request("http://localhost/_send/", {
      method: "POST",
      headers: { authorization: "Bearer t0ken" },
      body: JSON.stringify({ group: "chat.lobby", event: { type: "chat.message", message: "hi" } }),
    }),
    { remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 } } as Deno.ServeHandlerInfo,
  );
  const answer = await response.json();
  assertEquals([response.status, answer.offset, answer.epoch], [200, 1, epoch]);
  const back = await join(app, "lobby", `?epoch=${epoch}&since=0`);
  assertEquals((await back.receiveJson()).complete, true);
  const frame = await back.receiveJson();
  assertEquals([frame.message, frame.author, frame.offset, frame.recovered], [
    "hi",
    "Server",
    1,
    true,
  ]);
});

Deno.test("an author from outside over 150 characters is cut between characters, not inside one", async () => {
  await using app = await createTestApp({ ...GENEROUS, sendToken: "t0ken" });
  const reader = await join(app, "lobby");
  const response = await app.handle(
    new Request("http://localhost/_send/", {
      method: "POST",
      headers: { authorization: "Bearer t0ken" },
      body: JSON.stringify({
        group: "chat.lobby",
        event: { type: "chat.message", message: "hi", author: "a".repeat(149) + "😀😀" },
      }),
    }),
    { remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 } } as Deno.ServeHandlerInfo,
  );
  assertEquals(response.status, 200);
  const author = String((await reader.receiveJson()).author);
  assertEquals([author, author.isWellFormed()], ["a".repeat(149) + "😀", true]);
});

Deno.test("a Django-style chat_message with its author at the top level is stored and framed as chat.message", async () => {
  await using app = await createTestApp({ ...GENEROUS, sendToken: "t0ken" });
  const reader = await join(app, "lobby", "?stream=1");
  const { epoch } = await reader.receiveJson();
  const send = async (event: Record<string, unknown>) => {
    const response = await app.handle(
      new Request("http://localhost/_send/", {
        method: "POST",
        headers: { authorization: "Bearer t0ken" },
        body: JSON.stringify({ group: "chat.lobby", event }),
      }),
      { remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 } } as Deno.ServeHandlerInfo,
    );
    return [response.status, await response.json()];
  };
  const [status, answer] = await send({ type: "chat_message", message: "hi", author: "alice" });
  assertEquals([status, answer.offset, answer.epoch], [200, 1, epoch]);
  const live = await reader.receiveJson();
  assertEquals([live.type, live.message, live.author, live.offset], [
    "chat.message",
    "hi",
    "alice",
    1,
  ]);
  // Complete but typed Channels' way: still framed as this server's type.
  const complete = {
    message: "yo",
    author: "bob",
    id: "x1",
    room: "lobby",
    time: "2026-01-01T00:00:00Z",
  };
  await app.services.layer.groupSend("chat.lobby", { type: "chat_message", ...complete });
  assertEquals((await reader.receiveJson()).type, "chat.message");
  const [tooLong, refusal] = await send({ type: "chat_message", message: "x".repeat(10_001) });
  assertEquals(tooLong, 400);
  assertMatch(refusal.error, /10001 characters, over the limit of 10000/);
  await reader.disconnect();
});

// A Django page sends its empty input too: refused from every other sender, it must not show
// as an empty bubble without an offset, gone on the next reload.
Deno.test("a blank chat message from outside the streams shows nothing, and says why in the log", async () => {
  using captured = new CapturedLog();
  await using app = await createTestApp(GENEROUS);
  log.setLevel("warn");
  const reader = await join(app, "lobby", "?stream=1");
  await reader.receiveJson(); // its position
  for (const blank of ["", "   "]) {
    await app.services.layer.groupSend("chat.lobby", { type: "chat_message", message: blank });
  }
  await app.services.layer.groupSend("chat.lobby", { type: "chat_message", message: "after" });
  assertEquals((await reader.receiveJson()).message, "after");
  await captured.waitFor(/Ignored a "chat_message" event to "lobby": its text is empty/);
  await reader.disconnect();
});

Deno.test("a Django message one process could not keep and another kept is shown with one id", async () => {
  await using app = await createTestApp(GENEROUS);
  // The shared stream, as Redis is: what is kept in it reaches no socket by itself.
  const store = await DenoKvStore.open(":memory:");
  const shared = new MemoryStreams(new InMemoryLayer(), store, { writeDelayMs: 0 });
  // As channels_redis' copies: one identity per send, the same in every process.
  const identities = new WeakMap<object, string>();
  let sends = 0;
  const foreignIdOf = (received: LayerEvent) => {
    if (!identities.has(received)) identities.set(received, `1765000000.${++sends}:h`);
    return identities.get(received);
  };
  const processStreams = (keeps: boolean): GroupStreams => ({
    // A publish reaches every process's sockets, with its offset (the Redis PUBLISH).
    publish: async (group, event, options) => {
      const published = await shared.publish(group, event, options);
      const { offset, epoch } = published;
      await app.services.layer.groupSend(group, { ...event, offset, epoch });
      return published;
    },
    since: (group, position, options) => shared.since(group, position, options),
    latest: (group, count) => shared.latest(group, count),
    close: () => Promise.resolve(),
    foreignIdOf,
    keepForeign: async (group, _received, kept) => {
      if (!keeps) throw new Error("this process's Redis connection is cut");
      const published = await shared.publish(group, kept);
      return { ...kept, offset: published.offset, epoch: published.epoch } as StreamEvent;
    },
  });
  const socketOn = (keeps: boolean) =>
    new Communicator(
      { consumer: chatConsumer(processStreams(keeps)), services: app.services, route: ROOM_ROUTE },
      "/ws/chat/lobby/?stream=1",
    );
  const [onA, onB] = [socketOn(false), socketOn(true)];
  for (const comm of [onA, onB]) {
    assert((await comm.connect()).accepted);
    assertEquals((await comm.receiveJson()).type, "recovered");
  }
  // Django's group_send reaches both processes' sockets; only B keeps it.
  await app.services.layer.groupSend("chat.lobby", {
    type: "chat_message",
    message: "from django",
  });
  const loose = await onA.receiveJson();
  const kept = await onB.receiveJson();
  assertEquals([loose.message, loose.offset], ["from django", undefined]);
  assertEquals([kept.message, kept.offset], ["from django", 1]);
  assertEquals(kept.id, loose.id, "the kept copy and the one sent as it came differ");
  // The next message makes A read the gap: the kept copy comes too, under the same id.
  onB.sendJson({ message: "next" });
  const again = await onA.receiveJson();
  assertEquals([again.message, again.offset, again.id], ["from django", 1, loose.id]);
  assertEquals((await onA.receiveJson()).message, "next");
  for (const comm of [onA, onB]) await comm.disconnect();
  await shared.close();
  store.close();
});
