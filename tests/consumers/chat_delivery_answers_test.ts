/** The chat's delivery protocol: refs on answers and acks, publishes that fail, outages logged. */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { Communicator } from "../../testing.ts";
import { createTestApp } from "../_support/test_app.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log, type LogLevel } from "../../telemetry/log.ts";
import { chatConsumer } from "../../consumers/chat.ts";
import { type GroupStreams, PublishUnconfirmedError } from "../../mod.ts";
import { undelivered } from "../../layers/streams/contract.ts";
import { type Frame, GENEROUS, join, ROOM_ROUTE } from "./_chat_delivery_support.ts";

Deno.test("a ref comes back on every error answering its frame", async () => {
  await using app = await createTestApp(GENEROUS);
  const comm = await join(app, "lobby");
  const cases: [unknown, RegExp][] = [
    [{ ref: "r1" }, /like \{"message"/],
    [{ message: 5, ref: "r2" }, /like \{"message"/],
    [{ message: "  ", ref: "r3" }, /empty/],
    [{ message: "x".repeat(10_001), ref: 4 }, /too long/],
    // An ack asked for in a way none is sent for: told, not left waiting.
    [{ message: "hi", ref: "r5", ack: "true" }, /"ack" must be true or false/],
    [{ message: "hi", ref: "r6", ack: 1 }, /"ack" must be true or false/],
    [{ message: "hi", ref: "r7", ack: null }, /"ack" must be true or false/],
  ];
  for (const [frame, error] of cases) {
    comm.sendJson(frame);
    const answer = await comm.receiveJson();
    assertEquals([answer.type, answer.ref], ["error", (frame as Frame).ref]);
    assertMatch(String(answer.error), error);
  }
  // Not a ref, nor a lone surrogate (refused in a message too): nothing echoed, nothing stored.
  for (const ref of [{ not: "a ref" }, "\ud800"]) {
    comm.sendJson({ message: "hi", ref, ack: true });
    const bad = await comm.receiveJson();
    assertEquals([bad.type, bad.ref], ["error", undefined]);
    assertMatch(String(bad.error), /"ref" must be/);
  }
  comm.sendJson({ message: "hi", ack: true });
  const noRef = await comm.receiveJson();
  assertEquals([noRef.type, noRef.ref], ["error", undefined]);
  assertMatch(String(noRef.error), /needs a "ref"/);
  // Counted in characters, as a message is: 64 emoji fit, 65 do not.
  for (const [ref, fits] of [["😀".repeat(64), true], ["😀".repeat(65), false]] as const) {
    comm.sendJson({ message: "x".repeat(10_001), ref });
    const answer = await comm.receiveJson();
    assertEquals(answer.ref, fits ? ref : undefined, `${[...ref].length} emoji`);
  }
  assertEquals(comm.closeCode, null);
});

Deno.test("with ack, a stored message is acknowledged with its ref, offset and epoch", async () => {
  await using app = await createTestApp(GENEROUS);
  const comm = await join(app, "lobby", "?stream=1");
  const { epoch } = await comm.receiveJson();
  comm.sendJson({ message: "hi", ref: "r17", ack: true });
  comm.sendJson({ message: "no ack asked", ref: "r18" });
  const frames = [];
  for (let n = 0; n < 3; n++) frames.push(await comm.receiveJson());
  const ack = frames.find((f) => f.type === "ack");
  assertEquals(ack, { type: "ack", ref: "r17", offset: 1, epoch });
  const messages = frames.filter((f) => f.type === "chat.message").map((
    f,
  ) => [f.message, f.offset]);
  assertEquals(messages, [["hi", 1], ["no ack asked", 2]]);
  assert(await comm.receiveNothing(50), "a message without ack was acknowledged");
});

// The answer to one chat message with an ack asked, from a chat whose publishes fail with
// `error` (reads go to the app's own streams).
async function answerWhenPublishFails(
  error: Error,
  logLevel: LogLevel = "silent",
): Promise<Record<string, unknown>> {
  await using app = await createTestApp({ ...GENEROUS, logLevel });
  const failing: GroupStreams = {
    publish: () => Promise.reject(error),
    since: (group, position) => app.services.streams.since(group, position),
    latest: (group, count) => app.services.streams.latest(group, count),
    close: () => Promise.resolve(),
  };
  const target = { consumer: chatConsumer(failing), services: app.services, route: ROOM_ROUTE };
  const comm = new Communicator(target, "/ws/chat/lobby/");
  assert((await comm.connect()).accepted);
  comm.sendJson({ message: "hi", ref: "r1", ack: true });
  const answer = await comm.receiveJson();
  await comm.disconnect();
  return answer;
}

Deno.test("a message that cannot be stored gets an error with its ref, not an ack", async () => {
  const answer = await answerWhenPublishFails(new Error("Redis is away"));
  assertEquals([answer.type, answer.ref, answer.unconfirmed], ["error", "r1", undefined]);
  assertMatch(String(answer.error), /not sent/);
});

Deno.test("a message whose storage lost its answer is said to be unconfirmed, not refused", async () => {
  const answer = await answerWhenPublishFails(new PublishUnconfirmedError("no answer in time"));
  assertEquals([answer.type, answer.ref, answer.unconfirmed], ["error", "r1", true]);
  assertMatch(String(answer.error), /not confirmed/);
});

Deno.test("a message stored whose send to the room failed is said to be stored, unconfirmed to the room, not 'not being stored'", async () => {
  using captured = new CapturedLog();
  const answer = await answerWhenPublishFails(
    undelivered("chat.lobby", 7, new Error("NOPERM eval")),
    "warn",
  );
  assertEquals([answer.type, answer.ref, answer.unconfirmed], ["error", "r1", true]);
  assertMatch(String(answer.error), /Message stored, but not handed to the room's members live/);
  const warned = captured.lines.filter((line) => line.includes("Chat messages are"));
  assertEquals(warned.length, 1, captured.lines.join("\n"));
  assertMatch(warned[0], /stored but not reaching the rooms' members live/);
  assert(!warned[0].includes("not being stored"), warned[0]);
});

Deno.test("an outage of the streams is logged once, not once per message, and its end with a count", async () => {
  using captured = new CapturedLog();
  await using app = await createTestApp(GENEROUS);
  log.setLevel("info");
  let away = true;
  const flaky: GroupStreams = {
    publish: (group, event, options) =>
      away
        ? Promise.reject(new Error("Redis is away"))
        : app.services.streams.publish(group, event, options),
    since: (group, position) => app.services.streams.since(group, position),
    latest: (group, count) => app.services.streams.latest(group, count),
    close: () => Promise.resolve(),
  };
  const target = { consumer: chatConsumer(flaky), services: app.services, route: ROOM_ROUTE };
  const senders = [
    new Communicator(target, "/ws/chat/a/"),
    new Communicator(target, "/ws/chat/b/"),
  ];
  for (const sender of senders) assert((await sender.connect()).accepted);
  for (let n = 0; n < 5; n++) {
    for (const sender of senders) {
      sender.sendJson({ message: `m${n}` });
      assertMatch(String((await sender.receiveJson()).error), /not sent/, "each sender is told");
    }
  }
  const warned = captured.lines.filter((line) => line.includes("not being stored"));
  assertEquals(warned.length, 1, captured.lines.join("\n"));
  away = false;
  senders[0].sendJson({ message: "back" });
  assertEquals((await senders[0].receiveJson()).message, "back");
  await captured.waitFor(
    /Chat messages go through again \(10 not sent, not confirmed or not delivered live meanwhile\)/,
  );
  for (const sender of senders) await sender.disconnect();
});

Deno.test("a rate-limit notice carries the ref of the frame it refused", async () => {
  await using app = await createTestApp({ rateLimit: { perSecond: 1, burst: 1 } });
  const comm = new Communicator(app, "/ws/chat/lobby/");
  await comm.connect();
  comm.sendJson({ message: "first", ref: "a" });
  comm.sendJson({ message: "second", ref: "b" });
  let refusal: Record<string, unknown> | undefined;
  while (refusal === undefined) {
    const frame = await comm.receiveJson();
    if (frame.type === "error") refusal = frame;
  }
  assertEquals(refusal.ref, "b");
  assert(/Rate limit/.test(String(refusal.error)));
  await comm.disconnect();
});
