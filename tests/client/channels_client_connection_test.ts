/** The stream client's connection: sends without ack, close(), backoff, a route with no stream. */
import { assert, assertEquals, assertInstanceOf, assertRejects } from "@std/assert";
import { SendError } from "../../client/channels_client.js";
import { Backoff } from "../../client/backoff.js";
import { drop, open } from "./_fake_socket.ts";
import { start } from "./_channels_client_support.ts";

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
