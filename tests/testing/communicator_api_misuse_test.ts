/** The communicator says what is wrong when a test misuses its API, as a WebSocket would. */
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
    routes: [
      socket("/ws/echo/", (conn) => ({ receive: (text) => conn.send(text) })),
      socket("/ws/rooms/:room/", (conn) => ({ receive: (text) => conn.send(text) })),
      socket("/ws/feeds/:feed", (conn) => ({ receive: (text) => conn.send(text) })),
    ],
    services,
    upgrade: testUpgrade,
  });
  // A route written without the slash, and a client with one: named too.
  const slashed = await new Communicator(app, "/ws/feeds/news/").connect();
  assertEquals(
    [slashed.status, slashed.reason],
    [
      404,
      "No WebSocket route at /ws/feeds/news/: the route is /ws/feeds/news, without its " +
      "trailing slash",
    ],
  );
  // Two slashes: no route is named, rather than "/ws/echo/, without its trailing slash".
  const doubled = await new Communicator(app, "/ws/echo//").connect();
  assertEquals(doubled.reason, "No WebSocket route at /ws/echo//");
  // The path's own encoding changes nothing of which slash is named.
  const encoded = await new Communicator(app, "/ws/%65cho").connect();
  assertStringIncludes(encoded.reason ?? "", "the route is /ws/echo/, with its trailing slash");
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
  // A path no route can read, in plain words too, as a WebSocket client shows no page.
  for (
    const [path, status] of [["/ws/rooms/a%ZZ/", 400], [
      `/ws/rooms/${"x".repeat(5000)}/`,
      414,
    ]] as const
  ) {
    const malformed = await new Communicator(app, path).connect();
    assertEquals([malformed.accepted, malformed.status], [false, status]);
    const reason = malformed.reason ?? "";
    assert(reason.startsWith("Bad handshake: "), reason);
    assert(!reason.includes("<"), `an HTML page: ${reason}`);
  }
  await assertRejects(
    () => new Communicator(app, "/ws/echo/").receive(),
    Error,
    "receive before connect",
  );
  await app.close();
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
