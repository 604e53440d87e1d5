/**
 * A call the consumer did not `await` that fails while its `connect` still runs fails that
 * `connect`, as a throw would: the handshake is refused with 500, and the communicator raises
 * the error, where it used to read as a refusal of the consumer's own (403) and be lost.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { CapturedLog } from "../_support/captured_log.ts";
import type { Consumer } from "../../mod.ts";
import { Communicator, createTestServices } from "../../testing.ts";

// The failure reaches the framework through `unhandledrejection`, whose first listener is the
// framework's (added at the first such call): `connect` goes on once it has been handled.
const joinsNoGroupThenWaits: Consumer = (conn) => ({
  async connect() {
    conn.groupAdd(""); // the await forgotten, and no group has that name
    await new Promise((handled) => addEventListener("unhandledrejection", handled, { once: true }));
  },
});

Deno.test("a call nobody awaited that fails while an async connect runs rejects connect() as refused with 500", async () => {
  using captured = new CapturedLog();
  await using services = await createTestServices({ logLevel: "error" });
  const comm = new Communicator({ consumer: joinsNoGroupThenWaits, services }, "/ws/joins/");
  await assertRejects(
    () => comm.connect(),
    Error,
    "The consumer failed (connect, refused with 500): TypeError: Group name must be",
  );
  await comm.disconnect(); // told once
  // The log says what the client got: a refused handshake, not a socket closed with 1011.
  const line = captured.lines.find((text) => text.includes("Consumer failed on /ws/joins/")) ??
    captured.lines.join("\n");
  assertStringIncludes(line, "while its connect ran; refusing the handshake");
  assert(!line.includes("1011"), line);
});

Deno.test("a call nobody awaited that fails in a connect whose client left is told by disconnect()", async () => {
  await using services = await createTestServices();
  const comm = new Communicator({ consumer: joinsNoGroupThenWaits, services }, "/ws/joins/");
  const connecting = comm.connect();
  const leaving = comm.disconnect();
  await assertRejects(
    () => leaving,
    Error,
    "(connect, refused with 500 to a client that no longer waited): TypeError: Group name",
  );
  assertEquals((await connecting).status, 500);
});

Deno.test("the failure wins over a refusal that follows it, however the consumer refuses", async () => {
  const refusals: [string, Consumer][] = [
    ["return false", (conn) => ({
      async connect() {
        conn.groupAdd("");
        await new Promise((handled) =>
          addEventListener("unhandledrejection", handled, { once: true })
        );
        return false;
      },
    })],
    ["conn.close(4003)", (conn) => ({
      async connect() {
        conn.groupAdd("");
        await new Promise((handled) =>
          addEventListener("unhandledrejection", handled, { once: true })
        );
        conn.close(4003);
      },
    })],
  ];
  for (const [how, consumer] of refusals) {
    await using services = await createTestServices();
    const comm = new Communicator({ consumer, services }, "/ws/joins/");
    await assertRejects(
      () => comm.connect(),
      Error,
      "refused with 500): TypeError: Group name must be",
      how,
    );
  }
});
