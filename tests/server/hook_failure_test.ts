/**
 * A consumer bug over a real socket: the route table is fixed, so the test serves a
 * throwing consumer through `websocketHandler` itself, with the real `Deno.upgradeWebSocket`.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { ProtocolError } from "../../server/close_codes.ts";
import type { Consumer } from "../../server/consumer.ts";
import { serveConsumer } from "../_support/serve_consumer.ts";
import { handshakeStatus, TestSocket } from "../_support/socket.ts";
import { CapturedLog } from "../_support/captured_log.ts";

const buggy: Consumer = (conn) => ({
  connect: () => conn.groupAdd("buggy"),
  receive(text) {
    if (text === "crash") throw new Error("A bug in the consumer");
    return conn.groupSend("buggy", { type: "said", text }).then(() => {});
  },
  events: { said: (event) => conn.send(String(event.text)) },
});

Deno.test("a hook that throws closes only its own socket with 1011; the server goes on", async () => {
  using captured = new CapturedLog();
  await using served = await serveConsumer(buggy, "/ws/buggy/", { logLevel: "error" });
  const url = served.url;
  const [crashing, other] = [await TestSocket.open(url), await TestSocket.open(url)];
  crashing.send("crash");
  assertEquals((await crashing.closed).code, 1011);
  // Which client met the bug, and the bug itself, in one line.
  await captured.waitFor(
    /Consumer failed on \/ws\/buggy\/ \[127\.0\.0\.1:\d+\]; closing with 1011.*A bug in the consumer/s,
  );
  other.send("still here");
  assertEquals(await other.next(), "still here");
  const late = await TestSocket.open(url);
  late.send("new sockets work too");
  assertEquals(await other.next(), "new sockets work too");
  assertEquals(await late.next(), "new sockets work too");
  await other.close();
  await late.close();
});

// The `await` forgotten: a group name the client chose (too long) makes `groupAdd` reject with
// nobody to see it. Deno would end the process on that unhandled rejection.
const unawaited: Consumer = (conn) => ({
  receive(text) {
    if (text.startsWith("join twice ")) {
      // Two promises of one failing call, neither handled: each is an unhandled rejection.
      const joining = conn.groupAdd(text.slice(11));
      joining.then(() => conn.send("joined"));
      joining.then(() => conn.send("joined again"));
    } else if (text.startsWith("join ")) conn.groupAdd(text.slice(5));
    else if (text === "send") conn.groupSend("room", { type: "x", at: 1n });
    else conn.send(`echo ${text}`);
  },
});

Deno.test("a failing call nobody awaited fails its own socket (1011), not the server", async () => {
  using captured = new CapturedLog();
  await using served = await serveConsumer(unawaited, "/ws/unawaited/", { logLevel: "warn" });
  const [joiner, twice, sender, other] = await Promise.all(
    [1, 2, 3, 4].map(() => TestSocket.open(served.url)),
  );
  joiner.send(`join ${"a".repeat(250)}`);
  assertEquals((await joiner.closed).code, 1011);
  twice.send(`join twice ${"b".repeat(250)}`);
  assertEquals((await twice.closed).code, 1011);
  sender.send("send");
  assertEquals((await sender.closed).code, 1011);
  await captured.waitFor(/WARN conn\.groupAdd\(\) failed on \/ws\/unawaited\/ .*a missing await/);
  await captured.waitFor(/WARN conn\.groupSend\(\) failed on \/ws\/unawaited\/ .*a missing await/);
  await captured.waitFor(/Consumer failed on \/ws\/unawaited\/.*200 characters/s);
  other.send("still here");
  assertEquals(await other.next(), "echo still here");
  await other.close();
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
  await using served = await serveConsumer(closing, "/ws/closing/");
  const url = served.url;
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
});

Deno.test("ProtocolError refuses a close code no close frame may carry", () => {
  for (const code of [999, 1004, 1005, 1006, 1015, 2999, 5000, 4000.5]) {
    assertThrows(() => new ProtocolError("no", code), RangeError, `Close code ${code}`);
  }
  for (const code of [1000, 1003, 1007, 1014, 3000, 4999]) {
    assertEquals(new ProtocolError("yes", code).code, code);
  }
});

const greetings = new Map([["en", "hello"]]);
const greeter: Consumer = (conn) => ({
  // A greeting for a language it does not know is `undefined`: a bug in the consumer.
  connect: () => conn.sendJson(greetings.get(conn.scope.query.get("lang") ?? "en")),
  receive(text) {
    if (text === "function") conn.sendJson(() => {});
    else if (text === "number") conn.send(42 as unknown as string);
    else conn.sendJson({ echo: text });
  },
});

Deno.test("a value with no JSON text, sent before or after the socket opens, is the consumer's bug alone", async () => {
  using captured = new CapturedLog();
  await using served = await serveConsumer(greeter, "/ws/greet/", { logLevel: "error" });
  const url = served.url;
  const other = await TestSocket.open(url);
  assertEquals(await other.nextJson(), "hello");
  // From `connect`, before the socket opens: the handshake fails, the server goes on.
  assertEquals(await handshakeStatus(`${url}?lang=fr`), 500);
  await captured.waitFor(/sendJson cannot send undefined: it has no JSON text/);
  for (const bad of ["function", "number"]) {
    const socket = await TestSocket.open(url);
    await socket.nextJson();
    socket.send(bad);
    assertEquals((await socket.closed).code, 1011);
  }
  await captured.waitFor(/sendJson cannot send a function: it has no JSON text/);
  await captured.waitFor(/send takes a string or a Uint8Array, not a number/);
  other.send("still here");
  assertEquals(await other.nextJson(), { echo: "still here" });
  await other.close();
});

const failingConnect: Consumer = (conn) => ({
  connect() {
    if (conn.scope.query.get("mode") === "no") return false;
    throw new Error("A bug in connect");
  },
});

Deno.test("a connect hook that throws is a 500 with its own reason; one that says no is a 403", async () => {
  using captured = new CapturedLog();
  await using served = await serveConsumer(failingConnect, "/ws/failing/", { logLevel: "info" });
  const url = served.url;
  assertEquals(await handshakeStatus(url), 500);
  await captured.waitFor(
    /ERROR Consumer connect failed for \/ws\/failing\/: Error: A bug in connect/,
  );
  await captured.waitFor(
    /WebSocket REJECT \/ws\/failing\/ .* \(The consumer's connect hook failed/,
  );
  assertEquals(await handshakeStatus(`${url}?mode=no`), 403);
  await captured.waitFor(
    /WebSocket REJECT \/ws\/failing\/ .* \(Refused by the consumer: its connect/,
  );
});
