/**
 * The communicator says what is wrong when a test misuses it, as a browser's WebSocket would,
 * instead of orphaning a connection or dropping a frame without a word.
 */
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { type Consumer, createApp, loadConfig, ProtocolError, socket } from "../../mod.ts";
import {
  Communicator,
  createTestServices,
  NoAnswerInTimeError,
  testUpgrade,
} from "../../testing.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";

const echo: Consumer = (conn) => ({ receive: (text) => conn.send(text) });

Deno.test("a send before an accepted connect throws, as a WebSocket still connecting does", async () => {
  await using services = await createTestServices();
  const comm = new Communicator({ consumer: echo, services }, "/ws/echo/");
  assertThrows(() => comm.send("too early"), Error, "await comm.connect() first");
  await comm.connect();
  comm.send("in time");
  assertEquals(await comm.receive(), "in time");
  await comm.disconnect();
});

Deno.test("a second connect throws instead of making a second, orphaned connection", async () => {
  await using services = await createTestServices();
  const before = services.layer.stats().channels;
  const comm = new Communicator({ consumer: echo, services }, "/ws/echo/");
  await comm.connect();
  await assertRejects(() => comm.connect(), Error, "make a new Communicator");
  await comm.disconnect();
  assertEquals(services.layer.stats().channels, before, "a connection was left behind");
});

Deno.test("an app created without testUpgrade is named at connect, and leaves no socket behind", async () => {
  await using services = await createTestServices();
  const hooks: string[] = [];
  const recorded: Consumer = () => ({
    connect: () => void hooks.push("connect"),
    disconnect: (code) => void hooks.push(`disconnect ${code}`),
  });
  const app = createApp({ routes: [socket("/ws/echo/", recorded)], services }); // no `upgrade`
  const comm = new Communicator(app, "/ws/echo/");
  await assertRejects(() => comm.connect(), Error, "upgrade: testUpgrade");
  // No socket of Deno's that would never open: `app.close()` does not wait for it to give up.
  assertEquals(app.live.size, 0, "a socket that cannot open is still counted");
  assertEquals(hooks, ["connect", "disconnect 1006"]);
  await app.close();
});

Deno.test("waitForClose before connect throws at once, as receive does; disconnect is a quiet no-op", async () => {
  await using services = await createTestServices();
  const hooks: string[] = [];
  const recorded: Consumer = (conn) => ({
    connect: () => void hooks.push("connect"),
    receive: (text) => conn.send(text),
    disconnect: (code) => void hooks.push(`disconnect ${code}`),
  });
  const comm = new Communicator({ consumer: recorded, services }, "/ws/echo/");
  const early = "waitForClose before connect: await comm.connect() first";
  await assertRejects(() => comm.waitForClose(), Error, early);
  // A cleanup `finally { await comm.disconnect() }` where `connect` never ran: nothing to close.
  await comm.disconnect();
  assertEquals(hooks, []);
  await comm.connect(); // still usable, once connected
  comm.send("now");
  assertEquals(await comm.receive(), "now");
  await comm.disconnect();
  assertEquals(hooks, ["connect", "disconnect 1000"]);
});

Deno.test("a connect or disconnect hook that never finishes fails the test with a message", async () => {
  await using services = await createTestServices();
  const never = new Promise<void>(() => {});
  const stuckConnect: Consumer = () => ({ connect: () => never });
  const first = new Communicator({ consumer: stuckConnect, services }, "/ws/stuck/");
  await assertRejects(() => first.connect(50), Error, "connect hook ever resolve");
  const stuckDisconnect: Consumer = () => ({ disconnect: () => never });
  const second = new Communicator({ consumer: stuckDisconnect, services }, "/ws/stuck/");
  await second.connect();
  await assertRejects(() => second.disconnect(1000, 50), Error, "disconnect");
});

Deno.test("waitForClose after a refused handshake says it was refused, not that a socket is open", async () => {
  await using services = await createTestServices();
  const refusing: Consumer = () => ({ connect: () => false });
  const comm = new Communicator({ consumer: refusing, services }, "/ws/no/");
  const result = await comm.connect();
  assertEquals([result.accepted, result.status, result.code], [false, 403, undefined]);
  await assertRejects(() => comm.waitForClose(), Error, "refused with 403");
});

Deno.test("what a consumer raised is raised by the communicator, as Channels' re-raises it", async () => {
  await using services = await createTestServices(); // whose log is silent
  const buggy: Consumer = (conn) => ({
    receive(text) {
      if (text === "boom") throw new RangeError("index 7 is out of range");
      conn.send(text);
    },
  });
  const comm = new Communicator({ consumer: buggy, services }, "/ws/buggy/");
  await comm.connect();
  comm.send("boom");
  const error = await assertRejects(() => comm.receive(), Error, "closed with 1011");
  assertStringIncludes(error.message, "RangeError: index 7 is out of range");
  assertEquals((error.cause as Error).stack?.includes("communicator_misuse_test.ts"), true);
  assertEquals(await comm.waitForClose(), 1011);
});

Deno.test("a handler that fails between connect and the open is raised by the communicator too", async () => {
  await using services = await createTestServices();
  const early: Consumer = (conn) => ({
    async connect() {
      await conn.groupAdd("early");
      await conn.groupSend("early", { type: "boom" }); // handled right after connect
    },
    events: {
      boom() {
        throw new SyntaxError("the handler's bug");
      },
    },
  });
  const comm = new Communicator({ consumer: early, services }, "/ws/early/");
  await comm.connect();
  const error = await assertRejects(() => comm.receive(), Error, "closed with 1011");
  assertStringIncludes(error.message, "SyntaxError: the handler's bug");
});

Deno.test("a disconnect hook that throws rejects disconnect() with its error, once", async () => {
  await using services = await createTestServices(); // whose log is silent
  const leaky: Consumer = () => ({
    disconnect() {
      throw new TypeError("cleanup forgot the room");
    },
  });
  const comm = new Communicator({ consumer: leaky, services }, "/ws/leaky/");
  await comm.connect();
  const error = await assertRejects(() => comm.disconnect(), Error, "after the close");
  assertStringIncludes(error.message, "TypeError: cleanup forgot the room");
  assertEquals((error.cause as Error).stack?.includes("communicator_misuse_test.ts"), true);
  assertEquals(await comm.waitForClose(), 1000); // told once, not at every wait
});

Deno.test("a hook still running at the client's close that then throws rejects disconnect()", async () => {
  await using services = await createTestServices();
  let release = () => {};
  const handling = new Promise<void>((resolve) => release = resolve);
  let started = () => {};
  const running = new Promise<void>((resolve) => started = resolve);
  const slow: Consumer = () => ({
    async receive() {
      started();
      await handling;
      throw new RangeError("the slow hook's bug");
    },
  });
  const comm = new Communicator({ consumer: slow, services }, "/ws/slow/");
  await comm.connect();
  comm.send("work");
  await running;
  const closing = comm.disconnect();
  release();
  const error = await assertRejects(() => closing, Error, "after the close");
  assertStringIncludes(error.message, "RangeError: the slow hook's bug");
});

Deno.test("after the server closed, a disconnect hook that throws rejects waitForClose()", async () => {
  await using services = await createTestServices();
  const kicking: Consumer = (conn) => ({
    receive: () => conn.close(4001, "bye"),
    disconnect() {
      throw new Error("disconnect's own bug");
    },
  });
  const comm = new Communicator({ consumer: kicking, services }, "/ws/kick/");
  await comm.connect();
  comm.send("go");
  await assertRejects(() => comm.waitForClose(), Error, "disconnect's own bug");
});

Deno.test("a consumer that fails in a hook and is closed with 1011 is told by receive(), not again after", async () => {
  await using services = await createTestServices();
  let disconnected = 0;
  const buggy: Consumer = () => ({
    receive() {
      throw new RangeError("once");
    },
    disconnect: () => void disconnected++,
  });
  const comm = new Communicator({ consumer: buggy, services }, "/ws/buggy/");
  await comm.connect();
  comm.send("boom");
  await assertRejects(() => comm.receive(), Error, "RangeError: once");
  assertEquals(await comm.waitForClose(), 1011);
  await comm.disconnect(); // the failure was told already
  assertEquals(disconnected, 1);
});

Deno.test("a consumer that returns a promise or nothing is refused with 500, saying so", async () => {
  await using services = await createTestServices();
  // deno-lint-ignore require-await -- the mistake under test: an async consumer
  const asyncConsumer = (async () => ({ connect: () => false })) as unknown as Consumer;
  const nothing = (() => undefined) as unknown as Consumer;
  const before = services.layer.stats().channels;
  for (const [consumer, what] of [[asyncConsumer, "a promise"], [nothing, "undefined"]] as const) {
    const comm = new Communicator({ consumer, services }, "/ws/wrong/");
    const error = await assertRejects(() => comm.connect(), Error, "refused with 500");
    assertStringIncludes(error.message, `returned ${what}, not its hooks`);
    assertEquals(services.layer.stats().channels, before, "its channel was given back");
  }
});

Deno.test("receiveJson of a batched frame says it is one, instead of a bare JSON error", async () => {
  await using services = await createTestServices();
  const twice: Consumer = (conn) => ({
    receive() {
      conn.sendJson({ n: 1 });
      conn.sendJson({ n: 2 }); // in the same turn: one frame for a batching client
    },
  });
  const comm = new Communicator({ consumer: twice, services }, "/ws/twice/?batch=1");
  await comm.connect();
  comm.send("go");
  const error = await assertRejects(() => comm.receiveJson(), SyntaxError, "parse it line by line");
  assertStringIncludes(error.message, '{"n":1}\n{"n":2}');
  await comm.disconnect();
});

Deno.test("a failure the test never received rejects disconnect(), once, as Channels' raises it", async () => {
  await using services = await createTestServices(); // whose log is silent
  const buggy: Consumer = () => ({
    receive() {
      throw new RangeError("kaboom");
    },
  });
  const comm = new Communicator({ consumer: buggy, services }, "/ws/buggy/");
  await comm.connect();
  comm.send("boom");
  assertEquals(await comm.receiveNothing(), false); // the close came
  const error = await assertRejects(() => comm.disconnect(), Error, "closed with 1011");
  assertStringIncludes(error.message, "RangeError: kaboom");
  await comm.disconnect(); // told once
});

Deno.test("a failure the test never received rejects waitForClose(), then not disconnect()", async () => {
  await using services = await createTestServices();
  const buggy: Consumer = (conn) => ({
    connect: () => conn.groupAdd("notes"),
    events: {
      "note.added"() {
        throw new TypeError("the handler's bug");
      },
    },
  });
  const comm = new Communicator({ consumer: buggy, services }, "/ws/buggy/");
  await comm.connect();
  await services.layer.groupSend("notes", { type: "note.added" });
  await assertRejects(() => comm.waitForClose(), Error, "TypeError: the handler's bug");
  await comm.disconnect();
});

Deno.test("an event with no handler is named in the log once per route and type, and by receive()", async () => {
  await using services = await createTestServices();
  using captured = new CapturedLog();
  log.setLevel("warn"); // the test services' level is "silent", which they set again
  using _silent = { [Symbol.dispose]: () => log.setLevel("silent") };
  // A port that kept Channels' method name for "chat.message" events.
  const ported: Consumer = (conn) => ({
    connect: () => conn.groupAdd("lobby"),
    events: { chat_message: (event) => conn.sendJson(event) },
  });
  const app = createApp({ routes: [socket("/ws/lobby/", ported)], services, upgrade: testUpgrade });
  const [a, b] = [new Communicator(app, "/ws/lobby/"), new Communicator(app, "/ws/lobby/")];
  await a.connect();
  await b.connect();
  await services.layer.groupSend("lobby", { type: "chat.message", text: "hi" });
  await services.layer.groupSend("lobby", { type: "chat.message", text: "again" });
  await services.layer.groupSend("lobby", { type: "user.joined" });
  const error = await assertRejects(() => a.receive(200), Error, "No frame within 200 ms");
  assertStringIncludes(
    error.message,
    'No handler for "chat.message" events ("chat_message" is Channels\' method name',
  );
  const warned = captured.lines.filter((line) => line.includes("No handler for"));
  assertEquals(warned.length, 2, warned.join("\n")); // two types, two sockets: one line each type
  assertStringIncludes(warned[0], 'No handler for "chat.message" events');
  assertStringIncludes(warned[0], "on /ws/lobby/: ignored");
  assertStringIncludes(warned[1], 'No handler for "user.joined" events, on /ws/lobby/');
  await a.disconnect();
  await b.disconnect();
  await app.close();
});

Deno.test("a hook under a name that is not a hook's is named in the log once, with the one meant", async () => {
  await using services = await createTestServices();
  using captured = new CapturedLog();
  log.setLevel("warn");
  using _silent = { [Symbol.dispose]: () => log.setLevel("silent") };
  // Channels' name for receiveJson, in a class (type-checked, it is no error there): the
  // frames would go nowhere without a word.
  class Ported {
    constructor(readonly conn: { sendJson(value: unknown): void }) {}
    connect() {}
    receive_json(value: unknown) {
      this.conn.sendJson(value);
    }
  }
  const ported: Consumer = (conn) => new Ported(conn);
  // A class with helpers of its own named like a DOM handler's `close`, or after a hook
  // (`received`): no warning.
  class Own {
    constructor(readonly conn: { send(text: string): void; close(): void }) {}
    receiveJson(value: unknown) {
      this.received(String(value));
    }
    received(text: string) {
      this.conn.send(text);
    }
    close() {
      this.conn.close();
    }
  }
  const own: Consumer = (conn) => new Own(conn);
  const app = createApp({
    routes: [socket("/ws/ported/", ported), socket("/ws/own/", own)],
    services,
    upgrade: testUpgrade,
  });
  const comms = [
    new Communicator(app, "/ws/ported/"),
    new Communicator(app, "/ws/ported/"),
    new Communicator(app, "/ws/own/"),
  ];
  for (const comm of comms) await comm.connect();
  const warned = captured.lines.filter((line) => line.includes("which is no hook"));
  assertEquals(warned.length, 1, warned.join("\n")); // once for the route's consumer
  assertStringIncludes(warned[0], "`receive_json`");
  assertStringIncludes(warned[0], "did you mean `receiveJson`?");
  for (const comm of comms) await comm.disconnect();
  await app.close();
});

Deno.test("the usual slips with the API get errors that say what to write instead", async () => {
  // deno run does not type-check: each of these reaches the framework as written.
  const untyped = (value: unknown) => value as never;
  assertThrows(() => createApp(untyped({ routes: [] })), TypeError, "needs the services");
  assertThrows(
    () => loadConfig(untyped({ PORT: "8000" }), untyped(undefined)),
    TypeError,
    "Deno.args",
  );
  assertThrows(() => new ProtocolError("no", untyped("4000")), TypeError, "close code is a number");
  await using services = await createTestServices();
  // An events handler that is not a function fails its socket with that said, not with
  // "handler.call is not a function".
  const consumer: Consumer = (conn) => ({
    connect: () => conn.groupAdd("slips"),
    events: { "note.added": untyped("sendJson") },
  });
  const comm = new Communicator({ consumer, services }, "/ws/slips/");
  await comm.connect();
  await services.layer.groupSend("slips", { type: "note.added" });
  await assertRejects(() => comm.waitForClose(), Error, 'events["note.added"] is "sendJson"');
});

Deno.test("a communicator whose handshake was refused says so on send and receive", async () => {
  await using services = await createTestServices();
  const app = createApp({
    routes: [socket("/ws/echo/", (conn) => ({ receive: (text) => conn.send(text) }))],
    services,
    upgrade: testUpgrade,
  });
  const slashless = new Communicator(app, "/ws/echo");
  // As a real client meets it: a WebSocket follows no redirect, so the slash is named.
  const refused = await slashless.connect();
  assertEquals([refused.accepted, refused.status], [false, 404]);
  assertEquals(
    refused.reason,
    "No WebSocket route at /ws/echo: the route is /ws/echo/, with its trailing slash",
  );
  assertThrows(
    () => slashless.send("hi"),
    Error,
    "the route is /ws/echo/, with its trailing slash",
  );
  const unknown = new Communicator(app, "/ws/ecoh/");
  await unknown.connect();
  const error = await assertRejects(() => unknown.receive(), Error, "refused with 404");
  assert(!error.message.includes("<"), `an HTML page in the error: ${error.message}`);
  await assertRejects(
    () => new Communicator(app, "/ws/echo/").receive(),
    Error,
    "receive before connect",
  );
  await app.close();
});

// A layer may reject every caller with one error object: the socket that forgot its `await` is
// the one failed, not one that awaited and handled the same error.
Deno.test("a call nobody awaited fails its own socket, even when another socket's call failed with the same error", async () => {
  await using services = await createTestServices();
  const shared = new Error("the broker said no");
  services.layer.groupAdd = () => Promise.reject(shared);
  const careful: Consumer = (conn) => ({
    async receive() {
      try {
        await conn.groupAdd("g");
      } catch {
        conn.send("handled");
      }
    },
  });
  const careless: Consumer = (conn) => ({
    receive() {
      conn.groupAdd("g"); // the await forgotten
      conn.send("sent");
    },
  });
  const [first, second] = [
    new Communicator({ consumer: careful, services }, "/ws/careful/"),
    new Communicator({ consumer: careless, services }, "/ws/careless/"),
  ];
  for (const comm of [first, second]) await comm.connect();
  first.send("go");
  assertEquals(await first.receive(), "handled");
  second.send("go");
  assertEquals(await second.receive(), "sent");
  await assertRejects(() => second.waitForClose(), Error, "the broker said no");
  assert(await first.receiveNothing(100), "the socket that handled it was closed");
  await first.disconnect();
});

// The failure reaches the framework through `unhandledrejection`, a task after the rejection:
// a test that disconnects at once must still be told, as Channels' communicator raises it.
Deno.test("a call nobody awaited that fails as the test disconnects rejects disconnect(), and its log announces no close", async () => {
  await using services = await createTestServices();
  using captured = new CapturedLog();
  log.setLevel("warn"); // the test services' level is "silent", which they set again
  using _silent = { [Symbol.dispose]: () => log.setLevel("silent") };
  const joinsNoGroup: Consumer = (conn) => ({
    connect() {
      conn.groupAdd(""); // the await forgotten, and no group has that name
    },
  });
  const sendsADate: Consumer = (conn) => ({
    receive() {
      // The await forgotten, and a Date is not JSON the layer can carry.
      conn.groupSend("g", { type: "x", d: new Date() as unknown as string });
    },
  });
  const joining = new Communicator({ consumer: joinsNoGroup, services }, "/ws/joins/");
  assert((await joining.connect()).accepted);
  await assertRejects(() => joining.disconnect(), Error, "The consumer failed (after the close)");
  const sending = new Communicator({ consumer: sendsADate, services }, "/ws/sends/");
  await sending.connect();
  sending.send("go");
  await assertRejects(() => sending.disconnect(), Error, "The consumer failed (after the close)");
  const failed = captured.lines.filter((line) => line.includes("Consumer failed on"));
  assertEquals(failed.length, 2, failed.join("\n"));
  for (const line of failed) {
    assertStringIncludes(line, "after its socket closed");
    assert(!line.includes("closing with 1011"), line); // it had closed with 1000
  }
});

Deno.test("every communicator wait that runs out rejects with the one exported timeout error", async () => {
  await using services = await createTestServices();
  let release = () => {};
  const held = new Promise<void>((resolve) => release = resolve);
  const stuck: Consumer = () => ({ connect: () => held });
  const app = createApp({
    routes: [socket("/ws/echo/", echo), socket("/ws/stuck/", stuck)],
    services,
    upgrade: testUpgrade,
  });
  const comm = new Communicator(app, "/ws/echo/");
  await comm.connect();
  await assertRejects(() => comm.receive(50), NoAnswerInTimeError, "No frame within 50 ms");
  await assertRejects(() => comm.waitForClose(50), NoAnswerInTimeError, "still open after 50");
  await comm.disconnect();
  const slow = new Communicator(app, "/ws/stuck/");
  await assertRejects(() => slow.connect(50), NoAnswerInTimeError, "did not finish within 50");
  release();
  await slow.disconnect();
  await app.close();
});
