/**
 * A close by the server is output, as in Channels' `receive_nothing`: a test that expects
 * silence is told when the consumer closed the socket instead.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { type Consumer, createApp, socket } from "../../mod.ts";
import { Communicator, createTestServices, testUpgrade } from "../../testing.ts";
import { log } from "../../telemetry/log.ts";
import { CapturedLog } from "../_support/captured_log.ts";

const closesOnFrame: Consumer = (conn) => ({ receive: () => conn.close(4005) });

/** A consumer whose `connect` joins "room", then waits for `letConnectFinish`; `hooks` says what ran. */
function slowToJoin() {
  const hooks: string[] = [];
  const { promise: gate, resolve: letConnectFinish } = Promise.withResolvers<void>();
  const consumer: Consumer = (conn) => ({
    async connect() {
      await conn.groupAdd("room");
      await gate;
      hooks.push("connected");
    },
    disconnect: (code) => void hooks.push(`disconnect ${code}`),
  });
  return { consumer, hooks, letConnectFinish };
}

Deno.test("receiveNothing is false once the server closed the socket, and true after the test saw it", async () => {
  await using services = await createTestServices();
  const comm = new Communicator({ consumer: closesOnFrame, services }, "/ws/closes/");
  await comm.connect();
  assert(await comm.receiveNothing(10), "nothing was sent yet");
  comm.send("close, please");
  assertEquals(await comm.receiveNothing(1000), false, "the close went unnoticed");
  assertEquals(await comm.receiveNothing(10), false, "an unseen close is still news");
  assertEquals(await comm.waitForClose(), 4005);
  assert(await comm.receiveNothing(10), "a close the test saw is not news any more");
});

Deno.test("a close seen through a receive that threw, or through the test's own disconnect, is not news", async () => {
  await using services = await createTestServices();
  const comm = new Communicator({ consumer: closesOnFrame, services }, "/ws/closes/");
  await comm.connect();
  comm.send("close, please");
  await assertRejects(() => comm.receive(), Error, "closed with 4005");
  assert(await comm.receiveNothing(10), "the close the test saw is still news");
  const quiet = new Communicator({ consumer: () => ({}), services }, "/ws/quiet/");
  await quiet.connect();
  await quiet.disconnect();
  assert(await quiet.receiveNothing(10), "the test's own disconnect counted as news");
});

// JavaScript may throw anything: the test and the log must still say what was thrown.
Deno.test("a consumer that throws a value that is not an Error is reported with that value", async () => {
  await using services = await createTestServices();
  using captured = new CapturedLog();
  log.setLevel("error");
  try {
    const thrown: Record<string, [unknown, string]> = {
      undefined: [undefined, "undefined"],
      object: [{ code: 42 }, "Object { code: 42 }"],
      text: ["", '""'],
    };
    for (const [name, [value, shown]] of Object.entries(thrown)) {
      const consumer: Consumer = () => ({
        receive() {
          throw value;
        },
      });
      const comm = new Communicator({ consumer, services }, `/ws/${name}/`);
      await comm.connect();
      comm.send("go");
      await assertRejects(
        () => comm.receive(),
        Error,
        `The consumer failed (closed with 1011): it threw ${shown}`,
      );
      const line = await captured.waitFor(new RegExp(`Consumer failed on /ws/${name}/`));
      const said = name === "undefined" ? "it threw undefined" : `threw ${shown}, not an Error`;
      assert(line.includes(said), `${line} does not say "${said}"`);
    }
  } finally {
    log.setLevel("silent");
  }
});

Deno.test("a client that hangs up while connect runs is not upgraded, and disconnect waits for its disconnect(1006)", async () => {
  await using services = await createTestServices();
  const hooks: string[] = [];
  const { promise: inConnect, resolve: connectStarted } = Promise.withResolvers<void>();
  const { promise: gate, resolve: letConnectFinish } = Promise.withResolvers<void>();
  const slowToConnect: Consumer = (conn) => ({
    async connect() {
      await conn.groupAdd("room");
      connectStarted();
      await gate;
      hooks.push("connected");
    },
    disconnect: (code) => void hooks.push(`disconnect ${code}`),
  });
  const app = createApp({
    routes: [socket("/ws/room/", slowToConnect)],
    services,
    upgrade: testUpgrade,
  });
  try {
    const comm = new Communicator(app, "/ws/room/");
    const connecting = comm.connect(); // the client leaves before the handshake's answer
    await inConnect;
    const leaving = comm.disconnect();
    letConnectFinish();
    await leaving;
    // As the server does for a client that left during `connect`: no upgrade, and what
    // `connect` did is undone by `disconnect`, which ran before disconnect() resolved.
    assertEquals(hooks, ["connected", "disconnect 1006"]);
    assertEquals(await connecting, {
      accepted: false,
      status: 499,
      reason: "the client left during the handshake",
    });
    assertEquals(comm.socket.readyState, WebSocket.CLOSED);
    assertEquals(app.live.size, 0, "the socket is still counted as open");
    assertEquals((await services.layer.groupSend("room", { type: "x" })).delivered, 0);
  } finally {
    await app.close();
  }
  assertEquals(hooks, ["connected", "disconnect 1006"], "disconnect ran again at app.close");
});

Deno.test("a cleanup disconnect() after a connect hook that never finishes keeps connect()'s error, not one blaming the disconnect hook", async () => {
  await using services = await createTestServices();
  const stuck: Consumer = () => ({ connect: () => new Promise<void>(() => {}) });
  const app = createApp({ routes: [socket("/ws/stuck/", stuck)], services, upgrade: testUpgrade });
  try {
    const comm = new Communicator(app, "/ws/stuck/");
    const failed = await assertRejects(async () => {
      try {
        await comm.connect(50);
      } finally {
        await comm.disconnect(1000, 200); // what a test's cleanup does
      }
    });
    assertStringIncludes(
      (failed as Error).message,
      "The handshake did not finish within 50 ms: does the consumer's connect hook ever resolve?",
    );
    await comm.disconnect(1000, 200); // and again, as quietly
    assertEquals(await comm.waitForClose(200, 200), 1000);
    assertEquals(app.live.size, 0);
  } finally {
    await app.close();
  }
});

Deno.test("a disconnect() that gives up before connect() does names the connect hook that holds it", async () => {
  await using services = await createTestServices();
  const { promise: gate, resolve: letConnectFinish } = Promise.withResolvers<void>();
  const held: Consumer = () => ({ connect: () => gate });
  const comm = new Communicator({ consumer: held, services }, "/ws/held/");
  const connecting = comm.connect();
  await assertRejects(
    () => comm.disconnect(1000, 50),
    Error,
    "The handshake did not finish within 50 ms of the client's leaving: does the consumer's " +
      "connect hook ever resolve?",
  );
  letConnectFinish();
  assertEquals((await connecting).status, 499);
});

Deno.test("a disconnect() after connect(ms) gave up on a slow connect hook waits for it, and for its disconnect(1006)", async () => {
  await using services = await createTestServices();
  const { consumer: slow, hooks, letConnectFinish } = slowToJoin();
  const comm = new Communicator({ consumer: slow, services }, "/ws/slow/");
  await assertRejects(() => comm.connect(50), Error, "connect hook ever resolve");
  const leaving = comm.disconnect();
  letConnectFinish();
  await leaving;
  assertEquals(hooks, ["connected", "disconnect 1006"]);
  assertEquals((await services.layer.groupSend("room", { type: "x" })).delivered, 0);
});

// The documented pattern (`const connecting = comm.connect(ms)`, then `await comm.disconnect()`
// first) with a connect hook slower than `ms`: connect's time runs out while nobody awaits it.
Deno.test("a disconnect() while connect(ms) runs leaves connect() resolving with the 499, even when the hook outlasts ms", async () => {
  await using services = await createTestServices();
  const hooks: string[] = [];
  const { promise: inConnect, resolve: connectStarted } = Promise.withResolvers<void>();
  const slowerThanConnectWaits: Consumer = () => ({
    async connect() {
      connectStarted();
      await new Promise((resolve) => setTimeout(resolve, 150)); // longer than connect(30) waits
    },
    disconnect: (code) => void hooks.push(`disconnect ${code}`),
  });
  const comm = new Communicator({ consumer: slowerThanConnectWaits, services }, "/ws/slow/");
  const connecting = comm.connect(30);
  await inConnect;
  await comm.disconnect();
  assertEquals(hooks, ["disconnect 1006"]);
  assertEquals(await connecting, {
    accepted: false,
    status: 499,
    reason: "the client left during the handshake",
  });
});

Deno.test("a disconnect(1006) hook that throws after the client left during connect rejects disconnect(), once", async () => {
  await using services = await createTestServices();
  const { promise: inConnect, resolve: connectStarted } = Promise.withResolvers<void>();
  const { promise: gate, resolve: letConnectFinish } = Promise.withResolvers<void>();
  const failsToUndo: Consumer = () => ({
    async connect() {
      connectStarted();
      await gate;
    },
    disconnect: (code) => {
      throw new RangeError(`boom in disconnect ${code}`);
    },
  });
  const comm = new Communicator({ consumer: failsToUndo, services }, "/ws/undo/");
  const connecting = comm.connect();
  await inConnect;
  const leaving = comm.disconnect();
  letConnectFinish();
  const error = await assertRejects(
    () => leaving,
    Error,
    "The consumer failed (after the close): RangeError: boom in disconnect 1006",
  );
  assertEquals((error.cause as Error).stack?.includes("communicator_close_test.ts"), true);
  assertEquals((await connecting).status, 499);
  await comm.disconnect(); // told once
});

// `waitForClose()` as the cleanup: after connect(ms) gave up, no socket opened, and only the
// client can end the handshake; it leaves as `disconnect()` does.
Deno.test("a cleanup waitForClose() after a connect hook that never finishes keeps connect()'s error", async () => {
  await using services = await createTestServices();
  const stuck: Consumer = () => ({ connect: () => new Promise<void>(() => {}) });
  const comm = new Communicator({ consumer: stuck, services }, "/ws/stuck/");
  await assertRejects(
    async () => {
      try {
        await comm.connect(50);
      } finally {
        await comm.waitForClose(200, 200);
      }
    },
    Error,
    "The handshake did not finish within 50 ms: does the consumer's connect hook ever resolve?",
  );
});

Deno.test("a waitForClose() after connect(ms) gave up on a slow connect hook waits for it, and for its disconnect(1006)", async () => {
  await using services = await createTestServices();
  const { consumer: slow, hooks, letConnectFinish } = slowToJoin();
  const comm = new Communicator({ consumer: slow, services }, "/ws/slow/");
  await assertRejects(() => comm.connect(50), Error, "connect hook ever resolve");
  const closing = comm.waitForClose(100, 5000);
  letConnectFinish();
  assertEquals(await closing, 1000, "the client's own leaving");
  assertEquals(hooks, ["connected", "disconnect 1006"]);
  assertEquals((await services.layer.groupSend("room", { type: "x" })).delivered, 0);
});

Deno.test("a connect that throws after connect(ms) gave up on it is told by the waitForClose() after", async () => {
  await using services = await createTestServices();
  const { promise: gate, resolve: letConnectThrow } = Promise.withResolvers<void>();
  const failsLate: Consumer = () => ({
    async connect() {
      await gate;
      throw new RangeError("boom, late");
    },
  });
  const comm = new Communicator({ consumer: failsLate, services }, "/ws/late/");
  await assertRejects(() => comm.connect(50), Error, "connect hook ever resolve");
  const closing = comm.waitForClose(100, 5000);
  letConnectThrow();
  await assertRejects(
    () => closing,
    Error,
    "(connect, refused with 500 to a client that no longer waited): RangeError: boom, late",
  );
  await comm.disconnect(); // told once
});

// As the server does: `connect` threw after its client left, so the 500 went to no one (the
// error is logged); the test hears of it from the disconnect() it awaits, once.
Deno.test("a client that hangs up while connect runs, which then throws, is told by disconnect(); connect() resolves with the 500", async () => {
  await using services = await createTestServices();
  const hooks: string[] = [];
  const { promise: inConnect, resolve: connectStarted } = Promise.withResolvers<void>();
  const { promise: gate, resolve: letConnectThrow } = Promise.withResolvers<void>();
  const failsLate: Consumer = () => ({
    async connect() {
      connectStarted();
      await gate;
      throw new RangeError("boom in connect");
    },
    disconnect: (code) => void hooks.push(`disconnect ${code}`),
  });
  const app = createApp({
    routes: [socket("/ws/late/", failsLate)],
    services,
    upgrade: testUpgrade,
  });
  try {
    const comm = new Communicator(app, "/ws/late/");
    const connecting = comm.connect();
    await inConnect;
    const leaving = comm.disconnect();
    letConnectThrow();
    const error = await assertRejects(
      () => leaving,
      Error,
      "The consumer failed (connect, refused with 500 to a client that no longer waited): " +
        "RangeError: boom in connect",
    );
    assertEquals((error.cause as Error).stack?.includes("communicator_close_test.ts"), true);
    assertEquals(await connecting, {
      accepted: false,
      status: 500,
      reason: "The consumer's connect hook failed (logged above)",
    });
    await comm.disconnect(); // told once
    assertEquals(hooks, [], "disconnect ran for a connect that failed");
    assertEquals(app.live.size, 0);
  } finally {
    await app.close();
  }
});

Deno.test("a connect that throws after connect(ms) gave up on it is told by the disconnect() after", async () => {
  await using services = await createTestServices();
  const { promise: gate, resolve: letConnectThrow } = Promise.withResolvers<void>();
  const { promise: thrown, resolve: connectThrew } = Promise.withResolvers<void>();
  const failsLate: Consumer = () => ({
    async connect() {
      await gate;
      connectThrew();
      throw new RangeError("boom, late");
    },
  });
  const comm = new Communicator({ consumer: failsLate, services }, "/ws/late/");
  await assertRejects(() => comm.connect(50), Error, "connect hook ever resolve");
  letConnectThrow();
  await thrown;
  await assertRejects(
    () => comm.disconnect(),
    Error,
    "(connect, refused with 500 to a client that no longer waited): RangeError: boom, late",
  );
  await comm.disconnect(); // told once
});

Deno.test("the test after one whose client left during a connect that threw still runs", () => {
  // An unhandled rejection of connect() would cancel every test of this file, this one too.
});

Deno.test("a consumer under the communicator sees its connection's own address as production does", async () => {
  await using services = await createTestServices();
  const seen: [string, string | undefined][] = [];
  const consumer: Consumer = (conn) => ({
    connect: () => void seen.push([conn.scope.client, conn.scope.peer]),
  });
  const comm = new Communicator({ consumer, services }, "/ws/seen/");
  await comm.connect();
  await comm.disconnect();
  // Served straight, a socket's connection is the client's own: `peer` is its address too.
  assertEquals(seen.length, 1);
  assertEquals(seen[0][1], seen[0][0]);
});
