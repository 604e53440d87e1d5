/** The communicator raises what a consumer failed with, once, as Channels' communicator does. */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { type Consumer, createApp, socket } from "../../mod.ts";
import { Communicator, createTestServices, testUpgrade } from "../../testing.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";

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
  assertEquals(
    (error.cause as Error).stack?.includes("communicator_consumer_failures_test.ts"),
    true,
  );
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
  assertEquals(
    (error.cause as Error).stack?.includes("communicator_consumer_failures_test.ts"),
    true,
  );
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
  // A consumer that takes "chat.message" (or "chat_message", its Channels name) events only.
  const ported: Consumer = (conn) => ({
    connect: () => conn.groupAdd("lobby"),
    events: { chat_message: (event) => conn.sendJson(event) },
  });
  const app = createApp({ routes: [socket("/ws/lobby/", ported)], services, upgrade: testUpgrade });
  const [a, b] = [new Communicator(app, "/ws/lobby/"), new Communicator(app, "/ws/lobby/")];
  await a.connect();
  await b.connect();
  await services.layer.groupSend("lobby", { type: "chat.mesage", text: "hi" }); // mistyped
  await services.layer.groupSend("lobby", { type: "chat.mesage", text: "again" });
  await services.layer.groupSend("lobby", { type: "user.joined" });
  const error = await assertRejects(() => a.receive(200), Error, "No frame within 200 ms");
  assertStringIncludes(error.message, 'No handler for "chat.mesage" events');
  const warned = captured.lines.filter((line) => line.includes("No handler for"));
  assertEquals(warned.length, 2, warned.join("\n")); // two types, two sockets: one line each type
  assertStringIncludes(warned[0], 'No handler for "chat.mesage" events, on /ws/lobby/: ignored');
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

Deno.test("a communicator waiting in vain names a misnamed hook, and says it in the test's output, where the log is silent", async () => {
  await using services = await createTestServices(); // its log is silent
  const told: unknown[][] = [];
  const consoleWarn = console.warn;
  console.warn = (...args: unknown[]) => void told.push(args);
  using _restore = { [Symbol.dispose]: () => console.warn = consoleWarn };
  // Channels' `receive_json`, and `event` for `events`: type-checked, neither is an error.
  const ported: Consumer = (conn) =>
    ({
      receive_json(value: unknown) {
        conn.sendJson(value);
      },
      event: { "poll.vote": () => conn.sendJson({ voted: true }) },
    }) as ReturnType<Consumer>;
  const comm = new Communicator({ consumer: ported, services }, "/ws/poll/1/");
  await comm.connect();
  assertEquals(told.length, 1);
  assertStringIncludes(String(told[0][0]), "did you mean `receiveJson`?");
  assertStringIncludes(String(told[0][0]), "`event`, which is no hook");
  comm.sendJson({ vote: "yes" });
  const waited = await comm.receive(50).then(() => null, (error) => error);
  assertStringIncludes(String(waited?.message), "No frame within 50 ms");
  assertStringIncludes(String(waited?.message), "did you mean `receiveJson`?");
  await comm.disconnect();
  // A consumer with its hooks rightly named says nothing.
  const right = new Communicator({
    consumer: (conn) => ({ receiveJson: (value) => conn.sendJson(value) }),
    services,
  }, "/ws/poll/2/");
  await right.connect();
  assertEquals(told.length, 1);
  await right.disconnect();
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
