/**
 * A close asked for before the socket opened (after `connect` accepted it, or while the drain
 * closes every socket during a handshake): Deno ignores a close of a server socket that has
 * not opened, and opens it anyway without a close frame, so the close must wait for the open.
 */
import { assertEquals } from "@std/assert";
import type { Consumer } from "../../server/consumer.ts";
import { serveConsumer } from "../_support/serve_consumer.ts";

Deno.test("a close asked for before the socket opened reaches the client once it opens", async () => {
  const consumer: Consumer = (conn) => ({
    connect() {
      // A macrotask after `connect` accepted: the 101 is on its way, the socket not open yet.
      setTimeout(() => conn.close(4000, "Closed before it opened"), 0);
      conn.sendJson({ hello: "first" }); // sent before the close: it goes first
    },
  });
  await using server = await serveConsumer(consumer, "/ws/early/");
  const client = new WebSocket(server.url);
  const frames: unknown[] = [];
  client.onmessage = (event) => frames.push(JSON.parse(event.data));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const closed = await Promise.race([
    new Promise<{ code: number; reason: string }>((resolve) =>
      client.onclose = (event) => resolve({ code: event.code, reason: event.reason })
    ),
    new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), 5_000)),
  ]);
  clearTimeout(timer);
  if (closed === null) client.close();
  assertEquals(closed, { code: 4000, reason: "Closed before it opened" });
  assertEquals(frames, [{ hello: "first" }]);
});
