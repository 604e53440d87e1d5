/**
 * The communicator's waits are bounded, and a test that ends leaves no timer of the framework
 * behind: these tests turn on Deno's op sanitizer, which a user's own tests may have on.
 */
import { assertEquals, assertRejects } from "@std/assert";
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
