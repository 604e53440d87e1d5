/**
 * Batched frames for clients that opt in (`?batch=1` or the `channels.batch` subprotocol): the
 * JSON frames of one turn arrive in one WebSocket frame, one per line, in order; every other
 * client gets one message per frame; the per-socket bounds and drop accounting stay exact.
 */
import { assert, assertEquals } from "@std/assert";
import { Communicator } from "../../testing.ts";
import type { Consumer } from "../../server/consumer.ts";
import { CloseCode } from "../../server/close_codes.ts";
import { MAX_BATCH_BYTES } from "../../server/_frame_batch.ts";
import { createTestApp, type TestApp } from "../_support/test_app.ts";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { TestSocket, WAIT_MS } from "../_support/socket.ts";

const GROUP = "batching";

/** Joins a group and forwards its `note` events; on `burst`, sends a mix of frame kinds. */
const notes: Consumer = (conn) => ({
  async connect() {
    await conn.groupAdd(GROUP);
    if (conn.scope.query.get("greet") === "1") {
      for (let n = 0; n < 3; n++) conn.sendJson({ type: "hello", n });
    }
  },
  receive(text) {
    if (text !== "burst") return;
    conn.sendJson({ n: 1 });
    conn.sendJson({ n: 2 });
    conn.send("plain text\nwith a newline");
    conn.send(JSON.stringify({ n: "laid out" }, null, 2));
    conn.sendJson({ n: 3 });
    conn.send(new Uint8Array([4]));
    conn.sendJson({ n: 5 });
  },
  events: { note: (event) => conn.sendJson(event) },
});

async function open(app: TestApp, path: string, headers: HeadersInit = {}): Promise<Communicator> {
  const comm = new Communicator({ consumer: notes, services: app.services }, path, { headers });
  assert((await comm.connect()).accepted, `${path} refused the handshake`);
  return comm;
}

/** Sends `count` notes to the group within one turn; the drops the layer reported. */
async function noteBurst(app: TestApp, count: number, text = ""): Promise<number> {
  const sends = [];
  for (let n = 0; n < count; n++) sends.push(app.layer.groupSend(GROUP, { type: "note", n, text }));
  const results = await Promise.all(sends);
  return results.reduce((sum, result) => sum + result.dropped, 0);
}

/** Every frame that arrives within `quietMs` of the previous one, as text. */
async function framesUntilQuiet(comm: Communicator, quietMs = 100): Promise<string[]> {
  const frames: string[] = [];
  while (true) {
    try {
      const frame = await comm.receive(quietMs);
      frames.push(typeof frame === "string" ? frame : `binary:${[...frame]}`);
    } catch {
      return frames;
    }
  }
}

/** The frames' JSON values, line by line. */
function lines(frames: string[]): Record<string, unknown>[] {
  return frames.flatMap((frame) => frame.split("\n")).map((line) => JSON.parse(line));
}

Deno.test("a batching client gets one turn's JSON frames in one frame, a line each, in order", async () => {
  await using app = await createTestApp();
  const batched = await open(app, "/ws/notes/?batch=1");
  await noteBurst(app, 10);
  const frames = await framesUntilQuiet(batched);
  assertEquals(frames.length, 1, "the turn's ten frames were not sent as one");
  assertEquals(lines(frames).map((note) => note.n), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assertEquals(batched.protocol, "", "a subprotocol was chosen that the client did not offer");
  await batched.disconnect();
});

Deno.test("a client that does not opt in gets one message per frame, as before", async () => {
  await using app = await createTestApp();
  for (const path of ["/ws/notes/", "/ws/notes/?batch=0", "/ws/notes/?batch=yes"]) {
    const plain = await open(app, path);
    await noteBurst(app, 10);
    const frames = await framesUntilQuiet(plain);
    assertEquals(frames.map((frame) => JSON.parse(frame).n), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await plain.disconnect();
  }
});

Deno.test("the channels.batch subprotocol opts in, and the 101 answers with it", async () => {
  await using app = await createTestApp();
  const headers = { "sec-websocket-protocol": "chat.v2, channels.batch" };
  const batched = await open(app, "/ws/notes/", headers);
  assertEquals(batched.protocol, "channels.batch");
  await noteBurst(app, 4);
  assertEquals(await framesUntilQuiet(batched), [[0, 1, 2, 3].map(noteJson).join("\n")]);
  // Another subprotocol alone is not an opt-in, and is not answered.
  const other = await open(app, "/ws/notes/", { "sec-websocket-protocol": "chat.v2" });
  assertEquals(other.protocol, "");
  await batched.disconnect();
  await other.disconnect();
});

function noteJson(n: number): string {
  return JSON.stringify({ type: "note", n, text: "" });
}

Deno.test("a text frame sent with send, or a binary one, goes on its own and keeps its place; JSON laid out over lines goes as one line", async () => {
  await using app = await createTestApp();
  const batched = await open(app, "/ws/notes/?batch=1");
  batched.send("burst");
  assertEquals(await framesUntilQuiet(batched), [
    '{"n":1}\n{"n":2}',
    "plain text\nwith a newline",
    '{   "n": "laid out" }', // one line: a batching client reads each line as one value
    '{"n":3}',
    "binary:4",
    '{"n":5}',
  ]);
  await batched.disconnect();
});

Deno.test("frames sent by connect, before the socket opened, arrive batched after it opens", async () => {
  await using app = await createTestApp();
  const batched = await open(app, "/ws/notes/?batch=1&greet=1");
  assertEquals(await framesUntilQuiet(batched), [
    '{"type":"hello","n":0}\n{"type":"hello","n":1}\n{"type":"hello","n":2}',
  ]);
  await batched.disconnect();
});

// Bytes as the wire counts them: "中" is one UTF-16 unit and three UTF-8 bytes.
for (const [script, letter] of [["ASCII", "x"], ["CJK", "中"]]) {
  Deno.test(`a batch that reaches the size cap in bytes is sent at once, in ${script}: no frame grows without bound`, async () => {
    await using app = await createTestApp();
    const batched = await open(app, "/ws/notes/?batch=1");
    await noteBurst(app, 200, letter.repeat(1000));
    const frames = await framesUntilQuiet(batched);
    const utf8 = new TextEncoder();
    const bytes = frames.map((frame) => utf8.encode(frame).length);
    assert(frames.length >= 3, `${Math.max(...bytes)} bytes in ${frames.length} frame(s)`);
    for (const size of bytes) assert(size < MAX_BATCH_BYTES + 4000, `a frame of ${size} bytes`);
    assertEquals(lines(frames).map((note) => note.n), Array.from({ length: 200 }, (_, n) => n));
    await batched.disconnect();
  });
}

Deno.test("a slow batching client is dropped and closed exactly like a slow plain one", async () => {
  const outcome = async (path: string) => {
    await using app = await createTestApp({ channelCapacity: 5, maxBufferedBytes: 1000 });
    const slow = await open(app, path);
    slow.socket.bufferedAmount = 1_000_000; // it stopped reading: its unsent bytes pile up
    const dropped = await noteBurst(app, 20);
    const code = await slow.waitForClose();
    return { dropped, code, layerDropped: app.layer.stats().dropped };
  };
  const plain = await outcome("/ws/notes/");
  const batched = await outcome("/ws/notes/?batch=1");
  assertEquals(plain.code, CloseCode.TRY_AGAIN_LATER);
  assertEquals(plain.dropped, 5, "five drops in a row close the socket");
  assertEquals(batched, plain);
});

Deno.test("what waits in a batch counts toward the socket's bound: beyond it, events drop and are counted", async () => {
  await using app = await createTestApp({ channelCapacity: 1000, maxBufferedBytes: 1000 });
  const batched = await open(app, "/ws/notes/?batch=1");
  // Nothing is on the wire (the fake's bufferedAmount stays 0): only the batch can fill up.
  const dropped = await noteBurst(app, 100, "y".repeat(60));
  assert(dropped > 0, "a 10 kB batch was held for a socket bounded at 1 kB");
  const got = lines(await framesUntilQuiet(batched)).map((note) => note.n);
  assertEquals(got, Array.from({ length: 100 - dropped }, (_, n) => n), "not a prefix, in order");
  assertEquals(app.layer.stats().dropped, dropped);
  // The batch went out at the end of the turn: the socket takes events again.
  await noteBurst(app, 1);
  assertEquals(lines(await framesUntilQuiet(batched)).map((note) => note.n), [0]);
  assertEquals(batched.closeCode, null);
  await batched.disconnect();
});

Deno.test("a batch counts toward the bound in UTF-8 bytes, as the socket's own queue does", async () => {
  await using app = await createTestApp({ channelCapacity: 1000, maxBufferedBytes: 3000 });
  const batched = await open(app, "/ws/notes/?batch=1");
  // 20 lines of about 90 characters but 210 bytes: 1,800 characters, 4,200 bytes.
  const dropped = await noteBurst(app, 20, "中".repeat(60));
  assert(dropped > 0, "4 kB of UTF-8 were held for a socket bounded at 3 kB");
  const frames = await framesUntilQuiet(batched);
  assertEquals(
    lines(frames).map((note) => note.n),
    Array.from({ length: 20 - dropped }, (_, n) => n),
  );
  await batched.disconnect();
});

// Real sockets: the chat room over Deno's WebSocket, server and client.

const GENEROUS = { rateLimit: { perSecond: 10_000, burst: 10_000 } };

/** A chat room socket; `protocols` offered in `Sec-WebSocket-Protocol`. */
function joinChat(server: TestServer, query: string, protocols?: string[]): Promise<TestSocket> {
  return TestSocket.open(server.wsUrl(`/ws/chat/batch/${query}`), { protocols });
}

/** Messages (lines) until `count` have arrived; frames counted. */
async function chatLines(
  socket: TestSocket,
  count: number,
): Promise<{ lines: Record<string, unknown>[]; frames: number }> {
  const got: Record<string, unknown>[] = [];
  let frames = 0;
  while (got.length < count) {
    const frame = await socket.next(WAIT_MS);
    if (typeof frame !== "string") throw new Error("A binary frame in the chat");
    frames++;
    for (const line of frame.split("\n")) got.push(JSON.parse(line));
  }
  assertEquals(got.length, count, "more lines than expected");
  return { lines: got, frames };
}

for (
  const [how, query, protocols] of [
    ["?batch=1", "?batch=1", undefined],
    ["the channels.batch subprotocol", "", ["channels.batch"]],
  ] as const
) {
  Deno.test(`chat over real sockets with ${how}: history in one frame, live messages in order`, async () => {
    await using server = await startTestServer(GENEROUS);
    const writer = await joinChat(server, "");
    for (let n = 1; n <= 60; n++) {
      writer.sendJson({ message: `message ${n}` });
      await writer.nextMatching((frame) => frame.message === `message ${n}`);
    }
    const reader = await joinChat(server, query, protocols ? [...protocols] : undefined);
    if (protocols) assertEquals(reader.socket.protocol, "channels.batch");
    const history = await chatLines(reader, 50);
    assertEquals(history.frames, 1, "the join history was not batched");
    assertEquals(
      history.lines.map((frame) => [frame.message, frame.history]),
      Array.from({ length: 50 }, (_, i) => [`message ${i + 11}`, true]),
    );
    for (let n = 1; n <= 20; n++) writer.sendJson({ message: `live ${n}` });
    const live = await chatLines(reader, 20);
    assertEquals(
      live.lines.map((frame) => frame.message),
      Array.from({ length: 20 }, (_, i) => `live ${i + 1}`),
    );
    // The writer did not opt in: one message per frame.
    for (let n = 1; n <= 20; n++) assertEquals((await writer.nextJson()).message, `live ${n}`);
    await writer.close();
    await reader.close();
  });
}
