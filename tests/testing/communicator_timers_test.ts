/**
 * The communicator's waits are bounded, and a test that ends leaves no timer of the framework
 * behind: these tests turn on Deno's op sanitizer, which a user's own tests may have on.
 */
import { assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { type Consumer, ProtocolError } from "../../mod.ts";
import { Communicator, createTestServices } from "../../testing.ts";
import { log } from "../../telemetry/log.ts";
import { CapturedLog } from "../_support/captured_log.ts";

const strict: Consumer = (conn) => ({
  receiveJson(value) {
    if (typeof value !== "string") throw new ProtocolError("Send a JSON string", 4400);
    conn.sendJson(value);
  },
});

// Twice: a timer left by the first would fail the second, as a user's next test would.
for (const round of ["first", "second"]) {
  Deno.test({
    name: `a refused frame's error and close leave no timer once the test disconnects (${round})`,
    sanitizeOps: true,
    sanitizeResources: true,
    async fn() {
      await using services = await createTestServices();
      const comm = new Communicator({ consumer: strict, services }, "/ws/strict/");
      await comm.connect();
      comm.sendJson(42);
      assertEquals((await comm.receiveJson()).type, "error");
      await comm.disconnect();
    },
  });
}

const groupReader: Consumer = (conn) => ({
  connect: () => conn.groupAdd("news"),
  events: { "news.item": (event) => conn.send(String(event.n)) },
});

Deno.test({
  name: "a reader that fell behind leaves no watch running once the test disconnects",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using services = await createTestServices();
    using _ = new CapturedLog();
    log.setLevel("error");
    const comm = new Communicator({ consumer: groupReader, services }, "/ws/news/");
    await comm.connect();
    comm.socket.bufferedAmount = 10_000_000; // the client reads nothing
    let dropped = 0;
    for (let n = 0; n < 20; n++) {
      dropped += (await services.layer.groupSend("news", { type: "news.item", n })).dropped;
    }
    assertEquals(dropped > 0, true, "nothing was dropped: the watch never started");
    await comm.disconnect();
  },
});

const hangsInDisconnect: Consumer = (conn) => ({
  receive: () => conn.close(4000),
  disconnect: () => new Promise<void>(() => {}),
});

Deno.test("waitForClose rejects within its hook timeout when the consumer's disconnect never finishes", async () => {
  await using services = await createTestServices();
  const comm = new Communicator({ consumer: hangsInDisconnect, services }, "/ws/hangs/");
  await comm.connect();
  comm.send("close, please");
  const started = performance.now();
  await assertRejects(
    () => comm.waitForClose(300, 300),
    Error,
    "closed with 4000, but the consumer did not finish within 300 ms",
  );
  const waited = performance.now() - started;
  assertEquals(waited < 3000, true, `waited ${Math.round(waited)} ms for a 300 ms timeout`);
});

/**
 * What `@std/testing/time`'s `FakeTime` does to the timers: a callback runs only when the test
 * moves the clock (`tick`). The real timers are put back on dispose.
 */
class FakeClock implements Disposable {
  #now = 0;
  #nextId = 1;
  #timers = new Map<number, { at: number; callback: () => void }>();
  #real = [globalThis.setTimeout, globalThis.clearTimeout] as const;

  constructor() {
    globalThis.setTimeout = ((callback: () => void, ms = 0) => {
      this.#timers.set(this.#nextId, { at: this.#now + ms, callback });
      return this.#nextId++;
    }) as unknown as typeof setTimeout;
    globalThis.clearTimeout = ((id: number) => void this.#timers.delete(id)) as typeof clearTimeout;
  }

  /** Moves the clock `ms` on, running the timers that are due. */
  tick(ms: number): void {
    this.#now += ms;
    for (const [id, { at, callback }] of this.#timers) {
      if (at > this.#now) continue;
      this.#timers.delete(id);
      callback();
    }
  }

  [Symbol.dispose](): void {
    [globalThis.setTimeout, globalThis.clearTimeout] = this.#real;
  }
}

const echoOrLeave: Consumer = (conn) => ({
  connect: () => conn.groupAdd("clock"),
  receive(text) {
    conn.send(text);
    if (text === "bye") conn.close(4000);
  },
});

const joinsNoGroup: Consumer = (conn) => ({
  connect() {
    conn.groupAdd(""); // the await forgotten, and no group has that name
  },
});

Deno.test("under a fake clock, disconnect and waitForClose resolve, and still tell a call nobody awaited", async () => {
  await using services = await createTestServices();
  const leaving = new Communicator({ consumer: echoOrLeave, services }, "/ws/clock/");
  const closed = new Communicator({ consumer: echoOrLeave, services }, "/ws/clock/");
  const careless = new Communicator({ consumer: joinsNoGroup, services }, "/ws/careless/");
  // Bounded by real time: on failure the test says so instead of hanging.
  const settled = (promise: Promise<unknown>) =>
    Promise.race([promise.then(() => "resolved"), realDelay(2000, "still waiting after 2 s")]);
  {
    using clock = new FakeClock();
    await leaving.connect();
    leaving.send("hi");
    assertEquals(await leaving.receive(), "hi");
    assertEquals(await settled(leaving.disconnect()), "resolved", "disconnect()");
    await closed.connect();
    closed.send("bye");
    assertEquals(await closed.receive(), "bye"); // and the consumer has asked for the close
    clock.tick(0); // which goes a macrotask later, by the clock the test fakes
    assertEquals(await settled(closed.waitForClose()), "resolved", "waitForClose()");
    await careless.connect();
    const told = careless.disconnect().then(() => "resolved", (error) => error.message);
    assertStringIncludes(
      await Promise.race([told, realDelay(2000, "still waiting after 2 s")]),
      "The consumer failed (after the close)",
    );
  }
  assertEquals(closed.closeCode, 4000);
  assertEquals((await services.layer.groupSend("clock", { type: "x" })).delivered, 0);
});

// Taken before any test fakes the clock.
const realSetTimeout = globalThis.setTimeout;

function realDelay<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => realSetTimeout(() => resolve(value), ms));
}
