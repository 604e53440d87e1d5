/**
 * A socket's scope reads the same in every hook as in `connect`, as Channels' `scope` does: on a
 * real server, Deno makes a request's headers unreadable once the 101 has answered it.
 */
import { assertEquals } from "@std/assert";
import type { Consumer } from "../../server/consumer.ts";
import { serveConsumer } from "../_support/serve_consumer.ts";

// What a consumer reads of its scope, as one JSON-able object.
const readScope = (scope: Parameters<Consumer>[0]["scope"]) => ({
  probe: scope.headers.get("x-probe"),
  cookies: { ...scope.cookies },
  subprotocols: scope.subprotocols,
});

Deno.test("a consumer reads its scope's headers, cookies and subprotocols after connect as in it", async () => {
  const seen: Record<string, unknown> = {};
  const probe: Consumer = (conn) => ({
    connect() {
      // Nothing read here but the offer: cookies are parsed when first read.
      conn.acceptSubprotocol("probe.v1");
      seen.connect = conn.scope.headers.get("x-probe");
    },
    receive() {
      seen.receive = readScope(conn.scope);
      conn.send("read");
    },
    disconnect() {
      seen.disconnect = readScope(conn.scope);
    },
  });
  await using server = await serveConsumer(probe, "/ws/probe/");
  // Deno's WebSocket client sends no cookies of its own: they are headers here.
  const client = new WebSocketStream(server.url, {
    protocols: ["probe.v1", "other"],
    headers: { "x-probe": "probe/1", cookie: "theme=dark" },
  });
  const { readable, writable } = await client.opened;
  const writer = writable.getWriter();
  await writer.write("hello");
  const reader = readable.getReader();
  assertEquals((await reader.read()).value, "read");
  client.close();
  await client.closed;
  const expected = {
    probe: "probe/1",
    cookies: { theme: "dark" },
    subprotocols: ["probe.v1", "other"],
  };
  await server[Symbol.asyncDispose]();
  assertEquals(seen, { connect: "probe/1", receive: expected, disconnect: expected });
});
