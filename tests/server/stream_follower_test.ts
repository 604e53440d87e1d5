/**
 * The stream protocol's server side, as an app of its own uses it (not the chat): entry by the
 * socket's query, live events once each and in order, what it sends and what it skips.
 */
import { log } from "../../telemetry/log.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { Communicator, createTestServices, type TestServices } from "../../testing.ts";
import {
  type Consumer,
  DEFAULT_HISTORY_SIZE,
  type GroupStreams,
  InMemoryLayer,
  type LayerEvent,
  MemoryStreams,
  RECOVERED,
  type StreamEvent,
  StreamFollowing,
  type StreamFollowingOptions,
  type StreamRead,
} from "../../mod.ts";
import { DenoKvStore } from "../../storage/deno_kv_store.ts";
import { LAYER_GAP } from "../../layers/layer.ts";
import { CloseCode } from "../../server/close_codes.ts";

type Frame = Record<string, unknown>;
const GROUP = "notes";

/** A notes app: every note is published into the group's stream; sockets follow it. */
function notesConsumer(
  services: TestServices,
  options?: StreamFollowingOptions,
  streams: GroupStreams = services.streams,
): Consumer {
  const following = new StreamFollowing(streams, options);
  return (conn) => {
    const follower = following.follow(conn, GROUP);
    return {
      async connect() {
        await conn.groupAdd(GROUP);
        await follower.enter();
      },
      async receiveJson(value) {
        await services.streams.publish(GROUP, { type: "note", text: String(value) });
      },
      events: { note: (event) => follower.deliver(event) },
    };
  };
}

async function open(consumer: Consumer, services: TestServices, query = ""): Promise<Communicator> {
  const comm = new Communicator({ consumer, services }, `/ws/notes/${query}`);
  assert((await comm.connect()).accepted);
  return comm;
}

async function publish(services: TestServices, ...texts: string[]): Promise<void> {
  for (const text of texts) await services.streams.publish(GROUP, { type: "note", text });
}

async function frames(comm: Communicator, count: number): Promise<Frame[]> {
  const received = [];
  for (let n = 0; n < count; n++) received.push(await comm.receiveJson());
  return received;
}

Deno.test("a first visit with ?stream=1 gets its position, the history, then live events", async () => {
  await using services = await createTestServices();
  const consumer = notesConsumer(services, { historySize: 2 });
  await publish(services, "a", "b", "c");
  const comm = await open(consumer, services, "?stream=1");
  const [position, ...history] = await frames(comm, 3);
  assertEquals([position.type, position.complete, position.fresh, position.offset], [
    RECOVERED,
    true,
    true,
    3,
  ]);
  assertEquals(history.map((f) => [f.text, f.offset, f.history]), [["b", 2, true], ["c", 3, true]]);
  comm.sendJson("d");
  const live = await comm.receiveJson();
  assertEquals([live.text, live.offset, live.history], ["d", 4, undefined]);
  await comm.disconnect();
});

Deno.test("a client back with its position gets what it missed, marked recovered, then live", async () => {
  await using services = await createTestServices();
  const consumer = notesConsumer(services);
  await publish(services, "a", "b");
  const { epoch } = await services.streams.latest(GROUP, 0);
  await publish(services, "c", "d");
  const comm = await open(consumer, services, `?epoch=${epoch}&since=2`);
  const [verdict, ...missed] = await frames(comm, 3);
  assertEquals(verdict, { type: RECOVERED, complete: true, epoch, offset: 4 });
  assertEquals(missed.map((f) => [f.text, f.recovered]), [["c", true], ["d", true]]);
  assert(await comm.receiveNothing(20), "more than the missed events came");
  await comm.disconnect();
});

Deno.test("a client back from an epoch that is gone is told, and gets the history", async () => {
  await using services = await createTestServices();
  const consumer = notesConsumer(services);
  await publish(services, "a", "b");
  const comm = await open(consumer, services, "?epoch=gone&since=1");
  const [verdict, ...history] = await frames(comm, 3);
  assertEquals([verdict.type, verdict.complete, verdict.offset], [RECOVERED, false, 2]);
  assertEquals(typeof verdict.reason, "string");
  assertEquals(history.map((f) => [f.text, f.history]), [["a", true], ["b", true]]);
  await comm.disconnect();
});

Deno.test("a client that cannot recover is told the position its history ends at, though more came between the reads", async () => {
  await using services = await createTestServices();
  await publish(services, "a", "b");
  // Another process publishes between the read that finds the gap and the read of history.
  const real = services.streams;
  const streams = {
    publish: real.publish.bind(real),
    latest: real.latest.bind(real),
    close: () => real.close(),
    since: async (...args: Parameters<GroupStreams["since"]>) => {
      const read = await real.since(...args);
      await publish(services, "c");
      return read;
    },
  } as GroupStreams;
  const consumer = notesConsumer(services, {}, streams);
  const comm = await open(consumer, services, "?epoch=gone&since=1");
  const [verdict, ...history] = await frames(comm, 4);
  assertEquals([verdict.complete, history.map((f) => f.text)], [false, ["a", "b", "c"]]);
  // A client goes on from the position it was told: the last history frame's, not before it.
  assertEquals(verdict.offset, history.at(-1)!.offset);
  await comm.disconnect();
});

Deno.test("a client that knows nothing of offsets gets the last 50 and no position frame", async () => {
  await using services = await createTestServices();
  const consumer = notesConsumer(services);
  const texts = Array.from({ length: DEFAULT_HISTORY_SIZE + 5 }, (_, n) => `n${n + 1}`);
  await publish(services, ...texts);
  const comm = await open(consumer, services);
  const history = await frames(comm, DEFAULT_HISTORY_SIZE);
  assertEquals(history.map((f) => f.text), texts.slice(5));
  assert(await comm.receiveNothing(20), "more than the history came");
  await comm.disconnect();
});

Deno.test("frameOf shapes each frame and skips the events it returns null for", async () => {
  await using services = await createTestServices();
  const shaped = new WeakMap<LayerEvent, LayerEvent>();
  const consumer = notesConsumer(services, {
    frameOf(event) {
      if (event.text === "secret") return null;
      if (!shaped.has(event)) {
        shaped.set(event, { ...event, text: String(event.text).toUpperCase() });
      }
      return shaped.get(event)!;
    },
  });
  await publish(services, "a", "secret");
  const comm = await open(consumer, services, "?stream=1");
  const [, history] = await frames(comm, 2);
  assertEquals([history.text, history.history], ["A", true]);
  assert(await comm.receiveNothing(20), "a skipped event was sent");
  await publish(services, "secret", "b");
  assertEquals((await comm.receiveJson()).text, "B");
  await comm.disconnect();
});

Deno.test("events without an offset go through as they come", async () => {
  await using services = await createTestServices();
  const comm = await open(notesConsumer(services), services, "?stream=1");
  assertEquals((await comm.receiveJson()).type, RECOVERED);
  // As a Django project would send it, straight to the group.
  await services.layer.groupSend(GROUP, { type: "note", text: "from Django" });
  await services.layer.groupSend(GROUP, { type: "note", text: "again" });
  assertEquals((await frames(comm, 2)).map((f) => [f.text, f.offset]), [
    ["from Django", undefined],
    ["again", undefined],
  ]);
  await comm.disconnect();
});

Deno.test("events that come while the entry reads the stream wait for it, and come once", async () => {
  await using services = await createTestServices();
  await publish(services, "a");
  // A stream whose reads wait until released, with a publish in between.
  const streams = services.streams;
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  const slow = {
    ...streams,
    publish: streams.publish.bind(streams),
    latest: async (group: string, count: number) => {
      const read = await streams.latest(group, count);
      await released;
      return read;
    },
    since: streams.since.bind(streams),
    close: streams.close.bind(streams),
  };
  const following = new StreamFollowing(slow);
  const consumer: Consumer = (conn) => {
    const follower = following.follow(conn, GROUP);
    return {
      async connect() {
        await conn.groupAdd(GROUP);
        await follower.enter();
      },
      events: { note: (event) => follower.deliver(event) },
    };
  };
  const comm = new Communicator({ consumer, services }, "/ws/notes/?stream=1");
  const connected = comm.connect();
  await publish(services, "b");
  release();
  assert((await connected).accepted);
  const received = await frames(comm, 3);
  assertEquals(received.map((f) => [f.type, f.text ?? null]), [
    [RECOVERED, null],
    ["note", "a"],
    ["note", "b"],
  ]);
  assert(await comm.receiveNothing(20), "an event came twice");
  await comm.disconnect();
});

/**
 * Streams the test controls: they publish where no socket listens (the test delivers their
 * events itself, in the order it wants), their reads can be held or made to fail, and their
 * state can be lost, as Redis that restarted empty loses it.
 */
class ControlledStreams implements GroupStreams {
  #store!: DenoKvStore;
  #streams!: MemoryStreams;
  /** Reads wait for this while it is set. */
  gate: Promise<void> | null = null;
  /** Reads fail while this is set. */
  failing = false;
  /** And so many of the next reads fail. */
  failures = 0;
  reads = 0;

  static async open(retention?: { messages: number; seconds: number }) {
    const streams = new ControlledStreams();
    await streams.lose(retention);
    return streams;
  }

  async lose(retention?: { messages: number; seconds: number }): Promise<void> {
    await this.#streams?.close();
    this.#store?.close();
    this.#store = await DenoKvStore.open(":memory:");
    this.#streams = new MemoryStreams(new InMemoryLayer(), this.#store, { retention });
  }

  /** Publishes a note of each text; the events as the group's members get them, every one. */
  async publishAll(...texts: string[]): Promise<StreamEvent[]> {
    const events: StreamEvent[] = [];
    for (const text of texts) {
      const { offset, epoch } = await this.#streams.publish(GROUP, { type: "note", text });
      events.push({ type: "note", text, offset, epoch });
    }
    return events;
  }

  publish(...args: Parameters<GroupStreams["publish"]>) {
    return this.#streams.publish(...args);
  }
  since(...args: Parameters<GroupStreams["since"]>): Promise<StreamRead> {
    return this.#read(() => this.#streams.since(...args));
  }
  latest(...args: Parameters<GroupStreams["latest"]>): Promise<StreamRead> {
    return this.#read(() => this.#streams.latest(...args));
  }
  async close(): Promise<void> {
    await this.#streams.close();
    this.#store.close();
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #read(read: () => Promise<StreamRead>): Promise<StreamRead> {
    this.reads++;
    await this.gate;
    if (this.failing || this.failures-- > 0) throw new Error("The store is away");
    return await read();
  }
}

/** Delivers `events` to the group's members, as the layer would. */
async function deliver(services: TestServices, events: LayerEvent[]): Promise<void> {
  for (const event of events) await services.layer.groupSend(GROUP, event);
}

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

Deno.test("a follower entered twice, or of a group no layer takes, says so at once", async () => {
  await using services = await createTestServices();
  const following = new StreamFollowing(services.streams);
  const entered: Promise<void>[] = [];
  let refusedName: unknown = null;
  const consumer: Consumer = (conn) => {
    const follower = following.follow(conn, GROUP);
    const misnamed = following.follow(conn, "");
    return {
      async connect() {
        await conn.groupAdd(GROUP);
        await follower.enter();
        entered.push(follower.enter());
        refusedName = await misnamed.enter().then(() => null, (error) => error);
      },
    };
  };
  await open(consumer, services);
  const error = await entered[0].then(() => null, (error: Error) => error);
  assert(error instanceof Error && /called already/.test(error.message), String(error));
  assert(refusedName instanceof TypeError, String(refusedName));
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

Deno.test("a client whose frameOf skips others' events recovers its own, however much of others' it missed", async () => {
  await using services = await createTestServices();
  // Each socket sees the notes to its user only.
  const consumer = notesConsumer(services, {
    frameOf: (event, conn) => event.to === conn.scope.query.get("user") ? event : null,
  });
  await services.streams.publish(GROUP, { type: "note", text: "a", to: "ada" });
  const { epoch } = await services.streams.latest(GROUP, 0);
  await services.streams.publish(GROUP, { type: "note", text: "for ada", to: "ada" });
  // 2 MB of notes to someone else: more than a socket holds, but not as ada's frames.
  const long = "x".repeat(5000);
  for (let n = 0; n < 400; n++) {
    await services.streams.publish(GROUP, { type: "note", text: long, to: "bob" });
  }
  const comm = await open(consumer, services, `?user=ada&epoch=${epoch}&since=1`);
  const [verdict, missed] = await frames(comm, 2);
  assertEquals([verdict.type, verdict.complete, verdict.offset], [RECOVERED, true, 402]);
  assertEquals([missed.text, missed.recovered], ["for ada", true]);
  await comm.disconnect();
});

Deno.test("sockets of one route that re-enter at one position share one read, whatever each has unsent", async () => {
  await using services = await createTestServices();
  let reads = 0;
  const streams = services.streams;
  // The streams, with their reads counted (their methods called on them: private fields).
  const counted = new Proxy(streams, {
    get(target, key) {
      if (key === "since") {
        return (...args: Parameters<GroupStreams["since"]>) => (reads++, target.since(...args));
      }
      const value = Reflect.get(target, key);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const consumer = notesConsumer(services, {}, counted);
  await publish(services, "a");
  const comms = [];
  for (let n = 0; n < 20; n++) {
    const comm = await open(consumer, services, "?stream=1");
    await frames(comm, 2); // the position, the history
    comm.socket.bufferedAmount = n * 1000; // each has a little still unsent
    comms.push(comm);
  }
  reads = 0;
  // An event of an epoch they do not know (a Redis master change): each re-enters.
  await services.layer.groupSend(GROUP, { type: "note", text: "x", epoch: "other", offset: 9 });
  for (const comm of comms) assertEquals((await comm.receiveJson()).type, RECOVERED);
  assertEquals(reads, 1);
  for (const comm of comms) {
    comm.socket.bufferedAmount = 0;
    await comm.disconnect();
  }
});

Deno.test("history the socket cannot hold whole is its newest events, ending with the last", async () => {
  await using services = await createTestServices();
  const consumer = notesConsumer(services);
  const long = "x".repeat(30_000);
  for (let n = 1; n <= 50; n++) {
    await services.streams.publish(GROUP, { type: "note", text: `${n} ${long}` });
  }
  const comm = await open(consumer, services, "?stream=1");
  const position = await comm.receiveJson();
  assertEquals([position.type, position.offset], [RECOVERED, 50]);
  const offsets = [];
  while (offsets.at(-1) !== 50) offsets.push((await comm.receiveJson()).offset as number);
  // Fewer than 50 fit (1.5 MB); those that came are the newest, in order, with no gap.
  assert(offsets.length < 50, `all ${offsets.length} fit: the test shows nothing`);
  assertEquals(offsets, Array.from({ length: offsets.length }, (_, i) => 51 - offsets.length + i));
  assertEquals(comm.droppedBeforeOpen, 0);
  await comm.disconnect();
});

Deno.test("a frameOf that throws while a gap is read closes only that socket, with 1011, and the server goes on", async () => {
  // The throw happens away from any hook (a read the follower started on its own); it used to
  // end the process as an unhandled rejection.
  using captured = new CapturedLog();
  await using services = await createTestServices();
  log.setLevel("error"); // the test services' level is "silent", which they set again
  using _silent = { [Symbol.dispose]: () => log.setLevel("silent") };
  await using streams = await ControlledStreams.open();
  const consumer = notesConsumer(services, {
    frameOf(event, conn) {
      if (event.text === "bad" && conn.scope.query.get("user") === "a") {
        throw new TypeError("the app's bug in frameOf");
      }
      return event;
    },
  }, streams);
  const a = await open(consumer, services, "?stream=1&user=a");
  const b = await open(consumer, services, "?stream=1&user=b");
  await a.receiveJson(); // their positions
  await b.receiveJson();
  const events = await streams.publishAll("n1", "bad", "n3");
  // Event 1 is overtaken: both sockets read the gap, and the read sends "bad".
  await deliver(services, events.slice(1));
  assertEquals((await a.receiveJson()).text, "n1");
  // Raised by the communicator, as a hook's throw is.
  const error = await assertRejects(() => a.receive(), Error, "closed with 1011");
  assertStringIncludes(error.message, "TypeError: the app's bug in frameOf");
  assertEquals(await a.waitForClose(), 1011);
  assertEquals((await frames(b, 3)).map((f) => f.text), ["n1", "bad", "n3"]);
  await captured.waitFor(/Consumer failed on \/ws\/notes\/.*TypeError: the app's bug in frameOf/s);
  // The other socket, and the route, go on.
  await deliver(services, await streams.publishAll("n4"));
  assertEquals((await b.receiveJson()).text, "n4");
  const c = await open(consumer, services, "?stream=1&user=c");
  assertEquals((await c.receiveJson()).type, RECOVERED);
  await b.disconnect();
  await c.disconnect();
});

Deno.test("a frameOf that returns no JSON while a gap is read closes that socket with 1011, not as a store outage", async () => {
  await using services = await createTestServices();
  await using streams = await ControlledStreams.open();
  const consumer = notesConsumer(services, {
    frameOf: (event) => event.text === "bad" ? { ...event, big: 1n } : event,
  }, streams);
  const comm = await open(consumer, services, "?stream=1");
  await comm.receiveJson(); // its position
  const events = await streams.publishAll("n1", "bad", "n3");
  await deliver(services, events.slice(1)); // event 1 overtaken: the gap read sends "bad"
  assertEquals((await comm.receiveJson()).text, "n1");
  const error = await assertRejects(() => comm.receive(), Error, "closed with 1011");
  assertStringIncludes(error.message, "BigInt");
  assertEquals(await comm.waitForClose(), 1011);
});

Deno.test("a frameOf that throws on a live event is raised by the communicator, as a hook's throw is", async () => {
  await using services = await createTestServices();
  const consumer = notesConsumer(services, {
    frameOf(event) {
      if (event.text === "bad") throw new RangeError("the app's bug in frameOf");
      return event;
    },
  });
  const comm = await open(consumer, services, "?stream=1");
  await comm.receiveJson(); // its position
  await publish(services, "bad");
  const error = await assertRejects(() => comm.receive(), Error, "closed with 1011");
  assertStringIncludes(error.message, "RangeError: the app's bug in frameOf");
});

Deno.test("a resend whose stream cannot be read (its re-entry read fails too) closes the socket to reconnect, not as the consumer's failure", async () => {
  await using services = await createTestServices();
  let failing: "no" | "once incomplete" | "yes" = "no";
  const real = services.streams;
  const away = () => Promise.reject(new Error("store away"));
  const streams = Object.assign(Object.create(real) as GroupStreams, {
    since: (...args: Parameters<GroupStreams["since"]>) => {
      if (failing === "no") return real.since(...args);
      if (failing === "yes") return away();
      failing = "yes"; // missed more than is kept, then the store goes away for good
      return Promise.resolve({ epoch: "e", offset: 0, complete: false, events: [] });
    },
    latest: (...args: Parameters<GroupStreams["latest"]>) =>
      failing === "yes" ? away() : real.latest(...args),
  });
  const following = new StreamFollowing(streams);
  const consumer: Consumer = (conn) => {
    const follower = following.follow(conn, "notes");
    return {
      async connect() {
        await conn.groupAdd("notes");
        await follower.enter();
      },
      drained: () => follower.resume(),
      events: { note: (event) => follower.deliver(event) },
    };
  };
  const comm = new Communicator({ consumer, services }, "/ws/notes/");
  assert((await comm.connect()).accepted);
  await real.publish("notes", { type: "note", text: "a" });
  assertEquals((await comm.receiveJson()).text, "a");
  failing = "once incomplete";
  // What a restored Redis subscription hands the group's members: `drained`, so `resume()`.
  await services.layer.groupSend("notes", { type: LAYER_GAP });
  assertEquals(await comm.waitForClose(15_000), CloseCode.TRY_AGAIN_LATER);
});

Deno.test("a socket that missed much more than it holds gets it page by page, each once and in order, not all read at once", async () => {
  await using services = await createTestServices();
  const real = services.streams;
  const pages: number[] = []; // the characters of events each read handed out
  const streams = Object.assign(Object.create(real) as GroupStreams, {
    since: async (...args: Parameters<GroupStreams["since"]>) => {
      const read = await real.since(...args);
      pages.push(read.events.reduce((sum, event) => sum + JSON.stringify(event).length, 0));
      return read;
    },
    latest: (...args: Parameters<GroupStreams["latest"]>) => real.latest(...args),
  });
  const following = new StreamFollowing(streams);
  // Follows the stream without taking its live events: all it sends comes from reads.
  const consumer: Consumer = (conn) => {
    const follower = following.follow(conn, GROUP);
    return {
      async connect() {
        await conn.groupAdd("gaps");
        await follower.enter(new URLSearchParams("stream=1"));
      },
      drained: () => follower.resume(),
      events: {},
    };
  };
  const comm = new Communicator({ consumer, services }, "/ws/notes/");
  assert((await comm.connect()).accepted);
  assertEquals((await comm.receiveJson()).type, RECOVERED);
  const text = "n".repeat(2000);
  const missed = 300; // about 600 KB, where a socket holds 256 KiB
  for (let i = 1; i <= missed; i++) await real.publish(GROUP, { type: "note", text, i });
  pages.length = 0;
  await services.layer.groupSend("gaps", { type: LAYER_GAP });
  const got = [];
  for (let n = 0; n < missed; n++) got.push((await comm.receiveJson()).i);
  assertEquals(got, Array.from({ length: missed }, (_, i) => i + 1));
  assert(await comm.receiveNothing(100), "an event came twice");
  const bound = 256 * 1024 + 2100; // what a socket holds, and one event over it
  assert(pages.length > 1, `read in one go: ${pages}`);
  assert(Math.max(...pages) <= bound, `a read handed out more than a socket holds: ${pages}`);
});
