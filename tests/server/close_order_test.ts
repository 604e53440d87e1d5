/**
 * What a close waits for, as in Channels: the hook that runs finishes, the frames that reached
 * the socket before the close are handled in order, and only then are the groups left and
 * `disconnect` run. A consumer that failed handles nothing more; a hook that never ends is not
 * waited for past `HOOKS_AFTER_CLOSE_MS`.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import type { Consumer } from "../../mod.ts";
import { Communicator, createTestServices } from "../../testing.ts";
import { HOOKS_AFTER_CLOSE_MS } from "../../server/_connection_constants.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";

// A turn of the event loop: what a close sets off on its own has run by then.
const nextTurn = () => new Promise((resolve) => setTimeout(resolve, 0));

// A consumer whose `receive` waits for `gate` on its first frame, and that records its hooks.
function gatedConsumer(options: { failFirst?: boolean; hang?: boolean } = {}) {
  const order: string[] = [];
  const started = Promise.withResolvers<void>();
  const gate = Promise.withResolvers<void>();
  let first = true;
  const consumer: Consumer = (conn) => ({
    async connect() {
      await conn.groupAdd("room");
    },
    async receive(text) {
      order.push(`receive ${text}`);
      if (first) {
        first = false;
        started.resolve();
        await (options.hang ? new Promise(() => {}) : gate.promise);
        if (options.failFirst) throw new Error("the database is gone");
      }
      order.push(`handled ${text}`);
    },
    disconnect(code) {
      order.push(`disconnect ${code}`);
    },
  });
  return {
    consumer,
    order,
    started: started.promise,
    open: () => gate.resolve(),
  };
}

Deno.test("disconnect runs after the hook that runs when the client leaves, not during it", async () => {
  await using services = await createTestServices();
  const { consumer, order, started, open } = gatedConsumer();
  const groups = services.layer.stats().groups; // the services' own
  const comm = new Communicator({ consumer, services }, "/ws/close/");
  await comm.connect();
  comm.send("a");
  await started;
  const disconnected = comm.disconnect().then(() => order.push("comm.disconnect resolved"));
  await comm.closed;
  await nextTurn();
  assertEquals(order, ["receive a"], "disconnect ran while receive was still running");
  assertEquals(services.layer.stats().groups, groups + 1, "groups left before the hook finished");
  open();
  await disconnected;
  assertEquals(order, ["receive a", "handled a", "disconnect 1000", "comm.disconnect resolved"]);
  assertEquals(services.layer.stats().groups, groups);
});

Deno.test("frames that reached the socket before the client closed it are all handled, in order", async () => {
  await using services = await createTestServices();
  const { consumer, order, started, open } = gatedConsumer();
  const comm = new Communicator({ consumer, services }, "/ws/close/");
  await comm.connect();
  comm.send("a");
  comm.send("b");
  comm.send("c");
  await started;
  const disconnected = comm.disconnect();
  await comm.closed;
  await nextTurn();
  open();
  await disconnected;
  assertEquals(order, [
    "receive a",
    "handled a",
    "receive b",
    "handled b",
    "receive c",
    "handled c",
    "disconnect 1000",
  ]);
});

Deno.test("a consumer that failed handles nothing more: what waited is dropped, disconnect runs once", async () => {
  await using services = await createTestServices();
  using _captured = new CapturedLog(); // the failure's log line
  const { consumer, order, started, open } = gatedConsumer({ failFirst: true });
  const comm = new Communicator({ consumer, services }, "/ws/close/");
  await comm.connect();
  comm.send("a");
  comm.send("b");
  await started;
  open();
  // What the consumer raised is raised again, as Channels' communicator does.
  await assertRejects(() => comm.waitForClose(), Error, "closed with 1011");
  assertEquals(order, ["receive a", "disconnect 1011"]);
});

Deno.test("a hook that never ends is not waited for: disconnect runs, and it is logged", async () => {
  await using services = await createTestServices();
  using captured = new CapturedLog();
  log.setLevel("warn");
  try {
    const { consumer, order, started } = gatedConsumer({ hang: true });
    const groups = services.layer.stats().groups; // the services' own
    const comm = new Communicator({ consumer, services }, "/ws/close/");
    await comm.connect();
    comm.send("a");
    comm.send("b");
    await started;
    const leftAt = performance.now();
    await comm.disconnect();
    assert(performance.now() - leftAt >= HOOKS_AFTER_CLOSE_MS - 50);
    assertEquals(order, ["receive a", "disconnect 1000"]);
    assertEquals(services.layer.stats().groups, groups);
    await captured.waitFor(/still runs \d+ ms after its socket closed/);
  } finally {
    log.setLevel("info");
  }
});

Deno.test("a frame that arrives after a hook failed, before the close went out, is not handled", async () => {
  await using services = await createTestServices();
  using _captured = new CapturedLog(); // the failure's log line
  const order: string[] = [];
  const consumer: Consumer = () => ({
    receive(text) {
      order.push(`receive ${text}`);
      if (text === "boom") throw new Error("the database is gone");
    },
    disconnect(code) {
      order.push(`disconnect ${code}`);
    },
  });
  const comm = new Communicator({ consumer, services }, "/ws/close/");
  await comm.connect();
  comm.send("boom");
  await Promise.resolve(); // the failure is handled; the close goes out a turn later
  comm.send("after");
  // What the consumer raised is raised again, as Channels' communicator does.
  await assertRejects(() => comm.waitForClose(), Error, "closed with 1011");
  assertEquals(order, ["receive boom", "disconnect 1011"]);
});
