/** The stream follower's gaps: events read while a gap is read, lost or on their way, once each. */
import { log } from "../../telemetry/log.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { assert, assertEquals } from "@std/assert";
import { Communicator, createTestServices } from "../../testing.ts";
import {
  type Consumer,
  InMemoryLayer,
  type LayerEvent,
  MemoryStreams,
  RECOVERED,
  StreamFollowing,
} from "../../mod.ts";
import { DenoKvStore } from "../../storage/deno_kv_store.ts";
import {
  ControlledStreams,
  deliver,
  type Frame,
  frames,
  GROUP,
  notesConsumer,
  open,
} from "./_stream_follower_support.ts";

Deno.test("a burst of events while a gap is read never closes the socket, and each comes once, in order", async () => {
  await using services = await createTestServices();
  await using streams = await ControlledStreams.open();
  const consumer = notesConsumer(services, {}, streams);
  const comm = await open(consumer, services, "?stream=1");
  await comm.receiveJson(); // its position
  const events = await streams.publishAll(...Array.from({ length: 300 }, (_, n) => `n${n + 1}`));
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  streams.gate = released;
  // Event 1 is overtaken: the socket reads the gap while 299 more come, three times what a
  // socket's queue holds (CHANNEL_CAPACITY, 100).
  await deliver(services, events.slice(1));
  release();
  await deliver(services, events.slice(0, 1));
  const received = await frames(comm, 300);
  assertEquals(received.map((f) => f.offset), events.map((e) => e.offset));
  assert(await comm.receiveNothing(50), "an offset came twice");
  await comm.disconnect();
});

Deno.test("when the new epoch cannot be read, a following client is told, and goes on from there", async () => {
  await using services = await createTestServices();
  await using streams = await ControlledStreams.open();
  const consumer = notesConsumer(services, {}, streams);
  const comm = await open(consumer, services, "?stream=1");
  const position = await comm.receiveJson();
  await deliver(services, await streams.publishAll("old"));
  assertEquals((await comm.receiveJson()).text, "old");
  await streams.lose();
  const [, second] = await streams.publishAll("new1", "new2");
  streams.failing = true;
  await deliver(services, [second]);
  const verdict = await comm.receiveJson();
  assertEquals([verdict.type, verdict.complete, verdict.epoch, verdict.offset], [
    RECOVERED,
    false,
    second.epoch,
    1,
  ]);
  assert(verdict.epoch !== position.epoch);
  assertEquals([(await comm.receiveJson()).text], ["new2"]);
  await comm.disconnect();
});

Deno.test("a read that fails while the store comes back is tried again, and nothing is missed", async () => {
  await using services = await createTestServices();
  await using streams = await ControlledStreams.open();
  const comm = await open(notesConsumer(services, {}, streams), services, "?stream=1");
  const position = await comm.receiveJson();
  await streams.lose();
  const [, second] = await streams.publishAll("new1", "new2");
  streams.failures = 2;
  await deliver(services, [second]);
  const verdict = await comm.receiveJson();
  assertEquals([verdict.type, verdict.complete, verdict.reason], [
    RECOVERED,
    false,
    "the stream's epoch changed",
  ]);
  assert(verdict.epoch !== position.epoch);
  assertEquals((await frames(comm, 2)).map((f) => f.text), ["new1", "new2"]);
  assert(await comm.receiveNothing(50), "more came");
  await comm.disconnect();
});

Deno.test("stragglers of an epoch the socket left behind are dropped", async () => {
  await using services = await createTestServices();
  await using streams = await ControlledStreams.open();
  const comm = await open(notesConsumer(services, {}, streams), services);
  const [first, straggler] = await streams.publishAll("old1", "old2");
  await deliver(services, [first]);
  assertEquals((await comm.receiveJson()).text, "old1");
  await streams.lose();
  await deliver(services, await streams.publishAll("new1"));
  assertEquals([(await comm.receiveJson()).text], ["new1"]);
  const reads = streams.reads;
  await deliver(services, [straggler]);
  assert(await comm.receiveNothing(50), "a straggler of the old epoch was sent");
  assertEquals(streams.reads, reads, "a straggler made the socket read the stream again");
  await comm.disconnect();
});

Deno.test("a gap the stream no longer keeps: a following client is told, every socket gets what is kept after it", async () => {
  await using services = await createTestServices();
  await using streams = await ControlledStreams.open({ messages: 5, seconds: 0 });
  const consumer = notesConsumer(services, {}, streams);
  const following = await open(consumer, services, "?stream=1");
  const plain = await open(consumer, services);
  const position = await following.receiveJson();
  const events = await streams.publishAll(...Array.from({ length: 20 }, (_, n) => `n${n + 1}`));
  await deliver(services, events.slice(-1)); // 1 to 19 were dropped for the socket, say
  const verdict = await following.receiveJson();
  assertEquals([verdict.type, verdict.complete, verdict.epoch], [RECOVERED, false, position.epoch]);
  const kept = ["n16", "n17", "n18", "n19", "n20"];
  assertEquals((await frames(following, 5)).map((f) => f.text), kept);
  assertEquals((await frames(plain, 5)).map((f) => f.text), kept);
  for (const comm of [following, plain]) {
    assert(await comm.receiveNothing(50), "more came");
    await comm.disconnect();
  }
});

// Two processes on Redis, a window of 5 and a burst of 20: this process's own message comes
// first (its script answered), the other's 19 are still on their way when the gap is read, and
// the stream no longer has them. They are waited for, not taken for lost.
Deno.test("a gap the stream no longer keeps is filled by its events still on their way, for every socket", async () => {
  await using services = await createTestServices();
  await using streams = await ControlledStreams.open({ messages: 5, seconds: 0 });
  const consumer = notesConsumer(services, {}, streams);
  const following = await open(consumer, services, "?stream=1");
  const plain = await open(consumer, services);
  await following.receiveJson(); // its position
  const events = await streams.publishAll(...Array.from({ length: 20 }, (_, n) => `n${n + 1}`));
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  streams.gate = released;
  await deliver(services, events.slice(-1));
  release();
  await deliver(services, events.slice(0, -1));
  const texts = events.map((event) => event.text);
  for (const comm of [following, plain]) {
    assertEquals((await frames(comm, 20)).map((f) => f.text), texts);
    assert(await comm.receiveNothing(50), "more came");
    await comm.disconnect();
  }
});

// Beyond what a socket holds while it reads (128 events) and what the stream keeps (5 here),
// some are lost: those nearest the gap are the ones kept, sent in order before the loss is told.
Deno.test("a burst past what a socket holds keeps the events nearest the gap, and tells the rest", async () => {
  await using services = await createTestServices();
  await using streams = await ControlledStreams.open({ messages: 5, seconds: 0 });
  const consumer = notesConsumer(services, {}, streams);
  const following = await open(consumer, services, "?stream=1");
  const position = await following.receiveJson();
  const events = await streams.publishAll(...Array.from({ length: 200 }, (_, n) => `n${n + 1}`));
  await deliver(services, events.slice(60)); // 140 overtake the first 60
  await deliver(services, events.slice(0, 60));
  const before: Frame[] = [];
  for (let frame = await following.receiveJson(); frame.type !== RECOVERED;) {
    before.push(frame);
    frame = await following.receiveJson();
  }
  // From the first on, in order, at least as many as a socket holds: the gap came first.
  assert(before.length >= 128, `only ${before.length} before the loss was told`);
  assertEquals(before.map((f) => f.offset), events.slice(0, before.length).map((e) => e.offset));
  const after = await frames(following, 5);
  assertEquals(after.map((f) => f.text), ["n196", "n197", "n198", "n199", "n200"]);
  assert(await following.receiveNothing(50), "more came");
  await following.disconnect();
  assertEquals(position.type, RECOVERED);
});

Deno.test("an event the stream never had is given up on after a read or two, not read forever, and said", async () => {
  await using services = await createTestServices();
  using captured = new CapturedLog();
  log.setLevel("warn"); // the test services' level is "silent", which they set again
  using _silent = { [Symbol.dispose]: () => log.setLevel("silent") };
  await using streams = await ControlledStreams.open();
  const comm = await open(notesConsumer(services, {}, streams), services, "?stream=1");
  const { epoch } = await comm.receiveJson();
  const [a, b] = await streams.publishAll("a", "b");
  await deliver(services, [a]);
  assertEquals((await comm.receiveJson()).text, "a");
  const reads = streams.reads;
  // As a raw publish with the stream's fields would be: another epoch, or an offset far ahead.
  await deliver(services, [
    { type: "note", text: "foreign", offset: 5, epoch: "zzzz" },
    { type: "note", text: "far", offset: 1_000_000, epoch },
  ]);
  await deliver(services, [b]);
  const after = [];
  for (let n = 0; n < 10 && after.at(-1) !== "b"; n++) {
    const frame = await comm.receiveJson();
    after.push(frame.type === RECOVERED ? RECOVERED : frame.text);
  }
  assertEquals(after.at(-1), "b", after.join(", "));
  assert(!after.includes("foreign") && !after.includes("far"), after.join(", "));
  assert(await comm.receiveNothing(50), "more came");
  assert(streams.reads - reads <= 6, `${streams.reads - reads} reads for two such events`);
  await comm.disconnect();
  const dropped = captured.lines.filter((line) => line.includes("is not in the group's stream"));
  assertEquals(new Set(dropped).size, dropped.length, "said more than once: " + dropped.join("\n"));
  assert(dropped.some((line) => line.includes('offset 5 of epoch "zzzz"')), dropped.join("\n"));
});

Deno.test("a gap read under way when the history is lost ends with one notice, then goes live", async () => {
  await using services = await createTestServices();
  await using streams = await ControlledStreams.open();
  const comm = await open(notesConsumer(services, {}, streams), services, "?stream=1");
  await comm.receiveJson(); // its position
  const [a, , c] = await streams.publishAll("a", "b", "c");
  await deliver(services, [a]);
  assertEquals((await comm.receiveJson()).text, "a");
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  streams.gate = released;
  await deliver(services, [c]); // b is late: the socket reads the gap, which waits
  await streams.lose(); // meanwhile the history is lost
  const [d, e] = await streams.publishAll("d", "e");
  streams.gate = null;
  release();
  const verdict = await comm.receiveJson();
  assertEquals([verdict.type, verdict.complete, verdict.epoch], [RECOVERED, false, d.epoch]);
  assertEquals((await frames(comm, 2)).map((f) => f.text), ["d", "e"]);
  const reads = streams.reads;
  const [f] = await streams.publishAll("f");
  await deliver(services, [e, f]);
  assertEquals((await comm.receiveJson()).text, "f");
  assert(await comm.receiveNothing(50), "more came");
  assertEquals(streams.reads - reads, 0, "the socket went on reading");
  await comm.disconnect();
});

// Django sent G to the group, then S to this socket alone; the socket's follower is reading
// its stream (another process's message b is stored, its live copy not here yet).
Deno.test("an event from outside that is not kept waits behind one kept before it while the stream is read", async () => {
  await using services = await createTestServices();
  const store = await DenoKvStore.open(":memory:");
  // The shared stream (as Redis would be): its publishes reach nobody live here.
  const inner = new MemoryStreams(new InMemoryLayer(), store, { writeDelayMs: 0 });
  const streams = {
    publish: inner.publish.bind(inner),
    since: async (g: string, p: { epoch: string; offset: number }) => {
      await new Promise((r) => setTimeout(r, 20)); // one Redis round trip
      return inner.since(g, p);
    },
    latest: inner.latest.bind(inner),
    close: () => inner.close(),
    // As RedisStreams: keeps the received event's copy in the stream, once.
    keepForeign: async (g: string, _received: LayerEvent, kept: LayerEvent) => {
      const published = await inner.publish(g, kept);
      return { ...kept, offset: published.offset, epoch: published.epoch };
    },
  };
  const following = new StreamFollowing(streams as never, {
    keepForeign: (event) => event.toOne === true ? null : { type: "note", text: event.text },
  });
  let channel = "";
  const consumer: Consumer = (conn) => {
    const follower = following.follow(conn, GROUP);
    return {
      async connect() {
        channel = conn.channelName;
        await conn.groupAdd(GROUP);
        await follower.enter();
      },
      events: { note: (event) => follower.deliver(event) },
    };
  };
  await inner.publish(GROUP, { type: "note", text: "a" });
  const comm = new Communicator({ consumer, services }, "/ws/notes/");
  await comm.connect();
  const first = await comm.receiveJson(); // history: a
  // Another process's message, stored; its live copy is still on its way here.
  await inner.publish(GROUP, { type: "note", text: "b (other process)" });
  // Django: group_send G, then send S to this socket's channel, in that order.
  await services.layer.groupSend(GROUP, { type: "note", text: "G (group_send)" });
  await services.layer.send(channel, {
    type: "note",
    text: "S (send to one channel)",
    toOne: true,
  });
  const got = [first.text];
  for (let i = 0; i < 3; i++) got.push((await comm.receiveJson()).text);
  await comm.disconnect();
  await inner.close();
  store.close();
  assertEquals(got, ["a", "b (other process)", "G (group_send)", "S (send to one channel)"]);
});
