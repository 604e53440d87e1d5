import { assert, assertEquals, assertInstanceOf, assertRejects, assertThrows } from "@std/assert";
import {
  connectStream,
  ndjsonFrames,
  type Recovery,
  SendError,
  type StreamMessage,
  type StreamOptions,
} from "../../client/channels_client.js";
import { Backoff } from "../../client/backoff.js";
import { drop, type FakeSocket, fakeSockets, open } from "./_fake_socket.ts";

function feed(socket: FakeSocket, ...frames: Record<string, unknown>[]): void {
  for (const frame of frames) socket.onmessage?.({ data: JSON.stringify(frame) });
}

function chat(offset: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: "chat.message", message: `m${offset}`, offset, ...extra };
}

function query(socket: FakeSocket): Record<string, string> {
  return Object.fromEntries(new URL(socket.url).searchParams);
}

function start(url = "ws://chat.test/ws/chat/lobby/?presence=1", options: StreamOptions = {}) {
  const sockets = fakeSockets();
  const messages: string[] = [];
  const recoveries: Recovery[] = [];
  const frames: Record<string, unknown>[] = [];
  const states: string[] = [];
  const stream = connectStream(url, {
    WebSocket: sockets.WebSocket,
    window: new EventTarget(),
    backoff: new Backoff({ initialMs: 2, maxMs: 20, random: () => 1 }),
    onMessage: (message: StreamMessage) => messages.push(String(message.message)),
    onRecovered: (recovery) => recoveries.push(recovery),
    onFrame: (frame) => frames.push(frame),
    onStateChange: (state, text) => states.push(`${state}: ${text}`),
    ...options,
  });
  return { stream, sockets, messages, recoveries, frames, states };
}

Deno.test("a first connect asks for a fresh stream and keeps the URL's own parameters", async () => {
  const { sockets } = start("ws://chat.test/ws/chat/lobby/?presence=1", { batch: true });
  const socket = await sockets.next();
  assertEquals(new URL(socket.url).pathname, "/ws/chat/lobby/");
  assertEquals(query(socket), { presence: "1", stream: "1", batch: "1" });
});

Deno.test("an http URL becomes a WebSocket URL", async () => {
  const { sockets } = start("https://chat.test/ws/chat/caf%C3%A9/");
  const socket = await sockets.next();
  assertEquals(socket.url, "wss://chat.test/ws/chat/caf%C3%A9/?stream=1");
});

Deno.test("a reconnect resumes after the last message delivered, in the same epoch", async () => {
  const { stream, sockets, messages, recoveries } = start();
  const first = await sockets.next();
  open(first);
  feed(first, { type: "recovered", complete: true, fresh: true, epoch: "e1", offset: 2 });
  feed(first, chat(1, { history: true }), chat(2, { history: true }), chat(3));
  assertEquals(stream.offset, 3);
  drop(first);

  const second = await sockets.next();
  assertEquals(query(second), { presence: "1", epoch: "e1", since: "3" });
  open(second);
  feed(second, { type: "recovered", complete: true, epoch: "e1", offset: 5 });
  feed(second, chat(4, { recovered: true }), chat(5, { recovered: true }));
  assertEquals(messages, ["m1", "m2", "m3", "m4", "m5"]);
  assertEquals(recoveries.map((r) => [r.complete, r.fresh, r.offset]), [
    [true, true, 2],
    [true, false, 5],
  ]);
});

Deno.test("a message at or below the last delivered offset is dropped as a duplicate", async () => {
  const { sockets, messages } = start();
  const socket = await sockets.next();
  open(socket);
  feed(socket, { type: "recovered", complete: true, fresh: true, epoch: "e1", offset: 0 });
  feed(socket, chat(1), chat(2), chat(2), chat(1), chat(3));
  assertEquals(messages, ["m1", "m2", "m3"]);
});

Deno.test("a connection lost before its history arrived resumes where the history starts", async () => {
  const { sockets, messages } = start();
  const first = await sockets.next();
  open(first);
  feed(first, { type: "recovered", complete: true, fresh: true, epoch: "e1", offset: 120 });
  drop(first);
  // The history would have been 71..120: asking from 70 brings exactly those, nothing twice.
  const second = await sockets.next();
  assertEquals(query(second).since, "70");

  assertEquals(messages, []);
});

Deno.test("a connection lost during a history longer than historySize resumes after the last one shown", async () => {
  // The route keeps a history of 100 (StreamFollowingOptions.historySize); the client's is 50.
  const { sockets, messages } = start();
  const first = await sockets.next();
  open(first);
  feed(first, { type: "recovered", complete: true, fresh: true, epoch: "e1", offset: 200 });
  for (let offset = 101; offset <= 120; offset++) feed(first, chat(offset, { history: true }));
  drop(first);
  const second = await sockets.next();
  assertEquals(query(second).since, "120");
  open(second);
  feed(second, { type: "recovered", complete: true, epoch: "e1", offset: 200 });
  for (let offset = 121; offset <= 200; offset++) feed(second, chat(offset));
  assertEquals(messages, Array.from({ length: 100 }, (_, i) => `m${101 + i}`));
});

Deno.test("a room with fewer messages than its history resumes from its start", async () => {
  const { sockets } = start();
  const first = await sockets.next();
  open(first);
  feed(first, { type: "recovered", complete: true, fresh: true, epoch: "e1", offset: 3 });
  drop(first);
  assertEquals(query(await sockets.next()).since, "0");
});

Deno.test("an empty room's position is kept: what came while away is recovered", async () => {
  const { sockets } = start();
  const first = await sockets.next();
  open(first);
  feed(first, { type: "recovered", complete: true, fresh: true, epoch: "e1", offset: 0 });
  drop(first);
  assertEquals(query(await sockets.next()), { presence: "1", epoch: "e1", since: "0" });
});

Deno.test("an incomplete recovery is reported and the history comes again from the new epoch", async () => {
  const { sockets, messages, recoveries } = start();
  const first = await sockets.next();
  open(first);
  feed(first, { type: "recovered", complete: true, fresh: true, epoch: "e1", offset: 0 });
  feed(first, chat(1), chat(2), chat(3));
  drop(first);

  const second = await sockets.next();
  open(second);
  feed(second, {
    type: "recovered",
    complete: false,
    epoch: "e2",
    offset: 2,
    reason: "epoch changed",
  });
  // New epoch, offsets from 1 again: not duplicates.
  feed(second, chat(1, { history: true, message: "n1" }), chat(2, { message: "n2" }));
  assertEquals(messages, ["m1", "m2", "m3", "n1", "n2"]);
  assertEquals(recoveries[1], {
    complete: false,
    fresh: false,
    epoch: "e2",
    offset: 2,
    reason: "epoch changed",
  });
  drop(second);
  assertEquals(query(await sockets.next()), { presence: "1", epoch: "e2", since: "2" });
});

Deno.test("a history lost while the connection is open is reported, and the new epoch delivered", async () => {
  const { sockets, messages, recoveries } = start();
  const socket = await sockets.next();
  open(socket);
  feed(socket, { type: "recovered", complete: true, fresh: true, epoch: "e1", offset: 0 });
  feed(socket, chat(1), chat(2), chat(3));
  // What the server sends when Redis restarted empty: the verdict, then the new epoch's history.
  feed(socket, { type: "recovered", complete: false, epoch: "e2", offset: 2, reason: "lost" });
  feed(
    socket,
    chat(1, { history: true, message: "n1" }),
    chat(2, { history: true, message: "n2" }),
  );
  feed(socket, chat(2, { message: "n2" }), chat(3, { message: "n3" }));
  assertEquals(messages, ["m1", "m2", "m3", "n1", "n2", "n3"]);
  assertEquals(recoveries.map((r) => [r.complete, r.epoch]), [[true, "e1"], [false, "e2"]]);
  drop(socket);
  assertEquals(query(await sockets.next()), { presence: "1", epoch: "e2", since: "3" });
});

Deno.test("a batched message carries several frames, one JSON object a line, in order", async () => {
  const { sockets, messages, frames } = start(undefined, { batch: true });
  const socket = await sockets.next();
  open(socket);
  const lines = [
    { type: "recovered", complete: true, fresh: true, epoch: "e1", offset: 0 },
    chat(1),
    { type: "presence.diff", joins: ["ada"], leaves: [] },
    chat(2, { message: "two\nlines" }),
  ].map((frame) => JSON.stringify(frame));
  socket.onmessage?.({ data: lines.join("\n") + "\n" });
  socket.onmessage?.({ data: JSON.stringify(chat(3)) });
  assertEquals(messages, ["m1", "two\nlines", "m3"]);
  assertEquals(frames, [{ type: "presence.diff", joins: ["ada"], leaves: [] }]);
});

Deno.test("batched data that is not JSON objects is skipped line by line", () => {
  assertEquals(ndjsonFrames('{"a":1}\nnot json\n[1]\n\n{"b":2}'), [{ a: 1 }, { b: 2 }]);
  assertEquals(ndjsonFrames(new Uint8Array([123, 125])), []);
});

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

Deno.test("a send without ack carries a ref and resolves once it went out", async () => {
  const { stream, sockets } = start();
  const socket = await sockets.next();
  open(socket);
  const { ref } = await stream.send({ message: "hi" });
  assertEquals(JSON.parse(socket.sent[0]), { message: "hi", ref });
});

Deno.test("sends are not queued, and unanswered ones fail when the connection is lost", async () => {
  const { stream, sockets } = start();
  const socket = await sockets.next();
  const early = await assertRejects(() => stream.send({ message: "too early" }), SendError);
  assertEquals([early.kind, early.maybeStored], ["not-connected", false]);
  assertEquals(socket.sent, []);

  open(socket);
  const unanswered = stream.send({ message: "in flight" }, { ack: true });
  drop(socket);
  // Settled by the loss itself: a send left pending would hang this test, not fail it.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stillPending = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("the unanswered send never settled")), 5000);
  });
  const lost = await assertRejects(
    () => Promise.race([unanswered, stillPending]).finally(() => clearTimeout(timer)),
    SendError,
    "connection was lost",
  );
  assertEquals([lost.kind, lost.maybeStored], ["disconnected", true]);
  // No retry on the next connection: it might store the message twice.
  const next = await sockets.next();
  open(next);
  assertEquals(next.sent, []);
});

Deno.test("close() stops for good and fails unanswered sends", async () => {
  const { stream, sockets, states } = start();
  const socket = await sockets.next();
  open(socket);
  const unanswered = stream.send({ message: "bye" }, { ack: true });
  stream.close();
  assertEquals(socket.closedWith, 1000);
  const error = await assertRejects(() => unanswered, SendError);
  assertInstanceOf(error, SendError);
  assertEquals(error.kind, "closed");
  assertEquals(stream.state, "closed");
  assertEquals(states.at(-1), "closed: Disconnected");
  // A late close event of the old socket plans no reconnect.
  drop(socket);
  assertEquals(stream.state, "closed");
});

Deno.test("failed attempts wait longer each time until one succeeds", async () => {
  const backoff = new Backoff({ initialMs: 1, maxMs: 8, random: () => 1 });
  const { sockets, states } = start(undefined, { backoff });
  for (let attempt = 0; attempt < 4; attempt++) drop(await sockets.next());
  assertEquals(backoff.attempts, 4);
  assertEquals(
    states.filter((s) => s.startsWith("reconnecting: Connection lost")).length,
    4,
  );
  open(await sockets.next());
  assertEquals(states.at(-1), "open: Connected");
});

Deno.test("a policy close can ask for a longer wait", async () => {
  const backoff = new Backoff({ initialMs: 1, maxMs: 20, random: () => 1 });
  const { sockets } = start(undefined, {
    backoff,
    onClose: (event) => event.code === 1008 ? { atLeastAttempts: 3 } : undefined,
  });
  const socket = await sockets.next();
  open(socket);
  drop(socket, 1008);
  assertEquals(backoff.attempts, 4);
  await sockets.next();
});

Deno.test("a send of data JSON cannot write rejects its promise instead of throwing", async () => {
  const { stream, sockets } = start();
  const socket = await sockets.next();
  open(socket);
  let sending: Promise<unknown> | undefined;
  try {
    sending = stream.send({ message: "hi", count: 1n });
  } catch (error) {
    throw new Error(`send threw instead of rejecting: ${error}`);
  }
  await assertRejects(() => sending!, TypeError, "BigInt");
  assertEquals(socket.sent, [], "a frame went out");
});

// An app that points the stream client at a route following no stream would otherwise see its
// acks never come, as from a slow server.
Deno.test("a connection that sends no recovered frame within 5 s is named on the console", async () => {
  const timers: { run: () => void; ms: number }[] = [];
  const warnings: string[] = [];
  const [realSetTimeout, realWarn] = [globalThis.setTimeout, console.warn];
  globalThis.setTimeout = ((run: () => void, ms: number) => {
    timers.push({ run, ms });
    return timers.length;
  }) as unknown as typeof setTimeout;
  console.warn = (text: string) => void warnings.push(text);
  try {
    const { stream, sockets } = start("ws://chat.test/ws/echo/");
    const first = await sockets.next();
    open(first);
    const wait = timers.find(({ ms }) => ms === 5000);
    if (wait === undefined) throw new Error("nothing waits for the recovered frame");
    wait.run();
    assertEquals(warnings.length, 1);
    assert(warnings[0].includes("ws://chat.test/ws/echo/"), warnings[0]);
    assert(warnings[0].includes("Use LiveSocket"), warnings[0]);
    stream.close();
  } finally {
    globalThis.setTimeout = realSetTimeout;
    console.warn = realWarn;
  }
});
