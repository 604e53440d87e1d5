/**
 * `connect` is a hook like the others: what the consumer does in it decides the handshake, and
 * what arrives while it runs waits for it, as in Django Channels.
 */
import { assertEquals } from "@std/assert";
import type { Consumer } from "../../server/consumer.ts";
import { OPEN_TIMEOUT_MS } from "../../server/_connection_constants.ts";
import { Communicator, createTestServices } from "../../testing.ts";

Deno.test("close() in connect refuses the handshake with 403, as Channels' self.close() does", async () => {
  await using services = await createTestServices();
  const disconnects: number[] = [];
  const guarded: Consumer = (conn) => ({
    connect() {
      if (conn.scope.query.get("key") !== "open sesame") conn.close(4003, "Wrong key");
    },
    disconnect(code) {
      disconnects.push(code);
    },
  });
  const refused = new Communicator({ consumer: guarded, services }, "/ws/guarded/?key=no");
  // The code and reason, as Channels' `connect()` gives `(False, 4003)`.
  assertEquals(await refused.connect(), {
    accepted: false,
    status: 403,
    code: 4003,
    reason: "Refused by the consumer: it closed the socket in connect (Wrong key)",
  });
  // `connect` finished, so `disconnect` undoes it, as Channels' websocket_disconnect does.
  assertEquals(disconnects, [4003]);
  const accepted = new Communicator(
    { consumer: guarded, services },
    "/ws/guarded/?key=open%20sesame",
  );
  assertEquals(await accepted.connect(), { accepted: true, status: 101 });
  await accepted.disconnect();
  assertEquals(disconnects, [4003, 1000]);
});

Deno.test("a close that comes after connect, before the socket opens, keeps its code and reason", async () => {
  await using services = await createTestServices();
  const consumer: Consumer = (conn) => ({
    events: { kick: () => conn.close(4000, "You were kicked") },
    async connect() {
      await conn.groupAdd("kickable");
      // Queued while `connect` runs, handled right after it, before the socket is attached.
      await services.layer.groupSend("kickable", { type: "kick" });
    },
  });
  const comm = new Communicator({ consumer, services }, "/ws/kick/");
  assertEquals((await comm.connect()).status, 101);
  assertEquals(await comm.closed, { code: 4000, reason: "You were kicked" });
});

Deno.test("events that arrive while connect awaits are handled after it, in order", async () => {
  await using services = await createTestServices();
  const steps: string[] = [];
  const { promise: joined, resolve: onJoined } = Promise.withResolvers<void>();
  const { promise: readDone, resolve: finishRead } = Promise.withResolvers<void>();
  const consumer: Consumer = (conn) => ({
    async connect() {
      steps.push("connect: start");
      await conn.groupAdd("news");
      onJoined();
      await readDone; // a slow read of history, say
      conn.sendJson({ kind: "history" });
      steps.push("connect: end");
    },
    events: {
      "news.item"(event) {
        steps.push(`event ${event.n}`);
        conn.sendJson({ kind: "live", n: event.n });
      },
    },
  });
  const comm = new Communicator({ consumer, services }, "/ws/news/");
  const connecting = comm.connect();
  await joined;
  await services.layer.groupSend("news", { type: "news.item", n: 1 });
  await services.layer.groupSend("news", { type: "news.item", n: 2 });
  finishRead();
  assertEquals((await connecting).accepted, true);
  assertEquals(await comm.receiveJson(), { kind: "history" });
  assertEquals(await comm.receiveJson(), { kind: "live", n: 1 });
  assertEquals(await comm.receiveJson(), { kind: "live", n: 2 });
  assertEquals(steps, ["connect: start", "connect: end", "event 1", "event 2"]);
  await comm.disconnect();
});

Deno.test("an upgraded socket that never opens is given up: its disconnect runs", async () => {
  // Deno gives a client that left during `connect` a socket that never opens nor closes.
  await using services = await createTestServices();
  const { promise: disconnected, resolve: onDisconnect } = Promise.withResolvers<number>();
  const consumer: Consumer = () => ({ disconnect: (code) => onDisconnect(code) });
  const comm = new Communicator({ consumer, services }, "/ws/left/");
  comm.socket.open = () => {}; // the client is gone: the open never comes
  assertEquals((await comm.connect()).status, 101);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const never = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("disconnect never ran")), OPEN_TIMEOUT_MS * 3);
  });
  const code = await Promise.race([disconnected, never]).finally(() => clearTimeout(timer));
  assertEquals(code, 1006);
});
