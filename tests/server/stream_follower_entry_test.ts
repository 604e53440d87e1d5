/** The stream follower's entry: by the socket's query, recovery, history, frameOf, paging. */
import { assert, assertEquals } from "@std/assert";
import { Communicator, createTestServices } from "../../testing.ts";
import {
  type Consumer,
  DEFAULT_HISTORY_SIZE,
  type GroupStreams,
  type LayerEvent,
  RECOVERED,
  StreamFollowing,
} from "../../mod.ts";
import { LAYER_GAP } from "../../layers/layer.ts";
import { frames, GROUP, notesConsumer, open, publish } from "./_stream_follower_support.ts";

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
