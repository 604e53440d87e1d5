/**
 * A consumer bug over a real socket: the route table is fixed, so the test serves a
 * throwing consumer through `websocketHandler` itself, with the real `Deno.upgradeWebSocket`.
 */
import { assertEquals } from "@std/assert";
import type { Consumer } from "../../server/consumer.ts";
import { LiveConnections, websocketHandler } from "../../server/websocket_route.ts";
import { createTestApp } from "../_support/test_app.ts";
import { formatAddr } from "../../telemetry/log.ts";
import { TestSocket } from "../_support/socket.ts";

const buggy: Consumer = (conn) => ({
  connect: () => conn.groupAdd("buggy"),
  receive(text) {
    if (text === "crash") throw new Error("A bug in the consumer");
    return conn.groupSend("buggy", { type: "said", text }).then(() => {});
  },
  events: { said: (event) => conn.send(String(event.text)) },
});

Deno.test("a hook that throws closes only its own socket with 1011; the server goes on", async () => {
  // The app is only a source of services; the socket below is a real one.
  await using app = await createTestApp();
  const services = app.services;
  const live = new LiveConnections();
  const handler = websocketHandler(buggy, { live });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request, info) => {
    const url = new URL(request.url);
    return handler(request, { url, params: {}, client: formatAddr(info.remoteAddr), services });
  });
  const url = `ws://127.0.0.1:${server.addr.port}/ws/buggy/`;
  try {
    const [crashing, other] = [await TestSocket.open(url), await TestSocket.open(url)];
    crashing.send("crash");
    assertEquals((await crashing.closed).code, 1011);
    other.send("still here");
    assertEquals(await other.next(), "still here");
    const late = await TestSocket.open(url);
    late.send("new sockets work too");
    assertEquals(await other.next(), "new sockets work too");
    assertEquals(await late.next(), "new sockets work too");
    await other.close();
    await late.close();
  } finally {
    await live.closeAll(1001, "Test over");
    await server.shutdown();
  }
});
