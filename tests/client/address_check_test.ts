/** The address question's bookkeeping: when a failing socket asks about its address again. */
import { assertEquals } from "@std/assert";
import { UnopenedAttempts } from "../../client/address_check.js";

Deno.test("an answer that comes after an attempt opened does not silence the next run of failures", async () => {
  let status = 426;
  let release = () => {};
  let gate = new Promise<void>((resolve) => release = resolve);
  const probe = (async () => {
    await gate;
    return new Response(null, { status });
  }) as typeof fetch;
  const attempts = new UnopenedAttempts(probe);
  attempts.failed();
  attempts.failed();
  const asked = attempts.ask("ws://example.test/ws/room/");
  attempts.opened(); // while the question is out, an attempt opens: the address is right
  release();
  assertEquals(await asked, null);
  // Later the route is gone: a new run of failures is asked about, and the 404 stops it.
  status = 404;
  gate = Promise.resolve();
  attempts.failed();
  attempts.failed();
  assertEquals(attempts.due, true);
  const refusal = await attempts.ask("ws://example.test/ws/room/");
  assertEquals(refusal?.text, "No WebSocket route at /ws/room/ (404 Not Found)");
});
