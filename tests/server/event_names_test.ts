/** A layer event reaches its handler by its type, or by the name Channels gives its method. */
import { assertEquals, assertStringIncludes } from "@std/assert";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";
import { createApp, socket } from "../../mod.ts";
import { Communicator, createTestServices, testUpgrade } from "../../testing.ts";

Deno.test("an event typed the Channels way or the dotted way reaches one handler, as in Channels", async () => {
  await using services = await createTestServices();
  const seen = (conn: { sendJson(value: unknown): void }, key: string) => (event: object) =>
    conn.sendJson({ key, event });
  const app = createApp({
    routes: [socket("/ws/notes/", (conn) => ({
      connect: () => conn.groupAdd("notes"),
      events: {
        // A port from Channels: Django's code sends both forms to `notify_user`.
        "notify.user": seen(conn, "notify.user"),
        chat_message: seen(conn, "chat_message"),
        // Both forms with a handler each: each takes its own.
        "own.way": seen(conn, "own.way"),
        own_way: seen(conn, "own_way"),
      },
    }))],
    services,
    upgrade: testUpgrade,
  });
  const comm = new Communicator(app, "/ws/notes/");
  await comm.connect();
  for (const type of ["notify_user", "notify.user", "chat.message", "own_way", "own.way"]) {
    await services.layer.groupSend("notes", { type });
  }
  const keys = [];
  for (let i = 0; i < 5; i++) keys.push(((await comm.receiveJson()) as { key: string }).key);
  assertEquals(keys, ["notify.user", "notify.user", "chat_message", "own_way", "own.way"]);
  await comm.disconnect();
  await app.close();
});

Deno.test("two handler keys that are one Channels name are said once, and the first takes the event", async () => {
  await using services = await createTestServices();
  using captured = new CapturedLog();
  log.setLevel("warn");
  using _silent = { [Symbol.dispose]: () => log.setLevel("silent") };
  const app = createApp({
    routes: [socket("/ws/notes/", (conn) => ({
      connect: () => conn.groupAdd("notes"),
      events: {
        "a.b_c": () => conn.sendJson({ key: "a.b_c" }),
        "a_b.c": () => conn.sendJson({ key: "a_b.c" }),
      },
    }))],
    services,
    upgrade: testUpgrade,
  });
  const comm = new Communicator(app, "/ws/notes/");
  await comm.connect();
  await services.layer.groupSend("notes", { type: "a.b.c" });
  assertEquals(await comm.receiveJson(), { key: "a.b_c" });
  const line = await captured.waitFor(/are one handler name in Channels/);
  assertStringIncludes(line, 'Events "a.b_c" and "a_b.c" are one handler name');
  await comm.disconnect();
  await app.close();
});
