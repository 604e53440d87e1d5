/**
 * A consumer bug over a real socket: the route table is fixed, so the test serves a
 * throwing consumer through `websocketHandler` itself, with the real `Deno.upgradeWebSocket`.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { ProtocolError } from "../../server/close_codes.ts";
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

const closing: Consumer = (conn) => ({
  receive(text) {
    // A long reason in a script of two bytes a character, as an app's own language may need.
    if (text === "refuse") throw new ProtocolError("Доступ запрещён. ".repeat(10), 4003);
    if (text === "bad code") conn.close(1005, "reserved");
    else conn.send(`echo ${text}`);
  },
});

Deno.test("a close reason over 123 bytes is cut, and a code no frame may carry is a bug (1011)", async () => {
  await using app = await createTestApp();
  const services = app.services;
  const live = new LiveConnections();
  const handler = websocketHandler(closing, { live });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request, info) => {
    const url = new URL(request.url);
    return handler(request, { url, params: {}, client: formatAddr(info.remoteAddr), services });
  });
  const url = `ws://127.0.0.1:${server.addr.port}/ws/closing/`;
  try {
    const [refused, badCode, other] = await Promise.all([1, 2, 3].map(() => TestSocket.open(url)));
    refused.send("refuse");
    const { code, reason } = await refused.closed;
    assertEquals(code, 4003);
    assert(new TextEncoder().encode(reason).length <= 123, `${reason.length} characters`);
    assert("Доступ запрещён. ".repeat(10).startsWith(reason) && reason.length > 50, reason);
    badCode.send("bad code");
    assertEquals((await badCode.closed).code, 1011);
    other.send("still here");
    assertEquals(await other.next(), "echo still here");
    await other.close();
  } finally {
    await live.closeAll(1001, "Test over");
    await server.shutdown();
  }
});

Deno.test("ProtocolError refuses a close code no close frame may carry", () => {
  for (const code of [999, 1004, 1005, 1006, 1015, 2999, 5000, 4000.5]) {
    assertThrows(() => new ProtocolError("no", code), RangeError, `Close code ${code}`);
  }
  for (const code of [1000, 1003, 1007, 1014, 3000, 4999]) {
    assertEquals(new ProtocolError("yes", code).code, code);
  }
});
