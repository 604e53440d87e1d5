/**
 * Slips a newcomer to the framework makes that would otherwise cost them an afternoon, each told
 * where the test shows it: hooks returned in an array, a `connect` that returns something other
 * than `true`, `false` or nothing, an event handler written beside the hooks (Channels' style) or
 * an `events` given as a function, and a stream follower never entered.
 */
import { assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { type Connection, type Consumer, StreamFollowing } from "../../mod.ts";
import { Communicator, createTestServices } from "../../testing.ts";
import { handlerMisplaced } from "../../server/_event_names.ts";

Deno.test("hooks returned in an array are refused with 500, saying so", async () => {
  await using services = await createTestServices();
  const listed = (() => [{ receive: () => {} }]) as unknown as Consumer;
  const comm = new Communicator({ consumer: listed, services }, "/ws/listed/");
  const error = await assertRejects(() => comm.connect(), Error, "refused with 500");
  assertStringIncludes(error.message, "returned an array, not its hooks");
});

Deno.test("a connect hook that returns neither true, false nor nothing refuses the socket with 500, saying what it returned", async () => {
  await using services = await createTestServices();
  for (const [verdict, shown] of [["no", '"no"'], [0, "0"], [new Response(null), "Response"]]) {
    const consumer = (() => ({ connect: () => verdict })) as unknown as Consumer;
    const comm = new Communicator({ consumer, services }, "/ws/odd/");
    const error = await assertRejects(() => comm.connect(), Error, "refused with 500");
    assertStringIncludes(error.message, `The connect hook of /ws/odd/ returned ${shown}`);
    assertStringIncludes(error.message, "returns false to refuse the socket");
  }
  // What the types allow is as it was.
  for (const verdict of [true, undefined]) {
    const comm = new Communicator(
      { consumer: () => ({ connect: () => verdict }), services },
      "/ws/",
    );
    assertEquals((await comm.connect()).accepted, true);
    await comm.disconnect();
  }
  const refused = new Communicator(
    { consumer: () => ({ connect: () => false }), services },
    "/ws/",
  );
  assertEquals((await refused.connect()).status, 403);
});

Deno.test("an event handler written beside the hooks, or an events function, is named when a receive waits in vain", async () => {
  await using services = await createTestServices();
  // Channels' style: a method named after the type, beside the hooks.
  const beside = ((conn) => ({
    connect: () => conn.groupAdd("polls"),
    poll_update(event: unknown) {
      conn.sendJson(event);
    },
  })) as Consumer;
  const asFunction = ((conn: Connection) => ({
    connect: () => conn.groupAdd("polls"),
    events: (event: unknown) => conn.sendJson(event),
  })) as unknown as Consumer;
  const [a, b] = [beside, asFunction].map((consumer) =>
    new Communicator({ consumer, services }, "/ws/polls/")
  );
  await a.connect();
  await b.connect();
  await services.layer.groupSend("polls", { type: "poll.update", votes: 1 });
  const besideError = await assertRejects(() => a.receive(200), Error, "No frame within 200 ms");
  assertStringIncludes(
    besideError.message,
    "the consumer's `poll_update` is no handler: handlers go in its `events` map, " +
      '`events: { "poll.update": (event) => … }`',
  );
  const functionError = await assertRejects(() => b.receive(200), Error, "No frame within");
  assertStringIncludes(functionError.message, "`events` is a function; it is a map of handlers");
  await a.disconnect();
  await b.disconnect();
});

Deno.test("a stream follower whose enter() was never called is named when a receive waits in vain", async () => {
  await using services = await createTestServices();
  const following = new StreamFollowing(services.streams);
  const forgetful: Consumer = (conn) => {
    const follower = following.follow(conn, "poll.7");
    return {
      connect: () => conn.groupAdd("poll.7"), // and no `follower.enter()`
      events: { vote: (event) => follower.deliver(event) },
    };
  };
  const comm = new Communicator({ consumer: forgetful, services }, "/ws/poll/7/");
  await comm.connect();
  await services.streams.publish("poll.7", { type: "vote", choice: "pizza" });
  const error = await assertRejects(() => comm.receive(300), Error, "No frame within 300 ms");
  assertStringIncludes(
    error.message,
    `events of the group "poll.7" wait for its StreamFollower's enter(), never called`,
  );
  await comm.disconnect();
  // The same when the event came during `connect`, before the socket was upgraded.
  const early: Consumer = (conn) => {
    const follower = following.follow(conn, "poll.8");
    return {
      async connect() {
        await conn.groupAdd("poll.8");
        await services.streams.publish("poll.8", { type: "vote", choice: "soup" });
      },
      events: { vote: (event) => follower.deliver(event) },
    };
  };
  const earlyComm = new Communicator({ consumer: early, services }, "/ws/poll/8/");
  await earlyComm.connect();
  const earlyError = await assertRejects(() => earlyComm.receive(300), Error, "No frame within");
  assertStringIncludes(earlyError.message, `events of the group "poll.8" wait for its`);
  await earlyComm.disconnect();
});

Deno.test("a hook is never taken for an event handler written beside the hooks", () => {
  const hooks = { connect() {}, drained() {}, receive() {}, events: {} };
  for (const type of ["connect", "drained", "receive"]) {
    assertEquals(handlerMisplaced(hooks, type), "");
  }
  assertStringIncludes(handlerMisplaced({ chat_message() {} }, "chat.message"), "`chat_message`");
});
