/**
 * The stream protocol's server side, as an app of its own uses it (not the chat): entry by the
 * socket's query, live events once each and in order, what it sends and what it skips.
 */
import { assert, assertEquals } from "@std/assert";
import { Communicator, createTestServices, type TestServices } from "../../testing.ts";
import {
  type Consumer,
  DEFAULT_HISTORY_SIZE,
  type LayerEvent,
  RECOVERED,
  StreamFollowing,
  type StreamFollowingOptions,
} from "../../mod.ts";

type Frame = Record<string, unknown>;
const GROUP = "notes";

/** A notes app: every note is published into the group's stream; sockets follow it. */
function notesConsumer(services: TestServices, options?: StreamFollowingOptions): Consumer {
  const following = new StreamFollowing(services.streams, options);
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
