/**
 * How the runtime ends a connection: which close code for which fault, and that a fault in one
 * socket never reaches another. Run in process through the communicator.
 */
import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { Communicator } from "../../testing.ts";
import { createTestApp, type TestApp } from "../_support/test_app.ts";
import { type Consumer, ProtocolError } from "../../server/consumer.ts";
import { CloseCode, describeCloseCode } from "../../server/close_codes.ts";

async function open(app: TestApp, path: string): Promise<Communicator> {
  const comm = new Communicator(app, path);
  assert((await comm.connect()).accepted, `${path} refused the handshake`);
  return comm;
}

/** Frames until the socket closes, then the close code. */
async function framesUntilClose(comm: Communicator): Promise<{ frames: string[]; code: number }> {
  const frames: string[] = [];
  while (true) {
    try {
      frames.push(String(await comm.receive()));
    } catch {
      return { frames, code: await comm.waitForClose() };
    }
  }
}

Deno.test("close codes print with their names in logs", () => {
  assertEquals(describeCloseCode(1009), "1009 (MESSAGE_TOO_BIG)");
  assertEquals(describeCloseCode(4999), "4999");
});

Deno.test("a frame over the size limit gets an error frame and closes with 1009", async () => {
  await using app = await createTestApp({ maxMessageBytes: 1024 });
  const atLimit = await open(app, "/ws/echo/");
  atLimit.send("x".repeat(1024));
  assertEquals(await atLimit.receive(), `You said: ${"x".repeat(1024)}`);
  for (const tooBig of ["x".repeat(1025), "é".repeat(513), new Uint8Array(1025)]) {
    const comm = await open(app, "/ws/echo/");
    comm.send(tooBig);
    const { frames, code } = await framesUntilClose(comm);
    assertEquals(code, CloseCode.MESSAGE_TOO_BIG);
    assertMatch(JSON.parse(frames[0]).error, /Message too big/);
  }
  assertEquals(atLimit.closeCode, null);
});

Deno.test("a binary frame to a text-only consumer closes with 1003", async () => {
  await using app = await createTestApp();
  const comm = await open(app, "/ws/chat/lobby/");
  comm.send(new Uint8Array([1, 2, 3]));
  const { frames, code } = await framesUntilClose(comm);
  assertEquals(code, CloseCode.UNSUPPORTED_DATA);
  assertEquals(JSON.parse(frames[0]).type, "error");
});

Deno.test("a client over the rate limit is told, and closed with 1008 if it keeps on", async () => {
  await using app = await createTestApp({ rateLimit: { perSecond: 1, burst: 3 } });
  const comm = await open(app, "/ws/echo/");
  for (let n = 0; n < 20; n++) comm.send(`m${n}`);
  const { frames, code } = await framesUntilClose(comm);
  assertEquals(code, CloseCode.POLICY_VIOLATION);
  assert(frames.filter((frame) => frame.startsWith("You said")).length >= 3);
  const errors = frames.filter((frame) => frame.includes("Rate limit exceeded"));
  assertEquals(errors.length, 4, "burst refusals are told, the one after them closes");
});

Deno.test("a client that stops at the rate limit is refused but not closed", async () => {
  await using app = await createTestApp({ rateLimit: { perSecond: 1, burst: 3 } });
  const comm = await open(app, "/ws/echo/");
  for (let n = 0; n < 6; n++) comm.send(`m${n}`);
  const frames = [];
  for (let n = 0; n < 6; n++) frames.push(String(await comm.receive()));
  assertEquals(frames.filter((frame) => frame.includes("Rate limit exceeded")).length, 3);
  assert(await comm.receiveNothing(50));
  assertEquals(comm.closeCode, null);
});

const fragile: Consumer = (conn) => ({
  async connect() {
    await conn.groupAdd("fragile");
  },
  receive(text) {
    if (text === "crash") throw new Error("Bug in the consumer");
    if (text === "bad") throw new ProtocolError("That was not valid");
    if (text === "invalid") throw new ProtocolError("Not UTF-8 enough", CloseCode.INVALID_PAYLOAD);
    conn.send(`ok ${text}`);
  },
  events: {
    "explode": () => {
      throw new Error("Bug in an event handler");
    },
    "ping": () => conn.send("pong"),
  },
});

async function openFragile(app: TestApp): Promise<Communicator> {
  const comm = new Communicator({ consumer: fragile, services: app.services }, "/ws/fragile/");
  assert((await comm.connect()).accepted);
  return comm;
}

Deno.test("a hook that throws closes only its own socket with 1011", async () => {
  await using app = await createTestApp();
  const [crashing, bystander] = [await openFragile(app), await openFragile(app)];
  crashing.send("crash");
  // What the consumer raised is raised again, as Channels' communicator does.
  await assertRejects(() => crashing.waitForClose(), Error, "closed with 1011");
  bystander.send("still fine");
  assertEquals(await bystander.receive(), "ok still fine");
  // The crashed socket left its group before anything else could be sent to it.
  const result = await app.layer.groupSend("fragile", { type: "ping" });
  assertEquals(result.delivered, 1);
  assertEquals(await bystander.receive(), "pong");
});

Deno.test("an event handler that throws closes its socket with 1011", async () => {
  await using app = await createTestApp();
  const comm = await openFragile(app);
  await app.layer.groupSend("fragile", { type: "explode" });
  // What the consumer raised is raised again, as Channels' communicator does.
  await assertRejects(() => comm.waitForClose(), Error, "closed with 1011");
});

Deno.test("a ProtocolError sends an error frame; with a code it also closes", async () => {
  await using app = await createTestApp();
  const comm = await openFragile(app);
  comm.send("bad");
  assertEquals(await comm.receiveJson(), {
    type: "error",
    error: "That was not valid",
    message: "That was not valid",
  });
  comm.send("after");
  assertEquals(await comm.receive(), "ok after");
  comm.send("invalid");
  // The close that follows is named, so a client can stop sending and be sure to receive it.
  assertEquals(await comm.receiveJson(), {
    type: "error",
    error: "Not UTF-8 enough",
    message: "Not UTF-8 enough",
    closing: CloseCode.INVALID_PAYLOAD,
  });
  assertEquals(await comm.waitForClose(), CloseCode.INVALID_PAYLOAD);
});

Deno.test("a connect hook that throws refuses the handshake with 500, as Daphne does", async () => {
  await using app = await createTestApp();
  const broken: Consumer = () => ({
    connect() {
      throw new Error("Bug in connect");
    },
  });
  const channels = app.layer.stats().channels;
  const comm = new Communicator({ consumer: broken, services: app.services }, "/ws/broken/");
  // The communicator raises what the consumer raised, as Channels' does; the client got a 500.
  const error = await assertRejects(() => comm.connect(), Error, "refused with 500");
  assertEquals((error.cause as Error).message, "Bug in connect");
  assertEquals(app.layer.stats().channels, channels, "a refused socket kept its channel");
});

Deno.test("events to a client that stopped reading are dropped and counted, then 1013", async () => {
  const limits = { channelCapacity: 5, maxBufferedBytes: 1000 };
  await using app = await createTestApp({ ...limits, rateLimit: { perSecond: 1e4, burst: 1e4 } });
  const [slow, fast] = [await open(app, "/ws/chat/lobby/"), await open(app, "/ws/chat/lobby/")];
  slow.socket.bufferedAmount = 1_000_000; // its unsent bytes pile up: it does not read
  for (let n = 0; n < 20; n++) {
    fast.sendJson({ message: `m${n}` });
    assertEquals((await fast.receiveJson()).message, `m${n}`);
  }
  assertEquals(await slow.waitForClose(), CloseCode.TRY_AGAIN_LATER);
  assert(app.layer.stats().dropped >= limits.channelCapacity, "drops were not counted");
  assertEquals(fast.closeCode, null);
});

Deno.test("a client gone without a word once behind is closed after it took in nothing for a while", async () => {
  // A phone in a tunnel: a few events dropped, then the room goes quiet. Deno's pings would
  // wait behind the unsent data; the connection itself sees that nothing is taken in.
  const limits = { channelCapacity: 100, maxBufferedBytes: 1000, stalledReaderSeconds: 1 };
  await using app = await createTestApp({ ...limits, rateLimit: { perSecond: 1e4, burst: 1e4 } });
  const [phone, other] = [await open(app, "/ws/chat/lobby/"), await open(app, "/ws/chat/lobby/")];
  phone.socket.bufferedAmount = 5000;
  // More than the 8 deliveries between two looks at a socket that keeps up: some are dropped.
  for (let n = 0; n < 10; n++) {
    other.sendJson({ message: `m${n}` });
    assertEquals((await other.receiveJson()).message, `m${n}`);
  }
  const started = Date.now();
  assertEquals(await phone.waitForClose(3000), CloseCode.TRY_AGAIN_LATER);
  assertEquals((await phone.closed).reason, "Too slow: nothing was read for 1 s");
  assert(Date.now() - started >= 900, "closed before it had been stalled for a second");
  assertEquals(other.closeCode, null);
});

Deno.test("a reader behind but taking in what waits is not closed for stalling", async () => {
  const limits = { channelCapacity: 100, maxBufferedBytes: 1000, stalledReaderSeconds: 1 };
  await using app = await createTestApp({ ...limits, rateLimit: { perSecond: 1e4, burst: 1e4 } });
  const [slow, other] = [await open(app, "/ws/chat/lobby/"), await open(app, "/ws/chat/lobby/")];
  slow.socket.bufferedAmount = 50_000; // far above the bound: it reads, slowly
  for (let n = 0; n < 10; n++) {
    other.sendJson({ message: `m${n}` }); // the last ones dropped for the slow one
    await other.receiveJson();
  }
  while (!await slow.receiveNothing(0)) await slow.receive(); // the ones sent before a look
  // 2.5 s of a slow link: a little is taken in every 200 ms, never down to the bound.
  for (let n = 0; n < 12; n++) {
    slow.socket.bufferedAmount -= 1000;
    assertEquals(await slow.receiveNothing(200), true, "closed while it was reading");
  }
  assertEquals(slow.closeCode, null);
});

Deno.test("a reader of a live feed is not closed for stalling though what waits never goes down", async () => {
  // It takes in what waits, and new frames fill that room at once: each look finds as much
  // unsent as the one before, but the socket had room in between.
  const limits = { channelCapacity: 1000, maxBufferedBytes: 1000, stalledReaderSeconds: 1 };
  await using app = await createTestApp({ ...limits, rateLimit: { perSecond: 1e4, burst: 1e4 } });
  const [reader, other] = [await open(app, "/ws/chat/lobby/"), await open(app, "/ws/chat/lobby/")];
  reader.socket.bufferedAmount = 5000;
  const started = Date.now();
  for (let n = 0; Date.now() - started < 2500; n++) {
    if (n % 10 === 5) reader.socket.bufferedAmount = 0; // it read: room for the next frames
    if (n % 10 === 6) reader.socket.bufferedAmount = 5000; // and they filled it again
    other.sendJson({ message: `m${n}` });
    await other.receiveJson();
    await new Promise((resolve) => setTimeout(resolve, 20)); // a feed, not a burst
  }
  assertEquals(reader.closeCode, null, "a reader of the feed was closed as stalled");
});

Deno.test("a socket whose consumer is busy, with nothing unsent, is not closed for stalling", async () => {
  // Fewer drops in a row than its capacity: not closed for those.
  await using app = await createTestApp({ channelCapacity: 3, stalledReaderSeconds: 1 });
  const gate = Promise.withResolvers<void>();
  const busy: Consumer = (conn) => ({
    connect: () => conn.groupAdd("busy"),
    events: { work: () => gate.promise }, // its handler waits: its queue fills, events drop
    drained() {},
  });
  const comm = new Communicator({ consumer: busy, services: app.services }, "/ws/busy/");
  await comm.connect();
  let dropped = 0;
  for (let n = 0; n < 6; n++) {
    dropped += (await app.layer.groupSend("busy", { type: "work" })).dropped;
  }
  assert(dropped > 0, "nothing was dropped");
  assertEquals(await comm.receiveNothing(1500), true, "the socket of a busy consumer was closed");
  gate.resolve();
  await comm.disconnect();
});

Deno.test("a consumer whose handlers fall behind has a bounded queue, then 1013", async () => {
  await using app = await createTestApp({ channelCapacity: 4 });
  const stuck: Consumer = (conn) => ({
    connect: () => conn.groupAdd("stuck"),
    events: { work: () => new Promise<void>(() => {}) }, // never finishes
  });
  const comm = new Communicator({ consumer: stuck, services: app.services }, "/ws/stuck/");
  await comm.connect();
  let dropped = 0;
  for (let n = 0; n < 20 && comm.closeCode === null; n++) {
    dropped += (await app.layer.groupSend("stuck", { type: "work", n })).dropped;
  }
  assertEquals(await comm.waitForClose(), CloseCode.TRY_AGAIN_LATER);
  // One running, four waiting: everything after them was dropped until the fourth drop closed.
  assertEquals(dropped, 4);
});

Deno.test("under the communicator too, a close reason is cut to the 123 bytes a frame carries", async () => {
  await using app = await createTestApp();
  const strict: Consumer = () => ({
    receive() {
      throw new ProtocolError("Ce vote est refusé : répondez « oui » ou « non ». ".repeat(3), 4003);
    },
  });
  const comm = new Communicator({ consumer: strict, services: app.services }, "/ws/vote/");
  await comm.connect();
  comm.send("peut-être");
  assertEquals((await comm.receiveJson()).type, "error");
  const { code, reason } = await comm.closed;
  assertEquals(code, 4003);
  assert(new TextEncoder().encode(reason).length <= 123, `${reason.length} characters`);
  assert(reason.startsWith("Ce vote est refusé"), reason);
});

Deno.test("a consumer that closes once connect returned is accepted, and its client sees its code", async () => {
  await using app = await createTestApp();
  // Channels' `accept()` then `close(code=4001)`: the browser's onclose sees 4001, not a 403.
  const loginFirst: Consumer = (conn) => ({
    connect() {
      conn.sendJson({ error: "log in first" });
      setTimeout(() => conn.close(4001, "Log in first"), 0);
    },
  });
  const comm = new Communicator({ consumer: loginFirst, services: app.services }, "/ws/private/");
  assert((await comm.connect()).accepted);
  assertEquals(await comm.receiveJson(), { error: "log in first" });
  assertEquals(await comm.waitForClose(), 4001);
  assertEquals((await comm.closed).reason, "Log in first");
});
