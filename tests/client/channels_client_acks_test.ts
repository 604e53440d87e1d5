/** The stream client's sends with ack: offsets, refusals, timeouts, probes, closes. */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { SendError } from "../../client/channels_client.js";
import { drop, type FakeSocket, open } from "./_fake_socket.ts";
import { feed, start } from "./_channels_client_support.ts";

Deno.test("a send with ack resolves with its offset when the server stored it", async () => {
  const { stream, sockets } = start();
  const socket = await sockets.next();
  open(socket);
  const first = stream.send({ message: "one" }, { ack: true });
  const second = stream.send({ message: "two" }, { ack: true });
  const [a, b] = socket.sent.map((data) => JSON.parse(data));
  assertEquals(a.message, "one");
  assertEquals(a.ack, true);
  assert(a.ref !== b.ref, "every send has its own ref");
  // Answers may come in any order; each finds its own send.
  feed(socket, { type: "ack", ref: b.ref, offset: 8, epoch: "e1" });
  feed(socket, { type: "ack", ref: a.ref, offset: 7, epoch: "e1" });
  assertEquals(await first, { ref: a.ref, offset: 7, epoch: "e1" });
  assertEquals(await second, { ref: b.ref, offset: 8, epoch: "e1" });
});

Deno.test("a refused send rejects with the server's error text, others are not touched", async () => {
  const { stream, sockets, frames } = start();
  const socket = await sockets.next();
  open(socket);
  const refused = stream.send({ message: "x".repeat(20) }, { ack: true });
  const kept = stream.send({ message: "fine" }, { ack: true });
  const [a, b] = socket.sent.map((data) => JSON.parse(data));
  feed(socket, { type: "error", error: "Message is too long", ref: a.ref });
  feed(socket, { type: "error", error: "Someone else's", ref: "r999" });
  const error = await assertRejects(() => refused, SendError, "Message is too long");
  assertEquals([error.kind, error.ref, error.maybeStored], ["refused", a.ref, false]);
  // An error for no pending send is the app's to show.
  assertEquals(frames, [{ type: "error", error: "Someone else's", ref: "r999" }]);
  feed(socket, { type: "ack", ref: b.ref, offset: 1, epoch: "e1" });
  assertEquals((await kept).offset, 1);
});

Deno.test("a send the server could not confirm may be stored: it is not taken for refused", async () => {
  const { stream, sockets } = start();
  const socket = await sockets.next();
  open(socket);
  const sent = stream.send({ message: "in doubt" }, { ack: true });
  const { ref } = JSON.parse(socket.sent[0]);
  feed(socket, { type: "error", error: "Message not confirmed", ref, unconfirmed: true });
  const error = await assertRejects(() => sent, SendError, "Message not confirmed");
  assertEquals([error.kind, error.maybeStored], ["unconfirmed", true]);
});

Deno.test("a send with ack that gets no answer rejects after ackTimeoutMs, unsure, and the console says why once", async () => {
  const warnings: string[] = [];
  const realWarn = console.warn;
  console.warn = (text: string) => void warnings.push(text);
  try {
    const url = "ws://chat.test/ws/notes/?token=SECRET";
    const { stream, sockets } = start(url, { ackTimeoutMs: 20 });
    const socket = await sockets.next();
    open(socket);
    const first = stream.send({ text: "one" }, { ack: true });
    const second = stream.send({ text: "two" }, { ack: true });
    // The connection is alive (something came since the sends): the consumer answers no ack.
    feed(socket, { type: "channels.pong" });
    for (const sent of [first, second]) {
      const error = await assertRejects(
        () => sent,
        SendError,
        "No answer from the server in 0.02 s",
      );
      assertEquals([error.kind, error.maybeStored], ["no-answer", true]);
    }
    assertEquals(warnings.length, 1, warnings.join("\n"));
    assert(warnings[0].includes("ackFor"), warnings[0]);
    // By its path alone: a query may hold a token, and a console may be shared.
    assert(warnings[0].includes("ws://chat.test/ws/notes/:"), warnings[0]);
    assert(!warnings[0].includes("SECRET"), warnings[0]);
    // A late ack finds no send waiting, and is not taken for a message.
    const { ref } = JSON.parse(socket.sent[0]);
    feed(socket, { type: "ack", ref, offset: 1, epoch: "e1" });
    assertEquals(stream.offset, 0);
    stream.close();
  } finally {
    console.warn = realWarn;
  }
});

const PING = '{"type":"channels.ping"}';

// Resolves when the client sends `frame` on `socket`.
function sentFrame(socket: FakeSocket, frame: string): Promise<void> {
  const send = socket.send.bind(socket);
  return new Promise((resolve) => {
    socket.send = (data: string) => {
      send(data);
      if (data === frame) resolve();
    };
  });
}

Deno.test("a send with ack on a connection gone silent is found lost by a ping at once, and rejects as disconnected", async () => {
  const warnings: string[] = [];
  const realWarn = console.warn;
  console.warn = (text: string) => void warnings.push(text);
  try {
    // A ping only after a minute of quiet: without the probe, the loss would go unseen.
    const heartbeat = { idleMs: 60_000, timeoutMs: 30 };
    const { stream, sockets, states } = start(undefined, { ackTimeoutMs: 20, heartbeat });
    const socket = await sockets.next();
    open(socket);
    const pinged = sentFrame(socket, PING);
    const sent = stream.send({ message: "into the void" }, { ack: true });
    await pinged;
    const error = await assertRejects(() => sent, SendError, "connection was lost");
    assertEquals([error.kind, error.maybeStored], ["disconnected", true]);
    assertEquals(socket.closedWith, 4000, "the silent socket was not given up");
    assert(states.some((state) => state.startsWith("reconnecting")), states.join("\n"));
    assertEquals(warnings, [], "a dead connection is no sign of a consumer that answers no ack");
    stream.close();
  } finally {
    console.warn = realWarn;
  }
});

Deno.test("a send with ack whose probe is answered rejects as no-answer at once, on a connection kept", async () => {
  // A minute for the ping's answer: the send must not wait for it once the answer came.
  const heartbeat = { idleMs: 60_000, timeoutMs: 60_000 };
  const { stream, sockets } = start(undefined, { ackTimeoutMs: 20, heartbeat });
  const socket = await sockets.next();
  open(socket);
  const pinged = sentFrame(socket, PING);
  const sent = stream.send({ message: "hi" }, { ack: true });
  await pinged;
  const answeredAt = performance.now();
  feed(socket, { type: "channels.pong" });
  const error = await assertRejects(() => sent, SendError, "No answer from the server");
  const waited = performance.now() - answeredAt;
  assert(waited < 5000, `rejected ${Math.round(waited)} ms after the ping's answer`);
  assertEquals(error.kind, "no-answer");
  assertEquals([socket.closedWith, stream.state], [null, "open"]);
  stream.close();
});

Deno.test("an ack that comes while its send's probe waits resolves the send", async () => {
  const heartbeat = { idleMs: 60_000, timeoutMs: 60_000 };
  const { stream, sockets } = start(undefined, { ackTimeoutMs: 20, heartbeat });
  const socket = await sockets.next();
  open(socket);
  const pinged = sentFrame(socket, PING);
  const sent = stream.send({ message: "slow" }, { ack: true });
  await pinged;
  const { ref } = JSON.parse(socket.sent[0]);
  feed(socket, { type: "ack", ref, offset: 7, epoch: "e1" });
  assertEquals((await sent).offset, 7);
  stream.close();
});

Deno.test("a frame the server closed the socket for as too big is refused, not taken for maybe stored", async () => {
  const { stream, sockets } = start();
  const socket = await sockets.next();
  open(socket);
  const small = stream.send({ message: "small" }, { ack: true });
  const huge = stream.send({ message: "x".repeat(70_000) }, { ack: true });
  drop(socket, 1009, "Message too big: 70036 characters, the limit is 65536 bytes");
  const refused = await assertRejects(() => huge, SendError, "Message too big");
  assertEquals([refused.kind, refused.maybeStored], ["refused", false]);
  // The one before it may have been stored before the close.
  const lost = await assertRejects(() => small, SendError, "connection was lost");
  assertEquals([lost.kind, lost.maybeStored], ["disconnected", true]);
  stream.close();
});

Deno.test("a frame under the limit in characters but over it in bytes is refused when the server says so", async () => {
  const { stream, sockets } = start();
  const socket = await sockets.next();
  open(socket);
  // 30,000 euro signs: 30,036 characters of JSON, 90,036 bytes in UTF-8.
  const euros = stream.send({ message: "\u20ac".repeat(30_000) }, { ack: true });
  const ascii = stream.send({ message: "x".repeat(30_000) }, { ack: true });
  drop(socket, 1009, "Message too big: 90036 bytes, the limit is 65536 bytes");
  const refused = await assertRejects(() => euros, SendError, "Message too big");
  assertEquals([refused.kind, refused.maybeStored], ["refused", false]);
  const lost = await assertRejects(() => ascii, SendError, "connection was lost");
  assertEquals([lost.kind, lost.maybeStored], ["disconnected", true]);
  stream.close();
});

Deno.test("an ackTimeoutMs no timer can keep is refused at once; Infinity waits for the connection", async () => {
  for (const ackTimeoutMs of [0, -1, NaN, 2 ** 31, "10" as unknown as number]) {
    assertThrows(() => start(undefined, { ackTimeoutMs }), TypeError, "ackTimeoutMs");
  }
  const { stream, sockets } = start(undefined, { ackTimeoutMs: Infinity });
  const socket = await sockets.next();
  open(socket);
  const sent = stream.send({ message: "hi" }, { ack: true });
  const { ref } = JSON.parse(socket.sent[0]);
  await new Promise((resolve) => setTimeout(resolve, 20));
  feed(socket, { type: "ack", ref, offset: 1, epoch: "e1" });
  assertEquals((await sent).offset, 1);
  stream.close();
});

Deno.test("a frame naming a pending send's ref that answers nothing leaves its wait running", async () => {
  const { stream, sockets } = start(undefined, { ackTimeoutMs: 20 });
  const socket = await sockets.next();
  open(socket);
  const sent = stream.send({ message: "hi" }, { ack: true });
  const { ref } = JSON.parse(socket.sent[0]);
  feed(socket, { type: "presence.diff", ref, joins: [] });
  const error = await assertRejects(() => sent, SendError, "No answer");
  assertEquals(error.kind, "no-answer");
  stream.close();
});

Deno.test("a 1009 of an earlier connection does not decide how close() fails a later send", async () => {
  const { stream, sockets } = start();
  const first = await sockets.next();
  open(first);
  const huge = stream.send({ message: "x".repeat(70_000) }, { ack: true });
  drop(first, 1009, "Message too big: 70036 characters, the limit is 65536 bytes");
  assertEquals((await assertRejects(() => huge, SendError)).kind, "refused");
  const second = await sockets.next();
  open(second);
  const again = stream.send({ message: "x".repeat(70_000) }, { ack: true });
  stream.close();
  assertEquals((await assertRejects(() => again, SendError)).kind, "closed");
});

Deno.test("once the server says it is closing the connection, nothing more is sent on it", async () => {
  const { stream, sockets, frames } = start();
  const first = await sockets.next();
  open(first);
  await stream.send({ message: "one" });
  feed(first, { type: "error", error: "Rate limit exceeded", closing: 1008 });
  const held = await assertRejects(() => stream.send({ message: "two" }), SendError, "closing");
  assertEquals([held.kind, held.maybeStored], ["not-connected", false]);
  assertEquals(first.sent.length, 1, "the second frame went out");
  assertEquals(frames.length, 1, "the app is shown the error");
  // A new connection sends again.
  drop(first, 1008);
  const second = await sockets.next();
  open(second);
  await stream.send({ message: "three" });
  assertEquals(second.sent.length, 1);
  stream.close();
});
